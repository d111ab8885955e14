/* chorusd.h — the daemon's process object, shared by the files of src/cmd
 * that wire it together: chorusd.c (arguments, signals, systemd, lifecycle),
 * chorusd_http.c (the HTTP/WebSocket listener and its routes) and
 * chorusd_runtime.c (the store and the turn runtime).
 * Loop thread only. */
#ifndef CHORUSD_H
#define CHORUSD_H

#include <uv.h>

#include "chorus/config.h"

typedef struct daemon_s daemon_t;

struct daemon_s {
    uv_loop_t *loop;             /* borrowed: the default loop */
    core_config_t cfg;           /* the config in force */
    char *config_path;           /* owned; NULL when running on defaults */
    const char *override_listen; /* --listen, re-applied on reload; borrowed from argv */
    const char *override_data;   /* --data-dir */
    const char *override_flows;  /* --flows */
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t watchdog;    /* sd_notify WATCHDOG=1 pings */
    uint64_t watchdog_usec; /* systemd's WatchdogSec, 0 when off */
    int stopping;           /* SIGTERM/SIGINT received */
    int exit_code;
    void *http;                           /* owned by chorusd_http.c */
    struct runtime_s *runtime;            /* owned by chorusd_runtime.c; NULL once stopping */
    struct store_s *store;                /* owned by chorusd_runtime.c */
    struct store_metrics_s *metrics;      /* owned by chorusd_runtime.c; /metrics renders it */
    int flows_loaded;                     /* the first flow load succeeded */
    int flows_missing;                    /* no flows directory at the last (re)load */
    void (*runtime_stopped)(daemon_t *d); /* pending daemon_runtime_stop() callback */
    char bound_addr[64];                  /* the address actually listened on */
    int bound_port;                       /* the port actually listened on (port 0 resolved) */
};

/* Starts listening on d->cfg.listen and registers every route; fills
 * bound_addr/bound_port. Returns 0 or a negative error with err set. */
int daemon_http_start(daemon_t *d, core_err_t *err);
/* Applies the reloadable HTTP/WebSocket options of d->cfg. */
void daemon_http_reload(daemon_t *d);
/* Stops accepting, lets in-flight requests finish for at most timeout_ms,
 * closes everything, then calls done(d) exactly once on the loop. */
void daemon_http_drain(daemon_t *d, uint64_t timeout_ms, void (*done)(daemon_t *d));
/* Frees what daemon_http_start made; handles must already be closed. */
void daemon_http_free(daemon_t *d);

/* chorusd_tls.c: the tls.* options. daemon_tls_check loads the certificate
 * and key once (startup and --check), adding a diagnostic naming the file;
 * daemon_tls_start opens the TLS listener on s (when tls.listen is set);
 * daemon_tls_reload re-reads the certificate for new connections, keeping
 * the previous one when the new files are bad. */
struct net_server_s;
int daemon_tls_check(daemon_t *d, core_diags_t *diags);
int daemon_tls_start(daemon_t *d, struct net_server_s *s, core_err_t *err);
void daemon_tls_reload(daemon_t *d, struct net_server_s *s);

#endif
