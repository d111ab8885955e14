#!/usr/bin/env python3
"""An OpenAI-compatible chat-completions endpoint for tests, on loopback.

Binds 127.0.0.1 port 0 (or --port) and prints `READY port=N` on stdout.

POST [/mode/<mode>]/v1/chat/completions
  Checks the request the way the OpenAI API does: Content-Type
  application/json, `Authorization: Bearer <key>` when started with --key, a
  JSON object with a non-empty "model" string and a non-empty "messages"
  array of {"role": system|user|assistant, "content": string}, optional
  temperature (0..2), max_tokens (positive integer), top_p, n == 1, no
  "stream": true, no unknown top-level fields. A bad request gets 400 (401
  for the key) with OpenAI's error shape.
  A good one gets a chat.completion whose content is "echo: <last user
  message>" (or --reply TEXT) and a usage block counting words as tokens.

Modes (the path prefix, or the default set with POST /_stub/mode {"mode":..}):
  ok         answer normally
  slow       answer after delay_ms (query ?ms=N or "delay_ms"; default 1500)
  500        HTTP 500 with an OpenAI error body
  429        HTTP 429 with Retry-After: 1
  malformed  HTTP 200 with a body that is not JSON
  nocontent  HTTP 200 JSON without choices[0].message.content
  empty      an answer whose content is "" (finish_reason "length": a
             reasoning model that spent max_tokens before answering)
  filtered   content "" with finish_reason "content_filter"
  length     the answer cut at max_tokens: finish_reason "length"
  hang       never answer
  flaky      500 for the first `fail` requests (default 1) on this path, then ok

GET /_stub/requests returns every request seen: path, headers, body (parsed
JSON or null), problems (the validation errors found, [] when valid).
POST /_stub/reset clears them and the flaky counters.
"""
import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

ROLES = {"system", "user", "assistant"}
KNOWN = {"model", "messages", "temperature", "max_tokens", "top_p", "n", "stream", "stop",
         "presence_penalty", "frequency_penalty", "user", "seed", "response_format",
         "max_completion_tokens"}

state = {"mode": "ok", "delay_ms": 1500, "requests": [], "counters": {}, "seq": 0}
lock = threading.Lock()


def validate(headers, raw, key):
    """Returns (http_status, problems) for a chat-completions request."""
    problems = []
    if key is not None:
        if headers.get("Authorization", "") != "Bearer " + key:
            return 401, ["missing or wrong Authorization: Bearer key"]
    ctype = headers.get("Content-Type", "")
    if not ctype.split(";")[0].strip() == "application/json":
        problems.append("Content-Type must be application/json (got %r)" % ctype)
    try:
        body = json.loads(raw)
    except ValueError as e:
        return 400, problems + ["body is not JSON: %s" % e]
    if not isinstance(body, dict):
        return 400, problems + ["body must be a JSON object"]
    for k in body:
        if k not in KNOWN:
            problems.append("unknown field %r" % k)
    if not isinstance(body.get("model"), str) or not body.get("model"):
        problems.append("model must be a non-empty string")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        problems.append("messages must be a non-empty array")
    else:
        for i, m in enumerate(msgs):
            if not isinstance(m, dict):
                problems.append("messages[%d] must be an object" % i)
                continue
            if m.get("role") not in ROLES:
                problems.append("messages[%d].role must be system, user or assistant" % i)
            if not isinstance(m.get("content"), str):
                problems.append("messages[%d].content must be a string" % i)
            for k in m:
                if k not in ("role", "content", "name"):
                    problems.append("messages[%d] has unknown field %r" % (i, k))
    t = body.get("temperature")
    if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 2):
        problems.append("temperature must be a number from 0 to 2")
    mt = body.get("max_tokens")
    if mt is not None and (isinstance(mt, bool) or not isinstance(mt, int) or mt < 1):
        problems.append("max_tokens must be a positive integer")
    if body.get("stream") not in (None, False):
        problems.append("stream is not supported by this client")
    if body.get("n") not in (None, 1):
        problems.append("n must be 1")
    return (400 if problems else 200), problems


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "llm-stub/1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, obj=None, raw=None, extra=None):
        data = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, message, etype="invalid_request_error", code=None, extra=None):
        self.reply(status, {"error": {"message": message, "type": etype, "param": None,
                                      "code": code}}, extra=extra)

    def do_GET(self):
        if urlparse(self.path).path == "/_stub/requests":
            with lock:
                self.reply(200, state["requests"])
        else:
            self.error(404, "no such route")

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_POST(self):
        u = urlparse(self.path)
        raw = self.read_body()
        if u.path == "/_stub/mode":
            with lock:
                state.update(json.loads(raw or b"{}"))
            return self.reply(200, {"ok": True})
        if u.path == "/_stub/reset":
            with lock:
                state["requests"] = []
                state["counters"] = {}
            return self.reply(200, {"ok": True})
        mode, q = state["mode"], {k: v[0] for k, v in parse_qs(u.query).items()}
        path = u.path
        if path.startswith("/mode/"):
            parts = path.split("/", 3)
            mode, path = parts[2], "/" + (parts[3] if len(parts) > 3 else "")
        if path != "/v1/chat/completions":
            return self.error(404, "Unknown request URL: POST %s" % u.path, code="unknown_url")
        status, problems = validate(self.headers, raw, self.server.key)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with lock:
            state["requests"].append({"path": self.path, "mode": mode,
                                      "headers": {k.lower(): v for k, v in self.headers.items()},
                                      "body": body, "problems": problems})
            state["seq"] += 1
            seq = state["seq"]
            count = state["counters"].get(self.path, 0)
            state["counters"][self.path] = count + 1
        if status == 401:
            return self.error(401, problems[0], code="invalid_api_key")
        if status != 200:
            return self.error(400, "; ".join(problems))
        if mode == "flaky":
            mode = "500" if count < int(q.get("fail", "1")) else "ok"
        if mode == "slow":
            time.sleep(int(q.get("ms", state["delay_ms"])) / 1000.0)
        elif mode == "hang":
            time.sleep(3600)
            return None
        elif mode == "500":
            return self.error(500, "The server had an error while processing your request.",
                              etype="server_error")
        elif mode == "429":
            return self.error(429, "Rate limit reached", etype="rate_limit_exceeded",
                              extra={"Retry-After": "1"})
        elif mode == "malformed":
            return self.reply(200, raw=b'{"id": "chatcmpl-x", "choices": [{"message": ')
        elif mode == "nocontent":
            return self.reply(200, {"id": "chatcmpl-%d" % seq, "object": "chat.completion",
                                    "choices": []})
        users = [m["content"] for m in body["messages"] if m.get("role") == "user"]
        answer = self.server.reply_text or ("echo: " + (users[-1] if users else ""))
        finish = "stop"
        if mode in ("empty", "filtered"):
            answer, finish = "", "length" if mode == "empty" else "content_filter"
        elif mode == "length":
            finish = "length"
        prompt_tokens = sum(len(m["content"].split()) for m in body["messages"])
        completion_tokens = len(answer.split())
        self.reply(200, {
            "id": "chatcmpl-stub-%d" % seq,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "system_fingerprint": "fp_stub",
            "choices": [{"index": 0,
                         "message": {"role": "assistant", "content": answer},
                         "logprobs": None,
                         "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens,
                      "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        })


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that give up mid-answer are part of the tests


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--key", default=None, help="require Authorization: Bearer KEY")
    ap.add_argument("--reply", default=None, help="answer with this text")
    a = ap.parse_args()
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.key, srv.reply_text = a.key, a.reply
    print("READY port=%d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
