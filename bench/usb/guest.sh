#!/usr/bin/env bash
# bench-usb, in the test machine (bench/usb/run boots it): figures into
# $BULKHEAD_OUT/usb.txt ("disk JOB kernel_iops ours_iops kernel_mbps ours_mbps
# ratio", "apdu PATH TEXT") and RESULT lines on the console.
set -u
. "$(dirname "$0")/../../tests/vm/lib.sh"
CCID=08e6:4433
MSD=46f4:0001
APDU=00a40000023f00
N=${BENCH_APDUS:-40}
txt=${BULKHEAD_OUT:-$WORK}/usb.txt
: >"$txt"
pcscd_log=$WORK/bench-usb-pcscd.log
udevd_pid= pcscd_pid=

cleanup() {
	[ -n "$pcscd_pid" ] && kill "$pcscd_pid" 2>/dev/null
	stop_core
	[ -n "$udevd_pid" ] && kill "$udevd_pid" 2>/dev/null
	[ -n "${BULKHEAD_OUT:-}" ] && cp "$WORK"/bench-usb-* "$BULKHEAD_OUT/" 2>/dev/null
}
trap cleanup EXIT

xhcis=($(usb_controllers))
[ "${#xhcis[@]}" -ge 2 ] || { echo "bench-usb: need two qemu-xhci controllers, found ${#xhcis[@]}"; exit 1; }
export XHCI_DEVICE=${xhcis[0]}
theirs=${xhcis[1]}
echo "bench-usb: bulkhead drives $XHCI_DEVICE, the kernel's xhci_hcd $theirs"

# ---- 1: the kernel's xhci_hcd on both controllers; pcscd on the reader of the
# first (QEMU emulates one card per machine: it sits in the first reader) ----
mkdir -p /run/udev
/lib/systemd/systemd-udevd >"$WORK/bench-usb-udevd.log" 2>&1 &
udevd_pid=$!
modprobe -a xhci_pci usb_storage sd_mod
reader_lines() { timeout 10 pcsc_scan -r 2>/dev/null | grep -E '^[0-9]+: '; }
# reader_of WHERE: the reader whose name has WHERE in it (libccid names it by the USB path)
reader_of() { reader_lines | grep -F -- "$1" | head -1 | sed 's/^[0-9]*: //'; }
pcscd --foreground --debug --apdu >"$pcscd_log" 2>&1 &
pcscd_pid=$!
kreader=$(poll_out 40 reader_of "$XHCI_DEVICE")
scriptor_rtt "$pcscd_log" "$APDU" "$N" "$kreader"
echo "apdu pcscd-xhci_hcd $SCRIPTOR_RTT (pcscd, libccid, the kernel's xhci_hcd; $SCRIPTOR_ANSWERS answers)" >>"$txt"
echo "RESULT usb-apdu-pcscd-kernel $SCRIPTOR_RTT reader=\"$kreader\" answers=$SCRIPTOR_ANSWERS"
# the first controller goes to bulkhead; the second stays with xhci_hcd
echo "$XHCI_DEVICE" >/sys/bus/pci/drivers/xhci_hcd/unbind

# ---- 2: bulkhead's own ccid driver, the card over the Smartcard session ----
conf=$WORK/bench-usb-native.conf log=$WORK/bench-usb-native.log
{
	conf_core
	conf_xhci "restart = never"
	conf_component ccid "exec = $BUILD/drivers/ccid/bulkhead-ccid" "session = usb xhci $CCID" \
		"provides = smartcard" "restart = never"
	conf_component apdu "exec = $BUILD/tests/bulkhead-apdu" "args = --count $N $APDU" \
		"session = smartcard ccid" "restart = never"
} >"$conf"
start_core "$conf" "$log" && wait_for "$log" "apdu\| apdu: [0-9]+ exchanges" 120
native=$(grep -m1 -oE 'apdu: [0-9]+ exchanges: .*' "$log")
stop_core
echo "apdu bulkhead-ccid ${native#apdu: } (bulkhead-apdu, the Smartcard session, ccid, the USB session, xhci)" >>"$txt"
echo "RESULT usb-apdu-native ${native#apdu: }"

# ---- 3: the disks, then pcscd on the reader through bulkhead: xhci, usb-usbip, vhci-hcd ----
conf=$WORK/bench-usb.conf log=$WORK/bench-usb.log
{
	conf_core
	conf_xhci "restart = never"
	conf_usbip usbstor "$MSD"
	conf_usbip usbip "$CCID"
} >"$conf"
start_core "$conf" "$log" || exit 1
ours=$(poll_out 90 usb_disk vhci_hcd)
kern=$(poll_out 60 usb_disk "$theirs")
[ -n "$ours" ] && [ -n "$kern" ] || { echo "bench-usb: disks: bulkhead '${ours}', kernel '${kern}'"; cat "$log"; exit 1; }
echo "bench-usb: bulkhead's disk /dev/$ours, the kernel's /dev/$kern ($(cat /sys/block/$kern/queue/max_sectors_kb) KiB per request at most, bulkhead's $(cat /sys/block/$ours/queue/max_sectors_kb))"
for job in seqread-128k:read:128k:1 seqwrite-128k:write:128k:1 seqread-1m:read:1m:1 randread-4k:randread:4k:1; do
	IFS=: read -r name rw bs qd <<<"$job"
	read -r k_iops k_mbps <<<"$(fio_job "$rw" "$bs" "$qd" "/dev/$kern")"
	read -r b_iops b_mbps <<<"$(fio_job "$rw" "$bs" "$qd" "/dev/$ours")"
	ratio=$(awk -v a="${b_iops:-0}" -v b="${k_iops:-0}" 'BEGIN { printf "%.3f", b ? a / b : 0 }')
	echo "disk $name ${k_iops:-0} ${b_iops:-0} ${k_mbps:-0} ${b_mbps:-0} $ratio" >>"$txt"
	echo "RESULT usb-$name kernel_iops=$k_iops bulkhead_iops=$b_iops kernel_mbps=$k_mbps bulkhead_mbps=$b_mbps ratio=$ratio"
done
load_lines "$log" 'usbstor| usb-usbip: '
echo "bench-usb: bridge: $(pick ' control and bulk URBs: ' "$(cnt ' control and bulk URBs: ')")"

# the bridged reader: pcscd adds it (udev); the one on the first controller left with the unbind
bridged() { reader_lines | grep -vF -- "$theirs" | head -1 | sed 's/^[0-9]*: //'; }
breader=$(poll_out 60 bridged)
scriptor_rtt "$pcscd_log" "$APDU" "$N" "$breader"
echo "apdu pcscd-bulkhead $SCRIPTOR_RTT (pcscd, libccid, vhci-hcd, usb-usbip, xhci; $SCRIPTOR_ANSWERS answers)" >>"$txt"
echo "RESULT usb-apdu-pcscd-bulkhead $SCRIPTOR_RTT reader=\"$breader\" answers=$SCRIPTOR_ANSWERS"
# round trips as ratios to pcscd on the kernel's xhci_hcd (means; above 1: slower)
mean_of() { grep -oE 'mean [0-9]+ us' <<<"$1" | grep -oE '[0-9]+'; }
k=$(mean_of "$(grep '^apdu pcscd-xhci_hcd ' "$txt")")
for p in bulkhead-ccid pcscd-bulkhead; do
	m=$(mean_of "$(grep "^apdu $p " "$txt")")
	r=$(awk -v a="${m:-0}" -v b="${k:-0}" 'BEGIN { printf "%.2f", b ? a / b : 0 }')
	echo "apduratio $p $r" >>"$txt"
	echo "RESULT usb-apdu-ratio $p/pcscd-xhci_hcd=$r (mean $m us against $k us)"
done
