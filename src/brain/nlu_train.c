/* nlu_train.c — trains the intent model: checks the examples, builds the
 * feature table and tf-idf weights, and fits one linear SVM per class
 * (one-vs-rest, L2-regularised squared hinge loss) by dual coordinate
 * descent with shrinking, in a fixed order drawn from the seed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "brain/nlu_int.h"

#define NLU__CLASSES_MAX 4096

/* Training hyper-parameters; see docs/nlu.md for how each was chosen. */
typedef struct hyper_s {
    double c;          /* SVM cost */
    double oos_weight; /* cost multiplier for out-of-scope examples */
    double eps;        /* dual CD stopping tolerance */
    int max_iter;
    double temp; /* softmax temperature over SVM scores */
    double default_threshold;
} hyper_t;

static const hyper_t hyper_default = {
    .c = 1.0,
    .oos_weight = 1.0,
    .eps = 0.1,
    .max_iter = 100,
    .temp = 8.0,
    .default_threshold = 0.0,
};

static const nlu__fcfg_t fcfg_default = {
    .char_min = 2,
    .char_max = 5,
    .word_bigrams = 1,
    .view_scale = {1.0f, 1.0f},
};

/* Training examples as sparse rows (CSR). */
typedef struct csr_s {
    size_t n;
    size_t *start; /* n + 1 */
    uint32_t *idx;
    float *val;
    float *sqnorm; /* n: squared norm of each row */
} csr_t;

static void csr_dispose(csr_t *x)
{
    free(x->start);
    free(x->idx);
    free(x->val);
    free(x->sqnorm);
}

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64: small, fast and identical on every platform */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- labels ------------------------------------------------------------- */

static int check_examples(const nlu_example_t *ex, size_t n, const char *oos, nlu_model_t **out,
                          uint32_t *label, core_err_t *err)
{
    nlu__ftab_t names;
    char **list = core_xcalloc(NLU__CLASSES_MAX, sizeof(char *));
    uint32_t k = 0;
    int rc = 0, has_oos = 0;
    nlu__ftab_init(&names, 64);
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (ex[i].intent == NULL || ex[i].intent[0] == '\0') {
            rc = core_err_set(err, CORE_ERR_INVALID, "example %zu: missing intent", i + 1);
            break;
        }
        if (ex[i].text == NULL || ex[i].text[0] == '\0') {
            rc = core_err_set(err, CORE_ERR_INVALID, "example %zu (intent \"%s\"): empty text",
                              i + 1, ex[i].intent);
            break;
        }
        uint64_t h = 0xcbf29ce484222325ull;
        for (const char *p = ex[i].intent; *p; p++)
            h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
        h = h ? h : 1;
        uint32_t c = nlu__ftab_put(&names, h);
        if (c == k) {
            if (k == NLU__CLASSES_MAX) {
                rc = core_err_set(err, CORE_ERR_LIMIT, "more than %d intents", NLU__CLASSES_MAX);
                break;
            }
            list[k++] = core_xstrdup(ex[i].intent);
            has_oos |= strcmp(ex[i].intent, oos) == 0;
        } else if (strcmp(list[c], ex[i].intent) != 0) {
            rc = core_err_set(err, CORE_ERR_INTERNAL, "intent name hash collision");
        }
        label[i] = c;
    }
    if (rc == 0 && (k - (uint32_t)has_oos < 1 || k < 2))
        rc = core_err_set(err, CORE_ERR_INVALID,
                          "need at least two intents, or one intent and out-of-scope (\"%s\") "
                          "examples; got %u",
                          oos, k);
    if (rc == 0) {
        nlu_model_t *m = nlu__model_new(k);
        for (uint32_t c = 0; c < k; c++) {
            m->names[c] = list[c];
            list[c] = NULL;
            if (strcmp(m->names[c], oos) == 0)
                m->oos_class = (int32_t)c;
        }
        *out = m;
    }
    for (uint32_t c = 0; c < k; c++)
        free(list[c]);
    free(list);
    nlu__ftab_dispose(&names);
    return rc;
}

/* ---- features ----------------------------------------------------------- */

/* Extracts every example's features, fills the model's feature table, views
 * and idf, and the weighted, normalised rows in x. */
static void build_features(nlu_model_t *m, const nlu_example_t *ex, size_t n, csr_t *x)
{
    nlu__text_t *t = core_xmalloc(sizeof(*t));
    nlu__feats_t *f = core_xmalloc(sizeof(*f));
    size_t cap = n * 64 + 16, used = 0;
    uint32_t *idx = core_xmalloc(cap * sizeof(*idx));
    float *cnt = core_xmalloc(cap * sizeof(*cnt));
    uint32_t *df = NULL;
    size_t df_cap = 0;
    x->n = n;
    x->start = core_xmalloc((n + 1) * sizeof(size_t));
    nlu__ftab_init(&m->ftab, n * 16);
    for (size_t i = 0; i < n; i++) {
        nlu__normalize(ex[i].text, strlen(ex[i].text), t);
        nlu__features(t, &m->fcfg, f);
        x->start[i] = used;
        if (used + f->len > cap) {
            cap = (used + f->len) * 2;
            idx = core_xrealloc(idx, cap * sizeof(*idx));
            cnt = core_xrealloc(cnt, cap * sizeof(*cnt));
        }
        for (size_t j = 0; j < f->len; j++) {
            uint32_t id = nlu__ftab_put(&m->ftab, f->items[j].hash);
            if (id >= df_cap) {
                size_t nc = df_cap ? df_cap * 2 : 4096;
                df = core_xrealloc(df, nc * sizeof(*df));
                m->fview = core_xrealloc(m->fview, nc);
                memset(df + df_cap, 0, (nc - df_cap) * sizeof(*df));
                df_cap = nc;
            }
            df[id]++;
            m->fview[id] = (uint8_t)f->items[j].view;
            idx[used] = id;
            cnt[used] = f->items[j].count;
            used++;
        }
    }
    x->start[n] = used;
    m->n_feat = (uint32_t)m->ftab.len;
    m->idf = core_xmalloc((m->n_feat + 1) * sizeof(float));
    for (uint32_t j = 0; j < m->n_feat; j++)
        m->idf[j] = (float)(log((1.0 + (double)n) / (1.0 + df[j])) + 1.0);
    x->idx = idx;
    x->val = cnt;
    x->sqnorm = core_xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        double norm[NLU__VIEWS] = {0};
        for (size_t p = x->start[i]; p < x->start[i + 1]; p++) {
            float v = (1.0f + logf(cnt[p])) * m->idf[idx[p]];
            cnt[p] = v;
            norm[m->fview[idx[p]]] += (double)v * v;
        }
        double sq = 0;
        for (size_t p = x->start[i]; p < x->start[i + 1]; p++) {
            int view = m->fview[idx[p]];
            cnt[p] *= norm[view] > 0 ? m->fcfg.view_scale[view] / (float)sqrt(norm[view]) : 0;
            sq += (double)cnt[p] * cnt[p];
        }
        x->sqnorm[i] = (float)sq;
    }
    free(df);
    free(t);
    free(f);
}

/* ---- one-vs-rest linear SVM, dual coordinate descent -------------------- */

typedef struct svm_work_s {
    const csr_t *x;
    const uint32_t *label;
    const double *cost; /* per example */
    double *alpha;
    size_t *order;
    float *w; /* n_feat + 1 (bias last) */
    uint32_t n_feat;
    uint64_t rng;
} svm_work_t;

static double row_dot(const svm_work_t *s, size_t i)
{
    double d = s->w[s->n_feat];
    for (size_t p = s->x->start[i]; p < s->x->start[i + 1]; p++)
        d += (double)s->w[s->x->idx[p]] * s->x->val[p];
    return d;
}

static void row_add(svm_work_t *s, size_t i, double a)
{
    for (size_t p = s->x->start[i]; p < s->x->start[i + 1]; p++)
        s->w[s->x->idx[p]] += (float)(a * s->x->val[p]);
    s->w[s->n_feat] += (float)a;
}

static void svm_binary(svm_work_t *s, uint32_t cls, const hyper_t *hp)
{
    size_t n = s->x->n, active = n;
    double pg_max_old = INFINITY;
    memset(s->w, 0, (s->n_feat + 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        s->alpha[i] = 0;
        s->order[i] = i;
    }
    for (int it = 0; it < hp->max_iter; it++) {
        double pg_max = -INFINITY, pg_min = INFINITY;
        for (size_t i = 0; i + 1 < active; i++) {
            size_t j = i + (size_t)(rng_next(&s->rng) % (active - i));
            size_t t = s->order[i];
            s->order[i] = s->order[j];
            s->order[j] = t;
        }
        for (size_t k = 0; k < active; k++) {
            size_t i = s->order[k];
            double y = s->label[i] == cls ? 1.0 : -1.0;
            double diag = 0.5 / s->cost[i];
            double g = y * row_dot(s, i) - 1.0 + s->alpha[i] * diag;
            double pg = g;
            if (s->alpha[i] == 0) {
                if (g > pg_max_old) { /* shrink: this example stays at 0 */
                    active--;
                    s->order[k] = s->order[active];
                    s->order[active] = i;
                    k--;
                    continue;
                }
                if (g > 0)
                    pg = 0;
            }
            pg_max = pg > pg_max ? pg : pg_max;
            pg_min = pg < pg_min ? pg : pg_min;
            if (fabs(pg) > 1e-12) {
                double old = s->alpha[i];
                double qd = s->x->sqnorm[i] + 1.0 + diag;
                s->alpha[i] = fmax(old - g / qd, 0.0);
                row_add(s, i, (s->alpha[i] - old) * y);
            }
        }
        if (pg_max - pg_min <= hp->eps) {
            if (active == n)
                break;
            active = n;
            pg_max_old = INFINITY;
            continue;
        }
        pg_max_old = pg_max <= 0 ? INFINITY : pg_max;
    }
}

static void fit_svm(nlu_model_t *m, const csr_t *x, const uint32_t *label, uint64_t seed,
                    const hyper_t *hp)
{
    svm_work_t s = {.x = x, .label = label, .n_feat = m->n_feat, .rng = seed};
    double *cost = core_xmalloc(x->n * sizeof(double));
    for (size_t i = 0; i < x->n; i++)
        cost[i] = hp->c * ((int32_t)label[i] == m->oos_class ? hp->oos_weight : 1.0);
    s.cost = cost;
    s.alpha = core_xmalloc(x->n * sizeof(double));
    s.order = core_xmalloc(x->n * sizeof(size_t));
    s.w = core_xmalloc((m->n_feat + 1) * sizeof(float));
    m->w = core_xmalloc((size_t)m->n_feat * m->n_class * sizeof(float));
    for (uint32_t c = 0; c < m->n_class; c++) {
        svm_binary(&s, c, hp);
        for (uint32_t j = 0; j < m->n_feat; j++)
            m->w[(size_t)j * m->n_class + c] = s.w[j];
        m->bias[c] = s.w[m->n_feat];
    }
    free(cost);
    free(s.alpha);
    free(s.order);
    free(s.w);
}

int nlu_train(const nlu_example_t *examples, size_t n, const nlu_train_opts_t *opts,
              nlu_model_t **out, core_err_t *err)
{
    nlu_train_opts_t def;
    nlu_model_t *m = NULL;
    csr_t x = {0};
    const hyper_t *hp = &hyper_default;
    if (out == NULL)
        return core_err_set(err, CORE_ERR_INVALID, "no output model");
    *out = NULL;
    if (opts == NULL) {
        nlu_train_opts_init(&def);
        opts = &def;
    }
    if (examples == NULL || n == 0)
        return core_err_set(err, CORE_ERR_INVALID, "no training examples");
    uint32_t *label = core_xmalloc(n * sizeof(uint32_t));
    int rc = check_examples(examples, n, opts->oos_label ? opts->oos_label : "oos", &m, label, err);
    if (rc != 0) {
        free(label);
        return rc;
    }
    m->fcfg = fcfg_default;
    m->temp = hp->temp;
    build_features(m, examples, n, &x);
    fit_svm(m, &x, label, opts->seed, hp);
    nlu_model_set_threshold(m,
                            opts->oos_threshold >= 0 ? opts->oos_threshold : hp->default_threshold);
    csr_dispose(&x);
    free(label);
    *out = m;
    return 0;
}
