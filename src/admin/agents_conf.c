/* The queues file (agents.queues_file, docs/agents.md): the human queues,
 * their business hours, their limits and messages, and which handoff reason
 * goes to which queue. Checked at start like the config (every problem is a
 * `file:line:col: path: message` diagnostic and the daemon refuses to start),
 * read when the desk starts and again on SIGHUP; a reload that finds a bad
 * or unreadable file logs each problem and keeps the queues in force. */
#define LOG_MODULE "agents"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "admin/agents_int.h"

/* Largest queues file read: it is a hand-written list. */
#define QUEUES_MAX_BYTES (1 << 20)

typedef struct {
    const char *file;
    core_jsonpos_t *pos;
    core_diags_t *diags;
} check_t;

static void problem(check_t *c, const char *path, const char *msg)
{
    int line = 0, col = 0;
    core_jsonpos_find(c->pos, path, &line, &col);
    core_diags_add(c->diags, c->file, line, col, path, "%s", msg);
}

/* Reports every key of o not in allowed (NULL-terminated): a typo must not
 * silently drop a setting. */
static void unknown_keys(check_t *c, json_t *o, const char *path, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        size_t i = 0;
        while (allowed[i] != NULL && strcmp(allowed[i], k) != 0)
            i++;
        if (allowed[i] == NULL) {
            char *p = core_jsonpath_key(path, k);
            problem(c, p, "unknown key");
            free(p);
        }
    }
}

static char *dup_str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL ? core_xstrdup(s) : NULL;
}

/* A string member; 0 when absent or a string. */
static int want_string(check_t *c, json_t *o, const char *k, const char *path)
{
    json_t *v = json_object_get(o, k);
    if (v == NULL || json_is_string(v))
        return 0;
    char *p = core_jsonpath_key(path, k);
    problem(c, p, "must be a string");
    free(p);
    return -1;
}

/* A message: a string, or an object of channel variants. */
static void check_message(check_t *c, json_t *o, const char *k, const char *path)
{
    static const char *const variants[] = {"default", "chat", "web", "sms", "voice", NULL};
    json_t *m = json_object_get(o, k);
    if (m == NULL || json_is_string(m))
        return;
    char *p = core_jsonpath_key(path, k);
    if (!json_is_object(m)) {
        problem(c, p, "must be a string or an object of channel variants");
    } else {
        unknown_keys(c, m, p, variants);
        for (size_t i = 0; variants[i] != NULL; i++)
            want_string(c, m, variants[i], p);
    }
    free(p);
}

/* "HH:MM-HH:MM" into minutes; -1 when malformed. */
static int parse_span(const char *s, int *open, int *close)
{
    unsigned h1, m1, h2, m2;
    char tail;
    if (s == NULL || sscanf(s, "%u:%u-%u:%u%c", &h1, &m1, &h2, &m2, &tail) != 4 || h1 > 24 ||
        h2 > 24 || m1 > 59 || m2 > 59)
        return -1;
    *open = (int)(h1 * 60 + m1);
    *close = (int)(h2 * 60 + m2);
    return *close > *open ? 0 : -1;
}

static void parse_hours(check_t *c, ag_queue_t *q, json_t *h, const char *path)
{
    static const char *const days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", "tz", NULL};
    for (int i = 0; i < 7; i++)
        q->open_min[i] = q->close_min[i] = -1;
    if (h == NULL) {
        q->open_min[0] = -2; /* always open */
        return;
    }
    char *p = core_jsonpath_key(path, "hours");
    if (!json_is_object(h)) {
        problem(c, p, "must be an object: tz and HH:MM-HH:MM per day");
        free(p);
        return;
    }
    unknown_keys(c, h, p, days);
    q->tz = dup_str(h, "tz");
    char *tp = core_jsonpath_key(p, "tz");
    if (q->tz == NULL)
        problem(c, tp, "is required: an IANA time zone such as Europe/London");
    else if (ag__zone_load(q->tz, &q->zone) != 0)
        problem(c, tp, "is not a known IANA time zone (none in /usr/share/zoneinfo)");
    free(tp);
    for (int i = 0; i < 7; i++) {
        json_t *v = json_object_get(h, days[i]);
        if (v != NULL && !json_is_null(v) &&
            parse_span(json_string_value(v), &q->open_min[i], &q->close_min[i]) != 0) {
            char *dp = core_jsonpath_key(p, days[i]);
            problem(c, dp, "must be \"HH:MM-HH:MM\" with the close after the open");
            free(dp);
        }
    }
    free(p);
}

static void parse_queue(check_t *c, ag_queue_t *q, json_t *o, const char *path)
{
    static const char *const keys[] = {"name",
                                       "max_wait_s",
                                       "wait_message",
                                       "unavailable_message",
                                       "when_unavailable",
                                       "bot_flow",
                                       "bot_node",
                                       "dial",
                                       "hours",
                                       NULL};
    if (!json_is_object(o)) {
        problem(c, path, "must be an object");
        return;
    }
    unknown_keys(c, o, path, keys);
    q->name = dup_str(o, "name");
    if (q->name == NULL || q->name[0] == '\0') {
        char *p = core_jsonpath_key(path, "name");
        problem(c, p, "is required: a non-empty string");
        free(p);
    }
    json_t *mw = json_object_get(o, "max_wait_s");
    if (mw != NULL && (!json_is_integer(mw) || json_integer_value(mw) < 0 ||
                       json_integer_value(mw) > 7 * 86400)) {
        char *p = core_jsonpath_key(path, "max_wait_s");
        problem(c, p, "must be an integer from 0 (no limit) to 604800 seconds");
        free(p);
    }
    q->max_wait_us = (int64_t)json_integer_value(mw) * 1000000;
    check_message(c, o, "wait_message", path);
    check_message(c, o, "unavailable_message", path);
    q->wait_message = json_incref(json_object_get(o, "wait_message"));
    q->closed_message = json_incref(json_object_get(o, "unavailable_message"));
    const char *when = json_string_value(json_object_get(o, "when_unavailable"));
    if (json_object_get(o, "when_unavailable") != NULL &&
        (when == NULL || (strcmp(when, "bot") != 0 && strcmp(when, "callback") != 0))) {
        char *p = core_jsonpath_key(path, "when_unavailable");
        problem(c, p, "must be \"callback\" or \"bot\"");
        free(p);
    }
    q->unavailable_bot = when != NULL && strcmp(when, "bot") == 0;
    want_string(c, o, "bot_flow", path), want_string(c, o, "bot_node", path);
    want_string(c, o, "dial", path);
    q->bot_flow = dup_str(o, "bot_flow");
    q->bot_node = dup_str(o, "bot_node");
    q->dial = dup_str(o, "dial");
    parse_hours(c, q, json_object_get(o, "hours"), path);
}

static void queue_dispose(ag_queue_t *q)
{
    free(q->name), free(q->tz), free(q->bot_flow), free(q->bot_node), free(q->dial);
    json_decref(q->wait_message);
    json_decref(q->closed_message);
    free(q->zone.at), free(q->zone.off);
}

void ag__conf_dispose(ag_conf_t *conf)
{
    for (size_t i = 0; i < conf->n_queues; i++)
        queue_dispose(&conf->queues[i]);
    free(conf->queues);
    json_decref(conf->routes);
    json_decref(conf->dispositions);
    memset(conf, 0, sizeof(*conf));
}

/* A disposition code as a label: 1-64 letters, digits, '_', '-' or '.'
 * (what the API takes, 1-64 bytes, kept to what a dashboard shows plainly). */
static int code_ok(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
              (s[n] >= '0' && s[n] <= '9') || s[n] == '_' || s[n] == '-' || s[n] == '.'))
            return 0;
    return n >= 1 && n <= 64;
}

/* The close codes counted by name in chorus_agent_dispositions_total. */
static void parse_dispositions(check_t *c, ag_conf_t *conf, json_t *a)
{
    conf->dispositions = json_array();
    if (a != NULL && !json_is_array(a)) {
        problem(c, "dispositions", "must be an array of disposition codes");
        return;
    }
    for (size_t i = 0; i < json_array_size(a); i++) {
        const char *code = json_string_value(json_array_get(a, i));
        char *p = core_jsonpath_index("dispositions", i);
        int dup = 0;
        for (size_t j = 0; code != NULL && j < i; j++)
            dup |= json_equal(json_array_get(a, j), json_array_get(a, i));
        if (code == NULL || !code_ok(code))
            problem(c, p, "must be a code of 1-64 letters, digits, '_', '-' or '.'");
        else if (dup)
            problem(c, p, "is listed already above");
        else
            json_array_append(conf->dispositions, json_array_get(a, i));
        free(p);
    }
}

static void parse_routes(check_t *c, ag_conf_t *conf, json_t *r)
{
    if (r != NULL && !json_is_object(r)) {
        problem(c, "routes", "must be an object: handoff reason -> queue name");
        r = NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(r, k, v)
    {
        if (!json_is_string(v) || json_string_length(v) == 0) {
            char *p = core_jsonpath_key("routes", k);
            problem(c, p, "must be a queue name");
            free(p);
        }
    }
    conf->routes = r != NULL ? json_incref(r) : json_object();
}

static void parse_doc(check_t *c, ag_conf_t *conf, json_t *doc)
{
    static const char *const top[] = {"queues", "routes", "dispositions", NULL};
    if (!json_is_object(doc)) {
        problem(c, "", "must be an object with \"queues\" and \"routes\"");
        return;
    }
    unknown_keys(c, doc, "", top);
    json_t *qs = json_object_get(doc, "queues");
    if (qs != NULL && !json_is_array(qs)) {
        problem(c, "queues", "must be an array of queues");
        qs = NULL;
    }
    conf->n_queues = json_array_size(qs);
    conf->queues = core_xcalloc(conf->n_queues + 1, sizeof(*conf->queues));
    for (size_t i = 0; i < conf->n_queues; i++) {
        char *p = core_jsonpath_index("queues", i);
        parse_queue(c, &conf->queues[i], json_array_get(qs, i), p);
        for (size_t j = 0; j < i && conf->queues[i].name != NULL; j++)
            if (conf->queues[j].name != NULL &&
                strcmp(conf->queues[j].name, conf->queues[i].name) == 0) {
                char *np = core_jsonpath_key(p, "name");
                problem(c, np, "names a queue already defined above");
                free(np);
            }
        free(p);
    }
    parse_routes(c, conf, json_object_get(doc, "routes"));
    parse_dispositions(c, conf, json_object_get(doc, "dispositions"));
}

int ag__conf_parse(const char *file, ag_conf_t *conf, core_diags_t *diags)
{
    memset(conf, 0, sizeof(*conf));
    char *text = NULL;
    size_t len = 0;
    core_err_t err = {0};
    struct stat st;
    if (stat(file, &st) != 0 && errno == ENOENT)
        return CORE_ERR_NOT_FOUND;
    int rc = core_file_read(file, QUEUES_MAX_BYTES, &text, &len, &err);
    if (rc != 0) { /* err.msg names the file already */
        const char *msg =
            strncmp(err.msg, file, strlen(file)) == 0 ? err.msg + strlen(file) : err.msg;
        core_diags_add(diags, file, 0, 0, "", "%s", msg[0] == ':' ? msg + 2 : msg);
        return rc;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    size_t before = diags->len;
    if (doc == NULL) {
        core_diags_add(diags, file, jerr.line, jerr.column, "", "%s", jerr.text);
    } else {
        check_t c = {file, core_jsonpos_new(text, len), diags};
        parse_doc(&c, conf, doc);
        core_jsonpos_free(c.pos);
        json_decref(doc);
    }
    free(text);
    if (diags->len == before)
        return 0;
    ag__conf_dispose(conf);
    return CORE_ERR_INVALID;
}

int ag__conf_check(const char *file, core_diags_t *diags)
{
    ag_conf_t conf;
    int rc = ag__conf_parse(file, &conf, diags);
    if (rc == 0)
        ag__conf_dispose(&conf);
    return rc == CORE_ERR_NOT_FOUND ? 0 : rc;
}

void ag__conf_free(ag_desk_t *d)
{
    ag__conf_dispose(&d->conf);
    free(d->conf_loaded);
    d->conf_loaded = NULL;
}

void ag__conf_load(ag_desk_t *d, int force)
{
    const char *file = d->admin->host.cfg->agents.queues_file;
    if (!force && d->conf_loaded != NULL && strcmp(d->conf_loaded, file) == 0)
        return;
    free(d->conf_loaded);
    d->conf_loaded = core_xstrdup(file);
    ag_conf_t next;
    core_diags_t diags;
    core_diags_init(&diags);
    int rc = ag__conf_parse(file, &next, &diags);
    if (rc == CORE_ERR_NOT_FOUND) { /* no file: every queue is always open */
        ag__conf_dispose(&d->conf);
        LOG_INFO("event=queues_default file=%s reason=\"no such file: every queue is always "
                 "open\"",
                 file);
    } else if (rc != 0) {
        char line[1024], q[1100];
        for (size_t i = 0; i < diags.len; i++)
            LOG_ERROR("event=queues_invalid problem=%s",
                      core_log_quote(q, sizeof(q),
                                     core_diag_format(&diags.items[i], line, sizeof(line)),
                                     (size_t)-1, 900));
        LOG_WARN("event=queues_reload status=kept_previous file=%s queues=%zu", file,
                 d->conf.n_queues);
    } else {
        ag__conf_dispose(&d->conf);
        d->conf = next;
        LOG_INFO("event=queues_loaded file=%s queues=%zu", file, d->conf.n_queues);
    }
    core_diags_dispose(&diags);
}

const ag_queue_t *ag__queue(ag_desk_t *d, const char *name)
{
    for (size_t i = 0; i < d->conf.n_queues; i++)
        if (strcmp(d->conf.queues[i].name, name) == 0)
            return &d->conf.queues[i];
    return NULL;
}

const char *ag__route(ag_desk_t *d, const char *reason, const char *flow_queue)
{
    const char *q = json_string_value(json_object_get(d->conf.routes, reason));
    if (q != NULL)
        return q;
    return flow_queue != NULL && *flow_queue != '\0' ? flow_queue : "default";
}

const char *ag__disposition_label(const ag_desk_t *d, const char *disposition)
{
    for (size_t i = 0; i < json_array_size(d->conf.dispositions); i++)
        if (strcmp(json_string_value(json_array_get(d->conf.dispositions, i)), disposition) == 0)
            return disposition;
    return "other";
}

const char *ag__variant(const json_t *msg, brain_channel_t ch)
{
    if (json_is_string(msg))
        return json_string_value(msg);
    const char *v = json_string_value(json_object_get(msg, brain_channel_name(ch)));
    return v != NULL ? v : json_string_value(json_object_get(msg, "default"));
}
