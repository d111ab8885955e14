/* The SMS channel's texts on their way to a turn (chan_sms_int.h): what the
 * store must say before one runs, and the order they run in.
 *
 * - Whether it already ran. Twilio retries a webhook whose answer it did
 *   not get with the same MessageSid. The adapter's memory of the ones it
 *   saw (chan_sms.c) goes with a restart, but each turn keeps its
 *   MessageSid in the store (turns.client_id): a text whose MessageSid
 *   memory does not hold is looked up there (runtime_client_id_recorded(),
 *   an indexed read on the thread pool) before its turn runs, whatever its
 *   text. A stored one is a retry of a turn that ran before the restart:
 *   an empty <Response/> and no second turn, as a retry memory knows gets.
 *   A read that fails is answered 503 (the MessageSid forgotten), so that
 *   Twilio's retry asks again rather than risk a second turn. Without a
 *   durable store nothing ran before this process: there is nothing to ask.
 * - The last numbered list of a pair new to the table (after a restart or
 *   an eviction), when the text is a bare number: read back from the
 *   pair's record (runtime_conversation_record()).
 *
 * One read per conversation at a time; the texts of a pair wait behind it
 * in arrival order and run in that order (the runtime then queues their
 * turns), so replies leave in order. At most SMS_MAX_WAITING wait; the next
 * gets 429. Keywords never wait (chan_sms_optout.c): a STOP that comes
 * meanwhile silences the texts still waiting. */
#define LOG_MODULE "sms"
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "channels/chan_sms_int.h"
#include "channels/chan_twilio_int.h"

/* Texts that may wait for one conversation's reads; more are refused. */
#define SMS_MAX_WAITING 8

typedef struct sms_read_s {
    sms_t *sms;
    sms_conv_t *conv; /* held by its waiting texts until they run */
} sms_read_t;

static void pump(sms_t *s, sms_conv_t *cv);

static void on_wait_abort(net_req_t *req, void *data)
{
    (void)req;
    ((sms_wait_t *)data)->req = NULL;
}

/* ---- the last list ------------------------------------------------------ */

/* The read ended (status 0 with the record, or why not): the list is known
 * from now on, whatever the read found, since a failed read is not
 * retried and a pair the store never saw has none. */
static void list_read(sms_conv_t *cv, int status, const json_t *record)
{
    if (status == 0) {
        if (!cv->list_known) { /* else a turn that ended meanwhile knows better */
            sms__choices_clear(cv);
            cv->n_choices = twilio__last_choices(record, SIZE_MAX, &cv->choices);
        }
    } else if (status != CORE_ERR_NOT_FOUND && status != CORE_ERR_CLOSED) {
        LOG_WARN("event=sms_list_not_read conversation=%s reason=%s", cv->rt_key,
                 core_strerror(status));
    }
    cv->list_known = 1;
    if (status == 0 || status == CORE_ERR_NOT_FOUND)
        LOG_INFO("event=sms_list_read conversation=%s choices=%zu", cv->rt_key, cv->n_choices);
}

static void on_record_read(int status, json_t *record, void *data)
{
    sms_read_t *r = data;
    r->conv->asking = 0;
    list_read(r->conv, status, record);
    json_decref(record);
    pump(r->sms, r->conv);
    free(r);
}

/* Asks for cv's record; returns 0 (asking), or an error once the list is
 * settled here without a read (no store, closing). */
static int ask_list(sms_t *s, sms_conv_t *cv)
{
    runtime_t *rt = chan_runtime(&s->base);
    sms_read_t *r = core_xcalloc(1, sizeof(*r));
    *r = (sms_read_t){.sms = s, .conv = cv};
    int rc = rt ? runtime_conversation_record(rt, cv->rt_key, on_record_read, r) : CORE_ERR_CLOSED;
    if (rc != 0) {
        free(r);
        list_read(cv, rc, NULL);
        return rc;
    }
    cv->asking = 1;
    return 0;
}

/* ---- whether the MessageSid already ran ----------------------------------- */

/* The answer for the text at the head of cv's queue: the loop asks for one
 * text at a time and pops none while asking, so it is still the head. */
static void on_sid_read(int status, int found, void *data)
{
    sms_read_t *r = data;
    sms_conv_t *cv = r->conv;
    sms_wait_t *w = cv->waiting;
    assert(w != NULL && cv->asking);
    cv->asking = 0;
    w->checked = 1;
    if (status == 0)
        w->recorded = found;
    else if (status != CORE_ERR_NOT_FOUND) /* NOT_FOUND: a :memory: store, nothing before */
        w->unknown = status;
    pump(r->sms, cv);
    free(r);
}

/* Asks the store whether w's MessageSid ran; returns 0 (asking), or an
 * error once w is settled here: no durable store (nothing ran before this
 * process) or no runtime (its turn then fails as any turn would). */
static int ask_sid(sms_t *s, sms_conv_t *cv, sms_wait_t *w)
{
    runtime_t *rt = chan_runtime(&s->base);
    store_t *st = sms__store(s);
    int rc = CORE_ERR_NOT_FOUND;
    sms_read_t *r = core_xcalloc(1, sizeof(*r));
    *r = (sms_read_t){.sms = s, .conv = cv};
    if (rt != NULL && st != NULL && !store_in_memory(st))
        rc = runtime_client_id_recorded(rt, cv->rt_key, w->msid, on_sid_read, r);
    if (rc != 0) {
        free(r);
        w->checked = 1;
        return rc;
    }
    cv->asking = 1;
    return 0;
}

/* ---- the queue ------------------------------------------------------------ */

/* Answers a text whose reads are done (or not needed): a retry of a stored
 * turn, a text after a STOP, a read that failed, or its turn. A text whose
 * request went away meanwhile still runs, as one that never waited does
 * when Twilio stops waiting for its turn: Twilio does not retry a timeout
 * by default, so its reply is texted late instead (chan_sms.c). */
static void answer(sms_t *s, sms_conv_t *cv, sms_wait_t *w)
{
    sms_sid_t *sid = sms__sid_find(s, w->msid);
    net_req_t *req = w->req;
    if (req != NULL)
        net_req_on_abort(req, NULL, NULL);
    if (w->recorded || sms__opt_find(&s->table, cv->key) != NULL) {
        if (w->recorded)
            LOG_INFO("event=sms_duplicate message_sid=%s source=store", w->msid);
        if (req != NULL)
            sms__send_text(req, NULL);
    } else if (w->unknown != 0) {
        LOG_WARN("event=sms_duplicate_unknown conversation=%s message_sid=%s reason=%s", cv->rt_key,
                 w->msid, core_strerror(w->unknown));
        if (sid != NULL)
            sms__sid_forget(s, sid);
        if (req != NULL) {
            net_resp_header(req, "Retry-After", "5");
            net_resp_error(req, 503, "store_unavailable",
                           "the store could not say whether this MessageSid already ran: %s",
                           core_strerror(w->unknown));
        }
    } else {
        sms__run_turn(s, req, cv, sid != NULL ? sid : sms__sid_remember(s, w->msid),
                      sms__answer_text(cv, w->body));
    }
}

/* Runs the texts at the head of cv's queue whose reads are done, in the
 * order they came, and starts the next read when one needs it.
 *
 * cv is held for the whole loop, not only by the texts still waiting:
 * answering one (a turn refused at once, an empty <Response/>) may run the
 * next request pipelined on that connection from inside the call, and that
 * request's conv_get() evicts an idle conversation, which cv would be once
 * its last waiting text let go of it. Such a request for this pair joins
 * the queue (or pumps it itself when it is empty); the loop checks the
 * queue again after each answer, so nothing runs out of turn. */
static void pump(sms_t *s, sms_conv_t *cv)
{
    sms__conv_hold(cv);
    while (cv->waiting != NULL && !cv->asking) {
        sms_wait_t *w = cv->waiting;
        int live = sms__opt_find(&s->table, cv->key) == NULL;
        if (live && !cv->list_known && sms__option_number(w->body) > 0) {
            if (ask_list(s, cv) == 0)
                break;
            continue; /* settled without a read */
        }
        if (live && !w->checked) {
            if (ask_sid(s, cv, w) == 0)
                break;
            continue;
        }
        cv->waiting = w->next;
        sms__conv_release(&s->table, cv);
        answer(s, cv, w);
        free(w->msid);
        free(w->body);
        free(w);
    }
    sms__conv_release(&s->table, cv);
}

void sms__text_queue(sms_t *s, net_req_t *req, sms_conv_t *cv, sms_sid_t *sid, const char *body)
{
    unsigned n = 0;
    sms_wait_t **tail = &cv->waiting;
    for (; *tail != NULL; n++)
        tail = &(*tail)->next;
    if (n >= SMS_MAX_WAITING) {
        sms__sid_forget(s, sid);
        net_resp_header(req, "Retry-After", "1");
        net_resp_error(req, 429, "conversation_busy",
                       "%u texts of this conversation are waiting; retry later", n);
        return;
    }
    sms_wait_t *w = core_xcalloc(1, sizeof(*w));
    *w = (sms_wait_t){.req = req, .msid = core_xstrdup(sid->sid), .body = core_xstrdup(body)};
    *tail = w;
    sms__conv_hold(cv);
    net_req_on_abort(req, on_wait_abort, w);
    pump(s, cv);
}
