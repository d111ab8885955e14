"""WebSocket limits with a raw client: a peer that sends but never reads
fills its send queue (the echo route closes it with 1008 once a send fails
with CORE_ERR_BUSY), and the daemon's memory stays bounded meanwhile."""

import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, run_tests, small_quarantine_env  # noqa: E402

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


if __name__ == "__main__":
    run_tests(globals())
