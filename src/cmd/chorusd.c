/* chorusd: arguments, configuration, signals, systemd notification and the
 * process lifecycle. Everything it serves is wired in chorusd_http.c. */
#define LOG_MODULE "chorusd"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "chorus/admin.h"
#include "chorus/config.h"
#include "chorus/core.h"
#include "chorus/secret.h"
#include "cmd/chorusd.h"
#include "cmd/chorusd_runtime.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: chorusd [--config FILE] [--listen ADDR:PORT] [--data-dir DIR] [--flows DIR]\n"
            "               [--check] [--version] [--help] [--help-config]\n"
            "\n"
            "  -c, --config FILE    configuration file (default: config/chorusd.json if it\n"
            "                       exists, else built-in defaults)\n"
            "  -l, --listen ADDR:PORT  override `listen` (port 0 picks a free port)\n"
            "  -d, --data-dir DIR   override `data_dir`\n"
            "  -f, --flows DIR      override `flows_dir`\n"
            "      --check          validate the configuration and flows, print every\n"
            "                       problem, exit 1 on any\n"
            "      --help-config    print the reference of every configuration option\n"
            "  -V, --version        print the version\n"
            "  -h, --help           print this help\n"
            "\n"
            "Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP reloads the configuration.\n");
}

static void print_diags(const core_diags_t *diags)
{
    char line[2048];
    for (size_t i = 0; i < diags->len; i++)
        fprintf(stderr, "%s\n", core_diag_format(&diags->items[i], line, sizeof(line)));
}

/* Loads the file (if any) and applies the command-line overrides into cfg. */
static int load_config(daemon_t *d, core_config_t *cfg, core_diags_t *diags)
{
    core_config_defaults(cfg);
    if (d->config_path != NULL && core_config_load(cfg, d->config_path, diags) != 0)
        return CORE_ERR_INVALID;
    int bad = 0;
    if (d->override_listen)
        bad |= core_config_set(cfg, "listen", d->override_listen, "--listen", diags) != 0;
    if (d->override_data)
        bad |= core_config_set(cfg, "data_dir", d->override_data, "--data-dir", diags) != 0;
    if (d->override_flows)
        bad |= core_config_set(cfg, "flows_dir", d->override_flows, "--flows", diags) != 0;
    /* Last, as nothing after it may fail: it installs the secrets it read. */
    if (!bad)
        bad = core_config_load_secrets(cfg, diags) != 0;
    return bad ? CORE_ERR_INVALID : 0;
}

static void apply_log_level(const core_config_t *cfg)
{
    int level = core_log_level_parse(cfg->log_level);
    if (level >= 0)
        core_log_set_level((core_log_level_t)level);
}

static void on_stopped(daemon_t *d)
{
    LOG_INFO("event=stopped exit_code=%d", d->exit_code);
    uv_close((uv_handle_t *)&d->sig_term, NULL);
    uv_close((uv_handle_t *)&d->sig_int, NULL);
    uv_close((uv_handle_t *)&d->sig_hup, NULL);
    uv_close((uv_handle_t *)&d->watchdog, NULL);
    admin_shutdown(); /* the rollout guard's timer */
}

/* In-flight requests are done; pending turns can now be cancelled, then the
 * store flushed and closed. */
static void on_drained(daemon_t *d)
{
    daemon_runtime_stop(d, on_stopped);
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
    daemon_t *d = h->data;
    if (d->stopping) {
        LOG_WARN("event=signal signal=%s action=ignored reason=already_stopping",
                 signum == SIGINT ? "SIGINT" : "SIGTERM");
        return;
    }
    d->stopping = 1;
    sd_notify(0, "STOPPING=1");
    LOG_INFO("event=signal signal=%s action=drain drain_timeout_ms=%lld",
             signum == SIGINT ? "SIGINT" : "SIGTERM", d->cfg.shutdown.drain_timeout_ms);
    daemon_http_drain(d, (uint64_t)d->cfg.shutdown.drain_timeout_ms, on_drained);
}

/* Every reload, applied or rejected, is an audit row. A signal names no
 * sender, so the actor is the signal itself. */
static void audit_reload(daemon_t *d, const char *status, size_t problems)
{
    char detail[96];
    snprintf(detail, sizeof(detail), "{\"status\":\"%s\",\"problems\":%zu}", status, problems);
    if (d->store == NULL || store_audit(d->store, "SIGHUP", "config.reload",
                                        d->config_path ? d->config_path : "-", detail) != 0)
        LOG_WARN("event=audit_lost action=config.reload");
}

static void on_reload_signal(uv_signal_t *h, int signum)
{
    daemon_t *d = h->data;
    if (d->stopping)
        return;
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)core_now_us());
    core_config_t next;
    core_diags_t diags;
    core_diags_init(&diags);
    if (load_config(d, &next, &diags) != 0 || admin_tokens_check(next.admin.tokens, &diags) != 0) {
        char line[2048];
        for (size_t i = 0; i < diags.len; i++)
            LOG_ERROR("event=reload status=rejected problem=%s",
                      core_log_quote(line, sizeof(line),
                                     core_diag_format(&diags.items[i], line + 1024, 1024),
                                     (size_t)-1, 900));
        LOG_WARN("event=reload status=kept_previous_config problems=%zu", diags.len);
        audit_reload(d, "rejected", diags.len);
        core_diags_dispose(&diags);
        core_config_dispose(&next);
        sd_notify(0, "READY=1\nSTATUS=reload rejected, previous configuration kept");
        return;
    }
    core_diags_dispose(&diags);
    char restart[512];
    if (core_config_restart_needed(&d->cfg, &next, restart, sizeof(restart)) > 0)
        LOG_WARN("event=reload restart_required=%s reason=\"these options take effect only "
                 "after a restart\"",
                 restart);
    /* Options that need a restart keep their running values. */
    char *keep_listen = core_xstrdup(d->cfg.listen), *keep_data = core_xstrdup(d->cfg.data_dir);
    char *keep_flows = core_xstrdup(d->cfg.flows_dir);
    core_config_dispose(&d->cfg);
    d->cfg = next;
    free(d->cfg.listen);
    free(d->cfg.data_dir);
    free(d->cfg.flows_dir);
    d->cfg.listen = keep_listen;
    d->cfg.data_dir = keep_data;
    d->cfg.flows_dir = keep_flows;
    apply_log_level(&d->cfg);
    daemon_http_reload(d);
    daemon_runtime_reload(d);
    LOG_INFO("event=reload status=applied config=%s", d->config_path ? d->config_path : "-");
    audit_reload(d, "applied", 0);
    sd_notify(0, "READY=1\nSTATUS=serving");
}

static void on_watchdog(uv_timer_t *t)
{
    sd_notify(0, "WATCHDOG=1");
}

static int parse_args(daemon_t *d, int argc, char **argv, int *check_only)
{
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"listen", required_argument, NULL, 'l'},
                                             {"data-dir", required_argument, NULL, 'd'},
                                             {"flows", required_argument, NULL, 'f'},
                                             {"check", no_argument, NULL, 'C'},
                                             {"version", no_argument, NULL, 'V'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"help-config", no_argument, NULL, 'R'},
                                             {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "c:l:d:f:Vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            free(d->config_path);
            d->config_path = core_xstrdup(optarg);
            break;
        case 'l':
            d->override_listen = optarg;
            break;
        case 'd':
            d->override_data = optarg;
            break;
        case 'f':
            d->override_flows = optarg;
            break;
        case 'C':
            *check_only = 1;
            break;
        case 'V':
            printf("chorusd %s\n", CHORUS_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        case 'R':
            core_config_print_reference(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "chorusd: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (d->config_path == NULL && access("config/chorusd.json", R_OK) == 0)
        d->config_path = core_xstrdup("config/chorusd.json");
    return -1; /* continue */
}

int main(int argc, char **argv)
{
    daemon_t d;
    memset(&d, 0, sizeof(d));
    int check_only = 0;
    int rc = parse_args(&d, argc, argv, &check_only);
    if (rc >= 0) {
        free(d.config_path);
        return rc;
    }

    core_diags_t diags;
    core_diags_init(&diags);
    int bad = load_config(&d, &d.cfg, &diags) != 0;
    if (!bad)
        bad = daemon_runtime_check(&d, &diags) != 0;
    if (!bad)
        bad = daemon_tls_check(&d, &diags) != 0;
    if (bad || diags.len > 0) {
        print_diags(&diags);
        fprintf(stderr, "chorusd: %zu problem%s found\n", diags.len, diags.len == 1 ? "" : "s");
        core_diags_dispose(&diags);
        core_config_dispose(&d.cfg);
        free(d.config_path);
        return 1;
    }
    core_diags_dispose(&diags);
    if (check_only) {
        printf("chorusd: %s: ok\n", d.config_path ? d.config_path : "(defaults)");
        core_config_dispose(&d.cfg);
        free(d.config_path);
        return 0;
    }
    apply_log_level(&d.cfg);
    signal(SIGPIPE, SIG_IGN);

    d.loop = uv_default_loop();
    core_err_t err = {0};
    if (daemon_runtime_start(&d, &err) != 0 || daemon_http_start(&d, &err) != 0) {
        LOG_ERROR("event=start_failed reason=%s", err.msg);
        fprintf(stderr, "chorusd: %s\n", err.msg);
        daemon_runtime_stop(&d, NULL);
        daemon_http_free(&d);
        uv_run(d.loop, UV_RUN_DEFAULT);
        daemon_runtime_free(&d);
        core_config_dispose(&d.cfg);
        free(d.config_path);
        uv_loop_close(d.loop);
        return 1;
    }
    uv_signal_init(d.loop, &d.sig_term);
    uv_signal_init(d.loop, &d.sig_int);
    uv_signal_init(d.loop, &d.sig_hup);
    d.sig_term.data = d.sig_int.data = d.sig_hup.data = &d;
    uv_signal_start(&d.sig_term, on_stop_signal, SIGTERM);
    uv_signal_start(&d.sig_int, on_stop_signal, SIGINT);
    uv_signal_start(&d.sig_hup, on_reload_signal, SIGHUP);
    uv_timer_init(d.loop, &d.watchdog);
    d.watchdog.data = &d;
    if (sd_watchdog_enabled(0, &d.watchdog_usec) > 0 && d.watchdog_usec > 0)
        uv_timer_start(&d.watchdog, on_watchdog, 0, d.watchdog_usec / 2000);

    LOG_INFO("event=ready version=%s addr=%s port=%d config=%s data_dir=%s flows_dir=%s pid=%d",
             CHORUS_VERSION, d.bound_addr, d.bound_port, d.config_path ? d.config_path : "-",
             d.cfg.data_dir, d.cfg.flows_dir, (int)getpid());
    sd_notifyf(0, "READY=1\nSTATUS=serving on %s:%d\nMAINPID=%d", d.bound_addr, d.bound_port,
               (int)getpid());

    uv_run(d.loop, UV_RUN_DEFAULT);
    daemon_http_free(&d);
    daemon_runtime_free(&d);
    int code = d.exit_code;
    if (uv_loop_close(d.loop) != 0)
        LOG_WARN("event=loop_close status=handles_still_open");
    core_config_dispose(&d.cfg);
    free(d.config_path);
    return code;
}
