/* The agent API (/v1/agent/...) and its event feed. Every route takes an
 * agent token (or an admin one) through admin__authorize and audits what it
 * changes. State changes answer 404 for an unknown handoff and 409 when the
 * handoff is not in a state that allows them (claimed twice, a message
 * after close). docs/agents.md, docs/openapi.yaml. */
#define LOG_MODULE "agents"
#include <stdlib.h>
#include <string.h>

#include "admin/agents_int.h"
#include "chorus/channels.h"

typedef struct ag_sub_s {
    struct ag_sub_s *next;
    net_ws_t *ws;
    uint8_t token[32]; /* SHA-256 of the token it opened with, checked again on a revoke */
} ag_sub_t;

static ag_desk_t *g_desk; /* for the socket callbacks */

/* One serialisation and one frame per event, whatever the number of
 * consoles: each of them then costs a copy of the frame into its socket's
 * output (net_ws_send_frame), where net_ws_send_text checked the UTF-8 and
 * copied the text again for every one. */
void ag__feed(ag_desk_t *d, const char *event, json_t *payload)
{
    json_t *f =
        json_pack("{s:s,s:I,s:o}", "type", event, "seq", (json_int_t)++d->seq, "handoff", payload);
    if (d->subs == NULL) {
        json_decref(f);
        return;
    }
    char *text = json_dumps(f, JSON_COMPACT);
    json_decref(f);
    net_ws_frame_t *frame = text ? net_ws_frame_text(text, strlen(text)) : NULL;
    free(text);
    for (ag_sub_t *s = d->subs, *next; s != NULL && frame != NULL; s = next) {
        next = s->next; /* a send may end (and free) this one */
        net_ws_send_frame(s->ws, frame);
    }
    net_ws_frame_free(frame);
}

/* Authorizes and finds the handoff; answers and returns NULL on failure. */
static ag_entry_t *begin(ag_desk_t *d, net_req_t *req, admin_identity_t *who)
{
    if (admin__authorize(d->admin, req, ADMIN_ROLE_AGENT, who) != 0)
        return NULL;
    if (!d->started) {
        admin__unavailable(req, "the desk is not running");
        return NULL;
    }
    const char *id = net_req_param(req, "id");
    ag_entry_t *e = id ? ag__find(d, id) : NULL;
    if (e == NULL)
        net_resp_error(req, 404, "not_found", "no handoff %s", id ? id : "");
    return e;
}

static json_t *body(net_req_t *req)
{
    size_t len = 0;
    net_req_body(req, &len);
    if (len == 0)
        return json_object();
    core_err_t err = {0};
    json_t *j = net_req_json(req, &err);
    if (!json_is_object(j)) {
        net_resp_error(req, 400, "invalid_json", "%s", err.msg[0] ? err.msg : "not an object");
        json_decref(j);
        return NULL;
    }
    return j;
}

static void answer(net_req_t *req, const ag_entry_t *e)
{
    json_t *o = ag__entry_json(e, 1);
    net_resp_json(req, 200, o);
    json_decref(o);
}

static int conflict(net_req_t *req, const ag_entry_t *e, const char *what)
{
    net_resp_error(req, 409, "conflict", "handoff %s is %s%s%s: %s", e->id,
                   ag__state_name(e->state), e->agent ? " by " : "", e->agent ? e->agent : "",
                   what);
    return -1;
}

/* Only the agent who claimed a handoff acts on it while it is claimed:
 * answers 409 and returns 1 when who is someone else. With admin_may, an
 * admin token may act on another agent's claim (a supervisor releasing or
 * closing for an agent who left); the audit entry names both. */
static int not_theirs(net_req_t *req, const ag_entry_t *e, const admin_identity_t *who,
                      int admin_may)
{
    if (e->state != AG_CLAIMED || e->agent == NULL || strcmp(e->agent, who->name) == 0)
        return 0;
    if (admin_may && who->role == ADMIN_ROLE_ADMIN)
        return 0;
    conflict(req, e, "another agent has it");
    return 1;
}

/* The audit detail of an action on e by who: with claimed_by when who
 * acted on another agent's claim (an admin's override). */
static json_t *acted(const ag_entry_t *e, const admin_identity_t *who, json_t *detail)
{
    if (e->agent != NULL && strcmp(e->agent, who->name) != 0)
        json_object_set_new(detail, "claimed_by", json_string(e->agent));
    return detail;
}

/* Waiting handoffs listed per queue by GET /v1/agent/queues: an outage can
 * queue tens of thousands, and the console asks again on every event. */
enum { AG_LIST_WAITING = 100, AG_LIST_WAITING_MAX = 1000 };

static int by_entered(const void *a, const void *b)
{
    int64_t x = (*(ag_entry_t *const *)a)->entered_us, y = (*(ag_entry_t *const *)b)->entered_us;
    return (x > y) - (x < y);
}

static void on_queues(net_req_t *req, void *data)
{
    static const char *const allowed[] = {"limit", NULL};
    ag_desk_t *d = data;
    if (admin__admit(d->admin, req, ADMIN_ROLE_AGENT, allowed, NULL) != 0)
        return;
    long long limit = AG_LIST_WAITING;
    const char *v = admin__param(req, "limit");
    if (v != NULL && admin__parse_int(v, 1, AG_LIST_WAITING_MAX, &limit) != 0) {
        net_resp_error(req, 400, "invalid_parameter", "limit: must be 1 to %d",
                       AG_LIST_WAITING_MAX);
        return;
    }
    json_t *qs = json_object();
    int64_t now = core_wall_us();
    for (size_t i = 0; i < d->conf.n_queues; i++) {
        const ag_queue_t *q = &d->conf.queues[i];
        json_object_set_new(qs, q->name,
                            json_pack("{s:s,s:b,s:o,s:o,s:[],s:i,s:i}", "name", q->name, "open",
                                      ag__queue_open(q, now), "max_wait_s",
                                      q->max_wait_us
                                          ? json_integer((json_int_t)(q->max_wait_us / 1000000))
                                          : json_null(),
                                      "dial", q->dial ? json_string(q->dial) : json_null(),
                                      "conversations", "waiting", 0, "claimed", 0));
    }
    /* oldest first, so that a waiting entry's position is its queue's
     * waiting count so far: one sort, where asking ag__position() of each
     * would walk every entry for every entry; every claimed entry and the
     * limit longest-waiting ones of each queue are listed, all counted */
    ag_entry_t **open = core_xcalloc(d->n_entries + 1, sizeof(*open));
    size_t n = 0;
    for (ag_entry_t *e = d->entries; e != NULL; e = e->next)
        if (e->state <= AG_CLAIMED)
            open[n++] = e;
    qsort(open, n, sizeof(*open), by_entered);
    for (size_t i = 0; i < n; i++) {
        ag_entry_t *e = open[i];
        json_t *q = json_object_get(qs, e->queue);
        if (q == NULL) {
            q = json_pack("{s:s,s:b,s:n,s:n,s:[],s:i,s:i}", "name", e->queue, "open", 1,
                          "max_wait_s", "dial", "conversations", "waiting", 0, "claimed", 0);
            json_object_set_new(qs, e->queue, q);
        }
        const char *k = e->state == AG_WAITING ? "waiting" : "claimed";
        json_int_t count = json_integer_value(json_object_get(q, k)) + 1;
        json_object_set_new(q, k, json_integer(count));
        if (e->state == AG_WAITING && count > limit)
            continue; /* counted, not listed */
        json_t *j = ag__entry_json(e, 0);
        json_object_set_new(j, "position", json_integer(e->state == AG_WAITING ? count : 0));
        json_object_set_new(j, "waited_s", json_integer((now - e->entered_us) / 1000000));
        json_array_append_new(json_object_get(q, "conversations"), j);
    }
    free(open);
    json_t *arr = json_array();
    const char *name;
    json_t *q;
    json_object_foreach(qs, name, q) json_array_append(arr, q);
    json_decref(qs);
    json_t *o = json_pack("{s:o}", "queues", arr);
    net_resp_json(req, 200, o);
    json_decref(o);
}

static void on_get(net_req_t *req, void *data)
{
    ag_entry_t *e = begin(data, req, NULL);
    if (e != NULL)
        answer(req, e);
}

static void on_claim(net_req_t *req, void *data)
{
    ag_desk_t *d = data;
    admin_identity_t who;
    ag_entry_t *e = begin(d, req, &who);
    if (e == NULL || (e->state != AG_WAITING && conflict(req, e, "only a waiting one is claimed")))
        return;
    ag__set_state(d, e, AG_CLAIMED);
    e->agent = core_xstrdup(who.name);
    e->claimed_us = core_wall_us();
    ag__audit(d, who.name, "agent.claim", e, NULL);
    ag__changed(d, e, "claimed");
    answer(req, e);
}

static void on_message(net_req_t *req, void *data)
{
    ag_desk_t *d = data;
    admin_identity_t who;
    ag_entry_t *e = begin(d, req, &who);
    if (e == NULL || (e->state != AG_CLAIMED && conflict(req, e, "claim it first")))
        return;
    if (not_theirs(req, e, &who, 0))
        return;
    json_t *b = body(req);
    const char *text = json_string_value(json_object_get(b, "text"));
    if (b != NULL && (text == NULL || *text == '\0'))
        net_resp_error(req, 400, "invalid_parameter", "text: a non-empty string is required");
    if (b == NULL || text == NULL || *text == '\0') {
        json_decref(b);
        return;
    }
    ag__say(d, e, who.name, text, req); /* answers now, or once SMS is sent */
    json_decref(b);
}

static void on_release(net_req_t *req, void *data)
{
    ag_desk_t *d = data;
    admin_identity_t who;
    ag_entry_t *e = begin(d, req, &who);
    if (e == NULL || (e->state != AG_CLAIMED && conflict(req, e, "claim it first")))
        return;
    if (not_theirs(req, e, &who, 1))
        return;
    json_t *b = body(req);
    if (b == NULL)
        return;
    const char *flow = json_string_value(json_object_get(b, "flow"));
    const char *node = json_string_value(json_object_get(b, "node"));
    runtime_t *rt = admin__runtime(d->admin);
    core_err_t err = {0};
    if (flow == NULL || node == NULL) {
        net_resp_error(req, 400, "invalid_parameter", "flow and node: strings are required");
    } else if (rt == NULL || !runtime_node_exists(rt, flow, node)) {
        net_resp_error(req, 400, "unknown_node", "no node %s in flow %s", node, flow);
    } else if (ag__release(d, e, flow, node, &err) != 0) {
        admin__unavailable(req, err.msg);
    } else {
        ag__audit(d, who.name, "agent.release", e,
                  acted(e, &who, json_pack("{s:s,s:s}", "flow", flow, "node", node)));
        ag__changed(d, e, "released");
        answer(req, e);
    }
    json_decref(b);
}

static void on_close(net_req_t *req, void *data)
{
    ag_desk_t *d = data;
    admin_identity_t who;
    ag_entry_t *e = begin(d, req, &who);
    if (e == NULL || (e->state > AG_CLAIMED && conflict(req, e, "it is over")))
        return;
    if (not_theirs(req, e, &who, 1))
        return;
    json_t *b = body(req);
    if (b == NULL)
        return;
    const char *disp = json_string_value(json_object_get(b, "disposition"));
    core_err_t err = {0};
    if (disp == NULL || *disp == '\0' || strlen(disp) > 64) {
        net_resp_error(req, 400, "invalid_parameter", "disposition: a code of 1-64 bytes");
    } else if (ag__close_turn(d, e, &err) != 0) {
        admin__unavailable(req, err.msg);
    } else {
        ag__set_state(d, e, AG_CLOSED);
        e->disposition = core_xstrdup(disp);
        e->done_us = core_wall_us();
        if (e->agent == NULL)
            e->agent = core_xstrdup(who.name);
        ag__audit(d, who.name, "agent.close", e,
                  acted(e, &who, json_pack("{s:s}", "disposition", disp)));
        ag__changed(d, e, "closed");
        answer(req, e);
    }
    json_decref(b);
}

/* ---- the feed: GET /v1/agent/ws ------------------------------------------- */

/* The feed's Authorization value: the header, or, since browsers cannot set
 * headers on a WebSocket, ?access_token= (over TLS in production). */
static const char *feed_auth(net_req_t *req, char *buf, size_t size)
{
    const char *auth = net_req_header(req, "Authorization");
    const char *qt = net_req_query(req, "access_token");
    if (auth == NULL && qt != NULL) {
        snprintf(buf, size, "Bearer %s", qt);
        auth = buf;
    }
    return auth;
}

/* Refused like any agent request: 401 or 403, logged, counted, audited. */
static int ws_upgrade(net_req_t *req, void *data)
{
    ag_desk_t *d = data;
    char buf[300];
    if (admin__authorize_as(d->admin, req, feed_auth(req, buf, sizeof(buf)), ADMIN_ROLE_AGENT,
                            NULL) != 0)
        return NET_WS_ANSWERED;
    return 0;
}

static void ws_open(net_ws_t *ws, net_req_t *req, void *data)
{
    ag_desk_t *d = data;
    ag_sub_t *s = core_xcalloc(1, sizeof(*s));
    char buf[300];
    const char *auth = feed_auth(req, buf, sizeof(buf)), *token = auth + 6; /* accepted: Bearer */
    while (*token == ' ')
        token++;
    core_sha256(token, strlen(token), s->token);
    explicit_bzero(buf, sizeof(buf));
    s->ws = ws;
    s->next = d->subs;
    d->subs = s;
    net_ws_set_data(ws, s);
    const char *hello = "{\"type\":\"ready\"}";
    net_ws_send_text(ws, hello, strlen(hello));
}

static void ws_message(net_ws_t *ws, int binary, const char *data, size_t len)
{
    (void)ws, (void)binary, (void)data, (void)len; /* the feed is one-way */
}

static void ws_close(net_ws_t *ws, int code)
{
    (void)code;
    ag_sub_t *s = net_ws_data(ws);
    for (ag_sub_t **p = &g_desk->subs; *p != NULL; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    free(s);
}

void admin__agents_tokens_changed(void)
{
    ag_desk_t *d = g_desk;
    if (d == NULL)
        return;
    for (ag_sub_t *s = d->subs, *next; s != NULL; s = next) {
        next = s->next; /* closing may free s */
        admin_identity_t who;
        core_err_t err = {0};
        if (admin__identify_hash(d->admin->host.cfg->admin.tokens, d->admin->stored,
                                 d->admin->n_stored, s->token, &who, &err) == 0 &&
            admin_role_allows(who.role, ADMIN_ROLE_AGENT))
            continue;
        LOG_INFO("event=agent_feed_closed reason=\"%s\"", err.msg[0] ? err.msg : "role");
        net_ws_close(s->ws, 1008, "token no longer valid");
    }
}

int ag__api_register(ag_desk_t *d, net_router_t *r, core_err_t *err)
{
    static const net_ws_callbacks_t feed = {.on_upgrade = ws_upgrade,
                                            .on_open = ws_open,
                                            .on_message = ws_message,
                                            .on_close = ws_close};
    g_desk = d;
    int rc = net_router_add(r, "GET", "/v1/agent/queues", on_queues, d, err);
    if (rc == 0)
        rc = net_router_add(r, "GET", "/v1/agent/conversations/{id}", on_get, d, err);
    if (rc == 0)
        rc = net_router_add(r, "POST", "/v1/agent/conversations/{id}/claim", on_claim, d, err);
    if (rc == 0)
        rc = net_router_add(r, "POST", "/v1/agent/conversations/{id}/messages", on_message, d, err);
    if (rc == 0)
        rc = net_router_add(r, "POST", "/v1/agent/conversations/{id}/release", on_release, d, err);
    if (rc == 0)
        rc = net_router_add(r, "POST", "/v1/agent/conversations/{id}/close", on_close, d, err);
    if (rc == 0)
        rc = net_router_add_ws(r, "/v1/agent/ws", &feed, d, err);
    return rc;
}
