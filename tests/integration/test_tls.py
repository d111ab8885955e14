"""TLS in the real chorusd, with a test CA and certificates made here by the
openssl CLI: HTTPS with keep-alive and ALPN through curl, WebSocket over TLS
through node's `ws`, TLS 1.1 refused, a key that does not match its
certificate (or a missing or broken file) refused at start and by --check
with the file named, certificates reloaded on SIGHUP while a keep-alive
connection and a WebSocket stay up (a bad reload keeps the previous
certificate), and outbound HTTPS: a backend with a certificate the system
does not trust takes the flow's error edge, and works with outbound.ca_files
or outbound.ca_file (outbound.insecure_hosts is logged at start)."""

import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, chorusd_path, run_tests  # noqa: E402

SRC = os.environ.get("CHORUS_SOURCE_DIR", ".")
FLOWS = os.path.join(SRC, "flows")
WS_CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tls_ws_client.mjs")
KEY = "gw-tls-key-5be1"


# -- certificates ---------------------------------------------------------------


def openssl(cwd, *args):
    p = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, timeout=60)
    assert p.returncode == 0, (args, p.stderr.decode())


class Pki:
    """A test CA and leaf certificates for 127.0.0.1 (and localhost)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="chorus-tls-")
        openssl(self.dir, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
                "-days", "2", "-subj", "/CN=chorus test CA")
        with open(os.path.join(self.dir, "san.ext"), "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        self.ca = self.path("ca.pem")

    def path(self, name):
        return os.path.join(self.dir, name)

    def leaf(self, name, cn):
        """name.pem and name.key signed by the CA; returns (cert, key)."""
        openssl(self.dir, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn)
        openssl(self.dir, "x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey",
                "ca.key", "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile",
                "san.ext")
        return self.path(name + ".pem"), self.path(name + ".key")

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


PKI = Pki()
V1 = PKI.leaf("v1", "chorus-v1")
V2 = PKI.leaf("v2", "chorus-v2")
OTHER_KEY = PKI.leaf("other", "chorus-other")[1]


def tls_config(cert, key, **extra):
    cfg = {"tls": {"listen": "127.0.0.1:0", "cert_file": cert, "key_file": key}}
    cfg["tls"].update(extra)
    return cfg


def tls_port(d):
    return int(d.wait_log(event="tls_ready")["port"])


def client_ctx():
    return ssl.create_default_context(cafile=PKI.ca)


def peer_cn(sock):
    subject = dict(x[0] for x in sock.getpeercert()["subject"])
    return subject["commonName"]


def curl(*args):
    cmd = ["curl", "-sS", "--max-time", "20", "--cacert", PKI.ca] + list(args)
    return subprocess.run(cmd, capture_output=True, timeout=30)


def count_logs(d, **match):
    return len(d.log_lines(**match))


def wait_count(d, n, timeout=10.0, **match):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if count_logs(d, **match) >= n:
            return
        time.sleep(0.02)
    raise AssertionError("no %d log lines with %r in:\n%s" % (n, match, d.stderr_text()))


# -- the TLS listener -------------------------------------------------------------


def test_curl_https_keep_alive_and_alpn():
    with Daemon(config=tls_config(*V1)) as d:
        port = tls_port(d)
        url = "https://127.0.0.1:%d" % port
        p = curl("-v", url + "/healthz", url + "/healthz")
        err = p.stderr.decode()
        assert p.returncode == 0, err
        assert p.stdout == b'{"status":"ok"}' * 2, p.stdout
        assert "ALPN: server accepted http/1.1" in err, err
        assert "Re-using existing connection" in err, err  # one TLS connection, two requests
        assert "TLSv1.3" in err, err
        # TLS 1.2 works too, with a POST body
        p = curl("--tlsv1.2", "--tls-max", "1.2", "-H", "Content-Type: application/json",
                 "-d", '{"n":1}', url + "/v1/echo")
        assert p.returncode == 0 and json.loads(p.stdout) == {"echo": {"n": 1}}, p
        # the plain listener is still plain
        assert d.json("GET", "/healthz")[0] == 200


def test_metrics_need_a_token_when_the_tls_listener_is_public():
    """admin.metrics_auth auto: the TLS listener serves /metrics too, so one
    beyond loopback makes the figures need a token, as listen does."""
    with Daemon(config=tls_config(*V1)) as d:  # both listeners on loopback: open
        p = curl("-o", "/dev/null", "-w", "%{http_code}",
                 "https://127.0.0.1:%d/metrics" % tls_port(d))
        assert p.stdout == b"200", p
    with Daemon(config=tls_config(*V1, listen="0.0.0.0:0")) as d:
        p = curl("-o", "/dev/null", "-w", "%{http_code}",
                 "https://127.0.0.1:%d/metrics" % tls_port(d))
        assert p.stdout == b"401", p
        assert d.request("GET", "/metrics")[0] == 401


def test_session_resumption():
    with Daemon(config=tls_config(*V1)) as d:
        port = tls_port(d)
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = client_ctx()
            ctx.maximum_version = version
            first = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)
            assert get(first)[0] == 200  # TLS 1.3 tickets arrive after the handshake
            session = first.sock.session
            assert not first.sock.session_reused
            first.close()
            raw = socket.create_connection(("127.0.0.1", port), timeout=10)
            tls = ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session)
            assert tls.session_reused, version
            tls.close()


def test_tls_1_1_refused():
    with Daemon(config=tls_config(*V1)) as d:
        port = tls_port(d)
        p = curl("--tlsv1.1", "--tls-max", "1.1", "https://127.0.0.1:%d/healthz" % port)
        assert p.returncode != 0 and p.stdout == b"", p
        line = d.wait_log(event="tls_error", phase="handshake")
        assert "protocol" in line["reason"], line
        # min_version 1.3 refuses 1.2 as well
    with Daemon(config=tls_config(*V1, min_version="1.3")) as d:
        port = tls_port(d)
        p = curl("--tlsv1.2", "--tls-max", "1.2", "https://127.0.0.1:%d/healthz" % port)
        assert p.returncode != 0, p
        assert curl("https://127.0.0.1:%d/healthz" % port).returncode == 0


def check_refused(cfg, *needles):
    """chorusd --check and a real start both fail, naming the problem."""
    tmp = tempfile.mkdtemp(prefix="chorus-tls-bad-")
    try:
        path = os.path.join(tmp, "chorusd.json")
        cfg = dict(cfg, data_dir=os.path.join(tmp, "data"))
        with open(path, "w") as f:
            json.dump(cfg, f)
        for extra in (["--check"], []):
            cmd = [chorusd_path(), "--config", path, "--listen", "127.0.0.1:0",
                   "--flows", os.path.join(tmp, "none")] + extra
            p = subprocess.run(cmd, capture_output=True, timeout=60, cwd=tmp)
            err = p.stderr.decode()
            assert p.returncode == 1, (extra, p.returncode, err)
            for n in needles:
                assert n in err, (extra, n, err)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_bad_certificate_or_key_refused_at_start():
    cert, _ = V1
    check_refused(tls_config(cert, OTHER_KEY), OTHER_KEY, "does not match", cert)
    missing = PKI.path("missing.pem")
    check_refused(tls_config(missing, V1[1]), missing, "cannot read")
    garbage = PKI.path("garbage.pem")
    with open(garbage, "w") as f:
        f.write("not a certificate\n")
    check_refused(tls_config(garbage, V1[1]), garbage, "tls.cert_file")


def test_encrypted_key_is_refused_without_asking_for_a_passphrase():
    """Under a terminal (a foreground run, docker -t, tmux) OpenSSL's default
    would prompt for the passphrase and stop the daemon there: it must be
    refused at once, saying why."""
    cert, key = V1
    enc = PKI.path("encrypted.key")
    openssl(PKI.dir, "pkey", "-in", key, "-out", enc, "-aes256", "-passout", "pass:secret")
    tmp = tempfile.mkdtemp(prefix="chorus-tls-enc-")
    try:
        path = os.path.join(tmp, "chorusd.json")
        with open(path, "w") as f:
            json.dump(dict(tls_config(cert, enc), data_dir=os.path.join(tmp, "data")), f)
        cmd = "%s --check --config %s --listen 127.0.0.1:0 --flows %s" % (
            chorusd_path(), path, os.path.join(tmp, "none"))
        # script(1) gives the command a controlling terminal, as a shell would
        p = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True,
                           timeout=30, stdin=subprocess.DEVNULL)
        out = (p.stdout + p.stderr).decode(errors="replace")
        assert p.returncode == 1, (p.returncode, out)
        assert "the key is encrypted" in out and "pass phrase" not in out.lower(), out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_record_trickled_after_the_handshake_times_out():
    """After the handshake, ciphertext that never completes a record must not
    hold the connection: like a request's first byte it starts the header
    deadline, and more of it does not extend it."""
    cert, key = V1
    cfg = dict(tls_config(cert, key), http={"header_timeout_ms": 1000})
    with Daemon(config=cfg, args=["--flows", FLOWS]) as d:
        port = tls_port(d)
        raw = socket.create_connection(("127.0.0.1", port))
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = client_ctx().wrap_bio(inc, out, server_hostname="127.0.0.1")
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                raw.sendall(out.read())
                inc.write(raw.recv(65536))
        raw.sendall(out.read())
        record = bytes([0x17, 0x03, 0x03, 0x3E, 0x80]) + b"\0" * 16000  # 16,000 bytes declared
        raw.settimeout(0.05)
        start = time.monotonic()
        closed_after = None
        for i in range(40):  # a byte every 0.25 s for 10 s
            try:
                raw.send(record[i:i + 1])
                if raw.recv(4096) == b"":
                    closed_after = time.monotonic() - start
                    break
            except socket.timeout:
                pass
            except OSError:
                closed_after = time.monotonic() - start
                break
            time.sleep(0.2)
        raw.close()
        assert closed_after is not None and closed_after < 5, closed_after


def https_conn(port):
    return http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=client_ctx())


def get(conn, path="/healthz"):
    conn.request("GET", path)
    r = conn.getresponse()
    return r.status, r.read()


class WsClient:
    """tls_ws_client.mjs as a subprocess, driven line by line."""

    def __init__(self, port):
        url = "wss://127.0.0.1:%d/v1/echo/ws" % port
        self.proc = subprocess.Popen(["node", WS_CLIENT, url, PKI.ca], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)

    def line(self):
        out = []
        t = threading.Thread(target=lambda: out.append(self.proc.stdout.readline()))
        t.start()
        t.join(20)
        assert out and out[0], "the WebSocket client said nothing"
        return out[0].strip()

    def echo(self, text):
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        return self.line()

    def close(self):
        self.proc.stdin.write("close\n")
        self.proc.stdin.flush()
        got = self.line()
        self.proc.wait(10)
        return got


def test_websocket_over_tls():
    with Daemon(config=tls_config(*V1)) as d:
        ws = WsClient(tls_port(d))
        try:
            assert ws.line() == "open TLSv1.3 chorus-v1"
            assert ws.echo("hello over tls") == "echo hello over tls"
            assert ws.echo("x" * 20000) == "echo " + "x" * 20000  # several TLS records
            assert ws.close() == "closed 1000"
        finally:
            ws.proc.kill()


def test_sighup_reloads_certificate_and_keeps_connections():
    cert, key = PKI.path("live.pem"), PKI.path("live.key")
    shutil.copy(V1[0], cert)
    shutil.copy(V1[1], key)
    with Daemon(config=tls_config(cert, key)) as d:
        port = tls_port(d)
        keep = https_conn(port)
        assert get(keep) == (200, b'{"status":"ok"}')
        assert peer_cn(keep.sock) == "chorus-v1"
        ws = WsClient(port)
        try:
            assert ws.line() == "open TLSv1.3 chorus-v1"
            assert ws.echo("before") == "echo before"
            # renew in place, then SIGHUP
            shutil.copy(V2[0], cert)
            shutil.copy(V2[1], key)
            d.signal(signal.SIGHUP)
            line = d.wait_log(event="tls_reload", status="applied")
            assert "chorus-v2" in line["CN"], line
            # both connections are still up and served
            assert get(keep) == (200, b'{"status":"ok"}')
            assert peer_cn(keep.sock) == "chorus-v1"
            assert ws.echo("after") == "echo after"
            # a new connection gets the new certificate
            fresh = https_conn(port)
            assert get(fresh)[0] == 200 and peer_cn(fresh.sock) == "chorus-v2"
            fresh.close()
            # a broken renewal (key of another certificate) keeps the previous one
            shutil.copy(OTHER_KEY, key)
            d.signal(signal.SIGHUP)
            bad = d.wait_log(event="tls_reload", status="rejected")
            assert key in bad["reason"] and "does not match" in bad["reason"], bad
            wait_count(d, 2, event="reload", status="applied")
            fresh = https_conn(port)
            assert get(fresh)[0] == 200 and peer_cn(fresh.sock) == "chorus-v2"
            fresh.close()
            assert get(keep) == (200, b'{"status":"ok"}')
            assert ws.echo("still") == "echo still"
            assert ws.close() == "closed 1000"
        finally:
            ws.proc.kill()
            keep.close()


# -- outbound HTTPS -----------------------------------------------------------------


class Backend:
    """A TLS stand-in for the airline backend with a certificate of the test CA."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                m = re.fullmatch(r"/bookings/([A-Z0-9]{6})", self.path)
                body = json.dumps({"booking": {
                    "reference": m.group(1) if m else "?", "status": "confirmed",
                    "passenger": "Ada Lovelace", "flight": "CH 101", "from": "LHR",
                    "to": "JFK", "date": "2026-12-01", "time": "09:30"}}).encode()
                self.send_response(200 if m else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*V1)
        self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.srv.handle_error = lambda *a: None  # refused handshakes are expected
        self.url = "https://127.0.0.1:%d" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def chat_daemon(backend, outbound):
    cfg = {"chat": {"api_keys": "main:" + hashlib.sha256(KEY.encode()).hexdigest()},
           "outbound": outbound}
    return Daemon(config=cfg, args=["--flows", FLOWS],
                  env={"CHORUS_BACKEND_URL": backend.url, "CHORUS_LLM_API_KEY": "sk-unused"})


def ask_booking(d):
    hdrs = {"Authorization": "Bearer " + KEY}
    status, reply = d.json("POST", "/v1/chat/conversations", None, hdrs)
    assert status == 201, reply
    status, reply = d.json("POST", "/v1/chat/conversations/%s/messages" % reply["conversation"],
                           {"text": "check booking ABC123"}, hdrs)
    assert status == 200, reply
    return reply, " ".join(m["text"] for m in reply["messages"])


def test_outbound_verifies_certificates():
    backend = Backend()
    try:
        # untrusted (the system bundle does not know the test CA): error edge
        with chat_daemon(backend, {}) as d:
            d.wait_log(event="flows_loaded", timeout=120)
            reply, text = ask_booking(d)
            assert reply["status"] == "handoff" and "isn't answering" in text, reply
            assert not d.log_lines(event="tls_verify_off")
        # the test CA for that host only
        with chat_daemon(backend, {"ca_files": "127.0.0.1=" + PKI.ca}) as d:
            d.wait_log(event="flows_loaded", timeout=120)
            reply, text = ask_booking(d)
            assert "CH 101" in text and reply["status"] != "handoff", reply
        # a CA file for every host
        with chat_daemon(backend, {"ca_file": PKI.ca}) as d:
            d.wait_log(event="flows_loaded", timeout=120)
            reply, text = ask_booking(d)
            assert "CH 101" in text, reply
        # verification off only when asked, and said so at start
        with chat_daemon(backend, {"insecure_hosts": "127.0.0.1"}) as d:
            line = d.wait_log(event="tls_verify_off")
            assert line["hosts"] == "127.0.0.1", line
            d.wait_log(event="flows_loaded", timeout=120)
            reply, text = ask_booking(d)
            assert "CH 101" in text, reply
    finally:
        backend.close()


if __name__ == "__main__":
    try:
        run_tests(globals())
    finally:
        PKI.cleanup()
