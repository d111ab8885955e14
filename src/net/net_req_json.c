/* A request body as JSON (net_req_json, see net.h).
 *
 * Nearly every body a gateway sends on the hot path is one flat object of a
 * few plain strings ({"text":"sign me up"}). jansson reads a document a
 * character at a time through a stream, which costs about four thousand
 * instructions for those twenty bytes: a tenth of a whole chat turn's work
 * on the loop. So a body of that one shape (string members whose bytes are
 * printable ASCII without escapes, no duplicate key) is built directly into
 * the tree jansson would have built; anything else, valid or not, goes to
 * json_loadb, which decides and words the error. The fast path accepts only
 * documents jansson accepts, and gives the same tree for them. */
#include <string.h>

#include "net/net_int.h"

/* Members a body may have to take the fast path; more go to jansson. */
#define FLAT_MAX_MEMBERS 8

typedef struct {
    const char *p, *end;
} cursor_t;

static void skip_ws(cursor_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* A string of printable ASCII other than '"' and '\\' at c->p: its bytes
 * between the quotes, or 0 with *s NULL when it is anything else. */
static int plain_string(cursor_t *c, const char **s, size_t *len)
{
    *s = NULL;
    if (c->p >= c->end || *c->p != '"')
        return 0;
    const char *start = ++c->p;
    while (c->p < c->end) {
        unsigned char b = (unsigned char)*c->p;
        if (b == '"') {
            *s = start;
            *len = (size_t)(c->p - start);
            c->p++;
            return 1;
        }
        if (b < 0x20 || b >= 0x7F || b == '\\')
            return 0;
        c->p++;
    }
    return 0;
}

json_t *net__json_flat(const char *body, size_t len)
{
    cursor_t c = {body, body + len};
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '{')
        return NULL;
    c.p++;
    json_t *obj = json_object();
    if (obj == NULL)
        return NULL;
    skip_ws(&c);
    if (c.p < c.end && *c.p == '}') {
        c.p++;
        goto close;
    }
    for (int n = 0;; n++) {
        const char *key, *val;
        size_t klen, vlen;
        if (n == FLAT_MAX_MEMBERS || !plain_string(&c, &key, &klen))
            goto slow;
        skip_ws(&c);
        if (c.p >= c.end || *c.p != ':')
            goto slow;
        c.p++;
        skip_ws(&c);
        if (!plain_string(&c, &val, &vlen) || json_object_getn(obj, key, klen) != NULL)
            goto slow;
        if (json_object_setn_new_nocheck(obj, key, klen, json_stringn_nocheck(val, vlen)) != 0)
            goto slow;
        skip_ws(&c);
        if (c.p < c.end && *c.p == ',') {
            c.p++;
            skip_ws(&c);
            continue;
        }
        if (c.p < c.end && *c.p == '}') {
            c.p++;
            break;
        }
        goto slow;
    }
close:
    skip_ws(&c);
    if (c.p == c.end)
        return obj;
slow:
    json_decref(obj);
    return NULL;
}

json_t *net_req_json(const net_req_t *req, core_err_t *err)
{
    const char *body = req->body.data ? req->body.data : "";
    json_t *j = net__json_flat(body, req->body.len);
    if (j != NULL)
        return j;
    json_error_t jerr;
    /* a duplicate key is refused: a filter in front may have read the other one */
    j = json_loadb(body, req->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL)
        core_err_set(err, CORE_ERR_INVALID, "body:%d:%d: %s", jerr.line, jerr.column, jerr.text);
    return j;
}
