#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""doc-commands.py FILE...: every keydctl and wipe command line in the fenced code blocks of
the given Markdown files, one JSON line each: {"file", "line", "argv"}. Shell comments,
redirections, pipes and `;`/`&&` lists are split off as a shell would (shlex)."""
import json
import shlex
import sys

PROGRAMS = ("keydctl", "wipe")
SEPARATORS = {";", "&&", "||", "|", "&"}


def commands(text):
    lex = shlex.shlex(text, posix=True, punctuation_chars=";&|<>")
    lex.whitespace_split = True
    lex.commenters = "#"
    words, out = [], []
    for w in lex:
        if w in SEPARATORS:
            out.append(words)
            words = []
        else:
            words.append(w)
    out.append(words)
    for argv in out:
        # Redirections and what they name are the shell's, not the command's.
        clean, skip = [], False
        for w in argv:
            if skip:
                skip = False
            elif w and set(w) <= set("<>"):
                skip = True
            else:
                clean.append(w)
        while clean and clean[0] in ("sudo", "$"):
            clean.pop(0)
        if clean and clean[0] in PROGRAMS:
            yield clean


def main():
    for path in sys.argv[1:]:
        fenced = False
        for n, line in enumerate(open(path, encoding="utf-8"), 1):
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            if not fenced:
                continue
            for argv in commands(line):
                print(json.dumps({"file": path, "line": n, "argv": argv}))


if __name__ == "__main__":
    main()
