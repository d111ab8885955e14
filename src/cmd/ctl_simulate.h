/* ctl_simulate.h — `chorusctl simulate`: a population of simulated customers
 * drawn from a script (docs/flywheel.md, "Simulate"), played either
 * in-process against the brain (ctl_simulate_local.c), over the chat REST
 * API of a running daemon (ctl_simulate_http.c) or over its chat WebSocket
 * (ctl_simulate_ws.c, for a ws:// URL), and the report of what happened
 * (ctl_simulate.c). chorusctl only: the drivers block. */
#ifndef CHORUS_CTL_SIMULATE_H
#define CHORUS_CTL_SIMULATE_H

#include <jansson.h>
#include <stdint.h>

#include "chorus/brain.h"

/* One planned user turn: its text and what the script expects back. */
typedef struct sim_turn_s {
    char *text;
    const char *kind; /* "script", "off_script" or "hostile" (static) */
    json_t *expect;   /* owned, {slots} rendered; NULL = nothing checked */
    int script_index; /* index in the goal's turns, -1 when inserted */
} sim_turn_t;

typedef struct sim_conv_s {
    size_t goal;
    sim_turn_t *turns;
    size_t n_turns;
} sim_conv_t;

/* What one conversation came to; filled by the drivers. */
typedef struct sim_result_s {
    char status[16];   /* "active", "ended", "handoff", "failed" */
    char reason[64];   /* handoff reason, or the failure */
    size_t turns_done; /* user turns answered */
} sim_result_t;

typedef struct sim_s {
    json_t *script; /* owned */
    json_t *goals;  /* borrowed from script */
    const char *url, *api_key, *flows, *channel_name;
    int websocket; /* url is ws://: the WebSocket driver */
    brain_channel_t channel;
    long conversations, concurrency;
    uint64_t seed;
    int progress;     /* draw a progress bar on stderr */
    sim_conv_t *plan; /* conversations planned */
    sim_result_t *results;
    /* per-turn latencies (µs), in completion order */
    uint64_t *lat;
    size_t n_lat, cap_lat;
    json_t *breaks; /* {"goal/turn/kind": {count, goal, turn, expected, got}} */
    size_t turns_sent, failures;
    json_t *failure_kinds; /* {"kind": count} */
    uint64_t t0_us, elapsed_us;
    size_t done; /* conversations finished, for the progress bar */
} sim_t;

/* Records one answered turn: its latency, and checks the expectation of
 * the planned turn against the bot's texts and the status. Returns 1 when
 * an expectation broke. texts are the bot's messages of the turn. */
int sim_observe(sim_t *s, size_t conv, size_t turn, uint64_t latency_us, const char *const *texts,
                size_t n_texts, const char *status, const char *intent);
/* Counts a transport or protocol failure of kind (e.g. "http_503"). */
void sim_fail(sim_t *s, size_t conv, const char *kind);
/* Redraws the progress bar when it is due. */
void sim_progress(sim_t *s, int final);

/* Drivers: play every planned conversation; return 0 or -1 (message printed). */
int sim_run_local(sim_t *s);
int sim_run_http(sim_t *s);
int sim_run_ws(sim_t *s);

#endif
