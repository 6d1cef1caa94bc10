#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
# Checks that wipe(8) says what `wipe --help` and `wipe help COMMAND` say, both printed from
# wipe/main.c's tables: the commands, each command's options, every option's entry, and the
# exit-status table (wipe/exitcode.c). Usage: man-agree.py WIPE MANPAGE. Prints each
# disagreement and exits 1 if there is any.
import re
import subprocess
import sys

wipe, man = sys.argv[1], sys.argv[2]
roff = open(man).read()
bad = []


def run(*args):
    p = subprocess.run([wipe, *args], capture_output=True, text=True)
    if p.returncode != 0:
        bad.append(f"wipe {' '.join(args)} exited {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def section(name):
    m = re.search(r"^\.SH " + re.escape(name) + r"\n(.*?)(?=^\.SH |\Z)", roff, re.S | re.M)
    return m.group(1) if m else ""


def unroff(t):
    return re.sub(r"\\f[BIRP]", "", t).replace("\\-", "-").replace("\\e", "\\")


def flags(text):
    """The flags in the option column of a help text: '  -m, --method NAME ...'."""
    return [m.group(1) for m in re.finditer(r"^  (?:-\w, |    )--([a-z][a-z-]*)", text, re.M)]


def help_commands(text):
    block = text.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    return [line[2:14].strip() for line in block.splitlines() if not line.startswith("   ")]


top = run("--help")
commands = help_commands(top)

# COMMANDS: ".TP" then the command in bold, its text, and "Options: --a, --b." on one line.
entries = {}
for m in re.finditer(r"^\.TP\n\.BI? \"?([a-z][a-z ]*?)\"?(?: \"[^\"]*\")?\n(.*?)(?=^\.TP|\Z)",
                     section("COMMANDS"), re.S | re.M):
    entries[m.group(1).strip()] = unroff(m.group(2))
if sorted(entries) != sorted(commands):
    bad.append(f"commands: wipe --help has {sorted(commands)}, wipe(8) has {sorted(entries)}")
synopsis = unroff(section("SYNOPSIS"))
for c in commands:
    if not re.search(r"^\.B wipe " + re.escape(c) + r"$", synopsis, re.M):
        bad.append(f"SYNOPSIS lacks 'wipe {c}'")

for c in commands:
    text = run("help", *c.split())
    if run(*c.split(), "--help") != text:
        bad.append(f"wipe {c} --help differs from wipe help {c}")
    want = sorted(set(flags(text)))
    m = re.search(r"^Options: (.*)\.$", entries.get(c, ""), re.M)
    got = sorted(set(re.findall(r"--([a-z][a-z-]*)", m.group(1)))) if m else []
    if want != got:
        bad.append(f"{c}: wipe help {c} lists {want}, wipe(8) lists {got}")

# OPTIONS: every flag of wipe --help has a ".TP" entry naming it, and nothing else is there.
documented = set(re.findall(r"^\.(?:B|BI|BR|TQ)[^\n]*?\\-\\-([a-z][a-z\\-]*)",
                            section("OPTIONS"), re.M))
documented = {d.replace("\\-", "-") for d in documented}
if set(flags(top)) != documented:
    bad.append(f"options: only in wipe --help: {sorted(set(flags(top)) - documented)}; "
               f"only in wipe(8): {sorted(documented - set(flags(top)))}")

# EXIT STATUS: ".B N" then "name: summary", as wipe --help prints "  N name  summary".
helpcodes = re.findall(r"^ +(\d+) (\S+) +(.*)$", top.split("Exit status:\n", 1)[1].split("\n\n")[0],
                       re.M)
mancodes = re.findall(r"^\.B (\d+)\n(\S+): (.*?)\.?$", section("EXIT STATUS"), re.M)
if [(n, c, s) for n, c, s in helpcodes] != [(n, c, s) for n, c, s in mancodes]:
    bad.append(f"exit statuses: wipe --help {helpcodes}\n  wipe(8) {mancodes}")

for b in bad:
    print("DISAGREE:", b)
print(f"{len(commands)} commands, {len(flags(top))} options, {len(helpcodes)} exit statuses compared")
sys.exit(1 if bad else 0)
