/* The diffs recorded with new flow versions, on a real store: a change to
 * an environment, a rollout's promotion, a promotion after the environment
 * changed under the rollout, two changes racing on the thread pool, and a
 * load after staging was changed through the API each record exactly
 * runtime_diff() of the version they replaced (the thread pool computes
 * them; the loop only when the base changed meanwhile). A version the store
 * already has (a promotion of staging's, a rollout of it) is not diffed
 * again, nor one a rollback read back from it; one new to it is diffed once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "chorus/runtime.h"
#include "chorus/store.h"
#include "unit/runtime/runtime_test.h"

/* runtime_diff() counted: this definition stands in for the library's, and
 * the real one, compiled here under another name, does the work, so what is
 * recorded is unchanged. Calls come from the thread pool and the loop. */
#define runtime_diff real_runtime_diff
#include "runtime/runtime_diff.c"
#undef runtime_diff

static atomic_uint diffs_made;

char *runtime_diff(const char *a, size_t alen, const char *b, size_t blen, const char *name_a,
                   const char *name_b)
{
    atomic_fetch_add(&diffs_made, 1);
    return real_runtime_diff(a, alen, b, blen, name_a, name_b);
}

static char dir[64], flows[96], db_path[96];

/* A flow long enough for several hunks, with tag on two distant lines. */
static char *order_flow(const char *tag)
{
    core_buf_t b;
    core_buf_init(&b, 1 << 20);
    core_buf_printf(&b, "{\"name\": \"order\",\n \"description\": \"%s\",\n", tag);
    core_buf_append_str(&b, " \"intents\": {\"order\": {\"examples\": [\"I want to order\","
                            " \"place an order\", \"order something\", \"can I order food\"]}},\n"
                            " \"nodes\": {\n");
    for (int i = 0; i < 40; i++)
        core_buf_printf(&b,
                        "  \"n%d\": {\"type\": \"say\", \"message\": \"step %d\", \"next\": "
                        "\"n%d\"},\n",
                        i, i, i + 1);
    core_buf_printf(&b, "  \"n40\": {\"type\": \"end\", \"message\": \"ORDER %s\"}}}\n", tag);
    return core_buf_steal(&b, NULL);
}

static void write_file(const char *name, const char *text)
{
    rt_test_write(flows, name, text);
}

typedef struct ctx_s {
    uv_loop_t loop;
    store_t *store;
    runtime_t *rt;
    int loaded, rc;
} ctx_t;

static void on_loaded(runtime_t *rt, int rc, const core_diags_t *d, void *data)
{
    (void)rt, (void)d;
    ctx_t *c = data;
    c->loaded++;
    c->rc = rc;
}

static void wait_loaded(ctx_t *c, int n)
{
    while (c->loaded < n)
        uv_run(&c->loop, UV_RUN_ONCE);
    assert_int_equal(c->rc, 0);
}

static const char *version_of(ctx_t *c, const char *env, char *buf)
{
    runtime_flow_file_t f;
    assert_int_equal(runtime_env_file(c->rt, env, "order", &f), 0);
    snprintf(buf, 16, "%s", f.version);
    return buf;
}

typedef int (*rows_query_t)(store_db_t *db, const char *arg, int with_content, json_t **out,
                            core_err_t *err);

/* query(db, arg, with_content)'s rows once one of them is version (of flow,
 * when flow is not NULL) with its author: the store writes them after the
 * loop enqueued them, so the loop runs in between. Fails after 5 s. */
static json_t *rows_once(ctx_t *c, rows_query_t query, const char *arg, int with_content,
                         const char *flow, const char *version)
{
    for (int tries = 0; tries < 500; tries++) {
        uv_run(&c->loop, UV_RUN_NOWAIT);
        core_err_t err = {0};
        store_db_t *db = store_db_open(db_path, &err);
        assert_non_null(db);
        json_t *rows = NULL;
        int rc = query(db, arg, with_content, &rows, &err);
        store_db_close(db);
        size_t i;
        json_t *r;
        json_array_foreach(rc == 0 ? rows : NULL, i, r)
        {
            const char *f = json_string_value(json_object_get(r, "flow"));
            if (strcmp(json_string_value(json_object_get(r, "version")), version) == 0 &&
                (flow == NULL || (f != NULL && strcmp(f, flow) == 0)) &&
                json_string_value(json_object_get(r, "author")) != NULL)
                return rows;
        }
        json_decref(rows);
        usleep(10000);
    }
    fail_msg("%s: version %s never showed", arg, version);
    return NULL;
}

/* The recorded versions of "order" (with content) once version is among
 * them. */
static json_t *versions_with(ctx_t *c, const char *version)
{
    return rows_once(c, store_db_flow_versions, "order", 1, NULL, version);
}

/* Every recorded version's diff is runtime_diff() of the version it names
 * as its previous one (or of nothing); returns how many were checked. */
static size_t check_diffs(json_t *rows)
{
    size_t i, k, checked = 0;
    json_t *r, *p;
    json_array_foreach(rows, i, r)
    {
        const char *ver = json_string_value(json_object_get(r, "version"));
        const char *prev = json_string_value(json_object_get(r, "prev_version"));
        const char *content = json_string_value(json_object_get(r, "content"));
        const char *base = "";
        json_array_foreach(prev ? rows : NULL, k, p)
        {
            if (strcmp(json_string_value(json_object_get(p, "version")), prev) == 0)
                base = json_string_value(json_object_get(p, "content"));
        }
        char na[64], nb[64];
        snprintf(na, sizeof(na), "order@%s", prev ? prev : "none");
        snprintf(nb, sizeof(nb), "order@%s", ver);
        char *want = runtime_diff(base, strlen(base), content, strlen(content), na, nb);
        assert_string_equal(json_string_value(json_object_get(r, "diff")), want);
        assert_non_null(strstr(want, "@@ -"));
        free(want);
        checked++;
    }
    return checked;
}

static void start(ctx_t *c)
{
    memset(c, 0, sizeof(*c));
    uv_loop_init(&c->loop);
    store_options_t so = {.path = db_path};
    core_err_t err = {0};
    c->store = store_open(&c->loop, &so, &err);
    assert_non_null(c->store);
    runtime_options_t o = {
        .flows_dir = flows, .no_guard = 1, .production_promoted = 1, .store = c->store};
    assert_int_equal(runtime_new(&c->loop, &o, &c->rt, &err), 0);
    assert_int_equal(runtime_load(c->rt, on_loaded, c), 0);
    wait_loaded(c, 1);
}

static void stop(ctx_t *c)
{
    rt_test_close(&c->loop, c->rt, c->store);
}

static int apply(ctx_t *c, const char *tag)
{
    char *text = order_flow(tag);
    runtime_flow_file_t f = {"order", NULL, text, strlen(text), 0};
    core_err_t err = {0};
    int rc =
        runtime_env_apply(c->rt, RUNTIME_ENV_PRODUCTION, &f, 1, "t", "change", on_loaded, c, &err);
    free(text);
    return rc;
}

static void rollout(ctx_t *c, const char *id, const char *tag)
{
    char *text = order_flow(tag);
    runtime_rollout_t r = {id, RUNTIME_ENV_PRODUCTION, "order", NULL, text, strlen(text), 50};
    int before = c->loaded;
    assert_int_equal(runtime_rollout_start(c->rt, &r, on_loaded, c), 0);
    free(text);
    wait_loaded(c, before + 1);
}

static void test_recorded_diffs(void **state)
{
    (void)state;
    ctx_t c;
    start(&c);
    char v[16];
    /* A change: the version it makes is new, so its diff is stored. */
    assert_int_equal(apply(&c, "v2"), 0);
    wait_loaded(&c, 2);
    json_decref(versions_with(&c, version_of(&c, RUNTIME_ENV_PRODUCTION, v)));
    /* A rollout promoted: the candidate's diff was computed with its compile. */
    rollout(&c, "r1", "cand1");
    assert_int_equal(runtime_rollout_stop(c.rt, RUNTIME_ENV_PRODUCTION, "order", 1), 0);
    json_decref(versions_with(&c, version_of(&c, RUNTIME_ENV_PRODUCTION, v)));
    /* No change while a rollout runs: its candidate, built from the set it
     * began with, would undo it when promoted. */
    rollout(&c, "r2", "cand2");
    assert_int_equal(apply(&c, "v3"), CORE_ERR_EXISTS);
    assert_int_equal(runtime_rollout_stop(c.rt, RUNTIME_ENV_PRODUCTION, "order", 1), 0);
    json_decref(versions_with(&c, version_of(&c, RUNTIME_ENV_PRODUCTION, v)));
    /* One change at a time: the second, made to the set the first replaces,
     * is refused until the first is in force. */
    int before = c.loaded;
    assert_int_equal(apply(&c, "v4"), 0);
    assert_int_equal(apply(&c, "v5"), CORE_ERR_EXISTS);
    wait_loaded(&c, before + 1);
    assert_int_equal(apply(&c, "v5"), 0);
    wait_loaded(&c, before + 2);
    json_t *rows = versions_with(&c, version_of(&c, RUNTIME_ENV_PRODUCTION, v));
    size_t want = 6; /* the first load, v2, cand1, cand2, v4, v5 */
    for (int tries = 0; json_array_size(rows) < want && tries < 500; tries++) {
        json_decref(rows);
        rows = versions_with(&c, v);
    }
    assert_int_equal(json_array_size(rows), want);
    assert_int_equal(check_diffs(rows), want);
    json_decref(rows);
    stop(&c);
}

static void write_order(const char *tag)
{
    char *t = order_flow(tag);
    write_file("order.json", t);
    free(t);
}

static void load(ctx_t *c)
{
    int before = c->loaded;
    assert_int_equal(runtime_load(c->rt, on_loaded, c), 0);
    wait_loaded(c, before + 1);
}

/* Waits until the store says env runs version of "order", a version it
 * has a row for (the join gives its author). */
static void wait_env_runs(ctx_t *c, const char *env, const char *version)
{
    json_decref(rows_once(c, store_db_env_flows, env, 0, "order", version));
}

static void test_recorded_versions_not_diffed_again(void **state)
{
    (void)state;
    ctx_t c;
    start(&c); /* v1 in staging and production */
    char v2[16], v3[16], cand[16];
    unsigned made;
    core_err_t err = {0};
    /* A version new to the store is diffed once. */
    write_order("v2");
    made = atomic_load(&diffs_made);
    load(&c);
    assert_int_equal(atomic_load(&diffs_made) - made, 1);
    version_of(&c, RUNTIME_ENV_STAGING, v2);
    json_decref(versions_with(&c, v2));
    /* A rollout to production of the version staging runs (recorded by its
     * load), promoted: production's rows change, no diff is made. */
    made = atomic_load(&diffs_made);
    rollout(&c, "r1", "v2");
    assert_int_equal(runtime_rollout_stop(c.rt, RUNTIME_ENV_PRODUCTION, "order", 1), 0);
    assert_int_equal(atomic_load(&diffs_made) - made, 0);
    wait_env_runs(&c, RUNTIME_ENV_PRODUCTION, v2);
    /* A promotion of staging's new version: diffed by its load only. */
    write_order("v3");
    made = atomic_load(&diffs_made);
    load(&c);
    assert_int_equal(atomic_load(&diffs_made) - made, 1);
    version_of(&c, RUNTIME_ENV_STAGING, v3);
    made = atomic_load(&diffs_made);
    int before = c.loaded;
    assert_int_equal(
        runtime_env_promote(c.rt, NULL, NULL, 0, RUNTIME_ENV_PRODUCTION, "t", on_loaded, &c, &err),
        0);
    wait_loaded(&c, before + 1);
    assert_int_equal(atomic_load(&diffs_made) - made, 0);
    wait_env_runs(&c, RUNTIME_ENV_PRODUCTION, v3);
    /* A rollout candidate nothing runs yet is diffed, once, with its compile. */
    made = atomic_load(&diffs_made);
    rollout(&c, "r2", "cand");
    assert_int_equal(runtime_rollout_stop(c.rt, RUNTIME_ENV_PRODUCTION, "order", 1), 0);
    assert_int_equal(atomic_load(&diffs_made) - made, 1);
    version_of(&c, RUNTIME_ENV_PRODUCTION, cand);
    wait_env_runs(&c, RUNTIME_ENV_PRODUCTION, cand);
    /* Every version once, each with its diff against the one it followed. */
    json_t *rows = versions_with(&c, cand);
    assert_int_equal(json_array_size(rows), 4); /* v1, v2, v3, cand */
    assert_int_equal(check_diffs(rows), 4);
    json_decref(rows);
    stop(&c);
}

/* A rollback to a version read back from the store (as the admin API's
 * does), which neither environment runs: no diff is made, and production's
 * rows name it. */
static void test_rollback_from_store_not_diffed(void **state)
{
    (void)state;
    ctx_t c;
    start(&c); /* v1 in staging and production */
    char v2[16], v3[16];
    unsigned made = atomic_load(&diffs_made);
    assert_int_equal(apply(&c, "v2"), 0);
    wait_loaded(&c, 2);
    version_of(&c, RUNTIME_ENV_PRODUCTION, v2);
    assert_int_equal(apply(&c, "v3"), 0);
    wait_loaded(&c, 3);
    version_of(&c, RUNTIME_ENV_PRODUCTION, v3);
    assert_int_equal(atomic_load(&diffs_made) - made, 2);
    json_t *rows = versions_with(&c, v3);
    const char *content = NULL;
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "version")), v2) == 0)
            content = json_string_value(json_object_get(r, "content"));
    }
    assert_non_null(content);
    runtime_flow_file_t f = {"order", v2, content, strlen(content), 1};
    core_err_t err = {0};
    made = atomic_load(&diffs_made);
    assert_int_equal(runtime_env_apply(c.rt, RUNTIME_ENV_PRODUCTION, &f, 1, "t", "rollback",
                                       on_loaded, &c, &err),
                     0);
    json_decref(rows);
    wait_loaded(&c, 4);
    assert_int_equal(atomic_load(&diffs_made) - made, 0);
    wait_env_runs(&c, RUNTIME_ENV_PRODUCTION, v2);
    rows = versions_with(&c, v3);
    assert_int_equal(json_array_size(rows), 3); /* v1, v2, v3: the rollback adds none */
    assert_int_equal(check_diffs(rows), 3);
    json_decref(rows);
    stop(&c);
}

/* Staging changed through the API (a rollback there) since its last load:
 * the next load's new version is diffed against what staging ran, the
 * version its row names as previous. */
static void test_load_after_staging_change(void **state)
{
    (void)state;
    ctx_t c;
    start(&c);
    char *text = order_flow("rolled");
    runtime_flow_file_t f = {"order", NULL, text, strlen(text), 0};
    core_err_t err = {0};
    assert_int_equal(
        runtime_env_apply(c.rt, RUNTIME_ENV_STAGING, &f, 1, "t", "rollback", on_loaded, &c, &err),
        0);
    free(text);
    wait_loaded(&c, 2);
    write_order("v2");
    load(&c);
    char v[16];
    json_t *rows = versions_with(&c, version_of(&c, RUNTIME_ENV_STAGING, v));
    assert_int_equal(json_array_size(rows), 3); /* v1, rolled, v2 */
    assert_int_equal(check_diffs(rows), 3);
    json_decref(rows);
    stop(&c);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/chorus-rtvd-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(flows, sizeof(flows), "%s/flows", dir);
    snprintf(db_path, sizeof(db_path), "%s/chorus.db", dir);
    if (mkdir(flows, 0700) != 0)
        return -1;
    write_file("settings.json",
               "{\"settings\": {\"fallback_flow\": \"fallback\", \"confidence_threshold\": 0.3}}");
    write_file("fallback.json",
               "{\"name\": \"fallback\", \"nodes\": {\"s\": {\"type\": \"say\", \"message\": "
               "\"Sorry?\"}}}");
    write_order("v1");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_recorded_diffs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recorded_versions_not_diffed_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_from_store_not_diffed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_after_staging_change, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
