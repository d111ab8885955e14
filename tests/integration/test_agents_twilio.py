"""The human desk on Twilio's channels: an SMS customer asking for a person
is queued with the bot's summary, what they text while waiting is recorded
for the agent and never answered by the bot, and the desk refuses to type an
SMS reply it has no sender for (409); a voice caller is <Dial>ed to the
queue's number and the call is queued and counted too, and an agent cannot
type to a call (409). Twilio-format, signed webhooks as in
test_sms_twilio.py."""
import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, run_tests  # noqa: E402
from test_chat_rest import FLOWS, Backend  # noqa: E402
from test_sms_twilio import TOKEN, Phone, Twilio  # noqa: E402
from test_voice_twilio import Call  # noqa: E402

AGENT_TOKEN = "agent-twilio-token-2e7c"
ANN = {"Authorization": "Bearer " + AGENT_TOKEN}


def run(fn):
    be = Backend()
    cfg = {"admin": {"tokens": "ann:agent:" + hashlib.sha256(AGENT_TOKEN.encode()).hexdigest()},
           "voice": {"handoff_numbers": "bookings=+15550100100,*=+15550100199"}}
    try:
        with Daemon(config=cfg, args=["--flows", FLOWS],
                    env={"CHORUS_BACKEND_URL": be.url, "TWILIO_AUTH_TOKEN": TOKEN}) as d:
            d.wait_log(event="flows_loaded", timeout=60)
            fn(d)
    finally:
        be.close()


def queued(d, channel):
    st, q = d.json("GET", "/v1/agent/queues", headers=ANN)
    assert st == 200, (st, q)
    return [h for queue in q["queues"] for h in queue["conversations"] if h["channel"] == channel]


def test_sms_handoff_is_queued_and_recorded():
    def t(d):
        p = Phone(Twilio(d, "/v1/sms/twilio"), frm="+15551237777")
        p.texts("hi")
        texts = p.texts("talk to a human")
        if not any("connecting you" in x for x in texts):
            texts = p.texts("booking")
        assert any("bookings team" in x for x in texts), texts
        hs = queued(d, "sms")
        assert len(hs) == 1, hs
        h = hs[0]
        assert h["queue"] == "bookings" and h["state"] == "waiting", h
        assert h["summary"]["slots"]["agent_topic"] == "booking", h
        assert h["key"].startswith("sms:"), h
        # waiting: recorded for the agent, no answer from the bot
        assert p.texts("my flight is tomorrow, please hurry") == []
        st, c = d.json("POST", "/v1/agent/conversations/%s/claim" % h["id"], {}, ANN)
        assert st == 200, (st, c)
        assert [m["text"] for m in c["messages"] if m["from"] == "customer"] == \
            ["my flight is tomorrow, please hurry"], c
        st, e = d.json("POST", "/v1/agent/conversations/%s/messages" % h["id"],
                       {"text": "Hello"}, ANN)
        assert st == 409 and "sender" in e["error"]["message"], (st, e)
        st, c = d.json("POST", "/v1/agent/conversations/%s/close" % h["id"],
                       {"disposition": "called_back"}, ANN)
        assert st == 200 and c["state"] == "closed", (st, c)
        # closed: the number talks to the bot again
        assert p.texts("hi") != []
    run(t)


def test_a_release_the_bot_finished_stays_finished():
    """Released to the bot and ended there, an SMS handoff's outcome is
    bot_finished for good: the same number's next conversation handing off
    again is a handoff of its own, not an escalated_again of the finished
    one (which used to stay open, found by the number's key, for ever)."""
    def to_a_person(p):
        texts = p.texts("talk to a human")
        if not any("connecting you" in x for x in texts):
            p.texts("booking")

    def t(d):
        p = Phone(Twilio(d, "/v1/sms/twilio"), frm="+15551236666")
        p.texts("hi")
        to_a_person(p)
        h = queued(d, "sms")[0]
        st, _ = d.json("POST", "/v1/agent/conversations/%s/claim" % h["id"], {}, ANN)
        assert st == 200
        st, c = d.json("POST", "/v1/agent/conversations/%s/release" % h["id"],
                       {"flow": "welcome", "node": "greet"}, ANN)
        assert st == 200 and c["state"] == "released", (st, c)
        assert any("Goodbye" in x for x in p.texts("goodbye")), "the bot ends it"
        st, c = d.json("GET", "/v1/agent/conversations/" + h["id"], headers=ANN)
        assert c["release_outcome"] == "bot_finished", c
        # the number's next conversation asks for a person again
        p.texts("hi")
        to_a_person(p)
        again = queued(d, "sms")
        assert len(again) == 1 and again[0]["id"] != h["id"], again
        assert again[0]["conversation_id"] != h["conversation_id"], (h, again)
        st, c = d.json("GET", "/v1/agent/conversations/" + h["id"], headers=ANN)
        assert st == 200 and c["release_outcome"] == "bot_finished", c
        st, _, body = d.request("GET", "/metrics")
        releases = [line for line in body.decode().splitlines()
                    if line.startswith("chorus_agent_releases_total{")]
        assert not [x for x in releases if 'outcome="escalated_again"' in x], releases
        assert [x for x in releases if 'outcome="bot_finished"' in x and x.endswith(" 1")], \
            releases
    run(t)


def test_voice_handoff_dials_and_is_queued():
    def t(d):
        tw = Twilio(d, "/v1/voice/twilio")
        c = Call(tw, "CA" + "8" * 32, frm="+15551238888")
        c.answer()
        root = c.press("5")  # talk to an agent
        if root.find("Gather") is not None:
            root = c.press("1")  # bookings
        num = root.find("Dial/Number")
        assert num is not None and num.text == "+15550100100", root
        hs = queued(d, "voice")
        assert len(hs) == 1 and hs[0]["queue"] == "bookings", hs
        h = hs[0]
        st, _ = d.json("POST", "/v1/agent/conversations/%s/claim" % h["id"], {}, ANN)
        assert st == 200
        st, e = d.json("POST", "/v1/agent/conversations/%s/messages" % h["id"],
                       {"text": "Hello"}, ANN)
        assert st == 409 and "Dial" in e["error"]["message"], (st, e)
        st, c = d.json("POST", "/v1/agent/conversations/%s/close" % h["id"],
                       {"disposition": "resolved_by_phone"}, ANN)
        assert st == 200, (st, c)
    run(t)


if __name__ == "__main__":
    run_tests(globals())
