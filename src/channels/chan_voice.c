/* The voice channel: Twilio's Voice webhook, POST /v1/voice/twilio, for the
 * incoming call and for every <Gather> action callback (the same URL).
 *
 * The conversation is the CallSid. A CallSid not seen before starts the
 * conversation (the flow's welcome), unless it brings an answer: then the
 * call outlived a restart (or an eviction), and its DTMF menu is read back
 * from the store before the answer is a turn. A callback with SpeechResult (its
 * Confidence is logged with the turn) or Digits is one turn; a callback with
 * neither is silence and repeats the last prompt, up to voice.max_silences
 * times, then the call ends. A CallStatus of completed/busy/failed/no-answer/
 * canceled forgets the call.
 *
 * Replies are TwiML: the bot's messages as <Say> (voice and language from
 * the config, the text XML-escaped so nothing in it is read as SSML) inside
 * <Gather input="speech dtmf" action=... speechTimeout="auto">; choices as a
 * DTMF menu ("Press 1 for ...", a key picks the option); a slot the flow
 * confirms on voice adds "press 1 for yes, 2 for no"; a handoff dials the
 * queue's number from voice.handoff_numbers with the summary attached; the
 * end hangs up. */
#define LOG_MODULE "voice"
#include <stdlib.h>
#include <string.h>

#include "channels/chan_chat_int.h"
#include "channels/chan_twilio_int.h"

typedef struct voice_call_s {
    chat_map_node_t node; /* keyed by sid */
    chat_link_t lru;
    char *sid;      /* owned CallSid */
    char *rt_key;   /* owned: "voice:" + CallSid */
    char env[16];   /* environment of the number called (voice.environments); "" = default */
    char *prompt;   /* owned TwiML of the last prompt (the <Say>s), for silence */
    char **choices; /* owned: values of the last menu */
    size_t n_choices;
    int confirming;   /* the last prompt asked "is that right?" */
    int silences;     /* silent callbacks in a row */
    unsigned pending; /* turns in flight: never evicted meanwhile */
} voice_call_t;

typedef struct voice_s {
    chan_t base;
    chat_map_t calls;
    chat_link_t lru;
} voice_t;

static voice_t the_voice;

static void choices_clear(voice_call_t *c)
{
    for (size_t i = 0; i < c->n_choices; i++)
        free(c->choices[i]);
    free(c->choices);
    c->choices = NULL;
    c->n_choices = 0;
}

static void call_free(voice_t *v, voice_call_t *c)
{
    chat__map_del(&v->calls, &c->node);
    chat__list_remove(&c->lru);
    choices_clear(c);
    free(c->sid);
    free(c->rt_key);
    free(c->prompt);
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

/* ---- TwiML -------------------------------------------------------------- */

static void say(core_buf_t *b, const core_config_t *cfg, const char *text)
{
    core_buf_append_str(b, "<Say");
    if (cfg->voice.say_voice[0] != '\0') {
        core_buf_append_str(b, " voice=\"");
        twilio__xml_escape_str(b, cfg->voice.say_voice);
        core_buf_append_str(b, "\"");
    }
    if (cfg->voice.language[0] != '\0') {
        core_buf_append_str(b, " language=\"");
        twilio__xml_escape_str(b, cfg->voice.language);
        core_buf_append_str(b, "\"");
    }
    core_buf_append_str(b, ">");
    twilio__xml_escape_str(b, text);
    core_buf_append_str(b, "</Say>");
}

/* A menu (or a yes/no) is answered by one key, so one key ends the Gather
 * at once; free input (a reference keyed in) ends with # or a pause. */
static void gather_open(core_buf_t *b, const core_config_t *cfg, const voice_call_t *c)
{
    const char *base = cfg->voice.public_url;
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    core_buf_append_str(b, "<Gather input=\"speech dtmf\" action=\"");
    twilio__xml_escape(b, base, n);
    core_buf_append_str(b, "/v1/voice/twilio\" method=\"POST\" speechTimeout=\"auto\" "
                           "actionOnEmptyResult=\"true\"");
    if (c->n_choices > 0 || c->confirming)
        core_buf_append_str(b, " numDigits=\"1\"");
    if (cfg->voice.language[0] != '\0') {
        core_buf_append_str(b, " language=\"");
        twilio__xml_escape_str(b, cfg->voice.language);
        core_buf_append_str(b, "\"");
    }
    core_buf_append_str(b, ">");
}

static void send_twiml(net_req_t *req, const char *inner)
{
    core_buf_t b;
    core_buf_init(&b, (size_t)-1);
    core_buf_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>%s</Response>", inner);
    twilio__send_twiml(req, &b);
    core_buf_dispose(&b);
}

/* The handoff target configured for queue ("*" for any), NULL when none;
 * returned string is owned. */
static char *handoff_target(const char *numbers, const char *queue)
{
    char *star = NULL;
    for (const char *p = numbers; *p != '\0';) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        if (eq != NULL) {
            size_t qn = (size_t)(eq - p);
            char *target = core_xstrndup(eq + 1, n - qn - 1);
            if (queue != NULL && strlen(queue) == qn && memcmp(p, queue, qn) == 0) {
                free(star);
                return target;
            }
            if (qn == 1 && *p == '*' && star == NULL)
                star = target;
            else
                free(target);
        }
        p += n + (end != NULL);
    }
    return star;
}

static void url_encode(core_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            core_buf_append(b, s, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            core_buf_append(b, e, 3);
        }
    }
}

/* <Dial> to target with the summary: a <Parameter> for a Client, an
 * X-Chorus-Summary header for a SIP URI, a Number otherwise (the summary then
 * stays in the transcript and the logs). */
static void dial(core_buf_t *b, const char *target, const char *summary)
{
    core_buf_append_str(b, "<Dial>");
    if (strncmp(target, "client:", 7) == 0) {
        core_buf_append_str(b, "<Client><Identity>");
        twilio__xml_escape_str(b, target + 7);
        core_buf_append_str(b, "</Identity><Parameter name=\"summary\" value=\"");
        twilio__xml_escape_str(b, summary);
        core_buf_append_str(b, "\"/></Client>");
    } else if (strncmp(target, "sip:", 4) == 0) {
        core_buf_t u;
        core_buf_init(&u, (size_t)-1);
        core_buf_printf(&u, "%s%sX-Chorus-Summary=", target, strchr(target, '?') ? "&" : "?");
        url_encode(&u, summary);
        core_buf_append_str(b, "<Sip>");
        twilio__xml_escape(b, u.data, u.len);
        core_buf_append_str(b, "</Sip>");
        core_buf_dispose(&u);
    } else {
        core_buf_append_str(b, "<Number>");
        twilio__xml_escape_str(b, target);
        core_buf_append_str(b, "</Number>");
    }
    core_buf_append_str(b, "</Dial>");
}

/* The <Say>s of a turn's output, with a DTMF menu for its choices and the
 * confirmation keys; remembers the choices for the digits that answer. */
static void prompt(core_buf_t *b, const core_config_t *cfg, voice_call_t *c, const brain_out_t *o)
{
    choices_clear(c);
    c->confirming = o->confirm_slot != NULL;
    for (size_t i = 0; i < o->n_messages; i++) {
        const brain_message_t *m = &o->messages[i];
        if (m->text != NULL && m->text[0] != '\0')
            say(b, cfg, m->text);
        if (m->n_choices == 0)
            continue;
        choices_clear(c);
        c->choices = core_xcalloc(m->n_choices, sizeof(char *));
        core_buf_t menu;
        core_buf_init(&menu, (size_t)-1);
        for (size_t k = 0; k < m->n_choices && k < 9; k++) {
            const brain_choice_t *ch = &m->choices[k];
            c->choices[k] = core_xstrdup(ch->value ? ch->value : ch->title ? ch->title : "");
            c->n_choices = k + 1;
            core_buf_printf(&menu, "%sPress %zu for %s.", k ? " " : "", k + 1,
                            ch->title ? ch->title : "");
        }
        core_buf_append(&menu, "", 1);
        say(b, cfg, menu.data);
        core_buf_dispose(&menu);
    }
    if (c->confirming && c->n_choices == 0) /* the flow offered no yes/no buttons */
        say(b, cfg, "Press 1 for yes, or 2 for no.");
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

static void render(core_buf_t *b, const core_config_t *cfg, voice_call_t *c, const brain_out_t *o)
{
    if (o->status == BRAIN_ST_HANDOFF) {
        for (size_t i = 0; i < o->n_messages; i++)
            if (o->messages[i].text && o->messages[i].text[0])
                say(b, cfg, o->messages[i].text);
        char *target = handoff_target(cfg->voice.handoff_numbers, o->handoff_queue);
        if (target != NULL)
            dial(b, target, o->handoff_summary ? o->handoff_summary : "{}");
        else
            core_buf_append_str(b, "<Hangup/>");
        LOG_INFO("event=voice_handoff conversation=%s queue=%s dialed=%s", c->rt_key,
                 o->handoff_queue ? o->handoff_queue : "", target ? target : "none");
        free(target);
        return;
    }
    if (o->status == BRAIN_ST_ENDED) {
        for (size_t i = 0; i < o->n_messages; i++)
            if (o->messages[i].text && o->messages[i].text[0])
                say(b, cfg, o->messages[i].text);
        core_buf_append_str(b, "<Hangup/>");
        return;
    }
    core_buf_t p;
    core_buf_init(&p, (size_t)-1);
    prompt(&p, cfg, c, o);
    core_buf_append(&p, "", 1);
    free(c->prompt);
    c->prompt = core_buf_steal(&p, NULL);
    gather_open(b, cfg, c);
    core_buf_append_str(b, c->prompt);
    core_buf_append_str(b, "</Gather>");
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
    render(&b, op->voice->base.host.cfg, c, out->out);
    core_buf_append(&b, "", 1);
    if (op->req != NULL)
        send_twiml(op->req, b.data);
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

static void silence(voice_t *v, net_req_t *req, voice_call_t *c)
{
    const core_config_t *cfg = v->base.host.cfg;
    if (++c->silences > cfg->voice.max_silences || c->prompt == NULL) {
        LOG_INFO("event=voice_silence_hangup conversation=%s silences=%d", c->rt_key, c->silences);
        send_twiml(req, "<Hangup/>");
        return;
    }
    core_buf_t b;
    core_buf_init(&b, (size_t)-1);
    gather_open(&b, cfg, c);
    core_buf_append_str(&b, c->prompt);
    core_buf_append_str(&b, "</Gather>");
    core_buf_append(&b, "", 1);
    send_twiml(req, b.data);
    core_buf_dispose(&b);
}

/* A caller's speech or keys: one turn (Confidence goes with the speech). */
static void answer(voice_t *v, net_req_t *req, voice_call_t *c, const char *speech,
                   const char *digits, const char *conf)
{
    c->silences = 0;
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

/* A callback with the caller's answer for a call not held here (the daemon
 * restarted during the call, or the call was evicted): the call's record is
 * read from the store first, so that a key answers the menu the caller
 * heard. A call the store never saw starts as a new one. */
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
    voice_call_t *c = r->call;
    c->pending--;
    if (status == 0) {
        choices_clear(c);
        c->n_choices = twilio__last_choices(record, 9, &c->choices);
    }
    json_decref(record);
    LOG_INFO("event=voice_call_resumed conversation=%s found=%d choices=%zu", c->rt_key,
             status == 0, c->n_choices);
    if (r->req != NULL) {
        net_req_on_abort(r->req, NULL, NULL);
        if (status == CORE_ERR_NOT_FOUND)
            run_turn(r->voice, r->req, c, BRAIN_EV_START, NULL, NULL);
        else
            answer(r->voice, r->req, c, r->speech, r->digits, r->conf);
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
    int answered = (speech != NULL && speech[0] != '\0') || (digits != NULL && digits[0] != '\0');
    voice_call_t *c = call_find(v, sid);
    if (call_over(twilio__form_get(&f, "CallStatus"))) {
        if (c != NULL && c->pending == 0)
            call_free(v, c);
        send_twiml(req, "");
    } else if (c == NULL) {
        c = call_new(v, sid);
        char env[16];
        const char *e =
            twilio__env_for(cfg->voice.environments, twilio__form_get(&f, "To"), env, sizeof(env));
        snprintf(c->env, sizeof(c->env), "%s", e ? e : "");
        if (answered) {
            resume(v, req, c, speech, digits, conf);
        } else {
            LOG_INFO("event=voice_call conversation=%s from=%s", c->rt_key,
                     twilio__form_get(&f, "From") ? twilio__form_get(&f, "From") : "");
            run_turn(v, req, c, BRAIN_EV_START, NULL, NULL);
        }
    } else if (answered) {
        answer(v, req, c, speech, digits, conf);
    } else {
        silence(v, req, c);
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
