/* A scripted stand-in for the brain, for runtime tests that must not depend
 * on the flow language. Every brain function the runtime calls is defined
 * here, so none of the real brain's objects is linked in; a new brain call in
 * src/runtime needs its stand-in below. Include it from exactly one test
 * file per executable.
 *
 * The stand-in reads the user text as a command:
 *   "http URL [retries [backoff_ms [timeout_ms]]]"  one GET effect
 *   "post URL [retries [backoff_ms]]"  one POST effect, body {}
 *   "llm BASE [KEYVAR|-] [retries]"  one chat completion (POST BASE/chat/completions)
 *   "end"                ends the conversation
 *   "secret X"           fills a sensitive slot with X (memory only, as the brain's)
 *   "fail"               counts a failed action in the turn's policy counters
 *   "date"               says the turn's reference date, "date:YYYY-MM-DD HH:MM"
 *   anything else        says "echo:<text> #<turn>"
 * and after an effect says "result error=<name> status=<n> content=<c>
 * tokens=<p>/<c> body=<first bytes>". Its state JSON is {"turns":N}. */
#ifndef CHORUS_TEST_FAKE_BRAIN_H
#define CHORUS_TEST_FAKE_BRAIN_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/brain.h"

struct brain_flowset_s {
    int refs;
    uint32_t version;
    char hash[65];
    int from_cache;
};

static int64_t fake_idle_us = 60 * 1000000LL;

void brain_compile_opts_init(brain_compile_opts_t *o)
{
    memset(o, 0, sizeof(*o));
}

int brain_flowset_compile(const brain_source_t *s, size_t n, const brain_compile_opts_t *o,
                          brain_flowset_t **out, core_diags_t *diags)
{
    *out = NULL;
    uint32_t h = 5381;
    for (size_t i = 0; i < n; i++) {
        if (memmem(s[i].text, s[i].len, "INVALID", 7) != NULL) {
            core_diags_add(diags, s[i].name, 1, 1, "nodes", "scripted problem");
            return CORE_ERR_INVALID;
        }
        for (size_t j = 0; j < s[i].len; j++)
            h = h * 33 + (uint8_t)s[i].text[j];
    }
    brain_flowset_t *fs = calloc(1, sizeof(*fs));
    fs->refs = 1;
    fs->version = o->version;
    for (int i = 0; i < 8; i++)
        snprintf(fs->hash + i * 8, 9, "%08x", h + (uint32_t)i);
    fs->from_cache = o->nlu_cache != NULL && o->nlu_cache_hash != NULL &&
                     strcmp(o->nlu_cache_hash, fs->hash) == 0 && o->nlu_cache_len == 5 &&
                     memcmp(o->nlu_cache, "MODEL", 5) == 0;
    *out = fs;
    return 0;
}

brain_flowset_t *brain_flowset_ref(brain_flowset_t *fs)
{
    fs->refs++;
    return fs;
}

void brain_flowset_unref(brain_flowset_t *fs)
{
    if (fs != NULL && --fs->refs == 0)
        free(fs);
}

uint32_t brain_flowset_version(const brain_flowset_t *fs)
{
    return fs->version;
}

const char *brain_flowset_nlu_hash(const brain_flowset_t *fs)
{
    return fs->hash;
}

int brain_flowset_nlu_from_cache(const brain_flowset_t *fs)
{
    return fs->from_cache;
}

double brain_flowset_threshold(const brain_flowset_t *fs)
{
    (void)fs;
    return 0.45;
}

int brain_flowset_nlu_save(const brain_flowset_t *fs, core_buf_t *out)
{
    return core_buf_append(out, "MODEL", 5);
}

int64_t brain_flowset_idle_timeout_us(const brain_flowset_t *fs)
{
    return fake_idle_us;
}

size_t brain_flowset_flow_count(const brain_flowset_t *fs)
{
    return 1;
}

void brain_conv_init(brain_conv_t *c, const brain_flowset_t *fs, brain_channel_t ch, int64_t now)
{
    memset(c, 0, sizeof(*c));
    c->version = fs->version;
    c->channel = (uint8_t)ch;
    c->created_us = c->last_us = now;
}

void brain_conv_dispose(brain_conv_t *c)
{
    free(c->slots);
}

size_t brain_conv_memory(const brain_conv_t *c)
{
    return sizeof(*c) + c->slots_cap;
}

/* The fake's only slot is sensitive. */
int brain_conv_has_sensitive(const brain_flowset_t *fs, const brain_conv_t *c)
{
    return c->slots_len > 0;
}

int64_t brain_conv_deadline(const brain_flowset_t *fs, const brain_conv_t *c)
{
    return c->status == BRAIN_ST_ACTIVE ? c->last_us + fake_idle_us : 0;
}

int brain_conv_migrate(const brain_flowset_t *from, const brain_flowset_t *to, brain_conv_t *c,
                       core_err_t *err)
{
    c->version = to->version;
    return 0;
}

const char *brain_channel_name(brain_channel_t ch)
{
    return ch == BRAIN_CH_CHAT ? "chat" : "default";
}

const char *guard_action_name(guard_action_t a)
{
    return "allow";
}

char *guard_result_json(const guard_result_t *r)
{
    return core_xstrdup(r->n_decisions > 0 ? "[{}]" : "[]");
}

int brain_conv_to_json(const brain_flowset_t *fs, const brain_conv_t *c, core_buf_t *out)
{
    return core_buf_printf(out, "{\"turns\":%u}", c->turns);
}

int brain_conv_from_json(const brain_flowset_t *fs, const char *json, size_t len, brain_conv_t *c,
                         core_err_t *err)
{
    brain_conv_init(c, fs, BRAIN_CH_CHAT, 0);
    unsigned turns = 0;
    if (sscanf(json, "{\"turns\":%u}", &turns) != 1)
        return core_err_set(err, CORE_ERR_INVALID, "not a fake state");
    c->turns = turns;
    return 0;
}

/* The fake has no places to lose. */
void brain_conv_lose_place(const brain_flowset_t *fs, brain_conv_t *c)
{
}

void brain_out_init(brain_out_t *out)
{
    memset(out, 0, sizeof(*out));
}

static void effect_clear(brain_effect_t *e)
{
    free(e->method);
    free(e->url);
    free(e->body);
    free(e->base_url);
    free(e->model);
    free(e->api_key_env);
    memset(e, 0, sizeof(*e));
}

static void out_reset(brain_out_t *out)
{
    for (size_t i = 0; i < out->n_messages; i++)
        free(out->messages[i].text);
    out->n_messages = 0;
    effect_clear(&out->effect);
}

void brain_out_dispose(brain_out_t *out)
{
    out_reset(out);
}

static void say(brain_out_t *out, char *text)
{
    out->messages[out->n_messages++].text = text;
}

int brain_turn(const brain_flowset_t *fs, brain_conv_t *c, const brain_input_t *in,
               brain_out_t *out)
{
    if (c->version != fs->version)
        return CORE_ERR_INVALID;
    out_reset(out);
    c->last_us = in->now_us;
    if (in->event == BRAIN_EV_TIMEOUT) {
        c->status = BRAIN_ST_ENDED;
        say(out, core_xstrdup("bye (timeout)"));
        return BRAIN_DONE;
    }
    c->turns++;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%.*s", (int)in->len, in->text);
    char a[400] = "", b[64] = "";
    unsigned r = 0, bo = 0, to = 0;
    if (sscanf(cmd, "http %399s %u %u %u", a, &r, &bo, &to) >= 1) {
        brain_effect_t *e = &out->effect;
        e->kind = BRAIN_EFFECT_HTTP;
        e->method = core_xstrdup("GET");
        e->url = core_xstrdup(a);
        e->retries = r;
        e->backoff_ms = bo;
        e->timeout_ms = to ? to : 5000;
        return BRAIN_NEED_EFFECT;
    }
    if (sscanf(cmd, "post %399s %u %u", a, &r, &bo) >= 1) {
        brain_effect_t *e = &out->effect;
        e->kind = BRAIN_EFFECT_HTTP;
        e->method = core_xstrdup("POST");
        e->url = core_xstrdup(a);
        e->body = core_xstrdup("{}");
        e->body_len = 2;
        e->retries = r;
        e->backoff_ms = bo;
        e->timeout_ms = 5000;
        return BRAIN_NEED_EFFECT;
    }
    if (sscanf(cmd, "llm %399s %63s %u", a, b, &r) >= 1) {
        brain_effect_t *e = &out->effect;
        e->kind = BRAIN_EFFECT_LLM;
        e->method = core_xstrdup("POST");
        e->url = core_xasprintf("%s/chat/completions", a);
        e->body = core_xstrdup("{\"model\":\"stub-model\",\"messages\":[{\"role\":\"system\","
                               "\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":"
                               "\"where is my bag\"}],\"temperature\":0.2,\"max_tokens\":64}");
        e->body_len = strlen(e->body);
        e->api_key_env = (b[0] && strcmp(b, "-") != 0) ? core_xstrdup(b) : NULL;
        e->retries = r;
        e->backoff_ms = 10;
        e->timeout_ms = 2000;
        return BRAIN_NEED_EFFECT;
    }
    if (strcmp(cmd, "date") == 0) {
        say(out, core_xasprintf("date:%04d-%02d-%02d %02d:%02d", in->ref.year, in->ref.month,
                                in->ref.day, in->ref.hour, in->ref.minute));
        return BRAIN_DONE;
    }
    if (sscanf(cmd, "secret %63s", b) == 1) {
        free(c->slots);
        c->slots = core_xasprintf("card%c%s", '\0', b);
        c->slots_len = c->slots_cap = (uint32_t)(5 + strlen(b) + 1);
        say(out, core_xstrdup("noted"));
        return BRAIN_DONE;
    }
    if (strcmp(cmd, "fail") == 0) {
        if (in->policy != NULL)
            in->policy->action_failures++;
        say(out, core_xstrdup("failed"));
        return BRAIN_DONE;
    }
    if (strcmp(cmd, "end") == 0) {
        c->status = BRAIN_ST_ENDED;
        say(out, core_xstrdup("goodbye"));
        return BRAIN_DONE;
    }
    say(out, core_xasprintf("echo:%s #%u", cmd, c->turns));
    return BRAIN_DONE;
}

int brain_resume(const brain_flowset_t *fs, brain_conv_t *c, const brain_effect_result_t *res,
                 brain_out_t *out)
{
    effect_clear(&out->effect);
    say(out, core_xasprintf("result error=%s status=%d content=%s tokens=%d/%d body=%.20s",
                            res->error ? core_strerror(res->error) : "none", res->status,
                            res->content ? res->content : "-", res->prompt_tokens,
                            res->completion_tokens, res->body ? res->body : ""));
    return BRAIN_DONE;
}

#endif
