# Sourced by bench/nic/guest.sh (or run alone: bench/nic/dpdk.sh, with the
# peer set up by the caller). The DPDK baseline: dpdk-testpmd with DPDK's
# e1000 poll-mode driver on one e1000e bound to vfio-pci, in icmpecho mode
# (it answers ARP and ICMP echo requests itself), pinged by the kernel's
# e1000e in namespace "peer" on the same hub. Writes "dpdk ping_ms" to $out,
# or "dpdk error <why>" when it cannot be brought up.
dpdk_measure() { # PCI-ADDRESS
	local dev=$1 log=${WORK:-/tmp}/dpdk-testpmd.log pid why="" ping
	if ! command -v dpdk-testpmd >/dev/null; then
		why="dpdk-testpmd is not installed (bench/nic/install-deps)"
	else
		modprobe vfio-pci 2>/dev/null
		[ -e "/sys/bus/pci/devices/$dev/driver" ] && echo "$dev" >"/sys/bus/pci/devices/$dev/driver/unbind"
		echo vfio-pci >"/sys/bus/pci/devices/$dev/driver_override"
		echo "$dev" >/sys/bus/pci/drivers/vfio-pci/bind 2>/dev/null
		[ -e /sys/bus/pci/drivers/vfio-pci/$dev ] || why="cannot bind $dev to vfio-pci"
	fi
	if [ -z "$why" ]; then
		# one forwarding lcore polls; the other vCPU keeps the guest (and ping) going
		sleep 100000 | dpdk-testpmd -l 0-1 --no-huge -m 512 --iova-mode=va -a "$dev" \
			-- --total-num-mbufs=8192 --forward-mode=icmpecho --auto-start >"$log" 2>&1 &
		for _ in $(seq 150); do
			grep -qE "Press enter to exit|EAL: Error|Fail|Cannot|No probed" "$log" 2>/dev/null && break
			sleep 0.2
		done
		if ! grep -q "Press enter to exit" "$log"; then
			why=$(grep -m1 -E "EAL: Error|Fail|Cannot|No probed|error" "$log" || tail -1 "$log")
			why=${why:-"testpmd did not start within 30 s"}
		else
			ip netns exec peer ip neigh flush all 2>/dev/null
			ip netns exec peer busybox ping -c 3 -W 3 10.0.0.1 >/dev/null 2>&1
			ping=$(ip netns exec peer busybox ping -c 20 -i 0.2 -W 3 10.0.0.1 2>&1 | awk -F'[/ ]+' '/round-trip/ { print $(NF - 2) }')
			[ -n "$ping" ] || why="testpmd runs but answered no ping ($(grep -m1 -i "link\|port 0" "$log"))"
		fi
		pkill -f "^sleep 100000" 2>/dev/null
		pid=$(pgrep -f "dpdk-testpmd -l 0-1" | head -1)
		[ -n "$pid" ] && kill -INT "$pid" 2>/dev/null
		sleep 2
		[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
		echo "bench: dpdk-testpmd log:"
		sed 's/^/bench:   /' "$log" | tail -25
	fi
	echo "" >"/sys/bus/pci/devices/$dev/driver_override" 2>/dev/null
	[ -e "/sys/bus/pci/devices/$dev/driver" ] && echo "$dev" >"/sys/bus/pci/devices/$dev/driver/unbind"
	if [ -n "$why" ]; then
		echo "dpdk error $why" >>"$out"
		echo "bench: dpdk: not measured: $why"
	else
		echo "dpdk ping_ms $ping" >>"$out"
		echo "bench: dpdk: ping avg $ping ms"
	fi
}
