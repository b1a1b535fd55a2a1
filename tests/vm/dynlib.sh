#!/usr/bin/env bash
# vm: --mem 512
# A dynamically linked component (tests/tools/dynlib-probe.c: zlib and libc)
# in its sandbox: core reads its ELF and gives its root, read-only, the
# loader and exactly the closure of its libraries; its loader opens them
# through core until its first request, and then openat is refused. The
# probe checks from inside: its own libz opens before main, a library
# outside its closure and a host file are not there, its libraries cannot be
# written, and after core's hello openat fails. Core's log says how many
# files its loader opened.
set -u
. "$(dirname "$0")/lib.sh"

conf=$WORK/dynlib-test.conf
log=$WORK/dynlib-test.log
{
	conf_core
	conf_component dynlib "exec = $BUILD/tests/bulkhead-dynlib-probe" "restart = never"
} >"$conf"

start_core "$conf" "$log" || { result dynlib_core_start 1 "core did not start"; exit 1; }
wait_for "$log" "dynlib\| dynlib-probe: done|exited|killed" 60
load_lines "$log" "dynlib| dynlib-probe: "
n=0
for l in "${LINES[@]}"; do
	[[ $l =~ ^check\ ([a-z_]+)\ (PASS|FAIL)\ (.*) ]] || continue
	[ "${BASH_REMATCH[2]}" = PASS ]
	result "dynlib_${BASH_REMATCH[1]}" $? "${BASH_REMATCH[3]}"
	n=$((n + 1))
done
[ $n -ge 6 ]
result dynlib_checks $? "$n checks reported by the probe; $(pick '^zlib ')"
opened=$(grep -oE '"dynlib" started: its loader opened [0-9]+ files.*' "$log" | tail -1)
[[ $opened =~ opened\ ([0-9]+)\ files ]] && [ "${BASH_REMATCH[1]}" -ge 2 ]
result dynlib_loader_through_core $? "core: ${opened:-no line about its loader}"
stop_core
echo "---- core log ----"
cat "$log"
