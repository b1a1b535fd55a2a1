#!/usr/bin/env bash
# Inside the test machine (see bench/nic/run): TCP throughput and ping latency
# against the guest kernel's e1000e in namespace "peer", from (a) a second
# kernel e1000e, (b) bulkhead's e1000e via nic-tap (zero-copy tx), (c) the
# same with one-copy tx. Writes "name metric value" lines to $BULKHEAD_OUT/nic.txt.
set -u
. "$(dirname "$0")/../../tests/vm/lib.sh"

ours=0000:00:02.0
theirs=0000:00:03.0
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
measure() { # NAME NETNS
	local name=$1 ns=${2:+ip netns exec $2}
	$ns busybox ping -c 3 -W 3 10.0.0.2 >/dev/null 2>&1 # warm up ARP
	local tx rx ping
	tx=$($ns timeout $((T + 20)) iperf3 -c 10.0.0.2 -t "$T" 2>&1 | mbits)
	rx=$($ns timeout $((T + 20)) iperf3 -c 10.0.0.2 -t "$T" -R 2>&1 | mbits)
	ping=$($ns busybox ping -c 20 -i 0.2 -W 3 10.0.0.2 2>&1 | awk -F'[/ ]+' '/round-trip/ { print $(NF - 2) }')
	echo "$name tx_mbits ${tx:-0}" >>"$out"
	echo "$name rx_mbits ${rx:-0}" >>"$out"
	echo "$name ping_ms ${ping:-0}" >>"$out"
	echo "bench: $name: tx ${tx:-0} Mbit/s, rx ${rx:-0} Mbit/s, ping avg ${ping:-?} ms"
}

# the peer: kernel e1000e on the second NIC, in its own namespace
modprobe e1000e
modprobe tun
for _ in $(seq 50); do [ -n "$(ifname $theirs)" ] && [ -n "$(ifname $ours)" ] && break; sleep 0.1; done
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
# hand the first NIC back: unbind it so core can take it
ip netns del kern
echo "$ours" >/sys/bus/pci/drivers/e1000e/unbind

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
echo "bench: done"
