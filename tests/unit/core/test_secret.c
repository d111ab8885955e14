/* Secrets (secret.h): files in the secrets directory with owner-only modes,
 * the environment as the fallback, `secret:NAME` option values resolved and
 * checked without ever appearing in a diagnostic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "chorus/config.h"
#include "chorus/secret.h"

#define HASH "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static char *make_dir(void)
{
    char *dir = strdup("/tmp/chorus-secret-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

static void put(const char *dir, const char *name, const char *value, mode_t mode)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(value, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void remove_dir(char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(dir);
}

/* All diagnostics joined, for substring checks. */
static const char *joined(const core_diags_t *d)
{
    static char out[4096];
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < d->len; i++) {
        char line[1024];
        used += (size_t)snprintf(out + used, sizeof(out) - used, "%s\n",
                                 core_diag_format(&d->items[i], line, sizeof(line)));
    }
    return out;
}

static void test_files_read_and_newline_stripped(void **state)
{
    char *dir = make_dir();
    put(dir, "TOKEN", "s3cret-value\r\n", 0600);
    put(dir, "RO", "read-only", 0400);
    put(dir, ".hidden", "x", 0644); /* dotfiles are not secrets */
    char sub[600];
    snprintf(sub, sizeof(sub), "%s/subdir", dir);
    assert_int_equal(mkdir(sub, 0755), 0); /* neither are directories */
    core_secrets_t *s;
    core_diags_t d;
    core_diags_init(&d);
    assert_int_equal(core_secrets_read(dir, &s, &d), 0);
    assert_int_equal(d.len, 0);
    assert_int_equal(core_secrets_count(s), 2);
    assert_string_equal(core_secrets_find(s, "TOKEN"), "s3cret-value");
    assert_string_equal(core_secrets_find(s, "RO"), "read-only");
    assert_null(core_secrets_find(s, ".hidden"));
    core_secrets_free(s);
    core_diags_dispose(&d);
    remove_dir(dir);
}

static void test_group_or_other_access_refused(void **state)
{
    static const mode_t modes[] = {0644, 0640, 0604, 0620, 0602, 0610};
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        char *dir = make_dir();
        put(dir, "GOOD", "fine", 0600);
        put(dir, "EXPOSED", "leaky-value", modes[i]);
        core_secrets_t *s = (core_secrets_t *)1;
        core_diags_t d;
        core_diags_init(&d);
        assert_int_equal(core_secrets_read(dir, &s, &d), CORE_ERR_DENIED);
        assert_null(s);
        assert_int_equal(d.len, 1);
        const char *msg = joined(&d);
        char want[600];
        snprintf(want, sizeof(want), "%s/EXPOSED: secret file has mode %04o", dir,
                 (unsigned)modes[i]);
        assert_non_null(strstr(msg, want));
        assert_null(strstr(msg, "leaky-value"));
        core_diags_dispose(&d);
        remove_dir(dir);
    }
}

static void test_environment_fallback_and_install(void **state)
{
    char *dir = make_dir();
    put(dir, "FROM_FILE", "file-value", 0600);
    setenv("FROM_FILE", "env-value", 1);
    setenv("FROM_ENV", "env-only", 1);
    core_secrets_t *s;
    core_diags_t d;
    core_diags_init(&d);
    assert_int_equal(core_secrets_read(dir, &s, &d), 0);
    core_secrets_install(s);
    assert_string_equal(core_secret_get("FROM_FILE"), "file-value"); /* the file wins */
    assert_string_equal(core_secret_get("FROM_ENV"), "env-only");
    assert_null(core_secret_get("NOWHERE_AT_ALL"));
    core_secrets_install(NULL);
    assert_string_equal(core_secret_get("FROM_FILE"), "env-value");
    unsetenv("FROM_FILE");
    unsetenv("FROM_ENV");
    core_diags_dispose(&d);
    remove_dir(dir);
}

static void test_config_secret_refs(void **state)
{
    char *dir = make_dir();
    put(dir, "ADMIN", "ops:" HASH "\n", 0600);
    put(dir, "BROKEN", "not-a-token-list", 0600);
    core_config_t cfg;
    core_config_defaults(&cfg);
    core_diags_t d;
    core_diags_init(&d);
    assert_int_equal(core_config_set(&cfg, "secrets_dir", dir, "test", &d), 0);
    assert_int_equal(core_config_set(&cfg, "admin.tokens", "secret:ADMIN", "test", &d), 0);
    setenv("CHAT_KEYS_ENV", "gw:" HASH, 1);
    assert_int_equal(core_config_set(&cfg, "chat.api_keys", "secret:CHAT_KEYS_ENV", "test", &d), 0);
    assert_int_equal(core_config_load_secrets(&cfg, &d), 0);
    assert_int_equal(d.len, 0);
    assert_string_equal(cfg.admin.tokens, "ops:" HASH);
    assert_string_equal(cfg.chat.api_keys, "gw:" HASH);

    /* A malformed secret: named, never shown; nothing installed. */
    assert_int_equal(core_config_set(&cfg, "admin.tokens", "secret:BROKEN", "test", &d), 0);
    assert_int_not_equal(core_config_load_secrets(&cfg, &d), 0);
    const char *msg = joined(&d);
    assert_non_null(strstr(msg, "secret BROKEN"));
    assert_non_null(strstr(msg, "value not shown"));
    assert_null(strstr(msg, "not-a-token-list"));
    core_diags_dispose(&d);

    /* A bad name is refused when the option is set; a literal is not echoed. */
    core_diags_init(&d);
    assert_int_not_equal(core_config_set(&cfg, "admin.tokens", "secret:a b", "test", &d), 0);
    assert_int_not_equal(core_config_set(&cfg, "chat.api_keys", "gw:" HASH "00", "test", &d), 0);
    msg = joined(&d);
    assert_null(strstr(msg, HASH));
    assert_null(strstr(msg, "a b"));
    core_diags_dispose(&d);
    unsetenv("CHAT_KEYS_ENV");
    core_secrets_install(NULL);
    core_config_dispose(&cfg);
    remove_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_read_and_newline_stripped),
        cmocka_unit_test(test_group_or_other_access_refused),
        cmocka_unit_test(test_environment_fallback_and_install),
        cmocka_unit_test(test_config_secret_refs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
