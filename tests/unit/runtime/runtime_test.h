/* runtime_test.h — helpers shared by the runtime unit tests: writing a
 * flow file, and the end of a test (the runtime closed, then its store, and
 * the loop ending with no handle left open). Test-only: static, so each
 * test executable has its own copy. */
#ifndef CHORUS_TEST_RUNTIME_TEST_H
#define CHORUS_TEST_RUNTIME_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "chorus/runtime.h"
#include "chorus/store.h"

/* Writes text as dir/name. */
static inline void rt_test_write(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static inline void rt_test_on_closed(void *data)
{
    (*(int *)data)++;
}

/* Closes rt (its callback runs once), then store (NULL: none), runs the
 * loop dry and closes it. */
static inline void rt_test_close(uv_loop_t *loop, runtime_t *rt, store_t *store)
{
    int closed = 0;
    runtime_close(rt, rt_test_on_closed, &closed);
    while (!closed)
        uv_run(loop, UV_RUN_ONCE);
    if (store != NULL)
        store_close(store);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(closed, 1);
    assert_int_equal(uv_loop_close(loop), 0);
}

#endif
