/* chan_voice_int.h — the voice adapter's call and its TwiML, shared by
 * chan_voice.c (the webhook, the calls table, the turns) and
 * chan_voice_twiml.c (what Twilio is told to say and do). Private to
 * src/channels. Loop thread only. */
#ifndef CHORUS_CHAN_VOICE_INT_H
#define CHORUS_CHAN_VOICE_INT_H

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
    char *hints;      /* owned: what a caller may say to it (<Gather hints>), NULL for none */
    int confirming;   /* the last prompt asked "is that right?" */
    int silences;     /* silent callbacks in a row */
    unsigned pending; /* turns in flight: never evicted meanwhile */
    int started;      /* a turn of the call completed, or its prompt was read back */
    int redirected;   /* told to come back (<Redirect>) while its first answer was not ready */
    char *replay;     /* owned: that first answer, for the request the <Redirect> brings */
} voice_call_t;

/* Frees the call's last menu (its values and hints). */
void voice__choices_clear(voice_call_t *c);

/* The TwiML of a turn's output, appended to b: the messages as <Say>s inside
 * a <Gather> (choices as a DTMF menu, the confirmation keys), <Dial> to the
 * handoff's target, or <Hangup/> at the end. Sets the call's prompt, menu and
 * confirming for the callbacks that answer it. */
void voice__render(core_buf_t *b, const core_config_t *cfg, voice_call_t *c, const brain_out_t *o);

/* The call's last prompt again, inside a new <Gather>, appended to b. */
void voice__reprompt(core_buf_t *b, const core_config_t *cfg, const voice_call_t *c);

/* Sets the call's prompt, menu and confirming from a stored reply
 * (twilio__last_reply), as voice__render() set them when it went out: the
 * reply event's messages, else one per line of the row's text. */
void voice__restore_prompt(const core_config_t *cfg, voice_call_t *c, const twilio_reply_t *r);

/* A short wait, then back to the webhook (<Pause/><Redirect>), appended to
 * b: what a request hears while the call's first answer is not ready. */
void voice__hold_on(core_buf_t *b, const core_config_t *cfg);

/* Answers req 200 with <Response>inner</Response>. */
void voice__send_twiml(net_req_t *req, const char *inner);

#endif
