#!/usr/bin/env bash
# vm: --devices xhci-ccid:card:storage,xhci-ccid:card:storage --mem 1536 --timeout 600
# A second kind of USB device through the isolated xHCI driver: QEMU's
# usb-storage (bulk-only transport, SuperSpeed) beside the usb-ccid reader.
# Two identical controllers: bulkhead's xhci driver takes the first and
# serves both its devices through usb-usbip bridges to vhci-hcd; the second
# is left to the kernel's own xhci_hcd, for reference. Checked: the
# descriptors the kernel reads through the bridges (the driver's own copy,
# the one it checks every request against) equal those xhci_hcd reads
# from the same devices on the other controller; the kernel's usb-storage
# binds the bridged disk: mkfs, mount, files written and read back with
# sha256, umount, fsck; and the figures of sequential reads and writes
# through both paths.
set -u
. "$(dirname "$0")/lib.sh"

CCID=08e6:4433
MSD=46f4:0001
conf=$WORK/usbstor-test.conf
log=$WORK/usbstor-test.log
mnt=$WORK/usbstor-mnt
udevd_pid=

cleanup() {
	mountpoint -q "$mnt" && umount "$mnt"
	stop_core
	[ -n "$udevd_pid" ] && kill "$udevd_pid" 2>/dev/null
	[ -n "${BULKHEAD_OUT:-}" ] && cp "$WORK"/usbstor-* "$BULKHEAD_OUT/" 2>/dev/null
}
trap cleanup EXIT

xhcis=($(usb_controllers))
if [ "${#xhcis[@]}" -lt 2 ]; then
	result usbstor_controllers 1 "need two qemu-xhci controllers, found ${#xhcis[@]}"
	exit 1
fi
ours=${xhcis[0]} theirs=${xhcis[1]}

{
	conf_core
	XHCI_DEVICE=$ours conf_xhci "restart = on-failure"
	conf_usbip usbip "$CCID"
	conf_usbip usbstor "$MSD"
} >"$conf"

start_core "$conf" "$log" || { result usbstor_core_start 1 "core did not start"; exit 1; }
# the kernel's own xhci_hcd on the other controller, once core holds ours
modprobe -a xhci_pci usb_storage sd_mod
t0=$SECONDS
wait_for_count "$log" "usb-usbip: .* attached to the kernel on " 2 90
load_lines "$log" 'usbstor| usb-usbip: '
att=$(pick ' attached to the kernel on ')
load_lines "$log" 'xhci| xhci: '
enum=$(pick "device in slot [0-9]+: ${MSD}")
cfg=$(pick "configuration [0-9]+ \(.*class 0x08")
[[ -n $att ]]
result usbstor_attached $? "${att:-the storage bridge attached nothing}; driver: ${enum:-no $MSD}; ${cfg:-no configuration}; after $((SECONDS - t0)) s"

# the devices, by who drives them
ours_dir() { usb_device_dir "$1" vhci_hcd; }
theirs_dir() { usb_device_dir "$1" "$theirs"; }
hex() { od -An -tx1 "$@" 2>/dev/null | tr -d '\n'; }
for id in $CCID $MSD; do
	a=$(poll_out 60 ours_dir "$id")
	b=$(poll_out 60 theirs_dir "$id")
	[[ -n $a && -n $b ]] && cmp -s "$a/descriptors" "$b/descriptors"
	rc=$?
	n=$(cat "$a/descriptors" 2>/dev/null | wc -c)
	if ((rc)); then
		what="differ: bulkhead $(hex "$a/descriptors"); xhci_hcd $(hex "$b/descriptors")"
	else
		what="equal, device descriptor $(hex -N18 "$a/descriptors")"
	fi
	result "usbstor_descriptors_${id/:/_}" $rc "through bulkhead (${a:-none}, the driver's copy) and xhci_hcd (${b:-none}): ${n:-0} bytes, $what"
	[ "$id" = "$MSD" ] && usbdev=${a##*/}
done

# the disks
disk_ours=$(poll_out 60 usb_disk vhci_hcd)
disk_theirs=$(poll_out 60 usb_disk "$theirs")
[[ -n $disk_ours && -n $disk_theirs ]]
result usbstor_disk $? "through bulkhead: /dev/${disk_ours:-none} ($(cat /sys/block/$disk_ours/size 2>/dev/null) sectors); xhci_hcd: /dev/${disk_theirs:-none}"
[ -n "$disk_ours" ] || exit 1
dev=/dev/$disk_ours

mkdir -p "$mnt"
mk=$(mkfs.ext4 -q -F "$dev" 2>&1) && mount "$dev" "$mnt"
result usbstor_mkfs_mount $? "mkfs.ext4 -F $dev, mount $mnt ${mk:+: $mk}"

for n in 1 7 64 1024 8192; do
	head -c $((n * 1024)) /dev/urandom >"$WORK/f$n"
done
sums=$(cd "$WORK" && sha256sum f1 f7 f64 f1024 f8192)
t=$SECONDS
cp "$WORK"/f1 "$WORK"/f7 "$WORK"/f64 "$WORK"/f1024 "$WORK"/f8192 "$mnt/" && sync
umount "$mnt" && echo 3 >/proc/sys/vm/drop_caches && mount "$dev" "$mnt"
back=$(cd "$mnt" && sha256sum f1 f7 f64 f1024 f8192)
[[ -n $back && $back == "$sums" ]]
result usbstor_files $? "5 files (1 KiB-8 MiB) written, unmounted, read back: $( [[ $back == "$sums" ]] && echo same sha256 || echo "differ: $back") in $((SECONDS - t)) s"

umount "$mnt"
fs=$(fsck.ext4 -fn "$dev" 2>&1)
rc=$?
result usbstor_fsck $rc "fsck.ext4 -fn: exit $rc, $(tail -1 <<<"$fs")"

# figures: 32 MiB sequential, O_DIRECT, 1 MiB requests, through each path
seq_mbs() { # DEV read|write
	local out
	if [ "$2" = read ]; then
		out=$(dd if="$1" of=/dev/null bs=1M count=32 iflag=direct 2>&1)
	else
		out=$(dd if=/dev/zero of="$1" bs=1M count=32 oflag=direct 2>&1)
	fi
	awk '/copied/ { print $(NF-1), $NF }' <<<"$out"
}
r1=$(seq_mbs "$dev" read) w1=$(seq_mbs "$dev" write)
r2=$(seq_mbs "/dev/$disk_theirs" read) w2=$(seq_mbs "/dev/$disk_theirs" write)
load_lines "$log" 'usbstor| usb-usbip: '
urbs=$(pick ' control and bulk URBs: ' "$(cnt ' control and bulk URBs: ')")
limits() { echo "max_sectors_kb $(cat "/sys/block/$1/queue/max_sectors_kb"), max_segments $(cat "/sys/block/$1/queue/max_segments")"; }
[[ -n $r1 && -n $w1 && -n $r2 && -n $w2 ]]
result usbstor_sequential $? "32 MiB O_DIRECT bs=1M: through bulkhead read ${r1:-none}, write ${w1:-none}; kernel's xhci_hcd read ${r2:-none}, write ${w2:-none}; bridged disk's $(limits "$disk_ours"), the kernel's $(limits "$disk_theirs"); ${urbs:-}"

# the kernel saw no error, reset or timeout on the bridged disk or its USB device
errs=$(dmesg | grep -E "(\b$disk_ours\b|usb ${usbdev:-none}:)" | grep -iE 'error|reset|fail|timeout|abort')
[[ -z $errs ]]
result usbstor_no_errors $? "${errs:-no error, reset or timeout logged for $disk_ours or usb ${usbdev:-?}}"
