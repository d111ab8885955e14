"""/readyz follows the store: chorusd with its database on a small tmpfs
answers 200 while writes work; once the disk is full and a turn's commit
fails it answers 503 with "store": "failing" (and the turn gets 503); after
space is freed the store recovers by itself and /readyz is 200 again.
/metrics says the same through chorus_store_healthy. Needs permission to
mount a tmpfs; skipped with a message where that is not allowed."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from admin_common import GW_KEY, SRC, bearer, config, parse_metrics  # noqa: E402
from harness import Daemon  # noqa: E402
from tmpfs_fixture import fill, small_tmpfs  # noqa: E402


def healthy(d):
    status, _, body = d.request("GET", "/metrics")
    assert status == 200
    _, samples = parse_metrics(body.decode())
    return [v for n, _, v in samples if n == "chorus_store_healthy"]


def run(mnt):
    cfg = config()
    cfg["store"] = {"path": os.path.join(mnt, "chorus.db"), "retry_ms": 50}
    with Daemon(config=cfg, args=["--flows", os.path.join(SRC, "flows")]) as d:
        d.wait_log(event="flows_loaded", timeout=60)
        status, body = d.json("GET", "/readyz")
        assert status == 200 and body["checks"]["store"] == "ok", body
        assert healthy(d) == [1.0]
        ballast = os.path.join(mnt, "ballast")
        fill(ballast)
        refused = 0
        for _ in range(200):  # turns until a commit fails on the full disk
            status, reply = d.json("POST", "/v1/chat/conversations", b"", bearer(GW_KEY))
            if status == 503:
                refused += 1
                break
            assert status == 201, (status, reply)
        assert refused, "no turn was refused on a full disk"
        d.wait_log(event="store_write_failed")
        status, body = d.json("GET", "/readyz")
        assert status == 503, (status, body)
        assert body["status"] == "not_ready" and body["checks"]["store"] == "failing", body
        assert body["checks"]["config"] == "ok", body
        assert healthy(d) == [0.0]
        os.unlink(ballast)
        d.wait_log(event="store_recovered", timeout=30)
        status, body = d.json("GET", "/readyz")
        assert status == 200 and body["checks"]["store"] == "ok", body
        status, reply = d.json("POST", "/v1/chat/conversations", b"", bearer(GW_KEY))
        assert status == 201, (status, reply)


def main():
    with small_tmpfs("4m") as (_, mnt):
        run(mnt)
    print("ok")


if __name__ == "__main__":
    main()
