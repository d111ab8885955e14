"""chorusd's process lifecycle: SIGTERM drain with a request in flight, the
drain timeout, SIGHUP reload of limits (and the restart notice for
`listen`), and `--check` on broken configs."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, chorusd_path, read_response, recv_until_closed, run_tests  # noqa: E402


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True


def in_flight(d, length, part):
    """A request the daemon is known to be reading: it answered 100-continue."""
    s = d.connect()
    s.sendall(b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
              b"Content-Length: %d\r\n\r\n" % length)
    status, _, _, rest = read_response(s)
    assert status == 100 and rest == b"", status
    s.sendall(part)
    return s


def test_sigterm_drains_in_flight_request():
    with Daemon(config={"shutdown": {"drain_timeout_ms": 20000}}) as d:
        idle = d.connect()
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(idle)[0] == 200
        slow = in_flight(d, 14, b'{"slow"')
        d.signal(signal.SIGTERM)
        d.wait_log(event="drain")
        # the idle keep-alive connection is closed, new ones are refused
        assert recv_until_closed(idle) == b""
        for _ in range(200):
            if refused(d.port):
                break
            time.sleep(0.02)
        assert refused(d.port)
        assert d.proc.poll() is None, "exited before the in-flight request finished"
        slow.sendall(b": true}")
        status, headers, body, _ = read_response(slow)
        assert status == 200 and json.loads(body) == {"echo": {"slow": True}}, body
        assert headers["connection"] == "close"
        assert d.wait() == 0
        d.wait_log(event="drained")
        d.wait_log(event="stopped", exit_code=0)


def test_drain_timeout_closes_stuck_requests():
    with Daemon(config={"shutdown": {"drain_timeout_ms": 200},
                        "http": {"body_timeout_ms": 60000}}) as d:
        stuck = in_flight(d, 100, b"{")
        d.signal(signal.SIGTERM)
        assert d.wait() == 0
        d.wait_log(event="drain_timeout")
        assert recv_until_closed(stuck) == b""


def test_sighup_applies_changed_limit():
    cfg = {"listen": "127.0.0.1:0", "http": {"max_body_bytes": 100000}}
    with Daemon(config=cfg, listen=None) as d:
        body = json.dumps({"pad": "x" * 2000}).encode()
        assert d.request("POST", "/v1/echo", body)[0] == 200
        cfg["http"]["max_body_bytes"] = 1000
        d.write_config(cfg)
        d.signal(signal.SIGHUP)
        d.wait_log(event="reload", status="applied")
        status, _, data = d.request("POST", "/v1/echo", body)
        assert status == 413, status
        assert d.request("POST", "/v1/echo", b'{"small":1}')[0] == 200
        # listen cannot change without a restart: say so, keep serving on the old port
        cfg["listen"] = "127.0.0.1:1"
        d.write_config(cfg)
        d.signal(signal.SIGHUP)
        line = d.wait_log(event="reload", restart_required="listen")
        assert line["level"] == "warn", line
        assert d.request("GET", "/healthz")[0] == 200


def test_sighup_with_broken_config_keeps_serving():
    cfg = {"http": {"max_body_bytes": 100000}}
    with Daemon(config=cfg) as d:
        with open(d.config_path, "w") as f:
            f.write('{"http": {"max_body_bytes": "big"}}')
        d.signal(signal.SIGHUP)
        d.wait_log(event="reload", status="kept_previous_config")
        body = json.dumps({"pad": "x" * 2000}).encode()
        assert d.request("POST", "/v1/echo", body)[0] == 200


def check(text):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        p = subprocess.run([chorusd_path(), "--check", "--config", path], capture_output=True,
                           timeout=30)
        return p.returncode, p.stderr.decode(), path
    finally:
        os.unlink(path)


def test_check_reports_file_line_col():
    cases = [
        ('{\n  "http": {\n    "max_body_bytes": 12,\n  }\n}\n', None),
        ('{\n  "http": {\n    "max_headers": 5\n  }\n}\n', r":3:\d+: http\.max_headers"),
        ('{\n  "nope": 1\n}\n', r":2:\d+: nope"),
        ('{\n  "websocket": {"ping_interval_ms": "soon"}\n}\n',
         r":2:\d+: websocket\.ping_interval_ms"),
        ('{"listen": "127.0.0.1:70000"}', r":1:\d+: listen"),
    ]
    for text, pattern in cases:
        code, err, path = check(text)
        assert code == 1, (text, code, err)
        assert re.search(re.escape(path) + r":\d+:\d+: ", err), err
        if pattern:
            assert re.search(re.escape(path) + pattern, err), (pattern, err)
    code, err, path = check('{"http": {"max_body_bytes": 2048}}')
    assert code == 0, err


if __name__ == "__main__":
    run_tests(globals())
