/* nlu_train.c — trains the intent model: checks the examples, builds the
 * feature table and tf-idf weights, and fits one linear SVM per class
 * (one-vs-rest, L2-regularised squared hinge loss) by dual coordinate
 * descent with shrinking, in a fixed order drawn from the seed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brain/nlu_int.h"

/* Training hyper-parameters; see docs/nlu.md for how each was chosen. */
typedef struct hyper_s {
    double c;          /* SVM cost */
    double oos_weight; /* cost multiplier for out-of-scope examples */
    double eps;        /* dual CD stopping tolerance */
    int max_iter;
    double temp; /* softmax temperature over SVM scores */
    double default_threshold;
    uint32_t min_df; /* features seen in fewer training examples are dropped */
    int solver;      /* 0: one-vs-rest SVM, 1: multinomial logistic regression */
    double eta0;     /* SGD initial step */
    int epochs;
} hyper_t;

static const hyper_t hyper_default = {
    .c = 1.0,
    .oos_weight = 1.0,
    .eps = 0.5,
    .max_iter = 50,
    .temp = 6.0,
    .default_threshold = 0.0,
    .min_df = 1,
    .solver = 0,
    .eta0 = 0.5,
    .epochs = 10,
};

static const nlu__fcfg_t fcfg_default = {
    .char_min = 2,
    .char_max = 4,
    .flags = NLU__F_BIGRAMS,
    .view_scale = {1.0f, 1.5f},
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

/* Drops features seen in fewer than min_df examples: rare n-grams cost
 * memory and time and teach the model little (docs/nlu.md has the figures). */
static void prune(nlu_model_t *m, csr_t *x, uint32_t *df, uint32_t min_df)
{
    uint32_t nf = (uint32_t)m->ftab.len, kept = 0;
    uint32_t *remap = core_xmalloc((nf + 1) * sizeof(uint32_t));
    uint64_t *keys = core_xmalloc((nf + 1) * sizeof(uint64_t));
    for (size_t i = 0; i < m->ftab.cap; i++)
        if (m->ftab.slot[i].key != 0)
            keys[m->ftab.slot[i].val] = m->ftab.slot[i].key;
    nlu__ftab_dispose(&m->ftab);
    for (uint32_t j = 0; j < nf; j++)
        remap[j] = df[j] >= min_df ? kept++ : UINT32_MAX;
    nlu__ftab_init(&m->ftab, kept);
    for (uint32_t j = 0; j < nf; j++) {
        if (remap[j] == UINT32_MAX)
            continue;
        df[remap[j]] = df[j];
        m->fview[remap[j]] = m->fview[j];
        nlu__ftab_put(&m->ftab, keys[j]);
    }
    size_t used = 0;
    for (size_t i = 0; i < x->n; i++) {
        size_t from = x->start[i], to = x->start[i + 1];
        x->start[i] = used;
        for (size_t p = from; p < to; p++)
            if (remap[x->idx[p]] != UINT32_MAX) {
                x->idx[used] = remap[x->idx[p]];
                x->val[used++] = x->val[p];
            }
    }
    x->start[x->n] = used;
    free(remap);
    free(keys);
}

/* Extracts every example's features, fills the model's feature table, views
 * and idf, and the weighted, normalised rows in x. */
static void build_features(nlu_model_t *m, const nlu_example_t *ex, size_t n, uint32_t min_df,
                           csr_t *x)
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
    x->idx = idx;
    x->val = cnt;
    if (min_df > 1)
        prune(m, x, df, min_df);
    m->n_feat = (uint32_t)m->ftab.len;
    m->idf = core_xmalloc((m->n_feat + 1) * sizeof(float));
    for (uint32_t j = 0; j < m->n_feat; j++)
        m->idf[j] =
            getenv("NLU_NOIDF") ? 1.0f : (float)(log((1.0 + (double)n) / (1.0 + df[j])) + 1.0);
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

/* The K binary problems are independent, so their coordinate steps can be
 * interleaved: each example's scores for every class come from one pass over
 * its features through the row-major weights (vectorised), and the classes
 * whose dual variable moved are updated together. Same result as solving
 * them one by one in this order, at a fraction of the memory traffic. */
typedef struct svm_s {
    const csr_t *x;
    const uint32_t *label;
    nlu_model_t *m;
    float *alpha; /* n * K */
    float *d;     /* stride: the step of each class for the current example */
    uint32_t *moved;
    double *pg_max, *pg_min; /* K: projected-gradient range of this pass */
} svm_t;

NLU__HOT static void svm_step(svm_t *s, size_t i, double cost)
{
    nlu_model_t *m = s->m;
    uint32_t k = m->n_class, nmoved = 0;
    float sc[NLU__CLASSES_MAX] __attribute__((aligned(32)));
    const size_t *st = s->x->start;
    memcpy(sc, m->bias, m->stride * sizeof(float));
    for (size_t p = st[i]; p < st[i + 1]; p++)
        nlu__axpy(sc, m->w + (size_t)s->x->idx[p] * m->stride, s->x->val[p], m->stride);
    double diag = 0.5 / cost, qd = s->x->sqnorm[i] + 1.0 + diag;
    float *alpha = s->alpha + i * k;
    for (uint32_t c = 0; c < k; c++) {
        double y = s->label[i] == c ? 1.0 : -1.0;
        double g = y * sc[c] - 1.0 + alpha[c] * diag;
        double pg = alpha[c] == 0 && g > 0 ? 0 : g;
        s->pg_max[c] = pg > s->pg_max[c] ? pg : s->pg_max[c];
        s->pg_min[c] = pg < s->pg_min[c] ? pg : s->pg_min[c];
        if (fabs(pg) > 1e-12) {
            double na = fmax(alpha[c] - g / qd, 0.0);
            s->d[c] = (float)((na - alpha[c]) * y);
            alpha[c] = (float)na;
            s->moved[nmoved++] = c;
        }
    }
    if (nmoved == 0)
        return;
    if (nmoved <= 4) {
        for (uint32_t j = 0; j < nmoved; j++) {
            uint32_t c = s->moved[j];
            for (size_t p = st[i]; p < st[i + 1]; p++)
                m->w[(size_t)s->x->idx[p] * m->stride + c] += s->d[c] * s->x->val[p];
            m->bias[c] += s->d[c];
        }
    } else {
        for (size_t p = st[i]; p < st[i + 1]; p++)
            nlu__axpy(m->w + (size_t)s->x->idx[p] * m->stride, s->d, s->x->val[p], m->stride);
        nlu__axpy(m->bias, s->d, 1.0f, m->stride);
    }
    for (uint32_t j = 0; j < nmoved; j++)
        s->d[s->moved[j]] = 0;
}

static void fit_svm(nlu_model_t *m, const csr_t *x, const uint32_t *label, uint64_t seed,
                    const hyper_t *hp)
{
    uint32_t k = m->n_class;
    svm_t s = {.x = x, .label = label, .m = m};
    size_t *order = core_xmalloc(x->n * sizeof(size_t));
    s.alpha = core_xcalloc(x->n * k, sizeof(float));
    s.d = nlu__walloc(m->stride);
    s.moved = core_xmalloc(k * sizeof(uint32_t));
    s.pg_max = core_xmalloc(k * sizeof(double));
    s.pg_min = core_xmalloc(k * sizeof(double));
    m->w = nlu__walloc((size_t)m->n_feat * m->stride);
    for (size_t i = 0; i < x->n; i++)
        order[i] = i;
    for (int it = 0; it < hp->max_iter; it++) {
        for (size_t i = 0; i + 1 < x->n; i++) {
            size_t j = i + (size_t)(rng_next(&seed) % (x->n - i));
            size_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (uint32_t c = 0; c < k; c++) {
            s.pg_max[c] = -INFINITY;
            s.pg_min[c] = INFINITY;
        }
        for (size_t j = 0; j < x->n; j++) {
            size_t i = order[j];
            svm_step(&s, i, hp->c * ((int32_t)label[i] == m->oos_class ? hp->oos_weight : 1.0));
        }
        double gap = 0;
        for (uint32_t c = 0; c < k; c++)
            gap = fmax(gap, s.pg_max[c] - s.pg_min[c]);
        if (getenv("NLU_DEBUG"))
            fprintf(stderr, "it %d gap %g\n", it, gap);
        if (gap <= hp->eps)
            break;
    }
    free(order);
    free(s.alpha);
    free(s.d);
    free(s.moved);
    free(s.pg_max);
    free(s.pg_min);
}

/* EXPERIMENT knobs (temporary) */
static void env_knobs(hyper_t *hp, nlu__fcfg_t *f)
{
    const char *e = getenv("NLU_HP");
    if (e == NULL)
        return;
    char key[32];
    double v;
    int n;
    while (sscanf(e, "%31[a-z_]=%lf%n", key, &v, &n) == 2) {
        if (!strcmp(key, "c"))
            hp->c = v;
        else if (!strcmp(key, "oosw"))
            hp->oos_weight = v;
        else if (!strcmp(key, "eps"))
            hp->eps = v;
        else if (!strcmp(key, "temp"))
            hp->temp = v;
        else if (!strcmp(key, "mindf"))
            hp->min_df = (uint32_t)v;
        else if (!strcmp(key, "cmin"))
            f->char_min = (uint32_t)v;
        else if (!strcmp(key, "cmax"))
            f->char_max = (uint32_t)v;
        else if (!strcmp(key, "big"))
            f->flags = (uint32_t)v;
        else if (!strcmp(key, "ws"))
            f->view_scale[0] = (float)v;
        else if (!strcmp(key, "cs"))
            f->view_scale[1] = (float)v;
        e += n;
        if (*e == ',')
            e++;
    }
}

/* ---- multinomial logistic regression, SGD -------------------------------- */

/* Minimises the mean cross-entropy plus lambda/2 |W|^2 by SGD with Bottou's
 * step size eta0 / (1 + eta0 lambda t); W = scale * V keeps the L2 shrinkage
 * O(1) per step. Classes whose gradient is negligible are not updated. */
NLU__HOT static void fit_logreg(nlu_model_t *m, const csr_t *x, const uint32_t *label,
                                uint64_t seed, const hyper_t *hp)
{
    uint32_t k = m->n_class, S = m->stride;
    size_t n = x->n;
    size_t *order = core_xmalloc(n * sizeof(size_t));
    float sc[NLU__CLASSES_MAX] __attribute__((aligned(32)));
    float *g = nlu__walloc(S);
    uint32_t *moved = core_xmalloc(k * sizeof(uint32_t));
    double lambda = 1.0 / (hp->c * (double)n), eta0 = hp->eta0, scale = 1.0;
    m->w = nlu__walloc((size_t)m->n_feat * S);
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    size_t t = 0;
    for (int ep = 0; ep < hp->epochs; ep++) {
        for (size_t i = 0; i + 1 < n; i++) {
            size_t j = i + (size_t)(rng_next(&seed) % (n - i));
            size_t tmp = order[i];
            order[i] = order[j];
            order[j] = tmp;
        }
        for (size_t jj = 0; jj < n; jj++, t++) {
            size_t i = order[jj];
            double eta = eta0 / (1.0 + eta0 * lambda * (double)t);
            memset(sc, 0, S * sizeof(float));
            for (size_t p = x->start[i]; p < x->start[i + 1]; p++)
                nlu__axpy(sc, m->w + (size_t)x->idx[p] * S, x->val[p], S);
            float mx = -INFINITY;
            for (uint32_t c = 0; c < k; c++) {
                sc[c] = (float)(sc[c] * scale) + m->bias[c];
                mx = sc[c] > mx ? sc[c] : mx;
            }
            double sum = 0;
            for (uint32_t c = 0; c < k; c++)
                sum += (sc[c] = expf(sc[c] - mx));
            double w_i = (int32_t)label[i] == m->oos_class ? hp->oos_weight : 1.0;
            uint32_t nm = 0;
            for (uint32_t c = 0; c < k; c++) {
                double gr = sc[c] / sum - (label[i] == c ? 1.0 : 0.0);
                if (fabs(gr) > 1e-4) {
                    g[c] = (float)(-eta * w_i * gr);
                    moved[nm++] = c;
                }
            }
            scale *= 1.0 - eta * lambda;
            float inv = (float)(1.0 / scale);
            for (size_t p = x->start[i]; p < x->start[i + 1]; p++) {
                float *row = m->w + (size_t)x->idx[p] * S;
                float a = x->val[p] * inv;
                for (uint32_t j = 0; j < nm; j++)
                    row[moved[j]] += a * g[moved[j]];
            }
            for (uint32_t j = 0; j < nm; j++) {
                m->bias[moved[j]] += g[moved[j]];
                g[moved[j]] = 0;
            }
            if (scale < 1e-6) { /* fold the scale back in before floats underflow */
                for (size_t q = 0; q < (size_t)m->n_feat * S; q++)
                    m->w[q] *= (float)scale;
                scale = 1.0;
            }
        }
    }
    for (size_t q = 0; q < (size_t)m->n_feat * S; q++)
        m->w[q] *= (float)scale;
    free(order);
    free(g);
    free(moved);
}

int nlu_train(const nlu_example_t *examples, size_t n, const nlu_train_opts_t *opts,
              nlu_model_t **out, core_err_t *err)
{
    nlu_train_opts_t def;
    nlu_model_t *m = NULL;
    csr_t x = {0};
    hyper_t hyp = hyper_default;
    const hyper_t *hp = &hyp;
    nlu__fcfg_t fcfg = fcfg_default;
    env_knobs(&hyp, &fcfg);
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
    m->fcfg = fcfg;
    m->temp = hp->temp;
    build_features(m, examples, n, hp->min_df, &x);
    if (hp->solver == 1)
        fit_logreg(m, &x, label, opts->seed, hp);
    else
        fit_svm(m, &x, label, opts->seed, hp);
    nlu_model_set_threshold(m,
                            opts->oos_threshold >= 0 ? opts->oos_threshold : hp->default_threshold);
    csr_dispose(&x);
    free(label);
    *out = m;
    return 0;
}
