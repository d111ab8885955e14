/* Admin authentication and roles. A token is known by the SHA-256 of its
 * text, never by the text: bootstrap tokens are configured as hashes
 * (admin.tokens, `name:role:sha256hex` or `name:sha256hex` for an admin),
 * and tokens made by `chorusctl token create` live in the tokens table and
 * in an in-memory copy (admin_t.stored) loaded before serving, so no check
 * touches SQLite. A presented token is hashed and compared with every
 * configured and stored hash by CRYPTO_memcmp without an early exit, so
 * neither the hash nor which entry matched shows in the timing.
 *
 * Roles: viewer < operator < admin for /v1/admin/...; agent stands apart and
 * is accepted only where agent is required (/v1/agent/...), where admin is
 * accepted too. Every refusal (401 or 403) is logged and audited. */
#define LOG_MODULE "admin"
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "admin/admin_int.h"

static const char *const role_names[] = {
    [ADMIN_ROLE_NONE] = "none",         [ADMIN_ROLE_VIEWER] = "viewer",
    [ADMIN_ROLE_OPERATOR] = "operator", [ADMIN_ROLE_ADMIN] = "admin",
    [ADMIN_ROLE_AGENT] = "agent",
};

const char *admin_role_name(admin_role_t r)
{
    return r >= ADMIN_ROLE_NONE && r <= ADMIN_ROLE_AGENT ? role_names[r] : "none";
}

admin_role_t admin_role_parse(const char *s, size_t len)
{
    for (int r = ADMIN_ROLE_VIEWER; r <= ADMIN_ROLE_AGENT; r++)
        if (strlen(role_names[r]) == len && strncmp(role_names[r], s, len) == 0)
            return (admin_role_t)r;
    return ADMIN_ROLE_NONE;
}

int admin_role_allows(admin_role_t have, admin_role_t need)
{
    if (have == ADMIN_ROLE_NONE || need == ADMIN_ROLE_NONE)
        return 0;
    if (need == ADMIN_ROLE_AGENT)
        return have == ADMIN_ROLE_AGENT || have == ADMIN_ROLE_ADMIN;
    return have != ADMIN_ROLE_AGENT && have >= need;
}

int admin__hex_decode(const char *hex, uint8_t out[32])
{
    for (int i = 0; i < 32; i++) {
        int hi = core_hex_digit(hex[2 * i]), lo = hi < 0 ? -1 : core_hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)((hi << 4) | lo);
    }
    return 0;
}

/* Parses one "name:hex64" or "name:role:hex64" entry at p; returns the
 * length consumed (up to the comma or the end) or 0 when malformed. */
static size_t parse_entry(const char *p, admin_token_t *t)
{
    size_t n = strcspn(p, ",");
    const char *colon = memchr(p, ':', n);
    if (colon == NULL || colon == p)
        return 0;
    const char *hex = colon + 1;
    t->role = ADMIN_ROLE_ADMIN; /* name:sha256hex keeps meaning admin */
    const char *second = memchr(hex, ':', (size_t)(p + n - hex));
    if (second != NULL) {
        t->role = admin_role_parse(hex, (size_t)(second - hex));
        hex = second + 1;
    }
    if (t->role == ADMIN_ROLE_NONE || (size_t)(p + n - hex) != 64 ||
        admin__hex_decode(hex, t->sha256) != 0)
        return 0;
    size_t nl =
        (size_t)(colon - p) < sizeof(t->name) - 1 ? (size_t)(colon - p) : sizeof(t->name) - 1;
    memcpy(t->name, p, nl);
    t->name[nl] = '\0';
    return n;
}

size_t admin_tokens_parse(const char *config, admin_token_t *out, size_t max)
{
    size_t k = 0;
    for (const char *p = config != NULL ? config : ""; *p != '\0' && k < max;) {
        admin_token_t t;
        memset(&t, 0, sizeof(t));
        size_t n = parse_entry(p, &t);
        if (n == 0)
            break; /* the config loader has checked the syntax */
        out[k++] = t;
        p += n + (p[n] == ',');
    }
    return k;
}

/* Compares h with every entry of set (no early exit); records the first
 * match in *hit. */
static void compare_all(const uint8_t h[32], const admin_token_t *set, size_t n,
                        const admin_token_t **hit)
{
    for (size_t i = 0; i < n; i++) {
        int same = CRYPTO_memcmp(h, set[i].sha256, 32) == 0;
        if (same && *hit == NULL)
            *hit = &set[i];
    }
}

/* The bearer token of an Authorization value, or NULL with err set. */
static const char *bearer(const char *authorization, core_err_t *err)
{
    if (authorization == NULL)
        return core_err_set(err, CORE_ERR_DENIED, "missing Authorization: Bearer <token>"), NULL;
    if (strncasecmp(authorization, "Bearer", 6) != 0 ||
        (authorization[6] != ' ' && authorization[6] != '\0'))
        return core_err_set(err, CORE_ERR_DENIED, "the Authorization scheme must be Bearer"), NULL;
    const char *token = authorization + 6;
    while (*token == ' ')
        token++;
    if (*token == '\0')
        return core_err_set(err, CORE_ERR_DENIED, "empty bearer token"), NULL;
    return token;
}

int admin_auth_identify(const char *tokens, const admin_token_t *stored, size_t n_stored,
                        const char *authorization, admin_identity_t *who, core_err_t *err)
{
    const char *token = bearer(authorization, err);
    if (token == NULL)
        return CORE_ERR_DENIED;
    uint8_t h[32];
    core_sha256(token, strlen(token), h);
    return admin__identify_hash(tokens, stored, n_stored, h, who, err);
}

int admin__identify_hash(const char *tokens, const admin_token_t *stored, size_t n_stored,
                         const uint8_t h[32], admin_identity_t *who, core_err_t *err)
{
    admin_token_t conf[ADMIN_CONFIG_TOKENS_MAX];
    size_t n_conf = admin_tokens_parse(tokens, conf, ADMIN_CONFIG_TOKENS_MAX);
    if (n_conf == 0 && n_stored == 0)
        return core_err_set(err, CORE_ERR_DENIED,
                            "no admin tokens are configured (admin.tokens) or created");
    const admin_token_t *hit = NULL;
    compare_all(h, conf, n_conf, &hit);
    compare_all(h, stored, n_stored, &hit);
    if (hit == NULL)
        return core_err_set(err, CORE_ERR_DENIED, "unknown admin token");
    if (hit->revoked_us != 0)
        return core_err_set(err, CORE_ERR_DENIED, "revoked admin token");
    if (who != NULL) {
        snprintf(who->name, sizeof(who->name), "%s", hit->name);
        who->role = hit->role;
    }
    return 0;
}

int admin_auth_check(const char *tokens, const char *authorization, char *name_out,
                     size_t name_size, core_err_t *err)
{
    admin_identity_t who;
    int rc = admin_auth_identify(tokens, NULL, 0, authorization, &who, err);
    if (rc == 0 && name_out != NULL)
        snprintf(name_out, name_size, "%s", who.name);
    return rc;
}

/* admin.denied rows: a steady rate and a burst. A flood of refused
 * requests (anyone can send them) must not fill the store's queue, which
 * the turns share; refusals past the budget are still logged and counted,
 * and the next row that is written says how many it stands for. */
#define DENY_AUDIT_PER_SECOND 20.0
#define DENY_AUDIT_BURST 200.0

static int deny_audit_allowed(admin_t *a)
{
    int64_t now = (int64_t)core_now_us();
    if (a->deny_refill_us == 0)
        a->deny_budget = DENY_AUDIT_BURST;
    else
        a->deny_budget += (double)(now - a->deny_refill_us) / 1e6 * DENY_AUDIT_PER_SECOND;
    if (a->deny_budget > DENY_AUDIT_BURST)
        a->deny_budget = DENY_AUDIT_BURST;
    a->deny_refill_us = now;
    if (a->deny_budget >= 1.0) {
        a->deny_budget -= 1.0;
        return 1;
    }
    a->deny_unaudited++;
    return 0;
}

/* Logs, counts and audits one refusal, then answers it. */
static void deny(admin_t *a, net_req_t *req, int status, const char *actor, admin_role_t need,
                 const char *why)
{
    char reason[160], path[160];
    core_log_quote(path, sizeof(path), net_req_path(req), (size_t)-1, 100);
    core_log_quote(reason, sizeof(reason), why, (size_t)-1, 120);
    LOG_WARN("event=admin_auth_denied status=%d path=%s remote=%s actor=%s need=%s reason=%s "
             "request_id=%s",
             status, path, net_req_remote(req), actor, admin_role_name(need), reason,
             net_req_id(req));
    if (deny_audit_allowed(a)) {
        json_t *detail =
            json_pack("{s:i,s:s,s:s,s:s,s:s,s:s}", "status", status, "method", net_req_method(req),
                      "remote", net_req_remote(req), "need", admin_role_name(need), "reason", why,
                      "request_id", net_req_id(req));
        if (a->deny_unaudited > 0) /* the flood before this row, counted */
            json_object_set_new(detail, "unaudited_before",
                                json_integer((json_int_t)a->deny_unaudited));
        a->deny_unaudited = 0;
        admin__audit(a, actor, "admin.denied", net_req_path(req), detail);
    }
    if (status == 401) {
        a->denied++;
        net_resp_header(req, "WWW-Authenticate", "Bearer realm=\"chorus-admin\"");
        net_resp_error(req, 401, "unauthorized", "%s", why);
    } else {
        a->forbidden++;
        net_resp_error(req, 403, "forbidden", "%s", why);
    }
}

int admin__authorize(admin_t *a, net_req_t *req, admin_role_t need, admin_identity_t *who)
{
    return admin__authorize_as(a, req, net_req_header(req, "Authorization"), need, who);
}

int admin__authorize_as(admin_t *a, net_req_t *req, const char *authorization, admin_role_t need,
                        admin_identity_t *who)
{
    core_err_t err = {0};
    admin_identity_t id;
    if (admin_auth_identify(a->host.cfg->admin.tokens, a->stored, a->n_stored, authorization, &id,
                            &err) != 0) {
        deny(a, req, 401, "-", need, err.msg);
        return -1;
    }
    if (!admin_role_allows(id.role, need)) {
        char why[160];
        snprintf(why, sizeof(why), "token \"%s\" has role %s; this needs %s%s", id.name,
                 admin_role_name(id.role), admin_role_name(need),
                 need == ADMIN_ROLE_AGENT ? " (or admin)" : " or higher");
        deny(a, req, 403, id.name, need, why);
        return -1;
    }
    a->requests++;
    if (who != NULL)
        *who = id;
    return 0;
}

int admin_token_new(char text[ADMIN_TOKEN_TEXT_SIZE], char sha256_hex[65])
{
    uint8_t raw[32];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        return CORE_ERR_IO;
    memcpy(text, ADMIN_TOKEN_PREFIX, sizeof(ADMIN_TOKEN_PREFIX) - 1);
    core_hex_encode(raw, sizeof(raw), text + sizeof(ADMIN_TOKEN_PREFIX) - 1);
    OPENSSL_cleanse(raw, sizeof(raw));
    core_sha256_hex(text, strlen(text), sha256_hex);
    return 0;
}
