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
	# crash reports where the test machine can write (its root is the host's, read-only)
	printf 'crashes = %s\n' "$WORK/crashes"
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
conf_nbd() { # [LINE...]; BLOCK_SERVER=NAME for another server than nvme
	conf_component nbd "exec = $BUILD/bridges/block-nbd/bulkhead-block-nbd" \
		"session = block ${BLOCK_SERVER:-nvme}" "nbd = 0" "$@"
}
conf_vm_blk() { # VM [LINE...]: the Block server of driver VM VM (drivers/vm-blk)
	conf_component vm-blk "exec = $BUILD/drivers/vm-blk/bulkhead-vm-blk" "vm_blk = $1" \
		"provides = block" "restart = on-failure" "${@:2}"
}
conf_xhci() { # [LINE...] (XHCI_DEVICE: which controller, default any qemu-xhci)
	conf_component xhci "exec = $BUILD/drivers/xhci/bulkhead-xhci" "device = ${XHCI_DEVICE:-1b36:000d}" \
		"provides = usb" "dma = 4M" "backoff_ms = 200" "watchdog_ms = 5000" "$@"
}

# pci_devs VENDOR:DEVICE[:CLASS]: the addresses of the PCI devices of that id,
# as sysfs spells them (0x1b36:0x0002, 0x1234:0x1111:0x030000), in PCI order;
# first_dev: the first of them, or nothing
pci_devs() {
	local d v i c
	for d in /sys/bus/pci/devices/*; do
		read -r v <"$d/vendor" && read -r i <"$d/device" && read -r c <"$d/class" || continue
		[[ $v:$i:$c == "$1" || $v:$i == "$1" ]] && echo "${d##*/}"
	done
	return 0
}
first_dev() {
	local all
	all=$(pci_devs "$1")
	echo "${all%%$'\n'*}"
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
	local d t
	mon=
	for d in $(pci_devs 0x1b36:0x0002); do
		for t in /sys/bus/pci/devices/"$d"/tty/tty*; do [ -e "$t" ] && mon=/dev/${t##*/}; done
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
# conf_vesa ADDRESS [LINE...]: the VESA driver on the VGA at ADDRESS (the boot
# display, so taken from the host by address) in 1024x768x32, at most
# 1024x768, granted what its video BIOS touches, serving both display
# sessions; SeaVGABIOS's debug port (0x402) is where its writes are logged
conf_vesa() {
	conf_component vesa "exec = $BUILD/drivers/vesa/bulkhead-vesa" \
		"args = --mode 1024x768x32 --max 1024x768 --debug-port 0x402" \
		"device = $1 take-from-host" "ioport = 0x3b0-0x3df" "ioport = 0x1ce-0x1d0" \
		"legacy = bios-data" "legacy = ebda" "legacy = vga-rom" "provides = framebuffer" \
		"provides = capture" "${@:2}"
}
# conf_fb_pattern NAME DRIVER [LINE...]: fb-pattern owning DRIVER's screen
conf_fb_pattern() {
	conf_component "$1" "exec = $BUILD/tests/bulkhead-fb-pattern" "session = framebuffer $2" \
		"restart = on-failure" "${@:3}"
}
# conf_fb_png NAME DRIVER PNG [LINE...]: fb-png watching DRIVER's screen, writing PNG
conf_fb_png() {
	conf_component "$1" "exec = $BUILD/bridges/fb-png/bulkhead-fb-png" "session = capture $2" \
		"output = $3" "restart = on-failure" "${@:4}"
}

# install_staged DIR: meson install of the build into staging root DIR; prints the
# folder of its bulkhead.pc (for PKG_CONFIG_LIBDIR, with PKG_CONFIG_SYSROOT_DIR=DIR)
install_staged() {
	local stage=$1 logs_ro=
	rm -rf "$stage"
	# meson install writes its log into the build tree, which the test machine
	# sees read-only unless it lies under /tmp: give it a scratch folder there
	[ -w "$BUILD/meson-logs" ] || { mount -t tmpfs scratch "$BUILD/meson-logs" && logs_ro=1; }
	meson install -C "$BUILD" --destdir "$stage" --no-rebuild --quiet >"$WORK/install.out" 2>&1
	[ -z "$logs_ro" ] || umount "$BUILD/meson-logs"
	dirname "$stage$(sed -n 's/^prefix=//p' "$stage"/usr/local/lib/*/pkgconfig/bulkhead.pc)"/lib/*/pkgconfig/bulkhead.pc
}

# start_core CONFIG LOG: core in the background, its log (components' output too) in LOG
# (binding devices took 18 s once with the host's load average at 14)
start_core() {
	"$CORE" -c "$1" >"$2" 2>&1 &
	CORE_PID=$!
	wait_for "$2" "backend (vfio|uio)" 60 || { echo "core did not start:"; cat "$2"; return 1; }
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
#    KW_STREAM_BLOCKS: how much of the pool each rewrite writes (default
#    2048 blocks: all of it; a slow disk takes fewer).
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
			if dd if="$WORK/kw.pool" of="$mnt/stream" bs=4k count="${KW_STREAM_BLOCKS:-2048}" oflag=direct conv=notrunc,fsync \
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
		echo "$(head -c $((${KW_STREAM_BLOCKS:-2048} * 4096)) "$WORK/kw.pool" | sha256sum | cut -d' ' -f1)  stream" >>"$KW_ACKED"
	KW_ERRORS=$e1
	[ "$e2" = 0 ] || KW_ERRORS="$e1+$e2"
	[ -s "$WORK/kw.err" ] && KW_ERRORS="$KW_ERRORS: $(head -c 200 "$WORK/kw.err")"
}

# conf_ublk_killable NAME [LINE...]: the block-ublk bridge on the NVMe
# driver's session, restarted at once and as often as it takes; core
# answers no heartbeat while it bus-resets the NVMe (2-5 s under TCG)
conf_ublk_killable() {
	conf_component "$1" "exec = $BUILD/bridges/block-ublk/bulkhead-block-ublk" \
		"session = block nvme" "${@:2}" "restart = on-failure" "backoff_ms = 50" \
		"max_restarts = 100" "watchdog_ms = 10000"
}

# conf_nvme_killable: the [core] section and the NVMe driver of the kill
# scenarios: restarted at once, as often as it takes, watched by the watchdog
conf_nvme_killable() {
	conf_core
	conf_nvme "restart = always" "backoff_ms = 50" "backoff_max_ms = 200" \
		"max_restarts = 100" "watchdog_ms = 5000"
}

# ---- USB ----
# conf_usbip NAME VENDOR:PRODUCT [LINE...]: a usb-usbip bridge for the device
conf_usbip() {
	conf_component "$1" "exec = $BUILD/bridges/usb-usbip/bulkhead-usb-usbip" \
		"session = usb xhci $2" "usbip = yes" "restart = on-failure" "backoff_ms = 200" \
		"watchdog_ms = 8000" "${@:3}"
}
# usb_controllers: the PCI addresses of the qemu-xhci controllers, in PCI order
usb_controllers() { pci_devs 0x1b36:0x000d; }
# usb_device_dir VENDOR:PRODUCT WHERE: the sysfs folder of the USB device with
# that id whose path has WHERE in it (vhci_hcd, or a controller's PCI address)
usb_device_dir() {
	local d v p
	for d in /sys/bus/usb/devices/*; do
		[ -e "$d/idVendor" ] || continue
		read -r v <"$d/idVendor" && read -r p <"$d/idProduct" && [ "$v:$p" = "$1" ] || continue
		[[ $(readlink -f "$d") == *"$2"* ]] && echo "$d"
	done
	return 0
}
# usb_disk WHERE: the name of the disk (sdX) whose device path has WHERE in it
usb_disk() {
	local b
	for b in /sys/block/sd*; do
		[ -e "$b" ] && [[ $(readlink -f "$b") == *"$1"* ]] && echo "${b##*/}"
	done
	return 0
}
# poll_out SECONDS CMD...: CMD's output once it prints something (tried every
# 0.5 s; each try logged in $WORK/poll.log); 1 if it never did
poll_out() {
	local end=$((SECONDS + $1)) out
	shift
	while :; do
		out=$("$@")
		echo "[$SECONDS s] $1: ${out:-nothing}" >>"$WORK/poll.log"
		[ -n "$out" ] && { printf '%s\n' "$out"; return 0; }
		[ $SECONDS -lt $end ] || return 1
		sleep 0.5
	done
}
# scriptor_rtt PCSCD_LOG APDU N [READER]: N APDUs on one connection through
# pcscd (scriptor; READER by name, default the first), tried up to three
# times; pcscd's --apdu log says how long each took below it (its "SW:"
# lines). Sets SCRIPTOR_RTT ("N APDUs: mean X us, median Y us, best Z us"),
# SCRIPTOR_ANSWERS (answers of the last try), SCRIPTOR_TRY and SCRIPTOR_FIRST
# (the first answer)
scriptor_rtt() {
	local plog=$1 apdu=$2 n=$3 before i
	for SCRIPTOR_TRY in 1 2 3; do
		before=$(grep -c '^[0-9]* SW: ' "$plog")
		for ((i = 0; i < n; i++)); do echo "$apdu"; done |
			timeout 120 scriptor ${4:+-r "$4"} >"$WORK/scriptor.out" 2>&1
		SCRIPTOR_ANSWERS=$(grep -c '^< ' "$WORK/scriptor.out")
		[[ $SCRIPTOR_ANSWERS == "$n" ]] && break
		sleep 2
	done
	SCRIPTOR_FIRST=$(grep -m1 '^< ' "$WORK/scriptor.out")
	SCRIPTOR_RTT=$(grep -E '^[0-9]+ SW: ' "$plog" | tail -n +$((before + 1)) | awk '{ print $1 + 0 }' | sort -n |
		awk '{ v[++n] = $1; s += $1 } END { if (n) printf "%d APDUs: mean %d us, median %d us, best %d us", n, s / n, v[int((n + 1) / 2)], v[1] }')
}
# fio_job RW BS QD DEV: "iops mbps" of fio on DEV for $SECS seconds (default 5)
fio_job() {
	local rw=$1 bs=$2 qd=$3 dev=$4
	# terse v3: read KiB/s and IOPS in fields 7-8, write in 48-49 (no python in the loop).
	# gtod_reduce and iostats off: under TCG the guest clock is the HPET, and
	# per-request clock reads would handicap the kernel's path
	echo 0 >"/sys/block/${dev#/dev/}/queue/iostats" 2>/dev/null
	fio --name=j --filename="$dev" --rw="$rw" --bs="$bs" --iodepth="$qd" \
		--ioengine=libaio --direct=1 --size=128M --time_based --runtime="${SECS:-5}" \
		--randrepeat=0 --norandommap --gtod_reduce=1 --output-format=terse --terse-version=3 \
		2>/dev/null |
		awk -F';' '{ if ($8 > 0) printf "%.0f %.1f\n", $8, $7 * 1024 / 1e6;
			     else printf "%.0f %.1f\n", $49, $48 * 1024 / 1e6 }'
}
# The storage scenarios' checks (ublk.sh on 6.12, nbd.sh on 6.1), results named PREFIX_*.
# block_fs_checks PREFIX DEV MNT: mkfs.ext4, mount, 100 files of 1-64 KiB with
# their sha256 (in $BF_SUMS), umount, fsck -fn clean, remount, every file
# intact; DEV stays mounted on MNT
block_fs_checks() {
	local p=$1 dev=$2 mnt=$3 n rc urc t0
	BF_SUMS=$WORK/$p.sums
	mkdir -p "$mnt"
	mkfs.ext4 -q -F "$dev" >"$WORK/$p.mkfs" 2>&1
	result "${p}_mkfs" $? "mkfs.ext4 on $dev: $(tr '\n' ' ' <"$WORK/$p.mkfs" | cut -c1-120)"
	mount "$dev" "$mnt" 2>"$WORK/$p.mount"
	result "${p}_mount" $? "$(findmnt -no SOURCE,FSTYPE,OPTIONS "$mnt" 2>/dev/null || cat "$WORK/$p.mount")"
	t0=$SECONDS
	mkdir -p "$mnt/a"
	for i in $(seq 1 100); do
		head -c $(((RANDOM % 64 + 1) * 1024)) /dev/urandom >"$mnt/a/f$i" || break
	done
	(cd "$mnt" && sha256sum a/*) >"$BF_SUMS"
	n=$(wc -l <"$BF_SUMS")
	umount "$mnt"
	urc=$?
	[ "$urc" = 0 ] && [ "$n" = 100 ]
	result "${p}_write_files" $? "$n files written and hashed in $((SECONDS - t0)) s, umount exit $urc"
	fsck.ext4 -fn "$dev" >"$WORK/$p.fsck1" 2>&1
	rc=$?
	result "${p}_fsck_clean" $rc "fsck -fn exit $rc: $(tail -1 "$WORK/$p.fsck1")"
	mount "$dev" "$mnt" && (cd "$mnt" && sha256sum --quiet -c "$BF_SUMS") >"$WORK/$p.check1" 2>&1
	rc=$?
	result "${p}_remount_sha256" $rc "remounted; $n files checked, $(grep -c FAILED "$WORK/$p.check1") mismatches"
}

# block_kill_checks PREFIX DEV MNT LOG DRIVER BRIDGE DRIVER_BACK BRIDGE_BACK:
# with DEV mounted on MNT and the kill writers going, the components DRIVER
# and BRIDGE are each SIGKILLed $KILLS times, alternating; after each kill
# the next waits until one more line of LOG matches DRIVER_BACK (the bridge
# has a new session) or BRIDGE_BACK (the restarted bridge serves DEV again).
# Then umount, fsck -fn clean, remount, every acknowledged write and
# $BF_SUMS intact; DEV is left unmounted.
block_kill_checks() {
	local p=$1 dev=$2 mnt=$3 log=$4 drv=$5 brg=$6 dback=$7 bback=$8
	local k who pid nk=0 bk=0 d0 b0 dn bn urc frc rc t0=$SECONDS
	d0=$(count_of "$log" "$dback")
	b0=$(count_of "$log" "$bback")
	kill_writers_start "$mnt"
	for k in $(seq 1 "${KILLS:-5}"); do
		for who in "$drv" "$brg"; do
			sleep "$((RANDOM % 3 + 1)).$((RANDOM % 10))"
			kill_writers_busy
			pid=$(grep -oE "started \"$who\" pid [0-9]+" "$log" | tail -1 | awk '{ print $4 }')
			kill -KILL "$pid" 2>/dev/null || continue
			echo "kill $k: $who pid $pid after $(wc -l <"$KW_ACKED") acknowledged files"
			if [ "$who" = "$drv" ]; then
				nk=$((nk + 1))
				wait_for_count "$log" "$dback" $((d0 + nk)) 60 || break 2
			else
				bk=$((bk + 1))
				wait_for_count "$log" "$bback" $((b0 + bk)) 90 || break 2
			fi
		done
	done
	sleep 2
	kill_writers_stop
	dn=$(($(count_of "$log" "$dback") - d0))
	bn=$(($(count_of "$log" "$bback") - b0))
	[ "$nk" = "${KILLS:-5}" ] && [ "$bk" = "${KILLS:-5}" ] && [ "$dn" -ge "$nk" ] && [ "$bn" -ge "$bk" ]
	result "${p}_kills" $? "$nk $drv and $bk $brg SIGKILLs in $((SECONDS - t0)) s; $dn new sessions ('$dback'), re-issuing $(grep -oE 'reconnected .*: [0-9]+' "$log" | awk -F': ' '{ s += $2 } END { print s + 0 }') requests; $bn returns of the bridge ('$bback')"
	[ "$KW_ERRORS" = 0 ] && [ "$KW_NFILES" -gt 0 ]
	result "${p}_kill_writes" $? "$KW_FILES files written, $KW_NFILES acknowledged (fsync returned), $KW_REWRITES rewrites of an 8 MiB file in 4 KiB O_DIRECT writes, write errors: $KW_ERRORS"
	umount "$mnt"
	urc=$?
	fsck.ext4 -fn "$dev" >"$WORK/$p.fsck2" 2>&1
	frc=$?
	[ "$urc" = 0 ] && [ "$frc" = 0 ]
	result "${p}_kill_fsck" $? "umount exit $urc; fsck -fn exit $frc: $(tail -1 "$WORK/$p.fsck2")"
	mount "$dev" "$mnt" && (cd "$mnt" && sha256sum --quiet -c "$KW_ACKED" && sha256sum --quiet -c "$BF_SUMS") \
		>"$WORK/$p.check2" 2>&1
	rc=$?
	result "${p}_kill_data" $rc "remounted; $(wc -l <"$KW_ACKED") acknowledged files and the $(wc -l <"$BF_SUMS") earlier ones checked, $(grep -c FAILED "$WORK/$p.check2") mismatches"
	umount "$mnt"
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

# kvm_load: KVM in the test machine, for driver VMs nested in it. It runs on
# QEMU's TCG emulation of AMD SVM; the module options are DVM_KVM (kvm's) and
# DVM_KVM_AMD (kvm_amd's), by default vgif=0 npt=0: KVM shadows the nested
# guest's page tables itself instead of leaving the two-level walk to TCG's
# young emulation of nested paging, and keeps the nested guest's GIF; slower
# boots, and no death of the test machine in the runs so far, where several
# with nested paging died (docs/driver-vms.md, "Stability under nested TCG")
kvm_load() {
	# shellcheck disable=SC2086 # word splitting wanted: module options
	modprobe kvm ${DVM_KVM-} 2>/dev/null
	# shellcheck disable=SC2086
	modprobe kvm_amd ${DVM_KVM_AMD-vgif=0 npt=0} 2>/dev/null || modprobe kvm_intel 2>/dev/null
}
