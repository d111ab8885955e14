/* The configuration's options, one row each (name, type, field, bounds,
 * default, reloadable, extra check, documentation), and the checks of
 * string values that need more than a type: see config.h and
 * docs/configuration.md, which is generated from this table. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/secret.h"
#include "core/core_config_int.h"

#define OFF(f) offsetof(core_config_t, f)

static const char *check_listen(const char *value);
static const char *check_decimal(const char *value);
static const char *check_costs(const char *value);
static const char *check_nonempty(const char *value);
static const char *check_api_keys(const char *value);
static const char *check_admin_tokens(const char *value);
static const char *check_numbers(const char *value);
static const char *check_env_map(const char *value);
static const char *check_cidrs(const char *value);
static const char *check_csp_sources(const char *value);

const option_t core__options[] = {
    {"listen", OPT_STRING, OFF(listen), 0, 0, 0, "127.0.0.1:8080", NULL, 0, check_listen,
     "Address and port to listen on, `ADDR:PORT` or `[v6]:PORT`; port 0 picks a free one."},
    {"data_dir", OPT_STRING, OFF(data_dir), 0, 0, 0, "var", NULL, 0, check_nonempty,
     "Directory for the SQLite database and caches, relative to the working directory."},
    {"flows_dir", OPT_STRING, OFF(flows_dir), 0, 0, 0, "flows", NULL, 0, check_nonempty,
     "Directory of flow files."},
    {"guardrails_file", OPT_STRING, OFF(guardrails_file), 0, 0, 0, "config/guardrails.json", NULL,
     0, check_nonempty,
     "Guardrail rules and escalation policy (docs/guardrails.md); when the file is missing the "
     "built-in defaults apply. Its contents are re-read with the flows on SIGHUP."},
    {"flows.watch", OPT_ENUM, OFF(flows_watch.watch), 0, 0, 0, "on", "on|off", 1, NULL,
     "Reload the flows when a file in `flows_dir` changes (fs events plus a periodic rescan); "
     "`off` leaves reloads to SIGHUP and `chorusctl flows reload`."},
    {"flows.reload_debounce_ms", OPT_INT, OFF(flows_watch.reload_debounce_ms), 0, 60000, 200, NULL,
     NULL, 1, NULL,
     "Quiet time after a change in `flows_dir` before the flows reload, so an editor's "
     "write-and-rename counts once."},
    {"flows.rescan_interval_ms", OPT_INT, OFF(flows_watch.rescan_interval_ms), 0, 3600000, 2000,
     NULL, NULL, 1, NULL,
     "How often `flows_dir` is compared (names, sizes, mtimes, hashes) with the last load, for "
     "filesystems whose change events are unreliable; 0 = only fs events."},
    {"flows.production", OPT_ENUM, OFF(flow_envs.production), 0, 0, 0, "follow", "follow|promoted",
     0, NULL,
     "How the `production` environment's flows change: `follow` (development) makes every valid "
     "load of `flows_dir` production too; `promoted` (packaged installs) changes production only "
     "by `chorusctl flows promote` and `rollback`, the directory feeding `staging`."},
    {"flows.default_env", OPT_ENUM, OFF(flow_envs.default_env), 0, 0, 0, "production",
     "production|staging", 0, NULL,
     "Environment of conversations whose gateway names none (API keys without an environment, "
     "numbers not in `sms.environments` / `voice.environments`, the web widget)."},
    {"log_level", OPT_ENUM, OFF(log_level), 0, 0, 0, "info", "error|warn|info|debug", 1, NULL,
     "Least severe level logged."},
    {"secrets_dir", OPT_STRING, OFF(secrets_dir), 0, 0, 0, "", NULL, 1, NULL,
     "Directory of secret files, each named after its secret (`TWILIO_AUTH_TOKEN`, "
     "`CHORUS_ADMIN_TOKENS`, an LLM node's `api_key_env`) and readable by its owner only (mode "
     "0600 or 0400; any other mode and chorusd refuses to start). A secret without a file comes "
     "from the environment variable of the same name. Empty: systemd's `$CREDENTIALS_DIRECTORY` "
     "when set. Re-read on SIGHUP."},
    {"http.max_header_bytes", OPT_INT, OFF(http.max_header_bytes), 1 * KIB, 1 * MIB, 16 * KIB, NULL,
     NULL, 1, NULL, "Request line and headers as sent, CRLFs included; larger gets 431."},
    {"http.max_headers", OPT_INT, OFF(http.max_headers), 8, 1000, 100, NULL, NULL, 1, NULL,
     "Header fields per request; more gets 431."},
    {"http.max_body_bytes", OPT_INT, OFF(http.max_body_bytes), 0, 1024 * MIB, 1 * MIB, NULL, NULL,
     1, NULL, "Request body after de-chunking; larger gets 413."},
    {"http.max_connections", OPT_INT, OFF(http.max_connections), 1, 1000000, 10000, NULL, NULL, 1,
     NULL, "Open client connections; more are closed on accept."},
    {"http.max_pipelined", OPT_INT, OFF(http.max_pipelined), 1, 1024, 32, NULL, NULL, 1, NULL,
     "Requests read ahead of their responses on one connection before reading pauses."},
    {"http.header_timeout_ms", OPT_INT, OFF(http.header_timeout_ms), 100, 3600000, 10000, NULL,
     NULL, 1, NULL, "Time to receive a request's headers; slower gets 408."},
    {"http.body_timeout_ms", OPT_INT, OFF(http.body_timeout_ms), 100, 3600000, 30000, NULL, NULL, 1,
     NULL, "Time to receive a request's body after its headers; slower gets 408."},
    {"http.idle_timeout_ms", OPT_INT, OFF(http.idle_timeout_ms), 100, 3600000, 60000, NULL, NULL, 1,
     NULL, "Keep-alive connection idle time before it is closed."},
    {"http.requests_per_second", OPT_INT, OFF(http.requests_per_second), 1, 10000000, 10000, NULL,
     NULL, 1, NULL, "Sustained requests per second per connection; faster gets 429."},
    {"http.request_burst", OPT_INT, OFF(http.request_burst), 1, 10000000, 20000, NULL, NULL, 1,
     NULL, "Burst of requests per connection above the sustained rate."},
    {"http.write_buffer_bytes", OPT_INT, OFF(http.write_buffer_bytes), 4 * KIB, 1024 * MIB, 1 * MIB,
     NULL, NULL, 1, NULL,
     "Unsent response bytes per connection before the server stops reading from it."},
    {"websocket.max_message_bytes", OPT_INT, OFF(websocket.max_message_bytes), 125, 64 * MIB,
     64 * KIB, NULL, NULL, 1, NULL, "Largest reassembled message; larger closes with 1009."},
    {"websocket.ping_interval_ms", OPT_INT, OFF(websocket.ping_interval_ms), 100, 3600000, 30000,
     NULL, NULL, 1, NULL, "How often the server pings an idle WebSocket."},
    {"websocket.pong_timeout_ms", OPT_INT, OFF(websocket.pong_timeout_ms), 100, 3600000, 10000,
     NULL, NULL, 1, NULL, "A peer that does not answer a ping within this is closed."},
    {"websocket.send_queue_bytes", OPT_INT, OFF(websocket.send_queue_bytes), 4 * KIB, 1024 * MIB,
     4 * MIB, NULL, NULL, 1, NULL, "Queued outgoing bytes per WebSocket before sends fail."},
    {"shutdown.drain_timeout_ms", OPT_INT, OFF(shutdown.drain_timeout_ms), 0, 3600000, 10000, NULL,
     NULL, 1, NULL, "On SIGTERM, how long in-flight requests may take to finish."},
    {"runtime.max_conversations", OPT_INT, OFF(runtime.max_conversations), 1, 10000000, 100000,
     NULL, NULL, 0, NULL,
     "Conversations (all channels) the runtime keeps in memory; at the limit an idle one already "
     "saved is evicted and read back from the store on its next turn; with a `:memory:` store a "
     "new conversation is refused (503 `at_capacity`) instead."},
    {"chat.api_keys", OPT_STRING, OFF(chat.api_keys), 0, 0, 0, "", NULL, 1, check_api_keys,
     "Gateway API keys, `name:sha256hex` comma-separated (the SHA-256 of each key, in hex), "
     "optionally `name:sha256hex:staging` (or `:production`) to choose the environment the "
     "key's conversations run in; "
     "empty: the chat REST API answers 401. `secret:NAME`: the list is the secret NAME "
     "(`secrets_dir`, else the environment)."},
    {"chat.allowed_origins", OPT_STRING, OFF(chat.allowed_origins), 0, 0, 0, "", NULL, 1, NULL,
     "Origins whose pages may open the chat WebSocket without a key, comma-separated "
     "(`https://shop.example`); empty: the daemon's own origin only; `*`: any."},
    {"chat.max_conversations", OPT_INT, OFF(chat.max_conversations), 1, 10000000, 100000, NULL,
     NULL, 1, NULL, "Chat conversations kept in memory; the least recently used idle one goes."},
    {"chat.history_messages", OPT_INT, OFF(chat.history_messages), 64, 100000, 500, NULL, NULL, 1,
     NULL, "Transcript entries kept per chat conversation for GET and WebSocket resume."},
    {"chat.history_bytes", OPT_INT, OFF(chat.history_bytes), 1 * MIB, 1LL << 40, 256 * MIB, NULL,
     NULL, 1, NULL,
     "Bytes of transcript entries all chat conversations keep in memory together; past it, "
     "least recently used idle conversations are forgotten at the next turn (read back from "
     "the store when they come back)."},
    {"chat.max_followers", OPT_INT, OFF(chat.max_followers), 1, 1000, 8, NULL, NULL, 1, NULL,
     "WebSockets following one chat conversation at once; a new one beyond it closes the oldest "
     "(`error replaced`, close 1008), which can resume by seq."},
    {"chat.max_text_bytes", OPT_INT, OFF(chat.max_text_bytes), 1, 1 * MIB, 4 * KIB, NULL, NULL, 1,
     NULL, "Largest user message accepted by the chat channel; larger gets 413."},
    {"chat.idempotency_ttl_s", OPT_INT, OFF(chat.idempotency_ttl_s), 1, 604800, 86400, NULL, NULL,
     1, NULL, "How long a POST with an Idempotency-Key replays its stored response."},
    {"chat.idempotency_max_entries", OPT_INT, OFF(chat.idempotency_max_entries), 16, 10000000,
     100000, NULL, NULL, 1, NULL, "Stored idempotent responses; the oldest go first."},
    {"chat.frame_ancestors", OPT_STRING, OFF(chat.frame_ancestors), 0, 0, 0, "'none'", NULL, 1,
     check_csp_sources,
     "CSP `frame-ancestors` of the web pages (`'none'`: no site may frame them; "
     "`'self' https://shop.example` to embed the demo page in an iframe)."},
    {"limits.per_ip_rps", OPT_INT, OFF(limits.per_ip_rps), 0, 10000000, 0, NULL, NULL, 1, NULL,
     "Sustained requests per second per client IP (IPv6: per /64); faster gets 429 with "
     "Retry-After. 0: off."},
    {"limits.per_ip_burst", OPT_INT, OFF(limits.per_ip_burst), 1, 10000000, 50, NULL, NULL, 1, NULL,
     "Requests a client IP may send at once above its sustained rate."},
    {"limits.per_key_rps", OPT_INT, OFF(limits.per_key_rps), 0, 10000000, 0, NULL, NULL, 1, NULL,
     "Sustained requests per second per chat API key; faster gets 429 with Retry-After. 0: off."},
    {"limits.per_key_burst", OPT_INT, OFF(limits.per_key_burst), 1, 10000000, 100, NULL, NULL, 1,
     NULL, "Requests an API key may send at once above its sustained rate."},
    {"limits.per_ip_connections", OPT_INT, OFF(limits.per_ip_connections), 0, 1000000, 0, NULL,
     NULL, 1, NULL,
     "Open connections per socket peer address (trusted proxies exempt); more get 429 and are "
     "closed. 0: off."},
    {"limits.max_clients", OPT_INT, OFF(limits.max_clients), 16, 10000000, 100000, NULL, NULL, 1,
     NULL,
     "Client IPs (and API keys) tracked for the limits above; past it the idlest are "
     "forgotten."},
    {"limits.trusted_proxies", OPT_STRING, OFF(limits.trusted_proxies), 0, 0, 0, "", NULL, 1,
     check_cidrs,
     "Proxies whose `X-Forwarded-For` is believed, comma-separated addresses or CIDRs "
     "(`10.0.0.0/8,::1`); the client is the rightmost untrusted hop. Empty: the socket peer is "
     "the client."},
    {"sms.public_url", OPT_STRING, OFF(sms.public_url), 0, 0, 0, "", NULL, 1, NULL,
     "The public base URL Twilio's Messaging webhook calls (`https://bot.example.com`), which "
     "X-Twilio-Signature covers; empty: `http://` + the Host header."},
    {"sms.auth_token_env", OPT_STRING, OFF(sms.auth_token_env), 0, 0, 0, "TWILIO_AUTH_TOKEN", NULL,
     1, check_nonempty,
     "Environment variable holding the Twilio auth token that signs SMS webhooks; unset: every "
     "request gets 403."},
    {"sms.max_conversations", OPT_INT, OFF(sms.max_conversations), 1, 10000000, 100000, NULL, NULL,
     1, NULL, "(From, To) pairs the SMS adapter remembers (last choices); the least recent go."},
    {"sms.dedupe_entries", OPT_INT, OFF(sms.dedupe_entries), 16, 10000000, 100000, NULL, NULL, 1,
     NULL, "MessageSids remembered so a retried webhook is answered without a second turn."},
    {"sms.max_parts", OPT_INT, OFF(sms.max_parts), 1, 100, 10, NULL, NULL, 1, NULL,
     "Segments one SMS reply may take; a longer reply is cut at a sentence end."},
    {"sms.help_text", OPT_STRING, OFF(sms.help_text), 0, 0, 0,
     "Reply with your question to talk to our assistant. Reply STOP to unsubscribe.", NULL, 1,
     check_nonempty, "The answer to HELP and INFO."},
    {"sms.stop_text", OPT_STRING, OFF(sms.stop_text), 0, 0, 0,
     "You have been unsubscribed and will receive no more messages. Reply START to resubscribe.",
     NULL, 1, check_nonempty, "The one answer to STOP and its synonyms."},
    {"sms.start_text", OPT_STRING, OFF(sms.start_text), 0, 0, 0,
     "You have been resubscribed. Reply HELP for help, STOP to unsubscribe.", NULL, 1,
     check_nonempty, "The answer to START, UNSTOP (and YES from an opted-out number)."},
    {"sms.environments", OPT_STRING, OFF(sms.environments), 0, 0, 0, "", NULL, 1, check_env_map,
     "Environment per Twilio number a message is sent to, `+15550100=staging,...`; numbers not "
     "listed use `flows.default_env`."},
    {"sms.account_sid", OPT_STRING, OFF(sms.account_sid), 0, 0, 0, "", NULL, 1, NULL,
     "Twilio account SID (`AC...`, or `secret:NAME`) the human desk texts customers through "
     "(Twilio's Messages API, authenticated with it and the `sms.auth_token_env` token); empty: "
     "agents cannot answer SMS conversations (409)."},
    {"sms.api_base_url", OPT_STRING, OFF(sms.api_base_url), 0, 0, 0, "https://api.twilio.com", NULL,
     1, check_nonempty,
     "Base URL of Twilio's REST API; outbound texts are POSTed to "
     "`{base}/2010-04-01/Accounts/{sms.account_sid}/Messages.json`."},
    {"sms.send_timeout_ms", OPT_INT, OFF(sms.send_timeout_ms), 100, 120000, 10000, NULL, NULL, 1,
     NULL, "Time one outbound text's request to Twilio may take before the desk is told 502."},
    {"voice.public_url", OPT_STRING, OFF(voice.public_url), 0, 0, 0, "", NULL, 1, NULL,
     "The public base URL Twilio's Voice webhook calls: signatures and the `<Gather>` action; "
     "empty: `http://` + the Host header."},
    {"voice.auth_token_env", OPT_STRING, OFF(voice.auth_token_env), 0, 0, 0, "TWILIO_AUTH_TOKEN",
     NULL, 1, check_nonempty,
     "Environment variable holding the Twilio auth token that signs voice webhooks."},
    {"voice.say_voice", OPT_STRING, OFF(voice.say_voice), 0, 0, 0, "Polly.Joanna", NULL, 1, NULL,
     "The `voice` of every `<Say>`; empty: Twilio's default."},
    {"voice.language", OPT_STRING, OFF(voice.language), 0, 0, 0, "en-US", NULL, 1, NULL,
     "The `language` of `<Say>` and of `<Gather>`'s speech recognition; empty: Twilio's default."},
    {"voice.handoff_numbers", OPT_STRING, OFF(voice.handoff_numbers), 0, 0, 0, "", NULL, 1,
     check_numbers,
     "Where a handoff dials, per queue: `queue=+15550100,billing=sip:desk@pbx.example,"
     "*=client:agents` (`*`: any other queue); a queue with none hears the message and the call "
     "ends."},
    {"voice.max_silences", OPT_INT, OFF(voice.max_silences), 0, 20, 2, NULL, NULL, 1, NULL,
     "Times a silent caller is prompted again before the call is ended."},
    {"voice.max_calls", OPT_INT, OFF(voice.max_calls), 1, 10000000, 100000, NULL, NULL, 1, NULL,
     "Calls the voice adapter tracks (last prompt, choices); the least recent go."},
    {"voice.environments", OPT_STRING, OFF(voice.environments), 0, 0, 0, "", NULL, 1, check_env_map,
     "Environment per Twilio number called, `+15550100=staging,...`; numbers not listed use "
     "`flows.default_env`."},
    {"store.path", OPT_STRING, OFF(store.path), 0, 0, 0, "", NULL, 0, NULL,
     "SQLite database file; empty means `data_dir`/chorus.db. `:memory:` keeps nothing (benchmarks "
     "only)."},
    {"store.synchronous", OPT_ENUM, OFF(store.synchronous), 0, 0, 0, "normal", "normal|full", 0,
     NULL,
     "`normal`: a commit survives a crash of chorusd (WAL); `full`: also a power cut (fsync per "
     "commit)."},
    {"store.queue_max_batches", OPT_INT, OFF(store.queue_max_batches), 16, 10000000, 4096, NULL,
     NULL, 0, NULL, "Turns waiting for the store writer before new turns get 503 + Retry-After."},
    {"store.batch_max", OPT_INT, OFF(store.batch_max), 1, 100000, 256, NULL, NULL, 0, NULL,
     "Turns committed together in one transaction (group commit), at most."},
    {"store.retry_ms", OPT_INT, OFF(store.retry_ms), 10, 600000, 1000, NULL, NULL, 0, NULL,
     "After a failed write (disk full), how often the writer tries again."},
    {"store.writer_nice", OPT_INT, OFF(store.writer_nice), 0, 19, 10, NULL, NULL, 0, NULL,
     "How far below the event loop's the store writer thread's priority is, in nice steps "
     "(Linux): when every core is busy the loop runs first and the writer commits bigger groups; "
     "0 = the same priority."},
    {"store.retention_days", OPT_INT, OFF(store.retention_days), 0, 36500, 90, NULL, NULL, 1, NULL,
     "Days a conversation's transcript (text, events, state) is kept after it ends; 0 = forever."},
    {"store.metrics_retention_days", OPT_INT, OFF(store.metrics_retention_days), 0, 36500, 400,
     NULL, NULL, 1, NULL,
     "Days the KPI columns of ended conversations are kept (after their text is gone); 0 = "
     "forever."},
    {"store.llm_price_in_per_mtok", OPT_STRING, OFF(store.llm_price_in_per_mtok), 0, 0, 0, "0",
     NULL, 1, check_decimal, "Cost to serve: price per million LLM prompt tokens."},
    {"store.llm_price_out_per_mtok", OPT_STRING, OFF(store.llm_price_out_per_mtok), 0, 0, 0, "0",
     NULL, 1, check_decimal, "Cost to serve: price per million LLM completion tokens."},
    {"store.message_cost", OPT_STRING, OFF(store.message_cost), 0, 0, 0, "0", NULL, 1,
     check_decimal, "Cost to serve: cost per message (either direction) on any channel."},
    {"store.message_costs", OPT_STRING, OFF(store.message_costs), 0, 0, 0, "", NULL, 1, check_costs,
     "Per-channel message costs overriding `store.message_cost`: `sms=0.0079,...`."},
    {"admin.tokens", OPT_STRING, OFF(admin.tokens), 0, 0, 0, "", NULL, 1, check_admin_tokens,
     "Bootstrap admin API bearer tokens, `name:role:sha256hex` comma-separated (role `viewer`, "
     "`operator`, `admin` or `agent`; `name:sha256hex` is an admin; the SHA-256 of each token, "
     "in hex). Tokens made by `chorusctl token create` are stored in the database instead; with "
     "neither, every admin request gets 401. `secret:NAME`: the list is the secret NAME "
     "(`secrets_dir`, else the environment)."},
    {"admin.metrics_auth", OPT_ENUM, OFF(admin.metrics_auth), 0, 0, 0, "auto", "auto|open|token", 1,
     NULL,
     "Whether `GET /metrics` needs an admin token: `auto` = open while `listen` (and `tls.listen`, "
     "when set) is a loopback address, a token otherwise."},
    {"drift.interval_s", OPT_INT, OFF(drift.interval_s), 0, 30 * 86400, 3600, NULL, NULL, 1, NULL,
     "How often chorusd compares the recent window of traffic with the baseline before it "
     "(docs/flywheel.md, \"Drift\"); 0 turns the check off."},
    {"drift.recent_s", OPT_INT, OFF(drift.recent_s), 60, 90 * 86400, 86400, NULL, NULL, 1, NULL,
     "Length of the recent window, ending at the check."},
    {"drift.baseline_s", OPT_INT, OFF(drift.baseline_s), 60, 365 * 86400, 7 * 86400, NULL, NULL, 1,
     NULL, "Length of the baseline window, just before the recent one."},
    {"drift.min_turns", OPT_INT, OFF(drift.min_turns), 1, 100000000, 200, NULL, NULL, 1, NULL,
     "User turns each window needs before a difference can raise an alert."},
    {"drift.psi", OPT_STRING, OFF(drift.psi), 0, 0, 0, "0.25", NULL, 1, check_decimal,
     "Alert when the population stability index of the intent distribution exceeds this."},
    {"drift.rate_delta", OPT_STRING, OFF(drift.rate_delta), 0, 0, 0, "0.10", NULL, 1, check_decimal,
     "Alert when the out-of-scope or fallback rate rises, or containment falls, by more than "
     "this (absolute: 0.10 is ten points)."},
    {"drift.confidence_drop", OPT_STRING, OFF(drift.confidence_drop), 0, 0, 0, "0.10", NULL, 1,
     check_decimal, "Alert when the mean routing confidence falls by more than this."},
    {"drift.webhook_url", OPT_STRING, OFF(drift.webhook_url), 0, 0, 0, "", NULL, 1, NULL,
     "Each alert is also POSTed here as JSON (the report of GET /v1/admin/drift); empty: none."},
    {"rollouts.check_interval_ms", OPT_INT, OFF(rollouts.check_interval_ms), 100, 3600000, 10000,
     NULL, NULL, 1, NULL,
     "How often the rollout guard compares each running rollout's candidate with its control."},
    {"rollouts.min_sample", OPT_INT, OFF(rollouts.min_sample), 1, 100000000, 200, NULL, NULL, 1,
     NULL, "Conversations each variant needs before the rollout guard judges the candidate."},
    {"rollouts.max_error_rate_delta", OPT_STRING, OFF(rollouts.max_error_rate_delta), 0, 0, 0,
     "0.05", NULL, 1, check_decimal,
     "Rollback when the candidate's failure rate (failed bot turns / bot turns) exceeds the "
     "control's by more than this."},
    {"rollouts.max_escalation_rate_delta", OPT_STRING, OFF(rollouts.max_escalation_rate_delta), 0,
     0, 0, "0.10", NULL, 1, check_decimal,
     "Rollback when the candidate's escalation rate exceeds the control's by more than this."},
    {"rollouts.max_p95_latency_ratio", OPT_STRING, OFF(rollouts.max_p95_latency_ratio), 0, 0, 0,
     "1.5", NULL, 1, check_decimal,
     "Rollback when the candidate's p95 reply latency exceeds the control's times this (and by "
     "more than `rollouts.p95_latency_slack_ms`)."},
    {"rollouts.p95_latency_slack_ms", OPT_INT, OFF(rollouts.p95_latency_slack_ms), 0, 3600000, 50,
     NULL, NULL, 1, NULL,
     "A candidate at most this many ms slower (p95) than the control is never rolled back for "
     "latency: at a few ms per reply a ratio is noise."},
    {"tls.listen", OPT_STRING, OFF(tls.listen), 0, 0, 0, "", NULL, 0, NULL,
     "Address and port of the TLS listener, `ADDR:PORT`; empty: no TLS. `listen` stays plain."},
    {"tls.cert_file", OPT_STRING, OFF(tls.cert_file), 0, 0, 0, "", NULL, 1, NULL,
     "PEM certificate chain of the TLS listener (the certificate first, then intermediates); "
     "re-read on SIGHUP."},
    {"tls.key_file", OPT_STRING, OFF(tls.key_file), 0, 0, 0, "", NULL, 1, NULL,
     "PEM private key of `tls.cert_file`; re-read on SIGHUP."},
    {"tls.min_version", OPT_ENUM, OFF(tls.min_version), 0, 0, 0, "1.2", "1.2|1.3", 1, NULL,
     "Oldest TLS version accepted."},
    {"tls.ciphers", OPT_STRING, OFF(tls.ciphers), 0, 0, 0, "", NULL, 1, NULL,
     "TLS 1.2 cipher list (OpenSSL syntax); empty: ECDHE with AES-GCM or ChaCha20-Poly1305."},
    {"tls.ciphersuites", OPT_STRING, OFF(tls.ciphersuites), 0, 0, 0, "", NULL, 1, NULL,
     "TLS 1.3 cipher suites (OpenSSL syntax); empty: OpenSSL's default."},
    {"outbound.ca_file", OPT_STRING, OFF(outbound.ca_file), 0, 0, 0, "", NULL, 0, NULL,
     "CA bundle (PEM) that verifies every outbound https call (backends, LLMs); empty: the "
     "system's."},
    {"outbound.ca_files", OPT_STRING, OFF(outbound.ca_files), 0, 0, 0, "", NULL, 0, NULL,
     "Per-host CA bundles overriding `outbound.ca_file`: `host=path,...` (`api.example.com="
     "/etc/chorus/api-ca.pem`)."},
    {"outbound.insecure_hosts", OPT_STRING, OFF(outbound.insecure_hosts), 0, 0, 0, "", NULL, 0,
     NULL,
     "Hosts whose certificates are NOT verified, comma-separated; logged as a warning at every "
     "start. For test stand-ins only."},
    {"agents.queues_file", OPT_STRING, OFF(agents.queues_file), 0, 0, 0, "config/queues.json", NULL,
     1, NULL,
     "The human queues (JSON, docs/agents.md): names, business hours in an IANA time zone, "
     "maximum wait, waiting and unavailable messages, and which handoff reason goes to which "
     "queue. Missing: one queue per name the flows hand off to, always open."},
    {"agents.webhook_url", OPT_STRING, OFF(agents.webhook_url), 0, 0, 0, "", NULL, 1, NULL,
     "An external desk's endpoint told of every handoff (signed JSON POST, docs/agents.md); "
     "\"\" = none."},
    {"agents.webhook_secret_env", OPT_STRING, OFF(agents.webhook_secret_env), 0, 0, 0,
     "CHORUS_AGENTS_WEBHOOK_SECRET", NULL, 1, NULL,
     "Environment variable holding the webhook's HMAC-SHA256 secret; unset = unsigned."},
    {"agents.webhook_max_attempts", OPT_INT, OFF(agents.webhook_max_attempts), 1, 100, 8, NULL,
     NULL, 1, NULL, "Delivery attempts of one webhook before it is given up (logged)."},
    {"agents.webhook_backoff_ms", OPT_INT, OFF(agents.webhook_backoff_ms), 10, 3600000, 500, NULL,
     NULL, 1, NULL,
     "Wait before the first retry; doubled per attempt (capped at 5 minutes), with +/-25% "
     "jitter."},
    {"agents.webhook_timeout_ms", OPT_INT, OFF(agents.webhook_timeout_ms), 100, 600000, 10000, NULL,
     NULL, 1, NULL, "One webhook delivery attempt, connect to last byte."},
};
const size_t core__n_options = sizeof(core__options) / sizeof(core__options[0]);

/* 1 if s[0..n) is the name of an environment: staging or production. */
static int is_env_name(const char *s, size_t n)
{
    return (n == 7 && strncmp(s, "staging", 7) == 0) ||
           (n == 10 && strncmp(s, "production", 10) == 0);
}

static const char *check_decimal(const char *value)
{
    char *end;
    double d = strtod(value, &end);
    return end == value || *end != '\0' || !(d >= 0) ? "must be a decimal number >= 0, such as 0.15"
                                                     : NULL;
}

/* "channel=decimal,..." */
static const char *check_costs(const char *value)
{
    for (const char *p = value; *p != '\0';) {
        size_t n = strcspn(p, ",");
        const char *eq = memchr(p, '=', n);
        char *end;
        if (eq == NULL || eq == p || (strtod(eq + 1, &end), end == eq + 1) || end != p + n)
            return "must be channel=cost pairs separated by commas, such as sms=0.0079,voice=0.013";
        p += n + (p[n] == ',');
    }
    return NULL;
}

static const char *check_listen(const char *value)
{
    char host[64];
    int port;
    if (core_config_parse_listen(value, host, sizeof(host), &port) != 0)
        return "must be ADDR:PORT with a port 0-65535, such as 127.0.0.1:8080";
    return NULL;
}

static const char *check_nonempty(const char *value)
{
    return value[0] == '\0' ? "must not be empty" : NULL;
}

/* "addr[/bits],..." IPv4 or IPv6 addresses with an optional prefix length. */
static const char *check_cidrs(const char *value)
{
    static const char msg[] = "must be IP addresses or CIDRs separated by commas, such as "
                              "10.0.0.0/8,::1";
    for (const char *p = value; *p != '\0';) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, ", ");
        char ip[64];
        const char *slash = memchr(p, '/', n);
        size_t alen = slash ? (size_t)(slash - p) : n;
        unsigned char buf[16];
        if (alen == 0 || alen >= sizeof(ip))
            return msg;
        memcpy(ip, p, alen);
        ip[alen] = '\0';
        int v6 = inet_pton(AF_INET6, ip, buf) == 1;
        if (!v6 && inet_pton(AF_INET, ip, buf) != 1)
            return msg;
        if (slash) {
            char *end;
            errno = 0;
            long bits = strtol(slash + 1, &end, 10);
            if (end != p + n || slash[1] < '0' || slash[1] > '9' || bits > (v6 ? 128 : 32))
                return msg;
        }
        p += n;
        while (*p == ' ' || *p == ',')
            p++;
    }
    return NULL;
}

/* CSP source expressions: printable, no ';' or ',' (which would end the
 * directive or the policy), not empty. */
static const char *check_csp_sources(const char *value)
{
    if (value[0] == '\0')
        return "must not be empty ('none' forbids framing)";
    for (const char *p = value; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == ';' || *p == ',')
            return "must be CSP sources separated by spaces, such as 'self' https://shop.example";
    return NULL;
}

/* "+15550100=staging,+15550111=production": an environment per number. */
static const char *check_env_map(const char *value)
{
    for (const char *p = value; *p != '\0';) {
        size_t n = strcspn(p, ",");
        const char *eq = memchr(p, '=', n);
        if (eq == NULL || eq == p)
            return "must be number=environment pairs separated by commas";
        if (!is_env_name(eq + 1, (size_t)(p + n - eq - 1)))
            return "each number's environment must be staging or production";
        p += n + (p[n] == ',');
    }
    return NULL;
}

/* "queue=target,..." with non-empty names and targets. */
static const char *check_numbers(const char *value)
{
    const char *p = value;
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        if (eq == NULL || eq == p || eq + 1 == p + n)
            return "must be queue=number pairs separated by commas";
        p += n + (end != NULL);
    }
    return NULL;
}

/* "name:hex64[:environment],...": names are [A-Za-z0-9_.-], hashes 64 hex
 * digits, an environment staging or production. */
static const char *check_api_keys(const char *value)
{
    for (const char *p = value; *p != '\0';) {
        size_t name =
            strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-");
        if (name == 0 || p[name] != ':')
            return "must be name:sha256hex entries separated by commas";
        p += name + 1;
        if (strspn(p, "0123456789abcdefABCDEF") != 64 ||
            (p[64] != ',' && p[64] != '\0' && p[64] != ':'))
            return "each key's hash must be 64 hex digits (the SHA-256 of the key)";
        p += 64;
        if (*p == ':') { /* name:sha256hex:environment */
            size_t e = strcspn(p + 1, ",");
            if (!is_env_name(p + 1, e))
                return "a key's environment must be staging or production";
            p += 1 + e;
        }
        p += *p == ',';
    }
    return NULL;
}

/* admin.tokens: name:sha256hex or name:role:sha256hex entries. */
static const char *check_admin_tokens(const char *value)
{
    static const char *const roles[] = {"viewer:", "operator:", "admin:", "agent:"};
    for (const char *p = value; *p != '\0';) {
        size_t name =
            strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-");
        if (name == 0 || p[name] != ':')
            return "must be name:role:sha256hex (or name:sha256hex) entries separated by commas";
        p += name + 1;
        if (strspn(p, "0123456789abcdefABCDEF") != 64) {
            size_t i = 0;
            while (i < 4 && strncmp(p, roles[i], strlen(roles[i])) != 0)
                i++;
            if (i == 4)
                return "each role must be viewer, operator, admin or agent";
            p += strlen(roles[i]);
        }
        if (strspn(p, "0123456789abcdefABCDEF") != 64 || (p[64] != ',' && p[64] != '\0'))
            return "each token's hash must be 64 hex digits (the SHA-256 of the token)";
        p += 64 + (p[64] == ',');
    }
    return NULL;
}
