/* chorusctl bench-brain: turns per second of the brain alone (in-process, no
 * HTTP: effects are answered with canned bodies) over a population of
 * conversations, and bytes per idle conversation. Figures for
 * docs/benchmarks.md; bench/brain.sh runs it on the example flows. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/ctl.h"
#include "cmd/ctl_common.h"

int ctl_bench_brain(int argc, char **argv);

extern char **environ;

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

/* CPU time of this thread: turns per CPU-second is the per-core figure,
 * and stays meaningful when other work shares the machine. */
static double cpu_s(void)
{
    return clock_s(CLOCK_THREAD_CPUTIME_ID);
}

static brain_flowset_t *load(const char *dir, int no_guard)
{
    ctl_sources_t src;
    core_err_t err = {0};
    if (ctl_sources_read(dir, &src, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return NULL;
    }
    brain_compile_opts_t opts;
    brain_compile_opts_init(&opts);
    opts.envp = (const char *const *)environ;
    opts.no_guard = no_guard;
    core_diags_t d;
    core_diags_init(&d);
    brain_flowset_t *fs = NULL;
    brain_flowset_compile(src.items, src.n, &opts, &fs, &d);
    ctl_print_diags(stderr, &d);
    core_diags_dispose(&d);
    ctl_sources_free(&src);
    return fs;
}

/* Runs a turn to completion, answering effects with a canned body. */
static int run_turn(const brain_flowset_t *fs, brain_conv_t *c, brain_out_t *o,
                    const brain_input_t *in, const char *canned)
{
    int rc = brain_turn(fs, c, in, o);
    while (rc == BRAIN_NEED_EFFECT) {
        brain_effect_result_t res = {.status = 200, .body = canned, .body_len = strlen(canned)};
        rc = brain_resume(fs, c, &res, o);
    }
    return rc;
}

typedef struct scenario_s {
    const char *name;
    const char *text;   /* user text */
    const char *intent; /* payload intent, NULL = route the text */
} scenario_t;

static void bench(const brain_flowset_t *fs, brain_conv_t *convs, size_t n, size_t turns,
                  const scenario_t *s)
{
    brain_out_t o;
    brain_out_init(&o);
    brain_input_t in;
    ctl_input_message(&in, s->text, 1796032800LL * 1000000);
    in.intent = s->intent;
    size_t errors = 0;
    double t0 = now_s(), c0 = cpu_s();
    for (size_t i = 0; i < turns; i++) {
        in.now_us += 1000;
        if (run_turn(fs, &convs[i % n], &o, &in, "{}") < 0)
            errors++;
    }
    double dt = now_s() - t0, ct = cpu_s() - c0;
    printf("%-34s %10.0f turns/s  %10.0f per CPU-second  (%zu turns, %.3f s, %.2f us/turn "
           "of CPU%s)\n",
           s->name, (double)turns / dt, (double)turns / ct, turns, dt, ct * 1e6 / (double)turns,
           errors ? ", ERRORS" : "");
    brain_out_dispose(&o);
}

static void memory(const brain_flowset_t *fs, size_t n)
{
    struct mallinfo2 before = mallinfo2();
    brain_conv_t *convs = calloc(n, sizeof(*convs));
    brain_out_t o;
    brain_out_init(&o);
    brain_input_t in;
    ctl_input_message(&in, "what is my baggage allowance", 1796032800LL * 1000000);
    in.intent = "baggage_allowance";
    size_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        brain_conv_init(&convs[i], fs, BRAIN_CH_WEB, in.now_us);
        run_turn(fs, &convs[i], &o, &in, "{}"); /* now waiting at an ask, one slot set */
        sum += brain_conv_memory(&convs[i]);
    }
    brain_out_dispose(&o);
    struct mallinfo2 after = mallinfo2();
    printf("idle conversation (waiting at an ask): %zu bytes (struct %zu + slots), "
           "%.0f bytes of heap each incl. allocator overhead\n",
           sum / n, sizeof(brain_conv_t), (double)(after.uordblks - before.uordblks) / (double)n);
    for (size_t i = 0; i < n; i++)
        brain_conv_dispose(&convs[i]);
    free(convs);
}

int ctl_bench_brain(int argc, char **argv)
{
    const char *flows = "flows";
    size_t n = 10000, turns = 2000000;
    int no_guard = 0, only = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--flows") == 0 && i + 1 < argc)
            flows = argv[++i];
        else if (strcmp(argv[i], "--conversations") == 0 && i + 1 < argc)
            n = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--turns") == 0 && i + 1 < argc)
            turns = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--no-guard") == 0)
            no_guard = 1;
        else if (strcmp(argv[i], "--scenario") == 0 && i + 1 < argc)
            only = (int)strtol(argv[++i], NULL, 10);
        else {
            printf("usage: chorusctl bench-brain [--flows DIR] [--conversations N] [--turns N]\n"
                   "                             [--no-guard] [--scenario 0-3]\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    if (n == 0 || turns == 0)
        return 2;
    brain_flowset_t *fs = load(flows, no_guard);
    if (fs == NULL)
        return 1;
    brain_conv_t *convs = calloc(n, sizeof(*convs));
    for (size_t i = 0; i < n; i++)
        brain_conv_init(&convs[i], fs, BRAIN_CH_WEB, 1796032800LL * 1000000);
    printf("brain: %zu conversations, guardrails %s\n", n, no_guard ? "off" : "on");
    static const scenario_t scenarios[] = {
        {"simple (payload intent -> say)", "thanks", "thanks"},
        {"exact example (no classifier)", "thank you", NULL},
        {"routed (classifier + entities)", "thanks a lot for sorting that out", NULL},
        {"slot + action (canned effect)", "economy", "baggage_allowance"},
    };
    for (size_t s = 0; s < sizeof(scenarios) / sizeof(scenarios[0]); s++)
        if (only < 0 || (size_t)only == s)
            bench(fs, convs, n, s < 2 ? turns : turns / 10, &scenarios[s]);
    for (size_t i = 0; i < n; i++)
        brain_conv_dispose(&convs[i]);
    free(convs);
    memory(fs, n);
    brain_flowset_unref(fs);
    return 0;
}
