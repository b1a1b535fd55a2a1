#!/usr/bin/env bash
# The bulkhead command on this machine, read-only: --help on every command,
# the exit codes, `devices` against lspci, and its JSON. Nothing here binds,
# unbinds or writes to a device: bind and unbind run with --dry-run only.
set -u
. "$(dirname "$0")/../vm/lib.sh"

B=$CLI
nosock=/nonexistent/bulkhead.sock

out=$("$B" --help)
rc=$?
[ $rc = 0 ] && echo "$out" | grep -q "^exit status:"
result cli_help $? "exit $rc; $(echo "$out" | grep -c '^  bulkhead ') commands listed"

bad=
for c in status devices bind unbind start stop restart reload logs check inject trace crashes debug new-driver; do
	out=$("$B" "$c" --help)
	rc=$?
	{ [ $rc = 0 ] && echo "$out" | grep -q "^usage: bulkhead $c"; } || bad="$bad $c(exit $rc)"
done
[ -z "$bad" ]
result cli_help_each $? "every command's --help: ${bad:-all say their usage}"

"$B" frobnicate >/dev/null 2>&1
rc1=$?
"$B" start >/dev/null 2>&1
rc2=$?
"$B" status --bogus >/dev/null 2>&1
rc3=$?
[ $rc1 = 2 ] && [ $rc2 = 2 ] && [ $rc3 = 2 ]
result cli_usage_exit $? "unknown command: $rc1, start without a name: $rc2, unknown option: $rc3 (2: usage)"

codes=
for c in "status" "status --json" "logs" "logs edu -f" "stop edu" "restart edu" "reload" "trace edu" "debug edu"; do
	# shellcheck disable=SC2086
	"$B" -s $nosock $c >/dev/null 2>&1
	codes="$codes $?"
done
[ "$codes" = " 3 3 3 3 3 3 3 3 3" ]
result cli_no_core_exit $? "without core ($nosock): exit codes$codes (3: core not reachable)"

out=$("$B" -s $nosock status 2>&1)
echo "$out" | grep -q "cannot reach core at $nosock"
result cli_no_core_reason $? "$out"

json=$("$B" devices --json)
rc=$?
n=$(echo "$json" | jq length 2>/dev/null)
m=$(lspci -D 2>/dev/null | wc -l)
[ $rc = 0 ] && [ -n "$n" ] && [ "$n" = "$m" ] &&
	echo "$json" | jq -e 'all(.[]; (.address | test("^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\\.[0-7]$")) and (.name | length) > 0 and (.class | length) > 0)' >/dev/null
result cli_devices_json $? "exit $rc: $n devices in JSON, lspci -D lists $m"

# the driver and the name as lspci -k and lspci say them
bad=
for a in $(echo "$json" | jq -r '.[].address'); do
	drv=$(echo "$json" | jq -r ".[] | select(.address == \"$a\") | .driver // \"\"")
	k=$(lspci -k -s "$a" 2>/dev/null | awk -F': ' '/Kernel driver in use/ { print $2 }')
	[ "$drv" = "$k" ] || bad="$bad $a($drv vs $k)"
done
[ -z "$bad" ]
result cli_devices_drivers $? "drivers as lspci -k says: ${bad:-all agree}"

table=$("$B" devices)
[ "$(echo "$table" | head -1 | awk '{ print $1, $2 }')" = "ADDRESS CLASS" ] && [ "$(echo "$table" | wc -l)" = $((m + 1)) ]
result cli_devices_table $? "$(echo "$table" | head -3 | tr '\n' '|')"

a=$(echo "$json" | jq -r '[.[] | select(.driver != "vfio-pci")][0].address')
out=$("$B" unbind --dry-run "$a" 2>&1)
rc=$?
[ $rc = 0 ] && echo "$out" | grep -q "not bound to a user-space driver"
result cli_unbind_not_bound $? "exit $rc: $out"

out=$("$B" unbind --dry-run 0000:7f:1f.7 2>&1)
rc=$?
[ $rc = 4 ]
result cli_unbind_unknown $? "exit $rc: $out"

# new-driver: a folder from the source tree's template (run from build/), and its refusals
nd=$(mktemp -d)
out=$(cd "$nd" && "$B" new-driver my_drv 2>&1)
rc=$?
left=$(grep -l '@[A-Z]*@' "$nd"/my_drv/* 2>/dev/null)
[ $rc = 0 ] && [ -f "$nd/my_drv/my_drv.c" ] && [ -f "$nd/my_drv/Makefile" ] && [ -f "$nd/my_drv/my_drv.conf" ] &&
	[ -z "$left" ] && grep -q "^exec = $nd/my_drv/bulkhead-my_drv$" "$nd/my_drv/my_drv.conf" &&
	grep -q "MY_DRV_REG0" "$nd/my_drv/my_drv.c" && "$CORE" --check -c "$nd/my_drv/my_drv.conf" >/dev/null 2>&1
result cli_new_driver_files $? "exit $rc: $(ls "$nd/my_drv" | tr '\n' ' ')${left:+; placeholders left in $left}; its config snippet parses"

bad=
for name in 1st my-drv int "" "$(printf 'a%.0s' $(seq 40))"; do
	out=$(cd "$nd" && "$B" new-driver "$name" 2>&1)
	rc=$?
	{ [ $rc = 2 ] && echo "$out" | grep -q "cannot name a driver: "; } || bad="$bad '$name'(exit $rc)"
done
out=$(cd "$nd" && "$B" new-driver my_drv 2>&1)
rc=$?
{ [ $rc = 1 ] && echo "$out" | grep -q "my_drv exists already"; } || bad="$bad existing(exit $rc: $out)"
[ -z "$bad" ]
result cli_new_driver_refusals $? "${bad:-bad names (1st my-drv int '' 40 x a) exit 2 with the reason; an existing folder exits 1: $out}"

out=$(cd "$nd" && BULKHEAD_TEMPLATES=/nonexistent "$B" new-driver other 2>&1)
rc=$?
[ $rc = 1 ] && echo "$out" | grep -q "no driver template in /nonexistent/driver" && [ ! -e "$nd/other" ]
result cli_new_driver_no_templates $? "exit $rc: $out"
rm -rf "$nd"
