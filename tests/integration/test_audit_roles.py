"""Roles, tokens and the audit trail against the real chorusd and chorusctl:
each role is refused what it may not do (401/403) and every refusal is an
audit row; tokens made, listed and revoked through `chorusctl token` (online
and offline), a revoked token refused at once; config reloads audited; the
chain verified by `chorusctl audit verify`, and a row changed behind the
store's back (the append-only trigger dropped in the test's own connection)
reported with its id."""
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, run_tests  # noqa: E402

CTL = os.environ.get("CHORUSCTL") or os.path.join(os.environ.get("CHORUS_BUILD_DIR", "build"),
                                                  "chorusctl")
TOKENS = {"root": "root-token-2f8e", "ops": "ops-token-91ad", "view": "view-token-c3b0",
          "desk": "desk-token-77e1"}
ROLES = {"root": "admin", "ops": "operator", "view": "viewer", "desk": "agent"}


def sha(s):
    return hashlib.sha256(s.encode()).hexdigest()


def config():
    # root keeps the plain name:sha256hex form, which means admin
    entries = ["root:" + sha(TOKENS["root"])] + [
        "%s:%s:%s" % (n, ROLES[n], sha(TOKENS[n])) for n in ("ops", "view", "desk")]
    return {"admin": {"tokens": ",".join(entries)}}


def daemon():
    return Daemon(config=config())


def call(d, method, path, who=None, body=None, token=None):
    headers = {}
    if who or token:
        headers["Authorization"] = "Bearer " + (token or TOKENS[who])
    status, hdrs, data = d.request(method, path, body=body, headers=headers)
    return status, json.loads(data) if data[:1] == b"{" else data


def ctl(*args, env=None, check=None):
    e = dict(os.environ)
    e.pop("CHORUS_ADMIN_TOKEN", None)
    e.update(env or {})
    p = subprocess.run([CTL] + list(args), capture_output=True, text=True, env=e, timeout=60)
    if check is not None:
        assert p.returncode == check, (args, p.returncode, p.stdout, p.stderr)
    return p


def db_path(d):
    return os.path.join(d.data_dir, "chorus.db")


def audit_rows(d, action=None):
    p = ctl("audit", "list", "--db", db_path(d), "--json", "--limit", "1000", check=0)
    rows = json.loads(p.stdout)["entries"]
    return [r for r in rows if action is None or r["action"] == action]


def wait_rows(d, action, n):
    """The writer commits audit rows shortly after the answer."""
    import time
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = audit_rows(d, action)
        if len(rows) >= n:
            return rows
        time.sleep(0.05)
    raise AssertionError("fewer than %d %s rows: %r" % (n, action, audit_rows(d)))


# What each route needs, and who may not: (method, path, body, refused roles).
MATRIX = [
    ("GET", "/v1/admin/conversations", None, ["desk"]),
    ("GET", "/v1/admin/reports/kpis", None, ["desk"]),
    ("GET", "/v1/admin/audit", None, ["view", "desk"]),
    ("GET", "/v1/admin/tokens", None, ["view", "ops", "desk"]),
    ("POST", "/v1/admin/tokens", {"name": "never", "role": "viewer"}, ["view", "ops", "desk"]),
    ("DELETE", "/v1/admin/tokens/nobody", None, ["view", "ops", "desk"]),
    # the agent desk: agent and admin only
    ("GET", "/v1/agent/queues", None, ["view", "ops"]),
]


def test_each_role_is_refused_what_it_may_not_do(d):
    refused = 0
    for method, path, body, denied in MATRIX:
        for who in TOKENS:
            status, ans = call(d, method, path, who, body)
            if who in denied:
                assert status == 403, (method, path, who, status, ans)
                assert ans["error"]["code"] == "forbidden", ans
                assert ROLES[who] in ans["error"]["message"], ans
                refused += 1
            elif status == 404 and path.startswith("/v1/agent/") and who == "root":
                break  # no agent desk in this build: nothing more to check on it
            else:
                assert status in (200, 201, 404), (method, path, who, status, ans)
    # reloading needs an operator: the viewer and the agent are refused
    for who in TOKENS:
        status, ans = call(d, "POST", "/v1/admin/flows/reload", who)
        if who in ("view", "desk"):
            assert status == 403, (who, status, ans)
            refused += 1
        else:
            assert status not in (401, 403), (who, status, ans)
    # no token, an unknown one: 401
    assert call(d, "GET", "/v1/admin/audit")[0] == 401
    assert call(d, "GET", "/v1/admin/audit", token="nope")[0] == 401
    rows = wait_rows(d, "admin.denied", refused + 2)
    forbidden = [r for r in rows if r["detail"]["status"] == 403]
    assert len(forbidden) == refused, (len(forbidden), refused)
    assert {r["actor"] for r in forbidden} <= {"view", "ops", "desk"}, forbidden
    assert any(r["target"] == "/v1/admin/tokens" and r["actor"] == "ops" for r in forbidden)
    unauth = [r for r in rows if r["detail"]["status"] == 401]
    assert len(unauth) == 2 and all(r["actor"] == "-" for r in unauth), unauth
    assert not any(t in json.dumps(rows) for t in TOKENS.values()), "a token leaked into audit"
    ctl("audit", "verify", "--db", db_path(d), check=0)


def test_tokens_created_listed_revoked_online(d):
    url = "http://127.0.0.1:%d" % d.port
    root = {"CHORUS_ADMIN_TOKEN": TOKENS["root"]}
    p = ctl("token", "create", "ci", "--role", "viewer", "--url", url, env=root, check=0)
    ci = p.stdout.strip()
    assert ci.startswith("chorus_") and len(ci) == 71, p.stdout
    assert "shown only this once" in p.stderr
    # usable at once, with its role
    assert call(d, "GET", "/v1/admin/conversations", token=ci)[0] == 200
    assert call(d, "GET", "/v1/admin/audit", token=ci)[0] == 403
    # the operator may not create tokens, through chorusctl either
    p = ctl("token", "create", "x", "--role", "admin", "--url", url,
            env={"CHORUS_ADMIN_TOKEN": TOKENS["ops"]}, check=1)
    assert "403" in p.stderr, p.stderr
    # a name is never reused
    assert ctl("token", "create", "ci", "--role", "admin", "--url", url, env=root).returncode == 1
    assert ctl("token", "create", "ops", "--role", "admin", "--url", url, env=root).returncode == 1
    # list: configured and stored, no secret in it
    p = ctl("token", "list", "--json", "--url", url, env=root, check=0)
    listed = {t["name"]: t for t in json.loads(p.stdout)}
    assert listed["ci"]["source"] == "store" and listed["ci"]["role"] == "viewer"
    assert listed["ci"]["created_by"] == "root" and listed["ci"]["revoked_us"] is None
    assert listed["ops"]["source"] == "config" and listed["ops"]["role"] == "operator"
    assert ci not in p.stdout and sha(ci) not in p.stdout
    # revoked: refused from the answer on, as "revoked"
    ctl("token", "revoke", "ci", "--url", url, env=root, check=0)
    status, ans = call(d, "GET", "/v1/admin/conversations", token=ci)
    assert status == 401 and "revoked" in ans["error"]["message"], (status, ans)
    assert ctl("token", "revoke", "ci", "--url", url, env=root).returncode == 1
    p = ctl("token", "list", "--json", "--url", url, env=root, check=0)
    assert {t["name"]: t for t in json.loads(p.stdout)}["ci"]["revoked_us"] is not None
    # the database holds the hash only, and the audit trail both changes
    con = sqlite3.connect(db_path(d))
    (stored,) = con.execute("SELECT sha256 FROM tokens WHERE name = 'ci'").fetchone()
    con.close()
    assert stored == sha(ci)
    made = wait_rows(d, "token.create", 1)
    gone = wait_rows(d, "token.revoke", 1)
    assert made[0]["actor"] == "root" and made[0]["target"] == "ci", made
    assert gone[0]["actor"] == "root" and gone[0]["target"] == "ci", gone
    ctl("audit", "verify", "--db", db_path(d), check=0)


def test_token_file_must_be_private(d):
    url = "http://127.0.0.1:%d" % d.port
    path = os.path.join(d.tmp, "token")
    with open(path, "w") as f:
        f.write(TOKENS["root"] + "\n")
    os.chmod(path, 0o644)
    p = ctl("token", "list", "--url", url, "--token-file", path, check=2)
    assert "chmod 600" in p.stderr, p.stderr
    os.chmod(path, 0o600)
    p = ctl("token", "list", "--url", url, "--token-file", path, check=0)
    assert "root" in p.stdout and "config" in p.stdout, p.stdout


def test_offline_tokens_load_at_start():
    d = daemon()
    d.start()
    path = db_path(d)
    d.proc.send_signal(signal.SIGTERM)
    d.wait()
    p = ctl("token", "create", "boot", "--role", "operator", "--db", path, "--by", "installer",
            check=0)
    boot = p.stdout.strip()
    # a fresh daemon on the same data dir knows it before serving
    d2 = Daemon(config=config())
    d2.data_dir = d.data_dir
    with d2:
        assert call(d2, "GET", "/v1/admin/audit", token=boot)[0] == 200
        assert call(d2, "GET", "/v1/admin/tokens", token=boot)[0] == 403
    rows = [r for r in json.loads(ctl("audit", "list", "--data-dir", d.data_dir, "--json",
                                      check=0).stdout)["entries"]
            if r["action"] == "token.create"]
    assert rows and rows[0]["actor"] == "installer", rows
    ctl("audit", "verify", "--data-dir", d.data_dir, check=0)
    d.cleanup()


def test_a_reload_cannot_give_a_stored_token_name_to_the_config(d):
    """Names are never reused: a configuration naming a token created through
    the API is refused on SIGHUP (the tokens in force stay), so that the
    audit's actor names one token and the stored one can still be revoked."""
    status, made = call(d, "POST", "/v1/admin/tokens", "root", {"name": "carl", "role": "agent"})
    assert status == 201, made
    cfg = config()
    cfg["admin"]["tokens"] += ",carl:admin:" + sha("another-secret")
    with open(d.config_path, "w") as f:
        json.dump(cfg, f)
    d.signal(signal.SIGHUP)
    d.wait_log(event="reload", status="kept_previous_config")
    assert any("carl is the name of a token created through the API" in l.get("problem", "")
               for l in d.log_lines(event="reload", status="rejected")), d.stderr_text()[-2000:]
    assert call(d, "GET", "/v1/admin/audit", token="another-secret")[0] == 401
    status, ans = call(d, "DELETE", "/v1/admin/tokens/carl", "root")
    assert status == 200, ans
    assert call(d, "GET", "/v1/agent/queues", token=made["token"])[0] == 401


def test_config_reload_is_audited(d):
    d.signal(signal.SIGHUP)
    d.wait_log(event="reload", status="applied")
    rows = wait_rows(d, "config.reload", 1)
    assert rows[0]["actor"] == "SIGHUP" and rows[0]["detail"]["status"] == "applied", rows
    with open(d.config_path, "w") as f:
        f.write("{ not json")
    d.signal(signal.SIGHUP)
    d.wait_log(event="reload", status="kept_previous_config")
    rows = wait_rows(d, "config.reload", 2)
    assert rows[0]["detail"]["status"] == "rejected", rows


def test_audit_api_pages(d):
    for i in range(5):
        call(d, "GET", "/v1/admin/tokens", "view")  # five 403s, five rows
    wait_rows(d, "admin.denied", 5)
    status, page = call(d, "GET", "/v1/admin/audit?limit=2&action=admin", "ops")
    assert status == 200 and len(page["entries"]) == 2, page
    ids = [r["id"] for r in page["entries"]]
    seen = list(ids)
    while page["next_cursor"] is not None:
        status, page = call(d, "GET", "/v1/admin/audit?limit=2&action=admin&cursor=%s"
                            % page["next_cursor"], "ops")
        assert status == 200, page
        seen += [r["id"] for r in page["entries"]]
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) >= 5, seen
    assert call(d, "GET", "/v1/admin/audit?limit=0", "ops")[0] == 400
    assert call(d, "GET", "/v1/admin/audit?page=2", "ops")[0] == 400
    # each row carries its link to the one before
    rows = audit_rows(d)
    for newer, older in zip(rows, rows[1:]):
        assert newer["prev_hash"] == older["hash"], (newer, older)


def test_a_flood_of_refusals_is_audited_in_summary(d):
    """Past a burst of rows, refusals are counted into the next row written
    (unaudited_before), so the store's queue, which turns share, cannot be
    filled by anyone with a bad token, and no refusal goes uncounted."""
    import time
    sent = 0
    for _ in range(300):
        assert call(d, "GET", "/v1/admin/conversations", token="flood")[0] == 401
        sent += 1
    wait_rows(d, "admin.denied", 1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = audit_rows(d, "admin.denied")
        if any("unaudited_before" in r["detail"] for r in rows):
            break
        time.sleep(0.1)  # the budget refills with time: one more refusal later
        assert call(d, "GET", "/v1/admin/conversations", token="flood")[0] == 401
        sent += 1
    rows = wait_rows(d, "admin.denied", len(rows))
    assert len(rows) < sent, (len(rows), sent)
    summarized = sum(r["detail"].get("unaudited_before", 0) for r in rows)
    assert summarized > 0, rows[:3]
    # every refusal is a row or counted in one, except any past the last row
    assert len(rows) + summarized <= sent, (len(rows), summarized, sent)
    assert d.wait_log(event="admin_auth_denied")
    ctl("audit", "verify", "--db", db_path(d), check=0)


def test_a_refusal_of_a_path_that_is_not_utf8_is_listed(d):
    """A refused request's path is audited as it came, raw bytes and all:
    the listings show it (bytes that are not UTF-8 as U+FFFD) instead of
    leaving the row out, and the chain over the stored bytes holds."""
    import socket
    s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    s.sendall(b"GET /v1/admin/conversations/ab\xffcd HTTP/1.1\r\nHost: x\r\n"
              b"Connection: close\r\n\r\n")
    head = s.recv(4096)
    s.close()
    assert head.startswith(b"HTTP/1.1 401"), head
    want = "/v1/admin/conversations/ab\ufffdcd"
    rows = wait_rows(d, "admin.denied", 1)
    assert [r["target"] for r in rows if r["target"] == want] == [want], rows
    status, page = call(d, "GET", "/v1/admin/audit?action=admin.denied&limit=1000", "ops")
    assert status == 200 and want in [r["target"] for r in page["entries"]], page
    p = ctl("audit", "verify", "--db", db_path(d), check=0)
    assert "intact" in p.stdout, p.stdout


def test_tampering_is_reported_with_the_row(d):
    for i in range(4):
        call(d, "GET", "/v1/admin/tokens", "ops")
    rows = wait_rows(d, "admin.denied", 4)
    p = ctl("audit", "verify", "--db", db_path(d), check=0)
    assert "intact" in p.stdout, p.stdout
    victim = sorted(r["id"] for r in rows)[1]
    con = sqlite3.connect(db_path(d))
    con.execute("DROP TRIGGER audit_append_only_u")  # this connection's schema edit
    con.execute("UPDATE audit SET detail = json_set(detail, '$.status', 200) WHERE id = ?",
                (victim,))
    con.commit()
    con.close()
    p = ctl("audit", "verify", "--db", db_path(d), check=1)
    assert ("BROKEN at row %d:" % victim) in p.stdout, p.stdout
    assert "was changed" in p.stdout, p.stdout


if __name__ == "__main__":
    run_tests(globals(), daemon_factory=daemon)
