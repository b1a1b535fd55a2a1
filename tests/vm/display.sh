#!/usr/bin/env bash
# vm: --devices bochs-display --monitor --mem 1024
# The display on the test machine: bulkhead's bochs driver takes QEMU's
# bochs-display (1234:1111), unprivileged, sets 1024x768x32 and serves the
# framebuffer and capture sessions. fb-pattern owns the screen and draws the
# test pattern; fb-png watches it through a capture session and writes it as
# a PNG; QEMU's own picture (screendump, through the monitor on a serial
# port: --monitor) and fb-png's must equal the pattern pixel for pixel
# (fb-compare). fb-pattern then plays a hostile client: impossible damage,
# impossible modes (refused with a reason), garbage on its socket, ring
# indexes moved impossibly (that session ends, a new one works); the
# driver must still serve. Then the driver is killed while in use: core
# resets the device and restarts it, fb-pattern reconnects and redraws, and
# the screen equals the pattern again. Last, a stray register write
# (bad-desc fault): the health check restores the mode and the picture.
# tests/vm/display-vga.sh runs the same on QEMU's VGA.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/display-lib.sh"

# the device: bochs-display, or VGA, which is the boot display and so is
# named by address to be taken from the host
addr=$(first_dev 0x1234:0x1111) kind=bochs-display
[ -n "$addr" ] && [ "$addr" = "$(first_dev 0x1234:0x1111:0x030000)" ] && kind=VGA
device="1234:1111"
[ $kind = VGA ] && device="$addr take-from-host"
OUT=${BULKHEAD_OUT:-$WORK}
conf=$WORK/display-test.conf
log=$WORK/display-test.log
expect=$OUT/display-expected.png
shot=$OUT/display-screendump.png
png=$OUT/display-fb-png.png
CMP=$BUILD/tests/fb-compare
rm -f "$shot" "$png" "$expect"
{
	conf_core
	conf_bochs "$device" "env = BULKHEAD_FAULTS=1" "restart = on-failure" "backoff_ms = 200" \
		"watchdog_ms = 5000"
	echo
} >"$conf"
clients_conf bochs "${DISPLAY_BENCH:-20}" >>"$conf"

start_core "$conf" "$log" || { result display_core_start 1 "core did not start"; exit 1; }
wait_for "$log" "bochs\| bochs: ready" 30

load

id=$(out bochs "^bochs: uid ")
set=$(out bochs "^bochs: mode 1024x768x32 set \\(pitch")
[[ -n $set && $id == *"$kind $addr"* && $id == *"ID 0xb0c"* ]]
result display_mode_set $? "${id#bochs: }; ${set:-no mode set}"

monitor_open

wait_for "$log" "pattern\| fb-pattern: (hostile checks done|check ring_corrupted)" 90
load
drawn=$(out pattern "^fb-pattern: drawn " 1)
[[ $drawn == *"8 rectangles: 8 acknowledged with 0 (ok)"* ]]
result display_pattern_drawn $? "${drawn:-no pattern drawn}"
bench=$(out pattern "^fb-pattern: bench: [0-9]+ full-screen")
small=$(out pattern "^fb-pattern: bench: [0-9]+ updates of 64x16")
[[ $bench == *" ${DISPLAY_BENCH:-20} full-screen updates"* && -n $small ]]
result display_damage_bench $? "${bench#fb-pattern: bench: }; ${small#fb-pattern: bench: }"

# fb-pattern's hostile checks, each a TEST
hostile_results display

# the screen is still from here on: what the two see must be the pattern
pictures_equal display "$kind"

# the driver killed while in use: back in its mode, the picture redrawn
kill_in_use bochs
shot_check
rc=$?
[[ $rc == 0 && $redrawn == *"8 acknowledged with 0"* ]]
result display_driver_restart $? "killed pid $pid; $(grep -oE 'revoked "bochs": [^;]*' "$log" | head -1); owner's session back $back after the kill; $(out bochs '^bochs: mode 1024x768x32 set \(pitch'); ${redrawn#fb-pattern: }; screendump: ${c:-none}"
png_equal display_fb_png_after_restart "$n" "fb-png reconnected: "

# a stray write to a mode register: the health check sets the mode again and redraws
pid=$(field bochs pid)
"$CLI" inject "$pid" bad-desc >/dev/null 2>&1
wait_for "$log" "bochs\| bochs: restored " 10
load
restored=$(out bochs "^bochs: (mode registers changed|restored )")
shot_check
rc=$?
[[ $rc == 0 && $restored == *"redrawn from the owner's buffer"* ]]
result display_health_restore $? "$(out bochs '^bochs: fault: ' | sed 's/^bochs: //'); $(out bochs '^bochs: mode registers changed' | sed 's/^bochs: //'); screendump: ${c:-none}"

monitor_close
stop_core
echo "---- core log ----"
cat "$log"
