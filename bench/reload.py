#!/usr/bin/env python3
"""Hot-reload benchmark driver (bench/reload.sh runs it).

  reload.py gen DIR N              writes N generated flows (+ settings,
                                   welcome, fallback) into DIR
  reload.py run --port P --dir DIR --token T --key K --flows N
            [--trials 10] [--reloads 100] [--threads 4] [--baseline-s 10]

gen: every flow has its own intent with eight examples made of words no
other flow uses, so the router really has N intents to tell apart.

run, part 1 (latency): `trials` times, edits one flow the way editors save
(temp file + rename), adding a training example (so the router retrains,
never a cache hit) and changing its answer; then polls a turn (a new chat
conversation asking that flow's intent) until the new answer is served.
Prints the change-to-serving latency (median, max) and the daemon's own
duration of each reload (scan, validate, train, swap) from
/v1/admin/flows/status.

run, part 2 (under load): `threads` clients run chat turns back to back on
keep-alive connections; first `baseline-s` seconds without reloads give the
no-reload p99; then `reloads` edits, each waited for until it is in force.
Prints requests, failures, p50/p99/max latency of both phases and how many
requests during the reloads took longer than the no-reload p99."""

import argparse
import http.client
import json
import os
import random
import statistics
import sys
import threading
import time

CONS = "bcdfghjklmnprstvwz"
VOWELS = "aeiou"


def word(rng):
    return "".join(rng.choice(CONS) + rng.choice(VOWELS) for _ in range(rng.randint(2, 4)))


def vocab(n, per_flow, seed=7):
    """n disjoint lists of per_flow invented words."""
    rng = random.Random(seed)
    seen, out = set(), []
    for _ in range(n):
        words = []
        while len(words) < per_flow:
            w = word(rng)
            if w not in seen:
                seen.add(w)
                words.append(w)
        out.append(words)
    return out


def flow_doc(i, words, rev):
    """Flow i at revision rev: rev extra examples, answer 'F<i> r<rev>'."""
    rng = random.Random(i)
    examples = []
    for k in range(8 + rev):
        picks = [words[(k + j) % len(words)] for j in range(3)]
        rng.shuffle(picks)
        examples.append(" ".join(picks))
    return {"name": "f%03d" % i,
            "description": "generated flow %d" % i,
            "intents": {"intent_%03d" % i: {"examples": examples}},
            "nodes": {"answer": {"type": "end", "message": "F%d r%d" % (i, rev)}}}


def question(words):
    return " ".join(words[:3])


def save(path, doc):
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)


def gen(d, n):
    os.makedirs(d, exist_ok=True)
    save(os.path.join(d, "settings.json"),
         {"settings": {"welcome_flow": "welcome", "fallback_flow": "fallback",
                       "confidence_threshold": 0.2}})
    save(os.path.join(d, "welcome.json"),
         {"name": "welcome", "nodes": {"greet": {"type": "say", "message": "Welcome."}}})
    save(os.path.join(d, "fallback.json"),
         {"name": "fallback", "nodes": {"sorry": {"type": "say", "message": "Sorry?"}}})
    for i, words in enumerate(vocab(n, 12)):
        save(os.path.join(d, "f%03d.json" % i), flow_doc(i, words, 0))


class Client:
    def __init__(self, port, key):
        self.port, self.key = port, key
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def req(self, method, path, body=None, token=None):
        headers = {"Authorization": "Bearer " + (token or self.key)}
        if body is not None:
            body = json.dumps(body)
            headers["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, body if body is not None else b"", headers)
            r = self.conn.getresponse()
            return r.status, r.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()  # the next request reconnects; this one failed
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            raise

    def turn(self, text):
        """New conversation + one message: the reply text, or raises."""
        s, b = self.req("POST", "/v1/chat/conversations")
        if s != 201:
            raise RuntimeError("start: %d %r" % (s, b[:200]))
        conv = json.loads(b)["conversation"]
        s, b = self.req("POST", "/v1/chat/conversations/%s/messages" % conv, {"text": text})
        if s != 200:
            raise RuntimeError("message: %d %r" % (s, b[:200]))
        return json.loads(b)["messages"][-1]["text"]


def status(c, token):
    s, b = c.req("GET", "/v1/admin/flows/status", token=token)
    assert s == 200, (s, b)
    return json.loads(b)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


class Editor:
    def __init__(self, d, n):
        self.d, self.n = d, n
        self.words = vocab(n, 12)
        self.rev = [0] * n

    def edit(self, i):
        self.rev[i] += 1
        save(os.path.join(self.d, "f%03d.json" % i), flow_doc(i, self.words[i], self.rev[i]))
        return "F%d r%d" % (i, self.rev[i])


def cpu_s(pid):
    """CPU seconds (user + system) the daemon has used so far."""
    if not pid:
        return 0.0
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def latency(a, ed, c):
    lat, daemon_ms, trained = [], [], 0
    cpu0 = cpu_s(a.pid)
    for t in range(a.trials):
        i = (t * 37) % ed.n
        want = ed.edit(i)
        t0 = time.monotonic()
        q = question(ed.words[i])
        while True:
            got = c.turn(q)
            if got == want:
                break
            if time.monotonic() - t0 > 120:
                sys.exit("reload.py: %r never served (last %r)" % (want, got))
        lat.append(time.monotonic() - t0)
        st = status(c, a.token)["in_force"]
        daemon_ms.append(st["duration_ms"])
        trained += st["nlu"] == "trained"
        time.sleep(0.3)  # let the rescan settle before the next edit
    cpu = (cpu_s(a.pid) - cpu0) / a.trials
    print("flows=%d trials=%d change->serving: median %.0f ms, max %.0f ms; "
          "daemon reload (scan+validate+train+swap): median %.0f ms, max %.0f ms; "
          "retrained %d/%d; daemon CPU per reload (polling turns included) %.0f ms" %
          (ed.n, a.trials, 1000 * statistics.median(lat), 1000 * max(lat),
           statistics.median(daemon_ms), max(daemon_ms), trained, a.trials, 1000 * cpu))


class Load:
    def __init__(self, a, ed):
        self.a, self.ed = a, ed
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.samples = []  # (t_end, seconds, ok)
        self.errors = []
        self.threads = [threading.Thread(target=self.run, args=(k,)) for k in range(a.threads)]

    def run(self, k):
        c = Client(self.a.port, self.a.key)
        rng = random.Random(k)
        while not self.stop.is_set():
            i = rng.randrange(self.ed.n)
            t0 = time.monotonic()
            ok = True
            try:
                got = c.turn(question(self.ed.words[i]))
                ok = got.startswith("F%d r" % i)
                if not ok:
                    raise RuntimeError("flow %d answered %r" % (i, got))
            except Exception as e:  # noqa: BLE001 (every failure counts)
                ok = False
                with self.lock:
                    self.errors.append(repr(e))
            t1 = time.monotonic()
            with self.lock:
                self.samples.append((t1, t1 - t0, ok))


def phase(samples, t0, t1):
    xs = [s for s in samples if t0 <= s[0] < t1]
    return [s[1] for s in xs], sum(1 for s in xs if not s[2])


def under_load(a, ed, c):
    load = Load(a, ed)
    for t in load.threads:
        t.start()
    time.sleep(1.0)  # warm up
    b0 = time.monotonic()
    time.sleep(a.baseline_s)
    b1 = time.monotonic()
    before = status(c, a.token)["attempts"]["loaded"]
    for r in range(a.reloads):
        ed.edit((r * 13) % ed.n)
        deadline = time.monotonic() + 120
        while status(c, a.token)["attempts"]["loaded"] < before + r + 1:
            if time.monotonic() > deadline:
                sys.exit("reload.py: reload %d never happened" % r)
            time.sleep(0.01)
    r1 = time.monotonic()
    load.stop.set()
    for t in load.threads:
        t.join(60)
    base, base_failed = phase(load.samples, b0, b1)
    rel, rel_failed = phase(load.samples, b1, r1)
    p99 = pct(base, 0.99)
    slow = sum(1 for x in rel if x > p99)
    print("flows=%d threads=%d no-reload %.0f s: %d requests, %d failed, p50 %.1f ms, p99 %.1f ms, "
          "max %.1f ms" % (ed.n, a.threads, b1 - b0, len(base), base_failed,
                           1000 * pct(base, 0.5), 1000 * p99, 1000 * max(base)))
    print("flows=%d %d reloads in %.1f s: %d requests, %d failed, p50 %.1f ms, p99 %.1f ms, "
          "max %.1f ms, %d (%.2f%%) slower than the no-reload p99" %
          (ed.n, a.reloads, r1 - b1, len(rel), rel_failed, 1000 * pct(rel, 0.5),
           1000 * pct(rel, 0.99), 1000 * max(rel), slow, 100.0 * slow / max(1, len(rel))))
    for e in load.errors[:5]:
        print("  error: " + e)


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "gen":
        gen(sys.argv[2], int(sys.argv[3]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--flows", type=int, required=True)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--reloads", type=int, default=100)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--baseline-s", type=float, default=10)
    ap.add_argument("--pid", type=int, default=0)
    a = ap.parse_args()
    ed = Editor(a.dir, a.flows)
    c = Client(a.port, a.key)
    if a.trials:
        latency(a, ed, c)
    if a.reloads:
        under_load(a, ed, c)


if __name__ == "__main__":
    main()
