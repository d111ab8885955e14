/* The SMS channel's carrier keywords and opt-outs (chan_sms_int.h): STOP
 * and its synonyms opt the pair out (one confirmation, then silence until
 * START), START/UNSTOP opt back in, HELP/INFO answer with the configured
 * help. A change is saved in the store and confirmed only once durable, so
 * a restart never forgets a STOP that was confirmed; at start the opted-out
 * pairs are read back before the adapter serves. */
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

/* The row is durable (status 0) or was not written: only then is Twilio
 * answered, so a confirmation never goes out for a change a restart would
 * forget. A failed write answers 503 (Twilio retries the same MessageSid,
 * which is forgotten here so the retry runs); a STOP stays in force in
 * memory meanwhile, a START does not take effect. */
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
        if (op->stop && o != NULL)
            o->stop_owed = 0;
        if (op->req != NULL)
            sms__send_text(op->req, op->text);
    } else {
        LOG_WARN("event=sms_opt_not_saved conversation=%s stop=%d reason=%s", cv->rt_key, op->stop,
                 core_strerror(status));
        if (op->stop && op->confirm && o != NULL)
            o->stop_owed = 1;
        sms_sid_t *sid = sms__sid_find(s, op->msid);
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
 * <Response/>) once the row is durable; without a store, at once. */
static void save_opt(sms_t *s, net_req_t *req, sms_conv_t *cv, const char *msid, int stop,
                     const char *text)
{
    store_t *st = sms__store(s);
    if (st == NULL) {
        sms__opt_set(&s->table, cv->key, stop);
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
                         .msid = core_xstrdup(msid),
                         .text = text,
                         .stop = stop,
                         .confirm = text != NULL,
                         .seq = ++cv->opt_seq};
    sms__conv_hold(cv);
    int rc = store_enqueue(st, b, on_opt_saved, op);
    if (rc != 0) {
        store_batch_free(b);
        on_opt_saved(rc, op);
        return;
    }
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
