#!/usr/bin/env bash
# Inside the test machine (see bench/nic/run): TCP throughput and ping latency
# against the guest kernel's e1000e in namespace "peer", from (a) a second
# kernel e1000e, (b) bulkhead's e1000e via nic-tap (zero-copy tx), (c) the
# same with one-copy tx. Then the gateway: "peer" (hub 0) to "dst" (hub 1)
# through Linux forwarding between two middle NICs, on the kernel's e1000e
# (gw-kernel) or on two bulkhead e1000e drivers + nic-tap (gw-bulkhead).
# All of that BENCH_ROUNDS times (default 3), one path after the other in
# each round, ending with the same gateway on DPDK's e1000 PMD (dpdk-testpmd
# in io-forward mode, an L2 bridge between the two middle NICs). Last, the
# PMD in icmpecho mode on the first NIC: ping only. Writes "name metric
# value" lines to $BULKHEAD_OUT/nic.txt, one per measurement and round.
set -u
. "$(dirname "$0")/../../tests/vm/lib.sh"
. "$(dirname "$0")/dpdk.sh"

ours=0000:00:02.0
theirs=0000:00:03.0
gw_b=0000:00:04.0 # hub 1: the gateway's second leg
far=0000:00:05.0  # hub 1: the far end, in namespace "dst"
T=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
out=${BULKHEAD_OUT:-/tmp}/nic.txt
: >"$out"

# the peer: kernel e1000e on the second NIC, in its own namespace
modprobe tun
frag_fixture # the root namespace too: bh0 and bh1 live there
peer_netns "$theirs" 10.0.0.2/24 peer >/dev/null
ip netns exec peer iperf3 -s >/dev/null 2>&1 &

# the far end of the gateway: kernel e1000e on hub 1, in namespace "dst"
peer_netns "$far" 10.2.0.2/24 dst >/dev/null
ip -n dst route add default via 10.2.0.1
ip -n peer route add 10.2.0.0/24 via 10.0.0.1
ip netns exec dst iperf3 -s >/dev/null 2>&1 &

# NICs to the kernel's e1000e (core leaves them on vfio-pci), or free for core
to_kernel() { # PCI...
	local dev
	for dev; do
		[ -e "/sys/bus/pci/devices/$dev/driver" ] &&
			echo "$dev" >"/sys/bus/pci/devices/$dev/driver/unbind"
		echo "" >"/sys/bus/pci/devices/$dev/driver_override"
		echo "$dev" >/sys/bus/pci/drivers/e1000e/bind
	done
}
to_core() { # PCI...
	local dev
	for dev; do echo "$dev" >/sys/bus/pci/drivers/e1000e/unbind; done
}

# (a) kernel <-> kernel: the first NIC on the kernel's driver in namespace "kern"
kernel() {
	peer_netns "$ours" 10.0.0.1/24 kern >/dev/null
	measure kernel kern
	ip netns del kern
}

# (d) the kernel gateway: both middle NICs on the kernel's e1000e, forwarding in "gw"
gw_kernel() {
	peer_netns "$ours" 10.0.0.1/24 gw >/dev/null
	peer_netns "$gw_b" 10.2.0.1/24 gw >/dev/null
	ip netns exec gw sysctl -qw net.ipv4.ip_forward=1
	measure gw-kernel peer 10.2.0.2
	ip netns del gw
}

# config sections for one bulkhead NIC: driver e1000e<SUFFIX> on DEVICE, nic-tap<SUFFIX> on TAP
nic_sections() { # SUFFIX DEVICE TAP DRIVER-ARGS
	cat <<CONF
[component "e1000e$1"]
exec = $BUILD/drivers/e1000e/bulkhead-e1000e
args = $4
device = $2
provides = nic
dma = 16M

[component "nic-tap$1"]
exec = $BUILD/bridges/nic-tap/bulkhead-nic-tap
session = nic e1000e$1
tap = $3

CONF
}

# core with CONF; then every TAP up with the NIC's MAC and its address
start_nics() { # CONF LOG [SUFFIX TAP IP/PREFIX]...
	local conf=$1 log=$2
	shift 2
	start_core "$conf" "$log" || { echo "bench: core did not start"; return 1; }
	while [ $# -ge 3 ]; do
		wait_for "$log" "nic-tap$1\\| nic-tap: $2 <-> nic session" 30
		tap_up "$log" "$2" "$3"
		shift 3
	done
}

# hugepages: the drivers' tx streams in 2 MiB pages, which the IOMMU maps as
# such (QEMU's IOTLB holds 1024 entries and starts over when full: a 4 MiB
# stream in 4 KiB pages alone would fill it); BENCH_HUGEPAGES=0 to compare
core_section() {
	printf '[core]\nbackend = vfio\ncontrol = /run/bulkhead/core.sock\nhugepages = %s\n\n' \
		"${BENCH_HUGEPAGES:-64}"
}

bulkhead() { # NAME DRIVER-ARGS
	local conf=$WORK/bench-nic.conf log=$WORK/bench-nic-$1.log
	{ core_section; nic_sections "" "$ours" bh0 "$2"; } >"$conf"
	start_nics "$conf" "$log" "" bh0 10.0.0.1/24 || return 1
	measure "$1" ""
	stop_core
	grep -E "e1000e: uid|closed: |ended: " "$log" | sed "s/^/bench:   /"
}
# (b) bulkhead, zero-copy tx (the default); (c) one-copy tx

# (e) the bulkhead gateway: two isolated e1000e drivers, two nic-tap bridges,
# Linux forwarding between bh0 and bh1 in the root namespace
gateway() { # NAME DRIVER-ARGS
	local conf=$WORK/bench-gw.conf log=$WORK/bench-$1.log
	{ core_section; nic_sections -a "$ours" bh0 "$2"; nic_sections -b "$gw_b" bh1 "$2"; } >"$conf"
	start_nics "$conf" "$log" -a bh0 10.0.0.1/24 -b bh1 10.2.0.1/24 || return 1
	sysctl -qw net.ipv4.ip_forward=1
	measure "$1" peer 10.2.0.2
	sysctl -qw net.ipv4.ip_forward=0
	stop_core
	grep -E "e1000e: uid|closed: |ended: " "$log" | sed "s/^/bench:   /"
}

# Every path once per round, rounds one after the other: whatever else the
# host does at some moment weighs on all paths alike, and bench/nic/run
# reports each figure's median over the rounds.
for round in $(seq "$ROUNDS"); do
	echo "bench: round $round of $ROUNDS"
	[ "$round" -gt 1 ] && to_kernel "$ours" "$gw_b"
	kernel
	gw_kernel
	to_core "$ours" "$gw_b"
	bulkhead bulkhead ""
	bulkhead bulkhead-copy "--copy"
	gateway gw-bulkhead ""
	dpdk_gateway gw-dpdk "$ours" "$gw_b"
done

# (f) DPDK: dpdk-testpmd's e1000 PMD on the first NIC, pinged from "peer"
dpdk_ping "$ours"
echo "bench: done"
