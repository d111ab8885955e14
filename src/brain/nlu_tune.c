/* nlu_tune.c — calibration and threshold tuning of a trained intent model:
 * the examples it is tuned on (a validation set scored by the model, and,
 * with folds, the training examples scored by models trained without them),
 * the softmax temperature that minimises their log loss, and the threshold
 * sweep under an accuracy budget. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "brain/nlu_int.h"

/* ---- the pool of scored examples ----------------------------------------- */

void nlu__pool_dispose(nlu__pool_t *p)
{
    nlu__ftab_dispose(&p->names);
    free(p->scores);
    free(p->label);
    free(p->oos);
    free(p->empty);
    free(p->src);
    memset(p, 0, sizeof(*p));
}

static void pool_grow(nlu__pool_t *p, size_t more)
{
    if (p->n + more <= p->cap)
        return;
    size_t cap = (p->n + more) * 2;
    float *s = nlu__walloc(cap * p->stride);
    if (p->n)
        memcpy(s, p->scores, p->n * p->stride * sizeof(float));
    free(p->scores);
    p->scores = s;
    p->label = core_xrealloc(p->label, cap * sizeof(int32_t));
    p->oos = core_xrealloc(p->oos, cap);
    p->empty = core_xrealloc(p->empty, cap);
    p->src = core_xrealloc(p->src, cap);
    p->cap = cap;
}

/* Class index of name in the tuned model, -1 if it has none. */
static int32_t pool_class(const nlu__pool_t *p, const nlu_model_t *m, const char *name)
{
    uint32_t c = nlu__ftab_get(&p->names, nlu__name_key(name));
    return c != UINT32_MAX && strcmp(m->names[c], name) == 0 ? (int32_t)c : -1;
}

void nlu__pool_init(nlu__pool_t *p, const nlu_model_t *m)
{
    memset(p, 0, sizeof(*p));
    p->stride = m->stride;
    p->n_class = m->n_class;
    p->oos_class = m->oos_class;
    nlu__ftab_init(&p->names, m->n_class);
    for (uint32_t c = 0; c < m->n_class; c++)
        nlu__ftab_put(&p->names, nlu__name_key(m->names[c]));
}

/* Scores examples ex[idx[j]] (all n when idx is NULL) with model s, whose
 * classes map[c] are the tuned model m's (NULL: s is m), and adds them to
 * the pool as source src. A class of m that s lacks scores far below all. */
static void pool_add(nlu__pool_t *p, const nlu_model_t *m, const nlu_model_t *s, const int32_t *map,
                     const nlu_example_t *ex, const size_t *idx, size_t n, const char *oos_label,
                     uint8_t src)
{
    static _Thread_local nlu__vec_t v;
    float sc[NLU__CLASSES_MAX] __attribute__((aligned(32)));
    pool_grow(p, n);
    for (size_t j = 0; j < n; j++) {
        const nlu_example_t *e = &ex[idx ? idx[j] : j];
        float *row = p->scores + p->n * p->stride;
        nlu__vectorize(s, e->text, strlen(e->text), &v);
        nlu__scores(s, &v, map ? sc : row);
        if (map) {
            for (uint32_t c = 0; c < p->n_class; c++)
                row[c] = -1e30f;
            for (uint32_t c = 0; c < s->n_class; c++)
                if (map[c] >= 0)
                    row[map[c]] = sc[c];
        }
        p->label[p->n] = pool_class(p, m, e->intent);
        /* a training example whose class its fold's model never saw says
         * nothing about the tuned model: left out */
        if (map && p->label[p->n] >= 0 && row[p->label[p->n]] == -1e30f)
            continue;
        p->oos[p->n] = strcmp(e->intent, oos_label) == 0;
        p->empty[p->n] = v.len == 0;
        p->src[p->n] = src;
        p->n++;
    }
}

/* ---- out-of-fold scores --------------------------------------------------- */

/* Stratified folds: each class's examples, in an order drawn from the seed,
 * go round the folds, each class starting where the last one stopped, so
 * every fold holds a share of every class and the folds' sizes differ by at
 * most one. Examples of a label m lacks get fold -1. */
static void assign_folds(const nlu__pool_t *p, const nlu_model_t *m, const nlu_example_t *ex,
                         size_t n, unsigned k, uint64_t seed, int32_t *fold)
{
    size_t *order = core_xmalloc((n + 1) * sizeof(size_t));
    int32_t *cls = core_xmalloc((n + 1) * sizeof(int32_t));
    for (size_t i = 0; i < n; i++) {
        order[i] = i;
        cls[i] = ex[i].intent ? pool_class(p, m, ex[i].intent) : -1;
        fold[i] = -1;
    }
    nlu__shuffle(order, n, &seed);
    size_t next = 0;
    for (uint32_t c = 0; c < m->n_class; c++)
        for (size_t j = 0; j < n; j++)
            if (cls[order[j]] == (int32_t)c)
                fold[order[j]] = (int32_t)(next++ % k);
    free(order);
    free(cls);
}

/* Trains a model on every fold but f and adds fold f's examples, scored by
 * it, to the pool. A fold whose remaining examples cannot train (one class
 * left) is skipped. */
static void pool_fold(nlu__pool_t *p, const nlu_model_t *m, const nlu_example_t *ex, size_t n,
                      const int32_t *fold, int32_t f, const nlu_train_opts_t *topts,
                      const char *oos_label)
{
    nlu_example_t *rest = core_xmalloc((n + 1) * sizeof(*rest));
    size_t *held = core_xmalloc((n + 1) * sizeof(size_t)), n_rest = 0, n_held = 0;
    for (size_t i = 0; i < n; i++) {
        if (fold[i] == f)
            held[n_held++] = i;
        else if (fold[i] >= 0)
            rest[n_rest++] = ex[i];
    }
    nlu_model_t *fm = NULL;
    core_err_t err = {0};
    if (n_held > 0 && nlu_train(rest, n_rest, topts, &fm, &err) == 0) {
        int32_t *map = core_xmalloc(fm->n_class * sizeof(int32_t));
        for (uint32_t c = 0; c < fm->n_class; c++)
            map[c] = pool_class(p, m, fm->names[c]);
        pool_add(p, m, fm, map, ex, held, n_held, oos_label, (uint8_t)(f + 1));
        free(map);
        p->folds++;
    }
    nlu_model_free(fm);
    free(rest);
    free(held);
}

int nlu__pool_build(nlu__pool_t *p, const nlu_model_t *m, const nlu_example_t *val, size_t n_val,
                    const nlu_tune_opts_t *o, core_err_t *err)
{
    const char *oos = o->oos_label ? o->oos_label : "oos";
    nlu_train_opts_t topts;
    if (o->train_opts)
        topts = *o->train_opts;
    else
        nlu_train_opts_init(&topts);
    topts.oos_label = oos;
    nlu__pool_init(p, m);
    if (n_val > 0)
        pool_add(p, m, m, NULL, val, NULL, n_val, oos, 0);
    if (o->folds >= 2 && o->train != NULL && o->n_train > 0) {
        unsigned k = o->folds > NLU__FOLDS_MAX ? NLU__FOLDS_MAX : o->folds;
        int32_t *fold = core_xmalloc((o->n_train + 1) * sizeof(int32_t));
        assign_folds(p, m, o->train, o->n_train, k, topts.seed, fold);
        for (unsigned f = 0; f < k; f++)
            pool_fold(p, m, o->train, o->n_train, fold, (int32_t)f, &topts, oos);
        free(fold);
    }
    size_t n_known = 0; /* of a class the model has: what the temperature fits */
    p->n_oos = 0;
    for (size_t i = 0; i < p->n; i++) {
        p->n_oos += p->oos[i];
        n_known += p->label[i] >= 0;
    }
    if (p->n_oos == p->n || n_known == 0)
        return core_err_set(err, CORE_ERR_INVALID,
                            "tuning needs in-scope examples and examples of the model's intents;"
                            " got %zu in scope, %zu out of scope (\"%s\"), %zu of its intents",
                            p->n - p->n_oos, p->n_oos, oos, n_known);
    return 0;
}

/* ---- calibration ------------------------------------------------------------ */

/* Mean log loss at temperature temp of the pool's labelled examples. */
static double log_loss(const nlu__pool_t *p, double temp)
{
    double sum = 0;
    size_t cnt = 0;
    for (size_t i = 0; i < p->n; i++) {
        const float *s = p->scores + i * p->stride;
        if (p->label[i] < 0)
            continue;
        float mx = s[0];
        for (uint32_t c = 1; c < p->n_class; c++)
            mx = s[c] > mx ? s[c] : mx;
        double z = 0;
        for (uint32_t c = 0; c < p->n_class; c++)
            z += exp(temp * (s[c] - mx));
        sum += log(z) - temp * (s[p->label[i]] - mx);
        cnt++;
    }
    return cnt ? sum / (double)cnt : 0;
}

/* Golden-section search of log(temp) in [log 0.5, log 200]: the loss is
 * unimodal in the temperature. */
double nlu__fit_temperature(const nlu__pool_t *p)
{
    const double g = 0.6180339887498949;
    double a = log(0.5), b = log(200.0);
    double c = b - g * (b - a), d = a + g * (b - a);
    double fc = log_loss(p, exp(c)), fd = log_loss(p, exp(d));
    for (int it = 0; it < 40; it++) {
        if (fc < fd) {
            b = d, d = c, fd = fc;
            c = b - g * (b - a);
            fc = log_loss(p, exp(c));
        } else {
            a = c, c = d, fc = fd;
            d = a + g * (b - a);
            fd = log_loss(p, exp(d));
        }
    }
    return exp(0.5 * (a + b));
}

/* What routing would say of pool example i at temperature temp, with no
 * threshold (the same arithmetic as nlu_route()). */
void nlu__pool_decide(const nlu__pool_t *p, size_t i, double temp, nlu__item_t *it)
{
    float s[NLU__CLASSES_MAX];
    memcpy(s, p->scores + i * p->stride, p->n_class * sizeof(float));
    uint32_t best = 0, best_in = p->oos_class == 0 ? 1 : 0;
    for (uint32_t c = 1; c < p->n_class; c++) {
        best = s[c] > s[best] ? c : best;
        if ((int32_t)c != p->oos_class && s[c] > s[best_in])
            best_in = c;
    }
    nlu__softmax(s, p->n_class, temp);
    it->conf = s[best_in];
    it->oos_truth = p->oos[i];
    it->oos_won = p->empty[i] || (int32_t)best == p->oos_class;
    it->right = !p->oos[i] && !it->oos_won && (int32_t)best_in == p->label[i];
    it->src = p->src[i];
}

/* ---- the threshold ------------------------------------------------------------ */

static int cmp_conf(const void *a, const void *b)
{
    double x = ((const nlu__item_t *)a)->conf, y = ((const nlu__item_t *)b)->conf;
    return x < y ? -1 : x > y;
}

/* Picks the threshold with the best recall among those within max_drop of
 * the accuracy without a threshold; the lowest such threshold. */
double nlu__sweep(nlu__item_t *it, size_t n, double max_drop)
{
    size_t right = 0, recalled = 0, n_oos = 0;
    for (size_t i = 0; i < n; i++) {
        right += (size_t)it[i].right;
        recalled += (size_t)(it[i].oos_truth && it[i].oos_won);
        n_oos += (size_t)it[i].oos_truth;
    }
    size_t n_in = n - n_oos;
    if (n_in == 0 || n_oos == 0)
        return 0;
    qsort(it, n, sizeof(*it), cmp_conf);
    double floor = (double)right / (double)n_in - max_drop - 1e-12;
    double best_rec = (double)recalled / (double)n_oos, best_t = 0;
    for (size_t i = 0; i < n; i++) {
        right -= (size_t)it[i].right;
        recalled += (size_t)(it[i].oos_truth && !it[i].oos_won);
        if (i + 1 < n && it[i + 1].conf == it[i].conf)
            continue;
        if ((double)right / (double)n_in < floor)
            break;
        if ((double)recalled / (double)n_oos > best_rec) {
            best_rec = (double)recalled / (double)n_oos;
            best_t = i + 1 < n ? 0.5 * (it[i].conf + it[i + 1].conf) : it[i].conf + 1e-9;
        }
    }
    return best_t;
}

void nlu_tune_opts_init(nlu_tune_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->max_drop = 0.005;
}

int nlu_tune(nlu_model_t *m, const nlu_example_t *val, size_t n_val, const nlu_tune_opts_t *opts,
             nlu_tune_report_t *rep, core_err_t *err)
{
    nlu_tune_opts_t def;
    nlu__pool_t p;
    if (opts == NULL) {
        nlu_tune_opts_init(&def);
        opts = &def;
    }
    int rc = nlu__pool_build(&p, m, val, n_val, opts, err);
    if (rc == 0) {
        m->temp = nlu__fit_temperature(&p);
        /* Calibration needs only labelled in-scope examples; the threshold
         * needs out-of-scope ones to weigh what it catches. */
        if (p.n_oos > 0) {
            nlu__item_t *it = core_xcalloc(p.n + 1, sizeof(*it));
            for (size_t i = 0; i < p.n; i++)
                nlu__pool_decide(&p, i, m->temp, &it[i]);
            nlu_model_set_threshold(m, nlu__sweep(it, p.n, opts->max_drop));
            free(it);
        }
        if (rep != NULL) {
            rep->threshold = m->threshold;
            rep->temperature = m->temp;
            rep->threshold_tuned = p.n_oos > 0;
            rep->folds = p.folds;
            rep->n_pooled = p.n;
        }
    }
    nlu__pool_dispose(&p);
    return rc;
}

int nlu_tune_threshold(nlu_model_t *m, const nlu_example_t *val, size_t n, const char *oos_label,
                       double max_drop, double *out, core_err_t *err)
{
    const char *oos = oos_label ? oos_label : "oos";
    size_t n_oos = 0;
    for (size_t i = 0; i < n; i++)
        n_oos += val[i].intent != NULL && strcmp(val[i].intent, oos) == 0;
    if (n_oos == 0 || n_oos == n) /* both kinds, or the model stays as it is */
        return core_err_set(err, CORE_ERR_INVALID,
                            "tuning the threshold needs in-scope and out-of-scope (\"%s\") "
                            "examples; got %zu and %zu",
                            oos, n - n_oos, n_oos);
    nlu_tune_opts_t o;
    nlu_tune_opts_init(&o);
    o.oos_label = oos_label;
    o.max_drop = max_drop;
    int rc = nlu_tune(m, val, n, &o, NULL, err);
    if (rc == 0 && out != NULL)
        *out = m->threshold;
    return rc;
}
