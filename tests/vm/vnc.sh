#!/usr/bin/env bash
# vm: --devices bochs-display --monitor --mem 1024
# A person at the isolated display: bulkhead's bochs driver serves the
# screen; term-fb owns it (a Framebuffer session), keeps a terminal with
# libvterm and draws it with a console-setup font; a shell runs on its pty;
# fb-vnc shows the screen over VNC (a Capture session) and passes keys
# back over the Input session term-fb serves. A VNC viewer (vnc-type, with
# Debian's libvncclient) types a command; it must run (its file appears)
# and its output must be on the screen QEMU reports (QMP screendump, read
# back glyph by glyph with the same font: fb-text). A hostile input source
# (input-hostile), which runs first, sends bad events and floods: refused and
# bounded, and the viewer types after it. Last, the driver is killed while in
# use: term-fb redraws the same screen once the driver is back.
set -u
. "$(dirname "$0")/lib.sh"

OUT=${BULKHEAD_OUT:-$WORK}
conf=$WORK/vnc-test.conf
log=$WORK/vnc-test.log
shot=$OUT/vnc-screendump.png
view=$OUT/vnc-viewer.png
FONT=/usr/share/consolefonts/Uni2-Terminus16.psf.gz
TEXT=$BUILD/tests/fb-text
VIEWER=$BUILD/tests/vnc-type
PORT=5900
tty=/run/bulkhead/pty/console
rm -f "$shot" "$view" /tmp/vnc-x /tmp/vnc-y
{
	conf_core
	conf_bochs 1234:1111 "restart = on-failure" "backoff_ms = 200"
	conf_component term "exec = $BUILD/bridges/term-fb/bulkhead-term-fb" \
		"session = framebuffer bochs" "provides = input" "pty = console" "restart = on-failure"
	conf_component vnc "exec = $BUILD/bridges/fb-vnc/bulkhead-fb-vnc" "session = capture bochs" \
		"session = input term" "listen = 127.0.0.1:$PORT" "restart = on-failure"
	conf_component hostile "exec = $BUILD/tests/bulkhead-input-hostile" "session = input term" \
		"restart = never"
} >"$conf"

start_core "$conf" "$log" || { result vnc_core_start 1 "core did not start"; exit 1; }
wait_for "$log" "term\| term-fb: ready" 60
wait_for "$log" "vnc\| fb-vnc: ready" 30
ready=$(grep -oE "term-fb: ready: .*" "$log" | tail -1)
[[ $ready =~ stty\ rows\ ([0-9]+)\ cols\ ([0-9]+) ]]
result vnc_term_ready $? "${ready:-term-fb not ready}; $(grep -oE 'term-fb: font .*' "$log" | tail -1); $(grep -oE 'fb-vnc: ready.*' "$log" | tail -1)"
rows=${BASH_REMATCH[1]:-48} cols=${BASH_REMATCH[2]:-128}

# the shell on term-fb's tty, as a getty would start it
stty -F "$tty" sane rows "$rows" cols "$cols"
env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM=xterm PS1='term-fb$ ' \
	setsid -c /bin/sh -i <>"$tty" >&0 2>&0 &
shell=$!
sleep 1

monitor_open || true
# on_screen FILE TEXT: a row of FILE's text is TEXT exactly
on_screen() { "$TEXT" "$FONT" "$1" | grep -qxF -- "$2"; }

# the hostile source ran first (it starts with the others): its checks
wait_for "$log" "hostile\| input-hostile: done" 90
n=0
while read -r l; do
	[[ $l =~ ^hostile\|\ input-hostile:\ check\ ([a-z_]+)\ (PASS|FAIL)\ (.*) ]] || continue
	[ "${BASH_REMATCH[2]}" = PASS ]
	result "vnc_input_${BASH_REMATCH[1]}" $? "${BASH_REMATCH[3]}"
	n=$((n + 1))
done <"$log"
refused=$(grep -cE "^term\| term-fb: input from hostile: refused: " "$log")
closed=$(grep -oE "term-fb: input from hostile: too many bad events[^\n]*" "$log" | head -1)
[ $n -ge 6 ] && [ "$refused" -ge 4 ] && [ -n "$closed" ]
result vnc_input_hostile $? "$n checks; term-fb logged $refused refusals ($(grep -oE 'term-fb: input from hostile: refused: .*' "$log" | head -2 | sed 's/term-fb: input from hostile: //' | tr '\n' ';')) and: ${closed:-no session closed}"

# a person types through VNC: the command runs and its output is on the screen
tok=$RANDOM
sum=$((tok + 1000))
t0=$(date +%s.%N)
out=$("$VIEWER" 127.0.0.1 $PORT --type $'echo hello-'"$tok"$' > /tmp/vnc-x; echo ok-$((1000 + '"$tok"$')); ls /\n' --png "$view" 2>&1)
rc=$?
t1=$(date +%s.%N)
got=$(cat /tmp/vnc-x 2>/dev/null)
[ $rc = 0 ] && [ "$got" = "hello-$tok" ]
result vnc_typed_command_ran $? "/tmp/vnc-x holds '${got:-nothing}' (want hello-$tok); $(echo "$out" | tr '\n' ';'); $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "viewer session %.1f s", b - a }')"

screendump "$shot"
on_screen "$shot" "ok-$sum" && on_screen "$shot" "term-fb\$ echo hello-$tok > /tmp/vnc-x; echo ok-\$((1000 + $tok)); ls /"
rc=$?
lsrow=$("$TEXT" "$FONT" "$shot" | grep -m1 -E '(^| )proc( |$)')
[ $rc = 0 ] && [ -n "$lsrow" ]
result vnc_output_on_screen $? "QEMU's screendump read with $FONT: the typed line, 'ok-$sum' and ls's row '${lsrow:-none}' are on it"

# what the viewer saw is what QEMU shows: each row it has reads the same
# (the viewer may have left before the last prompt was drawn)
mapfile -t vrows <<<"$("$TEXT" "$FONT" "$view" 2>/dev/null)"
mapfile -t drows <<<"$("$TEXT" "$FONT" "$shot")"
same=0 differ=0
for i in "${!vrows[@]}"; do
	[ -n "${vrows[i]}" ] || continue
	if [ "${vrows[i]}" = "${drows[i]:-}" ]; then same=$((same + 1)); else differ=$((differ + 1)); fi
done
printf '%s\n' "${vrows[@]}" | grep -qxF "ok-$sum" && [ $differ = 0 ]
result vnc_viewer_sees_screen $? "the viewer's picture: $same rows of text as on QEMU's screendump, $differ differ, 'ok-$sum' among them"

# wait_text REGEX SECONDS: until a row of QEMU's screen matches; prints it
wait_text() {
	local end=$((SECONDS + $2)) row
	while [ $SECONDS -lt $end ]; do
		screendump "$shot" || continue
		row=$("$TEXT" "$FONT" "$shot" | grep -m1 -E -- "$1") && { echo "$row"; return 0; }
		sleep 1
	done
	return 1
}

# a figure: lines through the shell, term-fb, the driver and fb-vnc (the
# shell times seq; seq's end waits for term-fb, the pty holds only so much);
# then, typed ahead, the picture for docs/: a shell in term-fb, and who draws it
lines=${VNC_LINES:-2000}
rm -f /tmp/vnc-seq
seqrun=$("$VIEWER" 127.0.0.1 $PORT \
	--type 't0=$(date +%s%N); seq 1 '"$lines"'; echo seq-ms-$((($(date +%s%N) - t0) / 1000000)) >/tmp/vnc-seq'$'\n' \
	--type $'clear; uname -sr; tty; ps -o pid,uid,args -u 61000,61001,61002,61003; grep -E \'^(Uid|NoNewPrivs|Seccomp):\' /proc/$(pgrep -u 61000)/status\n' \
	--quiet-ms 2000 2>&1 | tail -1)
for _ in $(seq 300); do [ -s /tmp/vnc-seq ] && break; sleep 0.5; done
row=$(cat /tmp/vnc-seq 2>/dev/null)
ms=${row#seq-ms-}
[[ $ms =~ ^[0-9]+$ ]] && [ "$ms" -gt 0 ]
result vnc_scroll $? "seq 1 $lines on term-fb: ${ms:-?} ms ($(awk -v n="$lines" -v ms="${ms:-0}" 'BEGIN { if (ms > 0) printf "%d lines/s", n * 1000 / ms; else print "?" }')), typed and watched over VNC: ${seqrun#vnc-type: }"
wait_text '^Seccomp:' 120 >/dev/null
sleep 1
screendump "$OUT/term-fb.png"

# the driver killed while in use: term-fb redraws the same screen
before=$("$TEXT" "$FONT" "$OUT/term-fb.png" | md5sum)
pid=$(field bochs pid)
n_re=$(count_of "$log" "term-fb: reconnected")
kill -KILL "$pid"
wait_for_count "$log" "term\| term-fb: reconnected" $((n_re + 1)) 60
sleep 1
screendump "$shot"
after=$("$TEXT" "$FONT" "$shot" | md5sum)
[ "$before" = "$after" ] && "$TEXT" "$FONT" "$shot" | grep -q "^Seccomp:"
result vnc_driver_restart $? "killed bochs (pid $pid): $(grep -oE 'term-fb: reconnected.*' "$log" | tail -1); QEMU's screen reads the same as before the kill; fb-vnc: $(grep -oE 'fb-vnc: the driver [a-z ]+' "$log" | tail -1)"

# figures
echo "vnc figures: $(grep -oE 'term-fb: drew .*' "$log" | tail -1); $(grep -oE 'fb-vnc: viewer [0-9]: disconnected .*' "$log" | tail -1)"

kill "$shell" 2>/dev/null
monitor_close
stop_core
echo "---- core log ----"
cat "$log"
