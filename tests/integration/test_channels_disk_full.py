"""A full disk under every channel: chorusd with its database on a small
tmpfs, a chat conversation, an SMS conversation and a phone call under way;
once the disk is full and the store refuses turns, each channel answers its
input 503 with Retry-After (the turn is not run, its state is rolled back)
and nothing reaches the customer as if it had been done. Once space is
freed, the same inputs sent again run exactly once: Twilio's retry of a
refused text carries the same MessageSid and must not be taken for a
duplicate, and a number answers the list the customer had. The chat log
has no entry for a refused message, so a restart rebuilds it from the
store seq for seq. The store holds each input once and passes its
integrity check. Needs
permission to mount a tmpfs; skipped with a message where that is not
allowed."""
import hashlib
import json
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon  # noqa: E402
from tmpfs_fixture import fill, small_tmpfs  # noqa: E402
from test_channels_same_flow import WebSocket  # noqa: E402
from test_chat_rest import FLOWS, Backend  # noqa: E402
from test_sms_twilio import TOKEN, Phone, Twilio, sms_params  # noqa: E402
from test_voice_twilio import Call, gather, says  # noqa: E402


def prompt(root):
    """The <Say>s of a <Gather> in the default voice."""
    return says(gather(root, voice="Polly.Joanna", language="en-US"))


GW_KEY = "disk-full-gateway-key"
BOOKING_PROMPT_SMS = "Sure. What's your booking reference? It has six letters and digits, like ABC123."
BOOKING_PROMPT_VOICE = "Sure. Please say or key in your six character booking reference."


def refused(status, headers, body, what):
    hdrs = {k.lower(): v for k, v in headers.items()}
    assert status == 503, (what, status, body)
    assert hdrs.get("retry-after") == "5", (what, hdrs)
    assert json.loads(body)["error"]["code"] == "turn_failed", (what, body)


def body_of(response):
    status, _, body = response
    assert status == 200, (status, body)
    return json.loads(body)


def entry(m):
    return (m["seq"], m["type"], m.get("from"), m.get("text"), m.get("choices"))


def inbound(db, key_like):
    return [r[0] for r in db.execute(
        "SELECT t.text FROM turns t WHERE t.conversation_id LIKE ? AND t.direction = 'in'"
        " ORDER BY t.id", (key_like,))]


def run(mnt, be):
    auth = {"Authorization": "Bearer " + GW_KEY, "Content-Type": "application/json"}
    cfg = {"chat": {"api_keys": "gw:" + hashlib.sha256(GW_KEY.encode()).hexdigest()},
           "store": {"path": os.path.join(mnt, "chorus.db"), "retry_ms": 50}}
    env = {"CHORUS_BACKEND_URL": be.url, "TWILIO_AUTH_TOKEN": TOKEN}
    with Daemon(config=cfg, args=["--flows", FLOWS], env=env) as d:
        d.wait_log(event="flows_loaded", timeout=60)
        # three conversations under way, each at the welcome's menu
        status, body = d.json("POST", "/v1/chat/conversations", b"", auth)
        assert status == 201, (status, body)
        chat_key = "chat:" + body["conversation"]
        chat = "/v1/chat/conversations/%s/messages" % body["conversation"]
        sms_tw = Twilio(d, "/v1/sms/twilio")
        phone = Phone(sms_tw)
        assert "1. Booking status" in "\n".join(phone.texts("hi"))
        call = Call(Twilio(d, "/v1/voice/twilio"), "CA" + "9" * 32)
        assert "Press 1 for Booking status." in " ".join(prompt(call.answer()))
        ws = WebSocket(d.port, "/v1/chat/ws", {"Authorization": auth["Authorization"]})
        ws_key = "chat:" + ws.until(lambda f: f["type"] == "ready")["conversation"]
        ws.until(lambda f: f["type"] == "message" and f["from"] == "bot")

        ballast = os.path.join(mnt, "ballast")
        fill(ballast)
        # chat turns until a commit fails on the full disk; from then on the
        # store refuses every turn until it has written again
        for _ in range(200):
            status, headers, body = d.request("POST", chat, b'{"text":"hello"}', auth)
            if status == 503:
                break
            assert status == 200, (status, body)
        refused(status, headers, body, "chat")
        d.wait_log(event="store_write_failed")
        status, headers, body = d.request("POST", chat, b'{"text":"booking status"}', auth)
        refused(status, headers, body, "chat, refusing")

        # SMS: the text is refused, with no reply for the customer
        sid = "SM" + "d15c" * 8
        status, headers, body = sms_tw.post(sms_params("1", sid))
        refused(status, headers, body, "sms")
        d.wait_log(event="sms_turn_failed")
        # voice: the caller's key is refused the same way; Twilio plays its
        # error to the caller rather than a reply that was never recorded
        status, headers, body = call.tw.post(call.params([("Digits", "1"), ("FinishedOnKey", "")]))
        refused(status, headers, body, "voice")
        d.wait_log(event="voice_turn_failed")
        # WebSocket: the error names the message, which was never echoed
        ws.send({"type": "message", "id": "ws-full-1", "text": "booking status"})
        err = ws.until(lambda f: f["type"] in ("error", "message"))
        assert (err["type"], err["code"], err["id"]) == ("error", "turn_failed", "ws-full-1"), err

        os.unlink(ballast)
        d.wait_log(event="store_recovered", timeout=30)
        # the same inputs again: each runs once, where it would have run
        status, _, body = d.request("POST", chat, b'{"text":"booking status"}', auth)
        assert status == 200, (status, body)
        assert "booking reference" in json.loads(body)["messages"][0]["text"], body
        # Twilio's retry keeps the MessageSid; "1" still picks the menu's option
        assert [m.text for m in sms_tw.twiml(sms_params("1", sid)).findall("Message")] == [
            BOOKING_PROMPT_SMS]
        # a second retry of the same text is a duplicate now that it ran
        assert sms_tw.twiml(sms_params("1", sid)).findall("Message") == []
        assert prompt(call.press("1")) == [BOOKING_PROMPT_VOICE]
        ws.send({"type": "message", "id": "ws-full-1", "text": "booking status"})
        echo = ws.until(lambda f: f["type"] == "message")
        assert (echo["from"], echo["id"]) == ("user", "ws-full-1"), echo
        assert "booking reference" in ws.until(lambda f: f.get("from") == "bot")["text"]
        ws.close()
        # the refused chat turns left no entry in the conversation's log, so
        # the log rebuilt from the store after a restart is the same, entry
        # for entry and seq for seq
        conv = body_of(d.request("GET", chat[:-len("/messages")], None, auth))
    with Daemon(config=cfg, args=["--flows", FLOWS], env=env) as d:
        d.wait_log(event="flows_loaded", timeout=60)
        rebuilt = body_of(d.request("GET", chat[:-len("/messages")], None, auth))
    seqs = [m["seq"] for m in conv["messages"]]
    assert seqs == list(range(1, conv["last_seq"] + 1)), conv
    assert [entry(m) for m in rebuilt["messages"]] == [entry(m) for m in conv["messages"]], \
        (conv, rebuilt)
    users = [m["text"] for m in conv["messages"] if m.get("from") == "user"]

    db = sqlite3.connect(os.path.join(mnt, "chorus.db"))
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        # each conversation's stored inputs: the refused ones are not there,
        # the retried ones are there once
        got = inbound(db, "sms:%s:%s%%" % (phone.frm, phone.to))
        assert got == ["hi", "Check my booking"], got  # "1": the option's value
        got = inbound(db, "voice:" + call.sid + "%")
        assert got == ["Check my booking"], got
        chat_in = inbound(db, chat_key)
        assert chat_in.count("booking status") == 1 and chat_in[-1] == "booking status", chat_in
        assert users == chat_in, (users, chat_in)  # the log's user entries are the stored turns
        assert inbound(db, ws_key) == ["booking status"]  # the refused one, once: sent again
    finally:
        db.close()


def main():
    with small_tmpfs("4m") as (_, mnt):
        be = Backend()
        try:
            run(mnt, be)
        finally:
            be.close()
    print("ok")


if __name__ == "__main__":
    main()
