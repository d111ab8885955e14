/* The agent console's files, served at /agent (docs/agents.md). */
#define LOG_MODULE "agents"
#include "admin/agents_int.h"

int ag__console_register(ag_desk_t *d, net_router_t *r, core_err_t *err)
{
    (void)d, (void)r, (void)err;
    return 0;
}
