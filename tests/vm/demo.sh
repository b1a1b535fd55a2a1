#!/usr/bin/env bash
# `make demo`, inside the test machine: core starts the demo appliance
# (etc/bulkhead.conf): pit and edu, an e1000e behind TAP bh0, an NVMe disk
# behind /dev/nbd0, a smart-card reader behind the xHCI and CCID drivers, and
# bochs-display with a picture on it saved as a PNG, a serial line behind the
# 16550A driver as a pty, each driver unprivileged
# and sandboxed. Linux tools use them; then we kill the drivers and watch
# core take everything back and restart them while the tools above carry on.
set -u
. "$(dirname "$0")/lib.sh"
src=${DEMO_CONFIG:-$ROOT/etc/bulkhead.conf}
# core runs a copy (the demo reloads it to hand the reader to Linux), its
# relative exec paths made absolute
conf=$WORK/demo.conf
sed "s#= \.\./#= $(dirname "$src")/../#" "$src" >"$conf"
log=$WORK/demo.log
pcscd_pid= udevd_pid=
peer=0000:00:04.0

# a driver VM: Linux's own e1000e driver in a KVM guest that owns the third
# e1000e (on the peer's wire). Its boot takes a while under TCG, so core
# starts it with the rest and the demo shows it last.
dvm_dev=$(lspci -Dn -d 8086:10d3 | awk '{ print $1 }' | grep -vxE "$peer|0000:02:00.0" | head -1)
kvm_load
dvm_kernel=$BUILD/vm/vmlinux-$(uname -r)
[ -r "$dvm_kernel" ] || dvm_kernel=/boot/vmlinuz-$(uname -r)
if [ -n "$dvm_dev" ] && [ -e /dev/kvm ] && [ -s "$BUILD/dvm/e1000e.cpio.gz" ]; then
	conf_component dvm "kind = vm" "device = $dvm_dev" "kernel = $dvm_kernel" \
		"initramfs = $BUILD/dvm/e1000e.cpio.gz" "modules = e1000e" "guest_memory = 128M" \
		"guest_append = bulkhead.ip=10.0.0.3/24" "watchdog_ms = 15000" "boot_ms = 240000" \
		"restart = on-failure" >>"$conf"
fi

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }

say "bulkhead demo: QEMU q35 with an emulated Intel IOMMU; config $src"
modprobe tun
modprobe vhci-hcd & # for the reader's turn through USB/IP, later
"$CORE" -c "$conf" >"$log" 2>&1 &
CORE_PID=$!
tail -n +1 -f "$log" &
TAIL=$!
wait_for "$log" "edu\| edu: (all tests passed|FAILED)" 60
wait_for "$log" "nic-tap\| nic-tap: bh0 <-> nic session" 30
wait_for "$log" "nbd\| block-nbd: /dev/nbd0 serves" 30
wait_for "$log" "apdu\| apdu: [0-9]+ exchanges" 60
wait_for "$log" "png\| fb-png: wrote" 60
wait_for "$log" "pty\| term-pty: .* <-> terminal session" 30
sleep 0.5
kill "$TAIL" 2>/dev/null

say "what core holds (bulkhead status)"
"$CLI" status

say "the network: Linux uses bh0; the peer is the kernel's own e1000e driver in namespace 'peer'"
peer_netns "$peer" 10.0.0.2/24 >/dev/null
tap_up "$log" bh0 10.0.0.1/24
run busybox ping -c 3 10.0.0.2
ip netns exec peer iperf3 -s -D >/dev/null 2>&1
sleep 0.5
run iperf3 -c 10.0.0.2 -t 3 | grep -E "sender|receiver"

say "the storage: /dev/nbd0 is served by the NVMe driver through the block-nbd bridge"
run mkfs.ext4 -q -F /dev/nbd0
mkdir -p /tmp/disk
run mount /dev/nbd0 /tmp/disk
head -c 8M /dev/urandom >/tmp/disk/data
sync
sum=$(sha256sum </tmp/disk/data)
run df -h /tmp/disk

say "the smart-card reader: QEMU's usb-ccid behind the isolated xHCI driver, read by the CCID driver"
grep -E "xhci\| xhci: (controller started|port [0-9]+: .* device in slot)" "$log" | head -2
grep -E "ccid\| ccid: IccPowerOn -> " "$log" | head -1
grep -E "apdu\| apdu: (setup|status): card|apdu\| apdu: > |apdu\| apdu: [0-9]+ exchanges" "$log" | head -3

say "the reader to Linux: the CCID driver steps back (bulkhead reload), usb-usbip gives the reader to the kernel through vhci-hcd"
t_usb=$SECONDS
mkdir -p /run/udev
/lib/systemd/systemd-udevd >"$WORK/udevd.log" 2>&1 &
udevd_pid=$!
# the config without the CCID driver and its client, with the bridge
awk '/^\[/ { skip = ($0 == "[component \"ccid\"]" || $0 == "[component \"apdu\"]") } !skip' \
	"$conf" >"$conf.new" && conf_usbip usbip 08e6:4433 >>"$conf.new" && mv "$conf.new" "$conf"
run "$CLI" reload
wait_for "$log" "usbip\| usb-usbip: .* attached to the kernel on " 30
grep -E "usbip\| usb-usbip: .* attached to the kernel on " "$log" | head -1
reader_in_sysfs() { usb_device_dir 08e6:4433 vhci_hcd; }
poll_out 20 reader_in_sysfs >/dev/null
run lsusb -d 08e6:4433
pcscd --foreground >"$WORK/pcscd.log" 2>&1 &
pcscd_pid=$!
atr_line() { timeout 10 pcsc_scan -n -t 2 2>/dev/null | grep -m1 -E 'ATR: ' | sed 's/^ *//'; }
printf '\033[2m$ pcsc_scan -n\033[0m\n'
scan=$(poll_out 20 atr_line)
echo "${scan:-pcsc_scan saw no card}"
kill "$pcscd_pid" 2>/dev/null
echo "(the reader handed over and read through the kernel in $((SECONDS - t_usb)) s)"

say "the display: bochs-display in 1024x768x32, driven by an isolated driver; fb-png saves what it shows"
grep -E "bochs\| bochs: (mode .* set|framebuffer: .* owns)" "$log" | head -2
grep -E "png\| fb-png: wrote" "$log" | tail -1
if [ -n "${BULKHEAD_OUT:-}" ] && cp /tmp/bulkhead-screen.png "$BULKHEAD_OUT/screen.png" 2>/dev/null; then
	echo "the screen as a PNG: build/vm/out/screen.png"
fi

say "the display over VNC: fb-vnc (libvncserver, a dynamically linked component) shows the same screen"
grep -E "vnc\| fb-vnc: ready" "$log" | tail -1
run "$BUILD/tests/vnc-type" 127.0.0.1 5900 --quiet-ms 500 --png /tmp/bulkhead-vnc.png
# from the host: tools/vm/run --vnc forwards the host's 127.0.0.1:PORT to 5900 here,
# over a virtio NIC on QEMU's user network that reaches nothing else
if [ -n "${DEMO_VNC_PORT:-}" ] && modprobe virtio_net 2>/dev/null; then
	for n in /sys/class/net/*; do
		[ "$(basename "$(readlink "$n/device/driver" 2>/dev/null)")" = virtio_net ] && vnic=${n##*/}
	done
	if [ -n "${vnic:-}" ] && ip addr add 10.0.2.15/24 dev "$vnic" && ip link set "$vnic" up; then
		echo "watch it from the host while the demo runs: vncviewer 127.0.0.1::$DEMO_VNC_PORT"
		echo "(Debian: tigervnc-viewer or xtightvncviewer; a snapshot: vncsnapshot 127.0.0.1::$DEMO_VNC_PORT screen.jpg)"
		# tools/demo's viewer on the host saves what it saw into the shared out dir
		wait_for_file() { for _ in $(seq 60); do [ -s "$1" ] && return 0; sleep 0.5; done; return 1; }
		wait_for_file "$BULKHEAD_OUT/vnc-host.txt" && cat "$BULKHEAD_OUT/vnc-host.txt"
	fi
fi

say "the serial line: pci-serial behind the 16550A driver, a pty for Linux programs; the far end (on the host) sends every byte back"
pty=/run/bulkhead/pty/ser0
grep -E "pty\| term-pty: .* <-> terminal session" "$log" | head -1
run stty -F $pty raw -echo
exec {ser}<>$pty
# echo LINE through the pty and read it back from the far end
line_echo() {
	local got end=$((SECONDS + 5))
	printf '%s\n' "$1" >&"$ser"
	while [ $SECONDS -lt $end ]; do
		IFS= read -r -t 1 -u "$ser" got || continue
		[ "$got" = "$1" ] && { echo "sent '$1', the line sent back '$got'"; return 0; }
	done
	echo "sent '$1', nothing came back"
	return 1
}
line_echo "hello over an isolated UART"

say "crashing the drivers: SIGKILL to edu, e1000e, nvme and serial (core resets, unmaps, restarts)"
n0=$(grep -c 'edu: all tests passed' "$log")
for c in edu e1000e nvme serial; do
	pid=$(field "$c" pid)
	echo "kill -KILL $pid   # $c"
	kill -KILL "$pid"
done
wait_for_count "$log" "edu\| edu: all tests passed" $((n0 + 1)) 60
wait_for_count "$log" "nic-tap\| nic-tap: bh0 <-> nic session" 2 30
wait_for "$log" "nbd\| block-nbd: reconnected" 30
wait_for_count "$log" "pty\| term-pty: .* <-> terminal session" 2 30
grep -E '"(edu|e1000e|nvme|serial)" \(pid [0-9]+\) ended|revoked "(edu|e1000e|nvme|serial)"|started "(edu|e1000e|nvme|serial)".*restart' "$log"

say "after the restarts: the same bh0 and the same mounted filesystem carry on"
run busybox ping -c 3 10.0.0.2
echo "$(sha256sum </tmp/disk/data | cut -c1-16)...  /tmp/disk/data (before the crash: ${sum:0:16}...)"
head -c 4M /dev/urandom >/tmp/disk/more && sync && echo "wrote 4 MiB more after the restart"
line_echo "the same pty, after the driver's restart"
run umount /tmp/disk

if grep -q '^\[component "dvm"\]' "$conf"; then
	say "a driver VM: Linux's own e1000e driver, unmodified, in a KVM guest that owns only $dvm_dev (QEMU unprivileged and sandboxed, its DMA confined by the IOMMU)"
	t_vm=$SECONDS
	wait_for "$log" 'vm "dvm": guest serving' 240
	grep -E 'vm "dvm": guest serving' "$log" | head -1
	echo "(booted while the demo ran; waited for here: $((SECONDS - t_vm)) s)"
	"$CLI" status | grep -E "^vm dvm"
	ip netns exec peer busybox ping -c 2 -W 3 10.0.0.3 >/dev/null 2>&1 # ARP
	run ip netns exec peer busybox ping -c 3 -W 3 10.0.0.3
fi
"$CLI" status | grep -E "^component"
stop_core

say "summary"
echo "pit:     $(grep -oE 'pit: counter decreasing.*' "$log" | head -1), as uid $(grep -oE 'pit: running as uid [0-9]+' "$log" | grep -oE '[0-9]+$')"
grep -oE 'edu: TEST [a-z]+ +(PASS|FAIL)' "$log" | head -6 | sed 's/^/edu:     /'
echo "denied:  $(grep -c 'policy: denied' "$log") requests outside policy, each logged with its reason"
echo "revoked: $(grep -oE 'revoked "nvme":.*' "$log" | head -1)"
echo "restarts: edu ran $(grep -c 'edu: all tests passed' "$log") times; ping and the filesystem survived; core never stopped"
echo "card:    $(grep -oE 'ccid: IccPowerOn -> .*ATR [0-9a-f ]+' "$log" | head -1 | sed 's/.*ATR /ATR /') (bulkhead's CCID driver); through usb-usbip, pcsc_scan: ${scan:-none}"
echo "screen:  $(grep -oE 'fb-png: wrote .*' "$log" | tail -1)"
echo "vnc:     $(grep -oE 'fb-vnc: viewer [0-9]+: disconnected .*' "$log" | head -1)"
echo "serial:  $(grep -oE 'term-pty: /dev/pts/[0-9]+ <-> terminal session [0-9]+' "$log" | tail -1), the pty $pty open throughout"
grep -q '^\[component "dvm"\]' "$conf" &&
	echo "vm:      $(grep -oE 'vm "dvm": guest serving [0-9.]+ s after start: [^;]*' "$log" | head -1) (Linux's own driver in a driver VM)"
[ -n "$udevd_pid" ] && kill "$udevd_pid" 2>/dev/null
grep -q "edu: FAILED" "$log" && exit 1
exit 0
