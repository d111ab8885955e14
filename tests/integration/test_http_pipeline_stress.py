"""Many connections pipelining mixed requests (Content-Length and chunked
bodies, small and large, cut at random byte boundaries) against one daemon
with a small pipeline and write buffer, so reads pause and resume often:
every answer must come back complete and in order. Seeded, so a failure
replays; a second pass sends mutated garbage between good connections and
the daemon must keep answering correctly."""

import json
import os
import random
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, read_response, run_tests  # noqa: E402

CONFIG = {"http": {"max_pipelined": 4, "write_buffer_bytes": 4096, "max_body_bytes": 65536,
                   "requests_per_second": 1000000, "request_burst": 1000000,
                   "header_timeout_ms": 2000, "body_timeout_ms": 2000}}


def batch(rnd, k):
    reqs, want = [], []
    for i in range(k):
        if rnd.random() < 0.7:
            body = json.dumps({"i": i, "pad": "x" * rnd.randint(0, 20000)}).encode()
            if rnd.random() < 0.5:
                reqs.append(b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                            % (len(body), body))
            else:
                step = rnd.randint(1, 5000)
                chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[j:j + step]), body[j:j + step])
                                  for j in range(0, len(body), step))
                reqs.append(b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                            b"\r\n\r\n" + chunks + b"0\r\n\r\n")
            want.append(i)
        else:
            reqs.append(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            want.append(None)
    return b"".join(reqs), want


def client(port, seed, rounds, errors):
    rnd = random.Random(seed)
    try:
        for _ in range(rounds):
            s = socket.create_connection(("127.0.0.1", port), timeout=20)
            data, want = batch(rnd, rnd.randint(1, 30))
            # send everything from a thread while reading here: the daemon
            # pauses reading whenever answers pile up
            t = threading.Thread(target=send_cut, args=(s, data, rnd.random()))
            t.start()
            buf = b""
            for i in want:
                status, _, body, buf = read_response(s, buf, timeout=20)
                if i is None:
                    ok = status == 200 and body == b'{"status":"ok"}'
                else:
                    ok = status == 200 and json.loads(body)["echo"]["i"] == i
                if not ok:
                    errors.append((seed, i, status, body[:100]))
                    return
            t.join()
            s.close()
    except Exception as e:  # noqa: BLE001 - any failure is the test's failure
        errors.append((seed, repr(e)))


def send_cut(s, data, seed):
    rnd = random.Random(seed)
    while data:
        n = rnd.randint(1, min(len(data), 70000))
        s.sendall(data[:n])
        data = data[n:]


def garbage(port, seed):
    rnd = random.Random(seed)
    for _ in range(200):
        data, _ = batch(rnd, 3)
        b = bytearray(data)
        for _ in range(rnd.randint(1, 8)):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(bytes(b))
            s.shutdown(socket.SHUT_WR)
            s.settimeout(5)
            while s.recv(65536):
                pass
            s.close()
        except OSError:
            pass


def test_pipelined_answers_stay_in_order_under_load():
    with Daemon(config=CONFIG) as d:
        errors = []
        threads = [threading.Thread(target=client, args=(d.port, seed, 30, errors))
                   for seed in range(6)]
        threads += [threading.Thread(target=garbage, args=(d.port, 100 + seed))
                    for seed in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[:3]
        assert d.request("GET", "/healthz")[0] == 200


if __name__ == "__main__":
    run_tests(globals())
