/* The HTTP driver of `chorusctl simulate`: plays the conversations against a
 * running daemon's chat REST API (docs/channels.md) with --concurrency
 * requests in flight on one thread, through libcurl's multi interface and
 * its keep-alive connection pool, so one core of load generation can keep a
 * daemon busy. Each virtual customer starts its conversation, then sends its
 * planned turns one by one; a reply's status, messages and handoff reason
 * are checked against the script. Latency is the client's: request sent to
 * reply read. */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/ctl_admin_http.h"
#include "cmd/ctl_simulate.h"

#define REPLY_MAX (1024 * 1024)
#define TIMEOUT_MS 30000L

typedef struct {
    CURL *easy;
    long conv;        /* -1 when idle */
    size_t next_turn; /* the turn in flight; SIZE_MAX while starting */
    char id[128];     /* conversation id the daemon gave */
    core_buf_t reply;
    char *body;
    uint64_t sent_us;
} vuser_t;

typedef struct {
    sim_t *s;
    CURLM *multi;
    struct curl_slist *headers;
    long next;
} drive_t;

static size_t on_data(char *p, size_t size, size_t n, void *data)
{
    vuser_t *u = data;
    return core_buf_append(&u->reply, p, size * n) == 0 ? size * n : 0;
}

static void send_request(drive_t *d, vuser_t *u)
{
    char *url;
    int base = (int)ctl_url_base_len(d->s->url);
    free(u->body);
    u->body = NULL;
    if (u->next_turn == SIZE_MAX) {
        url = core_xasprintf("%.*s/v1/chat/conversations", base, d->s->url);
        u->body = core_xstrdup("");
    } else {
        url = core_xasprintf("%.*s/v1/chat/conversations/%s/messages", base, d->s->url, u->id);
        json_t *b = json_pack("{s:s}", "text", d->s->plan[u->conv].turns[u->next_turn].text);
        u->body = json_dumps(b, JSON_COMPACT);
        json_decref(b);
    }
    core_buf_reset(&u->reply);
    curl_easy_setopt(u->easy, CURLOPT_URL, url); /* curl keeps a copy */
    free(url);
    curl_easy_setopt(u->easy, CURLOPT_POSTFIELDS, u->body);
    u->sent_us = core_now_us();
    curl_multi_add_handle(d->multi, u->easy);
}

/* Starts the next planned conversation on u, or leaves u idle. */
static void next_conversation(drive_t *d, vuser_t *u)
{
    u->conv = d->next < d->s->conversations ? d->next++ : -1;
    if (u->conv < 0)
        return;
    u->next_turn = SIZE_MAX;
    u->id[0] = '\0';
    send_request(d, u);
}

static void finish(drive_t *d, vuser_t *u)
{
    d->s->done++;
    next_conversation(d, u);
}

/* A reply arrived: check it, then send the next turn or move on. */
static void on_reply(drive_t *d, vuser_t *u, CURLcode cc)
{
    sim_t *s = d->s;
    long code = 0;
    curl_easy_getinfo(u->easy, CURLINFO_RESPONSE_CODE, &code);
    uint64_t us = core_now_us() - u->sent_us;
    char kind[64];
    if (cc != CURLE_OK || code < 200 || code > 299) {
        if (cc != CURLE_OK)
            snprintf(kind, sizeof(kind), "transport_%d", (int)cc);
        else
            snprintf(kind, sizeof(kind), "http_%ld", code);
        sim_fail(s, (size_t)u->conv, kind);
        return finish(d, u);
    }
    json_t *r = json_loadb(u->reply.data ? u->reply.data : "", u->reply.len, 0, NULL);
    const char *status = json_string_value(json_object_get(r, "status"));
    if (u->next_turn == SIZE_MAX) {
        const char *id = json_string_value(json_object_get(r, "conversation"));
        if (id == NULL || strlen(id) >= sizeof(u->id)) {
            sim_fail(s, (size_t)u->conv, "bad_reply");
            json_decref(r);
            return finish(d, u);
        }
        snprintf(u->id, sizeof(u->id), "%s", id);
    } else {
        const json_t *msgs = json_object_get(r, "messages");
        const char *texts[64];
        size_t n = 0;
        for (; n < json_array_size(msgs) && n < 64; n++)
            texts[n] = json_string_value(json_object_get(json_array_get(msgs, n), "text"));
        sim_observe(s, (size_t)u->conv, u->next_turn, us, texts, n, status ? status : "?", NULL);
        const char *reason =
            json_string_value(json_object_get(json_object_get(r, "handoff"), "reason"));
        if (reason != NULL)
            snprintf(s->results[u->conv].reason, sizeof(s->results[u->conv].reason), "%s", reason);
    }
    int over = status == NULL || strcmp(status, "active") != 0;
    if (status != NULL)
        snprintf(s->results[u->conv].status, sizeof(s->results[u->conv].status), "%s", status);
    json_decref(r); /* status pointed into it */
    size_t next = u->next_turn == SIZE_MAX ? 0 : u->next_turn + 1;
    if (over || next >= s->plan[u->conv].n_turns)
        return finish(d, u);
    u->next_turn = next;
    send_request(d, u);
}

int sim_run_http(sim_t *s)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    drive_t d = {.s = s, .multi = curl_multi_init()};
    curl_multi_setopt(d.multi, CURLMOPT_MAXCONNECTS, s->concurrency);
    char *auth = core_xasprintf("Authorization: Bearer %s", s->api_key ? s->api_key : "");
    d.headers = curl_slist_append(NULL, "Content-Type: application/json");
    d.headers = curl_slist_append(d.headers, "Expect:");
    if (s->api_key != NULL)
        d.headers = curl_slist_append(d.headers, auth); /* a copy */
    free(auth);
    size_t n = (size_t)s->concurrency;
    vuser_t *users = core_xcalloc(n, sizeof(*users));
    for (size_t i = 0; i < n; i++) {
        vuser_t *u = &users[i];
        u->easy = curl_easy_init();
        core_buf_init(&u->reply, REPLY_MAX);
        curl_easy_setopt(u->easy, CURLOPT_HTTPHEADER, d.headers);
        curl_easy_setopt(u->easy, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(u->easy, CURLOPT_WRITEDATA, u);
        curl_easy_setopt(u->easy, CURLOPT_PRIVATE, u);
        curl_easy_setopt(u->easy, CURLOPT_TIMEOUT_MS, TIMEOUT_MS);
        curl_easy_setopt(u->easy, CURLOPT_NOSIGNAL, 1L);
        next_conversation(&d, u);
    }
    int running = 1;
    while (running > 0) {
        curl_multi_perform(d.multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(d.multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            vuser_t *u;
            CURL *easy = m->easy_handle;
            CURLcode cc = m->data.result;
            curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&u);
            curl_multi_remove_handle(d.multi, easy);
            on_reply(&d, u, cc);
            running = 1; /* a new request may have been added */
        }
        if (running > 0)
            curl_multi_poll(d.multi, NULL, 0, 100, NULL);
        sim_progress(s, 0);
    }
    for (size_t i = 0; i < n; i++) {
        curl_easy_cleanup(users[i].easy);
        core_buf_dispose(&users[i].reply);
        free(users[i].body);
    }
    free(users);
    curl_slist_free_all(d.headers);
    curl_multi_cleanup(d.multi);
    curl_global_cleanup();
    return 0;
}
