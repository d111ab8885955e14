/* Roles and the token forms: viewer < operator < admin, agent apart (only
 * agent routes take it, and admin there too); admin.tokens entries are
 * `name:role:sha256hex` or `name:sha256hex` (an admin); stored tokens are
 * identified like configured ones, and a revoked one is refused as such. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "chorus/admin.h"
#include "chorus/config.h"

/* sha256("ops-token"), sha256("ci-token") */
#define OPS_HASH "d9310c002af91822beb0b3487d8b04f85bf6bf1f8a5496bff7d35fc7c5a29def"
#define CI_HASH "948b8c2427cd29047839b8e4a27a08763f8befbafa86be5cce8e46217d75e58a"

static void test_role_order(void **state)
{
    (void)state;
    const admin_role_t V = ADMIN_ROLE_VIEWER, O = ADMIN_ROLE_OPERATOR, A = ADMIN_ROLE_ADMIN,
                       G = ADMIN_ROLE_AGENT, N = ADMIN_ROLE_NONE;
    /* have x need: viewer < operator < admin */
    assert_true(admin_role_allows(V, V));
    assert_false(admin_role_allows(V, O));
    assert_false(admin_role_allows(V, A));
    assert_true(admin_role_allows(O, V));
    assert_true(admin_role_allows(O, O));
    assert_false(admin_role_allows(O, A));
    assert_true(admin_role_allows(A, V));
    assert_true(admin_role_allows(A, O));
    assert_true(admin_role_allows(A, A));
    /* agent stands apart: only agent routes, where admin is accepted too */
    assert_false(admin_role_allows(G, V));
    assert_false(admin_role_allows(G, O));
    assert_false(admin_role_allows(G, A));
    assert_true(admin_role_allows(G, G));
    assert_true(admin_role_allows(A, G));
    assert_false(admin_role_allows(O, G));
    assert_false(admin_role_allows(V, G));
    /* no role allows nothing, and nothing is allowed to need no role */
    assert_false(admin_role_allows(N, V));
    assert_false(admin_role_allows(A, N));
}

static void test_role_names_round_trip(void **state)
{
    (void)state;
    for (int r = ADMIN_ROLE_VIEWER; r <= ADMIN_ROLE_AGENT; r++) {
        const char *name = admin_role_name((admin_role_t)r);
        assert_int_equal(admin_role_parse(name, strlen(name)), r);
    }
    assert_int_equal(admin_role_parse("root", 4), ADMIN_ROLE_NONE);
    assert_int_equal(admin_role_parse("admins", 6), ADMIN_ROLE_NONE);
    assert_int_equal(admin_role_parse("admin", 4), ADMIN_ROLE_NONE);
    assert_string_equal(admin_role_name(ADMIN_ROLE_NONE), "none");
}

static void test_config_form_parses(void **state)
{
    (void)state;
    admin_token_t t[4];
    size_t n = admin_tokens_parse("ops:operator:" OPS_HASH ",root:" CI_HASH, t, 4);
    assert_int_equal(n, 2);
    assert_string_equal(t[0].name, "ops");
    assert_int_equal(t[0].role, ADMIN_ROLE_OPERATOR);
    assert_int_equal(t[0].sha256[0], 0xd9);
    assert_int_equal(t[0].sha256[31], 0xef);
    assert_string_equal(t[1].name, "root");
    assert_int_equal(t[1].role, ADMIN_ROLE_ADMIN); /* name:sha256hex keeps meaning admin */
    assert_int_equal(admin_tokens_parse("", t, 4), 0);
    assert_int_equal(admin_tokens_parse(NULL, t, 4), 0);
    assert_int_equal(admin_tokens_parse("x:wizard:" OPS_HASH, t, 4), 0);
}

static void expect_config_error(const char *value, const char *why)
{
    core_config_t cfg;
    core_config_defaults(&cfg);
    core_diags_t diags;
    core_diags_init(&diags);
    assert_int_not_equal(core_config_set(&cfg, "admin.tokens", value, "test", &diags), 0);
    assert_true(diags.len > 0);
    char line[512];
    const char *msg = core_diag_format(&diags.items[0], line, sizeof(line));
    if (strstr(msg, why) == NULL)
        fail_msg("%s: wanted \"%s\" in \"%s\"", value, why, msg);
    core_diags_dispose(&diags);
    core_config_dispose(&cfg);
}

static void test_config_validator(void **state)
{
    (void)state;
    core_config_t cfg;
    core_config_defaults(&cfg);
    core_diags_t diags;
    core_diags_init(&diags);
    assert_int_equal(core_config_set(&cfg, "admin.tokens",
                                     "a:viewer:" OPS_HASH ",b:" CI_HASH ",c:agent:" CI_HASH, "test",
                                     &diags),
                     0);
    assert_int_equal(diags.len, 0);
    core_diags_dispose(&diags);
    core_config_dispose(&cfg);
    expect_config_error("a:wizard:" OPS_HASH, "viewer, operator, admin or agent");
    expect_config_error("a:viewer:" CI_HASH "0", "64 hex digits");
    expect_config_error(":viewer:" CI_HASH, "name:role:sha256hex");
    expect_config_error("a:viewer", "viewer, operator, admin or agent");
}

static void test_identify_configured_and_stored(void **state)
{
    (void)state;
    const char *conf = "ops:operator:" OPS_HASH;
    admin_token_t stored[2];
    memset(stored, 0, sizeof(stored));
    snprintf(stored[0].name, sizeof(stored[0].name), "ci");
    stored[0].role = ADMIN_ROLE_VIEWER;
    const char *ci_hex = CI_HASH;
    for (int i = 0; i < 32; i++) /* CI_HASH as bytes */
        sscanf(ci_hex + 2 * i, "%2hhx", &stored[0].sha256[i]);
    admin_identity_t who;
    core_err_t err = {0};
    assert_int_equal(admin_auth_identify(conf, stored, 1, "Bearer ops-token", &who, &err), 0);
    assert_string_equal(who.name, "ops");
    assert_int_equal(who.role, ADMIN_ROLE_OPERATOR);
    assert_int_equal(admin_auth_identify(conf, stored, 1, "Bearer ci-token", &who, &err), 0);
    assert_string_equal(who.name, "ci");
    assert_int_equal(who.role, ADMIN_ROLE_VIEWER);
    /* stored tokens alone are enough */
    assert_int_equal(admin_auth_identify("", stored, 1, "Bearer ci-token", &who, &err), 0);
    /* revoked: refused, and told apart from unknown */
    stored[0].revoked_us = 1;
    assert_int_equal(admin_auth_identify(conf, stored, 1, "Bearer ci-token", &who, &err),
                     CORE_ERR_DENIED);
    assert_non_null(strstr(err.msg, "revoked"));
    assert_int_equal(admin_auth_identify(conf, stored, 1, "Bearer nope", &who, &err),
                     CORE_ERR_DENIED);
    assert_non_null(strstr(err.msg, "unknown"));
    assert_int_equal(admin_auth_identify("", NULL, 0, "Bearer ops-token", &who, &err),
                     CORE_ERR_DENIED);
    assert_non_null(strstr(err.msg, "admin.tokens"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_role_order),
        cmocka_unit_test(test_role_names_round_trip),
        cmocka_unit_test(test_config_form_parses),
        cmocka_unit_test(test_config_validator),
        cmocka_unit_test(test_identify_configured_and_stored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
