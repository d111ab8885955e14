/* chorusd's TLS: checking the tls.* options (startup and --check), the TLS
 * listener beside the plain one, certificates re-read on SIGHUP, and the
 * warning about outbound hosts whose certificates are not verified. */
#define LOG_MODULE "chorusd"
#include <stdio.h>
#include <string.h>

#include "chorus/net_client.h"
#include "chorus/net_tls.h"
#include "cmd/chorusd.h"

static void tls_options(const core_config_t *cfg, net_tls_options_t *o)
{
    *o = (net_tls_options_t){.cert_file = cfg->tls.cert_file,
                             .key_file = cfg->tls.key_file,
                             .min_version = cfg->tls.min_version,
                             .ciphers = cfg->tls.ciphers,
                             .ciphersuites = cfg->tls.ciphersuites};
}

static const char *config_name(const daemon_t *d)
{
    return d->config_path ? d->config_path : "(defaults)";
}

/* outbound.*: checked and put in force for every outbound client */
static int outbound_check(daemon_t *d, core_diags_t *diags)
{
    const core_config_t *cfg = &d->cfg;
    core_err_t err = {0};
    if (net_client_set_tls(cfg->outbound.ca_file, cfg->outbound.ca_files,
                           cfg->outbound.insecure_hosts, &err) != 0) {
        core_diags_add(diags, config_name(d), 0, 0, "outbound", "%s", err.msg);
        return CORE_ERR_INVALID;
    }
    return 0;
}

int daemon_tls_check(daemon_t *d, core_diags_t *diags)
{
    const core_config_t *cfg = &d->cfg;
    if (outbound_check(d, diags) != 0)
        return CORE_ERR_INVALID;
    if (cfg->tls.listen[0] == '\0') {
        if (cfg->tls.cert_file[0] != '\0' || cfg->tls.key_file[0] != '\0')
            fprintf(stderr,
                    "chorusd: warning: %s: tls.listen is empty, so tls.cert_file and "
                    "tls.key_file are not used\n",
                    config_name(d));
        return 0;
    }
    char host[64];
    int port;
    if (core_config_parse_listen(cfg->tls.listen, host, sizeof(host), &port) != 0) {
        core_diags_add(diags, config_name(d), 0, 0, "tls.listen",
                       "must be ADDR:PORT with a port 0-65535, such as 0.0.0.0:8443");
        return CORE_ERR_INVALID;
    }
    net_tls_options_t o;
    tls_options(cfg, &o);
    core_err_t err = {0};
    net_tls_ctx_t *ctx = net_tls_ctx_new(&o, &err);
    if (ctx == NULL) {
        core_diags_add(diags, config_name(d), 0, 0, "tls", "%s", err.msg);
        return CORE_ERR_INVALID;
    }
    net_tls_ctx_free(ctx);
    return 0;
}

int daemon_tls_start(daemon_t *d, net_server_t *s, core_err_t *err)
{
    const core_config_t *cfg = &d->cfg;
    if (cfg->outbound.insecure_hosts[0] != '\0')
        LOG_WARN("event=tls_verify_off hosts=\"%s\" reason=\"outbound.insecure_hosts: these "
                 "hosts' certificates are not verified\"",
                 cfg->outbound.insecure_hosts);
    if (cfg->tls.listen[0] == '\0')
        return 0;
    char host[64];
    int port;
    if (core_config_parse_listen(cfg->tls.listen, host, sizeof(host), &port) != 0)
        return core_err_set(err, CORE_ERR_INVALID, "tls.listen: bad address \"%s\"",
                            cfg->tls.listen);
    net_tls_options_t o;
    tls_options(cfg, &o);
    net_tls_ctx_t *ctx = net_tls_ctx_new(&o, err);
    if (ctx == NULL)
        return err->code != 0 ? err->code : CORE_ERR_INVALID;
    char desc[256];
    snprintf(desc, sizeof(desc), "%s", net_tls_ctx_describe(ctx));
    int rc = net_server_listen_tls(s, host, port, ctx, err);
    if (rc != 0)
        return rc;
    LOG_INFO("event=tls_ready addr=%s port=%d cert=\"%s\" %s min_version=%s", host,
             net_server_tls_port(s), cfg->tls.cert_file, desc, cfg->tls.min_version);
    return 0;
}

void daemon_tls_reload(daemon_t *d, net_server_t *s)
{
    const core_config_t *cfg = &d->cfg;
    if (net_server_tls_port(s) == 0)
        return;
    net_tls_options_t o;
    tls_options(cfg, &o);
    core_err_t err = {0};
    net_tls_ctx_t *ctx = net_tls_ctx_new(&o, &err);
    if (ctx == NULL) {
        char q[600];
        LOG_ERROR("event=tls_reload status=rejected reason=%s action=kept_previous_certificate",
                  core_log_quote(q, sizeof(q), err.msg, (size_t)-1, 500));
        return;
    }
    LOG_INFO("event=tls_reload status=applied cert=\"%s\" %s", cfg->tls.cert_file,
             net_tls_ctx_describe(ctx));
    net_server_set_tls(s, ctx);
}
