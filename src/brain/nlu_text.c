/* nlu_text.c — the intent router's view of an utterance: Unicode folding and
 * tokenisation (utf8proc), hashed word and character n-gram features, and
 * the table that maps feature hashes to the model's dense indices. */
#include <math.h>
#include <string.h>

#include <utf8proc.h>

#include "brain/nlu_int.h"

/* ---- normalisation ------------------------------------------------------ */

enum { CP_SEP, CP_WORD, CP_APOS, CP_NUMSEP, CP_SYMBOL };

static int cp_class(utf8proc_int32_t c)
{
    if (c < 0x80 && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
        return CP_WORD; /* the common case, without a table lookup */
    if (c == '\'' || c == 0x2019 || c == 0x2018 || c == 0x02BC || c == '`')
        return CP_APOS;
    if (c == '.' || c == ',')
        return CP_NUMSEP;
    if (c == '%' || c == '#')
        return CP_SYMBOL;
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
        return CP_WORD;
    case UTF8PROC_CATEGORY_SC:
        return CP_SYMBOL;
    default:
        return CP_SEP;
    }
}

typedef struct norm_state_s {
    nlu__text_t *t;
    int in_tok;      /* a token is open */
    int last_digit;  /* the last code point of the open token is a digit */
    int pending;     /* an apostrophe (1) or number separator (2) waits */
    char pending_ch; /* the byte it would add */
} norm_state_t;

static int room(const nlu__text_t *t, size_t n)
{
    return t->len + n + 1 < sizeof(t->buf);
}

static void tok_end(norm_state_t *s)
{
    nlu__text_t *t = s->t;
    if (s->in_tok) {
        t->tok_len[t->n_tok] = t->len - t->tok_off[t->n_tok];
        t->n_tok++;
    }
    s->in_tok = 0;
    s->pending = 0;
    s->last_digit = 0;
}

static void emit_cp(norm_state_t *s, utf8proc_int32_t c, int own_token)
{
    nlu__text_t *t = s->t;
    uint8_t enc[4];
    utf8proc_ssize_t n = utf8proc_encode_char(c, enc);
    if (own_token)
        tok_end(s);
    if (!s->in_tok) {
        if (t->n_tok >= NLU__TOKENS_MAX || !room(t, (size_t)n + 1))
            return;
        if (t->n_tok > 0)
            t->buf[t->len++] = ' ';
        t->tok_off[t->n_tok] = t->len;
        s->in_tok = 1;
    } else if (s->pending) {
        if (!room(t, (size_t)n + 1))
            return;
        t->buf[t->len++] = s->pending_ch;
        s->pending = 0;
    }
    if (!room(t, (size_t)n))
        return;
    memcpy(t->buf + t->len, enc, (size_t)n);
    t->len += (size_t)n;
    s->last_digit =
        c < 0x80 ? (c >= '0' && c <= '9') : utf8proc_category(c) == UTF8PROC_CATEGORY_ND;
    if (own_token)
        tok_end(s);
}

static void feed_cp(norm_state_t *s, utf8proc_int32_t c)
{
    int cls = cp_class(c);
    if (cls == CP_WORD) {
        /* a digit after "3." continues the number; a letter after "3." does not */
        int digit =
            c < 0x80 ? (c >= '0' && c <= '9') : utf8proc_category(c) == UTF8PROC_CATEGORY_ND;
        if (s->pending == 2 && !digit)
            tok_end(s);
        emit_cp(s, c, 0);
    } else if (cls == CP_APOS && s->in_tok && !s->pending) {
        s->pending = 1;
        s->pending_ch = '\'';
    } else if (cls == CP_NUMSEP && s->in_tok && s->last_digit && !s->pending) {
        s->pending = 2;
        s->pending_ch = (char)c;
    } else if (cls == CP_SYMBOL) {
        emit_cp(s, c, 1);
    } else {
        tok_end(s);
    }
}

void nlu__normalize(const char *text, size_t len, nlu__text_t *out)
{
    const utf8proc_option_t opts =
        UTF8PROC_CASEFOLD | UTF8PROC_COMPAT | UTF8PROC_DECOMPOSE | UTF8PROC_STRIPMARK;
    norm_state_t s = {.t = out};
    out->len = 0;
    out->n_tok = 0;
    if (len > NLU__TEXT_MAX)
        len = NLU__TEXT_MAX;
    const uint8_t *p = (const uint8_t *)text;
    size_t i = 0;
    while (i < len) {
        utf8proc_int32_t c;
        utf8proc_ssize_t n = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &c);
        if (n <= 0) { /* an invalid byte separates tokens and is dropped */
            tok_end(&s);
            i++;
            continue;
        }
        i += (size_t)n;
        if (c < 0x80) { /* ASCII folds to itself or its lower case */
            feed_cp(&s, c >= 'A' && c <= 'Z' ? c + 32 : c);
            continue;
        }
        utf8proc_int32_t dec[24];
        int last_bound = 0;
        utf8proc_ssize_t nd = utf8proc_decompose_char(c, dec, 24, opts, &last_bound);
        if (nd < 0 || nd > 24) {
            tok_end(&s);
            continue;
        }
        for (utf8proc_ssize_t k = 0; k < nd; k++)
            feed_cp(&s, dec[k]);
    }
    tok_end(&s);
    out->buf[out->len] = '\0';
}

/* ---- features ----------------------------------------------------------- */

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= FNV_PRIME;
    }
    return h;
}

static uint64_t fmix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h ? h : 1;
}

/* Collects distinct features, summing counts, through a small open-addressed
 * index (2 * NLU__FEATS_MAX slots of item index + 1). */
typedef struct fcollect_s {
    nlu__feats_t *out;
    uint16_t slot[NLU__FEATS_MAX * 2];
} fcollect_t;

static void add_feat(fcollect_t *fc, uint64_t h, uint32_t view)
{
    h = fmix(h ^ ((uint64_t)view << 56));
    size_t mask = NLU__FEATS_MAX * 2 - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint16_t s = fc->slot[i];
        if (s == 0) {
            if (fc->out->len >= NLU__FEATS_MAX)
                return;
            nlu__rawfeat_t *f = &fc->out->items[fc->out->len++];
            f->hash = h;
            f->view = view;
            f->count = 1.0f;
            fc->slot[i] = (uint16_t)fc->out->len;
            return;
        }
        if (fc->out->items[s - 1].hash == h) {
            fc->out->items[s - 1].count += 1.0f;
            return;
        }
    }
}

static int is_number(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || p[i] == '.' || p[i] == ','))
            return 0;
    return n > 0;
}

static void word_feats(fcollect_t *fc, const nlu__text_t *t, const nlu__fcfg_t *cfg)
{
    static const char num[] = "<num>";
    for (size_t i = 0; i < t->n_tok; i++) {
        const char *w = t->buf + t->tok_off[i];
        size_t wl = t->tok_len[i];
        add_feat(fc, fnv(FNV_OFFSET ^ 'w', w, wl), NLU__VIEW_WORD);
        if (is_number(w, wl))
            add_feat(fc, fnv(FNV_OFFSET ^ 'w', num, sizeof(num) - 1), NLU__VIEW_WORD);
        if (i >= 2 && (cfg->flags & NLU__F_SKIPGRAMS)) {
            const char *pp = t->buf + t->tok_off[i - 2];
            uint64_t hs = fnv(fnv(fnv(FNV_OFFSET ^ 's', pp, t->tok_len[i - 2]), " ", 1), w, wl);
            add_feat(fc, hs, NLU__VIEW_WORD);
        }
        if (i >= 2 && (cfg->flags & NLU__F_TRIGRAMS)) {
            const char *pp = t->buf + t->tok_off[i - 2];
            size_t len3 = t->tok_off[i] + wl - t->tok_off[i - 2];
            add_feat(fc, fnv(FNV_OFFSET ^ 't', pp, len3), NLU__VIEW_WORD);
        }
        if (!(cfg->flags & NLU__F_BIGRAMS))
            continue;
        /* bigrams, with the utterance's edges as words of their own */
        const char *prev = i ? t->buf + t->tok_off[i - 1] : "^";
        size_t pl = i ? t->tok_len[i - 1] : 1;
        uint64_t h = fnv(fnv(fnv(FNV_OFFSET ^ 'b', prev, pl), " ", 1), w, wl);
        add_feat(fc, h, NLU__VIEW_WORD);
        if (i + 1 == t->n_tok)
            add_feat(fc, fnv(fnv(FNV_OFFSET ^ 'b', w, wl), " $", 2), NLU__VIEW_WORD);
    }
}

/* Character n-grams of " tok1 tok2 ... ": within words and across their
 * boundaries, counted in code points. */
static void char_feats(fcollect_t *fc, const nlu__text_t *t, const nlu__fcfg_t *cfg)
{
    size_t starts[NLU__TEXT_MAX * 3 + 16];
    size_t n = 0;
    char s[sizeof(t->buf) + 2];
    s[0] = ' ';
    memcpy(s + 1, t->buf, t->len);
    s[t->len + 1] = ' ';
    size_t sl = t->len + 2;
    for (size_t i = 0; i < sl; i++)
        if (((uint8_t)s[i] & 0xC0) != 0x80)
            starts[n++] = i;
    starts[n] = sl;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = FNV_OFFSET ^ 'c';
        for (size_t k = 0; k < cfg->char_max && i + k < n; k++) {
            if (k > 1 && s[starts[i + k - 1]] == ' ' && (cfg->flags & NLU__F_CHAR_IN_WORD))
                break;
            h = fnv(h, s + starts[i + k], starts[i + k + 1] - starts[i + k]);
            if (k + 1 >= cfg->char_min)
                add_feat(fc, h + k, NLU__VIEW_CHAR);
        }
    }
}

void nlu__features(const nlu__text_t *t, const nlu__fcfg_t *cfg, nlu__feats_t *out)
{
    fcollect_t fc;
    out->len = 0;
    fc.out = out;
    memset(fc.slot, 0, sizeof(fc.slot));
    word_feats(&fc, t, cfg);
    if (cfg->char_max > 0 && t->len > 0)
        char_feats(&fc, t, cfg);
}

/* ---- feature table ------------------------------------------------------ */

void nlu__ftab_init(nlu__ftab_t *t, size_t expect)
{
    size_t cap = 16;
    while (cap < expect * 2)
        cap *= 2;
    t->cap = cap;
    t->len = 0;
    t->slot = core_xcalloc(cap, sizeof(*t->slot));
}

void nlu__ftab_dispose(nlu__ftab_t *t)
{
    free(t->slot);
    t->slot = NULL;
    t->cap = t->len = 0;
}

static void ftab_grow(nlu__ftab_t *t)
{
    nlu__ftab_t n;
    nlu__ftab_init(&n, t->cap);
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slot[i].key == 0)
            continue;
        size_t j = (size_t)t->slot[i].key & (n.cap - 1);
        while (n.slot[j].key != 0)
            j = (j + 1) & (n.cap - 1);
        n.slot[j].key = t->slot[i].key;
        n.slot[j].val = t->slot[i].val;
    }
    n.len = t->len;
    nlu__ftab_dispose(t);
    *t = n;
}

uint32_t nlu__ftab_put(nlu__ftab_t *t, uint64_t key)
{
    if ((t->len + 1) * 2 > t->cap)
        ftab_grow(t);
    size_t mask = t->cap - 1;
    for (size_t i = (size_t)key & mask;; i = (i + 1) & mask) {
        if (t->slot[i].key == key)
            return t->slot[i].val;
        if (t->slot[i].key == 0) {
            t->slot[i].key = key;
            t->slot[i].val = (uint32_t)t->len++;
            return t->slot[i].val;
        }
    }
}

uint32_t nlu__ftab_get(const nlu__ftab_t *t, uint64_t key)
{
    size_t mask = t->cap - 1;
    for (size_t i = (size_t)key & mask;; i = (i + 1) & mask) {
        if (t->slot[i].key == key)
            return t->slot[i].val;
        if (t->slot[i].key == 0)
            return UINT32_MAX;
    }
}

/* ---- vectors ------------------------------------------------------------ */

void nlu__vectorize(const nlu_model_t *m, const char *text, size_t len, nlu__vec_t *out)
{
    static _Thread_local nlu__text_t t;
    static _Thread_local nlu__feats_t f;
    double norm[NLU__VIEWS] = {0};
    nlu__normalize(text, len, &t);
    nlu__features(&t, &m->fcfg, &f);
    out->len = 0;
    for (size_t i = 0; i < f.len; i++) {
        uint32_t idx = nlu__ftab_get(&m->ftab, f.items[i].hash);
        if (idx == UINT32_MAX) {
            /* An unseen feature still counts in its view's norm: the part
             * of an utterance the model knows then weighs what it is
             * worth, so a lone unknown word that shares one character
             * pair with an intent is not routed there with confidence. */
            float u = (1.0f + logf(f.items[i].count)) * m->idf_unseen;
            norm[f.items[i].view] += (double)u * u;
            continue;
        }
        float v = (1.0f + logf(f.items[i].count)) * m->idf[idx];
        out->idx[out->len] = idx;
        out->val[out->len] = v;
        out->len++;
        norm[m->fview[idx]] += (double)v * v;
    }
    float scale[NLU__VIEWS];
    for (int v = 0; v < NLU__VIEWS; v++)
        scale[v] = norm[v] > 0 ? m->fcfg.view_scale[v] / (float)sqrt(norm[v]) : 0.0f;
    for (size_t i = 0; i < out->len; i++)
        out->val[i] *= scale[m->fview[out->idx[i]]];
}
