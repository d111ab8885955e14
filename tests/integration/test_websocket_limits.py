"""WebSocket limits with a raw client: a peer that sends but never reads
fills its send queue (the echo route closes it with 1008 once a send fails
with CORE_ERR_BUSY), and the daemon's memory stays bounded meanwhile; the
rules for a peer's close frame (RFC 6455 5.5.1, 7.4), which only a raw
client can break."""

import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, recv_until_closed, run_tests, small_quarantine_env  # noqa: E402

HANDSHAKE = (b"GET /v1/echo/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
             b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             b"Sec-WebSocket-Version: 13\r\n\r\n")


def frame(opcode, payload):
    key = b"\x01\x02\x03\x04"
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    else:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def frames(data):
    """Yields (opcode, payload) of the server's (unmasked) frames in data."""
    i = 0
    while i + 2 <= len(data):
        op, n = data[i] & 0x0F, data[i + 1] & 0x7F
        off = i + 2
        if n == 126:
            n, off = struct.unpack(">H", data[off:off + 2])[0], off + 2
        elif n == 127:
            n, off = struct.unpack(">Q", data[off:off + 8])[0], off + 8
        if off + n > len(data):
            return
        yield op, data[off:off + n]
        i = off + n


def test_peer_that_never_reads_is_closed_1008():
    cfg = {"http": {"write_buffer_bytes": 4096},
           "websocket": {"send_queue_bytes": 4096, "max_message_bytes": 2048,
                         "ping_interval_ms": 60000}}
    with Daemon(config=cfg, env=small_quarantine_env()) as d:
        base = d.rss_kib()
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # no autotuning
        s.connect(("127.0.0.1", d.port))
        s.sendall(HANDSHAKE)
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1)
        assert head.startswith(b"HTTP/1.1 101 "), head
        block = frame(1, b"m" * 1000) * 64
        total = 24 * 1024 * 1024  # far more than the daemon may buffer for one peer
        s.setblocking(False)
        sent, stalls, off = 0, 0, 0
        while sent < total and stalls < 50:
            try:
                n = s.send(block[off:])
                sent += n
                off = (off + n) % len(block)
                stalls = 0
            except BlockingIOError:
                stalls += 1
                time.sleep(0.02)
        # 24 MB were sent; the daemon holds a few send queues' worth at most
        print("rss growth KiB", d.rss_kib() - base)
        assert d.rss_kib() - base < 16 * 1024, (base, d.rss_kib())
        s.setblocking(True)
        s.settimeout(10)
        data = b""
        code = None
        while code is None:
            b = s.recv(1 << 20)
            if not b:
                break
            data += b
            for op, body in frames(data):
                if op == 8:
                    code = struct.unpack(">H", body[:2])[0]
                    break
        assert code == 1008, code
        echoes = sum(1 for op, body in frames(data) if op == 1)
        assert echoes > 0
        s.close()
        d.wait_log(event="ws_closed")


def test_binary_and_control_frames():
    with Daemon() as d:
        s = d.connect()
        s.sendall(HANDSHAKE)
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1)
        # a ping is answered with a pong carrying its payload, binary is echoed
        s.sendall(frame(9, b"hi") + frame(2, bytes(range(256))))
        data = b""
        while len(list(frames(data))) < 2:
            data += s.recv(65536)
        got = list(frames(data))
        assert got[0] == (10, b"hi"), got[:1]
        assert got[1] == (2, bytes(range(256))), got[1][0]
        # a close is answered with the same code, then the server closes
        s.sendall(frame(8, struct.pack(">H", 1000) + b"bye"))
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        got = list(frames(data))
        assert got[0][0] == 8 and struct.unpack(">H", got[0][1][:2])[0] == 1000, got
        line = d.wait_log(event="ws_closed")
        assert line["code"] == "1000", line


def ws_open(d):
    s = d.connect()
    s.sendall(HANDSHAKE)
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return s


# A close body is empty or a 2-byte code and a UTF-8 reason (RFC 6455
# 5.5.1); the code must be one allowed on the wire (7.4.1, 7.4.2 and the
# IANA registry: 1000-1003, 1007-1014, 3000-4999). A valid close is echoed
# with its code, anything else is a protocol error: 1002, or 1007 for a
# reason that is not UTF-8 (as Autobahn's cases 7.x expect).
VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
               3000, 3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
BAD_UTF8 = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"  # a surrogate


def close_cases():
    yield b"", b""  # no body: answered with none
    yield b"\x03", struct.pack(">H", 1002)  # one byte: no room for a code
    yield b"\x03\xe8", b"\x03\xe8"
    for code in VALID_CODES:
        body = struct.pack(">H", code) + "bye κόσμε".encode()
        yield body, body
    for code in INVALID_CODES:
        yield struct.pack(">H", code) + b"bye", struct.pack(">H", 1002)
    yield struct.pack(">H", 1000) + BAD_UTF8, struct.pack(">H", 1007)
    yield struct.pack(">H", 1000) + b"a\xc0\xaf", struct.pack(">H", 1007)  # overlong


def test_close_payload_rules():
    with Daemon() as d:
        for sent, want in close_cases():
            s = ws_open(d)
            s.sendall(frame(8, sent))
            got = list(frames(recv_until_closed(s)))  # the server closes after its answer
            s.close()
            assert got == [(8, want)], (sent, want, got)
        # logged once each, and on_close hears the code the server answered
        want_bad = ["1002"] * (1 + len(INVALID_CODES)) + ["1007"] * 2
        deadline = time.monotonic() + 10  # a line may be written after its close frame
        while True:
            bad = [line["code"] for line in d.log_lines(event="ws_bad_input", reason="bad_close")]
            if len(bad) >= len(want_bad) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert sorted(bad) == want_bad, bad
        deadline = time.monotonic() + 10  # each connection is logged once it is gone
        while len(d.log_lines(event="ws_closed")) < len(list(close_cases())):
            assert time.monotonic() < deadline, d.stderr_text()
            time.sleep(0.02)
        closed = [line["code"] for line in d.log_lines(event="ws_closed")]
        assert closed.count("1002") == 1 + len(INVALID_CODES) + 1, closed  # + 1002 echoed
        assert closed.count("1012") == 1 and closed.count("1005") == 1, closed
        still = ws_open(d)  # and the daemon serves on
        still.sendall(frame(1, b"hi"))
        assert next(frames(still.recv(64))) == (1, b"hi")
        still.close()


def close_answer(d, pieces):
    """Sends pieces as separate TCP segments; the server's frames."""
    s = ws_open(d)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i, piece in enumerate(pieces):
        if i:
            time.sleep(0.02)  # so that each piece is a read of its own
        s.sendall(piece)
    got = list(frames(recv_until_closed(s)))
    s.close()
    return got


def test_close_split_across_reads():
    """A close frame is judged on its whole body, however the reads cut it
    (wslay alone judges a reason's UTF-8 piece by piece, and wrongly)."""
    valid = struct.pack(">H", 1000) + "abcκόσμε".encode()
    invalid = struct.pack(">H", 1000) + b"ab\xc0\xafcd"
    with Daemon() as d:
        for body, want in ((valid, valid), (invalid, struct.pack(">H", 1007))):
            raw = frame(8, body)
            for cut in range(1, len(raw)):
                got = close_answer(d, [raw[:cut], raw[cut:]])
                assert got == [(8, want)], (body, cut, got)
        # cut by wslay's 4 KiB read buffer, within one read: messages of
        # 4086 bytes in all, then the close, whose body so has 4 bytes
        # (the code, "ab") before the buffer's end
        msgs = [frame(1, b"m" * 100)] * 38 + [frame(1, b"f" * 52)]
        assert len(b"".join(msgs)) == 4086
        got = close_answer(d, [b"".join(msgs) + frame(8, valid)])
        assert got[:-1] == [(1, b"m" * 100)] * 38 + [(1, b"f" * 52)], len(got)
        assert got[-1] == (8, valid), got[-1]


if __name__ == "__main__":
    run_tests(globals())
