"""A full disk: the store on a small tmpfs fills it, the writer's commit fails,
enqueues are refused with BUSY (what chorusd turns into 503 + Retry-After)
and the failure is logged; once space is freed the store recovers by itself
and acknowledges batches again. Afterwards every acknowledged batch is in
the file and PRAGMA integrity_check passes. Needs permission to mount a
tmpfs; skipped with a message where that is not allowed."""
import os
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tmpfs_fixture import small_tmpfs  # noqa: E402

CTL = os.environ["CHORUSCTL"]


def read_until(p, acks, pred, what, timeout=90):
    """Reads stdout lines, collecting acks, until pred(stat) holds."""
    deadline = time.monotonic() + timeout
    for raw in p.stdout:
        parts = raw.decode().split()
        if not parts:
            continue
        if parts[0] == "ack":
            acks.append((parts[1], int(parts[2])))
        elif parts[0] == "stat":
            stat = dict(kv.split("=") for kv in parts[1:])
            stat = {k: int(v) for k, v in stat.items()}
            if pred(stat):
                return stat
        if time.monotonic() > deadline:
            break
    raise AssertionError("timed out waiting for " + what)


def main():
    with small_tmpfs("8m") as (tmp, mnt):
        run(tmp, mnt)
    print("ok")


def run(tmp, mnt):
    ballast = os.path.join(mnt, "ballast")
    # 2.5 MiB left for the store to fill. Freeing the ballast must leave room
    # for well over the 50 batches the recovery check waits for: the WAL
    # starts over only once a checkpoint has copied all of it, so until then
    # a batch takes room in both the WAL and the database file. Freeing
    # 1.5 MiB left room for about 160 batches, and fewer when the
    # checkpointer lagged on a loaded machine; 5.5 MiB leaves about 560.
    with open(ballast, "wb") as f:
        f.write(b"\0" * (5632 * 1024))
    path = os.path.join(mnt, "chorus.db")
    errlog = open(os.path.join(tmp, "stderr.log"), "w+")
    p = subprocess.Popen([CTL, "store-load", "--db", path, "--turns", "0", "--conversations",
                          "200", "--inflight", "16", "--text-bytes", "3000", "--stats-ms",
                          "20", "--ack-log"], stdout=subprocess.PIPE, stderr=errlog)
    acks = []
    try:
        failed = read_until(p, acks, lambda s: s["healthy"] == 0 and s["busy"] > 0,
                            "the store to report the full disk")
        print("disk full after %d acknowledged batches: %s" % (len(acks), failed))
        os.unlink(ballast)
        before = len(acks)
        # acknowledgements resume (the store may fill the disk again right
        # after, so healthy may already be 0 again when this is seen)
        read_until(p, acks, lambda s: len(acks) > before + 50,
                   "the store to recover after space was freed")
        print("recovered: %d more batches acknowledged" % (len(acks) - before))
    finally:
        os.kill(p.pid, signal.SIGKILL)
        for raw in p.stdout:
            parts = raw.decode().split()
            if parts and parts[0] == "ack":
                acks.append((parts[1], int(parts[2])))
        p.wait()
    errlog.seek(0)
    log = errlog.read()
    assert "event=store_write_failed" in log, log[-2000:]
    assert "event=store_recovered" in log, log[-2000:]
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    have = set(db.execute("SELECT conversation_id, seq FROM turns").fetchall())
    missing = [a for a in acks if a not in have]
    assert not missing, "acknowledged but lost: %r" % missing[:10]
    db.close()


if __name__ == "__main__":
    main()
