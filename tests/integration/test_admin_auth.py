"""The admin API's guard and its input checks against the real chorusd:
401 (with WWW-Authenticate and one log line each) for a missing, wrong or
non-Bearer token; tokens reloaded by SIGHUP; /metrics open or behind a
token by admin.metrics_auth; 400 naming the bad parameter; /readyz reports
the store; and clients that hang up before their answer leave the daemon
serving and exiting cleanly."""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from admin_common import (ADMIN, ADMIN_TOKEN, CI_TOKEN, SRC, admin_get, bearer,  # noqa: E402
                          config, daemon, drive, parse_metrics, sha)
from harness import run_tests  # noqa: E402

PATHS = ["/v1/admin/reports/kpis", "/v1/admin/conversations",
         "/v1/admin/conversations/chat:x"]


def denials(d):
    return d.log_lines(event="admin_auth_denied")


def test_unauthorized_is_401_and_logged(d):
    cases = [None, {"Authorization": "Bearer not-the-token"},
             {"Authorization": "Basic " + ADMIN_TOKEN}, {"Authorization": "Bearer "},
             {"Authorization": "Bearer " + ADMIN_TOKEN + "x"}]
    n = 0
    for path in PATHS:
        for headers in cases:
            status, hdrs, body = d.request("GET", path, headers=headers)
            n += 1
            assert status == 401, (path, headers, status, body)
            assert json.loads(body)["error"]["code"] == "unauthorized", body
            assert hdrs["www-authenticate"].startswith("Bearer"), hdrs
            d.wait_log(event="admin_auth_denied", request_id=hdrs["x-request-id"])
    lines = denials(d)
    assert len(lines) == n, (len(lines), n)
    assert {l["path"] for l in lines} == set(PATHS), lines
    assert all(l["reason"] and l["remote"].startswith("127.0.0.1:") for l in lines), lines
    assert not any(ADMIN_TOKEN in l.get("reason", "") for l in lines), lines
    # the denial counter is exported
    status, _, body = d.request("GET", "/metrics")
    _, samples = parse_metrics(body.decode())
    got = [v for name, _, v in samples if name == "chorus_admin_auth_denied_total"]
    assert got == [n], (got, n)


def test_no_tokens_configured_refuses_everything():
    cfg = config()
    cfg["admin"]["tokens"] = ""
    from harness import Daemon
    with Daemon(config=cfg) as d:
        status, _, body = d.request("GET", PATHS[0], headers=ADMIN)
        assert status == 401 and b"admin.tokens" in body, (status, body)
        d.wait_log(event="admin_auth_denied")  # the stderr reader may lag the answer
        assert len(denials(d)) == 1


def test_tokens_reload_on_sighup():
    with daemon() as d:
        assert admin_get(d, PATHS[1])[0] == 200
        assert admin_get(d, PATHS[1], CI_TOKEN)[0] == 200
        cfg = config()
        cfg["admin"]["tokens"] = "ci:" + sha(CI_TOKEN)  # ops revoked
        d.write_config(cfg)
        d.signal(signal.SIGHUP)
        d.wait_log(event="reload", status="applied")
        assert admin_get(d, PATHS[1])[0] == 401
        assert admin_get(d, PATHS[1], CI_TOKEN)[0] == 200


def test_metrics_auth_modes():
    with daemon({"metrics_auth": "token"}) as d:
        status, hdrs, _ = d.request("GET", "/metrics")
        assert status == 401 and "www-authenticate" in hdrs, status
        d.wait_log(event="admin_auth_denied")  # the stderr reader may lag the answer
        assert len(denials(d)) == 1
        status, hdrs, body = d.request("GET", "/metrics", headers=ADMIN)
        assert status == 200 and b"chorus_admin_auth_denied_total 1" in body, body[-300:]
    # auto: listening beyond loopback needs a token; loopback is open (test_admin.py)
    from harness import Daemon
    with Daemon(config=config(), listen="0.0.0.0:0") as d:
        status, _, _ = d.request("GET", "/metrics")
        assert status == 401, status
        assert d.request("GET", "/metrics", headers=ADMIN)[0] == 200
    with Daemon(config=config({"metrics_auth": "open"}), listen="0.0.0.0:0") as d:
        assert d.request("GET", "/metrics")[0] == 200


def test_bad_parameters_are_400_naming_them(d):
    bad = [
        ("/v1/admin/reports/kpis?from=yesterday", "from"),
        ("/v1/admin/reports/kpis?to=2026-13-45", "to"),
        ("/v1/admin/reports/kpis?from=2026-11-02&to=2026-11-01", "to"),
        ("/v1/admin/reports/kpis?by=channel,colour", "by"),
        ("/v1/admin/reports/kpis?bucket=year", "bucket"),
        ("/v1/admin/reports/kpis?group=channel", "group"),
        ("/v1/admin/conversations?limit=0", "limit"),
        ("/v1/admin/conversations?limit=1001", "limit"),
        ("/v1/admin/conversations?limit=ten", "limit"),
        ("/v1/admin/conversations?outcome=won", "outcome"),
        ("/v1/admin/conversations?cursor=abc", "cursor"),
        ("/v1/admin/conversations?from=soon", "from"),
        ("/v1/admin/conversations?page=2", "page"),
        ("/v1/admin/conversations/chat:x?full=1", "full"),
    ]
    for path, name in bad:
        status, _, body = admin_get(d, path)
        assert status == 400, (path, status, body)
        assert body["error"]["code"] == "invalid_parameter", body
        assert name in body["error"]["message"], (path, body)
    # the same parameters well formed are accepted (chorusctl sends empty ones)
    for path in ["/v1/admin/reports/kpis?from=&to=&by=&bucket=none",
                 "/v1/admin/reports/kpis?from=2026-01-01T00:00:00Z&by=channel,flow,version,variant"
                 "&bucket=month",
                 "/v1/admin/conversations?limit=1000&outcome=active&channel=chat&flow=x"]:
        status, _, body = admin_get(d, path)
        assert status == 200, (path, status, body)


def test_readyz_reports_the_store(d):
    d.wait_log(event="flows_loaded", timeout=60)  # ready once a flowset is in force
    status, body = d.json("GET", "/readyz")
    assert status == 200 and body["checks"]["store"] == "ok", body


def test_clients_that_hang_up_early():
    """Queries whose connection is gone before the answer: the daemon drops
    the result (the abort callback), keeps serving and exits 0 (under the
    sanitizers a use of the dead request would fail the run)."""
    cfg = config()
    cfg["log_level"] = "debug"
    from harness import Daemon
    with Daemon(config=cfg, args=["--flows", os.path.join(SRC, "flows")]) as d:
        drive(d)
        auth = "Authorization: Bearer %s\r\n" % ADMIN_TOKEN
        for i in range(60):
            s = d.connect()
            path = [PATHS[0] + "?by=channel,flow&bucket=hour", PATHS[1],
                    "/v1/admin/flows/booking_status/versions?content=1"][i % 3]
            s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (path, auth)).encode())
            s.close()
        # queries of the gone clients may still hold the admin slots
        # (ADMIN_MAX_INFLIGHT): 503 + Retry-After until they finish
        for _ in range(400):
            status, hdrs, body = admin_get(d, PATHS[1])
            if status != 503:
                break
            assert hdrs["retry-after"] == "1" and body["error"]["code"] == "unavailable", body
            time.sleep(0.025)
        assert status == 200 and len(body["conversations"]) == 6, body
        # the flows' reads count among them too, and give their slots back
        for _ in range(400):
            status, hdrs, body = admin_get(d, "/v1/admin/flows/booking_status/versions")
            if status != 503:
                break
            time.sleep(0.025)
        assert status == 200 and body["versions"], body
        status, _, body = d.request("GET", "/v1/admin/reports/kpis", headers=bearer(CI_TOKEN))
        assert status == 200 and json.loads(body)["total"]["conversations"] == 6
    print("%d of 60 queries outlived their connection" % len(d.log_lines(
        event="admin_request_aborted")))


if __name__ == "__main__":
    run_tests(globals(), daemon_factory=daemon)
