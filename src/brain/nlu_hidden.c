/* nlu_hidden.c — the router's hidden layer: a small network of ReLU units
 * over the word view (words and word bigrams, weighted as the linear model
 * weighs them), trained by stochastic gradient descent on the softmax loss,
 * whose outputs are added to the linear model's class scores with a small
 * weight.
 *
 * Why: a linear model scores each feature on its own. The hidden units
 * learn combinations of words, and the blend routes more utterances right:
 * 0.3 points more of CLINC150's validation split on three seeds, 0.1 more
 * of its training split scored out of fold (docs/nlu.md, "Ninth round").
 * The word view alone does as well as all the features, and has a tenth of
 * their number per utterance, so the layer adds about a second to training
 * and a microsecond or two to routing.
 *
 * No biases: an utterance with no word the examples had gets nothing from
 * the layer, and one with few gets little, as from the linear model (an
 * unknown word counts in its view's norm).
 *
 * Only for example sets of a thousand or more: with fewer, the units learn
 * the few words each intent has and lend a name typed where no flow waits
 * for one the confidence of an intent (test_flow_oos.c).
 *
 * Deterministic: the initial weights and the visiting order come from the
 * seed (splitmix64) and every step runs in the same order, so the same
 * examples and seed give the same layer. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "brain/nlu_int.h"

/* A class whose probability is below this leaves its weights alone in a
 * step: its gradient would move them by less than rounding does, and
 * skipping it makes the backward pass cost a few classes, not all. */
#define SKIP_PROB 1e-4f

/* A uniform float in [-1, 1) from the generator. */
static float uniform(uint64_t *s)
{
    return (float)((double)(nlu__rng_next(s) >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}

/* dot(x, y) over n floats, n a multiple of 8, both 32-byte aligned. */
static inline float dot8(const float *x, const float *y, uint32_t n)
{
    nlu__v8 acc = {0};
    for (uint32_t c = 0; c < n; c += 8)
        acc += *(const nlu__v8 *)(const void *)(x + c) * *(const nlu__v8 *)(const void *)(y + c);
    float s = 0;
    for (int j = 0; j < 8; j++)
        s += acc[j];
    return s;
}

void nlu__hidden_rows(nlu_model_t *m)
{
    free(m->hrow);
    m->hrow = core_xmalloc((m->n_feat + 1) * sizeof(uint32_t));
    m->n_hrow = 0;
    for (uint32_t f = 0; f < m->n_feat; f++)
        m->hrow[f] = m->fview[f] == NLU__VIEW_WORD ? m->n_hrow++ : UINT32_MAX;
}

typedef struct net_s {
    uint32_t units, n_class;
    const uint32_t *hrow;
    float *w1;  /* n_hrow * units */
    float *w2;  /* n_class * units: a row per class while training */
    float *h;   /* units: the example's activations */
    float *gh;  /* units: the loss's gradient on them */
    float *out; /* n_class: scores, then probabilities */
} net_t;

/* One SGD step on example i of x. */
NLU__HOT static void net_step(net_t *n, const nlu__csr_t *x, size_t i, uint32_t label, float rate)
{
    uint32_t u_n = n->units, k = n->n_class;
    memset(n->h, 0, u_n * sizeof(float));
    for (size_t p = x->start[i]; p < x->start[i + 1]; p++) {
        uint32_t r = n->hrow[x->idx[p]];
        if (r != UINT32_MAX)
            nlu__axpy(n->h, n->w1 + (size_t)r * u_n, x->val[p], u_n);
    }
    for (uint32_t u = 0; u < u_n; u++)
        n->h[u] = n->h[u] > 0 ? n->h[u] : 0;
    float mx = -INFINITY, sum = 0;
    for (uint32_t c = 0; c < k; c++) {
        n->out[c] = dot8(n->w2 + (size_t)c * u_n, n->h, u_n);
        mx = n->out[c] > mx ? n->out[c] : mx;
    }
    for (uint32_t c = 0; c < k; c++) {
        n->out[c] = expf(n->out[c] - mx);
        sum += n->out[c];
    }
    /* the softmax's gradient, p - onehot(label), class by class: each
     * class's old weights go into the units' gradient before it moves */
    memset(n->gh, 0, u_n * sizeof(float));
    for (uint32_t c = 0; c < k; c++) {
        float g = n->out[c] / sum - (c == label ? 1.0f : 0.0f);
        if (c != label && g < SKIP_PROB)
            continue;
        float *w2 = n->w2 + (size_t)c * u_n;
        nlu__axpy(n->gh, w2, g, u_n);
        nlu__axpy(w2, n->h, -rate * g, u_n);
    }
    for (uint32_t u = 0; u < u_n; u++)
        n->gh[u] = n->h[u] > 0 ? n->gh[u] : 0;
    for (size_t p = x->start[i]; p < x->start[i + 1]; p++) {
        uint32_t r = n->hrow[x->idx[p]];
        if (r != UINT32_MAX)
            nlu__axpy(n->w1 + (size_t)r * u_n, n->gh, -rate * x->val[p], u_n);
    }
}

void nlu__hidden_fit(nlu_model_t *m, const nlu__csr_t *x, const uint32_t *label, uint64_t seed,
                     const nlu__hidden_hyper_t *hp)
{
    uint32_t u_n = hp->units, k = m->n_class;
    if (u_n == 0 || hp->epochs <= 0 || x->n < hp->min_examples)
        return;
    nlu__hidden_rows(m);
    net_t n = {.units = u_n, .n_class = k, .hrow = m->hrow};
    n.w1 = nlu__walloc((size_t)m->n_hrow * u_n);
    n.w2 = nlu__walloc((size_t)k * u_n);
    n.h = nlu__walloc(u_n);
    n.gh = nlu__walloc(u_n);
    n.out = nlu__walloc(k);
    /* small input weights (the word view is a unit vector), Glorot-uniform
     * output weights; a stream of its own so the SVM's order is untouched */
    uint64_t rs = seed ^ 0x68696464656e2121ull;
    for (size_t j = 0; j < (size_t)m->n_hrow * u_n; j++)
        n.w1[j] = 0.1f * uniform(&rs);
    float g = (float)sqrt(6.0 / (u_n + k));
    for (size_t j = 0; j < (size_t)k * u_n; j++)
        n.w2[j] = g * uniform(&rs);
    size_t *order = core_xmalloc((x->n + 1) * sizeof(size_t));
    for (size_t i = 0; i < x->n; i++)
        order[i] = i;
    for (int ep = 0; ep < hp->epochs; ep++) {
        nlu__shuffle(order, x->n, &rs);
        float rate = (float)(hp->rate * (1.0 - (double)ep / hp->epochs));
        for (size_t j = 0; j < x->n; j++)
            net_step(&n, x, order[j], label[order[j]], rate);
    }
    /* routing's layout is a row per unit, times the blend weight: the
     * active units add their rows to the class scores as they are */
    m->hidden = u_n;
    m->hw = n.w1;
    m->hout = nlu__walloc((size_t)u_n * m->stride);
    for (uint32_t c = 0; c < k; c++)
        for (uint32_t u = 0; u < u_n; u++)
            m->hout[(size_t)u * m->stride + c] = (float)hp->blend * n.w2[(size_t)c * u_n + u];
    free(n.w2);
    free(n.h);
    free(n.gh);
    free(n.out);
    free(order);
}

void nlu__hidden_quantize(nlu_model_t *m)
{
    uint32_t u_n = m->hidden;
    if (u_n == 0 || m->hw == NULL)
        return;
    m->hwq = core_xcalloc((size_t)m->n_hrow * u_n + 1, 1);
    m->hwscale = core_xmalloc((m->n_hrow + 1) * sizeof(float));
    nlu__quantize_rows(m->hw, m->n_hrow, u_n, u_n, m->hwq, m->hwscale);
    free(m->hw);
    m->hw = NULL;
}

/* The units' inputs: each word-view feature adds its row of weights. */
NLU__HOT static void hidden_in(const nlu_model_t *m, const nlu__vec_t *v, float *h)
{
    uint32_t u_n = m->hidden;
    for (size_t i = 0; i < v->len; i++) {
        uint32_t r = m->hrow[v->idx[i]];
        if (r != UINT32_MAX)
            nlu__axpy_q(h, m->hwq + (size_t)r * u_n, v->val[i] * m->hwscale[r], u_n);
    }
}

/* The output layer: each active unit adds its row of class weights. */
NLU__HOT static void hidden_out(const nlu_model_t *m, const float *h, float *scores)
{
    for (uint32_t u = 0; u < m->hidden; u++)
        if (h[u] > 0)
            nlu__axpy(scores, m->hout + (size_t)u * m->stride, h[u], m->stride);
}

/* Not a clone itself: clang links callers of an extern target_clones
 * function that see a plain declaration to nothing. Its loops are clones. */
void nlu__hidden_scores(const nlu_model_t *m, const nlu__vec_t *v, float *scores)
{
    if (m->hidden == 0)
        return;
    float h[NLU__HIDDEN_MAX] __attribute__((aligned(32)));
    memset(h, 0, m->hidden * sizeof(float));
    hidden_in(m, v, h);
    hidden_out(m, h, scores);
}
