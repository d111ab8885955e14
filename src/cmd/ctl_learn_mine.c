/* Mining and ranking for `chorusctl learn`: reads the turns the flows did
 * not understand, clusters them, and scores each cluster (docs/flywheel.md,
 * "How opportunities are ranked"). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/entities.h"
#include "chorus/learn.h"
#include "cmd/ctl_common.h"
#include "cmd/ctl_learn.h"

#define MAX_CHANNELS 16
#define UTTERANCES_KEPT 50 /* per opportunity, for the export */
#define ENTITY_SAMPLE 20   /* items checked for the entities a cluster needs */

typedef struct {
    uint32_t conv;
    uint8_t channel;
} row_t;

/* What a conversation's turns share: its outcome and human handle time. */
typedef struct {
    char outcome; /* 'e'scalated, 'a'bandoned, 'c'ontained, 'x' error, '-' active */
    float handle_s;
} conv_t;

typedef struct {
    learn_t *learn;
    row_t *rows;
    size_t n_rows, cap_rows;
    char **convs; /* interned conversation ids */
    conv_t *conv_info;
    size_t n_convs, cap_convs;
    size_t *slots; /* conv id -> index + 1 */
    size_t n_slots;
    char *channels[MAX_CHANNELS];
    size_t n_channels;
} mine_t;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static uint32_t intern_conv(mine_t *m, const char *id)
{
    if ((m->n_convs + 1) * 2 > m->n_slots) {
        size_t n = m->n_slots ? m->n_slots * 2 : 1024;
        size_t *s = core_xcalloc(n, sizeof(*s));
        for (size_t i = 0; i < m->n_convs; i++) {
            size_t p = hash_str(m->convs[i]) & (n - 1);
            while (s[p])
                p = (p + 1) & (n - 1);
            s[p] = i + 1;
        }
        free(m->slots);
        m->slots = s;
        m->n_slots = n;
    }
    size_t p = hash_str(id) & (m->n_slots - 1);
    while (m->slots[p] && strcmp(m->convs[m->slots[p] - 1], id) != 0)
        p = (p + 1) & (m->n_slots - 1);
    if (m->slots[p] == 0) {
        if (m->n_convs == m->cap_convs) {
            m->cap_convs = m->cap_convs ? m->cap_convs * 2 : 256;
            m->convs = core_xrealloc(m->convs, m->cap_convs * sizeof(*m->convs));
            m->conv_info = core_xrealloc(m->conv_info, m->cap_convs * sizeof(*m->conv_info));
        }
        m->convs[m->n_convs] = core_xstrdup(id);
        m->slots[p] = ++m->n_convs;
    }
    return (uint32_t)(m->slots[p] - 1);
}

static uint8_t intern_channel(mine_t *m, const char *ch)
{
    for (size_t i = 0; i < m->n_channels; i++)
        if (strcmp(m->channels[i], ch) == 0)
            return (uint8_t)i;
    if (m->n_channels == MAX_CHANNELS)
        return MAX_CHANNELS - 1; /* more channels than exist: lump the rest */
    m->channels[m->n_channels] = core_xstrdup(ch);
    return (uint8_t)m->n_channels++;
}

static void on_turn(const store_learn_turn_t *t, void *arg)
{
    mine_t *m = arg;
    if (m->n_rows == m->cap_rows) {
        m->cap_rows = m->cap_rows ? m->cap_rows * 2 : 1024;
        m->rows = core_xrealloc(m->rows, m->cap_rows * sizeof(*m->rows));
    }
    row_t *r = &m->rows[m->n_rows];
    r->conv = intern_conv(m, t->conversation_id);
    r->channel = intern_channel(m, t->channel);
    conv_t *c = &m->conv_info[r->conv];
    c->outcome = strcmp(t->outcome, "escalated") == 0   ? 'e'
                 : strcmp(t->outcome, "abandoned") == 0 ? 'a'
                 : strcmp(t->outcome, "contained") == 0 ? 'c'
                 : strcmp(t->outcome, "error") == 0     ? 'x'
                                                        : '-';
    c->handle_s = (float)t->handle_s;
    if (learn_add(m->learn, t->text, strlen(t->text), 1, m->n_rows) >= 0)
        m->n_rows++;
}

static void mine_free(mine_t *m)
{
    learn_free(m->learn);
    for (size_t i = 0; i < m->n_convs; i++)
        free(m->convs[i]);
    for (size_t i = 0; i < m->n_channels; i++)
        free(m->channels[i]);
    free(m->convs);
    free(m->conv_info);
    free(m->slots);
    free(m->rows);
}

/* Slot types the flows declare (--flows), as a JSON object used as a set. */
static void add_slot_types(json_t *flow, void *arg)
{
    const char *name;
    json_t *slot;
    json_object_foreach(json_object_get(flow, "slots"), name, slot)
    {
        const char *type = json_string_value(json_object_get(slot, "type"));
        if (type != NULL)
            json_object_set_new(arg, type, json_true());
    }
}

static json_t *flow_slot_types(const char *dir)
{
    json_t *set = json_object();
    ctl_flow_docs(dir, add_slot_types, set);
    return set;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Entity types present in at least 30% of the cluster's top items. */
static json_t *needed_entities(const learn_t *l, const learn_cluster_t *c)
{
    size_t counts[ENT__COUNT] = {0}, n = c->n_items < ENTITY_SAMPLE ? c->n_items : ENTITY_SAMPLE;
    ent_ctx_t ctx = {.year = 2026, .month = 1, .day = 1};
    for (size_t i = 0; i < n; i++) {
        const char *t = learn_item_text(l, c->items[i]);
        ent_list_t list;
        if (ent_extract(t, strlen(t), &ctx, &list) != 0)
            continue;
        int seen[ENT__COUNT] = {0};
        for (size_t k = 0; k < list.len; k++)
            seen[list.items[k].type] = 1;
        for (int k = 0; k < ENT__COUNT; k++)
            counts[k] += (size_t)seen[k];
    }
    json_t *out = json_array();
    for (int k = 0; k < ENT__COUNT; k++)
        if (n > 0 && counts[k] * 10 >= n * 3)
            json_array_append_new(out, json_string(ent_type_name((ent_type_t)k)));
    return out;
}

/* One cluster's opportunity object, or NULL below the minimum size. */
static json_t *opportunity(const learn_args_t *a, const mine_t *m, const learn_cluster_t *c,
                           const json_t *slot_types)
{
    if ((double)c->weight < a->min_size)
        return NULL;
    uint32_t *convs = core_xmalloc(c->weight * sizeof(*convs));
    size_t n = 0, per_channel[MAX_CHANNELS] = {0};
    json_t *utt = json_array();
    for (size_t i = 0; i < c->n_items; i++) {
        const size_t *tags;
        size_t nt = learn_item_tags(m->learn, c->items[i], &tags);
        for (size_t k = 0; k < nt && n < c->weight; k++) {
            convs[n++] = m->rows[tags[k]].conv;
            per_channel[m->rows[tags[k]].channel]++;
        }
        if (i < UTTERANCES_KEPT)
            json_array_append_new(utt, json_string(learn_item_text(m->learn, c->items[i])));
    }
    qsort(convs, n, sizeof(*convs), cmp_u32);
    size_t n_conv = 0, esc = 0, ab = 0, measured = 0;
    double handle = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && convs[i] == convs[i - 1])
            continue;
        n_conv++;
        const conv_t *r = &m->conv_info[convs[i]];
        esc += r->outcome == 'e';
        ab += r->outcome == 'a';
        if (r->outcome == 'e' && r->handle_s >= 0) {
            handle += r->handle_s;
            measured++;
        }
    }
    free(convs);
    double handle_s = measured ? handle / (double)measured : a->handle_s;
    double esc_rate = n_conv ? (double)esc / (double)n_conv : 0;
    double ab_rate = n_conv ? (double)ab / (double)n_conv : 0;
    double impact_h = (double)n_conv * (esc_rate + ab_rate) * handle_s / 3600.0;
    json_t *need = needed_entities(m->learn, c);
    size_t have = 0;
    for (size_t i = 0; i < json_array_size(need); i++)
        have += json_object_get(slot_types, json_string_value(json_array_get(need, i))) != NULL;
    double coverage = json_array_size(need) ? (double)have / (double)json_array_size(need) : 1;
    double feasibility = c->cohesion * (0.5 + 0.5 * coverage);
    json_t *channels = json_object(), *label = json_array();
    for (size_t i = 0; i < m->n_channels; i++)
        if (per_channel[i] > 0)
            json_object_set_new(channels, m->channels[i], json_integer((json_int_t)per_channel[i]));
    for (size_t i = 0; c->top[i] != NULL; i++)
        json_array_append_new(label, json_string(c->top[i]));
    return json_pack("{s:o,s:I,s:I,s:I,s:o,s:f,s:f,s:f,s:b,s:f,s:f,s:o,s:f,s:f,s:f,s:o}", "label",
                     label, "turns", (json_int_t)c->weight, "conversations", (json_int_t)n_conv,
                     "distinct_utterances", (json_int_t)c->n_items, "channels", channels,
                     "escalation_rate", esc_rate, "abandonment_rate", ab_rate, "handle_time_s",
                     handle_s, "handle_time_measured", measured > 0, "impact_hours", impact_h,
                     "cohesion", c->cohesion, "entities_needed", need, "slot_coverage", coverage,
                     "feasibility", feasibility, "score", impact_h * feasibility, "utterances",
                     utt);
}

static int cmp_opportunity(const void *a, const void *b)
{
    double x = json_real_value(json_object_get(*(json_t *const *)a, "score"));
    double y = json_real_value(json_object_get(*(json_t *const *)b, "score"));
    if (x != y)
        return x > y ? -1 : 1;
    json_int_t i = json_integer_value(json_object_get(*(json_t *const *)a, "cluster"));
    json_int_t j = json_integer_value(json_object_get(*(json_t *const *)b, "cluster"));
    return i < j ? -1 : i > j;
}

static json_t *rank(const learn_args_t *a, const mine_t *m)
{
    json_t *slot_types = flow_slot_types(a->flows);
    size_t nc = learn_n_clusters(m->learn), n = 0;
    json_t **ops = core_xmalloc((nc ? nc : 1) * sizeof(*ops));
    for (size_t i = 0; i < nc; i++) {
        json_t *o = opportunity(a, m, learn_cluster(m->learn, i), slot_types);
        if (o == NULL)
            continue;
        json_object_set_new(o, "cluster", json_integer((json_int_t)i + 1));
        ops[n++] = o;
    }
    qsort(ops, n, sizeof(*ops), cmp_opportunity);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_object_set_new(ops[i], "id", json_integer((json_int_t)i + 1));
        json_array_append_new(arr, ops[i]);
    }
    free(ops);
    json_decref(slot_types);
    return arr;
}

int learn_mine(const learn_args_t *a, store_db_t *db, json_t **out, core_err_t *err)
{
    learn_options_t lo = {.threshold = a->threshold};
    mine_t m = {.learn = learn_new(&lo)};
    int rc = store_db_learn_turns(db, a->from_us, a->to_us, on_turn, &m, err);
    json_t *summary = NULL;
    rc = rc ? rc : store_db_learn_summary(db, a->from_us, a->to_us, a->low_conf, &summary, err);
    rc = rc ? rc : learn_run(m.learn, err);
    if (rc != 0) {
        json_decref(summary);
        mine_free(&m);
        return rc;
    }
    json_t *ops = rank(a, &m);
    json_t *drops = json_object_get(summary, "drop_offs");
    size_t i;
    json_t *d;
    json_array_foreach(drops, i, d)
    {
        double broken = (double)(json_integer_value(json_object_get(d, "abandoned")) +
                                 json_integer_value(json_object_get(d, "escalated")));
        double all = (double)json_integer_value(json_object_get(d, "flow_conversations"));
        json_object_set_new(d, "share_of_flow", json_real(all > 0 ? broken / all : 0));
    }
    *out = json_pack("{s:{s:I,s:I},s:I,s:I,s:o,s:O,s:O,s:O}", "window", "from_us",
                     (json_int_t)a->from_us, "to_us", (json_int_t)a->to_us, "unhandled_turns",
                     (json_int_t)m.n_rows, "conversations", (json_int_t)m.n_convs, "opportunities",
                     ops, "drop_offs", drops, "intents", json_object_get(summary, "intents"),
                     "confusions", json_object_get(summary, "confusions"));
    json_decref(summary);
    mine_free(&m);
    return 0;
}
