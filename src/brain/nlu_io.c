/* nlu_io.c — the byte format a trained model is cached in. Native byte
 * order with a marker (a cache is read back on the machine that wrote it);
 * load trusts nothing: every count, index and number is checked. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "brain/nlu_int.h"

static const char magic[8] = {'C', 'H', 'N', 'L', 'U', 'M', 'D', 'L'};
static const uint32_t order_mark = 0x01020304u;

typedef struct reader_s {
    const uint8_t *p;
    size_t left;
} reader_t;

static int get(reader_t *r, void *dst, size_t n)
{
    if (r->left < n)
        return -1;
    memcpy(dst, r->p, n);
    r->p += n;
    r->left -= n;
    return 0;
}

int nlu_model_save(const nlu_model_t *m, core_buf_t *out)
{
    uint32_t hdr[5] = {order_mark, NLU__VERSION, m->n_class, (uint32_t)m->oos_class, m->n_feat};
    int rc = core_buf_append(out, magic, sizeof(magic));
    rc = rc ? rc : core_buf_append(out, hdr, sizeof(hdr));
    rc = rc ? rc : core_buf_append(out, &m->fcfg, sizeof(m->fcfg));
    rc = rc ? rc : core_buf_append(out, &m->threshold, sizeof(double));
    rc = rc ? rc : core_buf_append(out, &m->temp, sizeof(double));
    rc = rc ? rc : core_buf_append(out, &m->idf_unseen, sizeof(float));
    for (uint32_t c = 0; c < m->n_class && rc == 0; c++) {
        uint32_t len = (uint32_t)strlen(m->names[c]);
        rc = core_buf_append(out, &len, sizeof(len));
        rc = rc ? rc : core_buf_append(out, m->names[c], len);
    }
    /* keys in index order: load rebuilds the table */
    uint64_t *keys = core_xcalloc(m->n_feat + 1, sizeof(uint64_t));
    for (size_t i = 0; i < m->ftab.cap; i++)
        if (m->ftab.slot[i].key != 0)
            keys[m->ftab.slot[i].val] = m->ftab.slot[i].key;
    rc = rc ? rc : core_buf_append(out, keys, m->n_feat * sizeof(uint64_t));
    free(keys);
    rc = rc ? rc : core_buf_append(out, m->fview, m->n_feat);
    rc = rc ? rc : core_buf_append(out, m->idf, m->n_feat * sizeof(float));
    /* the quantised weights, as floats: loading quantises them back exactly */
    float *row = core_xmalloc((m->n_class + 1) * sizeof(float));
    for (size_t j = 0; j < m->n_feat && rc == 0; j++) {
        for (uint32_t c = 0; c < m->n_class; c++)
            row[c] = m->wq[j * m->stride + c] * m->wscale[j];
        rc = core_buf_append(out, row, m->n_class * sizeof(float));
    }
    free(row);
    rc = rc ? rc : core_buf_append(out, m->bias, m->n_class * sizeof(float));
    /* the hidden layer: its units, their output weights, then the
     * quantised input weights as they are (scale per row, then bytes) */
    rc = rc ? rc : core_buf_append(out, &m->hidden, sizeof(m->hidden));
    if (m->hidden > 0) {
        for (uint32_t u = 0; u < m->hidden && rc == 0; u++)
            rc = core_buf_append(out, m->hout + (size_t)u * m->stride, m->n_class * sizeof(float));
        rc = rc ? rc : core_buf_append(out, m->hwscale, m->n_hrow * sizeof(float));
        rc = rc ? rc : core_buf_append(out, m->hwq, (size_t)m->n_hrow * m->hidden);
    }
    return rc;
}

static int finite_all(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return 0;
    return 1;
}

static int load_names(reader_t *r, nlu_model_t *m, core_err_t *err)
{
    for (uint32_t c = 0; c < m->n_class; c++) {
        uint32_t len;
        if (get(r, &len, sizeof(len)) || len == 0 || len > NLU__NAME_MAX || len > r->left)
            return core_err_set(err, CORE_ERR_INVALID, "model: bad intent name %u", c);
        m->names[c] = core_xstrndup((const char *)r->p, len);
        if (strlen(m->names[c]) != len)
            return core_err_set(err, CORE_ERR_INVALID, "model: NUL in intent name %u", c);
        r->p += len;
        r->left -= len;
    }
    return 0;
}

static int load_arrays(reader_t *r, nlu_model_t *m, core_err_t *err)
{
    size_t nf = m->n_feat, k = m->n_class;
    /* every array's size is checked before anything is allocated; nf is
     * bounded by the bytes present, so the products cannot overflow */
    if (nf > r->left ||
        nf * (sizeof(uint64_t) + 1 + sizeof(float) + k * sizeof(float)) + k * sizeof(float) >
            r->left)
        return core_err_set(err, CORE_ERR_INVALID, "model: size does not match its header");
    nlu__ftab_init(&m->ftab, nf);
    for (size_t i = 0; i < nf; i++) {
        uint64_t key = 0;
        get(r, &key, sizeof(key));
        if (key == 0 || nlu__ftab_put(&m->ftab, key) != i)
            return core_err_set(err, CORE_ERR_INVALID, "model: bad feature key %zu", i);
    }
    m->fview = core_xmalloc(nf + 1);
    get(r, m->fview, nf);
    for (size_t i = 0; i < nf; i++)
        if (m->fview[i] >= NLU__VIEWS)
            return core_err_set(err, CORE_ERR_INVALID, "model: bad feature view %zu", i);
    m->idf = core_xmalloc((nf + 1) * sizeof(float));
    m->w = nlu__walloc(nf * m->stride);
    get(r, m->idf, nf * sizeof(float));
    for (size_t j = 0; j < nf; j++)
        get(r, m->w + j * m->stride, k * sizeof(float));
    get(r, m->bias, k * sizeof(float));
    if (!finite_all(m->idf, nf) || !finite_all(m->w, nf * m->stride) || !finite_all(m->bias, k))
        return core_err_set(err, CORE_ERR_INVALID, "model: non-finite weight");
    nlu__quantize(m);
    return 0;
}

static int load_hidden(reader_t *r, nlu_model_t *m, core_err_t *err)
{
    uint32_t u_n;
    size_t k = m->n_class;
    if (get(r, &u_n, sizeof(u_n)) || u_n % 8 != 0 || u_n > NLU__HIDDEN_MAX)
        return core_err_set(err, CORE_ERR_INVALID, "model: bad hidden layer size");
    if (u_n == 0)
        return 0;
    nlu__hidden_rows(m); /* the word-view features, from the views loaded */
    size_t nf = m->n_hrow;
    if (((size_t)u_n * k + nf) * sizeof(float) + nf * u_n != r->left)
        return core_err_set(err, CORE_ERR_INVALID, "model: hidden layer size does not match");
    m->hidden = u_n;
    m->hout = nlu__walloc((size_t)u_n * m->stride);
    m->hwscale = core_xmalloc((nf + 1) * sizeof(float));
    m->hwq = core_xmalloc(nf * u_n + 1);
    for (uint32_t u = 0; u < u_n; u++)
        get(r, m->hout + (size_t)u * m->stride, k * sizeof(float));
    get(r, m->hwscale, nf * sizeof(float));
    get(r, m->hwq, nf * u_n);
    if (!finite_all(m->hout, (size_t)u_n * m->stride) || !finite_all(m->hwscale, nf))
        return core_err_set(err, CORE_ERR_INVALID, "model: non-finite hidden weight");
    return 0;
}

int nlu_model_load(const void *data, size_t len, nlu_model_t **out, core_err_t *err)
{
    reader_t r = {data, len};
    char mg[8];
    uint32_t hdr[5];
    nlu__fcfg_t fcfg;
    double thr, temp;
    float idf_unseen;
    *out = NULL;
    if (data == NULL || get(&r, mg, sizeof(mg)) || memcmp(mg, magic, sizeof(mg)) != 0)
        return core_err_set(err, CORE_ERR_INVALID, "model: not a chorus intent model");
    if (get(&r, hdr, sizeof(hdr)) || hdr[0] != order_mark)
        return core_err_set(err, CORE_ERR_INVALID, "model: truncated header or foreign byte order");
    if (hdr[1] != NLU__VERSION)
        return core_err_set(err, CORE_ERR_INVALID, "model: version %u, expected %u", hdr[1],
                            NLU__VERSION);
    if (hdr[2] < 2 || hdr[2] > NLU__CLASSES_MAX || (hdr[3] != UINT32_MAX && hdr[3] >= hdr[2]))
        return core_err_set(err, CORE_ERR_INVALID, "model: bad class count");
    if (get(&r, &fcfg, sizeof(fcfg)) || get(&r, &thr, sizeof(thr)) ||
        get(&r, &temp, sizeof(temp)) || get(&r, &idf_unseen, sizeof(idf_unseen)))
        return core_err_set(err, CORE_ERR_INVALID, "model: truncated header");
    if (fcfg.char_min > fcfg.char_max || fcfg.char_max > 8 || fcfg.flags > NLU__F_ALL ||
        !isfinite(fcfg.view_scale[0]) || !isfinite(fcfg.view_scale[1]) || !(thr >= 0) ||
        !(thr <= 1) || !(temp > 0) || !isfinite(temp) || !(idf_unseen > 0) || !isfinite(idf_unseen))
        return core_err_set(err, CORE_ERR_INVALID, "model: bad settings");
    nlu_model_t *m = nlu__model_new(hdr[2]);
    m->oos_class = (int32_t)hdr[3];
    m->n_feat = hdr[4];
    m->fcfg = fcfg;
    m->threshold = thr;
    m->temp = temp;
    m->idf_unseen = idf_unseen;
    int rc = load_names(&r, m, err);
    rc = rc ? rc : load_arrays(&r, m, err);
    rc = rc ? rc : load_hidden(&r, m, err);
    if (rc == 0 && r.left != 0)
        rc = core_err_set(err, CORE_ERR_INVALID, "model: %zu trailing bytes", r.left);
    if (rc != 0) {
        nlu_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}
