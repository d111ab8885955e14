/* chorusctl chat: an interactive conversation with the flows in-process, on
 * the daemon's brain code, showing the chosen channel's variant of every
 * message. Effects are performed for real with libcurl (blocking is fine
 * here), or answered from a mock file in the conversation-test format. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/ctl.h"
#include "cmd/ctl_common.h"

int ctl_chat(int argc, char **argv);

typedef struct chat_s {
    brain_flowset_t *fs;
    brain_conv_t conv;
    brain_out_t out;
    json_t *mocks; /* array or NULL */
    int debug;
    int64_t now; /* fixed clock from --now, else 0 (real time) */
} chat_t;

static int64_t now_us(chat_t *c)
{
    if (c->now > 0)
        return c->now += 1000000;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void show(chat_t *c)
{
    brain_out_t *o = &c->out;
    for (size_t i = 0; i < o->n_messages; i++) {
        printf("bot> %s\n", o->messages[i].text);
        for (size_t j = 0; j < o->messages[i].n_choices; j++)
            printf("     [%zu] %s\n", j + 1, o->messages[i].choices[j].title);
    }
    if (c->debug)
        printf("     (intent=%s confidence=%.2f flow=%s node=%s status=%d)\n",
               o->intent ? o->intent : "-", o->confidence, o->flow ? o->flow : "-",
               o->node ? o->node : "-", o->status);
    if (o->status == BRAIN_ST_HANDOFF)
        printf("     -- handed off to queue \"%s\" (%s): %s\n", o->handoff_queue, o->handoff_reason,
               o->handoff_summary ? o->handoff_summary : "");
    if (o->status == BRAIN_ST_ENDED)
        printf("     -- conversation ended (%s)\n", o->end_reason ? o->end_reason : "end");
    fflush(stdout);
}

static void turn(chat_t *c, brain_input_t *in)
{
    int rc = brain_turn(c->fs, &c->conv, in, &c->out);
    while (rc == BRAIN_NEED_EFFECT) {
        const brain_effect_t *e = &c->out.effect;
        brain_effect_result_t res;
        core_buf_t body;
        char *mock_body = NULL;
        core_buf_init(&body, 8u << 20);
        if (c->debug)
            printf("     (%s %s)\n", e->method, e->url);
        if (c->mocks != NULL)
            ctl_mock_answer(c->mocks, e, &res, &mock_body);
        else
            ctl_effect_perform(e, &res, &body);
        rc = brain_resume(c->fs, &c->conv, &res, &c->out);
        core_buf_dispose(&body);
        free(mock_body);
    }
    if (rc < 0)
        fprintf(stderr, "chorusctl chat: %s\n", core_strerror(rc));
    else
        show(c);
}

static int parse_args(int argc, char **argv, chat_t *c, const char **flows, brain_channel_t *ch)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--flows") == 0 && i + 1 < argc) {
            *flows = argv[++i];
        } else if (strcmp(a, "--channel") == 0 && i + 1 < argc) {
            if (brain_channel_parse(argv[++i], ch) != 0) {
                fprintf(stderr, "chorusctl chat: unknown channel %s\n", argv[i]);
                return 2;
            }
        } else if (strcmp(a, "--mocks") == 0 && i + 1 < argc) {
            json_error_t jerr;
            json_t *root = json_load_file(argv[++i], 0, &jerr);
            c->mocks = json_incref(json_is_array(root) ? root : json_object_get(root, "mocks"));
            json_decref(root);
            if (c->mocks == NULL) {
                fprintf(stderr, "chorusctl chat: %s: no mocks (%s)\n", argv[i], jerr.text);
                return 2;
            }
        } else if (strcmp(a, "--now") == 0 && i + 1 < argc) {
            c->now = ctl_parse_time(argv[++i]);
        } else if (strcmp(a, "--debug") == 0) {
            c->debug = 1;
        } else {
            printf("usage: chorusctl chat [--channel default|chat|web|sms|voice] [--flows DIR]\n"
                   "                      [--mocks FILE] [--now YYYY-MM-DD] [--debug]\n\n"
                   "Type a message per line. /start opens the conversation, /timeout sends\n"
                   "the idle timeout, /state prints the conversation state, /quit leaves.\n");
            return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 ? 0 : 2;
        }
    }
    return -1;
}

int ctl_chat(int argc, char **argv)
{
    chat_t c;
    memset(&c, 0, sizeof(c));
    const char *flows = "flows";
    brain_channel_t ch = BRAIN_CH_CHAT;
    int rc = parse_args(argc, argv, &c, &flows, &ch);
    if (rc >= 0 || ctl_flowset_load(flows, 0, &c.fs) != 0) {
        json_decref(c.mocks);
        return rc >= 0 ? rc : 1;
    }
    brain_conv_init(&c.conv, c.fs, ch, now_us(&c));
    brain_out_init(&c.out);
    brain_input_t in;
    ctl_input_message(&in, NULL, now_us(&c));
    in.event = BRAIN_EV_START;
    turn(&c, &in);
    char line[4096];
    while (printf("you> "), fflush(stdout), fgets(line, sizeof(line), stdin) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strcmp(line, "/quit") == 0)
            break;
        if (strcmp(line, "/state") == 0) {
            core_buf_t b;
            core_buf_init(&b, 1 << 20);
            brain_conv_to_json(c.fs, &c.conv, &b);
            printf("%s\n(%zu bytes in memory)\n", b.data, brain_conv_memory(&c.conv));
            core_buf_dispose(&b);
            continue;
        }
        ctl_input_message(&in, line, now_us(&c));
        if (strcmp(line, "/start") == 0)
            in.event = BRAIN_EV_START;
        if (strcmp(line, "/timeout") == 0)
            in.event = BRAIN_EV_TIMEOUT;
        turn(&c, &in);
    }
    brain_out_dispose(&c.out);
    brain_conv_dispose(&c.conv);
    brain_flowset_unref(c.fs);
    json_decref(c.mocks);
    return 0;
}
