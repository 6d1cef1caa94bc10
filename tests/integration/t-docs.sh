#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The documentation stays true to the programs. Every keydctl and wipe command line in the code
# blocks of README.md and docs/runbooks.md parses with the real binary: it is run with --help
# appended, so the program's own parser reads every option (an unknown command or option, or an
# option without its argument, exits 2) and prints that command's help instead of acting; for
# keydctl the argument count and each option's command are also checked against the tables
# keydctl prints (keydctl --json help). Every top-level section of keyd.json is in
# docs/configuration.md, and no man page sends the reader to a docs/ file (they are not
# installed).
. "$(dirname "$0")/../lib.sh"
WIPE=$BUILD/wipe

log "command lines of README.md and docs/runbooks.md"
"$KEYDCTL" --json help >"$T/tables.json"
"$PY" "$TOP/tests/doc-commands.py" "$TOP/README.md" "$TOP/docs/runbooks.md" >"$T/cmds"
[ "$(wc -l <"$T/cmds")" -ge 20 ] || fail "only $(wc -l <"$T/cmds") command lines found: $(cat "$T/cmds")"
n=0
while read -r c; do
	where=$(jq -r '"\(.file):\(.line)"' <<<"$c")
	mapfile -t argv < <(jq -r '.argv[]' <<<"$c")
	case ${argv[0]} in keydctl) prog=$KEYDCTL ;; wipe) prog=$WIPE ;; esac
	"$prog" "${argv[@]:1}" --help >/dev/null 2>"$T/err" ||
		fail "$where: '${argv[*]}' does not parse: $(cat "$T/err")"
	if [ "${argv[0]}" = keydctl ]; then
		out=$("$PY" - "$T/tables.json" "${argv[@]:1}" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
opts = {o["name"]: o for o in t["options"]}
shorts = {o["short"]: o for o in t["options"] if o["short"]}
cmds = {c["name"]: c for c in t["commands"]}
words, pos, used = sys.argv[2:], [], []
i = 0
while i < len(words):
    w = words[i]
    o = opts.get(w[2:].split("=")[0]) if w.startswith("--") else shorts.get(w[1:2]) if w.startswith("-") and w != "-" else None
    if o:
        used.append(o)
        if o["argument"] and "=" not in w and not (w.startswith("-") and not w.startswith("--") and len(w) > 2):
            i += 1
    else:
        pos.append(w)
    i += 1
cmd = cmds[pos[0]]
n = len(pos) - 1
if not cmd["min_args"] <= n <= cmd["max_args"]:
    print(f"{n} argument(s), keydctl {cmd['usage']} takes {cmd['min_args']}-{cmd['max_args']}")
for o in used:
    if o["commands"] and o["name"] not in cmd["options"]:
        print(f"--{o['name']} is not an option of {cmd['name']}")
PY
		)
		[ -z "$out" ] || fail "$where: '${argv[*]}': $out"
	fi
	n=$((n + 1))
done <"$T/cmds"
echo "$n command lines parse"

log "every top-level section of keyd.json is in docs/configuration.md"
sections=$(awk '/^static int config_parse/ { on = 1 } on && /keys\[\] *= *\{/ { k = 1 } k { print } k && /NULL/ { exit }' \
	"$TOP/keyd/config.c" | grep -o '"[a-z_]*"' | tr -d '"')
[ "$(wc -w <<<"$sections")" -ge 6 ] || fail "config.c's top-level keys not found: $sections"
for s in $sections; do
	grep -Eq "^\| \`$s(\.|\`|\[)" "$TOP/docs/configuration.md" ||
		fail "docs/configuration.md has no row for the '$s' section of keyd.json"
done

log "man pages point at nothing that is not installed"
if grep -n 'docs/' "$TOP"/docs/man/*; then
	fail "a man page names a docs/ file: docs/ is not installed"
fi
echo "the documentation matches the programs"
