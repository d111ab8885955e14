/* TLS contexts (errors name the file), a real handshake and two pipelined
 * requests through the TLS listener on loopback with an in-process OpenSSL
 * client on the same loop, and the outbound CA settings. The certificate is
 * made here with OpenSSL's API. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "chorus/net_client.h"
#include "chorus/net_tls.h"

static char dir[64], cert[96], key[96], other[96], garbage[96];

static void write_key(EVP_PKEY *k, const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

static int make_files(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/chorus-tls-unit-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(other, sizeof(other), "%s/other.pem", dir);
    snprintf(garbage, sizeof(garbage), "%s/garbage.pem", dir);
    EVP_PKEY *k = EVP_EC_gen("P-256"), *k2 = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, k);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(x, n);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    FILE *f = fopen(cert, "w");
    PEM_write_X509(f, x);
    fclose(f);
    write_key(k, key);
    write_key(k2, other);
    f = fopen(garbage, "w");
    fputs("not a certificate\n", f);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(k);
    EVP_PKEY_free(k2);
    return 0;
}

static int remove_files(void **state)
{
    unlink(cert), unlink(key), unlink(other), unlink(garbage);
    rmdir(dir);
    return 0;
}

static void refused(const net_tls_options_t *o, int code, const char *a, const char *b)
{
    core_err_t err = {0};
    assert_null(net_tls_ctx_new(o, &err));
    assert_int_equal(err.code, code);
    if (strstr(err.msg, a) == NULL || (b && strstr(err.msg, b) == NULL))
        fail_msg("\"%s\" lacks \"%s\" / \"%s\"", err.msg, a, b ? b : "");
}

static void test_ctx_errors_name_the_file(void **state)
{
    char missing[128];
    snprintf(missing, sizeof(missing), "%s/missing.pem", dir);
    refused(&(net_tls_options_t){.cert_file = missing, .key_file = key}, CORE_ERR_IO, missing,
            "tls.cert_file");
    refused(&(net_tls_options_t){.cert_file = cert, .key_file = other}, CORE_ERR_INVALID, other,
            "does not match");
    refused(&(net_tls_options_t){.cert_file = garbage, .key_file = key}, CORE_ERR_INVALID, garbage,
            "tls.cert_file");
    refused(&(net_tls_options_t){.cert_file = cert, .key_file = garbage}, CORE_ERR_INVALID, garbage,
            "tls.key_file");
    refused(&(net_tls_options_t){.cert_file = cert, .key_file = key, .min_version = "1.1"},
            CORE_ERR_INVALID, "tls.min_version", NULL);
    refused(&(net_tls_options_t){.cert_file = cert, .key_file = key, .ciphers = "NOPE"},
            CORE_ERR_INVALID, "tls.ciphers", NULL);
    core_err_t err = {0};
    net_tls_ctx_t *ok =
        net_tls_ctx_new(&(net_tls_options_t){.cert_file = cert, .key_file = key}, &err);
    assert_non_null(ok);
    assert_non_null(strstr(net_tls_ctx_describe(ok), "CN=localhost"));
    net_tls_ctx_free(ok);
}

/* ---- a client on the same loop ------------------------------------------ */

typedef struct client_s {
    uv_tcp_t tcp;
    uv_connect_t conn;
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *rbio, *wbio;
    int sent;
    char got[4096];
    size_t got_len;
    net_server_t *srv;
} client_t;

static void on_written(uv_write_t *w, int status)
{
    free(w->data);
    free(w);
}

static void flush_client(client_t *c)
{
    size_t n = BIO_ctrl_pending(c->wbio);
    if (n == 0)
        return;
    uv_write_t *w = malloc(sizeof(*w));
    w->data = malloc(n);
    BIO_read(c->wbio, w->data, (int)n);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
    assert_int_equal(uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_written), 0);
}

static void on_drained(net_server_t *s, void *data)
{
}

static void client_step(client_t *c)
{
    if (!SSL_is_init_finished(c->ssl)) {
        SSL_do_handshake(c->ssl);
        flush_client(c);
        if (!SSL_is_init_finished(c->ssl))
            return;
    }
    if (!c->sent) {
        static const char reqs[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                                   "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_int_equal(SSL_write(c->ssl, reqs, sizeof(reqs) - 1), (int)sizeof(reqs) - 1);
        c->sent = 1;
        flush_client(c);
    }
    int n;
    while ((n = SSL_read(c->ssl, c->got + c->got_len, (int)(sizeof(c->got) - 1 - c->got_len))) > 0)
        c->got_len += (size_t)n;
    c->got[c->got_len] = '\0';
    const char *second = strstr(c->got, "\r\n\r\nhi");
    if (second && strstr(second + 6, "\r\n\r\nhi")) {
        uv_close((uv_handle_t *)&c->tcp, NULL);
        net_server_drain(c->srv, 1000, on_drained, NULL);
    }
}

static void on_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    static char buf[65536];
    *b = uv_buf_init(buf, sizeof(buf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    client_t *c = s->data;
    assert_true(n >= 0); /* the server closes nothing here */
    if (n > 0) {
        BIO_write(c->rbio, b->base, (int)n);
        client_step(c);
    }
}

static void on_connect(uv_connect_t *r, int status)
{
    client_t *c = r->data;
    assert_int_equal(status, 0);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    client_step(c);
}

static void on_hello(net_req_t *req, void *data)
{
    net_resp_send(req, 200, "text/plain", "hi", 2);
}

static void test_handshake_and_pipelined_requests(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    net_router_t *r = net_router_new();
    assert_int_equal(net_router_add(r, "GET", "/hello", on_hello, NULL, NULL), 0);
    net_limits_t lim = {.max_header_bytes = 8192,
                        .max_headers = 50,
                        .max_body_bytes = 1024,
                        .max_connections = 10,
                        .max_pipelined = 8,
                        .header_timeout_ms = 5000,
                        .body_timeout_ms = 5000,
                        .idle_timeout_ms = 5000,
                        .requests_per_second = 1000,
                        .request_burst = 1000,
                        .write_buffer_bytes = 65536,
                        .ws_max_message_bytes = 1024,
                        .ws_ping_interval_ms = 5000,
                        .ws_pong_timeout_ms = 5000,
                        .ws_send_queue_bytes = 65536,
                        .ws_close_timeout_ms = 5000};
    net_server_t *s = net_server_new(&loop, &lim, r);
    core_err_t err = {0};
    net_tls_ctx_t *ctx =
        net_tls_ctx_new(&(net_tls_options_t){.cert_file = cert, .key_file = key}, &err);
    assert_non_null(ctx);
    assert_int_equal(net_server_listen_tls(s, "127.0.0.1", 0, ctx, &err), 0);
    assert_true(net_server_tls_port(s) > 0);

    client_t c = {.srv = s};
    c.ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_alpn_protos(c.ctx, (const unsigned char *)"\x02h2\x08http/1.1", 12);
    c.ssl = SSL_new(c.ctx);
    c.rbio = BIO_new(BIO_s_mem());
    c.wbio = BIO_new(BIO_s_mem());
    SSL_set_bio(c.ssl, c.rbio, c.wbio);
    SSL_set_connect_state(c.ssl);
    uv_tcp_init(&loop, &c.tcp);
    c.tcp.data = c.conn.data = &c;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", net_server_tls_port(s), &sa);
    uv_tcp_connect(&c.conn, &c.tcp, (struct sockaddr *)&sa, on_connect);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);

    assert_int_equal(strncmp(c.got, "HTTP/1.1 200 OK\r\n", 17), 0);
    const unsigned char *alpn;
    unsigned int alen;
    SSL_get0_alpn_selected(c.ssl, &alpn, &alen);
    assert_int_equal(alen, 8);
    assert_memory_equal(alpn, "http/1.1", 8);
    assert_true(SSL_version(c.ssl) >= TLS1_2_VERSION);
    SSL_free(c.ssl);
    SSL_CTX_free(c.ctx);
    net_server_free(s);
    net_router_free(r);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_outbound_settings(void **state)
{
    core_err_t err = {0};
    assert_int_equal(net_client_set_tls(NULL, "no-equals-sign", NULL, &err), CORE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "outbound.ca_files"));
    char bad[160];
    snprintf(bad, sizeof(bad), "api.example=%s/missing-ca.pem", dir);
    assert_int_equal(net_client_set_tls(NULL, bad, NULL, &err), CORE_ERR_IO);
    assert_non_null(strstr(err.msg, "missing-ca.pem"));
    assert_int_equal(net_client_set_tls(garbage + strlen(garbage), NULL, NULL, &err), 0);
    char missing[128];
    snprintf(missing, sizeof(missing), "%s/none.pem", dir);
    assert_int_equal(net_client_set_tls(missing, NULL, NULL, &err), CORE_ERR_IO);
    assert_non_null(strstr(err.msg, "outbound.ca_file"));
    char good[320];
    snprintf(good, sizeof(good), "a.example=%s,b.example=%s", cert, cert);
    assert_int_equal(net_client_set_tls(cert, good, "c.example, d.example", &err), 0);
    assert_int_equal(net_client_set_tls(NULL, NULL, NULL, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctx_errors_name_the_file),
        cmocka_unit_test(test_handshake_and_pipelined_requests),
        cmocka_unit_test(test_outbound_settings),
    };
    return cmocka_run_group_tests(tests, make_files, remove_files);
}
