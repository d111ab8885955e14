"""chorusctl transcripts --worst: ended conversations, lowest score first,
with the score each one's outcome, CSAT, fallbacks, guardrail events and
failures earn (docs/flywheel.md, "Conversation scores"); active ones are left
out, and the plain list shows scores too."""
import json
import os
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flywheel_fixture  # noqa: E402
from test_learn import empty_db  # noqa: E402

CTL = os.environ["CHORUSCTL"]


def add(db, cid, outcome, csat=None, fallbacks=0, blocks=0, errors=0, start=0):
    t0 = flywheel_fixture.T0 + start
    db.execute("INSERT INTO conversations (id, channel, flow, started_us, ended_us, outcome, csat)"
               " VALUES (?,?,?,?,?,?,?)", (cid, "web", "f", t0,
                                          None if outcome == "active" else t0 + 1000, outcome,
                                          csat))
    for i in range(max(errors, 1)):
        db.execute("INSERT INTO turns (conversation_id, seq, direction, ts_us, text, channel,"
                   " error) VALUES (?,?,?,?,?,?,?)",
                   (cid, i + 1, "out", t0, "x", "web", "timeout" if i < errors else None))
    for i in range(fallbacks):
        db.execute("INSERT INTO events (conversation_id, turn_seq, ts_us, kind) VALUES (?,?,?,?)",
                   (cid, i + 1, t0, "fallback"))
    for i in range(blocks):
        db.execute("INSERT INTO events (conversation_id, turn_seq, ts_us, kind, status)"
                   " VALUES (?,?,?,?,?)", (cid, i + 1, t0, "guardrail", "block"))
    db.execute("INSERT INTO events (conversation_id, turn_seq, ts_us, kind, status)"
               " VALUES (?,?,?,?,?)", (cid, 1, t0, "guardrail", "redact"))


def test_worst_first_with_scores():
    tmp = tempfile.mkdtemp(prefix="chorus-worst-")
    path = empty_db(tmp)
    db = sqlite3.connect(path)
    expected = {
        "happy": 100,             # contained, CSAT 5 would be 120: capped
        "ok": 90,                 # contained, CSAT 2
        "lost": 30,               # abandoned (-40), 3 fallbacks (-30)
        "angry": 0,               # error (-60), CSAT 1 (-20), 2 failed turns (-20)
        "escalated": 55,          # escalated (-30), 1 fallback (-10), 1 block (-5)
        "many_fallbacks": 70,     # contained, 5 fallbacks capped at -30
    }
    add(db, "happy", "contained", csat=5, start=1)
    add(db, "ok", "contained", csat=2, start=2)
    add(db, "lost", "abandoned", fallbacks=3, start=3)
    add(db, "angry", "error", csat=1, errors=2, start=4)
    add(db, "escalated", "escalated", fallbacks=1, blocks=1, start=5)
    add(db, "many_fallbacks", "contained", fallbacks=5, start=6)
    add(db, "still_talking", "active", fallbacks=2, start=7)
    db.commit()
    db.close()
    p = subprocess.run([CTL, "transcripts", "--db", path, "--worst", "--format", "json"],
                       capture_output=True, text=True, check=True)
    rows = json.loads(p.stdout)["conversations"]
    got = [(r["id"], r["score"]) for r in rows]
    want = sorted(expected.items(), key=lambda kv: kv[1])
    assert got == want, got
    p = subprocess.run([CTL, "transcripts", "--db", path, "--format", "json"],
                       capture_output=True, text=True, check=True)
    rows = {r["id"]: r["score"] for r in json.loads(p.stdout)["conversations"]}
    assert rows["still_talking"] is None and rows["lost"] == 30, rows
    text = subprocess.run([CTL, "transcripts", "--db", path, "--worst", "--limit", "2"],
                          capture_output=True, text=True, check=True).stdout.splitlines()
    assert "score" in text[0] and text[1].startswith("angry") and len(text) == 3, text


if __name__ == "__main__":
    test_worst_first_with_scores()
    print("ok test_worst_first_with_scores")
