/* A person's words on the customer's channel (channels.h, docs/agents.md):
 * for chat and the web widget an entry {"type":"message","from":"agent"}
 * in the conversation's transcript, pushed to its sockets like the bot's;
 * for SMS a text through Twilio's REST API (chan_sms_send.c). And the bot's
 * words when a person hands the conversation back, delivered the same
 * way. */
#define LOG_MODULE "chat"
#include <string.h>

#include "channels/chan_chat_int.h"
#include "channels/chan_twilio_int.h"

json_t *chat__desk_entry(const char *agent, const char *text)
{
    json_t *m = json_pack("{s:s,s:s,s:s}", "type", "message", "from", agent ? "agent" : "system",
                          "text", text);
    if (m != NULL && agent != NULL)
        json_object_set_new(m, "agent", json_string(agent));
    return m;
}

int chan_agent_say(const char *key, const char *agent, const char *text, uint64_t *entry,
                   core_err_t *err)
{
    if (strncmp(key, "voice:", 6) == 0)
        return core_err_set(err, CORE_ERR_UNSUPPORTED,
                            "a voice call is connected to the queue's number by <Dial>");
    if (strncmp(key, "chat:", 5) != 0)
        return core_err_set(err, CORE_ERR_UNSUPPORTED, "no outbound sender for %.*s",
                            (int)strcspn(key, ":"), key);
    chat_t *c = chat__instance();
    chat_map_node_t *n = c ? chat__map_get(&c->convs, key + 5) : NULL;
    if (n == NULL)
        return core_err_set(err, CORE_ERR_NOT_FOUND,
                            "the customer's conversation is not open here");
    chat_conv_t *cv = CHAT_CONTAINER(n, chat_conv_t, node);
    json_t *m = chat__desk_entry(agent, text);
    if (m == NULL)
        return core_err_set(err, CORE_ERR_INVALID, "text is not UTF-8");
    uint64_t seq = chat__conv_append(cv, m, core_wall_us());
    json_decref(m);
    if (entry != NULL)
        *entry = seq;
    return 0;
}

void chan_desk_turn_done(const runtime_turn_out_t *out)
{
    chat_t *c = chat__instance();
    if (strncmp(out->key, "sms:", 4) == 0)
        sms__unasked_output(out, 1);
    else if (c != NULL)
        chat__conv_idle_end(c, out); /* recorded and pushed like any reply ("chat:" keys only) */
    /* Voice needs nothing: TwiML only ever answers the call's own webhooks,
     * and a handed-off call was <Dial>ed to the queue's number, with no
     * action that would bring it back here, so no request is there to
     * carry the words; the transcript has them. */
}

int chan_agent_say_async(net_client_t *http, const char *key, const char *agent, const char *text,
                         uint64_t *entry, chan_agent_done_cb cb, void *data, core_err_t *err)
{
    if (entry != NULL)
        *entry = 0;
    if (strncmp(key, "sms:", 4) == 0)
        return sms__agent_send(http, key, text, cb, data, err);
    return chan_agent_say(key, agent, text, entry, err);
}
