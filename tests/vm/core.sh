#!/usr/bin/env bash
# vm: --devices edu:rp,pci-serial
# Core scenarios on the test machine (devices: edu). One boot, one core, many checks:
# port I/O, MMIO, INTx and MSI, DMA through the IOMMU, policy refusals, a hostile
# component, and a killed driver that is revoked, reset and restarted.
set -u
. "$(dirname "$0")/lib.sh"

conf=$WORK/core-test.conf
log=$WORK/core-test.log
cat >"$conf" <<CONF
[core]
backend = vfio
control = /run/bulkhead/core.sock

[component "pit"]
exec = $BUILD/drivers/pit/bulkhead-pit
args = 8
ioport = 0x40-0x43
restart = never

[component "edu"]
exec = $BUILD/drivers/edu/bulkhead-edu
args = --dma-outside
device = 1234:11e8
restart = on-failure
# long enough to read core's state between the death and the restart
backoff_ms = 6000
dma = 1M

[component "ioport"]
exec = $BUILD/tests/bulkhead-ioport-probe
device = serial
restart = never

[component "escape"]
exec = $BUILD/tests/bulkhead-escape
restart = never

[component "hang"]
exec = $BUILD/tests/bulkhead-rogue
args = hang
watchdog_ms = 600
restart = on-failure
max_restarts = 1
backoff_ms = 100

[component "rogue"]
exec = $BUILD/tests/bulkhead-rogue
args = oversize
restart = never
CONF

start_core "$conf" "$log" || { result core_start 1 "core did not start"; exit 1; }
wait_for "$log" "edu\| edu: (all tests passed|FAILED)" 60
wait_for "$log" "pit\| pit: counter decreasing" 30
wait_for "$log" '"rogue" .*ended' 15

# stage 1: port I/O from a process that is not root
pit_uid=$(field pit uid)
line=$(grep -E "pit\| pit: counter decreasing" "$log")
grep -qE "pit\| pit: counter decreasing.*PASS" "$log" && [ "${pit_uid:-0}" -ge 1000 ]
result pit_counter $? "uid=$pit_uid: ${line#*pit: }"
grep -qE "pit\| pit: denied as expected: .*outside the policy" "$log" &&
	grep -qE "pit\| pit: inb\(0x61\) outside the grant faulted" "$log"
result pit_ports_outside_policy $? "$(grep -oE 'I/O ports 0x60-0x60 are outside[^;]*' "$log" | head -1)"

# io_port through a PCI I/O BAR (pci-serial's 16550)
wait_for "$log" "ioport\| ioport: TEST" 20
line=$(grep -E "ioport\| ioport: TEST ioport" "$log" | head -1)
echo "$line" | grep -q " PASS "
result pci_io_bar $? "$(echo "${line#*TEST ioport }" | sed -E 's/^ *(PASS|FAIL) *//')"

# stages 2-4: the edu driver's own checks, each reported as PASS/FAIL
for t in identity factorial intx msi dma iommu policy; do
	line=$(grep -E "edu\| edu: TEST $t " "$log" | head -1)
	echo "$line" | grep -q " PASS "
	result "edu_$t" $? "$(echo "${line#*TEST $t }" | sed -E 's/^ *(PASS|FAIL) *//')"
done
# core attributes the blocked DMA to the driver that programmed it
wait_for "$log" 'IOMMU blocked a DMA by .* \("edu"\) to device address 0xff00000' 10
result iommu_fault_reported $? "$(grep -oE 'IOMMU blocked a DMA by .* to device address 0x[0-9a-f]+' "$log" | head -1); iommu_faults=$(field edu iommu_faults)"
edu_uid=$(field edu uid)
[ "${edu_uid:-0}" -ge 1000 ] && ! grep -q "edu: uid 0," "$log"
result edu_unprivileged $? "edu ran as uid $edu_uid"

# a request outside policy is refused with a reason, logged, and everyone keeps running
grep -qE 'policy: denied "edu" acquire: device 1 is not granted' "$log" &&
	[ "$(field edu state)" = running ] && kill -0 "$CORE_PID"
result policy_refusal_logged $? "$(grep -oE 'policy: denied "edu" acquire: [^;]*' "$log" | head -1)"

# the sandbox: host files, exec, sockets, other processes, fork: all refused; then SIGSYS
wait_for "$log" '"escape" \(pid [0-9]+\) ended' 15
grep -qE "escape\| escape: 7 of 7 refused; I am pid 1 in my own pid namespace" "$log" &&
	grep -qE '"escape" \(pid [0-9]+\) ended: killed by SIGSYS \(seccomp' "$log" &&
	! grep -q "escape: STILL ALIVE" "$log"
result sandbox_escape $? "$(grep -oE 'escape: [0-9] of 7 refused' "$log"); $(grep -oE 'ended: killed by SIGSYS[^,]*' "$log" | head -1)"

# a hung component: the watchdog kills it, it is restarted once, then marked failed
wait_for "$log" '"hang" restarted 1 times: giving up' 30
n=$(grep -cE '"hang" \(pid [0-9]+\) ended: killed by SIGKILL: watchdog' "$log")
[ "$n" = 2 ] && [ "$(field hang state)" = failed ]
result watchdog_hang $? "$n watchdog kills, state=$(field hang state): $(grep -oE 'watchdog: "hang" silent for [0-9]+ ms' "$log" | head -1)"

# a hostile component: its connection is closed, core serves everyone else
grep -qE 'protocol: "rogue" sent a bad message \(datagram of' "$log" &&
	grep -qE '"rogue" \(pid [0-9]+\) ended: .*protocol violation' "$log" &&
	kill -0 "$CORE_PID" && [ "$(field edu state)" = running ]
result malformed_message $? "$(grep -oE 'protocol: "rogue" sent a bad message \([^)]*\)' "$log" | head -1)"

# kill the driver: core disables bus mastering, resets the device, unmaps its DMA, restarts it
dev=$("$CLI" status | awk '$1 == "device" && /owner=edu/ { print $2 }')
resets0=$(field "$dev" resets)
dma0=$(field edu dma_mappings)
pid0=$(field edu pid)
kill -KILL "$pid0"
wait_for "$log" '"edu" \(pid '"$pid0"'\) ended: killed by SIGKILL' 10
wait_for "$log" 'revoked "edu":' 10
revoked=$(grep -E 'revoked "edu":' "$log" | tail -1)
# core's own state while the driver is down
snap=$("$CLI" status)
down="state=$(field edu state "$snap") dma_mappings=$(field edu dma_mappings "$snap") dma_bytes=$(field edu dma_bytes "$snap") acquired=$(field "$dev" acquired "$snap") bus_master=$(field "$dev" bus_master "$snap") irq=$(field "$dev" irq "$snap") resets=$(field "$dev" resets "$snap")"
[ "$down" = "state=backoff dma_mappings=0 dma_bytes=0 acquired=0 bus_master=0 irq=none resets=$((resets0 + 1))" ]
result revoked_state $? "while down: $down (resets before: $resets0)"
wait_for "$log" 'started "edu" pid [0-9]+ .*\(restart\)' 15
wait_for "$log" "edu\| edu: uid .* start 2" 15
wait_for_count "$log" "edu\| edu: (all tests passed|FAILED)" 2 60
pid1=$(field edu pid)
resets1=$(field "$dev" resets)
restarts=$(field edu restarts)
echo "$revoked" | grep -qE "bus mastering off on 1 device\(s\), 1 reset, [1-9][0-9]* DMA buffer\(s\) .* unmapped; DMA mappings now 0"
rev_ok=$?
[ "$rev_ok" = 0 ] && [ "${dma0:-0}" -ge 1 ] && [ "$resets1" -gt "$resets0" ] &&
	[ "$restarts" = 1 ] && [ "$pid1" != "$pid0" ] && [ "$pid1" != 0 ]
result kill_revoke_restart $? "dma mappings before=$dma0; ${revoked#*revoked }; resets $resets0->$resets1; pid $pid0->$pid1, restarts=$restarts"
[ "$(grep -cE 'edu\| edu: all tests passed' "$log")" -ge 2 ]
result restarted_driver_works $? "$(grep -cE 'edu\| edu: all tests passed' "$log") clean runs"

kill -0 "$CORE_PID"
result core_survived $? "core pid $CORE_PID alive after all of the above"
stop_core
grep -q "core stopped" "$log"
result core_clean_stop $? "$(tail -1 "$log")"
echo "---- core log ----"
cat "$log"
