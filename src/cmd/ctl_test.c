/* chorusctl test [--flows DIR] [PATHS...]: runs conversation tests against
 * the flows in-process, on the same brain code as the daemon. Effects are
 * answered by the test's mocks, so no network is needed. Format:
 * docs/testing-flows.md. Prints one line per test and `N passed, M failed`. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd/ctl.h"
#include "cmd/ctl_common.h"

int ctl_test(int argc, char **argv);

#define DEFAULT_NOW "2026-11-29T10:00:00"
#define TEST_FILE_MAX_BYTES (16u << 20)

typedef struct run_s {
    const brain_flowset_t *fs;
    json_t *file_mocks; /* borrowed */
    json_t *mocks;      /* borrowed, the test's own */
    json_t *used;       /* counts of uses per mock, by pointer key */
    char why[1024];     /* first failure */
    int verbose;
} run_t;

static int fail(run_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(run_t *r, const char *fmt, ...)
{
    if (r->why[0] != '\0')
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof(r->why), fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- mocks -------------------------------------------------------------------------------- */

static int mock_matches(json_t *m, const brain_effect_t *e)
{
    const char *node = json_string_value(json_object_get(m, "node"));
    const char *url = json_string_value(json_object_get(m, "url_contains"));
    const char *method = json_string_value(json_object_get(m, "method"));
    if (node != NULL && (e->node == NULL || strcmp(node, e->node) != 0))
        return 0;
    if (url != NULL && strstr(e->url, url) == NULL)
        return 0;
    if (method != NULL && strcmp(method, e->method) != 0)
        return 0;
    return node != NULL || url != NULL || method != NULL;
}

static json_t *find_mock(run_t *r, const brain_effect_t *e)
{
    json_t *lists[2] = {r->mocks, r->file_mocks};
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; i < json_array_size(lists[l]); i++) {
            json_t *m = json_array_get(lists[l], i);
            char key[32];
            snprintf(key, sizeof(key), "%p", (void *)m);
            long long used = json_integer_value(json_object_get(r->used, key));
            json_t *times = json_object_get(m, "times");
            if (!mock_matches(m, e) || (times != NULL && used >= json_integer_value(times)))
                continue;
            json_object_set_new(r->used, key, json_integer(used + 1));
            return m;
        }
    return NULL;
}

/* Answers an effect from a mock; body_text is owned by the caller after. */
static int answer(run_t *r, const brain_effect_t *e, brain_effect_result_t *res, char **body_text)
{
    memset(res, 0, sizeof(*res));
    *body_text = NULL;
    json_t *m = find_mock(r, e);
    if (m == NULL)
        return fail(r, "no mock answers %s %s (node \"%s\")", e->method, e->url,
                    e->node ? e->node : "?");
    const char *expect_body = json_string_value(json_object_get(m, "expect_body_contains"));
    if (expect_body != NULL && (e->body == NULL || strstr(e->body, expect_body) == NULL))
        return fail(r, "request body of %s %s lacks \"%s\" (got %s)", e->method, e->url,
                    expect_body, e->body ? e->body : "no body");
    const char *err = json_string_value(json_object_get(m, "error"));
    if (err != NULL) {
        res->error = strcmp(err, "timeout") == 0 ? CORE_ERR_TIMEOUT : CORE_ERR_IO;
        res->error_text = err;
        return 0;
    }
    json_t *status = json_object_get(m, "status");
    res->status = status ? (int)json_integer_value(status) : 200;
    json_t *body = json_object_get(m, "body");
    if (json_is_string(body))
        *body_text = strdup(json_string_value(body));
    else if (body != NULL)
        *body_text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    res->content = json_string_value(json_object_get(m, "content"));
    res->prompt_tokens = (int)json_integer_value(json_object_get(m, "prompt_tokens"));
    res->completion_tokens = (int)json_integer_value(json_object_get(m, "completion_tokens"));
    res->body = *body_text;
    res->body_len = *body_text ? strlen(*body_text) : 0;
    return 0;
}

/* ---- expectations ------------------------------------------------------------------------- */

static int check_bot(run_t *r, int t, json_t *want, const brain_out_t *o)
{
    if (want == NULL)
        return 0;
    if (json_is_string(want)) {
        if (o->n_messages != 1 || strcmp(o->messages[0].text, json_string_value(want)) != 0)
            return fail(r, "turn %d: expected the bot to say \"%s\", got %zu message(s)%s%s%s", t,
                        json_string_value(want), o->n_messages, o->n_messages ? ": \"" : "",
                        o->n_messages ? o->messages[0].text : "", o->n_messages ? "\"" : "");
        return 0;
    }
    if (json_array_size(want) != o->n_messages)
        return fail(r, "turn %d: expected %zu bot message(s), got %zu%s%s%s", t,
                    json_array_size(want), o->n_messages, o->n_messages ? " (first: \"" : "",
                    o->n_messages ? o->messages[0].text : "", o->n_messages ? "\")" : "");
    for (size_t i = 0; i < o->n_messages; i++) {
        const char *w = json_string_value(json_array_get(want, i));
        if (w == NULL || strcmp(w, o->messages[i].text) != 0)
            return fail(r, "turn %d: message %zu: expected \"%s\", got \"%s\"", t, i + 1,
                        w ? w : "?", o->messages[i].text);
    }
    return 0;
}

static int check_contains(run_t *r, int t, json_t *want, const brain_out_t *o)
{
    json_t *list = json_is_string(want) ? json_pack("[O]", want) : json_incref(want);
    int rc = 0;
    for (size_t i = 0; i < json_array_size(list) && rc == 0; i++) {
        const char *w = json_string_value(json_array_get(list, i));
        int found = 0;
        for (size_t m = 0; w != NULL && m < o->n_messages && !found; m++)
            found = strstr(o->messages[m].text, w) != NULL;
        if (!found)
            rc = fail(r, "turn %d: no bot message contains \"%s\"%s%s%s", t, w ? w : "?",
                      o->n_messages ? " (first: \"" : " (no messages)",
                      o->n_messages ? o->messages[0].text : "", o->n_messages ? "\")" : "");
    }
    json_decref(list);
    return rc;
}

static int check_str(run_t *r, int t, const char *what, const char *w, const char *got)
{
    if ((w == NULL) != (got == NULL) || (w != NULL && strcmp(w, got) != 0))
        return fail(r, "turn %d: expected %s %s%s%s, got %s%s%s", t, what, w ? "\"" : "",
                    w ? w : "none", w ? "\"" : "", got ? "\"" : "", got ? got : "none",
                    got ? "\"" : "");
    return 0;
}

static int check_name(run_t *r, int t, const char *what, json_t *want, const char *got)
{
    return want == NULL ? 0 : check_str(r, t, what, json_string_value(want), got);
}

static int check_slots(run_t *r, int t, json_t *want, const brain_conv_t *c)
{
    const char *k;
    json_t *v;
    json_object_foreach(want, k, v)
    {
        const char *got = brain_conv_slot(c, k);
        const char *w = json_string_value(v);
        if ((w == NULL) != (got == NULL) || (w != NULL && strcmp(w, got) != 0))
            return fail(r, "turn %d: slot %s: expected %s%s%s, got %s%s%s", t, k, w ? "\"" : "",
                        w ? w : "unset", w ? "\"" : "", got ? "\"" : "", got ? got : "unset",
                        got ? "\"" : "");
    }
    return 0;
}

static const char *status_name(brain_status_t s)
{
    return s == BRAIN_ST_ENDED ? "ended" : s == BRAIN_ST_HANDOFF ? "handoff" : "active";
}

static int check_choices(run_t *r, int t, json_t *want, const brain_out_t *o)
{
    const brain_message_t *m = NULL;
    for (size_t i = 0; i < o->n_messages; i++)
        if (o->messages[i].n_choices > 0)
            m = &o->messages[i];
    size_t n = m ? m->n_choices : 0;
    if (json_array_size(want) != n)
        return fail(r, "turn %d: expected %zu choices, got %zu", t, json_array_size(want), n);
    for (size_t i = 0; i < n; i++) {
        const char *w = json_string_value(json_array_get(want, i));
        if (w == NULL || strcmp(w, m->choices[i].title) != 0)
            return fail(r, "turn %d: choice %zu: expected \"%s\", got \"%s\"", t, i + 1,
                        w ? w : "?", m->choices[i].title);
    }
    return 0;
}

static int check_turn(run_t *r, int t, json_t *turn, const brain_out_t *o, const brain_conv_t *c)
{
    json_t *h = json_object_get(turn, "handoff");
    json_t *status = json_object_get(turn, "status");
    int rc = check_bot(r, t, json_object_get(turn, "bot"), o);
    if (rc == 0 && json_object_get(turn, "bot_contains"))
        rc = check_contains(r, t, json_object_get(turn, "bot_contains"), o);
    if (rc == 0 && json_object_get(turn, "node"))
        rc = check_name(r, t, "node", json_object_get(turn, "node"), o->node);
    if (rc == 0 && json_object_get(turn, "flow"))
        rc = check_name(r, t, "flow", json_object_get(turn, "flow"), o->flow);
    if (rc == 0 && json_object_get(turn, "intent"))
        rc = check_name(r, t, "intent", json_object_get(turn, "intent"), o->intent);
    if (rc == 0 && status)
        rc = check_name(r, t, "status", status, status_name(o->status));
    if (rc == 0 && json_is_true(json_object_get(turn, "end")))
        rc = check_str(r, t, "status", "ended", status_name(o->status));
    if (rc == 0 && h != NULL) {
        rc = check_str(r, t, "status", "handoff", status_name(o->status));
        json_t *reason = json_is_object(h) ? json_object_get(h, "reason") : h;
        if (rc == 0 && json_is_string(reason))
            rc = check_name(r, t, "handoff reason", reason, o->handoff_reason);
        if (rc == 0 && json_is_object(h) && json_object_get(h, "queue"))
            rc = check_name(r, t, "handoff queue", json_object_get(h, "queue"), o->handoff_queue);
    }
    if (rc == 0 && json_object_get(turn, "slots"))
        rc = check_slots(r, t, json_object_get(turn, "slots"), c);
    if (rc == 0 && json_object_get(turn, "choices"))
        rc = check_choices(r, t, json_object_get(turn, "choices"), o);
    if (rc == 0 && json_object_get(turn, "csat") &&
        o->csat != json_integer_value(json_object_get(turn, "csat")))
        rc = fail(r, "turn %d: expected csat %lld, got %d", t,
                  json_integer_value(json_object_get(turn, "csat")), o->csat);
    return rc;
}

/* ---- one test ----------------------------------------------------------------------------- */

static int do_turn(run_t *r, int t, json_t *turn, brain_conv_t *c, brain_out_t *o, int64_t now)
{
    const char *user = json_string_value(json_object_get(turn, "user"));
    const char *event = json_string_value(json_object_get(turn, "event"));
    brain_input_t in;
    ctl_input_message(&in, user ? user : "", now);
    in.intent = json_string_value(json_object_get(turn, "payload_intent"));
    if (event != NULL && strcmp(event, "start") == 0)
        in.event = BRAIN_EV_START;
    else if (event != NULL && strcmp(event, "timeout") == 0)
        in.event = BRAIN_EV_TIMEOUT;
    else if (user == NULL)
        return fail(r, "turn %d: needs \"user\" or \"event\"", t);
    int rc = brain_turn(r->fs, c, &in, o);
    for (int effects = 0; rc == BRAIN_NEED_EFFECT && effects < 16; effects++) {
        brain_effect_result_t res;
        char *body = NULL;
        if (answer(r, &o->effect, &res, &body) != 0) {
            free(body);
            return -1;
        }
        if (r->verbose)
            printf("    effect %s %s -> %d\n", o->effect.method, o->effect.url, res.status);
        rc = brain_resume(r->fs, c, &res, o);
        free(body);
    }
    if (rc < 0)
        return fail(r, "turn %d: brain error %s", t, core_strerror(rc));
    if (rc != BRAIN_DONE)
        return fail(r, "turn %d: too many effects in one turn", t);
    if (r->verbose)
        for (size_t i = 0; i < o->n_messages; i++)
            printf("    bot> %s\n", o->messages[i].text);
    return check_turn(r, t, turn, o, c);
}

static int run_test(run_t *r, json_t *test)
{
    brain_channel_t ch = BRAIN_CH_DEFAULT;
    const char *chn = json_string_value(json_object_get(test, "channel"));
    if (chn != NULL && brain_channel_parse(chn, &ch) != 0)
        return fail(r, "unknown channel \"%s\"", chn);
    const char *nows = json_string_value(json_object_get(test, "now"));
    int64_t now = ctl_parse_time(nows ? nows : DEFAULT_NOW);
    if (now < 0)
        return fail(r, "bad \"now\" (use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS)");
    r->mocks = json_object_get(test, "mocks");
    brain_conv_t c;
    brain_conv_init(&c, r->fs, ch, now);
    brain_out_t o;
    brain_out_init(&o);
    json_t *turns = json_object_get(test, "turns");
    int rc = json_array_size(turns) ? 0 : fail(r, "a test needs a non-empty \"turns\" array");
    for (size_t i = 0; rc == 0 && i < json_array_size(turns); i++) {
        json_t *turn = json_array_get(turns, i);
        now += 1000000 * (json_integer_value(json_object_get(turn, "after_s")) + 1);
        rc = do_turn(r, (int)i + 1, turn, &c, &o, now);
    }
    brain_out_dispose(&o);
    brain_conv_dispose(&c);
    return rc;
}

static void run_file(const brain_flowset_t *fs, const char *path, int verbose, int *passed,
                     int *failed)
{
    char *text = NULL;
    size_t len = 0;
    core_err_t err = {0};
    if (core_file_read(path, TEST_FILE_MAX_BYTES, &text, &len, &err) != 0) {
        printf("FAIL %s\n", err.msg);
        (*failed)++;
        return;
    }
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr);
    if (root == NULL)
        printf("FAIL %s:%d:%d: %s\n", path, jerr.line, jerr.column, jerr.text);
    int bad = root == NULL || ctl_test_check(path, text, len, root) > 0;
    free(text);
    if (bad) { /* nothing in a file that does not check runs */
        (*failed)++;
        json_decref(root);
        return;
    }
    json_t *tests = json_object_get(root, "tests");
    for (size_t i = 0; i < json_array_size(tests); i++) {
        json_t *t = json_array_get(tests, i);
        const char *name = json_string_value(json_object_get(t, "name"));
        run_t r = {.fs = fs,
                   .file_mocks = json_object_get(root, "mocks"),
                   .used = json_object(),
                   .verbose = verbose};
        if (verbose)
            printf("  %s\n", name ? name : "?");
        int rc = run_test(&r, t);
        printf("%s %s: %s%s%s\n", rc == 0 ? "ok  " : "FAIL", path, name ? name : "(unnamed)",
               rc ? ": " : "", rc ? r.why : "");
        *(rc == 0 ? passed : failed) += 1;
        json_decref(r.used);
    }
    json_decref(root);
}

static void run_path(const brain_flowset_t *fs, const char *path, int verbose, int *passed,
                     int *failed)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        ctl_sources_t src;
        core_err_t err = {0};
        if (ctl_sources_read(path, &src, &err) != 0) {
            printf("FAIL %s\n", err.msg);
            (*failed)++;
            return;
        }
        for (size_t i = 0; i < src.n; i++)
            run_file(fs, src.items[i].name, verbose, passed, failed);
        ctl_sources_free(&src);
        return;
    }
    run_file(fs, path, verbose, passed, failed);
}

int ctl_test(int argc, char **argv)
{
    const char *flows = "flows";
    const char **paths = core_xcalloc((size_t)argc + 1, sizeof(*paths));
    int n_paths = 0, verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--flows") == 0 && i + 1 < argc) {
            flows = argv[++i];
        } else if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0) {
            verbose = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: chorusctl test [--flows DIR] [-v] [PATHS...]\n\n"
                   "Runs conversation tests (files, or directories of *.json; default\n"
                   "DIR/tests) against the flows in DIR (default \"flows\"). Format:\n"
                   "docs/testing-flows.md. Exits 1 if any test fails or none is found.\n");
            free(paths);
            return 0;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "chorusctl test: unknown option %s\n", argv[i]);
            free(paths);
            return 2;
        } else {
            paths[n_paths++] = argv[i];
        }
    }
    brain_flowset_t *fs;
    if (ctl_flowset_load(flows, 0, &fs) != 0) {
        free(paths);
        return 1;
    }
    char *def = core_xasprintf("%s/tests", flows);
    if (n_paths == 0)
        paths[n_paths++] = def;
    int passed = 0, failed = 0;
    for (int i = 0; i < n_paths; i++)
        run_path(fs, paths[i], verbose, &passed, &failed);
    printf("%d passed, %d failed\n", passed, failed);
    /* no test at all is a wrong path or an empty directory, never a pass:
     * `flows promote` gates on this exit code */
    if (passed + failed == 0)
        printf("FAIL no tests found in %s%s\n", paths[0],
               n_paths > 1 ? " and the other paths" : "");
    free(def);
    free(paths);
    brain_flowset_unref(fs);
    return failed || passed == 0 ? 1 : 0;
}
