#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# keyd.json(5) names every configuration key keyd parses: each key of every key list given to
# jx_only_keys() in keyd's configuration parsers (config.c, the KMS providers, the callback
# endpoint) appears in a macro line (.B, .BR, .TP ...) of docs/man/keyd.json.5. Lists that
# check other JSON (the LUKS2 token, the callback's event body, wipe's checkpoint) are not
# configuration and are named below.
. "$(dirname "$0")/../lib.sh"

MAN=$TOP/docs/man/keyd.json.5
[ -f "$MAN" ] || fail "no $MAN"
# Not keyd.json: the LUKS2 token's fields (token.c) and the callback request body (event.c).
NOT_CONFIG="token.c event.c"

# The key lists: `keys[] = { "a", "b", ..., NULL }` in every keyd/ source that calls
# jx_only_keys (the files move around; the lists stay greppable).
mapfile -t files < <(grep -rl --include='*.c' 'jx_only_keys(' "$TOP/keyd" | sort)
[ ${#files[@]} -gt 0 ] || fail "no keyd/ source calls jx_only_keys"
keys=()
for f in "${files[@]}"; do
	case " $NOT_CONFIG " in *" $(basename "$f") "*) continue ;; esac
	mapfile -t k < <(awk '/keys\[\] *= *\{/ { on = 1 } on { print } on && /NULL/ { on = 0 }' "$f" |
		grep -o '"[a-z_]*"' | tr -d '"')
	[ ${#k[@]} -gt 0 ] || fail "$f calls jx_only_keys but no keys[] list was found in it"
	echo "$(basename "$f"): ${k[*]}"
	keys+=("${k[@]}")
done
[ ${#keys[@]} -ge 40 ] || fail "only ${#keys[@]} keys found: the extraction is broken"

missing=()
for k in $(printf '%s\n' "${keys[@]}" | sort -u); do
	grep -Eq "^\.(B|BR|BI|IR|RB|TP|I)( .*)?([^a-z_]|^)$k([^a-z_]|\$)" "$MAN" || missing+=("$k")
done
[ ${#missing[@]} -eq 0 ] || fail "keyd.json(5) does not name: ${missing[*]}"
# The page renders without warnings.
if command -v man >/dev/null; then
	warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$MAN" 2>&1 >/dev/null || true)
	[ -z "$warn" ] || fail "man --warnings: $warn"
fi
echo "PASS: keyd.json(5) names all $(printf '%s\n' "${keys[@]}" | sort -u | wc -l) configuration keys"
