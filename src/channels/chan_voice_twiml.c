/* The voice adapter's TwiML: what Twilio is told to say and do for a turn's
 * output, and the prompt a silence repeats, rebuilt from the store when the
 * call outlived the daemon. Contract: chan_voice_int.h.
 *
 * The bot's messages are <Say>s (voice and language from the config, the
 * text XML-escaped so nothing in it is read as SSML) inside <Gather
 * input="speech dtmf" action=... speechTimeout="auto">; choices are a DTMF
 * menu ("Press 1 for ...", a key picks the option); a slot the flow confirms
 * on voice adds "press 1 for yes, 2 for no"; a handoff dials the queue's
 * number from voice.handoff_numbers with the summary attached; the end hangs
 * up. */
#define LOG_MODULE "voice"
#include <stdlib.h>
#include <string.h>

#include "channels/chan_voice_int.h"

void voice__choices_clear(voice_call_t *c)
{
    twilio__choices_free(c->choices, c->n_choices);
    c->choices = NULL;
    c->n_choices = 0;
    free(c->hints);
    c->hints = NULL;
}

/* name="value" (escaped) with a space before it; nothing for an empty value
 * (the configured voice or language left to Twilio's default). */
static void attr(core_buf_t *b, const char *name, const char *value)
{
    if (value[0] == '\0')
        return;
    core_buf_printf(b, " %s=\"", name);
    twilio__xml_escape_str(b, value);
    core_buf_append_str(b, "\"");
}

static void say(core_buf_t *b, const core_config_t *cfg, const char *text)
{
    core_buf_append_str(b, "<Say");
    attr(b, "voice", cfg->voice.say_voice);
    attr(b, "language", cfg->voice.language);
    core_buf_append_str(b, ">");
    twilio__xml_escape_str(b, text);
    core_buf_append_str(b, "</Say>");
}

/* The webhook's URL (voice.public_url + the path; the path alone, which
 * Twilio takes relative to the request's URL, when it is not set), escaped
 * for an attribute or a verb's text. */
static void webhook_url(core_buf_t *b, const core_config_t *cfg)
{
    const char *base = cfg->voice.public_url;
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    twilio__xml_escape(b, base, n);
    core_buf_append_str(b, "/v1/voice/twilio");
}

/* A menu (or a yes/no) is answered by one key, so one key ends the Gather
 * at once; free input (a reference keyed in) ends with # or a pause. */
static void gather_open(core_buf_t *b, const core_config_t *cfg, const voice_call_t *c)
{
    core_buf_append_str(b, "<Gather input=\"speech dtmf\" action=\"");
    webhook_url(b, cfg);
    core_buf_append_str(b, "\" method=\"POST\" speechTimeout=\"auto\" "
                           "actionOnEmptyResult=\"true\"");
    if (c->n_choices > 0 || c->confirming)
        core_buf_append_str(b, " numDigits=\"1\"");
    attr(b, "hints", c->hints ? c->hints : "");
    attr(b, "language", cfg->voice.language);
    core_buf_append_str(b, ">");
}

void voice__hold_on(core_buf_t *b, const core_config_t *cfg)
{
    core_buf_append_str(b, "<Pause length=\"1\"/><Redirect method=\"POST\">");
    webhook_url(b, cfg);
    core_buf_append_str(b, "</Redirect>");
}

void voice__send_twiml(net_req_t *req, const char *inner)
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

/* Appends a menu option's title to the speech hints: Twilio takes a
 * comma-separated list of phrases of at most 100 characters each, so a
 * comma or a control character in the title is a space, and a longer
 * title is no hint. */
static void add_hint(core_buf_t *h, const char *title)
{
    size_t n = strlen(title);
    if (n == 0 || n > 100)
        return;
    if (h->len > 0)
        core_buf_append_str(h, ", ");
    for (size_t i = 0; i < n; i++) {
        char ch = title[i] == ',' || (unsigned char)title[i] < 0x20 ? ' ' : title[i];
        core_buf_append(h, &ch, 1);
    }
}

/* The <Say>s of a reply's messages, with a DTMF menu for their choices and
 * the confirmation keys when confirming; remembers the choices for the
 * digits that answer, and their titles as the hints for speech. */
static void prompt(core_buf_t *b, const core_config_t *cfg, voice_call_t *c,
                   const brain_message_t *messages, size_t n_messages, int confirming)
{
    voice__choices_clear(c);
    c->confirming = confirming;
    for (size_t i = 0; i < n_messages; i++) {
        const brain_message_t *m = &messages[i];
        if (m->text != NULL && m->text[0] != '\0')
            say(b, cfg, m->text);
        if (m->n_choices == 0)
            continue;
        voice__choices_clear(c);
        c->choices = core_xcalloc(m->n_choices, sizeof(char *));
        core_buf_t menu;
        core_buf_init(&menu, (size_t)-1);
        core_buf_t hints;
        core_buf_init(&hints, (size_t)-1);
        for (size_t k = 0; k < m->n_choices && k < 9; k++) {
            const brain_choice_t *ch = &m->choices[k];
            c->choices[k] = core_xstrdup(ch->value ? ch->value : ch->title ? ch->title : "");
            c->n_choices = k + 1;
            add_hint(&hints, ch->title ? ch->title : "");
            core_buf_printf(&menu, "%sPress %zu for %s.", k ? " " : "", k + 1,
                            ch->title ? ch->title : "");
        }
        core_buf_append(&menu, "", 1);
        say(b, cfg, menu.data);
        core_buf_dispose(&menu);
        c->hints = hints.len > 0 ? core_buf_steal(&hints, NULL) : NULL;
        core_buf_dispose(&hints);
    }
    if (c->confirming && c->n_choices == 0) { /* the flow offered no yes/no buttons */
        say(b, cfg, "Press 1 for yes, or 2 for no.");
        c->hints = core_xstrdup("yes, no");
    }
}

/* Sets the call's last prompt (kept for silence) from a reply's messages. */
static void set_prompt(const core_config_t *cfg, voice_call_t *c, const brain_message_t *messages,
                       size_t n_messages, int confirming)
{
    core_buf_t p;
    core_buf_init(&p, (size_t)-1);
    prompt(&p, cfg, c, messages, n_messages, confirming);
    core_buf_append(&p, "", 1);
    free(c->prompt);
    c->prompt = core_buf_steal(&p, NULL);
}

void voice__render(core_buf_t *b, const core_config_t *cfg, voice_call_t *c, const brain_out_t *o)
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
    set_prompt(cfg, c, o->messages, o->n_messages, o->confirm_slot != NULL);
    gather_open(b, cfg, c);
    core_buf_append_str(b, c->prompt);
    core_buf_append_str(b, "</Gather>");
}

void voice__reprompt(core_buf_t *b, const core_config_t *cfg, const voice_call_t *c)
{
    gather_open(b, cfg, c);
    core_buf_append_str(b, c->prompt ? c->prompt : "");
    core_buf_append_str(b, "</Gather>");
}

static void messages_free(brain_message_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < m[i].n_choices; k++) {
            free(m[i].choices[k].title);
            free(m[i].choices[k].value);
        }
        free(m[i].choices);
        free(m[i].text);
    }
    free(m);
}

/* The messages of a stored reply as the brain gave them (owned copies): the
 * reply event's, else one per line of the outbound row's text. */
static size_t stored_messages(const twilio_reply_t *r, brain_message_t **out)
{
    size_t n = 0;
    if (r->messages != NULL) {
        n = json_array_size(r->messages);
        brain_message_t *m = *out = core_xcalloc(n ? n : 1, sizeof(*m));
        for (size_t i = 0; i < n; i++) {
            const json_t *jm = json_array_get(r->messages, i);
            const json_t *choices = json_object_get(jm, "choices");
            m[i].text = core_xstrdup_opt(json_string_value(json_object_get(jm, "text")));
            m[i].n_choices = json_array_size(choices);
            m[i].choices =
                core_xcalloc(m[i].n_choices ? m[i].n_choices : 1, sizeof(brain_choice_t));
            for (size_t k = 0; k < m[i].n_choices; k++) {
                const json_t *ch = json_array_get(choices, k);
                m[i].choices[k].title =
                    core_xstrdup_opt(json_string_value(json_object_get(ch, "title")));
                m[i].choices[k].value =
                    core_xstrdup_opt(json_string_value(json_object_get(ch, "value")));
            }
        }
        return n;
    }
    /* one message a line: no message of the row had a newline of its own */
    for (const char *nl = strchr(r->text, '\n'); nl != NULL; nl = strchr(nl + 1, '\n'))
        n++;
    brain_message_t *m = *out = core_xcalloc(n + 1, sizeof(*m));
    const char *p = r->text;
    for (size_t i = 0; i <= n; i++) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        m[i].text = core_xstrndup(p, len);
        p += len + (nl != NULL);
    }
    return n + 1;
}

void voice__restore_prompt(const core_config_t *cfg, voice_call_t *c, const twilio_reply_t *r)
{
    brain_message_t *m = NULL;
    size_t n = stored_messages(r, &m);
    set_prompt(cfg, c, m, n, r->confirm != NULL);
    messages_free(m, n);
}
