#!/usr/bin/env bash
# core refuses malformed configs with file:line and the fix, before touching anything.
set -u
. "$(dirname "$0")/../vm/lib.sh"
conf=$(mktemp)
trap 'rm -f "$conf"' EXIT

check() { # name expected-substring config-text
	printf '%b' "$3" >"$conf"
	out=$("$CORE" --check -c "$conf" 2>&1)
	rc=$?
	[ $rc -eq 2 ] && echo "$out" | grep -qF -- "$2"
	result "$1" $? "$out"
}
check config_unknown_key "$conf:3: unknown key 'colour'" '[component "a"]\nexec = /bin/true\ncolour = red\n'
check config_bad_device "$conf:2: device = 'eth*'" '[component "a"]\ndevice = eth*\nexec = /bin/true\n'
check config_root_user "components never run as root" '[component "a"]\nexec = /bin/true\nuser = 0\n'
check config_bad_section "$conf:1: unknown section [driver a]" '[driver a]\n'
check config_missing_exec "has no exec = line" '[component "a"]\ndevice = 1234:11e8\n'
check config_bad_cpu "$conf:3: cpu = '50': expected a whole percentage" '[component "a"]\nexec = /bin/true\ncpu = 50\n'
check config_bad_cpu_weight "$conf:3: cpu_weight = '0': expected a whole number from 1 to 10000" '[component "a"]\nexec = /bin/true\ncpu_weight = 0\n'
out=$("$CORE" --check -c "$(dirname "$0")/../../etc/bulkhead.conf" 2>&1)
result config_example_parses $? "$(echo "$out" | head -1)"
out=$("$CORE" -c /nonexistent.conf 2>&1)
[ $? -eq 2 ] && echo "$out" | grep -q "/nonexistent.conf: cannot open"
result config_missing_file $? "$out"
