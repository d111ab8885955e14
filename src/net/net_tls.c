/* TLS under the HTTP server: contexts (certificate, key, versions, ciphers,
 * ALPN, resumption), the TLS listener and the per-connection memory-BIO
 * engine. See chorus/net_tls.h.
 *
 * Reads: the socket's bytes go into rbio; every plaintext record available
 * is decrypted into one buffer and handed to the HTTP layer in a single
 * call, exactly as a plain read would be, so pausing (pipelining limits,
 * slow writers) keeps working through c->pending. Writes: net__tls_seal()
 * turns the plaintext collected in c->out into records and replaces it with
 * the ciphertext from wbio, which the server writes as usual. */
#define LOG_MODULE "net"
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/net_tls.h"
#include "net/net_int.h"

struct net_tls_ctx_s {
    SSL_CTX *ssl;
    char desc[256];
};

struct net_tls_srv_s {
    net_tls_ctx_t *ctx;
    uv_tcp_t listener;
    int open;      /* listener handle initialised and not closed */
    int port;      /* bound port */
    net_obuf_t pt; /* decrypted bytes of one read */
};

struct net_tls_conn_s {
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
    int ready;        /* handshake done */
    int failed;       /* fatal error: only flush the alert, then close */
    int shut;         /* close_notify queued */
};

/* ---- contexts ----------------------------------------------------------- */

/* The last OpenSSL error as text (and clears the queue). */
static const char *ssl_reason(char *buf, size_t size)
{
    unsigned long e = ERR_peek_last_error();
    if (e == 0)
        snprintf(buf, size, "unknown error");
    else
        ERR_error_string_n(e, buf, size);
    ERR_clear_error();
    return buf;
}

static int check_readable(const char *opt, const char *path, core_err_t *err)
{
    if (path == NULL || path[0] == '\0')
        return core_err_set(err, CORE_ERR_INVALID, "%s: must name a PEM file", opt);
    return core_file_readable(opt, path, err);
}

static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char ours[] = "\x08http/1.1";
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, ours, sizeof(ours) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* a client without http/1.1 gets no ALPN */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static void describe(net_tls_ctx_t *t)
{
    X509 *x = SSL_CTX_get0_certificate(t->ssl);
    char cn[128] = "?", until[64] = "?";
    if (x != NULL) {
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
        struct tm tm;
        if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
            strftime(until, sizeof(until), "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    snprintf(t->desc, sizeof(t->desc), "CN=%s not_after=%s", cn, until);
}

/* OpenSSL's default asks the controlling terminal for an encrypted key's
 * passphrase, which would stop the loop (on a SIGHUP too) under a tty:
 * no passphrase is given, and the key is refused as encrypted. */
static int no_passphrase(char *buf, int size, int rwflag, void *asked)
{
    (void)buf, (void)size, (void)rwflag;
    if (asked != NULL)
        *(int *)asked = 1;
    return 0;
}

static int ctx_settings(SSL_CTX *ssl, const net_tls_options_t *o, core_err_t *err)
{
    char why[256];
    const char *min = o->min_version ? o->min_version : "1.2";
    int v = strcmp(min, "1.3") == 0 ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (strcmp(min, "1.2") != 0 && strcmp(min, "1.3") != 0)
        return core_err_set(err, CORE_ERR_INVALID, "tls.min_version: \"%s\" is not 1.2 or 1.3",
                            min);
    SSL_CTX_set_min_proto_version(ssl, v);
    SSL_CTX_set_options(ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    const char *ciphers = o->ciphers && o->ciphers[0] ? o->ciphers : NET_TLS_DEFAULT_CIPHERS;
    if (SSL_CTX_set_cipher_list(ssl, ciphers) != 1)
        return core_err_set(err, CORE_ERR_INVALID, "tls.ciphers \"%s\": %s", ciphers,
                            ssl_reason(why, sizeof(why)));
    if (o->ciphersuites && o->ciphersuites[0] &&
        SSL_CTX_set_ciphersuites(ssl, o->ciphersuites) != 1)
        return core_err_set(err, CORE_ERR_INVALID, "tls.ciphersuites \"%s\": %s", o->ciphersuites,
                            ssl_reason(why, sizeof(why)));
    /* idle connections (WebSockets waiting for a message) hold no record
     * buffers: about 28 KiB less each; costs a malloc per busy read */
    SSL_CTX_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_alpn_select_cb(ssl, on_alpn, NULL);
    /* resumption: tickets (OpenSSL's default) and the server-side cache */
    SSL_CTX_set_session_cache_mode(ssl, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_session_id_context(ssl, (const unsigned char *)"chorus", 6);
    SSL_CTX_sess_set_cache_size(ssl, 20000);
    return 0;
}

net_tls_ctx_t *net_tls_ctx_new(const net_tls_options_t *o, core_err_t *err)
{
    char why[256];
    if (check_readable("tls.cert_file", o->cert_file, err) != 0 ||
        check_readable("tls.key_file", o->key_file, err) != 0)
        return NULL;
    net_tls_ctx_t *t = core_xcalloc(1, sizeof(*t));
    t->ssl = SSL_CTX_new(TLS_server_method());
    if (t->ssl == NULL) {
        core_err_set(err, CORE_ERR_IO, "TLS context: %s", ssl_reason(why, sizeof(why)));
        goto fail;
    }
    if (ctx_settings(t->ssl, o, err) != 0)
        goto fail;
    if (SSL_CTX_use_certificate_chain_file(t->ssl, o->cert_file) != 1) {
        core_err_set(err, CORE_ERR_INVALID,
                     "tls.cert_file \"%s\": not a usable PEM certificate "
                     "chain: %s",
                     o->cert_file, ssl_reason(why, sizeof(why)));
        goto fail;
    }
    int asked = 0;
    SSL_CTX_set_default_passwd_cb(t->ssl, no_passphrase);
    SSL_CTX_set_default_passwd_cb_userdata(t->ssl, &asked);
    int key_ok = SSL_CTX_use_PrivateKey_file(t->ssl, o->key_file, SSL_FILETYPE_PEM) == 1;
    SSL_CTX_set_default_passwd_cb_userdata(t->ssl, NULL);
    if (!key_ok || SSL_CTX_check_private_key(t->ssl) != 1) {
        unsigned long e = ERR_peek_last_error();
        if (asked)
            core_err_set(err, CORE_ERR_INVALID,
                         "tls.key_file \"%s\": the key is encrypted; chorusd reads unencrypted "
                         "PEM keys only (decrypt it, e.g. openssl pkey -in KEY -out KEY.plain, "
                         "and keep it readable by the service alone)",
                         o->key_file);
        else if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
            core_err_set(err, CORE_ERR_INVALID,
                         "tls.key_file \"%s\" does not match the certificate in tls.cert_file "
                         "\"%s\"",
                         o->key_file, o->cert_file);
        else
            core_err_set(err, CORE_ERR_INVALID,
                         "tls.key_file \"%s\": not a usable PEM private "
                         "key: %s",
                         o->key_file, ssl_reason(why, sizeof(why)));
        ERR_clear_error();
        goto fail;
    }
    describe(t);
    return t;
fail:
    net_tls_ctx_free(t);
    return NULL;
}

void net_tls_ctx_free(net_tls_ctx_t *ctx)
{
    if (ctx == NULL)
        return;
    SSL_CTX_free(ctx->ssl); /* connections hold their own references */
    free(ctx);
}

const char *net_tls_ctx_describe(const net_tls_ctx_t *ctx)
{
    return ctx->desc;
}

/* ---- the listener ------------------------------------------------------- */

int net_server_listen_tls(net_server_t *s, const char *host, int port, net_tls_ctx_t *ctx,
                          core_err_t *err)
{
    struct sockaddr_storage ss;
    if (s->tls != NULL) {
        net_tls_ctx_free(ctx);
        return core_err_set(err, CORE_ERR_EXISTS, "tls.listen: already listening");
    }
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0) {
        net_tls_ctx_free(ctx);
        return core_err_set(err, CORE_ERR_INVALID, "tls.listen: \"%s\" is not a numeric IP address",
                            host);
    }
    struct net_tls_srv_s *t = core_xcalloc(1, sizeof(*t));
    t->ctx = ctx;
    s->tls = t;
    net__server_check_start(s); /* request logs, as net_server_listen() does */
    uv_tcp_init(s->loop, &t->listener);
    t->listener.data = s;
    t->open = 1;
    int rc = uv_tcp_bind(&t->listener, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&t->listener, 1024, net__on_connection);
    if (rc != 0)
        return core_err_set(err, rc, "tls.listen %s:%d: %s", host, port, uv_strerror(rc));
    int len = sizeof(ss);
    uv_tcp_getsockname(&t->listener, (struct sockaddr *)&ss, &len);
    t->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

int net_server_tls_port(const net_server_t *s)
{
    return s->tls ? s->tls->port : 0;
}

void net_server_set_tls(net_server_t *s, net_tls_ctx_t *ctx)
{
    if (s->tls == NULL) {
        net_tls_ctx_free(ctx);
        return;
    }
    net_tls_ctx_free(s->tls->ctx);
    s->tls->ctx = ctx;
}

static void on_listener_closed(uv_handle_t *h)
{
    net_server_t *s = h->data;
    s->tls->open = 0;
    net__check_drained(s);
}

void net__tls_drain(net_server_t *s)
{
    if (s->tls && s->tls->open && !uv_is_closing((uv_handle_t *)&s->tls->listener))
        uv_close((uv_handle_t *)&s->tls->listener, on_listener_closed);
}

int net__tls_listening(const net_server_t *s)
{
    return s->tls != NULL && s->tls->open;
}

void net__tls_server_free(net_server_t *s)
{
    if (s->tls == NULL)
        return;
    net_tls_ctx_free(s->tls->ctx);
    net__obuf_free(&s->tls->pt);
    free(s->tls);
    s->tls = NULL;
}

/* ---- connections -------------------------------------------------------- */

int net__tls_accept(net_conn_t *c)
{
    struct net_tls_conn_s *t = core_xcalloc(1, sizeof(*t));
    c->tls = t;
    t->ssl = SSL_new(c->srv->tls->ctx->ssl);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (t->ssl == NULL || t->rbio == NULL || t->wbio == NULL) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        t->rbio = t->wbio = NULL;
        LOG_WARN("event=tls_accept_failed conn=%s", c->remote);
        ERR_clear_error();
        return CORE_ERR_IO;
    }
    BIO_set_mem_eof_return(t->rbio, -1); /* empty means "want more", not EOF */
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_accept_state(t->ssl);
    /* the handshake gets the header timeout; net__conn_update_timer leaves
     * this deadline alone until net__tls_ready() */
    c->deadline = 0;
    net__conn_set_deadline(c, c->srv->lim.header_timeout_ms);
    return 0;
}

int net__tls_ready(const net_conn_t *c)
{
    return c->tls->ready;
}

int net__tls_partial(const net_conn_t *c)
{
    const struct net_tls_conn_s *t = c->tls;
    return t->ready && !t->failed && SSL_has_pending(t->ssl);
}

void net__tls_conn_free(net_conn_t *c)
{
    if (c->tls == NULL)
        return;
    SSL_free(c->tls->ssl); /* frees both BIOs */
    free(c->tls);
    c->tls = NULL;
}

/* A fatal TLS error: queue the alert OpenSSL produced, answer nothing more. */
static void tls_fail(net_conn_t *c, const char *what)
{
    char why[256];
    c->tls->failed = 1;
    LOG_INFO("event=tls_error conn=%s phase=%s reason=\"%s\"", c->remote, what,
             ssl_reason(why, sizeof(why)));
    c->parse_dead = 1;
    c->close_after_flush = 1;
    c->out.len = 0;
}

static int handshake(net_conn_t *c)
{
    struct net_tls_conn_s *t = c->tls;
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->ready = 1;
        LOG_DEBUG("event=tls_handshake conn=%s version=%s cipher=%s resumed=%d", c->remote,
                  SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl), SSL_session_reused(t->ssl));
        return 0;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 1;
    tls_fail(c, "handshake");
    return -1;
}

void net__tls_read(net_conn_t *c, const char *data, size_t len)
{
    struct net_tls_conn_s *t = c->tls;
    if (t->failed || t->shut)
        return;
    if (BIO_write(t->rbio, data, (int)len) != (int)len) {
        tls_fail(c, "read");
        return;
    }
    if (!t->ready && handshake(c) != 0)
        return;
    net_obuf_t *pt = &c->srv->tls->pt;
    pt->len = 0;
    for (;;) {
        net__obuf_reserve(pt, 16384);
        int n = SSL_read(t->ssl, pt->data + pt->len, (int)(pt->cap - pt->len));
        if (n > 0) {
            pt->len += (size_t)n;
            continue;
        }
        int e = SSL_get_error(t->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break;
        if (e == SSL_ERROR_ZERO_RETURN) {
            /* close_notify: what came before it is still served; TCP EOF follows */
            ERR_clear_error();
            break;
        }
        tls_fail(c, "read");
        return;
    }
    if (pt->len > 0)
        net__conn_process(c, pt->data, pt->len);
}

int net__tls_seal(net_conn_t *c)
{
    struct net_tls_conn_s *t = c->tls;
    if (t->failed)
        c->out.len = 0; /* answers that came after a fatal error never go out in clear */
    if (!t->failed && t->ready && c->out.len > 0) {
        /* memory BIOs never block: SSL_write takes all of it or fails */
        int n = SSL_write(t->ssl, c->out.data, (int)c->out.len);
        if (n <= 0) {
            tls_fail(c, "write");
            return -1;
        }
        c->out.len = 0;
    }
    if (!t->failed && t->ready && !t->shut && c->close_after_flush && c->out.len == 0) {
        t->shut = 1;
        SSL_shutdown(t->ssl); /* close_notify before the FIN */
        ERR_clear_error();
    }
    if (t->ready || t->failed || !c->out.len) {
        size_t pending = BIO_ctrl_pending(t->wbio);
        if (pending > 0) {
            net__obuf_reserve(&c->out, pending);
            int n = BIO_read(t->wbio, c->out.data + c->out.len, (int)pending);
            if (n > 0)
                c->out.len += (size_t)n;
        }
    }
    return 0;
}
