"""The queues file through the real chorusd: a bad file is refused at start
and by --check with file:line:col diagnostics; SIGHUP re-reads it, and a
reload that finds it broken keeps the queues in force."""
import json
import os
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, DaemonError, chorusd_path, run_tests  # noqa: E402
from test_agents import escalate, transcript, wait_for  # noqa: E402
from test_agents import daemon as agents_daemon  # noqa: E402

SRC = os.environ.get("CHORUS_SOURCE_DIR", ".")

BAD = """{
  "queues": [
    {"name": "bookings",
     "hours": {"tz": "Mars/Olympus_Mons", "mon": "09:00-17:30", "tue": "17:00-09:00"},
     "max_wait": 600,
     "when_unavailable": "email"},
    {"name": "bookings", "max_wait_s": "ten minutes"}
  ],
  "routes": {"guardrail": 7}
}
"""


def check(queues_path):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"agents": {"queues_file": queues_path}}, f)
        cfg = f.name
    try:
        p = subprocess.run([chorusd_path(), "--check", "--config", cfg, "--flows",
                            os.path.join(SRC, "flows")], capture_output=True, timeout=60)
        return p.returncode, p.stderr.decode()
    finally:
        os.unlink(cfg)


def test_check_names_every_problem_with_its_position():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "queues.json")
        with open(path, "w") as f:
            f.write(BAD)
        rc, err = check(path)
        assert rc == 1, (rc, err)
        want = [
            (":4:22: queues[0].hours.tz: is not a known IANA time zone", "unknown zone"),
            (":4:72: queues[0].hours.tue: must be \"HH:MM-HH:MM\"", "close before open"),
            (":5:18: queues[0].max_wait: unknown key", "typo"),
            (":6:26: queues[0].when_unavailable: must be \"callback\" or \"bot\"", "bad choice"),
            (":7:14: queues[1].name: names a queue already defined above", "duplicate"),
            (":7:40: queues[1].max_wait_s: must be an integer", "wrong type"),
            (":9:27: routes.guardrail: must be a queue name", "route"),
        ]
        for text, why in want:
            assert path + text in err, (why, text, err)
        assert "7 problems found" in err, err
        # a syntax error is a position too
        with open(path, "w") as f:
            f.write('{"queues": [\n  {"name": "a",}\n]}\n')
        rc, err = check(path)
        assert rc == 1 and path + ":2:" in err, (rc, err)
        # no file at all is fine: every queue is always open
        rc, err = check(os.path.join(tmp, "absent.json"))
        assert rc == 0, (rc, err)


def test_check_names_bad_disposition_codes():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "queues.json")
        with open(path, "w") as f:
            f.write('{"dispositions": ["resolved", "resolved", "not a code", 7, ""]}\n')
        rc, err = check(path)
        assert rc == 1, (rc, err)
        for text in (":1:31: dispositions[1]: is listed already above",
                     ":1:43: dispositions[2]: must be a code of 1-64 letters",
                     ":1:57: dispositions[3]: must be a code",
                     ":1:60: dispositions[4]: must be a code"):
            assert path + text in err, (text, err)
        assert "4 problems found" in err, err
        with open(path, "w") as f:
            f.write('{"dispositions": "resolved"}\n')
        rc, err = check(path)
        assert rc == 1 and "dispositions: must be an array" in err, (rc, err)
        with open(path, "w") as f:
            f.write('{"dispositions": ["resolved", "refund_issued", "called-back", "v2.1"]}\n')
        rc, err = check(path)
        assert rc == 0, (rc, err)


def test_daemon_refuses_to_start_with_a_bad_file():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "queues.json")
        with open(path, "w") as f:
            f.write(BAD)
        d = Daemon(config={"agents": {"queues_file": path}},
                   args=["--flows", os.path.join(SRC, "flows")])
        try:
            d.start()
        except DaemonError as e:
            assert d.proc.returncode not in (None, 0), d.proc.returncode
            assert "queues[0].hours.tz" in str(e), str(e)
        else:
            d.kill()
            raise AssertionError("chorusd started with a bad queues file")
        finally:
            d.cleanup()


def queue_file(path, message):
    with open(path, "w") as f:
        json.dump({"queues": [{"name": "bookings", "wait_message": message}],
                   "routes": {"user_requested_human": "bookings"}}, f)


def system_notes(d, conv):
    return wait_for(lambda: [m["text"] for m in transcript(d, conv) if m.get("from") == "system"],
                    "the queue's message")


def test_sighup_rereads_the_file_and_a_broken_one_keeps_the_queues():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "queues.json")
        queue_file(path, "First words: number {position}.")
        with agents_daemon(tmp_queues=path) as d:
            assert system_notes(d, escalate(d)) == ["First words: number 1."]
            queue_file(path, "Second words: number {position}.")
            d.signal(signal.SIGHUP)
            wait_for(lambda: len(d.log_lines(event="queues_loaded")) == 2, "the reload")
            assert system_notes(d, escalate(d)) == ["Second words: number 2."]
            # a broken file is logged, problem by problem, and changes nothing
            with open(path, "w") as f:
                f.write('{"queues": [{"name": "bookings", "max_wait_s": -1}]}')
            d.signal(signal.SIGHUP)
            kept = d.wait_log(event="queues_reload", status="kept_previous")
            assert kept["queues"] == "1", kept
            problem = d.log_lines(event="queues_invalid")[-1]["problem"]
            assert "queues[0].max_wait_s" in problem, problem
            assert system_notes(d, escalate(d)) == ["Second words: number 3."]


if __name__ == "__main__":
    run_tests(globals())
