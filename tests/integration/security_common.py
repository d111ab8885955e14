"""Shared set-up for the security suite (test_security*.py): a daemon with
gateway keys, admin tokens and a Twilio auth token configured, running a
small echo flow (whatever the user says comes back in the reply, so hostile
text reaches every output: JSON, TwiML <Say> and <Message>), the list of
routes the daemon registered (from its debug log), and raw clients."""

import base64
import hashlib
import hmac
import json
import os
import re
import socket
import struct
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, read_response, recv_until_closed  # noqa: E402,F401

CHAT_KEY = "gw-sec-key-0b7e"
ADMIN_TOKEN = "adm-sec-token-5c2a"
TWILIO_TOKEN = "tw-sec-token-81f3"
NEW_TWILIO_TOKEN = "tw-sec-token-rotated-22c9"
FORM = "application/x-www-form-urlencoded"
ORIGIN = "https://shop.example"

ECHO_FLOW = {
    "name": "echo", "status": "live",
    "slots": {"said": {"type": "text"}},
    "start": "ask",
    "nodes": {
        "ask": {"type": "ask", "slot": "said", "force": True, "prompt": "Say something.",
                "next": "tell"},
        "tell": {"type": "say", "message": "You said: {{said}}", "next": "ask"},
    },
}


def sha(s):
    return hashlib.sha256(s.encode()).hexdigest()


def config(**over):
    cfg = {
        "log_level": "debug",
        "chat": {"api_keys": "gw:%s" % sha(CHAT_KEY), "allowed_origins": ORIGIN},
        "admin": {"tokens": "ops:%s" % sha(ADMIN_TOKEN), "metrics_auth": "token"},
        "http": {"max_body_bytes": 64 * 1024, "max_header_bytes": 8 * 1024},
        "websocket": {"max_message_bytes": 4096},
    }
    for k, v in over.items():
        cfg.setdefault(k, {}).update(v)
    return cfg


class SecDaemon(Daemon):
    """A Daemon with the echo flow in its own flows directory."""

    def __init__(self, cfg=None, env=None):
        e = {"TWILIO_AUTH_TOKEN": TWILIO_TOKEN, "TWILIO_ROTATED": NEW_TWILIO_TOKEN}
        e.update(env or {})
        super().__init__(config=cfg or config(), env=e)
        flows = os.path.join(self.tmp, "flows")
        os.makedirs(flows)
        with open(os.path.join(flows, "echo.json"), "w") as f:
            json.dump(ECHO_FLOW, f)
        with open(os.path.join(flows, "settings.json"), "w") as f:
            json.dump({"settings": {"welcome_flow": "echo", "fallback_flow": "echo"}}, f)
        self.args += ["--flows", flows]

    def start(self):
        super().start()
        self.wait_log(event="flows_loaded", timeout=60)
        return self

    def routes(self):
        """[(method, pattern, websocket)] registered, from the debug log."""
        return [(f["method"], f["path"], f["websocket"] == "1")
                for f in self.log_lines(event="route_added")]


def bearer(token):
    return {"Authorization": "Bearer " + token}


def raw(d, data, wait=10.0):
    """Sends data on a new connection; returns (everything until the close
    or until wait seconds of silence, closed: whether the server closed)."""
    import socket as so
    s = d.connect()
    s.sendall(data)
    s.settimeout(wait)
    out, closed = b"", False
    try:
        while True:
            b = s.recv(65536)
            if not b:
                closed = True
                break
            out += b
    except so.timeout:
        pass
    except ConnectionResetError:
        closed = True
    s.close()
    return out, closed


def twilio_signature(token, url, params):
    data = url + "".join(k + v for k, v in sorted(params))
    digest = hmac.new(token.encode(), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def twilio_post(d, path, params, token=TWILIO_TOKEN, signature=None, url=None):
    url = url or "http://127.0.0.1:%d%s" % (d.port, path)
    sig = signature if signature is not None else twilio_signature(token, url, params)
    headers = {"Content-Type": FORM}
    if sig:
        headers["X-Twilio-Signature"] = sig
    return d.request("POST", path, urllib.parse.urlencode(params).encode(), headers)


def sms_params(body, sid, frm="+15551230001"):
    return [("MessageSid", sid), ("SmsSid", sid), ("AccountSid", "AC" + "0" * 32),
            ("From", frm), ("To", "+15559870000"), ("Body", body), ("NumMedia", "0")]


def call_params(sid, extra=()):
    return [("CallSid", sid), ("AccountSid", "AC" + "0" * 32), ("From", "+15551230002"),
            ("To", "+15559870000"), ("CallStatus", "in-progress"),
            ("Direction", "inbound")] + list(extra)


# -- WebSocket ------------------------------------------------------------------

def ws_handshake(path="/v1/chat/ws", headers=None):
    extra = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
    return ("GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
            % (path, extra)).encode()


def ws_open(d, path="/v1/chat/ws", headers=None):
    """An upgraded socket and the bytes read past the 101, or the refusal."""
    s = d.connect()
    s.sendall(ws_handshake(path, headers))
    status, h, body, rest = read_response(s)
    return s, status, rest


def ws_frame(opcode, payload, mask=True, fin=True, length=None):
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | opcode])
    m = 0x80 if mask else 0
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + struct.pack(">H", n)
    else:
        head += bytes([m | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    key = b"\x11\x22\x33\x44"
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def ws_frames(data):
    """(opcode, payload) of the server's frames in data."""
    out, i = [], 0
    while i + 2 <= len(data):
        op, n = data[i] & 0x0F, data[i + 1] & 0x7F
        off = i + 2
        if n == 126:
            n, off = struct.unpack(">H", data[off:off + 2])[0], off + 2
        elif n == 127:
            n, off = struct.unpack(">Q", data[off:off + 8])[0], off + 8
        if off + n > len(data):
            break
        out.append((op, data[off:off + n]))
        i = off + n
    return out


def ws_close_code(s, rest=b""):
    """Reads until the server closes; the close code it sent (None: none)."""
    data = rest + recv_until_closed(s)
    for op, payload in ws_frames(data):
        if op == 8:
            return struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
    return None


def error_code(body):
    return json.loads(body)["error"]["code"]


def fill(pattern):
    """A concrete path for a route pattern."""
    return re.sub(r"\{[^}]+\}", "x1", pattern)
