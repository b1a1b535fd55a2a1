#!/usr/bin/env bash
# vm: --devices vga --monitor --mem 1024
# The VESA driver on QEMU's VGA with QEMU's own video BIOS (SeaVGABIOS, run
# by SeaBIOS at boot; tools/vm/run boots QEMU's default legacy BIOS). The
# driver runs the option ROM's int 10h in libx86emu, unprivileged, with
# what the BIOS touches granted by core: the VGA and DISPI ports (ioperm),
# copies of the vectors, BIOS data area, EBDA and ROM (legacy = ...). It
# proves its confinement at start (a read of 0x100000 and of port 0x60
# through the emulator are refused), lists the modes (4F00h, 4F01h), sets
# 1024x768x32 (4F02h) and serves the framebuffer and capture sessions.
# fb-pattern draws the test pattern; QEMU's screendump and fb-png's picture
# must equal it pixel for pixel. fb-pattern's hostile checks: modes the
# BIOS does not list are refused with a reason, a mode over the policy's
# --max is refused as outside the policy. The driver killed while in use
# comes back in its mode with the picture redrawn; a mode set behind its
# back through the BIOS (bad-desc fault) is found by 4F03h and undone.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/display-lib.sh"

addr=$(first_dev 0x1234:0x1111:0x030000)
OUT=${BULKHEAD_OUT:-$WORK}
conf=$WORK/vesa-test.conf
log=$WORK/vesa-test.log
expect=$OUT/vesa-expected.png
shot=$OUT/vesa-screendump.png
png=$OUT/vesa-fb-png.png
CMP=$BUILD/tests/fb-compare
rm -f "$shot" "$png" "$expect"
rom=$(od -An -tx1 -N3 -j$((0xc0000)) /dev/mem 2>/dev/null | tr -d ' ')

# before core holds it: does VFIO pass this VGA's legacy window and ports
# (VFIO_PCI_VGA_REGION_INDEX)? for docs/design.md
modprobe vfio-pci 2>/dev/null
dev=/sys/bus/pci/devices/$addr
echo vfio-pci >"$dev/driver_override"
[ -e "$dev/driver" ] && echo "$addr" >"$dev/driver/unbind"
echo "$addr" >/sys/bus/pci/drivers_probe
group=$(basename "$(readlink "$dev/iommu_group")")
vga_region=$("$BUILD/tests/vfio-vga-probe" "$group" "$addr" 2>&1)
[[ $vga_region == *"VGA region of 786432 bytes, flags 0x3"* && $vga_region == *"port 0x3cc reads 0x"* ]]
result vesa_vfio_vga_region $? "${vga_region#vfio-vga-probe: }"
{
	conf_core
	conf_vesa "$addr" "env = BULKHEAD_FAULTS=1" "restart = on-failure" \
		"backoff_ms = 200" "watchdog_ms = 10000"
	echo
} >"$conf"
clients_conf vesa "${DISPLAY_BENCH:-10}" >>"$conf"

start_core "$conf" "$log" || { result vesa_core_start 1 "core did not start"; exit 1; }
wait_for "$log" "vesa\| vesa: (ready|.*exit)|ended" 90
load

# the grants: copies of exactly the named ranges, the video BIOS where SeaBIOS put it
grants=$(grep -oE "legacy memory '[a-z-]+' for \"vesa\": a copy of [0-9a-fx-]+" "$log" | sed 's/ for "vesa": a copy of/:/' | tr '\n' ' ')
[[ $grants == *"'bios-data': 0x00000-0x004ff"* && $grants == *"'vga-rom': 0xc0000-"* ]]
result vesa_legacy_grants $? "ROM header at 0xc0000: ${rom:-unread}; $grants"

hi=$(out vesa "^vesa: confinement: memory at 0x100000")
port=$(out vesa "^vesa: confinement: port 0x60")
[[ $hi == *"refused: the BIOS was stopped: a read of 0x100000"* && $port == *"refused: the BIOS was stopped: a read of port 0x60"* ]]
result vesa_confined $? "${hi#vesa: }; ${port#vesa: }"

vbe=$(out vesa "^vesa: VBE [0-9]")
modes=$(out vesa "^vesa: [0-9]+ modes listed")
set=$(out vesa "^vesa: mode 1024x768x32 set \\(pitch 4096\\)")
f02=$(out vesa "^vesa: 4F02h mode 0x[0-9a-f]+ 1024x768x32")
[[ $vbe == *"VBE 3.0"* || $vbe == *"VBE 2."* ]] && [[ -n $modes && -n $set ]]
result vesa_mode_set $? "${vbe#vesa: }; ${modes#vesa: }; ${f02#vesa: }; ${set:-no mode set}"
if [ -z "$set" ]; then
	stop_core
	echo "---- core log ----"
	cat "$log"
	exit 1
fi

monitor_open
wait_for "$log" "pattern\| fb-pattern: (hostile checks done|check ring_corrupted)" 150
load
drawn=$(out pattern "^fb-pattern: drawn " 1)
[[ $drawn == *"8 rectangles: 8 acknowledged with 0 (ok)"* ]]
result vesa_pattern_drawn $? "${drawn:-no pattern drawn}"
bench=$(out pattern "^fb-pattern: bench: [0-9]+ full-screen")
[[ -n $bench ]]
result vesa_damage_bench $? "${bench#fb-pattern: bench: }"

hostile_results vesa
refused=$(out vesa "^vesa: mode 1001x768x32 for .* refused: ")
policy=$(out vesa "^vesa: mode 4096x4096x32 for .* refused: ")
[[ $refused == *"not among the BIOS's"* && $policy == *"outside the policy: at most 1024x768"* ]]
result vesa_refusals $? "${refused#vesa: }; ${policy#vesa: }"

# the screen is still from here on: what the two see must be the pattern
pictures_equal vesa "VGA"

# the driver killed while in use: the BIOS run again, back in its mode, the picture redrawn
kill_in_use vesa
shot_check
rc=$?
[[ $rc == 0 && $redrawn == *"8 acknowledged with 0"* ]]
result vesa_driver_restart $? "killed pid $pid; owner's session back $back after the kill; $(out vesa '^vesa: 4F02h mode'); ${redrawn#fb-pattern: }; screendump: ${c:-none}"
png_equal vesa_fb_png_after_restart "$n" "fb-png reconnected: "

# a mode set behind the driver's back through the BIOS: 4F03h finds it, the mode and picture come back
pid=$(field vesa pid)
"$CLI" inject "$pid" bad-desc >/dev/null 2>&1
wait_for "$log" "vesa\| vesa: restored " 20
load
shot_check
rc=$?
restored=$(out vesa "^vesa: restored ")
[[ $rc == 0 && $restored == *"redrawn from the owner's buffer"* ]]
result vesa_health_restore $? "$(out vesa '^vesa: fault: ' | sed 's/^vesa: //'); $(out vesa '^vesa: the BIOS reports mode' | sed 's/^vesa: //'); screendump: ${c:-none}"

monitor_close
stop_core
echo "---- core log ----"
cat "$log"
