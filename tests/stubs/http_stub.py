#!/usr/bin/env python3
"""A loopback HTTP server with misbehaving routes, for the outbound HTTP
client's tests. Binds 127.0.0.1 port 0 and prints `READY port=N` on stdout.

With --tls CERT KEY it speaks HTTPS with that certificate.

Every request's Idempotency-Key header, when it has one, is printed on
stdout as `IDEMPOTENCY-KEY <value>`, in the order the requests arrive.

Routes (any method):
  /ok                      200 "hello"
  /echo                    200 JSON {method, path, headers, body}
  /status/NNN              status NNN, body "status NNN"
  /retry-after             503 with Retry-After: 7
  /slow-headers?ms=N       waits N ms, then 200 "late"
  /slow-body?chunks=N&ms=M Content-Length of N bytes, one byte every M ms
  /big?bytes=N             200 with N bytes of "x"
  /malformed               raw bytes that are not HTTP, then close
  /truncated               Content-Length 100, 10 bytes, then close
  /hang                    never answers
"""
import argparse
import json
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send_body(self, status, body, ctype="text/plain", extra=None):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        u = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if self.headers.get("Idempotency-Key") is not None:
            print("IDEMPOTENCY-KEY %s" % self.headers["Idempotency-Key"], flush=True)
        p = u.path
        if p == "/ok":
            self.send_body(200, "hello")
        elif p == "/echo":
            out = {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
            }
            self.send_body(200, json.dumps(out), "application/json")
        elif p.startswith("/status/"):
            code = int(p[len("/status/"):])
            self.send_body(code, "status %d" % code)
        elif p == "/retry-after":
            self.send_body(503, "busy", extra={"Retry-After": "7"})
        elif p == "/slow-headers":
            time.sleep(int(q.get("ms", "1000")) / 1000.0)
            self.send_body(200, "late")
        elif p == "/slow-body":
            chunks, ms = int(q.get("chunks", "10")), int(q.get("ms", "100"))
            self.send_response(200)
            self.send_header("Content-Length", str(chunks))
            self.end_headers()
            for _ in range(chunks):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(ms / 1000.0)
        elif p == "/big":
            self.send_body(200, b"x" * int(q.get("bytes", "1000")))
        elif p == "/malformed":
            self.wfile.write(b"THIS IS NOT HTTP\r\n\r\n")
            self.close_connection = True
        elif p == "/truncated":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.close_connection = True
        elif p == "/hang":
            time.sleep(3600)
        else:
            self.send_body(404, "no such route")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that hang up mid-answer are part of the tests


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    a = ap.parse_args()
    srv = Server(("127.0.0.1", 0), Handler)
    if a.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls[0], a.tls[1])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.daemon_threads = True
    print("READY port=%d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
