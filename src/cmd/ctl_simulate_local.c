/* The in-process driver of `chorusctl simulate`: the flows compiled in this
 * process, exactly the brain the daemon runs, with up to --concurrency
 * conversations in flight taking turns one after another (the brain is
 * synchronous; interleaving them is what concurrency means here). Effects
 * are answered by the script's "mocks" when one matches, else performed for
 * real. A turn's latency is the brain's time, effects included. */
#include <stdlib.h>
#include <string.h>

#include "cmd/ctl_common.h"
#include "cmd/ctl_simulate.h"

typedef struct {
    long conv; /* index in the plan, -1 when the slot is free */
    size_t next_turn;
    brain_conv_t state;
} slot_t;

static const char *status_name(brain_status_t s)
{
    return s == BRAIN_ST_ENDED ? "ended" : s == BRAIN_ST_HANDOFF ? "handoff" : "active";
}

/* Runs the brain over one input, performing effects; 0 or a brain error. */
static int turn(sim_t *s, const brain_flowset_t *fs, brain_conv_t *c, const brain_input_t *in,
                brain_out_t *o)
{
    int rc = brain_turn(fs, c, in, o);
    for (int n = 0; rc == BRAIN_NEED_EFFECT && n < 16; n++) {
        brain_effect_result_t res;
        char *body = NULL;
        core_buf_t real;
        core_buf_init(&real, 1024 * 1024);
        if (ctl_mock_answer(json_object_get(s->script, "mocks"), &o->effect, &res, &body) != 0)
            ctl_effect_perform(&o->effect, &res, &real);
        rc = brain_resume(fs, c, &res, o);
        free(body);
        core_buf_dispose(&real);
    }
    return rc == BRAIN_DONE ? 0 : rc < 0 ? rc : CORE_ERR_LIMIT;
}

static void start(sim_t *s, const brain_flowset_t *fs, slot_t *sl, long conv, brain_out_t *o)
{
    sl->conv = conv;
    sl->next_turn = 0;
    brain_conv_init(&sl->state, fs, s->channel, core_wall_us());
    brain_input_t in;
    ctl_input_message(&in, "", core_wall_us());
    in.event = BRAIN_EV_START;
    if (turn(s, fs, &sl->state, &in, o) != 0)
        sim_fail(s, (size_t)conv, "brain_error");
}

/* One user turn of the slot's conversation; returns 1 when it is over. */
static int step(sim_t *s, const brain_flowset_t *fs, slot_t *sl, brain_out_t *o)
{
    sim_conv_t *cv = &s->plan[sl->conv];
    sim_result_t *r = &s->results[sl->conv];
    if (!strcmp(r->status, "failed") || sl->next_turn >= cv->n_turns ||
        sl->state.status != BRAIN_ST_ACTIVE)
        return 1;
    brain_input_t in;
    ctl_input_message(&in, cv->turns[sl->next_turn].text, core_wall_us());
    uint64_t t0 = core_now_us();
    int rc = turn(s, fs, &sl->state, &in, o);
    uint64_t us = core_now_us() - t0;
    if (rc != 0) {
        sim_fail(s, (size_t)sl->conv, "brain_error");
        return 1;
    }
    const char *texts[BRAIN_MAX_MESSAGES];
    for (size_t i = 0; i < o->n_messages; i++)
        texts[i] = o->messages[i].text;
    const char *st = status_name((brain_status_t)sl->state.status);
    sim_observe(s, (size_t)sl->conv, sl->next_turn++, us, texts, o->n_messages, st, o->intent);
    if (sl->state.status == BRAIN_ST_HANDOFF)
        snprintf(r->reason, sizeof(r->reason), "%s",
                 o->handoff_reason ? o->handoff_reason : "unknown");
    return sl->next_turn >= cv->n_turns || sl->state.status != BRAIN_ST_ACTIVE;
}

int sim_run_local(sim_t *s)
{
    brain_flowset_t *fs = NULL;
    if (ctl_flowset_load(s->flows, 0, &fs) != 0)
        return -1;
    size_t n_slots = (size_t)s->concurrency;
    slot_t *slots = core_xcalloc(n_slots, sizeof(*slots));
    brain_out_t o;
    brain_out_init(&o);
    long next = 0;
    size_t busy = 0;
    for (size_t i = 0; i < n_slots; i++) {
        slots[i].conv = -1;
        if (next < s->conversations) {
            start(s, fs, &slots[i], next++, &o);
            busy++;
        }
    }
    while (busy > 0) {
        for (size_t i = 0; i < n_slots; i++) {
            if (slots[i].conv < 0 || !step(s, fs, &slots[i], &o))
                continue;
            brain_conv_dispose(&slots[i].state);
            slots[i].conv = -1;
            busy--;
            s->done++;
            if (next < s->conversations) {
                start(s, fs, &slots[i], next++, &o);
                busy++;
            }
        }
        sim_progress(s, 0);
    }
    brain_out_dispose(&o);
    free(slots);
    brain_flowset_unref(fs);
    return 0;
}
