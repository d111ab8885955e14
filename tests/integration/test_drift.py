"""Drift detection inside chorusd: with the recent hour like the day before
it, the scheduled check stays quiet; after a traffic shift (a new kind of
request and more out-of-scope turns) it raises an alert: one log line naming
the signals and the intent that moved, GET /v1/admin/drift, a Prometheus
counter, and a JSON POST to the configured webhook, received by a server
the test runs."""
import hashlib
import http.server
import json
import os
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon  # noqa: E402

SRC = os.environ.get("CHORUS_SOURCE_DIR", ".")
TOKEN = "drift-viewer-token-51c0"
AUTH = {"Authorization": "Bearer " + TOKEN}
HOUR = 3600 * 1_000_000


class Hook(http.server.BaseHTTPRequestHandler):
    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def add_turns(db, prefix, start_us, end_us, mix):
    """mix: [(intent or None for out of scope, count)], spread over the window."""
    n = sum(c for _, c in mix)
    step = (end_us - start_us) // (n + 1)
    k = 0
    for intent, count in mix:
        for _ in range(count):
            ts = start_us + step * (k + 1)
            cid = "%s-%d" % (prefix, k)
            db.execute("INSERT INTO conversations (id, channel, flow, started_us, ended_us,"
                       " outcome) VALUES (?,?,?,?,?,?)",
                       (cid, "web", "welcome", ts, ts + 1000, "contained"))
            db.execute("INSERT INTO turns (conversation_id, seq, direction, ts_us, text, intent,"
                       " confidence, oos, channel) VALUES (?,?,?,?,?,?,?,?,?)",
                       (cid, 1, "in", ts, "x", intent, 0.9 if intent else None,
                        0 if intent else 1, "web"))
            k += 1
    db.commit()


def drift(d):
    status, body = d.json("GET", "/v1/admin/drift", headers=AUTH)
    assert status == 200, (status, body)
    return body


def wait_check_after(d, t_us, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = drift(d)["last"]
        if last and last["at_us"] > t_us:
            return last
        time.sleep(0.2)
    raise AssertionError("no drift check after %d" % t_us)


def test_quiet_then_alert():
    srv = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    cfg = {"admin": {"tokens": "ops:viewer:" + hashlib.sha256(TOKEN.encode()).hexdigest()},
           "drift": {"interval_s": 1, "recent_s": 3600, "baseline_s": 86400, "min_turns": 50,
                     "webhook_url": "http://127.0.0.1:%d/drift" % srv.server_port}}
    with Daemon(config=cfg, args=["--flows", os.path.join(SRC, "flows")]) as d:
        db = sqlite3.connect(os.path.join(d.data_dir, "chorus.db"), timeout=10)
        now = int(time.time() * 1e6)
        usual = [("booking_status", 50), ("baggage_allowance", 30), ("refund_status", 20)]
        add_turns(db, "base", now - 20 * HOUR, now - 2 * HOUR, [(i, c * 4) for i, c in usual])
        add_turns(db, "same", now - 50 * 60 * 1_000_000, now - 60 * 1_000_000, usual)
        t = int(time.time() * 1e6)
        last = wait_check_after(d, t)
        assert last["enough_data"] and not last["drift"], last
        assert last["alerts"] == [], last
        assert not d.log_lines(event="drift_alert"), d.stderr_text()
        # the shift: a new request, and a share of turns nobody understood
        add_turns(db, "shift", now - 40 * 60 * 1_000_000, now - 30 * 1_000_000,
                  [("travel_question", 150), (None, 60)])
        t = int(time.time() * 1e6)
        last = wait_check_after(d, t)
        assert last["drift"], last
        signals = {a["signal"] for a in last["alerts"]}
        assert {"intent_distribution", "oos_rate"} <= signals, signals
        assert last["distribution"]["moved"][0]["intent"] == "travel_question", last
        line = d.wait_log(event="drift_alert")
        assert "intent_distribution" in line["signals"], line
        assert line["moved"].split(",")[0] == "travel_question", line
        status, _, body = d.request("GET", "/metrics")
        assert 'chorus_drift_alerts_total{signal="intent_distribution"}' in body.decode(), body
        deadline = time.monotonic() + 10
        while not Hook.received and time.monotonic() < deadline:
            time.sleep(0.1)
        assert Hook.received and Hook.received[0]["drift"] is True, Hook.received
        status, body = d.json("GET", "/v1/admin/drift")
        assert status == 401, body
    srv.shutdown()


if __name__ == "__main__":
    test_quiet_then_alert()
    print("ok test_quiet_then_alert")
