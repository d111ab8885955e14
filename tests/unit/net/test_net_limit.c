/* Per client limits without sockets (net_limit.c): the client address from
 * X-Forwarded-For for trusted and untrusted peers, the per key bucket and
 * its Retry-After, the bound on tracked entries, the parsing of
 * limits.trusted_proxies, and obs-fold refusal in the parser. */
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

static const char *peer = "127.0.0.1"; /* the socket peer h_client pretends */
static char client[64];

static void h_client(net_req_t *req, void *data)
{
    fixture_t *f = data;
    assert_int_equal(net__limit_client_for(f->srv, req, peer, client, sizeof(client)), 0);
    net_resp_send(req, 204, NULL, "", 0);
}

/* Takes a token for the key in ?k=; 200 or 429. */
static void h_key(net_req_t *req, void *data)
{
    if (net_req_take_key(req, net_req_query(req, "k")) != 0) {
        net_resp_error(req, 429, "rate_limited", "key");
        return;
    }
    net_resp_send(req, 200, "text/plain", "ok", 2);
}

static void set_limits(fixture_t *f, const char *trusted, long long key_rps, long long max_clients)
{
    core_config_t cfg;
    core_config_defaults(&cfg);
    free(cfg.limits.trusted_proxies);
    cfg.limits.trusted_proxies = strdup(trusted);
    cfg.limits.per_key_rps = key_rps;
    cfg.limits.per_key_burst = 2;
    cfg.limits.max_clients = max_clients;
    net_limits_t l;
    net_limits_from_config(&l, &cfg);
    core_config_dispose(&cfg);
    net_server_set_limits(f->srv, &l);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    uv_loop_init(&f->loop);
    f->router = net_router_new();
    net_router_add(f->router, "GET", "/client", h_client, f, NULL);
    net_router_add(f->router, "GET", "/key", h_key, f, NULL);
    core_config_t cfg;
    core_config_defaults(&cfg);
    net_limits_t l;
    net_limits_from_config(&l, &cfg);
    core_config_dispose(&cfg);
    f->srv = net_server_new(&f->loop, &l, f->router);
    f->c = net__conn_new_detached(f->srv);
    peer = "127.0.0.1";
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

static const char *take(fixture_t *f)
{
    static char buf[8192];
    size_t n = f->c->out.len < sizeof(buf) - 1 ? f->c->out.len : sizeof(buf) - 1;
    memcpy(buf, f->c->out.data ? f->c->out.data : "", n);
    buf[n] = '\0';
    f->c->out.len = 0;
    return buf;
}

/* The client chorusd sees for one request with headers (raw lines). */
static const char *client_of(fixture_t *f, const char *headers)
{
    char req[1024];
    snprintf(req, sizeof(req), "GET /client HTTP/1.1\r\nHost: x\r\n%s\r\n", headers);
    client[0] = '\0';
    net__conn_feed(f->c, req, strlen(req));
    const char *out = take(f);
    if (strstr(out, "HTTP/1.1 204 ") == NULL)
        fail_msg("%s\n-> %s", req, out);
    return client;
}

static void test_untrusted_peer_is_the_client(void **state)
{
    fixture_t *f = *state;
    set_limits(f, "10.0.0.0/8", 0, 100);
    assert_string_equal(client_of(f, "X-Forwarded-For: 198.51.100.1\r\n"), "127.0.0.1");
    peer = "::1";
    assert_string_equal(client_of(f, "X-Forwarded-For: 198.51.100.1\r\n"), "::1");
}

static void test_trusted_proxy_rightmost_untrusted_hop(void **state)
{
    fixture_t *f = *state;
    set_limits(f, "127.0.0.1, 10.0.0.0/8,2001:db8::/32", 0, 100);
    assert_string_equal(client_of(f, ""), "127.0.0.1");
    assert_string_equal(client_of(f, "X-Forwarded-For: 198.51.100.1\r\n"), "198.51.100.1");
    /* what the client wrote itself is to the left of the proxies' hops */
    assert_string_equal(client_of(f, "X-Forwarded-For: 1.2.3.4, 198.51.100.1, 10.9.9.9\r\n"),
                        "198.51.100.1");
    /* two headers are one list in order */
    assert_string_equal(
        client_of(f, "X-Forwarded-For: 198.51.100.1\r\nX-Forwarded-For: 198.51.100.2\r\n"),
        "198.51.100.2");
    /* every hop trusted: the leftmost */
    assert_string_equal(client_of(f, "X-Forwarded-For: 10.1.1.1,10.2.2.2\r\n"), "10.1.1.1");
    /* garbage ends the walk at the last trusted hop */
    assert_string_equal(client_of(f, "X-Forwarded-For: 198.51.100.1, 10.3.3.3, junk\r\n"),
                        "127.0.0.1");
    assert_string_equal(client_of(f, "X-Forwarded-For: 198.51.100.1, junk, 10.3.3.3\r\n"),
                        "10.3.3.3");
    /* IPv6, bracketed or not, and an IPv4-mapped peer */
    assert_string_equal(client_of(f, "X-Forwarded-For: [2001:db9::7]\r\n"), "2001:db9::7");
    assert_string_equal(client_of(f, "X-Forwarded-For: 2001:db9::7, 2001:db8::1\r\n"),
                        "2001:db9::7");
    peer = "::ffff:127.0.0.1";
    assert_string_equal(client_of(f, "X-Forwarded-For: 198.51.100.9\r\n"), "198.51.100.9");
    /* an empty header changes nothing */
    assert_string_equal(client_of(f, "X-Forwarded-For:\r\n"), "127.0.0.1");
}

static void test_cidr_bits(void **state)
{
    fixture_t *f = *state;
    set_limits(f, "127.0.0.0/31", 0, 100);
    peer = "127.0.0.1";
    assert_string_equal(client_of(f, "X-Forwarded-For: 198.51.100.1\r\n"), "198.51.100.1");
    peer = "127.0.0.2"; /* outside /31 */
    assert_string_equal(client_of(f, "X-Forwarded-For: 198.51.100.1\r\n"), "127.0.0.2");
    set_limits(f, "0.0.0.0/0", 0, 100);
    assert_string_equal(client_of(f, "X-Forwarded-For: 198.51.100.1\r\n"), "198.51.100.1");
    peer = "::1"; /* an IPv4 prefix does not cover IPv6 */
    assert_string_equal(client_of(f, "X-Forwarded-For: 198.51.100.1\r\n"), "::1");
}

static int key_status(fixture_t *f, const char *key)
{
    char req[256];
    snprintf(req, sizeof(req), "GET /key?k=%s HTTP/1.1\r\nHost: x\r\n\r\n", key);
    net__conn_feed(f->c, req, strlen(req));
    const char *out = take(f);
    if (strstr(out, "HTTP/1.1 429 ") != NULL) {
        assert_non_null(strstr(out, "\r\nRetry-After: 1\r\n"));
        return 429;
    }
    assert_non_null(strstr(out, "HTTP/1.1 200 "));
    return 200;
}

static void test_key_bucket(void **state)
{
    fixture_t *f = *state;
    set_limits(f, "", 0, 100);
    for (int i = 0; i < 5; i++) /* off */
        assert_int_equal(key_status(f, "a"), 200);
    set_limits(f, "", 1, 100);
    assert_int_equal(key_status(f, "a"), 200);
    assert_int_equal(key_status(f, "a"), 200);
    assert_int_equal(key_status(f, "a"), 429); /* burst 2; the loop clock stands still */
    assert_int_equal(key_status(f, "b"), 200);
    assert_int_equal(net__limit_tracked(f->srv, 1), 2);
}

static void test_tables_are_bounded(void **state)
{
    fixture_t *f = *state;
    set_limits(f, "", 1, 16);
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(key_status(f, key), 200);
        assert_true(net__limit_tracked(f->srv, 1) <= 16);
    }
    /* the most recent are remembered, with their spent tokens */
    assert_int_equal(key_status(f, "k999"), 200);
    assert_int_equal(key_status(f, "k999"), 429);
}

static void test_obs_fold_refused(void **state)
{
    fixture_t *f = *state;
    static const char *folds[] = {
        "GET /key?k=z HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
        "GET /key?k=z HTTP/1.1\r\nHost: x\r\nX-A:\r\n\tb\r\n\r\n",
    };
    for (size_t i = 0; i < 2; i++) {
        /* whole, and cut at every byte so the fold spans two reads */
        for (size_t cut = 0; cut <= strlen(folds[i]); cut++) {
            net__conn_free_detached(f->c);
            f->c = net__conn_new_detached(f->srv);
            net__conn_feed(f->c, folds[i], cut);
            net__conn_feed(f->c, folds[i] + cut, strlen(folds[i]) - cut);
            const char *out = take(f);
            assert_non_null(strstr(out, "HTTP/1.1 400 "));
            assert_non_null(strstr(out, "obsolete line folding"));
        }
    }
    /* a value cut anywhere without a fold is whole */
    const char *ok = "GET /key?k=y HTTP/1.1\r\nHost: x\r\nX-A: a b\tc\r\n\r\n";
    for (size_t cut = 0; cut <= strlen(ok); cut++) {
        net__conn_free_detached(f->c);
        f->c = net__conn_new_detached(f->srv);
        net__conn_feed(f->c, ok, cut);
        net__conn_feed(f->c, ok + cut, strlen(ok) - cut);
        assert_non_null(strstr(take(f), "HTTP/1.1 200 "));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_untrusted_peer_is_the_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trusted_proxy_rightmost_untrusted_hop, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cidr_bits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_bucket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tables_are_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_obs_fold_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
