#!/usr/bin/env bash
# vm: --devices pci-serial:loop --mem 1024
# The serial line on the test machine: bulkhead's 16550A driver serves QEMU's
# pci-serial as a Terminal session, the term-pty bridge makes it a pty, and
# ordinary programs (cat, head, stty) use it. The far end of the line is a
# second pci-serial port on the same QEMU chardev (tools/vm/run
# pci-serial:loop), driven by the kernel's 8250 driver: 1 MiB each way,
# checked by sha256; a lying Terminal client beside the bridge; the driver
# killed mid-transfer under an open pty; the same transfer through the
# kernel's own 8250 driver on the same port for comparison.
set -u
. "$(dirname "$0")/lib.sh"

conf=$WORK/serial-test.conf
log=$WORK/serial-test.log
pty=/run/bulkhead/pty/ser0
MiB=1048576

ports=$(for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/vendor")" = 0x1b36 ] && [ "$(cat "$d/device")" = 0x0002 ] && basename "$d"
done 2>/dev/null)
ours=$(echo "$ports" | sed -n 1p)
far=$(echo "$ports" | sed -n 2p)
fartty=/dev/$(ls "/sys/bus/pci/devices/$far/tty" 2>/dev/null | head -1)
[ -n "$ours" ] && [ -c "$fartty" ]
result serial_ports $? "ours $ours, far end $far ($fartty, kernel 8250)" || exit 1

cat >"$conf" <<CONF
[core]
backend = vfio
control = /run/bulkhead/core.sock

[component "serial"]
exec = $BUILD/drivers/serial16550/bulkhead-serial16550
args = --baud 115200
device = $ours
provides = terminal
restart = on-failure
backoff_ms = 200
watchdog_ms = 5000

[component "pty"]
exec = $BUILD/bridges/term-pty/bulkhead-term-pty
session = terminal serial
pty = ser0
restart = on-failure

[component "hostile"]
exec = $BUILD/tests/bulkhead-term-hostile
args = 1500
session = terminal serial
restart = never
CONF

stty -F "$fartty" raw -echo -crtscts clocal 115200 || true
start_core "$conf" "$log" || { result serial_core_start 1 "core did not start"; exit 1; }
wait_for "$log" "pty\| term-pty: .* <-> terminal session 1" 30
[ -L "$pty" ] && [ -c "$(readlink "$pty")" ] && stty -F "$pty" raw -echo
result serial_pty $? "$pty -> $(readlink "$pty"); $(grep -oE 'term-pty: /dev/pts/[0-9]+ <-> .*session 1 \([^)]*\)' "$log" | head -1)"

# the hostile client comes 1.5 s after the start, beside the bridge
wait_for "$log" "hostile\| term-hostile: done" 30
for t in bad_descriptors bad_baud garbage_indexes malformed_event; do
	line=$(grep -E "term-hostile: TEST term_$t " "$log" | head -1)
	echo "$line" | grep -q " PASS "
	result "serial_hostile_$t" $? "$(echo "${line#*TEST term_$t }" | sed -E 's/^ *(PASS|FAIL) *//')"
done
pid0=$(field serial pid)

# what is waiting at the far end (the hostile client's one good byte) goes first
drain() { timeout 2 dd if="$1" of=/dev/null iflag=nonblock status=none 2>/dev/null || true; }

# move FILE from writer WDEV to reader RDEV; prints "ok SECONDS" or "bad ..."
transfer() { # name src wdev rdev timeout
	local name=$1 src=$2 wdev=$3 rdev=$4 t=$5 got t0 t1 rc
	drain "$rdev"
	timeout "$t" head -c "$(stat -c %s "$src")" "$rdev" >"$WORK/$name.rx" &
	local reader=$!
	sleep 0.3
	t0=$(date +%s.%N)
	timeout "$t" cat "$src" >"$wdev"
	wait "$reader"
	rc=$?
	t1=$(date +%s.%N)
	got=$(stat -c %s "$WORK/$name.rx")
	if [ "$rc" = 0 ] && [ "$(sha256sum <"$src")" = "$(sha256sum <"$WORK/$name.rx")" ]; then
		echo "ok $(echo "$t1 - $t0" | bc) $got"
	else
		echo "bad reader-exit $rc, $got bytes"
	fi
}
rate() { echo "scale=1; $2 / $1 / 1024" | bc; } # seconds bytes -> KiB/s

head -c $MiB /dev/urandom >"$WORK/up.bin"
head -c $MiB /dev/urandom >"$WORK/down.bin"
irq0=$(grep -oE 'serial16550: stats: irqs [0-9]+' "$log" | tail -1 | awk '{ print $4 }')
r=$(transfer up "$WORK/up.bin" "$pty" "$fartty" 120)
set -- $r
[ "$1" = ok ]
result serial_pty_to_line_1MiB $? "pty -> serial16550 -> QEMU chardev -> far end: $r${2:+ s, $(rate "$2" $MiB) KiB/s}, sha256 $(sha256sum <"$WORK/up.bin" | cut -c1-16)"
up_s=${2:-0}
r=$(transfer down "$WORK/down.bin" "$fartty" "$pty" 120)
set -- $r
[ "$1" = ok ]
result serial_line_to_pty_1MiB $? "far end -> QEMU chardev -> serial16550 -> pty: $r${2:+ s, $(rate "$2" $MiB) KiB/s}, sha256 $(sha256sum <"$WORK/down.bin" | cut -c1-16)"
down_s=${2:-0}
sleep 2.5 # the driver prints its counts every 2 s
irq1=$(grep -oE 'serial16550: stats: irqs [0-9]+' "$log" | tail -1 | awk '{ print $4 }')
[ "${irq1:-0}" -gt "${irq0:-0}" ] && [ "$(field serial pid)" = "$pid0" ]
result serial_irqs_rise $? "driver interrupts ${irq0:-0} -> ${irq1:-0} over the two transfers; $(grep -E 'serial16550: stats' "$log" | tail -1 | sed 's/.*stats: //'); same driver pid $pid0 throughout"

# the driver killed while bytes flow both ways; the pty stays open throughout
head -c $((256 * 1024)) /dev/urandom >"$WORK/kup.bin"
head -c $((256 * 1024)) /dev/urandom >"$WORK/kdown.bin"
drain "$fartty"
drain "$pty"
timeout 120 head -c $((256 * 1024)) "$fartty" >"$WORK/kup.rx" &
r_up=$!
timeout 120 head -c $((256 * 1024)) "$pty" >"$WORK/kdown.rx" &
r_down=$!
sleep 0.3
timeout 120 cat "$WORK/kup.bin" >"$pty" &
w_up=$!
timeout 120 cat "$WORK/kdown.bin" >"$fartty" &
w_down=$!
for _ in $(seq 50); do [ "$(stat -c %s "$WORK/kdown.rx")" -gt 32768 ] && break; sleep 0.1; done
before=$(($(stat -c %s "$WORK/kup.rx") + $(stat -c %s "$WORK/kdown.rx")))
kill -KILL "$pid0"
wait_for "$log" '"serial" \(pid '"$pid0"'\) ended: killed by SIGKILL' 10
wait_for "$log" "pty\| term-pty: .* <-> terminal session 2" 30
wait "$w_up"; wu=$?
wait "$w_down"; wd=$?
wait "$r_up"; ru=$?
wait "$r_down"; rd=$?
pid1=$(field serial pid)
up_ok=1 down_ok=1
cmp -s "$WORK/kup.bin" "$WORK/kup.rx" && up_ok=0
cmp -s "$WORK/kdown.bin" "$WORK/kdown.rx" && down_ok=0
ended=$(grep -E "term-pty: session 1 ended" "$log" | head -1 | sed 's/.*term-pty: //')
report=$(grep -E "term-pty: the line reports" "$log" | tail -1 | sed 's/.*term-pty: //')
[ "$wu$wd$ru$rd" = 0000 ] && [ -n "$pid1" ] && [ "$pid1" != "$pid0" ] && [ -n "$ended" ]
result serial_kill_pty_stays_open $? "driver pid $pid0 killed after $before bytes, restarted as $pid1; writers exit $wu/$wd, readers exit $ru/$rd (the pty never hung up); bridge: $ended"
[ $up_ok = 0 ] && [ $down_ok = 0 ]
result serial_kill_no_loss $? "256 KiB each way across the kill: pty->line $([ $up_ok = 0 ] && echo intact || echo "DIFFERS ($(cmp "$WORK/kup.bin" "$WORK/kup.rx" 2>&1 | head -1))"), line->pty $([ $down_ok = 0 ] && echo intact || echo "DIFFERS ($(cmp "$WORK/kdown.bin" "$WORK/kdown.rx" 2>&1 | head -1))"); ${report:-the driver reported no loss}"

kill -0 "$CORE_PID"
result serial_core_survived $? "core pid $CORE_PID alive"
stop_core
[ ! -e "$pty" ]
result serial_pty_link_removed $? "core stopped: $pty removed"

# the same 1 MiB through the kernel's own 8250 driver on the same port
if [ "${SERIAL_BASELINE:-1}" = 1 ]; then
	echo "$ours" >/sys/bus/pci/drivers/vfio-pci/unbind 2>/dev/null
	echo >"/sys/bus/pci/devices/$ours/driver_override" 2>/dev/null
	echo "$ours" >/sys/bus/pci/drivers/serial/bind 2>/dev/null
	for _ in $(seq 20); do ls "/sys/bus/pci/devices/$ours/tty" >/dev/null 2>&1 && break; sleep 0.1; done
	ourtty=/dev/$(ls "/sys/bus/pci/devices/$ours/tty" 2>/dev/null | head -1)
	stty -F "$ourtty" raw -echo -crtscts clocal 115200
	r1=$(transfer kup "$WORK/up.bin" "$ourtty" "$fartty" 120)
	r2=$(transfer kdown "$WORK/down.bin" "$fartty" "$ourtty" 120)
	set -- $r1
	k_up=${2:-0}
	set -- $r2
	k_down=${2:-0}
	[ "${r1%% *}" = ok ] && [ "${r2%% *}" = ok ]
	result serial_kernel_8250_baseline $? "$ourtty (kernel 8250 on $ours): out $r1 ($(rate "${k_up:-1}" $MiB) KiB/s), in $r2 ($(rate "${k_down:-1}" $MiB) KiB/s); bulkhead: out $(rate "${up_s:-1}" $MiB), in $(rate "${down_s:-1}" $MiB) KiB/s"
fi
echo "---- core log ----"
cat "$log"
