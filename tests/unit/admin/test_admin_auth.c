/* Admin bearer-token checks: the configured list holds SHA-256 hashes; a
 * token matches by its hash, any entry may match, and every refusal says
 * why without ever echoing the token. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "chorus/admin.h"

/* sha256("ops-token") and sha256("ci-token") */
#define OPS "ops:d9310c002af91822beb0b3487d8b04f85bf6bf1f8a5496bff7d35fc7c5a29def"
#define CI "ci:948b8c2427cd29047839b8e4a27a08763f8befbafa86be5cce8e46217d75e58a"

static char tokens[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tokens, sizeof(tokens), "%s,%s", OPS, CI);
    return 0;
}

static void test_valid_tokens_name_their_entry(void **state)
{
    (void)state;
    char name[32];
    core_err_t err = {0};
    assert_int_equal(admin_auth_check(tokens, "Bearer ops-token", name, sizeof(name), &err), 0);
    assert_string_equal(name, "ops");
    assert_int_equal(admin_auth_check(tokens, "bearer   ci-token", name, sizeof(name), &err), 0);
    assert_string_equal(name, "ci");
}

static void expect_denied(const char *list, const char *auth, const char *why)
{
    char name[32] = "";
    core_err_t err = {0};
    assert_int_equal(admin_auth_check(list, auth, name, sizeof(name), &err), CORE_ERR_DENIED);
    assert_non_null(strstr(err.msg, why));
    assert_null(strstr(err.msg, "token-x"));
    assert_string_equal(name, "");
}

static void test_refusals_say_why(void **state)
{
    (void)state;
    expect_denied(tokens, NULL, "missing");
    expect_denied(tokens, "Basic ops-token", "must be Bearer");
    expect_denied(tokens, "Bearertoken-x", "must be Bearer");
    expect_denied(tokens, "Bearer", "empty");
    expect_denied(tokens, "Bearer token-x", "unknown admin token");
    expect_denied(tokens, "Bearer ops-token ", "unknown admin token");
    expect_denied(tokens, "Bearer OPS-TOKEN", "unknown admin token");
    expect_denied("", "Bearer ops-token", "admin.tokens");
}

/* The hash itself presented as a token must not match. */
static void test_hash_is_not_the_token(void **state)
{
    (void)state;
    expect_denied(tokens, "Bearer d9310c002af91822beb0b3487d8b04f85bf6bf1f8a5496bff7d35fc7c5a29def",
                  "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_valid_tokens_name_their_entry, setup),
        cmocka_unit_test_setup(test_refusals_say_why, setup),
        cmocka_unit_test_setup(test_hash_is_not_the_token, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
