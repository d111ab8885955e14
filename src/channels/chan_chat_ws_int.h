/* Internal to the chat WebSocket (chan_chat_ws.c: the socket, the session
 * and the resume; chan_chat_ws_frames.c: the frames from the client). */
#ifndef CHORUS_CHAN_CHAT_WS_INT_H
#define CHORUS_CHAN_CHAT_WS_INT_H

#include "channels/chan_chat_int.h"

typedef struct ws_session_s {
    chat_link_t link;           /* in the conversation's subs */
    chat_link_t keyed;          /* in chat_t.ws_keyed while open with a gateway key */
    chat_t *chat;               /* the adapter */
    chat_conv_t *conv;          /* followed, NULL until started and once detached */
    net_ws_t *ws;               /* the socket */
    uv_timer_t closer;          /* never started: its close callback frees the session */
    int resume;                 /* ?conversation= was given */
    char want[CHAT_ID_LEN + 1]; /* its value ("" when too long: not found) */
    int has_last;               /* ?last_seq= was given */
    uint64_t last;              /* its value */
    brain_channel_t channel;    /* for a new conversation: chat (key) or web (origin) */
    char gw[CHAT_KEY_NAME];     /* its gateway key's name; "" for the widget (origin) */
    uint8_t key_hash[32];       /* that key's configured hash: a new secret revokes it */
    char env[16];               /* its environment: the gateway key's; "" = the default */
    struct ws_find_s *finding;  /* the store lookup of a resumed conversation, or NULL */
    char **held;                /* owned: frames that arrived during the lookup */
    size_t n_held;
} ws_session_t;

/* Sends one frame (borrowed) to s alone; a full send queue closes s. */
void chat__ws_send_frame(ws_session_t *s, const json_t *frame);
/* Sends {"type":"error","code","message"} (and "id" when not NULL) to s. */
void chat__ws_send_error(ws_session_t *s, const char *code, const char *id, const char *msg);
/* Tells every follower of cv that a turn failed, naming the message's id
 * when it had one (it was never echoed: its sender sends it again). */
void chat__ws_turn_failed(chat_conv_t *cv, const chat_result_t *r, const char *id);
/* Acts on one frame from the client of s (a started session). */
void chat__ws_handle_frame(ws_session_t *s, int binary, const char *data, size_t len);

#endif
