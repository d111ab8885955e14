/* Effects: the HTTP requests the brain asks for (backend actions and LLM
 * chat completions), performed through net_client with the node's timeout,
 * retries and exponential backoff. Every outcome, failures included, goes
 * back to the brain as a brain_effect_result_t so the flow takes its error
 * edge; nothing here ends a turn except shutdown. */
#define LOG_MODULE "runtime"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chorus/secret.h"
#include "runtime/runtime_int.h"

static void on_http_done(net_client_response_t *resp);

static int has_header(const brain_effect_t *e, const char *name)
{
    for (size_t i = 0; i < e->n_headers; i++)
        if (strcasecmp(e->headers[i].name, name) == 0)
            return 1;
    return 0;
}

static void effect_log(const rt_turn_t *t, const brain_effect_result_t *res)
{
    const brain_effect_t *e = &t->out.effect;
    char reason[160];
    LOG_INFO("event=effect kind=%s flow=%s node=%s status=%d error=%s attempts=%u "
             "latency_ms=%u reason=%s",
             e->kind == BRAIN_EFFECT_LLM ? "llm" : "http", e->flow ? e->flow : "-",
             e->node ? e->node : "-", res->status, res->error ? core_strerror(res->error) : "none",
             t->attempt + 1, res->latency_ms,
             core_log_quote(reason, sizeof(reason), res->error_text ? res->error_text : "",
                            (size_t)-1, 120));
}

/* Hands the result to the brain; t may be freed when this returns. */
static void effect_finish(rt_turn_t *t, brain_effect_result_t *res)
{
    runtime_t *rt = t->rt;
    res->latency_ms = (uint32_t)((core_now_us() - t->effect_start_us) / 1000);
    effect_log(t, res);
    const brain_effect_t *e = &t->out.effect;
    int failed = res->error != 0 || res->status >= 500;
    if (failed) {
        rt->stats.effect_errors++;
        t->fail_kind = e->kind == BRAIN_EFFECT_LLM ? "llm" : "action";
    }
    if (t->n_fx < sizeof(t->fx) / sizeof(t->fx[0])) {
        t->fx[t->n_fx].kind = (uint8_t)e->kind;
        t->fx[t->n_fx].node = e->node;
        t->fx[t->n_fx].status = res->status;
        t->fx[t->n_fx].error = res->error;
        t->fx[t->n_fx].ms = res->latency_ms;
        t->n_fx++;
    }
    t->tokens_in += res->prompt_tokens;
    t->tokens_out += res->completion_tokens;
    t->attempt = 0;
    rt_turn_resume(t, res);
}

static void effect_fail(rt_turn_t *t, int error, const char *text)
{
    brain_effect_result_t res;
    memset(&res, 0, sizeof(res));
    res.error = error;
    res.error_text = text;
    effect_finish(t, &res);
}

/* An action that may change something on the backend (any method but GET
 * and HEAD) may run more than once: a retry after a timeout or a 5xx whose
 * request did arrive, or the whole turn again when the store refused it
 * (the client is told 503 and retries). Each carries an Idempotency-Key the
 * backend can deduplicate by, the same for every attempt of the call and
 * for the same call of the turn run again: it is derived from the
 * conversation, the turn's place in it (rolled back with it) and the call's
 * ordinal in the turn. A flow's own Idempotency-Key header wins. */
static int idempotency_key(const rt_turn_t *t, const brain_effect_t *e, char out[40])
{
    if (e->kind != BRAIN_EFFECT_HTTP || e->method == NULL || strcmp(e->method, "GET") == 0 ||
        strcmp(e->method, "HEAD") == 0 || has_header(e, "Idempotency-Key") || t->conv == NULL)
        return 0;
    char *what = core_xasprintf("%s\n%u\n%u\n%u\n%s", t->conv->key, t->gen_before, t->seq_before,
                                t->calls, e->node ? e->node : "");
    uint8_t h[32];
    core_sha256(what, strlen(what), h);
    free(what);
    memcpy(out, "chorus-", 7);
    core_hex_encode(h, 16, out + 7);
    return 1;
}

void rt_effect_start(rt_turn_t *t)
{
    runtime_t *rt = t->rt;
    const brain_effect_t *e = &t->out.effect;
    if (t->attempt == 0) {
        t->effect_start_us = core_now_us();
        t->calls++;
    }
    net_client_header_t *h = core_xcalloc(e->n_headers + 4, sizeof(*h));
    size_t n = 0;
    for (size_t i = 0; i < e->n_headers; i++)
        h[n++] = (net_client_header_t){e->headers[i].name, e->headers[i].value};
    char idem[40];
    if (idempotency_key(t, e, idem))
        h[n++] = (net_client_header_t){"Idempotency-Key", idem};
    char *auth = NULL;
    if (e->kind == BRAIN_EFFECT_LLM) {
        if (e->api_key_env != NULL && e->api_key_env[0] != '\0') {
            /* A secret file or the environment (secret.h), at call time, never logged. */
            const char *key = core_secret_get(e->api_key_env);
            if (key == NULL || key[0] == '\0') {
                free(h);
                char msg[160];
                snprintf(msg, sizeof(msg),
                         "secret %s is not set (no secret file, no environment variable)",
                         e->api_key_env);
                effect_fail(t, CORE_ERR_DENIED, msg);
                return;
            }
            auth = core_xasprintf("Bearer %s", key);
            h[n++] = (net_client_header_t){"Authorization", auth};
        }
        if (!has_header(e, "Content-Type"))
            h[n++] = (net_client_header_t){"Content-Type", "application/json"};
        if (!has_header(e, "Accept"))
            h[n++] = (net_client_header_t){"Accept", "application/json"};
    }
    net_client_request_t req = {.method = e->method,
                                .url = e->url,
                                .headers = h,
                                .n_headers = n,
                                .body = e->body,
                                .body_len = e->body_len,
                                .timeout_ms = e->timeout_ms,
                                .max_response_bytes = rt->opts.max_effect_bytes};
    core_err_t err = {0};
    int rc = net_client_request(rt->http, &req, on_http_done, t, &t->xfer, &err);
    free(auth);
    free(h);
    t->effects++;
    rt->stats.effects++;
    if (t->attempt > 0)
        rt->stats.retries++;
    if (rc != 0) {
        t->xfer = NULL;
        effect_fail(t, rc, err.msg);
    }
}

static void on_backoff(uv_timer_t *h)
{
    rt_turn_t *t = h->data;
    if (!t->rt->closing)
        rt_effect_start(t);
}

/* Transport failures, 5xx and 429 may succeed later; a body that was too
 * big, a refused key or a bad request will not. */
static int retryable(const net_client_response_t *resp)
{
    if (resp->error != 0)
        return resp->error == CORE_ERR_TIMEOUT || resp->error == CORE_ERR_IO ||
               resp->error == CORE_ERR_PROTOCOL || resp->error == UV_ECONNREFUSED ||
               resp->error == UV_EAI_NONAME;
    return resp->status >= 500 || resp->status == 429;
}

static int schedule_retry(rt_turn_t *t, const net_client_response_t *resp)
{
    runtime_t *rt = t->rt;
    const brain_effect_t *e = &t->out.effect;
    if (!retryable(resp) || t->attempt >= e->retries)
        return 0;
    uint64_t delay = (uint64_t)e->backoff_ms << (t->attempt < 20 ? t->attempt : 20);
    if (resp->retry_after_s > 0 && (uint64_t)resp->retry_after_s * 1000 > delay)
        delay = (uint64_t)resp->retry_after_s * 1000;
    if (delay > rt->opts.max_backoff_ms)
        delay = rt->opts.max_backoff_ms;
    if (!t->backoff_active) {
        uv_timer_init(rt->loop, &t->backoff);
        t->backoff.data = t;
        t->backoff_active = 1;
        rt->open_handles++;
    }
    LOG_DEBUG("event=effect_retry flow=%s node=%s attempt=%u delay_ms=%llu status=%d error=%s",
              e->flow ? e->flow : "-", e->node ? e->node : "-", t->attempt + 1,
              (unsigned long long)delay, resp->status,
              resp->error ? core_strerror(resp->error) : "none");
    t->attempt++;
    uv_timer_start(&t->backoff, on_backoff, delay, 0);
    return 1;
}

/* Reads an OpenAI chat-completions answer: choices[0].message.content and
 * the usage counts. An answer with nothing to say (an empty content: a
 * reasoning model that spent max_tokens thinking) or one the provider's
 * content filter stopped is a failure, for the flow's error edge; one cut
 * at max_tokens (finish_reason "length") is said as it is, and logged.
 * Returns the parsed document (caller decrefs) or NULL with *why set. */
static json_t *parse_completion(const net_client_response_t *resp, brain_effect_result_t *res,
                                int *cut, char *why, size_t why_size)
{
    json_error_t jerr;
    json_t *doc = json_loadb(resp->body, resp->body_len, 0, &jerr);
    if (doc == NULL) {
        snprintf(why, why_size, "malformed chat completion: %s at byte %d", jerr.text,
                 jerr.position);
        return NULL;
    }
    json_t *choice = json_array_get(json_object_get(doc, "choices"), 0);
    json_t *content = json_object_get(json_object_get(choice, "message"), "content");
    if (!json_is_string(content)) {
        snprintf(why, why_size, "chat completion has no choices[0].message.content string");
        json_decref(doc);
        return NULL;
    }
    const char *finish = json_string_value(json_object_get(choice, "finish_reason"));
    const char *text = json_string_value(content);
    if (finish != NULL && strcmp(finish, "content_filter") == 0) {
        snprintf(why, why_size, "the provider's content filter stopped the answer");
        json_decref(doc);
        return NULL;
    }
    if (text[strspn(text, " \t\r\n")] == '\0') {
        snprintf(why, why_size, "chat completion's content is empty (finish_reason %s)",
                 finish ? finish : "none");
        json_decref(doc);
        return NULL;
    }
    *cut = finish != NULL && strcmp(finish, "length") == 0;
    res->content = text;
    json_t *usage = json_object_get(doc, "usage");
    res->prompt_tokens = (int)json_integer_value(json_object_get(usage, "prompt_tokens"));
    res->completion_tokens = (int)json_integer_value(json_object_get(usage, "completion_tokens"));
    return doc;
}

static void on_http_done(net_client_response_t *resp)
{
    rt_turn_t *t = resp->data;
    runtime_t *rt = t->rt;
    t->xfer = NULL;
    if (rt->closing || resp->error == CORE_ERR_CLOSED) {
        rt_turn_fail(t, CORE_ERR_CLOSED, "runtime is shutting down");
        return;
    }
    if (schedule_retry(t, resp))
        return;
    brain_effect_result_t res;
    memset(&res, 0, sizeof(res));
    res.error = resp->error;
    res.error_text = resp->error ? resp->error_msg : NULL;
    res.status = resp->status;
    res.body = resp->body;
    res.body_len = resp->body_len;
    char why[256];
    json_t *doc = NULL;
    /* Any status is an answer (the brain stores it and sends the flow down
     * its error edge unless it is 2xx); only an LLM's 2xx body is read here. */
    if (res.error == 0 && t->out.effect.kind == BRAIN_EFFECT_LLM && resp->status >= 200 &&
        resp->status <= 299) {
        int cut = 0;
        doc = parse_completion(resp, &res, &cut, why, sizeof(why));
        if (cut)
            LOG_INFO("event=llm_answer_cut flow=%s node=%s reason=max_tokens",
                     t->out.effect.flow ? t->out.effect.flow : "-",
                     t->out.effect.node ? t->out.effect.node : "-");
        if (doc == NULL) {
            res.error = CORE_ERR_PROTOCOL;
            res.error_text = why;
        } else {
            rt->stats.llm_prompt_tokens +=
                (uint64_t)(res.prompt_tokens > 0 ? res.prompt_tokens : 0);
            rt->stats.llm_completion_tokens +=
                (uint64_t)(res.completion_tokens > 0 ? res.completion_tokens : 0);
        }
    }
    effect_finish(t, &res);
    json_decref(doc);
}
