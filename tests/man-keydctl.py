#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Checks keydctl(8) against keydctl's own tables (keydctl --json help on stdin): the same
commands, the same options and the same exit codes, names and meanings. Prints each
difference; exits 1 if there is any."""
import json
import re
import sys


def unroff(s):
    s = re.sub(r"\\f[BIRP]", "", s).replace("\\-", "-").replace("\\(em", "--")
    return " ".join(s.replace('"', "").split())


def sections(lines):
    out, name = {}, None
    for line in lines:
        if line.startswith(".SH "):
            name = unroff(line[4:])
            out[name] = []
        elif name:
            out[name].append(line.rstrip("\n"))
    return out


def entries(body):
    """The tag line after each .TP and the text up to the next one."""
    tags = []
    for i, line in enumerate(body):
        if line == ".TP" and i + 1 < len(body):
            tags.append((body[i + 1], body[i + 2] if i + 2 < len(body) else ""))
    return tags


def main():
    tables = json.load(sys.stdin)
    man = sections(open(sys.argv[1]).readlines())
    bad = []

    cmds = set()
    for tag, _ in entries(man["COMMANDS"]):
        words = unroff(re.sub(r"^\.\w+\s*", "", tag)).split()
        if words:
            cmds.add(words[0])
    want = {c["name"] for c in tables["commands"]}
    for c in sorted(want - cmds):
        bad.append(f"command {c} is in keydctl --help but not in keydctl(8)")
    for c in sorted(cmds - want):
        bad.append(f"command {c} is in keydctl(8) but keydctl does not know it")

    opts = set()
    for tag, _ in entries(man["OPTIONS"]):
        opts.update(re.findall(r"--([a-z][a-z-]*)", unroff(tag)))
    want = {o["name"] for o in tables["options"]}
    for o in sorted(want - opts):
        bad.append(f"option --{o} is in keydctl --help but not in keydctl(8)")
    for o in sorted(opts - want):
        bad.append(f"option --{o} is in keydctl(8) but keydctl does not know it")

    codes = []
    for tag, text in entries(man["EXIT STATUS"]):
        m = re.match(r"^(\d+) \(([a-z-]+)\)$", unroff(re.sub(r"^\.\w+\s*", "", tag)))
        if m:
            codes.append((int(m.group(1)), m.group(2), unroff(text)))
    want = [(e["exit"], e["code"], e["meaning"]) for e in tables["exit_codes"]]
    if codes != want:
        bad.append(f"exit codes differ:\n  keydctl(8): {codes}\n  keydctl:    {want}")

    for b in bad:
        print(b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
