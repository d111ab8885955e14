#!/usr/bin/env python3
"""End-to-end turns/s over the chat REST API with the store on a file versus
store.path=":memory:", in the same run (bench/store.sh calls this).

usage: store_e2e.py BUILD_DIR SOURCE_DIR [SECONDS]

Starts chorusd with the example flows, creates 200 conversations, and runs
wrk (-t2 -c64 --latency) posting "how are you" turns spread over them,
alternating file / :memory: runs twice. Prints turns/s, p50/p99, chorusd's
CPU time per turn (all threads, and the store's writer and checkpointer
threads apart: the figure to compare on a busy machine) and the ratio. The
load generator shares the machine's two cores with chorusd."""
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

KEY = "bench-key-0e1f"


def start_daemon(build, src, tmp, memory):
    data = os.path.join(tmp, "data")
    os.makedirs(data)
    cfg = {"chat": {"api_keys": "b:" + hashlib.sha256(KEY.encode()).hexdigest(),
                    "max_conversations": 100000}}
    if memory:
        cfg["store"] = {"path": ":memory:"}
    with open(os.path.join(tmp, "c.json"), "w") as f:
        json.dump(cfg, f)
    p = subprocess.Popen([os.path.join(build, "chorusd"), "--config", os.path.join(tmp, "c.json"),
                          "--data-dir", data, "--listen", "127.0.0.1:0", "--flows",
                          os.path.join(src, "flows")], stderr=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, cwd=tmp)
    port, loaded = None, threading.Event()
    lines = []

    def reader():
        for raw in p.stderr:
            line = raw.decode("utf-8", "replace")
            lines.append(line)
            if "event=flows_loaded" in line:
                loaded.set()
    threading.Thread(target=reader, daemon=True).start()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and (port is None or not loaded.is_set()):
        for line in list(lines):
            m = re.search(r"event=ready .*\bport=(\d+)", line)
            if m:
                port = int(m.group(1))
        if p.poll() is not None:
            break
        time.sleep(0.05)
    if port is None or not loaded.is_set():
        p.kill()
        sys.exit("store_e2e: chorusd did not start:\n" + "".join(lines[-20:]))
    return p, port, data


def post(port, path, body):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body,
                                 headers={"Authorization": "Bearer " + KEY,
                                          "Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def thread_cpu(pid):
    """CPU seconds per thread name of process pid (utime + stime)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                st = f.read()
        except OSError:
            continue
        name = st[st.index("(") + 1:st.rindex(")")]
        fields = st[st.rindex(")") + 2:].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def run(build, src, memory, seconds):
    tmp = tempfile.mkdtemp(prefix="chorus-bench-store-")
    p, port, data = start_daemon(build, src, tmp, memory)
    try:
        if not memory and not os.path.exists(os.path.join(data, "chorus.db")):
            return None
        ids = [post(port, "/v1/chat/conversations", b"")["conversation"] for _ in range(200)]
        lua = os.path.join(tmp, "turns.lua")
        with open(lua, "w") as f:
            f.write("ids = {%s}\n" % ",".join('"%s"' % i for i in ids))
            f.write('request = function()\n'
                    '  local id = ids[math.random(#ids)]\n'
                    '  return wrk.format("POST", "/v1/chat/conversations/" .. id .. "/messages",\n'
                    '    {["Authorization"] = "Bearer %s", ["Content-Type"] = "application/json"},\n'
                    '    \'{"text":"how are you"}\')\n'
                    'end\n' % KEY)
        cpu0 = thread_cpu(p.pid)
        out = subprocess.run(["wrk", "-t2", "-c64", "-d%ds" % seconds, "--latency", "-s", lua,
                              "http://127.0.0.1:%d/" % port], capture_output=True, text=True,
                             timeout=seconds + 60).stdout
        cpu1 = thread_cpu(p.pid)
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        total = int(re.search(r"(\d+) requests in", out).group(1))
        lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

        def us(names):
            d = sum(cpu1.get(n, 0.0) - cpu0.get(n, 0.0) for n in names)
            return 1e6 * d / max(total, 1)
        return (rps, lat.get("50"), lat.get("99"), int(bad.group(1)) if bad else 0,
                us(set(cpu1)), us(["chorus-writer"]), us(["chorus-ckpt"]))
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    build, src = sys.argv[1], sys.argv[2]
    seconds = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    if shutil.which("wrk") is None:
        print("end-to-end: skipped (wrk not installed)")
        return
    results = {"file": [], "memory": []}
    for _ in range(2):
        for mode in ("file", "memory"):
            r = run(build, src, mode == "memory", seconds)
            if r is None:
                print("end-to-end: skipped (this chorusd does not open the store yet)")
                return
            results[mode].append(r)
            print("end-to-end %-6s turns/s=%.0f p50=%s p99=%s non2xx=%d cpu_us/turn=%.1f"
                  " (writer %.1f, checkpointer %.1f)" % ((mode,) + r))
    f = sum(r[0] for r in results["file"]) / 2
    m = sum(r[0] for r in results["memory"]) / 2
    print("end-to-end: store on a file %.0f turns/s, :memory: %.0f turns/s: durable storage "
          "costs %.1f%% of throughput" % (f, m, 100.0 * (1 - f / m)))
    fc = sum(r[4] for r in results["file"]) / 2
    mc = sum(r[4] for r in results["memory"]) / 2
    print("end-to-end: chorusd CPU per turn: file %.1f us, :memory: %.1f us (durable storage "
          "costs %.1f%% more CPU)" % (fc, mc, 100.0 * (fc / mc - 1)))


if __name__ == "__main__":
    main()
