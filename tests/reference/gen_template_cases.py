#!/usr/bin/python3
"""gen_template_cases.py - expected renderings of checkpoint filepath templates.

Writes tests/fixtures/template_cases.tsv: one case a line,
    template <TAB> epoch <TAB> batch <TAB> logs <TAB> expected
where logs is "key=repr(value);..." (repr reads back to the same double
with strtod) and expected is what Python's str.format gives ("!error" when
Python raises ValueError for the spec), with epoch and
batch as ints (batch only when > 0, as Keras passes it only for batch
saving) and logs values as floats; acc/val_acc are passed too as Keras 2
aliases of accuracy/val_accuracy.  test_template.c renders every case with
template_render and compares byte for byte.

Run: /usr/bin/python3 tests/reference/gen_template_cases.py
"""
import math
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "template_cases.tsv")

INF = float("inf")
NAN = float("nan")

# Values chosen to hit the rounding and layout rules: exact binary ties
# (0.125, 2.5), values just below a tie (2.675), repr switch points (1e16,
# 1e-5), subnormal, largest double, negative zero, inf and nan.
FLOATS = [0.55462, 0.1, 0.125, 2.675, 2.5, 1e-05, 0.0001, 1e16, 1234567.891,
          123456789.0, 5e-324, 1.7976931348623157e308, -0.0, -0.98481, 1.0,
          100.0, 0.30000000000000004, INF, -INF, NAN]

FLOAT_SPECS = ["", ".4f", ".2f", ".0f", "#.0f", ".3e", "E", ".2g", "g", ".17g",
               "G", ".3", ".1", "#", "#g", "%", ".1%", "+.3f", "012.4f",
               "012,.1f", "_.2f", ",", "x<10.3f", "@^11.2f", "=+10.2f", "010",
               "-.5f", "F"]

INT_SPECS = ["", "03d", "d", "5", "<5", "^5", "x^6", "=+6", "+", ",", "_", "08,",
             "09_d", "#", ".2f", "e", "%", ".3g", "010.1f"]


def random_spec(rng):
    """A format spec built from the mini-language's parts, valid or not."""
    parts = []
    r = rng.random()
    if r < 0.3:
        parts.append(rng.choice(["x", "0", "*", ".", " ", "_", "9"]) + rng.choice("<>^="))
    elif r < 0.5:
        parts.append(rng.choice("<>^="))
    if rng.random() < 0.3:
        parts.append(rng.choice("+- "))
    if rng.random() < 0.05:
        parts.append("z")
    if rng.random() < 0.2:
        parts.append("#")
    if rng.random() < 0.3:
        parts.append("0")
    if rng.random() < 0.5:
        parts.append(str(rng.randint(0, 14)))
    if rng.random() < 0.25:
        parts.append(rng.choice([",", "_", ",_"]))
    if rng.random() < 0.5:
        parts.append("." + str(rng.randint(0, 20)) if rng.random() < 0.95 else ".")
    if rng.random() < 0.8:
        parts.append(rng.choice("dfFeEgGs%nxXbco"))
    return "".join(parts)


def render(tmpl, epoch, batch, logs):
    kw = dict(logs)
    if "accuracy" in kw:
        kw["acc"] = kw["accuracy"]
    if "val_accuracy" in kw:
        kw["val_acc"] = kw["val_accuracy"]
    kw["epoch"] = epoch
    if batch > 0:
        kw["batch"] = batch
    return tmpl.format(**kw)


def main():
    cases = []
    base_logs = {"loss": 0.4231, "accuracy": 0.8125, "val_loss": 0.55462,
                 "val_accuracy": 0.80125}
    # The documented examples.
    cases.append(("weights-{epoch:03d}-{val_loss:.4f}.hdf5", 33, 0, base_logs))
    cases.append(("weights.{epoch:02d}-{val_loss:.2f}.hdf5", 7, 0, base_logs))
    cases.append(("weights-{epoch:03d}-{val_loss:.4f}.hdf5", 3, 0,
                  dict(base_logs, val_loss=0.98481)))
    cases.append(("best.weights.h5", 5, 0, base_logs))
    cases.append(("ckpt/e{epoch}-b{batch:04d}-{loss:.3f}.h5", 2, 150, base_logs))
    cases.append(("run_1/{epoch:03d}/acc={acc:.3f}_vacc={val_acc:.4f}.keras", 12, 0, base_logs))
    cases.append(("{{literal}}-{epoch}.h5", 1, 0, base_logs))
    cases.append(("a/b/c/{val_loss}.h5", 9, 0, base_logs))
    cases.append(("m{epoch:,}.h5", 1234567, 0, base_logs))
    # Every float spec against every float value, in the file-name position.
    for spec in FLOAT_SPECS:
        for v in FLOATS:
            cases.append(("w-{val_loss:%s}.h5" % spec, 1, 0, dict(base_logs, val_loss=v)))
    # Every int spec against a few epochs.
    for spec in INT_SPECS:
        for e in (1, 33, 1234):
            cases.append(("e{epoch:%s}.h5" % spec, e, 0, base_logs))

    # Random specs: Python's verdict decides the expectation.  A spec Python
    # rejects must be rejected by template_validate too ("!error"); one it
    # accepts must render identically or fall under template.h's limits.
    rng = random.Random(20260128)
    for _ in range(600):
        spec = random_spec(rng)
        if rng.random() < 0.3:
            cases.append(("e{epoch:%s}.h5" % spec, rng.choice([1, 7, 33, 1234, 98765]), 0, base_logs))
        else:
            v = rng.choice(FLOATS[:-6] + [NAN, INF, -0.0, 3.0, 1e-7])
            cases.append(("w-{val_loss:%s}.h5" % spec, 1, 0, dict(base_logs, val_loss=v)))

    lines = []
    for tmpl, epoch, batch, logs in cases:
        try:
            expected = render(tmpl, epoch, batch, logs)
        except ValueError:
            expected = "!error"
        for field in (tmpl, expected):
            if "\t" in field or "\n" in field:
                sys.exit("tab or newline in case %r" % tmpl)
        logs_txt = ";".join("%s=%r" % (k, v) for k, v in logs.items())
        for k, v in logs.items():
            if not (math.isnan(v) and math.isnan(float(repr(v)))) and float(repr(v)) != v:
                sys.exit("value does not round-trip: %r" % v)
        lines.append("\t".join([tmpl, str(epoch), str(batch), logs_txt, expected]))

    with open(OUT, "w", encoding="utf-8") as f:
        f.write("# generated by tests/reference/gen_template_cases.py with Python %s; do not edit\n"
                % sys.version.split()[0])
        f.write("# template\tepoch\tbatch\tlogs\texpected\n")
        for line in lines:
            f.write(line + "\n")
    print("%d cases -> %s" % (len(lines), os.path.normpath(OUT)))


if __name__ == "__main__":
    main()
