/* The audit trail: the one-call append other modules use (store_audit). */
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "store"
#include "store/store_int.h"

int store_audit(store_t *s, const char *actor, const char *action, const char *target,
                const char *detail_json)
{
    store_batch_t *b = store_batch_new();
    store_batch_audit(b, actor, action, target, detail_json, core_wall_us());
    int rc = store_enqueue(s, b, NULL, NULL);
    if (rc != 0)
        store_batch_free(b);
    return rc;
}
