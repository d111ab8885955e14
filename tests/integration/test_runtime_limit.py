"""runtime.max_conversations: how many conversations the runtime keeps in
memory, across channels. With a ":memory:" store, which cannot read a
conversation back, a full table refuses a new conversation (503
at_capacity) and the ones it holds go on answering. With a file store, a
full table evicts an idle saved conversation instead, and that conversation
is read back from the store on its next message and goes on where it was,
but never one holding what the store lacks (a sensitive slot's answer).
A value out of range is refused by --check, naming the option."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, chorusd_path, run_tests  # noqa: E402
from test_chat_rest import FLOWS, KEY, auth, sha  # noqa: E402

JSON = {"Content-Type": "application/json"}


def daemon(store_path, limit, flows=FLOWS):
    cfg = {"log_level": "debug",
           "chat": {"api_keys": "main:" + sha(KEY)},
           "store": {"path": store_path},
           "runtime": {"max_conversations": limit}}
    d = Daemon(config=cfg, args=["--flows", flows])
    d.start()
    d.wait_log(event="flows_loaded", timeout=60)
    return d


def post_conversation(d):
    status, _, body = d.request("POST", "/v1/chat/conversations", b"", auth())
    return status, json.loads(body)


def start(d):
    status, reply = post_conversation(d)
    assert status == 201, (status, reply)
    return reply["conversation"]


def say(d, conv, text):
    status, _, body = d.request("POST", "/v1/chat/conversations/%s/messages" % conv,
                                json.dumps({"text": text}).encode(), dict(auth(), **JSON))
    return status, json.loads(body)


def ask_change(d, conv):
    """The first half of a two-turn exchange: the flow asks for a reference."""
    status, reply = say(d, conv, "I want to change my flight")
    assert status == 200 and reply["conversation"] == conv, reply
    assert "six-character reference" in reply["messages"][-1]["text"], reply
    return reply


def answer_change(d, conv, asked):
    """The second half: only a conversation that remembers the question
    treats the reference as the flight to change (a new conversation would
    take it for a booking-status lookup)."""
    status, reply = say(d, conv, "ABC123")
    assert status == 200 and reply["conversation"] == conv, reply
    assert reply["messages"][0]["seq"] == asked["messages"][-1]["seq"] + 2, reply
    summary = reply["handoff"]["summary"]
    assert summary["flow"] == "change_flight", reply
    assert summary["slots"]["booking_ref"] == "ABC123", reply
    assert summary["last_user"] == ["I want to change my flight", "ABC123"], reply


def metric(d, name):
    status, _, body = d.request("GET", "/metrics")
    assert status == 200, body
    m = re.search(r"^%s (\S+)$" % re.escape(name), body.decode(), re.M)
    assert m, (name, body[:2000])
    return float(m.group(1))


def test_memory_store_refuses_a_new_conversation_past_the_limit():
    d = daemon(":memory:", 3)
    try:
        convs = [start(d) for _ in range(3)]
        asked = [ask_change(d, conv) for conv in convs]
        # the fourth conversation's first turn (its greeting) is refused
        status, reply = post_conversation(d)
        assert status == 503, (status, reply)
        assert reply["error"]["code"] == "at_capacity", reply
        assert "too many live conversations" in reply["error"]["message"], reply
        # nothing was dropped (it could not have been read back): the three
        # go on where they were
        for conv, a in zip(convs, asked):
            answer_change(d, conv, a)
        assert metric(d, "chorus_runtime_evictions_total") == 0
        d.stop()
    finally:
        d.kill()


def test_file_store_evicts_and_reads_back_past_the_limit():
    data_dir = tempfile.mkdtemp(prefix="chorus-rtlimit-")
    try:
        d = daemon(os.path.join(data_dir, "chorus.db"), 2)
        try:
            first, second = start(d), start(d)
            asked = [ask_change(d, first), ask_change(d, second)]
            third = start(d)  # the table is full: an idle saved one makes room
            ask_change(d, third)
            assert metric(d, "chorus_runtime_evictions_total") >= 1
            # whichever were evicted come back from the store where they were
            answer_change(d, first, asked[0])
            answer_change(d, second, asked[1])
            d.wait_log(event="conversation_restored", active="1")
            d.stop()
        finally:
            d.kill()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


PAY_FLOWS = {
    "settings": {"settings": {"welcome_flow": "welcome", "fallback_flow": "fallback",
                              "confidence_threshold": 0.3}},
    "welcome": {"name": "welcome",
                "intents": {"greeting": {"examples": ["hi", "hello", "hey there"]}},
                "nodes": {"greet": {"type": "say", "message": "Welcome."}}},
    "fallback": {"name": "fallback", "nodes": {"sorry": {"type": "say", "message": "Sorry?"}}},
    "pay": {"name": "pay",
            "intents": {"pay": {"examples": ["I want to pay", "make a payment", "pay my bill",
                                             "pay now"]}},
            "slots": {"secret": {"type": "text", "sensitive": True},
                      "zip": {"type": "regex", "pattern": "\\b[0-9]{5}\\b"}},
            "nodes": {"ask_secret": {"type": "ask", "slot": "secret",
                                     "prompt": "Your passphrase?", "next": "ask_zip"},
                      "ask_zip": {"type": "ask", "slot": "zip", "prompt": "Your ZIP code?",
                                  "next": "done"},
                      "done": {"type": "end",
                               "message": "Paid with [{{secret}}] from [{{zip}}]"}}},
}


def test_sensitive_answer_is_never_evicted():
    """A sensitive slot's value lives in memory only (never in the store), so
    a conversation holding one is not evicted: read back, the value would be
    gone. With nothing else to evict, the new conversation is refused."""
    tmp = tempfile.mkdtemp(prefix="chorus-rtlimit-")
    try:
        flows = os.path.join(tmp, "flows")
        os.makedirs(flows)
        for name, doc in PAY_FLOWS.items():
            with open(os.path.join(flows, name + ".json"), "w") as f:
                json.dump(doc, f)
        d = daemon(os.path.join(tmp, "chorus.db"), 1, flows)
        try:
            payer = start(d)
            status, reply = say(d, payer, "I want to pay")
            assert status == 200 and reply["messages"][-1]["text"] == "Your passphrase?", reply
            status, reply = say(d, payer, "blue horse battery")
            assert status == 200 and reply["messages"][-1]["text"] == "Your ZIP code?", reply
            status, reply = post_conversation(d)
            assert status == 503 and reply["error"]["code"] == "at_capacity", (status, reply)
            assert metric(d, "chorus_runtime_evictions_total") == 0
            status, reply = say(d, payer, "12345")
            assert status == 200, reply
            assert reply["messages"][-1]["text"] == "Paid with [blue horse battery] from [12345]", \
                reply
            d.stop()
        finally:
            d.kill()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_out_of_range_limit_is_refused_by_check():
    for bad in (0, -5, 10000001, "many"):
        d = Daemon(config={"runtime": {"max_conversations": bad}})
        try:
            p = subprocess.run([chorusd_path(), "--config", d.config_path, "--check"],
                               capture_output=True, timeout=30)
            assert p.returncode != 0, (bad, p.stderr)
            assert b"runtime.max_conversations" in p.stderr, (bad, p.stderr)
        finally:
            d.cleanup()
    d = Daemon(config={"runtime": {"max_conversations": 7}})
    try:
        p = subprocess.run([chorusd_path(), "--config", d.config_path, "--check",
                            "--flows", FLOWS], capture_output=True, timeout=60)
        assert p.returncode == 0, p.stderr
    finally:
        d.cleanup()


if __name__ == "__main__":
    run_tests(globals())
