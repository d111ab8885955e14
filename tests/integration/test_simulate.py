"""chorusctl simulate: a seeded population played in-process reports what
its goals lead to (every "agent" conversation escalates, small talk ends
contained), catches a broken expectation with the turn and what came back,
refuses a bad script with file:line:col; played over HTTP against a real
daemon, its counts match what the store recorded; and played over the chat
WebSocket (one socket per conversation) the same population comes to the
same outcomes as over HTTP (and over TLS as without), while a wrong key
stops the run with a clear error."""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon  # noqa: E402

SRC = os.environ.get("CHORUS_SOURCE_DIR", ".")
CTL = os.environ["CHORUSCTL"]
FLOWS = os.path.join(SRC, "flows")
KEY = "gw-sim-key-3b9e"

SCRIPT = {
    "goals": [
        {"name": "small talk", "weight": 3,
         "turns": [{"say": ["how are you", "how's it going"], "expect": {"status": "active"}},
                   {"say": ["goodbye", "bye"], "expect": {"status": "ended"}}]},
        {"name": "agent", "weight": 1, "slots": {"topic": ["booking", "baggage", "refund"]},
         "turns": [{"say": ["I want to talk to a human agent"],
                    "expect": {"bot_contains": "what is it about"}},
                   {"say": ["{topic}"], "expect": {"status": "handoff"}}]},
    ],
    "off_script": {"share": 0.0, "say": ["quokka zeppelin xylophone"]},
}


def write(tmp, script):
    path = os.path.join(tmp, "script.json")
    with open(path, "w") as f:
        json.dump(script, f, indent=2)
    return path


def simulate(*args):
    return subprocess.run([CTL, "simulate", "--format", "json"] + list(args),
                          capture_output=True, text=True)


def test_in_process_outcomes_follow_the_goals():
    tmp = tempfile.mkdtemp(prefix="chorus-sim-")
    p = simulate("--flows", FLOWS, "--script", write(tmp, SCRIPT), "--conversations", "200",
                 "--concurrency", "10", "--seed", "4")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["mode"] == "in-process" and r["conversations"] == 200, r
    g = r["goals"]
    assert g["agent"]["escalated"] == g["agent"]["conversations"] > 20, g
    assert g["small talk"]["contained"] == g["small talk"]["conversations"] > 100, g
    assert r["outcomes"]["escalated"] == g["agent"]["conversations"], r
    assert sum(r["escalations"].values()) == g["agent"]["conversations"], r
    assert r["turns"] == 400 and r["breaks"] == [] and r["failures"] == {}, r
    assert 0 < r["latency_ms"]["p50"] <= r["latency_ms"]["p99"] <= r["latency_ms"]["max"], r
    # the same seed plans the same population; another seed another one
    again = json.loads(simulate("--flows", FLOWS, "--script", write(tmp, SCRIPT),
                                "--conversations", "200", "--seed", "4").stdout)
    assert again["goals"] == g
    other = json.loads(simulate("--flows", FLOWS, "--script", write(tmp, SCRIPT),
                                "--conversations", "200", "--seed", "5").stdout)
    assert other["goals"] != g


def test_broken_expectation_is_reported():
    tmp = tempfile.mkdtemp(prefix="chorus-sim-")
    script = json.loads(json.dumps(SCRIPT))
    script["goals"][0]["turns"][1]["expect"] = {"bot_contains": "See you on board, captain"}
    script["off_script"]["share"] = 0.5
    p = simulate("--flows", FLOWS, "--script", write(tmp, script), "--conversations", "50")
    assert p.returncode == 1, (p.returncode, p.stderr)
    r = json.loads(p.stdout)
    b = r["breaks"]
    assert len(b) == 1 and b[0]["goal"] == "small talk" and b[0]["turn"] == 2, b
    assert b[0]["kind"] == "bot_contains" and b[0]["count"] == r["goals"]["small talk"][
        "conversations"], b
    assert r["turns"] > 100, r  # off-script turns were played too


def test_bad_script_names_the_place():
    tmp = tempfile.mkdtemp(prefix="chorus-sim-")
    path = os.path.join(tmp, "bad.json")
    with open(path, "w") as f:
        f.write('{\n  "goals": [\n    {"name": "x", "turns": [{"say": []}]}\n  ]\n}\n')
    p = simulate("--flows", FLOWS, "--script", path)
    assert p.returncode == 2, p
    assert "bad.json:3:" in p.stderr and "goals[0].turns[0].say" in p.stderr, p.stderr
    p = simulate("--script", path)
    assert p.returncode == 2 and "--flows" in p.stderr, p.stderr
    p = simulate("--flows", FLOWS, "--script", path, "--concurrency", "0")
    assert p.returncode == 2 and "--concurrency" in p.stderr, p.stderr
    # an expectation that is misspelt, or not a string, would check nothing
    with open(path, "w") as f:
        f.write('{"goals": [{"name": "x", "turns": [\n  {"say": ["hi"], "expect":'
                ' {"bot_contain": "NOPE", "status": ["ended"]}}]}]}\n')
    p = simulate("--flows", FLOWS, "--script", path)
    assert p.returncode == 2, p
    assert "bad.json:2:" in p.stderr and "expect.bot_contain: unknown expectation" in p.stderr, \
        p.stderr
    assert "expect.status: must be a string" in p.stderr, p.stderr
    with open(path, "w") as f:
        f.write("[1]\n")
    p = simulate("--flows", FLOWS, "--script", path)
    assert p.returncode == 2 and "bad.json:1:1: the script must be a JSON object" in p.stderr, \
        p.stderr


def test_documented_population_passes():
    """docs/examples/population.json (docs/flywheel.md) against the example
    flows: expectations with {slot} references are checked with the values
    the turns used, and nothing breaks."""
    p = simulate("--flows", FLOWS, "--script",
                 os.path.join(SRC, "docs", "examples", "population.json"),
                 "--conversations", "300")
    assert p.returncode == 0, (p.stdout, p.stderr)
    r = json.loads(p.stdout)
    assert r["breaks"] == [] and r["outcomes"]["escalated"] > 0, r
    assert r["goals"]["booking status"]["conversations"] > 50, r


def test_http_counts_match_the_store():
    tmp = tempfile.mkdtemp(prefix="chorus-sim-")
    cfg = {"chat": {"api_keys": "sim:" + hashlib.sha256(KEY.encode()).hexdigest()}}
    d = Daemon(config=cfg, args=["--flows", FLOWS])
    d.data_dir = tmp
    with d:
        d.wait_log(event="flows_loaded", timeout=60)
        url = "http://127.0.0.1:%d/" % d.port  # a trailing slash names the same base
        p = simulate("--url", url, "--api-key", KEY, "--script", write(tmp, SCRIPT),
                     "--conversations", "60", "--concurrency", "8", "--seed", "2")
        assert p.returncode == 0, (p.stdout, p.stderr)
        r = json.loads(p.stdout)
        assert r["mode"] == "http" and r["failures"] == {} and r["breaks"] == [], r
        assert r["outcomes"]["escalated"] > 0 and r["outcomes"]["contained"] > 0, r
    rep = json.loads(subprocess.run([CTL, "report", "--db", os.path.join(tmp, "chorus.db"),
                                     "--format", "json"], capture_output=True, text=True,
                                    check=True).stdout)["total"]
    assert rep["conversations"] == 60, rep
    assert rep["escalated"] == r["outcomes"]["escalated"], (rep, r)
    assert rep["contained"] == r["outcomes"]["contained"], (rep, r)
    assert rep["turns_in"] == r["turns"], (rep, r)
    assert rep["escalations_by_reason"] == r["escalations"], (rep, r)


def daemon_with_key(tmp):
    cfg = {"chat": {"api_keys": "sim:" + hashlib.sha256(KEY.encode()).hexdigest()}}
    d = Daemon(config=cfg, args=["--flows", FLOWS])
    d.data_dir = tmp
    return d


def test_websocket_matches_http():
    """The same script, seed and count over REST and over the WebSocket,
    each against its own fresh daemon: the same conversations, turns and
    outcomes, every turn's reply complete (expectations checked per turn),
    and the store saw the WebSocket's conversations and turns."""
    tmp = tempfile.mkdtemp(prefix="chorus-sim-")
    script = write(tmp, SCRIPT)
    runs = {}
    for scheme in ("http", "ws"):
        data = tempfile.mkdtemp(prefix="chorus-sim-%s-" % scheme)
        with daemon_with_key(data) as d:
            d.wait_log(event="flows_loaded", timeout=60)
            url = "%s://127.0.0.1:%d" % (scheme, d.port)
            p = simulate("--url", url, "--api-key", KEY, "--script", script,
                         "--conversations", "40", "--concurrency", "6", "--seed", "7")
            assert p.returncode == 0, (scheme, p.stdout, p.stderr)
            runs[scheme] = json.loads(p.stdout)
        if scheme == "ws":
            rep = json.loads(subprocess.run(
                [CTL, "report", "--db", os.path.join(data, "chorus.db"), "--format", "json"],
                capture_output=True, text=True, check=True).stdout)["total"]
    h, w = runs["http"], runs["ws"]
    assert h["mode"] == "http" and w["mode"] == "websocket", (h["mode"], w["mode"])
    assert w["failures"] == {} and w["breaks"] == [], w
    for k in ("conversations", "turns", "outcomes", "containment_rate", "escalations", "goals"):
        assert h[k] == w[k], (k, h[k], w[k])
    assert w["outcomes"]["escalated"] > 0 and w["outcomes"]["contained"] > 0, w
    assert 0 < w["latency_ms"]["p50"] <= w["latency_ms"]["p99"] <= w["latency_ms"]["max"], w
    assert rep["conversations"] == 40 and rep["turns_in"] == w["turns"], (rep, w)
    assert rep["escalated"] == w["outcomes"]["escalated"], (rep, w)


def test_websocket_failures_are_clear():
    """A wrong key stops the run with the upgrade's 401; a broken
    expectation is reported as in-process; an error frame fails its
    conversation by code; a daemon that is gone fails each one to connect."""
    tmp = tempfile.mkdtemp(prefix="chorus-sim-")
    with daemon_with_key(tmp) as d:
        d.wait_log(event="flows_loaded", timeout=60)
        url = "ws://127.0.0.1:%d" % d.port
        p = simulate("--url", url, "--api-key", "not-the-key", "--script", write(tmp, SCRIPT),
                     "--conversations", "20", "--concurrency", "4")
        assert p.returncode == 1 and p.stdout == "", (p.returncode, p.stdout, p.stderr)
        assert "refused the WebSocket upgrade" in p.stderr and "401" in p.stderr, p.stderr
        assert "--api-key" in p.stderr, p.stderr
        # a broken expectation over the socket is caught like in-process
        script = json.loads(json.dumps(SCRIPT))
        script["goals"][0]["turns"][1]["expect"] = {"bot_contains": "See you on board, captain"}
        p = simulate("--url", url, "--api-key", KEY, "--script", write(tmp, script),
                     "--conversations", "10", "--seed", "3")
        assert p.returncode == 1, (p.stdout, p.stderr)
        r = json.loads(p.stdout)
        assert r["failures"] == {} and len(r["breaks"]) == 1, r
        assert r["breaks"][0]["count"] == r["goals"]["small talk"]["conversations"], r
    # an error frame fails its conversation, by code, and the others go on
    d = daemon_with_key(tmp)
    d.write_config({"chat": {"api_keys": "sim:" + hashlib.sha256(KEY.encode()).hexdigest(),
                             "max_text_bytes": 20}})
    with d:
        d.wait_log(event="flows_loaded", timeout=60)
        p = simulate("--url", "ws://127.0.0.1:%d" % d.port, "--api-key", KEY, "--script",
                     write(tmp, SCRIPT), "--conversations", "12", "--concurrency", "3",
                     "--seed", "9")
        r = json.loads(p.stdout)
        agent = r["goals"]["agent"]["conversations"]  # "I want to talk to..." is too long
        assert p.returncode == 1 and 0 < agent < 12, (p.stdout, p.stderr)
        assert r["failures"] == {"ws_too_large": agent}, r
        assert r["outcomes"]["contained"] == 12 - agent, r
        assert "ws_too_large: error frame:" in p.stderr, p.stderr
    # nothing listens: every conversation fails to connect, said once on stderr
    p = simulate("--url", url, "--api-key", KEY, "--script", write(tmp, SCRIPT),
                 "--conversations", "5")
    r = json.loads(p.stdout)
    assert p.returncode == 1 and r["failures"] == {"ws_connect": 5}, (p.stdout, p.stderr)
    assert p.stderr.count("ws_connect") == 1 and "refused" in p.stderr, p.stderr


def self_signed(tmp):
    """A certificate for 127.0.0.1 that trusts itself: (cert, key)."""
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days",
                    "2", "-subj", "/CN=chorus sim", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def test_websocket_over_tls():
    """wss:// to the TLS listener: the same outcomes as ws:// on the plain
    one, with the certificate trusted through $SSL_CERT_FILE; untrusted, the
    run fails with the certificate named as the reason."""
    tmp = tempfile.mkdtemp(prefix="chorus-sim-")
    cert, key = self_signed(tmp)
    d = daemon_with_key(tmp)
    d.write_config({"chat": {"api_keys": "sim:" + hashlib.sha256(KEY.encode()).hexdigest()},
                    "tls": {"listen": "127.0.0.1:0", "cert_file": cert, "key_file": key}})
    with d:
        d.wait_log(event="flows_loaded", timeout=60)
        tls_port = int(d.wait_log(event="tls_ready")["port"])
        args = ["--api-key", KEY, "--script", write(tmp, SCRIPT), "--conversations", "20",
                "--concurrency", "4", "--seed", "5"]
        plain = simulate("--url", "ws://127.0.0.1:%d" % d.port, *args)
        env = dict(os.environ, SSL_CERT_FILE=cert)
        tls = subprocess.run([CTL, "simulate", "--format", "json", "--url",
                              "wss://127.0.0.1:%d" % tls_port] + args,
                             capture_output=True, text=True, env=env)
        assert plain.returncode == 0 and tls.returncode == 0, (plain.stderr, tls.stderr)
        p, t = json.loads(plain.stdout), json.loads(tls.stdout)
        assert t["mode"] == "websocket" and t["failures"] == {}, t
        assert (p["turns"], p["outcomes"], p["goals"]) == (t["turns"], t["outcomes"], t["goals"])
        env = dict(os.environ, SSL_CERT_FILE=os.path.join(tmp, "none.pem"))
        bad = subprocess.run([CTL, "simulate", "--format", "json", "--url",
                              "wss://127.0.0.1:%d" % tls_port] + args,
                             capture_output=True, text=True, env=env)
        assert bad.returncode == 1 and json.loads(bad.stdout)["failures"] == {"ws_tls": 20}, \
            (bad.stdout, bad.stderr)
        assert "certificate not trusted" in bad.stderr, bad.stderr


if __name__ == "__main__":
    for name, fn in sorted(globals().items()):
        if name.startswith("test_") and callable(fn):
            fn()
            print("ok", name)
