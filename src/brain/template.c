/* Templates: `{{ name | filter:arg | filter }}` in messages, URLs, bodies and
 * prompts. Parsed once when a flowset compiles, rendered per turn with the
 * channel's escaping (HTML on web, XML for voice SSML, percent-encoding in
 * URLs). Language reference: docs/flow-language.md#templates. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brain/brain_int.h"

static const struct {
    const char *name;
    tpl_filter_kind_t kind;
} filter_names[] = {
    {"upper", TPL_F_UPPER},   {"lower", TPL_F_LOWER}, {"date", TPL_F_DATE},
    {"number", TPL_F_NUMBER}, {"money", TPL_F_MONEY}, {"default", TPL_F_DEFAULT},
    {"url", TPL_F_URL},       {"json", TPL_F_JSON},   {"raw", TPL_F_RAW},
};

static char *trim_dup(const char *s, size_t len)
{
    while (len > 0 && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    if (len >= 2 && (s[0] == '"' || s[0] == '\'') && s[len - 1] == s[0]) {
        s++;
        len -= 2;
    }
    return core_xstrndup(s, len);
}

static void push_part(brain_tpl_t *t, const tpl_part_t *p)
{
    t->parts = core_xrealloc(t->parts, (t->n + 1) * sizeof(*t->parts));
    t->parts[t->n++] = *p;
}

static int classify_ref(tpl_part_t *p, char *msg, size_t msg_size)
{
    const char *n = p->text;
    p->index = -1;
    if (strcmp(n, "conversation.channel") == 0)
        p->ref = TPL_REF_CHANNEL;
    else if (strcmp(n, "conversation.turns") == 0)
        p->ref = TPL_REF_TURNS;
    else if (strcmp(n, "intent") == 0 || strcmp(n, "intent.name") == 0)
        p->ref = TPL_REF_INTENT;
    else if (strcmp(n, "user.text") == 0)
        p->ref = TPL_REF_USER_TEXT;
    else if (strcmp(n, "flow.name") == 0)
        p->ref = TPL_REF_FLOW;
    else if (strncmp(n, "vars.", 5) == 0 && n[5] != '\0') {
        p->ref = TPL_REF_VAR;
        memmove(p->text, n + 5, strlen(n + 5) + 1);
    } else if (strncmp(n, "slots.", 6) == 0 && n[6] != '\0') {
        p->ref = TPL_REF_SLOT;
        memmove(p->text, n + 6, strlen(n + 6) + 1);
    } else {
        for (const char *c = n; *c; c++)
            if (!isalnum((unsigned char)*c) && *c != '_') {
                snprintf(msg, msg_size, "unknown reference \"{{%.60s}}\"", n);
                return CORE_ERR_INVALID;
            }
        p->ref = TPL_REF_SLOT;
    }
    p->len = strlen(p->text);
    return 0;
}

static int parse_filter(tpl_part_t *p, const char *s, size_t len, char *msg, size_t msg_size)
{
    char *f = trim_dup(s, len);
    char *colon = strchr(f, ':');
    char *arg = NULL;
    if (colon != NULL) {
        *colon = '\0';
        arg = trim_dup(colon + 1, strlen(colon + 1));
        char *name = trim_dup(f, strlen(f));
        free(f);
        f = name;
    }
    for (size_t i = 0; i < sizeof(filter_names) / sizeof(filter_names[0]); i++) {
        if (strcmp(f, filter_names[i].name) == 0) {
            p->filters = core_xrealloc(p->filters, (p->n_filters + 1) * sizeof(*p->filters));
            p->filters[p->n_filters++] = (tpl_filter_t){filter_names[i].kind, arg};
            free(f);
            return 0;
        }
    }
    snprintf(msg, msg_size,
             "unknown filter \"%.40s\" (known: upper, lower, date, number, money, default, url, "
             "json, raw)",
             f);
    free(f);
    free(arg);
    return CORE_ERR_INVALID;
}

static int parse_ref(brain_tpl_t *t, const char *s, size_t len, char *msg, size_t msg_size)
{
    tpl_part_t p = {.is_ref = 1};
    const char *bar = memchr(s, '|', len);
    size_t name_len = bar ? (size_t)(bar - s) : len;
    p.text = trim_dup(s, name_len);
    if (p.text[0] == '\0') {
        free(p.text);
        snprintf(msg, msg_size, "empty reference \"{{}}\"");
        return CORE_ERR_INVALID;
    }
    int rc = classify_ref(&p, msg, msg_size);
    while (rc == 0 && bar != NULL) {
        const char *fs = bar + 1;
        size_t rest = len - (size_t)(fs - s);
        bar = memchr(fs, '|', rest);
        rc = parse_filter(&p, fs, bar ? (size_t)(bar - fs) : rest, msg, msg_size);
    }
    if (rc != 0) {
        for (size_t j = 0; j < p.n_filters; j++)
            free(p.filters[j].arg);
        free(p.filters);
        free(p.text);
        return rc;
    }
    push_part(t, &p);
    return 0;
}

int brain__tpl_parse(const char *s, brain_tpl_t *t, char *msg, size_t msg_size)
{
    memset(t, 0, sizeof(*t));
    size_t n = strlen(s), i = 0;
    while (i < n) {
        const char *open = strstr(s + i, "{{");
        size_t lit_end = open ? (size_t)(open - s) : n;
        if (lit_end > i) {
            tpl_part_t p = {.text = core_xstrndup(s + i, lit_end - i), .len = lit_end - i};
            push_part(t, &p);
        }
        if (open == NULL)
            break;
        const char *close = strstr(open + 2, "}}");
        if (close == NULL) {
            snprintf(msg, msg_size, "\"{{\" at offset %zu is never closed with \"}}\"",
                     (size_t)(open - s));
            brain__tpl_dispose(t);
            return CORE_ERR_INVALID;
        }
        if (parse_ref(t, open + 2, (size_t)(close - open - 2), msg, msg_size) != 0) {
            brain__tpl_dispose(t);
            return CORE_ERR_INVALID;
        }
        i = (size_t)(close - s) + 2;
    }
    if (t->n == 0) {
        tpl_part_t p = {.text = core_xstrdup(""), .len = 0};
        push_part(t, &p);
    }
    t->constant = (t->n == 1 && !t->parts[0].is_ref);
    return 0;
}

void brain__tpl_dispose(brain_tpl_t *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++) {
        for (size_t j = 0; j < t->parts[i].n_filters; j++)
            free(t->parts[i].filters[j].arg);
        free(t->parts[i].filters);
        free(t->parts[i].text);
    }
    free(t->parts);
    memset(t, 0, sizeof(*t));
}

/* ---- formatting --------------------------------------------------------------- */

static const char *month_long[] = {"January",   "February", "March",    "April",
                                   "May",       "June",     "July",     "August",
                                   "September", "October",  "November", "December"};
static const char *weekday_long[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                     "Friday", "Saturday", "Sunday"};

int brain__format_date(const char *iso, const char *style, char *out, size_t out_size)
{
    int y, m, d;
    char tail;
    if (sscanf(iso, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || m < 1 || m > 12 || d < 1 || d > 31)
        return -1;
    long days = core_days_from_civil(y, m, d);
    int wd = (int)(((days % 7) + 7 + 3) % 7); /* 1970-01-01 was a Thursday */
    if (style == NULL || strcmp(style, "long") == 0)
        snprintf(out, out_size, "%s %d %s %d", weekday_long[wd], d, month_long[m - 1], y);
    else if (strcmp(style, "short") == 0)
        snprintf(out, out_size, "%d %.3s", d, month_long[m - 1]);
    else if (strcmp(style, "weekday") == 0)
        snprintf(out, out_size, "%s", weekday_long[wd]);
    else if (strcmp(style, "us") == 0)
        snprintf(out, out_size, "%s %d, %d", month_long[m - 1], d, y);
    else
        snprintf(out, out_size, "%04d-%02d-%02d", y, m, d);
    return 0;
}

static void format_number(const char *in, int decimals, int grouping, char *out, size_t out_size)
{
    char *end;
    double v = strtod(in, &end);
    if (end == in) {
        snprintf(out, out_size, "%s", in);
        return;
    }
    if (decimals < 0)
        decimals = (v == (double)(long long)v) ? 0 : 2;
    char raw[64];
    snprintf(raw, sizeof(raw), "%.*f", decimals, v < 0 ? -v : v);
    char *dot = strchr(raw, '.');
    size_t ilen = dot ? (size_t)(dot - raw) : strlen(raw);
    size_t o = 0;
    if (v < 0 && o + 1 < out_size)
        out[o++] = '-';
    for (size_t i = 0; i < ilen && o + 2 < out_size; i++) {
        out[o++] = raw[i];
        if (grouping && (ilen - i - 1) % 3 == 0 && i + 1 < ilen)
            out[o++] = ',';
    }
    for (const char *p = dot; p && *p && o + 1 < out_size; p++)
        out[o++] = *p;
    out[o] = '\0';
}

static void escape_into(core_buf_t *out, const char *s, size_t len, tpl_escape_t esc)
{
    /* "." or ".." as a path segment would move the request up the path
     * (clients and servers remove dot segments): such a value keeps its
     * dots encoded */
    int dot_segment = (len == 1 || len == 2) && s[0] == '.' && s[len - 1] == '.';
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *rep = NULL;
        char tmp[8];
        if (esc == TPL_ESC_HTML || esc == TPL_ESC_XML) {
            if (c == '&')
                rep = "&amp;";
            else if (c == '<')
                rep = "&lt;";
            else if (c == '>')
                rep = "&gt;";
            else if (c == '"' && esc == TPL_ESC_HTML)
                rep = "&quot;";
            else if (c == '\'' && esc == TPL_ESC_HTML)
                rep = "&#39;";
        } else if (esc == TPL_ESC_URL) {
            if (!isalnum(c) && c != '-' && c != '_' && (c != '.' || dot_segment) && c != '~') {
                snprintf(tmp, sizeof(tmp), "%%%02X", c);
                rep = tmp;
            }
        } else if (esc == TPL_ESC_JSON) {
            if (c == '"' || c == '\\') {
                snprintf(tmp, sizeof(tmp), "\\%c", c);
                rep = tmp;
            } else if (c < 0x20) {
                snprintf(tmp, sizeof(tmp), "\\u%04x", c);
                rep = tmp;
            }
        }
        if (rep != NULL) {
            core_buf_append(out, s + start, i - start);
            core_buf_append_str(out, rep);
            start = i + 1;
        }
    }
    core_buf_append(out, s + start, len - start);
}

/* The value p refers to, *len its length (NULL when unset). tmp holds
 * numbers formatted here; the user's text is returned in place, whole. */
static const char *ref_value(const brain_flowset_t *fs, const brain_conv_t *conv,
                             const brain_turnctx_t *tc, const tpl_part_t *p, char *tmp,
                             size_t tmp_size, size_t *len)
{
    const char *v = NULL;
    switch (p->ref) {
    case TPL_REF_SLOT:
        v = conv == NULL ? NULL
            : fs != NULL && p->index >= 0 && (size_t)p->index < fs->n_slots
                ? brain__slot_value(fs, conv, p->index)
                : brain_conv_slot(conv, p->text);
        break;
    case TPL_REF_CHANNEL:
        v = brain_channel_name(conv ? (brain_channel_t)conv->channel : BRAIN_CH_DEFAULT);
        break;
    case TPL_REF_TURNS:
        snprintf(tmp, tmp_size, "%u", conv ? conv->turns : 0);
        v = tmp;
        break;
    case TPL_REF_VAR: {
        int i = p->index >= 0 ? p->index : brain__var_find(fs, p->text);
        v = i >= 0 ? fs->vars[i].value : NULL;
        break;
    }
    case TPL_REF_INTENT:
        v = tc ? tc->intent : NULL;
        break;
    case TPL_REF_USER_TEXT:
        if (tc == NULL || tc->text == NULL)
            return NULL;
        *len = tc->len;
        return tc->text;
    case TPL_REF_FLOW:
        v = (conv && conv->flow != BRAIN_NONE) ? fs->flows[conv->flow].name : NULL;
        break;
    }
    *len = v ? strlen(v) : 0;
    return v;
}

static void apply_filter(const tpl_filter_t *f, char *val, size_t val_size, tpl_escape_t *esc)
{
    char tmp[512];
    switch (f->kind) {
    case TPL_F_UPPER:
    case TPL_F_LOWER:
        for (char *c = val; *c; c++)
            *c = (char)(f->kind == TPL_F_UPPER ? toupper((unsigned char)*c)
                                               : tolower((unsigned char)*c));
        break;
    case TPL_F_DATE:
        if (brain__format_date(val, f->arg, tmp, sizeof(tmp)) == 0)
            snprintf(val, val_size, "%s", tmp);
        break;
    case TPL_F_NUMBER: {
        int dec = -1;
        if (f->arg != NULL)
            dec = (int)strtol(f->arg, NULL, 10);
        format_number(val, dec < 0 ? -1 : (dec > 9 ? 9 : dec), 1, tmp, sizeof(tmp));
        snprintf(val, val_size, "%s", tmp);
        break;
    }
    case TPL_F_MONEY:
        format_number(val, 2, 1, tmp, sizeof(tmp));
        snprintf(val, val_size, "%s", tmp);
        break;
    case TPL_F_DEFAULT:
        if (val[0] == '\0')
            snprintf(val, val_size, "%s", f->arg ? f->arg : "");
        break;
    case TPL_F_URL:
        *esc = TPL_ESC_URL;
        break;
    case TPL_F_JSON:
        *esc = TPL_ESC_JSON;
        break;
    case TPL_F_RAW:
        *esc = TPL_ESC_NONE;
        break;
    }
}

void brain__tpl_render(const brain_flowset_t *fs, const brain_conv_t *conv,
                       const brain_turnctx_t *tc, const brain_tpl_t *t, tpl_escape_t esc,
                       core_buf_t *out)
{
    for (size_t i = 0; i < t->n; i++) {
        const tpl_part_t *p = &t->parts[i];
        if (!p->is_ref) {
            core_buf_append(out, p->text, p->len);
            continue;
        }
        char tmp[32], val[1024];
        size_t vlen = 0;
        const char *v = ref_value(fs, conv, tc, p, tmp, sizeof(tmp), &vlen);
        if (p->n_filters == 0) { /* the common case: no copy */
            if (v != NULL)
                escape_into(out, v, vlen,
                            (p->ref == TPL_REF_VAR && esc == TPL_ESC_URL) ? TPL_ESC_NONE : esc);
            continue;
        }
        /* a filter works on a copy: cut, if it must be, between characters */
        vlen = core_utf8_cut(v ? v : "", vlen, sizeof(val) - 1);
        memcpy(val, v ? v : "", vlen);
        val[vlen] = '\0';
        /* variables are operator-written (base URLs): never percent-encoded */
        tpl_escape_t e = (p->ref == TPL_REF_VAR && esc == TPL_ESC_URL) ? TPL_ESC_NONE : esc;
        for (size_t j = 0; j < p->n_filters; j++)
            apply_filter(&p->filters[j], val, sizeof(val), &e);
        escape_into(out, val, strlen(val), e);
    }
}

int brain_template_render_string(const brain_flowset_t *fs, const brain_conv_t *conv,
                                 const char *tmpl, brain_channel_t channel, core_buf_t *out,
                                 core_err_t *err)
{
    brain_tpl_t t;
    char msg[256];
    if (brain__tpl_parse(tmpl, &t, msg, sizeof(msg)) != 0)
        return core_err_set(err, CORE_ERR_INVALID, "%s", msg);
    (void)channel; /* plain text everywhere: adapters escape (interp_out.c) */
    brain__tpl_render(fs, conv, NULL, &t, TPL_ESC_NONE, out);
    brain__tpl_dispose(&t);
    return 0;
}
