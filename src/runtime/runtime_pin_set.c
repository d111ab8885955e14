/* Pins across restarts, the part that needs no store: what a saved state
 * records of the version set a conversation runs on ({"flow":"version"} of
 * every file of the set), and finding a set in memory with exactly those
 * versions for a conversation read back from the store -- an environment's,
 * a rollout's candidate, or one that only conversations hold any more (the
 * kept list). Finding none, the runtime compiles one from the store's
 * flow_versions (runtime_pin.c). Loop thread. See runtime_envs.h and
 * docs/runtime.md, "Versions and environments". */
#define LOG_MODULE "runtime"
#include <jansson.h>
#include <string.h>

#include "runtime/runtime_envs.h"

void rt_pin_build(rt_ver_t *v)
{
    core_buf_t *b = &v->pin;
    core_buf_init(b, (size_t)-1);
    core_buf_append_lit(b, "{");
    for (size_t i = 0; i < v->n; i++) {
        if (i > 0)
            core_buf_append_lit(b, ",");
        core_buf_json_str(b, v->files[i].flow, strlen(v->files[i].flow));
        core_buf_append_lit(b, ":");
        core_buf_json_str(b, v->files[i].version, strlen(v->files[i].version));
    }
    core_buf_append_lit(b, "}");
}

void rt_pin_json(const rt_ver_t *v, core_buf_t *b)
{
    if (v == NULL || v->pin.len == 0)
        core_buf_append_lit(b, "{}");
    else
        core_buf_append(b, v->pin.data, v->pin.len);
}

void rt_ver_keep(rt_envs_t *e, rt_ver_t *v)
{
    if (v->kprev != NULL)
        return;
    v->knext = e->kept;
    if (e->kept != NULL)
        e->kept->kprev = &v->knext;
    e->kept = v;
    v->kprev = &e->kept;
}

/* Whether v's files are exactly the pin's flows at the pin's versions. */
static int pin_is(const rt_ver_t *v, const json_t *pin)
{
    if (v == NULL || v->n != json_object_size(pin))
        return 0;
    for (size_t i = 0; i < v->n; i++) {
        const char *want = json_string_value(json_object_get(pin, v->files[i].flow));
        if (want == NULL || strcmp(want, v->files[i].version) != 0)
            return 0;
    }
    return 1;
}

/* A usable pin: a non-empty object of version strings. States saved
 * before pins were saved have none and go on the current set, as before. */
static int pin_valid(const json_t *pin)
{
    const char *flow;
    json_t *version;
    if (!json_is_object(pin) || json_object_size(pin) == 0)
        return 0;
    json_object_foreach((json_t *)pin, flow, version)
    {
        if (!json_is_string(version))
            return 0;
    }
    return 1;
}

int rt_pin_bind(runtime_t *rt, rt_conv_t *conv, const json_t *pin)
{
    if (!pin_valid(pin) || conv->ver == NULL || pin_is(conv->ver, pin))
        return 0;
    rt_envs_t *e = rt->envs;
    rt_ver_t *found = NULL;
    for (int i = 0; i < RT_ENVS && found == NULL; i++) {
        if (pin_is(e->env[i].cur, pin))
            found = e->env[i].cur;
        else if (e->env[i].ro != NULL && pin_is(e->env[i].ro->cand, pin))
            found = e->env[i].ro->cand;
    }
    for (rt_ver_t *v = e->kept; v != NULL && found == NULL; v = v->knext)
        if (pin_is(v, pin))
            found = v;
    if (found == NULL)
        return 1;
    rt_conv_set_ver(conv, found);
    return 0;
}
