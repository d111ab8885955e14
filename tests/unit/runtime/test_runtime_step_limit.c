/* A turn the brain stops at its step limit (one the validator cannot
 * foresee: it measures paths flow by flow, and this turn is over the limit
 * only through a `call`) is answered, and is recorded as a failed turn: the
 * bot's row carries error "step_limit" and chorus_turn_failures_total
 * counts it under kind="step_limit", as an action or LLM failure is. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jansson.h>

#include "chorus/runtime.h"
#include "chorus/store.h"
#include "stubs/stub_proc.h"
#include "unit/brain/test_flow_chain.h"
#include "unit/runtime/runtime_env.h"

/* Flow `name` (intent, when not NULL) of n set nodes in a row, the last
 * going on to next, or finishing the flow when next is "". */
static char *chain_flow(const char *name, const char *intent, int n, const char *next,
                        const char *more)
{
    core_buf_t b;
    core_buf_init(&b, 1 << 20);
    core_buf_printf(&b, "{\"name\": \"%s\", ", name);
    if (intent != NULL)
        core_buf_printf(&b, "\"intents\": {\"%s\": [\"spin please\"]}, ", intent);
    core_buf_printf(&b, "\"slots\": {\"n\": {\"type\": \"any\"}}, \"nodes\": {");
    test_flow_chain(&b, name, n, next);
    core_buf_printf(&b, "%s}}", more);
    size_t len;
    return core_buf_steal(&b, &len);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[640];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void test_step_limit_is_a_failed_turn(void **state)
{
    env_t e;
    env_start(&e);
    rec_t r;
    say(&e, "web:spin", "spin please", &r);
    assert_string_equal(r.text, "Sorry, something went wrong on our side, so I've stopped that. "
                                "What would you like to do?");
    assert_int_equal(r.status, BRAIN_ST_ACTIVE);
    json_t *t = transcript("web:spin");
    json_t *bot = json_array_get(json_object_get(t, "turns"), 1);
    assert_string_equal(json_string_value(json_object_get(bot, "error")), "step_limit");
    json_decref(t);
    core_buf_t m;
    core_buf_init(&m, 1 << 20);
    assert_int_equal(store_metrics_render(e.metrics, &m), 0);
    const char *line = strstr(m.data, "chorus_turn_failures_total{");
    assert_non_null(line);
    assert_non_null(strstr(line, "kind=\"step_limit\"} 1"));
    core_buf_dispose(&m);
    env_stop(&e);
    (void)state;
}

/* The example flows' directory is swapped for one of the test's own. */
static int setup(void **state)
{
    if (env_group_setup("rtsl") != 0)
        return -1;
    snprintf(flows_dir, sizeof(flows_dir), "%s/flows", tmpdir);
    if (mkdir(flows_dir, 0700) != 0)
        return -1;
    /* 40 nodes, a call of a flow of 40, and on: a turn of 81 nodes */
    char *spin = chain_flow("spin", "spin", 40, "sub",
                            ", \"sub\": {\"type\": \"call\", \"flow\": \"helper\"}");
    char *helper = chain_flow("helper", NULL, 40, "", "");
    write_file(flows_dir, "spin.json", spin);
    write_file(flows_dir, "helper.json", helper);
    free(helper);
    free(spin);
    (void)state;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_limit_is_a_failed_turn),
    };
    return cmocka_run_group_tests(tests, setup, env_group_teardown);
}
