"""Per client limits against the real chorusd: the per IP token bucket (429
with Retry-After and a JSON error, other addresses unaffected), the per API
key bucket, the cap on open connections per IP (refused cleanly, logged once
per interval rather than per connection), X-Forwarded-For believed only from
a trusted proxy (rightmost untrusted hop), memory bounded while many
addresses come and go, and that the per connection limit still holds.

Every address is on loopback: 127.0.0.0/8 gives distinct socket peers
(127.0.0.2, 127.0.0.3...), and forwarded addresses are only ever text."""

import hashlib
import json
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, read_response, recv_until_closed, run_tests  # noqa: E402

KEY = "gw-limit-key-4e1d"
OTHER = "gw-limit-other-77a0"


def sha(s):
    return hashlib.sha256(s.encode()).hexdigest()


def get(d, path="/healthz", headers=None, source="127.0.0.1"):
    """One GET on a new connection from the source address."""
    s = socket.create_connection(("127.0.0.1", d.port), timeout=10, source_address=(source, 0))
    try:
        hdrs = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n"
                   % (path, hdrs)).encode())
        status, h, body, _ = read_response(s)
        return status, h, body
    finally:
        s.close()


def check_429(status, headers, body):
    assert status == 429, (status, body)
    assert int(headers["retry-after"]) >= 1, headers
    assert headers["content-type"] == "application/json", headers
    assert json.loads(body)["error"]["code"] == "rate_limited", body


def test_per_ip_bucket_429_with_retry_after():
    with Daemon(config={"limits": {"per_ip_rps": 1, "per_ip_burst": 3}}) as d:
        for _ in range(3):
            assert get(d)[0] == 200
        check_429(*get(d))
        # another address has its own bucket
        assert get(d, source="127.0.0.2")[0] == 200
        # unknown paths count too: scanning is not free
        check_429(*get(d, "/no/such/path"))
        d.wait_log(event="client_limited", reason="per_ip_rate")


def test_per_ip_429_keeps_the_connection_and_drops_the_body():
    with Daemon(config={"limits": {"per_ip_rps": 1, "per_ip_burst": 1}}) as d:
        s = d.connect()
        body = b'{"a":1}'
        req = (b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        s.sendall(req * 2 + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        st1, _, b1, rest = read_response(s)
        st2, h2, b2, rest = read_response(s, rest)
        st3, h3, b3, _ = read_response(s, rest)
        assert st1 == 200 and json.loads(b1) == {"echo": {"a": 1}}, (st1, b1)
        check_429(st2, h2, b2)
        check_429(st3, h3, b3)  # the refused body was not taken for a request
        s.close()


def test_xff_from_untrusted_peer_is_ignored():
    cfg = {"limits": {"per_ip_rps": 1, "per_ip_burst": 2, "trusted_proxies": "10.0.0.0/8"}}
    with Daemon(config=cfg) as d:
        # each request claims another client: all are 127.0.0.1's
        assert get(d, headers={"X-Forwarded-For": "198.51.100.1"})[0] == 200
        assert get(d, headers={"X-Forwarded-For": "198.51.100.2"})[0] == 200
        check_429(*get(d, headers={"X-Forwarded-For": "198.51.100.3"}))


def test_xff_from_trusted_proxy_names_the_client():
    cfg = {"limits": {"per_ip_rps": 1, "per_ip_burst": 2,
                      "trusted_proxies": "127.0.0.1/32, 10.0.0.0/8"},
           "log_level": "info"}
    with Daemon(config=cfg) as d:
        xff = {"X-Forwarded-For": "198.51.100.7"}
        assert get(d, headers=xff)[0] == 200
        assert get(d, headers=xff)[0] == 200
        check_429(*get(d, headers=xff))
        # another forwarded client is not limited by the first one
        assert get(d, headers={"X-Forwarded-For": "198.51.100.8"})[0] == 200
        # rightmost untrusted hop: a client-written left part cannot pick a bucket
        spoof = {"X-Forwarded-For": "203.0.113.50, 198.51.100.7, 10.1.2.3"}
        check_429(*get(d, headers=spoof))
        # two headers are one list, in order
        s = d.connect()
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.60\r\n"
                  b"X-Forwarded-For: 198.51.100.7\r\nConnection: close\r\n\r\n")
        check_429(*read_response(s)[:3])
        s.close()
        # garbage as the last hop: the walk stops at the proxy, never at text
        # a client made up
        assert get(d, headers={"X-Forwarded-For": "198.51.100.7, not-an-ip"})[0] == 200
        d.wait_log(event="client_limited", last="198.51.100.7")
        # the request log names the forwarded client beside the proxy's connection
        line = d.wait_log(event="request", client="198.51.100.8")
        assert line["conn"].startswith("127.0.0.1:"), line
        # a peer outside the trusted set is its own client even with XFF
        assert get(d, headers=xff, source="127.0.0.2")[0] == 200


def test_xff_ipv6_hops_and_slash64():
    cfg = {"limits": {"per_ip_rps": 1, "per_ip_burst": 1, "trusted_proxies": "127.0.0.1"}}
    with Daemon(config=cfg) as d:
        assert get(d, headers={"X-Forwarded-For": "2001:db8:1:2::1"})[0] == 200
        # the same /64 shares the bucket; another /64 does not
        check_429(*get(d, headers={"X-Forwarded-For": "[2001:db8:1:2::99]"}))
        assert get(d, headers={"X-Forwarded-For": "2001:db8:1:3::1"})[0] == 200


def test_per_key_bucket():
    cfg = {"chat": {"api_keys": "gw:%s,other:%s" % (sha(KEY), sha(OTHER))},
           "limits": {"per_key_rps": 1, "per_key_burst": 2}}
    with Daemon(config=cfg) as d:
        def conv(key):
            return d.request("GET", "/v1/chat/conversations/nope",
                             headers={"Authorization": "Bearer " + key})
        assert conv(KEY)[0] == 404
        assert conv(KEY)[0] == 404
        check_429(*conv(KEY))
        assert conv(OTHER)[0] == 404  # its own bucket
        # a wrong key is refused by authentication, not counted against a key
        assert conv("forged")[0] == 401
        # the WebSocket upgrade with the same key is limited too
        s = d.connect()
        s.sendall(("GET /v1/chat/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n" % KEY).encode())
        status, h, body, _ = read_response(s)
        assert status == 429 and int(h["retry-after"]) >= 1, (status, h)
        s.close()
        d.wait_log(event="client_limited", reason="per_key_rate")


def test_per_ip_connection_cap_refuses_cleanly_and_logs_once():
    cfg = {"limits": {"per_ip_connections": 3}}
    with Daemon(config=cfg) as d:
        held = [d.connect() for _ in range(3)]
        for s in held:  # all three are served
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(s)[0] == 200
        for _ in range(5):
            s = d.connect()
            data = recv_until_closed(s)
            s.close()
            status, h, body, _ = read_response(None, data)
            assert status == 429 and h["connection"] == "close", (status, h)
            assert json.loads(body)["error"]["code"] == "too_many_connections"
        # another address is not affected
        s = socket.create_connection(("127.0.0.1", d.port), source_address=("127.0.0.2", 0))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(s)[0] == 200
        s.close()
        # one line for the five refusals, not five
        d.wait_log(event="client_limited", reason="per_ip_connections")
        assert len(d.log_lines(event="client_limited", reason="per_ip_connections")) == 1
        # a closed connection frees its place
        held.pop().close()
        for _ in range(100):
            s = d.connect()
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            status = read_response(s)[0]
            s.close()
            if status == 200:
                break
        assert status == 200
        for s in held:
            s.close()


def test_trusted_proxy_is_exempt_from_the_connection_cap():
    cfg = {"limits": {"per_ip_connections": 1, "trusted_proxies": "127.0.0.1"}}
    with Daemon(config=cfg) as d:
        held = [d.connect() for _ in range(4)]
        for s in held:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(s)[0] == 200
        for s in held:
            s.close()


def test_many_addresses_keep_memory_bounded():
    # max_clients 16: twenty forwarded clients fit in a table of sixteen, the
    # idlest forgotten; the daemon keeps serving and answers each correctly
    cfg = {"limits": {"per_ip_rps": 1, "per_ip_burst": 1, "max_clients": 16,
                      "trusted_proxies": "127.0.0.1"}}
    with Daemon(config=cfg) as d:
        s = d.connect()
        buf = b""
        for i in range(2000):
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.18.%d.%d\r\n\r\n"
                      % (i // 250, i % 250))
            status, _, _, buf = read_response(s, buf)
            assert status == 200, (i, status)  # each address's first request
        s.close()
        # a recent address is still remembered (its bucket is empty)
        check_429(*get(d, headers={"X-Forwarded-For": "198.18.7.249"}))
        line = d.wait_log(event="client_limited", reason="per_ip_rate")
        assert int(line["tracked"]) <= 16, line


def test_per_connection_limit_still_applies():
    cfg = {"http": {"requests_per_second": 1, "request_burst": 2},
           "limits": {"per_ip_rps": 1000, "per_ip_burst": 1000}}
    with Daemon(config=cfg) as d:
        s = d.connect()
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
        data = recv_until_closed(s)
        s.close()
        assert data.count(b"HTTP/1.1 200") == 2 and b"HTTP/1.1 429" in data, data


def test_limits_apply_on_sighup():
    import signal
    with Daemon(config={}) as d:
        for _ in range(5):
            assert get(d)[0] == 200
        d.write_config({"limits": {"per_ip_rps": 1, "per_ip_burst": 1}})
        d.signal(signal.SIGHUP)
        d.wait_log(event="http_limits_applied")
        assert get(d)[0] == 200
        check_429(*get(d))


def test_bad_limits_config_is_refused():
    import subprocess
    from harness import chorusd_path
    for bad in ({"limits": {"trusted_proxies": "10.0.0.0/33"}},
                {"limits": {"trusted_proxies": "proxy.example"}},
                {"limits": {"per_ip_rps": -1}},
                {"chat": {"frame_ancestors": "'self'; script-src *"}}):
        d = Daemon(config=bad)
        try:
            p = subprocess.run([chorusd_path(), "--config", d.config_path, "--check"],
                               capture_output=True, timeout=30)
            assert p.returncode != 0, (bad, p.stderr)
            key = list(bad[list(bad)[0]])[0]
            assert key.encode() in p.stderr, (bad, p.stderr)
        finally:
            d.cleanup()


if __name__ == "__main__":
    run_tests(globals())
