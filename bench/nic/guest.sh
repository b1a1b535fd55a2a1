#!/usr/bin/env bash
# Inside the test machine (see bench/nic/run): TCP throughput and ping latency
# against the guest kernel's e1000e in namespace "peer", from (a) a second
# kernel e1000e, (b) bulkhead's e1000e via nic-tap (zero-copy tx), (c) the
# same with one-copy tx. Then the gateway: "peer" (hub 0) to "dst" (hub 1)
# through Linux forwarding between two middle NICs, on the kernel's e1000e
# (gw-kernel) or on two bulkhead e1000e drivers + nic-tap (gw-bulkhead).
# Last, DPDK's e1000 PMD (dpdk-testpmd, icmpecho) on the first NIC: ping only.
# Writes "name metric value" lines to $BULKHEAD_OUT/nic.txt.
set -u
. "$(dirname "$0")/../../tests/vm/lib.sh"

ours=0000:00:02.0
theirs=0000:00:03.0
gw_b=0000:00:04.0 # hub 1: the gateway's second leg
far=0000:00:05.0  # hub 1: the far end, in namespace "dst"
T=${BENCH_SECONDS:-5}
out=${BULKHEAD_OUT:-/tmp}/nic.txt
: >"$out"

ifname() { ls "/sys/bus/pci/devices/$1/net" 2>/dev/null | head -1; }
carrier() { # NS IF: wait for the kernel driver's link
	for _ in $(seq 50); do
		[ "$(ip netns exec "$1" cat "/sys/class/net/$2/carrier" 2>/dev/null)" = 1 ] && return
		sleep 0.1
	done
}
mbits() { awk '/receiver$/ { for (i = 1; i <= NF; i++) if ($i ~ /bits\/sec/) { v = $(i - 1); u = $i } }
	END { if (u ~ /^G/) v *= 1000; if (u ~ /^K/) v /= 1000; if (v != "") printf "%.1f", v; else print "0" }'; }

# run the three measurements from namespace $1 (or the root if empty) to the peer
measure() { # NAME NETNS [DEST]
	local name=$1 ns=${2:+ip netns exec $2} dest=${3:-10.0.0.2}
	$ns busybox ping -c 3 -W 3 "$dest" >/dev/null 2>&1 # warm up ARP
	local tx rx ping
	tx=$($ns timeout $((T + 20)) iperf3 -c "$dest" -t "$T" 2>&1 | mbits)
	rx=$($ns timeout $((T + 20)) iperf3 -c "$dest" -t "$T" -R 2>&1 | mbits)
	ping=$($ns busybox ping -c 20 -i 0.2 -W 3 "$dest" 2>&1 | awk -F'[/ ]+' '/round-trip/ { print $(NF - 2) }')
	echo "$name tx_mbits ${tx:-0}" >>"$out"
	echo "$name rx_mbits ${rx:-0}" >>"$out"
	echo "$name ping_ms ${ping:-0}" >>"$out"
	echo "bench: $name: tx ${tx:-0} Mbit/s, rx ${rx:-0} Mbit/s, ping avg ${ping:-?} ms"
}

# the peer: kernel e1000e on the second NIC, in its own namespace
modprobe e1000e
modprobe tun
for _ in $(seq 50); do [ -n "$(ifname $theirs)" ] && [ -n "$(ifname $ours)" ] && [ -n "$(ifname $far)" ] && break; sleep 0.1; done
peer_if=$(ifname $theirs)
ip netns add peer
ip link set "$peer_if" netns peer
ip -n peer link set lo up
ip -n peer addr add 10.0.0.2/24 dev "$peer_if"
ip -n peer link set "$peer_if" up
ip netns exec peer iperf3 -s >/dev/null 2>&1 &

# (a) kernel <-> kernel: the first NIC on the kernel's driver in namespace "kern"
kern_if=$(ifname $ours)
ip netns add kern
ip link set "$kern_if" netns kern
ip -n kern link set lo up
ip -n kern addr add 10.0.0.1/24 dev "$kern_if"
ip -n kern link set "$kern_if" up
carrier peer "$peer_if"
carrier kern "$kern_if"
measure kernel kern
ip netns del kern

# the far end of the gateway: kernel e1000e on hub 1, in namespace "dst"
far_if=$(ifname $far)
ip netns add dst
ip link set "$far_if" netns dst
ip -n dst link set lo up
ip -n dst addr add 10.2.0.2/24 dev "$far_if"
ip -n dst link set "$far_if" up
ip -n dst route add default via 10.2.0.1
ip -n peer route add 10.2.0.0/24 via 10.0.0.1
ip netns exec dst iperf3 -s >/dev/null 2>&1 &

# (d) the kernel gateway: both middle NICs on the kernel's e1000e, forwarding in "gw"
for _ in $(seq 50); do [ -n "$(ifname $ours)" ] && break; sleep 0.1; done
gw_if_a=$(ifname $ours)
gw_if_b=$(ifname $gw_b)
ip netns add gw
ip link set "$gw_if_a" netns gw
ip link set "$gw_if_b" netns gw
ip netns exec gw sysctl -qw net.ipv4.ip_forward=1
ip -n gw addr add 10.0.0.1/24 dev "$gw_if_a"
ip -n gw addr add 10.2.0.1/24 dev "$gw_if_b"
ip -n gw link set "$gw_if_a" up
ip -n gw link set "$gw_if_b" up
carrier gw "$gw_if_a"
carrier gw "$gw_if_b"
carrier dst "$far_if"
measure gw-kernel peer 10.2.0.2
ip netns del gw
# hand both middle NICs back: unbind them so core can take them
echo "$ours" >/sys/bus/pci/drivers/e1000e/unbind
echo "$gw_b" >/sys/bus/pci/drivers/e1000e/unbind

bulkhead() { # NAME DRIVER-ARGS
	local conf=$WORK/bench-nic.conf log=$WORK/bench-nic-$1.log
	cat >"$conf" <<CONF
[core]
backend = vfio
control = /run/bulkhead/core.sock

[component "e1000e"]
exec = $BUILD/drivers/e1000e/bulkhead-e1000e
args = $2
device = $ours
provides = nic
dma = 16M

[component "nic-tap"]
exec = $BUILD/bridges/nic-tap/bulkhead-nic-tap
session = nic e1000e
tap = bh0
CONF
	start_core "$conf" "$log" || { echo "bench: core did not start"; return 1; }
	wait_for "$log" "nic-tap\| nic-tap: bh0 <-> nic session" 30
	mac=$(grep -oE "ip link set bh0 address [0-9a-f:]{17}" "$log" | head -1 | awk '{ print $NF }')
	ip link set bh0 address "$mac"
	ip addr replace 10.0.0.1/24 dev bh0
	ip link set bh0 up
	measure "$1" ""
	stop_core
	grep -E "e1000e: uid" "$log"
}
# (b) bulkhead, zero-copy tx (the default); (c) one-copy tx
bulkhead bulkhead ""
bulkhead bulkhead-copy "--copy"

# (e) the bulkhead gateway: two isolated e1000e drivers, two nic-tap bridges,
# Linux forwarding between bh0 and bh1 in the root namespace
gateway() { # NAME DRIVER-ARGS
	local conf=$WORK/bench-gw.conf log=$WORK/bench-$1.log
	cat >"$conf" <<CONF
[core]
backend = vfio
control = /run/bulkhead/core.sock

[component "e1000e-a"]
exec = $BUILD/drivers/e1000e/bulkhead-e1000e
args = $2
device = $ours
provides = nic
dma = 16M

[component "e1000e-b"]
exec = $BUILD/drivers/e1000e/bulkhead-e1000e
args = $2
device = $gw_b
provides = nic
dma = 16M

[component "nic-tap-a"]
exec = $BUILD/bridges/nic-tap/bulkhead-nic-tap
session = nic e1000e-a
tap = bh0

[component "nic-tap-b"]
exec = $BUILD/bridges/nic-tap/bulkhead-nic-tap
session = nic e1000e-b
tap = bh1
CONF
	start_core "$conf" "$log" || { echo "bench: core did not start"; return 1; }
	wait_for "$log" "nic-tap-a\| nic-tap: bh0 <-> nic session" 30
	wait_for "$log" "nic-tap-b\| nic-tap: bh1 <-> nic session" 30
	local i mac
	for i in 0 1; do
		mac=$(grep -oE "ip link set bh$i address [0-9a-f:]{17}" "$log" | head -1 | awk '{ print $NF }')
		ip link set "bh$i" address "$mac"
	done
	ip addr replace 10.0.0.1/24 dev bh0
	ip addr replace 10.2.0.1/24 dev bh1
	ip link set bh0 up
	ip link set bh1 up
	sysctl -qw net.ipv4.ip_forward=1
	measure "$1" peer 10.2.0.2
	sysctl -qw net.ipv4.ip_forward=0
	stop_core
	grep -E "e1000e: uid" "$log"
}
gateway gw-bulkhead ""

# (f) DPDK: dpdk-testpmd's e1000 PMD on the first NIC, pinged from "peer"
. "$(dirname "$0")/dpdk.sh"
dpdk_measure "$ours"
echo "bench: done"
