/* Ending a running rollout (admin_rollout_int.h): a promotion, recorded
 * before it takes effect; an abort or the guard's rollback, made at once
 * and recorded after, its row written again at each guard tick until the
 * store takes it. Loop thread only; every write is a store batch. */
#define LOG_MODULE "admin"
#include <stdlib.h>
#include <string.h>

#include "admin/admin_rollout_int.h"

/* An end on its way to the rollouts table. A promotion is recorded first and
 * takes effect once its row is written: one that cannot be recorded is not
 * made, and the rollout runs on. An abort or a rollback takes effect at once
 * (a candidate judged bad stops serving whatever the store does) and its
 * row is written after; a row the store refuses is written again at each
 * tick of the guard, so that a restart does not resume what was ended. */
typedef struct end_s {
    struct end_s *next; /* in U.unsaved until its row is written */
    admin_t *a;
    admin_ro_t *ro; /* a promotion's: listed (ending set) until its row is
                       written; otherwise out of the list, owned */
    char *status, *actor, *reason;
    int64_t ended_us;
    admin_ro_cb cb; /* NULL once called */
    void *data;
    int writing; /* its row is being written */
    int tries;   /* writes the store refused */
} end_t;

static struct {
    end_t *unsaved; /* aborted and rolled back: ended, their rows not written yet */
    int closed;     /* admin_shutdown ran: nothing is tried again */
} U;

static json_t *ended_json(const end_t *e)
{
    json_t *o = admin__ro_json(e->ro);
    json_object_set_new(o, "status", json_string(e->status));
    json_object_set_new(o, "ended_us", json_integer(e->ended_us));
    json_object_set_new(o, "ended_by", json_string(e->actor));
    json_object_set_new(o, "reason", e->reason ? json_string(e->reason) : json_null());
    json_object_del(o, "serving");
    return o;
}

static void end_answer(end_t *e, int rc, const char *msg)
{
    if (e->cb == NULL)
        return;
    json_t *row = rc == 0 ? ended_json(e) : NULL;
    e->cb(rc, msg, row, e->data);
    json_decref(row);
    e->cb = NULL;
}

static void end_free(end_t *e)
{
    admin__ro_free(e->ro);
    free(e->status), free(e->actor), free(e->reason);
    free(e);
}

int admin__ro_is_unsaved(const char *id)
{
    for (end_t *e = U.unsaved; e != NULL; e = e->next)
        if (strcmp(e->ro->id, id) == 0)
            return 1;
    return 0;
}

/* The ended row and its audit entry, "rollout.<promote|abort|rollback>". */
static void save_row(end_t *e, store_done_cb done)
{
    store_rollout_t row = admin__ro_row(e->ro, e->status);
    row.ended_us = e->ended_us;
    row.ended_by = e->actor;
    row.reason = e->reason;
    const char *action = strcmp(e->status, ROLLOUT_PROMOTED) == 0      ? "rollout.promote"
                         : strcmp(e->status, ROLLOUT_ROLLED_BACK) == 0 ? "rollout.rollback"
                                                                       : "rollout.abort";
    admin__ro_record(e->a, &row, e->actor, action, admin__ro_detail(e->ro, e->reason), e->ended_us,
                     done, e);
}

/* The candidate stops serving (promoted: it becomes the environment's
 * version) and is counted. Returns the runtime's refusal of a promotion,
 * the rollout then left as it was. */
static int take_effect(end_t *e)
{
    admin_t *a = e->a;
    admin_ro_t *ro = e->ro;
    int promote = strcmp(e->status, ROLLOUT_PROMOTED) == 0;
    runtime_t *rt = admin__runtime(a);
    int rc = rt != NULL ? runtime_rollout_stop(rt, ro->env, ro->flow, promote) : CORE_ERR_CLOSED;
    if (rc != 0 && promote)
        return rc;
    if (rc != 0 && rc != CORE_ERR_NOT_FOUND && rc != CORE_ERR_CLOSED)
        LOG_WARN("event=rollout_stop_failed id=%s reason=%s", ro->id, core_strerror(rc));
    admin__ro_unlink(ro);
    admin__ro_count_running(a);
    if (admin__ro_metrics(a) != NULL) {
        const char *labels[] = {ro->flow, e->status};
        store_metrics_add(admin__ro_metrics(a), STORE_M_ROLLOUTS_ENDED, labels, 1);
    }
    return 0;
}

/* An abort's or a rollback's row written, or refused: tried again at the
 * next tick. */
static void on_end_saved(int status, void *data)
{
    end_t *e = data;
    e->writing = 0;
    end_answer(e, 0, NULL); /* it took effect whatever the store says */
    if (U.closed) {         /* admin_shutdown left e to this callback */
        if (status != 0)
            LOG_WARN("event=rollout_not_saved id=%s status=%s", e->ro->id, e->status);
        end_free(e);
        return;
    }
    if (status != 0) {
        if (e->tries++ == 0)
            LOG_WARN("event=rollout_save_failed id=%s status=%s reason=\"%s\" retry=1", e->ro->id,
                     e->status, core_strerror(status));
        return;
    }
    if (e->tries > 0)
        LOG_INFO("event=rollout_saved id=%s status=%s tries=%d", e->ro->id, e->status,
                 e->tries + 1);
    for (end_t **p = &U.unsaved; *p != NULL; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            break;
        }
    end_free(e);
}

/* Listed in U.unsaved and written. */
static void save_ended(end_t *e)
{
    e->next = U.unsaved;
    U.unsaved = e;
    e->writing = 1;
    save_row(e, on_end_saved);
}

void admin__ro_retry_unsaved(void)
{
    for (end_t *e = U.unsaved; e != NULL; e = e->next)
        if (!e->writing) {
            e->writing = 1;
            save_row(e, on_end_saved);
        }
}

/* A promotion's row written: only now does the candidate take over. */
static void on_promote_saved(int status, void *data)
{
    end_t *e = data;
    if (U.closed) { /* admin_shutdown left ro to this callback */
        if (status == 0)
            LOG_ERROR("event=rollout_promote_failed id=%s reason=\"recorded as promoted while "
                      "shutting down; not installed\"",
                      e->ro->id);
        end_free(e);
        return;
    }
    e->ro->ending = 0;
    if (status != 0) {
        LOG_WARN("event=rollout_save_failed id=%s status=%s reason=\"%s\"", e->ro->id, e->status,
                 core_strerror(status));
        char *msg = core_xasprintf("the store could not record the promotion (%s); the rollout "
                                   "runs on",
                                   core_strerror(status));
        end_answer(e, CORE_ERR_CLOSED, msg);
        free(msg);
        e->ro = NULL; /* still listed, still running */
        end_free(e);
        return;
    }
    int rc = take_effect(e);
    if (rc == 0) {
        end_answer(e, 0, NULL);
        end_free(e);
        return;
    }
    /* recorded as promoted but not installed: ended as aborted instead, and
     * that row written over the promoted one */
    LOG_ERROR("event=rollout_promote_failed id=%s reason=%s", e->ro->id, core_strerror(rc));
    char *msg = core_xasprintf("the promotion could not be installed (%s); the rollout was "
                               "aborted",
                               core_strerror(rc));
    end_answer(e, CORE_ERR_CLOSED, msg);
    free(e->status);
    free(e->reason);
    e->status = core_xstrdup(ROLLOUT_ABORTED);
    e->reason = msg;
    take_effect(e);
    save_ended(e);
}

int admin__ro_end(admin_t *a, admin_ro_t *ro, const char *status, const char *actor,
                  const char *reason, admin_ro_cb cb, void *data)
{
    int promote = strcmp(status, ROLLOUT_PROMOTED) == 0;
    if (ro->ending)
        return CORE_ERR_EXISTS;
    if (promote && (!ro->ready || admin__runtime(a) == NULL))
        return CORE_ERR_BUSY; /* nothing serving to promote */
    /* the candidate is being rebuilt on a set a flows load installed */
    if (promote && runtime_rollout_state(admin__runtime(a), ro->env, ro->id) == 0)
        return CORE_ERR_BUSY;
    end_t *e = core_xcalloc(1, sizeof(*e));
    e->a = a;
    e->ro = ro;
    e->status = core_xstrdup(status);
    e->actor = core_xstrdup(actor);
    e->reason = reason != NULL ? core_xstrdup(reason) : NULL;
    e->ended_us = core_wall_us();
    e->cb = cb;
    e->data = data;
    if (promote) {
        ro->ending = 1;
        save_row(e, on_promote_saved);
        return 0;
    }
    take_effect(e);
    save_ended(e);
    return 0;
}

/* A rollout that never served (or could not be resumed) ends as aborted,
 * saying why; ro is out of the list and taken. */
void admin__ro_end_aborted(admin_t *a, admin_ro_t *ro, const char *reason)
{
    end_t *e = core_xcalloc(1, sizeof(*e));
    e->a = a;
    e->ro = ro;
    e->status = core_xstrdup(ROLLOUT_ABORTED);
    e->actor = core_xstrdup("chorusd");
    e->reason = core_xstrdup(reason);
    e->ended_us = core_wall_us();
    save_ended(e);
}

void admin__ro_ends_shutdown(void)
{
    while (U.unsaved != NULL) {
        end_t *e = U.unsaved;
        U.unsaved = e->next;
        if (e->writing) /* its callback frees it */
            continue;
        LOG_WARN("event=rollout_not_saved id=%s status=%s", e->ro->id, e->status);
        end_free(e);
    }
    U.closed = 1;
}

void admin__ro_ends_open(void)
{
    U.closed = 0;
}
