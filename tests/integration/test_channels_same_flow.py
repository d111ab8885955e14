"""One flow, four channels: the example booking_status flow driven through
the chat REST API, the web widget's WebSocket, SMS and voice (Twilio-signed
webhooks) on one real chorusd, each reaching the same outcome: booking
ABC123 read back as confirmed, with only the message variants differing.
Then, with the daemon stopped, its store is read: one conversation model
and one transcript schema for all four, the channel and the adapter
version on every turn, and the same booking_ref slot filled."""

import base64
import json
import os
import socket
import sqlite3
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, run_tests  # noqa: E402
from test_chat_rest import FLOWS, KEY, Backend, auth, sha  # noqa: E402
from test_sms_twilio import TOKEN, Phone, Twilio  # noqa: E402
from test_voice_twilio import Call, says  # noqa: E402
from test_voice_twilio import gather as voice_gather  # noqa: E402


def gather(root):
    return voice_gather(root, voice="Polly.Joanna", language="en-US")  # the defaults


class WebSocket:
    """The smallest RFC 6455 client the test needs: text frames, masked."""

    def __init__(self, port, path, headers):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)
        key = base64.b64encode(os.urandom(16)).decode()
        extra = "".join("%s: %s\r\n" % kv for kv in headers.items())
        self.s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                        "Sec-WebSocket-Version: 13\r\n%s\r\n" % (path, port, key, extra)).encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.s.recv(4096)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send(self, obj):
        data = json.dumps(obj).encode()
        mask = os.urandom(4)
        n = len(data)
        hdr = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n))
        self.s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            assert chunk, "connection closed"
            self.buf += chunk

    def recv_raw(self):
        """The next text frame's bytes, as the server sent them."""
        while True:
            self._need(2)
            op, n = self.buf[0] & 0x0F, self.buf[1] & 0x7F
            off = 2
            if n == 126:
                self._need(4)
                n, off = struct.unpack("!H", self.buf[2:4])[0], 4
            elif n == 127:
                self._need(10)
                n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
            self._need(off + n)
            payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
            if op == 1:
                return payload

    def recv(self):
        return json.loads(self.recv_raw())

    def until(self, pred):
        while True:
            f = self.recv()
            if pred(f):
                return f

    def close(self):
        self.s.close()


def chat_rest(d):
    status, _, body = d.request("POST", "/v1/chat/conversations", b"", auth())
    assert status == 201, body
    conv = json.loads(body)["conversation"]
    texts = []
    for text in ("check my booking", "it's abc123"):
        status, _, body = d.request("POST", "/v1/chat/conversations/%s/messages" % conv,
                                    json.dumps({"text": text}).encode(),
                                    dict(auth(), **{"Content-Type": "application/json"}))
        assert status == 200, body
        texts = [m["text"] for m in json.loads(body)["messages"]]
    return "chat:" + conv, texts


def web_socket(d):
    ws = WebSocket(d.port, "/v1/chat/ws", {"Origin": "http://127.0.0.1:%d" % d.port})
    ready = ws.until(lambda f: f["type"] == "ready")
    assert ready["channel"] == "web", ready
    ws.until(lambda f: f["type"] == "message" and f.get("from") == "bot")  # welcome
    texts = []
    for i, text in enumerate(("check my booking", "it's abc123")):
        ws.send({"type": "message", "id": "m%d" % i, "text": text})
        texts = [ws.until(lambda f: f["type"] == "message" and f.get("from") == "bot")["text"]]
    ws.close()
    return "chat:" + ready["conversation"], texts


def sms(d):
    p = Phone(Twilio(d, "/v1/sms/twilio"), frm="+15550004444")
    p.texts("check my booking")
    return "sms:%s:%s" % (p.frm, p.to), p.texts("it's abc123")


def voice(d):
    c = Call(Twilio(d, "/v1/voice/twilio"), "CA" + "c" * 32)
    gather(c.answer())
    gather(c.say("check my booking"))
    assert says(gather(c.say("it's abc123")))[0] == "I heard ABC123."  # voice confirms
    return "voice:" + c.sid, says(c.press("1"))


def test_same_flow_same_outcome_on_four_channels():
    be = Backend()
    try:
        d = Daemon(config={"chat": {"api_keys": "main:%s" % sha(KEY)}}, args=["--flows", FLOWS],
                   env={"CHORUS_BACKEND_URL": be.url, "TWILIO_AUTH_TOKEN": TOKEN})
        with d:
            d.wait_log(event="flows_loaded", timeout=60)
            results = {"chat": chat_rest(d), "web": web_socket(d), "sms": sms(d), "voice": voice(d)}
            for ch, (key, texts) in results.items():
                joined = " ".join(texts)
                assert "CH 101" in joined and "confirmed" in joined, (ch, texts)
            # the variants: SMS short, voice spoken, chat and web the default
            assert results["sms"][1] == ["ABC123: CH 101 LHR-JFK 12 Dec 09:40, confirmed."]
            assert results["voice"][1][0].startswith("Your flight CH 101 from LHR to JFK")
            assert results["chat"][1] == results["web"][1]
            assert results["chat"][1][0].startswith("Booking ABC123 for Ada Lovelace")
            db_path = os.path.join(d.data_dir, "chorus.db")
            cleanup, d.cleanup = d.cleanup, lambda: None  # keep the store to read it
            d.stop()
            d.cleanup = cleanup
            db = sqlite3.connect(db_path)
            for ch, (key, _) in results.items():
                row = db.execute("SELECT channel, adapter_version FROM conversations WHERE id = ?",
                                 (key,)).fetchone()
                assert row is not None, (ch, key, db.execute("SELECT id FROM conversations").fetchall())
                assert row[0] == ch, (ch, row)
                turns = db.execute("SELECT direction, channel, adapter_version, text FROM turns "
                                   "WHERE conversation_id = ? ORDER BY seq", (key,)).fetchall()
                assert len(turns) >= 4, (ch, turns)
                for t in turns:
                    assert t[1] == ch and t[2] and t[2].startswith(ch + "/"), (ch, t)
                assert any(t[0] == "out" and "CH 101" in (t[3] or "") for t in turns), (ch, turns)
                state = db.execute("SELECT * FROM conversation_state WHERE conversation_id = ?",
                                   (key,)).fetchone()
                assert state is not None and "ABC123" in json.dumps(state), (ch, state)
            db.close()
    finally:
        be.close()


if __name__ == "__main__":
    run_tests(globals())
