/* WebSocket: the RFC 6455 opening handshake (checked, refused with the
 * status the RFC names, answered with Sec-WebSocket-Accept) and the UTF-8
 * check text messages and close reasons must pass. The framing that
 * follows the 101 is net_ws.c's. */
#define LOG_MODULE "net"
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "net/net_int.h"

/* ---- UTF-8 -------------------------------------------------------------- */

int net_utf8_valid(const char *str, size_t len)
{
    if (len == 0)
        return 1; /* str may be NULL then */
    const unsigned char *s = (const unsigned char *)str, *end = s + len;
    while (s < end) {
        unsigned c = *s;
        if (c < 0x80) {
            s++;
            continue;
        }
        size_t n;
        unsigned min, cp;
        if ((c & 0xE0) == 0xC0)
            n = 1, min = 0x80, cp = c & 0x1F;
        else if ((c & 0xF0) == 0xE0)
            n = 2, min = 0x800, cp = c & 0x0F;
        else if ((c & 0xF8) == 0xF0)
            n = 3, min = 0x10000, cp = c & 0x07;
        else
            return 0;
        if ((size_t)(end - s) <= n)
            return 0;
        for (size_t i = 1; i <= n; i++) {
            if ((s[i] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        s += n + 1;
    }
    return 1;
}

/* ---- handshake ---------------------------------------------------------- */

static int has_token(const char *v, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = v; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - p) == n && strncasecmp(p, token, n) == 0)
            return 1;
        p = e;
    }
    return 0;
}

static int key_valid(const char *key)
{
    unsigned char raw[32];
    if (key == NULL || strlen(key) != 24 || strcmp(key + 22, "==") != 0)
        return 0;
    return EVP_DecodeBlock(raw, (const unsigned char *)key, 24) == 18;
}

void net__ws_handshake(net_req_t *req)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    const struct net_route_s *rt = req->route;
    const char *key = net_req_header(req, "Sec-WebSocket-Key");
    const char *ver = net_req_header(req, "Sec-WebSocket-Version");
    req->close_after = 1; /* unless accepted below */
    if (!has_token(net_req_header(req, "Upgrade"), "websocket") ||
        !has_token(net_req_header(req, "Connection"), "upgrade") || !key_valid(key)) {
        net_resp_error(req, 400, "bad_handshake", "invalid WebSocket handshake");
        return;
    }
    if (ver == NULL || strcmp(ver, "13") != 0) {
        net_resp_header(req, "Sec-WebSocket-Version", "13");
        net_resp_error(req, 426, "upgrade_required", "WebSocket version 13 is required");
        return;
    }
    if (rt->ws.on_upgrade) {
        int status = rt->ws.on_upgrade(req, rt->data);
        if (status == NET_WS_ANSWERED)
            return;
        if (status != 0) {
            net_resp_error(req, status >= 400 && status <= 599 ? status : 403, "refused",
                           "WebSocket upgrade refused");
            return;
        }
    }
    char buf[64];
    unsigned char md[EVP_MAX_MD_SIZE], acc[64];
    unsigned mdlen = 0;
    int n = snprintf(buf, sizeof(buf), "%s%s", key, guid);
    EVP_Digest(buf, (size_t)n, md, &mdlen, EVP_sha1(), NULL);
    EVP_EncodeBlock(acc, md, (int)mdlen);
    net_resp_header(req, "Sec-WebSocket-Accept", (const char *)acc);
    req->close_after = 0;
    req->upgrade = 1;
    net_resp_send(req, 101, NULL, NULL, 0);
}
