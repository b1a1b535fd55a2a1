#!/usr/bin/env bash
# vm: --devices xhci-ccid:rp:hotplug:card --mem 1024
# The USB host controller on the test machine: bulkhead's xhci driver takes
# QEMU's qemu-xhci (1b36:000d), unprivileged, starts it, enumerates the
# usb-ccid reader behind it and talks CCID to it over the bulk endpoints
# (--ccid-check); stalls and cancellations on the way. The reader is
# unplugged and plugged in again through QEMU's monitor (the hotplug option
# gives the guest a serial port to it). Then the driver is killed: core revokes, resets the controller and restarts it, and the
# reader is enumerated again. Last, the health check: a bad-dma fault sends
# the command ring where the IOMMU blocks it; the command never completes,
# the driver exits for a reset and comes back a third time.
set -u
. "$(dirname "$0")/lib.sh"

conf=$WORK/xhci-test.conf
log=$WORK/xhci-test.log
{
	conf_core
	conf_xhci "args = --ccid-check" "env = BULKHEAD_FAULTS=1" "restart = on-failure"
} >"$conf"

start_core "$conf" "$log" || { result xhci_core_start 1 "core did not start"; exit 1; }
wait_for "$log" "xhci\| xhci: (ready|ccid check done)" 60
wait_for "$log" "xhci\| xhci: ready" 10

# the driver's lines so far, without the prefix (under TCG every process
# spawned costs a noticeable share of a second: the lookups below are bash)
load() { load_lines "$log" 'xhci| xhci: '; }
load

line=$(pick "^controller started: ")
[[ $line =~ HCIVERSION\ [0-9a-f]+\.[0-9a-f]{2},\ [0-9]+\ slots,\ [0-9]+\ ports\ \(USB ]]
result xhci_controller_started $? "${line:-no start line}"

dev=$(pick "^port [0-9]+: .* device in slot [0-9]+: 08e6:4433")
cfg=$(pick "^slot [0-9]+: configuration [0-9]+ \(")
ok=$(pick "^slot [0-9]+: configured: ")
[[ -n $dev && $cfg == *"class 0x0b"* && $cfg == *"bulk IN"* && $cfg == *"bulk OUT"* && -n $ok ]]
result xhci_enumerated $? "${dev:-no 08e6:4433}; ${cfg:-no configuration}; ${ok:-not configured}"

for t in ccid_found ccid_slot_status ccid_power_on control_stall bulk_stall bulk_after_stall \
	cancel_interrupt cancel_bulk bulk_after_cancel; do
	l=$(pick "^check $t ")
	[[ $l == "check $t PASS "* ]]
	rc=$?
	l=${l#check $t }
	result "xhci_$t" $rc "${l#* }"
done

# the driver: not root, one device (the controller)
snap=$("$CLI" status)
uid=$(field xhci uid "$snap")
pid=$(field xhci pid "$snap")
ndev=$(field xhci devices "$snap")
[ "${uid:-0}" -ge 1000 ] && [ "$ndev" = 1 ]
result xhci_driver_unprivileged $? "uid=$uid pid=$pid devices=$ndev"

# hot unplug and plug: QEMU's monitor is at the other end of the pci-serial
# port (1b36:0002) that xhci-ccid:hotplug added
# what the monitor said, printable, its last 160 characters
said() { local m; m=$(tr -c '[:print:]' ' ' <"$WORK/monitor.out" | tr -s ' '); echo "${m: -160}"; }
if monitor_open; then
	gone=
	for try in 1 2; do
		monitor "device_del ccid0"
		wait_for "$log" "xhci\| xhci: port [0-9]+: slot [0-9]+ \(08e6:4433\) disconnected" 8 && break
	done
	load
	gone=$(pick "^port [0-9]+: slot [0-9]+ \(08e6:4433\) disconnected")
	[ -n "$gone" ]
	result xhci_hot_unplug $? "device_del ccid0 on $mon (try $try): ${gone:-the driver saw no disconnect; monitor: $(said)}"
	n=$(cnt "^check ccid_slot_status ")
	monitor "device_add usb-ccid,bus=xhci0.0,id=ccid0"
	wait_for_count "$log" "xhci\| xhci: check ccid_slot_status " $((n + 1)) 30
	load
	back=$(pick "^port [0-9]+: .* device in slot [0-9]+: 08e6:4433" 2)
	status=$(pick "^check ccid_slot_status " $((n + 1)))
	[[ -n $back && $status == *PASS* ]]
	result xhci_hot_plug $? "device_add usb-ccid: ${back:-not enumerated}; ${status:-no slot status; monitor: $(said)}"
	monitor_close
	exec {monfd}>&-
else
	result xhci_hot_unplug 1 "no serial port to QEMU's monitor: run with --devices xhci-ccid:hotplug"
	result xhci_hot_plug 1 "no serial port to QEMU's monitor"
fi

# kill it: core revokes, resets the controller, restarts the driver, which enumerates again
load
n_dev=$(cnt "^port [0-9]+: .* device in slot [0-9]+: 08e6:4433")
n_status=$(cnt "^check ccid_slot_status ")
t0=$SECONDS
kill -KILL "$pid"
wait_for "$log" 'started "xhci" pid [0-9]+ .*\(restart\)' 20
wait_for_count "$log" "xhci\| xhci: ready" 2 60
load
again=$(pick "^port [0-9]+: .* device in slot [0-9]+: 08e6:4433" $((n_dev + 1)))
status2=$(pick "^check ccid_slot_status " $((n_status + 1)))
[[ -n $again && $status2 == *PASS* ]]
result xhci_driver_restart $? "killed pid $pid; $(grep -oE 'revoked "xhci": [^;]*' "$log" | head -1); after $((SECONDS - t0)) s: ${again:-not enumerated again}; ${status2:-no slot status}"

# a controller that stops answering: the driver exits non-zero, core resets and restarts it
n_status=$(cnt "^check ccid_slot_status ")
pid2=$(field xhci pid)
t0=$SECONDS
"$CLI" inject "$pid2" bad-dma >/dev/null 2>&1
wait_for_count "$log" 'started "xhci" pid [0-9]+ .*\(restart\)' 2 20
wait_for_count "$log" "xhci\| xhci: ready" 3 60
load
why=$(pick "exiting so core resets the controller")
ended=$(grep -oE '"xhci" \(pid [0-9]+\) ended: [^,]*' "$log" | tail -1)
third=$(pick "^check ccid_slot_status " $((n_status + 1)))
[[ -n $why && $ended == *"exit code 70"* && $third == *PASS* ]]
result xhci_health_restart $? "bad-dma into pid $pid2: ${why:-no health exit}; $ended; after $((SECONDS - t0)) s: ${third:-no slot status}"

stop_core
echo "---- core log ----"
cat "$log"
