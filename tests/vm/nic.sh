#!/usr/bin/env bash
# vm: --devices e1000e,e1000e --mem 1024
# The network path on the test machine: the first e1000e (0000:00:02.0) goes
# to bulkhead's e1000e driver, exposed to Linux as TAP bh0 by nic-tap; the
# second (0000:00:03.0) is driven by the guest kernel in namespace "peer".
# Both sit on one QEMU hub. Checks: link state, ping, iperf3 both ways, the
# driver's privileges, and a hostile NIC client that must not hurt it.
set -u
. "$(dirname "$0")/lib.sh"

ours=0000:00:02.0
theirs=0000:00:03.0
conf=$WORK/nic-test.conf
log=$WORK/nic-test.log
{
	conf_core "hugepages = 16"
	conf_e1000e "$ours" "restart = on-failure"
	conf_nic_tap "restart = on-failure"
	conf_component nic-hostile "exec = $BUILD/tests/bulkhead-nic-hostile" \
		"session = nic e1000e" "restart = never"
} >"$conf"

modprobe tun
start_core "$conf" "$log" || { result nic_core_start 1 "core did not start"; exit 1; }
wait_for "$log" "e1000e\| e1000e: uid" 30
wait_for "$log" "nic-tap\| nic-tap: bh0 <-> nic session" 30

# the peer: the kernel's driver on the other NIC, in its own namespace (ours is vfio's by now)
peer_if=$(peer_netns "$theirs" 10.0.0.2/24)
tap_up "$log" bh0 10.0.0.1/24

# link state: from the driver's registers to the bridge through the session
drv=$(grep -E "e1000e\| e1000e: uid" "$log" | head -1)
tap_link=$(grep -E "nic-tap\| nic-tap: link " "$log" | tail -1)
echo "$drv" | grep -q "link up" && echo "$tap_link" | grep -q "link up, 1000 Mbit/s"
result nic_link_state $? "driver: ${drv##*, link }; bridge: ${tap_link#*nic-tap: }"

# hugepages = 16: core reserved them, and nic-tap's tx stream (the NIC reads
# it in place) lies in 2 MiB pages, so a data descriptor may span 8 KiB
huge=$(grep -E "^core .*hugepages: " "$log" | head -1)
sess=$(grep -E "e1000e\| e1000e: session from \"nic-tap\": " "$log" | head -1)
[ -n "$huge" ] && echo "$sess" | grep -q " in 2048 KiB pages,"
result nic_tx_huge_pages $? "core: ${huge#*hugepages: }; driver: ${sess#*\": }"

# the hostile client runs at start; its verdicts, then the driver must be the same process
wait_for "$log" "nic-hostile\| nic-hostile: done" 30
pid0=$(field e1000e pid)
for t in nic_bad_descriptors nic_garbage_indexes nic_lying_ack_head nic_malformed_event; do
	line=$(grep -E "nic-hostile: TEST $t " "$log" | head -1)
	echo "$line" | grep -q " PASS "
	result "$t" $? "$(echo "${line#*TEST $t }" | sed -E 's/^ *(PASS|FAIL) *//')"
done

# ping through bh0 -> nic-tap -> e1000e driver -> hub -> kernel e1000e
out=$(busybox ping -c 5 -W 2 10.0.0.2 2>&1)
echo "$out" | grep -q " 0% packet loss"
result nic_ping $? "$(echo "$out" | grep -E "packet loss|round-trip" | tr '\n' ' ')"

# iperf3, 5 s each way
ip netns exec peer iperf3 -s -D -I "$WORK/iperf3.pid" >/dev/null 2>&1
sleep 0.5
gbits() { awk '/receiver$/ { for (i = 1; i <= NF; i++) if ($i ~ /bits\/sec/) { v = $(i - 1); u = $i } }
	END { if (u ~ /^M/) v /= 1000; if (u ~ /^K/) v /= 1e6; if (v != "") printf "%.3f", v }'; }
up=$(timeout 30 iperf3 -c 10.0.0.2 -t 5 2>&1)
up_g=$(echo "$up" | gbits)
[ -n "$up_g" ]
result nic_iperf3_to_peer $? "bh0 -> peer: ${up_g:-none} Gbit/s $(echo "$up" | grep -E "receiver|error" | head -1 | tr -s ' ')"
bh0_stat() { cat "/sys/class/net/bh0/statistics/$1"; }
rx_p0=$(bh0_stat rx_packets) rx_b0=$(bh0_stat rx_bytes)
down=$(timeout 30 iperf3 -c 10.0.0.2 -t 5 -R 2>&1)
down_g=$(echo "$down" | gbits)
[ -n "$down_g" ]
result nic_iperf3_from_peer $? "peer -> bh0: ${down_g:-none} Gbit/s $(echo "$down" | grep -E "receiver|error" | head -1 | tr -s ' ')"
# nic-tap's receive coalescing: what Linux got from bh0 came in packets far
# larger than one frame (the MTU is 1500), each one GSO packet of many
rx_p=$(($(bh0_stat rx_packets) - rx_p0)) rx_b=$(($(bh0_stat rx_bytes) - rx_b0))
avg=$((rx_b / (rx_p > 0 ? rx_p : 1)))
[ "$rx_b" -gt 1000000 ] && [ "$avg" -gt 4000 ]
result nic_rx_coalesced $? "bh0 received $rx_b bytes in $rx_p packets during the run: $avg bytes per packet"
kill "$(cat "$WORK/iperf3.pid" 2>/dev/null)" 2>/dev/null

# the driver: not root, exactly one device (its NIC), same process as before the attacks
snap=$("$CLI" status)
uid=$(field e1000e uid "$snap")
devs=$(echo "$snap" | awk '$1 == "device" && /owner=e1000e/ { print $2 }' | tr '\n' ' ')
ndev=$(field e1000e devices "$snap")
pid1=$(field e1000e pid "$snap")
restarts=$(field e1000e restarts "$snap")
[ "${uid:-0}" -ge 1000 ] && [ "$devs" = "$ours " ] && [ "$ndev" = 1 ]
result nic_driver_unprivileged $? "uid=$uid devices=$ndev owned=${devs% } irq=$(field "$ours" irq "$snap")"
[ -n "$pid0" ] && [ "$pid0" = "$pid1" ] && [ "$restarts" = 0 ] && kill -0 "$pid1" 2>/dev/null
result nic_driver_survived_hostile $? "driver pid $pid0 -> $pid1, restarts=$restarts, ping and iperf3 after the attacks"

# kill the driver: core revokes and restarts it; nic-tap keeps bh0 and reconnects
kill -KILL "$pid1"
wait_for "$log" 'started "e1000e" pid [0-9]+ .*\(restart\)' 20
wait_for_count "$log" "nic-tap\| nic-tap: bh0 <-> nic session" 2 30
t0=$SECONDS
out=$(busybox ping -c 3 -W 5 10.0.0.2 2>&1)
echo "$out" | grep -q " 0% packet loss" && ip link show bh0 | grep -q "state UNKNOWN\|state UP"
result nic_driver_restart $? "killed pid $pid1; $(grep -oE 'revoked "e1000e": [^;]*' "$log" | head -1); bh0 kept its address; ping after restart: $(echo "$out" | grep -oE "[0-9]+% packet loss")"

stop_core
echo "---- core log ----"
cat "$log"
