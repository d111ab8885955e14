/* The chat channel's REST API for gateways and its registration:
 *   POST /v1/chat/conversations                 start one (runs the start event)
 *   POST /v1/chat/conversations/{id}/messages   {"text"} or {"event"}: one turn
 *   GET  /v1/chat/conversations/{id}            the transcript
 * Every request needs a gateway key (Authorization: Bearer), and a
 * conversation answers only the key (by name) that started it: any other
 * gets the 404 of an id that never existed (chan_chat_auth.c). POSTs honour
 * Idempotency-Key: the first request runs the turn and its answer is kept
 * (chat.idempotency_ttl_s); a retry gets that answer, never a second turn,
 * also after a restart (chan_chat_rest_idem.c).
 * Replies are sent from the runtime's done callback. Protocol:
 * docs/channels.md, docs/openapi.yaml. */
#define LOG_MODULE "chat"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "channels/chan_chat_int.h"
#include "channels/chan_twilio_int.h"

static chat_t the_chat; /* one adapter per process: registration is one call */

runtime_t *chan_runtime(const chan_t *ch)
{
    return ch->host.runtime ? ch->host.runtime(ch->host.owner) : NULL;
}

void chan_resp_turn_error(net_req_t *req, const chan_t *ch, int rc, const core_err_t *err)
{
    runtime_t *rt = chan_runtime(ch);
    if (rc == CORE_ERR_BUSY && rt != NULL && runtime_flowset(rt) != NULL) {
        net_resp_header(req, "Retry-After", "1");
        /* the conversation's queue is full, or the store is pushing back */
        net_resp_error(req, 429, "conversation_busy", "%s; retry later",
                       err && err->msg[0] ? err->msg : "too many turns queued");
        return;
    }
    net_resp_header(req, "Retry-After", "5");
    if (rc == CORE_ERR_LIMIT)
        net_resp_error(req, 503, "at_capacity", "%s", err && err->msg[0] ? err->msg : "full");
    else if (rc == CORE_ERR_INVALID)
        net_resp_error(req, 400, "invalid_request", "%s", err ? err->msg : "invalid");
    else
        net_resp_error(req, 503, "unavailable", "no flows are serving yet (%s)",
                       err && err->msg[0] ? err->msg : core_strerror(rc));
}

/* ---- request checks ----------------------------------------------------- */

static int authenticate(chat_t *c, net_req_t *req, char name[CHAT_KEY_NAME])
{
    core_err_t err = {0};
    if (chat__auth_bearer(c, net_req_header(req, "Authorization"), name, NULL, &err) == 0)
        return 0;
    LOG_INFO("event=chat_auth_failed rid=%s remote=%s reason=\"%s\"", net_req_id(req),
             net_req_remote(req), err.msg);
    net_resp_header(req, "WWW-Authenticate", "Bearer realm=\"chorus\"");
    net_resp_error(req, 401, "unauthorized", "%s", err.msg);
    return -1;
}

/* CORS headers, the gateway key, and that key's rate (limits.per_key_*). */
static int admit(chat_t *c, net_req_t *req, char name[CHAT_KEY_NAME])
{
    chat__cors(c, req);
    if (authenticate(c, req, name) != 0)
        return -1;
    if (net_req_take_key(req, name) == 0)
        return 0;
    net_resp_error(req, 429, "rate_limited", "too many requests with this API key; retry later");
    return -1;
}

/* Parses a JSON object body; an empty body is {} when allow_empty. */
static json_t *body_object(net_req_t *req, int allow_empty)
{
    size_t len;
    net_req_body(req, &len);
    if (len == 0 && allow_empty)
        return json_object();
    const char *ct = net_req_header(req, "Content-Type");
    if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0 ||
        (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' ')) {
        net_resp_error(req, 415, "unsupported_media_type",
                       "Content-Type must be application/json (got %s)", ct ? ct : "none");
        return NULL;
    }
    core_err_t err = {0};
    json_t *body = net_req_json(req, &err);
    if (body == NULL) {
        net_resp_error(req, 400, "invalid_json", "request body: %s", err.msg);
        return NULL;
    }
    if (!json_is_object(body)) {
        json_decref(body);
        net_resp_error(req, 400, "invalid_request", "request body: must be a JSON object");
        return NULL;
    }
    return body;
}

/* SHA-256 of method, path and body: what "the same request" means. */
/* ---- turns from REST ---------------------------------------------------- */

typedef struct rest_op_s {
    net_req_t *req;          /* NULL once the client went away */
    chat_idem_entry_t *idem; /* where to keep the answer, or NULL */
    int created;             /* POST /conversations: 201 + Location */
} rest_op_t;

static void on_rest_abort(net_req_t *req, void *data)
{
    rest_op_t *op = data;
    op->req = NULL; /* the turn goes on; its answer is still kept for a retry */
}

/* The buffer REST replies are written in: the loop thread's (one adapter
 * per process), kept between replies so that writing one allocates nothing. */
static core_buf_t reply_buf = {NULL, 0, 0, (size_t)-1};

static void on_rest_turn(chat_t *c, chat_conv_t *cv, const chat_result_t *r, void *data)
{
    rest_op_t *op = data;
    if (r->error != 0) {
        chat__idem_cancel(&c->idem, op->idem); /* a retry may succeed */
        if (op->req != NULL) {
            net_resp_header(op->req, "Retry-After", "5");
            net_resp_error(op->req, 503, "turn_failed", "the turn did not complete: %s",
                           r->message[0] ? r->message : core_strerror(r->error));
        }
        free(op);
        return;
    }
    core_buf_t *b = &reply_buf;
    core_buf_reset(b);
    chat__turn_reply(b, cv, r);
    int status = op->created ? 201 : 200;
    if (op->idem != NULL)
        chat__idem_finish(op->idem, status, b->data, 0);
    if (op->req != NULL) {
        if (op->created) {
            char loc[80];
            snprintf(loc, sizeof(loc), "/v1/chat/conversations/%s", cv->id);
            net_resp_header(op->req, "Location", loc);
        }
        net_resp_send(op->req, status, "application/json", b->data, b->len);
    }
    free(op);
}

static int start_turn(chat_t *c, net_req_t *req, chat_conv_t *cv, brain_event_t ev,
                      const char *text, size_t len, chat_idem_entry_t *idem, int created)
{
    rest_op_t *op = core_xcalloc(1, sizeof(*op));
    *op = (rest_op_t){.req = req, .idem = idem, .created = created};
    core_err_t err = {0};
    /* a message's key is stored with its turn, for a retry after a restart */
    const char *key = idem != NULL && !created ? net_req_header(req, "Idempotency-Key") : NULL;
    int rc = chat__turn(c, cv, ev, text, len, key, NULL, on_rest_turn, op, &err);
    if (rc != 0) {
        free(op);
        chat__idem_cancel(&c->idem, idem);
        if (created)
            chat__conv_drop(c, cv);
        chan_resp_turn_error(req, &c->base, rc, &err);
        return rc;
    }
    net_req_on_abort(req, on_rest_abort, op);
    return 0;
}

/* ---- handlers ----------------------------------------------------------- */

static void on_create(net_req_t *req, void *data)
{
    chat_t *c = data;
    char gw[CHAT_KEY_NAME];
    if (admit(c, req, gw) != 0)
        return;
    json_t *body = body_object(req, 1);
    if (body == NULL)
        return;
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        net_resp_error(req, 400, "invalid_request", "request body: unknown key \"%s\"", k);
        json_decref(body);
        return;
    }
    json_decref(body);
    chat_idem_entry_t *idem;
    if (chat__rest_idempotency(c, req, gw, &idem))
        return;
    chat_conv_t *cv;
    core_err_t err = {0};
    if (chan_runtime(&c->base) == NULL || chat__conv_new(c, BRAIN_CH_CHAT, &cv, &err) != 0) {
        chat__idem_cancel(&c->idem, idem);
        chan_resp_turn_error(req, &c->base, err.code ? err.code : CORE_ERR_CLOSED, &err);
        return;
    }
    snprintf(cv->env, sizeof(cv->env), "%s", chat__key_env(c, gw)); /* staging or production */
    chat__conv_own(cv, gw);
    char id[CHAT_ID_LEN + 1];
    memcpy(id, cv->id, sizeof(id)); /* cv is gone if the start fails */
    if (start_turn(c, req, cv, BRAIN_EV_START, NULL, 0, idem, 1) == 0)
        LOG_INFO("event=chat_conversation_started conversation=%s gateway=%s", id, gw);
}

/* What a request does with its conversation, once gw (the gateway key's
 * name) is known to own it: after is GET's ?after=. */
typedef void (*conv_go_fn)(chat_t *c, net_req_t *req, chat_conv_t *cv, uint64_t after,
                           const char *gw);

/* A request waiting for the store to say whether its conversation exists. */
typedef struct lookup_s {
    net_req_t *req; /* NULL once the client went away */
    conv_go_fn go;
    uint64_t after; /* GET's ?after= */
} lookup_t;

static void not_found(net_req_t *req)
{
    const char *id = net_req_param(req, "id");
    net_resp_error(req, 404, "conversation_not_found", "no conversation \"%.64s\"", id ? id : "");
}

/* Runs go when gw owns cv; else answers as for an id that never existed:
 * the id is no secret (Location headers, logs, webhooks carry it), and a
 * 403 would tell whoever holds one that the conversation exists. */
static void go_if_owned(chat_t *c, net_req_t *req, chat_conv_t *cv, uint64_t after, const char *gw,
                        conv_go_fn go)
{
    if (chat__conv_owned(cv, gw)) {
        go(c, req, cv, after, gw);
        return;
    }
    LOG_INFO("event=chat_conversation_refused conversation=%s gateway=%s rid=%s reason=not_owner",
             cv->id, gw, net_req_id(req));
    not_found(req);
}

static void on_lookup_abort(net_req_t *req, void *data)
{
    lookup_t *l = data;
    l->req = NULL;
}

static void on_found(chat_t *c, chat_conv_t *cv, int status, void *data)
{
    lookup_t *l = data;
    net_req_t *req = l->req;
    if (req != NULL) {
        net_req_on_abort(req, NULL, NULL);
        if (status == CORE_ERR_NOT_FOUND) {
            not_found(req);
        } else if (status != 0) {
            core_err_t err = {0};
            core_err_set(&err, status, "the conversation could not be read back: %s",
                         core_strerror(status));
            chan_resp_turn_error(req, &c->base, status == CORE_ERR_LIMIT ? status : CORE_ERR_CLOSED,
                                 &err);
        } else {
            /* again: the key may have been revoked while the store looked */
            char gw[CHAT_KEY_NAME];
            if (authenticate(c, req, gw) == 0)
                go_if_owned(c, req, cv, l->after, gw, l->go);
        }
    }
    free(l);
}

/* Runs go with the request's conversation: at once when the table holds it,
 * else once the store has answered (the table is a cache; the store says
 * whether a conversation exists). Unknown ids get 404, and so do other
 * gateways' conversations. */
static void with_conv(chat_t *c, net_req_t *req, uint64_t after, const char *gw, conv_go_fn go)
{
    const char *id = net_req_param(req, "id");
    chat_conv_t *cv = id ? chat__conv_get(c, id) : NULL;
    if (cv != NULL) { /* the common case: no lookup to wait for */
        go_if_owned(c, req, cv, after, gw, go);
        return;
    }
    lookup_t *l = core_xcalloc(1, sizeof(*l));
    *l = (lookup_t){.req = req, .go = go, .after = after};
    int rc = id ? chat__conv_find(c, id, on_found, l, &cv) : CORE_ERR_NOT_FOUND;
    if (rc == 0) {
        net_req_on_abort(req, on_lookup_abort, l);
        return;
    }
    free(l);
    if (rc == 1)
        go_if_owned(c, req, cv, after, gw, go);
    else if (rc == CORE_ERR_NOT_FOUND)
        not_found(req);
    else
        chan_resp_turn_error(req, &c->base, CORE_ERR_CLOSED, NULL);
}

/* Validates {"text": "..."} or {"event": "start"}; returns 0 or answers. */
static int message_input(chat_t *c, net_req_t *req, json_t *body, brain_event_t *ev,
                         const char **text, size_t *len)
{
    json_t *t = json_object_get(body, "text"), *e = json_object_get(body, "event");
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        if (strcmp(k, "text") != 0 && strcmp(k, "event") != 0) {
            net_resp_error(req, 400, "invalid_request", "request body: unknown key \"%s\"", k);
            return -1;
        }
    }
    if ((t == NULL) == (e == NULL)) {
        net_resp_error(req, 400, "invalid_request",
                       "request body: give exactly one of "
                       "\"text\" and \"event\"");
        return -1;
    }
    if (e != NULL) {
        if (!json_is_string(e) || strcmp(json_string_value(e), "start") != 0) {
            net_resp_error(req, 400, "invalid_request", "event: must be \"start\"");
            return -1;
        }
        *ev = BRAIN_EV_START;
        *text = NULL;
        *len = 0;
        return 0;
    }
    if (!json_is_string(t) || json_string_length(t) == 0) {
        net_resp_error(req, 400, "invalid_request", "text: must be a non-empty string");
        return -1;
    }
    if (json_string_length(t) > (size_t)c->base.host.cfg->chat.max_text_bytes) {
        net_resp_error(req, 413, "text_too_long", "text: %zu bytes, at most %lld",
                       json_string_length(t), c->base.host.cfg->chat.max_text_bytes);
        return -1;
    }
    *ev = BRAIN_EV_MESSAGE;
    *text = json_string_value(t);
    *len = json_string_length(t);
    return 0;
}

static void message_go(chat_t *c, net_req_t *req, chat_conv_t *cv, uint64_t after, const char *gw)
{
    (void)after;
    json_t *body = body_object(req, 0);
    if (body == NULL)
        return;
    brain_event_t ev;
    const char *text;
    size_t len;
    chat_idem_entry_t *idem = NULL;
    if (message_input(c, req, body, &ev, &text, &len) == 0 &&
        !chat__rest_idempotency(c, req, gw, &idem) &&
        !chat__rest_replay_known(c, req, cv, text, len, idem)) {
        if (cv->status == BRAIN_ST_ENDED) {
            chat__idem_cancel(&c->idem, idem);
            net_resp_error(req, 409, "conversation_ended",
                           "conversation %s has ended; start a new one", cv->id);
        } else {
            start_turn(c, req, cv, ev, text, len, idem, 0);
        }
    }
    json_decref(body);
}

static void on_message(net_req_t *req, void *data)
{
    chat_t *c = data;
    char gw[CHAT_KEY_NAME];
    if (admit(c, req, gw) != 0)
        return;
    with_conv(c, req, 0, gw, message_go);
}

static void get_go(chat_t *c, net_req_t *req, chat_conv_t *cv, uint64_t after, const char *gw)
{
    (void)gw;
    core_buf_t *b = &reply_buf;
    core_buf_reset(b);
    chat__transcript(b, cv, after);
    net_resp_send(req, 200, "application/json", b->data, b->len);
}

static void on_get(net_req_t *req, void *data)
{
    chat_t *c = data;
    char gw[CHAT_KEY_NAME];
    if (admit(c, req, gw) != 0)
        return;
    /* ?after=N: only what came after seq N (a REST gateway polling for
     * replies it did not ask for, such as an idle timeout's goodbye) */
    const char *after = net_req_query(req, "after");
    char *end = NULL;
    unsigned long long n = 0;
    if (after != NULL) {
        errno = 0;
        n = strtoull(after, &end, 10);
        if (after[0] < '0' || after[0] > '9' || *end != '\0' || errno != 0) {
            net_resp_error(req, 400, "invalid_request", "after: must be a sequence number");
            return;
        }
    }
    with_conv(c, req, (uint64_t)n, gw, get_go);
}

chat_t *chat__instance(void)
{
    return the_chat.base.name != NULL ? &the_chat : NULL;
}

void chan_chat_stats(chan_chat_stats_t *out)
{
    out->ws_followers_replaced = the_chat.ws_replaced;
    out->conversations = the_chat.convs.count;
    out->history_bytes = the_chat.log_bytes;
    out->evictions = the_chat.evictions;
}

void chan_chat_keys_changed(void)
{
    if (the_chat.base.name != NULL)
        chat__ws_keys_changed(&the_chat);
}

void chan_idle_end(const runtime_turn_out_t *out)
{
    if (strncmp(out->key, "sms:", 4) == 0)
        sms__unasked_output(out, 0); /* forgets the list; the goodbye is not texted */
    else if (the_chat.base.name != NULL)
        chat__conv_idle_end(&the_chat, out);
}

int chan_chat_register(net_router_t *router, const chan_host_t *host, core_err_t *err)
{
    chat_t *c = &the_chat;
    chat__init(c, host);
    int rc = net_router_add(router, "POST", "/v1/chat/conversations", on_create, c, err);
    if (rc == 0)
        rc = net_router_add(router, "POST", "/v1/chat/conversations/{id}/messages", on_message, c,
                            err);
    if (rc == 0)
        rc = net_router_add(router, "GET", "/v1/chat/conversations/{id}", on_get, c, err);
    if (rc == 0)
        rc = chat__ws_register(c, router, err);
    if (rc == 0)
        rc = chat__web_register(c, router, err);
    if (rc == 0)
        rc = chat__cors_register(c, router, err);
    return rc;
}
