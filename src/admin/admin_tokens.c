/* Admin tokens made at run time: POST, GET and DELETE /v1/admin/tokens
 * (role admin). A token (admin_token_new) is shown once, in the creation's
 * answer; the store keeps only its
 * SHA-256 (tokens table), in the same batch as the audit row that records
 * who created or revoked it, so neither exists without the other.
 *
 * The daemon checks tokens against an in-memory copy of the table
 * (admin_t.stored): loaded before serving (the one blocking read, at start)
 * and updated when a creation or revocation has committed, so no request
 * ever waits for SQLite. A creation answered 201 is usable at once; a
 * revoked token is refused from the moment the revocation is answered.
 * Names are unique across admin.tokens and the table, revoked ones included,
 * so an audit row's name always means one token. */
#define LOG_MODULE "admin"
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"

static admin_token_t *stored_find(admin_t *a, const char *name)
{
    for (size_t i = 0; i < a->n_stored; i++)
        if (strcmp(a->stored[i].name, name) == 0)
            return &a->stored[i];
    return NULL;
}

static void stored_add(admin_t *a, const admin_token_t *t)
{
    if (a->n_stored == a->cap_stored) {
        a->cap_stored = a->cap_stored ? a->cap_stored * 2 : 8;
        a->stored = core_xrealloc(a->stored, a->cap_stored * sizeof(*a->stored));
    }
    a->stored[a->n_stored++] = *t;
}

/* 1 when admin.tokens names name. */
static int configured(const admin_t *a, const char *name)
{
    admin_token_t conf[ADMIN_CONFIG_TOKENS_MAX];
    size_t n = admin_tokens_parse(a->host.cfg->admin.tokens, conf, ADMIN_CONFIG_TOKENS_MAX);
    for (size_t i = 0; i < n; i++)
        if (strcmp(conf[i].name, name) == 0)
            return 1;
    return 0;
}

int admin__tokens_clash(admin_t *a, const char *tokens, core_diags_t *diags)
{
    admin_token_t conf[ADMIN_CONFIG_TOKENS_MAX];
    size_t n = admin_tokens_parse(tokens, conf, ADMIN_CONFIG_TOKENS_MAX);
    int clashes = 0;
    for (size_t i = 0; i < n; i++)
        if (stored_find(a, conf[i].name) != NULL) {
            core_diags_add(diags, NULL, 0, 0, "admin.tokens",
                           "%s is the name of a token created through the API (names are "
                           "never reused): choose another",
                           conf[i].name);
            clashes++;
        }
    return clashes ? CORE_ERR_INVALID : 0;
}

static void on_row(const store_token_row_t *r, void *arg)
{
    admin_t *a = arg;
    admin_token_t t;
    memset(&t, 0, sizeof(t));
    snprintf(t.name, sizeof(t.name), "%s", r->name);
    t.role = admin_role_parse(r->role, strlen(r->role));
    if (r->sha256 == NULL || strlen(r->sha256) != 64 || admin__hex_decode(r->sha256, t.sha256))
        return; /* not a hash this daemon wrote: never matches anything */
    t.created_us = r->created_us;
    snprintf(t.created_by, sizeof(t.created_by), "%s", r->created_by ? r->created_by : "");
    t.revoked_us = r->revoked_us;
    stored_add(a, &t);
}

/* Loads the tokens table (start-up only: blocking). */
static int load(admin_t *a, core_err_t *err)
{
    store_t *s = admin__store(a);
    if (s == NULL || store_in_memory(s))
        return 0;
    store_db_t *db = store_db_open(store_path(s), err);
    if (db == NULL)
        return err->code ? err->code : CORE_ERR_IO;
    int rc = store_db_tokens(db, on_row, a, err);
    store_db_close(db);
    if (rc == 0)
        LOG_INFO("event=admin_tokens_loaded stored=%zu", a->n_stored);
    core_diags_t clash;
    core_diags_init(&clash);
    if (rc == 0 && admin__tokens_clash(a, a->host.cfg->admin.tokens, &clash) != 0)
        for (size_t i = 0; i < clash.len; i++) /* a reload would refuse this configuration */
            LOG_WARN("event=admin_token_name_clash problem=\"%s\"", clash.items[i].message);
    core_diags_dispose(&clash);
    return rc;
}

/* ---- a change through the writer ---------------------------------------- */

typedef struct job_s {
    admin_t *a;
    net_req_t *req;  /* NULL once the connection died */
    admin_token_t t; /* the token made or revoked */
    char text[ADMIN_TOKEN_TEXT_SIZE];
    int revoke;
} job_t;

static void on_abort(net_req_t *req, void *data)
{
    ((job_t *)data)->req = NULL;
}

static void job_free(job_t *j)
{
    OPENSSL_cleanse(j->text, sizeof(j->text));
    free(j);
}

static void on_committed(int status, void *data)
{
    job_t *j = data;
    admin_token_t *have = stored_find(j->a, j->t.name);
    if (status == 0 && j->revoke && have != NULL) {
        have->revoked_us = j->t.revoked_us;
        admin__agents_tokens_changed(); /* its open agent feeds close */
    } else if (status == 0 && !j->revoke)
        stored_add(j->a, &j->t);
    LOG_INFO("event=admin_token_%s name=%s role=%s by=%s status=%s",
             j->revoke ? "revoke" : "create", j->t.name, admin_role_name(j->t.role),
             j->t.created_by, core_strerror(status));
    if (j->req != NULL && status == 0) {
        json_t *body = j->revoke
                           ? json_pack("{s:s,s:I}", "name", j->t.name, "revoked_us",
                                       (json_int_t)j->t.revoked_us)
                           : json_pack("{s:s,s:s,s:s,s:I,s:s}", "name", j->t.name, "role",
                                       admin_role_name(j->t.role), "token", j->text, "created_us",
                                       (json_int_t)j->t.created_us, "created_by", j->t.created_by);
        net_resp_json(j->req, j->revoke ? 200 : 201, body);
        json_decref(body);
    } else if (j->req != NULL && status == CORE_ERR_INVALID) {
        if (j->revoke)
            net_resp_error(j->req, 404, "not_found", "no unrevoked token named %s", j->t.name);
        else
            net_resp_error(j->req, 409, "conflict", "a token named %s exists", j->t.name);
    } else if (j->req != NULL) {
        net_resp_header(j->req, "Retry-After", "1");
        net_resp_error(j->req, 503, "unavailable", "the store did not record it: %s",
                       core_strerror(status));
    }
    job_free(j);
}

/* Queues b (the token row and its audit row); answers on commit. */
static void submit(admin_t *a, net_req_t *req, job_t *j, store_batch_t *b)
{
    store_t *s = admin__store(a);
    int rc = s != NULL ? store_enqueue(s, b, on_committed, j) : CORE_ERR_CLOSED;
    if (rc != 0) {
        store_batch_free(b);
        job_free(j);
        admin__unavailable(req, "the store is not accepting writes");
        return;
    }
    net_req_on_abort(req, on_abort, j);
}

static int valid_name(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    return n > 0 && n < 64 &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* ---- POST /v1/admin/tokens {"name", "role"} ------------------------------ */

static int parse_create(net_req_t *req, const char **name, admin_role_t *role, json_t **body)
{
    core_err_t err = {0};
    *body = net_req_json(req, &err);
    if (*body == NULL || !json_is_object(*body))
        return net_resp_error(req, 400, "invalid_json", "%s",
                              *body ? "the body must be a JSON object" : err.msg),
               -1;
    *name = json_string_value(json_object_get(*body, "name"));
    const char *r = json_string_value(json_object_get(*body, "role"));
    if (!valid_name(*name))
        return net_resp_error(req, 400, "invalid_parameter", "name: 1 to 63 of A-Z a-z 0-9 _ . -"),
               -1;
    *role = r != NULL ? admin_role_parse(r, strlen(r)) : ADMIN_ROLE_NONE;
    if (*role == ADMIN_ROLE_NONE)
        return net_resp_error(req, 400, "invalid_parameter",
                              "role: must be viewer, operator, admin or agent"),
               -1;
    return 0;
}

static void on_create(net_req_t *req, void *data)
{
    static const char *const allowed[] = {NULL};
    admin_t *a = data;
    admin_identity_t who;
    const char *name;
    admin_role_t role;
    json_t *body = NULL;
    if (admin__admit(a, req, ADMIN_ROLE_ADMIN, allowed, &who) != 0 ||
        parse_create(req, &name, &role, &body) != 0) {
        json_decref(body);
        return;
    }
    if (configured(a, name) || stored_find(a, name) != NULL) {
        net_resp_error(req, 409, "conflict", "a token named %s exists (names are never reused)",
                       name);
        json_decref(body);
        return;
    }
    job_t *j = core_xcalloc(1, sizeof(*j));
    j->a = a;
    j->req = req;
    snprintf(j->t.name, sizeof(j->t.name), "%s", name);
    json_decref(body);
    j->t.role = role;
    j->t.created_us = core_wall_us();
    snprintf(j->t.created_by, sizeof(j->t.created_by), "%s", who.name);
    char hash[65];
    if (admin_token_new(j->text, hash) != 0) {
        job_free(j);
        net_resp_error(req, 500, "internal", "no randomness for a token");
        return;
    }
    admin__hex_decode(hash, j->t.sha256);
    char detail[96];
    snprintf(detail, sizeof(detail), "{\"role\":\"%s\"}", admin_role_name(role));
    store_batch_t *b = store_batch_new();
    store_batch_token_create(b, j->t.name, admin_role_name(role), hash, who.name, j->t.created_us);
    store_batch_audit(b, who.name, "token.create", j->t.name, detail, j->t.created_us);
    submit(a, req, j, b);
}

/* ---- DELETE /v1/admin/tokens/{name} -------------------------------------- */

static void on_revoke(net_req_t *req, void *data)
{
    static const char *const allowed[] = {NULL};
    admin_t *a = data;
    admin_identity_t who;
    if (admin__admit(a, req, ADMIN_ROLE_ADMIN, allowed, &who) != 0)
        return;
    const char *name = net_req_param(req, "name");
    if (!valid_name(name)) {
        net_resp_error(req, 400, "invalid_parameter", "name: 1 to 63 of A-Z a-z 0-9 _ . -");
        return;
    }
    admin_token_t *t = stored_find(a, name);
    /* a stored token is revoked here even if admin.tokens came to name it
     * too (a configuration from before the reload check): the API can
     * always take back what it gave */
    if (t == NULL && configured(a, name)) {
        net_resp_error(req, 409, "conflict",
                       "%s is configured in admin.tokens: remove it there and reload", name);
        return;
    }
    if (t == NULL || t->revoked_us != 0) {
        net_resp_error(req, 404, "not_found", "no unrevoked token named %s", name);
        return;
    }
    job_t *j = core_xcalloc(1, sizeof(*j));
    j->a = a;
    j->req = req;
    j->revoke = 1;
    j->t = *t;
    j->t.revoked_us = core_wall_us();
    char detail[96];
    snprintf(detail, sizeof(detail), "{\"role\":\"%s\"}", admin_role_name(t->role));
    store_batch_t *b = store_batch_new();
    store_batch_token_revoke(b, name, j->t.revoked_us);
    store_batch_audit(b, who.name, "token.revoke", name, detail, j->t.revoked_us);
    submit(a, req, j, b);
}

/* ---- GET /v1/admin/tokens ------------------------------------------------ */

static json_t *token_json(const admin_token_t *t, const char *source)
{
    char hash[65];
    core_hex_encode(t->sha256, 4, hash); /* a prefix, to tell tokens apart */
    return json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:o}", "name", t->name, "role",
                     admin_role_name(t->role), "source", source, "sha256_prefix", hash,
                     "created_us", t->created_us ? json_integer(t->created_us) : json_null(),
                     "created_by", t->created_by[0] ? json_string(t->created_by) : json_null(),
                     "revoked_us", t->revoked_us ? json_integer(t->revoked_us) : json_null());
}

static void on_list(net_req_t *req, void *data)
{
    static const char *const allowed[] = {NULL};
    admin_t *a = data;
    if (admin__admit(a, req, ADMIN_ROLE_ADMIN, allowed, NULL) != 0)
        return;
    admin_token_t conf[ADMIN_CONFIG_TOKENS_MAX];
    size_t n = admin_tokens_parse(a->host.cfg->admin.tokens, conf, ADMIN_CONFIG_TOKENS_MAX);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, token_json(&conf[i], "config"));
    for (size_t i = 0; i < a->n_stored; i++)
        json_array_append_new(list, token_json(&a->stored[i], "store"));
    json_t *body = json_pack("{s:o}", "tokens", list);
    net_resp_json(req, 200, body);
    json_decref(body);
}

int admin__tokens_register(net_router_t *r, admin_t *a, core_err_t *err)
{
    int rc = load(a, err);
    if (rc == 0)
        rc = net_router_add(r, "POST", "/v1/admin/tokens", on_create, a, err);
    if (rc == 0)
        rc = net_router_add(r, "GET", "/v1/admin/tokens", on_list, a, err);
    if (rc == 0)
        rc = net_router_add(r, "DELETE", "/v1/admin/tokens/{name}", on_revoke, a, err);
    if (rc == 0)
        rc = net_router_add(r, "GET", "/v1/admin/audit", admin__on_audit, a, err);
    return rc;
}
