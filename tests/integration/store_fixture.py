"""The KPI fixture of tests/unit/store/store_fixture.h, written with Python's
sqlite3 into a database whose schema chorusctl created. Shared by the store's
integration tests (not a test itself: ctest runs test_*.py only)."""
import os
import sqlite3
import subprocess

T0 = 1793613600000000  # 2026-11-02T10:00:00Z, a Monday
H = 3600000000
S = 1000000

CONVS = [  # id, channel, flow, version, variant, start, outcome, reason, csat
    ("c1", "web", "booking", "v1", "A", T0, "contained", None, 5),
    ("c2", "web", "booking", "v1", "B", T0 + H, "escalated", "user_request", 3),
    ("c3", "sms", "booking", "v2", "A", T0 + 23 * H, "abandoned", None, None),
    ("c4", "sms", "faq", "v1", "A", T0 + 8 * 24 * H - H, "active", None, None),
    ("c5", "web", "faq", "v1", "", T0 + 26 * H, "escalated", "low_confidence", None),
]
TURNS = [  # conv, seq, dir, at, intent, conf, oos, latency, tok_in, tok_out, error, channel
    ("c1", 1, "in", 0, "book", 0.9, 0, None, 0, 0, None, "web"),
    ("c1", 2, "out", 1 * S, None, None, 0, 100000, 100, 50, None, "web"),
    ("c1", 3, "in", 10 * S, "oos", 0.3, 1, None, 0, 0, None, "web"),
    ("c1", 4, "out", 11 * S, None, None, 0, 200000, 0, 0, None, "web"),
    ("c2", 1, "in", 0, "cancel", 0.8, 0, None, 0, 0, None, "web"),
    ("c2", 2, "out", 2 * S, None, None, 0, 300000, 0, 0, "action", "web"),
    ("c3", 1, "in", 0, "book", 0.6, 0, None, 0, 0, None, "sms"),
    ("c3", 2, "out", 4 * S, None, None, 0, 400000, 0, 0, None, "sms"),
    ("c4", 1, "in", 0, "hours", 0.7, 0, None, 0, 0, None, "sms"),
    ("c4", 2, "out", 1 * S, None, None, 0, 500000, 1000, 500, None, "sms"),
    ("c5", 1, "in", 0, "x", 0.5, 0, None, 0, 0, None, "web"),
    ("c5", 2, "out", 3 * S, None, None, 0, 600000, 0, 0, None, "web"),
]
LABELS = [("c1", 1, "book"), ("c1", 3, "oos"), ("c2", 1, "refund"), ("c3", 1, "book")]


def make_db(ctl, path):
    """Creates the schema through chorusctl, then writes the fixture."""
    subprocess.run([ctl, "store-load", "--db", path, "--turns", "1", "--conversations", "1",
                    "--prefix", "zz"], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    db = sqlite3.connect(path)
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("DELETE FROM conversations WHERE id = 'zz0'")
    start = {}
    for cid, ch, flow, ver, var, st, outcome, reason, csat in CONVS:
        start[cid] = st
        db.execute("INSERT INTO conversations (id, channel, flow, flow_version, variant,"
                   " started_us, ended_us, outcome, escalation_reason, csat) VALUES"
                   " (?,?,?,?,?,?,?,?,?,?)",
                   (cid, ch, flow, ver, var, st, None if outcome == "active" else st + 20 * S,
                    outcome, reason, csat))
    for cid, seq, d, at, intent, conf, oos, lat, ti, to, err, ch in TURNS:
        db.execute("INSERT INTO turns (conversation_id, seq, direction, ts_us, text, intent,"
                   " confidence, oos, latency_us, tokens_in, tokens_out, error, channel, node)"
                   " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   (cid, seq, d, start[cid] + at, "turn %d of %s" % (seq, cid), intent, conf,
                    oos, lat, ti, to, err, ch, "n"))
    for cid, seq, intent in LABELS:
        db.execute("INSERT INTO labels (turn_id, intent, labelled_us) SELECT id, ?, ? FROM turns"
                   " WHERE conversation_id = ? AND seq = ?", (intent, T0, cid, seq))
    db.execute("INSERT INTO events (conversation_id, turn_seq, ts_us, kind, name, status,"
               " duration_us, detail) VALUES ('c2', 2, ?, 'action', 'cancel_booking', 'error',"
               " 1200, '{\"http_status\":502}')", (T0 + H + 2 * S,))
    db.commit()
    db.close()
