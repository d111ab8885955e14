/* net_tls.h — TLS listeners for the HTTP/WebSocket server (OpenSSL).
 *
 * A server may listen on a plain port, a TLS port, or both; connections on
 * the TLS port run the same HTTP parser, router and WebSocket code as plain
 * ones. OpenSSL never touches the socket: received bytes go into a memory
 * BIO, SSL_read hands plaintext to the HTTP parser, answers go through
 * SSL_write, and the ciphertext that collects in the other memory BIO is
 * written by libuv. Backpressure, limits and timeouts are the plain ones
 * (the handshake must finish within http.header_timeout_ms).
 *
 * TLS 1.2 and 1.3 only, ALPN "http/1.1", session resumption by tickets and
 * the server session cache.
 *
 * Threads: loop thread only, like net.h. A context may be loaded on any
 * thread before it is handed to a server.
 *
 * Ownership: net_tls_ctx_new() returns a context the caller owns until it
 * passes it to net_server_listen_tls() or net_server_set_tls(), which take
 * it (also on failure). A replaced context is released at once; connections
 * that were accepted with it keep using it until they close.
 *
 * Errors: net_tls_ctx_new() returns NULL with err naming the option and the
 * file (unreadable file, not PEM, key not matching the certificate, bad
 * cipher list). */
#ifndef CHORUS_NET_TLS_H
#define CHORUS_NET_TLS_H

#include "chorus/net.h"

typedef struct net_tls_ctx_s net_tls_ctx_t;

typedef struct net_tls_options_s {
    const char *cert_file;    /* PEM: the certificate, then its intermediates */
    const char *key_file;     /* PEM private key matching the certificate */
    const char *min_version;  /* "1.2" or "1.3"; NULL: "1.2" */
    const char *ciphers;      /* TLS 1.2 cipher list; NULL or "": the modern default */
    const char *ciphersuites; /* TLS 1.3 suites; NULL or "": OpenSSL's default */
} net_tls_options_t;

/* The TLS 1.2 cipher list used when none is configured: ECDHE with AEAD only. */
#define NET_TLS_DEFAULT_CIPHERS                                                                    \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* Loads the certificate chain and key and builds a server context. Returns
 * NULL with err set (CORE_ERR_IO for an unreadable file, CORE_ERR_INVALID
 * otherwise), the message naming the file. */
net_tls_ctx_t *net_tls_ctx_new(const net_tls_options_t *o, core_err_t *err);
void net_tls_ctx_free(net_tls_ctx_t *ctx);
/* "CN=example.test, not after 2027-01-01 00:00:00Z" of the certificate, for logs. */
const char *net_tls_ctx_describe(const net_tls_ctx_t *ctx);

/* Binds host/port like net_server_listen() and accepts TLS connections with
 * ctx (taken). At most one TLS listener per server. */
int net_server_listen_tls(net_server_t *s, const char *host, int port, net_tls_ctx_t *ctx,
                          core_err_t *err);
/* The TLS port actually bound, 0 when none. */
int net_server_tls_port(const net_server_t *s);
/* Uses ctx (taken) for connections accepted from now on. */
void net_server_set_tls(net_server_t *s, net_tls_ctx_t *ctx);

#endif
