# shellcheck shell=bash
# Helpers for the display scenarios (display.sh, vesa.sh), after lib.sh:
# the core log read as lines, QEMU's screendump through the monitor that
# tools/vm/run --monitor wires to a pci-serial port (lib.sh), fb-png's pictures.

# the log's lines, read once per step (under TCG every process spawned costs
# a noticeable share of a second: the lookups below are bash)
lines=()
load() { mapfile -t lines <"$log"; }
# out COMPONENT REGEX [N]: its Nth (default: last) line matching, without the prefix
out() {
	local l p="$1| " hit= n=0
	for l in "${lines[@]}"; do
		[[ $l == "$p"* && ${l#"$p"} =~ $2 ]] || continue
		hit=${l#"$p"}
		((++n == ${3:-0})) && break
	done
	printf '%s\n' "$hit"
}
# at COMPONENT REGEX: the index of its last line matching, or -1
at() {
	local k p="$1| " i=-1
	for k in "${!lines[@]}"; do
		[[ ${lines[k]} == "$p"* && ${lines[k]#"$p"} =~ $2 ]] && i=$k
	done
	echo "$i"
}

# fb-png's picture written after the log's line N: wait for it
png_after() {
	local n=$1 end=$((SECONDS + 30))
	while [ $SECONDS -lt $end ]; do
		load
		[ "$(at png '^fb-png: wrote ')" -gt "$n" ] && return 0
		sleep 0.3
	done
	return 1
}
# restart_time DRIVER: core's clock from DRIVER's kill to the owner's new session
restart_time() {
	local l k= s=
	for l in "${lines[@]}"; do
		[[ $l =~ ^core\ \[\ *([0-9.]+)\]\ \"$1\"\ \(pid\ [0-9]+\)\ ended:\ killed ]] && k=${BASH_REMATCH[1]} s=
		[[ -n $k && -z $s && $l =~ ^core\ \[\ *([0-9.]+)\]\ session\ \'framebuffer\' ]] && s=${BASH_REMATCH[1]}
	done
	awk -v k="$k" -v s="$s" 'BEGIN { if (k != "" && s != "") printf "%.2f s", s - k; else print "?" }'
}
# hostile_results PREFIX: fb-pattern's hostile checks, each a TEST, and
# PREFIX_hostile_checks that all 9 ran
hostile_results() {
	local l n=0
	for l in "${lines[@]}"; do
		[[ $l =~ ^pattern\|\ fb-pattern:\ check\ ([a-z0-9_]+)\ (PASS|FAIL)\ (.*) ]] || continue
		[ "${BASH_REMATCH[2]}" = PASS ]
		result "$1_${BASH_REMATCH[1]}" $? "${BASH_REMATCH[3]}"
		n=$((n + 1))
	done
	[ $n -ge 9 ]
	result "$1_hostile_checks" $? "$n hostile checks ran (9 expected); $(out pattern '^fb-pattern: hostile checks done')"
}
# shot_check: QEMU's screendump against the pattern; the judge's words in c
shot_check() {
	screendump "$shot"
	c=$("$CMP" check "$shot" 1024x768)
}
# pictures_equal PREFIX DEVICE: the screen still after fb-pattern's checks:
# QEMU's screendump and fb-png's picture against the pattern, as two TESTs
pictures_equal() {
	"$CMP" expect 1024x768 "$expect"
	n=$(at pattern "^fb-pattern: (hostile checks done|check ring_corrupted)")
	shot_check
	result "$1_screendump_equal" $? "QEMU's screendump of the $2 (via $mon): ${c:-no screendump; monitor: $(monitor_tail)}"
	png_equal "$1_fb_png_equal" "$n" "fb-png's "
}
# clients_conf DRIVER BENCH: the config of fb-pattern (owner, BENCH full-screen
# updates, then hostile) and fb-png (reader, writing $png)
clients_conf() {
	conf_fb_pattern pattern "$1" "args = --bench $2 --hostile"
	conf_fb_png png "$1" "$png"
}
# png_equal TEST N WHAT: fb-png's first picture after log line N against the pattern
png_equal() {
	png_after "$2"
	load
	c=$("$CMP" check "$png" 1024x768)
	result "$1" $? "$3$(out png '^fb-png: wrote '): ${c:-no PNG}"
}
# kill_in_use DRIVER: SIGKILL while in use, then its restart in 1024x768x32 and
# fb-pattern's redraw; sets pid, n (the reconnect's log line), redrawn, back
kill_in_use() {
	local d=$1 n_set
	pid=$(field "$d" pid)
	n_set=$(count_of "$log" "^$d\| $d: mode 1024x768x32 set")
	kill -KILL "$pid"
	wait_for "$log" "started \"$d\" pid [0-9]+ .*\(restart\)" 30
	wait_for_count "$log" "^$d\| $d: mode 1024x768x32 set" $((n_set + 1)) 60
	wait_for "$log" "pattern\| fb-pattern: reconnected" 60
	load
	n=$(at pattern "^fb-pattern: reconnected")
	redrawn=$(out pattern "^fb-pattern: redrawn after reconnect ")
	back=$(restart_time "$d")
}
