/* chorusd's HTTP and WebSocket listener and its routes. Placeholder until the
 * net layer lands: listens nowhere. */
#define LOG_MODULE "chorusd"
#include <string.h>

#include "chorus/core.h"
#include "cmd/chorusd.h"

int daemon_http_start(daemon_t *d, core_err_t *err)
{
    char host[64];
    int port;
    if (core_config_parse_listen(d->cfg.listen, host, sizeof(host), &port) != 0)
        return core_err_set(err, CORE_ERR_INVALID, "listen: bad address \"%s\"", d->cfg.listen);
    snprintf(d->bound_addr, sizeof(d->bound_addr), "%s", host);
    d->bound_port = port;
    return 0;
}

void daemon_http_reload(daemon_t *d)
{
}

void daemon_http_drain(daemon_t *d, uint64_t timeout_ms, void (*done)(daemon_t *d))
{
    done(d);
}

void daemon_http_free(daemon_t *d)
{
}
