/* The WebSocket driver of `chorusctl simulate` (--url ws:// or wss://): each
 * simulated conversation opens its own GET /v1/chat/ws with the gateway key,
 * as a gateway does (docs/channels.md, "WebSocket"); --concurrency sockets
 * are open at once, all on one thread with poll().
 *
 * A turn: the client sends {"type":"message","text","id"}; the server
 * echoes the user's entry, says typing on, runs the turn, says typing off
 * and then appends the bot's entries (messages, handoff, end). Nothing in
 * the protocol counts the entries of a turn, so after typing off the client
 * sends a ping: the server wrote the turn's entries before it read the ping,
 * so its pong comes after all of them and closes the turn (a reply
 * numbered before the next turn's own entry would show it did not: it is
 * counted as ws_late_reply rather than taken for the next turn's). The
 * start event the server runs on a new socket is waited for the same way
 * before the first turn. Entries are acknowledged ({"type":"ack","seq"}) as each turn
 * closes. Latency is the client's: the message sent to the last reply frame
 * of the turn (typing off when the bot said nothing). */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/ctl_simulate.h"
#include "cmd/ctl_ws_client.h"

#define TIMEOUT_US (30 * 1000000ULL)
#define MAX_TEXTS 64

typedef enum { W_IDLE, W_TYPING, W_PONG, W_CLOSING } wphase_t;

typedef struct {
    struct wdrive_s *d;
    ctl_ws_t *ws;
    long conv;        /* -1 when idle */
    size_t next_turn; /* the turn in flight; SIZE_MAX for the start event */
    wphase_t phase;
    int ready, ended;
    char status[16], reason[64];
    char *texts[MAX_TEXTS];
    size_t n_texts;
    uint64_t sent_us, last_us, deadline_us, last_seq, acked;
    uint64_t echo_seq; /* the seq of this turn's own user entry; 0 before its echo */
    unsigned ping;
} wuser_t;

typedef struct wdrive_s {
    sim_t *s;
    ctl_ws_target_t target;
    long next;
    int refused;  /* the upgrade was refused: stop the run */
    json_t *told; /* failure kinds already explained on stderr */
} wdrive_t;

static void clear_texts(wuser_t *u)
{
    for (size_t i = 0; i < u->n_texts; i++)
        free(u->texts[i]);
    u->n_texts = 0;
}

/* Counts a failure and says, once per kind, what it was. */
static void fail(wuser_t *u, const char *kind, const char *detail)
{
    if (json_object_get(u->d->told, kind) == NULL) {
        json_object_set_new(u->d->told, kind, json_true());
        fprintf(stderr, "simulate: conversation %ld: %s: %s\n", u->conv, kind, detail);
    }
    sim_fail(u->d->s, (size_t)u->conv, kind);
    u->ended = 1;
}

static void send_json(wuser_t *u, json_t *f)
{
    char *text = json_dumps(f, JSON_COMPACT);
    json_decref(f);
    ctl_ws_send_text(u->ws, text, strlen(text));
    free(text);
}

static void send_turn(wuser_t *u)
{
    char id[32];
    snprintf(id, sizeof(id), "t%zu", u->next_turn + 1);
    const char *text = u->d->s->plan[u->conv].turns[u->next_turn].text;
    clear_texts(u);
    u->phase = W_TYPING;
    u->echo_seq = 0;
    u->sent_us = u->last_us = core_now_us();
    u->deadline_us = u->sent_us + TIMEOUT_US;
    send_json(u, json_pack("{s:s,s:s,s:s}", "type", "message", "text", text, "id", id));
}

/* The pong after typing off: the turn is complete. */
static void turn_done(wuser_t *u)
{
    sim_t *s = u->d->s;
    sim_result_t *r = &s->results[u->conv];
    if (u->next_turn != SIZE_MAX)
        sim_observe(s, (size_t)u->conv, u->next_turn, u->last_us - u->sent_us,
                    (const char *const *)u->texts, u->n_texts, u->status, NULL);
    snprintf(r->status, sizeof(r->status), "%s", u->status);
    if (u->reason[0])
        snprintf(r->reason, sizeof(r->reason), "%s", u->reason);
    if (u->last_seq > u->acked) {
        send_json(u, json_pack("{s:s,s:I}", "type", "ack", "seq", (json_int_t)u->last_seq));
        u->acked = u->last_seq;
    }
    size_t next = u->next_turn == SIZE_MAX ? 0 : u->next_turn + 1;
    if (strcmp(u->status, "active") != 0 || next >= s->plan[u->conv].n_turns) {
        u->phase = W_CLOSING;
        u->deadline_us = core_now_us() + TIMEOUT_US;
        ctl_ws_close(u->ws, 1000, "done");
        return;
    }
    u->next_turn = next;
    send_turn(u);
}

static void on_pong(ctl_ws_t *ws, const uint8_t *data, size_t len, void *user)
{
    wuser_t *u = user;
    char want[16];
    int n = snprintf(want, sizeof(want), "%u", u->ping);
    if (u->phase == W_PONG && len == (size_t)n && memcmp(data, want, len) == 0)
        turn_done(u);
}

static void on_entry(wuser_t *u, const json_t *f, const char *type)
{
    json_int_t seq = json_integer_value(json_object_get(f, "seq"));
    if (seq > 0 && (uint64_t)seq > u->last_seq)
        u->last_seq = (uint64_t)seq;
    const char *from = json_string_value(json_object_get(f, "from"));
    if (strcmp(type, "message") == 0 && (from == NULL || strcmp(from, "bot") != 0)) {
        if (u->echo_seq == 0 && seq > 0)
            u->echo_seq = (uint64_t)seq; /* the echo of the user's own message */
        return;
    }
    /* the user's entry goes in before its turn runs: a reply numbered
     * before it answered the turn before, whose pong came too early */
    if (u->next_turn != SIZE_MAX && (u->echo_seq == 0 || (uint64_t)seq < u->echo_seq)) {
        fail(u, "ws_late_reply", "a reply to the previous turn came after that turn closed");
        return;
    }
    if (strcmp(type, "message") == 0) {
        if (u->n_texts < MAX_TEXTS) {
            const char *t = json_string_value(json_object_get(f, "text"));
            u->texts[u->n_texts++] = core_xstrdup(t ? t : "");
        }
    } else if (strcmp(type, "handoff") == 0) {
        snprintf(u->status, sizeof(u->status), "handoff");
        const char *why = json_string_value(json_object_get(f, "reason"));
        snprintf(u->reason, sizeof(u->reason), "%s", why ? why : "");
    } else {
        snprintf(u->status, sizeof(u->status), "ended");
    }
    u->last_us = core_now_us();
}

static void on_message(ctl_ws_t *ws, const char *data, size_t len, void *user)
{
    wuser_t *u = user;
    json_t *f = json_loadb(data, len, 0, NULL);
    const char *type = json_string_value(json_object_get(f, "type"));
    char detail[300];
    if (type == NULL || u->ended || u->phase == W_CLOSING) {
        if (type == NULL && !u->ended)
            fail(u, "ws_bad_frame", "a frame that is not a JSON object with a \"type\"");
    } else if (strcmp(type, "error") == 0) {
        const char *code = json_string_value(json_object_get(f, "code"));
        const char *msg = json_string_value(json_object_get(f, "message"));
        char kind[64];
        snprintf(kind, sizeof(kind), "ws_%s", code ? code : "error");
        snprintf(detail, sizeof(detail), "error frame: %s", msg ? msg : "(no message)");
        fail(u, kind, detail);
    } else if (strcmp(type, "ready") == 0) {
        const char *st = json_string_value(json_object_get(f, "status"));
        snprintf(u->status, sizeof(u->status), "%s", st ? st : "active");
        u->ready = 1;
    } else if (strcmp(type, "typing") == 0) {
        if (!json_is_false(json_object_get(f, "on")) || u->phase != W_TYPING || !u->ready)
            goto out;
        if (u->n_texts == 0)
            u->last_us = core_now_us();
        u->phase = W_PONG;
        int n = snprintf(detail, sizeof(detail), "%u", ++u->ping);
        ctl_ws_ping(u->ws, detail, (size_t)n);
    } else if (!strcmp(type, "message") || !strcmp(type, "handoff") || !strcmp(type, "end")) {
        on_entry(u, f, type);
    }
out:
    json_decref(f);
}

static const ctl_ws_cb_t callbacks = {on_message, on_pong};

/* Opens the socket of the next planned conversation on u, or leaves u idle. */
static void next_conversation(wdrive_t *d, wuser_t *u)
{
    ctl_ws_free(u->ws);
    u->ws = NULL;
    clear_texts(u);
    u->conv = d->next < d->s->conversations ? d->next++ : -1;
    if (u->conv < 0)
        return;
    u->next_turn = SIZE_MAX;
    u->phase = W_TYPING; /* the start event's turn */
    u->ready = u->ended = 0;
    u->last_seq = u->acked = 0;
    snprintf(u->status, sizeof(u->status), "active");
    u->reason[0] = '\0';
    u->sent_us = u->last_us = core_now_us();
    u->deadline_us = u->sent_us + TIMEOUT_US;
    u->ws = ctl_ws_open(&d->target, "/v1/chat/ws", d->s->api_key, &callbacks, u);
}

/* The socket closed: as planned, or a failure to count. */
static void on_closed(wdrive_t *d, wuser_t *u)
{
    int http = ctl_ws_http_status(u->ws);
    if (http == 401 || http == 403) {
        fprintf(stderr,
                "simulate: %s refused the WebSocket upgrade: %s (the gateway key: --api-key or "
                "$CHORUS_API_KEY)\n",
                d->s->url, ctl_ws_error(u->ws));
        d->refused = 1;
    } else if (!u->ended && u->phase != W_CLOSING) {
        char kind[32];
        if (http != 0 && http != 101)
            snprintf(kind, sizeof(kind), "ws_http_%d", http);
        else if (ctl_ws_close_code(u->ws) != 0)
            snprintf(kind, sizeof(kind), "ws_closed_%d", ctl_ws_close_code(u->ws));
        else if (strncmp(ctl_ws_error(u->ws), "TLS ", 4) == 0)
            snprintf(kind, sizeof(kind), "ws_tls");
        else
            snprintf(kind, sizeof(kind), "%s", http == 0 ? "ws_connect" : "ws_closed");
        fail(u, kind, ctl_ws_error(u->ws));
    }
    d->s->done++;
    next_conversation(d, u);
}

static void check_deadline(wdrive_t *d, wuser_t *u, uint64_t now)
{
    if (u->conv < 0 || u->ended || now < u->deadline_us)
        return;
    if (u->phase == W_CLOSING) { /* the server never answered the close: done anyway */
        d->s->done++;
        next_conversation(d, u);
        return;
    }
    fail(u, "ws_timeout",
         u->next_turn == SIZE_MAX ? "no answer to the start of the conversation in 30 s"
                                  : "no complete reply to a turn in 30 s");
}

/* One round of poll() over the open sockets. */
static void poll_round(wdrive_t *d, wuser_t *users, struct pollfd *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        p[i].fd = users[i].ws ? ctl_ws_fd(users[i].ws) : -1;
        p[i].events = users[i].ws ? ctl_ws_events(users[i].ws) : 0;
        p[i].revents = 0;
    }
    poll(p, (nfds_t)n, 100);
    uint64_t now = core_now_us();
    for (size_t i = 0; i < n && !d->refused; i++) {
        wuser_t *u = &users[i];
        if (u->ws == NULL)
            continue;
        if (p[i].revents != 0 && ctl_ws_state(u->ws) != CTL_WS_CLOSED)
            ctl_ws_io(u->ws, p[i].revents);
        if (u->ended && ctl_ws_state(u->ws) == CTL_WS_OPEN) {
            u->phase = W_CLOSING; /* a failure: close and move on */
            u->deadline_us = now + TIMEOUT_US;
            ctl_ws_close(u->ws, 1000, "done");
        }
        if (ctl_ws_state(u->ws) == CTL_WS_CLOSED)
            on_closed(d, u);
        else
            check_deadline(d, u, now);
    }
}

int sim_run_ws(sim_t *s)
{
    wdrive_t d = {.s = s, .told = json_object()};
    char err[512];
    if (ctl_ws_target(s->url, &d.target, err, sizeof(err)) != 0) {
        fprintf(stderr, "simulate: --url %s\n", err);
        json_decref(d.told);
        return -1;
    }
    size_t n = (size_t)s->concurrency;
    wuser_t *users = core_xcalloc(n, sizeof(*users));
    struct pollfd *p = core_xcalloc(n, sizeof(*p));
    for (size_t i = 0; i < n; i++) {
        users[i].d = &d;
        next_conversation(&d, &users[i]);
    }
    for (;;) {
        size_t busy = 0;
        for (size_t i = 0; i < n; i++)
            busy += users[i].ws != NULL;
        if (busy == 0 || d.refused)
            break;
        poll_round(&d, users, p, n);
        sim_progress(s, 0);
    }
    for (size_t i = 0; i < n; i++) {
        ctl_ws_free(users[i].ws);
        clear_texts(&users[i]);
    }
    free(users);
    free(p);
    ctl_ws_target_dispose(&d.target);
    json_decref(d.told);
    return d.refused ? -1 : 0;
}
