"""kill -9 in the middle of a load: every batch the store acknowledged (an
`ack CONV SEQ` line, written only from the durable-completion callback) is in
the database afterwards, the file passes PRAGMA integrity_check, and the store
opens it again and goes on writing, both at synchronous=normal and full."""
import os
import signal
import sqlite3
import subprocess
import tempfile

CTL = os.environ["CHORUSCTL"]



def schema_version():
    """STORE_SCHEMA_VERSION as include/chorus/store.h defines it."""
    import re
    src = os.environ.get("CHORUS_SOURCE_DIR", ".")
    with open(os.path.join(src, "include", "chorus", "store.h")) as f:
        return int(re.search(r"#define STORE_SCHEMA_VERSION (\d+)", f.read()).group(1))

def load_and_kill(path, sync, prefix, want_acks):
    p = subprocess.Popen([CTL, "store-load", "--db", path, "--turns", "0", "--conversations",
                          "300", "--inflight", "32", "--synchronous", sync, "--prefix", prefix,
                          "--ack-log"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    acks = []
    for line in p.stdout:
        parts = line.decode().split()
        if parts and parts[0] == "ack":
            acks.append((parts[1], int(parts[2])))
        if len(acks) >= want_acks:
            break
    os.kill(p.pid, signal.SIGKILL)
    # acks already written to the pipe before the kill count too
    for line in p.stdout:
        parts = line.decode().split()
        if parts and parts[0] == "ack":
            acks.append((parts[1], int(parts[2])))
    p.wait()
    assert p.returncode == -signal.SIGKILL, p.returncode
    return acks


def check(path, acks):
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    have = set(db.execute("SELECT conversation_id, seq FROM turns").fetchall())
    missing = [a for a in acks if a not in have]
    assert not missing, "acknowledged but lost: %r" % missing[:10]
    # each conversation's saved state is at least as new as its last ack
    last = {}
    for conv, seq in acks:
        last[conv] = max(seq, last.get(conv, 0))
    for conv, seq in last.items():
        state = db.execute("SELECT state FROM conversation_state WHERE conversation_id = ?",
                           (conv,)).fetchone()
        assert state is not None and '"seq":' in state[0], conv
        assert int(state[0].split('"seq":')[1].rstrip("}")) >= seq, (conv, state, seq)
    n = db.execute("SELECT count(*) FROM turns").fetchone()[0]
    db.close()
    return n


def main():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "chorus.db")
        total_acks = 0
        for round_, sync in enumerate(["normal", "full", "normal"]):
            acks = load_and_kill(path, sync, "r%d-" % round_, 3000)
            total_acks += len(acks)
            n = check(path, acks)
            assert n >= 2 * total_acks, (n, total_acks)
            print("round %d (%s): %d acknowledged batches, all present; %d turn rows"
                  % (round_, sync, len(acks), n))
        # and the store reopens the file and finishes a bounded load cleanly
        p = subprocess.run([CTL, "store-load", "--db", path, "--turns", "500", "--prefix",
                            "after-"], capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        assert "turns=500 failed=0" in p.stdout, p.stdout
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # every migration applied exactly once: versions 1..N, no gaps, no repeats
        versions = [v for (v,) in db.execute("SELECT version FROM schema_migrations ORDER BY 1")]
        assert versions == list(range(1, schema_version() + 1)), versions
        db.close()
    print("ok")


if __name__ == "__main__":
    main()
