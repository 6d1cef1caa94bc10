#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Reads a Prometheus text exposition (a file, or - for stdin) with the Prometheus project's own
parser (Debian's python3-prometheus-client) and prints one JSON document:
{"FAMILY": {"type": T, "help": H, "samples": [{"name": N, "labels": {...}, "value": V}]}}.
Values that JSON cannot carry (+Inf, -Inf, NaN) become the strings "+Inf", "-Inf", "NaN".
Exits 1 with the parser's message on text it does not accept."""
import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families


def value(v):
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return v


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "-"
    text = sys.stdin.read() if src == "-" else open(src, encoding="utf-8").read()
    out = {}
    try:
        for fam in text_string_to_metric_families(text):
            if fam.name in out:
                raise ValueError("family %s appears twice" % fam.name)
            out[fam.name] = {"type": fam.type, "help": fam.documentation,
                             "samples": [{"name": s.name, "labels": s.labels,
                                          "value": value(s.value)} for s in fam.samples]}
    except Exception as e:  # the parser raises ValueError and friends
        print("prom-parse: not valid Prometheus text: %s" % e, file=sys.stderr)
        sys.exit(1)
    json.dump(out, sys.stdout, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
