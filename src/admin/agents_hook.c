/* The webhook to an external desk (agents.webhook_url): one signed JSON
 * POST per handoff, delivered through net_client on the loop and retried
 * with exponential backoff and jitter until a 2xx or agents.webhook_max_attempts.
 * Every attempt carries the same body, so the handoff id in it ("id") is the
 * receiver's idempotency key: a receiver that saw it already answers 2xx and
 * does nothing. Signature: X-Chorus-Signature: v1=hex(HMAC-SHA256(secret,
 * timestamp "." body)) with the timestamp (unix seconds) in
 * X-Chorus-Timestamp, so a receiver can refuse replays of old deliveries.
 * docs/agents.md. */
#define LOG_MODULE "agents"
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/agents_int.h"
#include "chorus/secret.h"

struct ag_hook_s {
    ag_hook_t *next;
    ag_hook_t **pprev; /* what points at this one in d->hooks, NULL once out */
    ag_desk_t *d;
    char id[33]; /* the handoff's id */
    char *body;  /* owned JSON */
    unsigned attempt;
    uv_timer_t timer;
    int timer_open;
    net_client_xfer_t *xfer;
};

/* O(1) either way: while a receiver is down, thousands wait to retry. */
static void hook_link(ag_desk_t *d, ag_hook_t *h)
{
    h->next = d->hooks;
    if (h->next != NULL)
        h->next->pprev = &h->next;
    d->hooks = h;
    h->pprev = &d->hooks;
}

static void hook_unlink(ag_hook_t *h)
{
    if (h->pprev == NULL)
        return;
    *h->pprev = h->next;
    if (h->next != NULL)
        h->next->pprev = h->pprev;
    h->next = NULL;
    h->pprev = NULL;
}

static void on_timer_closed(uv_handle_t *t)
{
    ag_hook_t *h = t->data;
    free(h->body);
    free(h);
}

static void hook_free(ag_hook_t *h)
{
    hook_unlink(h);
    if (h->timer_open) {
        uv_close((uv_handle_t *)&h->timer, on_timer_closed);
        return;
    }
    free(h->body);
    free(h);
}

static void sign(const char *secret, const char *ts, const char *body, char out[72])
{
    size_t tl = strlen(ts), bl = strlen(body);
    char *msg = core_xmalloc(tl + bl + 2);
    memcpy(msg, ts, tl);
    msg[tl] = '.';
    memcpy(msg + tl + 1, body, bl + 1);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)msg, tl + bl + 1, mac,
         &mlen);
    free(msg);
    memcpy(out, "v1=", 3);
    core_hex_encode(mac, mlen < 32 ? mlen : 32, out + 3);
}

static void attempt(ag_hook_t *h);

static void on_retry(uv_timer_t *t)
{
    attempt(t->data);
}

/* The delivery is over: acknowledged (ok), or given up after the last
 * attempt, which is recorded as such and not as delivered, so that the
 * API and the store say whether the receiver has it. */
static void delivered(ag_hook_t *h, int ok)
{
    ag_entry_t *e = ag__find(h->d, h->id);
    if (e != NULL) {
        e->hook = ok ? AG_HOOK_DELIVERED : AG_HOOK_GIVEN_UP;
        ag__changed(h->d, e, ok ? "webhook_delivered" : "webhook_failed");
    }
    hook_free(h);
}

/* Waits backoff * 2^(attempt-1), capped at 5 minutes, +/-25% jitter. */
static void schedule(ag_hook_t *h)
{
    const core_config_t *cfg = h->d->admin->host.cfg;
    uint64_t wait = (uint64_t)cfg->agents.webhook_backoff_ms;
    for (unsigned i = 1; i < h->attempt && wait < 300000; i++)
        wait *= 2;
    if (wait > 300000)
        wait = 300000;
    uint32_t r = 0;
    if (uv_random(NULL, NULL, &r, sizeof(r), 0, NULL) != 0)
        r = (uint32_t)core_now_us();
    wait = wait * 3 / 4 + (wait / 2) * (r % 1001) / 1000;
    if (!h->timer_open) {
        uv_timer_init(h->d->admin->host.loop, &h->timer);
        h->timer.data = h;
        h->timer_open = 1;
    }
    uv_timer_start(&h->timer, on_retry, wait, 0);
}

static void on_done(net_client_response_t *resp)
{
    ag_hook_t *h = resp->data;
    h->xfer = NULL;
    const core_config_t *cfg = h->d->admin->host.cfg;
    if (resp->error == 0 && resp->status >= 200 && resp->status < 300) {
        LOG_INFO("event=webhook_delivered handoff=%s attempt=%u status=%d", h->id, h->attempt,
                 resp->status);
        delivered(h, 1);
        return;
    }
    LOG_WARN("event=webhook_attempt_failed handoff=%s attempt=%u status=%d error=%s", h->id,
             h->attempt, resp->status, resp->error ? core_strerror(resp->error) : "-");
    if (resp->error == CORE_ERR_CLOSED || !h->d->started) {
        hook_free(h);
        return;
    }
    if ((long long)h->attempt >= cfg->agents.webhook_max_attempts) {
        LOG_ERROR("event=webhook_given_up handoff=%s attempts=%u", h->id, h->attempt);
        delivered(h, 0);
        return;
    }
    schedule(h);
}

static void attempt(ag_hook_t *h)
{
    ag_desk_t *d = h->d;
    const core_config_t *cfg = d->admin->host.cfg;
    if (d->http == NULL || *cfg->agents.webhook_url == '\0') {
        hook_free(h);
        return;
    }
    h->attempt++;
    char ts[24], sig[72] = "";
    snprintf(ts, sizeof(ts), "%lld", (long long)(core_wall_us() / 1000000));
    const char *secret = core_secret_get(cfg->agents.webhook_secret_env);
    if (secret != NULL && *secret != '\0')
        sign(secret, ts, h->body, sig);
    net_client_header_t hdr[4] = {{"Content-Type", "application/json"},
                                  {"X-Chorus-Timestamp", ts},
                                  {"X-Chorus-Delivery", h->id},
                                  {"X-Chorus-Signature", sig}};
    net_client_request_t req = {.method = "POST",
                                .url = cfg->agents.webhook_url,
                                .headers = hdr,
                                .n_headers = *sig ? 4 : 3,
                                .body = h->body,
                                .body_len = strlen(h->body),
                                .timeout_ms = (uint64_t)cfg->agents.webhook_timeout_ms};
    core_err_t err = {0};
    if (net_client_request(d->http, &req, on_done, h, &h->xfer, &err) != 0) {
        LOG_WARN("event=webhook_attempt_failed handoff=%s attempt=%u error=%s", h->id, h->attempt,
                 err.msg);
        if ((long long)h->attempt >= cfg->agents.webhook_max_attempts)
            delivered(h, 0);
        else
            schedule(h);
    }
}

static char *payload(const ag_entry_t *e)
{
    json_t *slots = json_object_get(e->summary, "slots");
    size_t n = strlen(e->conv_id) * 3 + 64;
    char *link = core_xmalloc(n);
    size_t w = (size_t)snprintf(link, n, "/v1/admin/conversations/");
    for (const char *p = e->conv_id; *p != '\0' && w + 4 < n; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.')
            link[w++] = *p;
        else
            w += (size_t)snprintf(link + w, n - w, "%%%02X", (unsigned char)*p);
    }
    link[w] = '\0';
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "id", e->id, "event",
                          "handoff.queued", "conversation_id", e->conv_id, "channel",
                          brain_channel_name(e->channel), "reason", e->reason, "queue", e->queue,
                          "transcript_url", link, "created_us", (json_int_t)e->entered_us);
    free(link);
    json_object_set(o, "summary", e->summary ? e->summary : json_null());
    json_object_set_new(o, "slots", json_is_object(slots) ? json_incref(slots) : json_object());
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

void ag__hook_send(ag_desk_t *d, ag_entry_t *e)
{
    if (!d->started || *d->admin->host.cfg->agents.webhook_url == '\0')
        return;
    ag_hook_t *h = core_xcalloc(1, sizeof(*h));
    h->d = d;
    memcpy(h->id, e->id, sizeof(h->id));
    h->body = payload(e);
    hook_link(d, h);
    attempt(h);
}

void ag__hook_close(ag_desk_t *d)
{
    while (d->hooks != NULL) {
        ag_hook_t *h = d->hooks;
        if (h->xfer != NULL) {
            hook_unlink(h); /* the client's close fails it: on_done frees it */
            continue;
        }
        hook_free(h);
    }
}
