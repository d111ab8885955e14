"""Synthetic transcripts with a known structure, written straight into a
chorus database whose schema the real store created: the fixture the
flywheel tests (chorusctl learn, transcripts --worst) and bench/learn.sh
share. Planted in it: one unmet need (pets in the cabin) that broke most of
its conversations and cost agents time, a bigger but harmless one (weather
questions, contained), scattered noise, and ordinary understood turns."""
import random
import sqlite3

PETS = ["dog", "cat", "puppy", "kitten", "rabbit", "hamster", "parrot"]
PET_TEMPLATES = [
    "can I bring my {p} on the plane", "can my {p} travel in the cabin with me",
    "do you allow {p}s on board", "how much does it cost to fly with a {p}",
    "I want to travel with my {p}", "is it ok to take my {p} on the flight",
    "pet policy for {p}s in the cabin", "my {p} needs to come with me on the plane",
]
CITIES = ["paris", "london", "rome", "madrid", "berlin", "lisbon", "oslo", "vienna"]
WEATHER_TEMPLATES = [
    "what's the weather like in {c}", "will it rain in {c} tomorrow",
    "weather forecast for {c}", "is it sunny in {c} this week",
]
NOISE_WORDS = ("apple orange violin tractor galaxy pencil marble thunder velvet copper "
               "harbor meadow lantern puzzle saddle timber walnut zebra quartz ribbon "
               "canyon falcon glacier hammock igloo jasmine kettle lagoon mosaic nectar "
               "oyster pepper quiver raven sphinx tulip umbrella vortex willow yodel").split()

T0 = 1_790_000_000_000_000  # a fixed start (µs), so runs repeat


class Writer:
    """Appends conversations to an open connection (one transaction)."""

    def __init__(self, db):
        self.db = db
        self.n = 0
        self.convs, self.turns, self.events, self.handoffs = [], [], [], []

    def conversation(self, channel, flow, outcome, turns, handle_s=None, reason=None):
        """turns: [(direction, text, intent, confidence, oos, node, fallback)]."""
        cid = "synth-%07d" % self.n
        start = T0 + self.n * 10_000_000
        self.n += 1
        end = None if outcome == "active" else start + 60_000_000
        self.convs.append((cid, channel, flow, start, end, outcome, reason))
        for seq, (direction, text, intent, conf, oos, node, fallback) in enumerate(turns, 1):
            ts = start + seq * 1_000_000
            self.turns.append((cid, seq, direction, ts, text, intent, conf, oos, node, channel,
                               2000 if direction == "out" else None))
            if fallback:
                self.events.append((cid, seq + 1, ts, "fallback", flow, "ok", None))
        if handle_s is not None:  # a person took it on the desk: claimed, then closed
            claimed = start + 120_000_000
            self.handoffs.append((cid, cid, "customer-care", channel, reason or "fallback",
                                  "closed", "ann", "resolved", start, claimed,
                                  claimed + int(handle_s * 1e6), claimed + int(handle_s * 1e6)))
        if len(self.turns) > 50_000:
            self.flush()

    def flush(self):
        c = self.db
        c.executemany("INSERT INTO conversations (id, channel, flow, started_us, ended_us,"
                      " outcome, escalation_reason) VALUES (?,?,?,?,?,?,?)", self.convs)
        c.executemany("INSERT INTO turns (conversation_id, seq, direction, ts_us, text, intent,"
                      " confidence, oos, node, channel, latency_us)"
                      " VALUES (?,?,?,?,?,?,?,?,?,?,?)", self.turns)
        c.executemany("INSERT INTO events (conversation_id, turn_seq, ts_us, kind, name, status,"
                      " duration_us) VALUES (?,?,?,?,?,?,?)", self.events)
        c.executemany("INSERT INTO handoffs (conversation_id, key, queue, channel, reason, state,"
                      " agent, disposition, entered_us, claimed_us, done_us, updated_us)"
                      " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", self.handoffs)
        self.convs, self.turns, self.events, self.handoffs = [], [], [], []


def unhandled(text, oos, node="sorry"):
    return [("in", text, None, None, 1 if oos else 0, None, 0 if oos else 1),
            ("out", "Sorry, I didn't understand that.", None, None, 0, node, 0)]


def understood(rng):
    intent = rng.choice(["booking_status", "baggage_allowance", "refund_status"])
    return [("in", "check my " + intent.split("_")[0], intent, 0.6 + 0.4 * rng.random(), 0,
             None, 0), ("out", "Sure.", None, None, 0, "answer", 0)]


def populate(path, planted=120, decoy=200, noise=150, understood_convs=400, seed=7,
             extra_turn_pairs=0):
    """Writes the fixture into the database at path (schema already there).
    Returns what was planted, for the assertions."""
    rng = random.Random(seed)
    db = sqlite3.connect(path)
    db.execute("BEGIN")
    w = Writer(db)
    channels = ["web", "sms", "voice", "chat"]
    for i in range(planted):
        text = rng.choice(PET_TEMPLATES).format(p=rng.choice(PETS))
        escalated = i % 10 < 8
        w.conversation(rng.choice(channels), "fallback", "escalated" if escalated else "abandoned",
                       unhandled(text, oos=True), handle_s=600 if escalated else None,
                       reason="fallback" if escalated else None)
    for i in range(decoy):
        text = rng.choice(WEATHER_TEMPLATES).format(c=rng.choice(CITIES))
        w.conversation(rng.choice(channels), "fallback", "contained",
                       unhandled(text, oos=False))
    for i in range(noise):
        text = " ".join(rng.sample(NOISE_WORDS, 3))
        w.conversation(rng.choice(channels), "fallback", rng.choice(["contained", "abandoned"]),
                       unhandled(text, oos=bool(i % 2)))
    # understood conversations; some abandoned at the booking reference prompt
    for i in range(understood_convs):
        turns = understood(rng)
        outcome = "contained"
        if i % 5 == 0:
            turns[1] = ("out", "What's your booking reference?", None, None, 0, "ask_ref", 0)
            outcome = "abandoned"
        w.conversation("web", "booking_status", outcome, turns)
    # bulk understood turns for the benchmark's volume
    per_conv = 20
    for i in range(0, extra_turn_pairs, per_conv // 2):
        turns = []
        for _ in range(per_conv // 2):
            turns += understood(rng)
        w.conversation(rng.choice(channels), "booking_status", "contained", turns)
    w.flush()
    db.commit()
    db.close()
    return {"planted": planted, "decoy": decoy, "noise": noise}
