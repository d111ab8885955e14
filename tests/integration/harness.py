"""Integration test harness: runs the real chorusd on 127.0.0.1 port 0.

Usage (Python 3 standard library only):

    from harness import Daemon, run_tests

    def test_health(d):
        status, headers, body = d.request("GET", "/healthz")
        assert status == 200

    if __name__ == "__main__":
        run_tests(globals())            # runs every test_* with a fresh daemon

    with Daemon(config={"http": {"max_body_bytes": 1024}}) as d:
        ...                              # d.port, d.stderr_text(), d.log_lines()

The daemon gets a temporary data dir, `--listen 127.0.0.1:0`, optional extra
arguments, a config file written from a dict (or a path) and extra
environment. start() waits for the `event=ready ... port=N` line on stderr.
stop() sends SIGTERM and asserts exit status 0; kill() is used on any
failure, so no daemon outlives its test. Binaries come from $CHORUSD.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

READY_TIMEOUT = 20.0


def chorusd_path():
    path = os.environ.get("CHORUSD")
    if not path:
        build = os.environ.get("CHORUS_BUILD_DIR", "build")
        path = os.path.join(build, "chorusd")
    return path


class DaemonError(AssertionError):
    pass


class Daemon:
    """One chorusd process. Use as a context manager, or call start()/stop()."""

    def __init__(self, config=None, args=(), env=None, listen="127.0.0.1:0"):
        self.tmp = tempfile.mkdtemp(prefix="chorus-it-")
        self.data_dir = os.path.join(self.tmp, "data")
        os.makedirs(self.data_dir)
        self.config_path = None
        if isinstance(config, dict):
            self.config_path = os.path.join(self.tmp, "chorusd.json")
            self.write_config(config)
        elif isinstance(config, str):
            self.config_path = config
        self.args = list(args)
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.listen = listen
        self.proc = None
        self.port = None
        self._err = []
        self._lock = threading.Lock()
        self._reader = None

    # -- configuration --------------------------------------------------------

    def write_config(self, config):
        """(Re)writes the config file from a dict; SIGHUP to apply it."""
        if self.config_path is None:
            self.config_path = os.path.join(self.tmp, "chorusd.json")
        with open(self.config_path, "w") as f:
            json.dump(config, f, indent=2)

    # -- lifecycle -------------------------------------------------------------

    def command(self):
        cmd = [chorusd_path(), "--data-dir", self.data_dir]
        if self.listen:
            cmd += ["--listen", self.listen]
        if self.config_path:
            cmd += ["--config", self.config_path]
        return cmd + self.args

    def start(self):
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=self.env, cwd=self.tmp)
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            m = re.search(r"event=ready .*\bport=(\d+)", self.stderr_text())
            if m:
                self.port = int(m.group(1))
                return self
            if self.proc.poll() is not None:
                self._reader.join(timeout=5)  # the whole of its stderr, to report
                break
            time.sleep(0.02)
        self.kill()
        raise DaemonError("chorusd did not become ready:\n" + self.stderr_text())

    def _read_stderr(self):
        for line in iter(self.proc.stderr.readline, b""):
            with self._lock:
                self._err.append(line.decode("utf-8", "replace"))

    def stderr_text(self):
        with self._lock:
            return "".join(self._err)

    def log_lines(self, **match):
        """Parsed logfmt lines whose keys equal every given value."""
        out = []
        for line in self.stderr_text().splitlines():
            fields = parse_logfmt(line)
            if all(fields.get(k) == str(v) for k, v in match.items()):
                out.append(fields)
        return out

    def wait_log(self, timeout=10.0, **match):
        """Waits until a log line matches; returns it or raises."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.log_lines(**match)
            if lines:
                return lines[-1]
            time.sleep(0.02)
        raise DaemonError("no log line with %r in:\n%s" % (match, self.stderr_text()))

    def rss_kib(self):
        """The daemon's resident memory in KiB."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=30.0):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise DaemonError("chorusd did not exit:\n" + self.stderr_text())

    def stop(self, timeout=30.0):
        """SIGTERM, then asserts a clean exit (status 0)."""
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
        else:
            self.signal(signal.SIGTERM)
            code = self.wait(timeout)
        if self._reader:
            self._reader.join(timeout=5)
        self.cleanup()
        if code != 0:
            raise DaemonError("chorusd exited with %r:\n%s" % (code, self.stderr_text()))

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.cleanup()

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.stop()
        else:
            sys.stderr.write("---- chorusd stderr ----\n" + self.stderr_text())
            self.kill()
        return False

    # -- clients ---------------------------------------------------------------

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def connect(self, timeout=10.0):
        """A raw TCP socket to the daemon."""
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=10.0):
        """One request on a new connection: (status, headers dict lower-cased, body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                headers = dict(headers or {})
                headers.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def json(self, method, path, body=None, headers=None):
        status, hdrs, data = self.request(method, path, body, headers)
        return status, json.loads(data) if data else None

    def curl(self, *args, check=True):
        """Runs curl against the daemon (args may use {url} for the base URL)."""
        base = "http://127.0.0.1:%d" % self.port
        cmd = ["curl", "-sS", "--max-time", "20"] + [a.replace("{url}", base) for a in args]
        p = subprocess.run(cmd, capture_output=True, timeout=30)
        if check and p.returncode != 0:
            raise DaemonError("curl failed (%d): %s" % (p.returncode, p.stderr.decode()))
        return p


def small_quarantine_env():
    """Environment for tests that assert on the daemon's memory: under
    AddressSanitizer freed memory is kept in a quarantine (256 MB by
    default), which would count as resident; keep it small."""
    opts = os.environ.get("ASAN_OPTIONS", "")
    return {"ASAN_OPTIONS": (opts + ":" if opts else "") + "quarantine_size_mb=4"}


def parse_logfmt(line):
    """key=value and key="quoted value" pairs of one log line."""
    out = {}
    for m in re.finditer(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)', line):
        v = m.group(2)
        if v.startswith('"'):
            v = v[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        out[m.group(1)] = v
    return out


# -- raw HTTP helpers ---------------------------------------------------------


def recv_until_closed(sock, timeout=10.0):
    """Reads until the peer closes; returns the bytes."""
    sock.settimeout(timeout)
    chunks = []
    while True:
        try:
            b = sock.recv(65536)
        except ConnectionResetError:
            break
        if not b:
            break
        chunks.append(b)
    return b"".join(chunks)


def read_response(sock, buf=b"", timeout=10.0):
    """Reads one HTTP response from sock (None: buf holds it all):
    (status, headers, body, leftover)."""
    if sock is not None:
        sock.settimeout(timeout)
    while b"\r\n\r\n" not in buf:
        b = sock.recv(65536) if sock is not None else b""
        if not b:
            raise DaemonError("connection closed before a response; got %r" % buf)
        buf += b
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    if status in (100, 101):
        n = 0
    while len(rest) < n:
        b = sock.recv(65536) if sock is not None else b""
        if not b:
            raise DaemonError("connection closed inside a body")
        rest += b
    return status, headers, rest[:n], rest[n:]


def parse_responses(data):
    """Splits bytes holding whole responses into [(status, headers, body)]."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        out.append((int(lines[0].split()[1]), headers, rest[:n]))
        data = rest[n:]
    return out


# -- runner -------------------------------------------------------------------


def run_tests(namespace, daemon_factory=None):
    """Runs every test_* function in namespace. A test taking one argument
    gets a fresh started Daemon (daemon_factory() or Daemon()), stopped
    cleanly afterwards; one taking none runs as is. Exits 1 on any failure."""
    import inspect
    only = sys.argv[1:]
    failed = 0
    names = sorted(n for n, f in namespace.items() if n.startswith("test_") and callable(f))
    for name in names:
        if only and name not in only:
            continue
        fn = namespace[name]
        t0 = time.monotonic()
        try:
            if len(inspect.signature(fn).parameters) == 1:
                with (daemon_factory or Daemon)() as d:
                    fn(d)
            else:
                fn()
            print("ok   %s (%.2fs)" % (name, time.monotonic() - t0), flush=True)
        except Exception:
            failed += 1
            print("FAIL %s" % name, flush=True)
            traceback.print_exc()
    print("%d failed" % failed if failed else "all passed", flush=True)
    sys.exit(1 if failed else 0)
