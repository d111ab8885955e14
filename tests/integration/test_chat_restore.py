"""Chat conversations survive restarts and evictions: the store, not the
chat adapter's memory, says whether a conversation exists and what was said
in it. Between turns the daemon is stopped (SIGTERM) or killed (kill -9) and
a new one on the same data directory continues the conversation over REST
and WebSocket, returns the same transcript with the same sequence numbers,
replays what a resuming socket missed, and still answers 404 for an id that
never existed. An evicted conversation comes back the same way, whether the
table's count or its bytes (chat.history_bytes) pushed it out; one that a
socket follows is never evicted. GET's body is checked byte for byte
against the entries a resuming socket receives, live and restored."""
import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, run_tests  # noqa: E402
from test_channels_same_flow import WebSocket  # noqa: E402
from test_chat_rest import FLOWS, KEY, Backend, auth, escalate, sha  # noqa: E402

JSON = {"Content-Type": "application/json"}
NEVER = "0123456789abcdef0123456789abcdef"  # well formed, never given out


def daemon(data_dir, env=None, **chat):
    cfg = {"chat": dict({"api_keys": "main:" + sha(KEY)}, **chat)}
    d = Daemon(config=cfg, args=["--flows", FLOWS], env=env)
    d.data_dir = data_dir  # outlives the daemon's own temporary directory
    d.start()
    d.wait_log(event="flows_loaded", timeout=60)
    return d


def killed(d):
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    d.cleanup()


def start(d):
    status, _, body = d.request("POST", "/v1/chat/conversations", b"", auth())
    assert status == 201, body
    return json.loads(body)["conversation"]


def say(d, conv, text):
    status, _, body = d.request("POST", "/v1/chat/conversations/%s/messages" % conv,
                                json.dumps({"text": text}).encode(), dict(auth(), **JSON))
    return status, json.loads(body)


def transcript(d, conv):
    status, _, body = d.request("GET", "/v1/chat/conversations/%s" % conv, None, auth())
    return status, json.loads(body)


def entries(t):
    """What a client relies on: seq, kind, sender (and the agent's name),
    text and quick replies of every entry."""
    return [(m["seq"], m["type"], m.get("from"), m.get("agent"), m.get("text"), m.get("choices"))
            for m in t["messages"]]


def check_same(before, after):
    assert after["conversation"] == before["conversation"], after
    assert after["status"] == before["status"], (before["status"], after["status"])
    assert after["channel"] == before["channel"], after
    assert after["last_seq"] == before["last_seq"], (before["last_seq"], after["last_seq"])
    assert entries(after) == entries(before), (entries(before), entries(after))


def with_data_dir(fn):
    data_dir = tempfile.mkdtemp(prefix="chorus-restore-")
    try:
        fn(data_dir)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def rest_across(stop):
    def run(data_dir):
        d = daemon(data_dir)
        try:
            conv = start(d)
            status, reply = say(d, conv, "how are you")
            assert status == 200, reply
            status, before = transcript(d, conv)
            assert status == 200 and before["last_seq"] >= 3, before
            assert any(m.get("choices") for m in before["messages"]), before  # buttons to keep
            stop(d)
        finally:
            d.kill()
        d2 = daemon(data_dir)
        try:
            status, after = transcript(d2, conv)
            assert status == 200, after
            check_same(before, after)
            status, _, body = d2.request("GET", "/v1/chat/conversations/%s?after=%d"
                                         % (conv, before["last_seq"] - 1), None, auth())
            assert status == 200 and entries(json.loads(body)) == entries(before)[-1:], body
            status, reply = say(d2, conv, "how are you")
            assert status == 200 and reply["conversation"] == conv, reply
            assert reply["messages"] and reply["messages"][0]["seq"] == before["last_seq"] + 2, \
                reply  # the user's entry took last_seq + 1
            status, t = transcript(d2, conv)
            assert entries(t)[:len(entries(before))] == entries(before), t
            assert t["messages"][len(before["messages"])]["text"] == "how are you", t
            status, reply = say(d2, conv, "goodbye")
            assert status == 200 and reply["status"] == "ended", reply
            status, ended = transcript(d2, conv)
            d2.stop()
        finally:
            d2.kill()
        # an ended conversation stays ended after a restart
        d3 = daemon(data_dir)
        try:
            status, t = transcript(d3, conv)
            assert status == 200, t
            check_same(ended, t)
            status, reply = say(d3, conv, "how are you")
            assert status == 409 and reply["error"]["code"] == "conversation_ended", reply
            d3.stop()
        finally:
            d3.kill()
    return run


def test_rest_continues_after_sigterm():
    with_data_dir(rest_across(lambda d: d.stop()))


def test_rest_continues_after_kill_9():
    with_data_dir(rest_across(killed))


def ws_messages(ws, n):
    """The next n message frames (user echoes and bot replies)."""
    out = []
    while len(out) < n:
        f = ws.recv()
        if f["type"] == "message":
            out.append(f)
    return out


def ws_across(stop):
    def run(data_dir):
        d = daemon(data_dir)
        try:
            ws = WebSocket(d.port, "/v1/chat/ws", auth())
            ready = ws.until(lambda f: f["type"] == "ready")
            conv = ready["conversation"]
            seen = [ws.until(lambda f: f["type"] == "message" and f["from"] == "bot")]
            ws.send({"type": "message", "id": "m1", "text": "how are you"})
            seen.append(ws.until(lambda f: f["type"] == "message" and f["from"] == "user"))
            seen.append(ws.until(lambda f: f["type"] == "message" and f["from"] == "bot"))
            status, before = transcript(d, conv)
            assert status == 200 and before["last_seq"] == seen[-1]["seq"], (before, seen)
            ws.close()
            stop(d)
        finally:
            d.kill()
        d2 = daemon(data_dir)
        try:
            # resume from before the user's message: the rest comes again, same seqs
            last = seen[0]["seq"]
            ws = WebSocket(d2.port, "/v1/chat/ws?conversation=%s&last_seq=%d" % (conv, last),
                           auth())
            ready = ws.until(lambda f: f["type"] == "ready")
            assert ready["resumed"] is True and ready["conversation"] == conv, ready
            assert ready["last_seq"] == before["last_seq"], (ready, before)
            replay = ws_messages(ws, before["last_seq"] - last)
            want = [(m["seq"], m["from"], m["text"]) for m in before["messages"] if m["seq"] > last]
            assert [(m["seq"], m["from"], m["text"]) for m in replay] == want, (replay, want)
            ws.send({"type": "message", "id": "m2", "text": "how are you"})
            echo, bot = ws_messages(ws, 2)
            assert echo["from"] == "user" and echo["seq"] == before["last_seq"] + 1, echo
            assert bot["from"] == "bot" and bot["seq"] == before["last_seq"] + 2, bot
            ws.close()
            # resume with nothing missed: the next frame is the next message's echo
            ws = WebSocket(d2.port, "/v1/chat/ws?conversation=%s&last_seq=%d"
                           % (conv, bot["seq"]), auth())
            ready = ws.until(lambda f: f["type"] == "ready")
            assert ready["last_seq"] >= bot["seq"], ready
            ws.send({"type": "message", "id": "m3", "text": "how are you"})
            nxt = ws_messages(ws, 1)[0]
            assert nxt["from"] == "user" and nxt["seq"] == ready["last_seq"] + 1, nxt
            ws.close()
            d2.stop()
        finally:
            d2.kill()
    return run


def test_websocket_resumes_after_sigterm():
    with_data_dir(ws_across(lambda d: d.stop()))


def test_websocket_resumes_after_kill_9():
    with_data_dir(ws_across(killed))


def test_websocket_frames_sent_before_ready_wait_for_the_restore():
    def run(data_dir):
        d = daemon(data_dir)
        try:
            conv = start(d)
            status, before = transcript(d, conv)
            d.stop()
        finally:
            d.kill()
        d2 = daemon(data_dir)
        try:
            ws = WebSocket(d2.port, "/v1/chat/ws?conversation=%s&last_seq=%d"
                           % (conv, before["last_seq"]), auth())
            ws.send({"type": "message", "id": "early", "text": "how are you"})  # before "ready"
            ready = ws.until(lambda f: f["type"] == "ready")
            assert ready["last_seq"] == before["last_seq"], (ready, before)
            echo = ws_messages(ws, 1)[0]
            assert echo["text"] == "how are you" and echo["seq"] == before["last_seq"] + 1, echo
            ws.close()
            d2.stop()
        finally:
            d2.kill()
    with_data_dir(run)


def test_double_text_keeps_its_numbering_across_a_restart():
    """Two messages sent without waiting: the log holds each turn's input
    then its replies (the store's order), so a rebuilt log numbers alike."""
    def run(data_dir):
        d = daemon(data_dir)
        try:
            ws = WebSocket(d.port, "/v1/chat/ws", auth())
            conv = ws.until(lambda f: f["type"] == "ready")["conversation"]
            ws.until(lambda f: f["type"] == "message" and f["from"] == "bot")
            ws.send({"type": "message", "id": "a", "text": "how are you"})
            ws.send({"type": "message", "id": "b", "text": "thanks"})
            live = ws_messages(ws, 2)
            while sum(1 for m in live if m["from"] == "user") < 2 or live[-1]["from"] != "bot":
                live += ws_messages(ws, 1)
            assert [m["from"] for m in live][:2] == ["user", "bot"], live
            assert [m["text"] for m in live if m["from"] == "user"] == ["how are you", "thanks"]
            ws.close()
            status, before = transcript(d, conv)
            d.stop()
        finally:
            d.kill()
        d2 = daemon(data_dir)
        try:
            ws = WebSocket(d2.port, "/v1/chat/ws?conversation=%s&last_seq=0" % conv, auth())
            ready = ws.until(lambda f: f["type"] == "ready")
            assert ready["last_seq"] == before["last_seq"], (ready, before)
            replay = ws_messages(ws, before["last_seq"])
            assert [(m["seq"], m["from"], m["text"]) for m in replay] == \
                [(m["seq"], m["from"], m["text"]) for m in before["messages"]], (replay, before)
            ws.close()
            d2.stop()
        finally:
            d2.kill()
    with_data_dir(run)


@contextlib.contextmanager
def running(data_dir, env=None):
    """A daemon on data_dir; stopped cleanly at the end unless the test
    killed it (and killed if the test failed)."""
    d = daemon(data_dir, env=env)
    try:
        yield d
        if d.proc.poll() is None:
            d.stop()
    finally:
        d.kill()


def test_a_message_lost_in_a_crash_is_sent_again_and_numbered_once():
    """The user's entry (the echo that tells the client the server has its
    message) goes out only once the turn is recorded: a daemon killed while
    the turn waits on a slow backend never numbered it, so after the restart
    the client, which never saw the echo, sends it again with the same id, it
    runs once, and every seq means the same entry to the client, the live log
    and the log rebuilt from the store."""
    def run(data_dir):
        be = Backend(slow_ms=1500)
        env = {"CHORUS_BACKEND_URL": be.url}
        try:
            with running(data_dir, env) as d:
                ws = WebSocket(d.port, "/v1/chat/ws", auth())
                conv = ws.until(lambda f: f["type"] == "ready")["conversation"]
                ws.until(lambda f: f["type"] == "message" and f["from"] == "bot")
                ws.send({"type": "message", "id": "m1", "text": "booking status"})
                echo, prompt = ws_messages(ws, 2)
                assert (echo["from"], echo["id"], prompt["from"]) == ("user", "m1", "bot"), \
                    (echo, prompt)
                assert "booking reference" in prompt["text"], prompt
                shown = prompt["seq"]
                ws.send({"type": "message", "id": "m2", "text": "SLOW01"})
                be.wait_request("/bookings/SLOW01")  # the turn waits on the backend
                ws.s.settimeout(0.3)
                early = []
                try:
                    while True:
                        early.append(ws.recv())
                except OSError:  # the timeout: nothing more came
                    pass
                assert not [f for f in early if f.get("seq")], early  # typing only
                killed(d)
            with running(data_dir, env) as d:
                ws = WebSocket(d.port, "/v1/chat/ws?conversation=%s&last_seq=%d" % (conv, shown),
                               auth())
                ready = ws.until(lambda f: f["type"] == "ready")
                assert ready["last_seq"] == shown, (ready, shown)  # nothing was numbered
                # the client sends again what it never saw echoed, with its id
                ws.send({"type": "message", "id": "m2", "text": "SLOW01"})
                echo, reply = ws_messages(ws, 2)
                assert (echo["seq"], echo["id"], echo["text"]) == (shown + 1, "m2", "SLOW01"), echo
                assert reply["seq"] == shown + 2 and "SLOW01" in reply["text"], reply
                status, live = transcript(d, conv)
                assert status == 200 and [m["seq"] for m in live["messages"]] == \
                    list(range(live["first_seq"], shown + 3)), live
                users = [m["text"] for m in live["messages"] if m.get("from") == "user"]
                assert users.count("SLOW01") == 1, users
                ws.close()
            # and the log rebuilt from the store numbers every entry alike
            with running(data_dir, env) as d:
                status, rebuilt = transcript(d, conv)
                check_same(live, rebuilt)
        finally:
            be.close()
    with_data_dir(run)


def test_a_message_sent_again_after_a_restart_runs_once():
    """The store keeps a WebSocket message's id with its turn: after a
    restart the replayed echo carries it, and a client that never saw that
    echo and sends the message again gets the duplicate's ack, not a second
    turn; another message under the same id is refused, as before a
    restart."""
    def run(data_dir):
        with running(data_dir) as d:
            ws = WebSocket(d.port, "/v1/chat/ws", auth())
            conv = ws.until(lambda f: f["type"] == "ready")["conversation"]
            ws.until(lambda f: f["type"] == "message" and f["from"] == "bot")
            ws.send({"type": "message", "id": "once-1", "text": "how are you"})
            echo, reply = ws_messages(ws, 2)
            assert echo["id"] == "once-1" and reply["from"] == "bot", (echo, reply)
            ws.close()
        with running(data_dir) as d:
            # the client lost the echo with its connection: it resumes from
            # before it, and sends the message again with its id
            ws = WebSocket(d.port, "/v1/chat/ws?conversation=%s&last_seq=%d"
                           % (conv, echo["seq"] - 1), auth())
            ready = ws.until(lambda f: f["type"] == "ready")
            assert ready["last_seq"] == reply["seq"], ready
            replayed = ws_messages(ws, 2)
            assert (replayed[0]["seq"], replayed[0].get("id")) == (echo["seq"], "once-1"), replayed
            ws.send({"type": "message", "id": "once-1", "text": "booking status"})
            err = ws.until(lambda f: f["type"] == "error")
            assert (err["code"], err.get("id")) == ("id_reused", "once-1"), err
            ws.send({"type": "message", "id": "once-1", "text": "how are you"})
            ack = ws.until(lambda f: f["type"] == "ack")
            assert (ack["id"], ack["seq"], ack["duplicate"]) == ("once-1", echo["seq"], True), ack
            ws.close()
            status, t = transcript(d, conv)
            users = [m for m in t["messages"] if m.get("from") == "user"]
            assert [m.get("id") for m in users] == ["once-1"], t
            assert t["last_seq"] == reply["seq"], t
    with_data_dir(run)


def test_a_rest_retry_after_a_restart_gets_the_answer_not_a_second_turn():
    """A REST message's Idempotency-Key is stored with its turn: a gateway
    that retries after the daemon restarted (its connection died with the
    daemon, before the answer) gets the turn's answer, rebuilt from the
    store, marked replayed, and no second turn. The key used for another
    text is refused with 422, as before a restart, except where the store
    keeps the text redacted and cannot tell."""
    def run(data_dir):
        key = {"Idempotency-Key": "6f1c0a52-retry-after-restart"}
        card = {"Idempotency-Key": "6f1c0a52-card"}
        body = json.dumps({"text": "booking status"}).encode()
        card_body = json.dumps({"text": "my card is 4111 1111 1111 1111"}).encode()
        with running(data_dir) as d:
            conv = start(d)
            path = "/v1/chat/conversations/%s/messages" % conv
            status, _, first = d.request("POST", path, body, dict(auth(), **JSON, **key))
            assert status == 200, first
            first = json.loads(first)
            assert "booking reference" in first["messages"][0]["text"], first
            status, _, card_first = d.request("POST", path, card_body, dict(auth(), **JSON, **card))
            assert status == 200, card_first
            for text in ("hello", "thanks"):  # messages without a key after it
                status, _, answer = d.request("POST", path, json.dumps({"text": text}).encode(),
                                              dict(auth(), **JSON))
                assert status == 200, answer
        with running(data_dir) as d:
            status, _, e = d.request("POST", path, b'{"text": "refund status"}',
                                     dict(auth(), **JSON, **key))
            assert status == 422 and json.loads(e)["error"]["code"] == "idempotency_key_reused", \
                (status, e)
            status, headers, again = d.request("POST", path, card_body, dict(auth(), **JSON, **card))
            hdrs = {k.lower(): v for k, v in headers.items()}
            assert status == 200 and hdrs.get("idempotent-replayed") == "true", (status, again)
            assert json.loads(again)["messages"] == json.loads(card_first)["messages"], again
            for attempt in range(2):  # from the store, then from the cache it refilled
                status, headers, again = d.request("POST", path, body, dict(auth(), **JSON, **key))
                hdrs = {k.lower(): v for k, v in headers.items()}
                assert status == 200 and hdrs.get("idempotent-replayed") == "true", (status, again)
                again = json.loads(again)
                assert again["messages"] == first["messages"], (first, again)
            d.wait_log(event="chat_retry_answered_from_store", conversation=conv)
            status, t = transcript(d, conv)
            users = [m for m in t["messages"] if m.get("from") == "user"]
            assert [(m["text"], m.get("id")) for m in users] == \
                [("booking status", key["Idempotency-Key"]),
                 ("my card is [CARD]", card["Idempotency-Key"]), ("hello", None),
                 ("thanks", None)], t
            # a new key is a new message
            status, _, other = d.request("POST", path, b'{"text": "ABC123"}',
                                         dict(auth(), **JSON, **{"Idempotency-Key": "k-2"}))
            assert status == 200, other
            status, t = transcript(d, conv)
            assert [m.get("id") for m in t["messages"] if m.get("from") == "user"] == \
                [key["Idempotency-Key"], card["Idempotency-Key"], None, None, "k-2"], t
    with_data_dir(run)


def test_unknown_ids_are_404_with_a_store():
    def run(data_dir):
        d = daemon(data_dir)
        try:
            start(d)  # the store is not empty
            for conv in (NEVER, "not-an-id"):
                status, t = transcript(d, conv)
                assert status == 404 and t["error"]["code"] == "conversation_not_found", t
                status, r = say(d, conv, "hello")
                assert status == 404 and r["error"]["code"] == "conversation_not_found", r
            ws = WebSocket(d.port, "/v1/chat/ws?conversation=%s" % NEVER, auth())
            f = ws.recv()
            assert f["type"] == "error" and f["code"] == "conversation_not_found", f
            ws.close()
            d.stop()
        finally:
            d.kill()
    with_data_dir(run)


def test_ownership_survives_a_restart():
    """Whose a conversation is goes to the store with its start: read back
    after a restart, a gateway's conversation is still 404 to another
    gateway (GET, POST, WebSocket resume) and to the widget, a widget's is
    404 to gateways, and their owners carry on."""
    other = "restore-other-key-2"
    page = {"Origin": "https://shop.example"}
    cfg = {"api_keys": "main:%s,other:%s" % (sha(KEY), sha(other)),
           "allowed_origins": page["Origin"]}

    def refused_ws(d, conv, headers):
        ws = WebSocket(d.port, "/v1/chat/ws?conversation=%s&last_seq=0" % conv, headers)
        f = ws.recv()
        assert f["type"] == "error" and f["code"] == "conversation_not_found", f
        ws.close()

    def run(data_dir):
        d = daemon(data_dir, **cfg)
        try:
            conv = start(d)
            assert say(d, conv, "how are you")[0] == 200
            ws = WebSocket(d.port, "/v1/chat/ws", page)
            web = ws.until(lambda f: f["type"] == "ready")["conversation"]
            ws.until(lambda f: f.get("from") == "bot")
            ws.close()
            d.stop()
        finally:
            d.kill()
        d2 = daemon(data_dir, **cfg)
        try:
            # the first request of each reads it back from the store
            status, _, body = d2.request("GET", "/v1/chat/conversations/" + conv, None, auth(other))
            assert status == 404 and json.loads(body)["error"]["code"] == "conversation_not_found", body
            d2.wait_log(event="chat_conversation_restored", conversation=conv)
            refused_ws(d2, web, auth())
            d2.wait_log(event="chat_conversation_restored", conversation=web)
            status, _, body = d2.request("POST", "/v1/chat/conversations/%s/messages" % conv,
                                         {"text": "hello"}, auth(other))
            assert status == 404 and json.loads(body)["error"]["code"] == "conversation_not_found", body
            refused_ws(d2, conv, auth(other))
            refused_ws(d2, conv, page)
            # their owners carry on
            status, reply = say(d2, conv, "how are you")
            assert status == 200, reply
            ws = WebSocket(d2.port, "/v1/chat/ws?conversation=%s&last_seq=0" % web, page)
            ready = ws.recv()
            assert ready["type"] == "ready" and ready["channel"] == "web", ready
            ws.close()
            d2.stop()
        finally:
            d2.kill()
    with_data_dir(run)


def test_evicted_conversation_comes_back_from_the_store():
    def run(data_dir):
        d = daemon(data_dir, max_conversations=2)
        try:
            first = start(d)
            status, reply = say(d, first, "how are you")
            assert status == 200, reply
            status, before = transcript(d, first)
            for _ in range(3):  # pushes the first out of the adapter's table
                start(d)
            status, after = transcript(d, first)
            assert status == 200, after
            check_same(before, after)
            # it was evicted and read back (the stderr reader may lag the reply)
            d.wait_log(event="chat_conversation_restored", conversation=first)
            status, reply = say(d, first, "how are you")
            assert status == 200 and reply["messages"][0]["seq"] == before["last_seq"] + 2, reply
            d.stop()
        finally:
            d.kill()
    with_data_dir(run)


def metric(d, name):
    status, _, body = d.request("GET", "/metrics")  # open on loopback
    assert status == 200, body
    m = re.search(r"^%s (\S+)$" % re.escape(name), body.decode(), re.M)
    assert m, name
    return float(m.group(1))


def test_history_bytes_forgets_idle_conversations():
    """chat.history_bytes bounds the logs of all conversations together: past
    it, a turn's start forgets the least recently used idle ones, which come
    back from the store as they were."""
    limit = 1024 * 1024  # the least allowed
    words = ("the quick brown fox jumps over the lazy dog while the band plays "
             "a slow tune and everyone waits for the next train home ")
    text = (words * 20)[:1900]  # under the input length rail's 2000 bytes

    def run(data_dir):
        d = daemon(data_dir, history_bytes=limit)
        try:
            convs = []
            for _ in range(80):  # about 80 x 7 x 2 KB of user entries: 1.1 MiB
                conv = start(d)
                for _ in range(7):  # within the per-conversation rate rail's burst
                    status, reply = say(d, conv, text)
                    assert status == 200, reply
                convs.append(conv)
                if len(convs) == 1:
                    status, before = transcript(d, conv)
            held = metric(d, "chorus_chat_history_bytes")
            # the last turn's entries come after its start's check
            assert 0 < held <= limit + 2 * 8192, held
            assert metric(d, "chorus_chat_evictions_total") >= 1
            assert metric(d, "chorus_chat_conversations") < 80
            # the first went first; it comes back whole from the store
            status, after = transcript(d, convs[0])
            assert status == 200, after
            check_same(before, after)
            assert [m["text"] for m in after["messages"] if m.get("from") == "user"] == [text] * 7
            d.wait_log(event="chat_conversation_restored", conversation=convs[0])
            d.stop()
        finally:
            d.kill()
    with_data_dir(run)


def handed_off(d):
    """A conversation with a message that needs escaping, then a handoff."""
    conv = start(d)
    status, reply = say(d, conv, 'caf\u00e9 "quoted" \\ back\tslash')
    assert status == 200, reply
    escalate(d, conv)
    return conv


def check_body_bytes(d, conv):
    """GET's body is the fixed fields then the log's entries exactly as a
    socket resuming from 0 receives them; the handoff is its entry without
    "type". Returns the parsed body."""
    status, _, body = d.request("GET", "/v1/chat/conversations/%s" % conv, None, auth())
    assert status == 200, body
    t = json.loads(body)
    ws = WebSocket(d.port, "/v1/chat/ws?conversation=%s&last_seq=0" % conv, auth())
    ready = json.loads(ws.recv_raw())
    assert ready["type"] == "ready" and ready["last_seq"] == t["last_seq"], (ready, t)
    frames = [ws.recv_raw() for _ in range(ready["last_seq"])]
    ws.close()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", t["created"]), t
    head = ('{"conversation":"%s","channel":"chat","status":"%s","created":"%s",'
            '"first_seq":1,"last_seq":%d,"messages":[' % (conv, t["status"], t["created"],
                                                          t["last_seq"])).encode()
    handoff = b""
    hand = [f for f in frames if f.startswith(b'{"type":"handoff",')]
    if t["status"] == "handoff":
        handoff = b',"handoff":{' + hand[-1][len(b'{"type":"handoff",'):]
    assert body == head + b",".join(frames) + b"]" + handoff + b"}", (body, frames)
    assert "caf\u00e9 \"quoted\" \\ back\tslash".encode() not in body  # escaped, not raw
    assert 'caf\u00e9 \\"quoted\\" \\\\ back\\tslash'.encode() in body, body
    status, _, tail = d.request("GET", "/v1/chat/conversations/%s?after=2" % conv, None, auth())
    assert tail == head + b",".join(frames[2:]) + b"]" + handoff + b"}", tail
    return t


def test_transcript_body_is_the_log_as_sent():
    def run(data_dir):
        d = daemon(data_dir)
        try:
            conv = handed_off(d)
            before = check_body_bytes(d, conv)
            assert before["status"] == "handoff" and before["handoff"]["queue"], before
            d.stop()
        finally:
            d.kill()
        d2 = daemon(data_dir)
        try:
            status, after = transcript(d2, conv)  # read back from the store
            assert status == 200, after
            check_same(before, after)
            hands = [(m["seq"], m["queue"], m["reason"]) for m in after["messages"]
                     if m["type"] == "handoff"]
            assert hands and hands == [(m["seq"], m["queue"], m["reason"])
                                       for m in before["messages"] if m["type"] == "handoff"]
            for k in ("queue", "reason", "seq"):
                assert after["handoff"][k] == before["handoff"][k], (before, after)
            assert after["handoff"]["summary"] == {}, after  # not stored
            check_body_bytes(d2, conv)
            d2.stop()
        finally:
            d2.kill()
    with_data_dir(run)


AGENT_TOKEN = "agent-ann-restore-3e1b"
ANN = {"Authorization": "Bearer " + AGENT_TOKEN}
WAIT = "You are number {position} in the queue."


def desk_daemon(data_dir, **chat):
    """A daemon with the human desk: an agent token, and a queue whose wait
    message the desk says on the customer's transcript."""
    queues = os.path.join(data_dir, "queues.json")
    with open(queues, "w") as f:
        json.dump({"queues": [{"name": "bookings", "wait_message": WAIT}]}, f)
    cfg = {"chat": dict({"api_keys": "main:" + sha(KEY)}, **chat),
           "admin": {"tokens": "ann:agent:" + sha(AGENT_TOKEN)},
           "agents": {"queues_file": queues}}
    d = Daemon(config=cfg, args=["--flows", FLOWS])
    d.data_dir = data_dir
    d.start()
    d.wait_log(event="flows_loaded", timeout=60)
    return d


def open_handoff(d, conv):
    """The id of conv's waiting or claimed handoff."""
    st, q = d.json("GET", "/v1/agent/queues", headers=ANN)
    assert st == 200, (st, q)
    ids = [h["id"] for queue in q["queues"] for h in queue["conversations"]
           if h["key"] == "chat:" + conv]
    assert len(ids) == 1, q
    return ids[0]


def desk(d, hid, what, body=None):
    st, r = d.json("POST", "/v1/agent/conversations/%s/%s" % (hid, what), body or {}, ANN)
    assert st == 200, (what, st, r)
    return r


def test_desk_messages_keep_their_seqs_across_restarts():
    """A person's words and the desk's notices are entries of the live log
    like the bot's: a restart (and an eviction) gives each the seq it had,
    among the turns around it -- the wait message the desk says while the
    handoff turn completes comes before that turn's entries -- so a client
    resuming from the last seq it saw misses nothing that comes after, and
    what the customer and the agent say next is numbered on from there, as
    it was live. Also after a release to the bot and a second handoff,
    whose history replaces the first one's on the desk."""
    def restarted(data_dir, conv, before, **chat):
        d = desk_daemon(data_dir, **chat)
        try:
            d.wait_log(event="handoffs_restored", timeout=20)
            status, after = transcript(d, conv)
            assert status == 200, after
            check_same(before, after)
        except BaseException:
            d.kill()
            raise
        return d

    def run(data_dir):
        d = desk_daemon(data_dir)
        try:
            conv = start(d)
            escalate(d, conv)
            status, before = transcript(d, conv)
            kinds = [(m["type"], m.get("from")) for m in before["messages"]]
            assert kinds[-4:] == [("message", "system"), ("message", "user"),
                                  ("message", "bot"), ("handoff", None)], before
            assert before["messages"][-4]["text"] == WAIT.format(position=1), before
            d.stop()
        finally:
            d.kill()
        d = restarted(data_dir, conv, before)
        try:
            hid = open_handoff(d, conv)
            status, reply = say(d, conv, "are you there?")
            assert status == 200 and reply["messages"] == [], reply
            desk(d, hid, "claim")
            desk(d, hid, "messages", {"text": "Hi, Ann here."})
            status, reply = say(d, conv, "I need to change my flight")
            assert status == 200 and reply["status"] == "handoff", reply
            desk(d, hid, "messages", {"text": "Sure, one moment."})
            status, before = transcript(d, conv)
            last = before["last_seq"]
            assert [(m["from"], m.get("agent"), m["text"]) for m in before["messages"][-4:]] == [
                ("user", None, "are you there?"), ("agent", "ann", "Hi, Ann here."),
                ("user", None, "I need to change my flight"),
                ("agent", "ann", "Sure, one moment.")], before
            d.stop()
        finally:
            d.kill()
        d = restarted(data_dir, conv, before)
        try:
            # the client resumes from the last entry it saw: what comes next
            # reaches it with the next seqs, as it would have live
            ws = WebSocket(d.port, "/v1/chat/ws?conversation=%s&last_seq=%d" % (conv, last),
                           auth())
            ws.s.settimeout(5)
            ready = ws.until(lambda f: f["type"] == "ready")
            assert ready["last_seq"] == last and ready["status"] == "handoff", ready
            status, reply = say(d, conv, "hello again")
            assert status == 200 and reply["messages"] == [], reply
            hid = open_handoff(d, conv)
            desk(d, hid, "messages", {"text": "Ann again: still there?"})
            got = ws_messages(ws, 2)
            assert [(m["seq"], m["from"], m["text"]) for m in got] == [
                (last + 1, "user", "hello again"),
                (last + 2, "agent", "Ann again: still there?")], got
            ws.close()
            # back to the bot, and a second handoff: the desk says the wait
            # message again and forgets the first handoff's messages
            desk(d, hid, "release", {"flow": "welcome", "node": "greet"})
            status, reply = say(d, conv, "Talk to a human")
            assert status == 200 and reply["status"] == "handoff", reply
            hid2 = open_handoff(d, conv)
            assert hid2 != hid
            desk(d, hid2, "claim")
            desk(d, hid2, "messages", {"text": "Ann once more."})
            status, before = transcript(d, conv)
            assert [m["text"] for m in before["messages"] if m.get("from") == "system"] == \
                [WAIT.format(position=1)] * 2, before
            assert len([m for m in before["messages"] if m.get("from") == "agent"]) == 4, before
            d.stop()
        finally:
            d.kill()
        # after a restart, then after an eviction (the same rebuild)
        d = restarted(data_dir, conv, before, max_conversations=2)
        try:
            for _ in range(3):
                start(d)
            status, after = transcript(d, conv)
            assert status == 200, after
            check_same(before, after)
            deadline = time.monotonic() + 10  # the stderr reader may lag the reply
            while len(d.log_lines(event="chat_conversation_restored", conversation=conv)) < 2:
                assert time.monotonic() < deadline, d.stderr_text()
                time.sleep(0.02)
            status, reply = say(d, conv, "thanks")
            assert status == 200 and reply["messages"] == [], reply
            desk(d, hid2, "messages", {"text": "You're welcome."})
            status, t = transcript(d, conv)
            assert entries(t)[:len(entries(before))] == entries(before), t
            assert [(m["seq"], m["from"], m["text"]) for m in t["messages"][-2:]] == [
                (before["last_seq"] + 1, "user", "thanks"),
                (before["last_seq"] + 2, "agent", "You're welcome.")], t
            d.stop()
        finally:
            d.kill()
    with_data_dir(run)


def test_a_conversation_closed_by_an_agent_stays_ended():
    """An agent closes a handed-off conversation: live, the log ends with an
    end entry and a message gets 409 conversation_ended. After a restart,
    and after an eviction, the rebuilt log is the same (status ended, the
    end entry with its seq), a message still gets 409 over REST and over
    the WebSocket, no turn runs, and the stored outcome stays escalated."""
    def ended_here(d, conv, last):
        status, reply = say(d, conv, "hello?")
        assert status == 409 and reply["error"]["code"] == "conversation_ended", reply
        ws = WebSocket(d.port, "/v1/chat/ws?conversation=%s&last_seq=%d" % (conv, last), auth())
        ws.s.settimeout(5)
        ready = ws.until(lambda f: f["type"] == "ready")
        assert ready["status"] == "ended" and ready["last_seq"] == last, ready
        ws.send({"type": "message", "id": "late", "text": "hello?"})
        e = ws.until(lambda f: f["type"] in ("error", "message"))
        assert e["type"] == "error" and e["code"] == "conversation_ended", e
        ws.close()

    def stored(data_dir, conv):
        """The store's conversations of conv's key with their outcomes, and
        how many rows its transcript has."""
        db = sqlite3.connect(os.path.join(data_dir, "chorus.db"))
        try:
            rows = db.execute("SELECT id, outcome FROM conversations WHERE id LIKE ?"
                              " ORDER BY id", ("chat:%s%%" % conv,)).fetchall()
            n = db.execute("SELECT count(*) FROM turns WHERE conversation_id LIKE ?",
                           ("chat:%s%%" % conv,)).fetchone()[0]
            return rows, n
        finally:
            db.close()

    def run(data_dir):
        d = desk_daemon(data_dir)
        try:
            conv = start(d)
            escalate(d, conv)
            hid = open_handoff(d, conv)
            desk(d, hid, "claim")
            desk(d, hid, "messages", {"text": "All sorted, goodbye."})
            desk(d, hid, "close", {"disposition": "resolved"})
            deadline = time.monotonic() + 10  # the close is a turn of its own
            while transcript(d, conv)[1]["status"] != "ended":
                assert time.monotonic() < deadline, transcript(d, conv)
                time.sleep(0.02)
            status, before = transcript(d, conv)
            last = before["last_seq"]
            assert [(m["type"], m.get("from"), m.get("reason")) for m in before["messages"][-2:]] \
                == [("message", "agent", None), ("end", None, "end")], before
            ended_here(d, conv, last)
            d.stop()
        finally:
            d.kill()
        closed = stored(data_dir, conv)
        assert closed[0] == [("chat:" + conv, "escalated")], closed
        d = desk_daemon(data_dir, max_conversations=2)
        try:
            status, after = transcript(d, conv)
            assert status == 200, after
            check_same(before, after)
            ended_here(d, conv, last)
            for _ in range(3):  # evicted, then read back again
                start(d)
            status, after = transcript(d, conv)
            check_same(before, after)
            deadline = time.monotonic() + 10  # the stderr reader may lag the reply
            while len(d.log_lines(event="chat_conversation_restored", conversation=conv)) < 2:
                assert time.monotonic() < deadline, d.stderr_text()
                time.sleep(0.02)
            ended_here(d, conv, last)
            d.stop()
        finally:
            d.kill()
        assert stored(data_dir, conv) == closed  # no turn ran, no second session began
    with_data_dir(run)


def test_a_conversation_released_to_the_bot_comes_back_active():
    """A person hands a conversation back to the bot: it is active again,
    live and after a restart or an eviction (REST GET and POST, the
    WebSocket's ready frame), although the store still counts it escalated
    -- the release, not the outcome, says who has it. A second handoff
    after that is again reported as one, across a restart too."""
    def status_everywhere(d, conv, want):
        status, t = transcript(d, conv)
        assert status == 200 and t["status"] == want, t
        assert want != "handoff" or t["handoff"]["queue"], t
        ws = WebSocket(d.port, "/v1/chat/ws?conversation=%s&last_seq=%d"
                       % (conv, t["last_seq"]), auth())
        ws.s.settimeout(5)
        ready = ws.until(lambda f: f["type"] == "ready")
        assert ready["status"] == want, ready
        ws.close()
        return t

    def run(data_dir):
        d = desk_daemon(data_dir)
        try:
            conv = start(d)
            escalate(d, conv)
            hid = open_handoff(d, conv)
            desk(d, hid, "claim")
            desk(d, hid, "release", {"flow": "welcome", "node": "greet"})
            deadline = time.monotonic() + 10  # the release is a turn of its own
            while transcript(d, conv)[1]["status"] != "active":
                assert time.monotonic() < deadline, transcript(d, conv)
                time.sleep(0.02)
            before = status_everywhere(d, conv, "active")
            d.stop()
        finally:
            d.kill()
        d = desk_daemon(data_dir, max_conversations=2)
        try:
            after = status_everywhere(d, conv, "active")
            check_same(before, after)
            for _ in range(3):  # evicted, then read back again
                start(d)
            check_same(before, status_everywhere(d, conv, "active"))
            status, reply = say(d, conv, "how are you")
            assert status == 200 and reply["status"] == "active" and reply["messages"], reply
            escalate(d, conv)
            before = status_everywhere(d, conv, "handoff")
            d.stop()
        finally:
            d.kill()
        d = desk_daemon(data_dir)
        try:
            check_same(before, status_everywhere(d, conv, "handoff"))
            d.stop()
        finally:
            d.kill()
    with_data_dir(run)


def test_followed_conversations_are_never_evicted():
    """Room for 4: two conversations followed by sockets stay in the table
    while a dozen new ones come and go (they are never read back, and a
    REST turn on each is pushed to its socket: a copy read back from the
    store would have no followers). The idle ones are evicted, least
    recently used first, and so is a followed one once its socket closes."""
    def run(data_dir):
        d = daemon(data_dir, max_conversations=4)
        try:
            socks = []
            for _ in range(2):
                ws = WebSocket(d.port, "/v1/chat/ws", auth())
                ws.s.settimeout(5)  # a push that never comes fails the test soon
                conv = ws.until(lambda f: f["type"] == "ready")["conversation"]
                ws.until(lambda f: f["type"] == "message" and f["from"] == "bot")
                socks.append((ws, conv))
            idle = [start(d) for _ in range(12)]
            for ws, conv in socks:
                status, t = transcript(d, conv)
                assert status == 200, t
                status, reply = say(d, conv, "how are you")
                assert status == 200, reply
                echo = ws.until(lambda f: f["type"] == "message" and f["from"] == "user")
                assert echo["text"] == "how are you" and echo["seq"] == t["last_seq"] + 1, echo
                bot = ws.until(lambda f: f["type"] == "message" and f["from"] == "bot")
                assert bot["seq"] == reply["messages"][0]["seq"], (bot, reply)
            assert not [f for f in d.log_lines(event="chat_conversation_restored")
                        if f.get("conversation") in (socks[0][1], socks[1][1])], d.stderr_text()
            # the newest idle one is still held, the oldest was evicted
            status, t = transcript(d, idle[-1])
            assert status == 200, t
            status, t = transcript(d, idle[0])
            assert status == 200 and t["last_seq"] >= 1, t
            d.wait_log(event="chat_conversation_restored", conversation=idle[0])
            assert not d.log_lines(event="chat_conversation_restored", conversation=idle[-1])
            # a closed socket's conversation is idle again, the most recently
            # used: it goes after the three idle ones ahead of it
            ws, conv = socks.pop(0)
            ws.close()
            d.wait_log(event="ws_closed")  # logged as the adapter lets go of it
            for _ in range(3):
                start(d)
            assert not d.log_lines(event="chat_conversation_restored", conversation=conv)
            start(d)
            status, t = transcript(d, conv)
            assert status == 200, t
            d.wait_log(event="chat_conversation_restored", conversation=conv)
            ws, conv = socks[0]  # the other is still followed and still pushed to
            status, reply = say(d, conv, "how are you")
            assert status == 200, reply
            ws.until(lambda f: f["type"] == "message" and f["from"] == "user")
            assert not d.log_lines(event="chat_conversation_restored", conversation=conv)
            ws.close()
            d.stop()
        finally:
            d.kill()
    with_data_dir(run)


if __name__ == "__main__":
    run_tests(globals())
