#!/usr/bin/env bash
# vm: --devices xhci-ccid:card --mem 1024 --timeout 480
# The reader given to Linux through the usb-usbip bridge: bulkhead's xhci
# driver serves QEMU's usb-ccid as a USB session to bridges/usb-usbip,
# which core attached to a vhci-hcd port; the kernel enumerates it, and
# stock lsusb, pcscd with libccid, pcsc_scan, opensc-tool and scriptor use
# it unmodified. First, for comparison, bulkhead's own ccid driver reads
# the card (ATR, APDU round trip) with a core of its own. Then: lsusb,
# requests the bridge or the driver must refuse (through usbfs), pcscd,
# the xhci driver killed under pcscd (the device leaves the kernel and is
# attached again; pcscd sees the reader go and come back, without a
# restart), and the next APDU.
set -u
. "$(dirname "$0")/lib.sh"

VIDPID=08e6:4433
APDU=00a40000023f00
native_conf=$WORK/usbip-native.conf
native_log=$WORK/usbip-native.log
conf=$WORK/usbip-test.conf
log=$WORK/usbip-test.log
pcscd_log=$WORK/usbip-pcscd.log
udevd_pid=
pcscd_pid=

cleanup() {
	[ -n "$pcscd_pid" ] && kill "$pcscd_pid" 2>/dev/null
	stop_core
	[ -n "$udevd_pid" ] && kill "$udevd_pid" 2>/dev/null
	# the logs, for a look from the host
	[ -n "${BULKHEAD_OUT:-}" ] && cp "$WORK"/usbip-* "$WORK"/udevd.log "$WORK"/usbfs-poke.out "$WORK"/poll.log "$BULKHEAD_OUT/" 2>/dev/null
}
trap cleanup EXIT

# the host's programs, seen in the guest through its root
missing=
for p in pcscd pcsc_scan opensc-tool scriptor lsusb /lib/systemd/systemd-udevd \
	/usr/lib/pcsc/drivers/ifd-ccid.bundle; do
	command -v "$p" >/dev/null 2>&1 || [ -e "$p" ] || missing="$missing $p"
done
if [ -n "$missing" ]; then
	result usbip_programs 1 "missing:$missing (tools/install-deps installs pcscd libccid pcsc-tools opensc usbutils udev)"
	exit 1
fi

xhci_component() {
	cat <<CONF
[core]
backend = vfio
control = /run/bulkhead/core.sock

[component "xhci"]
exec = $BUILD/drivers/xhci/bulkhead-xhci
device = 1b36:000d
provides = usb
dma = 4M
restart = on-failure
backoff_ms = 200
watchdog_ms = 5000
CONF
}

# ---- the native chain, for the figures: xhci -> usb -> ccid -> smartcard -> apdu ----
{
	xhci_component
	cat <<CONF

[component "ccid"]
exec = $BUILD/drivers/ccid/bulkhead-ccid
session = usb xhci $VIDPID
provides = smartcard
restart = never

[component "apdu"]
exec = $BUILD/tests/bulkhead-apdu
args = --count 20
session = smartcard ccid
restart = on-failure
backoff_ms = 200
CONF
} >"$native_conf"
native_atr=
native=
if start_core "$native_conf" "$native_log" && wait_for "$native_log" "apdu\| apdu: [0-9]+ exchanges" 90; then
	native_atr=$(grep -oE 'ccid: IccPowerOn -> RDR_to_PC_DataBlock: ATR [0-9a-f]+' "$native_log" | head -1)
	native_atr=${native_atr##* }
	native=$(grep -oE 'apdu: [0-9]+ exchanges: mean [0-9]+ us, best [0-9]+ us' "$native_log" | head -1)
fi
stop_core
[[ -n $native_atr && -n $native ]]
result usbip_native_reference $? "bulkhead's ccid driver: ATR ${native_atr:-none}; ${native#apdu: }"

# ---- the bridge ----
{
	xhci_component
	cat <<CONF

[component "usbip"]
exec = $BUILD/bridges/usb-usbip/bulkhead-usb-usbip
session = usb xhci $VIDPID
usbip = yes
restart = on-failure
backoff_ms = 200
watchdog_ms = 8000
CONF
} >"$conf"

# udev: pcscd learns of readers that come and go from its events
mkdir -p /run/udev
/lib/systemd/systemd-udevd >"$WORK/udevd.log" 2>&1 &
udevd_pid=$!

start_core "$conf" "$log" || { result usbip_core_start 1 "core did not start"; exit 1; }
t0=$SECONDS
if ! wait_for "$log" "usbip\| usb-usbip: .* attached to the kernel on " 60; then
	result usbip_attach 1 "the bridge attached nothing in 60 s: $(grep -E 'usbip|vhci' "$log" | tail -5 | tr '\n' ' ')"
	echo "---- core log ----"
	cat "$log"
	exit 1
fi
up_att=$(cut -d' ' -f1 /proc/uptime)
att=$(grep -m1 -oE 'usb-usbip: .* attached to the kernel on .*' "$log")
core_att=$(grep -m1 -oE 'vhci port [0-9]+ attached for "usbip".*' "$log")
result usbip_attach 0 "${att#usb-usbip: }; core: $core_att; after $((SECONDS - t0)) s"

# lsusb: the device on the vhci bus
vhci_bus() { # the bus number of vhci-hcd's root hubs
	local h
	for h in /sys/bus/usb/devices/usb*; do
		[[ $(readlink -f "$h") == */vhci_hcd.0/* ]] && cat "$h/busnum"
	done
}
# the kernel's device first (sysfs is cheap), then lsusb once: it reads udev's
# hardware database over the guest's 9p root, seconds under TCG
in_sysfs() { # builtins only: forks are slow in a guest of a busy host
	local d v p
	for d in /sys/bus/usb/devices/*; do
		[ -e "$d/idVendor" ] || continue
		read -r v <"$d/idVendor" && read -r p <"$d/idProduct" && [ "$v:$p" = "$VIDPID" ] && echo "$d"
	done
	return 0
}
dev=$(poll_out 60 in_sysfs)
t_ls=$SECONDS
line=$(lsusb -d "$VIDPID" 2>/dev/null | head -1)
t_ls=$((SECONDS - t_ls))
buses=$(vhci_bus | tr '\n' ' ')
bus=$(awk '{ print $2 + 0 }' <<<"$line")
[[ -n $line && " $buses" == *" $bus "* ]]
enum=$(dmesg | grep -E 'usb [0-9]+-[0-9]+: (new full-speed|New USB device found)' | sed -E 's/^\[ *([0-9.]+)\] .*(new full-speed|New USB device found).*/\2 at \1 s/' | tr '\n' ';')
result usbip_lsusb $? "${line:-lsusb lists no $VIDPID}; vhci buses: ${buses:-none}; after $((SECONDS - t0)) s (lsusb itself $t_ls s); kernel: attach seen at $up_att s, ${enum:-no enumeration logged}"

# requests that must get errors (the bridge's or the driver's), then one that must not
"$BUILD/tests/usbfs-poke" "$VIDPID" 0x82 >"$WORK/usbfs-poke.out" 2>&1
for t in no_such_endpoint no_such_interface set_configuration test_mode giant_length unlink still_served; do
	l=$(grep -m1 "^usbfs-poke: check $t " "$WORK/usbfs-poke.out")
	[[ $l == "usbfs-poke: check $t PASS "* ]]
	rc=$?
	l=${l#usbfs-poke: check "$t" }
	l=${l#PASS }
	result "usbip_hostile_$t" $rc "${l:-no verdict: $(tail -2 "$WORK/usbfs-poke.out" | tr '\n' ' ')}"
done
starts=$(grep -c 'started "usbip"' "$log")
attaches=$(grep -c 'usb-usbip: .* attached to the kernel on ' "$log")
[[ $starts == 1 && $attaches == 1 ]]
result usbip_hostile_carries_on $? "bridge started $starts time(s), attached $attaches time(s) after the requests; $(grep -m1 -oE 'usb-usbip: URB [0-9]+ to endpoint [0-9]+ IN, [0-9]+ bytes: .*' "$log" | sed 's/^usb-usbip: //')"

# stock pcscd with libccid
pcscd --foreground --debug --apdu >"$pcscd_log" 2>&1 &
pcscd_pid=$!
reader_line() { timeout 10 pcsc_scan -r 2>/dev/null | grep -E '^[0-9]+: ' | head -1; }
readers=$(poll_out 40 reader_line)
[[ $readers == *QEMU* || $readers == *CCID* ]]
result usbip_pcsc_reader $? "pcsc_scan -r: ${readers:-no reader}; after $((SECONDS - t0)) s"

hexatr() { tr -d ': \n' | tr 'A-F' 'a-f'; }
# opensc-tool -a: the ATR, as bulkhead's own ccid driver read it
atr_of() { timeout 60 opensc-tool -a 2>/dev/null | grep -E '^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2})+' | head -1; }
atr=$(poll_out 30 atr_of)
scan=$(timeout 15 pcsc_scan -n -t 3 2>/dev/null | grep -m1 -E 'ATR: ' | sed 's/^ *//')
[[ -n $atr && $(hexatr <<<"$atr") == "$native_atr" && $(hexatr <<<"${scan#*ATR: }") == "$native_atr" ]]
result usbip_atr $? "opensc-tool -a: ${atr:-none}; pcsc_scan: ${scan:-none}; bulkhead ccid: ${native_atr:-none}"

# opensc-tool -s: an APDU, answered
# (QEMU's usb-ccid with libccid loses a frame now and then when a transaction
# ends, "Invalid frame detected" in pcscd's log, the same with the kernel's own
# xhci_hcd; pcscd powers the card again and the next program is served: try again)
# QEMU's usb-ccid now and then loses a frame at a transaction's end (with the
# kernel's own xhci_hcd too): an attempt that hangs is tried again
apdu_answer() { timeout 60 opensc-tool -s "$APDU" 2>&1 | grep -m1 -E 'Received \(SW1='; }
ans=$(poll_out 150 apdu_answer)
[[ -n $ans ]]
result usbip_apdu $? "opensc-tool -s $APDU: ${ans:-no answer}"

# the round trip through pcscd: scriptor sends 20 APDUs on one connection; pcscd's
# APDU log says how long each took below it (libccid, the kernel, the bridge,
# the driver, the reader and card): the time on its "SW:" line
scriptor_rtt "$pcscd_log" "$APDU" 20
rtt=$SCRIPTOR_RTT answers=$SCRIPTOR_ANSWERS
urbs=$(grep -oE 'usb-usbip: [0-9]+ control and bulk URBs: .*' "$log" | tail -1)
[[ $answers == 20 && -n $rtt ]]
result usbip_apdu_round_trip $? "scriptor (try $SCRIPTOR_TRY) got $answers of 20 answers ($SCRIPTOR_FIRST); through pcscd, libccid and usb-usbip: $rtt; bulkhead's own ccid session: ${native#apdu: }; bridge: ${urbs#usb-usbip: }"

# ---- the xhci driver killed under pcscd ----
pid=$(field xhci pid)
removed_before=$(grep -ciE 'remov' "$pcscd_log")
t1=$SECONDS
kill -KILL "$pid"
wait_for_count "$log" "usb-usbip: .* attached to the kernel on " 2 60
gone=$(grep -m1 -oE 'usb-usbip: detached from .*' "$log")
again=$(grep -oE 'usb-usbip: .* attached to the kernel on .*' "$log" | sed -n 2p)
atr2=$(poll_out 60 atr_of)
back=$((SECONDS - t1))
ans2=$(poll_out 150 apdu_answer)
removed=$(($(grep -ciE 'remov' "$pcscd_log") - removed_before))
alive=no
kill -0 "$pcscd_pid" 2>/dev/null && alive=yes
[[ -n $again && $removed -ge 1 && $(hexatr <<<"$atr2") == "$native_atr" && -n $ans2 && $alive == yes ]]
result usbip_driver_restart $? "killed xhci pid $pid; ${gone#usb-usbip: }; ${again#usb-usbip: }; pcscd (still pid $pcscd_pid: $alive) logged $removed removal line(s) and has the reader again: ATR ${atr2:-none} after $back s; next APDU: ${ans2:-no answer}"

stop_core
# the bridge's port left the kernel with it
for _ in $(seq 50); do
	left=$(awk '$3 != "004" && $1 ~ /^(hs|ss)$/' /sys/devices/platform/vhci_hcd.0/status 2>/dev/null | wc -l)
	[[ $left == 0 ]] && break
	sleep 0.2
done
[[ $left == 0 ]]
result usbip_detached_on_stop $? "vhci ports still in use after core stopped: $left; $(grep -oE 'vhci port [0-9]+ detached .*' "$log" | tail -1)"
