"""The human desk through the real chorusd: a chat customer escalates, the
handoff enters its queue, an agent claims it, they talk, the agent releases
it to the bot (which continues) or closes it; every refusal (claim twice,
message after close, unknown node, unknown handoff, wrong role); and the
signed webhook delivered exactly once to a receiver that is down at first."""
import base64
import contextlib
import hashlib
import hmac
import http.server
import shutil
import json
import os
import signal
import socket
import sqlite3
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, run_tests  # noqa: E402

SRC = os.environ.get("CHORUS_SOURCE_DIR", ".")
GW_KEY = "gw-agents-test-77a1"
AGENT_TOKEN = "agent-ann-token-5c2d"
AGENT2_TOKEN = "agent-bob-token-81fe"
VIEWER_TOKEN = "viewer-token-0b3a"
SUPERVISOR_TOKEN = "admin-sue-token-6a90"
SECRET = "whsec-test-4f1e9a"


def sha(s):
    return hashlib.sha256(s.encode()).hexdigest()


def bearer(t):
    return {"Authorization": "Bearer " + t}


ANN, BOB, SUE = bearer(AGENT_TOKEN), bearer(AGENT2_TOKEN), bearer(SUPERVISOR_TOKEN)


def daemon(tmp_queues=None, webhook=None, data_dir=None):
    cfg = {"chat": {"api_keys": "main:" + sha(GW_KEY)},
           "admin": {"tokens": "ann:agent:%s,bob:agent:%s,view:viewer:%s,sue:admin:%s"
                     % (sha(AGENT_TOKEN), sha(AGENT2_TOKEN), sha(VIEWER_TOKEN),
                        sha(SUPERVISOR_TOKEN))},
           "agents": {}}
    if tmp_queues:
        cfg["agents"]["queues_file"] = tmp_queues
    if webhook:
        cfg["agents"].update({"webhook_url": webhook, "webhook_backoff_ms": 100,
                              "webhook_max_attempts": 20})
    d = Daemon(config=cfg, args=["--flows", os.path.join(SRC, "flows")],
               env={"CHORUS_AGENTS_WEBHOOK_SECRET": SECRET})
    if data_dir:
        d.data_dir = data_dir  # outlives the daemon's own temporary directory
    return d


@contextlib.contextmanager
def queues_file(doc):
    """doc as a queues file in a temporary directory of its own."""
    tmp = tempfile.mkdtemp(prefix="chorus-queues-")
    path = os.path.join(tmp, "queues.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    try:
        yield path
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def wait_for(fn, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def audit_actions(d):
    db = sqlite3.connect(os.path.join(d.data_dir, "chorus.db"))
    try:
        return db.execute("SELECT actor, action FROM audit WHERE action LIKE 'agent.%'"
                          " ORDER BY id").fetchall()
    finally:
        db.close()


def start(d):
    st, r = d.json("POST", "/v1/chat/conversations", b"", bearer(GW_KEY))
    assert st == 201, (st, r)
    return r["conversation"]


def say(d, conv, text):
    st, r = d.json("POST", "/v1/chat/conversations/%s/messages" % conv, {"text": text},
                   bearer(GW_KEY))
    assert st == 200, (st, r)
    return r


def escalate(d):
    d.wait_log(event="flows_loaded", timeout=60)
    conv = start(d)
    r = say(d, conv, "I want to talk to a human agent")
    if r["status"] != "handoff":
        r = say(d, conv, "it's about my booking")
    assert r["status"] == "handoff", r
    return conv


def handoff_of(d, conv):
    st, q = d.json("GET", "/v1/agent/queues", headers=ANN)
    assert st == 200, (st, q)
    for queue in q["queues"]:
        for h in queue["conversations"]:
            if h["key"] == "chat:" + conv:
                return queue, h
    raise AssertionError("conversation %s not in any queue: %s" % (conv, q))


def transcript(d, conv):
    st, t = d.json("GET", "/v1/chat/conversations/" + conv, headers=bearer(GW_KEY))
    assert st == 200, (st, t)
    return t["messages"]


def post(d, hid, what, body=None, who=ANN):
    return d.json("POST", "/v1/agent/conversations/%s/%s" % (hid, what),
                  body if body is not None else {}, who)


def test_claim_talk_release_and_the_bot_continues():
    with daemon() as d:
        conv = escalate(d)
        queue, h = handoff_of(d, conv)
        assert queue["name"] == "bookings" and h["state"] == "waiting", (queue, h)
        assert h["position"] == 1 and h["channel"] == "chat", h
        assert h["summary"]["slots"]["agent_topic"] == "booking", h

        # while waiting, the customer is recorded and the bot stays quiet
        r = say(d, conv, "are you there?")
        assert r["messages"] == [] and r["status"] == "handoff", r

        st, c = post(d, h["id"], "claim")
        assert st == 200 and c["state"] == "claimed" and c["agent"] == "ann", c
        assert [m["text"] for m in c["messages"] if m["from"] == "customer"] == \
            ["are you there?"], c
        st, e = post(d, h["id"], "claim", who=BOB)
        assert st == 409 and e["error"]["code"] == "conflict", (st, e)
        assert "ann" in e["error"]["message"], e

        st, c = post(d, h["id"], "messages", {"text": "Hi, Ann here. How can I help?"})
        assert st == 200, (st, c)
        agent_msgs = [m for m in transcript(d, conv) if m.get("from") == "agent"]
        assert agent_msgs and agent_msgs[-1]["text"] == "Hi, Ann here. How can I help?", \
            agent_msgs
        assert agent_msgs[-1]["agent"] == "ann"
        st, e = post(d, h["id"], "messages", {"text": "me too"}, who=BOB)
        assert st == 409, (st, e)
        r = say(d, conv, "I need to change my flight")
        assert r["messages"] == [], r
        st, c = d.json("GET", "/v1/agent/conversations/" + h["id"], headers=ANN)
        assert c["messages"][-1] == dict(c["messages"][-1], **{
            "from": "customer", "text": "I need to change my flight"}), c

        st, e = post(d, h["id"], "release", {"flow": "change_flight", "node": "no_such_node"})
        assert st == 400 and e["error"]["code"] == "unknown_node", (st, e)
        st, e = post(d, h["id"], "release", {"flow": "no_such_flow", "node": "start"})
        assert st == 400, (st, e)
        st, c = post(d, h["id"], "release", {"flow": "welcome", "node": "greet"})
        assert st == 200 and c["state"] == "released", (st, c)
        # the bot speaks again on the same conversation at that node
        n_before = len(transcript(d, conv))
        wait_for(lambda: [m for m in transcript(d, conv)[n_before - 1:]
                          if m.get("from") == "bot" and "How can I help" in m["text"]],
                 "the bot's greeting after the release")
        r = say(d, conv, "What is my baggage allowance")
        assert r["status"] == "active" and r["messages"], r
        # slots kept: asking for a person again skips the topic question
        r = say(d, conv, "Talk to a human")
        assert r["status"] == "handoff" and r["handoff"]["queue"] == "bookings", r
        queue, h2 = handoff_of(d, conv)
        assert queue["name"] == "bookings" and h2["id"] != h["id"], (queue, h2)
        assert h2["state"] == "waiting", h2
        st, old = d.json("GET", "/v1/agent/conversations/" + h["id"], headers=ANN)
        assert old["release_outcome"] == "escalated_again", old
        # the report counts both handoffs of the conversation, the first one
        # released and escalated again (it was replaced by the second)
        def both():
            st, k = d.json("GET", "/v1/admin/reports/kpis", headers=bearer(VIEWER_TOKEN))
            assert st == 200, (st, k)
            rows = k["agents"]["rows"]
            n = sum(r["handoffs"] for r in rows)
            again = sum(r["released_escalated_again"] for r in rows)
            return (n, again) if n == 2 and again == 1 else None
        wait_for(both, "both handoffs in the report")

        st, e = post(d, h["id"], "messages", {"text": "late"})
        assert st == 409, (st, e)


def test_close_and_refusals():
    with daemon() as d:
        conv = escalate(d)
        _, h = handoff_of(d, conv)
        st, e = d.json("GET", "/v1/agent/queues")
        assert st == 401, (st, e)
        st, e = d.json("GET", "/v1/agent/queues", headers=bearer(VIEWER_TOKEN))
        assert st == 403, (st, e)
        st, e = post(d, "0" * 32, "claim")
        assert st == 404 and e["error"]["code"] == "not_found", (st, e)
        st, e = post(d, h["id"], "messages", {"text": "too early"})
        assert st == 409, (st, e)
        st, e = post(d, h["id"], "release", {"flow": "speak_to_agent", "node": "ask_topic"})
        assert st == 409, (st, e)
        st, c = post(d, h["id"], "claim")
        assert st == 200
        st, e = post(d, h["id"], "close", {})
        assert st == 400, (st, e)
        st, c = post(d, h["id"], "close", {"disposition": "resolved"})
        assert st == 200 and c["state"] == "closed" and c["disposition"] == "resolved", c
        st, e = post(d, h["id"], "messages", {"text": "after close"})
        assert st == 409 and e["error"]["code"] == "conflict", (st, e)
        st, e = post(d, h["id"], "close", {"disposition": "resolved"})
        assert st == 409, (st, e)
        st, e = post(d, h["id"], "claim")
        assert st == 409, (st, e)
        # the conversation ends for the customer (the close runs as a turn of
        # the conversation, after the answer above); the queue no longer lists it
        def ended():
            st, t = d.json("GET", "/v1/chat/conversations/" + conv, headers=bearer(GW_KEY))
            return t["status"] == "ended" and t
        wait_for(ended, "the conversation to end for the customer")
        st, q = d.json("GET", "/v1/agent/queues", headers=ANN)
        assert all(x["id"] != h["id"] for qu in q["queues"] for x in qu["conversations"]), q
        # every agent action is in the audit trail, under the token's name
        rows = wait_for(lambda: len(audit_actions(d)) >= 2 and audit_actions(d), "audit rows")
        assert ("ann", "agent.claim") in rows and ("ann", "agent.close") in rows, rows


def test_only_the_claimer_releases_or_closes():
    """Another agent may not release or close a handoff someone claimed
    (409, as for its messages); an admin token may, audited under its own
    name with the claimer's, and the handoff still names the claimer."""
    with daemon() as d:
        conv = escalate(d)
        _, h = handoff_of(d, conv)
        assert post(d, h["id"], "claim")[0] == 200
        st, e = post(d, h["id"], "release", {"flow": "welcome", "node": "greet"}, who=BOB)
        assert st == 409 and e["error"]["code"] == "conflict", (st, e)
        assert "ann" in e["error"]["message"], e
        st, e = post(d, h["id"], "close", {"disposition": "resolved"}, who=BOB)
        assert st == 409 and e["error"]["code"] == "conflict", (st, e)
        st, c = d.json("GET", "/v1/agent/conversations/" + h["id"], headers=ANN)
        assert c["state"] == "claimed" and c["agent"] == "ann", c
        # a supervisor's admin token overrides: release one, close another
        st, c = post(d, h["id"], "release", {"flow": "welcome", "node": "greet"}, who=SUE)
        assert st == 200 and c["state"] == "released" and c["agent"] == "ann", (st, c)
        conv2 = escalate(d)
        _, h2 = handoff_of(d, conv2)
        assert post(d, h2["id"], "claim")[0] == 200
        st, c = post(d, h2["id"], "close", {"disposition": "resolved"}, who=SUE)
        assert st == 200 and c["state"] == "closed" and c["agent"] == "ann", (st, c)
        # a waiting handoff is anyone's to close
        conv3 = escalate(d)
        _, h3 = handoff_of(d, conv3)
        st, c = post(d, h3["id"], "close", {"disposition": "duplicate"}, who=BOB)
        assert st == 200 and c["agent"] == "bob", (st, c)

        def audited():
            db = sqlite3.connect(os.path.join(d.data_dir, "chorus.db"))
            try:
                return db.execute("SELECT actor, action, json_extract(detail, '$.claimed_by')"
                                  " FROM audit WHERE action IN ('agent.release', 'agent.close')"
                                  " ORDER BY id").fetchall()
            finally:
                db.close()
        rows = wait_for(lambda: len(audited()) == 3 and audited(), "the audit rows")
        assert rows == [("sue", "agent.release", "ann"), ("sue", "agent.close", "ann"),
                        ("bob", "agent.close", None)], rows


class Feed:
    """An agent console's socket on /v1/agent/ws: text frames, and the close
    frame's code when the server ends it."""

    def __init__(self, d, path, headers=None):
        self.s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        extra = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
        self.s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                        "Sec-WebSocket-Version: 13\r\n%s\r\n" % (path, key, extra)).encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.s.recv(4096)
            assert chunk, self.buf
            self.buf += chunk
        self.head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.status = int(self.head.split()[1])

    def frame(self):
        """(opcode, payload) of the next frame."""
        self._need(2)
        op, n, off = self.buf[0] & 0x0F, self.buf[1] & 0x7F, 2
        if n == 126:
            self._need(4)
            n, off = int.from_bytes(self.buf[2:4], "big"), 4
        assert n < 65536, n  # the feed's frames are small
        self._need(off + n)
        payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
        return op, payload

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            assert chunk, "connection closed without a close frame"
            self.buf += chunk

    def close_code(self):
        while True:
            op, payload = self.frame()
            if op == 8:
                return int.from_bytes(payload[:2], "big")

    def close(self):
        self.s.close()


def test_agent_feed_refusals_and_revoked_tokens():
    """A refused feed is answered like any agent request (401 with
    WWW-Authenticate, logged and audited); an open feed closes (1008) when
    its token is revoked or a SIGHUP takes it out of admin.tokens."""
    with daemon() as d:
        bad = Feed(d, "/v1/agent/ws?access_token=forged-token")
        assert bad.status == 401 and b"www-authenticate" in bad.head.lower(), bad.head
        bad.close()
        d.wait_log(event="admin_auth_denied", path="/v1/agent/ws")
        viewer = Feed(d, "/v1/agent/ws", bearer(VIEWER_TOKEN))
        assert viewer.status == 403, viewer.head
        viewer.close()
        # a stored agent token, made by an admin, revoked while its feed is open
        with open(d.config_path) as f:
            cfg = json.load(f)
        cfg["admin"]["tokens"] += ",root:admin:" + sha("root-token-9d1e")
        d.write_config(cfg)
        d.signal(signal.SIGHUP)
        d.wait_log(event="reload", status="applied")
        root = bearer("root-token-9d1e")
        st, made = d.json("POST", "/v1/admin/tokens", {"name": "carl", "role": "agent"}, root)
        assert st == 201, (st, made)
        carl = Feed(d, "/v1/agent/ws?access_token=" + made["token"])
        ann = Feed(d, "/v1/agent/ws", ANN)
        bob = Feed(d, "/v1/agent/ws", BOB)
        for f in (carl, ann, bob):
            assert f.status == 101 and json.loads(f.frame()[1])["type"] == "ready", f.head
        st, _ = d.json("DELETE", "/v1/admin/tokens/carl", headers=root)
        assert st == 200
        assert carl.close_code() == 1008
        # SIGHUP without bob's token: his feed closes, ann's stays
        cfg["admin"]["tokens"] = cfg["admin"]["tokens"].replace(
            ",bob:agent:" + sha(AGENT2_TOKEN), "")
        d.write_config(cfg)
        d.signal(signal.SIGHUP)
        assert bob.close_code() == 1008
        escalate(d)
        op, payload = ann.frame()
        assert op == 1 and json.loads(payload)["type"] == "queued", payload
        for f in (carl, ann, bob):
            f.close()


def test_a_long_queue_lists_its_longest_waiting():
    with daemon() as d:
        convs = [escalate(d) for _ in range(5)]
        _, third = handoff_of(d, convs[2])
        st, _ = post(d, third["id"], "claim")
        assert st == 200
        st, q = d.json("GET", "/v1/agent/queues?limit=2", headers=ANN)
        assert st == 200, (st, q)
        queue = next(x for x in q["queues"] if x["name"] == "bookings")
        # counted whole; listed: the two longest-waiting and every claimed one, oldest first
        assert queue["waiting"] == 4 and queue["claimed"] == 1, queue
        listed = [(h["key"], h["state"], h["position"]) for h in queue["conversations"]]
        assert listed == [("chat:" + convs[0], "waiting", 1), ("chat:" + convs[1], "waiting", 2),
                          ("chat:" + convs[2], "claimed", 0)], listed
        st, q = d.json("GET", "/v1/agent/queues", headers=ANN)
        queue = next(x for x in q["queues"] if x["name"] == "bookings")
        assert [h["position"] for h in queue["conversations"]] == [1, 2, 0, 3, 4], queue
        for bad in ("limit=0", "limit=1001", "limit=ten", "lmit=2"):
            st, e = d.json("GET", "/v1/agent/queues?" + bad, headers=ANN)
            assert st == 400 and e["error"]["code"] == "invalid_parameter", (bad, st, e)
            assert bad.split("=")[0] in e["error"]["message"], (bad, e)


def test_queue_messages_follow_the_queue_file():
    with queues_file({"queues": [
            {"name": "bookings", "max_wait_s": 600,
             "wait_message": {"default": "You are number {position} in the queue.",
                              "sms": "Queue position {position}."}},
            {"name": "baggage", "hours": {"tz": "Pacific/Kiritimati"},
             "unavailable_message": "Nobody is here. Back to the assistant.",
             "when_unavailable": "bot", "bot_flow": "welcome", "bot_node": "greet"}],
            "routes": {"never_used": "baggage"}}) as path, daemon(tmp_queues=path) as d:
        # every queue of the file is listed before anyone waits, as configured
        st, q = d.json("GET", "/v1/agent/queues", headers=ANN)
        assert st == 200, q
        by_name = {x["name"]: x for x in q["queues"]}
        assert by_name["bookings"]["max_wait_s"] == 600, q
        assert by_name["bookings"]["open"] is True and by_name["bookings"]["waiting"] == 0, q
        assert by_name["baggage"]["open"] is False and by_name["baggage"]["max_wait_s"] is None, q
        conv = escalate(d)
        notes = [m["text"] for m in transcript(d, conv) if m.get("from") == "system"]
        assert notes == ["You are number 1 in the queue."], transcript(d, conv)
        conv2 = escalate(d)
        notes = [m["text"] for m in transcript(d, conv2) if m.get("from") == "system"]
        assert notes == ["You are number 2 in the queue."], transcript(d, conv2)
        # baggage is closed every day (no hours given for any day): back to the bot
        conv3 = start(d)
        say(d, conv3, "I want to talk to a human agent")
        r = say(d, conv3, "baggage")
        assert r["status"] == "handoff", r
        texts = wait_for(lambda: [x.get("text") for x in transcript(d, conv3)
                                  if "Nobody is here" in (x.get("text") or "")]
                         and [x.get("text") for x in transcript(d, conv3)], "the fallback")
        assert "Nobody is here. Back to the assistant." in texts, texts
        wait_for(lambda: "How can I help" in transcript(d, conv3)[-1].get("text", ""),
                 "the bot's greeting")
        st, t = d.json("GET", "/v1/chat/conversations/" + conv3, headers=bearer(GW_KEY))
        assert t["status"] == "active", t
        r = say(d, conv3, "What is my baggage allowance")
        assert r["status"] == "active" and r["messages"], r


class Receiver:
    """A webhook receiver the test starts late: the first deliveries find
    the port closed, later ones are answered; each checks the signature."""

    def __init__(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.got = []
        self.bad = []
        self.server = None

    def start(self):
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ts = self.headers["X-Chorus-Timestamp"]
                want = "v1=" + hmac.new(SECRET.encode(), ts.encode() + b"." + body,
                                        hashlib.sha256).hexdigest()
                ok = hmac.compare_digest(want, self.headers["X-Chorus-Signature"] or "")
                fresh = abs(time.time() - int(ts)) < 300
                (outer.got if ok and fresh else outer.bad).append(json.loads(body))
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()


def test_webhook_retried_until_up_and_delivered_once():
    rx = Receiver()
    try:
        with daemon(webhook="http://127.0.0.1:%d/hook" % rx.port) as d:
            conv = escalate(d)
            d.wait_log(event="webhook_attempt_failed", timeout=20)
            d.wait_log(event="webhook_attempt_failed", attempt="2", timeout=20)
            rx.start()
            d.wait_log(event="webhook_delivered", timeout=30)
            _, h = handoff_of(d, conv)
            assert h["webhook_delivered"] is True, h
            assert rx.bad == [], rx.bad
            assert len(rx.got) == 1, rx.got
            p = rx.got[0]
            assert p["id"] == h["id"] and p["conversation_id"] == "chat:" + conv, p
            assert p["channel"] == "chat" and p["queue"] == "bookings", p
            assert p["reason"] == h["reason"] and p["slots"]["agent_topic"] == "booking", p
            assert p["transcript_url"].startswith("/v1/admin/conversations/chat%3A"), p
            assert p["summary"]["flow"] == "speak_to_agent", p
    finally:
        rx.stop()
    assert len(rx.got) == 1, rx.got


def test_a_given_up_webhook_says_so_and_is_not_sent_again():
    """A webhook that ran out of attempts is reported as given up, not as
    delivered, and stays so: a restart does not send it again. One still
    being tried when the daemon stopped is sent when it comes back."""
    rx = Receiver()
    data = tempfile.mkdtemp(prefix="chorus-agents-")

    def with_hook(attempts, backoff_ms):
        d = daemon(webhook="http://127.0.0.1:%d/hook" % rx.port, data_dir=data)
        with open(d.config_path) as f:
            cfg = json.load(f)
        cfg["agents"].update({"webhook_max_attempts": attempts, "webhook_backoff_ms": backoff_ms})
        d.write_config(cfg)
        return d

    def saved(hid):
        db = sqlite3.connect(os.path.join(data, "chorus.db"))
        try:
            row = db.execute("SELECT detail FROM handoffs WHERE json_extract(detail, '$.id') = ?",
                             (hid,)).fetchone()
            return json.loads(row[0]) if row else None
        finally:
            db.close()

    try:
        with with_hook(1, 100) as d:  # the receiver is down: one attempt, given up
            conv = escalate(d)
            _, h = handoff_of(d, conv)
            d.wait_log(event="webhook_given_up", handoff=h["id"], timeout=20)
            st, a = d.json("GET", "/v1/agent/conversations/" + h["id"], headers=ANN)
            assert a["webhook_delivered"] is False and a["webhook_given_up"] is True, a
            wait_for(lambda: (saved(h["id"]) or {}).get("webhook_given_up"), "the saved state")
            assert saved(h["id"])["webhook_delivered"] is False
        with with_hook(5, 3600000) as d:  # still down: the next one waits to retry
            d.wait_log(event="handoffs_restored", open="1", timeout=20)
            conv2 = escalate(d)
            _, h2 = handoff_of(d, conv2)
            d.wait_log(event="webhook_attempt_failed", handoff=h2["id"], timeout=20)
            assert d.log_lines(event="webhook_attempt_failed", handoff=h["id"]) == []
            st, a = d.json("GET", "/v1/agent/conversations/" + h["id"], headers=ANN)
            assert a["webhook_delivered"] is False and a["webhook_given_up"] is True, a
        rx.start()
        with with_hook(5, 100) as d:  # up: the pending one goes, the given-up one does not
            d.wait_log(event="handoffs_restored", open="2", timeout=20)
            d.wait_log(event="webhook_delivered", handoff=h2["id"], timeout=20)
            time.sleep(0.5)
            assert [p["id"] for p in rx.got] == [h2["id"]], rx.got
            assert d.log_lines(event="webhook_attempt_failed", handoff=h["id"]) == []
            st, b = d.json("GET", "/v1/agent/conversations/" + h2["id"], headers=ANN)
            assert b["webhook_delivered"] is True and b["webhook_given_up"] is False, b
    finally:
        rx.stop()
        shutil.rmtree(data, ignore_errors=True)


def test_open_handoffs_survive_a_restart():
    data = tempfile.mkdtemp(prefix="chorus-agents-")
    with daemon(data_dir=data) as d:
        conv = escalate(d)
        _, h = handoff_of(d, conv)
        say(d, conv, "still waiting")
        st, _ = post(d, h["id"], "claim")
        assert st == 200
        # a history of more messages than a handoff keeps (200): the oldest go
        for i in range(105):
            say(d, conv, "customer line %d" % i)
            st, _ = post(d, h["id"], "messages", {"text": "agent line %d" % i})
            assert st == 200, st
        st, before = d.json("GET", "/v1/agent/conversations/" + h["id"], headers=ANN)
        assert st == 200 and len(before["messages"]) == 200, before
        assert before["messages"][0]["text"] == "customer line 5", before["messages"][0]
        # one row per message, the last 200 kept; the handoff's row holds its state
        db = sqlite3.connect(os.path.join(d.data_dir, "chorus.db"))
        try:
            n, lo, hi = db.execute("SELECT count(*), min(seq), max(seq) FROM handoff_messages"
                                   " WHERE handoff_id = ?", (h["id"],)).fetchone()
            assert (n, hi - lo + 1) == (200, 200), (n, lo, hi)
            detail = json.loads(db.execute("SELECT detail FROM handoffs WHERE"
                                           " conversation_id = ?", (h["conversation_id"],)).fetchone()[0])
            assert "messages" not in detail and detail["id"] == h["id"], detail
        finally:
            db.close()
    d = daemon(data_dir=data)
    d.start()
    try:
        d.wait_log(event="handoffs_restored", open="1", timeout=20)
        d.wait_log(event="flows_loaded", timeout=60)
        queue, h2 = handoff_of(d, conv)
        assert h2["id"] == h["id"] and h2["state"] == "claimed" and h2["agent"] == "ann", h2
        # the same handoff, its history as it was
        st, after = d.json("GET", "/v1/agent/conversations/" + h["id"], headers=ANN)
        assert st == 200 and after == before, (before, after)
        st, e = post(d, h["id"], "claim", who=BOB)
        assert st == 409, (st, e)
        # the customer's next words still reach the desk, not the bot
        r = say(d, conv, "still there?")
        assert r["messages"] == [] and r["status"] == "handoff", r
        st, c = post(d, h["id"], "close", {"disposition": "resolved"})
        assert st == 200, (st, c)
    finally:
        d.stop()
        shutil.rmtree(data, ignore_errors=True)


def released(d):
    """A new conversation handed off, claimed and released to the bot,
    which has greeted the customer again: (conversation, handoff)."""
    conv = escalate(d)
    _, h = handoff_of(d, conv)
    assert post(d, h["id"], "claim")[0] == 200
    st, c = post(d, h["id"], "release", {"flow": "welcome", "node": "greet"})
    assert st == 200 and c["state"] == "released", (st, c)
    wait_for(lambda: transcript(d, conv)[-1].get("from") == "bot", "the bot after release")
    return conv, h


def test_a_released_handoff_gets_its_outcome_after_a_restart():
    """A handoff released to the bot before a restart gets its outcome
    after it, as without the restart: bot_finished when the bot ends the
    conversation, escalated_again when the customer asks for a person
    again; so the report counts what the bot contained after a release.
    The restart brought back only the released handoffs whose conversation
    goes on, not one whose outcome was known."""
    data = tempfile.mkdtemp(prefix="chorus-agents-")
    try:
        with daemon(data_dir=data) as d:
            conv, h = released(d)
            conv2, h2 = released(d)
            done, hd = released(d)  # finished before the restart: over
            assert say(d, done, "goodbye")["status"] == "ended"
            st, c = d.json("GET", "/v1/agent/conversations/" + hd["id"], headers=ANN)
            assert c["release_outcome"] == "bot_finished", c
            st, before = d.json("GET", "/v1/agent/conversations/" + h["id"], headers=ANN)
            assert st == 200 and before["release_outcome"] is None, before
        with daemon(data_dir=data) as d:
            d.wait_log(event="handoffs_restored", timeout=20)
            d.wait_log(event="flows_loaded", timeout=60)
            r = say(d, conv, "goodbye")
            assert r["status"] == "ended", r
            st, c = d.json("GET", "/v1/agent/conversations/" + h["id"], headers=ANN)
            assert st == 200, (st, c)
            assert c["state"] == "released" and c["release_outcome"] == "bot_finished", c
            assert {k: v for k, v in c.items() if k != "release_outcome"} == \
                {k: v for k, v in before.items() if k != "release_outcome"}, (before, c)
            r = say(d, conv2, "I want to talk to a human agent")
            if r["status"] != "handoff":
                r = say(d, conv2, "it's about my booking")
            assert r["status"] == "handoff", r
            st, c = d.json("GET", "/v1/agent/conversations/" + h2["id"], headers=ANN)
            assert st == 200 and c["release_outcome"] == "escalated_again", (st, c)
            _, again = handoff_of(d, conv2)
            assert again["id"] != h2["id"] and again["state"] == "waiting", again
            assert d.log_lines(event="handoffs_restored", open="0", released="2"), \
                d.log_lines(event="handoffs_restored")

            def settled():
                st, k = d.json("GET", "/v1/admin/reports/kpis", headers=bearer(VIEWER_TOKEN))
                assert st == 200, (st, k)
                rows = [r for r in k["agents"]["rows"] if r["queue"] == "bookings"]
                return rows and rows[0]["handoffs"] == 4 and \
                    rows[0]["released_escalated_again"] == 1 and (k["agents"], rows[0])
            ag, row = wait_for(settled, "the report")
            assert row["released"] == 3 and row["released_bot_finished"] == 2, row
            assert ag["contained_after_release"] == 2, ag
            lines = metric_lines(d, "chorus_agent_releases_total")
            assert 'chorus_agent_releases_total{queue="bookings",channel="chat",' \
                'outcome="bot_finished"} 1' in lines, lines
    finally:
        shutil.rmtree(data, ignore_errors=True)


def test_the_waiting_gauge_after_a_restart():
    """chorus_agent_waiting says how many wait as soon as a restart brought
    the handoffs back, not only after the next change of a queue."""
    data = tempfile.mkdtemp(prefix="chorus-agents-")
    try:
        with daemon(data_dir=data) as d:
            convs = [escalate(d) for _ in range(3)]
            _, h = handoff_of(d, convs[0])
            assert post(d, h["id"], "claim")[0] == 200
        with daemon(data_dir=data) as d:
            d.wait_log(event="handoffs_restored", open="3", timeout=20)
            st, _, body = d.request("GET", "/metrics", headers=bearer(VIEWER_TOKEN))
            assert st == 200, st
            gauge = [line for line in body.decode().splitlines()
                     if line.startswith("chorus_agent_waiting{")]
            assert gauge == ['chorus_agent_waiting{queue="bookings"} 2'], gauge
    finally:
        shutil.rmtree(data, ignore_errors=True)


def test_overdue_messages_say_each_position():
    """Several handoffs pass their queue's max wait in two queues: each
    one's unavailable message says its own position, counted among those
    still waiting in its queue (a claimed one is not)."""
    with queues_file({"queues": [
            {"name": q, "max_wait_s": 3,
             "unavailable_message": "Sorry for the wait in " + q + ": you were number {position}."}
            for q in ("bookings", "baggage")]}) as path, daemon(tmp_queues=path) as d:
        bookings = [escalate(d) for _ in range(4)]
        _, second = handoff_of(d, bookings[1])
        st, _ = post(d, second["id"], "claim")
        assert st == 200
        baggage = []
        for _ in range(2):
            conv = start(d)
            say(d, conv, "I want to talk to a human agent")
            r = say(d, conv, "baggage")
            assert r["status"] == "handoff" and r["handoff"]["queue"] == "baggage", r
            baggage.append(conv)

        def notes(conv):
            return [m["text"] for m in transcript(d, conv)
                    if m.get("from") == "system" and "Sorry" in m.get("text", "")]

        want = {bookings[0]: "bookings: you were number 1.",
                bookings[2]: "bookings: you were number 2.",
                bookings[3]: "bookings: you were number 3.",
                baggage[0]: "baggage: you were number 1.",
                baggage[1]: "baggage: you were number 2."}
        wait_for(lambda: all(notes(c) for c in want), "the unavailable messages", timeout=15)
        for conv, text in want.items():
            assert notes(conv) == ["Sorry for the wait in " + text], (conv, notes(conv))
        assert notes(bookings[1]) == [], notes(bookings[1])  # claimed in time
        assert len(d.log_lines(event="handoff_overdue")) == 5


def test_metrics_and_the_kpi_report():
    with queues_file({"dispositions": ["refund_issued"]}) as path, \
            daemon(tmp_queues=path) as d:
        # released to the bot and finished there
        conv = escalate(d)
        _, h = handoff_of(d, conv)
        assert post(d, h["id"], "claim")[0] == 200
        st, c = post(d, h["id"], "release", {"flow": "welcome", "node": "greet"})
        assert st == 200, (st, c)
        wait_for(lambda: transcript(d, conv)[-1].get("from") == "bot", "the bot after release")
        r = say(d, conv, "goodbye")
        assert r["status"] == "ended", r
        st, c = d.json("GET", "/v1/agent/conversations/" + h["id"], headers=ANN)
        assert c["release_outcome"] == "bot_finished", c
        # finished by a person
        conv2 = escalate(d)
        _, h2 = handoff_of(d, conv2)
        assert post(d, h2["id"], "claim")[0] == 200
        assert post(d, h2["id"], "close", {"disposition": "refund_issued"})[0] == 200
        # still waiting
        escalate(d)

        view = bearer(VIEWER_TOKEN)

        def report():
            st, k = d.json("GET", "/v1/admin/reports/kpis", headers=view)
            assert st == 200, (st, k)
            return k["agents"]
        def bookings(ag):
            return [r for r in ag["rows"] if r["queue"] == "bookings" and r["channel"] == "chat"]

        # the report reads the store, which the handoffs reach a moment
        # after they are queued: wait for all three, the last one included
        def settled():
            ag = report()
            rows = bookings(ag)
            return ag if ag["finished_by_person"] == 1 and rows and rows[0]["handoffs"] == 3 \
                else None
        ag = wait_for(settled, "the report")
        assert ag["contained_after_release"] == 1, ag
        rows = bookings(ag)
        assert len(rows) == 1, ag
        row = rows[0]
        assert row["handoffs"] == 3 and row["claimed"] == 2, row
        assert row["released"] == 1 and row["released_bot_finished"] == 1, row
        assert row["closed"] == 1 and row["dispositions"] == {"refund_issued": 1}, row
        assert row["wait_p50_s"] is not None and row["wait_p95_s"] >= row["wait_p50_s"], row
        assert row["handle_p50_s"] is not None, row

        st, _, body = d.request("GET", "/metrics", headers=view)
        assert st == 200, st
        text = body.decode()
        lab = 'queue="bookings",channel="chat",reason="user_requested_human"'
        assert "chorus_agent_handoffs_total{%s} 3" % lab in text, text
        assert "chorus_agent_queue_wait_seconds_count{%s} 2" % lab in text, text
        assert "chorus_agent_handle_seconds_count{%s} 2" % lab in text, text
        assert 'chorus_agent_releases_total{queue="bookings",channel="chat",outcome="released"} 1' \
            in text
        assert ('chorus_agent_releases_total{queue="bookings",channel="chat",'
                'outcome="bot_finished"} 1') in text
        assert ('chorus_agent_dispositions_total{queue="bookings",channel="chat",'
                'disposition="refund_issued"} 1') in text
        assert 'chorus_agent_waiting{queue="bookings"} 1' in text, text


def close_each(d, codes):
    """Closes one new handoff with each disposition code."""
    for code in codes:
        _, h = handoff_of(d, escalate(d))
        assert post(d, h["id"], "claim")[0] == 200
        st, c = post(d, h["id"], "close", {"disposition": code})
        assert st == 200 and c["disposition"] == code, (st, c)


def dispositions(d, n):
    """The dispositions metric's lines, and the KPI report's bookings row
    once it counts n closes."""
    def report():
        st, k = d.json("GET", "/v1/admin/reports/kpis", headers=bearer(VIEWER_TOKEN))
        assert st == 200, (st, k)
        rows = [r for r in k["agents"]["rows"] if r["queue"] == "bookings"]
        return rows and rows[0]["closed"] == n and rows[0]
    row = wait_for(report, "the report")
    return sorted(metric_lines(d, "chorus_agent_dispositions_total")), row


DISP = 'chorus_agent_dispositions_total{queue="bookings",channel="chat",disposition="%s"} %d'


def test_a_typed_disposition_is_not_a_label():
    """The close's disposition is what the agent typed: without a queues
    file that lists codes, every close counts as "other", so that typing
    cannot fill the family's series with labels of its own. The handoff and
    the KPI report keep the code as typed."""
    typed = ["resolved", "<script>x</script>"] + ["free text %d" % i for i in range(3)]
    with daemon() as d:
        close_each(d, typed)
        lines, row = dispositions(d, len(typed))
        assert lines == [DISP % ("other", 5)], lines
        assert row["dispositions"] == {code: 1 for code in typed}, row


def test_a_listed_disposition_is_a_label():
    """Codes the queues file lists are labels; any other counts as "other"."""
    typed = ["refund_issued", "Refund issued!", "called_back", "refund_issued"]
    with queues_file({"dispositions": ["refund_issued", "called_back"]}) as path, \
            daemon(tmp_queues=path) as d:
        close_each(d, typed)
        lines, row = dispositions(d, len(typed))
        assert lines == sorted([DISP % ("called_back", 1), DISP % ("other", 1),
                                DISP % ("refund_issued", 2)]), lines
        assert row["dispositions"] == {"refund_issued": 2, "Refund issued!": 1,
                                       "called_back": 1}, row


def metric_lines(d, family):
    st, _, body = d.request("GET", "/metrics", headers=bearer(VIEWER_TOKEN))
    assert st == 200, st
    return [line for line in body.decode().splitlines() if line.startswith(family + "{")]


if __name__ == "__main__":
    run_tests(globals())
