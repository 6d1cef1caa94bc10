#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""init-commands.py SCRIPT: the external commands a plain sh script runs (first words of its
simple commands, less shell keywords, builtins, its own functions and assignments), one a
line, for checking them against the busybox applets the VM's initramfs has."""
import re
import sys

KEYWORDS = set("if then else elif fi for while until do done case esac in function { } ! [ [[ ]] "
               "test echo printf read cd exec exit return set shift export unset local trap "
               "wait eval true false : . break continue".split())


def main():
    text = open(sys.argv[1]).read().replace("\\\n", " ")  # join continued lines
    funcs = set(re.findall(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\(\)", text, re.M))
    seen = set()
    for line in text.splitlines():
        line = re.sub(r"(^|\s)#.*", "", line)
        line = re.sub(r"'[^']*'", "''", line)
        line = re.sub(r'"[^"$]*"', '""', line)
        for part in re.split(r";;|;|&&|\|\||\||\$\(|`|\bthen\b|\bdo\b|\belse\b|\(", line):
            words = part.split()
            while words and ("=" in words[0] and not words[0].startswith("=")):
                words.pop(0)  # VAR=value before a command
            if not words:
                continue
            w = words[0].strip('")')
            if w in KEYWORDS or w in funcs or not re.match(r"^[a-z][a-z0-9_-]*$", w):
                continue
            if w.endswith(")"):  # a case pattern
                continue
            seen.add(w)
    for w in sorted(seen):
        print(w)


if __name__ == "__main__":
    main()
