"""bench/channels.sh's WebSocket load client (ws_load, built with the
project) against the real daemon on the benchmark's flows: it completes
3-turn conversations with no errors, what it reports agrees with what the
daemon counted, and a bad argument is refused naming it. A benchmark whose
client silently measured nothing (a changed frame, a refused upgrade)
would print a figure all the same; this keeps it honest."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, chorusd_path, run_tests  # noqa: E402

SRC = os.environ.get("CHORUS_SOURCE_DIR", ".")
FLOWS = os.path.join(SRC, "bench", "channels", "flows")
WS_LOAD = os.path.join(os.path.dirname(chorusd_path()), "ws_load")


def metric(d, name):
    status, _, body = d.request("GET", "/metrics")
    assert status == 200, body
    total = 0.0
    for m in re.finditer(r"^%s(?:\{[^}]*\})? (\S+)$" % re.escape(name), body.decode(), re.M):
        total += float(m.group(1))
    return total


def test_conversations_complete_and_match_the_daemon():
    d = Daemon(config={"store": {"path": ":memory:"}},
               args=["--flows", FLOWS])
    d.start()
    try:
        d.wait_log(event="flows_loaded", timeout=60)
        p = subprocess.run([WS_LOAD, str(d.port), "8", "2", "2"], capture_output=True,
                           timeout=60, text=True)
        assert p.returncode == 0, p.stderr
        m = re.match(r"ws turns=(\d+) conversations=(\d+) seconds=([\d.]+) turns_per_s=(\d+) "
                     r"p50_ms=([\d.]+) p99_ms=([\d.]+) errors=(\d+) error_codes=(\S+)$",
                     p.stdout.strip())
        assert m, p.stdout
        turns, convs, secs, rate = int(m[1]), int(m[2]), float(m[3]), int(m[4])
        p50, p99, errors, codes = float(m[5]), float(m[6]), int(m[7]), m[8]
        assert errors == 0 and codes == "none", p.stdout
        assert turns >= 30, p.stdout
        # each of the 8 visitors is at most part-way through one conversation
        # at either end of the measured window
        assert abs(3 * convs - turns) <= 3 * 8 * 2, p.stdout
        # seconds is printed to 0.01 s: the rate agrees with it to 0.5%
        assert 1.9 <= secs <= 5 and abs(rate - turns / secs) <= 1 + rate / 200, p.stdout
        assert 0 < p50 <= p99, p.stdout
        # the daemon ran at least the turns the client counted (it also ran
        # the warm-up's and the start events), every one from a user message
        assert metric(d, "chorus_turns_total") >= turns, p.stdout
        d.stop()
    finally:
        d.kill()


def test_bad_arguments_are_refused():
    for args, what in ((["x", "8", "2"], "PORT"), (["80", "0", "2"], "CONNS"),
                       (["80", "8", "2", "99"], "THREADS"), (["80"], "usage")):
        p = subprocess.run([WS_LOAD] + args, capture_output=True, timeout=10, text=True)
        assert p.returncode == 2, (args, p.returncode)
        assert what in p.stderr, (args, p.stderr)
        assert p.stdout == "", (args, p.stdout)


if __name__ == "__main__":
    run_tests(globals())
