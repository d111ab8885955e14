"""chorusctl backup (src/store/store_backup.c, docs/operations.md "Backup and
restore"): a backup taken while chorusd writes is a whole, verified,
self-contained database holding every turn acknowledged before it started;
restoring it (copy to data_dir/chorus.db of a stopped daemon) brings the
conversations back; a failed backup leaves the previous one untouched."""
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, run_tests  # noqa: E402

SRC = os.environ.get("CHORUS_SOURCE_DIR", ".")
CTL = os.environ["CHORUSCTL"]
KEY = "gw-backup-key-8e2a"
AUTH = {"Authorization": "Bearer " + KEY}


def daemon(data_dir):
    cfg = {"chat": {"api_keys": "main:" + hashlib.sha256(KEY.encode()).hexdigest()}}
    d = Daemon(config=cfg, args=["--flows", os.path.join(SRC, "flows")])
    d.data_dir = data_dir
    return d


def backup(*args):
    return subprocess.run([CTL, "backup"] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=120)


def turns_of(path, conv):
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return db.execute("SELECT count(*) FROM turns WHERE conversation_id = ?",
                          ("chat:" + conv,)).fetchone()[0]
    finally:
        db.close()


class Writer(threading.Thread):
    """Talks to the daemon until stopped; records the replies acknowledged."""

    def __init__(self, d):
        super().__init__(daemon=True)
        self.d, self.stop, self.acked, self.error = d, threading.Event(), {}, None

    def run(self):
        try:
            convs = []
            for _ in range(4):
                status, reply = self.d.json("POST", "/v1/chat/conversations", b"", AUTH)
                assert status == 201, (status, reply)
                convs.append(reply["conversation"])
                self.acked[reply["conversation"]] = 0
            i = 0
            while not self.stop.is_set():
                conv = convs[i % len(convs)]
                status, reply = self.d.json("POST", "/v1/chat/conversations/%s/messages" % conv,
                                            {"text": "what is my baggage allowance %d" % i},
                                            AUTH)
                assert status == 200, (status, reply)
                self.acked[conv] += 1
                i += 1
        except Exception as e:  # reported by the test
            self.error = e


def test_backup_while_writing_then_restore():
    tmp = tempfile.mkdtemp(prefix="chorus-backup-")
    data = os.path.join(tmp, "data")
    os.makedirs(data)
    # A database of several MB, so the copy takes many steps.
    subprocess.run([CTL, "store-load", "--db", os.path.join(data, "chorus.db"), "--turns",
                    "20000", "--conversations", "200", "--prefix", "bulk"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    src = sqlite3.connect(os.path.join(data, "chorus.db"))
    n_bulk = src.execute("SELECT count(*) FROM turns").fetchone()[0]
    src.close()
    assert n_bulk > 0
    target = os.path.join(tmp, "chorus-backup.db")
    with daemon(data) as d:
        d.wait_log(event="flows_loaded", timeout=60)
        w = Writer(d)
        w.start()
        try:
            for n in range(3):
                while sum(w.acked.values()) < 10 * (n + 1) and w.error is None:
                    w.join(0.05)
                before = dict(w.acked)  # acknowledged before this backup began
                p = backup("--data-dir", data, "--to", target)
                assert p.returncode == 0, p.stderr
                assert "integrity ok" in p.stdout, p.stdout
                print(p.stdout.strip())
                db = sqlite3.connect("file:%s?mode=ro" % target, uri=True)
                assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
                bulk = db.execute("SELECT count(*) FROM turns WHERE conversation_id LIKE "
                                  "'bulk%'").fetchone()[0]
                assert bulk == n_bulk, (bulk, n_bulk)
                db.close()
                for conv, k in before.items():
                    # each acknowledged message is a user turn and a bot turn
                    assert turns_of(target, conv) >= 2 * k, (conv, k, turns_of(target, conv))
                assert not [f for f in os.listdir(tmp) if ".tmp-" in f], os.listdir(tmp)
        finally:
            w.stop.set()
            w.join(30)
        assert w.error is None, w.error
        assert sum(w.acked.values()) > sum(before.values()), "the daemon stopped writing"
        final = dict(w.acked)
        conv = max(final, key=final.get)
        in_backup = turns_of(target, conv)
    # Restore: the backup becomes the database of a new data_dir.
    restored = os.path.join(tmp, "restored")
    os.makedirs(restored)
    shutil.copyfile(target, os.path.join(restored, "chorus.db"))
    with daemon(restored) as d:
        d.wait_log(event="flows_loaded", timeout=60)
        status, body = d.json("GET", "/v1/chat/conversations/%s" % conv, None, AUTH)
        assert status == 200, (status, body)
        assert len(body["messages"]) > 0, body
    assert turns_of(os.path.join(restored, "chorus.db"), conv) >= in_backup
    shutil.rmtree(tmp, ignore_errors=True)


def test_failed_backup_keeps_the_previous_one():
    tmp = tempfile.mkdtemp(prefix="chorus-backup-")
    target = os.path.join(tmp, "keep.db")
    with open(target, "wb") as f:
        f.write(b"previous backup")
    p = backup("--db", os.path.join(tmp, "missing.db"), "--to", target)
    assert p.returncode == 1 and "missing.db" in p.stderr, (p.returncode, p.stderr)
    with open(target, "rb") as f:
        assert f.read() == b"previous backup"
    # Not a database: refused, nothing written.
    junk = os.path.join(tmp, "junk.db")
    with open(junk, "wb") as f:
        f.write(b"x" * 8192)
    p = backup("--db", junk, "--to", target)
    assert p.returncode == 1, p.stdout
    with open(target, "rb") as f:
        assert f.read() == b"previous backup"
    assert sorted(os.listdir(tmp)) == ["junk.db", "keep.db"], os.listdir(tmp)
    p = backup("--to", target)
    assert p.returncode == 2, "a backup without a source is a usage error"
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run_tests(globals())
