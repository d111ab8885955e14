"""chorusctl report and transcripts against the KPI fixture (store_fixture.py,
the same conversations as the unit tests): JSON, CSV and table agree with the
hand-computed answers; bad arguments and a newer database get clear errors."""
import csv
import http.server
import io
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import store_fixture  # noqa: E402

CTL = os.environ["CHORUSCTL"]


def ctl(*args, expect=0):
    p = subprocess.run([CTL, *args], capture_output=True, text=True, timeout=60)
    assert p.returncode == expect, (args, p.returncode, p.stdout, p.stderr)
    return p


def close(a, b):
    assert a is not None and abs(a - b) < 1e-9, (a, b)


def check_url_mode(path):
    body = ctl("report", "--db", path, "--by", "channel", "--format", "json").stdout.encode()
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.path, self.headers.get("Authorization")))
            ok = self.headers.get("Authorization") == "Bearer s3cret"
            data = body if ok else b'{"error":{"code":"unauthorized","message":"bad token"}}'
            self.send_response(200 if ok else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d" % srv.server_address[1]
    try:
        want = ctl("report", "--db", path, "--by", "channel").stdout
        got = ctl("report", "--url", url, "--token", "s3cret", "--by", "channel", "--from",
                  "2026-11-01").stdout
        assert got == want, (got, want)
        req, auth = seen[0]
        assert auth == "Bearer s3cret", seen
        u = urllib.parse.urlparse(req)
        q = urllib.parse.parse_qs(u.query)
        assert u.path == "/v1/admin/reports/kpis", req
        assert q["by"] == ["channel"] and q["from"] == ["2026-11-01"], q
        p = ctl("report", "--url", url, "--token", "wrong", expect=1)
        assert "answered 401" in p.stderr and "bad token" in p.stderr, p.stderr
        # a trailing slash names the same base URL
        assert ctl("report", "--url", url + "/", "--token", "s3cret", "--by", "channel",
                   "--from", "2026-11-01").stdout == want
        assert urllib.parse.urlparse(seen[-1][0]).path == "/v1/admin/reports/kpis", seen
        # prices apply to --db only: over --url the daemon's are used
        p = ctl("report", "--url", url, "--token", "s3cret", "--message-cost", "1", expect=2)
        assert "apply to --db" in p.stderr, p.stderr
        # an empty or backwards window, and a date not on the calendar, are refused
        p = ctl("report", "--db", path, "--from", "2026-12-01", "--to", "2026-11-01", expect=2)
        assert "--to must be after --from" in p.stderr, p.stderr
        p = ctl("report", "--db", path, "--from", "2026-11-31", expect=2)
        assert "no such date" in p.stderr, p.stderr
        p = ctl("report", "--db", path, "--json", expect=2)  # an option it does not know
        assert "unknown option --json" in p.stderr, p.stderr
    finally:
        srv.shutdown()


def main():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "chorus.db")
        store_fixture.make_db(CTL, path)
        prices = ["--price-in", "1", "--price-out", "2", "--message-cost", "0.001",
                  "--message-costs", "sms=0.01"]

        r = json.loads(ctl("report", "--db", path, "--format", "json", *prices).stdout)
        t = r["total"]
        assert t["conversations"] == 5 and t["ended"] == 4, t
        close(t["containment_rate"], 0.25)
        close(t["escalation_rate"], 0.5)
        assert t["escalations_by_reason"] == {"user_request": 1, "low_confidence": 1}
        close(t["abandonment_rate"], 0.25)
        close(t["avg_handle_time_s"], 5.0)
        close(t["turns_per_conversation"], 1.25)
        close(t["latency_p50_ms"], 300)
        close(t["latency_p99_ms"], 600)
        close(t["failure_rate"], 1 / 6)
        close(t["oos_rate"], 1 / 6)
        close(t["routing_accuracy"], 0.75)
        close(t["csat_avg"], 4.0)
        close(t["csat_response_rate"], 0.5)
        close(t["cost"], 0.0502)

        r = json.loads(ctl("report", "--db", path, "--by", "channel", "--bucket", "day",
                           "--format", "json").stdout)
        keys = [(row["channel"], row["bucket"]) for row in r["rows"]]
        assert keys == [("sms", "2026-11-03"), ("sms", "2026-11-10"), ("web", "2026-11-02"),
                        ("web", "2026-11-03")], keys

        # the window selects by start time: 2026-11-03 holds c3 and c5
        r = json.loads(ctl("report", "--db", path, "--from", "2026-11-03", "--to",
                           "2026-11-04", "--format", "json").stdout)
        assert r["total"]["conversations"] == 2, r["total"]

        out = ctl("report", "--db", path, "--by", "channel", "--format", "csv", *prices).stdout
        rows = list(csv.DictReader(io.StringIO(out)))
        assert [row["channel"] for row in rows] == ["sms", "web", "TOTAL"], rows
        sms = rows[0]
        assert sms["abandonment_rate"] == "1" and sms["csat_avg"] == "", sms
        close(float(rows[2]["cost"]), 0.0502)

        out = ctl("report", "--db", path, "--by", "flow").stdout
        lines = out.splitlines()
        assert lines[0].split()[:3] == ["flow", "convs", "contain"], lines[0]
        assert lines[1].split()[:3] == ["booking", "3", "33.3%"], lines[1]
        assert lines[-1].startswith("TOTAL"), lines[-1]

        out = ctl("transcripts", "--db", path, "list", "--outcome", "escalated").stdout
        ids = [line.split()[0] for line in out.splitlines()[1:]]
        assert ids == ["c5", "c2"], ids
        out = ctl("transcripts", "--db", path, "show", "c2").stdout
        assert "outcome escalated, reason user_request, CSAT 3" in out, out
        assert "intent=cancel conf=0.80 label=refund" in out, out
        assert "action cancel_booking error" in out, out
        shown = json.loads(ctl("transcripts", "--db", path, "show", "c1", "--format",
                               "json").stdout)
        assert [t["seq"] for t in shown["turns"]] == [1, 2, 3, 4], shown
        p = ctl("transcripts", "--db", path, "show", "nope", expect=1)
        assert "no conversation nope" in p.stderr, p.stderr

        # chorusctl label: c5's user turn was "x"; labelling it "faq_hours" adds a
        # wrong routing (3 of 5 right); a bot turn or a missing turn is refused
        out = ctl("label", "--db", path, "c5", "1", "faq_hours", "--by", "qa").stdout
        assert "labelled c5 #1 as faq_hours" in out, out
        p = ctl("label", "--db", path, "c5", "2", "faq", expect=1)
        assert "conversation c5 has no user turn 2" in p.stderr, p.stderr
        p = ctl("label", "--db", path, "nobody", "1", "faq", expect=1)
        assert "conversation nobody has no user turn 1" in p.stderr, p.stderr
        r = json.loads(ctl("report", "--db", path, "--format", "json").stdout)
        assert r["total"]["labelled_turns"] == 5, r["total"]
        close(r["total"]["routing_accuracy"], 0.6)
        db = sqlite3.connect(path)
        audit = db.execute("SELECT actor, action, target FROM audit").fetchall()
        db.close()
        assert audit == [("qa", "label", "c5")], audit

        p = ctl("report", "--db", path, "--by", "colour", expect=2)
        assert 'unknown slice "colour"' in p.stderr, p.stderr
        p = ctl("report", "--db", path, "--from", "last tuesday", expect=2)
        assert '"last tuesday"' in p.stderr, p.stderr
        p = ctl("report", "--db", os.path.join(tmp, "missing.db"), expect=1)
        assert "missing.db" in p.stderr, p.stderr

        # --url: the same table from the admin API's JSON (a stand-in server
        # answering with what --db computes), the token sent as a bearer
        check_url_mode(path)

        # a database written by a newer chorus is refused, by name
        db = sqlite3.connect(path)
        db.execute("INSERT INTO schema_migrations VALUES (99, 0, 'future')")
        db.commit()
        db.close()
        p = ctl("report", "--db", path, expect=1)
        assert "schema version 99 is newer than this chorus" in p.stderr, p.stderr
        p = ctl("store-load", "--db", path, "--turns", "1", expect=1)
        assert "schema version 99 is newer than this chorus" in p.stderr, p.stderr
    print("ok")


if __name__ == "__main__":
    main()
