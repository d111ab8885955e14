/* nlu_int.h — shared inside the intent router: text normalisation and
 * feature extraction (nlu_text.c), the trained model's layout (nlu_model.c),
 * training (nlu_train.c), the hidden layer blended into the linear scores
 * (nlu_hidden.c), calibration and threshold tuning (nlu_tune.c).
 * See docs/nlu.md for the design and the figures behind each choice. */
#ifndef CHORUS_NLU_INT_H
#define CHORUS_NLU_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "chorus/nlu.h"

/* Bumped whenever features, training or the file layout change: it is part
 * of the training hash, so a cached model from older code is never reused. */
#define NLU__VERSION 7u

#define NLU__TEXT_MAX 2048 /* bytes of an utterance that are classified */
#define NLU__TOKENS_MAX 128
#define NLU__FEATS_MAX 2048 /* distinct features of one utterance */

/* Feature views: each is L2-normalised on its own, then scaled. */
enum { NLU__VIEW_WORD = 0, NLU__VIEW_CHAR = 1, NLU__VIEWS = 2 };

enum {
    NLU__F_BIGRAMS = 1,      /* word bigrams, with the utterance's edges */
    NLU__F_SKIPGRAMS = 2,    /* word pairs one word apart */
    NLU__F_TRIGRAMS = 4,     /* word trigrams */
    NLU__F_CHAR_IN_WORD = 8, /* character n-grams stop at word boundaries */
    NLU__F_ALL = 15
};

/* The feature settings, stored in the model so that routing extracts exactly
 * what training saw. */
typedef struct nlu__fcfg_s {
    uint32_t char_min, char_max; /* character n-gram lengths, in code points */
    uint32_t flags;              /* NLU__F_* */
    float view_scale[NLU__VIEWS];
} nlu__fcfg_t;

/* A normalised utterance: folded text with single spaces between tokens. */
typedef struct nlu__text_s {
    char buf[NLU__TEXT_MAX * 3 + 8]; /* folding can grow text */
    size_t len;
    size_t tok_off[NLU__TOKENS_MAX], tok_len[NLU__TOKENS_MAX];
    size_t n_tok;
} nlu__text_t;

/* One raw feature: a 64-bit hash (never 0), its view and its count. */
typedef struct nlu__rawfeat_s {
    uint64_t hash;
    uint32_t view;
    float count;
} nlu__rawfeat_t;

typedef struct nlu__feats_s {
    nlu__rawfeat_t items[NLU__FEATS_MAX];
    size_t len;
} nlu__feats_t;

/* Folds and tokenises len bytes of text (invalid UTF-8 bytes separate
 * tokens; input past NLU__TEXT_MAX is ignored). */
void nlu__normalize(const char *text, size_t len, nlu__text_t *out);
/* Extracts the distinct hashed features of a normalised utterance. */
void nlu__features(const nlu__text_t *t, const nlu__fcfg_t *cfg, nlu__feats_t *out);

/* Feature hash -> dense index, open addressing; keys are never 0. */
typedef struct nlu__fslot_s {
    uint64_t key;
    uint32_t val;
} nlu__fslot_t;

typedef struct nlu__ftab_s {
    nlu__fslot_t *slot; /* key and value side by side: one cache miss a probe */
    size_t cap;         /* power of two */
    size_t len;
} nlu__ftab_t;

void nlu__ftab_init(nlu__ftab_t *t, size_t expect);
void nlu__ftab_dispose(nlu__ftab_t *t);
/* Returns the index of key, adding it as len if absent. */
uint32_t nlu__ftab_put(nlu__ftab_t *t, uint64_t key);
/* Returns the index of key or UINT32_MAX. */
uint32_t nlu__ftab_get(const nlu__ftab_t *t, uint64_t key);

/* A sparse, weighted feature vector of one utterance. */
typedef struct nlu__vec_s {
    uint32_t idx[NLU__FEATS_MAX];
    float val[NLU__FEATS_MAX];
    size_t len;
} nlu__vec_t;

struct nlu_model_s {
    nlu__fcfg_t fcfg;
    uint32_t n_class;  /* including the out-of-scope class if any */
    uint32_t stride;   /* n_class rounded up to a multiple of 8: one weight row */
    int32_t oos_class; /* index of the out-of-scope class, -1 if none */
    char **names;      /* n_class owned names */
    double threshold;  /* confidence below this is out of scope */
    double temp;       /* softmax temperature applied to the scores */
    nlu__ftab_t ftab;
    uint32_t n_feat;
    uint8_t *fview;   /* n_feat: the view of each feature */
    float *idf;       /* n_feat */
    float idf_unseen; /* the idf a feature no training example had: unseen
                       * features count in their view's norm */
    float *w;         /* n_feat * stride, row per feature, 32-byte aligned; training only */
    int8_t *wq;       /* n_feat * stride: w quantised per row, what routing reads */
    float *wscale;    /* n_feat: wq[f][c] * wscale[f] ~ w[f][c] */
    float *bias;      /* stride, 32-byte aligned */
    /* The hidden layer (nlu_hidden.c): ReLU units over the word view,
     * whose outputs add to the class scores. hidden == 0: none. */
    uint32_t hidden; /* units, a multiple of 8 */
    uint32_t n_hrow; /* word-view features: the layer's inputs */
    uint32_t *hrow;  /* n_feat: a feature's input row, UINT32_MAX if none */
    float *hw;       /* n_hrow * hidden: input weights; training only */
    int8_t *hwq;     /* n_hrow * hidden: hw quantised per row, what routing reads */
    float *hwscale;  /* n_hrow */
    float *hout;     /* hidden * stride: each unit's weights on the classes, 32-byte aligned */
};

/* Training examples as sparse rows (CSR): the weighted, normalised vectors
 * training fits. */
typedef struct nlu__csr_s {
    size_t n;
    size_t *start; /* n + 1 */
    uint32_t *idx;
    float *val;
    float *sqnorm; /* n: squared norm of each row */
} nlu__csr_t;

/* ---- the hidden layer (nlu_hidden.c) ---- */

#define NLU__HIDDEN_MAX 512 /* units a model may have */

typedef struct nlu__hidden_hyper_s {
    uint32_t units;      /* a multiple of 8; 0 trains none */
    int epochs;          /* passes of SGD over the examples */
    double rate;         /* learning rate of the first pass, decaying linearly to 0 */
    double blend;        /* its share of the class scores */
    size_t min_examples; /* fewer training examples train no layer */
} nlu__hidden_hyper_t;

/* Fits the hidden layer to the examples x (labels 0..n_class) with the
 * softmax loss, in an order drawn from seed; nothing with fewer than
 * hp->min_examples. Leaves hw for nlu__hidden_quantize. */
void nlu__hidden_fit(nlu_model_t *m, const nlu__csr_t *x, const uint32_t *label, uint64_t seed,
                     const nlu__hidden_hyper_t *hp);
/* Numbers the word-view features as the layer's input rows (m->hrow). */
void nlu__hidden_rows(nlu_model_t *m);
/* Quantises hw into hwq/hwscale (as nlu__quantize does the linear weights)
 * and frees hw. */
void nlu__hidden_quantize(nlu_model_t *m);
/* Adds the hidden layer's output for v to scores[stride]; nothing when the
 * model has none. */
void nlu__hidden_scores(const nlu_model_t *m, const nlu__vec_t *v, float *scores);

/* lrintf() for |v| <= 127 in the default rounding mode (to nearest, ties
 * to even), without a library call per weight so the loop vectorises:
 * adding 1.5 * 2^23 pushes every fraction bit out of the float, and the
 * FPU rounds that addition exactly as lrintf would. Bit-identical models. */
static inline int8_t nlu__round_weight(float v)
{
    const float magic = 12582912.0f;
    return (int8_t)(int)((v + magic) - magic);
}

/* Turns an utterance into the model's weighted vector (unknown features are
 * dropped). */
void nlu__vectorize(const nlu_model_t *m, const char *text, size_t len, nlu__vec_t *out);
/* Raw class scores for a vector into scores[n_class]. */
void nlu__scores(const nlu_model_t *m, const nlu__vec_t *v, float *scores);

/* Softmax of temp * s[0..k), in place (routing's arithmetic). */
void nlu__softmax(float *s, uint32_t k, double temp);

nlu_model_t *nlu__model_new(uint32_t n_class);
/* Quantises m->w into wq/wscale (8 bits a weight, a scale per row) and
 * frees w: routing reads a quarter of the bytes. */
void nlu__quantize(nlu_model_t *m);
/* Quantises rows floats of len each (row r at w + r * ld) to 8 bits with a
 * scale per row: q[r * ld + i] * scale[r] ~ w[r * ld + i]. */
void nlu__quantize_rows(const float *w, size_t rows, uint32_t len, uint32_t ld, int8_t *q,
                        float *scale);

#define NLU__CLASSES_MAX NLU_INTENTS_MAX
#define NLU__NAME_MAX NLU_INTENT_NAME_MAX

/* Zeroed, 32-byte aligned floats for weight rows (aborts when out of memory). */
float *nlu__walloc(size_t n);

/* ---- tuning (nlu_tune.c) ---- */

#define NLU__FOLDS_MAX 20

/* splitmix64: small, fast and the same on every platform, so training and
 * the tuning folds repeat for a seed. */
static inline uint64_t nlu__rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Shuffles order[0..n) in place (Fisher-Yates), drawing from *seed. */
static inline void nlu__shuffle(size_t *order, size_t n, uint64_t *seed)
{
    for (size_t i = 0; i + 1 < n; i++) {
        size_t j = i + (size_t)(nlu__rng_next(seed) % (n - i));
        size_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

/* The key of an intent name in an nlu__ftab_t (FNV-1a, never 0). */
static inline uint64_t nlu__name_key(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h ? h : 1;
}

/* Examples scored for calibration, in the tuned model's class order: the
 * validation set by the model itself (source 0) and, with folds, each
 * training example by the model of the folds without it (source f + 1). */
typedef struct nlu__pool_s {
    uint32_t stride, n_class;
    int32_t oos_class;
    nlu__ftab_t names; /* the tuned model's class names, hashed */
    size_t n, cap;
    float *scores;  /* n * stride raw scores */
    int32_t *label; /* the tuned model's class of each example, -1 if none */
    uint8_t *oos;   /* labelled out of scope */
    uint8_t *empty; /* no feature known to the model that scored it */
    uint8_t *src;
    size_t n_oos;   /* examples labelled out of scope */
    unsigned folds; /* fold models trained */
} nlu__pool_t;

/* One pool example as routing sees it with no threshold. */
typedef struct nlu__item_s {
    double conf;
    int oos_truth; /* labelled out of scope */
    int right;     /* in scope and the top intent is the label */
    int oos_won;   /* out of scope whatever the threshold */
    int src;
} nlu__item_t;

int nlu__pool_build(nlu__pool_t *p, const nlu_model_t *m, const nlu_example_t *val, size_t n_val,
                    const nlu_tune_opts_t *o, core_err_t *err);
void nlu__pool_init(nlu__pool_t *p, const nlu_model_t *m);
void nlu__pool_dispose(nlu__pool_t *p);
/* The temperature that minimises the log loss of the pool's labelled examples. */
double nlu__fit_temperature(const nlu__pool_t *p);
void nlu__pool_decide(const nlu__pool_t *p, size_t i, double temp, nlu__item_t *it);
/* The threshold sweep under the budget (sorts it). */
double nlu__sweep(nlu__item_t *it, size_t n, double max_drop);

typedef float nlu__v8 __attribute__((vector_size(32)));

/* Hot loops get an AVX2 clone picked at load time, and a portable default. */
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define NLU__HOT __attribute__((target_clones("avx2", "default")))
#else
#define NLU__HOT
#endif

typedef int8_t nlu__i8x8 __attribute__((vector_size(8)));

/* y[0..n) += a * q[0..n), q 8-bit; n a multiple of 8, y 32-byte aligned. */
static inline void nlu__axpy_q(float *y, const int8_t *q, float a, uint32_t n)
{
    for (uint32_t c = 0; c < n; c += 8) {
        nlu__i8x8 qv;
        memcpy(&qv, q + c, sizeof(qv));
        nlu__v8 yv = *(nlu__v8 *)(void *)(y + c);
        yv += a * __builtin_convertvector(qv, nlu__v8);
        *(nlu__v8 *)(void *)(y + c) = yv;
    }
}

/* y[0..n) += a * x[0..n), n a multiple of 8, both 32-byte aligned. */
static inline void nlu__axpy(float *y, const float *x, float a, uint32_t n)
{
    for (uint32_t c = 0; c < n; c += 8) {
        nlu__v8 yv = *(nlu__v8 *)(void *)(y + c);
        yv += a * *(const nlu__v8 *)(const void *)(x + c);
        *(nlu__v8 *)(void *)(y + c) = yv;
    }
}

#endif
