/* channels.h — the channel adapters' shared contract. An adapter is thin: it
 * authenticates its gateway, turns the channel's payload into a
 * runtime_turn_in_t, calls runtime_turn() and renders the turn's output the
 * way its channel needs (JSON and WebSocket frames for chat and the web
 * widget; TwiML for SMS and voice). No flow logic lives in an adapter: what
 * a channel may vary is declared in the flow as message variants, picked by
 * the adapter's brain_channel_t.
 *
 * Every adapter embeds chan_t first (as h2o handlers embed h2o_handler_t):
 * its name and version are recorded with the turns it makes, and the host
 * (chan_host_t) gives it the loop, the configuration in force and the
 * runtime. An adapter registers its routes with one call from chorusd
 * (chan_<name>_register) and replies only from runtime_turn()'s done
 * callback, so a reply leaves after the runtime says the turn is finished
 * (and, once the store is wired into the runtime, durable).
 *
 * Threads: loop thread only.
 *
 * Ownership: a registered adapter lives until the process exits. It holds no
 * libuv handle of its own beyond what a connection needs while it is open
 * (expiry is lazy, on access), so it never keeps the loop alive or stops it
 * from closing once the server has drained. The host is copied; the config and
 * the runtime it points to are borrowed and read afresh on every request, so
 * a SIGHUP that replaces the config (API keys, origins, limits) applies to
 * the next request without a restart.
 *
 * Errors: registration returns 0 or a negative CORE_ERR_* with err filled.
 * Bad input from a gateway never becomes an error here: it is answered with
 * a 4xx JSON body ({"error": {"code", "message"}}) or a WebSocket error
 * frame, logged once, and changes nothing.
 *
 * Protocols, authentication and every endpoint: docs/channels.md and
 * docs/openapi.yaml. */
#ifndef CHORUS_CHANNELS_H
#define CHORUS_CHANNELS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "chorus/brain.h"
#include "chorus/config.h"
#include "chorus/core.h"
#include "chorus/net.h"
#include "chorus/net_client.h"
#include "chorus/runtime.h"

/* Returns the runtime in force for owner, or NULL while there is none (before
 * start, after stop): adapters then answer 503. */
typedef runtime_t *(*chan_runtime_fn)(void *owner);

/* What the daemon lends every adapter. */
typedef struct chan_host_s {
    uv_loop_t *loop;          /* borrowed: the loop everything runs on */
    const core_config_t *cfg; /* borrowed: the config in force, re-read per request */
    chan_runtime_fn runtime;  /* how to reach the runtime now */
    void *owner;              /* passed to runtime() */
    store_t *const *store;    /* borrowed: the daemon's store slot (NULL, or NULL inside:
                                 none); SMS keeps its opt-outs there */
} chan_host_t;

typedef struct chan_s chan_t;

/* The base every adapter embeds as its first member. */
struct chan_s {
    const char *name;        /* static: "chat", "web", "sms", "voice" (logs, metrics) */
    const char *version;     /* static: adapter protocol version, recorded per turn */
    brain_channel_t channel; /* picks the flow's message variants */
    chan_host_t host;        /* copied at registration */
};

/* The runtime in force for the adapter, NULL when none. */
runtime_t *chan_runtime(const chan_t *ch);

/* Answers a runtime_turn() failure that happened at once (rc from the call):
 * 503 with Retry-After when no flows are loaded or the runtime is closing,
 * 429 when the conversation's queue is full, 503 when the conversation
 * table is full. Used by every adapter so the mapping is the same. */
void chan_resp_turn_error(net_req_t *req, const chan_t *ch, int rc, const core_err_t *err);

/* For runtime_options_t.on_idle_end: delivers the output of a turn the
 * runtime ran by itself (a conversation's idle timeout: the goodbye and the
 * end) to the adapter that owns the conversation's key, which records it and
 * pushes it to any open socket; SMS forgets the pair's numbered list (the
 * goodbye is recorded, not texted). Keys no adapter owns are ignored. */
void chan_idle_end(const runtime_turn_out_t *out);

/* ---- humans in the loop (src/channels/chan_agent.c) --------------------- */

/* The done callback of the desk's turns (src/admin/agents.c: a person's
 * release hands the conversation back to the bot, or a close ends it):
 * the bot's words reach the channel like any reply. Chat and web record
 * them and push them to open sockets; SMS texts them through the Messages
 * API (as a reply Twilio stopped waiting for; not to a pair that opted
 * out) and remembers their numbered list; voice needs nothing (the call
 * was <Dial>ed away). */
void chan_desk_turn_done(const runtime_turn_out_t *out);

/* Delivers a person's words to the customer of the runtime key (the chat or
 * web transcript and its sockets): agent is the person's name, or NULL for
 * the desk's own notices (position in queue, nobody available). Returns 0
 * and sets *entry (may be NULL) to the seq the words got in the
 * conversation's transcript, which the caller records with them so that a
 * transcript rebuilt from the store numbers them alike (docs/channels.md,
 * "Restore"); CORE_ERR_UNSUPPORTED for a channel a person cannot write to
 * here (voice is connected by <Dial>; SMS completes later:
 * chan_agent_say_async()), or CORE_ERR_NOT_FOUND when the adapter does not
 * hold the conversation now. */
int chan_agent_say(const char *key, const char *agent, const char *text, uint64_t *entry,
                   core_err_t *err);

/* How a delivery that completes later ended: status 0 once the channel's
 * gateway took it, else negative with reason (borrowed for the call) saying
 * why (the gateway's answer, a timeout). */
typedef void (*chan_agent_done_cb)(int status, const char *reason, void *data);

#define CHAN_AGENT_PENDING 1 /* chan_agent_say_async: cb runs later */

/* chan_agent_say() for every channel, SMS included: an SMS conversation's
 * words are texted through Twilio's Messages API (sms.account_sid, the
 * sms.auth_token_env token, sms.api_base_url) on http (borrowed; the
 * caller's client on the loop), one POST per segment, in order. Returns 0
 * when delivered at once (chat, web; cb never runs; *entry as
 * chan_agent_say() sets it), CHAN_AGENT_PENDING
 * when cb runs exactly once later (never from inside this call), or a
 * negative code with err filled and cb never run: chan_agent_say()'s, and
 * for SMS CORE_ERR_DENIED when the customer opted out (STOP),
 * CORE_ERR_UNSUPPORTED when no account is configured, CORE_ERR_BUSY or
 * CORE_ERR_CLOSED when the request cannot start. */
int chan_agent_say_async(net_client_t *http, const char *key, const char *agent, const char *text,
                         uint64_t *entry, chan_agent_done_cb cb, void *data, core_err_t *err);

/* ---- chat and web (src/channels/chan_chat*.c, chan_web*.c) ------------- */

/* Adds the chat routes to router (borrowed; must outlive the process's
 * serving): POST /v1/chat/conversations, POST
 * /v1/chat/conversations/{id}/messages, GET /v1/chat/conversations/{id} and
 * the WebSocket GET /v1/chat/ws. Also adds the web widget's routes (GET /,
 * /widget.js, /widget.css), whose WebSocket traffic is the same protocol
 * authenticated by origin instead of a key. The adapter's conversation
 * table is a cache: a conversation it does not hold (after a restart or an
 * eviction) is looked up in the store through the runtime and its
 * transcript rebuilt with the same sequence numbers (docs/channels.md,
 * "Restore"). host is copied. */
int chan_chat_register(net_router_t *router, const chan_host_t *host, core_err_t *err);

/* The chat adapter's counters since start and its table now (zero before
 * registration), for /metrics. */
typedef struct chan_chat_stats_s {
    uint64_t ws_followers_replaced; /* WebSockets closed for a newer follower of their
                                       conversation (chat.max_followers) */
    uint64_t conversations;         /* conversations in memory */
    uint64_t history_bytes;         /* bytes of their transcript entries (chat.history_bytes) */
    uint64_t evictions;             /* idle conversations forgotten for either bound */
} chan_chat_stats_t;
void chan_chat_stats(chan_chat_stats_t *out);
/* After a reload (chat.api_keys may have changed): closes the chat
 * WebSockets opened with a gateway key that is no longer configured, or
 * whose name now has another secret, as their key's REST requests and new
 * upgrades are refused from now on. */
void chan_chat_keys_changed(void);

/* ---- SMS and voice, Twilio-compatible (src/channels/chan_sms*.c,
 * chan_voice*.c, chan_twilio*.c) ------------------------------------------ */

/* Adds POST /v1/sms/twilio (Twilio's Messaging webhook; the sms section of
 * the config). host is copied. With a store (host->store), the opted-out
 * (From, To) pairs are read back before it returns (blocking: start-up,
 * before serving), and every STOP/START is written through the store's
 * writer before it is confirmed. */
int chan_sms_register(net_router_t *router, const chan_host_t *host, core_err_t *err);
/* Closes the client that texts replies Twilio stopped waiting for (before
 * the loop closes; the adapter's routes may still answer). */
void chan_sms_stop(void);
/* Adds POST /v1/voice/twilio (Twilio's Voice webhook and <Gather> action;
 * the voice section of the config). host is copied. */
int chan_voice_register(net_router_t *router, const chan_host_t *host, core_err_t *err);

#endif
