/* What the Twilio-compatible adapters (SMS, voice) share: decoding the
 * webhook's form, checking X-Twilio-Signature exactly as Twilio computes it,
 * rebuilding the public URL the request was signed for (chorusd usually sits
 * behind a proxy, so the URL comes from configuration, not the socket) and
 * escaping text for TwiML, and the last reply a conversation was given
 * (its menu, its prompt), from its stored record. */
#define LOG_MODULE "twilio"
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "channels/chan_twilio_int.h"
#include "chorus/secret.h"

/* Decodes s[0..len) into a new string; NULL on a bad escape or a NUL. */
static char *form_decode(const char *s, size_t len)
{
    char *out = core_xmalloc(len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 2 < len ? core_hex_digit(s[i + 1]) : -1;
            int lo = hi >= 0 ? core_hex_digit(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return out;
}

void twilio__form_dispose(twilio_form_t *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->p[i].name);
        free(f->p[i].value);
    }
    free(f->p);
    f->p = NULL;
    f->n = 0;
}

int twilio__form_parse(const char *body, size_t len, twilio_form_t *f, core_err_t *err)
{
    f->p = NULL;
    f->n = 0;
    size_t cap = 0, i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && body[end] != '&')
            end++;
        if (end > i) {
            const char *eq = memchr(body + i, '=', end - i);
            size_t nlen = eq ? (size_t)(eq - (body + i)) : end - i;
            char *name = form_decode(body + i, nlen);
            char *value =
                eq ? form_decode(eq + 1, (size_t)(body + end - eq - 1)) : core_xstrdup("");
            if (name == NULL || value == NULL || name[0] == '\0') {
                free(name);
                free(value);
                twilio__form_dispose(f);
                return core_err_set(err, CORE_ERR_INVALID,
                                    "form field at byte %zu: bad percent-escape or empty name", i);
            }
            if (f->n == cap) {
                cap = cap ? cap * 2 : 16;
                f->p = core_xrealloc(f->p, cap * sizeof(*f->p));
            }
            f->p[f->n++] = (twilio_param_t){name, value};
        }
        i = end + 1;
    }
    return 0;
}

const char *twilio__form_get(const twilio_form_t *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->p[i].name, name) == 0)
            return f->p[i].value;
    return NULL;
}

static int param_cmp(const void *a, const void *b)
{
    const twilio_param_t *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

void twilio__signature(const char *token, const char *url, const twilio_form_t *f,
                       char out[TWILIO_SIG_LEN + 1])
{
    /* sort a copy of the pointers: the form keeps Twilio's order */
    twilio_param_t *sorted = core_xmalloc((f->n ? f->n : 1) * sizeof(*sorted));
    if (f->n)
        memcpy(sorted, f->p, f->n * sizeof(*sorted));
    qsort(sorted, f->n, sizeof(*sorted), param_cmp);
    core_buf_t b;
    core_buf_init(&b, (size_t)-1);
    core_buf_append_str(&b, url);
    for (size_t i = 0; i < f->n; i++) {
        /* a (name, value) pair sent twice is signed once: Twilio's helpers
         * keep a repeated name's values as a set (webhooks.js,
         * toFormUrlEncodedParam); sorted, the copies are neighbours */
        if (i > 0 && param_cmp(&sorted[i - 1], &sorted[i]) == 0)
            continue;
        core_buf_append_str(&b, sorted[i].name);
        core_buf_append_str(&b, sorted[i].value);
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    HMAC(EVP_sha1(), token, (int)strlen(token), (const unsigned char *)b.data, b.len, mac, &mlen);
    EVP_EncodeBlock((unsigned char *)out, mac, (int)mlen);
    out[TWILIO_SIG_LEN] = '\0';
    core_buf_dispose(&b);
    free(sorted);
}

/* Where url's port is: [*host_end, *port_end) is ":port" (empty when the
 * URL names none), *port_end the end of the authority. 0, or -1 for a URL
 * with no "scheme://". An IPv6 literal's colons are inside its brackets. */
static int port_span(const char *url, size_t *host_end, size_t *port_end)
{
    const char *auth = strstr(url, "://");
    if (auth == NULL)
        return -1;
    auth += 3;
    size_t n = strcspn(auth, "/?#");
    size_t host = 0; /* after any userinfo */
    for (size_t i = 0; i < n; i++)
        if (auth[i] == '@')
            host = i + 1;
    size_t colon = n;
    for (size_t i = n; i-- > host && auth[i] != ']';)
        if (auth[i] == ':') {
            colon = i;
            break;
        }
    *host_end = (size_t)(auth - url) + colon;
    *port_end = (size_t)(auth - url) + n;
    return 0;
}

/* The port a scheme implies, NULL when chorusd does not know one. */
static const char *default_port(const char *url)
{
    if (strncasecmp(url, "https://", 8) == 0)
        return ":443";
    if (strncasecmp(url, "http://", 7) == 0)
        return ":80";
    return NULL;
}

/* The other form of url Twilio may have signed: without its port when it
 * names one, else with the scheme's default port; NULL when there is none
 * (no "scheme://", or a scheme without a known port). Owned. */
static char *other_port_form(const char *url)
{
    size_t host_end, port_end;
    if (port_span(url, &host_end, &port_end) != 0)
        return NULL;
    const char *port = port_end > host_end ? "" : default_port(url);
    if (port == NULL)
        return NULL;
    return core_xasprintf("%.*s%s%s", (int)host_end, url, port, url + port_end);
}

static int signed_for(const char *token, const char *url, const twilio_form_t *f,
                      const char *header)
{
    char want[TWILIO_SIG_LEN + 1];
    twilio__signature(token, url, f, want);
    return CRYPTO_memcmp(want, header, TWILIO_SIG_LEN) == 0;
}

int twilio__signature_ok(const char *token, const char *url, const twilio_form_t *f,
                         const char *header)
{
    if (token == NULL || token[0] == '\0' || header == NULL || strlen(header) != TWILIO_SIG_LEN)
        return 0;
    /* Twilio signs the URL as it called it, and whether that names the port
     * varies: it leaves out :443 for https and may leave out another port
     * too. Its own helpers (webhooks.js, validateRequest) therefore accept
     * the URL with and without its port, the scheme's default port standing
     * in when it names none; so does this. Both are always checked, so the
     * time taken does not say which one matched. */
    char *other = other_port_form(url);
    int ok = signed_for(token, url, f, header);
    if (other != NULL)
        ok |= signed_for(token, other, f, header);
    free(other);
    return ok;
}

char *twilio__request_url(net_req_t *req, const char *public_url)
{
    core_buf_t b;
    core_buf_init(&b, (size_t)-1);
    if (public_url != NULL && public_url[0] != '\0') {
        size_t n = strlen(public_url);
        while (n > 0 && public_url[n - 1] == '/')
            n--;
        core_buf_append(&b, public_url, n);
    } else {
        const char *host = net_req_header(req, "Host");
        core_buf_printf(&b, "http://%s", host ? host : "");
    }
    core_buf_append_str(&b, net_req_path(req));
    const char *q = net_req_query_string(req);
    if (q[0] != '\0')
        core_buf_printf(&b, "?%s", q);
    core_buf_append(&b, "", 1);
    return core_buf_steal(&b, NULL);
}

void twilio__xml_escape(core_buf_t *b, const char *s, size_t len)
{
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *ent = NULL;
        switch (c) {
        case '&':
            ent = "&amp;";
            break;
        case '<':
            ent = "&lt;";
            break;
        case '>':
            ent = "&gt;";
            break;
        case '"':
            ent = "&quot;";
            break;
        case '\'':
            ent = "&apos;";
            break;
        default:
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
                ent = "";
        }
        if (ent == NULL)
            continue;
        core_buf_append(b, s + run, i - run);
        core_buf_append_str(b, ent);
        run = i + 1;
    }
    core_buf_append(b, s + run, len - run);
}

void twilio__xml_escape_str(core_buf_t *b, const char *s)
{
    twilio__xml_escape(b, s, strlen(s));
}

static int form_content_type(const char *ct)
{
    static const char want[] = "application/x-www-form-urlencoded";
    size_t n = sizeof(want) - 1;
    return ct != NULL && strncasecmp(ct, want, n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

int twilio__verify(net_req_t *req, const char *channel, const char *public_url,
                   const char *token_env, twilio_form_t *f)
{
    f->p = NULL;
    f->n = 0;
    if (!form_content_type(net_req_header(req, "Content-Type"))) {
        net_resp_error(req, 415, "unsupported_media_type",
                       "Content-Type must be application/x-www-form-urlencoded");
        return -1;
    }
    size_t len;
    const char *body = net_req_body(req, &len);
    core_err_t err = {0};
    if (twilio__form_parse(body, len, f, &err) != 0) {
        net_resp_error(req, 400, "invalid_form", "request body: %s", err.msg);
        return -1;
    }
    const char *token = core_secret_get(token_env);
    char *url = twilio__request_url(req, public_url);
    int ok = twilio__signature_ok(token, url, f, net_req_header(req, "X-Twilio-Signature"));
    if (!ok) {
        char quoted[600]; /* the URL carries the query and maybe Host as the client sent them */
        LOG_WARN("event=%s_signature_rejected rid=%s remote=%s url=%s reason=\"%s\"", channel,
                 net_req_id(req), net_req_remote(req),
                 core_log_quote(quoted, sizeof(quoted), url, (size_t)-1, 500),
                 token == NULL || token[0] == '\0' ? "auth token variable is not set"
                 : net_req_header(req, "X-Twilio-Signature") == NULL ? "no X-Twilio-Signature"
                                                                     : "signature mismatch");
        net_resp_error(req, 403, "invalid_signature",
                       "X-Twilio-Signature does not match the request");
        twilio__form_dispose(f);
    }
    free(url);
    return ok ? 0 : -1;
}

void twilio__send_twiml(net_req_t *req, const core_buf_t *body)
{
    net_resp_send(req, 200, "text/xml; charset=utf-8", body->data, body->len);
}

/* ---- the last reply, from a stored record ------------------------------ */

int twilio__last_reply(const json_t *record, twilio_reply_t *out)
{
    *out = (twilio_reply_t){0};
    json_int_t last = 0; /* json_integer_value: 0 for a member absent or not an integer */
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(record, "turns"), i, e)
    {
        const char *dir = json_string_value(json_object_get(e, "direction"));
        json_int_t seq = json_integer_value(json_object_get(e, "seq"));
        if (dir != NULL && strcmp(dir, "out") == 0 && seq > last) {
            last = seq;
            out->text = json_string_value(json_object_get(e, "text"));
        }
    }
    if (last == 0)
        return CORE_ERR_NOT_FOUND;
    if (out->text == NULL)
        out->text = "";
    json_array_foreach(json_object_get(record, "events"), i, e)
    {
        const char *kind = json_string_value(json_object_get(e, "kind"));
        if (kind != NULL && strcmp(kind, "reply") == 0 &&
            json_integer_value(json_object_get(e, "turn_seq")) == last) {
            const json_t *detail = json_object_get(e, "detail");
            out->messages = json_object_get(detail, "messages");
            out->confirm = json_string_value(json_object_get(detail, "confirm"));
        }
    }
    return 0;
}

void twilio__choices_free(char **choices, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(choices[i]);
    free(choices);
}

size_t twilio__last_choices(const json_t *record, size_t max, char ***out)
{
    *out = NULL;
    twilio_reply_t r;
    if (twilio__last_reply(record, &r) != 0)
        return 0;
    const json_t *messages = r.messages;
    for (size_t m = json_array_size(messages); m-- > 0;) {
        const json_t *choices = json_object_get(json_array_get(messages, m), "choices");
        size_t n = json_array_size(choices) < max ? json_array_size(choices) : max;
        if (n == 0)
            continue;
        *out = core_xcalloc(n, sizeof(char *));
        for (size_t k = 0; k < n; k++) {
            const json_t *c = json_array_get(choices, k);
            const char *v = json_string_value(json_object_get(c, "value"));
            const char *title = json_string_value(json_object_get(c, "title"));
            (*out)[k] = core_xstrdup(v ? v : title ? title : "");
        }
        return n;
    }
    return 0;
}
