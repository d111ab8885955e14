/* The SMS channel's carrier keywords and opt-outs (chan_sms_int.h): STOP
 * and its synonyms opt the pair out (one confirmation, then silence until
 * START), START/UNSTOP opt back in, HELP/INFO answer with the configured
 * help. A change is saved in the store and confirmed only once durable, so
 * a restart never forgets a STOP that was confirmed; at start the opted-out
 * pairs are read back before the adapter serves.
 *
 * A STOP whose write fails is in force in memory at once, but Twilio is
 * answered 503, never 200: the change is not durable. Twilio retries a 5xx
 * only when the webhook URL asks it to (#rp=5xx), and then for 15 s at
 * most, so the adapter does not count on it: it writes the pair's STOP
 * again itself (1 s, then doubling to 30 s) until one commits, and only a
 * process that ends before then loses it (logged at shutdown). */
#define LOG_MODULE "sms"
#include <stdlib.h>
#include <string.h>

#include "channels/chan_sms_int.h"
#include "channels/chan_twilio_int.h"

typedef struct sms_opt_op_s {
    sms_t *sms;
    sms_conv_t *conv;
    net_req_t *req;   /* NULL once Twilio went away */
    char *msid;       /* owned: forgotten again when the write fails, so a retry runs */
    const char *text; /* the confirmation (config text, borrowed), NULL: none */
    int stop;         /* 1 STOP, 0 START */
    int confirm;      /* a STOP's confirmation is due */
    int again;        /* the adapter's own write of an unsaved STOP: no webhook, no msid */
    unsigned seq;     /* the conversation's opt_seq when it started */
} sms_opt_op_t;

store_t *sms__store(const sms_t *s)
{
    return s->base.host.store != NULL ? *s->base.host.store : NULL;
}

static void on_opt_abort(net_req_t *req, void *data)
{
    (void)req;
    ((sms_opt_op_t *)data)->req = NULL;
}

static void save_opt(sms_t *s, net_req_t *req, sms_conv_t *cv, const char *msid, int stop,
                     const char *text);

#define SMS_OPT_RETRY_MIN_MS 1000
#define SMS_OPT_RETRY_MAX_MS 30000

/* Writes every unsaved STOP again, but not for a pair with a turn or an
 * opt-out write in flight: that write's outcome decides first (a START
 * behind it would otherwise be overwritten by this STOP, the store keeping
 * the last). Such a pair waits for the next round. */
static void on_opt_retry(uv_timer_t *t)
{
    sms_t *s = t->data;
    const core_config_t *cfg = s->base.host.cfg;
    /* this round's entries, taken off the list: a write that fails at once
     * (the store refusing while unhealthy) puts its entry back for the
     * next round, not for this one */
    chat_link_t round;
    chat__list_init(&round);
    while (!chat__list_empty(&s->table.unsaved)) {
        chat_link_t *l = s->table.unsaved.next;
        chat__list_remove(l);
        chat__list_push_back(&round, l);
    }
    while (!chat__list_empty(&round)) {
        sms_opt_t *o = CHAT_CONTAINER(round.next, sms_opt_t, unsaved);
        chat__list_remove(&o->unsaved);
        const char *nl = strchr(o->key, '\n');
        char *from = core_xasprintf("%.*s", (int)(nl - o->key), o->key);
        sms_conv_t *cv = sms__conv_get(&s->table, from, nl + 1, (size_t)cfg->sms.max_conversations);
        free(from);
        if (cv->pending == 0)
            save_opt(s, NULL, cv, NULL, 1, NULL); /* back on the list if it fails */
        else
            chat__list_push_back(&s->table.unsaved, &o->unsaved);
    }
    if (!chat__list_empty(&s->table.unsaved) && s->opt_timer == 1 &&
        !uv_is_active((uv_handle_t *)t))
        uv_timer_start(t, on_opt_retry, s->opt_wait_ms, 0);
}

static void log_lost(const sms_opt_t *o)
{
    const char *nl = strchr(o->key, '\n');
    LOG_ERROR("event=sms_opt_out_unsaved conversation=sms:%.*s:%s reason=\"the store never took "
              "this STOP; it is lost with this process\"",
              (int)(nl - o->key), o->key, nl + 1);
}

/* o's STOP is in force here but perhaps not in the store: write it again
 * later, backing off while writes keep failing. */
static void opt_unsaved(sms_t *s, sms_opt_t *o)
{
    if (s->opt_timer == 2) { /* shutting down: nothing writes it again */
        log_lost(o);
        return;
    }
    if (chat__list_empty(&o->unsaved))
        chat__list_push_back(&s->table.unsaved, &o->unsaved);
    if (s->opt_timer == 0) {
        uv_timer_init(s->base.host.loop, &s->opt_retry);
        uv_unref((uv_handle_t *)&s->opt_retry); /* never what keeps the loop running */
        s->opt_retry.data = s;
        s->opt_timer = 1;
        s->opt_wait_ms = SMS_OPT_RETRY_MIN_MS;
    }
    if (uv_is_active((uv_handle_t *)&s->opt_retry))
        return;
    uv_timer_start(&s->opt_retry, on_opt_retry, s->opt_wait_ms, 0);
    s->opt_wait_ms =
        s->opt_wait_ms * 2 > SMS_OPT_RETRY_MAX_MS ? SMS_OPT_RETRY_MAX_MS : s->opt_wait_ms * 2;
}

void sms__opt_retry_stop(sms_t *s)
{
    if (s->base.host.cfg == NULL) /* never registered */
        return;
    for (chat_link_t *l = s->table.unsaved.next; l != &s->table.unsaved; l = l->next)
        log_lost(CHAT_CONTAINER(l, sms_opt_t, unsaved));
    if (s->opt_timer == 1)
        uv_close((uv_handle_t *)&s->opt_retry, NULL);
    s->opt_timer = 2;
}

/* The row is durable (status 0) or was not written: only then is Twilio
 * answered, so a confirmation never goes out for a change a restart would
 * forget. A failed write answers 503 (a retry of the same MessageSid, which
 * is forgotten here, runs and still gets the confirmation); a STOP stays
 * in force in memory meanwhile and is written again (opt_unsaved), a START
 * does not take effect. */
static void on_opt_saved(int status, void *data)
{
    sms_opt_op_t *op = data;
    sms_t *s = op->sms;
    sms_conv_t *cv = op->conv;
    /* still valid below: only a new conversation (a webhook) evicts */
    sms__conv_release(&s->table, cv);
    sms_opt_t *o = op->seq == cv->opt_seq && status == 0
                       ? sms__opt_set(&s->table, cv->key, op->stop)
                       : sms__opt_find(&s->table, cv->key);
    if (status == 0) {
        if (op->stop && o != NULL) {
            if (op->confirm) /* the adapter's own write answers nobody: still owed */
                o->stop_owed = 0;
            chat__list_remove(&o->unsaved); /* the store says STOP now */
            if (chat__list_empty(&s->table.unsaved))
                s->opt_wait_ms = SMS_OPT_RETRY_MIN_MS;
        }
        if (op->again)
            LOG_INFO("event=sms_opt_out_saved conversation=%s late=1", cv->rt_key);
        if (op->req != NULL)
            sms__send_text(op->req, op->text);
    } else {
        LOG_WARN("event=sms_opt_not_saved conversation=%s stop=%d reason=%s", cv->rt_key, op->stop,
                 core_strerror(status));
        if (op->stop && op->confirm && o != NULL)
            o->stop_owed = 1;
        if (op->stop && o != NULL)
            opt_unsaved(s, o);
        sms_sid_t *sid = op->msid != NULL ? sms__sid_find(s, op->msid) : NULL;
        if (sid != NULL)
            sms__sid_forget(s, sid);
        if (op->req != NULL) {
            net_resp_header(op->req, "Retry-After", "5");
            net_resp_error(op->req, 503, "store_unavailable", "the opt-out could not be saved: %s",
                           core_strerror(status));
        }
    }
    free(op->msid);
    free(op);
}

/* Records a STOP (stop 1) or START and answers with text (NULL: an empty
 * <Response/>) once the row is durable; without a store, at once. req and
 * msid are NULL for the adapter's own write of an unsaved STOP. */
static void save_opt(sms_t *s, net_req_t *req, sms_conv_t *cv, const char *msid, int stop,
                     const char *text)
{
    store_t *st = sms__store(s);
    if (st == NULL) {
        sms__opt_set(&s->table, cv->key, stop);
        if (req != NULL)
            sms__send_text(req, text);
        return;
    }
    const char *to = strchr(cv->key, '\n');
    char *from = core_xasprintf("%.*s", (int)(to - cv->key), cv->key);
    store_batch_t *b = store_batch_new();
    store_batch_sms_opt(b, from, to + 1, stop, core_wall_us());
    free(from);
    sms_opt_op_t *op = core_xcalloc(1, sizeof(*op));
    *op = (sms_opt_op_t){.sms = s,
                         .conv = cv,
                         .req = req,
                         .msid = core_xstrdup_opt(msid),
                         .text = text,
                         .stop = stop,
                         .confirm = text != NULL,
                         .again = req == NULL,
                         .seq = ++cv->opt_seq};
    sms__conv_hold(cv);
    int rc = store_enqueue(st, b, on_opt_saved, op);
    if (rc != 0) {
        store_batch_free(b);
        on_opt_saved(rc, op);
        return;
    }
    if (req != NULL)
        net_req_on_abort(req, on_opt_abort, op);
}

int sms__keyword_answer(sms_t *s, net_req_t *req, sms_conv_t *cv, const char *msid,
                        const char *body)
{
    const core_config_t *cfg = s->base.host.cfg;
    sms_keyword_t kw = sms__keyword(body, strlen(body));
    sms_opt_t *o = sms__opt_find(&s->table, cv->key);
    if (kw == SMS_KW_YES && o == NULL)
        kw = SMS_KW_NONE; /* an ordinary "yes" for the flow */
    switch (kw) {
    case SMS_KW_STOP: {
        LOG_INFO("event=sms_opt_out conversation=%s", cv->rt_key);
        int confirm = o == NULL || o->stop_owed; /* a second STOP: no second one */
        sms__opt_set(&s->table, cv->key, 1);     /* silent at once, whatever the write does */
        sms__choices_clear(cv);
        cv->list_known = 1;
        save_opt(s, req, cv, msid, 1, confirm ? cfg->sms.stop_text : NULL);
        return 1;
    }
    case SMS_KW_START:
    case SMS_KW_YES:
        LOG_INFO("event=sms_opt_in conversation=%s", cv->rt_key);
        save_opt(s, req, cv, msid, 0, cfg->sms.start_text);
        return 1;
    case SMS_KW_HELP:
        sms__send_text(req, cfg->sms.help_text);
        return 1;
    default:
        return 0;
    }
}

static void load_one(const char *from, const char *to, void *arg)
{
    sms_t *s = arg;
    char *key = core_xasprintf("%s\n%s", from, to);
    sms__opt_set(&s->table, key, 1); /* no conversation: they take no room */
    free(key);
    s->n_loaded++;
}

int sms__load_opt_outs(sms_t *s, core_err_t *err)
{
    store_t *st = sms__store(s);
    if (st == NULL || store_in_memory(st))
        return 0;
    store_db_t *db = store_db_open(store_path(st), err);
    if (db == NULL)
        return err->code ? err->code : CORE_ERR_IO;
    int rc = store_db_sms_opt_outs(db, load_one, s, err);
    store_db_close(db);
    if (rc == 0)
        LOG_INFO("event=sms_opt_outs_loaded pairs=%zu", s->n_loaded);
    return rc;
}
