/* The guard's two entry points: the input rails (rate and length limits,
 * PII, custom patterns, blocked topics, abuse, prompt injection) and the
 * output rails (PII leaks, banned phrases, promises, length per channel).
 *
 * Every rule that fires becomes a decision in the result; the strongest
 * action wins (allow < redact < block < escalate). Matched PII is redacted
 * from the returned text whatever the rule's action, unless the action is
 * allow, so a blocked or escalated turn still reaches the transcript clean.
 * The text-level rails read the redacted text, folded once (guard_text.c);
 * the input result keeps that fold for the escalation policy, which reads the
 * same text after the turn. */
#include <stdlib.h>
#include <string.h>

#include "brain/guard_int.h"
#include "brain/regex_subject.h"

const char *guard_action_name(guard_action_t a)
{
    switch (a) {
    case GUARD_ALLOW:
        return "allow";
    case GUARD_REDACT:
        return "redact";
    case GUARD_BLOCK:
        return "block";
    case GUARD_ESCALATE:
        return "escalate";
    }
    return "unknown";
}

int guard_action_parse(const char *name, guard_action_t *out)
{
    for (int a = GUARD_ALLOW; a <= GUARD_ESCALATE; a++) {
        if (strcmp(name, guard_action_name((guard_action_t)a)) == 0) {
            *out = (guard_action_t)a;
            return 0;
        }
    }
    return CORE_ERR_INVALID;
}

static void result_init(guard_result_t *r, const char *stage)
{
    memset(r, 0, sizeof(*r));
    r->stage = stage;
}

void guard_result_dispose(guard_result_t *r)
{
    if (r == NULL)
        return;
    free(r->text);
    if (r->priv_fold != NULL) {
        gd_norm_dispose(r->priv_fold);
        free(r->priv_fold);
    }
    for (size_t i = 0; i < r->n_sensitive; i++) {
        /* the original values are secrets: wipe before freeing */
        size_t n = strlen(r->sensitive[i].value);
        volatile char *p = r->sensitive[i].value;
        for (size_t k = 0; k < n; k++)
            p[k] = 0;
        free(r->sensitive[i].value);
    }
    memset(r, 0, sizeof(*r));
}

static void decide(guard_result_t *r, const gd_rule_t *rule, size_t start, size_t end, double score)
{
    const char *reason = rule->reason ? rule->reason : rule->name;
    if (r->n_decisions < GUARD_MAX_DECISIONS)
        r->decisions[r->n_decisions++] = (guard_decision_t){
            rule->name, rule->action, start,
            end,        score,        rule->action >= GUARD_BLOCK ? reason : NULL};
    else
        r->n_dropped++;
    if (rule->action > r->action ||
        (rule->action == r->action && r->reason == NULL && rule->action >= GUARD_BLOCK)) {
        r->action = rule->action;
        if (rule->action >= GUARD_BLOCK) {
            r->reply = rule->reply;
            r->reason = reason;
        }
    }
}

static const guard_rules_t *for_flow(const guard_rules_t *g, const guard_ctx_t *ctx)
{
    if (ctx != NULL && ctx->flow != NULL)
        for (size_t i = 0; i < g->n_flows; i++)
            if (strcmp(g->flows[i].flow, ctx->flow) == 0)
                return g->flows[i].rules;
    return g;
}

/* ---- PII and custom patterns --------------------------------------------- */

static void scan_pii(const gd_rule_t *rules, const char *t, size_t n, gd_spans_t *sp)
{
    if (rules[GD_CARD].enabled)
        gd_scan_cards(t, n, sp);
    if (rules[GD_IBAN].enabled)
        gd_scan_ibans(t, n, sp);
    if (rules[GD_SSN].enabled)
        gd_scan_ssns(t, n, sp);
    if (rules[GD_EMAIL].enabled) {
        gd_scan_emails(t, n, sp);
        gd_scan_spelled_emails(t, n, sp);
    }
    if (rules[GD_PHONE].enabled)
        gd_scan_phones(t, n, sp);
}

static void scan_custom(const guard_rules_t *g, const char *t, size_t n, gd_spans_t *sp)
{
    if (g->n_custom == 0)
        return;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    const char *subject = re_subject(t, n);
    for (size_t i = 0; i < g->n_custom; i++) {
        if (!g->custom[i].rule.enabled)
            continue;
        PCRE2_SIZE off = 0;
        while (off <= n) {
            int rc = pcre2_match(g->custom[i].re, (PCRE2_SPTR)subject, n, off, PCRE2_NO_UTF_CHECK,
                                 md, NULL);
            if (rc < 0)
                break;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            if (ov[1] > ov[0])
                gd_spans_add(sp, ov[0], ov[1], GD_PII_N + (int)i);
            off = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
        }
    }
    pcre2_match_data_free(md);
}

static const gd_rule_t *span_rule(const guard_rules_t *g, const gd_rule_t *pii, int kind)
{
    return kind < GD_PII_N ? &pii[kind] : &g->custom[kind - GD_PII_N].rule;
}

/* Records a decision per span and returns the text with every span whose
 * rule does not allow it replaced by its [LABEL]. */
static void redact(const guard_rules_t *g, const gd_rule_t *pii, const char *t, size_t n,
                   gd_spans_t *sp, guard_result_t *r)
{
    gd_spans_sort(sp);
    size_t out_len = n;
    for (size_t i = 0; i < sp->len; i++)
        out_len += strlen(span_rule(g, pii, sp->items[i].kind)->label) + 2;
    char *out = core_xmalloc(out_len + 1);
    size_t w = 0, from = 0;
    for (size_t i = 0; i < sp->len; i++) {
        gd_span_t *s = &sp->items[i];
        const gd_rule_t *rule = span_rule(g, pii, s->kind);
        decide(r, rule, s->start, s->end, 1.0);
        if (rule->action == GUARD_ALLOW)
            continue;
        memcpy(out + w, t + from, s->start - from);
        w += s->start - from;
        size_t ll = strlen(rule->label);
        s->repl_len = ll + 2;
        out[w++] = '[';
        memcpy(out + w, rule->label, ll);
        w += ll;
        out[w++] = ']';
        from = s->end;
        if (r->n_sensitive < GUARD_MAX_SENSITIVE)
            r->sensitive[r->n_sensitive++] =
                (guard_sensitive_t){rule->label, core_xstrndup(t + s->start, s->end - s->start)};
    }
    memcpy(out + w, t + from, n - from);
    w += n - from;
    out[w] = '\0';
    r->text = out;
    r->text_len = w;
}

/* Maps an offset in the redacted text back to the checked text (inside a
 * [LABEL], to the start or end of what it replaced). */
static size_t unredact(const gd_spans_t *sp, size_t x, int is_end)
{
    int64_t shift = 0; /* original minus redacted length so far */
    for (size_t i = 0; i < sp->len; i++) {
        const gd_span_t *s = &sp->items[i];
        if (s->repl_len == 0)
            continue;
        int64_t red_start = (int64_t)s->start - shift;
        if ((int64_t)x < red_start || ((int64_t)x == red_start && is_end))
            break;
        if ((int64_t)x < red_start + (int64_t)s->repl_len)
            return is_end ? s->end : s->start;
        shift += (int64_t)(s->end - s->start) - (int64_t)s->repl_len;
    }
    return (size_t)((int64_t)x + shift);
}

/* Decisions from `first` on were taken on the redacted text: report their
 * ranges in the checked text, as the contract says. */
static void unredact_decisions(const gd_spans_t *sp, guard_result_t *r, size_t first)
{
    for (size_t i = first; i < r->n_decisions; i++) {
        guard_decision_t *d = &r->decisions[i];
        if (d->start == 0 && d->end == 0)
            continue; /* the whole text */
        d->start = unredact(sp, d->start, 0);
        d->end = unredact(sp, d->end, 1);
    }
}

/* ---- rate limits ----------------------------------------------------------- */

static int bucket_take(guard_bucket_t *b, double rate, double burst, int64_t now)
{
    if (!b->primed) {
        b->tokens = burst;
        b->last_us = now;
        b->primed = 1;
    } else if (now > b->last_us) {
        /* a clock that goes back refills nothing */
        b->tokens += (double)(now - b->last_us) / 1e6 * rate;
        if (b->tokens > burst)
            b->tokens = burst;
        b->last_us = now;
    }
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return 1;
    }
    b->refused++;
    return 0;
}

/* Returns 1 if the turn is over a limit (and records the decision). */
static int limits(const guard_rules_t *g, const guard_ctx_t *ctx, size_t len, guard_result_t *r)
{
    int over = 0;
    if (g->rate_conv.enabled && ctx->conversation_bucket != NULL &&
        !bucket_take(ctx->conversation_bucket, g->conv_rate, g->conv_burst, ctx->now_us)) {
        decide(r, &g->rate_conv, 0, 0, 1.0);
        over = 1;
    }
    if (g->rate_sender.enabled && ctx->sender_bucket != NULL &&
        !bucket_take(ctx->sender_bucket, g->sender_rate, g->sender_burst, ctx->now_us)) {
        decide(r, &g->rate_sender, 0, 0, 1.0);
        over = 1;
    }
    if (g->length.enabled && len > g->max_bytes) {
        decide(r, &g->length, g->max_bytes, len, 1.0);
        over = 1;
    }
    return over;
}

/* ---- injection scoring ------------------------------------------------------ */

/* Folded text is valid UTF-8 by construction, and raw text is made so by
 * text_rails(), so the per-call UTF-8 check (most of a short match's cost)
 * is skipped. */
static int re_hit(const pcre2_code *re, const char *s, size_t n, pcre2_match_data *md)
{
    return pcre2_match(re, (PCRE2_SPTR)re_subject(s, n), n, 0, PCRE2_NO_UTF_CHECK, md, NULL) >= 0;
}

static int triggered(const gd_signal_t *s, const gd_norm_t *nm, const char *raw, size_t raw_len)
{
    if (s->re == NULL)
        return 0;
    if (s->triggers.len > 0 && gd_terms_find_tok(&s->triggers, nm, 0) == (size_t)-1)
        return 0;
    if (s->trigger_chars != NULL) {
        for (size_t i = 0; i < raw_len; i++)
            if (strchr(s->trigger_chars, raw[i]) != NULL && raw[i] != '\0')
                return 1;
        return 0;
    }
    return 1;
}

static double signals_keep(const guard_rules_t *g, const gd_norm_t *nm, const char *raw,
                           size_t raw_len, pcre2_match_data *md)
{
    double keep = 1.0; /* product of (1 - weight) over the signals that hit */
    for (size_t i = 0; i < g->n_signals; i++) {
        const gd_signal_t *s = &g->signals[i];
        if (s->raw && raw == NULL)
            continue;
        if (!triggered(s, nm, raw, raw_len))
            continue;
        int hit =
            s->raw ? re_hit(s->re, raw, raw_len, md) : re_hit(s->re, nm->flat, nm->flat_len, md);
        if (hit)
            keep *= 1.0 - s->weight;
    }
    return keep;
}

static double injection_score(const guard_rules_t *g, const gd_norm_t *nm, const char *t, size_t n)
{
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    double keep = signals_keep(g, nm, t, n, md);
    char *decoded = NULL;
    size_t dlen = 0;
    if (gd_find_encoded(t, n, g->encoded_min, &decoded, &dlen)) {
        /* an encoded payload is suspicious in itself, and is read as text too */
        keep *= 1.0 - g->encoded_weight;
        gd_norm_t dn;
        gd_norm_build(&dn, decoded, dlen);
        keep *= signals_keep(g, &dn, NULL, 0, md);
        gd_norm_dispose(&dn);
        free(decoded);
    }
    pcre2_match_data_free(md);
    return 1.0 - keep;
}

/* The rails that read words, on the redacted text r->text. Its fold stays
 * in r (priv_fold) for the escalation policy, which reads the same text. */
static void text_rails(const guard_rules_t *g, const guard_ctx_t *ctx, guard_result_t *r)
{
    int want_inj = g->injection.enabled && ctx->to_llm;
    if (!g->abuse.enabled && g->n_topics == 0 && !want_inj)
        return;
    gd_norm_t *nm = core_xmalloc(sizeof(*nm));
    gd_norm_build(nm, r->text, r->text_len);
    r->priv_fold = nm;
    size_t s, e;
    for (size_t i = 0; i < g->n_topics; i++)
        if (g->topics[i].rule.enabled && gd_terms_find(&g->topics[i].terms, nm, &s, &e))
            decide(r, &g->topics[i].rule, s, e, 1.0);
    if (g->abuse.enabled && gd_terms_find(&g->abuse_terms, nm, &s, &e))
        decide(r, &g->abuse, s, e, 1.0);
    if (want_inj) {
        double score = injection_score(g, nm, r->text, r->text_len);
        if (score >= g->injection_threshold)
            decide(r, &g->injection, 0, 0, score);
    }
}

int guard_check_input(const guard_rules_t *rules, const guard_ctx_t *ctx, const char *text,
                      size_t len, guard_result_t *out)
{
    result_init(out, "input");
    if (rules == NULL || ctx == NULL || (text == NULL && len > 0))
        return CORE_ERR_INVALID;
    const guard_rules_t *g = for_flow(rules, ctx);
    if (text == NULL)
        text = "";
    int over = limits(g, ctx, len, out);
    char *clean = gd_utf8_sanitize(text, len);
    if (clean != NULL)
        text = clean;
    gd_spans_t sp = {0};
    scan_pii(g->pii_in, text, len, &sp);
    scan_custom(g, text, len, &sp);
    redact(g, g->pii_in, text, len, &sp, out);
    free(clean);
    /* a refused turn is not read further: flooding must stay cheap */
    size_t first = out->n_decisions;
    if (!over)
        text_rails(g, ctx, out);
    unredact_decisions(&sp, out, first);
    gd_spans_dispose(&sp);
    return 0;
}

/* ---- output ------------------------------------------------------------------ */

static size_t utf8_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

static size_t channel_limit(const guard_rules_t *g, const char *channel)
{
    if (channel != NULL)
        for (size_t i = 0; i < g->n_limits; i++)
            if (strcmp(g->limits[i].channel, channel) == 0)
                return g->limits[i].max_chars;
    return g->default_max_chars;
}

/* Cuts r->text to at most max characters, at a word boundary, with "...". */
static void truncate_text(guard_result_t *r, size_t max)
{
    size_t keep = max > 3 ? max - 3 : 0, chars = 0, i = 0, space = 0;
    for (; i < r->text_len; i++) {
        if (((unsigned char)r->text[i] & 0xC0) != 0x80 && chars++ == keep)
            break; /* i is the first byte of character keep+1 */
        if (r->text[i] == ' ')
            space = i;
    }
    size_t cut = space > keep / 2 ? space : i;
    memcpy(r->text + cut, "...", 4);
    r->text_len = cut + 3;
}

static void llm_rails(const guard_rules_t *g, const guard_ctx_t *ctx, guard_result_t *r)
{
    size_t s, e;
    if (g->banned.enabled || g->promises.enabled) {
        gd_norm_t nm;
        gd_norm_build(&nm, r->text, r->text_len);
        if (g->banned.enabled && gd_terms_find(&g->banned_terms, &nm, &s, &e))
            decide(r, &g->banned, s, e, 1.0);
        if (g->promises.enabled && gd_terms_find(&g->promise_terms, &nm, &s, &e))
            decide(r, &g->promises, s, e, 1.0);
        gd_norm_dispose(&nm);
    }
    size_t max = channel_limit(g, ctx->channel);
    if (g->out_length.enabled && utf8_chars(r->text, r->text_len) > max) {
        decide(r, &g->out_length, 0, r->text_len, 1.0);
        if (g->out_length_truncate)
            truncate_text(r, max);
    }
    if (r->action >= GUARD_BLOCK)
        r->use_fallback = 1;
}

int guard_check_output(const guard_rules_t *rules, const guard_ctx_t *ctx, const char *text,
                       size_t len, guard_result_t *out)
{
    result_init(out, "output");
    if (rules == NULL || ctx == NULL || (text == NULL && len > 0))
        return CORE_ERR_INVALID;
    const guard_rules_t *g = for_flow(rules, ctx);
    if (text == NULL)
        text = "";
    char *clean = gd_utf8_sanitize(text, len);
    if (clean != NULL)
        text = clean;
    gd_spans_t sp = {0};
    if (!ctx->allow_pii)
        scan_pii(g->pii_out, text, len, &sp);
    redact(g, g->pii_out, text, len, &sp, out);
    free(clean);
    size_t first = out->n_decisions;
    if (ctx->from_llm)
        llm_rails(g, ctx, out);
    unredact_decisions(&sp, out, first);
    gd_spans_dispose(&sp);
    return 0;
}

size_t guard_result_events(const guard_result_t *r, const guard_ctx_t *ctx, guard_event_t *out,
                           size_t max)
{
    for (size_t i = 0; i < r->n_decisions && i < max; i++) {
        const guard_decision_t *d = &r->decisions[i];
        out[i] = (guard_event_t){
            .ts_us = ctx ? ctx->now_us : 0,
            .stage = r->stage ? r->stage : "input",
            .rule = d->rule,
            .action = d->action,
            .reason = d->reason,
            .conversation = ctx ? ctx->conversation : NULL,
            .channel = ctx ? ctx->channel : NULL,
            .flow = ctx ? ctx->flow : NULL,
            .flow_version = ctx ? ctx->flow_version : NULL,
            .score = d->score,
            .start = d->start,
            .end = d->end,
        };
    }
    return r->n_decisions;
}

char *guard_result_json(const guard_result_t *r)
{
    json_t *arr = json_array();
    for (size_t i = 0; r != NULL && i < r->n_decisions; i++) {
        const guard_decision_t *d = &r->decisions[i];
        json_t *o =
            json_pack("{s:s, s:s, s:s, s:I, s:I, s:f, s:o}", "stage", r->stage ? r->stage : "input",
                      "rule", d->rule, "action", guard_action_name(d->action), "start",
                      (json_int_t)d->start, "end", (json_int_t)d->end, "score", d->score, "reason",
                      d->reason ? json_string(d->reason) : json_null());
        if (o != NULL)
            json_array_append_new(arr, o);
    }
    char *out = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (out == NULL) /* only on allocation failure */
        abort();
    return out;
}
