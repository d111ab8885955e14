/* The voice channel: Twilio's Voice webhook, POST /v1/voice/twilio, for the
 * incoming call and for every <Gather> action callback (the same URL).
 *
 * The conversation is the CallSid. A CallSid not seen before starts the
 * conversation (the flow's welcome), unless it brings an answer or comes
 * from a <Gather> (CallStatus in-progress): then the call outlived a restart
 * (or an eviction), and its last prompt, menu and confirmation are read back
 * from the store before it goes on. A callback with SpeechResult (its
 * Confidence is logged with the turn) or Digits is one turn; a callback with
 * neither is silence and repeats the last prompt, up to voice.max_silences
 * times, then the call ends. A CallStatus of completed/busy/failed/no-answer/
 * canceled forgets the call. The same URL may be the call's status
 * callback: its other events are answered and change nothing. A request
 * that comes while the call's first answer is not ready is told to come
 * back (<Pause/><Redirect>), never hung up on. Replies are TwiML
 * (chan_voice_twiml.c). */
#define LOG_MODULE "voice"
#include <stdlib.h>
#include <string.h>

#include "channels/chan_voice_int.h"

typedef struct voice_s {
    chan_t base;
    chat_map_t calls;
    chat_link_t lru;
} voice_t;

static voice_t the_voice;

static void call_free(voice_t *v, voice_call_t *c)
{
    chat__map_del(&v->calls, &c->node);
    chat__list_remove(&c->lru);
    voice__choices_clear(c);
    free(c->sid);
    free(c->rt_key);
    free(c->prompt);
    free(c->replay);
    free(c);
}

static voice_call_t *call_find(voice_t *v, const char *sid)
{
    chat_map_node_t *n = chat__map_get(&v->calls, sid);
    if (n == NULL)
        return NULL;
    voice_call_t *c = CHAT_CONTAINER(n, voice_call_t, node);
    chat__list_remove(&c->lru);
    chat__list_push_back(&v->lru, &c->lru);
    return c;
}

static voice_call_t *call_new(voice_t *v, const char *sid)
{
    size_t max = (size_t)v->base.host.cfg->voice.max_calls;
    for (chat_link_t *l = v->lru.next; l != &v->lru && v->calls.count >= max;) {
        voice_call_t *c = CHAT_CONTAINER(l, voice_call_t, lru);
        l = l->next;
        if (c->pending == 0)
            call_free(v, c);
    }
    voice_call_t *c = core_xcalloc(1, sizeof(*c));
    c->sid = core_xstrdup(sid);
    c->rt_key = core_xasprintf("voice:%s", sid);
    c->node.key = c->sid;
    chat__map_put(&v->calls, &c->node);
    chat__list_push_back(&v->lru, &c->lru);
    return c;
}

/* ---- turns -------------------------------------------------------------- */

typedef struct voice_op_s {
    voice_t *voice;
    voice_call_t *call;
    net_req_t *req; /* NULL once Twilio went away */
} voice_op_t;

static void on_abort(net_req_t *req, void *data)
{
    (void)req;
    ((voice_op_t *)data)->req = NULL;
}

static void on_turn_done(const runtime_turn_out_t *out)
{
    voice_op_t *op = out->data;
    voice_call_t *c = op->call;
    c->pending--;
    if (out->error != 0 || out->out == NULL) {
        LOG_WARN("event=voice_turn_failed conversation=%s error=%s", c->rt_key,
                 core_strerror(out->error));
        if (op->req != NULL) {
            net_resp_header(op->req, "Retry-After", "5");
            net_resp_error(op->req, 503, "turn_failed", "the turn did not complete: %s",
                           out->error_msg && out->error_msg[0] ? out->error_msg
                                                               : core_strerror(out->error));
        }
        free(op);
        return;
    }
    core_buf_t b;
    core_buf_init(&b, (size_t)-1);
    voice__render(&b, op->voice->base.host.cfg, c, out->out);
    core_buf_append(&b, "", 1);
    c->started = 1;
    if (c->redirected) { /* the request our <Redirect> brings back gets it too */
        free(c->replay);
        c->replay = core_xstrdup(b.data);
    }
    if (op->req != NULL)
        voice__send_twiml(op->req, b.data);
    core_buf_dispose(&b);
    free(op);
}

/* The input event of a speech turn: Twilio's recognition Confidence (0..1)
 * when it sent a valid one. */
static void speech_detail(const char *conf, char *out, size_t size)
{
    char *end = NULL;
    double x = conf ? strtod(conf, &end) : -1;
    if (conf != NULL && end != conf && *end == '\0' && x >= 0 && x <= 1)
        snprintf(out, size, "{\"mode\":\"speech\",\"confidence\":%.4f}", x);
    else
        snprintf(out, size, "{\"mode\":\"speech\"}");
}

static void run_turn(voice_t *v, net_req_t *req, voice_call_t *c, brain_event_t ev,
                     const char *text, const char *input_detail)
{
    voice_op_t *op = core_xcalloc(1, sizeof(*op));
    *op = (voice_op_t){.voice = v, .call = c, .req = req};
    runtime_turn_in_t in = {.key = c->rt_key,
                            .channel = BRAIN_CH_VOICE,
                            .event = ev,
                            .text = text,
                            .len = text ? strlen(text) : 0,
                            .adapter_version = "voice/" TWILIO_ADAPTER_VERSION,
                            .env = c->env[0] ? c->env : NULL,
                            .input_detail = input_detail};
    core_err_t err = {0};
    runtime_t *rt = chan_runtime(&v->base);
    int rc = rt ? runtime_turn(rt, &in, on_turn_done, op, &err)
                : core_err_set(&err, CORE_ERR_CLOSED, "the runtime is not running");
    if (rc != 0) {
        free(op);
        chan_resp_turn_error(req, &v->base, rc, &err);
        return;
    }
    c->pending++;
    net_req_on_abort(req, on_abort, op);
}

/* ---- the webhook -------------------------------------------------------- */

static int call_over(const char *status)
{
    static const char *over[] = {"completed", "busy", "failed", "no-answer", "canceled"};
    for (size_t i = 0; status != NULL && i < sizeof(over) / sizeof(over[0]); i++)
        if (strcmp(status, over[i]) == 0)
            return 1;
    return 0;
}

/* What keys pressed stand for: a menu option, yes/no while confirming, or
 * the digits themselves (a booking number keyed in). */
static const char *digits_text(const voice_call_t *c, const char *digits)
{
    if (c->n_choices > 0 && digits[0] >= '1' && digits[0] <= '9' && digits[1] == '\0' &&
        (size_t)(digits[0] - '0') <= c->n_choices)
        return c->choices[digits[0] - '1'];
    if (c->confirming && strcmp(digits, "1") == 0)
        return "yes";
    if (c->confirming && strcmp(digits, "2") == 0)
        return "no";
    return digits;
}

/* The last prompt again, inside a new <Gather>. */
static void reprompt(voice_t *v, net_req_t *req, const voice_call_t *c)
{
    core_buf_t b;
    core_buf_init(&b, (size_t)-1);
    voice__reprompt(&b, v->base.host.cfg, c);
    core_buf_append(&b, "", 1);
    voice__send_twiml(req, b.data);
    core_buf_dispose(&b);
}

static void silence(voice_t *v, net_req_t *req, voice_call_t *c)
{
    const core_config_t *cfg = v->base.host.cfg;
    if (++c->silences > cfg->voice.max_silences || c->prompt == NULL) {
        LOG_INFO("event=voice_silence_hangup conversation=%s silences=%d", c->rt_key, c->silences);
        voice__send_twiml(req, "<Hangup/>");
        return;
    }
    reprompt(v, req, c);
}

/* The first answer is not ready (the welcome's turn, or the read of a call
 * carried on after a restart, is still in flight: Twilio retried the
 * webhook, or the same call came twice): hanging up would end a call that
 * is about to be answered, so Twilio is told to wait a second and ask
 * again. Not a silence: the caller has heard nothing yet. */
static void hold_on(voice_t *v, net_req_t *req, voice_call_t *c)
{
    LOG_INFO("event=voice_hold_on conversation=%s", c->rt_key);
    c->redirected = 1;
    core_buf_t b;
    core_buf_init(&b, (size_t)-1);
    voice__hold_on(&b, v->base.host.cfg);
    core_buf_append(&b, "", 1);
    voice__send_twiml(req, b.data);
    core_buf_dispose(&b);
}

/* A request of a call held here with neither speech nor keys. */
static void no_answer(voice_t *v, net_req_t *req, voice_call_t *c)
{
    if (!c->started && c->pending > 0) {
        hold_on(v, req, c);
    } else if (!c->started) {
        /* nothing in flight and no answer ever went out (the first turn
         * failed: 503): answered as the first request would have been */
        c->redirected = 0;
        run_turn(v, req, c, BRAIN_EV_START, NULL, NULL);
    } else if (c->redirected) {
        /* what our <Redirect> brought back: the caller has not heard the
         * first answer yet, so this is no silence of theirs */
        c->redirected = 0;
        if (c->replay != NULL)
            voice__send_twiml(req, c->replay);
        else
            reprompt(v, req, c);
        free(c->replay);
        c->replay = NULL;
    } else {
        silence(v, req, c);
    }
}

/* Whether the request is Twilio's status callback (the call's progress
 * events), which carries CallbackSource and SequenceNumber; a <Gather>'s
 * action and the incoming call's webhook carry neither. */
static int status_callback(const twilio_form_t *f)
{
    return twilio__form_get(f, "CallbackSource") != NULL ||
           twilio__form_get(f, "SequenceNumber") != NULL;
}

/* Whether a callback brings the caller's speech or keys (else: silence). */
static int has_answer(const char *speech, const char *digits)
{
    return (speech != NULL && speech[0] != '\0') || (digits != NULL && digits[0] != '\0');
}

/* A caller's speech or keys: one turn (Confidence goes with the speech). */
static void answer(voice_t *v, net_req_t *req, voice_call_t *c, const char *speech,
                   const char *digits, const char *conf)
{
    c->silences = 0;
    c->redirected = 0; /* the caller heard the first answer: they answer it */
    free(c->replay);
    c->replay = NULL;
    if (speech != NULL && speech[0] != '\0') {
        LOG_INFO("event=voice_speech conversation=%s confidence=%s chars=%zu", c->rt_key,
                 conf ? conf : "", strlen(speech));
        char detail[96];
        speech_detail(conf, detail, sizeof(detail));
        run_turn(v, req, c, BRAIN_EV_MESSAGE, speech, detail);
    } else {
        LOG_INFO("event=voice_digits conversation=%s digits=%zu", c->rt_key, strlen(digits));
        run_turn(v, req, c, BRAIN_EV_MESSAGE, digits_text(c, digits), "{\"mode\":\"dtmf\"}");
    }
}

/* A callback for a call not held here (the daemon restarted during the
 * call, or the call was evicted): the call's record is read from the store
 * first, and its last prompt, menu and confirmation are rebuilt from the
 * last reply, so that a key answers the menu the caller heard and a silence
 * hears it again. A call the store never saw starts as a new one. */
typedef struct voice_resume_s {
    voice_t *voice;
    voice_call_t *call; /* held (pending) until the read ends */
    net_req_t *req;     /* NULL once Twilio went away */
    char *speech, *digits, *conf;
} voice_resume_t;

static void on_resume_abort(net_req_t *req, void *data)
{
    (void)req;
    ((voice_resume_t *)data)->req = NULL;
}

static void on_resume_read(int status, json_t *record, void *data)
{
    voice_resume_t *r = data;
    voice_t *v = r->voice;
    voice_call_t *c = r->call;
    c->pending--;
    twilio_reply_t reply;
    if (status == 0 && twilio__last_reply(record, &reply) == 0) {
        voice__restore_prompt(v->base.host.cfg, c, &reply);
        c->started = 1; /* the caller heard that prompt before the restart */
    }
    json_decref(record);
    int answered = has_answer(r->speech, r->digits);
    LOG_INFO("event=voice_call_resumed conversation=%s found=%d answered=%d choices=%zu "
             "confirming=%d",
             c->rt_key, status == 0, answered, c->n_choices, c->confirming);
    if (r->req != NULL) {
        net_req_on_abort(r->req, NULL, NULL);
        if (status == CORE_ERR_NOT_FOUND || (!answered && c->prompt == NULL))
            run_turn(v, r->req, c, BRAIN_EV_START, NULL, NULL); /* nothing to carry on */
        else if (answered)
            answer(v, r->req, c, r->speech, r->digits, r->conf);
        else
            no_answer(v, r->req, c);
    }
    free(r->speech);
    free(r->digits);
    free(r->conf);
    free(r);
}

static void resume(voice_t *v, net_req_t *req, voice_call_t *c, const char *speech,
                   const char *digits, const char *conf)
{
    voice_resume_t *r = core_xcalloc(1, sizeof(*r));
    *r = (voice_resume_t){.voice = v,
                          .call = c,
                          .req = req,
                          .speech = core_xstrdup_opt(speech),
                          .digits = core_xstrdup_opt(digits),
                          .conf = core_xstrdup_opt(conf)};
    c->pending++;
    runtime_t *rt = chan_runtime(&v->base);
    int rc = rt ? runtime_conversation_record(rt, c->rt_key, on_resume_read, r) : CORE_ERR_CLOSED;
    if (rc != 0) { /* no store (NOT_FOUND): nothing outlives memory, the call starts over */
        on_resume_read(rc, NULL, r);
        return;
    }
    net_req_on_abort(req, on_resume_abort, r);
}

static void on_webhook(net_req_t *req, void *data)
{
    voice_t *v = data;
    const core_config_t *cfg = v->base.host.cfg;
    twilio_form_t f;
    if (twilio__verify(req, "voice", cfg->voice.public_url, cfg->voice.auth_token_env, &f) != 0)
        return;
    const char *sid = twilio__form_get(&f, "CallSid");
    if (sid == NULL || sid[0] == '\0') {
        net_resp_error(req, 400, "invalid_request", "form field CallSid: missing");
        twilio__form_dispose(&f);
        return;
    }
    const char *speech = twilio__form_get(&f, "SpeechResult");
    const char *digits = twilio__form_get(&f, "Digits");
    const char *conf = twilio__form_get(&f, "Confidence");
    const char *status = twilio__form_get(&f, "CallStatus");
    int answered = has_answer(speech, digits);
    voice_call_t *c = call_find(v, sid);
    if (call_over(status)) {
        if (c != NULL && c->pending == 0)
            call_free(v, c);
        voice__send_twiml(req, "");
    } else if (status_callback(&f)) {
        /* an event of the call (answered, ringing), not a caller's silence:
         * it must neither count as one nor start or look up a call */
        char quoted[100];
        LOG_INFO("event=voice_status_callback conversation=voice:%s status=%s", sid,
                 core_log_quote(quoted, sizeof(quoted), status ? status : "", (size_t)-1, 40));
        voice__send_twiml(req, "");
    } else if (c == NULL) {
        c = call_new(v, sid);
        char env[16];
        const char *e =
            twilio__env_for(cfg->voice.environments, twilio__form_get(&f, "To"), env, sizeof(env));
        snprintf(c->env, sizeof(c->env), "%s", e ? e : "");
        /* Twilio calls with "ringing" when a call comes in and "in-progress"
         * from its <Gather>: an answer or a silence of a call under way */
        if (answered || (status != NULL && strcmp(status, "in-progress") == 0)) {
            resume(v, req, c, speech, digits, conf);
        } else {
            LOG_INFO("event=voice_call conversation=%s from=%s", c->rt_key,
                     twilio__form_get(&f, "From") ? twilio__form_get(&f, "From") : "");
            run_turn(v, req, c, BRAIN_EV_START, NULL, NULL);
        }
    } else if (answered) {
        answer(v, req, c, speech, digits, conf);
    } else {
        no_answer(v, req, c);
    }
    twilio__form_dispose(&f);
}

int chan_voice_register(net_router_t *router, const chan_host_t *host, core_err_t *err)
{
    voice_t *v = &the_voice;
    memset(v, 0, sizeof(*v));
    v->base.name = "voice";
    v->base.version = TWILIO_ADAPTER_VERSION;
    v->base.channel = BRAIN_CH_VOICE;
    v->base.host = *host;
    chat__map_init(&v->calls);
    chat__list_init(&v->lru);
    return net_router_add(router, "POST", "/v1/voice/twilio", on_webhook, v, err);
}
