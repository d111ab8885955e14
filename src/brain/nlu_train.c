/* nlu_train.c — trains the intent model: checks the examples, builds the
 * feature table and tf-idf weights, fits a multiclass linear SVM
 * (Crammer-Singer) by dual coordinate descent, in an order drawn from the
 * seed, blends in a small share of a naive Bayes model of the same
 * features, and adds the hidden layer (nlu_hidden.c): same data and seed,
 * same model, bit for bit. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "brain/nlu_int.h"

/* Training hyper-parameters. Each was chosen on the CLINC150 validation
 * split only; docs/nlu.md lists what was tried and what it measured. */
typedef struct hyper_s {
    double c;          /* SVM cost: 0.5 and 2 measured worse than 1 */
    double oos_weight; /* cost multiplier for out-of-scope examples: 2 and 4 changed nothing */
    double eps;        /* dual CD stopping gap: 0.25 is 2x faster than 0.1 at the same accuracy */
    int max_iter;      /* passes over the data, an upper bound on training time */
    double temp;       /* softmax temperature: the log-loss optimum on CLINC val (5.6) */
    double default_threshold;   /* the threshold tuned on CLINC val at that temperature */
    double nb_weight;           /* share of the naive Bayes log-probabilities in the weights */
    double nb_alpha;            /* their additive smoothing: 0.1 to 0.0003 measured */
    nlu__hidden_hyper_t hidden; /* the hidden layer blended in (nlu_hidden.c) */
} hyper_t;

static const hyper_t hyper_default = {
    .c = 1.0,
    .oos_weight = 1.0,
    .eps = 0.25,
    .max_iter = 50,
    .temp = 5.6,
    .default_threshold = 0.34,
    .nb_weight = 0.02,
    .nb_alpha = 0.003,
    /* chosen on CLINC150's validation split (docs/nlu.md, "Ninth round"):
     * 64 units gained less, 256 as much as 128 for twice the time; a blend
     * of 0.1 varied more with the seed, 0.15 gained nothing */
    .hidden = {.units = 128, .epochs = 8, .rate = 0.2, .blend = 0.05, .min_examples = 1000},
};

/* Words and bigrams, plus character 2-4-grams across the whole utterance
 * weighted 1.5x: 2-5-grams cost 70% more features for no accuracy, n-grams
 * within words only lost 5 points of oos recall, word trigrams or skip-grams
 * added nothing. */
static const nlu__fcfg_t fcfg_default = {
    .char_min = 2,
    .char_max = 4,
    .flags = NLU__F_BIGRAMS,
    .view_scale = {1.0f, 1.5f},
};

typedef nlu__csr_t csr_t;

static void csr_dispose(csr_t *x)
{
    free(x->start);
    free(x->idx);
    free(x->val);
    free(x->sqnorm);
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
        if (strlen(ex[i].intent) > NLU__NAME_MAX) {
            rc = core_err_set(err, CORE_ERR_LIMIT, "example %zu: intent name longer than %d bytes",
                              i + 1, NLU__NAME_MAX);
            break;
        }
        if (ex[i].text == NULL || ex[i].text[0] == '\0') {
            rc = core_err_set(err, CORE_ERR_INVALID, "example %zu (intent \"%s\"): empty text",
                              i + 1, ex[i].intent);
            break;
        }
        uint32_t c = nlu__ftab_put(&names, nlu__name_key(ex[i].intent));
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
    x->idx = idx;
    x->val = cnt;
    m->n_feat = (uint32_t)m->ftab.len;
    m->idf = core_xmalloc((m->n_feat + 1) * sizeof(float));
    for (uint32_t j = 0; j < m->n_feat; j++)
        /* the square root of the smoothed idf: full idf let features seen
         * in a handful of examples outweigh an intent's common phrasing
         * (0.3 points of val accuracy, the same on three seeds) */
        m->idf[j] = (float)sqrt(log((1.0 + (double)n) / (1.0 + df[j])) + 1.0);
    m->idf_unseen = (float)sqrt(log(1.0 + (double)n) + 1.0);
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

/* ---- Crammer-Singer multiclass SVM, sequential dual coordinate descent --- */

/* One multiclass problem instead of K binary ones: example i's K dual
 * variables (alpha_i^y <= C, alpha_i^c <= 0 otherwise, summing to 0) are
 * optimised together, so the classes compete for each example directly.
 * Each example's scores for every class come from one vectorised pass over
 * its rows, and only the classes whose dual variable moved are updated. The
 * bias is a constant feature of value 1, regularised like the rest. */
typedef struct svm_s {
    const csr_t *x;
    const uint32_t *label;
    nlu_model_t *m;
    float *alpha; /* n * K */
    float *d;     /* stride: the step of each class for the current example */
    uint32_t *moved;
    double *b; /* K: scores minus the current alphas' own contribution */
} svm_t;

/* The sub-problem's threshold: the theta with sum_c min(bound_c, (theta -
 * b_c) / a) = 0, found as a projection onto a simplex (Michelot): start
 * from a lower bound and average the candidates above it until it stops
 * rising. Exact in a few O(K) sweeps, where sorting the K values cost 15%
 * of training. */
static double cs_theta(const double *dv, uint32_t k, double ac)
{
    double dmax = dv[0];
    for (uint32_t c = 1; c < k; c++)
        dmax = dv[c] > dmax ? dv[c] : dmax;
    double theta = dmax - ac;
    for (;;) {
        double sum = -ac;
        uint32_t r = 0;
        for (uint32_t c = 0; c < k; c++) {
            if (dv[c] > theta || dv[c] == dmax) {
                sum += dv[c];
                r++;
            }
        }
        if (sum / r <= theta)
            return theta;
        theta = sum / r;
    }
}

/* Applies the moved classes' steps s->d to the weights of example i. */
NLU__HOT static void svm_update(svm_t *s, size_t i, uint32_t nmoved)
{
    nlu_model_t *m = s->m;
    const size_t *st = s->x->start;
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

/* One coordinate step on example i; returns its KKT violation (the spread
 * of the gradient over the classes that may still move). */
NLU__HOT static double svm_step(svm_t *s, size_t i, double cost, double *dv)
{
    nlu_model_t *m = s->m;
    uint32_t k = m->n_class, yi = s->label[i], nmoved = 0;
    float sc[NLU__CLASSES_MAX] __attribute__((aligned(32)));
    const size_t *st = s->x->start;
    memcpy(sc, m->bias, m->stride * sizeof(float));
    for (size_t p = st[i]; p < st[i + 1]; p++)
        nlu__axpy(sc, m->w + (size_t)s->x->idx[p] * m->stride, s->x->val[p], m->stride);
    double a = s->x->sqnorm[i] + 1.0, g_max = -INFINITY, g_min = INFINITY;
    float *alpha = s->alpha + i * k;
    for (uint32_t c = 0; c < k; c++) {
        double g = sc[c] + (c == yi ? 0.0 : 1.0);
        g_max = fmax(g_max, g);
        if (alpha[c] < (c == yi ? cost : 0.0))
            g_min = fmin(g_min, g);
        s->b[c] = g - a * alpha[c];
        dv[c] = s->b[c] + (c == yi ? a * cost : 0.0);
    }
    if (g_max - g_min <= 1e-12)
        return 0;
    double theta = cs_theta(dv, k, a * cost);
    for (uint32_t c = 0; c < k; c++) {
        double na = fmin(c == yi ? cost : 0.0, (theta - s->b[c]) / a);
        if (fabs(na - alpha[c]) > 1e-12) {
            s->d[c] = (float)(na - alpha[c]);
            alpha[c] = (float)na;
            s->moved[nmoved++] = c;
        }
    }
    svm_update(s, i, nmoved);
    return g_max - g_min;
}

static void fit_svm(nlu_model_t *m, const csr_t *x, const uint32_t *label, uint64_t seed,
                    const hyper_t *hp)
{
    uint32_t k = m->n_class;
    svm_t s = {.x = x, .label = label, .m = m};
    size_t *order = core_xmalloc(x->n * sizeof(size_t));
    double *dv = core_xmalloc(k * sizeof(double));
    s.alpha = core_xcalloc(x->n * k, sizeof(float));
    s.d = nlu__walloc(m->stride);
    s.moved = core_xmalloc(k * sizeof(uint32_t));
    s.b = core_xmalloc(k * sizeof(double));
    m->w = nlu__walloc((size_t)m->n_feat * m->stride);
    for (size_t i = 0; i < x->n; i++)
        order[i] = i;
    for (int it = 0; it < hp->max_iter; it++) {
        nlu__shuffle(order, x->n, &seed);
        double gap = 0;
        for (size_t j = 0; j < x->n; j++) {
            size_t i = order[j];
            double cost = hp->c * ((int32_t)label[i] == m->oos_class ? hp->oos_weight : 1.0);
            gap = fmax(gap, svm_step(&s, i, cost, dv));
        }
        if (gap <= hp->eps)
            break;
    }
    free(order);
    free(dv);
    free(s.alpha);
    free(s.d);
    free(s.moved);
    free(s.b);
}

/* ---- naive Bayes blend --------------------------------------------------- */

/* Adds weight * log P(feature | class) (multinomial naive Bayes over the
 * weighted features, additive smoothing alpha) to the SVM's weights. The two
 * err differently: the SVM fits the margin cases, naive Bayes credits every
 * feature a class uses, which helps the many short paraphrases an intent set
 * has. Each row is centred (the mean over the classes removed): scores move
 * by the same amount for every class, so routing is unchanged by it, and
 * the row keeps the range its 8-bit quantisation needs. Goes through the
 * features column by column (an index of the examples of each feature), so
 * the memory is that of the examples, not features x classes. */
/* The examples by feature: the class and value of every occurrence of
 * feature f are at [start[f], start[f + 1]). tot[c] gets each class's sum
 * of feature values. */
typedef struct csc_s {
    size_t *start;
    uint32_t *cls;
    float *val;
} csc_t;

static void csc_build(csc_t *y, const csr_t *x, const uint32_t *label, size_t nf, double *tot)
{
    size_t nnz = x->start[x->n];
    y->start = core_xcalloc(nf + 2, sizeof(size_t));
    y->cls = core_xmalloc((nnz + 1) * sizeof(uint32_t));
    y->val = core_xmalloc((nnz + 1) * sizeof(float));
    for (size_t p = 0; p < nnz; p++)
        y->start[x->idx[p] + 2]++;
    for (size_t f = 1; f <= nf; f++)
        y->start[f + 1] += y->start[f];
    /* start[f + 1] is the fill position of f until the loop below ends */
    for (size_t i = 0; i < x->n; i++) {
        for (size_t p = x->start[i]; p < x->start[i + 1]; p++) {
            size_t q = y->start[x->idx[p] + 1]++;
            y->cls[q] = label[i];
            y->val[q] = x->val[p];
            tot[label[i]] += x->val[p];
        }
    }
}

static void blend_nb(nlu_model_t *m, const csr_t *x, const uint32_t *label, const hyper_t *hp)
{
    uint32_t k = m->n_class, st = m->stride;
    size_t nf = m->n_feat;
    double *tot = core_xcalloc(st, sizeof(double));
    double *row = core_xcalloc(st, sizeof(double));
    uint32_t *touched = core_xmalloc(st * sizeof(uint32_t));
    uint8_t *seen = core_xcalloc(st, 1);
    csc_t y;
    csc_build(&y, x, label, nf, tot);
    size_t *cstart = y.start;
    uint32_t *crow = y.cls;
    float *cval = y.val;
    /* log P(f | c) = log(alpha) - log(tot_c) + log1p(sum_fc / alpha): a
     * class that never saw the feature gets the first two terms, so only the
     * classes that did need a logarithm */
    double base_sum = 0;
    for (uint32_t c = 0; c < k; c++) {
        tot[c] = log(hp->nb_alpha) - log(tot[c] + hp->nb_alpha * (double)nf);
        base_sum += tot[c];
    }
    for (size_t f = 0; f < nf; f++) {
        uint32_t n_t = 0;
        for (size_t q = cstart[f]; q < cstart[f + 1]; q++) {
            if (!seen[crow[q]]) {
                seen[crow[q]] = 1;
                touched[n_t++] = crow[q];
            }
            row[crow[q]] += cval[q];
        }
        double sum = base_sum;
        for (uint32_t t = 0; t < n_t; t++) {
            row[touched[t]] = log1p(row[touched[t]] / hp->nb_alpha);
            sum += row[touched[t]];
        }
        float *w = m->w + f * st, mean = (float)(sum / k), nbw = (float)hp->nb_weight;
        for (uint32_t c = 0; c < k; c++)
            w[c] += nbw * ((float)tot[c] - mean);
        for (uint32_t t = 0; t < n_t; t++) {
            uint32_t c = touched[t];
            w[c] += nbw * (float)row[c];
            row[c] = 0;
            seen[c] = 0;
        }
    }
    free(tot);
    free(cstart);
    free(crow);
    free(cval);
    free(row);
    free(touched);
    free(seen);
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
    if (hp->nb_weight > 0)
        blend_nb(m, &x, label, hp);
    nlu__hidden_fit(m, &x, label, opts->seed, &hp->hidden);
    nlu__quantize(m);
    nlu__hidden_quantize(m);
    nlu_model_set_threshold(m,
                            opts->oos_threshold >= 0 ? opts->oos_threshold : hp->default_threshold);
    csr_dispose(&x);
    free(label);
    *out = m;
    return 0;
}
