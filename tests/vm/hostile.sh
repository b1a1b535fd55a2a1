#!/usr/bin/env bash
# vm: --icount 3 --smp 1 --devices e1000e,e1000e,nvme:rp,edu,edu --mem 1536 --timeout 1800
# Hostile neighbours (issue 13): for each server with two clients, one
# client attacks while the other carries traffic, and the bystander's
# traffic must not notice. One boot, one core config:
#   e1000e (0000:00:02.0) -> nic-tap: bh0, pinged and iperf3'd to the
#     kernel-driven peer NIC (0000:00:03.0) in namespace "peer"; attacked by
#     nic-* clients of the same driver;
#   nvme -> nbd: /dev/nbd0, read with fio (4 KiB random, O_DIRECT); attacked
#     by blk-* clients of the same driver;
#   core itself: a request flood, DMA and fd exhaustion (on the two edu
#     devices), and a component that spins on a CPU; both bystanders watched.
# Every attacker is bulkhead-hostile, idle until SIGUSR1, attacking until
# SIGUSR2. Per attack the bystander is measured just before, during, and
# one second after the attacker has stopped, and the issue's bounds are
# what a test passes on: no echo lost; during, median round trip <= 1.5x
# and throughput >= 0.8x of before; one second after, round trip <= 1.1x
# and throughput >= before/1.1. A missed bound is measured up to twice
# more (the line says so): under --icount (below) the guest's clock still
# follows the host's while the guest waits for a device, so a busy host
# leaks into the round trips.
#
# The test machine counts time in instructions (--icount, one CPU): the
# bystander's figures are then the same whatever else the host runs. On a
# real clock they swung between quiet windows seconds apart by more than
# the bounds (171-425 Mbit/s, 882-1810 IOPS); under --icount the twelve
# "before" windows of one run, on a host at load 10, were 137-143 Mbit/s
# and 1151-1177 IOPS. One CPU is also the hardest case: attackers, servers,
# core and bystander share it. The attackers run at cpu_weight = 10, as an
# operator runs a component it does not trust: what the suite tests is the
# work servers and core do for them (printed per attack: "CPU used during
# the attack"), and the spinner's limit (cpu = 10%) on its own. Core keeps
# 128 huge pages: a session's 16 MiB of streams on 4 KiB pages cost core
# 3.8 s of CPU in 4 s of malformed set-ups (pinning and mapping 4096 pages
# each) and nbd0 half its reads; on 2 MiB pages, 0.27 s and 3 %.
# Core's fds and memory are compared before and after the whole suite.
set -u
. "$(dirname "$0")/lib.sh"

ours=0000:00:02.0
theirs=0000:00:03.0
conf=$WORK/hostile.conf
log=$WORK/hostile.log
hostile=$BUILD/tests/bulkhead-hostile
{
	conf_core "hugepages = 128"
	conf_e1000e "$ours" "restart = on-failure"
	conf_nic_tap "restart = on-failure"
	conf_nvme "restart = on-failure" "backoff_ms = 200"
	conf_nbd "restart = on-failure"
} >"$conf"
# the attackers: name, arguments, extra config lines
hostile_component() {
	printf '\n[component "%s"]\nexec = %s\nargs = %s\nrestart = never\ncpu_weight = 10\n' "$1" "$hostile" "$2"
	shift 2
	printf '%s\n' "$@"
}
{
	hostile_component nic-flood "session-flood nic" "session = nic e1000e"
	hostile_component nic-hold "session-hold nic" "session = nic e1000e"
	hostile_component nic-idle "idle-sessions nic 3" "session = nic e1000e"
	hostile_component nic-malformed "malformed nic" "session = nic e1000e"
	hostile_component blk-flood "session-flood block" "session = block nvme"
	hostile_component blk-hold "session-hold block" "session = block nvme"
	hostile_component blk-idle "idle-sessions block 3" "session = block nvme"
	hostile_component blk-malformed "malformed block" "session = block nvme"
	hostile_component core-flood "core-flood"
	# fds = 128: the DMA quota (64M) is reached before its fd table is full
	hostile_component dma "dma-exhaust" "device = 0000:00:05.0" "fds = 128"
	hostile_component fds "fd-exhaust block" "device = 0000:00:06.0" "fds = 512" \
		"session = block nvme"
	hostile_component spin "spin" "cpu = 10%"
} >>"$conf"
attackers="nic-flood nic-hold nic-idle nic-malformed blk-flood blk-hold blk-idle blk-malformed
	core-flood dma fds spin"

modprobe tun
modprobe nbd nbds_max=2 2>/dev/null
suite_t0=$SECONDS
start_core "$conf" "$log" || { result hostile_core_start 1 "core did not start"; exit 1; }
wait_for "$log" "nic-tap\| nic-tap: bh0 <-> nic session" 60
wait_for "$log" "nbd\| block-nbd: /dev/nbd0 serves" 60
for a in $attackers; do
	wait_for "$log" "^$a\| hostile: .*: ready" 30 || echo "attacker $a is not ready"
done
peer_netns "$theirs" 10.0.0.2/24 >/dev/null
tap_up "$log" bh0 10.0.0.1/24
ip netns exec peer iperf3 -s -D -I "$WORK/iperf3.pid" >/dev/null 2>&1
sleep 0.5

# a stalled step says where: every 30 s, the step, processes in D state
# and core's last lines
step=$WORK/hostile.step
echo setup >"$step"
(
	while sleep 30; do
		echo "[stall report] step: $(cat "$step"); core: $(kill -0 "$CORE_PID" 2>/dev/null && echo alive || echo gone)"
		ps -eo pid,stat,wchan:24,etime,args | awk 'NR == 1 || $2 ~ /D/' | cut -c1-160
		tail -3 "$log" | cut -c1-200
	done
) &
stall_pid=$!

# core's status, within 5 s: a stalled core must not stall the suite
status() { timeout -k 1 5 "$CLI" status; }

# ---- the bystanders' figures

# ping_figures: "LOST MEDIAN_MS" of 30 echoes, 0.1 s apart, through bh0
ping_figures() {
	timeout -k 3 10 busybox ping -c 30 -i 0.1 -W 1 10.0.0.2 2>&1 |
		awk '/bytes from/ { n++; t = $0; sub(/.*time=/, "", t); sub(/ ms.*/, "", t); r[n] = t }
		END {
			if (!n) { print 30, "-"; exit }
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
				if (r[j] + 0 < r[i] + 0) { x = r[i]; r[i] = r[j]; r[j] = x }
			m = n % 2 ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2
			printf "%d %.3f\n", 30 - n, m
		}'
}

# iperf3_mbits: bh0 -> peer for 3 s after 1 s of slow start, the receiver's Mbit/s ("-" if none)
iperf3_mbits() {
	timeout -k 3 8 iperf3 -c 10.0.0.2 -O 1 -t 3 2>&1 |
		awk '/receiver$/ { for (i = 1; i <= NF; i++) if ($i ~ /bits\/sec/) { v = $(i - 1); u = $i } }
		END { if (v == "") { print "-"; exit }
			if (u ~ /^G/) v *= 1000; if (u ~ /^K/) v /= 1000; if (u ~ /^bits/) v /= 1e6
			printf "%.1f\n", v }'
}

# fio_iops: 4 KiB random reads on /dev/nbd0 for 3 s, O_DIRECT, 8 deep; "-"
# if it has not finished 10 s after it started. fio runs apart from the shell: a reader
# stuck in I/O on a stalled nbd0 cannot be killed, and would hold a pipe.
fio_iops() {
	local out=$WORK/fio.out pid end
	rm -f "$out"
	fio --name=bystander --filename=/dev/nbd0 --readonly --rw=randread --bs=4k --direct=1 \
		--ioengine=libaio --iodepth=8 --runtime=3 --time_based --thread \
		--output-format=terse --terse-version=3 --output="$out" >/dev/null 2>&1 &
	pid=$! end=$((SECONDS + 10))
	while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.2; done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
		echo "-"
		return
	fi
	wait "$pid" 2>/dev/null
	awk -F';' 'NF > 8 { v = $8 } END { print (v == "" ? "-" : int(v)) }' "$out" 2>/dev/null || echo "-"
}

# measure KIND: sets LOSS RTT (bh0) and NET BLK (throughputs) for KIND nic|blk|both
measure() {
	LOSS=- RTT=- NET=- BLK=-
	if [ "$1" != blk ]; then
		read -r LOSS RTT <<<"$(ping_figures)"
		NET=$(iperf3_mbits)
	fi
	[ "$1" = nic ] || BLK=$(fio_iops)
}

# mean2 A B: the mean of two figures; "-" (no figure) if either has none
mean2() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%.4g\n", (a + b) / 2 }'
}

# verdict PHASE LOSS RTT_BEFORE RTT TPUT_BEFORE TPUT UNIT: what fails, or nothing
verdict() {
	awk -v ph="$1" -v loss="$2" -v rb="$3" -v rx="$4" -v tb="$5" -v tx="$6" -v unit="$7" 'BEGIN {
		rf = ph == "during" ? 1.5 : 1.1
		if (ph == "during" && loss != "-" && loss != 0) why = why sprintf(" %s of 30 echoes lost;", loss)
		if (rb != "-" && (rx == "-" || rx > rf * rb))
			why = why sprintf(" median rtt %s ms > %.1f x %s ms;", rx, rf, rb)
		if (tb == "-" || tx == "-")
			why = why sprintf(" no %s figure (%s before, %s %s);", unit, tb, tx, ph)
		else if (ph == "during" && tx < 0.8 * tb)
			why = why sprintf(" %s %s < 0.8 x %s;", unit, tx, tb)
		else if (ph == "after" && tx * 1.1 < tb)
			why = why sprintf(" %s %s < %s / 1.1;", unit, tx, tb)
		printf "%s", why
	}'
}

# phase_verdict PHASE KIND: verdict of the phase's figures (X_*) against before (B_*)
phase_verdict() {
	local w=""
	[ "$2" = blk ] || w+=$(verdict "$1" "$X_LOSS" "$B_RTT" "$X_RTT" "$B_NET" "$X_NET" Mbit/s)
	[ "$2" = nic ] || w+=$(verdict "$1" - - - "$B_BLK" "$X_BLK" IOPS)
	printf '%s' "$w"
}

# wait_log LINE REGEX SECONDS: until a line of the log from LINE on matches
wait_log() {
	local end=$((SECONDS + $3))
	while [ $SECONDS -lt $end ]; do
		tail -n +"$1" "$log" | grep -qaE -- "$2" && return 0
		sleep 0.2
	done
	return 1
}


# bystander_down KIND: the last figures show echoes lost, or throughput
# below half of the warm-up's (W_NET, W_BLK)
bystander_down() {
	local net=$NET blk=$BLK
	[ "$1" != blk ] || net=$W_NET
	[ "$1" != nic ] || blk=$W_BLK
	{ [ "$1" != blk ] && [ "$LOSS" != 0 ]; } ||
		awk -v n="$net" -v wn="$W_NET" -v b="$blk" -v wb="$W_BLK" \
			'BEGIN { exit !(n == "-" || b == "-" || n < wn / 2 || b < wb / 2) }'
}

# cpu_ticks SNAP: "NAME TICKS" of core and every component running in
# status snapshot SNAP (user + system time, 1/100 s)
cpu_ticks() {
	local name pid
	for name in core $(awk '$1 == "component" || $1 == "vm" { print $2 }' <<<"$1"); do
		if [ "$name" = core ]; then pid=$CORE_PID; else pid=$(field "$name" pid "$1"); fi
		[ -n "$pid" ] && [ "$pid" != 0 ] || continue
		awk -v n="$name" '{ sub(/.*\) /, ""); print n, $12 + $13 }' "/proc/$pid/stat" 2>/dev/null
	done
}

# cpu_used BEFORE AFTER: who used how much CPU between two cpu_ticks, the
# busiest first ("e1000e 0.52 s, nic-tap 0.40 s, ...")
cpu_used() {
	printf '%s\n--\n%s\n' "$1" "$2" |
		awk '$1 == "--" { after = 1; next } !after { t[$1] = $2; next }
			($1 in t) { d = $2 - t[$1]; if (d > 0) print d, $1 }' | sort -rn | head -6 |
		awk '{ printf "%s%s %.2f s", s, $2, $1 / 100; s = ", " }'
}

# judge PHASE KIND: the bystander measured (X_*) and the phase's figures
# judged against before (WHY: what missed, or nothing). A miss is measured
# up to twice more, unless nothing came through at all (no figure: that is
# no noise); each miss a later measurement cleared goes in the caller's note
judge() {
	local try
	for try in 1 2 3; do
		measure "$2"
		X_LOSS=$LOSS X_RTT=$RTT X_NET=$NET X_BLK=$BLK
		WHY=$(phase_verdict "$1" "$2")
		[ -n "$WHY" ] && [[ $WHY != *"no "*figure* ]] && [ "$try" -lt 3 ] || return 0
		note+=" $1 measured again $((SECONDS - t_phase)) s in (miss $try:$WHY)"
	done
}

# attack NAME KIND COMPONENT [READY_REGEX]: one attack, judged; KIND says
# which bystander it aims at (nic, blk, or both for attacks on core)
attack() {
	local name=$1 kind=$2 comp=$3 ready=${4:-} snap pid why_d why_a note="" t_phase lines
	# HOSTILE_ONLY=REGEX (tools/vm/run --env): only the attacks it matches
	[[ $name =~ ${HOSTILE_ONLY:-.} ]] || return 0
	echo "$name: before" >"$step"
	snap=$(status)
	pid=$(field "$comp" pid "$snap")
	if [ -z "$pid" ] || [ "$pid" = 0 ]; then
		result "hostile_${name//-/_}" 1 "attacker $comp is not running ($(field "$comp" state "$snap"), $(field "$comp" last_exit "$snap"))"
		return
	fi
	lines=$(wc -l <"$log")
	# the figure before: from a bystander that is back from the previous
	# attack (a server may work through a backlog for many seconds)
	local t0=$SECONDS
	measure "$kind"
	while bystander_down "$kind" && [ $((SECONDS - t0)) -lt 60 ]; do
		sleep 2
		measure "$kind"
	done
	[ $((SECONDS - t0)) -lt 20 ] ||
		note+=" (the bystander took $((SECONDS - t0)) s to come back from the previous attack)"
	# the figure before is the mean of two measurements: one alone landed
	# 10% under the level of the phases around it (median rtt 0.766 ms
	# among 0.82-0.91 ms), and a level the bystander never left then
	# missed the 1.1x bound after the attack
	local r1=$RTT n1=$NET b1=$BLK l1=$LOSS
	measure "$kind"
	B_LOSS=$(mean2 "$l1" "$LOSS") B_RTT=$(mean2 "$r1" "$RTT") B_NET=$(mean2 "$n1" "$NET") B_BLK=$(mean2 "$b1" "$BLK")
	echo "$name: during" >"$step"
	local ticks0 cpu
	ticks0=$(cpu_ticks "$snap")
	kill -USR1 "$pid"
	t_phase=$SECONDS
	# hold and exhaustion attacks first take what they can, then hold it
	if [ -n "$ready" ]; then
		wait_log "$lines" "^$comp\| hostile: .*$ready" 10 ||
			note+=" (attacker not holding yet after 10 s)"
	fi
	sleep 1
	judge during "$kind"
	why_d=$WHY
	D_LOSS=$X_LOSS D_RTT=$X_RTT D_NET=$X_NET D_BLK=$X_BLK
	cpu=$(cpu_used "$ticks0" "$(cpu_ticks "$snap")")
	echo "$name: CPU used during the attack: $cpu"
	echo "$name: after" >"$step"
	kill -USR2 "$pid"
	# the attack ends when the attacker has stopped: its last act is to
	# close what it held; "after" is one second from then
	wait_log "$lines" "^$comp\| hostile: .*: done" 10 ||
		note+=" (attacker did not report done within 10 s of SIGUSR2)"
	t_phase=$SECONDS
	sleep 1
	judge after "$kind"
	why_a=$WHY
	# what the attacker said, for the record
	tail -n +"$lines" "$log" | grep -aE "^$comp\| hostile: " | grep -v ": ready\|: attacking" |
		sed "s/^/    /" | head -20
	[ "$kind" = blk ] ||
		echo "RESULT hostile-$name bystander=bh0 ping_loss=$D_LOSS rtt_before_ms=$B_RTT rtt_during_ms=$D_RTT rtt_after_ms=$X_RTT tput_before=$B_NET tput_during=$D_NET tput_after=$X_NET unit=Mbit/s ping_loss_before=$B_LOSS ping_loss_after=$X_LOSS"
	[ "$kind" = nic ] ||
		echo "RESULT hostile-$name bystander=nbd0 ping_loss=- rtt_before_ms=- rtt_during_ms=- rtt_after_ms=- tput_before=$B_BLK tput_during=$D_BLK tput_after=$X_BLK unit=IOPS"
	# the verdict: no echo lost, something came through, and the issue's
	# bounds met (during: round trip within 1.5x, throughput above 0.8x;
	# one second after: both within 1.1x of before)
	local hard="" bounds
	[ "$kind" = blk ] || [ "$D_LOSS" = 0 ] || hard+=" during: $D_LOSS of 30 echoes lost;"
	[ "$kind" = blk ] || [ "$X_LOSS" = 0 ] || hard+=" after: $X_LOSS of 30 echoes lost;"
	[ "$kind" = blk ] || [ "$D_NET" != - ] || hard+=" during: nothing through bh0;"
	[ "$kind" = nic ] || [ "$D_BLK" != - ] || hard+=" during: no read finished on nbd0;"
	if [ -z "$why_d$why_a" ]; then
		bounds="the issue's bounds: met"
	else
		bounds="the issue's bounds: missed:${why_d:+ during:$why_d}${why_a:+ after:$why_a}"
	fi
	[ -z "$hard$why_d$why_a" ]
	result "hostile_${name//-/_}" $? "${hard:+$hard }$bounds${note:+; note:$note}"
}

# warm-up: every path once, so first-time allocations are not counted as leaks
measure both
echo "warm-up: bh0 lost $LOSS of 30, median rtt $RTT ms, $NET Mbit/s; nbd0 $BLK IOPS"
W_NET=$NET W_BLK=$BLK
snap=$(status)
pid_e1000e=$(field e1000e pid "$snap")
pid_nvme=$(field nvme pid "$snap")
fds0=$(core_fds) rss0=$(core_rss) mem0=$(core_mem) anon0=$(core_anon_shmem)
maps0=$(core_maps)
echo "core before the suite: $fds0 fds, $mem0 (KiB)"

attack e1000e-session-flood nic nic-flood
attack e1000e-session-hold nic nic-hold "sessions open after"
attack e1000e-idle-sessions nic nic-idle "sessions open, never"
attack e1000e-malformed nic nic-malformed
attack nvme-session-flood blk blk-flood
attack nvme-session-hold blk blk-hold "sessions open after"
attack nvme-idle-sessions blk blk-idle "sessions open, never"
attack nvme-malformed blk blk-malformed
attack core-flood both core-flood
attack core-dma-exhaust both dma "holding"
attack core-fd-exhaust both fds "holding"
attack core-spin both spin

# core after the suite: the attackers are idle again and hold nothing
snap=$(status)
for a in $attackers; do
	[ "$(field "$a" state "$snap")" = running ] ||
		echo "attacker $a: $(field "$a" state "$snap"), $(field "$a" last_exit "$snap")"
done
sleep 1
fds1=$(core_fds) rss1=$(core_rss) mem1=$(core_mem) anon1=$(core_anon_shmem)
maps1=$(core_maps)
echo "core after the suite: $fds1 fds, $mem1 (KiB)"
echo "what core maps (name, size KiB, resident KiB), before -> after:"
echo "$maps0" >"$WORK/maps0" && echo "$maps1" >"$WORK/maps1"
diff "$WORK/maps0" "$WORK/maps1" && echo "  the same"
# core's own memory is its anonymous mappings (heap, stack) and the DMA
# buffers it maps for components (memfds): the same buffers before and
# after, and their resident pages within 64 KiB (first-touch pages of paths
# only the attacks took); thousands of sessions, requests and buffers
# leaking even a little each would show. Code (core and its libraries,
# first touched by those paths) is bounded by its size: printed, not
# judged. The kernel's RssShmem counter is printed too: it rises by 176 KiB
# after a session flood while every mapping, memfd and resident page count
# in smaps stays the same (seen with HOSTILE_ONLY=e1000e-session-flood), so
# it is not what core holds.
own0=$(core_own_kib "$WORK/maps0") own1=$(core_own_kib "$WORK/maps1")
bufs0=$(grep -c memfd "$WORK/maps0") bufs1=$(grep -c memfd "$WORK/maps1")
[ "$fds1" = "$fds0" ] && [ "$bufs1" = "$bufs0" ] && [ $((own1 - own0)) -le 64 ]
result hostile_core_resources $? "fds $fds0 -> $fds1; DMA buffers mapped $bufs0 -> $bufs1; heap, stack, anonymous and DMA mappings resident $own0 -> $own1 KiB (allowed: +64 KiB); VmRSS $rss0 -> $rss1 KiB; before: $mem0; after: $mem1"

snap=$(status)
[ "$(field e1000e pid "$snap")" = "$pid_e1000e" ] && [ "$(field nvme pid "$snap")" = "$pid_nvme" ] &&
	[ "$(field e1000e restarts "$snap")" = 0 ] && [ "$(field nvme restarts "$snap")" = 0 ] &&
	kill -0 "$CORE_PID"
result hostile_servers_survived $? "e1000e pid $pid_e1000e -> $(field e1000e pid "$snap"), nvme pid $pid_nvme -> $(field nvme pid "$snap"); core pid $CORE_PID $(kill -0 "$CORE_PID" && echo alive)"
echo "suite: $((SECONDS - suite_t0)) s from core start"

kill "$(cat "$WORK/iperf3.pid" 2>/dev/null)" 2>/dev/null
kill "$stall_pid" 2>/dev/null
stop_core
echo "---- core status at the end ----"
echo "$snap"
# the log holds a line or more per flooded session and request: counts of
# those, and everything else
echo "---- core log (repetitive lines counted, not shown) ----"
for re in "session '" "session from|serving |refused a session|session for" "policy: denied"; do
	echo "  $(grep -acE "$re" "$log") lines matching '$re'"
done
grep -avE "session '|session from|serving |refused a session|session for|policy: denied" "$log" | head -600
