"""HTTP/1.1 behaviour of the real chorusd: routes, keep-alive, pipelining,
chunked bodies, 100-continue, HEAD, request ids and request logs."""

import json
import os
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Daemon, parse_responses, read_response, recv_until_closed,  # noqa: E402
                     run_tests)

SRC = os.environ.get("CHORUS_SOURCE_DIR", ".")


def test_operational_endpoints_with_curl(d):
    p = d.curl("-i", "{url}/healthz")
    out = p.stdout.decode()
    assert out.startswith("HTTP/1.1 200 OK\r\n"), out
    assert "content-type: application/json" in out.lower()
    assert out.endswith('{"status":"ok"}'), out
    # this daemon has no flows directory: alive, but no turn can be served
    status, body = d.json("GET", "/readyz")
    assert status == 503 and body == {"status": "not_ready", "checks": {
        "config": "ok", "store": "ok", "flows": "none"}}, body


def test_ready_once_the_flows_are_in_force():
    tmp = tempfile.mkdtemp(prefix="chorus-ready-")
    flows = os.path.join(tmp, "flows")
    try:
        with Daemon(args=["--flows", flows]) as d:
            status, body = d.json("GET", "/readyz")
            assert status == 503 and body["checks"]["flows"] == "none", body
            # the directory appears and a reload loads it
            shutil.copytree(os.path.join(SRC, "flows"), flows)
            shutil.rmtree(os.path.join(flows, "tests"), ignore_errors=True)
            d.signal(signal.SIGHUP)
            seen = set()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                status, body = d.json("GET", "/readyz")
                seen.add(body["checks"]["flows"])
                if status == 200:
                    break
                time.sleep(0.02)
            assert status == 200 and body == {"status": "ready", "checks": {
                "config": "ok", "store": "ok", "flows": "ok"}}, body
            assert seen <= {"none", "loading", "ok"}, seen
            d.wait_log(event="flows_loaded")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_echo_route(d):
    doc = {"text": "héllo", "n": [1, 2.5, None, True], "nested": {"a": {}}}
    p = d.curl("-X", "POST", "-H", "Content-Type: application/json", "--data-binary",
               json.dumps(doc), "{url}/v1/echo")
    assert json.loads(p.stdout) == {"echo": doc}, p.stdout
    status, body = d.json("POST", "/v1/echo", b'{"a": ')
    assert status == 400 and body["error"]["code"] == "invalid_json", body
    assert "1:" in body["error"]["message"]
    status, body = d.json("POST", "/v1/echo", b"")
    assert status == 400 and body["error"]["code"] == "invalid_json", body


def test_not_found_and_method_not_allowed(d):
    status, headers, data = d.request("GET", "/no/such/thing")
    assert status == 404, status
    assert json.loads(data)["error"]["code"] == "not_found"
    status, headers, data = d.request("DELETE", "/healthz")
    assert status == 405, status
    assert headers["allow"] == "GET, HEAD", headers
    assert json.loads(data)["error"]["code"] == "method_not_allowed"
    status, headers, data = d.request("GET", "/v1/echo")
    assert status == 405 and headers["allow"] == "POST", headers
    # a WebSocket route without the handshake
    status, headers, data = d.request("GET", "/v1/echo/ws")
    assert status == 426, status


def test_keep_alive_reuses_one_connection(d):
    p = d.curl("-v", "{url}/healthz", "{url}/readyz", "{url}/healthz")
    err = p.stderr.decode()
    assert err.count("Connected to") == 1 or "Re-using existing connection" in err, err
    s = d.connect()
    buf = b""
    for i in range(5):
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body, buf = read_response(s, buf)
        assert status == 200 and body == b'{"status":"ok"}', (status, body)
        assert "connection" not in headers, headers
    s.close()


def test_pipelined_responses_in_order(d):
    reqs = []
    for i in range(20):
        if i % 3 == 0:
            body = json.dumps({"i": i}).encode()
            reqs.append(b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                        % (len(body), body))
        elif i % 3 == 1:
            reqs.append(b"GET /nope/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
        else:
            reqs.append(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: req-%d\r\n\r\n" % i)
    s = d.connect()
    s.sendall(b"".join(reqs) + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    resps = parse_responses(recv_until_closed(s))
    assert len(resps) == 21, len(resps)
    for i, (status, headers, body) in enumerate(resps[:20]):
        if i % 3 == 0:
            assert status == 200 and json.loads(body) == {"echo": {"i": i}}, (i, body)
        elif i % 3 == 1:
            assert status == 404, (i, status)
        else:
            assert status == 200 and headers["x-request-id"] == "req-%d" % i, (i, headers)
    assert resps[20][1]["connection"] == "close"


def test_chunked_request_body(d):
    s = d.connect()
    s.sendall(b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"5\r\n{\"a\":\r\n3;ext=1\r\n 42\r\n1\r\n}\r\n0\r\n\r\n")
    status, headers, body, _ = read_response(s)
    assert status == 200 and json.loads(body) == {"echo": {"a": 42}}, body
    s.close()
    p = d.curl("-H", "Transfer-Encoding: chunked", "-H", "Content-Type: application/json",
               "--data-binary", '{"chunked": true}', "{url}/v1/echo")
    assert json.loads(p.stdout) == {"echo": {"chunked": True}}, p.stdout


def test_expect_100_continue(d):
    s = d.connect()
    s.sendall(b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n"
              b"Expect: 100-continue\r\n\r\n")
    status, headers, body, rest = read_response(s)
    assert status == 100, status
    s.sendall(b'{"x":1}')
    status, headers, body, _ = read_response(s, rest)
    assert status == 200 and json.loads(body) == {"echo": {"x": 1}}, body
    s.close()
    # curl waits for the 100 before sending a large body
    p = d.curl("-v", "-H", "Expect: 100-continue", "--data-binary", json.dumps({"k": "v" * 2000}),
               "{url}/v1/echo")
    assert "100 Continue" in p.stderr.decode()
    assert json.loads(p.stdout)["echo"]["k"] == "v" * 2000
    # a request that would be refused gets its final answer instead of 100
    s = d.connect()
    s.sendall(b"POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n"
              b"Expect: 100-continue\r\n\r\n")
    status, headers, body, _ = read_response(s)
    assert status == 404 and headers["connection"] == "close", (status, headers)
    s.close()


def test_head_has_headers_only(d):
    s = d.connect()
    s.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n"
              b"Connection: close\r\n\r\n")
    data = recv_until_closed(s)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: 15" in head, head
    assert rest.startswith(b"HTTP/1.1 200 OK"), rest  # no body between the two


def test_request_ids(d):
    status, headers, _ = d.request("GET", "/healthz", headers={"X-Request-Id": "abc-123.x_y:z"})
    assert headers["x-request-id"] == "abc-123.x_y:z", headers
    seen = set()
    for bad in ["has space", "x" * 65, "new\u00e9"]:
        status, headers, _ = d.request("GET", "/healthz", headers={"X-Request-Id": bad})
        rid = headers["x-request-id"]
        assert rid != bad and len(rid) == 16 and rid not in seen, rid
        seen.add(rid)
    status, headers, _ = d.request("GET", "/nope")
    assert headers["x-request-id"] not in seen


def test_every_request_logged_once(d):
    status, headers, _ = d.request("POST", "/v1/echo", b'{"a":1}',
                                   headers={"X-Request-Id": "log-check-1"})
    assert status == 200
    line = d.wait_log(event="request", rid="log-check-1")
    assert line["method"] == "POST" and line["path"] == "/v1/echo", line
    assert line["status"] == "200" and int(line["bytes"]) > 0 and int(line["us"]) >= 0, line
    assert len(d.log_lines(event="request", rid="log-check-1")) == 1


def test_query_and_path_decoding_keep_serving(d):
    # percent-encoded paths route on the raw path; bad escapes are 404/400, never a crash
    for path in ["/healthz?x=1&y=%20z+w", "/%68ealthz", "/healthz?%zz", "/healthz?a=%00"]:
        status, headers, _ = d.request("GET", path)
        assert status in (200, 400, 404), (path, status)
    status, _, _ = d.request("GET", "/healthz?x=1")
    assert status == 200


def test_http10_and_connection_close(d):
    s = d.connect()
    s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
    data = recv_until_closed(s)
    assert data.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in data, data
    s = d.connect()
    s.sendall(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    status, headers, body, _ = read_response(s)
    assert status == 200 and headers["connection"] == "keep-alive", headers
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body, _ = read_response(s)
    assert status == 200
    s.close()


if __name__ == "__main__":
    run_tests(globals())
