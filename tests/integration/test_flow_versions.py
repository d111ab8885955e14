"""Flow versions and environments on the real chorusd: a conversation in
progress finishes on the version it started on after an edit and a reload
while a new one gets the new version; every loaded version is recorded with
its author and a diff; `chorusctl flows promote` refuses when a conversation
test fails against staging's versions (printing which) and promotes when
they pass; `chorusctl flows rollback` restores the previous production
version and the daemon serves it; a staging API key and a production API
key on the same daemon get different versions, and so do a staging and a
production Twilio number (sms.environments); a restart in promoted mode
serves production's recorded versions, not the directory's; a conversation
evicted from a full table, or in progress across a restart, is read back
onto the version it began on (compiled again from the store's versions,
once for all the conversations on it), and one whose version the store has
lost goes on on the current version, says so and asks again."""

import getpass
import hashlib
import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, run_tests  # noqa: E402
from security_common import ws_frame, ws_frames, ws_open  # noqa: E402
from test_sms_twilio import TOKEN as TWILIO_TOKEN, Phone, Twilio  # noqa: E402

PROD_KEY = "gw-prod-8c1f"
STAGE_KEY = "gw-stage-3e9a"
ADMIN = "adm-versions-11aa"
OPERATOR = "opr-versions-22bb"


def sha(s):
    return hashlib.sha256(s.encode()).hexdigest()


def bearer(token):
    return {"Authorization": "Bearer " + token}


SETTINGS = {"settings": {"welcome_flow": "welcome", "fallback_flow": "fallback",
                         "confidence_threshold": 0.3}}
WELCOME = {"name": "welcome",
           "intents": {"greeting": {"examples": ["hi", "hello", "hey there", "good morning"]}},
           "nodes": {"greet": {"type": "say", "message": "Welcome."}}}
FALLBACK = {"name": "fallback", "nodes": {"sorry": {"type": "say", "message": "Sorry?"}}}


def order_flow(tag, ask="ask"):
    """Two turns: the question (node `ask`), then the answer naming the version (tag)."""
    return json.dumps({
        "name": "order",
        "intents": {"order": {"examples": ["I want to order", "place an order", "order something",
                                           "can I order food"]}},
        "slots": {"item": {"type": "choice",
                           "choices": [{"value": "pizza"}, {"value": "salad"}]}},
        "nodes": {
            ask: {"type": "ask", "slot": "item", "prompt": "What would you like?",
                  "next": "done"},
            "done": {"type": "end", "message": "ORDER %s {{item}}" % tag}}}, indent=1) + "\n"


def welcome_flow(tag):
    return json.dumps(dict(WELCOME, nodes={"greet": {"type": "say",
                                                     "message": "Welcome (%s)." % tag}}))


def order_test(expect):
    return {"tests": [{"name": "orders a pizza (%s)" % expect, "turns": [
        {"user": "I want to order", "node": "ask"},
        {"user": "pizza", "bot": ["ORDER %s pizza" % expect]}]}]}


STAGE_NUMBER = "+15550100001"
PROD_NUMBER = "+15550100002"


def daemon(production="follow", max_conversations=None):
    config = {
        "chat": {"api_keys": "prod:%s:production,stage:%s:staging"
                 % (sha(PROD_KEY), sha(STAGE_KEY))},
        "admin": {"tokens": "ops:admin:%s,op2:operator:%s" % (sha(ADMIN), sha(OPERATOR))},
        "sms": {"environments": "%s=staging,%s=production" % (STAGE_NUMBER, PROD_NUMBER)},
        "flows": {"watch": "off", "production": production}}
    if max_conversations is not None:
        config["runtime"] = {"max_conversations": max_conversations}
    d = Daemon(config=config, env={"TWILIO_AUTH_TOKEN": TWILIO_TOKEN})
    flows = os.path.join(d.tmp, "flows")
    os.makedirs(flows)
    for name, doc in (("settings", SETTINGS), ("fallback", FALLBACK)):
        with open(os.path.join(flows, name + ".json"), "w") as f:
            json.dump(doc, f)
    d.flows = flows

    def write(tag):
        for name, text in (("order", order_flow(tag)), ("welcome", welcome_flow(tag))):
            with open(os.path.join(flows, name + ".json"), "w") as f:
                f.write(text)
    d.write_order = write
    d.write_order("v1")
    d.args += ["--flows", flows]
    return d


class Conv:
    """A chat REST conversation under one gateway key."""

    def __init__(self, d, key):
        self.d, self.key = d, key
        code, body = self.call("POST", "/v1/chat/conversations", b"")
        assert code == 201, (code, body)
        self.id = body["conversation"]

    def call(self, method, path, body):
        c = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=30)
        c.request(method, path, body, dict(bearer(self.key), **{"Content-Type": "application/json"}))
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, json.loads(data) if data else None

    def say(self, text):
        code, body = self.call("POST", "/v1/chat/conversations/%s/messages" % self.id,
                               json.dumps({"text": text}))
        assert code == 200, (code, body)
        return body["messages"][-1]["text"] if body["messages"] else ""


def reload(d):
    code, body = d.json("POST", "/v1/admin/flows/reload", b"", bearer(ADMIN))
    assert code == 200 and body["result"] == "loaded", (code, body)


def version_of(text):
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def db_rows(d, sql, *args):
    db = sqlite3.connect(os.path.join(d.tmp, "data", "chorus.db"))
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def ctl(d, *args):
    env = dict(os.environ, CHORUS_ADMIN_TOKEN=ADMIN)
    r = subprocess.run([os.environ.get("CHORUSCTL", "chorusctl"), "flows", *args,
                        "--url", "http://127.0.0.1:%d" % d.port],
                       capture_output=True, text=True, env=env, timeout=120)
    return r.returncode, r.stdout + r.stderr


def test_conversation_finishes_on_its_version_and_versions_are_recorded():
    with daemon() as d:
        d.wait_log(event="flows_reload", status="loaded")
        old = Conv(d, PROD_KEY)
        assert old.say("I want to order") == "What would you like?"
        d.write_order("v2")
        reload(d)
        new = Conv(d, PROD_KEY)
        assert new.say("I want to order") == "What would you like?"
        assert new.say("pizza") == "ORDER v2 pizza"
        assert old.say("pizza") == "ORDER v1 pizza"  # pinned to the version it began on
        v1, v2 = version_of(order_flow("v1")), version_of(order_flow("v2"))
        # Each conversation's row names the version of the flow it began in (welcome).
        w1, w2 = (version_of(welcome_flow(t)) for t in ("v1", "v2"))
        rows = {i: (f, v) for i, f, v in db_rows(d, "SELECT id, flow, flow_version"
                                                 " FROM conversations")}
        assert rows["chat:" + old.id] == ("welcome", w1), rows
        assert rows["chat:" + new.id] == ("welcome", w2), rows
        code, body = d.json("GET", "/v1/admin/flows/order/versions", headers=bearer(OPERATOR))
        assert code == 200, (code, body)
        vs = body["versions"]
        assert [v["version"] for v in vs] == [v2, v1], vs
        assert vs[0]["author"] == "ops" and vs[0]["prev_version"] == v1, vs[0]
        assert vs[1]["author"] == getpass.getuser(), vs[1]
        diff = vs[0]["diff"].splitlines()
        assert diff[0] == "--- order@" + v1 and diff[1] == "+++ order@" + v2, diff
        assert diff[2].startswith("@@ -") and diff[2].endswith(" @@"), diff
        assert '-   "message": "ORDER v1 {{item}}"' in diff, diff
        assert '+   "message": "ORDER v2 {{item}}"' in diff, diff
        assert set(vs[0]["envs"]) == {"staging", "production"}, vs[0]
        audit = db_rows(d, "SELECT actor, action FROM audit WHERE action = 'flows_loaded'")
        assert ("ops", "flows_loaded") in audit, audit


def test_evicted_conversation_keeps_its_version():
    # Evicted (the table holds one) after a reload that renamed its
    # question's node, the conversation is read back onto the version it
    # began on, compiled again from the store's versions: the answer is v1's.
    with daemon(max_conversations=1) as d:
        d.wait_log(event="flows_reload", status="loaded")
        old = Conv(d, PROD_KEY)
        assert old.say("I want to order") == "What would you like?"
        with open(os.path.join(d.flows, "order.json"), "w") as f:
            f.write(order_flow("v2", ask="question"))
        reload(d)
        Conv(d, PROD_KEY)  # the table is full: the old one is evicted
        assert old.say("pizza") == "ORDER v1 pizza"
        assert len(d.log_lines(event="pinned_version_compiled")) == 1, d.stderr_text()


def restart(d, meanwhile=None):
    """SIGTERM and start again on the same data and flows directories,
    calling meanwhile() while it is down."""
    d.signal(signal.SIGTERM)
    assert d.wait() == 0, d.stderr_text()
    d._reader.join(timeout=5)
    if meanwhile is not None:
        meanwhile()
    with d._lock:
        d._err.clear()
    d.start()
    d.wait_log(event="conversations_restored", timeout=60)


def test_pinned_versions_survive_a_restart():
    """Two conversations asked their question on v1; the flows went to v2
    (the question's node renamed) and the daemon restarted: both answer on
    v1, from one compile of v1 rebuilt from the store, while a new one runs
    v2. A conversation whose pinned version the store has lost goes on on
    the current version and says so: flow_changed, and its flow again."""
    with daemon() as d:
        d.wait_log(event="flows_reload", status="loaded")
        a, b = Conv(d, PROD_KEY), Conv(d, PROD_KEY)
        assert a.say("I want to order") == "What would you like?"
        assert b.say("I want to order") == "What would you like?"
        d.write_order("v2")
        with open(os.path.join(d.flows, "order.json"), "w") as f:
            f.write(order_flow("v2", ask="question"))
        reload(d)
        restart(d)
        assert a.say("pizza") == "ORDER v1 pizza"
        assert b.say("pizza") == "ORDER v1 pizza"
        compiled = d.log_lines(event="pinned_version_compiled")
        assert len(compiled) == 1 and compiled[0]["conversations"] == "2", d.stderr_text()
        new = Conv(d, PROD_KEY)
        assert new.say("I want to order") == "What would you like?"
        assert new.say("pizza") == "ORDER v2 pizza"
        # pinned to v2, whose row the store then loses
        x = Conv(d, PROD_KEY)
        assert x.say("I want to order") == "What would you like?"
        d.write_order("v3")
        reload(d)
        v2 = version_of(order_flow("v2", ask="question"))

        def lose_v2():
            assert db_rows(d, "SELECT count(*) FROM flow_versions WHERE flow = 'order'"
                           " AND version = ?", v2) == [(1,)]
            db = sqlite3.connect(os.path.join(d.tmp, "data", "chorus.db"))
            db.execute("DELETE FROM flow_versions WHERE flow = 'order' AND version = ?", (v2,))
            db.commit()
            db.close()
        restart(d, lose_v2)
        code, body = x.call("POST", "/v1/chat/conversations/%s/messages" % x.id,
                            json.dumps({"text": "pizza"}))
        assert code == 200, (code, body)
        said = [m["text"] for m in body["messages"]]
        assert said == ["Sorry, something changed on our side since your last message. "
                        "Let's start that again.", "What would you like?"], said
        assert x.say("pizza") == "ORDER v3 pizza"
        lost = d.log_lines(event="pinned_version_unavailable", key="chat:" + x.id)
        assert len(lost) == 1 and "order@" + v2 in lost[0]["pinned"], d.stderr_text()


def ws_answer(d, key):
    """The bot's last message after "I want to order", "pizza" over the chat
    WebSocket, authenticated with key."""
    s, status, rest = ws_open(d, headers=bearer(key))
    assert status == 101, status
    s.settimeout(10)
    data, texts = rest, []

    def read_until(pred):
        nonlocal data
        while True:
            msgs = [json.loads(p) for op, p in ws_frames(data) if op == 1]
            if pred(msgs):
                return msgs
            chunk = s.recv(65536)
            assert chunk, "closed: %r" % msgs
            data += chunk

    def bot(msgs):
        return [m.get("text") for m in msgs if m.get("type") == "message"
                and m.get("from") == "bot"]
    read_until(lambda m: any(x.get("type") == "ready" for x in m))
    for i, text in enumerate(["I want to order", "pizza"]):
        s.sendall(ws_frame(1, json.dumps({"type": "message", "id": "m%d" % i,
                                          "text": text}).encode()))
    texts = bot(read_until(lambda m: any("ORDER" in (t or "") for t in bot(m))))
    s.close()
    return [t for t in texts if "ORDER" in (t or "")][-1]


def test_staging_and_production_keys_promotion_gate_and_rollback():
    with daemon("promoted") as d:
        d.wait_log(event="flows_reload", status="loaded")
        d.write_order("v2")
        reload(d)  # staging moves on; production stays until promoted

        def answer(key):
            c = Conv(d, key)
            c.say("I want to order")
            return c.say("pizza")
        assert answer(STAGE_KEY) == "ORDER v2 pizza"
        assert answer(PROD_KEY) == "ORDER v1 pizza"
        # over the chat WebSocket a key chooses its environment the same way
        assert ws_answer(d, STAGE_KEY) == "ORDER v2 pizza"
        assert ws_answer(d, PROD_KEY) == "ORDER v1 pizza"
        code, body = d.json("GET", "/v1/admin/flows", headers=bearer(OPERATOR))
        envs = body["environments"]
        prod = {f["flow"]: f["version"] for f in envs["production"]["flows"]}
        assert prod["order"] == version_of(order_flow("v1")), body

        tests = os.path.join(d.tmp, "tests")
        os.makedirs(tests)
        with open(os.path.join(tests, "order.json"), "w") as f:
            json.dump(order_test("v1"), f)  # fails against staging's v2
        rc, out = ctl(d, "promote", "order", "--to", "production", "--tests", tests)
        assert rc == 1, out
        assert "FAIL" in out and "orders a pizza (v1)" in out and "refused" in out, out
        assert answer(PROD_KEY) == "ORDER v1 pizza"
        # no tests at all is a wrong path, never a pass
        empty = os.path.join(d.tmp, "no-tests")
        os.makedirs(empty)
        rc, out = ctl(d, "promote", "order", "--to", "production", "--tests", empty)
        assert rc == 1 and "no tests found" in out and "refused" in out, out
        assert answer(PROD_KEY) == "ORDER v1 pizza"

        code, body = d.json("POST", "/v1/admin/flows/promote", json.dumps({"to": "production"}),
                            bearer(OPERATOR))
        assert code == 403, (code, body)  # promotion needs the admin role
        code, body = d.json("POST", "/v1/admin/flows/promote",
                            json.dumps({"to": "production", "versions": {"order": "0" * 12}}),
                            bearer(ADMIN))
        assert code == 409, (code, body)  # not what staging runs: tested something else
        # an operator may put back what production ran, not a version new to
        # it: staging's v2, untested, stays out of production
        v2 = version_of(order_flow("v2"))
        code, body = d.json("POST", "/v1/admin/flows/rollback",
                            json.dumps({"flow": "order", "to_version": v2}), bearer(OPERATOR))
        assert code == 409, (code, body)
        assert "production never ran version %s of order" % v2 in body["error"]["message"], body
        assert answer(PROD_KEY) == "ORDER v1 pizza"

        with open(os.path.join(tests, "order.json"), "w") as f:
            json.dump(order_test("v2"), f)
        rc, out = ctl(d, "promote", "order", "--to", "production", "--tests", tests)
        assert rc == 0, out
        assert "promoted to production" in out, out
        assert answer(PROD_KEY) == "ORDER v2 pizza"

        env = dict(os.environ, CHORUS_ADMIN_TOKEN=OPERATOR)
        r = subprocess.run([os.environ.get("CHORUSCTL", "chorusctl"), "flows", "rollback", "order",
                            "--url", "http://127.0.0.1:%d" % d.port],
                           capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert answer(PROD_KEY) == "ORDER v1 pizza"
        assert answer(STAGE_KEY) == "ORDER v2 pizza"
        hist = db_rows(d, "SELECT action, set_by, version FROM environment_history"
                       " WHERE env = 'production' AND flow = 'order' ORDER BY id")
        assert [h[0] for h in hist][-2:] == ["promote", "rollback"], hist
        assert hist[-1][1] == "op2" and hist[-1][2] == version_of(order_flow("v1")), hist
        actions = [a for (a,) in db_rows(d, "SELECT action FROM audit")]
        assert "promote" in actions and "rollback" in actions, actions

        # A restart rebuilds production from the store, not from the directory (v2).
        d.signal(signal.SIGTERM)
        assert d.wait() == 0
        with d._lock:
            d._err = []
        d.start()
        d.wait_log(event="env_changed", env="production")
        d.wait_log(event="flows_reload", status="loaded")
        assert answer(PROD_KEY) == "ORDER v1 pizza"
        assert answer(STAGE_KEY) == "ORDER v2 pizza"


def test_twilio_numbers_choose_the_environment():
    with daemon("promoted") as d:
        d.wait_log(event="flows_reload", status="loaded")
        d.write_order("v2")
        reload(d)
        tw = Twilio(d, "/v1/sms/twilio")
        stage = Phone(tw, frm="+15551230011", to=STAGE_NUMBER)
        prod = Phone(tw, frm="+15551230012", to=PROD_NUMBER)
        assert stage.texts("I want to order")[-1].startswith("What would you like?")
        assert prod.texts("I want to order")[-1].startswith("What would you like?")
        assert stage.texts("pizza")[-1] == "ORDER v2 pizza"
        assert prod.texts("pizza")[-1] == "ORDER v1 pizza"


if __name__ == "__main__":
    run_tests(globals())
