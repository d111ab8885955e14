/* Gateway authentication for the chat channel. API keys are configured as
 * SHA-256 hashes (chat.api_keys), never in clear: a leaked config file does
 * not leak a key. A presented key is hashed and compared with every
 * configured hash in constant time (CRYPTO_memcmp, and no early exit), so
 * neither the hash nor which key matched leaks through timing. A key that
 * hashed right is remembered with its entry (up to CHAT_KEY_SEEN bytes), and
 * the next request's key is first compared with those, also in constant
 * time over every entry and the whole buffer: hashing is most of a REST
 * turn's authentication, and a gateway sends the same key every time. The
 * parsed keys are cached against the config string and re-parsed (the
 * remembered keys wiped) when a reload changes it. The widget's WebSocket
 * is authenticated by its page's origin instead (a browser cannot keep a
 * secret).
 *
 * Ownership: a conversation is its starter's, the gateway key's by name or
 * the widget's, and nobody else's; its id is no secret (it travels in
 * Location headers, logs, agent webhooks). The owner goes to the store with
 * the conversation's start row, so a conversation read back after a restart
 * keeps it. By name, so that rotating a key's secret under the same name
 * keeps its conversations. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "channels/chan_chat_int.h"

/* Parses "name:hex,name:hex" (already checked by the config loader). */
static void parse_keys(chat_t *c, const char *src)
{
    if (c->keys != NULL)
        OPENSSL_cleanse(c->keys, c->n_keys * sizeof(*c->keys));
    free(c->keys);
    free(c->keys_src);
    c->keys = NULL;
    c->n_keys = 0;
    c->keys_src = core_xstrdup(src);
    size_t cap = 1;
    for (const char *p = src; *p; p++)
        cap += *p == ',';
    c->keys = core_xcalloc(cap, sizeof(*c->keys));
    const char *p = src;
    while (*p != '\0' && c->n_keys < cap) {
        const char *colon = strchr(p, ':');
        if (colon == NULL || strlen(colon + 1) < 64)
            break;
        chat_key_t *k = &c->keys[c->n_keys];
        k->env[0] = '\0';
        size_t nl =
            (size_t)(colon - p) < CHAT_KEY_NAME - 1 ? (size_t)(colon - p) : CHAT_KEY_NAME - 1;
        memcpy(k->name, p, nl);
        k->name[nl] = '\0';
        int ok = 1;
        for (int i = 0; i < 32; i++) {
            int hi = core_hex_digit(colon[1 + 2 * i]), lo = core_hex_digit(colon[2 + 2 * i]);
            ok &= hi >= 0 && lo >= 0;
            k->hash[i] = (uint8_t)((hi << 4) | (lo & 15));
        }
        p = colon + 65;
        if (*p == ':') { /* name:hex:environment */
            size_t e = strcspn(p + 1, ",");
            snprintf(k->env, sizeof(k->env), "%.*s", (int)e, p + 1);
            p += 1 + e;
        }
        if (ok)
            c->n_keys++;
        if (*p == ',')
            p++;
    }
}

/* Whether two remembered-key buffers are equal, in constant time: every
 * word is read and folded in whatever differs, with no early exit (as
 * CRYPTO_memcmp, a word at a time instead of a byte). */
_Static_assert(CHAT_KEY_SEEN % 8 == 0, "remembered keys are compared a word at a time");

static int same_seen(const char *a, const char *b)
{
    uint64_t d = 0;
    for (size_t i = 0; i < CHAT_KEY_SEEN; i += sizeof(d)) {
        uint64_t x, y;
        memcpy(&x, a + i, sizeof(x));
        memcpy(&y, b + i, sizeof(y));
        d |= x ^ y;
    }
    return d == 0;
}

/* The keys of chat.api_keys as it is now (a reload may have changed it). */
static void current_keys(chat_t *c)
{
    const char *src = c->base.host.cfg->chat.api_keys;
    if (c->keys_src == NULL || strcmp(c->keys_src, src) != 0)
        parse_keys(c, src);
}

int chat__auth_bearer(chat_t *c, const char *authorization, char name_out[CHAT_KEY_NAME],
                      uint8_t hash_out[32], core_err_t *err)
{
    current_keys(c);
    if (authorization == NULL)
        return core_err_set(err, CORE_ERR_DENIED, "missing Authorization: Bearer <key>");
    if (strncasecmp(authorization, "Bearer", 6) != 0 ||
        (authorization[6] != ' ' && authorization[6] != '\0'))
        return core_err_set(err, CORE_ERR_DENIED, "the Authorization scheme must be Bearer");
    const char *token = authorization + 6;
    while (*token == ' ')
        token++;
    if (*token == '\0')
        return core_err_set(err, CORE_ERR_DENIED, "empty bearer token");
    if (c->n_keys == 0)
        return core_err_set(err, CORE_ERR_DENIED, "no gateway keys are configured (chat.api_keys)");
    size_t len = strlen(token), match = c->n_keys;
    if (len <= CHAT_KEY_SEEN) {
        char padded[CHAT_KEY_SEEN] = {0};
        memcpy(padded, token, len);
        for (size_t i = 0; i < c->n_keys; i++) {
            /* no early exit: every entry is compared whatever matched */
            int same = same_seen(padded, c->keys[i].seen) & (c->keys[i].seen_len == len);
            match = same && match == c->n_keys ? i : match;
        }
        OPENSSL_cleanse(padded, sizeof(padded));
    }
    if (match == c->n_keys) {
        uint8_t h[32];
        core_sha256(token, len, h);
        for (size_t i = 0; i < c->n_keys; i++) {
            int same = CRYPTO_memcmp(h, c->keys[i].hash, 32) == 0;
            match = same && match == c->n_keys ? i : match;
        }
        if (match == c->n_keys)
            return core_err_set(err, CORE_ERR_DENIED, "unknown API key");
        if (len <= CHAT_KEY_SEEN) {
            chat_key_t *k = &c->keys[match];
            memset(k->seen, 0, sizeof(k->seen));
            memcpy(k->seen, token, len);
            k->seen_len = len;
        }
    }
    memcpy(name_out, c->keys[match].name, CHAT_KEY_NAME);
    if (hash_out != NULL)
        memcpy(hash_out, c->keys[match].hash, 32);
    return 0;
}

int chat__key_valid(chat_t *c, const char *name, const uint8_t hash[32])
{
    current_keys(c);
    /* the name alone is not enough: a new secret under the same name
     * revokes the old one (the usual answer to a leaked key) */
    for (size_t i = 0; i < c->n_keys; i++)
        if (strcmp(c->keys[i].name, name) == 0 && memcmp(c->keys[i].hash, hash, 32) == 0)
            return 1;
    return 0;
}

const char *chat__key_env(const chat_t *c, const char *name)
{
    for (size_t i = 0; name != NULL && i < c->n_keys; i++)
        if (strcmp(c->keys[i].name, name) == 0)
            return c->keys[i].env;
    return "";
}

void chat__conv_own(chat_conv_t *cv, const char *gateway)
{
    snprintf(cv->owner, sizeof(cv->owner), "%s", gateway ? gateway : CHAT_OWNER_WEB);
}

int chat__conv_owned(const chat_conv_t *cv, const char *gateway)
{
    /* The channel first: a gateway key may be named "web" too */
    if (gateway == NULL)
        return cv->channel == BRAIN_CH_WEB;
    if (cv->channel != BRAIN_CH_CHAT)
        return 0;
    /* No owner: begun before chorusd recorded owners, and as open to every
     * gateway as it was then (the store cannot say whose it is) */
    return cv->owner[0] == '\0' || strcmp(cv->owner, gateway) == 0;
}

void chat__conv_owner_restore(chat_conv_t *cv, const json_t *rec)
{
    size_t i;
    const json_t *ev;
    cv->owner[0] = '\0';
    json_array_foreach(json_object_get(rec, "events"), i, ev)
    {
        const char *kind = json_string_value(json_object_get(ev, "kind"));
        const json_t *detail = json_object_get(ev, "detail");
        const char *owner = json_string_value(json_object_get(detail, "owner"));
        if (kind != NULL && strcmp(kind, "start") == 0 && owner != NULL) {
            snprintf(cv->owner, sizeof(cv->owner), "%s", owner);
            return;
        }
    }
}

const char *chat__conv_start_detail(const chat_conv_t *cv, char *out, size_t size)
{
    if (cv->owner[0] == '\0')
        return NULL;
    /* key names are [A-Za-z0-9_.-] (chat.api_keys), as is "web": nothing to escape */
    snprintf(out, size, "{\"owner\":\"%s\"}", cv->owner);
    return out;
}

/* True if the comma-separated list has item (exact, case-insensitive). */
static int list_has(const char *list, const char *item)
{
    size_t n = strlen(item);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t len = strcspn(p, ", ");
        if (len == n && strncasecmp(p, item, n) == 0)
            return 1;
        p += len;
    }
    return 0;
}

int chat__origin_allowed(const core_config_t *cfg, const char *origin, const char *host)
{
    if (origin == NULL || origin[0] == '\0' || strcmp(origin, "null") == 0)
        return 0;
    const char *allowed = cfg->chat.allowed_origins;
    if (strcmp(allowed, "*") == 0 || list_has(allowed, origin))
        return 1;
    /* same origin: scheme://host[:port] equal to the Host the page came from */
    const char *sep = strstr(origin, "://");
    if (host == NULL || sep == NULL)
        return 0;
    return strcasecmp(sep + 3, host) == 0;
}
