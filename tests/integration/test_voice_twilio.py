"""The voice channel (POST /v1/voice/twilio) against the real chorusd running
the example flows with the airline backend stub. Calls are played as Twilio
places them: the incoming-call webhook, then the <Gather> action callbacks
with SpeechResult/Confidence or Digits (or neither: silence), all signed
with Twilio's algorithm; every reply is parsed as XML and its verbs checked.
Covers the DTMF menu, explicit confirmation of a slot the flow marks for
voice, re-prompts on silence then hang-up, handoff as <Dial> with the
summary, hang-up at the end, call status callbacks (the end of the call,
and progress events that change nothing), a request that comes before the
call's first answer is ready (told to come back, not hung up on), a call
carried on across a restart and bad signatures."""

import json
import os
import sqlite3
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, run_tests  # noqa: E402
from test_sms_twilio import FLOWS, TOKEN, Backend, Twilio  # noqa: E402

ACCOUNT = "AC" + "0" * 32


class Call:
    """One phone call as Twilio drives it."""

    def __init__(self, tw, sid, frm="+15551230001"):
        self.tw, self.sid, self.frm = tw, sid, frm

    def params(self, extra=(), status="in-progress"):
        return [("Called", "+15559870000"), ("ToState", "CA"), ("CallerCountry", "US"),
                ("Direction", "inbound"), ("CallerState", "CA"), ("ToZip", ""),
                ("CallSid", self.sid), ("To", "+15559870000"), ("CallerZip", "94105"),
                ("ToCountry", "US"), ("ApiVersion", "2010-04-01"), ("CalledZip", ""),
                ("CallStatus", status), ("From", self.frm), ("AccountSid", ACCOUNT),
                ("Caller", self.frm)] + list(extra)

    def answer(self):
        # the incoming call's webhook: the call is still ringing; every
        # <Gather> callback after it says in-progress
        return self.tw.twiml(self.params(status="ringing"))

    def say(self, text, confidence="0.91"):
        return self.tw.twiml(self.params([("SpeechResult", text), ("Confidence", confidence),
                                          ("Language", "en-US")]))

    def press(self, digits):
        return self.tw.twiml(self.params([("Digits", digits), ("FinishedOnKey", "")]))

    def silence(self):
        return self.tw.twiml(self.params())


def says(node):
    return [s.text or "" for s in node.iter("Say")]


def gather(root, voice="Polly.Amy", language="en-GB"):
    g = root.find("Gather")
    assert g is not None, root
    assert g.get("input") == "speech dtmf"
    assert g.get("speechTimeout") == "auto"
    assert g.get("action", "").endswith("/v1/voice/twilio"), g.attrib
    assert g.get("method") == "POST"
    for s in g.findall("Say"):
        assert s.get("voice") == voice and s.get("language") == language, s.attrib
    return g


VOICE_CFG = {"say_voice": "Polly.Amy", "language": "en-GB",
             "handoff_numbers": "bookings=+15550100100,baggage=client:bag-desk,*=sip:care@pbx.example",
             "max_silences": 2}


def run(fn):
    be = Backend()
    try:
        with Daemon(config={"voice": VOICE_CFG}, args=["--flows", FLOWS],
                    env={"CHORUS_BACKEND_URL": be.url, "TWILIO_AUTH_TOKEN": TOKEN}) as d:
            d.wait_log(event="flows_loaded", timeout=60)
            fn(d, Twilio(d, "/v1/voice/twilio"))
    finally:
        be.close()


def test_menu_confirmation_and_result():
    def t(d, tw):
        c = Call(tw, "CA" + "1" * 32)
        g = gather(c.answer())
        text = " ".join(says(g))
        assert "Chorus Air assistant" in text
        assert "Press 1 for Booking status." in text and "Press 5 for Talk to an agent." in text
        assert g.get("numDigits") == "1"  # a menu key answers at once
        # the options' titles help Twilio's speech recognition hear them
        hints = g.get("hints", "").split(", ")
        assert hints[0] == "Booking status" and hints[-1] == "Talk to an agent", hints
        assert len(hints) == 5, hints
        # key 1: the menu's first option
        g = gather(c.press("1"))
        assert says(g) == ["Sure. Please say or key in your six character booking reference."]
        assert g.get("numDigits") is None  # free input: keys until # or a pause
        assert g.get("hints") is None
        # speech: the reference is confirmed explicitly before it is used
        g = gather(c.say("it is A B C 1 2 3 I mean ABC123", confidence="0.62"))
        assert says(g)[:2] == ["I heard ABC123.", "Is that right?"], says(g)
        assert any("Press 1 for" in s for s in says(g)), says(g)
        assert g.get("hints", "").lower().split(", ") == ["yes", "no"], g.attrib
        d.wait_log(event="voice_speech", confidence="0.62")
        # 1 = yes
        g = gather(c.press("1"))
        assert "Your flight CH 101 from LHR to JFK" in says(g)[0], says(g)
        # how each input was captured is recorded with its turn: keys, then
        # speech with Twilio's recognition confidence, then a key again
        db = sqlite3.connect(os.path.join(d.data_dir, "chorus.db"), timeout=10)
        rows = db.execute("SELECT e.detail, t.text FROM events e JOIN turns t"
                          " ON t.conversation_id = e.conversation_id AND t.seq = e.turn_seq"
                          " WHERE e.kind = 'input' ORDER BY e.id").fetchall()
        got = [(json.loads(detail), text) for detail, text in rows]
        assert [x["mode"] for x, _ in got] == ["dtmf", "speech", "dtmf"], got
        assert got[1][0]["confidence"] == 0.62 and "ABC123" in got[1][1], got
    run(t)


def test_confirmation_no_asks_again():
    def t(d, tw):
        c = Call(tw, "CA" + "2" * 32)
        c.answer()
        g = gather(c.say("check booking ABC123"))
        assert says(g)[:2] == ["I heard ABC123.", "Is that right?"]
        g = gather(c.press("2"))
        assert says(g) == ["Sure. Please say or key in your six character booking reference."]
    run(t)


def test_silence_reprompts_then_hangs_up():
    def t(d, tw):
        c = Call(tw, "CA" + "3" * 32)
        first = says(gather(c.answer()))
        # no SpeechResult, no Digits: the same prompt again, no turn
        assert says(gather(c.silence())) == first
        assert says(gather(c.silence())) == first
        root = c.silence()  # past voice.max_silences
        assert root.find("Gather") is None and root.find("Hangup") is not None
        # speech resets the count
        c2 = Call(tw, "CA" + "4" * 32)
        c2.answer()
        c2.silence()
        gather(c2.say("check my booking"))
        assert says(gather(c2.silence())) == ["Sure. Please say or key in your six character booking reference."]
        gather(c2.silence())
    run(t)


def check_sip(root):
    sip = root.find("Dial/Sip")
    assert sip is not None and sip.text.startswith("sip:care@pbx.example?X-Chorus-Summary="), root
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(sip.text).query)
    summary = json.loads(q["X-Chorus-Summary"][0])
    assert summary["reason"] and "slots" in summary, summary


def test_handoff_dials_the_queue_with_the_summary():
    def t(d, tw):
        c = Call(tw, "CA" + "5" * 32)
        c.answer()
        root = c.press("5")  # talk to an agent
        if root.find("Gather") is None:
            # escalated at once (an escalation policy hands "talk to a human"
            # straight over): the messages, then the dial, no gather
            assert says(root) and root.find("Dial") is not None, root
            check_sip(root)
            return
        # the agent flow asks what it is about first
        assert "Press 1 for Booking." in " ".join(says(root)), says(root)
        root = c.press("1")  # bookings
        assert root.find("Gather") is None
        assert "bookings team" in " ".join(says(root))
        num = root.find("Dial/Number")
        assert num is not None and num.text == "+15550100100", root
        # baggage: a Client with the summary as a Parameter
        c2 = Call(tw, "CA" + "6" * 32)
        c2.answer()
        c2.say("I want to talk to a human")
        root = c2.say("baggage")
        p = root.find("Dial/Client/Parameter")
        assert root.find("Dial/Client/Identity").text == "bag-desk"
        assert p.get("name") == "summary"
        summary = json.loads(p.get("value"))
        assert summary["reason"] and "slots" in summary, summary
        # any other queue: the SIP URI with the summary as a header
        c3 = Call(tw, "CA" + "7" * 32)
        c3.answer()
        c3.say("I want to talk to a human")
        check_sip(c3.say("something else entirely"))
    run(t)


def test_goodbye_hangs_up_and_status_callback():
    def t(d, tw):
        c = Call(tw, "CA" + "8" * 32)
        c.answer()
        root = c.say("goodbye")
        assert root.find("Gather") is None and root.find("Hangup") is not None
        assert "Goodbye" in " ".join(says(root))
        # Twilio's status callback at the end of the call: empty TwiML
        root = tw.twiml(c.params()[:-4] + [("CallStatus", "completed"), ("CallDuration", "31"),
                                           ("From", c.frm), ("Caller", c.frm)])
        assert list(root) == []
        # the same CallSid calling back is a new call (the welcome again)
        assert "Chorus Air assistant" in " ".join(says(gather(c.answer())))
    run(t)


def progress(call, status, seq, only_sequence=False):
    """Twilio's status callback for one of the call's progress events."""
    extra = [("SequenceNumber", str(seq)), ("Timestamp", "Mon, 30 Nov 2026 21:00:00 +0000")]
    if not only_sequence:
        extra.append(("CallbackSource", "call-progress-events"))
    return call.params(extra, status=status)


def test_status_callbacks_change_nothing():
    """The webhook may be the call's status callback too: its progress
    events (ringing, answered) get an empty <Response/> and change nothing:
    no silence counted, no call started or looked up."""
    def t(d, tw):
        c = Call(tw, "CA" + "ab" * 16)
        first = says(gather(c.answer()))
        assert list(tw.twiml(progress(c, "in-progress", 1))) == []
        assert list(tw.twiml(progress(c, "in-progress", 2, only_sequence=True))) == []
        d.wait_log(event="voice_status_callback", conversation="voice:" + c.sid)
        # the caller's silences are still counted from none: max_silences 2
        assert says(gather(c.silence())) == first
        assert says(gather(c.silence())) == first
        root = c.silence()
        assert root.find("Gather") is None and root.find("Hangup") is not None
        # events of a call not held: nothing is started, nothing read back
        other = Call(tw, "CA" + "cd" * 16)
        assert list(tw.twiml(progress(other, "ringing", 0))) == []
        assert list(tw.twiml(progress(other, "in-progress", 1))) == []
        assert not d.log_lines(event="voice_call", conversation="voice:" + other.sid)
        assert not d.log_lines(event="voice_call_resumed", conversation="voice:" + other.sid)
        # and its incoming-call webhook is the welcome as usual
        assert "Chorus Air assistant" in " ".join(says(gather(other.answer())))
        # the end of a call, reported by the status callback, still forgets it
        assert list(tw.twiml(progress(other, "completed", 3))) == []
        assert "Chorus Air assistant" in " ".join(says(gather(other.answer())))
    run(t)


def held_on(root):
    """The answer that keeps a call while its first answer is not ready."""
    assert [x.tag for x in root] == ["Pause", "Redirect"], [x.tag for x in root]
    assert root.find("Pause").get("length") == "1"
    r = root.find("Redirect")
    assert r.get("method") == "POST" and r.text.endswith("/v1/voice/twilio"), (r.attrib, r.text)


def test_a_request_before_the_first_answer_keeps_the_call():
    """A second request for a call whose first turn (the welcome) is still
    in flight (Twilio retried the webhook) is told to wait and come back,
    not hung up on, and is not a silence; the request the <Redirect> brings
    back gets the welcome. The daemon has one thread-pool thread, held by a
    reload that retrains the router, so the welcome's read of the store
    waits behind it."""
    import shutil
    import tempfile
    import threading
    import time
    from test_sms_twilio import bulk_training
    data = tempfile.mkdtemp(prefix="chorus-voice-")
    flows = os.path.join(data, "flows")
    shutil.copytree(FLOWS, flows)
    be = Backend()
    try:
        with Daemon(config={"voice": VOICE_CFG, "flows": {"reload_debounce_ms": 50}},
                    args=["--flows", flows],
                    env={"CHORUS_BACKEND_URL": be.url, "TWILIO_AUTH_TOKEN": TOKEN,
                         "UV_THREADPOOL_SIZE": "1"}) as d:
            d.wait_log(event="flows_loaded", timeout=60)
            tw = Twilio(d, "/v1/voice/twilio")
            bulk_training(os.path.join(flows, "bulk.training.json"))
            d.wait_log(event="flows_changed", timeout=30)
            time.sleep(0.5)  # the load's scan is done: the pool's one thread trains
            c = Call(tw, "CA" + "ef" * 16)
            first = {}
            t = threading.Thread(target=lambda: first.setdefault(
                "root", tw.twiml(c.params(status="ringing"), timeout=120)))
            t.start()
            d.wait_log(event="voice_call", conversation="voice:" + c.sid)
            # Twilio's retry of the incoming call, and a request with no input
            held_on(tw.twiml(c.params(status="ringing"), timeout=30))
            held_on(c.silence())
            d.wait_log(event="voice_hold_on", conversation="voice:" + c.sid)
            t.join(120)
            welcome = says(gather(first["root"]))
            assert "Chorus Air assistant" in " ".join(welcome), welcome
            # the request the <Redirect> brings back: the welcome, not a silence
            assert says(gather(c.silence())) == welcome
            # so the caller still has all their silences (max_silences 2)
            assert says(gather(c.silence())) == welcome
            assert says(gather(c.silence())) == welcome
            root = c.silence()
            assert root.find("Gather") is None and root.find("Hangup") is not None
    finally:
        be.close()
        shutil.rmtree(data, ignore_errors=True)


def test_a_call_whose_welcome_failed_is_welcomed_when_it_comes_again():
    """The welcome's turn cannot be written (a trigger refuses the call's
    rows): 503, and the call has had no answer. The same webhook sent
    again is answered as the first would have been, with the welcome, not
    hung up on as a silence of a call with no prompt."""
    def t(d, tw):
        c = Call(tw, "CA" + "9a" * 16)
        db = sqlite3.connect(os.path.join(d.data_dir, "chorus.db"), timeout=10)
        db.execute("CREATE TRIGGER refuse_call BEFORE INSERT ON turns"
                   " WHEN NEW.conversation_id LIKE 'voice:%s%%'"
                   " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END" % c.sid)
        db.commit()
        status, _, body = tw.post(c.params(status="ringing"))
        assert status == 503 and b"turn_failed" in body, (status, body)
        d.wait_log(event="voice_turn_failed", conversation="voice:" + c.sid)
        db.execute("DROP TRIGGER refuse_call")
        db.commit()
        db.close()
        assert "Chorus Air assistant" in " ".join(says(gather(c.answer())))
    run(t)


def test_bad_signature():
    def t(d, tw):
        c = Call(tw, "CA" + "9" * 32)
        status, _, body = tw.post(c.params(), signature="bm90IGEgc2lnbmF0dXJlIGF0IGFsbA==")
        assert status == 403, body
        status, _, _ = tw.post(c.params(), signature="")
        assert status == 403
        # nothing stored: the first good request is still the incoming call
        assert "Chorus Air assistant" in " ".join(says(gather(c.answer())))
        status, _, body = tw.post([("From", "+1555")])
        assert status == 400 and b"CallSid" in body
    run(t)


def test_call_resumes_after_a_restart():
    """A callback for a call the daemon does not hold (it restarted during
    the call): the call's record is read back, so a silence hears the last
    prompt again and a key answers the menu or the confirmation the caller
    heard, instead of the call starting over; a call the store never saw
    starts with the welcome."""
    import shutil
    import tempfile
    data = tempfile.mkdtemp(prefix="chorus-voice-")
    be = Backend()

    def daemon():
        d = Daemon(config={"voice": VOICE_CFG}, args=["--flows", FLOWS],
                   env={"CHORUS_BACKEND_URL": be.url, "TWILIO_AUTH_TOKEN": TOKEN})
        d.data_dir = data  # outlives the daemon's own temporary directory
        return d
    try:
        with daemon() as d:
            d.wait_log(event="flows_loaded", timeout=60)
            tw = Twilio(d, "/v1/voice/twilio")
            menu_call = Call(tw, "CA" + "a" * 32)
            menu = gather(menu_call.answer())
            assert "Press 1 for Booking status." in " ".join(says(menu))
            confirm_call = Call(tw, "CA" + "c" * 32)
            confirm_call.answer()
            confirm = gather(confirm_call.say("check booking ABC123"))
            assert says(confirm)[:2] == ["I heard ABC123.", "Is that right?"], says(confirm)
            # the confirmation is recorded with the reply, for a restart to find
            db = sqlite3.connect(os.path.join(data, "chorus.db"), timeout=10)
            details = [json.loads(x) for (x,) in db.execute(
                "SELECT detail FROM events WHERE kind = 'reply' AND conversation_id = ?",
                ("voice:" + confirm_call.sid,))]
            db.close()
            assert any(x.get("confirm") == "booking_ref" for x in details), details
            # a prompt without options: its stored row's text alone says it
            free_call = Call(tw, "CA" + "f" * 32)
            free_call.answer()
            free = gather(free_call.press("1"))
            assert says(free) == ["Sure. Please say or key in your six character booking reference."]
        with daemon() as d:
            d.wait_log(event="flows_loaded", timeout=60)
            tw = Twilio(d, "/v1/voice/twilio")
            # a silence first: the menu again, as it was, still one key
            menu_call.tw = tw
            g = gather(menu_call.silence())
            assert says(g) == says(menu) and g.get("numDigits") == "1", says(g)
            assert g.get("hints") == menu.get("hints"), g.attrib
            d.wait_log(event="voice_call_resumed", conversation="voice:" + menu_call.sid,
                       found="1", answered="0", choices="5")
            g = gather(menu_call.press("1"))
            assert says(g) == ["Sure. Please say or key in your six character booking reference."]
            free_call.tw = tw
            g = gather(free_call.silence())
            assert says(g) == says(free), says(g)
            assert g.get("numDigits") is None and g.get("hints") is None, g.attrib
            d.wait_log(event="voice_call_resumed", conversation="voice:" + free_call.sid,
                       found="1", answered="0", choices="0", confirming="0")
            # a key first, during a confirmation: 1 is its yes
            confirm_call.tw = tw
            g = gather(confirm_call.press("1"))
            assert "Your flight CH 101 from LHR to JFK" in says(g)[0], says(g)
            d.wait_log(event="voice_call_resumed", conversation="voice:" + confirm_call.sid,
                       found="1", answered="1", confirming="1")
            # calls the store never saw: the welcome, whether they bring a key
            # or a silence
            fresh = Call(tw, "CA" + "b" * 32)
            assert "Chorus Air assistant" in " ".join(says(gather(fresh.press("1"))))
            d.wait_log(event="voice_call_resumed", conversation="voice:" + fresh.sid, found="0")
            quiet = Call(tw, "CA" + "d" * 32)
            assert "Chorus Air assistant" in " ".join(says(gather(quiet.silence())))
            d.wait_log(event="voice_call_resumed", conversation="voice:" + quiet.sid, found="0")
            # a call coming in (ringing) is not looked for
            new = Call(tw, "CA" + "e" * 32)
            assert "Chorus Air assistant" in " ".join(says(gather(new.answer())))
            d.wait_log(event="voice_call", conversation="voice:" + new.sid)
            assert not d.log_lines(event="voice_call_resumed", conversation="voice:" + new.sid)
    finally:
        be.close()
        shutil.rmtree(data, ignore_errors=True)

if __name__ == "__main__":
    run_tests(globals())
