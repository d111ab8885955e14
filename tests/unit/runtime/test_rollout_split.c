/* The rollout split on a real runtime and store: every new conversation's
 * stored variant is the arm the hash of (rollout id, key) gives
 * (docs/operations.md: the first four bytes of SHA-256(id "\n" key) modulo
 * 100 below the percent), the candidate's share of 400 keys is within four
 * standard deviations of 30 % (sd = sqrt(.3 * .7 / 400) = 2.3 points), a
 * key's later turns stay on its arm, and after the rollout stops new keys
 * get no variant. */
#include <openssl/evp.h>

#include "unit/runtime/runtime_env.h"

enum { KEYS = 400, PERCENT = 30 };

static int group_setup(void **state)
{
    return env_group_setup("split");
}

static const char *arm(const char *id, const char *key)
{
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned hl = 0;
    char *text = core_xasprintf("%s\n%s", id, key);
    EVP_Digest(text, strlen(text), h, &hl, EVP_sha256(), NULL);
    free(text);
    uint32_t x = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    return x % 100 < PERCENT ? "candidate" : "control";
}

static void on_started(runtime_t *rt, int rc, const core_diags_t *d, void *data)
{
    assert_int_equal(rc, 0);
    (*(int *)data)++;
}

/* The stored variant of conversation id (the fixture's transcript read). */
static char *variant_of(const char *id)
{
    json_t *t = transcript(id);
    const char *v = json_string_value(json_object_get(t, "variant"));
    assert_non_null(v);
    char *out = core_xstrdup(v);
    json_decref(t);
    return out;
}

static void test_split_follows_the_hash(void **state)
{
    env_t e;
    env_start(&e);
    runtime_flow_file_t f;
    const char *env = runtime_default_env(e.rt);
    assert_int_equal(runtime_env_file(e.rt, env, "small_talk", &f), 0);
    runtime_rollout_t r = {.id = "ro-split-test",
                           .flow = "small_talk",
                           .version = "candidate-v1",
                           .content = f.content,
                           .len = f.len,
                           .percent = PERCENT};
    int started = 0;
    assert_int_equal(runtime_rollout_start(e.rt, &r, on_started, &started), 0);
    while (!started)
        uv_run(&e.loop, UV_RUN_ONCE);
    rec_t rec;
    char key[32];
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof(key), "split-%d", i);
        say(&e, key, "hello", &rec);
    }
    for (int i = 0; i < 20; i++) { /* later turns of the same keys */
        snprintf(key, sizeof(key), "split-%d", i);
        say(&e, key, "how are you", &rec);
    }
    assert_int_equal(runtime_rollout_stop(e.rt, env, "small_talk", 0), 0);
    say(&e, "after-the-rollout", "hello", &rec);
    int cand = 0;
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof(key), "split-%d", i);
        char *v = variant_of(key);
        assert_string_equal(v, arm(r.id, key));
        cand += strcmp(v, "candidate") == 0;
        free(v);
    }
    double share = (double)cand / KEYS;
    print_message("candidate share %.3f of %d keys at %d%%\n", share, KEYS, PERCENT);
    assert_true(share > 0.30 - 4 * 0.0229 && share < 0.30 + 4 * 0.0229);
    char *none = variant_of("after-the-rollout");
    assert_string_equal(none, "");
    free(none);
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_follows_the_hash),
    };
    return cmocka_run_group_tests(tests, group_setup, env_group_teardown);
}
