/* The router: literal and {param} matching, precedence, 404, 405 with its
 * Allow list, HEAD on GET routes, WebSocket routes and bad patterns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "chorus/net.h"

static void h_a(net_req_t *req, void *data)
{
}

static void h_b(net_req_t *req, void *data)
{
}

static void ws_msg(net_ws_t *ws, int binary, const char *data, size_t len)
{
}

static int match(net_router_t *r, const char *method, const char *path, net_match_t *m)
{
    return net_router_match(r, method, path, strlen(path), m);
}

static void assert_param(const net_match_t *m, size_t i, const char *name, const char *value)
{
    assert_true(i < m->nparams);
    assert_int_equal(m->params[i].name_len, strlen(name));
    assert_memory_equal(m->params[i].name, name, strlen(name));
    assert_int_equal(m->params[i].value_len, strlen(value));
    assert_memory_equal(m->params[i].value, value, strlen(value));
}

static net_router_t *sample(void)
{
    net_router_t *r = net_router_new();
    core_err_t err = {0};
    assert_int_equal(net_router_add(r, "GET", "/healthz", h_a, (void *)1, &err), 0);
    assert_int_equal(
        net_router_add(r, "POST", "/v1/chat/conversations/{id}/messages", h_a, (void *)2, &err), 0);
    assert_int_equal(
        net_router_add(r, "GET", "/v1/chat/conversations/{id}/messages", h_b, (void *)3, &err), 0);
    assert_int_equal(net_router_add(r, "GET", "/v1/chat/conversations/{id}", h_b, (void *)4, &err),
                     0);
    /* registered after the parameter route, still wins for its literal */
    assert_int_equal(
        net_router_add(r, "GET", "/v1/chat/conversations/search", h_a, (void *)5, &err), 0);
    assert_int_equal(net_router_add(r, "GET", "/", h_a, (void *)6, &err), 0);
    assert_int_equal(net_router_add(r, "GET", "/a/{x}/b/{y}", h_a, (void *)7, &err), 0);
    return r;
}

static void test_literal_and_params(void **state)
{
    net_router_t *r = sample();
    net_match_t m;
    assert_int_equal(match(r, "GET", "/healthz", &m), 0);
    assert_int_equal(m.nparams, 0);
    assert_int_equal(match(r, "POST", "/v1/chat/conversations/c-42/messages", &m), 0);
    assert_int_equal(m.nparams, 1);
    assert_param(&m, 0, "id", "c-42");
    assert_int_equal(match(r, "GET", "/v1/chat/conversations/c-42/messages", &m), 0);
    assert_int_equal(match(r, "GET", "/a/1/b/two%20x", &m), 0);
    assert_int_equal(m.nparams, 2);
    assert_param(&m, 0, "x", "1");
    assert_param(&m, 1, "y", "two%20x");
    assert_int_equal(match(r, "GET", "/", &m), 0);
    net_router_free(r);
}

static void test_literal_beats_param(void **state)
{
    net_router_t *r = sample();
    net_match_t m;
    assert_int_equal(match(r, "GET", "/v1/chat/conversations/search", &m), 0);
    assert_int_equal(m.nparams, 0);
    assert_int_equal(match(r, "GET", "/v1/chat/conversations/other", &m), 0);
    assert_int_equal(m.nparams, 1);
    assert_param(&m, 0, "id", "other");
    net_router_free(r);
}

/* Routes whose literal beginnings differ only in their first bytes or only
 * in their last ones, each longer and shorter than the 8-byte word the
 * router compares first. */
static void test_literal_beginnings(void **state)
{
    net_router_t *r = net_router_new();
    core_err_t err = {0};
    const char *pats[] = {"/v1/admin/flows", "/v2/admin/flows", "/v1/admin/flowz",
                          "/v1/x/{id}",      "/v1/y/{id}",      "/q/{id}"};
    /* each route has a method of its own ("MA", "MB", ...): a path that
     * matched another route's pattern would answer 405 */
    char methods[6][3];
    for (size_t i = 0; i < 6; i++) {
        snprintf(methods[i], sizeof(methods[i]), "M%c", (char)('A' + i));
        assert_int_equal(net_router_add(r, methods[i], pats[i], h_a, NULL, &err), 0);
    }
    net_match_t m;
    for (size_t i = 0; i < 6; i++) {
        char path[64];
        snprintf(path, sizeof(path), "%.*s", (int)strcspn(pats[i], "{"), pats[i]);
        if (strchr(pats[i], '{') != NULL)
            strcat(path, "abc");
        assert_int_equal(match(r, methods[i], path, &m), 0);
        assert_int_equal(m.nparams, strchr(pats[i], '{') != NULL);
    }
    const char *missing[] = {"/v3/admin/flows",
                             "/v1/admin/flow",
                             "/v1/admin/flowsx",
                             "/w1/admin/flows",
                             "/v1/z/abc",
                             "/v1/x",
                             "/q",
                             "/r/abc",
                             "/v1/admin/Flows"};
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++)
        assert_int_equal(match(r, "MA", missing[i], &m), CORE_ERR_NOT_FOUND);
    net_router_free(r);
}

static void test_not_found(void **state)
{
    net_router_t *r = sample();
    net_match_t m;
    const char *paths[] = {"/healthz/",
                           "/healthzz",
                           "/v1/chat/conversations//messages",
                           "/v1/chat/conversations/1/messages/2",
                           "/a/1/b",
                           "",
                           "healthz",
                           "/v1/chat"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        assert_int_equal(match(r, "GET", paths[i], &m), CORE_ERR_NOT_FOUND);
        assert_null(m.route);
    }
    net_router_free(r);
}

/* Routes are looked up among those with as many segments as the path; the
 * longest share one list, where the walk still decides. */
static void test_segment_counts(void **state)
{
    net_router_t *r = sample();
    core_err_t err = {0};
    const char *long15 = "/s/1/2/3/4/5/6/7/8/9/10/11/12/13/{a}";
    const char *long16 = "/s/1/2/3/4/5/6/7/8/9/10/11/12/13/14/{b}";
    const char *long18 = "/s/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/{c}";
    assert_int_equal(net_router_add(r, "GET", long15, h_a, (void *)15, &err), 0);
    assert_int_equal(net_router_add(r, "GET", long16, h_a, (void *)16, &err), 0);
    assert_int_equal(net_router_add(r, "GET", long18, h_a, (void *)18, &err), 0);
    assert_int_equal(net_router_add(r, "GET", "/", h_b, (void *)1, &err), CORE_ERR_EXISTS);
    net_match_t m;
    assert_int_equal(match(r, "GET", "/s/1/2/3/4/5/6/7/8/9/10/11/12/13/v", &m), 0);
    assert_param(&m, 0, "a", "v");
    assert_int_equal(match(r, "GET", "/s/1/2/3/4/5/6/7/8/9/10/11/12/13/14/v", &m), 0);
    assert_param(&m, 0, "b", "v");
    assert_int_equal(match(r, "GET", "/s/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/v", &m), 0);
    assert_param(&m, 0, "c", "v");
    assert_int_equal(match(r, "GET", "/s/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/v", &m),
                     CORE_ERR_NOT_FOUND);
    assert_int_equal(match(r, "GET", "/s/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/v/", &m),
                     CORE_ERR_NOT_FOUND);
    assert_int_equal(match(r, "POST", "/s/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/v", &m),
                     CORE_ERR_UNSUPPORTED);
    assert_string_equal(m.allow, "GET, HEAD");
    /* one, two and four segments, each in its own list */
    assert_int_equal(match(r, "GET", "/", &m), 0);
    assert_int_equal(m.nparams, 0);
    assert_int_equal(match(r, "GET", "/healthz", &m), 0);
    assert_int_equal(m.nparams, 0);
    assert_int_equal(match(r, "GET", "/a/1/b/2", &m), 0);
    assert_param(&m, 1, "y", "2");
    net_router_free(r);
}

static void test_method_not_allowed(void **state)
{
    net_router_t *r = sample();
    net_match_t m;
    assert_int_equal(match(r, "DELETE", "/v1/chat/conversations/7/messages", &m),
                     CORE_ERR_UNSUPPORTED);
    assert_string_equal(m.allow, "POST, GET, HEAD");
    assert_int_equal(match(r, "POST", "/healthz", &m), CORE_ERR_UNSUPPORTED);
    assert_string_equal(m.allow, "GET, HEAD");
    net_router_free(r);
}

static void test_head_uses_get(void **state)
{
    net_router_t *r = sample();
    net_match_t m;
    assert_int_equal(match(r, "HEAD", "/healthz", &m), 0);
    assert_non_null(m.route);
    net_router_free(r);
}

static void test_ws_route(void **state)
{
    net_router_t *r = net_router_new();
    net_ws_callbacks_t cb = {.on_message = ws_msg};
    core_err_t err = {0};
    assert_int_equal(net_router_add_ws(r, "/v1/web/{site}/ws", &cb, NULL, &err), 0);
    net_match_t m;
    assert_int_equal(match(r, "GET", "/v1/web/shop/ws", &m), 0);
    assert_param(&m, 0, "site", "shop");
    assert_int_equal(match(r, "POST", "/v1/web/shop/ws", &m), CORE_ERR_UNSUPPORTED);
    net_ws_callbacks_t none = {0};
    assert_int_equal(net_router_add_ws(r, "/x", &none, NULL, &err), CORE_ERR_INVALID);
    net_router_free(r);
}

static void test_bad_patterns(void **state)
{
    net_router_t *r = net_router_new();
    core_err_t err = {0};
    assert_int_equal(net_router_add(r, "GET", "healthz", h_a, NULL, &err), CORE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "must start with '/'"));
    assert_int_equal(net_router_add(r, "GET", "/a/{}", h_a, NULL, &err), CORE_ERR_INVALID);
    assert_int_equal(net_router_add(r, "GET", "/a/x{y}", h_a, NULL, &err), CORE_ERR_INVALID);
    assert_int_equal(net_router_add(r, "get", "/a", h_a, NULL, &err), CORE_ERR_INVALID);
    assert_int_equal(net_router_add(r, "GET", "/a?b", h_a, NULL, &err), CORE_ERR_INVALID);
    assert_int_equal(
        net_router_add(r, "GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", h_a, NULL, &err),
        CORE_ERR_INVALID);
    assert_int_equal(net_router_add(r, "GET", "/a/{id}", h_a, NULL, &err), 0);
    assert_int_equal(net_router_add(r, "GET", "/a/{other}", h_b, NULL, &err), CORE_ERR_EXISTS);
    assert_int_equal(net_router_add(r, "PUT", "/a/{other}", h_b, NULL, &err), 0);
    net_router_free(r);
    net_router_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_and_params), cmocka_unit_test(test_literal_beats_param),
        cmocka_unit_test(test_literal_beginnings), cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_segment_counts),     cmocka_unit_test(test_method_not_allowed),
        cmocka_unit_test(test_head_uses_get),      cmocka_unit_test(test_ws_route),
        cmocka_unit_test(test_bad_patterns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
