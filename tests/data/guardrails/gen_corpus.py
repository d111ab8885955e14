#!/usr/bin/env python3
"""Writes corpus.jsonl, the labelled guardrail evaluation corpus.

PII lines are generated from templates with numbers that are valid by
construction (Luhn, issuer prefixes, SSA ranges, IBAN mod-97, numbering
plans) and from look-alikes that are not PII by construction (failing
checksums, order and tracking numbers, dates, IP addresses, versions). The
labels come from how each line was built, never from the detectors. The
adversarial lines (injection, obfuscated abuse, topics, LLM output) are
written by hand in hand_written.jsonl and appended.

Each line: {"text": ..., "labels": [rule, ...], "stage": "input"|"output",
"note": ...}. A fixed seed makes the output reproducible:
    python3 gen_corpus.py > corpus.jsonl
"""
import json
import os
import random

R = random.Random(20261129)


def luhn_complete(prefix, length):
    digits = [int(c) for c in prefix]
    while len(digits) < length - 1:
        digits.append(R.randrange(10))
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    digits.append((10 - total % 10) % 10)
    return "".join(map(str, digits))


def luhn_ok(s):
    total = 0
    for i, c in enumerate(reversed(s)):
        d = int(c)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def group(s, sizes, sep):
    out, i = [], 0
    for n in sizes:
        out.append(s[i:i + n])
        i += n
    if i < len(s):
        out.append(s[i:])
    return sep.join(out)


CARD_KINDS = [("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15),
              ("6011", 16), ("65", 16), ("3530", 16), ("36", 14), ("4", 19)]
CARD_TEMPLATES = ["my card number is {}", "charge it to {} please", "card: {} exp 09/27",
                  "use {} for the payment", "it's {}", "{}", "the number on my visa is {}",
                  "ok here: {} cvv 123", "Card {} was declined again",
                  "can you update my card to {}?", "{} is the card I used",
                  "pay with {} thanks"]


def card_text(num):
    style = R.randrange(4)
    if style == 0:
        return num
    if len(num) == 15:
        return group(num, [4, 6, 5], R.choice([" ", "-"]))
    if len(num) == 14:
        return group(num, [4, 6, 4], " ")
    return group(num, [4, 4, 4, 4], R.choice([" ", "-"]))


def cards(out):
    for _ in range(70):
        prefix, length = R.choice(CARD_KINDS)
        num = luhn_complete(prefix, length)
        out.append((R.choice(CARD_TEMPLATES).format(card_text(num)), ["pii.card"], "card"))
    # look-alikes: failing Luhn, non-issuer prefixes, order and tracking numbers
    for _ in range(20):
        prefix, length = R.choice(CARD_KINDS)
        num = luhn_complete(prefix, length)
        bad = num[:-1] + str((int(num[-1]) + R.randrange(1, 10)) % 10)
        out.append((R.choice(CARD_TEMPLATES).format(card_text(bad)), [],
                    "card number failing Luhn"))
    orders = ["order #{}", "my order number is {}", "tracking {}", "invoice {} is wrong",
              "reference {}", "confirmation number {}", "booking ref {}", "ticket {}",
              "parcel {} hasn't arrived", "where is order {}?"]
    for _ in range(40):
        length = R.choice([12, 13, 14, 15, 16, 18, 20])
        first = R.choice("123456789")
        num = first + "".join(str(R.randrange(10)) for _ in range(length - 1))
        out.append((R.choice(orders).format(num), [], "order number"))
    for _ in range(15):
        num = luhn_complete(R.choice(["4", "51", "6011"]), 16)  # Luhn-valid, order context
        out.append((R.choice(orders[:6]).format(num), [], "Luhn-valid order number"))
    for _ in range(10):
        ms = str(R.randrange(1600000000000, 1800000000000))
        out.append(("timestamp {} in the log".format(ms), [], "epoch milliseconds"))
    for _ in range(8):
        usps = "9400 " + " ".join("".join(str(R.randrange(10)) for _ in range(4))
                                  for _ in range(4)) + " " + str(R.randrange(10, 99))
        out.append(("USPS tracking {}".format(usps), [], "USPS tracking number"))


def valid_ssn():
    while True:
        a = R.randrange(1, 900)
        if a != 666:
            return a, R.randrange(1, 100), R.randrange(1, 10000)


SSN_TEMPLATES = ["my ssn is {}", "SSN: {}", "social security number {}", "it's {}",
                 "{} is my social", "here you go {}", "ss# {}", "my SSN {} thanks"]


def ssns(out):
    for _ in range(50):
        a, g, s = valid_ssn()
        style = R.randrange(3)
        if style == 0:
            text = "%03d-%02d-%04d" % (a, g, s)
        elif style == 1:
            text = "%03d %02d %04d" % (a, g, s)
        else:
            text = "%03d%02d%04d" % (a, g, s)
            tmpl = R.choice(["my ssn is {}", "SSN: {}", "social security number {}",
                             "my social security number is {}"])
            out.append((tmpl.format(text), ["pii.ssn"], "ssn bare with context"))
            continue
        out.append((R.choice(SSN_TEMPLATES).format(text), ["pii.ssn"], "ssn"))
    for _ in range(20):
        a, g, s = valid_ssn()
        kind = R.randrange(5)
        if kind == 0:
            a = 0
        elif kind == 1:
            a = 666
        elif kind == 2:
            a = R.randrange(900, 1000)
        elif kind == 3:
            g = 0
        else:
            s = 0
        out.append((R.choice(SSN_TEMPLATES).format("%03d-%02d-%04d" % (a, g, s)), [],
                    "ssn invalid range"))
    dates = ["born {y}-{m:02d}-{d:02d}", "on {m:02d}-{d:02d}-{y}", "due {d:02d}/{m:02d}/{y}",
             "date {d:02d}.{m:02d}.{y}", "dob {m:02d} {d:02d} {y}", "{y}{m:02d}{d:02d}",
             "delivered {m}/{d}/{y}", "it expired {m:02d}-{y}"]
    for _ in range(40):
        y, m, d = R.randrange(1940, 2030), R.randrange(1, 13), R.randrange(1, 29)
        out.append((R.choice(dates).format(y=y, m=m, d=d), [], "date"))
    for _ in range(15):
        num = "%09d" % R.randrange(100000000, 999999999)
        out.append((R.choice(["ref {}", "account {}", "member id {}", "routing {}"]).format(num),
                    [], "nine digits without SSN context"))
    for _ in range(8):
        out.append(("zip code %05d-%04d" % (R.randrange(10000, 99999), R.randrange(1, 9999)),
                    [], "ZIP+4"))


IBAN_SPECS = {"DE": "8n10n", "GB": "4a14n", "FR": "10n11c2n", "NL": "4a10n", "ES": "20n",
              "IT": "1a10n12c", "BE": "12n", "CH": "5n12c", "AT": "16n", "PL": "24n",
              "SE": "20n", "IE": "4a14n", "PT": "21n", "NO": "11n", "DK": "14n"}


def bban(spec):
    out, num = [], ""
    for ch in spec:
        if ch.isdigit():
            num += ch
            continue
        n, num = int(num), ""
        for _ in range(n):
            if ch == "n":
                out.append(str(R.randrange(10)))
            elif ch == "a":
                out.append(chr(65 + R.randrange(26)))
            else:
                out.append(R.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))
    return "".join(out)


def iban_check(cc, b):
    s = b + cc + "00"
    v = int("".join(str(int(c, 36)) for c in s))
    return "%02d" % (98 - v % 97)


def ibans(out):
    tmpls = ["my IBAN is {}", "send it to {}", "iban: {}", "account {} please",
             "refund to {} thanks", "{}"]
    for _ in range(50):
        cc = R.choice(sorted(IBAN_SPECS))
        b = bban(IBAN_SPECS[cc])
        iban = cc + iban_check(cc, b) + b
        style = R.randrange(3)
        text = iban if style == 0 else (group(iban, [4] * 8, " ") if style == 1 else
                                        iban.lower())
        out.append((R.choice(tmpls).format(text), ["pii.iban"], "iban " + cc))
    for _ in range(15):
        cc = R.choice(sorted(IBAN_SPECS))
        b = bban(IBAN_SPECS[cc])
        good = iban_check(cc, b)
        bad = "%02d" % ((int(good) + R.randrange(1, 90)) % 97 + 2)
        if bad == good:
            bad = "%02d" % ((int(good) + 1) % 97 + 2)
        out.append((R.choice(tmpls).format(group(cc + bad + b, [4] * 8, " ")), [],
                    "iban bad check digits"))
    for t in ["the DE12 engine is loud", "plate GB22 ABC", "model FR14 2004 printer",
              "room NL91 is booked", "error code ES91 2100", "part number IT60X"]:
        out.append((t, [], "iban look-alike"))


NAMES = ["jane", "john.smith", "m.garcia", "li_wei", "anna-maria", "bob99", "k.o'neil",
         "priya.k+orders", "tom", "o.okafor"]
DOMAINS = ["example.com", "mail.example.org", "corp.example.co.uk", "example.net",
           "uni.example.edu", "example.io", "example.de"]


def emails(out):
    tmpls = ["my email is {}", "contact me at {}", "send it to {}.", "<{}>", "email: {}",
             "{} is my address", "reach me on {} or call", "it's {}, thanks"]
    for _ in range(50):
        addr = R.choice(NAMES).replace("'", "") + "@" + R.choice(DOMAINS)
        if R.randrange(5) == 0:
            addr = addr.upper()
        out.append((R.choice(tmpls).format(addr), ["pii.email"], "email"))
    spelled = ["{n} at {d} dot com", "{n} [at] {d} [dot] com", "{n}(at){d}(dot)org",
               "{n} at {d}.com"]
    for _ in range(12):
        n, d = R.choice(["jane", "john.smith", "tom", "li_wei"]), R.choice(["gmail", "example"])
        out.append(("my email is " + R.choice(spelled).format(n=n, d=d), ["pii.email"],
                    "spelled-out email"))
    for t in ["follow us @example", "meet @ 5pm", "I'm at home", "email me please",
              "price is 5@10", "look at the site.com page", "user at home dot", "a@b",
              "@@@", "send to support", "I'm at work dot dot dot", "rate: 3 @ $5 each",
              "we are at example", "tag @jane.doe in the post", "check foo@bar"]:
        out.append((t, [], "email look-alike"))


def phones(out):
    tmpls = ["call me on {}", "my number is {}", "phone: {}", "text {} when ready",
             "{}", "reach me at {}", "mobile {}", "you can ring {} after 5"]
    forms = []
    for _ in range(60):
        kind = R.randrange(8)
        a, e, s = R.randrange(201, 990), R.randrange(200, 999), R.randrange(0, 10000)
        if a % 100 == 11:
            a += 1
        if kind == 0:
            forms.append("+1%03d%03d%04d" % (a, e, s))
        elif kind == 1:
            forms.append("(%03d) %03d-%04d" % (a, e, s))
        elif kind == 2:
            forms.append("%03d-%03d-%04d" % (a, e, s))
        elif kind == 3:
            forms.append("%03d.%03d.%04d" % (a, e, s))
        elif kind == 4:
            forms.append("+44 20 %04d %04d" % (R.randrange(1000, 9999), R.randrange(10000)))
        elif kind == 5:
            forms.append("07%03d %06d" % (R.randrange(100, 999), R.randrange(1000000)))
        elif kind == 6:
            forms.append("06 %02d %02d %02d %02d" % tuple(R.randrange(100) for _ in range(4)))
        else:
            forms.append("+49 30 %08d" % R.randrange(10000000, 99999999))
    for f in forms:
        out.append((R.choice(tmpls).format(f), ["pii.phone"], "phone"))
    looks = ["version 10.2.3", "server 192.168.100.254", "netmask 255.255.255.0",
             "it costs 1,299.00", "meeting at 10:30-11:45", "555-1234", "room 4012",
             "qty 3 x 250", "score 3-2", "between 2019-2023", "order 4155552671",
             "tracking 2125550100", "ISBN 978-3-16-148410-0", "call 911", "pages 120-135",
             "code 1234567890", "serial 0123456789"]
    for t in looks:
        out.append((t, [], "phone look-alike"))


def main():
    out = []
    cards(out)
    ssns(out)
    ibans(out)
    emails(out)
    phones(out)
    for text, labels, note in out:
        print(json.dumps({"text": text, "labels": labels, "stage": "input", "note": note}))
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "hand_written.jsonl")) as f:
        for line in f:
            if line.strip():
                print(line.rstrip("\n"))


if __name__ == "__main__":
    main()
