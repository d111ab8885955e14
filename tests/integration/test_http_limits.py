"""Every HTTP limit of chorusd with its status code, timeouts and slowloris,
request smuggling shapes, malformed requests and backpressure. Each limit is
made small through a test config; after every refusal the daemon must still
serve others."""

import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Daemon, parse_responses, read_response, recv_until_closed,  # noqa: E402
                     run_tests, small_quarantine_env)

LIMITS = {
    "http": {
        "max_header_bytes": 1024,
        "max_headers": 8,
        "max_body_bytes": 1000,
        "max_connections": 4,
        "header_timeout_ms": 300,
        "body_timeout_ms": 300,
        "idle_timeout_ms": 400,
        "requests_per_second": 1,
        "request_burst": 5,
    }
}


def limited():
    return Daemon(config=LIMITS)


def still_serves(d):
    status, _, body = d.request("GET", "/healthz")
    assert status == 200 and body == b'{"status":"ok"}', (status, body)


def answer_then_close(d, raw):
    s = d.connect()
    s.sendall(raw)
    data = recv_until_closed(s)
    s.close()
    status, headers, body, _ = read_response(None, data) if data else (None, {}, b"", b"")
    return status, headers, body


def error_code(body):
    return json.loads(body)["error"]["code"]


def test_header_bytes_431():
    with limited() as d:
        status, headers, body = answer_then_close(
            d, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n")
        assert status == 431 and headers["connection"] == "close", (status, headers)
        assert error_code(body) == "headers_too_large"
        status, headers, body = answer_then_close(d, b"GET /" + b"p" * 1500 + b" HTTP/1.1\r\n\r\n")
        assert status == 431, status
        still_serves(d)


def head_of(size, pad_with=b"a"):
    """A request whose request line and headers, CRLFs and the blank line
    included, are size bytes on the wire."""
    fixed = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: \r\n\r\n"
    return fixed[:-4] + pad_with * (size - len(fixed)) + fixed[-4:]


def send_in_pieces(d, raw, cuts):
    """raw sent as separate TCP segments cut at cuts; the answer."""
    s = d.connect()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    last = 0
    for cut in list(cuts) + [len(raw)]:
        s.sendall(raw[last:cut])
        last = cut
        time.sleep(0.02)  # so that each piece is a read of its own
    status, headers, body, _ = read_response(s)
    s.close()
    return status, headers, body


def test_header_bytes_count_the_wire():
    """http.max_header_bytes counts the head as received: the request line,
    the separators and line ends, the blank line (docs/http.md)."""
    with limited() as d:
        status, headers, body = answer_then_close(d, head_of(1025))
        assert status == 431 and headers["connection"] == "close", (status, headers)
        assert error_code(body) == "headers_too_large", body
        assert json.loads(body)["error"]["message"] == \
            "request line and headers exceed 1024 bytes", body
        s = d.connect()
        s.sendall(head_of(1024))
        assert read_response(s)[0] == 200
        s.close()
        # whitespace llhttp skips is on the wire all the same
        status, _, _ = answer_then_close(
            d, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad:" + b" " * 1100 + b"v\r\n\r\n")
        assert status == 431, status
        # the same across reads cut inside separators, line ends, the blank line
        raw = head_of(1025)
        cuts = [2, 13, 22, 23, 28, 500, len(raw) - 3, len(raw) - 1]
        assert send_in_pieces(d, raw, cuts)[0] == 431
        raw = head_of(1024)
        cuts = [2, 13, 22, 23, 28, 500, len(raw) - 3, len(raw) - 1]
        assert send_in_pieces(d, raw, cuts)[0] == 200
        # CRLFs before a request line are not part of it (RFC 9112 2.2)
        s = d.connect()
        s.sendall(b"\r\n" * 8 + head_of(1024))
        assert read_response(s)[0] == 200
        s.close()
        still_serves(d)


def chunked_with_trailers(size):
    """A chunked POST whose head and trailer section come to size bytes on
    the wire, the trailer section from its first field's first byte through
    the blank line that ends it."""
    head = b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    field = b"X-Sum: "
    pad = b"a" * (size - len(head) - len(field) - 4)
    return head + b"2\r\n{}\r\n0\r\n" + field + pad + b"\r\n\r\n"


def test_trailer_bytes_count_the_wire():
    """A chunked body's trailer section counts against http.max_header_bytes
    with the head, its last line end and the blank line included: at the
    limit the request is served, a byte over gets 431 as longer trailers
    do, however the reads cut it (docs/http.md)."""
    with limited() as d:
        s = d.connect()
        s.sendall(chunked_with_trailers(1024))
        assert read_response(s)[0] == 200
        s.close()
        for size in (1025, 2048):
            status, headers, body = answer_then_close(d, chunked_with_trailers(size))
            assert status == 431 and headers["connection"] == "close", (size, status, headers)
            assert error_code(body) == "headers_too_large", body
        # cut inside the last field's line end and the blank line
        for size, want in ((1025, 431), (1024, 200)):
            raw = chunked_with_trailers(size)
            cuts = [len(raw) - 4, len(raw) - 3, len(raw) - 2, len(raw) - 1]
            assert send_in_pieces(d, raw, cuts)[0] == want, size
        still_serves(d)


def test_header_count_431():
    with limited() as d:
        hdrs = b"".join(b"X-H%d: v\r\n" % i for i in range(9))
        status, headers, body = answer_then_close(d, b"GET /healthz HTTP/1.1\r\n" + hdrs + b"\r\n")
        assert status == 431 and error_code(body) == "too_many_headers", (status, body)
        hdrs = b"".join(b"X-H%d: v\r\n" % i for i in range(7))
        s = d.connect()
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + hdrs + b"\r\n")
        assert read_response(s)[0] == 200
        s.close()


def test_body_size_413():
    with limited() as d:
        status, headers, body = answer_then_close(
            d, b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n")
        assert status == 413 and error_code(body) == "body_too_large", (status, body)
        chunk = b"3e8\r\n" + b" " * 1000 + b"\r\n"
        status, headers, body = answer_then_close(
            d, b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunk + b"1\r\n \r\n0\r\n\r\n")
        assert status == 413 and headers["connection"] == "close", (status, headers)
        p = d.curl("-o", "/dev/null", "-w", "%{http_code}", "--data-binary", "x" * 5000,
                   "{url}/v1/echo", check=False)
        assert p.stdout == b"413", p.stdout
        body = json.dumps({"k": "v" * 900}).encode()
        status, _, data = d.request("POST", "/v1/echo", body)
        assert status == 200 and len(body) <= 1000, status


def test_rate_limit_429():
    with limited() as d:
        s = d.connect()
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 8)
        resps = parse_responses(recv_until_closed(s))
        codes = [r[0] for r in resps]
        assert codes[:5] == [200] * 5 and codes[5] == 429 and len(codes) == 6, codes
        assert resps[5][1]["connection"] == "close" and error_code(resps[5][2]) == "rate_limited"
        still_serves(d)  # the bucket is per connection


def test_header_timeout_408_and_slowloris():
    with limited() as d:
        s = d.connect()
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never ends its headers
        data = recv_until_closed(s)
        status, headers, body, _ = read_response(None, data)
        assert status == 408 and headers["connection"] == "close", (status, headers)
        # a trickle of header bytes does not extend the deadline
        s = d.connect()
        s.setblocking(True)
        got = b""
        for ch in b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 200:
            try:
                s.send(bytes([ch]))
            except OSError:
                break
            s.settimeout(0.05)
            try:
                got += s.recv(4096)
            except socket.timeout:
                pass
            if got:
                break
        got += recv_until_closed(s)
        assert got.startswith(b"HTTP/1.1 408"), got
        still_serves(d)


def test_body_timeout_408():
    with limited() as d:
        s = d.connect()
        s.sendall(b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{\"a\"")
        status, headers, body, _ = read_response(None, recv_until_closed(s))
        assert status == 408 and error_code(body) == "timeout", (status, body)
        still_serves(d)


def test_a_body_read_after_its_head_with_max_pipelined_1():
    """http.max_pipelined counts requests read ahead of their answers; the
    one still being read is not among them. With a limit of 1, a body that
    came in a read after its head used to pause reading for that request's
    own body, and the connection hung until the body timeout."""
    cfg = {"http": {"max_pipelined": 1, "body_timeout_ms": 20000}}
    with Daemon(config=cfg) as d:
        s = d.connect()
        s.settimeout(5)
        s.sendall(b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
        time.sleep(0.3)  # the head is read on its own
        s.sendall(b'{"a":"bc"}')
        status, _, body, buf = read_response(s, b"")
        assert status == 200 and json.loads(body) == {"echo": {"a": "bc"}}, (status, body)
        # two requests sent at once: the second waits for the first's answer
        one = b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{\"n\":%d}"
        s.sendall(one % 1 + one % 2)
        for n in (1, 2):
            status, _, body, buf = read_response(s, buf)
            assert status == 200 and json.loads(body) == {"echo": {"n": n}}, (n, status, body)
        s.close()


def test_idle_timeout_closes_silently():
    with limited() as d:
        s = d.connect()
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, _, rest = read_response(s)
        assert status == 200 and rest == b""
        assert recv_until_closed(s) == b""  # closed by the server, nothing sent
        s = d.connect()
        assert recv_until_closed(s) == b""


def test_max_connections_503():
    with limited() as d:
        held = [d.connect() for _ in range(4)]
        for s in held:  # make sure each is accepted and served
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(s)[0] == 200
        extra = d.connect()
        status, headers, body, rest = read_response(None, recv_until_closed(extra))
        assert status == 503 and error_code(body) == "overloaded", (status, body)
        assert headers["connection"] == "close" and len(headers["x-request-id"]) == 16, headers
        assert rest == b"", rest
        for s in held:
            s.close()
        d.wait_log(event="connection_refused")
        for _ in range(100):  # the closes reach the daemon asynchronously
            s = d.connect()
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = recv_until_closed(s)
            if data.startswith(b"HTTP/1.1 200"):
                break
            time.sleep(0.05)
        assert data.startswith(b"HTTP/1.1 200"), data


def test_smuggling_shapes_400(d):
    shapes = [
        b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
        b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\n{}",
        b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Transfer-Encoding: identity\r\n\r\n0\r\n\r\n",
        b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n{}",
        b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length : 2\r\n\r\n{}",
    ]
    for raw in shapes:
        status, headers, body = answer_then_close(d, raw)
        assert status == 400 and headers["connection"] == "close", (raw, status)
    still_serves(d)


def test_malformed_requests_400(d):
    bad = [
        b"GARBAGE\r\n\r\n",
        b"GET /healthz HTTP/9.9\r\n\r\n",
        b"GET\t/healthz HTTP/1.1\r\n\r\n",
        b"GET /he\x00althz HTTP/1.1\r\n\r\n",
        b"GET http://example/healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
        b"CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nBad Header: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\n\r\n",  # no Host
        b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"\xff\xfe\xfd\r\n\r\n",
        b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ]
    for raw in bad:
        status, headers, body = answer_then_close(d, raw)
        assert status == 400, (raw, status)
        assert error_code(body) == "bad_request"
    # a request that was fine before the garbage is still answered first
    status_list = recv_until_closed_after(d, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nBAD\r\n\r\n")
    assert status_list == [200, 400], status_list
    still_serves(d)


def recv_until_closed_after(d, raw):
    s = d.connect()
    s.sendall(raw)
    return [r[0] for r in parse_responses(recv_until_closed(s))]


def test_backpressure_client_that_does_not_read():
    cfg = {"http": {"write_buffer_bytes": 4096, "max_body_bytes": 65536,
                    "idle_timeout_ms": 60000}}
    with Daemon(config=cfg, env=small_quarantine_env()) as d:
        base = d.rss_kib()
        body = json.dumps({"pad": "x" * 60000}).encode()
        one = b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        total = 2000
        payload = one * total  # 120 MB of requests, ~120 MB of answers
        view = memoryview(payload)
        s = d.connect()
        s.setblocking(False)
        sent = 0
        stalls = 0
        while sent < len(payload) and stalls < 50:
            try:
                sent += s.send(view[sent:sent + (1 << 20)])
                stalls = 0
            except BlockingIOError:
                stalls += 1
                time.sleep(0.02)
        # the daemon stopped reading: the kernel buffers filled and our sends stalled
        assert sent < len(payload) // 2, sent
        print("rss growth KiB", d.rss_kib() - base)
        assert d.rss_kib() - base < 16 * 1024, (base, d.rss_kib())
        # everything that was accepted is answered, in order, once we read
        s.setblocking(True)
        s.settimeout(10)
        s.shutdown(socket.SHUT_WR) if sent == len(payload) else None
        buf = b""
        complete = sent // len(one)
        for i in range(min(complete, 50)):
            status, headers, data, buf = read_response(s, buf)
            assert status == 200 and len(data) > 60000, (i, status)
        s.close()
        still_serves(d)


if __name__ == "__main__":
    run_tests(globals())
