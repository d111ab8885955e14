"""Rollouts and A/B tests on the real chorusd (docs/operations.md, "Rollouts
and A/B tests"):

- a candidate whose backend action fails (a stand-in HTTP server this test
  runs answers it 500) is rolled back by the guard once each variant has
  its minimum sample, with status rolled_back, an audit row by
  "rollout-guard" and one log line saying why;
- a healthy candidate started and promoted with chorusctl: new
  conversations then all run it;
- abort: new conversations go back to the control only;
- the split: every conversation's variant is the one the hash of
  (rollout id, conversation key) gives, its share is close to the percent,
  and a key that comes back for a second conversation keeps its variant;
- roles: a viewer may read but not start, an operator may not promote;
- a running rollout resumes after a restart;
- an end the store refuses (another process holds the database's write
  lock): a promotion is not made and the rollout runs on; an abort is made
  at once and its row written once the store takes it;
- a flows reload while a rollout runs: the candidate is rebuilt on the
  reloaded set, so its arm serves the reloaded versions of the other flows
  and promoting it keeps them; a reload that removes the rollout's flow
  ends it as aborted.

The candidate versions are put in the flow_versions table the way a flow
developer's earlier load would have left them. Waits poll with a generous
deadline; nothing asserts on time."""

import hashlib
import http.server
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, run_tests  # noqa: E402
from test_sms_twilio import TOKEN as TWILIO_TOKEN, Phone, Twilio  # noqa: E402

GW_KEY = "gw-rollout-test-8c21"
OPS, BOSS, VIEW = "adm-ro-ops-51f0", "adm-ro-boss-0e93", "adm-ro-view-7a4c"
MIN_SAMPLE = 6


def sha(s):
    return hashlib.sha256(s.encode() if isinstance(s, str) else s).hexdigest()


def bearer(token):
    return {"Authorization": "Bearer " + token}


class Backend:
    """The stand-in backend: /ok answers 200 with an order, /fail 500."""

    def __init__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                ok = self.path.startswith("/ok")
                body = json.dumps({"order": {"status": "shipped"}} if ok else
                                  {"error": "down"}).encode()
                self.send_response(200 if ok else 500)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


SETTINGS = {"settings": {"welcome_flow": "welcome", "fallback_flow": "fallback",
                         "confidence_threshold": 0.3}}
WELCOME = {"name": "welcome",
           "intents": {"greeting": {"examples": ["hi", "hello", "hey there", "good morning"]}},
           "nodes": {"greet": {"type": "say", "message": "Welcome."}}}
FALLBACK = {"name": "fallback", "nodes": {"sorry": {"type": "say", "message": "Sorry?"}}}


def orders_flow(port, path, reply):
    """The flow rolled out: one backend call, then the conversation ends."""
    return json.dumps({
        "name": "orders",
        "intents": {"order": {"examples": ["where is my order", "track my order",
                                           "order status please", "check my order"]}},
        "nodes": {
            "lookup": {"type": "action", "method": "GET",
                       "url": "http://127.0.0.1:%d%s" % (port, path), "timeout_ms": 3000,
                       "retries": 0, "next": "done", "on_error": "failed"},
            "done": {"type": "end", "message": reply},
            "failed": {"type": "end", "message": "Sorry, I cannot look that up now."}}},
        indent=1) + "\n"


def daemon(backend, data_dir=None, flows=None):
    d = Daemon(config={
        "flows": dict(flows or {}),
        "chat": {"api_keys": "main:" + sha(GW_KEY)},
        "admin": {"tokens": "ops:operator:%s,boss:admin:%s,view:viewer:%s"
                  % (sha(OPS), sha(BOSS), sha(VIEW))},
        # latency is left out (a slack of 10 s): on a loaded machine a few
        # slow replies in a sample of 6 are noise; the unit tests judge it
        "rollouts": {"check_interval_ms": 200, "min_sample": MIN_SAMPLE,
                     "max_error_rate_delta": "0.2", "p95_latency_slack_ms": 10000}},
        env={"TWILIO_AUTH_TOKEN": TWILIO_TOKEN})
    flows = os.path.join(d.tmp, "flows")
    os.makedirs(flows)
    for name, doc in (("settings", SETTINGS), ("welcome", WELCOME), ("fallback", FALLBACK)):
        with open(os.path.join(flows, name + ".json"), "w") as f:
            json.dump(doc, f)
    with open(os.path.join(flows, "orders.json"), "w") as f:
        f.write(orders_flow(backend.port, "/ok", "Your order has shipped."))
    d.args += ["--flows", flows]
    if data_dir is not None:
        d.data_dir = data_dir
    return d


def db(d):
    return os.path.join(d.data_dir, "chorus.db")


def add_version(d, content):
    """Stores a version of the orders flow as a load would have; returns it."""
    version = sha(content)[:12]
    con = sqlite3.connect(db(d), timeout=10)
    with con:
        con.execute("INSERT OR IGNORE INTO flow_versions (flow, version, sha256, content, author,"
                    " created_us) VALUES ('orders', ?, ?, ?, 'dev', ?)",
                    (version, sha(content), content, int(time.time() * 1e6)))
    con.close()
    return version


def ctl(d, *args, token=OPS):
    env = dict(os.environ, CHORUS_ADMIN_TOKEN=token)
    return subprocess.run([os.environ["CHORUSCTL"], "rollout"] + list(args) +
                          ["--url", d.url("")],
                          capture_output=True, text=True, env=env, timeout=60)


def order(d):
    """A new chat conversation asking about an order: (conversation, reply)."""
    code, body = d.json("POST", "/v1/chat/conversations", b"", bearer(GW_KEY))
    assert code == 201, (code, body)
    conv = body["conversation"]
    return conv, say(d, conv, "where is my order")


def order_once_stored(d):
    """order()'s reply, once the store takes turns again: a writer that met
    another process's lock refuses turns (503) until it has recovered."""
    def attempt():
        code, body = d.json("POST", "/v1/chat/conversations", b"", bearer(GW_KEY))
        assert code in (201, 503), (code, body)
        if code == 503:
            return None
        code, body = d.json("POST", "/v1/chat/conversations/%s/messages" % body["conversation"],
                            {"text": "where is my order"}, bearer(GW_KEY))
        assert code in (200, 503), (code, body)
        return body["messages"][-1]["text"] if code == 200 else None
    return wait_for("the store to take turns again", attempt)


def say(d, conv, text):
    code, body = d.json("POST", "/v1/chat/conversations/%s/messages" % conv, {"text": text},
                        bearer(GW_KEY))
    assert code == 200, (code, body)
    return body["messages"][-1]["text"]


def arm(rollout_id, key, percent):
    """The variant the runtime's hash gives (rollout id, conversation key)."""
    h = hashlib.sha256((rollout_id + "\n" + key).encode()).digest()
    return "candidate" if int.from_bytes(h[:4], "big") % 100 < percent else "control"


def status(d, key, token=VIEW):
    code, body = d.json("GET", "/v1/admin/rollouts/%s" % key, headers=bearer(token))
    assert code == 200, (code, body)
    return body


def wait_for(what, fn, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def stored_variants(d, since_us):
    con = sqlite3.connect("file:%s?mode=ro" % db(d), uri=True, timeout=10)
    rows = con.execute("SELECT id, variant FROM conversations WHERE started_us >= ?",
                       (since_us,)).fetchall()
    con.close()
    return dict(rows)


def start(d, version, percent, token=OPS):
    code, body = d.json("POST", "/v1/admin/rollouts",
                        {"flow": "orders", "candidate": version, "percent": percent},
                        bearer(token))
    return code, body


def test_broken_candidate_rolled_back():
    backend = Backend()
    try:
        with daemon(backend) as d:
            d.wait_log(event="flows_loaded", timeout=60)
            broken = add_version(d, orders_flow(backend.port, "/fail", "never"))
            code, ro = start(d, broken, 50)
            assert code == 201, (code, ro)
            assert ro["status"] == "running" and ro["candidate_version"] == broken, ro
            assert ro["control_version"] and ro["control_version"] != broken, ro
            # conversations one at a time until each arm has its minimum sample
            sent = {"control": 0, "candidate": 0}
            while min(sent.values()) < MIN_SAMPLE:
                conv, reply = order(d)
                a = arm(ro["id"], "chat:" + conv, 50)
                want = "Sorry, I cannot look that up now." if a == "candidate" else \
                    "Your order has shipped."
                assert reply == want, (a, reply)
                sent[a] += 1
                assert sent["candidate"] <= 40, sent
            final = wait_for("the rollback", lambda: (lambda s: s if s["rollout"]["status"] !=
                                                      "running" else None)(status(d, ro["id"])))
            r = final["rollout"]
            assert r["status"] == "rolled_back", final
            assert r["ended_by"] == "rollout-guard", final
            # every candidate conversation's order lookup failed; the welcome
            # message is the other bot turn of each: 0.5 against 0, or just
            # under (5 of 11) when the guard looked between the last
            # conversation's welcome and its lookup
            m = re.search(r"error rate (\d\.\d{3}) vs control 0\.000 exceeds the margin "
                          r"\+0\.200", r["reason"])
            assert m and 0.45 <= float(m.group(1)) <= 0.5, final
            # judged on exactly what was sent: no more candidate conversations were needed
            cand, ctl_ = final["variants"]["candidate"], final["variants"]["control"]
            assert cand["conversations"] == sent["candidate"], (final, sent)
            assert ctl_["conversations"] == sent["control"], (final, sent)
            assert cand["failed_turns"] == sent["candidate"] and ctl_["failed_turns"] == 0, final
            assert final["guard"]["verdict"] == "stop", final
            code, _, text = d.request("GET", "/metrics")
            assert code == 200
            text = text.decode()
            assert 'chorus_rollouts_ended_total{flow="orders",status="rolled_back"} 1' in text, text
            assert "chorus_rollouts_running 0" in text, text
            line = d.wait_log(event="rollout_rolled_back")
            assert line["id"] == ro["id"] and line["actor"] == "rollout-guard", line
            assert "error rate" in line["reason"], line
            con = sqlite3.connect("file:%s?mode=ro" % db(d), uri=True, timeout=10)
            audit = con.execute("SELECT actor, action, target, detail FROM audit WHERE"
                                " action LIKE 'rollout.%' ORDER BY id").fetchall()
            con.close()
            assert [(a[0], a[1]) for a in audit] == [("ops", "rollout.start"),
                                                     ("rollout-guard", "rollout.rollback")], audit
            assert json.loads(audit[1][3])["reason"].startswith("error rate"), audit
            # back on the control: a new conversation is served by the healthy version
            for _ in range(5):
                assert order(d)[1] == "Your order has shipped."
    finally:
        backend.close()


def test_split_sticky_promote_abort():
    backend = Backend()
    try:
        with daemon(backend) as d:
            d.wait_log(event="flows_loaded", timeout=60)
            healthy = add_version(d, orders_flow(backend.port, "/ok", "Shipped (v2)."))
            # roles: a viewer may not start, an operator may not promote
            assert start(d, healthy, 30, token=VIEW)[0] == 403
            # refused starts change nothing: unknown version, a candidate that
            # does not build (its problem named), bad fields
            code, body = start(d, "0123456789ab", 30)
            assert code == 404 and "0123456789ab" in body["error"]["message"], body
            bad = add_version(d, '{"name": "orders", "nodes": {"x": {"type": "bogus"}}}\n')
            code, body = start(d, bad, 30)
            assert code == 422 and "bogus" in body["error"]["message"], body
            assert start(d, healthy, 0)[0] == 400 and start(d, healthy, 101)[0] == 400
            since = int(time.time() * 1e6)
            p = ctl(d, "start", "orders", "--candidate", healthy, "--percent", "30")
            assert p.returncode == 0, p.stderr
            ro = status(d, "orders")["rollout"]
            assert ro["status"] == "running" and ro["percent"] == 30, ro
            assert start(d, healthy, 30)[0] == 409  # one rollout per environment
            # and one at a time: its guard would count a second one's arms
            code, body = d.json("POST", "/v1/admin/rollouts",
                                {"flow": "orders", "candidate": healthy, "percent": 30,
                                 "env": "staging"}, bearer(OPS))
            assert code == 409 and "one rollout runs at a time" in body["error"]["message"], \
                (code, body)
            convs = []
            for _ in range(120):
                conv, reply = order(d)
                a = arm(ro["id"], "chat:" + conv, 30)
                assert reply == ("Shipped (v2)." if a == "candidate" else
                                 "Your order has shipped."), (a, reply)
                convs.append(conv)
            # sticky: a phone number (the SMS key) that comes back after its
            # conversation ended starts a second one (key#2) on the same arm
            tw = Twilio(d, "/v1/sms/twilio")
            for i in range(20):
                phone = Phone(tw, frm="+1555700%04d" % i)
                first = phone.texts("where is my order")
                assert phone.texts("track my order") == first, (i, first)
            stored = stored_variants(d, since)
            for cid, variant in stored.items():
                assert variant == arm(ro["id"], cid.split("#")[0], 30), (cid, variant)
            keys = {cid.split("#")[0] for cid in stored}
            seconds = [cid for cid in stored if "#" in cid]
            assert len(seconds) >= 20, stored
            share = sum(1 for k in keys if arm(ro["id"], k, 30) == "candidate") / len(keys)
            assert 0.15 <= share <= 0.45, share  # 120 keys at 30%: 4 standard deviations
            s = status(d, "orders")
            assert s["variants"]["candidate"]["conversations"] == \
                sum(1 for v in stored.values() if v == "candidate"), s
            # the same figure through the report's variant slice
            p = subprocess.run([os.environ["CHORUSCTL"], "report", "--url", d.url(""), "--token",
                                VIEW, "--by", "variant", "--format", "json"],
                               capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, p.stderr
            rows = {r["variant"]: r for r in json.loads(p.stdout)["rows"]}
            assert rows["candidate"]["conversations"] == \
                s["variants"]["candidate"]["conversations"], (rows, s)
            p = ctl(d, "status", "orders")
            assert p.returncode == 0 and "candidate" in p.stdout and "containment" in p.stdout, \
                p.stdout + p.stderr
            p = ctl(d, "status", "--json")
            assert json.loads(p.stdout)["rollouts"][0]["rollout"]["id"] == ro["id"], p.stdout
            assert ctl(d, "promote", "orders").returncode != 0  # operator: 403
            p = ctl(d, "promote", "orders", token=BOSS)
            assert p.returncode == 0, p.stderr
            assert status(d, ro["id"])["rollout"]["status"] == "promoted"
            for _ in range(5):
                assert order(d)[1] == "Shipped (v2)."
            # abort: a new rollout back to the first version, aborted
            first = add_version(d, orders_flow(backend.port, "/ok", "Your order has shipped."))
            code, ro2 = start(d, first, 50)
            assert code == 201, ro2
            p = ctl(d, "abort", "orders")
            assert p.returncode == 0, p.stderr
            r2 = status(d, ro2["id"])["rollout"]
            assert r2["status"] == "aborted" and r2["ended_by"] == "ops", r2
            assert ctl(d, "abort", "orders").returncode != 0  # nothing running now
            for _ in range(10):
                assert order(d)[1] == "Shipped (v2)."
            code, body = d.json("GET", "/v1/admin/rollouts", headers=bearer(VIEW))
            assert [r["status"] for r in body["rollouts"]] == ["aborted", "promoted"], body
            code, body = d.json("GET", "/v1/admin/rollouts?status=promoted", headers=bearer(VIEW))
            assert [r["id"] for r in body["rollouts"]] == [ro["id"]], body
    finally:
        backend.close()


def test_running_rollout_resumes_after_restart():
    backend = Backend()
    data = tempfile.mkdtemp(prefix="chorus-ro-data-")
    try:
        d = daemon(backend, data)
        with d:
            d.wait_log(event="flows_loaded", timeout=60)
            v2 = add_version(d, orders_flow(backend.port, "/ok", "Shipped (v2)."))
            code, ro = start(d, v2, 100)
            assert code == 201, ro
            assert order(d)[1] == "Shipped (v2)."
        d2 = daemon(backend, data)
        with d2:
            line = d2.wait_log(event="rollout_resumed", timeout=60)
            assert line["id"] == ro["id"], line
            assert status(d2, ro["id"])["rollout"]["serving"] is True
            assert order(d2)[1] == "Shipped (v2)."
    finally:
        backend.close()
        subprocess.run(["rm", "-rf", data])


def test_an_end_the_store_refuses():
    backend = Backend()
    try:
        with daemon(backend) as d:
            d.wait_log(event="flows_loaded", timeout=60)
            v2 = add_version(d, orders_flow(backend.port, "/ok", "Shipped (v2)."))
            code, ro = start(d, v2, 100)
            assert code == 201, ro
            path = "/v1/admin/rollouts/%s/" % ro["id"]
            # another process holds the write lock past the store's busy
            # timeout: the promotion cannot be recorded, so it is not made
            lock = sqlite3.connect(db(d), timeout=10, isolation_level=None)
            lock.execute("BEGIN IMMEDIATE")
            try:
                code, body = d.json("POST", path + "promote", b"", bearer(BOSS))
            finally:
                lock.execute("ROLLBACK")
            assert code == 503, (code, body)
            assert "could not record the promotion" in body["error"]["message"], body
            s = status(d, ro["id"])
            assert s["rollout"]["status"] == "running" and s["rollout"]["serving"] is True, s
            assert order_once_stored(d) == "Shipped (v2)."  # the candidate still serves
            line = d.wait_log(event="rollout_save_failed")
            assert line["id"] == ro["id"] and line["status"] == "promoted", line
            # an abort is made at once, the lock held or not
            lock.execute("BEGIN IMMEDIATE")
            try:
                code, body = d.json("POST", path + "abort", b"", bearer(OPS))
                assert code == 200 and body["status"] == "aborted", (code, body)
                s = status(d, ro["id"])  # read while the row waits
                assert s["rollout"]["status"] == "running" and s["rollout"]["serving"] is False, s
            finally:
                lock.execute("ROLLBACK")
            lock.close()
            # written at a later tick of the guard
            line = d.wait_log(event="rollout_saved", timeout=60)
            assert line["id"] == ro["id"] and line["status"] == "aborted", line
            r = status(d, ro["id"])["rollout"]
            assert r["status"] == "aborted" and r["ended_by"] == "ops", r
            assert order_once_stored(d) == "Your order has shipped."
            con = sqlite3.connect("file:%s?mode=ro" % db(d), uri=True, timeout=10)
            audit = [a[0] for a in con.execute("SELECT action FROM audit WHERE action LIKE"
                                               " 'rollout.%' ORDER BY id")]
            con.close()
            assert audit == ["rollout.start", "rollout.abort"], audit  # no promotion
    finally:
        backend.close()


def hello(d):
    """A new conversation greeting the bot: the welcome flow's reply."""
    code, body = d.json("POST", "/v1/chat/conversations", b"", bearer(GW_KEY))
    assert code == 201, (code, body)
    return say(d, body["conversation"], "hello")


def served(d, env, flow):
    code, body = d.json("GET", "/v1/admin/flows", headers=bearer(VIEW))
    assert code == 200, (code, body)
    return [f["version"] for f in body["environments"][env]["flows"] if f["flow"] == flow]


def test_flows_reload_during_rollout():
    """The candidate is the environment's set with one flow replaced: a
    reload that changes another flow while the rollout runs must reach the
    candidate's arm, and its promotion must not put the replaced files back
    (it used to: the candidate kept the set the rollout started on)."""
    backend = Backend()
    try:
        with daemon(backend, flows={"watch": "off"}) as d:
            d.wait_log(event="flows_loaded", timeout=60)
            flows = os.path.join(d.tmp, "flows")
            v2 = add_version(d, orders_flow(backend.port, "/ok", "Shipped (v2)."))
            code, ro = start(d, v2, 100)
            assert code == 201, (code, ro)
            assert order(d)[1] == "Shipped (v2)." and hello(d) == "Welcome."
            # another flow changes on disk and is reloaded (staging and, in
            # follow mode, production)
            welcome2 = dict(WELCOME, nodes={"greet": {"type": "say", "message": "Hello again."}})
            text = json.dumps(welcome2)
            with open(os.path.join(flows, "welcome.json"), "w") as f:
                f.write(text)
            code, body = d.json("POST", "/v1/admin/flows/reload", b"", bearer(OPS))
            assert code == 200, (code, body)
            # the candidate's arm (every new conversation) serves the reload
            # once rebuilt (until then, the control: the reloaded set)
            wait_for("the candidate to carry the reload",
                     lambda: order(d)[1] == "Shipped (v2)." and hello(d) == "Hello again.",
                     timeout=20)
            line = d.wait_log(event="rollout_rebuilt")
            assert line["id"] == ro["id"], line
            s = status(d, ro["id"])["rollout"]
            assert s["status"] == "running" and s["serving"] is True, s
            # promoted: production keeps the reloaded welcome and takes the candidate
            code, body = d.json("POST", "/v1/admin/rollouts/%s/promote" % ro["id"], b"",
                                bearer(BOSS))
            assert code == 200 and body["status"] == "promoted", (code, body)
            assert served(d, "production", "welcome") == [sha(text)[:12]]
            assert served(d, "production", "orders") == [v2]
            assert hello(d) == "Hello again." and order(d)[1] == "Shipped (v2)."
            # a reload that removes the rollout's flow ends its rollout, said so
            v3 = add_version(d, orders_flow(backend.port, "/ok", "Shipped (v3)."))
            code, ro3 = start(d, v3, 100)
            assert code == 201, (code, ro3)
            os.unlink(os.path.join(flows, "orders.json"))
            code, body = d.json("POST", "/v1/admin/flows/reload", b"", bearer(OPS))
            assert code == 200, (code, body)
            r = wait_for("the rollout to end", lambda: (lambda s: s if s["status"] != "running"
                                                        else None)(status(d, ro3["id"])["rollout"]),
                         timeout=20)
            assert r["status"] == "aborted" and "flows reloaded" in r["reason"], r
            assert served(d, "production", "orders") == []
            con = sqlite3.connect("file:%s?mode=ro" % db(d), uri=True, timeout=10)
            audit = [a[0] for a in con.execute("SELECT action FROM audit WHERE action LIKE"
                                               " 'rollout.%' ORDER BY id")]
            con.close()
            assert audit == ["rollout.start", "rollout.promote", "rollout.start",
                             "rollout.abort"], audit
    finally:
        backend.close()


if __name__ == "__main__":
    run_tests(globals())
