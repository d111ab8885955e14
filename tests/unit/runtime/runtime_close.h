/* runtime_close.h — the end of a runtime unit test: closes the runtime,
 * then its store, and checks that the loop ends with no handle left open.
 * Test-only: static, so each test executable has its own copy. */
#ifndef CHORUS_TEST_RUNTIME_CLOSE_H
#define CHORUS_TEST_RUNTIME_CLOSE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "chorus/runtime.h"
#include "chorus/store.h"

static void rt_test_on_closed(void *data)
{
    (*(int *)data)++;
}

/* Closes rt (its callback runs once), then store (NULL: none), runs the
 * loop dry and closes it. */
static void rt_test_close(uv_loop_t *loop, runtime_t *rt, store_t *store)
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
