/* The chat adapter's building blocks without a daemon: the string-keyed
 * hash, the idempotency cache (replay, mismatch, in flight, expiry, bound),
 * API key checks (hashing, every key compared, rotation, schemes), the
 * widget's origin rule, the conversation table (ring, bound, busy
 * conversations kept off the LRU, the bytes of all logs), the transcript's bytes and the rebuild of
 * a log from a stored record, the desk's entries at the seqs they had, and
 * the end of a conversation a person closed. */
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

/* The adapter as most tests build it: the configuration's defaults, which
 * a test changes in f.cfg before fx_open(). */
typedef struct fixture_s {
    core_config_t cfg;
    chat_t *c;
} fixture_t;

static chat_t *fx_open(fixture_t *f)
{
    chan_host_t host = {.cfg = &f->cfg};
    f->c = calloc(1, sizeof(*f->c));
    chat__init(f->c, &host);
    return f->c;
}

static void fx_close(fixture_t *f)
{
    chat__idem_dispose(&f->c->idem);
    chat__map_dispose(&f->c->convs);
    free(f->c);
    core_config_dispose(&f->cfg);
}

static void test_bearer_keys(void **state)
{
    fixture_t f;
    core_config_defaults(&f.cfg);
    chat_t *c = fx_open(&f);
    char name[CHAT_KEY_NAME];
    core_err_t err = {0};

    /* no keys configured: everything is refused, saying why */
    assert_int_equal(chat__auth_bearer(c, "Bearer x", name, NULL, &err), CORE_ERR_DENIED);
    assert_non_null(strstr(err.msg, "chat.api_keys"));

    char *h1 = hex_sha("alpha-key"), *h2 = hex_sha("beta-key");
    char *keys = core_xasprintf("alpha:%s,beta:%s", h1, h2);
    set_keys(&f.cfg, keys);
    assert_int_equal(chat__auth_bearer(c, "Bearer alpha-key", name, NULL, &err), 0);
    assert_string_equal(name, "alpha");
    assert_int_equal(chat__auth_bearer(c, "bearer beta-key", name, NULL, &err), 0);
    assert_string_equal(name, "beta");
    assert_int_equal(chat__auth_bearer(c, "Bearer gamma-key", name, NULL, &err), CORE_ERR_DENIED);
    assert_int_equal(chat__auth_bearer(c, "Bearer alpha-ke", name, NULL, &err), CORE_ERR_DENIED);
    /* a key that hashed right is remembered with its entry; the next
     * request's key is compared with it first, whole and by length */
    assert_int_equal(c->keys[0].seen_len, strlen("alpha-key"));
    assert_memory_equal(c->keys[0].seen, "alpha-key", strlen("alpha-key"));
    assert_int_equal(chat__auth_bearer(c, "Bearer alpha-key", name, NULL, &err), 0);
    assert_string_equal(name, "alpha");
    assert_int_equal(chat__auth_bearer(c, "Bearer alpha-keY", name, NULL, &err), CORE_ERR_DENIED);
    assert_int_equal(chat__auth_bearer(c, "Bearer alpha-key2", name, NULL, &err), CORE_ERR_DENIED);
    assert_int_equal(chat__auth_bearer(c, "Bearer alpha", name, NULL, &err), CORE_ERR_DENIED);
    assert_int_equal(chat__auth_bearer(c, "Bearer beta-key", name, NULL, &err), 0);
    assert_string_equal(name, "beta");
    assert_int_equal(chat__auth_bearer(c, "Basic alpha-key", name, NULL, &err), CORE_ERR_DENIED);
    assert_int_equal(chat__auth_bearer(c, "Beareralpha-key", name, NULL, &err), CORE_ERR_DENIED);
    assert_int_equal(chat__auth_bearer(c, "Bearer", name, NULL, &err), CORE_ERR_DENIED);
    assert_int_equal(chat__auth_bearer(c, NULL, name, NULL, &err), CORE_ERR_DENIED);
    /* the stored value is the hash: presenting the hash itself fails */
    char *as_token = core_xasprintf("Bearer %s", h1);
    assert_int_equal(chat__auth_bearer(c, as_token, name, NULL, &err), CORE_ERR_DENIED);

    /* a key longer than what is remembered is hashed every time */
    char longk[CHAT_KEY_SEEN + 40];
    memset(longk, 'k', sizeof(longk) - 1);
    longk[sizeof(longk) - 1] = '\0';
    char *hl = hex_sha(longk), *with_long = core_xasprintf("alpha:%s,long:%s", h1, hl);
    char *bearer_long = core_xasprintf("Bearer %s", longk);
    set_keys(&f.cfg, with_long);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(chat__auth_bearer(c, bearer_long, name, NULL, &err), 0);
        assert_string_equal(name, "long");
        assert_int_equal(c->keys[1].seen_len, 0);
    }
    bearer_long[strlen(bearer_long) - 1] = 'x';
    assert_int_equal(chat__auth_bearer(c, bearer_long, name, NULL, &err), CORE_ERR_DENIED);
    free(bearer_long);
    free(with_long);
    free(hl);

    /* a reload that drops a key applies on the next check */
    char *only_beta = core_xasprintf("beta:%s", h2);
    set_keys(&f.cfg, only_beta);
    assert_int_equal(chat__auth_bearer(c, "Bearer alpha-key", name, NULL, &err), CORE_ERR_DENIED);
    assert_int_equal(chat__auth_bearer(c, "Bearer beta-key", name, NULL, &err), 0);

    free(only_beta);
    free(as_token);
    free(keys);
    free(h1);
    free(h2);
    free(c->keys);
    free(c->keys_src);
    fx_close(&f);
}

/* What a socket keeps of its key (name and configured hash) stays valid
 * while chat.api_keys has both; a new secret under the name, a rename or a
 * removal each revoke it. */
static void test_key_still_valid(void **state)
{
    fixture_t f;
    core_config_defaults(&f.cfg);
    chat_t *c = fx_open(&f);
    char name[CHAT_KEY_NAME];
    uint8_t hash[32];
    core_err_t err = {0};
    char *h1 = hex_sha("alpha-key"), *h2 = hex_sha("alpha-key-2"), *h3 = hex_sha("beta-key");
    char *both = core_xasprintf("alpha:%s,beta:%s", h1, h3);
    char *rotating = core_xasprintf("alpha:%s,alpha:%s,beta:%s", h1, h2, h3);
    char *rotated = core_xasprintf("alpha:%s,beta:%s", h2, h3);
    char *renamed = core_xasprintf("gamma:%s,beta:%s", h1, h3);
    set_keys(&f.cfg, both);
    assert_int_equal(chat__auth_bearer(c, "Bearer alpha-key", name, hash, &err), 0);
    assert_int_equal(chat__key_valid(c, name, hash), 1);
    set_keys(&f.cfg, rotating); /* the new secret beside the old one */
    assert_int_equal(chat__key_valid(c, name, hash), 1);
    set_keys(&f.cfg, rotated);
    assert_int_equal(chat__key_valid(c, name, hash), 0);
    set_keys(&f.cfg, renamed);
    assert_int_equal(chat__key_valid(c, name, hash), 0);
    set_keys(&f.cfg, "");
    assert_int_equal(chat__key_valid(c, name, hash), 0);
    free(both);
    free(rotating);
    free(rotated);
    free(renamed);
    free(h1);
    free(h2);
    free(h3);
    free(c->keys);
    free(c->keys_src);
    fx_close(&f);
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

/* chat__transcript's answer, parsed. */
static json_t *transcript(const chat_conv_t *cv, uint64_t after)
{
    core_buf_t b;
    core_buf_init(&b, (size_t)1 << 30);
    chat__transcript(&b, cv, after);
    json_t *t = json_loads(b.data, 0, NULL);
    assert_non_null(t);
    core_buf_dispose(&b);
    return t;
}

static void test_conversation_log_ring_and_table_bound(void **state)
{
    fixture_t f;
    core_config_defaults(&f.cfg);
    f.cfg.chat.history_messages = 64;
    f.cfg.chat.max_conversations = 2;
    chat_t *c = fx_open(&f);
    core_err_t err = {0};
    chat_conv_t *a, *b, *x;
    assert_int_equal(chat__conv_new(c, BRAIN_CH_CHAT, &a, &err), 0);
    assert_int_equal(strlen(a->id), CHAT_ID_LEN);
    assert_string_equal(a->key + 5, a->id);
    char text[32];
    for (int i = 1; i <= 100; i++) {
        snprintf(text, sizeof(text), "m%d", i);
        assert_int_equal(chat__conv_user(c, a, text, strlen(text), NULL, 0), (uint64_t)i);
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
    json_t *t = transcript(a, 0);
    assert_int_equal(json_array_size(json_object_get(t, "messages")), 64);
    assert_int_equal(json_integer_value(json_object_get(t, "first_seq")), 37);
    assert_int_equal(json_integer_value(json_object_get(t, "last_seq")), 100);
    assert_string_equal(json_string_value(json_object_get(t, "status")), "active");
    json_decref(t);
    t = transcript(a, 98); /* only what came after 98 */
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
    chat__conv_hold(c, a);
    chat__conv_hold(c, x);
    assert_int_equal(chat__conv_new(c, BRAIN_CH_WEB, &b, &err), CORE_ERR_LIMIT);
    chat__conv_release(c, a);
    chat__conv_release(c, x);
    chat__conv_drop(c, a);
    chat__conv_drop(c, x);
    assert_int_equal(c->convs.count, 0);
    fx_close(&f);
}

/* The bytes every conversation's log entries take, counted from the texts. */
static size_t held_bytes(const chat_conv_t *cv)
{
    size_t n = 0;
    for (uint64_t seq = cv->first_seq; seq < cv->next_seq; seq++)
        n += strlen(chat__conv_entry_text(cv, seq)) + 1;
    return n;
}

/* chat.history_bytes bounds the logs together: the count follows every
 * entry added and every one the ring drops, and a turn's start forgets least
 * recently used idle conversations until the logs fit, never a busy one. */
static void test_history_bytes_bound(void **state)
{
    fixture_t f;
    core_config_defaults(&f.cfg);
    f.cfg.chat.history_messages = 64;
    f.cfg.chat.history_bytes = 1024 * 1024; /* the least allowed */
    chat_t *c = fx_open(&f);
    core_err_t err = {0};
    chat_conv_t *a, *b, *x;
    char *big = malloc(10000);
    memset(big, 'z', 10000);
    assert_int_equal(chat__conv_new(c, BRAIN_CH_CHAT, &a, &err), 0);
    assert_int_equal(chat__conv_new(c, BRAIN_CH_CHAT, &b, &err), 0);
    assert_int_equal(chat__conv_new(c, BRAIN_CH_CHAT, &x, &err), 0);
    /* 100 entries in a: the ring keeps 64, and the count only those */
    for (int i = 0; i < 100; i++)
        chat__conv_user(c, a, big, 4000, NULL, 0);
    assert_int_equal(a->log_len, 64);
    assert_int_equal(c->log_bytes, held_bytes(a)); /* b and x hold nothing yet */
    for (int i = 0; i < 40; i++) {
        chat__conv_user(c, b, big, 10000, NULL, 0);
        chat__conv_user(c, x, big, 10000, NULL, 0);
    }
    assert_int_equal(c->log_bytes, held_bytes(a) + held_bytes(b) + held_bytes(x));
    assert_true(c->log_bytes > 1024 * 1024); /* over, until a turn starts */
    char aid[CHAT_ID_LEN + 1], bid[CHAT_ID_LEN + 1];
    memcpy(aid, a->id, sizeof(aid));
    memcpy(bid, b->id, sizeof(bid));
    assert_ptr_equal(chat__conv_get(c, aid), a); /* a is now more recent than b */

    /* x's turn: b goes (the least recent idle one), which is enough */
    chat__conv_hold(c, x);
    assert_null(chat__conv_get(c, bid));
    assert_ptr_equal(chat__conv_get(c, aid), a);
    assert_int_equal(c->evictions, 1);
    assert_int_equal(c->log_bytes, held_bytes(a) + held_bytes(x));
    assert_true(c->log_bytes <= 1024 * 1024);

    /* all busy and over again: nothing to forget, nothing forgotten */
    chat__conv_hold(c, a);
    for (int i = 0; i < 64; i++) {
        chat__conv_user(c, a, big, 10000, NULL, 0);
        chat__conv_user(c, x, big, 10000, NULL, 0);
    }
    assert_int_equal(c->log_bytes, held_bytes(a) + held_bytes(x));
    assert_true(c->log_bytes > 1024 * 1024);
    chat__conv_hold(c, x);
    assert_int_equal(c->convs.count, 2);
    assert_int_equal(c->evictions, 1);

    chat__conv_release(c, x);
    chat__conv_release(c, x);
    chat__conv_release(c, a);
    chat__conv_drop(c, a);
    chat__conv_drop(c, x);
    assert_int_equal(c->convs.count, 0);
    assert_int_equal(c->log_bytes, 0);
    free(big);
    fx_close(&f);
}

static void test_idle_end_is_recorded(void **state)
{
    fixture_t f;
    core_config_defaults(&f.cfg);
    chat_t *c = fx_open(&f);
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
    fx_close(&f);
}

/* The LRU list holds exactly the idle conversations (no turn in flight, no
 * socket following), each once, its links consistent; a busy one is off it
 * (its link points at itself). */
static void check_lru(const chat_t *c)
{
    size_t listed = 0, idle = 0;
    for (const chat_link_t *l = c->lru.next; l != &c->lru; l = l->next) {
        const chat_conv_t *cv = CHAT_CONTAINER(l, chat_conv_t, lru);
        assert_ptr_equal(l->next->prev, l);
        assert_int_equal(cv->pending, 0);
        assert_true(chat__list_empty(&cv->subs));
        assert_ptr_equal(chat__map_get(&c->convs, cv->id), &cv->node);
        listed++;
    }
    for (size_t i = 0; i < c->convs.nslots; i++)
        for (const chat_map_node_t *n = c->convs.slots[i]; n != NULL; n = n->next) {
            const chat_conv_t *cv = CHAT_CONTAINER(n, chat_conv_t, node);
            if (cv->pending == 0 && chat__list_empty(&cv->subs))
                idle++;
            else
                assert_ptr_equal(cv->lru.next, &cv->lru);
        }
    assert_int_equal(listed, idle);
}

static int holds(chat_t *c, const char *id)
{
    return chat__map_get(&c->convs, id) != NULL;
}

/* Conversations followed by a socket or with a turn in flight stay in the
 * table however many new ones come; the idle ones go, least recently used
 * first, and a conversation that becomes idle again goes to the most
 * recently used end. The links stand in for sockets: nothing is appended
 * to a followed conversation here (that would send to them). */
static void test_busy_conversations_stay_off_the_lru(void **state)
{
    fixture_t f;
    core_config_defaults(&f.cfg);
    f.cfg.chat.max_conversations = 8;
    chat_t *c = fx_open(&f);
    core_err_t err = {0};
    chat_conv_t *cv[8], *n;
    char ids[8][CHAT_ID_LEN + 1];
    for (int i = 0; i < 8; i++) {
        assert_int_equal(chat__conv_new(c, BRAIN_CH_CHAT, &cv[i], &err), 0);
        memcpy(ids[i], cv[i]->id, sizeof(ids[i]));
    }
    check_lru(c);
    /* 0 and 2 followed (2 by two sockets), 1 and 3 with turns in flight */
    chat_link_t sock0, sock2a, sock2b;
    chat__conv_follow(c, cv[0], &sock0);
    chat__conv_follow(c, cv[2], &sock2a);
    chat__conv_follow(c, cv[2], &sock2b);
    chat__conv_hold(c, cv[1]);
    chat__conv_hold(c, cv[3]);
    chat__conv_hold(c, cv[3]);
    check_lru(c);
    assert_ptr_equal(chat__conv_get(c, ids[0]), cv[0]); /* a lookup does not list it */
    check_lru(c);
    chat__conv_drop(c, cv[2]); /* a busy one is not dropped */
    assert_true(holds(c, ids[2]));
    /* the idle ones go, oldest first: 4, 5, 6, 7 */
    for (int i = 4; i < 8; i++) {
        assert_int_equal(chat__conv_new(c, BRAIN_CH_CHAT, &n, &err), 0);
        assert_false(holds(c, ids[i]));
        if (i < 7)
            assert_true(holds(c, ids[i + 1]));
        check_lru(c);
    }
    /* many more: the busy four stay, the table stays full */
    char last[4][CHAT_ID_LEN + 1];
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(chat__conv_new(c, BRAIN_CH_CHAT, &n, &err), 0);
        memcpy(last[i % 4], n->id, sizeof(last[0]));
        assert_int_equal(c->convs.count, 8);
        for (int k = 0; k < 4; k++)
            assert_true(holds(c, ids[k]));
    }
    check_lru(c);
    /* idle again: to the most recently used end, behind the four newest */
    chat__conv_release(c, cv[1]);
    chat__conv_unfollow(c, cv[0], &sock0);
    chat__conv_unfollow(c, cv[2], &sock2a); /* still followed by the other */
    chat__conv_release(c, cv[3]);           /* still one turn in flight */
    check_lru(c);
    assert_ptr_equal(CHAT_CONTAINER(c->lru.prev, chat_conv_t, lru), cv[0]);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(chat__conv_new(c, BRAIN_CH_CHAT, &n, &err), 0);
        assert_false(holds(c, last[i]));
        assert_true(holds(c, ids[1]) && holds(c, ids[0]));
    }
    assert_ptr_equal(chat__conv_get(c, ids[1]), cv[1]); /* used: now the most recent */
    assert_int_equal(chat__conv_new(c, BRAIN_CH_CHAT, &n, &err), 0);
    assert_false(holds(c, ids[0]));
    assert_true(holds(c, ids[1]) && holds(c, ids[2]) && holds(c, ids[3]));
    check_lru(c);
    /* all busy: refused, nothing evicted */
    chat_conv_t *all[8];
    size_t k = 0;
    for (size_t i = 0; i < c->convs.nslots; i++)
        for (chat_map_node_t *m = c->convs.slots[i]; m != NULL; m = m->next)
            all[k++] = CHAT_CONTAINER(m, chat_conv_t, node);
    assert_int_equal(k, 8);
    for (size_t i = 0; i < k; i++)
        chat__conv_hold(c, all[i]);
    check_lru(c);
    assert_true(chat__list_empty(&c->lru));
    assert_int_equal(chat__conv_new(c, BRAIN_CH_CHAT, &n, &err), CORE_ERR_LIMIT);
    assert_int_equal(c->convs.count, 8);
    /* freed from any state: the list stays whole */
    for (size_t i = 0; i < k; i++)
        chat__conv_release(c, all[i]);
    chat__conv_unfollow(c, cv[2], &sock2b);
    chat__conv_release(c, cv[3]);
    check_lru(c);
    for (size_t i = 0; i < k; i++) {
        chat__conv_drop(c, all[i]);
        check_lru(c);
    }
    assert_int_equal(c->convs.count, 0);
    assert_true(chat__list_empty(&c->lru));
    fx_close(&f);
}

/* GET's body is the stored entries as they are, in the object's fixed key
 * order, byte for byte. */
static void test_transcript_body_bytes(void **state)
{
    fixture_t f;
    core_config_defaults(&f.cfg);
    f.cfg.chat.history_messages = 4;
    chat_t *c = fx_open(&f);
    core_err_t err = {0};
    chat_conv_t *cv;
    assert_int_equal(chat__conv_new(c, BRAIN_CH_WEB, &cv, &err), 0);
    cv->created_us = 1767225600123456LL; /* 2026-01-01T00:00:00.123456Z */
    chat__conv_user(c, cv, "one", 3, NULL, 0);
    chat__conv_user(c, cv, "caf\xc3\xa9 \"q\"\n\x01", 11, "m-1", 0);
    json_t *h = json_pack("{s:s,s:s,s:s,s:{s:s}}", "type", "handoff", "queue", "billing", "reason",
                          "asked", "summary", "flow", "f");
    chat__conv_append(cv, h, 1767225600000000LL);
    json_object_del(h, "type");
    cv->handoff = h;
    cv->status = BRAIN_ST_HANDOFF;
    core_buf_t b;
    core_buf_init(&b, (size_t)1 << 30);
    chat__transcript(&b, cv, 0);
    char want[2048];
    snprintf(want, sizeof(want),
             "{\"conversation\":\"%s\",\"channel\":\"web\",\"status\":\"handoff\","
             "\"created\":\"2026-01-01T00:00:00.123456Z\",\"first_seq\":1,\"last_seq\":3,"
             "\"messages\":[%s,%s,%s],"
             "\"handoff\":{\"queue\":\"billing\",\"reason\":\"asked\",\"summary\":{\"flow\":\"f\"},"
             "\"seq\":3,\"ts\":\"2026-01-01T00:00:00.000000Z\"}}",
             cv->id, chat__conv_entry_text(cv, 1), chat__conv_entry_text(cv, 2),
             chat__conv_entry_text(cv, 3));
    assert_string_equal(b.data, want);
    assert_int_equal(b.len, strlen(want));
    assert_non_null(
        strstr(b.data, "\"text\":\"caf\xc3\xa9 \\\"q\\\"\\n\\u0001\",\"id\":\"m-1\",\"seq\":2"));
    /* the body is JSON whose messages are the entries */
    json_t *t = json_loads(b.data, 0, NULL);
    assert_non_null(t);
    assert_int_equal(json_array_size(json_object_get(t, "messages")), 3);
    json_decref(t);
    /* ?after=: what came after; a ring that dropped entries starts at first_seq */
    core_buf_reset(&b);
    chat__transcript(&b, cv, 2);
    assert_non_null(strstr(b.data, "\"messages\":[{\"type\":\"handoff\""));
    for (int i = 0; i < 3; i++)
        chat__conv_user(c, cv, "more", 4, NULL, 0);
    core_buf_reset(&b);
    chat__transcript(&b, cv, 6);
    assert_non_null(strstr(b.data, "\"first_seq\":3,\"last_seq\":6,\"messages\":[],\"handoff\""));
    core_buf_reset(&b);
    chat__transcript(&b, cv, 0);
    snprintf(want, sizeof(want), "\"messages\":[%s,%s,%s,%s]", chat__conv_entry_text(cv, 3),
             chat__conv_entry_text(cv, 4), chat__conv_entry_text(cv, 5),
             chat__conv_entry_text(cv, 6));
    assert_non_null(strstr(b.data, want));
    core_buf_dispose(&b);
    chat__conv_drop(c, cv);
    fx_close(&f);
}

/* A stored record rebuilt into a log: the events come in time order, not
 * row order, and each row takes its own reply and handoffs. */
static void test_rebuild_from_a_record(void **state)
{
    fixture_t f;
    core_config_defaults(&f.cfg);
    chat_t *c = fx_open(&f);
    core_err_t err = {0};
    chat_conv_t *cv;
    assert_int_equal(chat__conv_add(c, BRAIN_CH_WEB, "00112233445566778899aabbccddeeff", &cv, &err),
                     0);
    const char *rec_text =
        "{\"outcome\":\"escalated\",\"turns\":["
        "{\"seq\":1,\"direction\":\"out\",\"text\":\"Hi\\nPick one\",\"ts_us\":1000000},"
        "{\"seq\":2,\"direction\":\"in\",\"text\":\"help\",\"ts_us\":2000000},"
        "{\"seq\":3,\"direction\":\"out\",\"text\":\"ignored: the reply event says "
        "it\",\"ts_us\":3000000},"
        "{\"seq\":4,\"direction\":\"in\",\"text\":\"a person\",\"ts_us\":4000000},"
        "{\"seq\":5,\"direction\":\"out\",\"text\":\"One moment\",\"ts_us\":5000000}],"
        "\"events\":["
        "{\"kind\":\"handoff\",\"turn_seq\":5,\"name\":\"asked\",\"detail\":{\"queue\":\"billing\"}"
        ",\"ts_us\":6000000},"
        "{\"kind\":\"reply\",\"turn_seq\":3,\"detail\":{\"messages\":[{\"text\":\"Choose\","
        "\"choices\":"
        "[{\"title\":\"Site\",\"value\":\"https://"
        "x.example\"},{\"title\":\"No\",\"value\":\"no\"}]}]}},"
        "{\"kind\":\"intent\",\"turn_seq\":3,\"detail\":{\"messages\":[{\"text\":\"not a "
        "reply\"}]}},"
        "{\"kind\":\"reply\",\"turn_seq\":3,\"detail\":{\"messages\":[{\"text\":\"second reply: "
        "unused\"}]}},"
        "{\"kind\":\"reply\",\"turn_seq\":1,\"detail\":{\"messages\":\"not an array\"}},"
        "{\"kind\":\"handoff\",\"name\":\"start\",\"detail\":{\"queue\":\"front\"},\"ts_us\":"
        "500000},"
        "{\"kind\":\"handoff\",\"turn_seq\":9,\"detail\":{\"queue\":\"no such row\"}}]}";
    json_t *rec = json_loads(rec_text, 0, NULL);
    assert_non_null(rec);
    chat__conv_rebuild(cv, rec, NULL);
    json_decref(rec);
    static const char *want[] = {
        "{\"type\":\"handoff\",\"queue\":\"front\",\"reason\":\"start\",\"summary\":{},\"seq\":1,"
        "\"ts\":\"1970-01-01T00:00:00.500000Z\"}",
        "{\"type\":\"message\",\"from\":\"bot\",\"text\":\"Hi\",\"choices\":[],\"seq\":2,"
        "\"ts\":\"1970-01-01T00:00:01.000000Z\"}",
        "{\"type\":\"message\",\"from\":\"bot\",\"text\":\"Pick one\",\"choices\":[],\"seq\":3,"
        "\"ts\":\"1970-01-01T00:00:01.000000Z\"}",
        "{\"type\":\"message\",\"from\":\"user\",\"text\":\"help\",\"seq\":4,"
        "\"ts\":\"1970-01-01T00:00:02.000000Z\"}",
        "{\"type\":\"message\",\"from\":\"bot\",\"text\":\"Choose\",\"choices\":[{\"title\":"
        "\"Site\","
        "\"value\":\"https://x.example\",\"url\":\"https://x.example\"},{\"title\":\"No\","
        "\"value\":\"no\"}],\"seq\":5,\"ts\":\"1970-01-01T00:00:03.000000Z\"}",
        "{\"type\":\"message\",\"from\":\"user\",\"text\":\"a person\",\"seq\":6,"
        "\"ts\":\"1970-01-01T00:00:04.000000Z\"}",
        "{\"type\":\"message\",\"from\":\"bot\",\"text\":\"One moment\",\"choices\":[],\"seq\":7,"
        "\"ts\":\"1970-01-01T00:00:05.000000Z\"}",
        "{\"type\":\"handoff\",\"queue\":\"billing\",\"reason\":\"asked\",\"summary\":{},\"seq\":8,"
        "\"ts\":\"1970-01-01T00:00:06.000000Z\"}",
    };
    assert_int_equal(cv->next_seq, 9);
    for (uint64_t i = 0; i < 8; i++)
        assert_string_equal(chat__conv_entry_text(cv, i + 1), want[i]);
    assert_int_equal(cv->status, BRAIN_ST_HANDOFF);
    char *h = json_dumps(cv->handoff, JSON_COMPACT);
    /* the entry without its type, as a live handoff keeps it */
    assert_string_equal(h, "{\"queue\":\"billing\",\"reason\":\"asked\",\"summary\":{},\"seq\":8,"
                           "\"ts\":\"1970-01-01T00:00:06.000000Z\"}");
    free(h);
    chat__conv_drop(c, cv);
    fx_close(&f);
}

/* A person's words and the desk's notices come back at the seqs their
 * "desk" events name, whatever the order of the events: the wait message
 * said before the entries of the turn that handed off, an agent's words
 * between two rows and after the last. They end the replies of the user
 * message before them. */
static void test_rebuild_places_desk_entries(void **state)
{
    fixture_t f;
    core_config_defaults(&f.cfg);
    chat_t *c = fx_open(&f);
    core_err_t err = {0};
    chat_conv_t *cv;
    assert_int_equal(
        chat__conv_add(c, BRAIN_CH_CHAT, "00112233445566778899aabbccddee00", &cv, &err), 0);
    const char *rec_text =
        "{\"outcome\":\"escalated\",\"turns\":["
        "{\"seq\":1,\"direction\":\"out\",\"text\":\"Hi\",\"ts_us\":1000000},"
        "{\"seq\":2,\"direction\":\"in\",\"text\":\"a person\",\"client_id\":\"c1\","
        "\"ts_us\":2000000},"
        "{\"seq\":3,\"direction\":\"out\",\"text\":\"One moment\",\"ts_us\":3000000},"
        "{\"seq\":4,\"direction\":\"in\",\"text\":\"hello?\",\"ts_us\":5000000}],"
        "\"events\":["
        "{\"kind\":\"desk\",\"turn_seq\":0,\"name\":\"ann\",\"ts_us\":6000000,\"detail\":"
        "{\"from\":\"agent\",\"agent\":\"ann\",\"text\":\"Bye\",\"entry\":8}},"
        "{\"kind\":\"handoff\",\"turn_seq\":3,\"name\":\"asked\",\"detail\":{\"queue\":\"q\"}"
        ",\"ts_us\":3000000},"
        "{\"kind\":\"desk\",\"turn_seq\":0,\"ts_us\":3500000,\"detail\":"
        "{\"from\":\"system\",\"text\":\"You are number 1\",\"entry\":2}},"
        "{\"kind\":\"desk\",\"turn_seq\":0,\"name\":\"ann\",\"ts_us\":4000000,\"detail\":"
        "{\"from\":\"agent\",\"agent\":\"ann\",\"text\":\"Hi, Ann\",\"entry\":6}}]}";
    json_t *rec = json_loads(rec_text, 0, NULL);
    assert_non_null(rec);
    chat_known_t known;
    chat__conv_rebuild(cv, rec, &known);
    static const char *want[] = {
        "{\"type\":\"message\",\"from\":\"bot\",\"text\":\"Hi\",\"choices\":[],\"seq\":1,"
        "\"ts\":\"1970-01-01T00:00:01.000000Z\"}",
        "{\"type\":\"message\",\"from\":\"system\",\"text\":\"You are number 1\",\"seq\":2,"
        "\"ts\":\"1970-01-01T00:00:03.500000Z\"}",
        "{\"type\":\"message\",\"from\":\"user\",\"text\":\"a person\",\"id\":\"c1\","
        "\"seq\":3,\"ts\":\"1970-01-01T00:00:02.000000Z\"}",
        "{\"type\":\"message\",\"from\":\"bot\",\"text\":\"One moment\",\"choices\":[],"
        "\"seq\":4,\"ts\":\"1970-01-01T00:00:03.000000Z\"}",
        "{\"type\":\"handoff\",\"queue\":\"q\",\"reason\":\"asked\",\"summary\":{},\"seq\":5,"
        "\"ts\":\"1970-01-01T00:00:03.000000Z\"}",
        "{\"type\":\"message\",\"from\":\"agent\",\"text\":\"Hi, Ann\",\"agent\":\"ann\","
        "\"seq\":6,\"ts\":\"1970-01-01T00:00:04.000000Z\"}",
        "{\"type\":\"message\",\"from\":\"user\",\"text\":\"hello?\",\"seq\":7,"
        "\"ts\":\"1970-01-01T00:00:05.000000Z\"}",
        "{\"type\":\"message\",\"from\":\"agent\",\"text\":\"Bye\",\"agent\":\"ann\","
        "\"seq\":8,\"ts\":\"1970-01-01T00:00:06.000000Z\"}",
    };
    assert_int_equal(cv->next_seq, 9);
    for (uint64_t i = 0; i < 8; i++)
        assert_string_equal(chat__conv_entry_text(cv, i + 1), want[i]);
    assert_int_equal(cv->status, BRAIN_ST_HANDOFF);
    /* c1's replies are the bot's words and the handoff, not the agent's */
    assert_int_equal(known.n, 1);
    assert_int_equal(known.items[known.first].seq, 3);
    assert_int_equal(known.items[known.first].replies_end, 6);
    json_decref(rec);
    chat__conv_drop(c, cv);
    fx_close(&f);
}

/* A conversation a person closed keeps the escalated outcome; its "closed"
 * event ends the rebuilt log, after what the agent said, as the live log
 * ended: status ended, the end entry last with the event's time. */
static void test_rebuild_of_a_closed_handoff(void **state)
{
    fixture_t f;
    core_config_defaults(&f.cfg);
    chat_t *c = fx_open(&f);
    core_err_t err = {0};
    chat_conv_t *cv;
    assert_int_equal(
        chat__conv_add(c, BRAIN_CH_CHAT, "00112233445566778899aabbccddee01", &cv, &err), 0);
    const char *rec_text =
        "{\"outcome\":\"escalated\",\"ended_us\":3000000,\"turns\":["
        "{\"seq\":1,\"direction\":\"in\",\"text\":\"a person\",\"ts_us\":2000000},"
        "{\"seq\":2,\"direction\":\"out\",\"text\":\"One moment\",\"ts_us\":3000000}],"
        "\"events\":["
        "{\"kind\":\"handoff\",\"turn_seq\":2,\"name\":\"asked\",\"detail\":{\"queue\":\"q\"}"
        ",\"ts_us\":3000000},"
        "{\"kind\":\"desk\",\"turn_seq\":0,\"name\":\"ann\",\"ts_us\":4000000,\"detail\":"
        "{\"from\":\"agent\",\"agent\":\"ann\",\"text\":\"Done\",\"entry\":4}},"
        "{\"kind\":\"closed\",\"turn_seq\":2,\"ts_us\":5000000}]}";
    json_t *rec = json_loads(rec_text, 0, NULL);
    assert_non_null(rec);
    chat__conv_rebuild(cv, rec, NULL);
    json_decref(rec);
    assert_int_equal(cv->next_seq, 6);
    assert_non_null(strstr(chat__conv_entry_text(cv, 3), "\"type\":\"handoff\""));
    assert_non_null(strstr(chat__conv_entry_text(cv, 4), "\"text\":\"Done\""));
    assert_string_equal(chat__conv_entry_text(cv, 5),
                        "{\"type\":\"end\",\"reason\":\"end\",\"seq\":5,"
                        "\"ts\":\"1970-01-01T00:00:05.000000Z\"}");
    assert_int_equal(cv->status, BRAIN_ST_ENDED);
    chat__conv_drop(c, cv);
    fx_close(&f);
}

/* A person released the handoff back to the bot: the outcome stays
 * escalated, and the "released" event after the handoff makes the rebuilt
 * conversation active, as it was live (no entry of its own); a handoff
 * after the release is the latest word again. */
static void test_rebuild_of_a_released_handoff(void **state)
{
    fixture_t f;
    core_config_defaults(&f.cfg);
    chat_t *c = fx_open(&f);
    core_err_t err = {0};
    chat_conv_t *cv;
    assert_int_equal(
        chat__conv_add(c, BRAIN_CH_CHAT, "00112233445566778899aabbccddee02", &cv, &err), 0);
    const char *head =
        "{\"outcome\":\"escalated\",\"ended_us\":3000000,\"turns\":["
        "{\"seq\":1,\"direction\":\"in\",\"text\":\"a person\",\"ts_us\":2000000},"
        "{\"seq\":2,\"direction\":\"out\",\"text\":\"One moment\",\"ts_us\":3000000},"
        "{\"seq\":3,\"direction\":\"out\",\"text\":\"Hi again\",\"ts_us\":5000000}],"
        "\"events\":["
        "{\"kind\":\"handoff\",\"turn_seq\":2,\"name\":\"asked\",\"detail\":{\"queue\":\"q\"}"
        ",\"ts_us\":3000000},"
        "{\"kind\":\"released\",\"turn_seq\":3,\"name\":\"greet\",\"ts_us\":5000000}";
    char *text = core_xasprintf("%s]}", head);
    json_t *rec = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(rec);
    chat__conv_rebuild(cv, rec, NULL);
    json_decref(rec);
    assert_int_equal(cv->next_seq, 5);
    assert_non_null(strstr(chat__conv_entry_text(cv, 3), "\"type\":\"handoff\""));
    assert_non_null(strstr(chat__conv_entry_text(cv, 4), "\"text\":\"Hi again\""));
    assert_int_equal(cv->status, BRAIN_ST_ACTIVE);
    chat__conv_drop(c, cv);
    assert_int_equal(
        chat__conv_add(c, BRAIN_CH_CHAT, "00112233445566778899aabbccddee03", &cv, &err), 0);
    text = core_xasprintf("%s,{\"kind\":\"handoff\",\"turn_seq\":3,\"name\":\"again\","
                          "\"detail\":{\"queue\":\"q\"},\"ts_us\":6000000}]}",
                          head);
    rec = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(rec);
    chat__conv_rebuild(cv, rec, NULL);
    json_decref(rec);
    assert_int_equal(cv->status, BRAIN_ST_HANDOFF);
    chat__conv_drop(c, cv);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_put_get_del_and_growth),
        cmocka_unit_test(test_idem_replay_mismatch_pending),
        cmocka_unit_test(test_idem_expiry_and_bound),
        cmocka_unit_test(test_sha256_known_answer),
        cmocka_unit_test(test_bearer_keys),
        cmocka_unit_test(test_key_still_valid),
        cmocka_unit_test(test_origins),
        cmocka_unit_test(test_conversation_log_ring_and_table_bound),
        cmocka_unit_test(test_history_bytes_bound),
        cmocka_unit_test(test_idle_end_is_recorded),
        cmocka_unit_test(test_busy_conversations_stay_off_the_lru),
        cmocka_unit_test(test_transcript_body_bytes),
        cmocka_unit_test(test_rebuild_from_a_record),
        cmocka_unit_test(test_rebuild_places_desk_entries),
        cmocka_unit_test(test_rebuild_of_a_closed_handoff),
        cmocka_unit_test(test_rebuild_of_a_released_handoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
