/* Shared helpers for the brain's unit tests: compiling flows from strings,
 * running turns with a fixed clock and reference date, and reading the
 * results back as plain strings so each test reads as input -> expected. */
#ifndef TEST_BRAIN_UTIL_H
#define TEST_BRAIN_UTIL_H

#include <stdio.h>
#include <string.h>

#include "chorus/brain.h"

/* Sunday 29 November 2026, 10:00 UTC */
#define T0_US (1796032800LL * 1000000)

/* Compiles sources (name, text pairs) with opts and returns every diagnostic
 * joined by '\n' (static); *out gets the flowset or NULL. */
static inline const char *compile_opts(const char *const *names, const char *const *texts, size_t n,
                                       const brain_compile_opts_t *opts, brain_flowset_t **out)
{
    static char buf[16384];
    brain_source_t src[16];
    for (size_t i = 0; i < n; i++)
        src[i] = (brain_source_t){names[i], texts[i], strlen(texts[i])};
    core_diags_t d;
    core_diags_init(&d);
    *out = NULL;
    brain_flowset_compile(src, n, opts, out, &d);
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < d.len && used < sizeof(buf); i++) {
        char line[1024];
        used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%s", i ? "\n" : "",
                                 core_diag_format(&d.items[i], line, sizeof(line)));
    }
    core_diags_dispose(&d);
    return buf;
}

/* The same without training the router (deterministic routing: exact
 * examples and payload intents) or the guardrails, with envp. */
static inline const char *compile_n(const char *const *names, const char *const *texts, size_t n,
                                    const char *const *envp, brain_flowset_t **out)
{
    brain_compile_opts_t opts;
    brain_compile_opts_init(&opts);
    opts.validate_only = 1;
    opts.no_guard = 1;
    opts.envp = envp;
    return compile_opts(names, texts, n, &opts, out);
}

/* Compiles one file "t.json"; returns its diagnostics. */
static inline const char *compile1(const char *text, brain_flowset_t **out)
{
    const char *names[] = {"t.json"};
    const char *texts[] = {text};
    return compile_n(names, texts, 1, NULL, out);
}

typedef struct harness_s {
    brain_flowset_t *fs;
    brain_conv_t conv;
    brain_out_t out;
    int64_t now;
    int rc; /* of the last brain_turn / brain_resume */
} harness_t;

static inline void h_init(harness_t *h, brain_flowset_t *fs, brain_channel_t ch)
{
    h->fs = fs;
    h->now = T0_US;
    brain_conv_init(&h->conv, fs, ch, h->now);
    brain_out_init(&h->out);
}

static inline void h_dispose(harness_t *h)
{
    brain_out_dispose(&h->out);
    brain_conv_dispose(&h->conv);
    brain_flowset_unref(h->fs);
}

/* Sends text (or a payload intent) and returns the rc. */
/* A message turn, a second after the last one, with the escalation policy's
 * per-conversation state st (NULL: none). */
static inline int h_send_policy(harness_t *h, const char *text, const char *intent,
                                policy_state_t *st)
{
    brain_input_t in;
    memset(&in, 0, sizeof(in));
    in.event = BRAIN_EV_MESSAGE;
    in.text = text;
    in.len = text ? strlen(text) : 0;
    in.intent = intent;
    h->now += 1000000;
    in.now_us = h->now;
    in.ref = (ent_ctx_t){2026, 11, 29, 10, 0, NULL, NULL};
    in.policy = st;
    h->rc = brain_turn(h->fs, &h->conv, &in, &h->out);
    return h->rc;
}

static inline int h_send(harness_t *h, const char *text, const char *intent)
{
    return h_send_policy(h, text, intent, NULL);
}

static inline int h_event(harness_t *h, brain_event_t ev, int64_t advance_us)
{
    brain_input_t in;
    memset(&in, 0, sizeof(in));
    in.event = ev;
    h->now += advance_us;
    in.now_us = h->now;
    in.ref = (ent_ctx_t){2026, 11, 29, 10, 0, NULL, NULL};
    h->rc = brain_turn(h->fs, &h->conv, &in, &h->out);
    return h->rc;
}

static inline int h_resume(harness_t *h, int status, const char *body)
{
    brain_effect_result_t r;
    memset(&r, 0, sizeof(r));
    r.status = status;
    r.body = body;
    r.body_len = body ? strlen(body) : 0;
    h->rc = brain_resume(h->fs, &h->conv, &r, &h->out);
    return h->rc;
}

/* The turn's messages joined by " | " (static). */
static inline const char *h_said(const harness_t *h)
{
    static char buf[8192];
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < h->out.n_messages && used < sizeof(buf); i++)
        used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%s", i ? " | " : "",
                                 h->out.messages[i].text);
    return buf;
}

static inline const char *h_node(const harness_t *h)
{
    return h->out.node ? h->out.node : "-";
}

static inline const char *h_slot(const harness_t *h, const char *name)
{
    const char *v = brain_conv_slot(&h->conv, name);
    return v ? v : "-";
}

#endif
