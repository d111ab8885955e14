"""The turn runtime inside the real chorusd: `--check` reports flow problems,
the intent-router model is cached across restarts, SIGHUP reloads flows (a
bad edit keeps the flows in force), and backend and LLM failures take the
flows' error edges through the chat API, with real loopback servers standing
in for the airline backend (tests/stubs/backend.py) and an OpenAI-compatible
LLM (tests/stubs/llm.py)."""

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, chorusd_path, run_tests  # noqa: E402

SRC = os.environ.get("CHORUS_SOURCE_DIR", ".")
FLOWS = os.path.join(SRC, "flows")
KEY = "gw-runtime-key-31d9"
LLM_KEY = "sk-runtime-test"


def auth():
    return {"Authorization": "Bearer " + KEY}


class Stub:
    """A stub server from tests/stubs on a free loopback port."""

    def __init__(self, script, *args):
        cmd = [sys.executable, os.path.join(SRC, "tests", "stubs", script)] + list(args)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        m = re.search(r"READY port=(\d+)", line)
        assert m, "%s did not start: %r" % (script, line)
        self.url = "http://127.0.0.1:%s" % m.group(1)

    def requests(self):
        import urllib.request
        with urllib.request.urlopen(self.url + "/_stub/requests", timeout=10) as r:
            return json.loads(r.read())

    def close(self):
        self.proc.kill()
        self.proc.wait()


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def daemon(env=None, flows=FLOWS, args=()):
    cfg = {"chat": {"api_keys": "main:" + hashlib.sha256(KEY.encode()).hexdigest()}}
    e = {"CHORUS_LLM_API_KEY": LLM_KEY}
    e.update(env or {})
    return Daemon(config=cfg, args=["--flows", flows] + list(args), env=e)


def start(d):
    status, reply = d.json("POST", "/v1/chat/conversations", None, auth())
    assert status == 201, (status, reply)
    return reply["conversation"]


def say(d, conv, text, timeout=30.0):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=timeout)
    try:
        conn.request("POST", "/v1/chat/conversations/%s/messages" % conv,
                     body=json.dumps({"text": text}),
                     headers=dict(auth(), **{"Content-Type": "application/json"}))
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def texts(reply):
    return " ".join(m["text"] for m in reply["messages"])


def copy_flows():
    tmp = tempfile.mkdtemp(prefix="chorus-flows-")
    dst = os.path.join(tmp, "flows")
    shutil.copytree(FLOWS, dst)
    return tmp, dst


def break_flow(flows_dir):
    """Points refund_status's lookup at a node that does not exist."""
    path = os.path.join(flows_dir, "refund_status.json")
    with open(path) as f:
        text = f.read()
    text = text.replace('"next": "by_state"', '"next": "by_stat"', 1)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_check_reports_flow_problems():
    tmp, flows = copy_flows()
    try:
        ok = subprocess.run([chorusd_path(), "--check", "--flows", flows],
                            capture_output=True, text=True, timeout=60, cwd=tmp)
        assert ok.returncode == 0, ok.stderr
        path = break_flow(flows)
        bad = subprocess.run([chorusd_path(), "--check", "--flows", flows],
                             capture_output=True, text=True, timeout=60, cwd=tmp)
        assert bad.returncode == 1, (bad.returncode, bad.stderr)
        # file:line:col: json.path: message, naming the unknown node
        m = re.search(re.escape(path) + r":(\d+):(\d+): nodes\.lookup\.next: .*by_stat",
                      bad.stderr)
        assert m, bad.stderr
        assert int(m.group(1)) > 1 and int(m.group(2)) > 1, m.group(0)
        # and the daemon refuses to start on them
        p = subprocess.run([chorusd_path(), "--listen", "127.0.0.1:0", "--flows", flows,
                            "--data-dir", tmp], capture_output=True, text=True, timeout=60,
                           cwd=tmp)
        assert p.returncode == 1 and "by_stat" in p.stderr, (p.returncode, p.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_model_cache_survives_restart():
    data = tempfile.mkdtemp(prefix="chorus-data-")
    try:
        with daemon(args=["--data-dir", data]) as d:
            line = d.wait_log(event="flows_loaded", timeout=120)
            assert line["nlu"] == "trained", line
        assert os.path.getsize(os.path.join(data, "nlu", "model.bin")) > 64
        with daemon(args=["--data-dir", data]) as d:
            line = d.wait_log(event="flows_loaded", timeout=120)
            assert line["nlu"] == "cached", line
            conv = start(d)
            status, reply = say(d, conv, "how much baggage can I take")
            assert status == 200, reply
    finally:
        shutil.rmtree(data, ignore_errors=True)


def test_sighup_reload_keeps_flows_on_error():
    tmp, flows = copy_flows()
    backend = Stub("backend.py")
    try:
        with daemon(env={"CHORUS_BACKEND_URL": backend.url}, flows=flows) as d:
            first = d.wait_log(event="flows_loaded", timeout=120)
            path = break_flow(flows)
            d.signal(signal.SIGHUP)
            rejected = d.wait_log(event="flows_rejected", timeout=120)
            assert rejected["kept_version"] == first["version"], (rejected, first)
            d.wait_log(event="flow_problem")
            # still serving on the flows in force
            conv = start(d)
            status, reply = say(d, conv, "check refund RF1001")
            assert status == 200 and "approved" in texts(reply), reply
            # a good edit is swapped in
            with open(path) as f:
                text = f.read().replace('"next": "by_stat"', '"next": "by_state"', 1)
            text = text.replace("Good news: refund", "Great news: refund")
            with open(path, "w") as f:
                f.write(text)
            d.signal(signal.SIGHUP)
            d.wait_log(event="flows_loaded", version=int(first["version"]) + 2, timeout=120)
            status, reply = say(d, start(d), "check refund RF1001")
            assert status == 200 and "Great news" in texts(reply), reply
    finally:
        backend.close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_backend_failures_take_error_edges():
    backend = Stub("backend.py")
    try:
        # booking lookup has one retry: refused and 500 are tried twice; a 200
        # whose body is not JSON is an answer, so it is not retried
        cases = [
            ("http://127.0.0.1:%d" % closed_port(), "refused", "2"),
            (backend.url + "/mode/500", "500", "2"),
            (backend.url + "/mode/malformed", "malformed", "1"),
        ]
        for url, what, attempts in cases:
            with daemon(env={"CHORUS_BACKEND_URL": url}) as d:
                d.wait_log(event="flows_loaded", timeout=120)
                conv = start(d)
                status, reply = say(d, conv, "check booking ABC123")
                assert status == 200, (what, reply)
                assert reply["status"] == "handoff", (what, reply)
                assert reply["handoff"]["queue"] == "bookings", (what, reply)
                assert "isn't answering" in texts(reply), (what, reply)
                # the log line is written before the reply but read by another thread
                line = d.wait_log(event="effect", flow="booking_status", node="lookup")
                assert line["attempts"] == attempts, (what, line)
    finally:
        backend.close()


def test_llm_answer_and_failures():
    llm = Stub("llm.py", "--key", LLM_KEY)
    try:
        with daemon(env={"CHORUS_LLM_BASE_URL": llm.url + "/v1"}) as d:
            d.wait_log(event="flows_loaded", timeout=120)
            conv = start(d)
            status, reply = say(d, conv, "can I bring my dog on the plane")
            assert status == 200, reply
            assert texts(reply) == "echo: can I bring my dog on the plane", reply
            seen = llm.requests()[-1]
            assert seen["problems"] == [], seen
            assert seen["headers"]["authorization"] == "Bearer " + LLM_KEY, seen
            assert seen["body"]["model"] == "chorus-travel-assistant", seen
            assert LLM_KEY not in d.stderr_text()  # the key never reaches the log
            line = d.wait_log(event="effect", kind="llm")
            assert line["status"] == "200" and line["error"] == "none", line
        for mode in ("500", "malformed", "nocontent"):
            with daemon(env={"CHORUS_LLM_BASE_URL": "%s/mode/%s/v1" % (llm.url, mode)}) as d:
                d.wait_log(event="flows_loaded", timeout=120)
                status, reply = say(d, start(d), "do I need a visa to travel to the US")
                assert status == 200, (mode, reply)
                assert "can't answer that right now" in texts(reply), (mode, reply)
                assert reply["status"] == "active", (mode, reply)
    finally:
        llm.close()


def test_double_text_queues_and_other_conversations_do_not_wait():
    backend = Stub("backend.py")
    try:
        with daemon(env={"CHORUS_BACKEND_URL": backend.url}) as d:
            d.wait_log(event="flows_loaded", timeout=120)
            conv = start(d)
            other = start(d)
            results = {}

            def send(name, c, text):
                results[name] = say(d, c, text)

            # The backend never answers HANG12: the lookup times out twice
            # (3 s, one retry) and the flow hands off.
            stuck = threading.Thread(target=send, args=("stuck", conv, "check booking HANG12"))
            stuck.start()
            while not any(r["path"] == "/bookings/HANG12" for r in backend.requests()):
                time.sleep(0.02)
            # a double text queues behind the turn waiting on the backend
            again = threading.Thread(target=send, args=("again", conv, "thanks"))
            again.start()
            # another conversation is answered meanwhile
            status, reply = say(d, other, "check refund RF1001")
            assert status == 200 and "approved" in texts(reply), reply
            assert "stuck" not in results and "again" not in results, results
            stuck.join(60)
            again.join(60)
            s1, r1 = results["stuck"]
            s2, r2 = results["again"]
            assert s1 == 200 and r1["status"] == "handoff", r1
            assert r1["handoff"]["reason"] == "backend_unavailable", r1
            assert s2 == 200, r2
            # the queued message ran after the first turn finished
            assert min(m["seq"] for m in r2["messages"] or [{"seq": 10**9}]) > \
                max(m["seq"] for m in r1["messages"]), (r1, r2)
            line = d.wait_log(event="effect", flow="booking_status", node="lookup")
            assert line["error"] == "timeout" and line["attempts"] == "2", line
    finally:
        backend.close()


if __name__ == "__main__":
    run_tests(globals())
