/* The chat WebSocket's frames from the client (chan_chat_ws.c has the
 * socket, the session and the resume): "message" runs a turn, each message
 * id once per conversation (a repeat gets an "ack" naming the seq it got);
 * "ack" (what the client has shown) and "typing" are checked and accepted.
 * An ack is one socket's and decides nothing for another: a resume starts
 * where its own last_seq says (chan_chat_ws.c). Bad frames get an "error"
 * frame that says what and where. Protocol: docs/channels.md, "WebSocket". */
#define LOG_MODULE "chat"
#include <stdlib.h>
#include <string.h>

#include "channels/chan_chat_ws_int.h"

/* The idempotency key of a message id: scoped to its conversation. */
static char *idem_key(const chat_conv_t *cv, const char *id)
{
    return core_xasprintf("ws\n%s\n%s", cv->id, id);
}

/* The message id of a key idem_key() made (ids may hold any character, the
 * conversation id has a fixed length). */
static const char *key_id(const char *key)
{
    return key + strlen("ws\n") + CHAT_ID_LEN + 1;
}

static void on_ws_turn(chat_t *c, chat_conv_t *cv, const chat_result_t *r, void *data)
{
    chat_idem_entry_t *e = data;
    if (r->error != 0) {
        chat__ws_turn_failed(cv, r, e != NULL ? key_id(e->key) : NULL);
        chat__idem_cancel(&c->idem, e);
    } else if (e != NULL) {
        e->done = 1;
    }
}

/* Runs each (conversation, id) once. Returns 0 to go on (*out: the pending
 * entry), or -1 when the frame was answered (a repeat, or refused). */
static int ws_idem_begin(ws_session_t *s, const char *id, const char *text, size_t len,
                         chat_idem_entry_t **out)
{
    chat_t *c = s->chat;
    const core_config_t *cfg = c->base.host.cfg;
    char *key = idem_key(s->conv, id);
    uint8_t fp[32];
    core_sha256(text, len, fp);
    chat_idem_entry_t *e = NULL;
    int rc = chat__idem_begin(&c->idem, key, fp, (size_t)cfg->chat.idempotency_max_entries,
                              cfg->chat.idempotency_ttl_s * 1000000LL, (int64_t)core_now_us(), &e);
    free(key);
    *out = e;
    const chat_idem_entry_t *known = rc == CHAT_IDEM_NEW ? chat__conv_known(c, s->conv, id) : NULL;
    if (known != NULL && !chat__idem_same_text(known, text, len)) {
        chat__idem_cancel(&c->idem, e); /* ran before a restart as another message */
        *out = NULL;
        rc = CHAT_IDEM_MISMATCH;
    } else if (known != NULL) { /* ran before a restart: a duplicate, from now on here too */
        chat__idem_finish(e, 200, NULL, known->seq);
        rc = CHAT_IDEM_REPLAY;
    }
    if (rc == CHAT_IDEM_NEW)
        return 0;
    if (rc < 0) {
        chat__ws_send_error(s, "at_capacity", id, "too many messages in flight");
    } else if (rc == CHAT_IDEM_MISMATCH) {
        chat__ws_send_error(s, "id_reused", id, "this id was already used for a different message");
    } else {
        json_t *a = json_pack("{s:s,s:s,s:I,s:b}", "type", "ack", "id", id, "seq",
                              (json_int_t)e->seq, "duplicate", 1);
        chat__ws_send_frame(s, a);
        json_decref(a);
    }
    return -1;
}

/* Checks a message frame's fields; returns 0 with them, or -1 when answered. */
static int message_fields(ws_session_t *s, json_t *f, const char **id, const char **text,
                          size_t *len)
{
    json_t *jid = json_object_get(f, "id"), *jt = json_object_get(f, "text");
    json_t *jev = json_object_get(f, "event");
    *id = json_is_string(jid) ? json_string_value(jid) : NULL;
    if ((jid != NULL && (*id == NULL || strlen(*id) == 0 || strlen(*id) > CHAT_MAX_CLIENT_ID)) ||
        (jt == NULL) == (jev == NULL) || (jt != NULL && !json_is_string(jt))) {
        chat__ws_send_error(
            s, "invalid_frame", *id,
            "a message has a string \"text\" or \"event\" and an optional string \"id\" "
            "of 1-128 bytes");
        return -1;
    }
    if (jev != NULL && (!json_is_string(jev) || strcmp(json_string_value(jev), "start") != 0)) {
        chat__ws_send_error(s, "invalid_frame", *id, "event: must be \"start\"");
        return -1;
    }
    *text = jt ? json_string_value(jt) : NULL; /* NULL: the start event */
    *len = jt ? json_string_length(jt) : 0;
    if (jt != NULL && *len == 0) {
        chat__ws_send_error(s, "invalid_frame", *id, "text: must not be empty");
        return -1;
    }
    if (*len > (size_t)s->chat->base.host.cfg->chat.max_text_bytes) {
        chat__ws_send_error(s, "too_large", *id, "text: longer than chat.max_text_bytes");
        return -1;
    }
    return 0;
}

static void frame_message(ws_session_t *s, json_t *f)
{
    chat_t *c = s->chat;
    chat_conv_t *cv = s->conv;
    const char *id, *text;
    size_t len;
    chat_idem_entry_t *e = NULL;
    if (message_fields(s, f, &id, &text, &len) != 0)
        return;
    if (id != NULL && ws_idem_begin(s, id, text ? text : "", len, &e) != 0)
        return;
    /* after the id's lookup: the resend of the message that ended the
     * conversation gets its duplicate ack, as over REST */
    if (cv->status == BRAIN_ST_ENDED) {
        chat__idem_cancel(&c->idem, e);
        chat__ws_send_error(s, "conversation_ended", id,
                            "this conversation has ended; open a new one");
        return;
    }
    core_err_t err = {0};
    if (e != NULL)
        e->seq = 0; /* the user's entry fills it in (a pending entry is never freed) */
    int rc = chat__turn(c, cv, text ? BRAIN_EV_MESSAGE : BRAIN_EV_START, text, len, id,
                        e && text ? &e->seq : NULL, on_ws_turn, e, &err);
    if (rc != 0) {
        chat__idem_cancel(&c->idem, e);
        chat__ws_send_error(s, rc == CORE_ERR_BUSY ? "busy" : "unavailable", id, err.msg);
    }
}

/* Checks an ack, and keeps nothing of it: as a resume point for the
 * conversation, one socket's ack would make another socket, resuming
 * without last_seq, skip entries it never showed. */
static void frame_ack(ws_session_t *s, json_t *f)
{
    json_t *q = json_object_get(f, "seq");
    if (!json_is_integer(q) || json_integer_value(q) < 0 ||
        (uint64_t)json_integer_value(q) >= s->conv->next_seq)
        chat__ws_send_error(s, "invalid_frame", NULL,
                            "ack: seq must be an integer no higher than last_seq");
}

void chat__ws_handle_frame(ws_session_t *s, int binary, const char *data, size_t len)
{
    net_ws_t *ws = s->ws;
    if (s->conv == NULL)
        return;
    if (binary) {
        chat__ws_send_error(s, "invalid_frame", NULL, "frames are JSON text");
        net_ws_close(ws, 1003, "binary frames are not accepted");
        return;
    }
    json_error_t jerr;
    json_t *f = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (f == NULL) {
        char msg[200];
        snprintf(msg, sizeof(msg), "%d:%d: %s", jerr.line, jerr.column, jerr.text);
        chat__ws_send_error(s, "invalid_json", NULL, msg);
        return;
    }
    const char *type = json_string_value(json_object_get(f, "type"));
    if (type != NULL && strcmp(type, "message") == 0)
        frame_message(s, f);
    else if (type != NULL && strcmp(type, "ack") == 0)
        frame_ack(s, f);
    else if (type == NULL || strcmp(type, "typing") != 0)
        chat__ws_send_error(s, "invalid_frame", NULL,
                            "type: must be \"message\", \"ack\" or \"typing\"");
    json_decref(f);
}
