/* The chat channel's WebSocket, GET /v1/chat/ws[?conversation=ID&last_seq=N]:
 * JSON frames both ways, one conversation per socket.
 *
 * Client -> server: {"type":"message","text":..,"id":..} (or "event":"start"),
 * {"type":"ack","seq":N}, {"type":"typing"}. Server -> client: "ready" on
 * open, then the conversation's log entries as they happen ("message" from
 * user or bot, "handoff", "end", each with its seq), "typing" while a turn
 * runs and "error". Everything in the log reaches every socket following
 * the conversation, so replies that arrive after the client sent nothing
 * (a slow backend, a REST turn on the same conversation) are pushed as
 * they complete.
 *
 * Resume: a client that reconnects with ?conversation=ID&last_seq=N gets
 * every entry after N again, in order, then live ones; without last_seq,
 * every entry held (as last_seq=0). Where a resume starts is the client's
 * to say: an "ack" tells the server what one socket has shown, and a new
 * socket cannot be told apart from another client's (a second tab, another
 * worker of a gateway) that never showed those entries. A message id the
 * server has seen already is not run twice (the server answers with an
 * "ack" naming the seq it got), so a client that resends what it was not
 * sure got through never doubles a turn.
 *
 * Followers: at most chat.max_followers sockets follow one conversation. A
 * socket that starts following a conversation already at the limit closes
 * the oldest follower (an "error" frame with code "replaced", then close
 * 1008): the newest wins, so a reloaded page resumes even while its old
 * socket is not yet known to be gone, and the one closed can resume by seq
 * like any other.
 *
 * Authentication at the upgrade: a gateway key (Authorization: Bearer), or
 * for the widget a browser Origin allowed by chat.allowed_origins (or the
 * daemon's own origin). Widget conversations use the "web" variants. A
 * conversation started over a gateway key runs in that key's environment
 * (staging or production), as over REST; the widget's in the default one.
 * A socket resumes only a conversation its key (by name) or, for the
 * widget, the widget started; any other is not found, as over REST. A
 * socket outlives its upgrade, so a reload that takes its key out of
 * chat.api_keys (or gives the key's name another secret) closes it, 1008:
 * a revoked key runs no more turns.
 *
 * This file has the socket, the session and the resume; the frames from
 * the client are chan_chat_ws_frames.c's. */
#define LOG_MODULE "chat"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "channels/chan_chat_ws_int.h"

/* A resumed conversation the table does not hold is looked up in the store;
 * frames the client sends meanwhile wait (up to this many) and run after. */
#define WS_MAX_HELD 32

typedef struct ws_find_s {
    ws_session_t *s; /* NULL once the socket closed */
} ws_find_t;

/* Acts on what a send to s answered (net_ws_send_text, net_ws_send_frame):
 * a reader too slow for websocket.send_queue_bytes is closed; one already
 * closing (CORE_ERR_CLOSED) gets nothing more and stops following at
 * on_close. */
static void sent(ws_session_t *s, int rc)
{
    if (rc == CORE_ERR_BUSY) {
        /* a reader this slow resumes later from its last seq */
        LOG_INFO("event=chat_ws_slow rid=%s", net_ws_id(s->ws));
        net_ws_close(s->ws, 1008, "send queue full");
    }
}

static void send_text(ws_session_t *s, const char *text, size_t len)
{
    sent(s, net_ws_send_text(s->ws, text, len));
}

void chat__ws_send_frame(ws_session_t *s, const json_t *frame)
{
    char *text = json_dumps(frame, JSON_COMPACT);
    send_text(s, text, strlen(text));
    free(text);
}

void chat__ws_send_error(ws_session_t *s, const char *code, const char *id, const char *msg)
{
    json_t *f = json_pack("{s:s,s:s,s:s}", "type", "error", "code", code, "message", msg);
    if (id != NULL)
        json_object_set_new(f, "id", json_string(id));
    chat__ws_send_frame(s, f);
    json_decref(f);
}

void chat__ws_broadcast(chat_conv_t *cv, const json_t *frame)
{
    if (chat__list_empty(&cv->subs))
        return;
    char *text = json_dumps(frame, JSON_COMPACT); /* once for every follower */
    chat__ws_broadcast_text(cv, text, strlen(text));
    free(text);
}

/* One UTF-8 check and one frame for every follower: each then costs a copy
 * of the frame into its socket's output (net_ws_send_frame), which answers,
 * orders and limits as net_ws_send_text would. */
void chat__ws_broadcast_text(chat_conv_t *cv, const char *text, size_t len)
{
    if (chat__list_empty(&cv->subs))
        return;
    net_ws_frame_t *frame = net_ws_frame_text(text, len);
    if (frame == NULL) { /* not UTF-8: every socket would refuse it */
        LOG_WARN("event=chat_ws_not_sent conversation=%s reason=invalid_utf8", cv->id);
        return;
    }
    chat_link_t *l = cv->subs.next;
    while (l != &cv->subs) {
        chat_link_t *next = l->next; /* a send may close (and detach) this one */
        ws_session_t *s = CHAT_CONTAINER(l, ws_session_t, link);
        sent(s, net_ws_send_frame(s->ws, frame));
        l = next;
    }
    net_ws_frame_free(frame);
}

void chat__ws_typing(chat_conv_t *cv, int on)
{
    if (chat__list_empty(&cv->subs))
        return;
    json_t *f = json_pack("{s:s,s:b}", "type", "typing", "on", on);
    chat__ws_broadcast(cv, f);
    json_decref(f);
}

/* ---- upgrade and open --------------------------------------------------- */

static int parse_seq(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s < '0' || *s > '9' || *end != '\0' || errno != 0)
        return -1;
    *out = v;
    return 0;
}

static int on_upgrade(net_req_t *req, void *route_data)
{
    chat_t *c = route_data;
    const char *authz = net_req_header(req, "Authorization");
    const char *origin = net_req_header(req, "Origin");
    if (authz != NULL) {
        char gw[CHAT_KEY_NAME];
        core_err_t err = {0};
        if (chat__auth_bearer(c, authz, gw, NULL, &err) != 0) {
            LOG_INFO("event=chat_auth_failed rid=%s reason=\"%s\"", net_req_id(req), err.msg);
            return 401;
        }
        if (net_req_take_key(req, gw) != 0)
            return 429; /* limits.per_key_rps; Retry-After is set */
    } else if (origin == NULL) {
        return 401;
    } else if (!chat__origin_allowed(c->base.host.cfg, origin, net_req_header(req, "Host"))) {
        LOG_INFO("event=chat_origin_refused rid=%s", net_req_id(req));
        return 403;
    }
    const char *last = net_req_query(req, "last_seq");
    uint64_t seq;
    if (last != NULL && parse_seq(last, &seq) != 0)
        return 400;
    if (chan_runtime(&c->base) == NULL)
        return 503;
    return 0;
}

/* Closes old, the oldest follower of its conversation, for s. It stops
 * following at once, so it gets nothing more; the error frame goes out
 * even if its send queue is full (net_ws_send_text never closes), the
 * close last, as it may end the socket (on_close) before it returns. */
static void replace(ws_session_t *old, const ws_session_t *s)
{
    chat_t *c = s->chat;
    chat_conv_t *cv = old->conv;
    chat__conv_unfollow(c, cv, &old->link);
    old->conv = NULL;
    c->ws_replaced++;
    LOG_INFO("event=chat_ws_replaced conversation=%s rid=%s by=%s max_followers=%lld", cv->id,
             net_ws_id(old->ws), net_ws_id(s->ws), c->base.host.cfg->chat.max_followers);
    static const char frame[] = /* send_error's shape */
        "{\"type\":\"error\",\"code\":\"replaced\",\"message\":\"a newer connection to this "
        "conversation took over; resume by seq to follow it here again\"}";
    net_ws_send_text(old->ws, frame, sizeof(frame) - 1);
    net_ws_close(old->ws, 1008, "replaced by a newer connection");
}

static void attach(ws_session_t *s, chat_conv_t *cv)
{
    size_t max = (size_t)s->chat->base.host.cfg->chat.max_followers;
    /* a while: chat.max_followers may have been lowered by a reload */
    while (cv->n_subs >= max && !chat__list_empty(&cv->subs))
        replace(CHAT_CONTAINER(cv->subs.next, ws_session_t, link), s);
    s->conv = cv;
    chat__conv_follow(s->chat, cv, &s->link);
}

/* A turn that failed: every follower hears it, with the message's id when
 * it had one, so that its sender can send it again (it was never echoed). */
void chat__ws_turn_failed(chat_conv_t *cv, const chat_result_t *r, const char *id)
{
    json_t *f = json_pack("{s:s,s:s,s:s}", "type", "error", "code", "turn_failed", "message",
                          r->message[0] ? r->message : core_strerror(r->error));
    if (id != NULL)
        json_object_set_new(f, "id", json_string(id));
    chat__ws_broadcast(cv, f);
    json_decref(f);
}

static void on_start_turn(chat_t *c, chat_conv_t *cv, const chat_result_t *r, void *data)
{
    /* the replies reached every follower through the log */
    if (r->error != 0 && data != NULL)
        chat__ws_turn_failed(cv, r, NULL);
}

static void send_ready(ws_session_t *s, int resumed)
{
    chat_conv_t *cv = s->conv;
    json_t *f = json_pack("{s:s,s:s,s:s,s:s,s:b,s:I,s:I}", "type", "ready", "conversation", cv->id,
                          "status", chat__status_name(cv->status), "channel",
                          brain_channel_name(cv->channel), "resumed", resumed, "first_seq",
                          (json_int_t)cv->first_seq, "last_seq", (json_int_t)(cv->next_seq - 1));
    chat__ws_send_frame(s, f);
    json_decref(f);
}

/* Attaches a resuming session and replays what the client has not seen:
 * after last_seq, or without it everything held (the client drops the seqs
 * it has shown already), never less than that client may have missed. */
static void resume_attach(ws_session_t *s, chat_conv_t *cv)
{
    uint64_t last = s->has_last ? s->last : 0;
    attach(s, cv);
    send_ready(s, 1);
    if (last + 1 < cv->first_seq && last < cv->next_seq - 1)
        chat__ws_send_error(s, "history_truncated", NULL,
                            "older entries are no longer held; replay starts at first_seq");
    uint64_t from = last < cv->first_seq ? cv->first_seq : last + 1;
    for (uint64_t q = from; last < cv->next_seq && q < cv->next_seq; q++) {
        const char *e = chat__conv_entry_text(cv, q);
        if (e != NULL)
            send_text(s, e, strlen(e));
    }
    if (cv->pending > 0)
        chat__ws_typing(cv, 1);
}

static void resume_failed(ws_session_t *s, int status)
{
    if (status == CORE_ERR_NOT_FOUND) {
        /* a page's WebSocket cannot see an upgrade's status: say it in a frame */
        chat__ws_send_error(s, "conversation_not_found", NULL,
                            "no such conversation; open a new one");
        net_ws_close(s->ws, 4404, "conversation not found");
    } else {
        chat__ws_send_error(s, status == CORE_ERR_LIMIT ? "at_capacity" : "unavailable", NULL,
                            "the conversation could not be read back; try again later");
        net_ws_close(s->ws, 1013, "try again later");
    }
}

/* The session's conversation is cv: attached if the session's key (or the
 * widget) owns it, else not found, as an id that never existed. */
static void resume_found(ws_session_t *s, chat_conv_t *cv)
{
    const char *gw = s->gw[0] ? s->gw : NULL;
    if (chat__conv_owned(cv, gw)) {
        resume_attach(s, cv);
        return;
    }
    LOG_INFO("event=chat_conversation_refused conversation=%s gateway=%s rid=%s reason=not_owner",
             cv->id, gw ? gw : "-", net_ws_id(s->ws));
    resume_failed(s, CORE_ERR_NOT_FOUND);
}

static void drop_held(ws_session_t *s)
{
    for (size_t i = 0; i < s->n_held; i++)
        free(s->held[i]);
    free(s->held);
    s->held = NULL;
    s->n_held = 0;
}

static void on_resume_found(chat_t *c, chat_conv_t *cv, int status, void *data)
{
    ws_find_t *f = data;
    ws_session_t *s = f->s;
    free(f);
    if (s == NULL)
        return; /* the socket closed meanwhile */
    s->finding = NULL;
    if (cv == NULL) {
        resume_failed(s, status);
        drop_held(s);
        return;
    }
    resume_found(s, cv);
    char **held = s->held;
    size_t n = s->n_held;
    s->held = NULL;
    s->n_held = 0;
    for (size_t i = 0; i < n; i++) {
        if (s->conv != NULL) /* a frame may have closed the socket */
            chat__ws_handle_frame(s, 0, held[i], strlen(held[i]));
        free(held[i]);
    }
    free(held);
}

static void resume_start(ws_session_t *s)
{
    ws_find_t *f = core_xcalloc(1, sizeof(*f));
    f->s = s;
    chat_conv_t *cv = NULL;
    int rc = chat__conv_find(s->chat, s->want, on_resume_found, f, &cv);
    if (rc == 0) {
        s->finding = f;
        return;
    }
    free(f);
    if (rc == 1)
        resume_found(s, cv);
    else
        resume_failed(s, rc);
}

/* Attaches the session to its conversation (resuming: replays what the
 * client has not seen) or to a new one (running the start event). Runs
 * inside on_open: its frames follow the 101 in the connection's output and
 * leave with it, in one write. */
static void session_start(ws_session_t *s)
{
    chat_t *c = s->chat;
    if (s->resume) {
        resume_start(s);
        return;
    }
    chat_conv_t *cv;
    core_err_t err = {0};
    if (chat__conv_new(c, s->channel, &cv, &err) != 0) {
        chat__ws_send_error(s, "at_capacity", NULL, err.msg);
        net_ws_close(s->ws, 1013, "try again later");
        return;
    }
    snprintf(cv->env, sizeof(cv->env), "%s", s->env); /* as REST does for the same key */
    chat__conv_own(cv, s->gw[0] ? s->gw : NULL);
    attach(s, cv);
    send_ready(s, 0);
    LOG_INFO("event=chat_conversation_started conversation=%s channel=%s rid=%s", cv->id,
             brain_channel_name(s->channel), net_ws_id(s->ws));
    if (chat__turn(c, cv, BRAIN_EV_START, NULL, 0, NULL, NULL, on_start_turn, cv, &err) != 0)
        chat__ws_send_error(s, "unavailable", NULL, err.msg);
}

/* The frame a socket gets when its key is revoked: send_error's shape. */
static const char revoked_frame[] =
    "{\"type\":\"error\",\"code\":\"unauthorized\",\"message\":\"the API key this "
    "connection was opened with is no longer valid\"}";

/* Remembers the gateway key s came in with, so that a reload that revokes
 * it closes s (chat__ws_keys_changed). Returns 0, or -1 when the key is
 * not valid now (the upgrade checked it; kept for safety), s closing. */
static int session_key(ws_session_t *s, const char *authz)
{
    chat_t *c = s->chat;
    core_err_t err = {0};
    if (chat__auth_bearer(c, authz, s->gw, s->key_hash, &err) != 0) {
        net_ws_send_text(s->ws, revoked_frame, sizeof(revoked_frame) - 1);
        net_ws_close(s->ws, 1008, "API key revoked");
        return -1;
    }
    snprintf(s->env, sizeof(s->env), "%s", chat__key_env(c, s->gw));
    chat__list_push_back(&c->ws_keyed, &s->keyed);
    return 0;
}

static void on_open(net_ws_t *ws, net_req_t *req, void *route_data)
{
    chat_t *c = route_data;
    ws_session_t *s = core_xcalloc(1, sizeof(*s));
    s->chat = c;
    s->ws = ws;
    chat__list_init(&s->link);
    chat__list_init(&s->keyed);
    net_ws_set_data(ws, s);
    c->ws_sessions++;
    const char *id = net_req_query(req, "conversation");
    if (id != NULL) {
        s->resume = 1;
        if (strlen(id) <= CHAT_ID_LEN)
            snprintf(s->want, sizeof(s->want), "%s", id);
    }
    const char *ls = net_req_query(req, "last_seq");
    s->has_last = ls != NULL && parse_seq(ls, &s->last) == 0;
    const char *authz = net_req_header(req, "Authorization");
    s->channel = authz ? BRAIN_CH_CHAT : BRAIN_CH_WEB;
    uv_timer_init(c->base.host.loop, &s->closer);
    s->closer.data = s;
    if (authz == NULL || session_key(s, authz) == 0)
        session_start(s);
}

static void on_message(net_ws_t *ws, int binary, const char *data, size_t len)
{
    ws_session_t *s = net_ws_data(ws);
    if (s == NULL)
        return;
    if (s->finding != NULL && !binary) {
        if (s->n_held == WS_MAX_HELD) {
            net_ws_close(ws, 1008, "too many frames before ready");
            return;
        }
        s->held = core_xrealloc(s->held, (s->n_held + 1) * sizeof(*s->held));
        s->held[s->n_held++] = core_xstrndup(data, len);
        return;
    }
    chat__ws_handle_frame(s, binary, data, len);
}

static void on_session_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Cuts s off from everything that could send to it or run for it: its
 * conversation, a lookup under way, frames held for it, the keyed list. */
static void detach(ws_session_t *s)
{
    if (s->conv != NULL)
        chat__conv_unfollow(s->chat, s->conv, &s->link);
    s->conv = NULL;
    if (s->finding != NULL)
        s->finding->s = NULL; /* the lookup's answer finds no session */
    s->finding = NULL;
    drop_held(s);
    chat__list_remove(&s->keyed);
}

static void on_close(net_ws_t *ws, int code)
{
    ws_session_t *s = net_ws_data(ws);
    if (s == NULL)
        return;
    detach(s);
    /* freed once the loop is past whatever called on_close */
    uv_close((uv_handle_t *)&s->closer, on_session_closed);
}

/* Closes s, whose key is revoked, at once: detached first, so that it gets
 * nothing more and frames it sent before the lookup of its conversation
 * ended never run; the error frame goes out even if its send queue is
 * full (net_ws_send_text never closes), the close last, as it may end the
 * socket (on_close) before it returns. */
static void close_revoked(ws_session_t *s)
{
    LOG_INFO("event=chat_ws_key_revoked rid=%s gateway=%s conversation=%s", net_ws_id(s->ws), s->gw,
             s->conv ? s->conv->id : "-");
    detach(s);
    net_ws_send_text(s->ws, revoked_frame, sizeof(revoked_frame) - 1);
    net_ws_close(s->ws, 1008, "API key revoked");
}

void chat__ws_keys_changed(chat_t *c)
{
    chat_link_t *l = c->ws_keyed.next;
    while (l != &c->ws_keyed) {
        chat_link_t *next = l->next; /* revoking takes this one off the list */
        ws_session_t *s = CHAT_CONTAINER(l, ws_session_t, keyed);
        if (!chat__key_valid(c, s->gw, s->key_hash))
            close_revoked(s);
        l = next;
    }
}

int chat__ws_register(chat_t *c, net_router_t *r, core_err_t *err)
{
    static const net_ws_callbacks_t cb = {.on_upgrade = on_upgrade,
                                          .on_open = on_open,
                                          .on_message = on_message,
                                          .on_close = on_close};
    return net_router_add_ws(r, "/v1/chat/ws", &cb, c, err);
}
