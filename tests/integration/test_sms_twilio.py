"""The SMS channel (POST /v1/sms/twilio) against the real chorusd running the
example flows with the airline backend stub. Requests are built as Twilio
sends them (x-www-form-urlencoded, Twilio's field names) and signed with
Twilio's algorithm; replies are parsed as XML. Covers the signature (bad,
missing, wrong URL, token unset, public URL behind a proxy), numbered
choices answered by number, segmentation, STOP/START/HELP and synonyms,
opt-outs kept across a restart (and a STOP not saved answered 503) and
beyond sms.max_conversations, the last list read back after a restart
(and the texts that wait for it bounded), duplicate MessageSid (also a
retry of any text after a restart), XML escaping and bad forms."""

import base64
import contextlib
import hashlib
import hmac
import http.client
import itertools
import os
import sys
import urllib.parse
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, run_tests  # noqa: E402
from test_chat_rest import FLOWS, Backend  # noqa: E402

TOKEN = "test-auth-token-5b1e"
FORM = "application/x-www-form-urlencoded"


def twilio_signature(token, url, params):
    """Twilio's X-Twilio-Signature: HMAC-SHA1 over the URL and every POST
    parameter's name and value, sorted by name, base64."""
    data = url + "".join(k + v for k, v in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode("utf-8"), hashlib.sha1).digest()).decode()


class Twilio:
    """Plays Twilio's side of a webhook against a daemon."""

    def __init__(self, d, path, token=TOKEN, public=None):
        self.d, self.path, self.token = d, path, token
        self.public = public  # the base URL Twilio believes it calls

    def url(self):
        base = self.public or "http://127.0.0.1:%d" % self.d.port
        return base + self.path

    def post(self, params, signature=None, content_type=FORM, url=None, timeout=10.0):
        body = urllib.parse.urlencode(params).encode()
        sig = signature if signature is not None else twilio_signature(self.token, url or self.url(), params)
        headers = {"Content-Type": content_type, "I-Twilio-Idempotency-Token": "x"}
        if sig != "":
            headers["X-Twilio-Signature"] = sig
        return self.d.request("POST", self.path, body, headers, timeout=timeout)

    def twiml(self, params, **kw):
        status, headers, body = self.post(params, **kw)
        assert status == 200, (status, body)
        ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        assert ctype.startswith("text/xml"), ctype
        root = ET.fromstring(body)
        assert root.tag == "Response", body
        return root


def sms_params(body, sid, frm="+15551230001", to="+15559870000"):
    # the fields and order Twilio's Messaging webhook uses
    return [("ToCountry", "US"), ("ToState", "CA"), ("SmsMessageSid", sid), ("NumMedia", "0"),
            ("ToCity", ""), ("FromZip", "94105"), ("SmsSid", sid), ("FromState", "CA"),
            ("SmsStatus", "received"), ("FromCity", "SAN FRANCISCO"), ("Body", body),
            ("FromCountry", "US"), ("To", to), ("ToZip", ""), ("NumSegments", "1"),
            ("MessageSid", sid), ("AccountSid", "AC" + "0" * 32), ("From", frm),
            ("ApiVersion", "2010-04-01")]


# Twilio's MessageSids are unique: so are a test's, also across the
# daemons it restarts (the store remembers the ones it saw)
MESSAGE_SIDS = itertools.count(1)


class Phone:
    """One phone number texting the bot."""

    def __init__(self, tw, frm="+15551230001", to="+15559870000"):
        self.tw, self.frm, self.to = tw, frm, to

    def send(self, body, sid=None, **kw):
        sid = sid or "SMph%030x" % next(MESSAGE_SIDS)
        return self.tw.twiml(sms_params(body, sid, self.frm, self.to), **kw)

    def texts(self, body, **kw):
        return [m.text or "" for m in self.send(body, **kw).findall("Message")]


def daemon(backend, sms=None, env=None):
    e = {"CHORUS_BACKEND_URL": backend.url, "TWILIO_AUTH_TOKEN": TOKEN}
    e.update(env or {})
    cfg = {"sms": sms} if sms else None
    return Daemon(config=cfg, args=["--flows", FLOWS], env=e)


def with_daemon(fn, sms=None, env=None):
    be = Backend()
    try:
        with daemon(be, sms, env) as d:
            d.wait_log(event="flows_loaded", timeout=60)
            fn(d)
    finally:
        be.close()


def septets(s):
    ext = set("^{}\\[~]|\u20ac\f")
    return sum(2 if c in ext else 1 for c in s)


def test_conversation_numbered_choices_and_segments():
    def run(d):
        p = Phone(Twilio(d, "/v1/sms/twilio"))
        parts = p.texts("hi")
        whole = "\n".join(parts)
        assert "1. Booking status" in whole and "5. Talk to an agent" in whole, parts
        # the welcome with its menu is over 160 characters: concatenated parts
        assert len(parts) == 2, parts
        for part in parts:
            assert septets(part) <= 153, (len(part), part)
        # cut at a line, never inside an option
        assert parts[1].startswith("4. Refund status"), parts
        # "1" picks "Booking status"; the apostrophe came escaped and parses back
        assert p.texts("1") == ["Sure. What's your booking reference? It has six letters and digits, like ABC123."]
        # the SMS variant of the answer
        assert p.texts("ABC123") == ["ABC123: CH 101 LHR-JFK 12 Dec 09:40, confirmed."]
        # a number with no list pending is text for the flow, not an option
        assert p.texts("7") != []
        # a digit tapped as a keycap emoji picks its option too
        k = Phone(p.tw, frm="+15551230002")
        k.texts("hi")
        assert k.texts("1\ufe0f\u20e3") == [
            "Sure. What's your booking reference? It has six letters and digits, like ABC123."]
    with_daemon(run)


def test_bad_signatures_change_nothing():
    def run(d):
        tw = Twilio(d, "/v1/sms/twilio")
        p = Phone(tw)
        params = sms_params("STOP", "SMbad1")
        # wrong signature, no signature, signed for another URL, another token
        for kw in ({"signature": "AAAAAAAAAAAAAAAAAAAAAAAAAAA="}, {"signature": ""},
                   {"url": "http://127.0.0.1:1/v1/sms/twilio"}):
            status, _, body = tw.post(params, **kw)
            assert status == 403, (status, body)
            assert b"invalid_signature" in body
        other = Twilio(d, "/v1/sms/twilio", token="another-token")
        status, _, _ = other.post(params)
        assert status == 403
        # a tampered body under a signature made for the original
        good = twilio_signature(TOKEN, tw.url(), params)
        tampered = [(k, "HELP" if k == "Body" else v) for k, v in params]
        status, _, _ = tw.post(tampered, signature=good)
        assert status == 403
        # the URL in the refusal's log line is quoted: a forged Host (part
        # of the URL when sms.public_url is not set) adds no field to it
        forged = 'h" event=sms_opt_out x="'
        status, _, _ = d.request("POST", "/v1/sms/twilio", urllib.parse.urlencode(params).encode(),
                                 {"Content-Type": FORM, "Host": forged})
        assert status == 403
        line = d.wait_log(event="sms_signature_rejected", url="http://%s/v1/sms/twilio" % forged)
        assert "x" not in line, line
        # nothing was stored: the number is not opted out and SMbad1 is unseen
        root = tw.twiml(params)
        assert "unsubscribed" in root.find("Message").text
        d.wait_log(event="sms_signature_rejected")
        assert p.texts("hello") == []  # now opted out for real
    with_daemon(run)


def test_token_unset_rejects_everything():
    def run(d):
        tw = Twilio(d, "/v1/sms/twilio", token="")
        status, _, body = tw.post(sms_params("hi", "SM1"), signature="x" * 28)
        assert status == 403, body
    with_daemon(run, env={"TWILIO_AUTH_TOKEN": ""})


def test_public_url_behind_a_proxy():
    public = "https://bot.example.com/chorus"

    def run(d):
        # Twilio signs the URL it called; chorusd only sees the proxied path
        tw = Twilio(d, "/v1/sms/twilio", public=public)
        assert tw.twiml(sms_params("hi", "SMp1")).find("Message") is not None
        local = Twilio(d, "/v1/sms/twilio")
        status, _, _ = local.post(sms_params("hi", "SMp2"))
        assert status == 403
    with_daemon(run, sms={"public_url": public + "/"})


def test_query_string_is_signed():
    def run(d):
        tw = Twilio(d, "/v1/sms/twilio?tenant=a")
        assert tw.twiml(sms_params("hi", "SMq1")).find("Message") is not None
        status, _, _ = tw.post(sms_params("hi", "SMq2"), url="http://127.0.0.1:%d/v1/sms/twilio" % d.port)
        assert status == 403
    with_daemon(run)


def test_stop_start_help_and_synonyms():
    def run(d):
        tw = Twilio(d, "/v1/sms/twilio")
        a = Phone(tw, frm="+15550000001")
        texts = a.texts("STOP")
        assert len(texts) == 1 and "unsubscribed" in texts[0] and "START" in texts[0]
        # opted out: no reply to anything, and no turn
        assert a.texts("check my booking") == []
        assert a.texts("stop") == []  # a second STOP gets no second confirmation
        # HELP is always answered
        assert "STOP" in a.texts("help")[0]
        assert "resubscribed" in a.texts("start")[0]
        assert a.texts("hi") != []
        for word in ("Unsubscribe", "cancel", "END", "quit", "stopall", "STOP."):
            b = Phone(tw, frm="+1555%07d" % (hash(word) % 10 ** 7))
            assert "unsubscribed" in b.texts(word)[0], word
            assert b.texts("hello") == [], word
            # YES opts back in only from an opted-out number
            assert "resubscribed" in b.texts("yes" if word == "cancel" else "UNSTOP")[0]
        # the opt-out is per (From, To): the same phone to another number is fine
        c = Phone(tw, frm="+15550000001", to="+15559870001")
        assert c.texts("hi") != []
        assert "STOP" in Phone(tw, frm="+15550000009").texts("info")[0]
    with_daemon(run)


def turns_of(data_dir, frm, to="+15559870000"):
    """User turns the store holds for the (From, To) pair."""
    import sqlite3
    db = sqlite3.connect(os.path.join(data_dir, "chorus.db"))
    try:
        return db.execute("SELECT count(*) FROM turns t JOIN conversations c"
                          " ON c.id = t.conversation_id WHERE c.id LIKE ?"
                          " AND t.direction = 'in'", ("sms:%s:%s%%" % (frm, to),)).fetchone()[0]
    finally:
        db.close()


def inbound_texts(data_dir, frm, to="+15559870000"):
    """The texts of the pair's user turns in the store, oldest first: what
    each turn ran with (a number that picked an option is its value)."""
    import sqlite3
    db = sqlite3.connect(os.path.join(data_dir, "chorus.db"))
    try:
        return [r[0] for r in db.execute(
            "SELECT t.text FROM turns t JOIN conversations c ON c.id = t.conversation_id"
            " WHERE c.id LIKE ? AND t.direction = 'in' ORDER BY t.id", ("sms:%s:%s%%" % (frm, to),))]
    finally:
        db.close()


def test_opt_out_survives_a_restart():
    import shutil
    import tempfile
    data = tempfile.mkdtemp(prefix="chorus-sms-")
    be = Backend()
    try:
        d = daemon(be)
        d.data_dir = data  # outlives the daemon's own temporary directory
        with d:
            d.wait_log(event="flows_loaded", timeout=60)
            p = Phone(Twilio(d, "/v1/sms/twilio"), frm="+15550000011")
            assert p.texts("hi") != []
            assert "unsubscribed" in p.texts("STOP")[0]
            q = Phone(Twilio(d, "/v1/sms/twilio"), frm="+15550000012")
            assert "unsubscribed" in q.texts("STOP")[0]
            assert "resubscribed" in q.texts("START")[0]
        before = turns_of(data, "+15550000011")
        assert before >= 1, before
        d = daemon(be)
        d.data_dir = data
        with d:
            d.wait_log(event="sms_opt_outs_loaded", pairs="1")
            d.wait_log(event="flows_loaded", timeout=60)
            tw = Twilio(d, "/v1/sms/twilio")
            p = Phone(tw, frm="+15550000011")
            # still opted out after the restart: no reply and no turn
            assert p.texts("check my booking") == []
            assert p.texts("STOP") == []  # and no second confirmation
            assert turns_of(data, "+15550000011") == before
            # the pair that opted back in before the restart is served
            assert Phone(tw, frm="+15550000012").texts("hi") != []
            # START after the restart works, and is itself kept
            assert "resubscribed" in p.texts("START")[0]
            assert p.texts("hi") != []
        assert turns_of(data, "+15550000011") == before + 1
        d = daemon(be)
        d.data_dir = data
        with d:
            d.wait_log(event="sms_opt_outs_loaded", pairs="0")
    finally:
        be.close()
        shutil.rmtree(data, ignore_errors=True)


MENU_PICK = "Sure. What's your booking reference? It has six letters and digits, like ABC123."


def test_numbered_list_survives_a_restart():
    """The last numbered list is read back from the store when a pair the
    adapter does not hold answers by number: "1" after a restart is still
    option 1 of the menu sent before it, and a number after a reply without
    a list is text for the flow, as it is without a restart."""
    import shutil
    import tempfile
    data = tempfile.mkdtemp(prefix="chorus-sms-")
    be = Backend()

    def on_data(d):
        d.data_dir = data  # outlives the daemon's own temporary directory
        return d

    def phones(d):
        d.wait_log(event="flows_loaded", timeout=60)
        tw = Twilio(d, "/v1/sms/twilio")
        return tw, Phone(tw, frm="+15550040001"), Phone(tw, frm="+15550040002")
    try:
        with on_data(daemon(be)) as d:
            tw, menu, asked = phones(d)
            assert "1. Booking status" in "\n".join(menu.texts("hi"))
            assert "1. Booking status" in "\n".join(asked.texts("hi"))
            assert asked.texts("1") == [MENU_PICK]  # its last reply has no list
        with on_data(daemon(be)) as d:
            tw, menu, asked = phones(d)
            assert menu.texts("1") == [MENU_PICK]
            d.wait_log(event="sms_list_read", conversation="sms:+15550040001:+15559870000",
                       choices="5")
            # "2" answers the question asked before the restart, not the menu
            assert asked.texts("2") != []
            d.wait_log(event="sms_list_read", conversation="sms:+15550040002:+15559870000",
                       choices="0")
            assert inbound_texts(data, "+15550040002")[-1] == "2"
            assert inbound_texts(data, "+15550040001")[-1] == "Check my booking"
            # a pair the store never saw: its number is text for the flow
            fresh = Phone(tw, frm="+15550040003")
            assert fresh.texts("1") != [MENU_PICK]
            d.wait_log(event="sms_list_read", conversation="sms:+15550040003:+15559870000",
                       choices="0")
    finally:
        be.close()
        shutil.rmtree(data, ignore_errors=True)


def test_a_number_after_a_restart_answers_the_pairs_latest_conversation():
    """A pair that came back after its conversation ended has its later
    conversations under key#1, ...: the list read back after a restart is
    the latest one's, not the first's."""
    import shutil
    import tempfile
    data = tempfile.mkdtemp(prefix="chorus-sms-")
    be = Backend()

    def on_data(d):
        d.data_dir = data
        return d
    try:
        with on_data(daemon(be)) as d:
            d.wait_log(event="flows_loaded", timeout=60)
            p = Phone(Twilio(d, "/v1/sms/twilio"), frm="+15550040005")
            assert "1. Booking status" in "\n".join(p.texts("hi"))
            assert "Goodbye" in " ".join(p.texts("goodbye"))  # the first ends, no list last
            assert "1. Booking status" in "\n".join(p.texts("hi"))  # the second: a menu
        with on_data(daemon(be)) as d:
            d.wait_log(event="flows_loaded", timeout=60)
            p = Phone(Twilio(d, "/v1/sms/twilio"), frm="+15550040005")
            assert p.texts("1") == [MENU_PICK]
            d.wait_log(event="sms_list_read", conversation="sms:+15550040005:+15559870000",
                       choices="5")
            assert inbound_texts(data, "+15550040005")[-1] == "Check my booking"
    finally:
        be.close()
        shutil.rmtree(data, ignore_errors=True)


def bulk_training(path, per_intent=3000):
    """A training file of made-up utterances for the example flows' intents,
    enough that training the router on it keeps a thread busy for seconds."""
    import json
    import random
    rnd = random.Random(7)
    vocab = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(3, 8)))
             for _ in range(3000)]
    intents = ["baggage_allowance", "booking_status", "change_flight", "refund_status", "thanks",
               "how_are_you", "who_are_you", "goodbye", "travel_question", "greeting"]
    training = {i: [" ".join(rnd.choice(vocab) for _ in range(8)) for _ in range(per_intent)]
                for i in intents}
    with open(path + ".tmp", "w") as f:
        json.dump({"description": "made-up examples", "training": training}, f)
    os.rename(path + ".tmp", path)


def test_texts_waiting_for_the_list_are_bounded():
    """Texts of a pair whose last list is being read back from the store
    wait for the read, at most 8 of them: the next get 429
    conversation_busy with Retry-After, and their MessageSids are not
    remembered, so Twilio's retry runs; those that waited run in the order
    they came. The daemon has one thread-pool thread, and the read is held
    behind a reload that retrains the router."""
    import shutil
    import tempfile
    import threading
    import time
    data = tempfile.mkdtemp(prefix="chorus-sms-")
    flows = os.path.join(data, "flows")
    shutil.copytree(FLOWS, flows)
    be = Backend()

    def start():
        d = Daemon(config={"flows": {"reload_debounce_ms": 50}}, args=["--flows", flows],
                   env={"CHORUS_BACKEND_URL": be.url, "TWILIO_AUTH_TOKEN": TOKEN,
                        "UV_THREADPOOL_SIZE": "1"})
        d.data_dir = data  # outlives the daemon's own temporary directory
        return d
    try:
        with start() as d:
            d.wait_log(event="flows_loaded", timeout=60)
            phone = Phone(Twilio(d, "/v1/sms/twilio"), frm="+15550050001")
            assert "1. Booking status" in "\n".join(phone.texts("hi"))
        with start() as d:
            d.wait_log(event="flows_loaded", timeout=60)
            tw = Twilio(d, "/v1/sms/twilio")
            bulk_training(os.path.join(flows, "bulk.training.json"))
            d.wait_log(event="flows_changed", timeout=30)
            time.sleep(0.5)  # the load's scan is done: the pool's one thread trains
            results = [None] * 12
            # Every connection is open first and one thread writes the
            # requests in turn, so that they arrive in order however the
            # machine schedules the threads that then wait for the answers.
            conns = [http.client.HTTPConnection("127.0.0.1", d.port, timeout=120)
                     for _ in results]  # a sanitizer build trains slowly
            for c in conns:
                c.connect()
            for i, c in enumerate(conns):
                params = sms_params(str(1 + i % 5), "SM%032x" % (0x5000 + i), "+15550050001")
                c.request("POST", tw.path, body=urllib.parse.urlencode(params).encode(),
                          headers={"Content-Type": FORM,
                                   "X-Twilio-Signature": twilio_signature(TOKEN, tw.url(), params)})
                time.sleep(0.01)

            def answer(i):
                r = conns[i].getresponse()
                results[i] = (r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
                conns[i].close()
            threads = [threading.Thread(target=answer, args=(i,)) for i in range(len(results))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            busy = [i for i, (status, _, _) in enumerate(results) if status == 429]
            assert busy == [8, 9, 10, 11], [r[0] for r in results]
            for i in busy:
                status, headers, body = results[i]
                h = {k.lower(): v for k, v in headers.items()}
                assert h.get("retry-after") == "1", headers
                assert b"conversation_busy" in body, body
            for status, _, body in results[:8]:
                assert status == 200 and body.startswith(b"<?xml"), (status, body)
            d.wait_log(event="sms_list_read", conversation="sms:+15550050001:+15559870000",
                       choices="5")
            # in the order they came, each number the option of the menu
            # the customer had when they sent it
            options = ["Check my booking", "I want to change my flight",
                       "What is my baggage allowance", "Where is my refund", "Talk to a human"]
            ran = inbound_texts(data, "+15550050001")
            assert ran == ["hi"] + [options[i % 5] for i in range(8)], ran
            # Twilio retries a refused text: it runs, not taken for a duplicate
            status, _, body = tw.post(sms_params("2", "SM%032x" % (0x5000 + 8), "+15550050001"))
            assert status == 200, (status, body)
            assert inbound_texts(data, "+15550050001") == ran + ["2"]  # handed off: no list
    finally:
        be.close()
        shutil.rmtree(data, ignore_errors=True)


def read_responses(sock, n, timeout=30):
    """The first n HTTP/1.1 responses on sock: [(status, body)]."""
    import time
    sock.settimeout(timeout)
    buf, out, deadline = b"", [], time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        head_end = buf.find(b"\r\n\r\n")
        if head_end >= 0:
            head = buf[:head_end].decode("latin-1").split("\r\n")
            length = next(int(h.split(":", 1)[1]) for h in head
                          if h.lower().startswith("content-length:"))
            if len(buf) >= head_end + 4 + length:
                out.append((int(head[0].split()[1]), buf[head_end + 4:head_end + 4 + length]))
                buf = buf[head_end + 4 + length:]
                continue
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    return out


def test_a_pipelined_text_evicting_the_pair_whose_texts_waited():
    """The texts that waited for a pair's list run once the read ends. One
    that is answered at once (here a turn the runtime refuses: a From so
    long the key is over 512 bytes) lets the next request on its connection
    run from inside that answer; with room for one conversation, that
    request's new pair evicts the waiting pair, which must stay held until
    its last waiting text is done (the sanitizer build caught a read of the
    freed conversation)."""
    import socket
    be = Backend()
    cfg = {"sms": {"max_conversations": 1}, "http": {"max_pipelined": 1}}
    try:
        with Daemon(config=cfg, args=["--flows", FLOWS],
                    env={"CHORUS_BACKEND_URL": be.url, "TWILIO_AUTH_TOKEN": TOKEN}) as d:
            d.wait_log(event="flows_loaded", timeout=60)
            url = "http://127.0.0.1:%d/v1/sms/twilio" % d.port

            def raw(params):
                body = urllib.parse.urlencode(params).encode()
                return ("POST /v1/sms/twilio HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                        "Content-Type: %s\r\nX-Twilio-Signature: %s\r\n"
                        "Content-Length: %d\r\n\r\n"
                        % (d.port, FORM, twilio_signature(TOKEN, url, params), len(body))
                        ).encode() + body
            # a bare number from a pair new to the table waits for the read
            waits = raw(sms_params("2", "SMpipe1", frm="+1" + "5" * 600))
            evicts = raw(sms_params("hi", "SMpipe2", frm="+15550060001"))
            with socket.create_connection(("127.0.0.1", d.port), timeout=30) as s:
                s.sendall(waits + evicts)
                got = read_responses(s, 2)
            assert [st for st, _ in got] == [400, 200], got
            assert b"conversation key" in got[0][1], got
            assert b"1. Booking status" in got[1][1], got
            assert d.proc.poll() is None
            # the pair is served as usual afterwards
            assert Phone(Twilio(d, "/v1/sms/twilio"), frm="+15550060002").texts("hi") != []
    finally:
        be.close()


def test_opt_outs_do_not_fill_the_table():
    """sms.max_conversations bounds the conversations (numbered choices) the
    adapter keeps; opt-outs are kept apart and never count. More pairs than
    that opt out, and newer ones still keep their menus; the least recent
    conversation goes (its menu is read back from the store when it texts
    again); every opted-out pair stays silent once evicted and after a
    restart."""
    import shutil
    import tempfile
    data = tempfile.mkdtemp(prefix="chorus-sms-")
    be = Backend()
    sms = {"max_conversations": 5}
    stopped = ["+1555001%04d" % i for i in range(7)]  # more than the table holds
    try:
        d = daemon(be, sms)
        d.data_dir = data
        with d:
            d.wait_log(event="flows_loaded", timeout=60)
            tw = Twilio(d, "/v1/sms/twilio")
            for frm in stopped:
                assert "unsubscribed" in Phone(tw, frm=frm).texts("STOP")[0], frm
            live = [Phone(tw, frm="+1555002%04d" % i) for i in range(5)]
            for p in live:
                assert "1. Booking status" in "\n".join(p.texts("hi"))
            # the oldest of five live menus is still held: "1" picks option 1
            # (when opt-outs filled the table it had been evicted already)
            assert live[0].texts("1") == [MENU_PICK]
            # a sixth conversation evicts the least recent one, live[1]; its
            # menu comes back from the store, so its "1" is still option 1
            assert "1. Booking status" in "\n".join(Phone(tw, frm="+15550029999").texts("hi"))
            assert live[1].texts("1") == [MENU_PICK]
            d.wait_log(event="sms_list_read", conversation="sms:%s:%s" % (live[1].frm, live[1].to))
            # evicted or not, every opted-out pair stays opted out
            for frm in stopped:
                p = Phone(tw, frm=frm)
                assert p.texts("check my booking") == [], frm
                assert p.texts("STOP") == [], frm  # no second confirmation
                assert "STOP" in p.texts("help")[0], frm  # HELP is always answered
            assert turns_of(data, stopped[0]) == 0
        d = daemon(be, sms)
        d.data_dir = data
        with d:
            d.wait_log(event="sms_opt_outs_loaded", pairs=str(len(stopped)))
            d.wait_log(event="flows_loaded", timeout=60)
            tw = Twilio(d, "/v1/sms/twilio")
            # the opt-outs read back take no room: five new menus are held
            live = [Phone(tw, frm="+1555003%04d" % i) for i in range(5)]
            for p in live:
                assert "1. Booking status" in "\n".join(p.texts("hi"))
            assert live[0].texts("1") == [MENU_PICK]
            for frm in stopped:
                assert Phone(tw, frm=frm).texts("hello") == [], frm
            # START still opts back in, and the pair is served again
            p = Phone(tw, frm=stopped[3])
            assert "resubscribed" in p.texts("START")[0]
            assert p.texts("hi") != []
        assert turns_of(data, stopped[0]) == 0 and turns_of(data, stopped[3]) == 1
    finally:
        be.close()
        shutil.rmtree(data, ignore_errors=True)


def refuse_opt_outs(data, frm):
    """Makes the store in data refuse frm's opt-out rows (a trigger, dropped
    with DROP TRIGGER refuse_stop); the open connection to it."""
    import sqlite3
    db = sqlite3.connect(os.path.join(data, "chorus.db"), timeout=10)
    db.execute("CREATE TRIGGER refuse_stop BEFORE INSERT ON sms_opt_outs"
               " WHEN NEW.from_number = '%s'"
               " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END" % frm)
    db.commit()
    return db


def test_stop_not_saved_is_503_and_the_retry_confirms():
    import shutil
    import tempfile
    data = tempfile.mkdtemp(prefix="chorus-sms-")
    be = Backend()
    frm = "+15550000021"
    try:
        d = daemon(be)
        d.data_dir = data
        with d:
            d.wait_log(event="flows_loaded", timeout=60)
            db = refuse_opt_outs(data, frm)
            tw = Twilio(d, "/v1/sms/twilio")
            stop = sms_params("STOP", "SMstopfail00000000000000000000001", frm)
            status, headers, body = tw.post(stop)
            # not saved: no confirmation, and Twilio is asked to retry
            assert status == 503 and b"opt-out could not be saved" in body, (status, body)
            assert {k.lower(): v for k, v in headers.items()}.get("retry-after") == "5", headers
            d.wait_log(event="sms_opt_not_saved", stop="1")
            p = Phone(tw, frm=frm)
            assert p.texts("check my booking") == []  # the STOP holds in memory meanwhile
            db.execute("DROP TRIGGER refuse_stop")
            db.commit()
            db.close()
            # Twilio's retry (same MessageSid) runs and gets the one confirmation
            texts = [m.text for m in tw.twiml(stop).findall("Message")]
            assert len(texts) == 1 and "unsubscribed" in texts[0], texts
        d = daemon(be)
        d.data_dir = data
        with d:
            d.wait_log(event="sms_opt_outs_loaded", pairs="1")
    finally:
        be.close()
        shutil.rmtree(data, ignore_errors=True)


def test_a_stop_not_saved_is_written_again_without_twilio():
    """Twilio retries a 5xx only when its webhook URL asks it to (#rp=5xx),
    and for 15 s at most: a STOP whose write failed is not left to that
    retry. It is in force in memory at once (503 to Twilio, never 200), and
    the adapter writes it again itself until the store takes it, so a
    restart afterwards still knows it. Twilio's retry of it, if one comes,
    still gets the one confirmation."""
    import shutil
    import sqlite3
    import tempfile
    import time
    data = tempfile.mkdtemp(prefix="chorus-sms-")
    be = Backend()
    frm = "+15550000022"
    try:
        d = daemon(be)
        d.data_dir = data
        with d:
            d.wait_log(event="flows_loaded", timeout=60)
            db = refuse_opt_outs(data, frm)
            tw = Twilio(d, "/v1/sms/twilio")
            stop = sms_params("STOP", "SMstopfail00000000000000000000002", frm)
            status, _, body = tw.post(stop)
            assert status == 503 and b"opt-out could not be saved" in body, (status, body)
            d.wait_log(event="sms_opt_not_saved", stop="1")
            # the adapter's own write fails too while the store refuses
            deadline = time.monotonic() + 10
            while len(d.log_lines(event="sms_opt_not_saved", stop="1")) < 2:
                assert time.monotonic() < deadline, d.stderr_text()
                time.sleep(0.05)
            assert Phone(tw, frm=frm).texts("check my booking") == []  # in force meanwhile
            db.execute("DROP TRIGGER refuse_stop")
            db.commit()
            db.close()
            # no retry from Twilio: the adapter's next write makes it durable
            d.wait_log(event="sms_opt_out_saved", conversation="sms:%s:+15559870000" % frm,
                       late="1", timeout=15)
            db = sqlite3.connect(os.path.join(data, "chorus.db"), timeout=10)
            try:
                rows = db.execute("SELECT opted_out FROM sms_opt_outs WHERE from_number = ?",
                                  (frm,)).fetchall()
            finally:
                db.close()
            assert rows == [(1,)], rows
            # a late retry of the STOP from Twilio still gets its one confirmation
            texts = [m.text for m in tw.twiml(stop).findall("Message")]
            assert len(texts) == 1 and "unsubscribed" in texts[0], texts
            assert tw.twiml(stop).findall("Message") == []
        d = daemon(be)
        d.data_dir = data
        with d:
            d.wait_log(event="sms_opt_outs_loaded", pairs="1")
            d.wait_log(event="flows_loaded", timeout=60)
            assert Phone(Twilio(d, "/v1/sms/twilio"), frm=frm).texts("hi") == []
    finally:
        be.close()
        shutil.rmtree(data, ignore_errors=True)


def test_duplicate_message_sid_is_one_turn():
    def run(d):
        p = Phone(Twilio(d, "/v1/sms/twilio"), frm="+15550000002")
        first = p.texts("check my booking", sid="SMdup0000000000000000000000000001")
        assert "booking reference" in first[0]
        # Twilio retries with the same MessageSid: empty answer, no second turn
        again = p.send("check my booking", sid="SMdup0000000000000000000000000001")
        assert again.findall("Message") == []
        d.wait_log(event="sms_duplicate")
        # the flow is still waiting for the reference (one turn was taken)
        assert p.texts("ABC123") == ["ABC123: CH 101 LHR-JFK 12 Dec 09:40, confirmed."]
    with_daemon(run)


def test_a_retry_after_a_restart_is_one_turn():
    """Each turn keeps its MessageSid (turns.client_id). Twilio's retry of
    a text whose turn ran before a restart (its answer lost with the
    daemon) is known once the pair's record is read back: an empty
    <Response/>, no second turn and no second reply."""
    import shutil
    import sqlite3
    import tempfile
    data = tempfile.mkdtemp(prefix="chorus-sms-")
    be = Backend()
    frm, sid = "+15550070001", "SMretry000000000000000000000000001"

    def on_data(d):
        d.data_dir = data  # outlives the daemon's own temporary directory
        return d
    try:
        with on_data(daemon(be)) as d:
            d.wait_log(event="flows_loaded", timeout=60)
            p = Phone(Twilio(d, "/v1/sms/twilio"), frm=frm)
            assert "1. Booking status" in "\n".join(p.texts("hi"))
            assert p.texts("1", sid=sid) == [MENU_PICK]
        db = sqlite3.connect(os.path.join(data, "chorus.db"))
        try:
            ids = [r[0] for r in db.execute(
                "SELECT client_id FROM turns WHERE conversation_id LIKE ? AND direction = 'in'"
                " ORDER BY seq", ("sms:%s:%%" % frm,))]
        finally:
            db.close()
        assert len(ids) == 2 and ids[1] == sid, ids
        before = inbound_texts(data, frm)
        with on_data(daemon(be)) as d:
            d.wait_log(event="flows_loaded", timeout=60)
            p = Phone(Twilio(d, "/v1/sms/twilio"), frm=frm)
            assert p.texts("1", sid=sid) == []
            d.wait_log(event="sms_duplicate", message_sid=sid, source="store")
            assert inbound_texts(data, frm) == before
            # and the memory of it: a second retry is a duplicate too
            assert p.texts("1", sid=sid) == []
            # the flow still waits for the reference the first turn asked for
            assert p.texts("ABC123") == ["ABC123: CH 101 LHR-JFK 12 Dec 09:40, confirmed."]
            assert inbound_texts(data, frm) == before + ["ABC123"]
    finally:
        be.close()
        shutil.rmtree(data, ignore_errors=True)


def test_a_text_retried_after_a_restart_is_one_turn():
    """A retry after a restart is known whatever its text, not only when it
    is a bare number that makes the adapter read the pair's record: every
    text whose MessageSid the adapter has not seen since start is looked up
    among the pair's stored turns (turns.client_id) before its turn runs.
    Also when the pair texted something new after the restart, before the
    retry came, and when the retried turn is in an earlier conversation of
    the pair than its latest."""
    import shutil
    import tempfile
    data = tempfile.mkdtemp(prefix="chorus-sms-")
    be = Backend()
    frm, sid = "+15550070011", "SMretry000000000000000000000000011"
    other, other_sid = "+15550070012", "SMretry000000000000000000000000012"

    def on_data(d):
        d.data_dir = data  # outlives the daemon's own temporary directory
        return d
    try:
        with on_data(daemon(be)) as d:
            d.wait_log(event="flows_loaded", timeout=60)
            tw = Twilio(d, "/v1/sms/twilio")
            p, q = Phone(tw, frm=frm), Phone(tw, frm=other)
            assert "booking reference" in p.texts("check my booking", sid=sid)[0]
            assert "booking reference" in q.texts("check my booking", sid=other_sid)[0]
        before = inbound_texts(data, frm)
        assert before == ["check my booking"], before
        with on_data(daemon(be)) as d:
            d.wait_log(event="flows_loaded", timeout=60)
            tw = Twilio(d, "/v1/sms/twilio")
            p, q = Phone(tw, frm=frm), Phone(tw, frm=other)
            # Twilio's retry of the free text that ran before the restart
            assert p.texts("check my booking", sid=sid) == []
            d.wait_log(event="sms_duplicate", message_sid=sid, source="store")
            assert inbound_texts(data, frm) == before
            # the flow still waits for the reference the first turn asked for
            assert p.texts("ABC123") == ["ABC123: CH 101 LHR-JFK 12 Dec 09:40, confirmed."]
            # the other pair texts something new first; its retry comes after
            assert q.texts("ABC123") == ["ABC123: CH 101 LHR-JFK 12 Dec 09:40, confirmed."]
            assert q.texts("check my booking", sid=other_sid) == []
            d.wait_log(event="sms_duplicate", message_sid=other_sid, source="store")
            assert inbound_texts(data, other) == ["check my booking", "ABC123"]
            # a new text still runs
            assert p.texts("thanks") != []
            assert inbound_texts(data, frm) == before + ["ABC123", "thanks"]
    finally:
        be.close()
        shutil.rmtree(data, ignore_errors=True)


def test_an_idle_timeout_forgets_the_numbered_list():
    """A conversation that ends by idle timeout ends with a goodbye that
    has no list (recorded, not texted): a number after it is text for the
    flow, as it is after a restart (the list read back from the store is
    the goodbye's), not an option of the menu sent before."""
    import json
    import shutil
    import sqlite3
    import tempfile
    import time
    data = tempfile.mkdtemp(prefix="chorus-sms-")
    flows = os.path.join(data, "flows")
    shutil.copytree(FLOWS, flows)
    with open(os.path.join(flows, "settings.json")) as f:
        settings = json.load(f)
    settings["settings"]["idle_timeout_s"] = 10  # the least a flow set may say
    with open(os.path.join(flows, "settings.json"), "w") as f:
        json.dump(settings, f)
    be = Backend()
    frm = "+15550080001"
    try:
        with Daemon(args=["--flows", flows],
                    env={"CHORUS_BACKEND_URL": be.url, "TWILIO_AUTH_TOKEN": TOKEN}) as d:
            d.wait_log(event="flows_loaded", timeout=60)
            p = Phone(Twilio(d, "/v1/sms/twilio"), frm=frm)
            assert "1. Booking status" in "\n".join(p.texts("hi"))
            db = sqlite3.connect(os.path.join(d.data_dir, "chorus.db"), timeout=10)
            try:
                deadline = time.monotonic() + 60
                while db.execute("SELECT count(*) FROM conversations WHERE id LIKE ?"
                                 " AND ended_us IS NOT NULL", ("sms:%s:%%" % frm,)
                                 ).fetchone()[0] == 0:
                    assert time.monotonic() < deadline, "the conversation did not time out"
                    time.sleep(0.25)
            finally:
                db.close()
            p.texts("1")
            assert inbound_texts(d.data_dir, frm) == ["hi", "1"], inbound_texts(d.data_dir, frm)
    finally:
        be.close()
        shutil.rmtree(data, ignore_errors=True)


def test_bad_requests():
    def run(d):
        tw = Twilio(d, "/v1/sms/twilio")
        status, _, body = tw.post(sms_params("hi", "SM1"), content_type="application/json")
        assert status == 415, body
        no_from = [(k, v) for k, v in sms_params("hi", "SM2") if k != "From"]
        status, _, body = tw.post(no_from)
        assert status == 400 and b"From" in body, body
        status, _, body = d.request("POST", "/v1/sms/twilio", b"Body=%zz&From=1",
                                    {"Content-Type": FORM, "X-Twilio-Signature": "x"})
        assert status == 400 and b"invalid_form" in body, body
        status, _, _ = d.request("GET", "/v1/sms/twilio")
        assert status == 405
    with_daemon(run)


def test_unicode_reply_and_message_escaping():
    def run(d):
        p = Phone(Twilio(d, "/v1/sms/twilio"), frm="+15550000003")
        # a user text full of XML specials round-trips through the flow safely
        root = p.send("<b>&amp; \"hi\" 'there'</b> \u2603")
        assert root.findall("Message"), ET.tostring(root)
    with_daemon(run)


@contextlib.contextmanager
def with_slow_backend(slow_ms):
    """A daemon and its backend, which answers SLOW references after slow_ms."""
    be = Backend(slow_ms=slow_ms)
    try:
        with daemon(be) as d:
            d.wait_log(event="flows_loaded", timeout=60)
            yield d, be
    finally:
        be.close()


def test_replies_leave_in_order_per_conversation():
    import threading
    import time
    with with_slow_backend(600) as (d, be):
        p = Phone(Twilio(d, "/v1/sms/twilio"), frm="+15550000005")
        done = {}

        def send(text):
            done[text] = p.texts(text)

        # the first text waits on a slow backend; the second, sent while
        # it runs, is queued behind it and answered after it
        first = threading.Thread(target=send, args=("check booking SLOW12",))
        first.start()
        be.wait_request("/bookings/SLOW12")
        second = threading.Thread(target=send, args=("thanks",))
        second.start()
        first.join(30)
        second.join(30)
        # the order the daemon wrote the replies in (its request log, in
        # completion order); the client threads may wake in either order
        # (access lines are flushed in batches, so wait for both)
        deadline = time.monotonic() + 10
        while True:
            rids = [line["rid"] for line in d.log_lines(event="request", path="/v1/sms/twilio")]
            if len(rids) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert len(rids) == 2 and rids == sorted(rids), rids
        assert "SLOW12" in " ".join(done["check booking SLOW12"]), done
        assert done["thanks"] != [], done
        # another number is not held up by this conversation
        other = Phone(Twilio(d, "/v1/sms/twilio"), frm="+15550000006")
        assert other.texts("hi") != []


def test_a_stop_while_a_turn_runs_withholds_its_reply():
    """Carriers require nothing after the STOP confirmation: a turn still
    running when STOP arrives answers its webhook with no message."""
    import threading
    with with_slow_backend(800) as (d, be):
        p = Phone(Twilio(d, "/v1/sms/twilio"), frm="+15550000007")
        done = {}
        first = threading.Thread(
            target=lambda: done.setdefault("slow", p.texts("check booking SLOW34")))
        first.start()
        be.wait_request("/bookings/SLOW34")
        texts = p.texts("STOP")
        assert len(texts) == 1 and "unsubscribed" in texts[0], texts
        first.join(30)
        assert done["slow"] == [], done
        d.wait_log(event="sms_reply_withheld", reason="opted_out")


if __name__ == "__main__":
    run_tests(globals())
