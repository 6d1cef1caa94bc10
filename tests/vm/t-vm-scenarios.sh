#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-timeout: 1500
# VM tier: every guest scenario in tests/vm/scenarios/ that has no runner of its own
# (t-vm-NAME.sh), so adding a scenario is adding one guest script; one VM boot each.
here=$(dirname "$0")
list=()
for s in "$here"/scenarios/*.sh; do
	name=$(basename "$s" .sh)
	[ -e "$here/t-vm-$name.sh" ] || list+=("$name")
done
[ ${#list[@]} -gt 0 ] || { echo "SKIP: no scenario without its own t-vm-NAME.sh"; exit 77; }
echo "scenarios: ${list[*]}"
exec "$here/vm-test" "${list[@]}"
