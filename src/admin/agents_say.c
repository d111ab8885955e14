/* Words to the customer on their channel: an agent's message (the agent
 * API) or the desk's notices (the queue's wait and unavailable messages).
 * Chat and the web widget take them at once; SMS goes out through Twilio's
 * REST API and completes later, so the agent's call is answered only then:
 * 200 once Twilio took every part, 502 with Twilio's reason when it refused
 * or did not answer. docs/agents.md, "Channels". */
#define LOG_MODULE "agents"
#include <stdlib.h>
#include <string.h>

#include "admin/agents_int.h"
#include "chorus/channels.h"

typedef struct ag_say_s {
    ag_desk_t *d;
    char id[33];    /* the handoff: looked up again, it may be gone */
    char *agent;    /* owned, NULL for a notice */
    char *text;     /* owned */
    net_req_t *req; /* the agent's call; NULL for a notice or once it went away */
} ag_say_t;

static void on_abort(net_req_t *req, void *data)
{
    (void)req;
    ((ag_say_t *)data)->req = NULL;
}

/* The words reached the customer: recorded (with the seq its transcript
 * gave them, 0 for none), and an agent's audited. */
static void said(ag_desk_t *d, ag_entry_t *e, const char *agent, const char *text, uint64_t entry,
                 net_req_t *req)
{
    if (agent == NULL) {
        ag__note(d, e, "system", NULL, text, strlen(text), entry);
        return;
    }
    ag__note(d, e, "agent", agent, text, strlen(text), entry);
    ag__audit(d, agent, "agent.message", e, json_pack("{s:i}", "bytes", (int)strlen(text)));
    json_t *p = ag__entry_json(e, 0);
    json_object_set_new(p, "text", json_string(text));
    ag__feed(d, "agent_message", p);
    ag__changed(d, e, "updated");
    if (req != NULL) {
        json_t *o = ag__entry_json(e, 1);
        net_resp_json(req, 200, o);
        json_decref(o);
    }
}

static void on_sent(int status, const char *reason, void *data)
{
    ag_say_t *s = data;
    ag_entry_t *e = s->d->started ? ag__find(s->d, s->id) : NULL;
    if (status == 0 && e != NULL) {
        said(s->d, e, s->agent, s->text, 0, s->req); /* SMS: no numbered transcript */
    } else if (status != 0) {
        char quoted[600]; /* the reason may carry what the SMS provider answered */
        LOG_WARN("event=agent_say_failed handoff=%s agent=%s reason=%s", s->id,
                 s->agent ? s->agent : "-",
                 core_log_quote(quoted, sizeof(quoted), reason ? reason : core_strerror(status),
                                (size_t)-1, 500));
        if (s->req != NULL)
            net_resp_error(s->req, 502, "bad_gateway", "the message was not delivered: %s",
                           reason ? reason : core_strerror(status));
    } else if (s->req != NULL) {
        net_resp_error(s->req, 409, "conflict", "handoff %s is no longer open here", s->id);
    }
    free(s->agent);
    free(s->text);
    free(s);
}

void ag__say(ag_desk_t *d, ag_entry_t *e, const char *agent, const char *text, net_req_t *req)
{
    ag_say_t *s = core_xcalloc(1, sizeof(*s));
    *s = (ag_say_t){.d = d, .agent = core_xstrdup_opt(agent), .req = req};
    memcpy(s->id, e->id, sizeof(s->id));
    s->text = core_xstrdup(text);
    core_err_t err = {0};
    uint64_t entry = 0;
    int rc = chan_agent_say_async(d->http, e->key, agent, text, &entry, on_sent, s, &err);
    if (rc == CHAN_AGENT_PENDING) {
        if (req != NULL)
            net_req_on_abort(req, on_abort, s);
        return;
    }
    if (rc == 0) {
        said(d, e, agent, text, entry, req);
    } else if (req != NULL) {
        int c = rc == CORE_ERR_UNSUPPORTED || rc == CORE_ERR_NOT_FOUND || rc == CORE_ERR_DENIED;
        if (!c)
            net_resp_header(req, "Retry-After", "1");
        net_resp_error(req, c ? 409 : 503, c ? "conflict" : "unavailable", "%s", err.msg);
    } else {
        LOG_DEBUG("event=agent_notice_not_sent handoff=%s reason=\"%s\"", e->id, err.msg);
    }
    free(s->agent);
    free(s->text);
    free(s);
}
