"""chorusctl test on files a flow developer gets wrong (docs/testing-flows.md):
a misspelt or wrongly typed expectation, which would check nothing and pass,
fails the file with its line, column and JSON path; a JSON syntax error
names its line and column; a "now" that is not on the calendar or not UTC is
refused; and a path with no tests at all fails (exit 1), so that the
promotion gate (`flows promote --tests`) never passes on an empty set; an
option a command does not use is refused, not ignored."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import run_tests  # noqa: E402

CTL = os.environ["CHORUSCTL"]
FLOWS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "flows")


def run(*paths):
    return subprocess.run([CTL, "test", "--flows", FLOWS, *paths], capture_output=True,
                          text=True, timeout=60)


def write(tmp, name, text):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_misspelt_expectations_fail_with_their_place():
    tmp = tempfile.mkdtemp(prefix="chorus-ctl-test-")
    path = write(tmp, "typo.json", '{"tests": [{"name": "typo", "turns": [\n'
                 '  {"event": "start", "bot_contain": "NOT THERE", "stauts": "ended"},\n'
                 '  {"user": "hi", "slots": {"x": 2}, "csat": 9, "handoff": 3}]}],\n'
                 ' "mocks": [{"url_contains": "/x", "staus": 200}]}\n')
    p = run(path)
    assert p.returncode == 1, (p.stdout, p.stderr)
    out = p.stdout
    for where, what in (("2:", "tests[0].turns[0].bot_contain: unknown key"),
                        ("2:", "tests[0].turns[0].stauts: unknown key"),
                        ("3:", "tests[0].turns[1].slots.x: a slot's value is a string"),
                        ("3:", "tests[0].turns[1].csat: must be a rating from 1 to 5"),
                        ("3:", "tests[0].turns[1].handoff: must be a reason"),
                        ("4:", "mocks[0].staus: unknown key")):
        assert "FAIL %s:%s" % (path, where) in out and what in out, (what, out)
    assert "0 passed, 1 failed" in out, out
    # the same test spelt right runs (and fails on what the bot says)
    good = write(tmp, "good.json", '{"tests": [{"name": "right", "turns": ['
                 '{"event": "start", "bot_contains": "NOT THERE"}]}]}\n')
    p = run(good)
    assert p.returncode == 1 and "no bot message contains \"NOT THERE\"" in p.stdout, p.stdout


def test_syntax_error_names_line_and_column():
    tmp = tempfile.mkdtemp(prefix="chorus-ctl-test-")
    path = write(tmp, "syn.json", '{"tests": [\n  {"name": "x",}\n]}\n')
    p = run(path)
    assert p.returncode == 1 and "FAIL %s:2:" % path in p.stdout, p.stdout


def test_now_must_be_a_utc_calendar_time():
    tmp = tempfile.mkdtemp(prefix="chorus-ctl-test-")
    for now in ("2026-02-30", "2026-11-29T10:00:00+05:00", "2026-11-29 whatever"):
        path = write(tmp, "now.json", '{"tests": [{"name": "n", "now": "%s", "turns": ['
                     '{"event": "start"}]}]}\n' % now)
        p = run(path)
        assert p.returncode == 1 and "bad \"now\"" in p.stdout, (now, p.stdout)
    path = write(tmp, "now.json", '{"tests": [{"name": "n", "now": "2026-11-29T10:00:00Z",'
                 ' "turns": [{"event": "start"}]}]}\n')
    assert run(path).returncode == 0


def test_no_tests_is_a_failure():
    tmp = tempfile.mkdtemp(prefix="chorus-ctl-test-")
    empty = os.path.join(tmp, "empty")
    os.mkdir(empty)
    p = run(empty)
    assert p.returncode == 1 and "no tests found in %s" % empty in p.stdout, p.stdout
    p = run(write(tmp, "none.json", '{"tests": []}\n'))
    assert p.returncode == 1 and "no tests found" in p.stdout, p.stdout
    # more paths than any fixed table held
    many = [write(tmp, "t%d.json" % i, '{"tests": [{"name": "t", "turns": ['
                  '{"event": "start"}]}]}\n') for i in range(70)]
    p = run(*many)
    assert p.returncode == 0 and "70 passed, 0 failed" in p.stdout, p.stdout[-300:]


def test_options_a_command_does_not_use_are_refused():
    """Not silently ignored: two directories to validate, or a rollout
    option the action does not take."""
    def refused(args, want):
        p = subprocess.run([CTL, *args], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, CHORUS_ADMIN_TOKEN="t"))
        assert p.returncode == 2 and want in p.stderr, (args, p.returncode, p.stderr)
    refused(["validate", FLOWS, FLOWS], "one directory only")
    refused(["rollout", "status", "--env", "staging"], "status does not take --env")
    refused(["rollout", "abort", "orders", "--percent", "3"], "abort does not take --percent")
    refused(["rollout", "promote", "orders", "--candidate", "abc"],
            "promote does not take --candidate")


if __name__ == "__main__":
    run_tests(globals())
