/* Outbound HTTP on the loop against a loopback stub server
 * (tests/stubs/http_stub.py): success, HTTP errors, timeouts, slow bodies,
 * refused connections, oversize and malformed responses, cancellation and
 * shutdown with transfers in flight. Each test runs its own loop and ends by
 * closing it, which fails if any handle is left open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "chorus/net_client.h"
#include "stubs/stub_proc.h"

static stub_proc_t stub;

typedef struct result_s {
    int calls;
    int error;
    int status;
    char *body;
    size_t body_len;
    char content_type[128];
    int64_t retry_after_s;
    char error_msg[256];
} result_t;

static void on_done(net_client_response_t *resp)
{
    result_t *r = resp->data;
    r->calls++;
    r->error = resp->error;
    r->status = resp->status;
    r->body = net_client_response_steal_body(resp, &r->body_len);
    snprintf(r->content_type, sizeof(r->content_type), "%s", resp->content_type);
    snprintf(r->error_msg, sizeof(r->error_msg), "%s", resp->error_msg);
    r->retry_after_s = resp->retry_after_s;
}

static void on_closed(void *data)
{
    (*(int *)data)++;
}

/* Runs one request to the stub's path on a fresh loop and client. */
static void run_one(const char *path, net_client_request_t *req, result_t *r)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    net_client_t *c = NULL;
    assert_int_equal(net_client_new(&loop, NULL, &c, NULL), 0);
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", stub.port, path);
    req->url = url;
    memset(r, 0, sizeof(*r));
    assert_int_equal(net_client_request(c, req, on_done, r, NULL, NULL), 0);
    assert_int_equal(r->calls, 0); /* never from inside net_client_request() */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r->calls, 1);
    int closed = 0;
    net_client_close(c, on_closed, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(closed, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_ok(void **state)
{
    net_client_request_t req = {0};
    result_t r;
    run_one("/ok", &req, &r);
    assert_int_equal(r.error, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 5);
    assert_string_equal(r.body, "hello");
    assert_string_equal(r.content_type, "text/plain");
    assert_true(r.retry_after_s == -1);
    free(r.body);
}

static void test_post_echo(void **state)
{
    net_client_header_t h[] = {{"Content-Type", "application/json"},
                               {"Authorization", "Bearer k1"}};
    net_client_request_t req = {
        .method = "POST", .headers = h, .n_headers = 2, .body = "{\"a\":1}", .body_len = 7};
    result_t r;
    run_one("/echo?x=1", &req, &r);
    assert_int_equal(r.error, 0);
    assert_int_equal(r.status, 200);
    json_t *j = json_loads(r.body, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "method")), "POST");
    assert_string_equal(json_string_value(json_object_get(j, "path")), "/echo?x=1");
    assert_string_equal(json_string_value(json_object_get(j, "body")), "{\"a\":1}");
    json_t *hd = json_object_get(j, "headers");
    assert_string_equal(json_string_value(json_object_get(hd, "authorization")), "Bearer k1");
    assert_string_equal(json_string_value(json_object_get(hd, "content-type")), "application/json");
    assert_null(json_object_get(hd, "expect"));
    json_decref(j);
    free(r.body);
}

static void test_put_and_delete(void **state)
{
    net_client_request_t req = {.method = "PUT", .body = "z", .body_len = 1};
    result_t r;
    run_one("/echo", &req, &r);
    json_t *j = json_loads(r.body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "method")), "PUT");
    assert_string_equal(json_string_value(json_object_get(j, "body")), "z");
    json_decref(j);
    free(r.body);
    net_client_request_t del = {.method = "DELETE"};
    run_one("/echo", &del, &r);
    j = json_loads(r.body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "method")), "DELETE");
    json_decref(j);
    free(r.body);
}

static void test_500_is_a_status_not_an_error(void **state)
{
    net_client_request_t req = {0};
    result_t r;
    run_one("/status/500", &req, &r);
    assert_int_equal(r.error, 0);
    assert_int_equal(r.status, 500);
    assert_string_equal(r.body, "status 500");
    free(r.body);
    run_one("/retry-after", &req, &r);
    assert_int_equal(r.status, 503);
    assert_true(r.retry_after_s == 7);
    free(r.body);
}

static void test_timeout(void **state)
{
    net_client_request_t req = {.timeout_ms = 300};
    result_t r;
    run_one("/hang", &req, &r);
    assert_int_equal(r.error, CORE_ERR_TIMEOUT);
    assert_int_equal(r.status, 0);
    assert_true(strlen(r.error_msg) > 0);
    free(r.body);
}

static void test_slow_body(void **state)
{
    /* A body that trickles in within the timeout arrives whole. */
    net_client_request_t req = {.timeout_ms = 20000};
    result_t r;
    run_one("/slow-body?chunks=5&ms=40", &req, &r);
    assert_int_equal(r.error, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "xxxxx");
    free(r.body);
    /* One that outlasts it times out even though headers came quickly. */
    net_client_request_t req2 = {.timeout_ms = 300};
    run_one("/slow-body?chunks=100&ms=100", &req2, &r);
    assert_int_equal(r.error, CORE_ERR_TIMEOUT);
    assert_int_equal(r.status, 200);
    assert_true(r.body_len < 100);
    free(r.body);
}

static void test_connection_refused(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    net_client_t *c = NULL;
    assert_int_equal(net_client_new(&loop, NULL, &c, NULL), 0);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", stub_closed_port());
    net_client_request_t req = {.url = url};
    result_t r = {0};
    assert_int_equal(net_client_request(c, &req, on_done, &r, NULL, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.error, UV_ECONNREFUSED);
    assert_int_equal(r.status, 0);
    free(r.body);
    net_client_close(c, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_oversize(void **state)
{
    net_client_request_t req = {.max_response_bytes = 1000};
    result_t r;
    run_one("/big?bytes=100000", &req, &r);
    assert_int_equal(r.error, CORE_ERR_LIMIT);
    assert_true(r.body_len <= 1000);
    free(r.body);
    /* Exactly at the limit is fine. */
    run_one("/big?bytes=1000", &req, &r);
    assert_int_equal(r.error, 0);
    assert_int_equal(r.body_len, 1000);
    free(r.body);
}

static void test_malformed_and_truncated(void **state)
{
    net_client_request_t req = {.timeout_ms = 5000};
    result_t r;
    run_one("/malformed", &req, &r);
    assert_int_equal(r.error, CORE_ERR_PROTOCOL);
    free(r.body);
    run_one("/truncated", &req, &r);
    assert_int_equal(r.error, CORE_ERR_PROTOCOL);
    assert_int_equal(r.status, 200);
    free(r.body);
}

static void test_bad_requests_fail_at_once(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    net_client_t *c = NULL;
    assert_int_equal(net_client_new(&loop, NULL, &c, NULL), 0);
    result_t r = {0};
    core_err_t err = {0};
    net_client_request_t bad_scheme = {.url = "ftp://127.0.0.1/x"};
    assert_int_equal(net_client_request(c, &bad_scheme, on_done, &r, NULL, &err), CORE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "http://"));
    net_client_request_t bad_method = {.method = "GE T", .url = "http://127.0.0.1/"};
    assert_int_equal(net_client_request(c, &bad_method, on_done, &r, NULL, &err), CORE_ERR_INVALID);
    net_client_header_t h = {"X-Evil", "a\r\nInjected: 1"};
    net_client_request_t bad_header = {.url = "http://127.0.0.1/", .headers = &h, .n_headers = 1};
    assert_int_equal(net_client_request(c, &bad_header, on_done, &r, NULL, &err), CORE_ERR_INVALID);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r.calls, 0);
    net_client_close(c, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_cancel(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    net_client_t *c = NULL;
    assert_int_equal(net_client_new(&loop, NULL, &c, NULL), 0);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hang", stub.port);
    net_client_request_t req = {.url = url, .timeout_ms = 60000};
    result_t a = {0}, b = {0};
    net_client_xfer_t *xa = NULL;
    assert_int_equal(net_client_request(c, &req, on_done, &a, &xa, NULL), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", stub.port);
    assert_int_equal(net_client_request(c, &req, on_done, &b, NULL, NULL), 0);
    assert_int_equal(net_client_active(c), 2);
    net_client_cancel(xa);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.error, UV_ECANCELED);
    assert_int_equal(net_client_active(c), 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.status, 200);
    free(a.body);
    free(b.body);
    net_client_close(c, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

typedef struct close_ctx_s {
    net_client_t *c;
    int calls;
    int closed_errors;
    int retry_rc;
} close_ctx_t;

static void on_done_during_close(net_client_response_t *resp)
{
    close_ctx_t *cc = resp->data;
    cc->calls++;
    if (resp->error == CORE_ERR_CLOSED)
        cc->closed_errors++;
    /* A caller that retries from its callback is refused, not hung. */
    net_client_request_t req = {.url = "http://127.0.0.1:1/"};
    cc->retry_rc = net_client_request(cc->c, &req, on_done_during_close, cc, NULL, NULL);
}

static void on_kick(uv_timer_t *t)
{
    close_ctx_t *cc = t->data;
    net_client_close(cc->c, on_closed, &cc->retry_rc);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_close_with_transfers_in_flight(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    close_ctx_t cc = {0};
    assert_int_equal(net_client_new(&loop, NULL, &cc.c, NULL), 0);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hang", stub.port);
    net_client_request_t req = {.url = url, .timeout_ms = 60000};
    for (int i = 0; i < 3; i++)
        assert_int_equal(net_client_request(cc.c, &req, on_done_during_close, &cc, NULL, NULL), 0);
    /* Let the transfers connect and send before closing. */
    uv_timer_t kick;
    uv_timer_init(&loop, &kick);
    kick.data = &cc;
    uv_timer_start(&kick, on_kick, 200, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(cc.calls, 3);
    assert_int_equal(cc.closed_errors, 3);
    /* retry_rc was CORE_ERR_CLOSED, then on_closed incremented it once. */
    assert_int_equal(cc.retry_rc, CORE_ERR_CLOSED + 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_many_concurrent(void **state)
{
    enum { N = 64 };
    uv_loop_t loop;
    uv_loop_init(&loop);
    net_client_t *c = NULL;
    net_client_options_t opts = {.max_transfers = N};
    assert_int_equal(net_client_new(&loop, &opts, &c, NULL), 0);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", stub.port);
    net_client_request_t req = {.url = url};
    static result_t r[N + 1];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < N; i++)
        assert_int_equal(net_client_request(c, &req, on_done, &r[i], NULL, NULL), 0);
    core_err_t err = {0};
    assert_int_equal(net_client_request(c, &req, on_done, &r[N], NULL, &err), CORE_ERR_BUSY);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, 200);
        free(r[i].body);
    }
    assert_int_equal(r[N].calls, 0);
    net_client_close(c, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* HTTPS against a self-signed certificate: refused unless verification is
 * turned off, which only tests do. */
static void test_tls_verification_is_on_by_default(void **state)
{
    char dir[] = "/tmp/chorus-tls-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[512], cert[64], key[64];
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -days 1 "
             "-keyout %s -out %s >/dev/null 2>&1",
             key, cert);
    if (system(cmd) != 0) {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        (void)system(cmd);
        skip(); /* no openssl command to make a certificate with */
    }
    stub_proc_t tls = {0};
    const char *args[] = {"--tls", cert, key, NULL};
    assert_int_equal(stub_proc_start(&tls, "http_stub.py", args), 0);
    net_client_request_t req = {.timeout_ms = 5000};
    result_t r;
    uv_loop_t loop;
    uv_loop_init(&loop);
    net_client_t *c = NULL;
    assert_int_equal(net_client_new(&loop, NULL, &c, NULL), 0);
    char url[128];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/ok", tls.port);
    req.url = url;
    memset(&r, 0, sizeof(r));
    assert_int_equal(net_client_request(c, &req, on_done, &r, NULL, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r.error, CORE_ERR_DENIED);
    assert_int_equal(r.status, 0);
    free(r.body);
    req.insecure = 1;
    memset(&r, 0, sizeof(r));
    assert_int_equal(net_client_request(c, &req, on_done, &r, NULL, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r.error, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello");
    free(r.body);
    net_client_close(c, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    stub_proc_stop(&tls);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
    return stub_proc_start(&stub, "http_stub.py", NULL);
}

static int teardown(void **state)
{
    stub_proc_stop(&stub);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok),
        cmocka_unit_test(test_post_echo),
        cmocka_unit_test(test_put_and_delete),
        cmocka_unit_test(test_500_is_a_status_not_an_error),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_slow_body),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_malformed_and_truncated),
        cmocka_unit_test(test_bad_requests_fail_at_once),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_close_with_transfers_in_flight),
        cmocka_unit_test(test_many_concurrent),
        cmocka_unit_test(test_tls_verification_is_on_by_default),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
