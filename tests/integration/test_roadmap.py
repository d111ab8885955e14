"""chorusctl roadmap: every workflow the example flows declare, with owner
and status from the flow files, its KPIs from the store over the window and
their trend against the window before, the backends its actions call, the
top opportunity `learn` finds, and the rollouts in progress; Markdown and
JSON agree."""
import datetime
import json
import os
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flywheel_fixture  # noqa: E402
from test_learn import empty_db  # noqa: E402

SRC = os.environ.get("CHORUS_SOURCE_DIR", ".")
CTL = os.environ["CHORUSCTL"]
FLOWS = os.path.join(SRC, "flows")
DAY = 86400 * 1_000_000
AT = datetime.datetime.fromtimestamp((flywheel_fixture.T0 + DAY) // 1_000_000,
                                     datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def roadmap(path, *extra):
    p = subprocess.run([CTL, "roadmap", "--flows", FLOWS, "--db", path,
                        "--at", AT, "--window-days", "2"] + list(extra),
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_roadmap():
    tmp = tempfile.mkdtemp(prefix="chorus-roadmap-")
    path = empty_db(tmp)
    flywheel_fixture.populate(path)
    db = sqlite3.connect(path)
    # the window before: booking_status contained only half of 10 conversations
    for i in range(10):
        t0 = flywheel_fixture.T0 - 2 * DAY + i * 1_000_000
        db.execute("INSERT INTO conversations (id, channel, flow, started_us, ended_us, outcome)"
                   " VALUES (?,?,?,?,?,?)", ("prev-%d" % i, "web", "booking_status", t0, t0 + 10,
                                             "contained" if i % 2 else "abandoned"))
    db.execute("INSERT INTO rollouts (id, env, flow, candidate_version, control_version, percent,"
               " status, started_us, started_by) VALUES ('r1', 'production', 'baggage', 'abc123',"
               " 'def456', 10, 'running', ?, 'ops-lead')", (flywheel_fixture.T0,))
    db.commit()
    db.close()
    doc = json.loads(roadmap(path, "--format", "json"))
    names = {w["name"]: w for w in doc["workflows"]}
    declared = {}
    for f in os.listdir(FLOWS):
        if f.endswith(".json"):
            flow = json.load(open(os.path.join(FLOWS, f)))
            if "name" in flow:
                declared[flow["name"]] = flow
    assert set(names) == set(declared), (set(names), set(declared))
    for name, flow in declared.items():
        assert names[name]["owner"] == flow.get("owner", ""), name
        assert names[name]["status"] == flow.get("status", "live"), name
    b = names["booking_status"]
    assert b["kpis"]["conversations"] == 400, b
    assert abs(b["kpis"]["containment_rate"] - 0.8) < 1e-9, b
    assert abs(b["previous"]["containment_rate"] - 0.5) < 1e-9, b
    assert abs(b["trend"]["containment_rate"] - 0.3) < 1e-9, b
    assert b["depends_on"] == ["http://127.0.0.1:8089"], b
    counts = doc["status_counts"]
    assert sum(counts.values()) == len(declared), counts
    top = doc["opportunities"][0]
    assert any(p in " ".join(top["label"]) for p in flywheel_fixture.PETS + ["plane", "cabin"]), top
    assert [r["flow"] for r in doc["rollouts"]] == ["baggage"], doc["rollouts"]
    md = roadmap(path)
    assert md.startswith("# Automation roadmap"), md
    row = [line for line in md.splitlines() if line.startswith("| booking_status |")]
    assert row and "80.0% (+30.0 pts)" in row[0], row
    assert "## Top opportunities" in md and "| baggage | production | abc123 | 10% |" in md, md
    bad = subprocess.run([CTL, "roadmap", "--flows", FLOWS], capture_output=True, text=True)
    assert bad.returncode == 2 and "--db" in bad.stderr, bad.stderr


if __name__ == "__main__":
    test_roadmap()
    print("ok test_roadmap")
