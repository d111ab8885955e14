"""Secrets (include/chorus/secret.h, docs/operations.md "Secrets"): a secret
comes from a file in secrets_dir or from the environment; options holding
one say `secret:NAME`. A secret file that group or other users may read
stops chorusd from starting (and --check, and a reload) with an error naming
the file; secret values appear in no log line, no diagnostic and no
response."""
import hashlib
import os
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, chorusd_path, run_tests  # noqa: E402
from test_sms_twilio import Twilio  # noqa: E402

SRC = os.environ.get("CHORUS_SOURCE_DIR", ".")
FLOWS = os.path.join(SRC, "flows")
ADMIN_TOKEN = "adm-9f3c2e71d4b8a6c5"
CHAT_KEY = "gw-41aa7d0c9e6b2f88"
TWILIO_TOKEN = "tw-5c0ffee1d2e3f4a5"


def sha(s):
    return hashlib.sha256(s.encode()).hexdigest()


# Everything that must never be shown: the clear values and their hashes.
SECRETS = [ADMIN_TOKEN, CHAT_KEY, TWILIO_TOKEN, sha(ADMIN_TOKEN), sha(CHAT_KEY)]


def secrets_dir(files, mode=0o600):
    d = tempfile.mkdtemp(prefix="chorus-secrets-")
    for name, value in files.items():
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write(value + "\n")
        os.chmod(path, mode)
    return d


def config(sdir):
    return {"secrets_dir": sdir, "log_level": "debug",
            "admin": {"tokens": "secret:CHORUS_ADMIN_TOKENS"},
            "chat": {"api_keys": "secret:CHORUS_CHAT_API_KEYS"}}


def assert_no_secret(text, where):
    for s in SECRETS:
        assert s not in text, "a secret appears in %s" % where


def run_chorusd(args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([chorusd_path()] + args, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=e, timeout=60)


def write_config(cfg):
    import json
    path = os.path.join(tempfile.mkdtemp(prefix="chorus-secrets-conf-"), "chorusd.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def test_readable_secret_file_refused():
    for mode in (0o644, 0o640, 0o604):
        sdir = secrets_dir({"TWILIO_AUTH_TOKEN": TWILIO_TOKEN}, mode)
        path = os.path.join(sdir, "TWILIO_AUTH_TOKEN")
        conf = write_config({"secrets_dir": sdir})
        for extra in (["--check"], ["--listen", "127.0.0.1:0"]):
            p = run_chorusd(["--config", conf, "--flows", FLOWS,
                             "--data-dir", tempfile.mkdtemp()] + extra)
            assert p.returncode != 0, "started with a secret file of mode %o" % mode
            assert path in p.stdout, p.stdout
            assert "mode %04o" % mode in p.stdout and "chmod 600" in p.stdout, p.stdout
            assert "event=ready" not in p.stdout, p.stdout
            assert_no_secret(p.stdout, "the refusal")


def test_env_and_files_used_and_never_shown():
    sdir = secrets_dir({"CHORUS_CHAT_API_KEYS": "gw:" + sha(CHAT_KEY),
                        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN})
    env = {"CHORUS_ADMIN_TOKENS": "ops:" + sha(ADMIN_TOKEN)}
    bodies = []
    with Daemon(config=config(sdir), args=["--flows", FLOWS], env=env) as d:
        d.wait_log(event="flows_loaded", timeout=60)
        # admin.tokens from the environment variable
        status, _, body = d.request("GET", "/v1/admin/conversations")
        assert status == 401, status
        status, _, body = d.request("GET", "/v1/admin/conversations",
                                    headers={"Authorization": "Bearer " + ADMIN_TOKEN})
        assert status == 200, (status, body)
        bodies.append(body)
        # chat.api_keys from its file
        status, _, body = d.request("POST", "/v1/chat/conversations", b"",
                                    {"Authorization": "Bearer " + CHAT_KEY})
        assert status == 201, (status, body)
        bodies.append(body)
        status, _, body = d.request("POST", "/v1/chat/conversations", b"",
                                    {"Authorization": "Bearer wrong-key"})
        assert status == 401, status
        bodies.append(body)
        # the Twilio auth token from its file: a correctly signed webhook is
        # answered, one signed with another token is refused
        tw = Twilio(d, "/v1/sms/twilio", token=TWILIO_TOKEN)
        params = [("From", "+15550001"), ("To", "+15550002"), ("Body", "hello"),
                  ("MessageSid", "SM1")]
        status, _, body = tw.post(params)
        assert status == 200, (status, body)
        bodies.append(body)
        status, _, body = Twilio(d, "/v1/sms/twilio", token="other").post(
            params[:3] + [("MessageSid", "SM2")])
        assert status == 403, status
        bodies.append(body)
        # a reload re-reads the files and resolves again
        d.signal(signal.SIGHUP)
        d.wait_log(event="reload", status="applied")
        status, _, body = d.request("GET", "/v1/admin/conversations",
                                    headers={"Authorization": "Bearer " + ADMIN_TOKEN})
        assert status == 200, status
    logs = d.stderr_text()
    assert "event=secrets_loaded" in logs and "files=2" in logs, logs
    assert_no_secret(logs, "the log")
    for b in bodies:
        assert_no_secret(b.decode("utf-8", "replace"), "a response")


def test_reload_with_exposed_file_keeps_running_secrets():
    sdir = secrets_dir({"CHORUS_ADMIN_TOKENS": "ops:" + sha(ADMIN_TOKEN)})
    with Daemon(config=config(sdir), args=["--flows", FLOWS]) as d:
        d.wait_log(event="flows_loaded", timeout=60)
        path = os.path.join(sdir, "CHORUS_ADMIN_TOKENS")
        os.chmod(path, 0o644)
        d.signal(signal.SIGHUP)
        d.wait_log(event="reload", status="kept_previous_config")
        assert path in d.stderr_text()
        status, _, _ = d.request("GET", "/v1/admin/conversations",
                                 headers={"Authorization": "Bearer " + ADMIN_TOKEN})
        assert status == 200, "the running admin token was lost: %d" % status
    assert_no_secret(d.stderr_text(), "the log")


def test_check_and_help_config_never_echo():
    # A malformed secret: the diagnostic names the option and the secret, not the value.
    sdir = secrets_dir({"CHORUS_ADMIN_TOKENS": ADMIN_TOKEN})
    conf = write_config(config(sdir))
    p = run_chorusd(["--check", "--config", conf, "--flows", FLOWS],
                    {"CHORUS_CHAT_API_KEYS": CHAT_KEY})
    assert p.returncode == 1, p.stdout
    assert "admin.tokens" in p.stdout and "CHORUS_ADMIN_TOKENS" in p.stdout, p.stdout
    assert "chat.api_keys" in p.stdout and "value not shown" in p.stdout, p.stdout
    assert_no_secret(p.stdout, "--check")
    # A literal hash in the file is not echoed either.
    conf = write_config({"admin": {"tokens": "ops:" + sha(ADMIN_TOKEN)[:60]}})
    p = run_chorusd(["--check", "--config", conf, "--flows", FLOWS])
    assert p.returncode == 1 and "admin.tokens" in p.stdout, p.stdout
    assert sha(ADMIN_TOKEN)[:60] not in p.stdout, p.stdout
    p = run_chorusd(["--help-config"], {"CHORUS_ADMIN_TOKENS": "ops:" + sha(ADMIN_TOKEN)})
    assert p.returncode == 0 and "secrets_dir" in p.stdout
    assert_no_secret(p.stdout, "--help-config")


if __name__ == "__main__":
    run_tests(globals())
