"""Labels, end to end: the turns worth labelling go out as CSV and come back
filled in (quoted commas and all; a bad file records nothing), routing
accuracy moves by exactly what the labels say, an interactive review records
what is typed, and `label train` writes a training file the flowset loads,
after which the router sends a held-out phrasing of the planted confusion to
the right intent, and a turn labelled out of scope teaches the router's oos
class."""
import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flywheel_fixture  # noqa: E402
from test_learn import empty_db  # noqa: E402

SRC = os.environ.get("CHORUS_SOURCE_DIR", ".")
CTL = os.environ["CHORUSCTL"]

CONFUSED = [  # said by customers, routed to change_flight with low confidence
    "I want my cash back for the cancelled trip", "cash back please, my trip was cancelled",
    "they cancelled my trip and I want cash back", "cash back for my cancelled trip",
    "my cancelled trip, I need the cash back", "can I get cash back, trip cancelled",
    "trip cancelled, cash back?", "cash back because the trip was cancelled",
    "where is the cash back for my cancelled trip", "cancelled trip cash back",
]
HELD_OUT = "my trip was cancelled so I want cash back"
OFF_TOPIC = "what is the status of my pizza"  # routed to booking_status, but out of scope


def ctl(*args, expect=0, stdin=None):
    p = subprocess.run([CTL] + list(args), capture_output=True, text=True, input=stdin)
    assert p.returncode == expect, (args, p.returncode, p.stdout, p.stderr)
    return p


def fixture(tmp):
    path = empty_db(tmp)
    db = sqlite3.connect(path)
    t0 = flywheel_fixture.T0
    for i, text in enumerate(CONFUSED):
        cid = "confused-%d" % i
        db.execute("INSERT INTO conversations (id, channel, flow, started_us, outcome)"
                   " VALUES (?,?,?,?,?)", (cid, "web", "change_flight", t0 + i, "active"))
        db.execute("INSERT INTO turns (conversation_id, seq, direction, ts_us, text, intent,"
                   " confidence, channel) VALUES (?,?,?,?,?,?,?,?)",
                   (cid, 1, "in", t0 + i, text, "change_flight", 0.27, "web"))
    for i in range(10):
        cid = "fine-%d" % i
        db.execute("INSERT INTO conversations (id, channel, flow, started_us, outcome)"
                   " VALUES (?,?,?,?,?)", (cid, "web", "refund_status", t0 + 100 + i, "active"))
        db.execute("INSERT INTO turns (conversation_id, seq, direction, ts_us, text, intent,"
                   " confidence, channel) VALUES (?,?,?,?,?,?,?,?)",
                   (cid, 1, "in", t0 + 100 + i, "where is my refund", "refund_status", 0.97,
                    "web"))
    db.execute("INSERT INTO conversations (id, channel, flow, started_us, outcome)"
               " VALUES (?,?,?,?,?)", ("off-topic", "web", "booking_status", t0 + 200, "active"))
    db.execute("INSERT INTO turns (conversation_id, seq, direction, ts_us, text, intent,"
               " confidence, channel) VALUES (?,?,?,?,?,?,?,?)",
               ("off-topic", 1, "in", t0 + 200, OFF_TOPIC, "booking_status", 0.9, "web"))
    db.commit()
    db.close()
    return path


def accuracy(path):
    t = json.loads(ctl("report", "--db", path, "--format", "json").stdout)["total"]
    return t["labelled_turns"], t["routing_accuracy"]


def labels_count(path):
    return sqlite3.connect(path).execute("SELECT count(*) FROM labels").fetchone()[0]


def test_labels_end_to_end():
    tmp = tempfile.mkdtemp(prefix="chorus-labels-")
    path = fixture(tmp)
    out = os.path.join(tmp, "todo.csv")
    ctl("label", "export", "--db", path, "--out", out)
    rows = list(csv.DictReader(open(out, newline="")))
    assert sorted(r["text"] for r in rows) == sorted(CONFUSED), rows  # the confident ones stay out
    assert all(r["predicted"] == "change_flight" and r["label"] == "" for r in rows), rows
    # a file with one bad row records nothing, and says where
    bad = os.path.join(tmp, "bad.csv")
    with open(bad, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerow(dict(rows[0], label="refund_status"))
        w.writerow(dict(rows[1], seq="two", label="refund_status"))
    p = ctl("label", "import", "--db", path, "--in", bad, expect=1)
    assert "bad.csv:3:" in p.stderr and "nothing was recorded" in p.stderr, p.stderr
    assert labels_count(path) == 0
    # the team labels eight of them (two left blank are skipped)
    for r in rows[:8]:
        r["label"] = "refund_status"
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    assert "recorded 8 labels" in ctl("label", "import", "--db", path, "--in", out).stdout
    assert accuracy(path) == (8, 0.0)
    # two confident turns confirmed right: 2 of 10 labelled turns were routed well
    ctl("label", "--db", path, "fine-0", "1", "refund_status")
    ctl("label", "--db", path, "fine-1", "1", "refund_status")
    assert accuracy(path) == (10, 0.2)
    # the review asks about the two left; one answered, then stop
    p = ctl("label", "review", "--db", path, "--by", "ana", stdin="refund_status\nq\n")
    assert "recorded 1 labels" in p.stdout, p.stdout
    assert labels_count(path) == 11
    audit = sqlite3.connect(path).execute(
        "SELECT actor, action FROM audit WHERE action LIKE 'label%' ORDER BY id").fetchall()
    assert ("ana", "label.review") in audit and any(a == "label.import" for _, a in audit), audit

    # retraining: before, the held-out phrasing goes elsewhere; after, to refunds
    flows = os.path.join(tmp, "flows")
    shutil.copytree(os.path.join(SRC, "flows"), flows)
    shutil.rmtree(os.path.join(flows, "tests"), ignore_errors=True)
    before = ctl("nlu", "predict", "--flows", flows, "--json", HELD_OUT).stdout
    assert json.loads(before)["top"][0]["intent"] != "refund_status", before
    p = ctl("label", "train", "--db", path, "--flows", flows)
    assert "10 new examples" in p.stdout, p.stdout
    doc = json.load(open(os.path.join(flows, "labels.training.json")))
    assert sorted(doc["training"]["refund_status"]) == sorted(
        set(CONFUSED[:9]) | {"where is my refund"}), doc
    ctl("validate", flows)
    after = ctl("nlu", "predict", "--flows", flows, "--json", HELD_OUT).stdout
    assert json.loads(after)["top"][0]["intent"] == "refund_status", after
    # a turn labelled out of scope joins the flowset's out-of-scope examples
    predicted = json.loads(ctl("nlu", "predict", "--flows", flows, "--json", OFF_TOPIC).stdout)
    assert not predicted["out_of_scope"], predicted
    ctl("label", "--db", path, "off-topic", "1", "oos")
    p = ctl("label", "train", "--db", path, "--flows", flows)
    assert "1 new examples" in p.stdout, p.stdout
    doc = json.load(open(os.path.join(flows, "labels.training.json")))
    assert doc["training"]["oos"] == [OFF_TOPIC], doc
    predicted = json.loads(ctl("nlu", "predict", "--flows", flows, "--json", OFF_TOPIC).stdout)
    assert predicted["out_of_scope"], predicted
    # training again adds nothing new; an unknown intent in the file is an error with its place
    assert "0 new examples" in ctl("label", "train", "--db", path, "--flows", flows).stdout
    doc["training"]["no_such_intent"] = ["x"]
    json.dump(doc, open(os.path.join(flows, "labels.training.json"), "w"), indent=2)
    p = ctl("validate", flows, expect=1)
    assert "labels.training.json:" in p.stderr and "no_such_intent" in p.stderr, p.stderr


if __name__ == "__main__":
    test_labels_end_to_end()
    print("ok test_labels_end_to_end")
