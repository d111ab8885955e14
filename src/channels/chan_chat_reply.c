/* The chat REST API's answers, written straight into a buffer: what a turn
 * added (POST /v1/chat/conversations and .../messages) and a conversation's
 * transcript (GET). Contract: chan_chat_int.h; shapes: docs/channels.md. */
#include <stdlib.h>
#include <string.h>

#include "channels/chan_chat_int.h"

/* ,"handoff":{...} when the conversation has a handoff. */
static void put_handoff(core_buf_t *b, const chat_conv_t *cv)
{
    if (cv->handoff == NULL)
        return;
    char *h = json_dumps(cv->handoff, JSON_COMPACT);
    core_buf_append_lit(b, ",\"handoff\":");
    core_buf_append_str(b, h ? h : "null");
    free(h);
}

/* Skips the JSON string or array that starts at p (p < end); returns the
 * byte after it, or NULL when it does not close before end. */
static const char *skip_value(const char *p, const char *end)
{
    int depth = 0, in_str = 0;
    for (; p < end; p++) {
        if (in_str && *p == '\\') {
            if (++p == end)
                return NULL;
        } else if (*p == '"')
            in_str = !in_str;
        else if (!in_str && (*p == '[' || *p == '{'))
            depth++;
        else if (!in_str && (*p == ']' || *p == '}'))
            depth--;
        if (!in_str && depth == 0)
            return p + 1;
    }
    return NULL;
}

/* The REST form of log entry e (seq) when it is a bot message:
 * {"seq":N,"text":T,"choices":C}, after a comma unless first. The log writes
 * a bot message as {"type":"message","from":"bot","text":T,"choices":C,
 * "seq":N,"ts":..}, so "text":T,"choices":C is copied as it is: the bytes
 * jansson would write after parsing it. Returns 1 when appended, 0 when e is
 * not a bot message, -1 when its shape is not one of these (parse it). */
static int bot_reply(core_buf_t *b, const char *e, uint64_t seq, int first)
{
    static const char msg[] = "{\"type\":\"message\",\"from\":\"";
    static const char bot[] = "{\"type\":\"message\",\"from\":\"bot\",";
    if (strncmp(e, "{\"type\":\"handoff\",", 18) == 0 || strncmp(e, "{\"type\":\"end\",", 14) == 0)
        return 0;
    if (strncmp(e, msg, sizeof(msg) - 1) != 0)
        return -1;
    if (strncmp(e, bot, sizeof(bot) - 1) != 0)
        return strncmp(e + sizeof(msg) - 1, "bot\"", 4) == 0 ? -1 : 0;
    const char *from = e + sizeof(bot) - 1, *end = from + strlen(from), *p = from;
    if (strncmp(p, "\"text\":\"", 8) != 0 || (p = skip_value(p + 7, end)) == NULL ||
        strncmp(p, ",\"choices\":[", 12) != 0 || (p = skip_value(p + 11, end)) == NULL ||
        strncmp(p, ",\"seq\":", 7) != 0)
        return -1;
    core_buf_append_str(b, first ? "{\"seq\":" : ",{\"seq\":");
    core_buf_json_int(b, (long long)seq);
    core_buf_append_lit(b, ",");
    core_buf_append(b, from, (size_t)(p - from));
    core_buf_append_lit(b, "}");
    return 1;
}

/* The same from the parsed entry, for any other shape. */
static int bot_reply_parsed(core_buf_t *b, const chat_conv_t *cv, uint64_t seq, int first)
{
    json_t *e = chat__conv_entry(cv, seq), *m = NULL;
    const char *from = json_string_value(json_object_get(e, "from"));
    if (from != NULL && strcmp(from, "bot") == 0)
        m = json_pack("{s:O,s:O,s:O}", "seq", json_object_get(e, "seq"), "text",
                      json_object_get(e, "text"), "choices", json_object_get(e, "choices"));
    char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;
    int appended = text != NULL;
    if (appended) {
        core_buf_append_str(b, first ? "" : ",");
        core_buf_append_str(b, text);
    }
    free(text);
    json_decref(m);
    json_decref(e);
    return appended;
}

void chat__turn_reply(core_buf_t *b, const chat_conv_t *cv, const chat_result_t *r)
{
    core_buf_append_lit(b, "{\"conversation\":");
    core_buf_json_str(b, cv->id, strlen(cv->id));
    core_buf_append_lit(b, ",\"messages\":[");
    int first = 1;
    for (uint64_t s = r->from_seq; s < r->to_seq; s++) {
        const char *e = chat__conv_entry_text(cv, s);
        int rc = e ? bot_reply(b, e, s, first) : 0;
        if (rc < 0)
            rc = bot_reply_parsed(b, cv, s, first);
        first = first && rc == 0;
    }
    const char *st = chat__status_name(cv->status);
    core_buf_append_lit(b, "],\"status\":");
    core_buf_json_str(b, st, strlen(st));
    if (cv->status == BRAIN_ST_HANDOFF)
        put_handoff(b, cv);
    core_buf_append_lit(b, "}");
}

/* Written straight into b from the stored texts: each entry is already the
 * compact JSON a parse and a dump would give back (json_dumps or the same
 * bytes by append_text), so a GET costs a copy per entry, not a parse and a
 * serialization. The keys are in the documented order (docs/channels.md),
 * as a tree built and dumped would put them. */
void chat__transcript(core_buf_t *b, const chat_conv_t *cv, uint64_t after)
{
    char ts[40];
    const char *ch = brain_channel_name(cv->channel), *st = chat__status_name(cv->status);
    core_buf_append_lit(b, "{\"conversation\":");
    core_buf_json_str(b, cv->id, strlen(cv->id));
    core_buf_append_lit(b, ",\"channel\":");
    core_buf_json_str(b, ch, strlen(ch));
    core_buf_append_lit(b, ",\"status\":");
    core_buf_json_str(b, st, strlen(st));
    core_buf_append_lit(b, ",\"created\":");
    core_time_format(ts, sizeof(ts), cv->created_us);
    core_buf_json_str(b, ts, strlen(ts));
    core_buf_append_lit(b, ",\"first_seq\":");
    core_buf_json_int(b, (long long)cv->first_seq);
    core_buf_append_lit(b, ",\"last_seq\":");
    core_buf_json_int(b, (long long)(cv->next_seq - 1));
    core_buf_append_lit(b, ",\"messages\":[");
    int first = 1;
    for (size_t i = 0; i < cv->log_len; i++) {
        if (cv->first_seq + i <= after)
            continue;
        core_buf_append_str(b, first ? "" : ",");
        core_buf_append_str(b, cv->log[(cv->log_head + i) % cv->log_cap]);
        first = 0;
    }
    core_buf_append_lit(b, "]");
    put_handoff(b, cv);
    core_buf_append_lit(b, "}");
}
