/* chan_twilio_int.h — what the SMS and voice adapters share (chan_twilio.c):
 * the form decoding of Twilio's webhooks, the X-Twilio-Signature check,
 * the public URL a request was signed for, XML escaping for TwiML, and the
 * SMS text rules (chan_sms_text.c: GSM-7 detection, segment counting,
 * splitting at sentence boundaries, opt-out keywords), and the last reply of
 * a stored conversation. Private to src/channels. Loop thread only (the
 * helpers are pure and thread-safe). Protocol: docs/channels.md. */
#ifndef CHORUS_CHAN_TWILIO_INT_H
#define CHORUS_CHAN_TWILIO_INT_H

#include <stddef.h>

#include "chorus/channels.h"

#define TWILIO_SIG_LEN 28 /* base64 of a 20-byte HMAC-SHA1 */
#define TWILIO_ADAPTER_VERSION "1"

/* ---- forms -------------------------------------------------------------- */

typedef struct twilio_param_s {
    char *name;  /* owned, decoded */
    char *value; /* owned, decoded */
} twilio_param_t;

typedef struct twilio_form_s {
    twilio_param_t *p; /* owned array */
    size_t n;
} twilio_form_t;

/* Decodes an application/x-www-form-urlencoded body ('+' is a space, %XX a
 * byte). A malformed escape or a NUL byte is CORE_ERR_INVALID with err
 * naming the field. f is initialised by the call (empty on failure). */
int twilio__form_parse(const char *body, size_t len, twilio_form_t *f, core_err_t *err);
void twilio__form_dispose(twilio_form_t *f);
/* The first value of name, NULL when absent. */
const char *twilio__form_get(const twilio_form_t *f, const char *name);

/* ---- signatures --------------------------------------------------------- */

/* Twilio's X-Twilio-Signature: base64(HMAC-SHA1(token, url + each param's
 * name and value, sorted by name then value, a pair sent more than once
 * counted once)). out gets 28 chars + NUL. */
void twilio__signature(const char *token, const char *url, const twilio_form_t *f,
                       char out[TWILIO_SIG_LEN + 1]);
/* 1 when header (may be NULL) is the signature of f with url, or with url
 * without its port (when it names one) or with the scheme's default port
 * (when it names none: :443 for https, :80 for http), as Twilio's own
 * helpers accept; compared in constant time. 0 otherwise (and always when
 * token is empty). */
int twilio__signature_ok(const char *token, const char *url, const twilio_form_t *f,
                         const char *header);
/* The URL Twilio requested: public_url (scheme://host[:port][/prefix], no
 * trailing slash; "" = "http://" + the Host header) + path + "?query" when
 * there is one. Returned string is owned. */
char *twilio__request_url(net_req_t *req, const char *public_url);

/* ---- TwiML -------------------------------------------------------------- */

/* Appends s (len bytes of UTF-8) escaped for XML text and attribute values:
 * & < > " ' become entities; control characters other than tab, CR and LF
 * (not allowed in XML 1.0) are dropped. */
void twilio__xml_escape(core_buf_t *b, const char *s, size_t len);
void twilio__xml_escape_str(core_buf_t *b, const char *s);

/* Reads the form of a webhook and checks its signature with the token in
 * the environment variable token_env. Returns 0 with f filled, or answers
 * the request (400, 403, 415) and returns -1 with nothing else done. */
int twilio__verify(net_req_t *req, const char *channel, const char *public_url,
                   const char *token_env, twilio_form_t *f);
/* Sends TwiML (body borrowed) as text/xml with status 200. */
void twilio__send_twiml(net_req_t *req, const core_buf_t *body);

/* ---- SMS text (chan_sms_text.c) ----------------------------------------- */

#define SMS_GSM_SINGLE 160 /* septets in a one-part GSM-7 message */
#define SMS_GSM_PART 153   /* per part of a concatenated one (UDH takes 7) */
#define SMS_UCS_SINGLE 70  /* UTF-16 units in a one-part UCS-2 message */
#define SMS_UCS_PART 67

/* Septets text needs in GSM-7 (extension-table characters count two), or
 * -1 when some character has no GSM-7 encoding (then UCS-2 is used). */
long sms__gsm7_septets(const char *s, size_t len);
/* UTF-16 code units of s (a character outside the BMP counts two). */
size_t sms__ucs2_units(const char *s, size_t len);
/* Segments the text costs on the wire (0 for ""). */
size_t sms__segments(const char *s, size_t len);

/* Splits text into parts that each fit one segment of a concatenated
 * message (153 GSM-7 septets or 67 UCS-2 units), cutting after a sentence
 * end where one fits, else at a space, else between characters; a text
 * that fits a single message (160 / 70) stays whole. parts (owned strings,
 * owned array) and n are filled. */
void sms__split(const char *s, size_t len, char ***parts, size_t *n);
void sms__parts_free(char **parts, size_t n);

typedef enum {
    SMS_KW_NONE = 0,
    SMS_KW_STOP = 1,  /* STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT */
    SMS_KW_START = 2, /* START, UNSTOP, OPTIN */
    SMS_KW_YES = 3,   /* YES: opts back in only when opted out */
    SMS_KW_HELP = 4,  /* HELP, INFO */
} sms_keyword_t;

/* The carrier keyword a whole message is (case and surrounding spaces and
 * punctuation ignored), SMS_KW_NONE when it is ordinary text. */
sms_keyword_t sms__keyword(const char *s, size_t len);

/* ---- outbound SMS (chan_sms_send.c) ------------------------------------- */

/* Splits the runtime key "sms:<From>:<To>" into the customer's number and
 * the Twilio number they texted (owned strings). A number may carry a
 * letters-only channel prefix ("whatsapp:+1555..."). 0 or CORE_ERR_INVALID. */
int twilio__sms_key(const char *key, char **customer, char **ours);
/* Texts text from the number ours to customer through Twilio's Messages API
 * (cfg's sms.account_sid, token and sms.api_base_url), split into segments
 * as replies are, one POST per part, in order. Returns CHAN_AGENT_PENDING
 * (cb runs once later) or a negative code with err filled (cb never runs). */
int twilio__sms_send(net_client_t *http, const core_config_t *cfg, const char *ours,
                     const char *customer, const char *text, chan_agent_done_cb cb, void *data,
                     core_err_t *err);
/* chan_sms.c: chan_agent_say_async() for an "sms:" key: refuses an opted-out
 * pair (CORE_ERR_DENIED), else twilio__sms_send(). */
int sms__agent_send(net_client_t *http, const char *key, const char *text, chan_agent_done_cb cb,
                    void *data, core_err_t *err);
/* chan_sms.c: the output of a turn no webhook asked for, on an "sms:" key
 * (others are ignored). The pair's numbered list becomes this output's, so
 * the customer's next number picks from what the bot said last, or is text
 * when that had no list (as after a restart, when the list is read from
 * the store). With text_it (a person handed the conversation back:
 * chan_desk_turn_done()) the words are also texted through the Messages
 * API, as a reply Twilio stopped waiting for is, unless the pair opted
 * out; without (an idle timeout's goodbye: chan_idle_end()) they are only
 * recorded. */
void sms__unasked_output(const runtime_turn_out_t *out, int text_it);

/* The bot's last reply in a stored record (as runtime_conversation_record()
 * reads it), borrowed from the record: the text of the last outbound row
 * (its messages joined by newlines; "" for none), the messages of that row's
 * "reply" event ([{"text","choices":[{"title","value"}]}]; NULL when the row
 * needed none, and then the text says it all) and the slot it asked to
 * confirm (NULL for none). Returns 0, or CORE_ERR_NOT_FOUND when the record
 * holds no outbound row. */
typedef struct twilio_reply_s {
    const char *text;
    const json_t *messages;
    const char *confirm;
} twilio_reply_t;
int twilio__last_reply(const json_t *record, twilio_reply_t *out);

/* The values of the last choices a conversation was offered, from its
 * stored record (as runtime_conversation_record() reads it): the choices
 * (value, else title; at most max) of the last message that had any in the
 * reply of the last outbound row, as if that turn had just run here. The
 * count; *out is an owned array of owned strings, NULL when 0 (that reply
 * had none, or the record holds no outbound row). How the SMS adapter gets
 * back the numbered list of a pair it no longer holds (voice rebuilds its
 * whole prompt from twilio__last_reply()). */
size_t twilio__last_choices(const json_t *record, size_t max, char ***out);
/* Frees such an array of n owned strings (NULL is fine). */
void twilio__choices_free(char **choices, size_t n);

/* chan_envs.c: the environment map (sms.environments, voice.environments:
 * "+15550100=staging,...") entry for number, copied into buf; NULL when the
 * number is not listed (the default environment). */
const char *twilio__env_for(const char *map, const char *number, char *buf, size_t size);

#endif
