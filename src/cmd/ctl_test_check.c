/* A conversation-test file's shape, checked before any test in it runs
 * (docs/testing-flows.md): every key is one the runner reads and every value
 * has the type it is read as. Without this a mistyped expectation
 * ("stauts": "ended") or a slot expected as a number checked nothing and
 * the test passed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/ctl_common.h"

typedef ctl_check_t check_t;

static void problem(check_t *c, const char *path, const char *msg)
{
    ctl_check_problem(c, path, msg);
}

/* Every key of o is one of known. */
static void known_keys(check_t *c, const json_t *o, const char *path, const char *const *known)
{
    ctl_check_known_keys(c, o, path, known, "unknown key (a typo would check nothing)");
}

static int is_string_list(const json_t *v)
{
    if (!json_is_array(v))
        return 0;
    for (size_t i = 0; i < json_array_size(v); i++)
        if (!json_is_string(json_array_get(v, i)))
            return 0;
    return 1;
}

static int one_of(const json_t *v, const char *const *values)
{
    for (size_t i = 0; json_is_string(v) && values[i] != NULL; i++)
        if (strcmp(json_string_value(v), values[i]) == 0)
            return 1;
    return 0;
}

/* o[key], when present, passes ok; else msg at its path. */
static void want(check_t *c, const json_t *o, const char *path, const char *key,
                 int (*ok)(const json_t *), const char *msg)
{
    const json_t *v = json_object_get(o, key);
    if (v != NULL && !ok(v)) {
        char *p = core_jsonpath_key(path, key);
        problem(c, p, msg);
        free(p);
    }
}

static int is_string(const json_t *v)
{
    return json_is_string(v);
}

static int is_string_or_null(const json_t *v)
{
    return json_is_string(v) || json_is_null(v);
}

static int is_bool(const json_t *v)
{
    return json_is_boolean(v);
}

static int is_text_or_list(const json_t *v)
{
    return json_is_string(v) || is_string_list(v);
}

static int is_count(const json_t *v)
{
    return json_is_integer(v) && json_integer_value(v) >= 0;
}

static int is_status(const json_t *v)
{
    static const char *const s[] = {"active", "ended", "handoff", NULL};
    return one_of(v, s);
}

static int is_event(const json_t *v)
{
    static const char *const s[] = {"start", "timeout", NULL};
    return one_of(v, s);
}

static int is_csat(const json_t *v)
{
    return json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= 5;
}

static int is_handoff(const json_t *v)
{
    if (json_is_string(v) || json_is_true(v))
        return 1;
    if (!json_is_object(v))
        return 0;
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x)
    {
        if ((strcmp(k, "reason") != 0 && strcmp(k, "queue") != 0) || !json_is_string(x))
            return 0;
    }
    return 1;
}

static int is_http_status(const json_t *v)
{
    return json_is_integer(v) && json_integer_value(v) >= 100 && json_integer_value(v) <= 599;
}

static int is_mock_error(const json_t *v)
{
    static const char *const s[] = {"timeout", "connect", NULL};
    return one_of(v, s);
}

static void check_slots(check_t *c, const json_t *turn, const char *path)
{
    const json_t *slots = json_object_get(turn, "slots");
    char *sp = core_jsonpath_key(path, "slots");
    const char *k;
    json_t *v;
    if (slots != NULL && !json_is_object(slots))
        problem(c, sp, "must be an object of slot: value (null: unset)");
    json_object_foreach((json_t *)slots, k, v)
    {
        if (!is_string_or_null(v)) {
            char *p = core_jsonpath_key(sp, k);
            problem(c, p, "a slot's value is a string (null: unset)");
            free(p);
        }
    }
    free(sp);
}

static void check_turn(check_t *c, const json_t *turn, const char *path)
{
    static const char *const keys[] = {
        "user", "payload_intent", "event", "after_s", "bot", "bot_contains", "choices", "intent",
        "flow", "node",           "slots", "status",  "end", "handoff",      "csat",    NULL};
    if (!json_is_object(turn)) {
        problem(c, path, "a turn is an object");
        return;
    }
    known_keys(c, turn, path, keys);
    if (json_object_get(turn, "user") == NULL && json_object_get(turn, "event") == NULL)
        problem(c, path, "a turn needs \"user\" or \"event\"");
    want(c, turn, path, "user", is_string, "must be a string");
    want(c, turn, path, "payload_intent", is_string, "must be a string");
    want(c, turn, path, "event", is_event, "must be \"start\" or \"timeout\"");
    want(c, turn, path, "after_s", is_count, "must be a whole number of seconds");
    want(c, turn, path, "bot", is_text_or_list, "must be a string or an array of strings");
    want(c, turn, path, "bot_contains", is_text_or_list, "must be a string or an array of strings");
    want(c, turn, path, "choices", is_string_list, "must be an array of strings");
    want(c, turn, path, "intent", is_string_or_null, "must be a string or null");
    want(c, turn, path, "flow", is_string_or_null, "must be a string or null");
    want(c, turn, path, "node", is_string_or_null, "must be a string or null");
    want(c, turn, path, "status", is_status, "must be \"active\", \"ended\" or \"handoff\"");
    want(c, turn, path, "end", is_bool, "must be true or false");
    want(c, turn, path, "handoff", is_handoff,
         "must be a reason, true, or {\"reason\", \"queue\"} with strings");
    want(c, turn, path, "csat", is_csat, "must be a rating from 1 to 5");
    check_slots(c, turn, path);
}

static void check_mocks(check_t *c, const json_t *o, const char *parent)
{
    static const char *const keys[] = {
        "node", "url_contains", "method",  "times",         "expect_body_contains", "status",
        "body", "error",        "content", "prompt_tokens", "completion_tokens",    NULL};
    const json_t *mocks = json_object_get(o, "mocks");
    char *mp = core_jsonpath_key(parent, "mocks");
    if (mocks != NULL && !json_is_array(mocks))
        problem(c, mp, "must be an array of mocks");
    for (size_t i = 0; i < json_array_size(mocks); i++) {
        const json_t *m = json_array_get(mocks, i);
        char *p = core_jsonpath_index(mp, i);
        if (!json_is_object(m)) {
            problem(c, p, "a mock is an object");
        } else {
            known_keys(c, m, p, keys);
            want(c, m, p, "node", is_string, "must be a string");
            want(c, m, p, "url_contains", is_string, "must be a string");
            want(c, m, p, "method", is_string, "must be a string");
            want(c, m, p, "expect_body_contains", is_string, "must be a string");
            want(c, m, p, "content", is_string, "must be a string");
            want(c, m, p, "times", is_count, "must be a whole number");
            want(c, m, p, "prompt_tokens", is_count, "must be a whole number");
            want(c, m, p, "completion_tokens", is_count, "must be a whole number");
            want(c, m, p, "status", is_http_status, "must be an HTTP status (100 to 599)");
            want(c, m, p, "error", is_mock_error, "must be \"timeout\" or \"connect\"");
        }
        free(p);
    }
    free(mp);
}

static void check_test(check_t *c, const json_t *t, const char *path)
{
    static const char *const keys[] = {"name", "channel", "now", "mocks", "turns", NULL};
    if (!json_is_object(t)) {
        problem(c, path, "a test is an object");
        return;
    }
    known_keys(c, t, path, keys);
    want(c, t, path, "name", is_string, "must be a string");
    want(c, t, path, "channel", is_string, "must be a string");
    want(c, t, path, "now", is_string, "must be a string (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS)");
    check_mocks(c, t, path);
    const json_t *turns = json_object_get(t, "turns");
    char *tp = core_jsonpath_key(path, "turns");
    if (!json_is_array(turns) || json_array_size(turns) == 0)
        problem(c, tp, "a test needs a non-empty array of turns");
    for (size_t i = 0; i < json_array_size(turns); i++) {
        char *p = core_jsonpath_index(tp, i);
        check_turn(c, json_array_get(turns, i), p);
        free(p);
    }
    free(tp);
}

int ctl_test_check(const char *file, const char *text, size_t len, const json_t *root)
{
    static const char *const keys[] = {"tests", "mocks", NULL};
    check_t c = {
        .file = file, .pos = core_jsonpos_new(text, len), .out = stdout, .prefix = "FAIL "};
    if (!json_is_object(root)) {
        problem(&c, "", "a test file is {\"tests\": [...]}");
    } else {
        known_keys(&c, root, "", keys);
        check_mocks(&c, root, "");
        const json_t *tests = json_object_get(root, "tests");
        if (!json_is_array(tests))
            problem(&c, "tests", "a test file is {\"tests\": [...]}");
        for (size_t i = 0; i < json_array_size(tests); i++) {
            char *p = core_jsonpath_index("tests", i);
            check_test(&c, json_array_get(tests, i), p);
            free(p);
        }
    }
    core_jsonpos_free(c.pos);
    return c.problems;
}
