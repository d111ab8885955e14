/* admin_flows.h — hot reload's admin routes (admin_flows_status.c),
 * registered by admin.c. Loop thread only; data is the admin_t. */
#ifndef CHORUS_ADMIN_FLOWS_H
#define CHORUS_ADMIN_FLOWS_H

#include "admin/admin_int.h"

/* GET /v1/admin/flows/status (viewer). */
void admin__on_flows_status(net_req_t *req, void *data);
/* POST /v1/admin/flows/reload (operator): answers when the load is done. */
void admin__on_flows_reload(net_req_t *req, void *data);

#endif
