/* config.h — chorusd's configuration: one JSON file, validated against a table
 * of options (name, type, default, bounds, reloadable), as Redis's config.c.
 *
 * Loading has three steps: parse, check every key (collecting every problem
 * as `file:line:col: path: message`), then fill the struct. Unknown keys,
 * wrong types and out-of-range values are errors. Command-line overrides go
 * through the same checks. docs/configuration.md lists every option; it is
 * generated from the same table by `chorusd --help-config`.
 *
 * Threads: load on any thread; a loaded core_config_t is immutable and owned
 * by whoever loaded it. Ownership: core_config_dispose() frees its strings. */
#ifndef CHORUS_CONFIG_H
#define CHORUS_CONFIG_H

#include <stdio.h>

#include "chorus/core.h"

typedef struct core_config_s {
    char *file;            /* path it was loaded from ("" for defaults only) */
    char *listen;          /* "ADDR:PORT"; port 0 picks a free port */
    char *data_dir;        /* SQLite file and caches live here */
    char *flows_dir;       /* flow files */
    char *guardrails_file; /* guardrail rules (missing: built-in defaults) */
    char *log_level;       /* "error" | "warn" | "info" | "debug" */
    char *secrets_dir;     /* secret files, one per name (secret.h); "" = none */
    struct {
        char *watch;                  /* "on" | "off": reload when the flows directory changes */
        long long reload_debounce_ms; /* quiet time after a change before reloading */
        long long rescan_interval_ms; /* periodic comparison of the directory; 0 = none */
    } flows_watch;                    /* options "flows.*" (hot reload) */
    struct {
        char *production;  /* "follow" | "promoted": how production's flows change */
        char *default_env; /* "production" | "staging": turns that name no environment */
    } flow_envs;           /* options "flows.production", "flows.default_env" */
    struct {
        long long max_header_bytes;    /* request line + headers, bytes */
        long long max_headers;         /* header fields per request */
        long long max_body_bytes;      /* decoded request body, bytes */
        long long max_connections;     /* open client connections */
        long long max_pipelined;       /* requests queued unanswered per connection */
        long long header_timeout_ms;   /* first byte to end of headers */
        long long body_timeout_ms;     /* end of headers to end of body */
        long long idle_timeout_ms;     /* keep-alive idle between requests */
        long long requests_per_second; /* per connection, token bucket rate */
        long long request_burst;       /* per connection, token bucket size */
        long long write_buffer_bytes;  /* unsent response bytes before reading pauses */
    } http;
    struct {
        long long max_message_bytes; /* reassembled message; larger closes with 1009 */
        long long ping_interval_ms;  /* server ping period */
        long long pong_timeout_ms;   /* no pong within this closes the connection */
        long long send_queue_bytes;  /* queued outgoing bytes before sends fail */
    } websocket;
    struct {
        long long drain_timeout_ms; /* SIGTERM: wait this long for in-flight requests */
    } shutdown;
    struct {
        long long max_conversations; /* conversations the runtime keeps in memory */
    } runtime;
    struct {
        char *api_keys;                    /* "name:sha256hex,..." gateway keys, hashed */
        char *allowed_origins;             /* widget origins allowed without a key */
        long long max_conversations;       /* conversations the adapter keeps in memory */
        long long history_messages;        /* transcript entries kept per conversation */
        long long history_bytes;           /* transcript bytes kept, all conversations */
        long long max_followers;           /* WebSockets following one conversation */
        long long max_text_bytes;          /* one user message, bytes */
        long long idempotency_ttl_s;       /* how long a POST's response is replayed, s */
        long long idempotency_max_entries; /* stored responses, all gateways */
        char *frame_ancestors;             /* CSP frame-ancestors of the web pages */
    } chat;
    struct {
        char *public_url;            /* the base URL Twilio calls (signatures); "" = http://Host */
        char *auth_token_env;        /* environment variable holding the account's auth token */
        long long max_conversations; /* (From, To) pairs remembered (numbered choices) */
        long long dedupe_entries;    /* MessageSids remembered to drop Twilio's retries */
        long long max_parts;         /* segments one reply may take; the rest is cut */
        char *help_text;             /* the answer to HELP and INFO */
        char *stop_text;             /* the answer to STOP and its synonyms */
        char *start_text;            /* the answer to START and UNSTOP */
        char *environments;          /* "+15550100=staging,...": environment per To number */
        char *account_sid;           /* Twilio account for outbound texts; "" = none */
        char *api_base_url;          /* Twilio's REST API base (a stand-in in tests) */
        long long send_timeout_ms;   /* one outbound POST to Twilio, whole transfer */
    } sms;
    struct {
        char *public_url;       /* the base URL Twilio calls (signatures, Gather action) */
        char *auth_token_env;   /* environment variable holding the account's auth token */
        char *say_voice;        /* <Say voice="..."> */
        char *language;         /* <Say language> and <Gather language> */
        char *handoff_numbers;  /* "queue=+15550100,other=sip:...,*=..." per handoff queue */
        long long max_silences; /* re-prompts after silence before the call is ended */
        long long max_calls;    /* calls tracked at once */
        char *environments;     /* "+15550100=staging,...": environment per called number */
    } voice;
    struct {
        char *path;                       /* database file; "" = data_dir/chorus.db */
        char *synchronous;                /* "normal" | "full" */
        long long queue_max_batches;      /* batches waiting for the writer before 503 */
        long long batch_max;              /* batches committed in one transaction */
        long long retry_ms;               /* after a write failure, probe this often, ms */
        long long writer_nice;            /* nice steps the writer runs below the loop (Linux) */
        long long retention_days;         /* transcripts (text, events, state) kept, days */
        long long metrics_retention_days; /* KPI rows of ended conversations kept, days */
        char *llm_price_in_per_mtok;      /* decimal, currency per million prompt tokens */
        char *llm_price_out_per_mtok;     /* decimal, per million completion tokens */
        char *message_cost;               /* decimal, per message, any channel */
        char *message_costs;              /* "sms=0.0079,voice=0.013" per-channel overrides */
    } store;
    struct {
        long long per_ip_rps;         /* requests/s per client IP; 0 = off */
        long long per_ip_burst;       /* per client IP bucket size */
        long long per_key_rps;        /* requests/s per API key; 0 = off */
        long long per_key_burst;      /* per API key bucket size */
        long long per_ip_connections; /* open connections per socket peer; 0 = off */
        long long max_clients;        /* tracked IPs (and keys) before the idlest go */
        char *trusted_proxies;        /* CIDRs whose X-Forwarded-For is believed */
    } limits;
    struct {
        char *tokens;       /* "name:sha256hex,..." admin API bearer tokens, hashed */
        char *metrics_auth; /* "auto" | "open" | "token": does GET /metrics need a token */
    } admin;
    struct {
        long long check_interval_ms;     /* how often the guard reads running rollouts' KPIs */
        long long min_sample;            /* conversations per variant before the guard judges */
        char *max_error_rate_delta;      /* decimal: candidate failure rate - control's */
        char *max_escalation_rate_delta; /* decimal: candidate escalation rate - control's */
        char *max_p95_latency_ratio;     /* decimal: candidate p95 latency / control's */
        long long p95_latency_slack_ms;  /* ...and more than this many ms slower */
    } rollouts;
    struct {
        long long interval_s;  /* how often drift is checked; 0 = never */
        long long recent_s;    /* the recent window */
        long long baseline_s;  /* the baseline window before it */
        long long min_turns;   /* user turns each window needs before it can alert */
        char *psi;             /* decimal: alert above this intent-distribution PSI */
        char *rate_delta;      /* decimal: alert on oos/fallback rises, containment falls */
        char *confidence_drop; /* decimal: alert when mean confidence falls by more */
        char *webhook_url;     /* POST each alert here as JSON; "" = none */
    } drift;
    struct {
        char *listen;       /* "ADDR:PORT" of the TLS listener; "" = none */
        char *cert_file;    /* PEM certificate chain */
        char *key_file;     /* PEM private key */
        char *min_version;  /* "1.2" | "1.3" */
        char *ciphers;      /* TLS 1.2 cipher list; "" = modern default */
        char *ciphersuites; /* TLS 1.3 suites; "" = OpenSSL's default */
    } tls;
    struct {
        char *ca_file;        /* CA bundle for every https call; "" = the system's */
        char *ca_files;       /* "host=path,..." per-host CA bundles */
        char *insecure_hosts; /* "host,..." whose certificates are not verified */
    } outbound;
    struct {
        char *queues_file;              /* JSON: the human queues and which reason goes where */
        char *webhook_url;              /* the external desk's endpoint; "" = no webhook */
        char *webhook_secret_env;       /* variable holding the HMAC-SHA256 signing secret */
        long long webhook_max_attempts; /* deliveries tried before giving up */
        long long webhook_backoff_ms;   /* first retry wait, doubled each time (with jitter) */
        long long webhook_timeout_ms;   /* one delivery attempt */
    } agents;
} core_config_t;

/* Fills cfg with every default. */
void core_config_defaults(core_config_t *cfg);
void core_config_dispose(core_config_t *cfg);

/* Loads path over the defaults. On any problem returns CORE_ERR_INVALID (or
 * CORE_ERR_IO) with every problem appended to diags, and leaves cfg holding
 * the defaults. */
int core_config_load(core_config_t *cfg, const char *path, core_diags_t *diags);
/* The same from text already in memory; file names it in diagnostics. */
int core_config_load_text(core_config_t *cfg, const char *file, const char *text, size_t len,
                          core_diags_t *diags);

/* Sets one option from a string (a command-line override such as --listen),
 * checked like the file; source names it in the diagnostic ("--listen"). */
int core_config_set(core_config_t *cfg, const char *path, const char *value, const char *source,
                    core_diags_t *diags);

/* Writes the comma-separated names of options that differ between a and b and
 * cannot be applied without a restart into out; returns how many. */
int core_config_restart_needed(const core_config_t *a, const core_config_t *b, char *out,
                               size_t out_size);

/* Prints every option (path, type, default, range, reloadable, meaning) as a
 * Markdown table: the source of docs/configuration.md. */
void core_config_print_reference(FILE *out);

/* Splits "ADDR:PORT" or "[v6]:PORT"; host must have room for 64 bytes. */
int core_config_parse_listen(const char *listen, char *host, size_t host_size, int *port);

#endif
