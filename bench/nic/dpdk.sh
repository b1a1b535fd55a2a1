# Sourced by bench/nic/guest.sh. The DPDK baselines: dpdk-testpmd with DPDK's
# e1000 poll-mode driver on e1000e NICs bound to vfio-pci in the guest.
# - dpdk_ping: one NIC in icmpecho mode (testpmd answers ARP and ICMP echo
#   itself), pinged by the kernel's e1000e in namespace "peer" on the same hub.
# - dpdk_gateway: two NICs in io-forward mode, port 0 <-> port 1 unchanged (an
#   L2 bridge), between "peer" (hub 0) and "dst" (hub 1) on a subnet of their
#   own; iperf3 and ping through it, like the gateways of guest.sh.
# Each writes "<name> <metric> <value>" lines to $out, or "<name> error <why>"
# when testpmd cannot be brought up.

dpdk_log=${WORK:-/tmp}/dpdk-testpmd.log
dpdk_why=""

# bind PCI... to vfio-pci and start testpmd on them in MODE; 0 once it forwards
dpdk_start() { # MODE PCI...
	local mode=$1 dev allow=()
	shift
	dpdk_why=""
	if ! command -v dpdk-testpmd >/dev/null; then
		dpdk_why="dpdk-testpmd is not installed (bench/nic/install-deps)"
		return 1
	fi
	modprobe vfio-pci 2>/dev/null
	for dev; do
		[ -e "/sys/bus/pci/devices/$dev/driver" ] && echo "$dev" >"/sys/bus/pci/devices/$dev/driver/unbind"
		echo vfio-pci >"/sys/bus/pci/devices/$dev/driver_override"
		echo "$dev" >/sys/bus/pci/drivers/vfio-pci/bind 2>/dev/null
		[ -e "/sys/bus/pci/drivers/vfio-pci/$dev" ] || { dpdk_why="cannot bind $dev to vfio-pci"; return 1; }
		allow+=(-a "$dev")
	done
	# one forwarding lcore polls; the other vCPU keeps the guest (iperf3, ping) going
	sleep 100000 | dpdk-testpmd -l 0-1 --no-huge -m 512 --iova-mode=va "${allow[@]}" \
		-- --total-num-mbufs=8192 --forward-mode="$mode" --auto-start >"$dpdk_log" 2>&1 &
	for _ in $(seq 150); do
		grep -qE "Press enter to exit|EAL: Error|Fail|Cannot|No probed" "$dpdk_log" 2>/dev/null && break
		sleep 0.2
	done
	grep -q "Press enter to exit" "$dpdk_log" && return 0
	dpdk_why=$(grep -m1 -E "EAL: Error|Fail|Cannot|No probed|error" "$dpdk_log" || tail -1 "$dpdk_log")
	dpdk_why=${dpdk_why:-"testpmd did not start within 30 s"}
	return 1
}

# stop testpmd, show its log (with its port statistics), free PCI... again
dpdk_stop() { # PCI...
	local pid dev
	pkill -f "^sleep 100000" 2>/dev/null
	pid=$(pgrep -f "dpdk-testpmd -l 0-1" | head -1)
	[ -n "$pid" ] && kill -INT "$pid" 2>/dev/null
	sleep 2
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	if [ -s "$dpdk_log" ]; then
		echo "bench: dpdk-testpmd log:"
		grep -E "statistics for|RX-packets|TX-packets|Link|rror" "$dpdk_log" | sed 's/^/bench:   /' | tail -24
	fi
	rm -f "$dpdk_log"
	for dev; do
		echo "" >"/sys/bus/pci/devices/$dev/driver_override" 2>/dev/null
		[ -e "/sys/bus/pci/devices/$dev/driver" ] && echo "$dev" >"/sys/bus/pci/devices/$dev/driver/unbind"
	done
}

dpdk_not_measured() { # NAME
	echo "$1 error $dpdk_why" >>"$out"
	echo "bench: $1: not measured: $dpdk_why"
}

dpdk_ping() { # PCI-ADDRESS
	local ping=""
	if dpdk_start icmpecho "$1"; then
		ip netns exec peer ip neigh flush all 2>/dev/null
		ip netns exec peer busybox ping -c 3 -W 3 10.0.0.1 >/dev/null 2>&1
		ping=$(ip netns exec peer busybox ping -c 20 -i 0.2 -W 3 10.0.0.1 2>&1 | awk -F'[/ ]+' '/round-trip/ { print $(NF - 2) }')
		[ -n "$ping" ] || dpdk_why="testpmd runs but answered no ping ($(grep -m1 -i "link\|port 0" "$dpdk_log"))"
	fi
	dpdk_stop "$1"
	if [ -n "$ping" ]; then
		echo "dpdk ping_ms $ping" >>"$out"
		echo "bench: dpdk: ping avg $ping ms"
	else
		dpdk_not_measured dpdk
	fi
}

# the interface of namespace NS that is not lo
ns_nic() { ip -n "$1" -o link show | awk -F': ' '$2 != "lo" { sub(/@.*/, "", $2); print $2; exit }'; }

dpdk_gateway() { # NAME PCI-A PCI-B
	local name=$1 a=$2 b=$3 pif dif
	pif=$(ns_nic peer)
	dif=$(ns_nic dst)
	# peer and dst share 10.3.0.0/24 for as long as the bridge stands
	ip -n peer addr add 10.3.0.2/24 dev "$pif"
	ip -n dst addr add 10.3.0.3/24 dev "$dif"
	if dpdk_start io "$a" "$b"; then
		if ip netns exec peer busybox ping -c 5 -W 3 10.3.0.3 >/dev/null 2>&1; then
			measure "$name" peer 10.3.0.3
		else
			dpdk_why="testpmd forwards but peer cannot reach dst through it"
		fi
	fi
	dpdk_stop "$a" "$b"
	[ -n "$dpdk_why" ] && dpdk_not_measured "$name"
	ip -n peer addr del 10.3.0.2/24 dev "$pif"
	ip -n dst addr del 10.3.0.3/24 dev "$dif"
	ip -n peer neigh flush 10.3.0.0/24 2>/dev/null
	ip -n dst neigh flush 10.3.0.0/24 2>/dev/null
}
