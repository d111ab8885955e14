/* Fuzz target: what the SMS and voice adapters do with bytes from outside
 * (chan_twilio.c, chan_sms_text.c), each on the whole input:
 * - a webhook body as a form: a signature computed over it must verify, and
 *   the same signature with one character changed must not;
 * - text escaped for TwiML: no markup character or control character other
 *   than tab, CR and LF comes out, and every '&' starts an entity;
 * - text as an SMS reply: a text too long for one message splits into
 *   non-empty parts, each within one segment of the text's alphabet, in the
 *   text's order;
 * - a stored record as JSON: the last reply and menu are read without
 *   reading past what the record holds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "channels/chan_twilio_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_form(const char *body, size_t size)
{
    twilio_form_t f;
    core_err_t err;
    if (twilio__form_parse(body, size, &f, &err) != 0)
        return;
    (void)twilio__form_get(&f, "From");
    char sig[TWILIO_SIG_LEN + 1];
    twilio__signature("auth-token", "https://bot.example.com/v1/sms/twilio", &f, sig);
    if (strlen(sig) != TWILIO_SIG_LEN ||
        !twilio__signature_ok("auth-token", "https://bot.example.com/v1/sms/twilio", &f, sig))
        abort();
    sig[size % TWILIO_SIG_LEN] = sig[size % TWILIO_SIG_LEN] == 'A' ? 'B' : 'A';
    if (twilio__signature_ok("auth-token", "https://bot.example.com/v1/sms/twilio", &f, sig))
        abort();
    twilio__form_dispose(&f);
}

static void check_escape(const char *text, size_t size)
{
    static const char *const entities[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    core_buf_t b;
    core_buf_init(&b, (size_t)-1);
    twilio__xml_escape(&b, text, size);
    for (size_t i = 0; i < b.len; i++) {
        unsigned char c = (unsigned char)b.data[i];
        if (c == '<' || c == '>' || c == '"' || c == '\'' ||
            (c < 0x20 && c != '\t' && c != '\r' && c != '\n'))
            abort();
        if (c != '&')
            continue;
        int known = 0;
        for (size_t k = 0; k < sizeof(entities) / sizeof(entities[0]); k++)
            known |= strncmp(b.data + i, entities[k], strlen(entities[k])) == 0;
        if (!known)
            abort();
    }
    core_buf_dispose(&b);
}

static void check_split(const char *text, size_t size)
{
    size = strnlen(text, size); /* the adapters pass C strings */
    (void)sms__keyword(text, size);
    long septets = sms__gsm7_septets(text, size);
    size_t units = septets >= 0 ? (size_t)septets : sms__ucs2_units(text, size);
    char **parts;
    size_t n;
    sms__split(text, size, &parts, &n);
    if (units <= (septets >= 0 ? SMS_GSM_SINGLE : SMS_UCS_SINGLE)) {
        if (n != 1 || strlen(parts[0]) != strnlen(text, size)) /* whole, up to a NUL */
            abort();
    } else {
        const char *from = text;
        for (size_t i = 0; i < n; i++) {
            size_t len = strlen(parts[i]);
            size_t cost = septets >= 0 ? (size_t)sms__gsm7_septets(parts[i], len)
                                       : sms__ucs2_units(parts[i], len);
            if (len == 0 || cost > (septets >= 0 ? SMS_GSM_PART : SMS_UCS_PART))
                abort();
            const char *at = memmem(from, size - (size_t)(from - text), parts[i], len);
            if (at == NULL)
                abort();
            from = at + len;
        }
    }
    sms__parts_free(parts, n);
}

static void check_record(const char *json, size_t size)
{
    json_t *record = json_loadb(json, size, 0, NULL);
    if (record == NULL)
        return;
    twilio_reply_t r;
    if (twilio__last_reply(record, &r) == 0 && r.text == NULL)
        abort();
    char **choices;
    size_t n = twilio__last_choices(record, 9, &choices);
    if (n > 9 || (n == 0) != (choices == NULL))
        abort();
    for (size_t i = 0; i < n; i++)
        if (choices[i] == NULL)
            abort();
    twilio__choices_free(choices, n);
    json_decref(record);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy so that any read past the input is caught */
    char *text = malloc(size ? size : 1);
    memcpy(text, data, size);
    check_form(text, size);
    check_escape(text, size);
    check_split(text, size);
    check_record(text, size);
    free(text);
    return 0;
}
