/* Outbound SMS through Twilio's REST API, for the human desk (an agent's
 * words, the queue's notices): POST {sms.api_base_url}/2010-04-01/Accounts/
 * {AccountSid}/Messages.json with the form fields To, From and Body and HTTP
 * Basic auth AccountSid:AuthToken, through net_client on the loop. A long
 * text is split into segments as the adapter splits replies, and the parts
 * are POSTed one after the other so they arrive in order; the first failure
 * (a non-2xx answer, a timeout) ends the send and is reported with
 * Twilio's own message. docs/channels.md, "SMS". */
#define LOG_MODULE "sms"
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "channels/chan_twilio_int.h"
#include "chorus/secret.h"

typedef struct sms_send_s {
    net_client_t *http;    /* borrowed */
    char *url, *auth;      /* owned: the Messages URL, "Basic ..." */
    char *ours, *customer; /* owned: From and To of the texts */
    char **parts;          /* owned: the segments */
    size_t n, next;        /* parts, and the one being sent */
    uint64_t timeout_ms;   /* per POST */
    chan_agent_done_cb cb; /* runs once */
    void *data;            /* for cb */
} sms_send_t;

static int letters_only(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
            return 0;
    return n > 0;
}

int twilio__sms_key(const char *key, char **customer, char **ours)
{
    if (strncmp(key, "sms:", 4) != 0)
        return CORE_ERR_INVALID;
    const char *p = key + 4, *cut = strrchr(p, ':');
    if (cut == NULL || cut == p)
        return CORE_ERR_INVALID;
    /* "whatsapp:+1555...": the prefix belongs to the number after it */
    const char *prev = cut - 1;
    while (prev > p && *prev != ':')
        prev--;
    if (*prev == ':' && letters_only(prev + 1, (size_t)(cut - prev - 1)))
        cut = prev;
    if (cut[1] == '\0')
        return CORE_ERR_INVALID;
    *customer = core_xasprintf("%.*s", (int)(cut - p), p);
    *ours = core_xstrdup(cut + 1);
    return 0;
}

/* Appends name=value, the value percent-encoded as a form field. */
static void form_add(core_buf_t *b, const char *name, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    if (b->len > 0)
        core_buf_append(b, "&", 1);
    core_buf_append_str(b, name);
    core_buf_append(b, "=", 1);
    for (const unsigned char *v = (const unsigned char *)value; *v != '\0'; v++) {
        if ((*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z') || (*v >= '0' && *v <= '9') ||
            *v == '-' || *v == '.' || *v == '_' || *v == '~') {
            core_buf_append(b, (const char *)v, 1);
        } else {
            char esc[3] = {'%', hex[*v >> 4], hex[*v & 15]};
            core_buf_append(b, esc, 3);
        }
    }
}

static void send_free(sms_send_t *s)
{
    free(s->url);
    if (s->auth != NULL)
        explicit_bzero(s->auth, strlen(s->auth));
    free(s->auth);
    free(s->ours);
    free(s->customer);
    sms__parts_free(s->parts, s->n);
    free(s);
}

static void finish(sms_send_t *s, int status, const char *reason)
{
    s->cb(status, reason, s->data);
    send_free(s);
}

static void on_posted(net_client_response_t *resp);

static int post_next(sms_send_t *s, core_err_t *err)
{
    core_buf_t body;
    core_buf_init(&body, (size_t)-1);
    form_add(&body, "To", s->customer);
    form_add(&body, "From", s->ours);
    form_add(&body, "Body", s->parts[s->next]);
    net_client_header_t hdr[3] = {{"Content-Type", "application/x-www-form-urlencoded"},
                                  {"Authorization", s->auth},
                                  {"Accept", "application/json"}};
    net_client_request_t req = {.method = "POST",
                                .url = s->url,
                                .headers = hdr,
                                .n_headers = 3,
                                .body = body.data,
                                .body_len = body.len,
                                .timeout_ms = s->timeout_ms};
    int rc = net_client_request(s->http, &req, on_posted, s, NULL, err);
    core_buf_dispose(&body);
    return rc;
}

static void on_posted(net_client_response_t *resp)
{
    sms_send_t *s = resp->data;
    char reason[512], quoted[600];
    if (resp->error != 0) {
        snprintf(reason, sizeof(reason), "Twilio did not answer: %s",
                 resp->error_msg[0] ? resp->error_msg : core_strerror(resp->error));
        LOG_WARN("event=sms_send_failed to=%s part=%zu/%zu reason=%s", s->customer, s->next + 1,
                 s->n, core_log_quote(quoted, sizeof(quoted), reason, (size_t)-1, 500));
        finish(s, resp->error, reason);
        return;
    }
    if (resp->status < 200 || resp->status > 299) {
        json_t *j = json_loadb(resp->body, resp->body_len, 0, NULL);
        const char *msg = json_string_value(json_object_get(j, "message"));
        snprintf(reason, sizeof(reason), "Twilio answered %d: %.400s", resp->status,
                 msg              ? msg
                 : resp->body_len ? resp->body
                                  : "no message");
        json_decref(j);
        /* Twilio's message, or the body of whatever answered (an HTML page
         * from a proxy): quoted, so that it stays one line of the log */
        LOG_WARN("event=sms_send_failed to=%s part=%zu/%zu status=%d reason=%s", s->customer,
                 s->next + 1, s->n, resp->status,
                 core_log_quote(quoted, sizeof(quoted), reason, (size_t)-1, 500));
        finish(s, CORE_ERR_PROTOCOL, reason);
        return;
    }
    LOG_INFO("event=sms_sent to=%s part=%zu/%zu status=%d", s->customer, s->next + 1, s->n,
             resp->status);
    if (++s->next == s->n) {
        finish(s, 0, NULL);
        return;
    }
    core_err_t err = {0};
    if (post_next(s, &err) != 0)
        finish(s, err.code ? err.code : CORE_ERR_IO, err.msg);
}

/* "Basic " + base64(sid ":" token). */
static char *basic_auth(const char *sid, const char *token)
{
    char *plain = core_xasprintf("%s:%s", sid, token);
    size_t n = strlen(plain);
    char *out = core_xmalloc(6 + 4 * ((n + 2) / 3) + 1);
    memcpy(out, "Basic ", 6);
    EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)plain, (int)n);
    explicit_bzero(plain, n);
    free(plain);
    return out;
}

int twilio__sms_send(net_client_t *http, const core_config_t *cfg, const char *ours,
                     const char *customer, const char *text, chan_agent_done_cb cb, void *data,
                     core_err_t *err)
{
    const char *sid = cfg->sms.account_sid;
    if (sid == NULL || *sid == '\0')
        return core_err_set(err, CORE_ERR_UNSUPPORTED,
                            "no outbound sender for sms: sms.account_sid is not set");
    if (sid[strspn(sid, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")] != '\0')
        return core_err_set(err, CORE_ERR_UNSUPPORTED,
                            "no outbound sender for sms: sms.account_sid is not an account SID");
    const char *token = core_secret_get(cfg->sms.auth_token_env);
    if (token == NULL)
        return core_err_set(err, CORE_ERR_UNSUPPORTED,
                            "no outbound sender for sms: the auth token (%s) is not set",
                            cfg->sms.auth_token_env);
    if (http == NULL)
        return core_err_set(err, CORE_ERR_CLOSED, "no HTTP client for outbound SMS");
    sms_send_t *s = core_xcalloc(1, sizeof(*s));
    size_t blen = strlen(cfg->sms.api_base_url);
    while (blen > 0 && cfg->sms.api_base_url[blen - 1] == '/')
        blen--;
    s->url = core_xasprintf("%.*s/2010-04-01/Accounts/%s/Messages.json", (int)blen,
                            cfg->sms.api_base_url, sid);
    s->auth = basic_auth(sid, token);
    s->http = http;
    s->ours = core_xstrdup(ours);
    s->customer = core_xstrdup(customer);
    s->timeout_ms = (uint64_t)cfg->sms.send_timeout_ms;
    s->cb = cb;
    s->data = data;
    sms__split(text, strlen(text), &s->parts, &s->n);
    while (s->n > (size_t)cfg->sms.max_parts) /* as a reply is: the rest is cut */
        free(s->parts[--s->n]);
    int rc = s->n == 0 ? core_err_set(err, CORE_ERR_INVALID, "text: nothing to send")
                       : post_next(s, err);
    if (rc != 0) {
        send_free(s);
        return rc;
    }
    return CHAN_AGENT_PENDING;
}
