"""Hot reload on the real chorusd: editing a flow file the way editors save
(write a temporary file, rename it over the old one) is picked up without a
signal and the new text is served; an invalid edit keeps the old version
serving and GET /v1/admin/flows/status reports the problem at file:line; a
fixed edit recovers; POST /v1/admin/flows/reload, chorusctl flows reload
and SIGHUP run the same path; and while several client threads run chat
REST turns without pause, many edits (one of them invalid) fail no request.

Waits poll for a state with a generous deadline; nothing asserts on time."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import http.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, run_tests  # noqa: E402

GW_KEY = "gw-reload-test-5d1e"
OPS = "adm-reload-ops-77aa"


def sha(s):
    return hashlib.sha256(s.encode() if isinstance(s, str) else s).hexdigest()


def bearer(token):
    return {"Authorization": "Bearer " + token}


SETTINGS = {"settings": {"welcome_flow": "welcome", "fallback_flow": "fallback",
                         "confidence_threshold": 0.3}}
WELCOME = {"name": "welcome",
           "intents": {"greeting": {"examples": ["hi", "hello", "hey there", "good morning"]}},
           "nodes": {"greet": {"type": "say", "message": "Welcome."}}}
FALLBACK = {"name": "fallback", "nodes": {"sorry": {"type": "say", "message": "Sorry?"}}}


def ping_flow(reply):
    """The flow under edit; its answer carries the version being served.
    The node is on line 4, so a problem in it is reported at ping.json:4."""
    return ('{"name": "ping",\n'
            ' "intents": {"ping": {"examples": ["ping please", "send a ping", "ping me",'
            ' "can you ping"]}},\n'
            ' "nodes": {\n'
            '  "pong": {"type": "end", "message": "%s"}}}\n' % reply)


BROKEN = ('{"name": "ping",\n'
          ' "intents": {"ping": {"examples": ["ping please", "send a ping"]}},\n'
          ' "nodes": {\n'
          '  "pong": {"type": "no_such_type", "message": "x"}}}\n')


def save(path, text):
    """As editors save: write a temporary file next to it, then rename."""
    tmp = os.path.join(os.path.dirname(path), ".%s.swp" % os.path.basename(path))
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class Flows:
    def __init__(self, root):
        self.dir = os.path.join(root, "flows")
        os.makedirs(self.dir)
        for name, doc in (("settings", SETTINGS), ("welcome", WELCOME), ("fallback", FALLBACK)):
            with open(os.path.join(self.dir, name + ".json"), "w") as f:
                json.dump(doc, f)
        self.ping = os.path.join(self.dir, "ping.json")
        save(self.ping, ping_flow("PONG v1"))


def daemon(flows_cfg=None):
    d = Daemon(config={"chat": {"api_keys": "main:" + sha(GW_KEY)},
                       "admin": {"tokens": "ops:" + sha(OPS)},
                       "flows": flows_cfg or {"reload_debounce_ms": 100,
                                              "rescan_interval_ms": 500}})
    flows = Flows(d.tmp)
    d.args += ["--flows", flows.dir]
    d.flows = flows
    return d


def ping(d, conn=None, text="ping please"):
    """A new conversation asking for a ping (or saying text): the reply text."""
    c = conn or http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    try:
        c.request("POST", "/v1/chat/conversations", b"", bearer(GW_KEY))
        r = c.getresponse()
        body = r.read()
        assert r.status == 201, (r.status, body)
        conv = json.loads(body)["conversation"]
        c.request("POST", "/v1/chat/conversations/%s/messages" % conv,
                  json.dumps({"text": text}),
                  dict(bearer(GW_KEY), **{"Content-Type": "application/json"}))
        r = c.getresponse()
        body = r.read()
        assert r.status == 200, (r.status, body)
        return json.loads(body)["messages"][-1]["text"]
    finally:
        if conn is None:
            c.close()


def status(d, token=OPS):
    code, body = d.json("GET", "/v1/admin/flows/status", headers=bearer(token))
    assert code == 200, (code, body)
    return body


def wait_for(what, fn, timeout=60.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError("never happened: %s (last %r)" % (what, last))


def metric(d, name, labels=""):
    code, _, body = d.request("GET", "/metrics")
    assert code == 200
    for line in body.decode().splitlines():
        if line.startswith(name + labels + " ") or (not labels and line.startswith(name + " ")):
            return float(line.split()[-1])
    return None


def test_edit_is_served_without_a_signal():
    with daemon() as d:
        d.wait_log(event="flows_reload", status="loaded")
        assert ping(d) == "PONG v1"
        v1 = status(d)["in_force"]["version"]
        text = ping_flow("PONG v2")
        save(d.flows.ping, text)
        wait_for("v2 served", lambda: ping(d) == "PONG v2")
        st = status(d)
        assert st["in_force"]["trigger"] == "watch", st
        assert st["in_force"]["version"] > v1, st
        mine = [f for f in st["in_force"]["flows"] if f["name"] == "ping"]
        assert mine and mine[0]["sha256"] == sha(text), st
        assert mine[0]["file"] == "ping.json", st
        assert st["last_attempt"]["result"] == "loaded" and st["last_attempt"]["errors"] == []
        assert metric(d, "chorus_flows_reloads_total", '{result="loaded"}') >= 2
        assert metric(d, "chorus_flows_reload_last_success_timestamp_seconds") > 1.7e9
        assert metric(d, "chorus_flows_reload_duration_seconds_count") >= 2


OUT_OF_SCOPE = ["tell me a joke", "who won the ping pong match", "what is the meaning of life",
                "what is the capital of france", "how tall is mount everest", "sing me a song",
                "recommend a good movie", "how do i bake bread", "what is two plus two",
                "play some music", "set an alarm for seven", "how old is the universe",
                "translate hello into spanish", "what is your favourite colour",
                "who is the president", "how many calories in an apple",
                "tell me about black holes", "a good name for a dog", "how do magnets work",
                "what is the stock price of acme"]


def many_examples():
    """A training file's worth of in-scope examples: calibration needs 1,000."""
    names = ["server%d" % i for i in range(300)]
    return {"ping": ["ping %s" % n for n in names] + ["send a ping to %s" % n for n in names],
            "greeting": ["hello %s" % n for n in names] + ["good morning %s" % n for n in names]}


def test_out_of_scope_examples_calibrate_the_router():
    """Twenty out-of-scope examples, 1,200 more in scope and no
    confidence_threshold: the reload tunes the router's threshold, reports
    it, and the examples go to the fallback."""
    with daemon() as d:
        d.wait_log(event="flows_reload", status="loaded")
        assert status(d)["in_force"]["confidence_threshold"] == 0.3
        # nothing says a ping pong match is out of scope: it goes to the ping flow
        assert ping(d, text="who won the ping pong match") == "PONG v1"
        v1 = status(d)["in_force"]["version"]
        settings = {"settings": {"welcome_flow": "welcome", "fallback_flow": "fallback",
                                 "intents": {"oos": OUT_OF_SCOPE}}}
        save(os.path.join(d.flows.dir, "more.json"), json.dumps({"training": many_examples()}))
        save(os.path.join(d.flows.dir, "settings.json"), json.dumps(settings))
        st = wait_for("the new settings in force",
                      lambda: (lambda s: s if s["in_force"]["version"] > v1 and
                               s["in_force"]["confidence_threshold"] != 0.3 else None)(status(d)))
        tuned = st["in_force"]["confidence_threshold"]
        assert 0 < tuned < 1 and tuned != 0.45, st  # tuned, not the settings' default
        line = d.wait_log(event="flows_loaded", version=str(st["in_force"]["version"]))
        assert abs(float(line["confidence_threshold"]) - tuned) < 0.001, line
        assert ping(d, text="Who won the ping-pong match?") == "Sorry?"
        assert ping(d) == "PONG v1"


def test_invalid_edit_keeps_serving_and_reports_file_line():
    with daemon() as d:
        d.wait_log(event="flows_reload", status="loaded")
        kept = status(d)["in_force"]
        save(d.flows.ping, BROKEN)
        st = wait_for("rejection reported",
                      lambda: (lambda s: s if (s["last_attempt"] or {}).get("result")
                               == "rejected" else None)(status(d)))
        errors = st["last_attempt"]["errors"]
        assert len(errors) == 1, st
        assert "ping.json:4:" in errors[0] and "no_such_type" in errors[0], errors
        assert errors[0].split(":")[3].strip() == "nodes.pong.type", errors
        assert st["in_force"]["version"] == kept["version"], st  # the old set serves
        assert ping(d) == "PONG v1"
        assert metric(d, "chorus_flows_reloads_total", '{result="rejected"}') == 1
        line = d.wait_log(event="flows_reload_problem")
        assert "ping.json:4:" in line["problem"], line
        # a rescan sees the same broken file: not retried on every tick
        n = status(d)["attempts"]["rejected"]
        save(d.flows.ping, ping_flow("PONG v3"))  # the fix
        wait_for("fixed edit served", lambda: ping(d) == "PONG v3")
        st = status(d)
        assert st["last_attempt"]["result"] == "loaded", st
        assert st["attempts"]["rejected"] == n, st


def test_api_sighup_and_chorusctl_run_the_same_path():
    with daemon({"watch": "off"}) as d:
        d.wait_log(event="flows_reload", status="loaded")
        assert status(d)["watch"]["enabled"] is False
        code, body = d.json("POST", "/v1/admin/flows/reload")
        assert code == 401, (code, body)
        save(d.flows.ping, ping_flow("PONG api"))
        code, body = d.json("POST", "/v1/admin/flows/reload", b"", bearer(OPS))
        assert code == 200 and body["result"] == "loaded", (code, body)
        assert body["attempt"]["trigger"] == "api" and body["attempt"]["actor"] == "ops", body
        assert ping(d) == "PONG api"  # answered once the new set is in force

        save(d.flows.ping, BROKEN)
        code, body = d.json("POST", "/v1/admin/flows/reload", b"", bearer(OPS))
        assert code == 422 and body["result"] == "rejected", (code, body)
        assert any("ping.json:4:" in e for e in body["attempt"]["errors"]), body
        assert ping(d) == "PONG api"

        ctl = os.environ.get("CHORUSCTL") or os.path.join(
            os.environ.get("CHORUS_BUILD_DIR", "build"), "chorusctl")
        env = dict(os.environ, CHORUS_ADMIN_TOKEN=OPS)
        url = "http://127.0.0.1:%d" % d.port
        p = subprocess.run([ctl, "flows", "reload", "--url", url], capture_output=True,
                           env=env, timeout=60)
        assert p.returncode == 1 and b"ping.json:4:" in p.stdout, p
        save(d.flows.ping, ping_flow("PONG ctl"))
        p = subprocess.run([ctl, "flows", "reload", "--url", url], capture_output=True,
                           env=env, timeout=60)
        assert p.returncode == 0 and b"loaded" in p.stdout, p
        assert ping(d) == "PONG ctl"
        p = subprocess.run([ctl, "flows", "status", "--url", url], capture_output=True,
                           env=env, timeout=60)
        assert p.returncode == 0, p
        assert sha(ping_flow("PONG ctl"))[:12].encode() in p.stdout, p.stdout

        save(d.flows.ping, ping_flow("PONG hup"))
        d.signal(signal.SIGHUP)
        wait_for("SIGHUP reload", lambda: status(d)["in_force"]["trigger"] == "sighup")
        assert ping(d) == "PONG hup"
        audit = d.log_lines(event="flows_reload")
        triggers = [line["trigger"] for line in audit]
        assert triggers.count("api") == 4 and "sighup" in triggers, triggers


class Load:
    """Client threads running chat turns back to back, counting failures."""

    def __init__(self, d, threads=4):
        self.d = d
        self.stop = threading.Event()
        self.ok = 0
        self.failed = []
        self.replies = set()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run) for _ in range(threads)]

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=30)
        while not self.stop.is_set():
            try:
                reply = ping(self.d, conn)
                with self.lock:
                    self.ok += 1
                    self.replies.add(reply)
            except Exception as e:  # noqa: BLE001 (every failure counts)
                with self.lock:
                    self.failed.append(repr(e))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=30)
        conn.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(60)
        return False


def test_many_edits_under_load_fail_no_request():
    with daemon() as d:
        d.wait_log(event="flows_reload", status="loaded")
        edits = 15
        with Load(d) as load:
            wait_for("load running", lambda: load.ok > 0)
            for i in range(edits):
                version = status(d)["attempts"]
                text = BROKEN if i == edits // 2 else ping_flow("PONG e%d" % i)
                save(d.flows.ping, text)
                key = "rejected" if text == BROKEN else "loaded"
                wait_for("edit %d applied" % i,
                         lambda: status(d)["attempts"][key] > version[key])
            wait_for("last edit served", lambda: ("PONG e%d" % (edits - 1)) in load.replies)
        assert load.failed == [], load.failed[:5]
        assert load.ok > edits, load.ok
        allowed = {"PONG v1"} | {"PONG e%d" % i for i in range(edits)}
        assert load.replies <= allowed, load.replies - allowed
        assert len(load.replies) > edits // 2, load.replies  # the new texts were served
        st = status(d)
        assert st["attempts"]["rejected"] >= 1 and st["last_attempt"]["result"] == "loaded", st


if __name__ == "__main__":
    run_tests(globals())
