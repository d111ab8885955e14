"""Security suite, part one: every route the daemon registers (read from its
own log, so a new endpoint cannot slip past) is probed without credentials,
with forged ones and with revoked ones, and must give the safe answer; a
route missing from COVERAGE fails the suite until someone says how it is
protected. Afterwards nothing the refused requests carried may be in the
store. Hostile inputs, traversal, injection and smuggling are in
test_security_input.py; limits in test_security_limits.py."""

import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import run_tests  # noqa: E402
from security_common import (ADMIN_TOKEN, CHAT_KEY, NEW_TWILIO_TOKEN, ORIGIN,  # noqa: E402
                             TWILIO_TOKEN, SecDaemon, bearer, call_params, config, error_code,
                             fill, sha, sms_params, twilio_post, twilio_signature, ws_open)

SRC = os.environ.get("CHORUS_SOURCE_DIR", ".")

# How each route is protected. A new route fails test_every_route_is_covered
# until it is listed here (and so probed below).
COVERAGE = {
    ("GET", "/healthz"): "open",
    ("GET", "/readyz"): "open",
    ("POST", "/v1/echo"): "open",
    ("GET", "/v1/echo/ws"): "open_ws",
    ("GET", "/"): "open",
    ("GET", "/widget.js"): "open",
    ("GET", "/widget.css"): "open",
    ("GET", "/favicon.svg"): "open",
    ("GET", "/agent"): "open",
    ("GET", "/agent.js"): "open",
    ("GET", "/agent.css"): "open",
    ("POST", "/v1/chat/conversations"): "chat_key",
    ("POST", "/v1/chat/conversations/{id}/messages"): "chat_key",
    ("GET", "/v1/chat/conversations/{id}"): "chat_key",
    ("OPTIONS", "/v1/chat/conversations"): "preflight",
    ("OPTIONS", "/v1/chat/conversations/{id}/messages"): "preflight",
    ("OPTIONS", "/v1/chat/conversations/{id}"): "preflight",
    ("GET", "/v1/chat/ws"): "chat_ws",
    ("GET", "/metrics"): "admin",
    ("GET", "/v1/admin/reports/kpis"): "admin",
    ("GET", "/v1/admin/conversations"): "admin",
    ("GET", "/v1/admin/conversations/{id}"): "admin",
    ("POST", "/v1/admin/tokens"): "admin",
    ("GET", "/v1/admin/tokens"): "admin",
    ("DELETE", "/v1/admin/tokens/{name}"): "admin",
    ("GET", "/v1/admin/audit"): "admin",
    ("GET", "/v1/admin/flows/status"): "admin",
    ("POST", "/v1/admin/flows/reload"): "admin",
    ("GET", "/v1/admin/flows"): "admin",
    ("GET", "/v1/admin/flows/{name}/versions"): "admin",
    ("POST", "/v1/admin/flows/promote"): "admin",
    ("POST", "/v1/admin/flows/rollback"): "admin",
    ("POST", "/v1/admin/rollouts"): "admin",
    ("GET", "/v1/admin/rollouts"): "admin",
    ("GET", "/v1/admin/rollouts/{id}"): "admin",
    ("POST", "/v1/admin/rollouts/{id}/promote"): "admin",
    ("POST", "/v1/admin/rollouts/{id}/abort"): "admin",
    ("GET", "/v1/admin/drift"): "admin",
    ("GET", "/v1/agent/queues"): "agent",
    ("GET", "/v1/agent/conversations/{id}"): "agent",
    ("POST", "/v1/agent/conversations/{id}/claim"): "agent",
    ("POST", "/v1/agent/conversations/{id}/messages"): "agent",
    ("POST", "/v1/agent/conversations/{id}/release"): "agent",
    ("POST", "/v1/agent/conversations/{id}/close"): "agent",
    ("GET", "/v1/agent/ws"): "agent_ws",
    ("POST", "/v1/sms/twilio"): "twilio",
    ("POST", "/v1/voice/twilio"): "twilio",
}

FORGED = [
    None,                                    # no Authorization at all
    "Bearer",                                # the scheme alone
    "Bearer forged-token-000",               # a guess
    "Basic " + "Z3c6c2VjcmV0",               # another scheme
    "Bearer " + CHAT_KEY + "x",              # a real key, one byte longer
    "Bearer " + CHAT_KEY[:-1],               # one byte shorter
    "Bearer " + sha(CHAT_KEY),               # the configured hash itself
    "Bearer " + sha(ADMIN_TOKEN),
    "bearer  " + "forged",
]


def auth_headers(value):
    return {"Authorization": value} if value is not None else {}


def body_for(method):
    return {} if method == "POST" else None


def test_every_route_is_covered():
    with SecDaemon() as d:
        routes = d.routes()
        assert len(routes) >= len(COVERAGE) - 2, routes  # the log lists them all
        missing = [(m, p) for m, p, _ in routes if (m, p) not in COVERAGE]
        assert not missing, "routes without a security class in COVERAGE: %r" % missing
        # documented paths are served (openapi.yaml lists the public API)
        with open(os.path.join(SRC, "docs", "openapi.yaml")) as f:
            documented = [line.strip()[:-1] for line in f
                          if line.startswith("  /") and line.rstrip().endswith(":")]
        served = {p for _, p, _ in routes}
        assert set(documented) <= served, set(documented) - served


def check_chat_key_refused(d, method, path, value):
    status, hdrs, body = d.request(method, path, body=body_for(method),
                                   headers=auth_headers(value))
    assert status == 401, (method, path, value, status, body)
    assert error_code(body) == "unauthorized"
    assert hdrs["www-authenticate"].startswith("Bearer"), hdrs


def check_admin_refused(d, method, path, value):
    body = b"{}" if method in ("POST", "PUT", "PATCH") else None
    headers = auth_headers(value)
    if body is not None:
        headers["Content-Type"] = "application/json"
    status, hdrs, body = d.request(method, path, body, headers)
    assert status == 401, (method, path, value, status, body)
    assert error_code(body) == "unauthorized", body
    assert b"conversation" not in body.replace(b"conversations", b""), body


def check_twilio_refused(d, path):
    params = sms_params("STOP", "SMforged1") if "sms" in path else call_params("CAforged1")
    for kw in ({"signature": ""}, {"signature": "AAAAAAAAAAAAAAAAAAAAAAAAAAA="},
               {"token": "not-the-token"}, {"url": "https://elsewhere.example" + path},
               {"token": ADMIN_TOKEN}):
        status, _, body = twilio_post(d, path, params, **kw)
        assert status == 403, (path, kw, status, body)
        assert b"<Say" not in body and b"<Message" not in body, body
    # a good signature over other parameters (replayed onto a changed body)
    sig = twilio_signature(TWILIO_TOKEN, "http://127.0.0.1:%d%s" % (d.port, path), params)
    changed = [(k, v + "0" if k in ("From", "CallSid") else v) for k, v in params]
    status, _, _ = twilio_post(d, path, changed, signature=sig)
    assert status == 403


def check_ws_refused(d, path):
    for headers, want in (({}, 401), (auth_headers("Bearer forged"), 401),
                          ({"Origin": "https://evil.example"}, 403),
                          ({"Origin": "null"}, 403),
                          ({"Origin": ORIGIN + ".evil.example"}, 403)):
        s, status, _ = ws_open(d, path, headers)
        s.close()
        assert status == want, (path, headers, status)


def check_preflight(d, path):
    status, hdrs, body = d.request("OPTIONS", path, headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert status == 403 and "access-control-allow-origin" not in hdrs, (status, hdrs)
    assert error_code(body) == "origin_not_allowed"


def test_credentials_on_every_route():
    with SecDaemon() as d:
        for method, pattern, _ in d.routes():
            cls = COVERAGE.get((method, pattern))
            path = fill(pattern)
            if cls == "chat_key":
                for value in FORGED + ["Bearer " + ADMIN_TOKEN]:
                    check_chat_key_refused(d, method, path, value)
            elif cls in ("admin", "agent"):
                # agent routes take agent tokens: none is configured, so none passes
                for value in FORGED + ["Bearer " + CHAT_KEY]:
                    check_admin_refused(d, method, path, value)
                if cls == "admin" and method == "GET":  # the real token is let in
                    status = d.request(method, path, headers=bearer(ADMIN_TOKEN))[0]
                    assert status not in (401, 403) and status < 500, (path, status)
            elif cls == "agent_ws":
                for headers in ({}, auth_headers("Bearer forged"), bearer(CHAT_KEY),
                                {"Origin": ORIGIN}):
                    s, status, _ = ws_open(d, path, headers)
                    s.close()
                    assert status in (401, 403), (path, headers, status)
            elif cls == "twilio":
                check_twilio_refused(d, path)
            elif cls == "chat_ws":
                check_ws_refused(d, path)
            elif cls == "preflight":
                check_preflight(d, path)
            elif cls in ("open", "open_ws"):
                pass  # served to anyone; hostile input is test_security_input's
            else:
                raise AssertionError("no probe for %s %s (%s)" % (method, pattern, cls))
        assert d.request("GET", "/healthz")[0] == 200
        check_store_untouched(d)


def conversations(d):
    status, _, body = d.request("GET", "/v1/admin/conversations?limit=100",
                                headers=bearer(ADMIN_TOKEN))
    assert status == 200, (status, body)
    return json.loads(body)["conversations"]


def check_store_untouched(d):
    """Starts one real conversation as a barrier: once it is stored, anything
    the refused requests had got through would be stored before it."""
    status, _, body = d.request("POST", "/v1/chat/conversations", body={},
                                headers=bearer(CHAT_KEY))
    assert status == 201, (status, body)
    conv = json.loads(body)["conversation"]
    import time
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rows = conversations(d)
        if rows:
            break
        time.sleep(0.05)
    text = json.dumps(rows)
    assert len(rows) == 1 and conv in text, rows
    for forged in ("SMforged1", "CAforged1", "+155512300010", "+155512300020"):
        assert forged not in text, rows


def test_revoked_credentials_are_refused_after_reload():
    cfg = config(sms={"auth_token_env": "TWILIO_AUTH_TOKEN"},
                 voice={"auth_token_env": "TWILIO_AUTH_TOKEN"})
    with SecDaemon(cfg) as d:
        status, _, body = d.request("POST", "/v1/chat/conversations", body={},
                                    headers=bearer(CHAT_KEY))
        assert status == 201, body
        conv = json.loads(body)["conversation"]
        assert d.request("GET", "/v1/admin/conversations", headers=bearer(ADMIN_TOKEN))[0] == 200
        status, _, _ = twilio_post(d, "/v1/sms/twilio", sms_params("hello", "SMok1"))
        assert status == 200
        # revoke the key (a new secret under the gateway's name, which keeps
        # its conversations) and the token, rotate the Twilio auth token
        other = "gw-sec-other-19d0"
        cfg["chat"]["api_keys"] = "gw:%s" % sha(other)
        cfg["admin"]["tokens"] = "other:%s" % sha(other + "-admin")
        cfg["sms"]["auth_token_env"] = cfg["voice"]["auth_token_env"] = "TWILIO_ROTATED"
        d.write_config(cfg)
        d.signal(signal.SIGHUP)
        d.wait_log(event="http_limits_applied")
        path = "/v1/chat/conversations/%s" % conv
        check_chat_key_refused(d, "GET", path, "Bearer " + CHAT_KEY)
        check_chat_key_refused(d, "POST", path + "/messages", "Bearer " + CHAT_KEY)
        s, status, _ = ws_open(d, "/v1/chat/ws", bearer(CHAT_KEY))
        s.close()
        assert status == 401
        check_admin_refused(d, "GET", "/v1/admin/conversations", "Bearer " + ADMIN_TOKEN)
        check_admin_refused(d, "GET", "/metrics", "Bearer " + ADMIN_TOKEN)
        status, _, _ = twilio_post(d, "/v1/sms/twilio", sms_params("hello", "SMold2"))
        assert status == 403
        status, _, _ = twilio_post(d, "/v1/voice/twilio", call_params("CAold2"))
        assert status == 403
        # the new ones work
        assert d.request("GET", path, headers=bearer(other))[0] == 200
        status, _, body = twilio_post(d, "/v1/sms/twilio", sms_params("hello", "SMnew3"),
                                      token=NEW_TWILIO_TOKEN)
        assert status == 200, body


def test_cors_allow_list():
    evil = "https://evil.example"
    with SecDaemon() as d:
        # preflight from an allowed origin: that origin, the methods, no credentials
        for path, method in (("/v1/chat/conversations", "POST"),
                             ("/v1/chat/conversations/x1", "GET"),
                             ("/v1/chat/conversations/x1/messages", "POST")):
            status, hdrs, body = d.request("OPTIONS", path, headers={
                "Origin": ORIGIN, "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "authorization, content-type"})
            assert status == 204 and body == b"", (path, status, body)
            assert hdrs["access-control-allow-origin"] == ORIGIN, hdrs
            assert method in hdrs["access-control-allow-methods"], hdrs
            assert "Authorization" in hdrs["access-control-allow-headers"], hdrs
            assert "Origin" in hdrs["vary"], hdrs
            assert "access-control-allow-credentials" not in hdrs, hdrs
            # a method the route does not take
            status, hdrs, _ = d.request("OPTIONS", path, headers={
                "Origin": ORIGIN, "Access-Control-Request-Method": "DELETE"})
            assert status == 405 and "access-control-allow-origin" not in hdrs, (status, hdrs)
        # answers name the allowed origin only, and always vary by it
        for origin, allowed in ((ORIGIN, True), (evil, False), (None, False),
                                (ORIGIN + "\r\nX-Injected: 1", False)):
            headers = bearer(CHAT_KEY)
            if origin:
                headers["Origin"] = origin.replace("\r\n", "")
            status, hdrs, _ = d.request("POST", "/v1/chat/conversations", body={},
                                        headers=headers)
            assert status == 201, status
            assert hdrs["vary"] == "Origin", hdrs
            assert hdrs.get("access-control-allow-origin") == (origin if allowed else None), hdrs
            assert "set-cookie" not in hdrs and "access-control-allow-credentials" not in hdrs
        # errors carry them too, so a browser can read why
        status, hdrs, _ = d.request("POST", "/v1/chat/conversations", body={},
                                    headers={"Origin": ORIGIN})
        assert status == 401 and hdrs["access-control-allow-origin"] == ORIGIN, hdrs
    # "*" allows any origin, still echoed one by one and without credentials
    with SecDaemon(config(chat={"allowed_origins": "*"})) as d:
        status, hdrs, _ = d.request("OPTIONS", "/v1/chat/conversations", headers={
            "Origin": evil, "Access-Control-Request-Method": "POST"})
        assert status == 204 and hdrs["access-control-allow-origin"] == evil, hdrs


def test_json_answers_are_not_sniffed():
    with SecDaemon() as d:
        for method, path in (("GET", "/healthz"), ("GET", "/nope"), ("POST", "/v1/echo"),
                             ("GET", "/v1/chat/conversations/x1")):
            status, hdrs, _ = d.request(method, path, body={} if method == "POST" else None)
            assert hdrs["x-content-type-options"] == "nosniff", (path, hdrs)
            assert hdrs["content-type"] == "application/json", (path, hdrs)


def test_metrics_open_only_when_configured():
    with SecDaemon(config(admin={"metrics_auth": "open"})) as d:
        assert d.request("GET", "/metrics")[0] == 200
    with SecDaemon() as d:
        assert d.request("GET", "/metrics")[0] == 401
        assert d.request("GET", "/metrics", headers=bearer(ADMIN_TOKEN))[0] == 200


if __name__ == "__main__":
    run_tests(globals())
