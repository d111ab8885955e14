/* Flowset lifetime (atomic reference count) and read-only accessors. */
#include <stdlib.h>
#include <string.h>

#include "brain/brain_int.h"

static const char *channel_names[BRAIN_CH__COUNT] = {"default", "chat", "web", "sms", "voice"};

const char *brain_channel_name(brain_channel_t ch)
{
    return (unsigned)ch < BRAIN_CH__COUNT ? channel_names[ch] : "default";
}

int brain_channel_parse(const char *name, brain_channel_t *out)
{
    for (int i = 0; i < BRAIN_CH__COUNT; i++)
        if (strcmp(name, channel_names[i]) == 0) {
            *out = (brain_channel_t)i;
            return 0;
        }
    return CORE_ERR_NOT_FOUND;
}

void brain__msg_dispose(msg_t *m)
{
    for (int ch = 0; ch < BRAIN_CH__COUNT; ch++) {
        brain__tpl_dispose(m->variant[ch]);
        free(m->variant[ch]);
    }
    for (size_t i = 0; i < m->n_choices; i++) {
        brain__tpl_dispose(&m->choice_title[i]);
        brain__tpl_dispose(&m->choice_value[i]);
    }
    free(m->choice_title);
    free(m->choice_value);
    memset(m, 0, sizeof(*m));
}

void brain__cond_dispose(cond_t *c)
{
    for (size_t i = 0; i < c->n_kids; i++)
        brain__cond_dispose(&c->kids[i]);
    free(c->kids);
    for (size_t i = 0; i < c->n_values; i++)
        free(c->values[i]);
    free(c->values);
    free(c->value);
}

static void node_dispose(node_t *n)
{
    free(n->name);
    free(n->path);
    for (size_t i = 0; i < n->n_msgs; i++)
        brain__msg_dispose(&n->msgs[i]);
    free(n->msgs);
    brain__msg_dispose(&n->prompt);
    brain__msg_dispose(&n->reprompt);
    for (size_t i = 0; i < n->n_cases; i++)
        brain__cond_dispose(&n->conds[i]);
    free(n->conds);
    free(n->case_next);
    for (size_t i = 0; i < n->n_assigns; i++)
        brain__tpl_dispose(&n->assigns[i].value);
    free(n->assigns);
    free(n->method);
    brain__tpl_dispose(&n->url);
    for (size_t i = 0; i < n->n_headers; i++) {
        free(n->headers[i].name);
        brain__tpl_dispose(&n->headers[i].value);
    }
    free(n->headers);
    json_decref(n->body);
    for (size_t i = 0; i < n->n_maps; i++)
        free(n->maps[i].pointer);
    free(n->maps);
    brain__tpl_dispose(&n->base_url);
    brain__tpl_dispose(&n->system);
    brain__tpl_dispose(&n->prompt_tpl);
    free(n->model);
    free(n->api_key_env);
    free(n->reason);
    free(n->queue);
    free(n->target_name);
}

static void settings_dispose(settings_t *s)
{
    msg_t *msgs[] = {&s->fallback, &s->help,    &s->cancel,       &s->start_over,
                     &s->agent,    &s->timeout, &s->csat_prompt,  &s->csat_thanks,
                     &s->confirm,  &s->goodbye, &s->flow_changed, &s->step_limit};
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++)
        brain__msg_dispose(msgs[i]);
    free(s->queue);
    free(s->llm_base_url);
    free(s->llm_model);
    free(s->llm_api_key_env);
}

void brain__flowset_free(brain_flowset_t *fs)
{
    if (fs == NULL)
        return;
    for (size_t i = 0; i < fs->n_flows; i++) {
        flow_t *f = &fs->flows[i];
        for (size_t j = 0; j < f->n_nodes; j++)
            node_dispose(&f->nodes[j]);
        free(f->nodes);
        free(f->by_name);
        brain__msg_dispose(&f->help);
        free(f->name);
        free(f->description);
        free(f->owner);
        free(f->status);
        free(f->file);
    }
    free(fs->flows);
    for (size_t i = 0; i < fs->n_slots; i++) {
        slot_def_t *d = &fs->slots[i];
        free(d->name);
        ent_pattern_free(d->pattern);
        ent_choices_free(d->choices);
        for (size_t j = 0; j < d->n_choices; j++)
            free(d->choice_values[j]);
        free(d->choice_values);
        free(d->def);
        free(d->file);
        free(d->path);
    }
    free(fs->slots);
    for (size_t i = 0; i < fs->n_vars; i++) {
        free(fs->vars[i].name);
        free(fs->vars[i].value);
    }
    free(fs->vars);
    for (size_t i = 0; i < fs->n_intents; i++) {
        free(fs->intents[i].name);
        for (size_t j = 0; j < fs->intents[i].n_examples; j++)
            free(fs->intents[i].examples[j]);
        free(fs->intents[i].examples);
    }
    free(fs->intents);
    free(fs->intent_order);
    for (size_t i = 0; i < fs->n_exact; i++)
        free(fs->exact[i]);
    free(fs->exact);
    free(fs->exact_intent);
    settings_dispose(&fs->settings);
    nlu_model_free(fs->nlu);
    guard_rules_free(fs->guard);
    free(fs);
}

brain_flowset_t *brain_flowset_ref(brain_flowset_t *fs)
{
    atomic_fetch_add_explicit(&fs->refs, 1, memory_order_relaxed);
    return fs;
}

void brain_flowset_unref(brain_flowset_t *fs)
{
    if (fs == NULL)
        return;
    if (atomic_fetch_sub_explicit(&fs->refs, 1, memory_order_acq_rel) == 1)
        brain__flowset_free(fs);
}

uint32_t brain_flowset_version(const brain_flowset_t *fs)
{
    return fs->version;
}

const char *brain_flowset_nlu_hash(const brain_flowset_t *fs)
{
    return fs->nlu_hash;
}

int brain_flowset_nlu_from_cache(const brain_flowset_t *fs)
{
    return fs->nlu_cached;
}

int brain_flowset_nlu_save(const brain_flowset_t *fs, core_buf_t *out)
{
    if (fs->nlu == NULL)
        return CORE_ERR_NOT_FOUND;
    return nlu_model_save(fs->nlu, out);
}

const nlu_model_t *brain_flowset_nlu(const brain_flowset_t *fs)
{
    return fs->nlu;
}

double brain_flowset_threshold(const brain_flowset_t *fs)
{
    return fs->settings.threshold;
}

int64_t brain_flowset_idle_timeout_us(const brain_flowset_t *fs)
{
    return fs->settings.idle_timeout_us;
}

size_t brain_flowset_flow_count(const brain_flowset_t *fs)
{
    return fs->n_flows;
}

int brain_flowset_flow_info(const brain_flowset_t *fs, size_t i, brain_flow_info_t *info)
{
    if (i >= fs->n_flows)
        return CORE_ERR_NOT_FOUND;
    const flow_t *f = &fs->flows[i];
    *info = (brain_flow_info_t){f->name, f->description, f->owner,    f->status,
                                f->file, f->n_nodes,     f->n_intents};
    return 0;
}
