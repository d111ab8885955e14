/* admin_rollout_int.h — shared by the rollout files of src/admin: the
 * running rollouts kept in memory and their life cycle (admin_rollout_run.c:
 * start, end, the periodic guard, resuming after a restart) and the HTTP
 * routes over them (admin_rollouts.c). Loop thread only.
 *
 * A rollout in memory mirrors its running row in the rollouts table; the
 * table is the truth across restarts, memory is the truth while running.
 * A promotion takes effect once its row is written (until then the rollout
 * is marked ending, and a second promote or abort is refused); an abort or
 * a rollback at once, its row written after and tried again until the
 * store takes it. */
#ifndef CHORUS_ADMIN_ROLLOUT_INT_H
#define CHORUS_ADMIN_ROLLOUT_INT_H

#include "admin/admin_int.h"
#include "chorus/rollout.h"

typedef struct admin_ro_s {
    struct admin_ro_s *next;
    char *id, *env, *flow, *candidate, *control, *started_by; /* owned */
    unsigned percent;
    int64_t started_us;
    int ready;    /* the candidate is serving (its compile finished) */
    int checking; /* a guard query is in flight */
    int ending;   /* its promotion is being recorded */
} admin_ro_t;

/* The running rollout whose id, or flow (in env when env is not NULL), is
 * key; NULL when none. */
admin_ro_t *admin__ro_find(const char *key, const char *env);
/* The running rollout of env, NULL when none. */
admin_ro_t *admin__ro_in_env(const char *env);
/* Its row as the store returns it (status running). */
json_t *admin__ro_json(const admin_ro_t *ro);

/* Starts a rollout: reads the candidate's content from flow_versions, has
 * the runtime build it, writes the running row and audits "rollout.start"
 * as actor. cb runs once on the loop: rc 0 with the row, or an error with a
 * message (CORE_ERR_NOT_FOUND unknown flow or version, CORE_ERR_EXISTS one
 * runs in env, CORE_ERR_INVALID the candidate does not compile). */
typedef void (*admin_ro_cb)(int rc, const char *msg, json_t *row, void *data);
void admin__ro_start(admin_t *a, const char *env, const char *flow, const char *candidate,
                     unsigned percent, const char *actor, admin_ro_cb cb, void *data);

/* Ends ro: promote (status promoted) or not (status is ROLLOUT_ABORTED or
 * ROLLOUT_ROLLED_BACK), writes the row and audits
 * "rollout.<promote|abort|rollback>" as actor with reason. A promotion is
 * made once its row is written: cb gets CORE_ERR_CLOSED with a message,
 * and ro runs on, when the store refuses it. An abort or rollback is made
 * at once, ro taken out of memory; cb gets its row after the first write,
 * which is tried again at the guard's ticks until the store takes it.
 * cb (may be NULL) runs once. Returns CORE_ERR_BUSY (ro kept) when promote
 * is asked before the candidate serves, CORE_ERR_EXISTS while a promotion
 * of ro is being recorded. */
int admin__ro_end(admin_t *a, admin_ro_t *ro, const char *status, const char *actor,
                  const char *reason, admin_ro_cb cb, void *data);

/* admin_rollout_end.c's bookkeeping, called from the guard's file: ro (out
 * of the list, taken) ends as aborted with reason, as a rollout that could
 * not be resumed; whether id's ended row is still to be written; another
 * try at those rows (each guard tick); and the start and end of the
 * admin's life (admin__ro_timer_start, admin_shutdown). */
void admin__ro_end_aborted(admin_t *a, admin_ro_t *ro, const char *reason);
int admin__ro_is_unsaved(const char *id);
void admin__ro_retry_unsaved(void);
void admin__ro_ends_open(void);
void admin__ro_ends_shutdown(void);

/* admin_rollout_run.c's pieces the ending shares: ro out of the running
 * list, freed; the chorus_rollouts_running gauge set; the metrics (NULL
 * without); ro's row with status; row and its audit entry written in one
 * batch (both or neither; detail taken, done runs once on the loop); the
 * audit detail of ro. */
void admin__ro_unlink(admin_ro_t *ro);
void admin__ro_free(admin_ro_t *ro);
void admin__ro_count_running(admin_t *a);
store_metrics_t *admin__ro_metrics(admin_t *a);
store_rollout_t admin__ro_row(const admin_ro_t *ro, const char *status);
void admin__ro_record(admin_t *a, const store_rollout_t *row, const char *actor, const char *action,
                      json_t *detail, int64_t ts_us, store_done_cb done, void *data);
json_t *admin__ro_detail(const admin_ro_t *ro, const char *reason);

/* The guard's margins from the config in force. */
void admin__ro_guard(const core_config_t *cfg, rollout_guard_t *g);

/* Starts the guard timer (unreferenced: it never keeps the loop alive). */
void admin__ro_timer_start(admin_t *a);

#endif
