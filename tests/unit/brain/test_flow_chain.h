/* Flows of long straight paths for the step-limit tests: a chain of set
 * nodes, long enough that a turn through several of them passes
 * BRAIN_MAX_STEPS while each flow's own paths stay within it. */
#ifndef TEST_FLOW_CHAIN_H
#define TEST_FLOW_CHAIN_H

#include "chorus/core.h"

/* Writes n set nodes p0 .. p(n-1) in a row into b (members of a "nodes"
 * object), the last going on to next (to none when next is ""). */
static inline void test_flow_chain(core_buf_t *b, const char *p, int n, const char *next)
{
    for (int i = 0; i < n; i++) {
        core_buf_printf(b, "\"%s%d\": {\"type\": \"set\", \"set\": {\"n\": \"%d\"}", p, i, i);
        if (i + 1 < n)
            core_buf_printf(b, ", \"next\": \"%s%d\"},", p, i + 1);
        else
            core_buf_printf(b, "%s%s%s}", next[0] ? ", \"next\": \"" : "", next,
                            next[0] ? "\"" : "");
    }
}

#endif
