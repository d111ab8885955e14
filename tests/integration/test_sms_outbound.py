"""The human desk texting an SMS customer through Twilio's REST API. A
stand-in Twilio on 127.0.0.1 checks every request as Twilio would (the
Messages path under the account, HTTP Basic auth with the account SID and
auth token, a form with To, From and Body); the customer reaches the desk
through signed Twilio webhooks (as in test_agents_twilio.py): the queue's
wait message and the agent's reply are texted from the number the customer
wrote to, a long reply goes as ordered segments, a refusal from Twilio is a
502 carrying its reason, and after STOP the desk is refused (409) and
nothing more reaches Twilio, also once the customer's conversation was
evicted from the adapter's table."""
import base64
import hashlib
import json
import os
import sys
import tempfile
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, run_tests  # noqa: E402
from test_chat_rest import FLOWS, Backend  # noqa: E402
from test_sms_twilio import (MENU_PICK, TOKEN, Phone, Twilio, inbound_texts, septets,  # noqa: E402
                             sms_params, twilio_signature)

AGENT_TOKEN = "agent-sms-out-token-71c2"
ANN = {"Authorization": "Bearer " + AGENT_TOKEN}
SID = "AC" + "3f" * 16
OURS = "+15559870000"  # the number the customers text (Phone's default To)


class StandInTwilio:
    """Twilio's Messages API as far as chorusd uses it; records what a
    well-formed request carried and refuses anything else with 400/401."""

    def __init__(self):
        self.sent, self.bad, self.fail_next = [], [], None
        self.lock = threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(n).decode()
                outer.handle(self, raw)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def reply(self, h, status, obj):
        body = json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def handle(self, h, raw):
        want_auth = "Basic " + base64.b64encode(("%s:%s" % (SID, TOKEN)).encode()).decode()
        problems = []
        if h.path != "/2010-04-01/Accounts/%s/Messages.json" % SID:
            problems.append("path " + h.path)
        if h.headers.get("Authorization") != want_auth:
            problems.append("auth %r" % h.headers.get("Authorization"))
        if not h.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            problems.append("content-type " + h.headers.get("Content-Type", ""))
        form = urllib.parse.parse_qs(raw, keep_blank_values=True, strict_parsing=True)
        if sorted(form) != ["Body", "From", "To"] or any(len(v) != 1 for v in form.values()):
            problems.append("fields %r" % form)
        with self.lock:
            if problems:
                self.bad.append(problems)
                self.reply(h, 401, {"code": 20003, "message": "; ".join(problems)})
                return
            msg = {k: v[0] for k, v in form.items()}
            if self.fail_next:
                status, text = self.fail_next
                self.fail_next = None
                if isinstance(text, bytes):  # not Twilio: a proxy's page
                    h.send_response(status)
                    h.send_header("Content-Length", str(len(text)))
                    h.end_headers()
                    h.wfile.write(text)
                    return
                self.reply(h, status, {"code": 21610, "message": text, "status": status})
                return
            self.sent.append(msg)
        self.reply(h, 201, {"sid": "SM%032d" % len(self.sent), "status": "queued",
                            "to": msg["To"], "from": msg["From"], "body": msg["Body"]})

    def close(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


def run(fn, sid_secret=False, sms=None, slow_ms=None):
    be, tw = Backend(slow_ms=slow_ms), StandInTwilio()
    tmp = tempfile.mkdtemp(prefix="chorus-sms-out-")
    queues = os.path.join(tmp, "queues.json")
    with open(queues, "w") as f:
        json.dump({"queues": [{"name": "bookings",
                               "wait_message": {"default": "Please hold.",
                                                "sms": "Queue position {position}."}}]}, f)
    cfg = {"admin": {"tokens": "ann:agent:" + hashlib.sha256(AGENT_TOKEN.encode()).hexdigest()},
           "agents": {"queues_file": queues},
           "sms": {"account_sid": "secret:TEST_TWILIO_SID" if sid_secret else SID,
                   "api_base_url": tw.url + "/"}}
    cfg["sms"].update(sms or {})
    env = {"CHORUS_BACKEND_URL": be.url, "TWILIO_AUTH_TOKEN": TOKEN, "TEST_TWILIO_SID": SID}
    try:
        with Daemon(config=cfg, args=["--flows", FLOWS], env=env) as d:
            d.wait_log(event="flows_loaded", timeout=60)
            fn(d, tw)
        assert tw.bad == [], tw.bad
    finally:
        be.close()
        tw.close()
        os.remove(queues)
        os.rmdir(tmp)


def escalate(d, frm):
    p = Phone(Twilio(d, "/v1/sms/twilio"), frm=frm)
    p.texts("hi")
    texts = p.texts("talk to a human")
    if not any("connecting you" in x for x in texts):
        texts = p.texts("booking")
    assert any("bookings team" in x for x in texts), texts
    st, q = d.json("GET", "/v1/agent/queues", headers=ANN)
    assert st == 200, (st, q)
    hs = [h for queue in q["queues"] for h in queue["conversations"]
          if h["key"] == "sms:%s:%s" % (frm, OURS)]
    assert len(hs) == 1, q
    return p, hs[0]


def say(d, h, text):
    return d.json("POST", "/v1/agent/conversations/%s/messages" % h["id"], {"text": text}, ANN)


def test_agent_replies_are_texted_through_twilio():
    def t(d, tw):
        p, h = escalate(d, "+15551231111")
        # the queue's wait message went out by the REST API, from our number
        d.wait_log(event="sms_sent", to="+15551231111")
        assert tw.sent == [{"To": "+15551231111", "From": OURS, "Body": "Queue position 1."}], \
            tw.sent
        st, c = d.json("POST", "/v1/agent/conversations/%s/claim" % h["id"], {}, ANN)
        assert st == 200, (st, c)
        st, c = say(d, h, "Hello, this is Ann from bookings. How can I help?")
        assert st == 200, (st, c)
        assert tw.sent[-1] == {"To": "+15551231111", "From": OURS,
                               "Body": "Hello, this is Ann from bookings. How can I help?"}
        assert [m["text"] for m in c["messages"] if m["from"] == "agent"] == \
            ["Hello, this is Ann from bookings. How can I help?"], c
        assert [m["from"] for m in c["messages"]] == ["system", "agent"], c
        # a long reply: one POST per segment, in order, each fitting one part
        long = " ".join("Sentence number %d is here." % i for i in range(1, 13))
        n = len(tw.sent)
        st, c = say(d, h, long)
        assert st == 200, (st, c)
        parts = [m["Body"] for m in tw.sent[n:]]
        assert len(parts) >= 2 and " ".join(parts) == long, parts
        assert all(septets(x) <= 153 for x in parts), parts
        # Twilio refuses: the desk hears why (502) and nothing is recorded
        tw.fail_next = (400, "Attempt to send to unsubscribed recipient")
        st, e = say(d, h, "Are you still there?")
        assert st == 502 and "unsubscribed recipient" in e["error"]["message"], (st, e)
        d.wait_log(event="sms_send_failed", status="400")
        # a proxy's error page in Twilio's place: its lines stay in one log line
        tw.fail_next = (502, b'<html>\n<b>Bad "gateway"</b>\n</html>\n')
        st, e = say(d, h, "Are you still there?")
        assert st == 502 and "Bad" in e["error"]["message"], (st, e)
        line = d.wait_log(event="sms_send_failed", status="502")
        assert line["reason"].startswith('Twilio answered 502: <html>\\x0a<b>Bad "gateway"'), line
        assert not [x for x in d.stderr_text().splitlines() if x.startswith("<b>")]
        st, c = d.json("GET", "/v1/agent/conversations/%s" % h["id"], headers=ANN)
        assert "Are you still there?" not in [m["text"] for m in c["messages"]], c
        # the customer's STOP: the desk is refused and Twilio hears nothing
        assert "unsubscribed" in p.texts("STOP")[0]
        n = len(tw.sent)
        st, e = say(d, h, "One more thing")
        assert st == 409 and "opted out" in e["error"]["message"], (st, e)
        assert len(tw.sent) == n, tw.sent
        # START again: the desk can text
        assert "resubscribed" in p.texts("START")[0]
        st, c = say(d, h, "Welcome back")
        assert st == 200 and tw.sent[-1]["Body"] == "Welcome back", (st, tw.sent)
        st, c = d.json("POST", "/v1/agent/conversations/%s/close" % h["id"],
                       {"disposition": "resolved"}, ANN)
        assert st == 200, (st, c)
    run(t, sid_secret=True)  # the account SID given as secret:NAME


def test_desk_refused_after_the_opt_out_was_evicted():
    def t(d, tw):
        p, h = escalate(d, "+15551233333")
        st, _ = d.json("POST", "/v1/agent/conversations/%s/claim" % h["id"], {}, ANN)
        assert st == 200
        assert "unsubscribed" in p.texts("STOP")[0]
        # newer pairs push the customer's conversation out of the table
        # (max_conversations 2); the opt-out is kept apart and still holds
        for i in range(3):
            assert Phone(Twilio(d, "/v1/sms/twilio"), frm="+1555124000%d" % i).texts("hi") != []
        n = len(tw.sent)
        st, e = say(d, h, "Still there?")
        assert st == 409 and "opted out" in e["error"]["message"], (st, e)
        assert len(tw.sent) == n, tw.sent
        assert "resubscribed" in p.texts("START")[0]
        st, _ = say(d, h, "Welcome back")
        assert st == 200 and tw.sent[-1]["Body"] == "Welcome back", (st, tw.sent)
    run(t, sms={"max_conversations": 2})


def test_release_to_the_bot_is_texted():
    """docs/agents.md: on release "the bot speaks at once (its words reach
    the channel like any reply)". For SMS they are texted through the
    Messages API, and their numbered list is what the customer's next
    number answers. A customer who opted out meanwhile is not texted."""
    def t(d, tw):
        frm = "+15551235555"
        p, h = escalate(d, frm)
        d.wait_log(event="sms_sent", to=frm)  # the queue's wait message
        st, _ = d.json("POST", "/v1/agent/conversations/%s/claim" % h["id"], {}, ANN)
        assert st == 200
        n = len(tw.sent)
        st, c = d.json("POST", "/v1/agent/conversations/%s/release" % h["id"],
                       {"flow": "welcome", "node": "greet"}, ANN)
        assert st == 200, (st, c)
        d.wait_log(event="sms_reply_sent_unasked", conversation="sms:%s:%s" % (frm, OURS))
        texts = tw.sent[n:]
        assert texts and all(m["To"] == frm and m["From"] == OURS for m in texts), texts
        menu = "\n".join(m["Body"] for m in texts)
        assert "1. Booking status" in menu and "5. Talk to an agent" in menu, menu
        # "1" picks option 1 of the menu just texted, not the text "1"
        assert p.texts("1") == [MENU_PICK]
        assert inbound_texts(d.data_dir, frm)[-1] == "Check my booking"
        # a customer who said STOP while with the desk: recorded, not texted
        frm = "+15551235556"
        p, h = escalate(d, frm)
        d.wait_log(event="sms_sent", to=frm)
        st, _ = d.json("POST", "/v1/agent/conversations/%s/claim" % h["id"], {}, ANN)
        assert st == 200
        assert "unsubscribed" in p.texts("STOP")[0]
        n = len(tw.sent)
        st, c = d.json("POST", "/v1/agent/conversations/%s/release" % h["id"],
                       {"flow": "welcome", "node": "greet"}, ANN)
        assert st == 200, (st, c)
        d.wait_log(event="sms_reply_withheld", conversation="sms:%s:%s" % (frm, OURS),
                   reason="opted_out")
        assert tw.sent[n:] == [], tw.sent[n:]
    run(t)


def test_twilio_down_is_a_502():
    def t(d, tw):
        _, h = escalate(d, "+15551232222")
        st, _ = d.json("POST", "/v1/agent/conversations/%s/claim" % h["id"], {}, ANN)
        assert st == 200
        tw.close()  # nobody listens on its port any more
        st, e = say(d, h, "Hello")
        assert st == 502 and "did not answer" in e["error"]["message"], (st, e)
    run(t)


def test_a_reply_twilio_stopped_waiting_for_is_texted():
    """Twilio gives a webhook 15 s; a turn that takes longer (a slow
    backend) finds the request gone. Its reply is texted through the
    Messages API instead, from the number the customer wrote to."""
    import socket
    import urllib.parse

    def t(d, tw):
        frm = "+15551234444"
        p = Phone(Twilio(d, "/v1/sms/twilio"), frm=frm)
        p.texts("hi")
        params = sms_params("check booking SLOW56", "SM" + "5a" * 16, frm, OURS)
        url = "http://127.0.0.1:%d/v1/sms/twilio" % d.port
        body = urllib.parse.urlencode(params).encode()
        s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        s.sendall(("POST /v1/sms/twilio HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                   "Content-Type: application/x-www-form-urlencoded\r\n"
                   "X-Twilio-Signature: %s\r\nContent-Length: %d\r\n\r\n"
                   % (d.port, twilio_signature(TOKEN, url, params), len(body))).encode() + body)
        s.close()  # Twilio's timeout: it hangs up before the answer
        d.wait_log(event="sms_reply_sent_late", conversation="sms:%s:%s" % (frm, OURS))
        late = [m for m in tw.sent if m["To"] == frm]
        assert late and late[-1]["From"] == OURS and "SLOW56" in late[-1]["Body"], tw.sent
    run(t, slow_ms=1500)


if __name__ == "__main__":
    run_tests(globals())
