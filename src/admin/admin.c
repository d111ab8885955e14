/* The admin module's registration and authentication. Admin tokens are
 * configured as SHA-256 hashes (admin.tokens, `name:sha256hex,...`), never in
 * clear, so a leaked config file leaks no token. A presented token is hashed
 * and compared with every configured hash by CRYPTO_memcmp without an early
 * exit, so neither the hash nor which entry matched shows in the timing. The
 * list is parsed on each request: it is short, and a SIGHUP that changes it
 * then applies at once without any cache to invalidate. */
#define LOG_MODULE "admin"
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin/admin_int.h"

store_t *admin__store(const admin_t *a)
{
    return a->host.store != NULL ? *a->host.store : NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Parses one "name:hex64" entry at p into name/hash; returns the length
 * consumed (up to the comma or the end) or 0 when malformed. */
static size_t parse_entry(const char *p, char *name, size_t name_size, uint8_t hash[32])
{
    size_t n = strcspn(p, ",");
    const char *colon = memchr(p, ':', n);
    if (colon == NULL || (size_t)(p + n - colon - 1) != 64)
        return 0;
    size_t nl = (size_t)(colon - p) < name_size - 1 ? (size_t)(colon - p) : name_size - 1;
    memcpy(name, p, nl);
    name[nl] = '\0';
    for (int i = 0; i < 32; i++) {
        int hi = hexval(colon[1 + 2 * i]), lo = hexval(colon[2 + 2 * i]);
        if (hi < 0 || lo < 0)
            return 0;
        hash[i] = (uint8_t)((hi << 4) | lo);
    }
    return n;
}

int admin_auth_check(const char *tokens, const char *authorization, char *name_out,
                     size_t name_size, core_err_t *err)
{
    if (authorization == NULL)
        return core_err_set(err, CORE_ERR_DENIED, "missing Authorization: Bearer <token>");
    if (strncasecmp(authorization, "Bearer", 6) != 0 ||
        (authorization[6] != ' ' && authorization[6] != '\0'))
        return core_err_set(err, CORE_ERR_DENIED, "the Authorization scheme must be Bearer");
    const char *token = authorization + 6;
    while (*token == ' ')
        token++;
    if (*token == '\0')
        return core_err_set(err, CORE_ERR_DENIED, "empty bearer token");
    if (tokens == NULL || tokens[0] == '\0')
        return core_err_set(err, CORE_ERR_DENIED, "no admin tokens are configured (admin.tokens)");
    uint8_t h[32], want[32];
    unsigned int hl = 32;
    EVP_Digest(token, strlen(token), h, &hl, EVP_sha256(), NULL);
    char name[64];
    int found = 0;
    for (const char *p = tokens; *p != '\0';) {
        size_t n = parse_entry(p, name, sizeof(name), want);
        if (n == 0)
            break; /* the config loader has checked the syntax */
        /* no early exit: every entry is compared whatever matched */
        int same = CRYPTO_memcmp(h, want, 32) == 0;
        if (same && !found && name_out != NULL)
            snprintf(name_out, name_size, "%s", name);
        found |= same;
        p += n + (p[n] == ',');
    }
    return found ? 0 : core_err_set(err, CORE_ERR_DENIED, "unknown admin token");
}

int admin__authorize(admin_t *a, net_req_t *req)
{
    core_err_t err = {0};
    char name[64];
    if (admin_auth_check(a->host.cfg->admin.tokens, net_req_header(req, "Authorization"), name,
                         sizeof(name), &err) == 0) {
        a->requests++;
        return 0;
    }
    a->denied++;
    char reason[160], path[160];
    LOG_WARN("event=admin_auth_denied path=%s remote=%s reason=%s request_id=%s",
             core_log_quote(path, sizeof(path), net_req_path(req), (size_t)-1, 100),
             net_req_remote(req), core_log_quote(reason, sizeof(reason), err.msg, (size_t)-1, 120),
             net_req_id(req));
    net_resp_header(req, "WWW-Authenticate", "Bearer realm=\"chorus-admin\"");
    net_resp_error(req, 401, "unauthorized", "%s", err.msg);
    return -1;
}

int admin__check_params(net_req_t *req, const char *const *allowed)
{
    const char *q = net_req_query_string(req);
    while (*q != '\0') {
        size_t n = strcspn(q, "&");
        size_t name = strcspn(q, "=&");
        int known = name == 0; /* "a&&b": an empty item names nothing */
        for (size_t i = 0; allowed[i] != NULL && !known; i++)
            known = strlen(allowed[i]) == name && strncmp(allowed[i], q, name) == 0;
        if (!known) {
            char shown[80];
            net_resp_error(req, 400, "invalid_parameter", "unknown query parameter %s",
                           core_log_quote(shown, sizeof(shown), q, name, 40));
            return -1;
        }
        q += n + (q[n] == '&');
    }
    return 0;
}

/* One per process, like the chat adapter: registration is one call, and the
 * routes may point at it until exit without anything to free. */
static admin_t the_admin;

int admin_register(net_router_t *router, const admin_host_t *host, core_err_t *err)
{
    admin_t *a = &the_admin;
    memset(a, 0, sizeof(*a));
    a->host = *host;
    a->start_wall_us = core_wall_us();
    int rc = net_router_add(router, "GET", "/metrics", admin__on_metrics, a, err);
    if (rc == 0)
        rc = net_router_add(router, "GET", "/v1/admin/reports/kpis", admin__on_kpis, a, err);
    if (rc == 0)
        rc = net_router_add(router, "GET", "/v1/admin/conversations", admin__on_list, a, err);
    if (rc == 0)
        rc = net_router_add(router, "GET", "/v1/admin/conversations/{id}", admin__on_show, a, err);
    return rc;
}
