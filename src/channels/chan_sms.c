/* The SMS channel: Twilio's Messaging webhook, POST /v1/sms/twilio.
 *
 * A request is a form as Twilio sends it (From, To, Body, MessageSid,
 * NumMedia, AccountSid, ...) signed with X-Twilio-Signature; a bad
 * signature gets 403 and changes nothing. The conversation is the (From, To)
 * pair. Carrier keywords come first (chan_sms_optout.c): STOP and its
 * synonyms opt the number out, START opts back in, HELP answers. Opt-outs
 * are kept in the store and in memory apart from the bounded conversations
 * (chan_sms_table.c), and checked before the human desk texts a customer
 * (sms__agent_send). Anything else is one turn;
 * a reply that is a number picks that option of the last numbered list (for
 * a pair not in memory, read back from the store first).
 * The answer is TwiML: each bot message (its choices as a numbered list) as
 * one or more <Message> parts, split at sentence ends under the segment
 * limits. A MessageSid seen before (Twilio retries) gets an empty
 * <Response/> and no turn; each turn keeps its MessageSid in the store, and
 * a text whose MessageSid memory does not hold is looked up there before
 * its turn runs (chan_sms_wait.c), so a retry after a restart is known
 * too. Turns of one conversation run in arrival order (chan_sms_wait.c,
 * then the runtime's queue), so replies leave in order. */
#define LOG_MODULE "sms"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "channels/chan_sms_int.h"
#include "channels/chan_twilio_int.h"

static sms_t the_sms;

/* ---- MessageSid cache --------------------------------------------------- */

sms_sid_t *sms__sid_find(sms_t *s, const char *sid)
{
    chat_map_node_t *n = chat__map_get(&s->sids, sid);
    return n ? CHAT_CONTAINER(n, sms_sid_t, node) : NULL;
}

void sms__sid_forget(sms_t *s, sms_sid_t *e)
{
    chat__map_del(&s->sids, &e->node);
    chat__list_remove(&e->fifo);
    s->n_sids--;
    free(e);
}

sms_sid_t *sms__sid_remember(sms_t *s, const char *sid)
{
    size_t max = (size_t)s->base.host.cfg->sms.dedupe_entries;
    while (s->n_sids >= max && !chat__list_empty(&s->sid_fifo))
        sms__sid_forget(s, CHAT_CONTAINER(s->sid_fifo.next, sms_sid_t, fifo));
    size_t n = strlen(sid) + 1;
    sms_sid_t *e = core_xcalloc(1, sizeof(*e) + n);
    memcpy(e->sid, sid, n);
    e->node.key = e->sid;
    chat__map_put(&s->sids, &e->node);
    chat__list_push_back(&s->sid_fifo, &e->fifo);
    s->n_sids++;
    return e;
}

/* ---- conversations ------------------------------------------------------ */

static sms_conv_t *conv_get(sms_t *s, const char *from, const char *to)
{
    return sms__conv_get(&s->table, from, to, (size_t)s->base.host.cfg->sms.max_conversations);
}

/* STOP seen, START not yet (a START counts once it is saved). */
static int opted_out(const sms_t *s, const sms_conv_t *cv)
{
    return sms__opt_find(&s->table, cv->key) != NULL;
}

/* ---- replies ------------------------------------------------------------ */

/* Appends text as <Message> parts; returns the parts still allowed. */
static size_t add_message(core_buf_t *b, const char *text, size_t left)
{
    char **parts;
    size_t n;
    sms__split(text, strlen(text), &parts, &n);
    for (size_t i = 0; i < n && left > 0; i++, left--) {
        core_buf_append_str(b, "<Message>");
        twilio__xml_escape_str(b, parts[i]);
        core_buf_append_str(b, "</Message>");
    }
    sms__parts_free(parts, n);
    return left;
}

void sms__send_text(net_req_t *req, const char *text)
{
    core_buf_t b;
    core_buf_init(&b, (size_t)-1);
    core_buf_append_str(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>");
    if (text != NULL)
        add_message(&b, text, 100);
    core_buf_append_str(&b, "</Response>");
    twilio__send_twiml(req, &b);
    core_buf_dispose(&b);
}

/* One bot message as SMS text: plain text, then "1. title" per choice. */
static char *render_message(const brain_message_t *m)
{
    core_buf_t b;
    core_buf_init(&b, (size_t)-1);
    core_buf_append_str(&b, m->text ? m->text : "");
    for (size_t i = 0; i < m->n_choices; i++)
        core_buf_printf(&b, "\n%zu. %s", i + 1, m->choices[i].title ? m->choices[i].title : "");
    core_buf_append(&b, "", 1);
    return core_buf_steal(&b, NULL);
}

static void keep_choices(sms_conv_t *cv, const brain_out_t *o)
{
    sms__choices_clear(cv);
    cv->list_known = 1;
    for (size_t i = o->n_messages; i-- > 0;) {
        const brain_message_t *m = &o->messages[i];
        if (m->n_choices == 0)
            continue;
        cv->choices = core_xcalloc(m->n_choices, sizeof(char *));
        for (size_t k = 0; k < m->n_choices; k++)
            cv->choices[k] = core_xstrdup(m->choices[k].value   ? m->choices[k].value
                                          : m->choices[k].title ? m->choices[k].title
                                                                : "");
        cv->n_choices = m->n_choices;
        return;
    }
}

typedef struct sms_op_s {
    sms_t *sms;
    sms_conv_t *conv;
    net_req_t *req; /* NULL once Twilio went away */
    char *msid;     /* owned: forgotten again when the turn fails, so a retry runs */
} sms_op_t;

static void on_abort(net_req_t *req, void *data)
{
    (void)req;
    ((sms_op_t *)data)->req = NULL;
}

/* A reply no webhook answer carries, on its way through the Messages API. */
typedef struct sms_out_s {
    char *key;         /* owned: the runtime key, for the log */
    const char *event; /* static: the log event once Twilio took it */
} sms_out_t;

static void on_text_sent(int status, const char *reason, void *data)
{
    sms_out_t *t = data;
    char quoted[600];
    if (status == 0)
        LOG_INFO("event=%s conversation=%s", t->event, t->key);
    else
        LOG_WARN("event=sms_reply_lost conversation=%s reason=%s", t->key,
                 core_log_quote(quoted, sizeof(quoted), reason ? reason : "", (size_t)-1, 500));
    free(t->key);
    free(t);
}

/* Texts the reply o to the pair of rt_key through the Messages API, as the
 * desk's texts go, when outbound texts are set up (sms.account_sid): its
 * messages one after the other in one text. Otherwise it is logged as
 * lost, with why it was not the webhook's answer. event names the log line
 * once Twilio took it. */
static void text_reply(sms_t *s, const char *rt_key, const brain_out_t *o, const char *why,
                       const char *event)
{
    core_buf_t b;
    core_buf_init(&b, (size_t)-1);
    for (size_t i = 0; i < o->n_messages; i++) {
        char *text = render_message(&o->messages[i]);
        if (text[0] != '\0') {
            if (b.len > 0)
                core_buf_append(&b, "\n", 1);
            core_buf_append_str(&b, text);
        }
        free(text);
    }
    char *customer = NULL, *ours = NULL;
    core_err_t err = {0};
    const core_config_t *cfg = s->base.host.cfg;
    if (b.len == 0 || cfg->sms.account_sid == NULL || cfg->sms.account_sid[0] == '\0' ||
        twilio__sms_key(rt_key, &customer, &ours) != 0) {
        LOG_WARN("event=sms_reply_lost conversation=%s reason=\"%s%s\"", rt_key,
                 b.len == 0 ? "nothing to say" : why,
                 b.len == 0 ? "" : "; no sms.account_sid to text it");
    } else {
        net_client_options_t co = {.max_transfers = 64};
        if (s->http == NULL && net_client_new(s->base.host.loop, &co, &s->http, &err) != 0)
            s->http = NULL;
        sms_out_t *t = core_xcalloc(1, sizeof(*t));
        *t = (sms_out_t){.key = core_xstrdup(rt_key), .event = event};
        if (s->http == NULL || twilio__sms_send(s->http, cfg, ours, customer, b.data, on_text_sent,
                                                t, &err) != CHAN_AGENT_PENDING)
            on_text_sent(CORE_ERR_IO, err.msg[0] ? err.msg : "no HTTP client", t);
    }
    free(customer);
    free(ours);
    core_buf_dispose(&b);
}

/* Twilio stopped waiting for the webhook's answer (after 15 s) while the
 * turn ran: the reply goes out through the Messages API instead, so the
 * customer is not left without it. */
static void send_late(sms_t *s, const sms_conv_t *cv, const brain_out_t *o)
{
    text_reply(s, cv->rt_key, o, "Twilio stopped waiting", "sms_reply_sent_late");
}

void sms__unasked_output(const runtime_turn_out_t *out, int text_it)
{
    sms_t *s = &the_sms;
    char *customer, *ours;
    if (s->base.host.cfg == NULL || out->error != 0 || out->out == NULL ||
        twilio__sms_key(out->key, &customer, &ours) != 0)
        return;
    char *key = core_xasprintf("%s\n%s", customer, ours);
    free(customer);
    free(ours);
    /* The customer's next number answers what the bot said last. A pair
     * not held needs nothing: its list is read back from the store, where
     * this turn is the last one. */
    chat_map_node_t *n = chat__map_get(&s->table.convs, key);
    if (n != NULL)
        keep_choices(CHAT_CONTAINER(n, sms_conv_t, node), out->out);
    int opted = sms__opt_find(&s->table, key) != NULL;
    free(key);
    if (!text_it || out->out->n_messages == 0) /* an idle timeout's goodbye, or nothing */
        return;
    if (opted) /* carriers require silence after STOP; the transcript keeps the words */
        LOG_INFO("event=sms_reply_withheld conversation=%s reason=opted_out", out->key);
    else
        text_reply(s, out->key, out->out, "no webhook to answer", "sms_reply_sent_unasked");
}

void chan_sms_stop(void)
{
    sms_t *s = &the_sms;
    sms__opt_retry_stop(s);
    if (s->http != NULL)
        net_client_close(s->http, NULL, NULL);
    s->http = NULL;
}

static void on_turn_done(const runtime_turn_out_t *out)
{
    sms_op_t *op = out->data;
    sms_conv_t *cv = op->conv;
    /* still valid below: only a new conversation (a webhook) evicts */
    sms__conv_release(&op->sms->table, cv);
    if (out->error != 0 || out->out == NULL) {
        LOG_WARN("event=sms_turn_failed conversation=%s error=%s", cv->rt_key,
                 core_strerror(out->error));
        sms_sid_t *sid = sms__sid_find(op->sms, op->msid);
        if (sid != NULL)
            sms__sid_forget(op->sms, sid);
        if (op->req != NULL) {
            net_resp_header(op->req, "Retry-After", "5");
            net_resp_error(op->req, 503, "turn_failed", "the turn did not complete: %s",
                           out->error_msg && out->error_msg[0] ? out->error_msg
                                                               : core_strerror(out->error));
        }
        free(op->msid);
        free(op);
        return;
    }
    keep_choices(cv, out->out);
    /* a STOP that arrived while the turn ran: its confirmation was the last
     * text, so the turn's reply stays unsent (the transcript keeps it) */
    int quiet = opted_out(op->sms, cv);
    if (quiet)
        LOG_INFO("event=sms_reply_withheld conversation=%s reason=opted_out", cv->rt_key);
    else if (op->req == NULL)
        send_late(op->sms, cv, out->out);
    if (op->req != NULL) {
        core_buf_t b;
        core_buf_init(&b, (size_t)-1);
        core_buf_append_str(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>");
        size_t left = quiet ? 0 : (size_t)op->sms->base.host.cfg->sms.max_parts;
        for (size_t i = 0; i < out->out->n_messages && left > 0; i++) {
            char *text = render_message(&out->out->messages[i]);
            left = add_message(&b, text, left);
            free(text);
        }
        core_buf_append_str(&b, "</Response>");
        twilio__send_twiml(op->req, &b);
        core_buf_dispose(&b);
    }
    free(op->msid);
    free(op);
}

/* ---- the webhook -------------------------------------------------------- */

size_t sms__option_number(const char *body)
{
    const char *p = body;
    while (*p == ' ')
        p++;
    size_t k = 0, digits = 0;
    for (; p[digits] >= '0' && p[digits] <= '9' && digits < 3; digits++)
        k = k * 10 + (size_t)(p[digits] - '0');
    const char *rest = p + digits;
    rest += digits > 0 ? core_keycap_tail(rest, strlen(rest)) : 0; /* "2\ufe0f\u20e3" is 2 */
    while (*rest == ' ' || *rest == '.' || *rest == ')')
        rest++;
    return digits > 0 && *rest == '\0' ? k : 0;
}

const char *sms__answer_text(const sms_conv_t *cv, const char *body)
{
    size_t k = sms__option_number(body);
    return k >= 1 && k <= cv->n_choices ? cv->choices[k - 1] : body;
}

static int required(net_req_t *req, const twilio_form_t *f, const char *name, const char **out)
{
    *out = twilio__form_get(f, name);
    if (*out == NULL || (*out)[0] == '\0') {
        net_resp_error(req, 400, "invalid_request", "form field %s: missing", name);
        return -1;
    }
    return 0;
}

void sms__run_turn(sms_t *s, net_req_t *req, sms_conv_t *cv, sms_sid_t *sid, const char *text)
{
    sms_op_t *op = core_xcalloc(1, sizeof(*op));
    *op = (sms_op_t){.sms = s, .conv = cv, .req = req, .msid = core_xstrdup(sid->sid)};
    char from[64]; /* the From number: the per-sender rate limit's key */
    snprintf(from, sizeof(from), "%.*s", (int)strcspn(cv->key, "\n"), cv->key);
    /* the MessageSid goes with the turn (turns.client_id), so that a retry
     * of it after a restart is known by the store (chan_sms_wait.c) */
    runtime_turn_in_t in = {.key = cv->rt_key,
                            .channel = BRAIN_CH_SMS,
                            .event = BRAIN_EV_MESSAGE,
                            .text = text,
                            .len = strlen(text),
                            .adapter_version = "sms/" TWILIO_ADAPTER_VERSION,
                            .sender = from,
                            .client_id = strlen(sid->sid) <= 255 ? sid->sid : NULL};
    char env[16]; /* the number written to picks the environment (sms.environments) */
    const char *to = strchr(cv->key, '\n');
    in.env =
        to ? twilio__env_for(s->base.host.cfg->sms.environments, to + 1, env, sizeof(env)) : NULL;
    core_err_t err = {0};
    runtime_t *rt = chan_runtime(&s->base);
    int rc = rt ? runtime_turn(rt, &in, on_turn_done, op, &err)
                : core_err_set(&err, CORE_ERR_CLOSED, "the runtime is not running");
    if (rc != 0) {
        free(op->msid);
        free(op);
        sms__sid_forget(s, sid);
        if (req != NULL)
            chan_resp_turn_error(req, &s->base, rc, &err);
        else
            LOG_WARN("event=sms_turn_failed conversation=%s error=%s", cv->rt_key,
                     core_strerror(rc));
        return;
    }
    sms__conv_hold(cv);
    if (req != NULL)
        net_req_on_abort(req, on_abort, op);
}

static void on_webhook(net_req_t *req, void *data)
{
    sms_t *s = data;
    const core_config_t *cfg = s->base.host.cfg;
    twilio_form_t f;
    if (twilio__verify(req, "sms", cfg->sms.public_url, cfg->sms.auth_token_env, &f) != 0)
        return;
    const char *from, *to, *msid, *body = twilio__form_get(&f, "Body");
    if (required(req, &f, "From", &from) != 0 || required(req, &f, "To", &to) != 0 ||
        required(req, &f, "MessageSid", &msid) != 0) {
        twilio__form_dispose(&f);
        return;
    }
    if (sms__sid_find(s, msid) != NULL) {
        LOG_INFO("event=sms_duplicate message_sid=%s", msid);
        sms__send_text(req, NULL);
        twilio__form_dispose(&f);
        return;
    }
    sms_sid_t *sid = sms__sid_remember(s, msid);
    sms_conv_t *cv = conv_get(s, from, to);
    if (body == NULL)
        body = "";
    if (sms__keyword_answer(s, req, cv, msid, body)) {
        /* answered */
    } else if (opted_out(s, cv) || body[strspn(body, " \t\r\n")] == '\0') {
        /* opted out: nothing is sent until START; media only: nothing to say */
        LOG_DEBUG("event=sms_ignored conversation=%s opted_out=%d", cv->rt_key, opted_out(s, cv));
        sms__send_text(req, NULL);
    } else {
        sms__text_queue(s, req, cv, sid, body);
    }
    twilio__form_dispose(&f);
}

int sms__agent_send(net_client_t *http, const char *key, const char *text, chan_agent_done_cb cb,
                    void *data, core_err_t *err)
{
    sms_t *s = &the_sms;
    if (s->base.host.cfg == NULL)
        return core_err_set(err, CORE_ERR_UNSUPPORTED, "the SMS adapter is not running");
    char *customer, *ours;
    if (twilio__sms_key(key, &customer, &ours) != 0)
        return core_err_set(err, CORE_ERR_INVALID, "not an SMS conversation key");
    char *ck = core_xasprintf("%s\n%s", customer, ours);
    int out = sms__opt_find(&s->table, ck) != NULL; /* every opt-out, conversation or not */
    free(ck);
    int rc;
    if (out)
        rc = core_err_set(err, CORE_ERR_DENIED,
                          "the customer opted out of SMS (STOP): nothing is texted to them "
                          "until they send START");
    else
        rc = twilio__sms_send(http, s->base.host.cfg, ours, customer, text, cb, data, err);
    free(customer);
    free(ours);
    return rc;
}

int chan_sms_register(net_router_t *router, const chan_host_t *host, core_err_t *err)
{
    sms_t *s = &the_sms;
    memset(s, 0, sizeof(*s));
    s->base.name = "sms";
    s->base.version = TWILIO_ADAPTER_VERSION;
    s->base.channel = BRAIN_CH_SMS;
    s->base.host = *host;
    sms__table_init(&s->table);
    chat__map_init(&s->sids);
    chat__list_init(&s->sid_fifo);
    int rc = sms__load_opt_outs(s, err);
    if (rc != 0)
        return rc;
    return net_router_add(router, "POST", "/v1/sms/twilio", on_webhook, s, err);
}
