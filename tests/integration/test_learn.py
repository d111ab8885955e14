"""chorusctl learn on real databases: the turns a real chorusd could not
understand are found and clustered; in a synthetic history with one planted
unmet need, that need is the top opportunity (ahead of a bigger but harmless
cluster), the drop-off node is found, and the exported draft flow validates
and carries the cluster's utterances."""
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon  # noqa: E402
import flywheel_fixture  # noqa: E402

SRC = os.environ.get("CHORUS_SOURCE_DIR", ".")
CTL = os.environ["CHORUSCTL"]
KEY = "gw-learn-key-77a1"
AUTH = {"Authorization": "Bearer " + KEY}


def daemon():
    cfg = {"chat": {"api_keys": "main:" + hashlib.sha256(KEY.encode()).hexdigest()}}
    return Daemon(config=cfg, args=["--flows", os.path.join(SRC, "flows")])


def learn(*args, check=True):
    p = subprocess.run([CTL, "learn"] + list(args), capture_output=True, text=True)
    if check:
        assert p.returncode == 0, (p.returncode, p.stderr)
    return p


def empty_db(tmp):
    """A database whose schema the real store created (a daemon ran on it)."""
    d = daemon()
    d.data_dir = tmp
    with d:
        pass  # ready means the store is open: its schema is in place
    path = os.path.join(tmp, "chorus.db")
    assert os.path.exists(path)
    return path


def test_real_fallbacks_are_mined():
    tmp = tempfile.mkdtemp(prefix="chorus-learn-")
    d = daemon()
    d.data_dir = tmp
    # words the example flows know nothing of: the router cannot place them
    asked = ["quokka zeppelin xylophone", "zeppelin quokka xylophone",
             "xylophone quokka zeppelin"]
    with d:
        for i in range(3):
            deadline = time.monotonic() + 60
            while True:  # the flows load (and the router trains) after ready
                status, reply = d.json("POST", "/v1/chat/conversations", b"", AUTH)
                if status != 503 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert status == 201, reply
            conv = reply["conversation"]
            status, reply = d.json("POST", "/v1/chat/conversations/%s/messages" % conv,
                                   {"text": asked[i]}, AUTH)
            assert status == 200, reply
    r = json.loads(learn("--data-dir", tmp, "--format", "json", "--min-size", "1").stdout)
    assert r["unhandled_turns"] >= 3, r
    found = [o for o in r["opportunities"] if any("quokka" in u for u in o["utterances"])]
    assert found, r["opportunities"]
    assert sum(o["turns"] for o in found) == 3, found


def test_planted_need_ranks_first():
    tmp = tempfile.mkdtemp(prefix="chorus-learn-")
    path = empty_db(tmp)
    planted = flywheel_fixture.populate(path)
    r = json.loads(learn("--db", path, "--format", "json", "--flows",
                         os.path.join(SRC, "flows")).stdout)
    ops = r["opportunities"]
    assert len(ops) >= 2, ops
    top = ops[0]

    def is_pet(u):
        return any(p in u for p in flywheel_fixture.PETS)

    # clusters never mix the planted need with anything else, and the need's
    # clusters (one per way of asking) hold nearly all of it and rank first
    pet_ops = []
    for o in ops:
        n = sum(1 for u in o["utterances"] if is_pet(u))
        assert n in (0, len(o["utterances"])), o["utterances"]
        if n:
            pet_ops.append(o)
    assert pet_ops and pet_ops[0] is top, top
    assert ops[:len(pet_ops)] == pet_ops, [o["label"] for o in ops[:len(pet_ops) + 2]]
    assert sum(o["conversations"] for o in pet_ops) >= planted["planted"] * 0.9, pet_ops
    assert top["escalation_rate"] > 0.7 and top["handle_time_measured"], top
    assert abs(top["handle_time_s"] - 600) < 1, top
    assert set(top["channels"]) <= {"web", "sms", "voice", "chat"}, top
    # the weather questions are a bigger cluster, but nobody needed help with them
    weather = [o for o in ops if any("weather" in u or "rain" in u for u in o["utterances"])]
    assert weather and max(o["turns"] for o in weather) > top["turns"], weather
    assert all(o["score"] < top["score"] for o in weather), weather
    assert all(o["impact_hours"] == 0 for o in weather), weather
    # the drop-off node of the booking flow
    drop = [x for x in r["drop_offs"] if x["flow"] == "booking_status"]
    assert drop and drop[0]["node"] == "ask_ref" and drop[0]["abandoned"] == 80, drop
    # same data, same answer
    again = json.loads(learn("--db", path, "--format", "json", "--flows",
                             os.path.join(SRC, "flows")).stdout)
    assert again == r
    table = learn("--db", path).stdout
    assert "Opportunities:" in table and "Drop-off points" in table, table


def test_export_writes_a_valid_draft_flow():
    tmp = tempfile.mkdtemp(prefix="chorus-learn-")
    path = empty_db(tmp)
    flywheel_fixture.populate(path)
    out_dir = os.path.join(tmp, "draft")
    os.makedirs(out_dir)
    out = os.path.join(out_dir, "draft.json")
    p = learn("--db", path, "--export-intent", "1", "--out", out)
    assert "wrote" in p.stdout, p.stdout
    flow = json.load(open(out))
    assert flow["status"] == "planned" and flow["name"].startswith("draft_"), flow
    examples = flow["intents"][flow["name"]]["examples"]
    assert len(examples) >= 10 and all(any(x in e for x in flywheel_fixture.PETS)
                                       for e in examples), examples
    v = subprocess.run([CTL, "validate", out_dir], capture_output=True, text=True)
    assert v.returncode == 0, v.stderr


def test_confusions_count_only_wrong_routes():
    """A turn routed out of scope (intent NULL, oos 1) and labelled "oos" was
    routed right, as the report's routing accuracy counts it; only the
    misrouted turn is a confusion."""
    import sqlite3
    tmp = tempfile.mkdtemp(prefix="chorus-learn-")
    path = empty_db(tmp)
    con = sqlite3.connect(path)
    with con:
        w = flywheel_fixture.Writer(con)
        w.conversation("chat", "f", "contained", [
            ("in", "what is the meaning of life", None, 0.2, 1, None, 0),
            ("in", "where is my refund", "booking_status", 0.6, 0, None, 0),
            ("in", "book a table", "booking_status", 0.9, 0, None, 0)])
        w.flush()
        ids = [r[0] for r in con.execute("SELECT id FROM turns ORDER BY seq")]
        con.executemany("INSERT INTO labels (turn_id, intent, labeller, labelled_us)"
                        " VALUES (?, ?, 'qa', 1)",
                        [(ids[0], "oos"), (ids[1], "refund_status"), (ids[2], "booking_status")])
    con.close()
    report = json.loads(learn("--db", path, "--from", "2000-01-01", "--format", "json").stdout)
    assert report["confusions"] == [{"predicted": "booking_status", "labelled": "refund_status",
                                     "count": 1}], report["confusions"]


def test_bad_input_is_refused_clearly():
    tmp = tempfile.mkdtemp(prefix="chorus-learn-")
    path = empty_db(tmp)
    p = learn("--db", path, "--export-intent", "5", "--out", os.path.join(tmp, "x.json"),
              check=False)
    assert p.returncode == 1 and "there are 0 opportunities" in p.stderr, p.stderr
    p = learn(check=False)
    assert p.returncode == 2 and "--db" in p.stderr, p.stderr
    p = learn("--db", os.path.join(tmp, "missing.db"), check=False)
    assert p.returncode == 1 and "missing.db" in p.stderr, p.stderr
    p = learn("--db", path, "--threshold", "2", check=False)
    assert p.returncode == 2 and "--threshold" in p.stderr, p.stderr
    assert not os.path.exists(os.path.join(tmp, "x.json"))


if __name__ == "__main__":
    for name, fn in sorted(globals().items()):
        if name.startswith("test_") and callable(fn):
            fn()
            print("ok", name)
