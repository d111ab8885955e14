/* chorusd's environments: the runtime options (flows.production,
 * flows.default_env, the user running chorusd as the author of loads) and,
 * at start, what the store says each environment ran: staging's recorded
 * files become the base new versions are compared with, and in "promoted"
 * mode production is rebuilt from the stored contents, so a restart never
 * puts the flows directory into production. Blocking reads: start-up only,
 * before the loop runs. */
#define LOG_MODULE "chorusd"
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chorus/store.h"
#include "cmd/chorusd_runtime.h"

static char author_buf[64];

void daemon_envs_options(daemon_t *d, runtime_options_t *opts)
{
    opts->production_promoted = strcmp(d->cfg.flow_envs.production, "promoted") == 0;
    opts->default_env = d->cfg.flow_envs.default_env;
    struct passwd *pw = getpwuid(getuid());
    snprintf(author_buf, sizeof(author_buf), "%s", pw && pw->pw_name ? pw->pw_name : "chorusd");
    opts->author = author_buf;
}

static void on_restored(runtime_t *rt, int rc, const core_diags_t *diags, void *data)
{
    (void)rt, (void)data;
    if (rc == 0 || rc == CORE_ERR_CLOSED)
        return;
    char line[1024];
    for (size_t i = 0; i < diags->len; i++)
        LOG_ERROR("event=env_restore_problem env=production problem=\"%s\"",
                  core_diag_format(&diags->items[i], line, sizeof(line)));
}

/* env's stored rows with contents into runtime_env_restore(). */
static void restore_env(daemon_t *d, store_db_t *db, const char *env)
{
    json_t *rows = NULL;
    core_err_t err = {0};
    if (store_db_env_flows(db, env, 1, &rows, &err) != 0) {
        LOG_WARN("event=env_restore_failed env=%s reason=\"%s\"", env, err.msg);
        return;
    }
    size_t n = json_array_size(rows);
    runtime_flow_file_t *files = calloc(n ? n : 1, sizeof(*files));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(rows, i);
        const char *content = json_string_value(json_object_get(r, "content"));
        if (content == NULL)
            continue; /* a version row lost: the next load records it again */
        files[k++] =
            (runtime_flow_file_t){json_string_value(json_object_get(r, "flow")),
                                  json_string_value(json_object_get(r, "version")), content,
                                  json_string_length(json_object_get(r, "content")), 1};
    }
    if (k > 0) {
        int rc = runtime_env_restore(d->runtime, env, files, k, on_restored, d);
        LOG_INFO("event=env_restore env=%s flows=%zu status=%s", env, k,
                 rc == 0 ? "started" : core_strerror(rc));
    }
    free(files);
    json_decref(rows);
}

void daemon_envs_restore(daemon_t *d)
{
    if (d->store == NULL || store_in_memory(d->store))
        return;
    core_err_t err = {0};
    store_db_t *db = store_db_open(store_path(d->store), &err);
    if (db == NULL) {
        LOG_WARN("event=env_restore_failed reason=\"%s\"", err.msg);
        return;
    }
    restore_env(d, db, RUNTIME_ENV_STAGING);
    if (strcmp(d->cfg.flow_envs.production, "promoted") == 0)
        restore_env(d, db, RUNTIME_ENV_PRODUCTION);
    store_db_close(db);
}
