"""chorusctl nlu eval as a user runs it on their own data: the same labelled
utterances as CSV (quoted, CRLF), JSON lines and CLINC JSON give the same
report; --json carries the documented keys; a malformed file, an empty
test set and a threshold outside 0..1 are refused, a file with its file and
line, all with a nonzero exit; a data set with no out-of-scope
examples to tune on has its confidence calibrated and its threshold kept,
and says so."""
import csv
import io
import json
import os
import subprocess
import tempfile

CTL = os.environ["CHORUSCTL"]

INTENTS = {
    "book_flight": ["book a flight to {}", "i need a plane ticket to {}", "fly me to {} next week",
                    "reserve a seat on a flight to {}", "get me a flight to {}, please"],
    "weather": ["what's the weather in {}", "will it rain in {} tomorrow", "is it hot in {}",
                "forecast for {} this weekend", "how cold is it in {}"],
    "hotel": ["find me a hotel in {}", "book a room in {}", "i need somewhere to stay in {}",
              "cheap hotels in {}", "reserve a hotel room in {} for two nights"],
}
CITIES = ["paris", "rome", "berlin", "madrid", "lisbon", "oslo", "vienna", "prague"]
OOS = ["tell me a joke", "who won the football game", "what is the meaning of life",
       "sing me a song", "how do magnets work", "what is two plus two", "play some music",
       "recommend a good movie", "how tall is mount everest", "translate hello into spanish",
       "set an alarm for seven", "how old is the universe"]


def split(rows, part):
    """Every example whose index modulo 4 is part 0-1 (train), 2 (val), 3 (test)."""
    keep = (0, 1) if part == "train" else (2,) if part == "val" else (3,)
    return [r for i, r in enumerate(rows) if i % 4 in keep]


def dataset(with_oos=True):
    rows = [(t.format(c), intent) for intent, ts in INTENTS.items() for t in ts for c in CITIES]
    if with_oos:
        rows += [(t, "oos") for t in OOS]
    return rows


def write_csv(path, rows):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["text", "label"])
    w.writerows(rows)
    with open(path, "w", newline="") as f:
        f.write(buf.getvalue())


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for text, label in rows:
            f.write(json.dumps({"text": text, "label": label}) + "\n")


def write_clinc(path, rows):
    doc = {}
    for part in ("train", "val", "test"):
        sub = split(rows, part)
        doc[part] = [[t, l] for t, l in sub if l != "oos"]
        doc["oos_" + part] = [[t, l] for t, l in sub if l == "oos"]
    with open(path, "w") as f:
        json.dump(doc, f)


def ctl(*args, expect=0):
    p = subprocess.run([CTL] + list(args), capture_output=True, text=True)
    assert p.returncode == expect, (args, p.returncode, p.stdout, p.stderr)
    return p


def evaluate(*args):
    return json.loads(ctl("nlu", "eval", "--json", *args).stdout)


def test_formats_agree_and_keys():
    tmp = tempfile.mkdtemp(prefix="chorus-nlu-eval-")
    rows = dataset()
    files = {}
    for part in ("train", "val", "test"):
        files["csv", part] = os.path.join(tmp, part + ".csv")
        write_csv(files["csv", part], split(rows, part))
        files["jsonl", part] = os.path.join(tmp, part + ".jsonl")
        write_jsonl(files["jsonl", part], split(rows, part))
    clinc = os.path.join(tmp, "data.json")
    write_clinc(clinc, rows)
    reports = [evaluate("--train", files[fmt, "train"], "--val", files[fmt, "val"],
                        "--test", files[fmt, "test"]) for fmt in ("csv", "jsonl")]
    reports.append(evaluate("--train", clinc, "--val", clinc, "--test", clinc))
    for key in ("in_scope_accuracy", "oos_recall", "train_seconds", "classify_us_p50",
                "classify_us_p99", "threshold", "temperature", "macro_f1", "tune_folds"):
        assert key in reports[0], (key, reports[0])
    first = reports[0]
    assert 0 <= first["in_scope_accuracy"] <= 1 and 0 <= first["oos_recall"] <= 1, first
    assert first["n_in_scope"] == 30 and first["n_oos"] == 3, first  # the test split's quarter
    assert first["tune_folds"] == 5 and first["threshold_tuned"] is True, first
    for other in reports[1:]:
        for key in ("in_scope_accuracy", "oos_recall", "threshold", "temperature", "n_in_scope",
                    "n_oos"):
            assert other[key] == first[key], (key, first, other)
    # the text report says the same
    text = ctl("nlu", "eval", "--train", files["csv", "train"], "--test", files["csv", "test"],
               "--val", files["csv", "val"]).stdout
    assert "in-scope accuracy" in text and "%.4f" % first["threshold"] in text, text


def test_malformed_files_name_the_line():
    tmp = tempfile.mkdtemp(prefix="chorus-nlu-bad-")
    good = os.path.join(tmp, "good.csv")
    write_csv(good, split(dataset(), "train"))

    def refused(name, content, where):
        path = os.path.join(tmp, name)
        with open(path, "w") as f:
            f.write(content)
        p = ctl("nlu", "eval", "--train", good, "--test", path, expect=1)
        assert where in p.stderr, (where, p.stderr)

    refused("bad.csv", 'text,label\nbook a flight,book_flight\n"unterminated, quote,weather\n',
            "bad.csv:3:")
    refused("fields.csv", "text,label\nbook a flight,book_flight\nrain today,weather,extra\n",
            "fields.csv:3: 3 fields, the header has 2")
    refused("bad.jsonl", '{"text": "book a flight", "label": "book_flight"}\n{"text": "rain"\n',
            "bad.jsonl:2")
    # RFC 4180: nothing between a closing quote and the next comma
    refused("after.csv", 'text,label\n"book a flight"now,book_flight\n',
            "after.csv:2: characters after the closing quote of field 1")
    refused("empty.csv", "text,label\n", "empty.csv: no test examples")
    for bad in ("nan", "-3", "5"):
        p = ctl("nlu", "eval", "--train", good, "--test", good, "--threshold", bad, expect=2)
        assert "--threshold: a confidence from 0 to 1" in p.stderr, p.stderr
    p = ctl("nlu", "eval", "--train", good, "--test", good, "--max-drop", "nan", expect=2)
    assert "--max-drop" in p.stderr, p.stderr
    p = ctl("nlu", "eval", "--train", good, "--test", good, "--format", "xml", expect=2)
    assert "--format: clinc, csv or jsonl" in p.stderr, p.stderr
    p = ctl("nlu", "eval", "--train", good, "--test", good, "--bogus", "x", expect=2)
    assert "unknown option --bogus" in p.stderr, p.stderr
    one = os.path.join(tmp, "one.csv")
    write_csv(one, [("book a flight", "book_flight"), ("fly me to rome", "book_flight")])
    p = ctl("nlu", "eval", "--train", one, "--test", good, expect=1)
    assert "one.csv" in p.stderr and "intent" in p.stderr, p.stderr
    assert ctl("nlu", "eval", "--train", good, expect=2).stderr


def test_no_out_of_scope_examples_to_tune_on():
    tmp = tempfile.mkdtemp(prefix="chorus-nlu-nooos-")
    rows = dataset(with_oos=False)
    paths = {}
    for part in ("train", "val", "test"):
        paths[part] = os.path.join(tmp, part + ".csv")
        write_csv(paths[part], split(rows, part))
    p = ctl("nlu", "eval", "--json", "--train", paths["train"], "--val", paths["val"],
            "--test", paths["test"])
    assert "no out-of-scope (\"oos\") examples to tune on" in p.stderr, p.stderr
    assert "the temperature is fitted on" in p.stderr, p.stderr
    report = json.loads(p.stdout)
    # --folds 0 without --val: nothing tuned, the built-in values
    builtin = evaluate("--train", paths["train"], "--test", paths["test"], "--folds", "0")
    assert builtin["tune_folds"] == 0 and builtin["threshold_tuned"] is False, builtin
    assert report["n_oos"] == 0 and report["oos_recall"] is None, report  # nothing to count
    # the confidence is calibrated on val and the folds; the threshold stays
    assert report["tune_folds"] == 5 and report["threshold_tuned"] is False, report
    assert report["threshold"] == builtin["threshold"], (report, builtin)
    assert report["temperature"] != builtin["temperature"], (report, builtin)
    # without --val, on the folds alone
    folds = evaluate("--train", paths["train"], "--test", paths["test"])
    assert folds["tune_folds"] == 5 and folds["threshold"] == builtin["threshold"], folds
    assert folds["temperature"] != builtin["temperature"], (folds, builtin)
    text = ctl("nlu", "eval", "--train", paths["train"], "--test", paths["test"]).stdout
    assert "oos recall          n/a  (0/0)" in text, text
    assert "not tuned: no out-of-scope examples" in text, text
    untuned = ctl("nlu", "eval", "--train", paths["train"], "--test", paths["test"],
                  "--folds", "0").stdout
    assert "built in: nothing tuned (--folds 0)" in untuned, untuned


if __name__ == "__main__":
    for name, fn in list(globals().items()):
        if name.startswith("test_") and callable(fn):
            fn()
            print("ok", name)
