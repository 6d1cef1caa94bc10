#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
# Parses a Prometheus text-exposition file with the real parser (Debian's
# python3-prometheus-client) and prints one JSON object per sample:
# {"name", "labels", "value", "type", "help"}. A file the parser rejects exits 1.
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

text = open(sys.argv[1]).read()
try:
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            print(json.dumps({"name": s.name, "labels": s.labels, "value": s.value,
                              "type": fam.type, "help": fam.documentation}))
except Exception as e:  # the parser's own words: ValueError and friends
    print(f"prom-parse: {sys.argv[1]}: {e}", file=sys.stderr)
    sys.exit(1)
