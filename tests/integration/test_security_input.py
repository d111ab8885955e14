"""Security suite, part two: hostile input against the real chorusd, each
with the safe outcome expected and the daemon still serving afterwards.

- oversized and malformed bodies, headers, JSON and forms on every POST
  route the daemon registers;
- WebSocket frames that break the protocol or the limits, on the chat
  socket;
- path traversal against the static (embedded) web files;
- injection: CR/LF, XML and HTML specials in user text reaching TwiML
  <Say>/<Message>, JSON answers and response headers;
- request smuggling shapes (Content-Length against Transfer-Encoding,
  duplicates, obs-fold, bare CR/LF, HTTP/1.0 chunked).

Nothing refused may reach the store: each test ends with the admin API
showing only the conversations the valid requests made."""

import json
import os
import sys
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import run_tests  # noqa: E402
from security_common import (ADMIN_TOKEN, CHAT_KEY, ORIGIN, SecDaemon, bearer,  # noqa: E402
                             call_params, error_code, fill, raw, sms_params, twilio_post,
                             twilio_signature, ws_close_code, ws_frame, ws_frames, ws_open)

HOSTILE = ("zq </Say></Gather><Hangup/><Redirect>http://evil.example/</Redirect> "
           "</Message>]]><!-- & &amp; \"q\" 'a' <script>alert(1)</script>\r\n"
           "X-Injected: 1\r\n\r\nHTTP/1.1 200 OK \u2028 \u00e9")


def stored(d, want):
    """Waits until want conversations are stored; returns their JSON text."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status, _, body = d.request("GET", "/v1/admin/conversations?limit=100",
                                    headers=bearer(ADMIN_TOKEN))
        assert status == 200, (status, body)
        rows = json.loads(body)["conversations"]
        if len(rows) >= want:
            assert len(rows) == want, rows
            return json.dumps(rows)
        time.sleep(0.05)
    raise AssertionError("expected %d stored conversations" % want)


def start_chat(d, headers=None):
    h = bearer(CHAT_KEY)
    h.update(headers or {})
    status, hdrs, body = d.request("POST", "/v1/chat/conversations", body={}, headers=h)
    assert status == 201, (status, body)
    return json.loads(body)["conversation"], hdrs


# -- oversized and malformed input ---------------------------------------------

def post_routes(d):
    return [p for m, p, ws in d.routes() if m == "POST"]


def test_oversized_bodies_and_headers_on_every_post_route():
    with SecDaemon() as d:
        for pattern in post_routes(d):
            path = fill(pattern)
            big = b"x" * (64 * 1024 + 1)
            for headers in ({}, bearer(CHAT_KEY)):
                h = dict(headers, **{"Content-Type": "application/json"})
                status, _, body = d.request("POST", path, big, h)
                assert status == 413 and error_code(body) == "body_too_large", (path, status)
            # chunked, so the size is only known while reading
            out, closed = raw(d, b"POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                              b"\r\n" % path.encode() + b"8000\r\n" + b"y" * 0x8000 + b"\r\n"
                              + b"8001\r\n" + b"y" * 0x8001 + b"\r\n0\r\n\r\n")
            assert out.startswith(b"HTTP/1.1 413 ") and closed, (path, out[:80])
            out, closed = raw(d, b"POST %s HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n"
                              % (path.encode(), b"h" * 9000))
            assert out.startswith(b"HTTP/1.1 431 ") and closed, (path, out[:80])
        assert d.request("GET", "/healthz")[0] == 200
        start_chat(d)
        stored(d, 1)  # a barrier: nothing refused was stored before it


def test_malformed_json_to_the_chat_api():
    with SecDaemon() as d:
        conv, _ = start_chat(d)
        path = "/v1/chat/conversations/%s/messages" % conv
        cases = [
            (b"{", 400, "invalid_json"),
            (b'{"text": "a"} trailing', 400, "invalid_json"),
            (b"[" * 30000 + b"]" * 30000, 400, None),        # deep nesting
            (b'{"text": "\xff\xfe"}', 400, "invalid_json"),   # not UTF-8
            (b'{"text": "a\\u0000b"}', 400, None),            # NUL inside
            (b'{"text": 5}', 400, None),
            (b'{"text": "a", "text": "b"}', 400, "invalid_json"),  # duplicate key
            (b'{"nope": 1}', 400, "invalid_request"),
            (b'["text"]', 400, "invalid_request"),
            (json.dumps({"text": "a" * 5000}).encode(), 413, None),  # > chat.max_text_bytes
        ]
        for body, want, code in cases:
            status, hdrs, data = d.request("POST", path, body, dict(
                bearer(CHAT_KEY), **{"Content-Type": "application/json"}))
            assert status == want, (body[:40], status, data)
            assert hdrs["content-type"] == "application/json", hdrs
            assert hdrs["x-content-type-options"] == "nosniff", hdrs
            if code:
                assert error_code(data) == code, (body[:40], data)
        status, _, _ = d.request("POST", path, b'{"text":"hi"}',
                                 dict(bearer(CHAT_KEY), **{"Content-Type": "text/plain"}))
        assert status == 415
        rows = stored(d, 1)
        assert "\\u0000" not in rows and "aaaaaaaaaa" not in rows, rows


def test_malformed_twilio_forms():
    with SecDaemon() as d:
        for path in ("/v1/sms/twilio", "/v1/voice/twilio"):
            url = "http://127.0.0.1:%d%s" % (d.port, path)
            for body in (b"From=%zz&Body=a", b"\xff\xfe=\x00", b"&&&==&",
                         b"Body=" + b"%41" * 20000):
                sig = twilio_signature("tw-sec-token-81f3", url, [])
                status, _, data = d.request("POST", path, body, {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": sig})
                assert status in (400, 403), (path, body[:20], status, data)
                assert b"<Say" not in data and b"<Message" not in data
        assert d.request("GET", "/healthz")[0] == 200
        start_chat(d)
        rows = stored(d, 1)
        assert "+15551230001" not in rows and "+15551230002" not in rows, rows


# -- WebSocket frames -----------------------------------------------------------

def test_bad_websocket_frames_on_the_chat_socket():
    cases = [
        ("oversized", ws_frame(1, b"a" * 5000), 1009),
        ("giant length", ws_frame(1, b"", length=1 << 62)[:-4] + b"\0" * 20, 1009),
        ("unmasked", ws_frame(1, b'{"type":"message"}', mask=False), 1002),
        ("bad opcode", ws_frame(3, b"x"), 1002),
        ("not UTF-8", ws_frame(1, b'{"type":"message","text":"\xc3\x28"}'), 1007),
        # wslay fails these in its parser; the server still closes with 1002
        ("fragmented control", ws_frame(9, b"p", fin=False), 1002),
        ("huge ping", ws_frame(9, b"p" * 200), 1002),
        ("continuation first", ws_frame(0, b"x"), 1002),
    ]
    with SecDaemon() as d:
        for name, data, want in cases:
            s, status, rest = ws_open(d, headers=bearer(CHAT_KEY))
            assert status == 101, (name, status)
            s.sendall(data)
            code = ws_close_code(s, rest)
            s.close()
            assert code in (want if isinstance(want, tuple) else (want,)), (name, code)
        # hostile JSON inside good frames: answered with an error frame
        s, status, rest = ws_open(d, headers={"Origin": ORIGIN})
        assert status == 101
        for bad in (b"{", b"[]", b'{"type":"nope"}', b'{"type":"message","text":5}'):
            s.sendall(ws_frame(1, bad))
        s.sendall(ws_frame(8, b"\x03\xe8"))
        got = rest + b""
        s.settimeout(10)
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
        s.close()
        texts = [json.loads(p) for op, p in ws_frames(got) if op == 1]
        assert sum(1 for t in texts if t.get("type") == "error") >= 4, texts
        assert d.request("GET", "/healthz")[0] == 200


# -- path traversal ---------------------------------------------------------------

TRAVERSALS = [
    "/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "/widget.js/../../etc/passwd", "/..%2f..%2fetc%2fpasswd", "/..\\..\\etc\\passwd",
    "/%5c..%5c..%5cetc%5cpasswd", "/..%5c..%5cetc/passwd", "/./widget.js", "//widget.js",
    "/widget.js%00.html", "/widget.js/", "/%c0%ae%c0%ae/etc/passwd", "/.%2e/.%2e/etc/passwd",
    "/static/../../etc/passwd", "/widget.js;/../etc/passwd", "/WIDGET.JS",
    "/v1/chat/conversations/..%2F..%2Fetc%2Fpasswd", "/v1/admin/conversations/..%2f..%2fchorus.db",
]


def test_path_traversal_in_static_files():
    with SecDaemon() as d:
        for path in TRAVERSALS:
            for headers in ({}, bearer(CHAT_KEY), bearer(ADMIN_TOKEN)):
                status, hdrs, body = d.request("GET", path, headers=headers)
                assert status in (400, 401, 404), (path, status, body[:60])
                assert b"root:" not in body and b"SQLite format" not in body, path
        # raw, so no client normalizes the path first
        for path in (b"/../etc/passwd", b"/..\\..\\etc\\passwd", b"/\x00/etc/passwd"):
            out, _ = raw(d, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert out.split(b" ")[1] in (b"400", b"404"), (path, out[:60])
            assert b"root:" not in out
        assert d.request("GET", "/widget.js")[0] == 200


# -- injection ----------------------------------------------------------------------

def check_twiml(body, verbs):
    root = ET.fromstring(body)  # well-formed, or this raises
    assert root.tag == "Response", body
    seen = {e.tag for e in root.iter()}
    assert seen <= verbs, (seen, body)
    return root


def test_injection_into_twiml_say_and_message():
    with SecDaemon() as d:
        # voice: the hostile text comes back inside <Say>, as text
        status, hdrs, body = twilio_post(d, "/v1/voice/twilio", call_params("CAinj1"))
        assert status == 200, body
        status, hdrs, body = twilio_post(d, "/v1/voice/twilio", call_params(
            "CAinj1", [("SpeechResult", HOSTILE), ("Confidence", "0.9")]))
        assert status == 200, body
        assert "x-injected" not in hdrs, hdrs
        root = check_twiml(body, {"Response", "Gather", "Say"})
        said = " ".join(s.text or "" for s in root.iter("Say"))
        # the caller hears exactly what was said: once escaped, not twice
        assert "</Say></Gather><Hangup/>" in said and "& &amp; \"q\" 'a'" in said, said
        assert "&lt;" not in said, said
        # sms: inside <Message>
        status, hdrs, body = twilio_post(d, "/v1/sms/twilio", sms_params("zq", "SMinj1"))
        assert status == 200
        status, hdrs, body = twilio_post(d, "/v1/sms/twilio", sms_params(HOSTILE, "SMinj2"))
        assert status == 200 and "x-injected" not in hdrs, (status, hdrs)
        root = check_twiml(body, {"Response", "Message"})
        text = " ".join(m.text or "" for m in root.iter("Message"))
        assert "<Redirect>http://evil.example/</Redirect>" in text, text
        assert d.request("GET", "/healthz")[0] == 200


def test_injection_into_json_and_headers():
    with SecDaemon() as d:
        conv, _ = start_chat(d)
        path = "/v1/chat/conversations/%s/messages" % conv
        status, hdrs, body = d.request("POST", path, {"text": HOSTILE}, bearer(CHAT_KEY))
        assert status == 200, body
        assert "x-injected" not in hdrs and hdrs["content-type"] == "application/json", hdrs
        reply = json.loads(body)  # well-formed JSON
        said = " ".join(m["text"] for m in reply["messages"])
        assert "<script>alert(1)</script>" in said and "\r\nX-Injected: 1" in said, said
        status, hdrs, body = d.request("GET", "/v1/chat/conversations/%s" % conv,
                                       headers=bearer(CHAT_KEY))
        assert status == 200, body
        texts = [m["text"] for m in json.loads(body)["messages"]]
        assert HOSTILE in texts and "You said: " + HOSTILE in texts, texts
        # CR/LF through a path parameter and a query value reach no header
        for target in ("/v1/chat/conversations/a%0d%0aX-Injected:%201",
                       "/v1/chat/conversations/%s?after=1%%0d%%0aX-Injected:%%201" % conv):
            status, hdrs, body = d.request("GET", target, headers=bearer(CHAT_KEY))
            assert status in (400, 404) and "x-injected" not in hdrs, (target, status, hdrs)
            json.loads(body)
        # an Idempotency-Key and a request id with specials are not echoed raw
        status, hdrs, body = d.request("POST", path, {"text": "hi"}, dict(
            bearer(CHAT_KEY), **{"Idempotency-Key": "<k>\"'&", "X-Request-Id": "a<b>\"c"}))
        assert "<" not in hdrs["x-request-id"], hdrs
        # the stored transcript holds the text as sent, nothing more
        rows = stored(d, 1)
        assert "X-Injected" not in rows.replace("\\r\\nX-Injected", ""), rows


def test_web_pages_carry_security_headers():
    with SecDaemon() as d:
        pages = 0
        for method, path, ws in d.routes():  # every open page, also new ones
            if method != "GET" or ws or "{" in path:
                continue
            status, hdrs, _ = d.request("GET", path)
            ctype = hdrs.get("content-type", "")
            assert hdrs["x-content-type-options"] == "nosniff", (path, hdrs)
            if status != 200 or ctype.startswith("application/json"):
                continue
            pages += 1
            assert hdrs["referrer-policy"] == "no-referrer", (path, hdrs)
            csp = hdrs["content-security-policy"]
            assert "frame-ancestors 'none'" in csp, (path, csp)
            assert "set-cookie" not in hdrs
            if ctype.startswith("text/html"):
                assert "default-src 'self'" in csp and "object-src 'none'" in csp, (path, csp)
                assert hdrs["x-frame-options"] == "DENY", (path, hdrs)
            elif path != "/metrics":
                assert "default-src 'none'" in csp, (path, csp)
        assert pages >= 4, pages
    # the demo page may be framed by the sites configured
    from security_common import config
    with SecDaemon(config(chat={"frame_ancestors": "'self' https://shop.example"})) as d:
        status, hdrs, _ = d.request("GET", "/")
        csp = hdrs["content-security-policy"]
        assert "frame-ancestors 'self' https://shop.example;" in csp, csp
        assert "x-frame-options" not in hdrs, hdrs


# -- request smuggling -------------------------------------------------------------

SMUGGLED = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
SMUGGLING = [
    ("CL+TE", b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("TE+CL", b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n"),
    ("CL twice", b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}"),
    ("CL differing", b"Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}"),
    ("CL list", b"Content-Length: 2, 2\r\n\r\n{}"),
    ("CL signed", b"Content-Length: +2\r\n\r\n{}"),
    ("TE twice", b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("TE not last", b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"),
    ("TE unknown", b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
    ("TE space before colon", b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
    ("TE vertical tab", b"Transfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n"),
    ("TE obs-fold", b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n"),
    ("obs-fold", b"X-A: a\r\n b\r\nContent-Length: 2\r\n\r\n{}"),
    ("obs-fold tab", b"X-A: a\r\n\tb\r\nContent-Length: 2\r\n\r\n{}"),
    ("bare CR", b"X-A: a\rContent-Length: 40\r\nContent-Length: 2\r\n\r\n{}"),
    ("bare LF", b"Content-Length: 2\n\n{}"),
    ("NUL in header", b"X-A: a\x00b\r\nContent-Length: 2\r\n\r\n{}"),
    ("chunk size overflow", b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\n"),
    ("chunk LF only", b"Transfer-Encoding: chunked\r\n\r\n2\n{}\n0\n\n"),
]


def test_request_smuggling_shapes():
    with SecDaemon() as d:
        for name, rest in SMUGGLING:
            req = b"POST /v1/echo HTTP/1.1\r\nHost: x\r\n" + rest + SMUGGLED
            out, closed = raw(d, req, wait=5)
            assert out.startswith(b"HTTP/1.1 400 "), (name, out[:100])
            assert out.count(b"HTTP/1.1 ") == 1, (name, out)  # the smuggled GET is not served
            assert closed, name
        # HTTP/1.0 may not be chunked (RFC 9112 6.1)
        out, closed = raw(d, b"POST /v1/echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"2\r\n{}\r\n0\r\n\r\n" + SMUGGLED)
        assert out.startswith(b"HTTP/1.1 400 ") and closed, out[:100]
        assert d.request("GET", "/healthz")[0] == 200
        line = d.wait_log(event="bad_request")
        assert line["status"] == "400"


def test_obs_fold_split_across_reads_is_refused():
    with SecDaemon() as d:
        # the fold's CR LF and its continuation in separate segments
        for cut in (b"X-A: a\r\n", b"X-A: a\r\n ", b"X-A:\r\n", b"X-A:\r\n "):
            s = d.connect()
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + cut)
            time.sleep(0.05)
            rest = (b"X-A: a\r\n b\r\n\r\n" if not cut.startswith(b"X-A:\r")
                    else b"X-A:\r\n chunked\r\n\r\n")[len(cut):]
            s.sendall(rest)
            s.settimeout(5)
            out = s.recv(65536)
            s.close()
            assert out.startswith(b"HTTP/1.1 400 "), (cut, out[:80])
        # a value split across reads without a fold is fine
        s = d.connect()
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: ab")
        time.sleep(0.05)
        s.sendall(b"cd\r\n\r\n")
        s.settimeout(5)
        assert s.recv(65536).startswith(b"HTTP/1.1 200 ")
        s.close()


if __name__ == "__main__":
    run_tests(globals())
