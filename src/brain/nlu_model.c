/* nlu_model.c — a trained intent model: routing, accessors, the training
 * hash (the disk cache key) and the byte format it is cached in. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define LOG_MODULE "nlu"
#include "brain/nlu_int.h"

nlu_model_t *nlu__model_new(uint32_t n_class)
{
    nlu_model_t *m = core_xcalloc(1, sizeof(*m));
    m->n_class = n_class;
    m->oos_class = -1;
    m->names = core_xcalloc(n_class, sizeof(char *));
    m->stride = (n_class + 7) & ~7u;
    m->bias = nlu__walloc(m->stride);
    m->temp = 1.0;
    return m;
}

float *nlu__walloc(size_t n)
{
    size_t bytes = (n * sizeof(float) + 31) & ~(size_t)31;
    float *p = aligned_alloc(32, bytes ? bytes : 32);
    if (p == NULL) {
        LOG_ERROR("msg=\"out of memory\" bytes=%zu", bytes);
        abort();
    }
    memset(p, 0, bytes);
    return p;
}

void nlu_model_free(nlu_model_t *m)
{
    if (m == NULL)
        return;
    for (uint32_t i = 0; i < m->n_class; i++)
        free(m->names[i]);
    free(m->names);
    nlu__ftab_dispose(&m->ftab);
    free(m->fview);
    free(m->idf);
    free(m->w);
    free(m->wq);
    free(m->wscale);
    free(m->bias);
    free(m->hrow);
    free(m->hw);
    free(m->hwq);
    free(m->hwscale);
    free(m->hout);
    free(m);
}

void nlu_train_opts_init(nlu_train_opts_t *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->seed = 1;
    opts->oos_label = NULL;
    opts->oos_threshold = -1.0;
}

double nlu_model_threshold(const nlu_model_t *m)
{
    return m->threshold;
}

double nlu_model_temperature(const nlu_model_t *m)
{
    return m->temp;
}

void nlu_model_set_threshold(nlu_model_t *m, double threshold)
{
    m->threshold = threshold < 0 ? 0 : threshold > 1 ? 1 : threshold;
}

size_t nlu_model_intent_count(const nlu_model_t *m)
{
    return m->n_class - (m->oos_class >= 0 ? 1u : 0u);
}

/* In-scope intents are numbered in class order with the oos class skipped. */
const char *nlu_model_intent(const nlu_model_t *m, size_t i)
{
    if (m->oos_class >= 0 && i >= (size_t)m->oos_class)
        i++;
    return i < m->n_class ? m->names[i] : NULL;
}

/* ---- routing ------------------------------------------------------------ */

#if defined(__x86_64__)
#include <immintrin.h>

/* AVX2: 8 weights at a time, sign-extended and converted in two instructions. */
__attribute__((target("avx2,fma"))) static void scores_avx2(const nlu_model_t *m,
                                                            const nlu__vec_t *v, float *scores)
{
    uint32_t st = m->stride;
    for (size_t i = 0; i < v->len; i++) {
        const int8_t *row = m->wq + (size_t)v->idx[i] * st;
        __m256 a = _mm256_set1_ps(v->val[i] * m->wscale[v->idx[i]]);
        for (uint32_t c = 0; c < st; c += 8) {
            __m128i q = _mm_loadl_epi64((const __m128i *)(const void *)(row + c));
            __m256 w = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
            __m256 y = _mm256_load_ps(scores + c);
            _mm256_store_ps(scores + c, _mm256_fmadd_ps(a, w, y));
        }
    }
}
#endif

void nlu__scores(const nlu_model_t *m, const nlu__vec_t *v, float *scores)
{
    memcpy(scores, m->bias, m->stride * sizeof(float));
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        scores_avx2(m, v, scores);
        nlu__hidden_scores(m, v, scores);
        return;
    }
#endif
    for (size_t i = 0; i < v->len; i++)
        nlu__axpy_q(scores, m->wq + (size_t)v->idx[i] * m->stride, v->val[i] * m->wscale[v->idx[i]],
                    m->stride);
    nlu__hidden_scores(m, v, scores);
}

void nlu__quantize(nlu_model_t *m)
{
    size_t nf = m->n_feat, st = m->stride;
    m->wq = core_xcalloc(nf * st + 1, 1);
    m->wscale = core_xmalloc((nf + 1) * sizeof(float));
    nlu__quantize_rows(m->w, nf, m->n_class, st, m->wq, m->wscale);
    free(m->w);
    m->w = NULL;
}

void nlu__quantize_rows(const float *w, size_t rows, uint32_t len, uint32_t ld, int8_t *q,
                        float *scale)
{
    for (size_t r = 0; r < rows; r++) {
        const float *row = w + r * ld;
        float mx = 0;
        for (uint32_t i = 0; i < len; i++)
            mx = fabsf(row[i]) > mx ? fabsf(row[i]) : mx;
        scale[r] = mx > 0 ? mx / 127.0f : 0.0f;
        float inv = mx > 0 ? 127.0f / mx : 0.0f;
        for (uint32_t i = 0; i < len; i++)
            q[r * ld + i] = nlu__round_weight(row[i] * inv);
    }
}

/* Softmax of temp * scores, in place. */
void nlu__softmax(float *s, uint32_t k, double temp)
{
    float mx = s[0];
    for (uint32_t c = 1; c < k; c++)
        if (s[c] > mx)
            mx = s[c];
    double sum = 0;
    for (uint32_t c = 0; c < k; c++) {
        s[c] = expf((float)temp * (s[c] - mx));
        sum += s[c];
    }
    for (uint32_t c = 0; c < k; c++)
        s[c] = (float)(s[c] / sum);
}

static void top_k(const nlu_model_t *m, const float *p, nlu_result_t *out)
{
    out->n_top = 0;
    for (uint32_t c = 0; c < m->n_class; c++) {
        if ((int32_t)c == m->oos_class)
            continue;
        size_t pos = out->n_top;
        while (pos > 0 && out->top[pos - 1].score < p[c])
            pos--;
        if (pos >= NLU_TOP_K)
            continue;
        size_t last = out->n_top < NLU_TOP_K ? out->n_top : NLU_TOP_K - 1;
        memmove(&out->top[pos + 1], &out->top[pos], (last - pos) * sizeof(out->top[0]));
        out->top[pos].intent = m->names[c];
        out->top[pos].score = p[c];
        if (out->n_top < NLU_TOP_K)
            out->n_top++;
    }
}

int nlu_route(const nlu_model_t *m, const char *text, size_t len, const ent_ctx_t *ctx,
              nlu_result_t *out)
{
    static _Thread_local nlu__vec_t v;
    float p[NLU__CLASSES_MAX] __attribute__((aligned(32)));
    if (out == NULL)
        return CORE_ERR_INVALID;
    out->n_top = 0;
    out->confidence = 0;
    out->out_of_scope = 1;
    out->entities.len = 0;
    if (m == NULL || (text == NULL && len > 0))
        return CORE_ERR_INVALID;
    nlu__vectorize(m, text, len, &v);
    nlu__scores(m, &v, p);
    uint32_t best = 0;
    for (uint32_t c = 1; c < m->n_class; c++)
        if (p[c] > p[best])
            best = c;
    nlu__softmax(p, m->n_class, m->temp);
    top_k(m, p, out);
    out->confidence = out->n_top ? out->top[0].score : 0;
    /* Text sharing no feature with the training data is out of scope
     * whatever the biases say. */
    out->out_of_scope =
        v.len == 0 || (int32_t)best == m->oos_class || out->confidence < m->threshold;
    if (ctx != NULL && len > 0)
        ent_extract(text, len, ctx, &out->entities);
    return 0;
}

/* ---- training hash ------------------------------------------------------ */

static void hash_bytes(EVP_MD_CTX *c, const void *p, size_t n)
{
    uint64_t n64 = n;
    EVP_DigestUpdate(c, &n64, sizeof(n64));
    if (n)
        EVP_DigestUpdate(c, p, n);
}

void nlu_training_hash(const nlu_example_t *examples, size_t n, const nlu_train_opts_t *opts,
                       char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    nlu_train_opts_t def;
    if (opts == NULL) {
        nlu_train_opts_init(&def);
        opts = &def;
    }
    const char *oos = opts->oos_label ? opts->oos_label : "oos";
    uint32_t version = NLU__VERSION;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c == NULL) {
        LOG_ERROR("msg=\"out of memory\" what=sha256");
        abort();
    }
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    hash_bytes(c, "chorus-nlu", 10);
    hash_bytes(c, &version, sizeof(version));
    hash_bytes(c, &opts->seed, sizeof(opts->seed));
    hash_bytes(c, &opts->oos_threshold, sizeof(opts->oos_threshold));
    hash_bytes(c, oos, strlen(oos));
    for (size_t i = 0; i < n; i++) {
        const char *t = examples[i].text ? examples[i].text : "";
        const char *l = examples[i].intent ? examples[i].intent : "";
        hash_bytes(c, t, strlen(t));
        hash_bytes(c, l, strlen(l));
    }
    EVP_DigestFinal_ex(c, md, &mdlen);
    EVP_MD_CTX_free(c);
    core_hex_encode(md, mdlen < 32 ? mdlen : 32, out);
}
