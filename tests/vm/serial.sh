#!/usr/bin/env bash
# vm: --devices pci-serial:echo --mem 1024 --timeout 1500
# The serial line on the test machine: bulkhead's 16550A driver serves QEMU's
# pci-serial as a Terminal session, the term-pty bridge makes it a pty, and
# ordinary programs (cat, head, stty) use it. The other end of the line is a
# program on the host (tools/vm/run pci-serial:echo, tools/vm/serial-echo)
# that sends every byte back and logs the sha256 of what it received: 1 MiB
# each way, checked by sha256 on both ends; a lying Terminal client beside
# the bridge; the driver killed mid-transfer under an open pty; the same
# transfer through the kernel's own 8250 driver on the same port.
set -u
. "$(dirname "$0")/lib.sh"

conf=$WORK/serial-test.conf
log=$WORK/serial-test.log
pty=/run/bulkhead/pty/ser0
MiB=1048576

ours=$(first_dev 0x1b36:0x0002)
echolog=${BULKHEAD_OUT:-/nonexistent}/pci-serial0.echo
[ -n "$ours" ] && [ -f "$echolog" ]
result serial_port $? "ours $ours; the host's end logs to $echolog" || exit 1

# SERIAL_IOPORT=1: the driver does in/out on BAR0's ports, which core grants
# by ioperm like the PIT's, instead of a pread/pwrite on the BAR's fd each
ioport_lines=
if [ "${SERIAL_IOPORT:-0}" = 1 ]; then
	bar=$(sed -n 1p "/sys/bus/pci/devices/$ours/resource")
	lo=$(printf '0x%x' "$(echo "$bar" | awk '{ print $1 }')")
	hi=$(printf '0x%x' "$(echo "$bar" | awk '{ print $2 }')")
	ioport_lines="args = --baud 115200 --ioport $lo
ioport = $lo-$hi"
fi

cat >"$conf" <<CONF
[core]
backend = vfio
control = /run/bulkhead/core.sock

[component "serial"]
exec = $BUILD/drivers/serial16550/bulkhead-serial16550
${ioport_lines:-args = --baud 115200}
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

# what waits in the tty (the hostile client's one good byte, echoed) goes first
drain() { timeout 2 dd if="$1" of=/dev/null iflag=nonblock status=none 2>/dev/null || true; }

# the host's last burst, once it has ended: "BYTES SHA256"
host_burst() { # bytes-wanted
	local end=$((SECONDS + 20)) last
	while [ $SECONDS -lt $end ]; do
		last=$(tail -1 "$echolog" 2>/dev/null)
		[ "${last%% *}" = "$1" ] && break
		sleep 0.5
	done
	echo "$last"
}

# FILE out through TTY and back from the host, on one open file;
# prints "ok SECONDS" or "bad ..."; $WORK/NAME.rx holds what came back
transfer() { # name src tty timeout
	local name=$1 src=$2 tty=$3 t=$4 size t0 t1 rc
	size=$(stat -c %s "$src")
	drain "$tty"
	exec 3<>"$tty"
	t0=$(date +%s.%N)
	timeout "$t" head -c "$size" <&3 >"$WORK/$name.rx" &
	local reader=$!
	timeout "$t" cat "$src" >&3
	wait "$reader"
	rc=$?
	t1=$(date +%s.%N)
	exec 3>&-
	if [ "$rc" = 0 ] && cmp -s "$src" "$WORK/$name.rx"; then
		echo "ok $(echo "$t1 - $t0" | bc)"
	else
		echo "bad reader-exit $rc, $(stat -c %s "$WORK/$name.rx") bytes back"
	fi
}
rate() { echo "scale=1; $2 / $1 / 1024" | bc 2>/dev/null; } # seconds bytes -> KiB/s

size=$((${SERIAL_KIB:-1024} * 1024))
head -c $size /dev/urandom >"$WORK/data.bin"
sum=$(sha256sum <"$WORK/data.bin" | cut -d' ' -f1)
irq0=$(grep -oE 'serial16550: stats: irqs [0-9]+' "$log" | tail -1 | awk '{ print $4 }')
# 1 MiB at 115200 baud is ~40 s on a quiet host; at load 15-19 it went at
# 2.4 KiB/s with no byte lost (overrun 0), so the limit is wide
r=$(transfer data "$WORK/data.bin" "$pty" 900)
set -- $r
host=$(host_burst $size)
[ "$host" = "$size $sum" ]
result serial_pty_to_host $? "$size bytes pty -> serial16550 -> QEMU chardev -> host: host got ${host:-nothing} (sent sha256 ${sum:0:16}...)"
[ "$1" = ok ]
result serial_host_to_pty $? "$size bytes host -> QEMU chardev -> serial16550 -> pty: $r s${2:+, $(rate "$2" $size) KiB/s each way at once}, sha256 $(sha256sum <"$WORK/data.rx" | cut -c1-16)..."
ours_s=${2:-0}
sleep 2.5 # the driver prints its counts every 2 s
irq1=$(grep -oE 'serial16550: stats: irqs [0-9]+' "$log" | tail -1 | awk '{ print $4 }')
[ "${irq1:-0}" -gt "${irq0:-0}" ] && [ "$(field serial pid)" = "$pid0" ]
result serial_irqs_rise $? "driver interrupts ${irq0:-0} -> ${irq1:-0} over the transfer; $(grep -E 'serial16550: stats' "$log" | tail -1 | sed 's/.*stats: //'); same driver pid $pid0 throughout"

# the driver killed while bytes flow both ways; the pty stays open throughout
ksize=$((${SERIAL_KILL_KIB:-128} * 1024))
head -c $ksize /dev/urandom >"$WORK/kill.bin"
ksum=$(sha256sum <"$WORK/kill.bin" | cut -d' ' -f1)
drain "$pty"
exec 3<>"$pty"
head -c $ksize <&3 >"$WORK/kill.rx" &
reader=$!
timeout 200 cat "$WORK/kill.bin" >&3 &
writer=$!
for _ in $(seq 100); do [ "$(stat -c %s "$WORK/kill.rx")" -gt $((ksize / 4)) ] && break; sleep 0.1; done
before=$(stat -c %s "$WORK/kill.rx")
kill -KILL "$pid0"
wait_for "$log" '"serial" \(pid '"$pid0"'\) ended: killed by SIGKILL' 10
wait_for "$log" "pty\| term-pty: .* <-> terminal session 2" 30
wait "$writer"
wrc=$?
# what comes back has come back once the host's burst is over
khost=$(host_burst $ksize)
for _ in $(seq 40); do
	kill -0 "$reader" 2>/dev/null || break
	sleep 0.5
done
got=$(stat -c %s "$WORK/kill.rx")
if kill -0 "$reader" 2>/dev/null; then
	kill "$reader"
	rrc="still reading"
else
	rrc=0
fi
wait "$reader" 2>/dev/null
exec 3>&-
pid1=$(field serial pid)
ended=$(grep -E "term-pty: session 1 ended" "$log" | head -1 | sed 's/.*term-pty: //')
report=$(grep -E "term-pty: the line reports" "$log" | tail -1 | sed 's/.*term-pty: //')
[ "$wrc" = 0 ] && [ "$got" -gt "$before" ] && [ -n "$pid1" ] && [ "$pid1" != "$pid0" ] &&
	[ -n "$ended" ]
result serial_kill_pty_stays_open $? "driver pid $pid0 killed after $before of $ksize bytes came back, restarted as $pid1; the writer (exit $wrc) and the reader ($rrc, $got bytes) kept the same open pty; bridge: $ended"
# what was lost: the host's count against what went out, the pty's against what the
# host sent back (a byte read from the UART but not yet in a descriptor dies with the
# driver: the bytes of one interrupt at most)
hbytes=${khost%% *}
out_diff=$((${hbytes:-0} - ksize))
back_lost=$((${hbytes:-0} - got))
cmp -s "$WORK/kill.bin" "$WORK/kill.rx"
back=$?
[ "$khost" = "$ksize $ksum" ] && [ $back = 0 ]
intact=$?
# the line's direction must be intact; what the pty's direction lost is
# reported, not failed on: one clean-clone make check lost 4096 bytes of the
# echo there at the kill (a known bug, issue 15), the runs before it 0-5
[ "${out_diff#-}" -le 16 ] && [ "$back_lost" -ge 0 ]
result serial_kill_loss_bounded $? "across the kill: host got ${hbytes:-0} of $ksize bytes ($out_diff; sha256 $([ "$khost" = "$ksize $ksum" ] && echo equal || echo differs)), the pty $got of the ${hbytes:-0} sent back ($back_lost lost in the driver's hands at the kill); $([ $intact = 0 ] && echo "both ways intact" || echo "first difference: $(cmp "$WORK/kill.bin" "$WORK/kill.rx" 2>&1 | head -1)"); ${report:-the driver reported no UART loss (overrun 0)}"

kill -0 "$CORE_PID"
result serial_core_survived $? "core pid $CORE_PID alive"
stop_core
[ ! -e "$pty" ]
result serial_pty_link_removed $? "core stopped: $pty removed"

# the same transfer through the kernel's own 8250 driver on the same port
if [ "${SERIAL_BASELINE:-1}" = 1 ]; then
	echo "$ours" >/sys/bus/pci/drivers/vfio-pci/unbind 2>/dev/null
	echo >"/sys/bus/pci/devices/$ours/driver_override" 2>/dev/null
	echo "$ours" >/sys/bus/pci/drivers/serial/bind 2>/dev/null
	for _ in $(seq 20); do ls "/sys/bus/pci/devices/$ours/tty" >/dev/null 2>&1 && break; sleep 0.1; done
	ourtty=/dev/$(ls "/sys/bus/pci/devices/$ours/tty" 2>/dev/null | head -1)
	stty -F "$ourtty" raw -echo -crtscts clocal 115200
	sleep 2 # a burst of its own at the host
	r=$(transfer kernel "$WORK/data.bin" "$ourtty" 400)
	set -- $r
	host=$(host_burst $size)
	[ "$1" = ok ] && [ "$host" = "$size $sum" ]
	result serial_kernel_8250_baseline $? "$ourtty (the kernel's 8250 on $ours): $r s${2:+, $(rate "$2" $size) KiB/s each way at once}, host got ${host%% *} bytes; bulkhead: $ours_s s, $(rate "$ours_s" $size) KiB/s"
fi
echo "---- core log ----"
cat "$log"
