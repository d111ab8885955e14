/* Request parsing and limits without sockets: bytes are fed to a detached
 * connection (net_int.h) and the answers read back from its output buffer.
 * Covers accessors and decoding, pipelining with answers given out of
 * order, every limit's status code, smuggling shapes, timeouts, aborts,
 * request ids and UTF-8 validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/net_int.h"

typedef struct fixture_s {
    uv_loop_t loop;
    net_router_t *router;
    net_server_t *srv;
    net_conn_t *c;
} fixture_t;

static net_req_t *held[16];
static size_t nheld;
static int aborted;

static void h_info(net_req_t *req, void *data)
{
    json_t *j = json_pack("{s:s,s:s,s:s?,s:s?,s:s?,s:s?,s:s}", "method", net_req_method(req),
                          "path", net_req_path(req), "q", net_req_query(req, "q"), "id",
                          net_req_param(req, "id"), "ua", net_req_header(req, "user-agent"), "body",
                          net_req_body(req, NULL), "qs", net_req_query_string(req));
    net_resp_json(req, 200, j);
    json_decref(j);
}

static void on_abort(net_req_t *req, void *data)
{
    aborted++;
}

static void h_hold(net_req_t *req, void *data)
{
    net_req_on_abort(req, on_abort, NULL);
    held[nheld++] = req;
}

static void h_empty(net_req_t *req, void *data)
{
    net_resp_header(req, "X-Extra", "yes");
    assert_int_equal(net_resp_header(req, "Bad\r\nName", "x"), CORE_ERR_INVALID);
    net_resp_send(req, 204, NULL, "ignored", 7);
}

static void h_pair(net_req_t *req, void *data)
{
    json_t *j = json_pack("{s:s,s:s}", "a", net_req_param(req, "a"), "b", net_req_param(req, "b"));
    net_resp_json(req, 200, j);
    json_decref(j);
}

static void answer(net_req_t *req, const char *text)
{
    net_resp_send(req, 200, "text/plain", text, strlen(text));
}

static void limits(net_limits_t *l)
{
    core_config_t cfg;
    core_config_defaults(&cfg);
    net_limits_from_config(l, &cfg);
    core_config_dispose(&cfg);
    l->max_header_bytes = 1024;
    l->max_headers = 8;
    l->max_body_bytes = 64;
    l->max_pipelined = 4;
    l->request_burst = 20;
    l->requests_per_second = 1;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    uv_loop_init(&f->loop);
    f->router = net_router_new();
    net_router_add(f->router, "GET", "/info/{id}", h_info, NULL, NULL);
    net_router_add(f->router, "POST", "/info/{id}", h_info, NULL, NULL);
    net_router_add(f->router, "GET", "/hold", h_hold, NULL, NULL);
    net_router_add(f->router, "GET", "/pair/{a}/{b}", h_pair, NULL, NULL);
    net_router_add(f->router, "DELETE", "/info/{id}", h_empty, NULL, NULL);
    net_limits_t l;
    limits(&l);
    f->srv = net_server_new(&f->loop, &l, f->router);
    f->c = net__conn_new_detached(f->srv);
    nheld = 0;
    aborted = 0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    net__conn_free_detached(f->c);
    net_server_free(f->srv);
    net_router_free(f->router);
    uv_loop_close(&f->loop);
    free(f);
    return 0;
}

static void feed(fixture_t *f, const char *s)
{
    net__conn_feed(f->c, s, strlen(s));
}

/* The output so far as a string (static), then cleared. */
static const char *take(fixture_t *f)
{
    static char buf[65536];
    size_t n = f->c->out.len < sizeof(buf) - 1 ? f->c->out.len : sizeof(buf) - 1;
    memcpy(buf, f->c->out.data ? f->c->out.data : "", n);
    buf[n] = '\0';
    f->c->out.len = 0;
    return buf;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void test_accessors_and_decoding(void **state)
{
    fixture_t *f = *state;
    feed(f, "GET /info/a%20b?q=x+y%21&z HTTP/1.1\r\nHost: h\r\nUSER-AGENT:  t/1 \r\n\r\n");
    const char *out = take(f);
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(out, "\"id\":\"a b\""));
    assert_non_null(strstr(out, "\"q\":\"x y!\""));
    assert_non_null(strstr(out, "\"ua\":\"t/1\""));
    assert_non_null(strstr(out, "\"path\":\"/info/a%20b\""));
    assert_non_null(strstr(out, "\"qs\":\"q=x+y%21&z\""));
    assert_non_null(strstr(out, "X-Request-Id: "));
    assert_false(f->c->closing);
}

static void test_chunked_body(void **state)
{
    fixture_t *f = *state;
    feed(f, "POST /info/1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
    assert_string_equal(take(f), "");
    feed(f, "2\r\nde\r\n0\r\n\r\n");
    assert_non_null(strstr(take(f), "\"body\":\"abcde\""));
    /* trailer fields are dropped, never read as headers (RFC 9110 6.5.1):
     * here the handler's User-Agent, elsewhere an Authorization */
    feed(f, "POST /info/2 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n"
            "0\r\nUser-Agent: trailer/1\r\nX-A: 1\r\n\r\n");
    const char *out = take(f);
    if (strstr(out, "\"body\":\"hi\"") == NULL)
        fail_msg("%s", out);
    assert_null(strstr(out, "trailer/1"));
}

static void test_pipelined_async_in_order(void **state)
{
    fixture_t *f = *state;
    feed(f, "GET /hold HTTP/1.1\r\nHost: h\r\n\r\nGET /hold HTTP/1.1\r\nHost: h\r\n\r\nGET /info/3 "
            "HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_int_equal(nheld, 2);
    assert_string_equal(take(f), ""); /* the third is answered but must wait */
    answer(held[1], "second");
    assert_string_equal(take(f), "");
    answer(held[0], "first");
    const char *out = take(f);
    const char *a = strstr(out, "first"), *b = strstr(out, "second"), *c = strstr(out, "\"id\"");
    assert_true(a && b && c && a < b && b < c);
    assert_int_equal(f->c->nqueued, 0);
}

/* Regression: a request taken from the pool must not bring its free-list
 * link into the connection's queue. */
static void test_recycled_requests_queue_cleanly(void **state)
{
    fixture_t *f = *state;
    for (int i = 0; i < 3; i++)
        feed(f, "GET /info/1 HTTP/1.1\r\nHost: h\r\n\r\n");
    take(f);
    assert_int_equal(f->srv->nfree, 1);
    feed(f, "GET /hold HTTP/1.1\r\nHost: h\r\n\r\nGET /hold HTTP/1.1\r\nHost: h\r\n\r\nGET /info/9 "
            "HTTP/1.1\r\nHost: h\r\n\r\n");
    answer(held[1], "second");
    answer(held[0], "first");
    const char *out = take(f);
    const char *a = strstr(out, "first"), *b = strstr(out, "second"), *c = strstr(out, "\"9\"");
    assert_true(a && b && c && a < b && b < c);
    assert_null(f->c->qhead);
    assert_ptr_equal(f->c->qtail, &f->c->qhead);
    assert_int_equal(f->c->nqueued, 0);
    feed(f, "GET /hold HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_ptr_equal(f->c->qhead, held[2]);
    assert_null(held[2]->next);
    answer(held[2], "third");
    assert_non_null(strstr(take(f), "third"));
}

static void test_pipeline_limit_pauses(void **state)
{
    fixture_t *f = *state;
    char many[512] = "";
    for (int i = 0; i < 6; i++)
        strncat(many, "GET /hold HTTP/1.1\r\nHost: h\r\n\r\n", sizeof(many) - strlen(many) - 1);
    feed(f, many);
    assert_int_equal(nheld, 4); /* max_pipelined */
    assert_true(f->c->pending.len > f->c->pending_off);
    for (size_t i = 0; i < 4; i++)
        answer(held[i], "x");
    assert_int_equal(nheld, 6); /* the rest was parsed once answers left */
    answer(held[4], "x");
    answer(held[5], "x");
    assert_int_equal(count(take(f), "HTTP/1.1 200"), 6);
}

static void assert_fails(fixture_t *f, const char *raw, const char *status)
{
    feed(f, raw);
    const char *out = take(f);
    assert_non_null(strstr(out, status));
    assert_non_null(strstr(out, "Connection: close"));
    assert_non_null(strstr(out, "{\"error\":{\"code\":"));
    assert_true(f->c->closing);
}

static void test_header_bytes(void **state)
{
    fixture_t *f = *state;
    char big[2048];
    snprintf(big, sizeof(big), "GET /info/1 HTTP/1.1\r\nHost: h\r\nX: %01500d\r\n\r\n", 0);
    assert_fails(f, big, "HTTP/1.1 431 ");
}

/* A request whose head (request line to blank line) is size bytes. */
static void head_of(char *out, size_t size)
{
    static const char start[] = "GET /info/1 HTTP/1.1\r\nHost: h\r\nX: ";
    size_t pad = size - (sizeof(start) - 1) - 4;
    memcpy(out, start, sizeof(start) - 1);
    memset(out + sizeof(start) - 1, 'a', pad);
    memcpy(out + sizeof(start) - 1 + pad, "\r\n\r\n", 5);
}

static void feed_bytewise(fixture_t *f, const char *s)
{
    for (; *s; s++)
        net__conn_feed(f->c, s, 1);
}

/* max_header_bytes counts the head as on the wire, separators and line
 * ends included, however the reads cut it. */
static void test_header_bytes_on_the_wire(void **state)
{
    fixture_t *f = *state;
    char req[2][1100];
    head_of(req[0], 1024);
    head_of(req[1], 1024);
    char two[2200];
    snprintf(two, sizeof(two), "%s%s", req[0], req[1]);
    feed(f, two); /* pipelined: the second head starts where the first's body would */
    assert_int_equal(count(take(f), "HTTP/1.1 200"), 2);
    feed_bytewise(f, req[0]);
    assert_int_equal(count(take(f), "HTTP/1.1 200"), 1);
    head_of(req[1], 1025);
    feed_bytewise(f, req[1]);
    const char *out = take(f);
    assert_non_null(strstr(out, "HTTP/1.1 431 "));
    assert_non_null(strstr(out, "request line and headers exceed 1024 bytes"));
    assert_true(f->c->closing || f->c->parse_dead);
}

static void test_header_bytes_at_once(void **state)
{
    fixture_t *f = *state;
    char req[1100];
    head_of(req, 1025);
    assert_fails(f, req, "HTTP/1.1 431 ");
}

/* A chunked request whose head and trailer section come to size bytes:
 * the trailer section counted from its first field's first byte through
 * the blank line that ends it, as a head is through its own. */
static void trailers_of(char *out, size_t size)
{
    static const char head[] =
        "POST /info/1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    static const char body[] = "2\r\nhi\r\n0\r\n";
    static const char field[] = "X-Sum: ";
    size_t pad = size - (sizeof(head) - 1) - (sizeof(field) - 1) - 4;
    size_t n = 0;
    memcpy(out + n, head, sizeof(head) - 1);
    n += sizeof(head) - 1;
    memcpy(out + n, body, sizeof(body) - 1);
    n += sizeof(body) - 1;
    memcpy(out + n, field, sizeof(field) - 1);
    n += sizeof(field) - 1;
    memset(out + n, 'a', pad);
    memcpy(out + n + pad, "\r\n\r\n", 5);
}

/* A chunked body's trailer section counts against max_header_bytes with
 * the head, its last field's line end and the blank line after it
 * included: at the limit the request is served, a byte over is 431 as
 * longer trailers are, however the reads cut it. */
static void test_trailer_bytes_on_the_wire(void **state)
{
    fixture_t *f = *state;
    char req[1100], two[1200];
    trailers_of(req, 1024);
    snprintf(two, sizeof(two), "%sGET /info/2 HTTP/1.1\r\nHost: h\r\n\r\n", req);
    feed(f, two); /* pipelined: the next request starts where the trailers end */
    const char *out = take(f);
    assert_int_equal(count(out, "HTTP/1.1 200"), 2);
    assert_non_null(strstr(out, "\"body\":\"hi\""));
    assert_non_null(strstr(out, "\"id\":\"2\""));
    feed_bytewise(f, req);
    out = take(f);
    assert_int_equal(count(out, "HTTP/1.1 200"), 1);
    assert_false(f->c->closing);
    trailers_of(req, 1025);
    feed_bytewise(f, req);
    out = take(f);
    assert_non_null(strstr(out, "HTTP/1.1 431 "));
    assert_non_null(strstr(out, "request line and headers exceed 1024 bytes"));
    assert_true(f->c->closing || f->c->parse_dead);
}

/* A chunked body's final CRLF alone is no trailer section: a chunked
 * request's head of exactly the limit passes. */
static void test_chunked_head_at_the_limit(void **state)
{
    fixture_t *f = *state;
    static const char start[] =
        "POST /info/1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nX: ";
    char req[1100];
    size_t pad = 1024 - (sizeof(start) - 1) - 4;
    memcpy(req, start, sizeof(start) - 1);
    memset(req + sizeof(start) - 1, 'a', pad);
    memcpy(req + sizeof(start) - 1 + pad, "\r\n\r\n2\r\nhi\r\n0\r\n\r\n", 17);
    feed_bytewise(f, req);
    const char *out = take(f);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_non_null(strstr(out, "\"body\":\"hi\""));
}

static void test_trailer_bytes_at_once(void **state)
{
    fixture_t *f = *state;
    char req[1100];
    trailers_of(req, 1025);
    assert_fails(f, req, "HTTP/1.1 431 ");
}

static void test_trailer_bytes_far_over(void **state)
{
    fixture_t *f = *state;
    char req[2100];
    trailers_of(req, 2048);
    assert_fails(f, req, "HTTP/1.1 431 ");
}

static void test_header_count(void **state)
{
    fixture_t *f = *state;
    assert_fails(
        f,
        "GET /info/1 HTTP/1.1\r\nHost: h\r\na: 1\r\nb: 1\r\nc: 1\r\nd: 1\r\ne: 1\r\nf: 1\r\ng: "
        "1\r\nh: 1\r\ni: 1\r\n\r\n",
        "HTTP/1.1 431 ");
}

static void test_body_limit(void **state)
{
    fixture_t *f = *state;
    assert_fails(f, "POST /info/1 HTTP/1.1\r\nHost: h\r\nContent-Length: 65\r\n\r\n",
                 "HTTP/1.1 413 ");
}

static void test_chunked_body_limit(void **state)
{
    fixture_t *f = *state;
    assert_fails(f,
                 "POST /info/1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n"
                 "0123456789012345678901234567890123456789012345678901234567890123\r\n1\r\nx\r\n",
                 "HTTP/1.1 413 ");
}

static void test_smuggling(void **state)
{
    fixture_t *f = *state;
    assert_fails(
        f, "POST /info/1 HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
        "HTTP/1.1 400 ");
}

static void test_smuggling_cl_te(void **state)
{
    fixture_t *f = *state;
    assert_fails(f,
                 "POST /info/1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: "
                 "chunked\r\n\r\n0\r\n\r\n",
                 "HTTP/1.1 400 ");
}

/* A coding the server does not decode is refused (RFC 9112 6.1): the
 * handler would get the body still encoded. */
static void test_transfer_codings(void **state)
{
    fixture_t *f = *state;
    assert_fails(f,
                 "POST /info/1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                 "0\r\n\r\n",
                 "HTTP/1.1 501 Not Implemented\r\n");
}

static void test_http_versions(void **state)
{
    fixture_t *f = *state;
    assert_fails(f, "POST /info/1 HTTP/2.0\r\nContent-Length: 0\r\n\r\n",
                 "HTTP/1.1 505 HTTP Version Not Supported\r\n");
}

/* An HTTP/1.0 request answered after the next one was parsed still says
 * its connection is kept: the version is the request's, not the parser's. */
static void test_http10_keep_alive_answered_late(void **state)
{
    fixture_t *f = *state;
    size_t n0 = nheld;
    feed(f, "GET /hold HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
            "GET /info/1 HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_int_equal(nheld, n0 + 1);
    answer(held[n0], "late");
    const char *out = take(f);
    const char *first = strstr(out, "HTTP/1.1 200 OK\r\n");
    assert_non_null(first);
    const char *second = strstr(first + 1, "HTTP/1.1 200 OK\r\n");
    assert_non_null(second);
    assert_non_null(strstr(first, "Connection: keep-alive\r\n"));
    assert_true(strstr(first, "Connection: keep-alive\r\n") < second);
}

static void test_rate_limit(void **state)
{
    fixture_t *f = *state;
    char many[4096] = "";
    for (int i = 0; i < 25; i++)
        strncat(many, "GET /info/1 HTTP/1.1\r\nHost: h\r\n\r\n", sizeof(many) - strlen(many) - 1);
    feed(f, many);
    const char *out = take(f);
    assert_int_equal(count(out, "HTTP/1.1 200"), 20); /* the burst */
    assert_int_equal(count(out, "HTTP/1.1 429"), 1);
    assert_true(f->c->closing);
}

static void test_timeouts(void **state)
{
    fixture_t *f = *state;
    feed(f, "GET /info/1 HTTP/1.1\r\nHost:");
    net__conn_timeout(f->c);
    const char *out = take(f);
    assert_non_null(strstr(out, "HTTP/1.1 408 "));
    assert_non_null(strstr(out, "request headers timed out"));
    assert_true(f->c->closing);
}

static void test_body_timeout(void **state)
{
    fixture_t *f = *state;
    feed(f, "POST /info/1 HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc");
    net__conn_timeout(f->c);
    assert_non_null(strstr(take(f), "request body timed out"));
}

static void test_abort_runs_on_close(void **state)
{
    fixture_t *f = *state;
    feed(f, "GET /hold HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_int_equal(nheld, 1);
    net__conn_close(f->c);
    assert_int_equal(aborted, 1);
}

static void test_request_ids(void **state)
{
    fixture_t *f = *state;
    feed(f, "GET /info/1 HTTP/1.1\r\nHost: h\r\nX-Request-Id: good-id.1\r\n\r\n");
    assert_non_null(strstr(take(f), "X-Request-Id: good-id.1\r\n"));
    feed(f, "GET /info/1 HTTP/1.1\r\nHost: h\r\nX-Request-Id: bad id\r\n\r\n");
    const char *out = take(f);
    assert_null(strstr(out, "bad id"));
    assert_non_null(strstr(out, "X-Request-Id: "));
}

static void test_errors_are_json(void **state)
{
    fixture_t *f = *state;
    feed(f, "GET /nothing HTTP/1.1\r\nHost: h\r\n\r\nPUT /info/1 HTTP/1.1\r\nHost: h\r\n\r\nGET "
            "/info/%00 "
            "HTTP/1.1\r\nHost: h\r\n\r\n");
    const char *out = take(f);
    assert_non_null(strstr(out, "HTTP/1.1 404 Not Found"));
    assert_non_null(strstr(out, "HTTP/1.1 405 Method Not Allowed"));
    assert_non_null(strstr(out, "Allow: GET, HEAD, POST, DELETE\r\n"));
    assert_non_null(strstr(out, "HTTP/1.1 400 Bad Request"));
    assert_false(f->c->closing);
}

static void test_head(void **state)
{
    fixture_t *f = *state;
    feed(f, "HEAD /info/1 HTTP/1.1\r\nHost: h\r\n\r\n");
    const char *out = take(f);
    assert_non_null(strstr(out, "Content-Length: "));
    assert_string_equal(strstr(out, "\r\n\r\n"), "\r\n\r\n"); /* nothing after the head */
}

static void test_no_content(void **state)
{
    fixture_t *f = *state;
    feed(f, "DELETE /info/1 HTTP/1.1\r\nHost: h\r\n\r\nGET /info/2 HTTP/1.1\r\nHost: h\r\n\r\n");
    const char *out = take(f);
    assert_true(strncmp(out, "HTTP/1.1 204 No Content\r\n", 25) == 0);
    const char *second = strstr(out, "HTTP/1.1 200");
    assert_non_null(second);
    const char *cl = strstr(out, "Content-Length");
    assert_true(cl == NULL || cl > second);                           /* none in the 204 */
    assert_non_null(strstr(out, "X-Extra: yes\r\n\r\nHTTP/1.1 200")); /* and no body */
}

static void test_host_rule(void **state)
{
    fixture_t *f = *state;
    assert_fails(f, "GET /info/1 HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ");
}

static void test_duplicate_host(void **state)
{
    fixture_t *f = *state;
    assert_fails(f, "GET /info/1 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "HTTP/1.1 400 ");
}

static void test_http10_without_host(void **state)
{
    fixture_t *f = *state;
    feed(f, "GET /info/1 HTTP/1.0\r\n\r\n");
    assert_non_null(strstr(take(f), "HTTP/1.1 200 OK\r\n"));
}

static void test_utf8(void **state)
{
    assert_true(net_utf8_valid("", 0));
    assert_true(net_utf8_valid(NULL, 0));
    assert_true(net_utf8_valid("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15));
    assert_false(net_utf8_valid("\xff", 1));
    assert_false(net_utf8_valid("\xc0\xaf", 2));         /* overlong */
    assert_false(net_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(net_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(net_utf8_valid("\xe2\x82", 2));         /* truncated */
}

/* Decoding the first of two path parameters grows the header buffer; the
 * second must still be read from the request, not from the old buffer. */
static void test_params_after_buffer_grows(void **state)
{
    fixture_t *f = *state;
    char req[1024], want[1024];
    char a[401];
    memset(a, 'x', 400);
    a[400] = '\0';
    snprintf(req, sizeof(req), "GET /pair/%s%%2F/%%E2%%82%%ACb HTTP/1.1\r\nHost: x\r\n\r\n", a);
    net__conn_feed(f->c, req, strlen(req));
    net__obuf_reserve(&f->c->out, 1);
    f->c->out.data[f->c->out.len] = '\0';
    snprintf(want, sizeof(want),
             "{\"a\":\"%s/\",\"b\":\"\xe2\x82\xac"
             "b\"}",
             a);
    assert_non_null(strstr(f->c->out.data, "HTTP/1.1 200 "));
    assert_non_null(strstr(f->c->out.data, want));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_accessors_and_decoding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_async_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipeline_limit_pauses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recycled_requests_queue_cleanly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_bytes_on_the_wire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_bytes_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trailer_bytes_on_the_wire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_head_at_the_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trailer_bytes_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trailer_bytes_far_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_body_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transfer_codings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http10_keep_alive_answered_late, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smuggling, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smuggling_cl_te, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeouts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_runs_on_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_are_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http10_without_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_params_after_buffer_grows, setup, teardown),
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
