#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""json-validate.py SCHEMA_DIR NAME < OUTPUT: checks that OUTPUT (a command's whole standard
output) is exactly one JSON document and that it validates against SCHEMA_DIR/NAME.schema.json,
with every schema of SCHEMA_DIR there for $ref. Prints what is wrong; exits 1 then."""
import json
import pathlib
import sys

import jsonschema


def main():
    d, name = pathlib.Path(sys.argv[1]), sys.argv[2]
    text = sys.stdin.read()
    try:
        doc = json.loads(text)  # two documents, or trailing text, fail here
    except json.JSONDecodeError as e:
        print(f"{name}: not exactly one JSON document ({e}):\n{text}")
        return 1
    store = {}
    for f in d.glob("*.schema.json"):
        s = json.loads(f.read_text())
        store[s["$id"]] = s
    schema = store[f"{name}.schema.json"]
    jsonschema.Draft7Validator.check_schema(schema)
    resolver = jsonschema.RefResolver(base_uri="", referrer=schema, store=store)
    errors = sorted(jsonschema.Draft7Validator(schema, resolver=resolver).iter_errors(doc),
                    key=lambda e: list(e.path))
    for e in errors:
        print(f"{name}: {'/'.join(map(str, e.path)) or '(top)'}: {e.message}")
    if errors:
        print(text)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
