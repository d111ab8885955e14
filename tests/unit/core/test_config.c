/* Config loading: defaults, every kind of error with its exact message and
 * position, overrides and reload decisions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "chorus/config.h"

static char *write_tmp(const char *text)
{
    char *path = strdup("/tmp/chorus-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

/* Loads text and returns the formatted diagnostics joined by '\n' (static). */
static const char *load_errors(const char *text, int *rc)
{
    static char out[4096];
    char *path = write_tmp(text);
    core_config_t cfg;
    core_config_defaults(&cfg);
    core_diags_t d;
    core_diags_init(&d);
    *rc = core_config_load(&cfg, path, &d);
    out[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < d.len; i++) {
        char line[1024], rel[1024];
        core_diag_format(&d.items[i], line, sizeof(line));
        /* replace the temp path with "cfg" for stable comparisons */
        snprintf(rel, sizeof(rel), "cfg%s", line + strlen(path));
        used += (size_t)snprintf(out + used, sizeof(out) - used, "%s%s", i ? "\n" : "", rel);
    }
    core_diags_dispose(&d);
    core_config_dispose(&cfg);
    unlink(path);
    free(path);
    return out;
}

static void test_defaults(void **state)
{
    core_config_t cfg;
    core_config_defaults(&cfg);
    assert_string_equal(cfg.listen, "127.0.0.1:8080");
    assert_string_equal(cfg.data_dir, "var");
    assert_string_equal(cfg.flows_dir, "flows");
    assert_int_equal(cfg.http.max_body_bytes, 1024 * 1024);
    core_config_dispose(&cfg);
}

static void test_valid_file(void **state)
{
    char *path = write_tmp("{\"listen\": \"0.0.0.0:9000\", \"http\": {\"max_headers\": 50}}");
    core_config_t cfg;
    core_config_defaults(&cfg);
    core_diags_t d;
    core_diags_init(&d);
    assert_int_equal(core_config_load(&cfg, path, &d), 0);
    assert_int_equal(d.len, 0);
    assert_string_equal(cfg.listen, "0.0.0.0:9000");
    assert_int_equal(cfg.http.max_headers, 50);
    assert_int_equal(cfg.http.max_header_bytes, 16384); /* default kept */
    assert_string_equal(cfg.file, path);
    core_config_dispose(&cfg);
    core_diags_dispose(&d);
    unlink(path);
    free(path);
}

static void test_unknown_key(void **state)
{
    int rc;
    const char *e = load_errors("{\n  \"http\": {\n    \"max_bodyy\": 5\n  }\n}", &rc);
    assert_int_equal(rc, CORE_ERR_INVALID);
    assert_string_equal(e, "cfg:3:18: http.max_bodyy: unknown key");
}

static void test_out_of_range(void **state)
{
    int rc;
    const char *e = load_errors("{\"http\": {\"max_headers\": 70000}}", &rc);
    assert_int_equal(rc, CORE_ERR_INVALID);
    assert_string_equal(e, "cfg:1:26: http.max_headers: must be 8-1000 (got 70000)");
}

/* chat.max_followers: 8 by default, 1-1000, and a value outside names the
 * option (in a file and from --set). */
static void test_chat_max_followers(void **state)
{
    core_config_t cfg;
    core_config_defaults(&cfg);
    assert_int_equal(cfg.chat.max_followers, 8);
    core_config_dispose(&cfg);
    int rc;
    const char *e = load_errors("{\"chat\": {\"max_followers\": 0}}", &rc);
    assert_int_equal(rc, CORE_ERR_INVALID);
    assert_string_equal(e, "cfg:1:28: chat.max_followers: must be 1-1000 (got 0)");
    e = load_errors("{\"chat\": {\"max_followers\": 1001}}", &rc);
    assert_int_equal(rc, CORE_ERR_INVALID);
    assert_string_equal(e, "cfg:1:28: chat.max_followers: must be 1-1000 (got 1001)");
    e = load_errors("{\"chat\": {\"max_followers\": 1000}}", &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(e, "");
    core_config_defaults(&cfg);
    core_diags_t d;
    core_diags_init(&d);
    assert_int_equal(core_config_set(&cfg, "chat.max_followers", "1", "--set", &d), 0);
    assert_int_equal(cfg.chat.max_followers, 1);
    assert_int_equal(core_config_set(&cfg, "chat.max_followers", "1001", "--set", &d),
                     CORE_ERR_INVALID);
    assert_int_equal(d.len, 1);
    char line[512];
    assert_string_equal(core_diag_format(&d.items[0], line, sizeof(line)),
                        "--set: chat.max_followers: must be 1-1000 (got 1001)");
    core_diags_dispose(&d);
    core_config_dispose(&cfg);
}

static void test_wrong_types_all_reported(void **state)
{
    int rc;
    const char *e =
        load_errors("{\"listen\": 8080,\n \"http\": 3,\n \"log_level\": \"loud\"}", &rc);
    assert_int_equal(rc, CORE_ERR_INVALID);
    assert_non_null(strstr(e, "cfg:1:12: listen: must be a string"));
    assert_non_null(strstr(e, "cfg:2:10: http: must be an object"));
    assert_non_null(
        strstr(e, "cfg:3:15: log_level: must be one of error|warn|info|debug (got \"loud\")"));
}

static void test_bad_listen(void **state)
{
    int rc;
    const char *e = load_errors("{\"listen\": \"localhost:99999\"}", &rc);
    assert_int_equal(rc, CORE_ERR_INVALID);
    assert_string_equal(e, "cfg:1:12: listen: must be ADDR:PORT with a port 0-65535, such as "
                           "127.0.0.1:8080 (got \"localhost:99999\")");
}

static void test_syntax_error(void **state)
{
    int rc;
    const char *e = load_errors("{\"listen\": \"x:1\",,}", &rc);
    assert_int_equal(rc, CORE_ERR_INVALID);
    assert_non_null(strstr(e, "cfg:1:18: "));
}

static void test_duplicate_key(void **state)
{
    int rc;
    const char *e = load_errors("{\"listen\": \"x:1\", \"listen\": \"y:2\"}", &rc);
    assert_int_equal(rc, CORE_ERR_INVALID);
    assert_non_null(strstr(e, "cfg:1:29: listen: duplicate key"));
    /* said with its path, and the other problems are still found */
    e = load_errors("{\"http\": {\"max_headers\": 100000},\n \"log_level\": \"loud\",\n"
                    " \"http\": {\"max_headers\": 100000}}",
                    &rc);
    assert_int_equal(rc, CORE_ERR_INVALID);
    assert_non_null(strstr(e, "cfg:3:10: http: duplicate key"));
    assert_non_null(strstr(e, "http.max_headers: must be 8-1000"));
    assert_non_null(strstr(e, "log_level: must be one of"));
}

static void test_not_object(void **state)
{
    int rc;
    const char *e = load_errors("[1, 2]", &rc);
    assert_int_equal(rc, CORE_ERR_INVALID);
    assert_string_equal(e, "cfg:1:1: the configuration must be a JSON object");
}

static void test_missing_file(void **state)
{
    core_config_t cfg;
    core_config_defaults(&cfg);
    core_diags_t d;
    core_diags_init(&d);
    assert_int_equal(core_config_load(&cfg, "/nonexistent/chorusd.json", &d), CORE_ERR_IO);
    assert_int_equal(d.len, 1);
    char line[512];
    assert_string_equal(core_diag_format(&d.items[0], line, sizeof(line)),
                        "/nonexistent/chorusd.json: cannot open: No such file or directory");
    core_diags_dispose(&d);
    core_config_dispose(&cfg);
}

static void test_override(void **state)
{
    core_config_t cfg;
    core_config_defaults(&cfg);
    core_diags_t d;
    core_diags_init(&d);
    assert_int_equal(core_config_set(&cfg, "listen", "127.0.0.1:0", "--listen", &d), 0);
    assert_string_equal(cfg.listen, "127.0.0.1:0");
    assert_int_equal(core_config_set(&cfg, "listen", "nope", "--listen", &d), CORE_ERR_INVALID);
    assert_int_equal(core_config_set(&cfg, "http.max_headers", "x", "--set", &d), CORE_ERR_INVALID);
    assert_int_equal(d.len, 2);
    char line[512];
    assert_string_equal(core_diag_format(&d.items[1], line, sizeof(line)),
                        "--set: http.max_headers: must be an integer (got \"x\")");
    core_diags_dispose(&d);
    core_config_dispose(&cfg);
}

static void test_restart_needed(void **state)
{
    core_config_t a, b;
    core_config_defaults(&a);
    core_config_defaults(&b);
    char out[256];
    assert_int_equal(core_config_restart_needed(&a, &b, out, sizeof(out)), 0);
    core_diags_t d;
    core_diags_init(&d);
    core_config_set(&b, "listen", "127.0.0.1:9", "t", &d);
    core_config_set(&b, "http.max_headers", "9", "t", &d); /* reloadable */
    assert_int_equal(core_config_restart_needed(&a, &b, out, sizeof(out)), 1);
    assert_string_equal(out, "listen");
    core_diags_dispose(&d);
    core_config_dispose(&a);
    core_config_dispose(&b);
}

static void test_parse_listen(void **state)
{
    char host[64];
    int port;
    assert_int_equal(core_config_parse_listen("[::1]:80", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 80);
    assert_int_equal(core_config_parse_listen(":80", host, sizeof(host), &port), CORE_ERR_INVALID);
    assert_int_equal(core_config_parse_listen("a:", host, sizeof(host), &port), CORE_ERR_INVALID);
    assert_int_equal(core_config_parse_listen("a:-1", host, sizeof(host), &port), CORE_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_valid_file),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_wrong_types_all_reported),
        cmocka_unit_test(test_bad_listen),
        cmocka_unit_test(test_syntax_error),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_not_object),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_override),
        cmocka_unit_test(test_restart_needed),
        cmocka_unit_test(test_parse_listen),
        cmocka_unit_test(test_chat_max_followers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
