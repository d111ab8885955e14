/* Flow compiler, part 2: templates, messages, conditions and the nodes of one
 * flow. Each node kind has one compile function; references to other nodes
 * are resolved here (the flow's node names are known before any node is
 * compiled), references to other flows' nodes in flow_set.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brain/flow_int.h"

int flow__tpl(loader_t *ld, const char *s, const char *path, brain_tpl_t *out)
{
    char msg[256];
    if (brain__tpl_parse(s, out, msg, sizeof(msg)) != 0) {
        flow__err(ld, path, "%s", msg);
        brain__tpl_parse("", out, msg, sizeof(msg));
        return CORE_ERR_INVALID;
    }
    int rc = 0;
    for (size_t i = 0; i < out->n; i++) {
        tpl_part_t *p = &out->parts[i];
        if (!p->is_ref)
            continue;
        if (p->ref == TPL_REF_SLOT) {
            p->index = brain__slot_find(ld->fs, p->text);
            if (p->index < 0) {
                flow__err(ld, path, "template refers to unknown slot \"%s\"", p->text);
                rc = CORE_ERR_INVALID;
            }
        } else if (p->ref == TPL_REF_VAR) {
            p->index = brain__var_find(ld->fs, p->text);
            if (p->index < 0) {
                flow__err(ld, path, "template refers to unknown variable \"vars.%s\"", p->text);
                rc = CORE_ERR_INVALID;
            }
        }
    }
    return rc;
}

static const char *variant_keys[BRAIN_CH__COUNT] = {"default", "chat", "web", "sms", "voice"};

static void msg_choices(loader_t *ld, json_t *arr, const char *path, msg_t *m)
{
    if (!json_is_array(arr)) {
        flow__err(ld, path, "must be an array of choices");
        return;
    }
    size_t n = json_array_size(arr);
    m->choice_title = core_xcalloc(n ? n : 1, sizeof(brain_tpl_t));
    m->choice_value = core_xcalloc(n ? n : 1, sizeof(brain_tpl_t));
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array_get(arr, i);
        char *ip = core_jsonpath_index(path, i);
        const char *title = json_string_value(c), *value = title;
        if (json_is_object(c)) {
            flow__check_keys(ld, c, ip, "title|value");
            title = flow__str(ld, c, "title", ip, 1);
            value = flow__str(ld, c, "value", ip, 0);
            if (value == NULL)
                value = title;
        } else if (!json_is_string(c)) {
            flow__err(ld, ip, "a choice is a string or {\"title\", \"value\"}");
        }
        flow__tpl(ld, title ? title : "", ip, &m->choice_title[m->n_choices]);
        flow__tpl(ld, value ? value : "", ip, &m->choice_value[m->n_choices]);
        m->n_choices++;
        free(ip);
    }
}

int flow__msg(loader_t *ld, json_t *v, const char *path, msg_t *out)
{
    char p[512];
    memset(out, 0, sizeof(*out));
    int before = ld->n_errors;
    if (json_is_string(v)) {
        out->variant[0] = core_xcalloc(1, sizeof(brain_tpl_t));
        flow__tpl(ld, json_string_value(v), path, out->variant[0]);
        return ld->n_errors == before ? 0 : CORE_ERR_INVALID;
    }
    if (!json_is_object(v)) {
        flow__err(ld, path, "a message is a string or an object of channel variants");
        return CORE_ERR_INVALID;
    }
    flow__check_keys(ld, v, path, "default|chat|web|sms|voice|choices|allow_pii");
    for (int ch = 0; ch < BRAIN_CH__COUNT; ch++) {
        const char *s = flow__str(ld, v, variant_keys[ch], path, ch == 0);
        if (s == NULL)
            continue;
        out->variant[ch] = core_xcalloc(1, sizeof(brain_tpl_t));
        flow__tpl(ld, s, flow__path(p, sizeof(p), path, variant_keys[ch]), out->variant[ch]);
    }
    if (json_object_get(v, "choices") != NULL)
        msg_choices(ld, json_object_get(v, "choices"), flow__path(p, sizeof(p), path, "choices"),
                    out);
    out->allow_pii = flow__bool(ld, v, "allow_pii", path, 0);
    return ld->n_errors == before ? 0 : CORE_ERR_INVALID;
}

uint16_t flow__node_ref(loader_t *ld, json_t *obj, const char *key, const char *path, int required)
{
    char p[512];
    const char *name = flow__str(ld, obj, key, path, required);
    if (name == NULL)
        return BRAIN_NONE;
    int i = brain__node_find(ld->flow, name);
    if (i < 0) {
        flow__err(ld, flow__path(p, sizeof(p), path, key), "unknown node \"%s\" in flow \"%s\"",
                  name, ld->flow->name);
        return BRAIN_NONE;
    }
    return (uint16_t)i;
}

/* ---- nodes -------------------------------------------------------------------------- */

static int slot_ref(loader_t *ld, json_t *obj, const char *key, const char *path, int required)
{
    char p[512];
    const char *name = flow__str(ld, obj, key, path, required);
    if (name == NULL)
        return -1;
    int i = brain__slot_find(ld->fs, name);
    if (i < 0)
        flow__err(ld, flow__path(p, sizeof(p), path, key),
                  "unknown slot \"%s\" (declare it under \"slots\")", name);
    return i;
}

static void node_msgs(loader_t *ld, node_t *n, json_t *v, const char *path, int required)
{
    char p[512];
    json_t *one = json_object_get(v, "message"), *many = json_object_get(v, "messages");
    if (one != NULL && many != NULL)
        flow__err(ld, path, "give either \"message\" or \"messages\", not both");
    if (one != NULL) {
        n->msgs = core_xcalloc(1, sizeof(msg_t));
        n->n_msgs = 1;
        flow__msg(ld, one, flow__path(p, sizeof(p), path, "message"), n->msgs);
    } else if (many != NULL) {
        flow__path(p, sizeof(p), path, "messages");
        if (!json_is_array(many) || json_array_size(many) == 0) {
            flow__err(ld, p, "must be a non-empty array of messages");
            return;
        }
        n->msgs = core_xcalloc(json_array_size(many), sizeof(msg_t));
        for (size_t i = 0; i < json_array_size(many); i++) {
            char *ip = core_jsonpath_index(p, i);
            flow__msg(ld, json_array_get(many, i), ip, &n->msgs[n->n_msgs++]);
            free(ip);
        }
    } else if (required) {
        flow__err(ld, path, "missing required key \"message\" (or \"messages\")");
    }
}

static void node_ask(loader_t *ld, node_t *n, json_t *v, const char *path)
{
    char p[512];
    flow__check_keys(ld, v, path,
                     "type|slot|prompt|reprompt|max_attempts|on_fail|next|force|description");
    n->slot = slot_ref(ld, v, "slot", path, 1);
    if (n->slot >= 0 && ld->fs->slots[n->slot].type == SLOT_ANY)
        flow__err(ld, flow__path(p, sizeof(p), path, "slot"),
                  "slot \"%s\" has type any and cannot be asked for", ld->fs->slots[n->slot].name);
    json_t *prompt = json_object_get(v, "prompt");
    if (prompt == NULL)
        flow__err(ld, path, "missing required key \"prompt\"");
    else
        flow__msg(ld, prompt, flow__path(p, sizeof(p), path, "prompt"), &n->prompt);
    if (json_object_get(v, "reprompt") != NULL)
        n->has_reprompt = flow__msg(ld, json_object_get(v, "reprompt"),
                                    flow__path(p, sizeof(p), path, "reprompt"), &n->reprompt) == 0;
    n->max_attempts = (int)flow__int(ld, v, "max_attempts", path, 1, 10, 3);
    n->force = flow__bool(ld, v, "force", path, 0);
    n->next = flow__node_ref(ld, v, "next", path, 0);
    n->alt = flow__node_ref(ld, v, "on_fail", path, 0);
}

static void node_branch(loader_t *ld, node_t *n, json_t *v, const char *path)
{
    char p[512];
    flow__check_keys(ld, v, path, "type|cases|default|description");
    json_t *cases = json_object_get(v, "cases");
    flow__path(p, sizeof(p), path, "cases");
    if (!json_is_array(cases) || json_array_size(cases) == 0) {
        flow__err(ld, json_object_get(v, "cases") ? p : path,
                  "a branch needs a non-empty \"cases\" array");
    } else {
        n->conds = core_xcalloc(json_array_size(cases), sizeof(cond_t));
        n->case_next = core_xcalloc(json_array_size(cases), sizeof(uint16_t));
        for (size_t i = 0; i < json_array_size(cases); i++) {
            json_t *c = json_array_get(cases, i);
            char *ip = core_jsonpath_index(p, i), cp[512];
            if (!json_is_object(c)) {
                flow__err(ld, ip, "a case is {\"if\": condition, \"next\": node}");
                free(ip);
                continue;
            }
            flow__check_keys(ld, c, ip, "if|next");
            if (json_object_get(c, "if") == NULL)
                flow__err(ld, ip, "missing required key \"if\"");
            else
                flow__cond(ld, json_object_get(c, "if"), flow__path(cp, sizeof(cp), ip, "if"),
                           &n->conds[n->n_cases]);
            n->case_next[n->n_cases++] = flow__node_ref(ld, c, "next", ip, 1);
            free(ip);
        }
    }
    n->next = flow__node_ref(ld, v, "default", path, 1);
}

static void node_set(loader_t *ld, node_t *n, json_t *v, const char *path)
{
    char p[512];
    flow__check_keys(ld, v, path, "type|set|next|description");
    json_t *set = json_object_get(v, "set");
    flow__path(p, sizeof(p), path, "set");
    if (!json_is_object(set) || json_object_size(set) == 0) {
        flow__err(ld, set ? p : path, "a set node needs a non-empty \"set\" object");
    } else {
        n->assigns = core_xcalloc(json_object_size(set), sizeof(assign_t));
        const char *key;
        json_t *val;
        json_object_foreach(set, key, val)
        {
            char kp[512];
            assign_t *a = &n->assigns[n->n_assigns++];
            a->slot = brain__slot_find(ld->fs, key);
            flow__path(kp, sizeof(kp), p, key);
            if (a->slot < 0)
                flow__err(ld, kp, "unknown slot \"%s\"", key);
            char *text = json_is_null(val) ? core_xstrdup("") : flow__scalar_text(val);
            if (text == NULL)
                flow__err(ld, kp, "must be a string template, number, boolean or null");
            flow__tpl(ld, text ? text : "", kp, &a->value);
            free(text);
        }
    }
    n->next = flow__node_ref(ld, v, "next", path, 0);
}

static void node_effect_common(loader_t *ld, node_t *n, json_t *v, const char *path)
{
    n->timeout_ms = (uint32_t)flow__int(ld, v, "timeout_ms", path, 10, 600000, 5000);
    n->next = flow__node_ref(ld, v, "next", path, 0);
    n->alt = flow__node_ref(ld, v, "on_error", path, 1);
}

static void action_headers(loader_t *ld, node_t *n, json_t *h, const char *path)
{
    char p[512];
    flow__path(p, sizeof(p), path, "headers");
    if (h != NULL && !json_is_object(h))
        flow__err(ld, p, "must be an object");
    if (!json_is_object(h))
        return;
    n->headers = core_xcalloc(json_object_size(h) + 1, sizeof(kv_tpl_t));
    const char *key;
    json_t *hv;
    json_object_foreach(h, key, hv)
    {
        char hp[512];
        flow__path(hp, sizeof(hp), p, key);
        kv_tpl_t *kv = &n->headers[n->n_headers++];
        kv->name = core_xstrdup(key);
        /* RFC 9110 token: the HTTP client refuses anything else at run time,
         * where every call would take on_error */
        if (key[0] == '\0' ||
            strspn(key, "!#$%&'*+-.^_`|~0123456789"
                        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(key))
            flow__err(ld, hp, "\"%s\" is not a header name (letters, digits and !#$%%&'*+-.^_`|~)",
                      key);
        if (!json_is_string(hv))
            flow__err(ld, hp, "must be a string");
        flow__tpl(ld, json_is_string(hv) ? json_string_value(hv) : "", hp, &kv->value);
    }
}

static void action_map(loader_t *ld, node_t *n, json_t *map, const char *path)
{
    char p[512];
    flow__path(p, sizeof(p), path, "map");
    if (map != NULL && !json_is_object(map))
        flow__err(ld, p, "must be an object of slot to pointer");
    if (!json_is_object(map))
        return;
    n->maps = core_xcalloc(json_object_size(map) + 1, sizeof(mapping_t));
    const char *key;
    json_t *mv;
    json_object_foreach(map, key, mv)
    {
        char mp[512];
        flow__path(mp, sizeof(mp), p, key);
        mapping_t *mm = &n->maps[n->n_maps++];
        mm->slot = brain__slot_find(ld->fs, key);
        if (mm->slot < 0)
            flow__err(ld, mp, "unknown slot \"%s\"", key);
        const char *ptr = json_string_value(mv);
        if (ptr == NULL || (ptr[0] != '/' && ptr[0] != '\0'))
            flow__err(ld, mp, "must be a JSON pointer such as \"/refund/status\"");
        mm->pointer = core_xstrdup(ptr ? ptr : "");
    }
}

static void node_action(loader_t *ld, node_t *n, json_t *v, const char *path)
{
    char p[512];
    flow__check_keys(ld, v, path,
                     "type|method|url|headers|body|timeout_ms|retries|backoff_ms|map|"
                     "status_slot|next|on_error|description");
    const char *m = flow__str(ld, v, "method", path, 0);
    if (m == NULL)
        m = "GET";
    if (strcmp(m, "GET") && strcmp(m, "POST") && strcmp(m, "PUT") && strcmp(m, "PATCH") &&
        strcmp(m, "DELETE"))
        flow__err(ld, flow__path(p, sizeof(p), path, "method"),
                  "must be GET, POST, PUT, PATCH or DELETE");
    n->method = core_xstrdup(m);
    const char *url = flow__str(ld, v, "url", path, 1);
    flow__tpl(ld, url ? url : "", flow__path(p, sizeof(p), path, "url"), &n->url);
    action_headers(ld, n, json_object_get(v, "headers"), path);
    if (json_object_get(v, "body") != NULL)
        n->body = json_deep_copy(json_object_get(v, "body"));
    n->retries = (uint32_t)flow__int(ld, v, "retries", path, 0, 10, 0);
    n->backoff_ms = (uint32_t)flow__int(ld, v, "backoff_ms", path, 0, 60000, 200);
    action_map(ld, n, json_object_get(v, "map"), path);
    n->status_slot = slot_ref(ld, v, "status_slot", path, 0);
    node_effect_common(ld, n, v, path);
    /* Templates inside the body are checked by compiling each string once. */
    if (n->body != NULL) {
        char *dump = json_dumps(n->body, JSON_COMPACT);
        brain_tpl_t t;
        flow__tpl(ld, dump ? dump : "", flow__path(p, sizeof(p), path, "body"), &t);
        brain__tpl_dispose(&t);
        free(dump);
    }
}

static void node_llm(loader_t *ld, node_t *n, json_t *v, const char *path)
{
    char p[512];
    settings_t *s = &ld->fs->settings;
    flow__check_keys(ld, v, path,
                     "type|base_url|model|api_key_env|system|prompt|temperature|max_tokens|"
                     "timeout_ms|slot|say|next|on_error|description");
    const char *b = flow__str(ld, v, "base_url", path, 0);
    const char *m = flow__str(ld, v, "model", path, 0);
    const char *k = flow__str(ld, v, "api_key_env", path, 0);
    if (b == NULL && s->llm_base_url == NULL)
        flow__err(ld, path, "missing \"base_url\" (here or in settings.llm)");
    if (m == NULL && s->llm_model == NULL)
        flow__err(ld, path, "missing \"model\" (here or in settings.llm)");
    flow__tpl(ld, b ? b : (s->llm_base_url ? s->llm_base_url : ""),
              flow__path(p, sizeof(p), path, "base_url"), &n->base_url);
    n->model = core_xstrdup(m ? m : (s->llm_model ? s->llm_model : ""));
    n->api_key_env = (k || s->llm_api_key_env) ? core_xstrdup(k ? k : s->llm_api_key_env) : NULL;
    const char *sys = flow__str(ld, v, "system", path, 0);
    flow__tpl(ld, sys ? sys : "", flow__path(p, sizeof(p), path, "system"), &n->system);
    const char *pr = flow__str(ld, v, "prompt", path, 0);
    flow__tpl(ld, pr ? pr : "{{user.text}}", flow__path(p, sizeof(p), path, "prompt"),
              &n->prompt_tpl);
    n->temperature = flow__num(ld, v, "temperature", path, 0, 2, 0.2);
    n->max_tokens = (int)flow__int(ld, v, "max_tokens", path, 1, 32768, 256);
    n->slot = slot_ref(ld, v, "slot", path, 0);
    n->say_answer = flow__bool(ld, v, "say", path, 1);
    node_effect_common(ld, n, v, path);
}

static void node_kind_rest(loader_t *ld, node_t *n, json_t *v, const char *path)
{
    const char *f;
    switch (n->kind) {
    case NODE_SAY:
        flow__check_keys(ld, v, path, "type|message|messages|next|description");
        node_msgs(ld, n, v, path, 1);
        n->next = flow__node_ref(ld, v, "next", path, 0);
        break;
    case NODE_HANDOFF: {
        flow__check_keys(ld, v, path, "type|reason|queue|message|messages|description");
        const char *r = flow__str(ld, v, "reason", path, 1);
        const char *q = flow__str(ld, v, "queue", path, 0);
        n->reason = core_xstrdup(r ? r : "flow");
        n->queue = core_xstrdup_opt(q);
        node_msgs(ld, n, v, path, 0);
        break;
    }
    case NODE_GOTO:
    case NODE_CALL: {
        flow__check_keys(ld, v, path,
                         n->kind == NODE_GOTO ? "type|flow|node|description"
                                              : "type|flow|next|description");
        f = flow__str(ld, v, "flow", path, 1);
        int fi = f ? brain__flow_find(ld->fs, f) : -1;
        char p[512];
        if (f != NULL && fi < 0)
            flow__err(ld, flow__path(p, sizeof(p), path, "flow"), "unknown flow \"%s\"", f);
        n->target_flow = fi < 0 ? BRAIN_NONE : (uint16_t)fi;
        n->target_node = BRAIN_NONE;
        if (n->kind == NODE_GOTO) {
            const char *tn = flow__str(ld, v, "node", path, 0);
            n->target_name = core_xstrdup_opt(tn);
        } else {
            n->next = flow__node_ref(ld, v, "next", path, 0);
        }
        break;
    }
    case NODE_END:
        flow__check_keys(ld, v, path, "type|message|messages|csat|description");
        node_msgs(ld, n, v, path, 0);
        n->csat = flow__bool(ld, v, "csat", path, 0);
        break;
    case NODE_RETURN:
        flow__check_keys(ld, v, path, "type|message|messages|description");
        node_msgs(ld, n, v, path, 0);
        break;
    default:
        break;
    }
}

static const char *kind_names[NODE__COUNT] = {"say",     "ask",  "branch", "set", "action", "llm",
                                              "handoff", "goto", "call",   "end", "return"};

const char *flow__kind_name(node_kind_t k)
{
    return k < NODE__COUNT ? kind_names[k] : "?";
}

static void node_compile(loader_t *ld, node_t *n, json_t *v)
{
    char p[512];
    if (!json_is_object(v)) {
        flow__err(ld, n->path, "a node is an object with a \"type\"");
        return;
    }
    const char *type = flow__str(ld, v, "type", n->path, 1);
    if (type == NULL)
        return;
    int k = -1;
    for (int i = 0; i < NODE__COUNT; i++)
        if (strcmp(type, kind_names[i]) == 0)
            k = i;
    if (k < 0) {
        flow__err(ld, flow__path(p, sizeof(p), n->path, "type"),
                  "unknown node type \"%s\" (say, ask, branch, set, action, llm, handoff, goto, "
                  "call, end, return)",
                  type);
        return;
    }
    n->kind = (node_kind_t)k;
    if (n->kind == NODE_ASK)
        node_ask(ld, n, v, n->path);
    else if (n->kind == NODE_BRANCH)
        node_branch(ld, n, v, n->path);
    else if (n->kind == NODE_SET)
        node_set(ld, n, v, n->path);
    else if (n->kind == NODE_ACTION)
        node_action(ld, n, v, n->path);
    else if (n->kind == NODE_LLM)
        node_llm(ld, n, v, n->path);
    else
        node_kind_rest(ld, n, v, n->path);
}

/* Whether a prompt template reads what users say: a slot or the text. */
static int tpl_reads_input(const brain_tpl_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->parts[i].is_ref &&
            (t->parts[i].ref == TPL_REF_SLOT || t->parts[i].ref == TPL_REF_USER_TEXT))
            return 1;
    return 0;
}

void flow__nodes(loader_t *ld, json_t *nodes, const char *path)
{
    flow_t *f = ld->flow;
    if (!json_is_object(nodes) || json_object_size(nodes) == 0) {
        flow__err(ld, nodes ? path : "", "a flow needs a non-empty \"nodes\" object");
        return;
    }
    if (json_object_size(nodes) >= BRAIN_NONE) {
        flow__err(ld, path, "too many nodes");
        return;
    }
    f->nodes = core_xcalloc(json_object_size(nodes), sizeof(node_t));
    const char *key;
    json_t *v;
    json_object_foreach(nodes, key, v)
    {
        node_t *n = &f->nodes[f->n_nodes++];
        n->name = core_xstrdup(key);
        n->path = core_jsonpath_key(path, key);
        n->next = n->alt = n->target_flow = n->target_node = BRAIN_NONE;
        n->slot = n->status_slot = -1;
        n->kind = NODE_SAY;
    }
    brain__node_index(f);
    for (size_t i = 0; i < f->n_nodes; i++)
        node_compile(ld, &f->nodes[i], json_object_get(nodes, f->nodes[i].name));
    for (size_t i = 0; i < f->n_nodes; i++)
        if (f->nodes[i].kind == NODE_LLM) {
            f->has_llm = 1;
            f->llm_reads_input |=
                tpl_reads_input(&f->nodes[i].system) || tpl_reads_input(&f->nodes[i].prompt_tpl);
        }
}
