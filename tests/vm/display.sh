#!/usr/bin/env bash
# vm: --devices bochs-display --monitor --mem 1024
# The display on the test machine: bulkhead's bochs driver takes QEMU's
# bochs-display (1234:1111), unprivileged, sets 1024x768x32 and serves the
# framebuffer and capture sessions. fb-pattern owns the screen and draws the
# test pattern; fb-png watches it through a capture session and writes it as
# a PNG; QEMU's own picture (screendump, through the monitor on a serial
# port: --monitor) and fb-png's must equal the pattern pixel for pixel
# (fb-compare). fb-pattern then plays a hostile client: impossible damage,
# impossible modes (refused with a reason), garbage on its socket; the
# driver must still serve. Then the driver is killed while in use: core
# resets the device and restarts it, fb-pattern reconnects and redraws, and
# the screen equals the pattern again. Last, a stray register write
# (bad-desc fault): the health check restores the mode and the picture.
set -u
. "$(dirname "$0")/lib.sh"

OUT=${BULKHEAD_OUT:-$WORK}
conf=$WORK/display-test.conf
log=$WORK/display-test.log
expect=$OUT/display-expected.png
shot=$OUT/display-screendump.png
png=$OUT/display-fb-png.png
CMP=$BUILD/tests/fb-compare
rm -f "$shot" "$png" "$expect"
cat >"$conf" <<CONF
[core]
backend = vfio
control = /run/bulkhead/core.sock

[component "bochs"]
exec = $BUILD/drivers/bochs/bulkhead-bochs
args = --mode 1024x768x32
device = 1234:1111
provides = framebuffer
provides = capture
env = BULKHEAD_FAULTS=1
restart = on-failure
backoff_ms = 200
watchdog_ms = 5000

[component "pattern"]
exec = $BUILD/tests/bulkhead-fb-pattern
args = --bench 20 --hostile
session = framebuffer bochs
restart = on-failure

[component "png"]
exec = $BUILD/bridges/fb-png/bulkhead-fb-png
session = capture bochs
output = $png
restart = on-failure
CONF

start_core "$conf" "$log" || { result display_core_start 1 "core did not start"; exit 1; }
wait_for "$log" "bochs\| bochs: ready" 30

# line N (default: last) of COMPONENT's output matching REGEX, without the prefix
out() { grep -E "^$1\| " "$log" | sed "s/^$1| //" | grep -E -- "$2" | if [ -n "${3:-}" ]; then sed -n "${3}p"; else tail -1; fi; }

id=$(out bochs "^bochs: uid ")
set=$(out bochs "^bochs: mode 1024x768x32 set")
[[ -n $set && $id == *"bochs-display"* && $id == *"ID 0xb0c"* ]]
result display_mode_set $? "${id#bochs: }; ${set:-no mode set}"

# QEMU's monitor is at the other end of the pci-serial port --monitor added
mon=
for d in /sys/bus/pci/devices/*; do
	read -r v <"$d/vendor" && read -r i <"$d/device" || continue
	[ "$v:$i" = 0x1b36:0x0002 ] || continue
	for t in "$d"/tty/tty*; do [ -e "$t" ] && mon=/dev/${t##*/}; done
done
if [ -n "$mon" ]; then
	stty -F "$mon" raw -echo -crtscts clocal
	exec {monfd}<>"$mon"
	cat <&"$monfd" >"$WORK/monitor.out" 2>/dev/null &
	monpid=$!
fi
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
# fb-png's picture written after the log's line N: wait for it
png_after() {
	local n=$1 end=$((SECONDS + 30))
	while [ $SECONDS -lt $end ]; do
		grep -nE "^png\| fb-png: wrote " "$log" | tail -1 | awk -F: -v n="$n" '$1 > n { ok = 1 } END { exit !ok }' && return 0
		sleep 0.3
	done
	return 1
}
lineno() { grep -nE -- "$1" "$log" | tail -1 | cut -d: -f1; }

wait_for "$log" "pattern\| fb-pattern: (hostile checks done|check still_serving)" 90
drawn=$(out pattern "^fb-pattern: drawn ")
[[ $drawn == *"8 rectangles: 8 acknowledged with 0 (ok)"* ]]
result display_pattern_drawn $? "${drawn:-no pattern drawn}"
bench=$(out pattern "^fb-pattern: bench: ")
[[ $bench == *" 20 full-screen updates"* ]]
result display_damage_bench $? "${bench:-no bench line}"

for t in bad_damage_refused mode_refused_1024x768x24 mode_refused_4096x4096x32 \
	mode_refused_1001x768x32 mode_refused_0x768x32 garbage_ignored mode_change still_serving; do
	l=$(out pattern "^fb-pattern: check $t ")
	[[ $l == "fb-pattern: check $t PASS "* ]]
	result "display_$t" $? "${l#fb-pattern: check $t * }"
done

"$CMP" expect 1024x768 "$expect"
# the screen is still from here on: what the two see must be the pattern
n=$(lineno "^pattern\| fb-pattern: (hostile checks done|check still_serving)")
screendump "$shot"
c=$("$CMP" check "$shot" 1024x768)
result display_screendump_equal $? "QEMU's screendump (via $mon): ${c:-no screendump; monitor: $(tr -c '[:print:]' ' ' <"$WORK/monitor.out" | tail -c 160)}"
png_after "$n"
c=$("$CMP" check "$png" 1024x768)
result display_fb_png_equal $? "fb-png's $(out png '^fb-png: wrote '): ${c:-no PNG}"

# the driver killed while in use: back in its mode, the picture redrawn
pid=$(field bochs pid)
t0=$SECONDS
n_set=$(count_of "$log" "^bochs\| bochs: mode 1024x768x32 set")
kill -KILL "$pid"
wait_for "$log" 'started "bochs" pid [0-9]+ .*\(restart\)' 20
wait_for_count "$log" "^bochs\| bochs: mode 1024x768x32 set" $((n_set + 1)) 30
wait_for "$log" "pattern\| fb-pattern: reconnected" 30
n=$(lineno "^pattern\| fb-pattern: reconnected")
redrawn=$(out pattern "^fb-pattern: redrawn after reconnect ")
screendump "$shot"
c=$("$CMP" check "$shot" 1024x768)
rc=$?
[[ $rc == 0 && $redrawn == *"8 acknowledged with 0"* ]]
result display_driver_restart $? "killed pid $pid; $(grep -oE 'revoked "bochs": [^;]*' "$log" | head -1); after $((SECONDS - t0)) s: $(out bochs '^bochs: mode 1024x768x32 set'); ${redrawn#fb-pattern: }; screendump: ${c:-none}"
png_after "$n"
c=$("$CMP" check "$png" 1024x768)
result display_fb_png_after_restart $? "fb-png reconnected: $(out png '^fb-png: wrote '): ${c:-no PNG}"

# a stray write to a mode register: the health check sets the mode again and redraws
pid=$(field bochs pid)
"$CLI" inject "$pid" bad-desc >/dev/null 2>&1
wait_for "$log" "bochs\| bochs: restored " 10
restored=$(out bochs "^bochs: (mode registers changed|restored )")
screendump "$shot"
c=$("$CMP" check "$shot" 1024x768)
rc=$?
[[ $rc == 0 && $restored == *"redrawn from the owner's buffer"* ]]
result display_health_restore $? "$(out bochs '^bochs: fault: ' | sed 's/^bochs: //'); $(out bochs '^bochs: mode registers changed' | sed 's/^bochs: //'); screendump: ${c:-none}"

[ -n "${monpid:-}" ] && kill "$monpid" 2>/dev/null
stop_core
echo "---- core log ----"
cat "$log"
