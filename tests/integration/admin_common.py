"""Shared by the admin API tests: a daemon with a gateway key and admin
tokens running the example flows, conversations driven through the chat REST
API, and a Prometheus text-format parser."""
import hashlib
import json
import math
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon  # noqa: E402

SRC = os.environ.get("CHORUS_SOURCE_DIR", ".")
GW_KEY = "gw-admin-test-3b9e"
ADMIN_TOKEN = "adm-ops-token-61c0"
CI_TOKEN = "adm-ci-token-9d47"


def sha(s):
    return hashlib.sha256(s.encode()).hexdigest()


def bearer(token):
    return {"Authorization": "Bearer " + token}


ADMIN = bearer(ADMIN_TOKEN)


def config(admin=None):
    cfg = {"chat": {"api_keys": "main:" + sha(GW_KEY)},
           "admin": {"tokens": "ops:%s,ci:%s" % (sha(ADMIN_TOKEN), sha(CI_TOKEN))}}
    cfg["admin"].update(admin or {})
    return cfg


def daemon(admin=None):
    return Daemon(config=config(admin), args=["--flows", os.path.join(SRC, "flows")])


def start(d):
    status, reply = d.json("POST", "/v1/chat/conversations", b"", bearer(GW_KEY))
    assert status == 201, (status, reply)
    return reply["conversation"]


def say(d, conv, text):
    status, reply = d.json("POST", "/v1/chat/conversations/%s/messages" % conv, {"text": text},
                           bearer(GW_KEY))
    assert status == 200, (status, reply)
    return reply


def drive(d):
    """Six conversations: two contained, two escalated, two left active.
    Returns {conv: {"outcome", "texts": [user texts in order]}}."""
    d.wait_log(event="flows_loaded", timeout=60)
    convs = {}
    for i in range(6):
        conv = start(d)
        texts = ["how are you"]
        reply = say(d, conv, texts[-1])
        outcome = "active"
        if i % 3 == 0:
            texts.append("goodbye")
            reply = say(d, conv, texts[-1])
            assert reply["status"] == "ended", reply
            outcome = "contained"
        elif i % 3 == 1:
            texts.append("I want to talk to a human agent")
            reply = say(d, conv, texts[-1])
            for _ in range(3):
                if reply["status"] == "handoff" or not reply["messages"][-1]["choices"]:
                    break
                texts.append(reply["messages"][-1]["choices"][0]["value"])
                reply = say(d, conv, texts[-1])
            assert reply["status"] == "handoff", reply
            outcome = "escalated"
        convs[conv] = {"outcome": outcome, "texts": texts}
    return convs


def admin_get(d, path, token=ADMIN_TOKEN):
    status, hdrs, body = d.request("GET", path, headers=bearer(token) if token else None)
    return status, hdrs, json.loads(body) if body and body[:1] in (b"{", b"[") else body


# -- Prometheus text exposition format 0.0.4 ---------------------------------

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$')
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def parse_labels(text):
    out, pos = {}, 0
    while pos < len(text):
        m = LABEL.match(text, pos)
        assert m, "bad label set at %r" % text[pos:]
        value = re.sub(r'\\(.)', lambda e: {"n": "\n"}.get(e.group(1), e.group(1)), m.group(2))
        assert m.group(1) not in out, "label %s twice in {%s}" % (m.group(1), text)
        out[m.group(1)] = value
        pos = m.end()
    return out


def parse_metrics(text):
    """Returns (types {family: type}, samples [(name, labels dict, value)]);
    asserts the exposition is well formed: every sample belongs to a declared
    family, HELP/TYPE come once per family and before its samples, no series
    repeats, and every value is a float."""
    types, helps, samples, seen = {}, set(), [], set()
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("# HELP "):
            name = line.split()[2]
            assert name not in helps, "HELP twice for " + name
            helps.add(name)
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert name not in types, "TYPE twice for " + name
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            types[name] = kind
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        name, labels = m.group(1), parse_labels(m.group(3) or "")
        value = float(m.group(4))  # accepts +Inf/NaN as Prometheus does
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[: -len(suffix)] in types:
                family = name[: -len(suffix)]
        assert family in types, "sample %s before (or without) its TYPE" % name
        if types[family] == "counter":
            assert value >= 0 and not math.isnan(value), line
        key = (name, tuple(sorted(labels.items())))
        assert key not in seen, "series repeated: %r" % line
        seen.add(key)
        samples.append((name, labels, value))
    return types, samples


def metric_sum(samples, name, **labels):
    return sum(v for n, l, v in samples
               if n == name and all(l.get(k) == str(x) for k, x in labels.items()))


def check_histograms(types, samples):
    """Every histogram series: cumulative buckets non-decreasing, +Inf equal
    to _count."""
    for family, kind in types.items():
        if kind != "histogram":
            continue
        series = {}
        for n, l, v in samples:
            if n == family + "_bucket":
                rest = tuple(sorted((k, x) for k, x in l.items() if k != "le"))
                series.setdefault(rest, []).append((float(l["le"]), v))
        for rest, buckets in series.items():
            buckets.sort()
            values = [v for _, v in buckets]
            assert values == sorted(values), (family, rest, buckets)
            assert math.isinf(buckets[-1][0]), (family, rest)
            count = [v for n, l, v in samples
                     if n == family + "_count" and tuple(sorted(l.items())) == rest]
            assert count == [buckets[-1][1]], (family, rest, count, buckets[-1])
