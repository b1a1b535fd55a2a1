#!/usr/bin/env bash
# vm: --devices edu --mem 768 --timeout 420
# The flight recorder (issue 16): `bulkhead trace` of the running edu driver
# shows its register accesses by the names it declared, live too, and can
# be switched off and on while it runs; a driver that crashes leaves a
# crash report naming the function and line and listing its last register
# accesses by name (`bulkhead crashes`), and core's log and status say so;
# so do an abort() and a hang the watchdog ends.
set -u
. "$(dirname "$0")/lib.sh"

B=$CLI
conf=$WORK/trace.conf
log=$WORK/trace.log
crashes=$WORK/crashes
edu_src=$ROOT/drivers/edu/edu.c

# jq_true JSON FILTER: the filter holds (jq -e alone passes on empty input)
jq_true() { [ -n "$1" ] && echo "$1" | jq -e "$2" >/dev/null; }

edu_section() {
	conf_component edu "exec = $BUILD/drivers/edu/bulkhead-edu" "device = 1234:11e8" \
		"env = BULKHEAD_FAULTS=1" "restart = on-failure" "backoff_ms = 100" "dma = 1M" \
		"watchdog_ms = 20000" "$@"
}

# ---- a mistake in the key says what it takes ----
{ conf_core; edu_section "trace = maybe"; } >"$WORK/bad.conf"
out=$("$B" check "$WORK/bad.conf" 2>&1)
rc=$?
[ $rc = 1 ] && echo "$out" | grep -q "trace = 'maybe': on (.*) or off"
result trace_config_refused $? "exit $rc: $out"

{ conf_core; edu_section; } >"$conf"
start_core "$conf" "$log" || { result trace_core_start 1 "core did not start"; exit 1; }
wait_for "$log" "edu\| edu: (all tests passed|FAILED)" 120
grep -q "edu| edu: all tests passed" "$log"
result trace_edu_runs $? "$(grep -E 'edu\| edu: (all tests|FAILED)' "$log")"

# ---- what the running driver did, by name ----
js=$("$B" trace edu --once --last 4096 --json)
names=$(echo "$js" | jq -r 'select(.name != null) | .name' | sort -u | tr '\n' ' ')
nnames=$(echo "$names" | wc -w)
reads=$(echo "$js" | jq -s '[.[] | select(.kind == "read")] | length')
writes=$(echo "$js" | jq -s '[.[] | select(.kind == "write")] | length')
irqs=$(echo "$js" | jq -s '[.[] | select(.kind == "irq")] | length')
dmas=$(echo "$js" | jq -s '[.[] | select(.kind == "dma-map")] | length')
# the factorial of 10, written and read back under its name
fact=$(echo "$js" | jq -s -c '[.[] | select(.name == "EDU_FACTORIAL" and .kind == "read" and .value == 3628800)] | length')
[ "$nnames" -ge 9 ] && [ "$reads" -gt 0 ] && [ "$writes" -gt 0 ] && [ "$irqs" -ge 2 ] && [ "$fact" -ge 1 ] && [ "$dmas" -ge 2 ]
result trace_names $? "$reads reads, $writes writes, $irqs interrupts, $dmas DMA buffers; $nnames register names: $names; 10! read back from EDU_FACTORIAL $fact time(s)"

out=$("$B" trace edu --once --last 6)
echo "$out"
echo "$out" | grep -qE "^edu: flight recorder on, [0-9]+ entries" &&
	[ "$(echo "$out" | grep -cE '^#[0-9]+ +[0-9.]+ (read|write|irq)')" = 6 ]
result trace_table $? "$(echo "$out" | tail -1)"

# ---- live: a follower sees new accesses as they happen ----
pid=$(field edu pid)
"$B" trace edu --last 0 >"$WORK/follow.txt" 2>&1 &
follower=$!
wait_for "$WORK/follow.txt" "flight recorder on" 10
"$B" inject "$pid" bad-dma
wait_for "$WORK/follow.txt" "write64 +mmio 0:BAR0 +\+0x0098 EDU_DMA_CMD" 20
ok=$?
kill "$follower" 2>/dev/null
wait "$follower" 2>/dev/null
[ $ok = 0 ] && grep -q "EDU_DMA_DST .*<- 0x000000000fe00000" "$WORK/follow.txt"
result trace_live $? "a follower saw $(grep -c '^#' "$WORK/follow.txt") new accesses: $(grep EDU_DMA_DST "$WORK/follow.txt" | head -1)"

# ---- switched off and on while it runs ----
"$B" trace edu --off >/dev/null
a=$(field edu accesses)
"$B" inject "$pid" bad-dma
sleep 1
b=$(field edu accesses)
"$B" trace edu --on >/dev/null
"$B" inject "$pid" bad-dma
sleep 1
c=$(field edu accesses)
[ -n "$a" ] && [ "$a" = "$b" ] && [ "$c" -ge $((b + 4)) ] && [ "$(field edu trace)" = on ]
result trace_switch $? "off: $a -> $b accesses across an injection; on again: $c"

# ---- a crash: the report names the function and line, and the last accesses ----
"$B" inject "$pid" segv
wait_for "$log" '"edu" crashed: SIGSEGV' 30
grep '"edu" crashed' "$log"
out=$("$B" crashes edu)
echo "$out"
line=$(echo "$out" | sed -nE 's/^  in inject_crash at .*edu\.c:([0-9]+) .*/\1/p')
# the line the report names is the one that wrote through the wild pointer
src=$(sed -n "${line:-0}p" "$edu_src" 2>/dev/null)
echo "$out" | grep -q "SIGSEGV (code 1, SEGV_MAPERR: nothing mapped there) at address 0x40000" && [ -n "$line" ] &&
	echo "$src" | grep -q '\*buffer = status' &&
	echo "$out" | grep -qE "read64 +mmio 0:BAR0 +\+0x0080 EDU_DMA_SRC +-> 0x0000000000040000" &&
	echo "$out" | grep -qE "read32 +mmio 0:BAR0 +\+0x0020 EDU_STATUS"
result crash_report $? "in inject_crash at edu.c:${line:-?} ($(echo "$src" | tr -s '\t ' ' ')), its last accesses: $(echo "$out" | grep -oE 'EDU_[A-Z_]+' | tail -3 | tr '\n' ' ')"

js=$("$B" crashes edu --json)
jq_true "$js" '.[0] | .signal == "SIGSEGV" and .function == "inject_crash" and (.file | test("edu\\.c$")) and .line > 0 and .address == "0x40000" and (.accesses | .[-1].name == "EDU_DMA_SRC" and .[-2].name == "EDU_STATUS") and ([.backtrace[].function] | index("inject") != null)'
result crash_report_json $? "$(echo "$js" | jq -c '.[0] | {signal, function, line, address, last: [.accesses[-2:][] | .name], backtrace: [.backtrace[].function]}')"

# status and logs point at it; the driver was restarted
wait_for "$log" "edu\| edu: .*start 2" 60
path=$(field edu crash | tr -d '"')
lg=$("$B" logs edu)
table=$("$B" status --table edu)
one=$("$B" status edu --json)
[ -f "$path" ] && [ "$(field edu crashes)" = 1 ] && echo "$lg" | grep -q "crashed: SIGSEGV at pc 0x" &&
	[ "$(field edu state)" = running ] &&
	echo "$table" | grep -qE "^last crash: killed by SIGSEGV, SIGSEGV in inject_crash at .*edu\.c:$line " &&
	jq_true "$one" ".last_crash.function == \"inject_crash\" and .last_crash.line == $line"
result crash_status_logs $? "status: crash=$path crashes=$(field edu crashes), state $(field edu state); $(echo "$table" | grep 'last crash'); log: $(echo "$lg" | grep -o 'crashed: SIGSEGV[^;]*' | head -1)"

# ---- abort(): the report's backtrace runs from libc into the fault injector ----
wait_for "$log" "edu\| edu: all tests passed" 60
pid=$(field edu pid)
"$B" inject "$pid" abort
wait_for "$log" '"edu" crashed: SIGABRT' 30
js=$("$B" crashes edu --json)
jq_true "$js" '.[0] | .signal == "SIGABRT" and ([.backtrace[].function] | index("abort") != null and index("inject") != null)'
result crash_abort $? "$(echo "$js" | jq -c '.[0] | {signal, function, backtrace: [.backtrace[] | "\(.function):\(.line)"]}')"
# ---- a hang: the watchdog's SIGKILL leaves a report without the component's record ----
wait_for_count "$log" "edu\| edu: all tests passed" 3 60
"$B" inject "$(field edu pid)" loop
wait_for "$log" '"edu" killed by SIGKILL: watchdog; report' 60
js=$("$B" crashes edu --json)
jq_true "$js" '.[0] | (.how | test("watchdog")) and .signal == null and (.accesses | length) > 0'
result crash_watchdog $? "$(echo "$js" | jq -c '.[0] | {how, signal, last: .accesses[-1].name}')"

out=$("$B" crashes)
echo "$out"
# a pid 1 cannot die of the SIGABRT it sends itself: abort ends in exit code 134
echo "$out" | grep -qE "edu +killed by SIGSEGV" && echo "$out" | grep -qE "edu +exit code 134" &&
	echo "$out" | grep -qE "edu +killed by SIGKILL: watchdog"
result crash_list $? "$(echo "$out" | grep -c 'edu ') reports listed"

stop_core
cp "$log" "${BULKHEAD_OUT:-$WORK}/trace-core.log" 2>/dev/null || true
