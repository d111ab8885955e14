"""The admin API and /metrics against the real chorusd: conversations are
driven through the chat REST API, then the KPI report (the API and
`chorusctl report --url`), the conversation list (filters, pagination), one
transcript, and the Prometheus exposition must agree with what was sent;
every series the Grafana dashboard plots must be one /metrics exposes."""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from admin_common import (ADMIN_TOKEN, CI_TOKEN, admin_get, check_histograms,  # noqa: E402
                          daemon, drive, metric_sum, parse_metrics)

CTL = os.environ.get("CHORUSCTL", os.path.join(os.environ.get("CHORUS_BUILD_DIR", "build"),
                                               "chorusctl"))


def sid(conv):
    """The store's id of a chat conversation."""
    return "chat:" + conv


def check_report(d, convs):
    sent = sum(len(c["texts"]) for c in convs.values())
    status, hdrs, r = admin_get(d, "/v1/admin/reports/kpis")
    assert status == 200 and hdrs["content-type"] == "application/json", (status, r)
    t = r["total"]
    assert t["conversations"] == 6, t
    assert t["contained"] == 2 and t["escalated"] == 2 and t["ended"] == 4, t
    assert abs(t["containment_rate"] - 0.5) < 1e-9, t
    assert t["turns_in"] == sent, (t["turns_in"], sent)
    assert t["latency_p50_ms"] is not None and t["latency_p99_ms"] >= t["latency_p50_ms"], t
    # sliced by channel and bucketed by day: one chat row for today, the same totals
    status, _, r = admin_get(d, "/v1/admin/reports/kpis?by=channel&bucket=day")
    assert status == 200, r
    assert r["bucket"] == "day", r
    rows = r["rows"]
    assert len(rows) == 1 and rows[0]["channel"] == "chat" and rows[0]["bucket"], rows
    assert rows[0]["conversations"] == 6 and rows[0]["turns_in"] == sent, rows
    # a window that ends before everything: no conversations
    status, _, r = admin_get(d, "/v1/admin/reports/kpis?from=2000-01-01&to=2000-01-02&by=flow")
    assert status == 200 and r["total"]["conversations"] == 0 and r["rows"] == [], r
    return t


def check_chorusctl(d, total):
    url = d.url("")
    p = subprocess.run([CTL, "report", "--url", url, "--token", ADMIN_TOKEN, "--format", "json"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)["total"]
    for k in ("conversations", "contained", "escalated", "turns_in", "turns_out"):
        assert got[k] == total[k], (k, got[k], total[k])
    for k in ("containment_rate", "latency_p99_ms"):  # chorusctl prints fewer digits
        assert abs(got[k] - total[k]) <= 1e-9 * max(1.0, abs(total[k])), (k, got[k], total[k])
    p = subprocess.run([CTL, "report", "--url", url, "--token", CI_TOKEN, "--by", "channel",
                        "--bucket", "day", "--format", "table"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split()[:2] == ["channel", "bucket"], p.stdout
    assert lines[1].split()[0] == "chat" and lines[1].split()[2] == "6", p.stdout
    assert lines[-1].split()[0] == "TOTAL", p.stdout
    p = subprocess.run([CTL, "report", "--url", url, "--token", "wrong"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "401" in p.stderr, (p.returncode, p.stderr)


def check_list(d, convs):
    status, _, r = admin_get(d, "/v1/admin/conversations")
    assert status == 200, r
    listed = {c["id"]: c for c in r["conversations"]}
    assert set(listed) == {sid(c) for c in convs}, (listed.keys(), convs.keys())
    assert r["next_cursor"] is None, r
    for conv, want in convs.items():
        row = listed[sid(conv)]
        assert row["channel"] == "chat" and row["outcome"] == want["outcome"], (row, want)
        assert row["turns"] >= 2 * len(want["texts"]), (row, want)
    starts = [c["started_us"] for c in r["conversations"]]
    assert starts == sorted(starts, reverse=True), starts
    for outcome in ("contained", "escalated", "active"):
        status, _, r = admin_get(d, "/v1/admin/conversations?outcome=" + outcome)
        want = {sid(c) for c, v in convs.items() if v["outcome"] == outcome}
        assert status == 200 and {c["id"] for c in r["conversations"]} == want, (outcome, r)
    status, _, r = admin_get(d, "/v1/admin/conversations?channel=sms")
    assert status == 200 and r["conversations"] == [], r
    # pages of 4 then 2, joined by the cursor: every conversation once, in order
    status, _, p1 = admin_get(d, "/v1/admin/conversations?limit=4")
    assert status == 200 and len(p1["conversations"]) == 4 and p1["next_cursor"], p1
    status, _, p2 = admin_get(d, "/v1/admin/conversations?limit=4&cursor=" + p1["next_cursor"])
    assert status == 200 and len(p2["conversations"]) == 2 and p2["next_cursor"] is None, p2
    paged = [c["id"] for c in p1["conversations"] + p2["conversations"]]
    status, _, whole = admin_get(d, "/v1/admin/conversations")
    assert paged == [c["id"] for c in whole["conversations"]], (paged, whole)


def check_transcript(d, convs):
    for conv, want in convs.items():
        if want["outcome"] == "active":
            continue
        status, _, t = admin_get(d, "/v1/admin/conversations/" + sid(conv))
        assert status == 200, t
        assert t["id"] == sid(conv) and t["outcome"] == want["outcome"], t
        ins = [x["text"] for x in t["turns"] if x["direction"] == "in"]
        assert ins == want["texts"], (ins, want["texts"])
        seqs = [x["seq"] for x in t["turns"]]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
        outs = [x for x in t["turns"] if x["direction"] == "out"]
        assert len(outs) >= len(ins) and all(x["text"] for x in outs), t["turns"]
        assert isinstance(t["events"], list), t
        if want["outcome"] == "escalated":
            assert any(e["kind"] == "handoff" for e in t["events"]), t["events"]
    status, _, r = admin_get(d, "/v1/admin/conversations/chat:0123456789abcdef")
    assert status == 404 and r["error"]["code"] == "not_found", (status, r)


def check_metrics(d, convs):
    sent = sum(len(c["texts"]) for c in convs.values())
    status, hdrs, body = d.request("GET", "/metrics")  # open on loopback (admin.metrics_auth=auto)
    assert status == 200, body
    assert hdrs["content-type"].startswith("text/plain; version=0.0.4"), hdrs
    types, samples = parse_metrics(body.decode())
    check_histograms(types, samples)
    assert metric_sum(samples, "chorus_turns_total") == sent, sent
    assert metric_sum(samples, "chorus_turns_total", channel="chat") == sent
    assert metric_sum(samples, "chorus_turn_latency_seconds_count") == sent
    assert metric_sum(samples, "chorus_conversations_started_total") == 6
    for outcome in ("contained", "escalated"):
        got = metric_sum(samples, "chorus_conversations_ended_total", outcome=outcome)
        assert got == 2, (outcome, got)
    assert types["chorus_runtime_conversations"] == "gauge"
    assert metric_sum(samples, "chorus_store_turns_committed_total") >= 2 * sent
    assert metric_sum(samples, "chorus_store_healthy") == 1
    assert metric_sum(samples, "chorus_http_connections") >= 1
    assert metric_sum(samples, "process_resident_memory_bytes") > 0
    # the chat table: the six conversations and their entries' bytes
    assert metric_sum(samples, "chorus_chat_conversations") == 6
    assert metric_sum(samples, "chorus_chat_history_bytes") > 0
    assert types["chorus_chat_evictions_total"] == "counter"
    check_dashboard(types)


def check_dashboard(types):
    """Every series docs/grafana-dashboard.json plots is one the daemon
    exposes (a histogram's _bucket/_sum/_count by its family)."""
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(src, "docs", "grafana-dashboard.json")) as f:
        dashboard = json.load(f)
    names = set()
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            names |= set(re.findall(r"\b((?:chorus|process)_[a-z0-9_]+)", target["expr"]))
    assert len(names) >= 20, names

    def family(name):
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[:-len(suffix)] in types:
                return name[:-len(suffix)]
        return name
    missing = sorted(n for n in names if family(n) not in types)
    assert not missing, "the dashboard plots series /metrics lacks: %r" % missing


def test_report_list_transcript_metrics_agree():
    with daemon() as d:
        convs = drive(d)
        total = check_report(d, convs)
        check_chorusctl(d, total)
        check_list(d, convs)
        check_transcript(d, convs)
        check_metrics(d, convs)


if __name__ == "__main__":
    from harness import run_tests
    run_tests(globals())
