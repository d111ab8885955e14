/* nlu_data.c — labelled utterance files for evaluating the router: CLINC150
 * JSON, CSV (RFC 4180) and JSON lines. Parses bytes already read; every
 * error names the file and line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "brain/nlu_int.h"

void nlu_dataset_init(nlu_dataset_t *ds)
{
    memset(ds, 0, sizeof(*ds));
}

void nlu_dataset_dispose(nlu_dataset_t *ds)
{
    for (size_t i = 0; i < ds->len; i++) {
        free((char *)ds->items[i].text);
        free((char *)ds->items[i].intent);
    }
    free(ds->items);
    memset(ds, 0, sizeof(*ds));
}

void nlu_dataset_add(nlu_dataset_t *ds, const char *text, size_t text_len, const char *intent)
{
    if (ds->len == ds->cap) {
        ds->cap = ds->cap ? ds->cap * 2 : 256;
        ds->items = core_xrealloc(ds->items, ds->cap * sizeof(ds->items[0]));
    }
    ds->items[ds->len].text = core_xstrndup(text, text_len);
    ds->items[ds->len].intent = core_xstrdup(intent);
    ds->len++;
}

int nlu_format_parse(const char *name, nlu_format_t *out)
{
    static const char *const names[] = {"clinc", "csv", "jsonl"};
    for (int i = 0; i < 3; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = (nlu_format_t)i;
            return 0;
        }
    return CORE_ERR_NOT_FOUND;
}

int nlu_format_guess(const char *path, nlu_format_t *out)
{
    const char *dot = strrchr(path, '.');
    if (dot == NULL)
        return CORE_ERR_NOT_FOUND;
    if (strcmp(dot, ".json") == 0)
        *out = NLU_FORMAT_CLINC;
    else if (strcmp(dot, ".csv") == 0)
        *out = NLU_FORMAT_CSV;
    else if (strcmp(dot, ".jsonl") == 0 || strcmp(dot, ".ndjson") == 0)
        *out = NLU_FORMAT_JSONL;
    else
        return CORE_ERR_NOT_FOUND;
    return 0;
}

/* ---- CLINC150 JSON ------------------------------------------------------ */

static int clinc_err(const char *text, size_t len, const char *file, const char *path,
                     core_err_t *err, const char *what)
{
    int line = 0, col = 0;
    core_jsonpos_t *pos = core_jsonpos_new(text, len);
    if (pos != NULL)
        core_jsonpos_find(pos, path, &line, &col);
    core_jsonpos_free(pos);
    return core_err_set(err, CORE_ERR_INVALID, "%s:%d:%d: %s: %s", file, line, col, path, what);
}

static int clinc_split(nlu_dataset_t *ds, json_t *root, const char *key, const char *label,
                       const char *text, size_t len, const char *file, core_err_t *err)
{
    json_t *arr = json_object_get(root, key);
    if (!json_is_array(arr))
        return clinc_err(text, len, file, key, err, "expected an array of [text, label]");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *it = json_array_get(arr, i);
        json_t *t = json_array_get(it, 0), *l = json_array_get(it, 1);
        if (!json_is_array(it) || !json_is_string(t) || !json_is_string(l) ||
            json_string_length(l) == 0) {
            char path[128];
            snprintf(path, sizeof(path), "%s[%zu]", key, i);
            return clinc_err(text, len, file, path, err, "expected [text, label] strings");
        }
        nlu_dataset_add(ds, json_string_value(t), json_string_length(t),
                        label ? label : json_string_value(l));
    }
    return 0;
}

static int parse_clinc(nlu_dataset_t *ds, const char *split, const char *oos, const char *text,
                       size_t len, const char *file, core_err_t *err)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    if (root == NULL)
        return core_err_set(err, CORE_ERR_INVALID, "%s:%d:%d: %s", file, je.line, je.column,
                            je.text);
    char oos_key[64];
    snprintf(oos_key, sizeof(oos_key), "oos_%s", split);
    int rc = json_is_object(root) ? 0
                                  : core_err_set(err, CORE_ERR_INVALID,
                                                 "%s:1:1: expected a JSON object of splits", file);
    rc = rc ? rc : clinc_split(ds, root, split, NULL, text, len, file, err);
    if (rc == 0 && json_object_get(root, oos_key) != NULL)
        rc = clinc_split(ds, root, oos_key, oos, text, len, file, err);
    json_decref(root);
    return rc;
}

/* ---- CSV (RFC 4180) ----------------------------------------------------- */

typedef struct csv_s {
    const char *p, *end;
    int line;            /* line of the current position */
    core_buf_t field[8]; /* the first columns of the current record */
    size_t n_fields;
} csv_t;

/* Reads one record; returns 1 when one was read, 0 at the end, <0 on error. */
static int csv_record(csv_t *c, const char *file, core_err_t *err)
{
    c->n_fields = 0;
    if (c->p >= c->end)
        return 0;
    int start_line = c->line;
    for (;;) {
        core_buf_t *f = c->n_fields < 8 ? &c->field[c->n_fields] : NULL;
        if (f)
            core_buf_reset(f);
        c->n_fields++;
        if (c->p < c->end && *c->p == '"') {
            c->p++;
            for (;;) {
                if (c->p >= c->end)
                    return core_err_set(err, CORE_ERR_INVALID, "%s:%d: unterminated quoted field",
                                        file, start_line);
                char ch = *c->p++;
                if (ch == '"') {
                    if (c->p < c->end && *c->p == '"')
                        c->p++;
                    else
                        break;
                }
                if (ch == '\n')
                    c->line++;
                if (f && core_buf_append(f, &ch, 1) != 0)
                    return core_err_set(err, CORE_ERR_LIMIT, "%s:%d: field too long", file,
                                        start_line);
            }
            /* RFC 4180: the closing quote ends the field ("a"b is not "ab") */
            if (c->p < c->end && *c->p == '\r' && c->p + 1 < c->end && c->p[1] == '\n')
                c->p++;
            if (c->p < c->end && *c->p != ',' && *c->p != '\n')
                return core_err_set(err, CORE_ERR_INVALID,
                                    "%s:%d: characters after the closing quote of field %zu", file,
                                    c->line, c->n_fields);
        }
        while (c->p < c->end && *c->p != ',' && *c->p != '\n') {
            if (*c->p == '"')
                return core_err_set(err, CORE_ERR_INVALID, "%s:%d: stray quote in field %zu", file,
                                    c->line, c->n_fields);
            if (*c->p != '\r' && f && core_buf_append(f, c->p, 1) != 0)
                return core_err_set(err, CORE_ERR_LIMIT, "%s:%d: field too long", file, start_line);
            c->p++;
        }
        if (c->p >= c->end || *c->p == '\n') {
            if (c->p < c->end)
                c->p++;
            c->line++;
            return 1;
        }
        c->p++; /* ',' */
    }
}

static const char *fld(csv_t *c, size_t i)
{
    return c->field[i].data ? c->field[i].data : "";
}

static int csv_header(csv_t *c, const char *file, size_t *ti, size_t *li, core_err_t *err)
{
    int rc = csv_record(c, file, err);
    if (rc <= 0)
        return rc ? rc : core_err_set(err, CORE_ERR_INVALID, "%s:1: empty file", file);
    *ti = *li = SIZE_MAX;
    for (size_t i = 0; i < c->n_fields && i < 8; i++) {
        const char *h = fld(c, i);
        if (strcmp(h, "text") == 0)
            *ti = i;
        else if (strcmp(h, "label") == 0 || strcmp(h, "category") == 0 || strcmp(h, "intent") == 0)
            *li = i;
    }
    if (*ti == SIZE_MAX || *li == SIZE_MAX)
        return core_err_set(
            err, CORE_ERR_INVALID,
            "%s:1: header needs a \"text\" and a \"label\" (or \"category\") column "
            "among its first 8",
            file);
    return 0;
}

static int parse_csv(nlu_dataset_t *ds, const char *text, size_t len, const char *file,
                     core_err_t *err)
{
    csv_t c = {.p = text, .end = text + len, .line = 1};
    size_t ti = SIZE_MAX, li = SIZE_MAX, width;
    for (int i = 0; i < 8; i++)
        core_buf_init(&c.field[i], 1 << 20);
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        c.p += 3;
    int rc = csv_header(&c, file, &ti, &li, err);
    width = c.n_fields;
    while (rc == 0) {
        int line = c.line;
        int r = csv_record(&c, file, err);
        if (r <= 0) {
            rc = r;
            break;
        }
        if (c.n_fields == 1 && fld(&c, 0)[0] == '\0')
            continue; /* blank line */
        if (c.n_fields != width)
            rc = core_err_set(err, CORE_ERR_INVALID, "%s:%d: %zu fields, the header has %zu", file,
                              line, c.n_fields, width);
        else if (fld(&c, li)[0] == '\0')
            rc = core_err_set(err, CORE_ERR_INVALID, "%s:%d: empty label", file, line);
        else
            nlu_dataset_add(ds, fld(&c, ti), c.field[ti].len, fld(&c, li));
    }
    for (int i = 0; i < 8; i++)
        core_buf_dispose(&c.field[i]);
    return rc;
}

/* ---- JSON lines --------------------------------------------------------- */

static int parse_jsonl(nlu_dataset_t *ds, const char *text, size_t len, const char *file,
                       core_err_t *err)
{
    const char *p = text, *end = text + len;
    for (int line = 1; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *q = p;
        while (q < le && (*q == ' ' || *q == '\t' || *q == '\r'))
            q++;
        if (q < le) {
            json_error_t je;
            json_t *o = json_loadb(p, (size_t)(le - p), 0, &je);
            if (o == NULL)
                return core_err_set(err, CORE_ERR_INVALID, "%s:%d:%d: %s", file, line, je.column,
                                    je.text);
            json_t *t = json_object_get(o, "text");
            json_t *l = json_object_get(o, "label");
            if (l == NULL)
                l = json_object_get(o, "intent");
            int ok = json_is_string(t) && json_is_string(l) && json_string_length(l) > 0;
            if (ok)
                nlu_dataset_add(ds, json_string_value(t), json_string_length(t),
                                json_string_value(l));
            json_decref(o);
            if (!ok)
                return core_err_set(err, CORE_ERR_INVALID,
                                    "%s:%d: expected an object with string \"text\" and "
                                    "\"label\"",
                                    file, line);
        }
        p = nl ? nl + 1 : end;
    }
    return 0;
}

int nlu_dataset_parse(nlu_dataset_t *ds, nlu_format_t fmt, const char *split, const char *oos_label,
                      const char *text, size_t len, const char *file, core_err_t *err)
{
    if (file == NULL)
        file = "<data>";
    switch (fmt) {
    case NLU_FORMAT_CLINC:
        return parse_clinc(ds, split ? split : "train", oos_label ? oos_label : "oos", text, len,
                           file, err);
    case NLU_FORMAT_CSV:
        return parse_csv(ds, text, len, file, err);
    case NLU_FORMAT_JSONL:
        return parse_jsonl(ds, text, len, file, err);
    }
    return core_err_set(err, CORE_ERR_INVALID, "unknown data format");
}
