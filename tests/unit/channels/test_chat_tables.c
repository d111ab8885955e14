/* The chat adapter's building blocks without a daemon: the string-keyed
 * hash, the idempotency cache (replay, mismatch, in flight, expiry, bound),
 * API key checks (hashing, every key compared, rotation, schemes) and the
 * widget's origin rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "channels/chan_chat_int.h"

typedef struct item_s {
    chat_map_node_t node;
    char key[16];
} item_t;

static void test_map_put_get_del_and_growth(void **state)
{
    chat_map_t m;
    chat__map_init(&m);
    item_t *items = calloc(1000, sizeof(*items));
    for (int i = 0; i < 1000; i++) {
        snprintf(items[i].key, sizeof(items[i].key), "k%d", i);
        items[i].node.key = items[i].key;
        chat__map_put(&m, &items[i].node);
    }
    assert_int_equal(m.count, 1000);
    assert_true(m.nslots >= 1000);
    for (int i = 0; i < 1000; i++)
        assert_ptr_equal(chat__map_get(&m, items[i].key), &items[i].node);
    assert_null(chat__map_get(&m, "k1000"));
    chat__map_del(&m, &items[500].node);
    assert_null(chat__map_get(&m, "k500"));
    assert_ptr_equal(chat__map_get(&m, "k501"), &items[501].node);
    assert_int_equal(m.count, 999);
    chat__map_dispose(&m);
    free(items);
}

static void fp_of(const char *s, uint8_t fp[32])
{
    core_sha256(s, strlen(s), fp);
}

static void test_idem_replay_mismatch_pending(void **state)
{
    chat_idem_t t;
    chat__idem_init(&t);
    uint8_t a[32], b[32];
    fp_of("POST /x\n{\"text\":\"hi\"}", a);
    fp_of("POST /x\n{\"text\":\"bye\"}", b);
    chat_idem_entry_t *e = NULL, *e2 = NULL;
    assert_int_equal(chat__idem_begin(&t, "gw\nk1", a, 100, 1000, 0, &e), CHAT_IDEM_NEW);
    /* a retry while the first is in flight */
    assert_int_equal(chat__idem_begin(&t, "gw\nk1", a, 100, 1000, 1, &e2), CHAT_IDEM_PENDING);
    assert_ptr_equal(e, e2);
    chat__idem_finish(e, 200, "{\"ok\":true}", 7);
    assert_int_equal(chat__idem_begin(&t, "gw\nk1", a, 100, 1000, 2, &e2), CHAT_IDEM_REPLAY);
    assert_string_equal(e2->body, "{\"ok\":true}");
    assert_int_equal(e2->status, 200);
    assert_int_equal(e2->seq, 7);
    assert_int_equal(chat__idem_begin(&t, "gw\nk1", b, 100, 1000, 3, &e2), CHAT_IDEM_MISMATCH);
    /* another scope's key of the same name is its own */
    assert_int_equal(chat__idem_begin(&t, "gw2\nk1", b, 100, 1000, 3, &e2), CHAT_IDEM_NEW);
    /* a cancelled entry lets the retry run */
    chat__idem_cancel(&t, e2);
    assert_int_equal(chat__idem_begin(&t, "gw2\nk1", b, 100, 1000, 4, &e2), CHAT_IDEM_NEW);
    assert_int_equal(t.count, 2);
    chat__idem_dispose(&t);
}

static void test_idem_expiry_and_bound(void **state)
{
    chat_idem_t t;
    chat__idem_init(&t);
    uint8_t a[32];
    fp_of("x", a);
    chat_idem_entry_t *e;
    char key[32];
    /* 16 finished entries at t=0 with a TTL of 100 */
    for (int i = 0; i < 16; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(chat__idem_begin(&t, key, a, 16, 100, 0, &e), CHAT_IDEM_NEW);
        chat__idem_finish(e, 200, "{}", 0);
    }
    /* full: the oldest finished entry goes to make room */
    assert_int_equal(chat__idem_begin(&t, "new", a, 16, 100, 1, &e), CHAT_IDEM_NEW);
    assert_int_equal(t.count, 16);
    assert_int_equal(chat__idem_begin(&t, "k0", a, 16, 100, 2, &e), CHAT_IDEM_NEW);
    chat__idem_cancel(&t, e);
    assert_int_equal(chat__idem_begin(&t, "k5", a, 16, 100, 2, &e), CHAT_IDEM_REPLAY);
    /* expired: answered as new, and expired entries are swept on insert */
    assert_int_equal(chat__idem_begin(&t, "k5", a, 16, 100, 100, &e), CHAT_IDEM_NEW);
    assert_true(t.count <= 3);
    chat__idem_dispose(&t);

    /* entries in flight are never dropped: when all are, the cache refuses */
    chat__idem_init(&t);
    for (int i = 0; i < 16; i++) {
        snprintf(key, sizeof(key), "p%d", i);
        assert_int_equal(chat__idem_begin(&t, key, a, 16, 100, 0, &e), CHAT_IDEM_NEW);
    }
    assert_int_equal(chat__idem_begin(&t, "one-more", a, 16, 100, 1000, &e), CORE_ERR_LIMIT);
    assert_int_equal(t.count, 16);
    chat__idem_dispose(&t);
}

static void test_sha256_known_answer(void **state)
{
    uint8_t h[32];
    core_sha256("abc", 3, h);
    static const uint8_t want[4] = {0xba, 0x78, 0x16, 0xbf};
    assert_memory_equal(h, want, 4);
    assert_int_equal(h[31], 0xad);
}

static char *hex_sha(const char *s)
{
    uint8_t h[32];
    core_sha256(s, strlen(s), h);
    char *out = malloc(65);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
    return out;
}

static void set_keys(core_config_t *cfg, const char *v)
{
    free(cfg->chat.api_keys);
    cfg->chat.api_keys = strdup(v);
}

static void test_bearer_keys(void **state)
{
    core_config_t cfg;
    core_config_defaults(&cfg);
    chan_host_t host = {.cfg = &cfg};
    chat_t *c = calloc(1, sizeof(*c));
    chat__init(c, &host);
    char name[CHAT_KEY_NAME];
    core_err_t err = {0};

    /* no keys configured: everything is refused, saying why */
    assert_int_equal(chat__auth_bearer(c, "Bearer x", name, &err), CORE_ERR_DENIED);
    assert_non_null(strstr(err.msg, "chat.api_keys"));

    char *h1 = hex_sha("alpha-key"), *h2 = hex_sha("beta-key");
    char *keys = core_xasprintf("alpha:%s,beta:%s", h1, h2);
    set_keys(&cfg, keys);
    assert_int_equal(chat__auth_bearer(c, "Bearer alpha-key", name, &err), 0);
    assert_string_equal(name, "alpha");
    assert_int_equal(chat__auth_bearer(c, "bearer beta-key", name, &err), 0);
    assert_string_equal(name, "beta");
    assert_int_equal(chat__auth_bearer(c, "Bearer gamma-key", name, &err), CORE_ERR_DENIED);
    assert_int_equal(chat__auth_bearer(c, "Bearer alpha-ke", name, &err), CORE_ERR_DENIED);
    assert_int_equal(chat__auth_bearer(c, "Basic alpha-key", name, &err), CORE_ERR_DENIED);
    assert_int_equal(chat__auth_bearer(c, "Beareralpha-key", name, &err), CORE_ERR_DENIED);
    assert_int_equal(chat__auth_bearer(c, "Bearer", name, &err), CORE_ERR_DENIED);
    assert_int_equal(chat__auth_bearer(c, NULL, name, &err), CORE_ERR_DENIED);
    /* the stored value is the hash: presenting the hash itself fails */
    char *as_token = core_xasprintf("Bearer %s", h1);
    assert_int_equal(chat__auth_bearer(c, as_token, name, &err), CORE_ERR_DENIED);

    /* a reload that drops a key applies on the next check */
    char *only_beta = core_xasprintf("beta:%s", h2);
    set_keys(&cfg, only_beta);
    assert_int_equal(chat__auth_bearer(c, "Bearer alpha-key", name, &err), CORE_ERR_DENIED);
    assert_int_equal(chat__auth_bearer(c, "Bearer beta-key", name, &err), 0);

    free(only_beta);
    free(as_token);
    free(keys);
    free(h1);
    free(h2);
    free(c->keys);
    free(c->keys_src);
    chat__idem_dispose(&c->idem);
    chat__map_dispose(&c->convs);
    free(c);
    core_config_dispose(&cfg);
}

static void test_origins(void **state)
{
    core_config_t cfg;
    core_config_defaults(&cfg);
    /* default: only the daemon's own origin */
    assert_true(chat__origin_allowed(&cfg, "http://127.0.0.1:8080", "127.0.0.1:8080"));
    assert_true(chat__origin_allowed(&cfg, "https://chat.example", "chat.example"));
    assert_false(chat__origin_allowed(&cfg, "http://127.0.0.1:8081", "127.0.0.1:8080"));
    assert_false(chat__origin_allowed(&cfg, "https://evil.example", "chat.example"));
    assert_false(chat__origin_allowed(&cfg, "null", "chat.example"));
    assert_false(chat__origin_allowed(&cfg, NULL, "chat.example"));
    assert_false(chat__origin_allowed(&cfg, "", "chat.example"));
    free(cfg.chat.allowed_origins);
    cfg.chat.allowed_origins = strdup("https://shop.example, https://www.shop.example");
    assert_true(chat__origin_allowed(&cfg, "https://shop.example", "chat.example"));
    assert_true(chat__origin_allowed(&cfg, "https://www.shop.example", "chat.example"));
    assert_false(chat__origin_allowed(&cfg, "https://shop.example.evil", "chat.example"));
    assert_false(chat__origin_allowed(&cfg, "http://shop.example", "chat.example"));
    free(cfg.chat.allowed_origins);
    cfg.chat.allowed_origins = strdup("*");
    assert_true(chat__origin_allowed(&cfg, "https://anything.example", "chat.example"));
    assert_false(chat__origin_allowed(&cfg, NULL, "chat.example"));
    core_config_dispose(&cfg);
}

static void test_conversation_log_ring_and_table_bound(void **state)
{
    core_config_t cfg;
    core_config_defaults(&cfg);
    cfg.chat.history_messages = 64;
    cfg.chat.max_conversations = 2;
    chan_host_t host = {.cfg = &cfg};
    chat_t *c = calloc(1, sizeof(*c));
    chat__init(c, &host);
    core_err_t err = {0};
    chat_conv_t *a, *b, *x;
    assert_int_equal(chat__conv_new(c, BRAIN_CH_CHAT, &a, &err), 0);
    assert_int_equal(strlen(a->id), CHAT_ID_LEN);
    assert_string_equal(a->key + 5, a->id);
    char text[32];
    for (int i = 1; i <= 100; i++) {
        snprintf(text, sizeof(text), "m%d", i);
        assert_int_equal(chat__conv_user(c, a, text, strlen(text), NULL), (uint64_t)i);
    }
    /* the ring keeps the newest 64, seqs stay those first given */
    assert_int_equal(a->first_seq, 37);
    assert_null(chat__conv_entry(a, 36));
    assert_null(chat__conv_entry(a, 101));
    json_t *e37 = chat__conv_entry(a, 37), *e100 = chat__conv_entry(a, 100);
    assert_string_equal(json_string_value(json_object_get(e37, "text")), "m37");
    assert_string_equal(json_string_value(json_object_get(e100, "text")), "m100");
    assert_int_equal(json_integer_value(json_object_get(e100, "seq")), 100);
    assert_non_null(strstr(chat__conv_entry_text(a, 100), "\"from\":\"user\""));
    json_decref(e37);
    json_decref(e100);
    json_t *t = chat__transcript(a, 0);
    assert_int_equal(json_array_size(json_object_get(t, "messages")), 64);
    assert_int_equal(json_integer_value(json_object_get(t, "first_seq")), 37);
    assert_int_equal(json_integer_value(json_object_get(t, "last_seq")), 100);
    assert_string_equal(json_string_value(json_object_get(t, "status")), "active");
    json_decref(t);
    t = chat__transcript(a, 98); /* only what came after 98 */
    assert_int_equal(json_array_size(json_object_get(t, "messages")), 2);
    assert_int_equal(json_integer_value(
                         json_object_get(json_array_get(json_object_get(t, "messages"), 0), "seq")),
                     99);
    json_decref(t);

    /* the table is bounded: the least recently used idle one goes */
    assert_int_equal(chat__conv_new(c, BRAIN_CH_WEB, &b, &err), 0);
    assert_ptr_equal(chat__conv_get(c, a->id), a); /* a is now the most recent */
    char bid[CHAT_ID_LEN + 1];
    memcpy(bid, b->id, sizeof(bid));
    assert_int_equal(chat__conv_new(c, BRAIN_CH_WEB, &x, &err), 0);
    assert_null(chat__conv_get(c, bid));
    assert_ptr_equal(chat__conv_get(c, a->id), a);
    /* a conversation with a turn in flight is never evicted */
    a->pending = 1;
    x->pending = 1;
    assert_int_equal(chat__conv_new(c, BRAIN_CH_WEB, &b, &err), CORE_ERR_LIMIT);
    a->pending = x->pending = 0;
    chat__conv_drop(c, a);
    chat__conv_drop(c, x);
    assert_int_equal(c->convs.count, 0);
    chat__idem_dispose(&c->idem);
    chat__map_dispose(&c->convs);
    free(c);
    core_config_dispose(&cfg);
}

static void test_idle_end_is_recorded(void **state)
{
    core_config_t cfg;
    core_config_defaults(&cfg);
    chan_host_t host = {.cfg = &cfg};
    chat_t *c = calloc(1, sizeof(*c));
    chat__init(c, &host);
    core_err_t err = {0};
    chat_conv_t *cv;
    assert_int_equal(chat__conv_new(c, BRAIN_CH_WEB, &cv, &err), 0);
    brain_out_t o;
    brain_out_init(&o);
    o.messages[0].text = strdup("Closed after a while. Bye!");
    o.n_messages = 1;
    o.status = BRAIN_ST_ENDED;
    o.end_reason = "idle_timeout";
    runtime_turn_out_t out = {.error = 0, .error_msg = "", .key = cv->key, .out = &o};
    chat__conv_idle_end(c, &out);
    runtime_turn_out_t other = {.error = 0, .error_msg = "", .key = "sms:+1:+2", .out = &o};
    chat__conv_idle_end(c, &other); /* not ours: ignored */
    assert_int_equal(cv->status, BRAIN_ST_ENDED);
    assert_int_equal(cv->next_seq, 3);
    json_t *bye = chat__conv_entry(cv, 1), *end = chat__conv_entry(cv, 2);
    assert_string_equal(json_string_value(json_object_get(bye, "text")),
                        "Closed after a while. Bye!");
    assert_string_equal(json_string_value(json_object_get(end, "type")), "end");
    assert_string_equal(json_string_value(json_object_get(end, "reason")), "idle_timeout");
    json_decref(bye);
    json_decref(end);
    brain_out_dispose(&o);
    chat__conv_drop(c, cv);
    chat__idem_dispose(&c->idem);
    chat__map_dispose(&c->convs);
    free(c);
    core_config_dispose(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_put_get_del_and_growth),
        cmocka_unit_test(test_idem_replay_mismatch_pending),
        cmocka_unit_test(test_idem_expiry_and_bound),
        cmocka_unit_test(test_sha256_known_answer),
        cmocka_unit_test(test_bearer_keys),
        cmocka_unit_test(test_origins),
        cmocka_unit_test(test_conversation_log_ring_and_table_bound),
        cmocka_unit_test(test_idle_end_is_recorded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
