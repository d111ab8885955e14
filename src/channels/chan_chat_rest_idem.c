/* Idempotency-Key on the chat REST API. The first POST with a key runs and
 * its answer is kept (chat.idempotency_ttl_s, scoped by gateway); a retry
 * gets that answer, never a second turn. A message's key also goes with its
 * turn into the log and the store, so that after a restart, when the cache
 * that held the answer is gone, the conversation read back from the store
 * still knows the key and a retry gets the turn's answer rebuilt from the
 * log. Protocol: docs/channels.md, "Idempotency keys". */
#define LOG_MODULE "chat"
#include <stdlib.h>
#include <string.h>

#include "channels/chan_chat_int.h"

static void request_fingerprint(net_req_t *req, uint8_t fp[32])
{
    size_t blen;
    const char *body = net_req_body(req, &blen);
    core_buf_t b;
    core_buf_init(&b, (size_t)-1);
    core_buf_printf(&b, "%s %s\n", net_req_method(req), net_req_path(req));
    core_buf_append(&b, body, blen);
    core_sha256(b.data, b.len, fp);
    core_buf_dispose(&b);
}

/* Location of a created conversation, from its stored answer. */
static void set_location(net_req_t *req, const char *body)
{
    json_t *o = json_loads(body, 0, NULL);
    const char *id = json_string_value(json_object_get(o, "conversation"));
    if (id != NULL) {
        char loc[80];
        snprintf(loc, sizeof(loc), "/v1/chat/conversations/%.40s", id);
        net_resp_header(req, "Location", loc);
    }
    json_decref(o);
}

/* Answers a request whose Idempotency-Key was seen before (rc from
 * chat__idem_begin, e its entry). */
static void answer_seen(net_req_t *req, int rc, const chat_idem_entry_t *e)
{
    switch (rc) {
    case CHAT_IDEM_REPLAY:
        net_resp_header(req, "Idempotent-Replayed", "true");
        if (e->status == 201)
            set_location(req, e->body);
        net_resp_send(req, e->status, "application/json", e->body, strlen(e->body));
        return;
    case CHAT_IDEM_MISMATCH:
        net_resp_error(req, 422, "idempotency_key_reused",
                       "Idempotency-Key was already used for a different request");
        return;
    case CHAT_IDEM_PENDING:
        net_resp_header(req, "Retry-After", "1");
        net_resp_error(req, 409, "request_in_progress",
                       "a request with this Idempotency-Key is still running");
        return;
    default:
        net_resp_header(req, "Retry-After", "1");
        net_resp_error(req, 503, "at_capacity", "too many requests in flight");
        return;
    }
}

/* Looks up the Idempotency-Key. Returns 1 when the request was answered
 * (replayed or refused), 0 to go on (*entry set when the key was given). */
int chat__rest_idempotency(chat_t *c, net_req_t *req, const char *gateway,
                           chat_idem_entry_t **entry)
{
    *entry = NULL;
    const char *key = net_req_header(req, "Idempotency-Key");
    if (key == NULL)
        return 0;
    size_t klen = strlen(key);
    int printable = klen > 0 && klen <= CHAT_MAX_IDEM_KEY;
    for (size_t i = 0; i < klen && printable; i++)
        printable = key[i] > 0x20 && key[i] < 0x7f;
    if (!printable) {
        net_resp_error(req, 400, "invalid_idempotency_key",
                       "Idempotency-Key: must be 1-%d printable ASCII characters",
                       CHAT_MAX_IDEM_KEY);
        return 1;
    }
    uint8_t fp[32];
    request_fingerprint(req, fp);
    char *scoped = core_xasprintf("rest\n%s\n%s", gateway, key);
    const core_config_t *cfg = c->base.host.cfg;
    chat_idem_entry_t *e = NULL;
    int rc = chat__idem_begin(&c->idem, scoped, fp, (size_t)cfg->chat.idempotency_max_entries,
                              cfg->chat.idempotency_ttl_s * 1000000LL, (int64_t)core_now_us(), &e);
    free(scoped);
    if (rc == CHAT_IDEM_NEW) {
        *entry = e;
        return 0;
    }
    answer_seen(req, rc, e);
    return 1;
}

/* A retry whose key the gateway's cache no longer holds (the daemon
 * restarted) but the conversation's log does: answered with the turn's
 * answer, which is kept for the gateway's key too. Returns 1 when answered. */
int chat__rest_replay_known(chat_t *c, net_req_t *req, chat_conv_t *cv, const char *text,
                            size_t len, chat_idem_entry_t *idem)
{
    const char *key = net_req_header(req, "Idempotency-Key");
    if (idem == NULL || key == NULL)
        return 0;
    const chat_idem_entry_t *known = chat__conv_known(c, cv, key);
    if (known == NULL)
        return 0;
    if (!chat__idem_same_text(known, text ? text : "", text ? len : 0)) {
        chat__idem_cancel(&c->idem, idem);
        answer_seen(req, CHAT_IDEM_MISMATCH, NULL);
        return 1;
    }
    chat__idem_finish(idem, known->status, known->body, 0);
    LOG_INFO("event=chat_retry_answered_from_store conversation=%s seq=%llu", cv->id,
             (unsigned long long)known->seq);
    net_resp_header(req, "Idempotent-Replayed", "true");
    net_resp_send(req, idem->status, "application/json", idem->body, strlen(idem->body));
    return 1;
}
