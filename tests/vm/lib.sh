# Helpers for guest-side test scenarios (sourced; runs inside the test machine as root).
# Each test prints one line "TEST <name> PASS|FAIL <detail>"; tests/run-all counts them.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
CORE=$BUILD/core/bulkhead-core
CLI=$BUILD/tools/bulkhead/bulkhead
WORK=${WORK:-/tmp/bulkhead-test}
mkdir -p "$WORK"

result() { # name ok(0/1) detail...
	local name=$1 ok=$2
	shift 2
	echo "[$SECONDS s] $name" >&2
	if [ "$ok" = 0 ]; then echo "TEST $name PASS $*"; else echo "TEST $name FAIL $*"; fi
}

# wait_for FILE REGEX [SECONDS]: until a line matches; 0 if it did
wait_for() {
	local file=$1 re=$2 t=${3:-30}
	local end=$((SECONDS + t))
	while [ $SECONDS -lt $end ]; do
		grep -qE -- "$re" "$file" 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}

# wait_for_count FILE REGEX N [SECONDS]: until N lines match
wait_for_count() {
	local file=$1 re=$2 n=$3 t=${4:-30}
	local end=$((SECONDS + t))
	while [ $SECONDS -lt $end ]; do
		[ "$(grep -cE -- "$re" "$file" 2>/dev/null)" -ge "$n" ] && return 0
		sleep 0.2
	done
	return 1
}

# count_of FILE REGEX: how many lines match
count_of() { grep -cE -- "$2" "$1" 2>/dev/null || true; }

# Config sections for the scenarios (print them into the config file):
# conf_core [LINE...]: the [core] section, with the scenario's extra lines
conf_core() {
	printf '[core]\nbackend = vfio\ncontrol = /run/bulkhead/core.sock\n'
	[ $# -eq 0 ] || printf '%s\n' "$@"
}
# conf_component NAME LINE...: a component section
conf_component() {
	printf '\n[component "%s"]\n' "$1"
	shift
	printf '%s\n' "$@"
}
# the drivers and bridges most scenarios use, with what never varies; the
# restart policy and the like come as extra LINEs
conf_e1000e() { # DEVICE [LINE...]
	conf_component e1000e "exec = $BUILD/drivers/e1000e/bulkhead-e1000e" "device = $1" \
		"provides = nic" "dma = 16M" "${@:2}"
}
conf_nic_tap() { # [LINE...]; NIC_SERVER=NAME for another server than e1000e
	conf_component nic-tap "exec = $BUILD/bridges/nic-tap/bulkhead-nic-tap" \
		"session = nic ${NIC_SERVER:-e1000e}" "tap = bh0" "$@"
}
conf_vm_nic() { # VM [LINE...]: the NIC server of driver VM VM (drivers/vm-nic)
	conf_component vm-nic "exec = $BUILD/drivers/vm-nic/bulkhead-vm-nic" "vm_nic = $1" \
		"provides = nic" "restart = on-failure" "${@:2}"
}
conf_nvme() { # [LINE...]
	conf_component nvme "exec = $BUILD/drivers/nvme/bulkhead-nvme" "device = 1b36:0010" \
		"provides = block" "dma = 96M" "$@"
}
conf_nbd() { # [LINE...]
	conf_component nbd "exec = $BUILD/bridges/block-nbd/bulkhead-block-nbd" \
		"session = block nvme" "nbd = 0" "$@"
}
conf_xhci() { # [LINE...]
	conf_component xhci "exec = $BUILD/drivers/xhci/bulkhead-xhci" "device = 1b36:000d" \
		"provides = usb" "dma = 4M" "backoff_ms = 200" "watchdog_ms = 5000" "$@"
}

# A component's lines from a log, loaded once and searched in bash: under TCG
# every process spawned costs a noticeable share of a second.
# load_lines LOG PREFIX: the lines that start with PREFIX (a sed regex), without it
LINES=()
load_lines() { mapfile -t LINES <<<"$(sed -n "s/^$2//p" "$1")"; }
# pick REGEX [N]: the Nth (default first) loaded line that matches
pick() {
	local l n=0
	for l in "${LINES[@]}"; do
		[[ $l =~ $1 ]] && ((++n == ${2:-1})) && { printf '%s\n' "$l"; return; }
	done
}
# cnt REGEX: how many loaded lines match
cnt() {
	local l n=0
	for l in "${LINES[@]}"; do [[ $l =~ $1 ]] && ((++n)); done
	echo $n
}

# QEMU's monitor (tools/vm/run --monitor) is at the other end of a pci-serial
# port: monitor_open finds it and keeps it open as $monfd, its output in
# $WORK/monitor.out
monitor_open() {
	local d v i t
	mon=
	for d in /sys/bus/pci/devices/*; do
		read -r v <"$d/vendor" && read -r i <"$d/device" || continue
		[ "$v:$i" = 0x1b36:0x0002 ] || continue
		for t in "$d"/tty/tty*; do [ -e "$t" ] && mon=/dev/${t##*/}; done
	done
	[ -n "$mon" ] || return 1
	stty -F "$mon" raw -echo -crtscts clocal
	exec {monfd}<>"$mon"
	cat <&"$monfd" >"$WORK/monitor.out" 2>/dev/null &
	monpid=$!
}
monitor_close() { [ -n "${monpid:-}" ] && kill "$monpid" 2>/dev/null; }
# monitor COMMAND: a monitor command, its answer lands in $WORK/monitor.out
monitor() { [ -n "${monfd:-}" ] && printf '\n%s\n' "$1" >&"$monfd"; }
# screendump FILE: QEMU's picture of the screen; 0 once the file is whole
screendump() {
	local f=$1 s0=-1 s1
	rm -f "$f"
	[ -n "$mon" ] || return 1
	printf '\nscreendump %s -f png\n' "$f" >&"$monfd"
	for _ in $(seq 50); do
		sleep 0.2
		s1=$(stat -c %s "$f" 2>/dev/null || echo -1)
		[ "$s1" -gt 0 ] && [ "$s1" = "$s0" ] && return 0
		s0=$s1
	done
	return 1
}
monitor_tail() { tr -c '[:print:]' ' ' <"$WORK/monitor.out" | tail -c 160; }
# conf_bochs DEVICE [LINE...]: the bochs driver in 1024x768x32, serving both display sessions
conf_bochs() {
	conf_component bochs "exec = $BUILD/drivers/bochs/bulkhead-bochs" "args = --mode 1024x768x32" \
		"device = $1" "provides = framebuffer" "provides = capture" "${@:2}"
}

# start_core CONFIG LOG: core in the background, its log (components' output too) in LOG
start_core() {
	"$CORE" -c "$1" >"$2" 2>&1 &
	CORE_PID=$!
	wait_for "$2" "backend (vfio|uio)" 20 || { echo "core did not start:"; cat "$2"; return 1; }
}

stop_core() {
	[ -n "${CORE_PID:-}" ] || return 0
	kill -TERM "$CORE_PID" 2>/dev/null || true
	# resets behind root ports take seconds each under TCG
	for _ in $(seq 200); do kill -0 "$CORE_PID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$CORE_PID" 2>/dev/null || true
	wait "$CORE_PID" 2>/dev/null || true
	CORE_PID=
}

# field COMPONENT|DEVICE KEY [SNAPSHOT]: a value from "bulkhead status" (or from a saved one)
field() {
	{ if [ $# -ge 3 ]; then printf '%s\n' "$3"; else "$CLI" status; fi; } |
		awk -v who="$1" -v key="$2" '$2 == who { for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == key) print kv[2] } }'
}

# frag_fixture [NETNS]: QEMU 7.2's e1000e sends every TSO segment as IPv4
# fragments, so each receiver reassembles ~45 per 64 KiB, and two things of
# Linux's reassembly then misfire on what the emulator does:
# - When the receiving NIC's ring is full, QEMU queues the rest of a
#   datagram, and the next datagram can overtake it (seen: 552 times in a
#   4 s capture). Linux drops a datagram once more than ipfrag_max_dist (64)
#   fragments of the same source came in between, and its queue times out:
#   30-44 datagrams of 5 s through bulkhead's driver, 0-1 through the
#   kernel's (why the kernel's is spared is not established; a guess: it
#   rings the doorbell per frame, ours once per batch of frames).
# - A datagram that never completes stays for ipfrag_time (30 s); once 4 MiB
#   pile up (ipfrag_high_thresh) the namespace reassembles nothing at all:
#   TCP through it collapses to a few Mbit/s, and whatever test runs next
#   pays for what an earlier one lost.
# Test namespaces get no distance limit, 2 s and 32 MiB.
frag_fixture() {
	local ns=${1:+ip netns exec $1}
	$ns sysctl -qw net.ipv4.ipfrag_high_thresh=33554432 net.ipv4.ipfrag_time=2 net.ipv4.ipfrag_max_dist=0
}

# peer_netns PCI_ADDRESS IP/PREFIX [NAME]: the kernel's own e1000e driver on
# that NIC, moved into network namespace NAME (default "peer", made if need
# be, see frag_fixture) with IP; waits for carrier. Prints the interface name.
peer_netns() {
	local pci=$1 addr=$2 ns=${3:-peer} ifname
	modprobe e1000e
	for _ in $(seq 50); do [ -d "/sys/bus/pci/devices/$pci/net" ] && break; sleep 0.1; done
	ifname=$(ls "/sys/bus/pci/devices/$pci/net" 2>/dev/null | head -1)
	# a second NIC may join a namespace the first one made
	[ -e "/run/netns/$ns" ] || { ip netns add "$ns" && frag_fixture "$ns"; }
	ip link set "$ifname" netns "$ns"
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "$addr" dev "$ifname"
	ip -n "$ns" link set "$ifname" up
	# the kernel driver reports carrier from its watchdog, a second or two later
	for _ in $(seq 50); do
		[ "$(ip netns exec "$ns" cat "/sys/class/net/$ifname/carrier" 2>/dev/null)" = 1 ] && break
		sleep 0.1
	done
	echo "$ifname"
}

# tap_up LOG TAP IP/PREFIX: bring up a nic-tap interface with the NIC's own
# MAC (the bridge prints it), so the NIC's unicast filter passes its traffic
tap_up() {
	local log=$1 tap=$2 addr=$3 mac
	mac=$(grep -oE "ip link set $tap address [0-9a-f:]{17}" "$log" | head -1 | awk '{ print $NF }')
	ip link set "$tap" address "$mac"
	ip addr add "$addr" dev "$tap"
	ip link set "$tap" up
}

# core_fds, core_rss, core_mem: core's open fds, its VmRSS in KiB, and
# "VmRSS=.. RssAnon=.. RssFile=.. RssShmem=.." (KiB), for leak checks
core_fds() { ls "/proc/$CORE_PID/fd" | wc -l; }
core_rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$CORE_PID/status"; }
core_mem() {
	awk '/^(VmRSS|RssAnon|RssFile|RssShmem):/ { sub(":", "", $1); printf "%s%s=%s", s, $1, $2; s = " " }' \
		"/proc/$CORE_PID/status"
}
# core_maps: what core maps, one line each: "NAME SIZE_KIB RSS_KIB"
# (NAME: the file, [heap], or /memfd:bulkhead-dma for a DMA buffer)
core_maps() {
	awk '/^[0-9a-f]+-[0-9a-f]+ / { name = NF >= 6 ? $6 : "[anon]" }
		/^Size:/ { size = $2 } /^Rss:/ { print name, size, $2 }' "/proc/$CORE_PID/smaps" | sort
}
# core_own_kib FILE: of core_maps' lines in FILE, the resident KiB of core's
# own memory: heap, stack, anonymous mappings and the DMA buffers it maps
core_own_kib() { awk '$1 ~ /^(\[heap\]|\[stack\]|\[anon\]|\/memfd:)/ { k += $3 } END { print k + 0 }' "$1"; }
# core_anon_shmem: core's RssAnon + RssShmem in KiB (heap, stack, mapped DMA buffers)
core_anon_shmem() { awk '/^(RssAnon|RssShmem):/ { k += $2 } END { print k }' "/proc/$CORE_PID/status"; }

# Writes that must survive kills (the storage scenarios). kill_writers_start MNT:
# two writers in the background until kill_writers_stop:
#  - files MNT/kN, slices of one 8 MiB random pool (4-256 KiB each), hashed
#    before the write and recorded in $KW_ACKED ("SHA256  kN") once dd's fsync
#    returned;
#  - the pool rewritten over MNT/stream in 4 KiB O_DIRECT writes, again and
#    again, so requests are in flight whenever a kill lands ($WORK/kw.busy
#    while one runs); acknowledged with the last rewrite that returned.
KW_ACKED=$WORK/kw.acked
kill_writers_start() {
	local mnt=$1
	rm -f "$WORK"/kw.stop "$WORK"/kw.done* "$WORK"/kw.busy "$WORK"/kw.stream-acked
	: >"$KW_ACKED"
	head -c $((8 << 20)) /dev/urandom >"$WORK/kw.pool"
	(
		i=0 errors=0
		while [ ! -e "$WORK/kw.stop" ]; do
			i=$((i + 1))
			n=$((RANDOM % 64 + 1)) off=$((RANDOM % 1900))
			sum=$(dd if="$WORK/kw.pool" bs=4k skip=$off count=$n status=none | sha256sum)
			if dd if="$WORK/kw.pool" of="$mnt/k$i" bs=4k skip=$off count=$n conv=fsync status=none; then
				echo "${sum%% *}  k$i" >>"$KW_ACKED"
			else
				errors=$((errors + 1))
			fi
		done
		echo "$i $errors" >"$WORK/kw.done1"
	) 2>"$WORK/kw.err" &
	KW_PIDS=$!
	(
		i=0 errors=0
		while [ ! -e "$WORK/kw.stop" ]; do
			i=$((i + 1))
			touch "$WORK/kw.busy"
			if dd if="$WORK/kw.pool" of="$mnt/stream" bs=4k oflag=direct conv=notrunc,fsync \
				status=none; then
				echo ok >"$WORK/kw.stream-acked"
			else
				errors=$((errors + 1))
				rm -f "$WORK/kw.stream-acked"
			fi
		done
		rm -f "$WORK/kw.busy"
		echo "$i $errors" >"$WORK/kw.done2"
	) 2>>"$WORK/kw.err" &
	KW_PIDS="$KW_PIDS $!"
	wait_for_count "$KW_ACKED" . 3 60
}

# kill_writers_busy: until a rewrite is under way (4 s at most), so a kill finds requests in flight
kill_writers_busy() {
	for _ in $(seq 40); do [ -e "$WORK/kw.busy" ] && break; sleep 0.1; done
	sleep 0.3
}

# kill_writers_stop: stop and wait. Sets KW_FILES (files tried), KW_NFILES
# (acknowledged), KW_REWRITES, KW_ERRORS ("0" or the counts with the first
# error text); the stream joins $KW_ACKED if its last rewrite returned.
kill_writers_stop() {
	local e1 e2
	touch "$WORK/kw.stop"
	# shellcheck disable=SC2086 # two pids
	wait $KW_PIDS
	read -r KW_FILES e1 <"$WORK/kw.done1" 2>/dev/null || { KW_FILES=0; e1=writer-lost; }
	read -r KW_REWRITES e2 <"$WORK/kw.done2" 2>/dev/null || { KW_REWRITES=0; e2=writer-lost; }
	KW_NFILES=$(wc -l <"$KW_ACKED")
	[ -e "$WORK/kw.stream-acked" ] &&
		echo "$(sha256sum <"$WORK/kw.pool" | cut -d' ' -f1)  stream" >>"$KW_ACKED"
	KW_ERRORS=$e1
	[ "$e2" = 0 ] || KW_ERRORS="$e1+$e2"
	[ -s "$WORK/kw.err" ] && KW_ERRORS="$KW_ERRORS: $(head -c 200 "$WORK/kw.err")"
}

# conf_nvme_killable: the [core] section and the NVMe driver of the kill
# scenarios: restarted at once, as often as it takes, watched by the watchdog
conf_nvme_killable() {
	conf_core
	conf_nvme "restart = always" "backoff_ms = 50" "backoff_max_ms = 200" \
		"max_restarts = 100" "watchdog_ms = 5000"
}

# iperf3's output -> the receiver's Mbit/s ("0" if there is none)
mbits() { awk '/receiver$/ { for (i = 1; i <= NF; i++) if ($i ~ /bits\/sec/) { v = $(i - 1); u = $i } }
	END { if (u ~ /^G/) v *= 1000; if (u ~ /^K/) v /= 1000; if (v != "") printf "%.1f", v; else print "0" }'; }
# measure NAME NETNS [DEST]: TCP both ways for $T s (iperf3, a server at
# DEST) and 20 pings from namespace NETNS (the root if empty) to DEST
# (default 10.0.0.2); "NAME tx_mbits|rx_mbits|ping_ms VALUE" lines to $out
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
