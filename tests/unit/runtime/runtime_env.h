/* runtime_env.h — a runtime on a real store for the runtime's unit tests:
 * SQLite in a temporary directory, the real brain on the example flows and
 * the backend stub on loopback. The including test owns the globals' setup
 * (tmpdir, db_path, flows_dir, backend) in its group setup. Test-only: the
 * helpers are static so each test executable has its own copy. */
#ifndef CHORUS_TEST_RUNTIME_ENV_H
#define CHORUS_TEST_RUNTIME_ENV_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "chorus/runtime.h"
#include "chorus/store.h"
#include "stubs/stub_proc.h"
#include "unit/runtime/runtime_test.h"

static stub_proc_t backend;
static char tmpdir[64];
static char db_path[128];
static char flows_dir[512];

typedef struct rec_s {
    int calls;
    int error;
    char text[1024];
    int status;
    char node[64];
} rec_t;

static void on_turn(const runtime_turn_out_t *o)
{
    rec_t *r = o->data;
    r->calls++;
    r->error = o->error;
    if (o->error != 0)
        return;
    size_t used = 0;
    for (size_t i = 0; i < o->out->n_messages && used < sizeof(r->text); i++)
        used += (size_t)snprintf(r->text + used, sizeof(r->text) - used, "%s%s", i ? "\n" : "",
                                 o->out->messages[i].text);
    r->status = o->out->status;
    snprintf(r->node, sizeof(r->node), "%s", o->out->node ? o->out->node : "");
}

typedef struct env_s {
    uv_loop_t loop;
    store_t *store;
    store_metrics_t *metrics;
    runtime_t *rt;
    char var[256];
    const char *envp[2];
} env_t;

static void on_loaded(runtime_t *rt, int rc, const core_diags_t *d, void *data)
{
    assert_int_equal(rc, 0);
    (*(int *)data)++;
}

static void env_start(env_t *e)
{
    uv_loop_init(&e->loop);
    store_options_t so = {.path = db_path};
    core_err_t err = {0};
    e->store = store_open(&e->loop, &so, &err);
    assert_non_null(e->store);
    e->metrics = store_metrics_new();
    snprintf(e->var, sizeof(e->var), "CHORUS_BACKEND_URL=http://127.0.0.1:%d", backend.port);
    e->envp[0] = e->var;
    e->envp[1] = NULL;
    runtime_options_t o = {.flows_dir = flows_dir,
                           .data_dir = tmpdir,
                           .envp = e->envp,
                           .store = e->store,
                           .metrics = e->metrics};
    assert_int_equal(runtime_new(&e->loop, &o, &e->rt, NULL), 0);
    int loaded = 0;
    assert_int_equal(runtime_load(e->rt, on_loaded, &loaded), 0);
    while (!loaded)
        uv_run(&e->loop, UV_RUN_ONCE);
}

static void env_stop(env_t *e)
{
    rt_test_close(&e->loop, e->rt, e->store);
    store_metrics_free(e->metrics);
}

static void turn(env_t *e, const char *key, brain_event_t ev, const char *text, rec_t *r)
{
    memset(r, 0, sizeof(*r));
    runtime_turn_in_t in = {.key = key,
                            .channel = BRAIN_CH_WEB,
                            .event = ev,
                            .text = text,
                            .len = strlen(text),
                            .adapter_version = "web/1"};
    assert_int_equal(runtime_turn(e->rt, &in, on_turn, r, NULL), 0);
    while (r->calls == 0)
        uv_run(&e->loop, UV_RUN_ONCE);
    assert_int_equal(r->error, 0);
}

static void say(env_t *e, const char *key, const char *text, rec_t *r)
{
    turn(e, key, BRAIN_EV_MESSAGE, text, r);
}

/* The stored transcript of key, read with a connection of our own. */
static json_t *transcript(const char *key)
{
    core_err_t err = {0};
    store_db_t *db = store_db_open(db_path, &err);
    assert_non_null(db);
    json_t *t = NULL;
    assert_int_equal(store_db_transcript(db, key, &t, &err), 0);
    store_db_close(db);
    return t;
}

/* Group set-up: flows from $CHORUS_SOURCE_DIR/flows, a fresh temporary
 * directory /tmp/chorus-<tag>-XXXXXX holding the database, and the backend
 * stub started. */
static int env_group_setup(const char *tag)
{
    const char *src = getenv("CHORUS_SOURCE_DIR");
    snprintf(flows_dir, sizeof(flows_dir), "%s/flows", src ? src : ".");
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/chorus-%s-XXXXXX", tag);
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(db_path, sizeof(db_path), "%s/chorus.db", tmpdir);
    return stub_proc_start(&backend, "backend.py", NULL);
}

static int env_group_teardown(void **state)
{
    stub_proc_stop(&backend);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

#endif
