#!/usr/bin/env python3
"""The airline's business backend that the example flows call, for tests
and demos, on loopback. Binds 127.0.0.1 port 0 (or --port) and prints
`READY port=N` on stdout.

  GET  /refunds/<ref>          {"refund": {reference, status, amount, currency,
                                 requested, expected}}; 404 for an unknown ref
  GET  /bookings/<ref>         {"booking": {reference, status, passenger,
                                 flight, from, to, date, time}}; 404 if unknown
  POST /bookings/<ref>/change  body {"date": "YYYY-MM-DD"} ->
                               {"booking": {...}, "change": {fee, currency,
                                 confirmation}}; 400 for a missing/bad date
  GET  /baggage?cabin=economy  {"cabin", "carry_on_kg", "checked_bags", "checked_kg"}

Known references: refunds RF1001 (approved), RF1002 (processing), RF1003
(rejected), any other RF + 4 digits (processing); bookings ABC123, XYZ789,
any 6 capitals/digits except those starting ZZZ (404). References containing ERR500 answer
500, SLOW answer after --slow-ms, BADJSON answer malformed JSON, HANG never
answer. A path prefixed /mode/<500|slow|malformed|hang>/ does the same for
any route.

GET /_stub/requests lists the requests seen (method, path, headers, body).
"""
import argparse
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

REFUNDS = {
    "RF1001": ("approved", "249.00", "2026-11-02", "2026-12-04"),
    "RF1002": ("processing", "89.50", "2026-11-20", "2026-12-18"),
    "RF1003": ("rejected", "0.00", "2026-10-11", ""),
}
BOOKINGS = {
    "ABC123": ("Ada Lovelace", "CH 101", "LHR", "JFK", "2026-12-12", "09:40"),
    "XYZ789": ("Alan Turing", "CH 432", "CDG", "SFO", "2026-12-20", "13:15"),
}
BAGGAGE = {
    "economy": (8, 1, 23),
    "premium": (10, 2, 23),
    "business": (14, 2, 32),
}

requests_seen = []
lock = threading.Lock()


def booking_json(ref):
    name, flight, src, dst, date, tm = BOOKINGS.get(
        ref, ("Grace Hopper", "CH 77", "AMS", "BOS", "2026-12-15", "11:05"))
    return {"reference": ref, "status": "confirmed", "passenger": name, "flight": flight,
            "from": src, "to": dst, "date": date, "time": tm}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "backend-stub/1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, obj=None, raw=None):
        data = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def misbehave(self, what):
        """Handles the failure modes; returns True when it answered."""
        if "ERR500" in what or what == "500":
            self.reply(500, {"error": "internal error"})
        elif "BADJSON" in what or what == "malformed":
            self.reply(200, raw=b'{"refund": {"status": ')
        elif "HANG" in what or what == "hang":
            time.sleep(3600)
        elif "SLOW" in what or what == "slow":
            time.sleep(self.server.slow_ms / 1000.0)
            return False
        else:
            return False
        return True

    def handle_any(self):
        u = urlparse(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        path = unquote(u.path)
        if path == "/_stub/requests":
            with lock:
                return self.reply(200, requests_seen)
        with lock:
            requests_seen.append({"method": self.command, "path": self.path,
                                  "headers": {k.lower(): v for k, v in self.headers.items()},
                                  "body": raw.decode("utf-8", "replace")})
        if path.startswith("/mode/"):
            parts = path.split("/", 3)
            if self.misbehave(parts[2]):
                return None
            path = "/" + (parts[3] if len(parts) > 3 else "")
        if self.misbehave(path):
            return None
        m = re.fullmatch(r"/refunds/([^/]+)", path)
        if m and self.command == "GET":
            ref = m.group(1).upper()
            if ref in REFUNDS or re.fullmatch(r"RF\d{4}", ref):
                st, amount, req, exp = REFUNDS.get(ref, ("processing", "120.00", "2026-11-25",
                                                         "2026-12-23"))
                return self.reply(200, {"refund": {"reference": ref, "status": st,
                                                   "amount": amount, "currency": "USD",
                                                   "requested": req, "expected": exp}})
            return self.reply(404, {"error": "no refund with reference %s" % ref})
        m = re.fullmatch(r"/bookings/([^/]+)(/change)?", path)
        if m:
            ref = m.group(1).upper()
            if ref.startswith("ZZZ") or not re.fullmatch(r"[A-Z0-9]{6}", ref):
                return self.reply(404, {"error": "no booking with reference %s" % ref})
            if m.group(2) is None and self.command == "GET":
                return self.reply(200, {"booking": booking_json(ref)})
            if m.group(2) and self.command in ("POST", "PUT", "PATCH"):
                try:
                    date = json.loads(raw or b"{}").get("date", "")
                except (ValueError, AttributeError):
                    date = ""
                if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(date)):
                    return self.reply(400, {"error": "date must be YYYY-MM-DD"})
                b = booking_json(ref)
                b["date"] = date
                return self.reply(200, {"booking": b, "change": {
                    "fee": "50.00", "currency": "USD", "confirmation": "CHG-" + ref}})
        if path == "/baggage" and self.command == "GET":
            cabin = parse_qs(u.query).get("cabin", ["economy"])[0].lower()
            if cabin not in BAGGAGE:
                return self.reply(404, {"error": "unknown cabin %s" % cabin})
            c, bags, kg = BAGGAGE[cabin]
            return self.reply(200, {"cabin": cabin, "carry_on_kg": c, "checked_bags": bags,
                                    "checked_kg": kg})
        return self.reply(404, {"error": "no route %s %s" % (self.command, path)})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--slow-ms", type=int, default=1500)
    a = ap.parse_args()
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.slow_ms = a.slow_ms
    print("READY port=%d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
