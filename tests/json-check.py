#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
# Checks one `wipe --json` run against docs/json/wipe/NAME.schema.json with Debian's
# python3-jsonschema: stdout must be exactly one JSON document that validates, carry an
# "error" exactly when the exit status is not 0, and that error's exit must be the
# status. Usage: json-check.py SCHEMA_DIR NAME STATUS FILE. Prints what is wrong; exits 1 then.
import json
import os
import sys

import jsonschema

schema_dir, name, status, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
store = {}
for f in os.listdir(schema_dir):
    if f.endswith(".schema.json"):
        s = json.load(open(os.path.join(schema_dir, f)))
        store[s["$id"]] = s
schema = store[f"https://keyd.invalid/json/wipe/{name}.schema.json"]
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
resolver = jsonschema.RefResolver.from_schema(schema, store=store)
text = open(path).read()
try:
    doc = json.loads(text)  # one document: a second one after it is "Extra data"
except ValueError as e:
    sys.exit(f"{name}: stdout is not one JSON document ({e}): {text[:300]!r}")
errors = sorted(cls(schema, resolver=resolver).iter_errors(doc), key=lambda e: list(e.path))
for e in errors:
    print(f"{name}: {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}")
if ("error" in doc) != (status != 0):
    errors.append(1)
    print(f"{name}: exit status {status} but error is {json.dumps(doc.get('error'))}")
elif status and doc["error"]["exit"] != status:
    errors.append(1)
    print(f"{name}: exit status {status}, error.exit {doc['error']['exit']}")
sys.exit(1 if errors else 0)
