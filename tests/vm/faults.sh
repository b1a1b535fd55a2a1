#!/usr/bin/env bash
# The fault campaign (make faults): injections at random times into running
# drivers, each followed by a check of the whole system. Not part of make
# check (it runs for minutes); FAULTS=N sets the number of injections.
set -u
. "$(dirname "$0")/lib.sh"

count=${FAULTS:-100}
seed=${FAULT_SEED:-1}
RANDOM=$seed
conf=$WORK/faults.conf
log=$WORK/faults.log
rows=$WORK/faults.rows
: >"$rows"

# e1000e: the first 82574L goes to bulkhead (bh0 via nic-tap), the second
# to the kernel in namespace "peer", the far end of the probe
nics=$(pci_devs 0x8086:0x10d3)
nic_ours=$(echo "$nics" | sed -n 1p)
nic_peer=$(echo "$nics" | sed -n 2p)
# nvme: the first QEMU NVMe controller goes to bulkhead, served to Linux as
# /dev/nbd0 by block-nbd. Watchdogs of 5 and 10 s: core answers no heartbeat while
# it bus-resets a device (2-5 s under TCG) and then counts that stall against all
nvme_dev=$(first_dev 0x1b36:0x0010)
# serial: pci-serial, whose far end (tools/vm/run pci-serial:echo) sends every
# byte back, as a pty through term-pty; xhci: the CCID reader with a card,
# used by the ccid driver and a client exchanging APDUs; bochs: the display,
# with a client that owns the screen and fb-png watching it; vesa: QEMU's
# VGA (the same 1234:1111, of the VGA class) through its own video BIOS, with
# its own owner and fb-png
serial_dev=$(first_dev 0x1b36:0x0002)
xhci_dev=$(first_dev 0x1b36:0x000d)
bochs_dev=$(first_dev 0x1234:0x1111:0x038000)
vesa_dev=$(first_dev 0x1234:0x1111:0x030000)

# fire WATCHDOG_MS: what every driver under fire gets (in FIRE): its fault
# hooks on, restarted at once and as often as the campaign needs
fire() {
	FIRE=("env = BULKHEAD_FAULTS=1" "restart = always" "backoff_ms = 20" "backoff_max_ms = 200"
		"max_restarts = 100000" "watchdog_ms = $1")
}
{
	printf '[core]\nbackend = vfio\n'
	conf_component edu "exec = $BUILD/drivers/edu/bulkhead-edu" "device = 1234:11e8" \
		"env = BULKHEAD_FAULTS=1" "restart = always" "backoff_ms = 50" "backoff_max_ms = 400" \
		"max_restarts = 100000" "watchdog_ms = 3000"
	conf_component pit "exec = $BUILD/drivers/pit/bulkhead-pit" "args = 4" \
		"ioport = 0x40-0x43" "restart = never"
} >"$conf"
if [ -n "$nic_peer" ]; then
	fire 1000
	conf_e1000e "$nic_ours" "${FIRE[@]}" >>"$conf"
	conf_nic_tap "restart = on-failure" "watchdog_ms = 3000" >>"$conf"
fi
if [ -n "$nvme_dev" ]; then
	fire 5000
	conf_component nvme "exec = $BUILD/drivers/nvme/bulkhead-nvme" "device = $nvme_dev" \
		"provides = block" "dma = 96M" "${FIRE[@]}" >>"$conf"
	conf_component block-nbd "exec = $BUILD/bridges/block-nbd/bulkhead-block-nbd" \
		"session = block nvme" "nbd = 0" "restart = on-failure" "watchdog_ms = 10000" >>"$conf"
fi

if [ -n "$serial_dev" ]; then
	fire 3000
	conf_component serial "exec = $BUILD/drivers/serial16550/bulkhead-serial16550" \
		"device = $serial_dev" "provides = terminal" "${FIRE[@]}" >>"$conf"
	conf_component pty "exec = $BUILD/bridges/term-pty/bulkhead-term-pty" \
		"session = terminal serial" "pty = ser0" "restart = on-failure" >>"$conf"
fi
if [ -n "$xhci_dev" ]; then
	conf_xhci "env = BULKHEAD_FAULTS=1" "restart = always" "max_restarts = 100000" >>"$conf"
	conf_component ccid "exec = $BUILD/drivers/ccid/bulkhead-ccid" \
		"session = usb xhci 08e6:4433" "provides = smartcard" "restart = always" \
		"backoff_ms = 100" "backoff_max_ms = 500" "max_restarts = 100000" >>"$conf"
	conf_component apdu "exec = $BUILD/tests/bulkhead-apdu" "args = --count 2 --loop 500" \
		"session = smartcard ccid" "restart = always" "backoff_ms = 200" >>"$conf"
fi
if [ -n "$bochs_dev" ]; then
	fire 5000
	conf_bochs "$bochs_dev" "${FIRE[@]}" >>"$conf"
	conf_fb_pattern pattern bochs >>"$conf"
	conf_fb_png png bochs "$WORK/faults-screen.png" >>"$conf"
fi
if [ -n "$vesa_dev" ]; then
	fire 10000
	conf_vesa "$vesa_dev" "${FIRE[@]}" >>"$conf"
	conf_fb_pattern vpattern vesa >>"$conf"
	conf_fb_png vpng vesa "$WORK/faults-vesa.png" >>"$conf"
fi

# per target: the faults that apply, and how to tell it is back in service:
#   probe_T BEFORE   in service again after a restart (BEFORE: progress_T then)
#   alive_T          still serving, for a fault it survived without a restart
#   settle_T         ms after the injection before "survived" may be declared
targets=(edu)
faults_edu="segv loop wild-mmio bad-dma oom fds abort"
# probe_edu, progress_edu, alive_edu: below, from core's log (the driver's
# own checks passed again since the injection)
settle_edu=5000

if [ -n "$nic_peer" ]; then
	targets+=(e1000e)
fi
faults_e1000e="segv loop wild-mmio bad-desc bad-dma oom fds abort"
# traffic flows again: an echo through bh0 -> nic-tap -> e1000e -> hub -> peer
# probe_e1000e, progress_e1000e: below; after a restart, first nic-tap's
# session with the new driver (no echo sent into the gap), then an echo
alive_e1000e() { busybox ping -c 1 -W 1 10.0.0.2 >/dev/null 2>&1; }
# two heartbeat ticks: the driver's health check has looked at the device by then
settle_e1000e=450
if [ -n "$nvme_dev" ]; then
	targets+=(nvme)
fi
faults_nvme="segv loop wild-mmio bad-desc bad-dma oom fds abort"
# I/O flows again: an O_DIRECT read of a known block (past the filesystem,
# at the disk's end) through /dev/nbd0 -> block-nbd -> nvme returns its bytes
# probe_nvme, progress_nvme: below; after a restart, first block-nbd's
# reconnection to the new driver, then the read
nvme_read() {
	[ "$(dd if=/dev/nbd0 bs=4k skip="$nvme_known" count=1 iflag=direct status=none 2>/dev/null)" = \
		"$nvme_pattern" ]
}
# the same instance, before and after the read (a dead one's read waits for its successor)
alive_nvme() { same_instance nvme nvme_read; }
# a health check (200 ms) has looked at the controller by then
settle_nvme=1000
[ -n "$serial_dev" ] && targets+=(serial)
faults_serial="segv loop bad-desc bad-dma oom fds abort"
# a line written to the pty comes back from the far end, through the driver
# both ways; progress: term-pty's sessions with a driver
serial_echo() {
	local tok="fault-probe-$RANDOM$RANDOM" line end=$((SECONDS + 3))
	printf '%s\n' "$tok" >&"$serial_fd"
	while [ $SECONDS -lt $end ]; do
		IFS= read -r -t 1 -u "$serial_fd" line || continue
		[[ $line == *"$tok"* ]] && return 0
	done
	return 1
}
# the same instance before and after the echo: a driver that hangs is
# replaced (watchdog) while the echo waits, and its successor answers
alive_serial() { same_instance serial serial_echo; }
# the heartbeat's look at the line's registers has come by then
settle_serial=1000
[ -n "$xhci_dev" ] && targets+=(xhci)
faults_xhci="segv loop wild-mmio bad-dma oom fds abort"
# the reader is back: the ccid driver has a new USB session, and the card
# answered an APDU since; alive: an APDU answered since the injection
alive_xhci() { same_instance xhci [ "$apdu_rounds" -gt "$apdu_before" ]; }
# past the watchdog (5 s): a driver that hangs is not taken for one that survived
settle_xhci=6000
[ -n "$bochs_dev" ] && targets+=(bochs)
faults_bochs="segv loop wild-mmio bad-desc oom fds abort"
# the screen is back: the client that owns it has drawn it in a new session
alive_bochs() { same_instance bochs true; }
# past the watchdog (5 s): a hung driver is not taken for one that survived;
# the health check (every beat) has restored a mode a stray write changed
settle_bochs=6000
[ -n "$vesa_dev" ] && targets+=(vesa)
faults_vesa="segv loop wild-mmio bad-desc oom fds abort"
# the mode and the picture are back: the owner's new session is in
# 1024x768x32 and every band of the pattern it drew again was acknowledged
alive_vesa() { same_instance vesa true; }
# past the watchdog (10 s: a BIOS call is long under TCG); the health check
# (4F03h every beat) has restored a mode set behind the driver's back
settle_vesa=11000
# FAULT_TARGETS="e1000e ..." picks some of them
[ -n "${FAULT_TARGETS:-}" ] && read -r -a targets <<<"$FAULT_TARGETS"

setup_e1000e() {
	modprobe tun
	wait_for "$log" "nic-tap\| nic-tap: bh0 <-> nic session" 30
	peer_netns "$nic_peer" 10.0.0.2/24 >/dev/null
	tap_up "$log" bh0 10.0.0.1/24
	for _ in $(seq 50); do alive_e1000e && break; sleep 0.2; done
	# light background traffic, so faults land while frames are in flight
	ip netns exec peer busybox ping -q -i 0.2 10.0.0.1 >/dev/null 2>&1 &
}

setup_serial() {
	local pty=/run/bulkhead/pty/ser0
	wait_for "$log" "pty\| term-pty: .* <-> terminal session" 30
	stty -F "$pty" raw -echo
	exec {serial_fd}<>"$pty"
	for _ in $(seq 10); do serial_echo && break; done ||
		echo "fault campaign: nothing came back through the serial line"
}
setup_xhci() {
	wait_for "$log" "apdu\| apdu: [0-9]+ exchanges" 90
}
setup_bochs() {
	wait_for "$log" "pattern\| fb-pattern: screen of" 60
}
setup_vesa() {
	wait_for "$log" "vpattern\| fb-pattern: screen of" 90
}
# picture_after TARGET PNG: after the campaign, fb-png's last picture is the pattern again
picture_after() {
	local c
	sleep 1
	c=$("$BUILD/tests/fb-compare" check "$2" 1024x768 2>&1)
	result "fault_$1_picture" $? "after the campaign, fb-png's picture against the pattern: $c"
}
finish_bochs() { picture_after bochs "$WORK/faults-screen.png"; }
finish_vesa() { picture_after vesa "$WORK/faults-vesa.png"; }

# nvme: ext4 on the first 192 MiB holds a file written before the
# campaign (checked by finish_nvme); the disk's last block is the probe's
nvme_mnt=$WORK/nvme-mnt
nvme_pattern=$(for i in $(seq 0 127); do printf 'bulkhead fault probe block %04d\n' "$i"; done)
nbd_reconnects=0
setup_nvme() {
	wait_for "$log" "block-nbd\| block-nbd: /dev/nbd0 serves" 30
	nvme_known=$(($(blockdev --getsize64 /dev/nbd0) / 4096 - 1))
	printf '%s\n' "$nvme_pattern" | dd of=/dev/nbd0 bs=4k seek="$nvme_known" count=1 \
		oflag=direct conv=fsync status=none
	mkdir -p "$nvme_mnt"
	mkfs.ext4 -q -F /dev/nbd0 192M && mount /dev/nbd0 "$nvme_mnt"
	head -c $((4 << 20)) /dev/urandom >"$nvme_mnt/precious"
	sync
	(cd "$nvme_mnt" && sha256sum precious) >"$WORK/nvme.sums"
	nvme_read || echo "fault campaign: nvme probe does not read its block back"
	# light background reads, so faults land while requests are in flight
	while :; do
		dd if=/dev/nbd0 of=/dev/null bs=64k count=8 skip=$((RANDOM % 3000)) iflag=direct \
			status=none
		sleep 0.3
	done >/dev/null 2>&1 &
	nvme_bg=$!
}
# the file written before the campaign survived it: umount, fsck, remount
finish_nvme() {
	local urc frc src
	kill "$nvme_bg" 2>/dev/null
	wait "$nvme_bg" 2>/dev/null
	umount "$nvme_mnt"
	urc=$?
	fsck.ext4 -fn /dev/nbd0 >"$WORK/nvme-fsck.out" 2>&1
	frc=$?
	mount /dev/nbd0 "$nvme_mnt" && (cd "$nvme_mnt" && sha256sum --quiet -c "$WORK/nvme.sums") \
		>"$WORK/nvme-check.out" 2>&1
	src=$?
	umount "$nvme_mnt"
	[ "$urc" = 0 ] && [ "$frc" = 0 ] && [ "$src" = 0 ]
	result fault_nvme_data $? "file written before the campaign: umount exit $urc, fsck -fn exit $frc ($(tail -1 "$WORK/nvme-fsck.out")), sha256 $([ "$src" = 0 ] && echo intact || echo DIFFERS)"
}

start_core "$conf" "$log" || { result faults_start 1 "core did not start"; exit 1; }
wait_for "$log" "edu\| edu: all tests passed" 60
core_pid=$CORE_PID
for t in "${targets[@]}"; do
	if declare -F "setup_$t" >/dev/null; then "setup_$t"; fi
done
echo "fault campaign: targets ${targets[*]}"

# Under TCG every exec of a dynamically linked program costs ~0.4 s, so the
# loop follows core's log from bash instead of polling "bulkhead status":
# pids from "started" lines, ends, IOMMU blocks and each target's progress.
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
declare -A cur_pid ends blocks
edu_passes=0
nic_sessions=0
serial_sessions=0
usb_sessions=0
apdu_rounds=0
apdu_before=0
fb_sessions=0
vesa_redraws=0
# same_instance TARGET COMMAND...: COMMAND succeeds, and TARGET's instance
# from before it still runs after it
same_instance() {
	local p=${cur_pid[$1]:-}
	shift
	[ -n "$p" ] && kill -0 "$p" 2>/dev/null && "$@" && kill -0 "$p" 2>/dev/null
}
exec {logfd}<"$log"
carry=
follow() {
	local line n
	while :; do
		IFS= read -r -u "$logfd" line || { carry+=$line; return 0; }
		line=$carry$line
		carry=
		case $line in
		'core ['*'] started "'*'" pid '*)
			n=${line#*started \"}
			n=${n%%\"*}
			line=${line#* pid }
			cur_pid[$n]=${line%% *} ;;
		'core ['*'] "'*'" (pid '*') ended: '*)
			n=${line#*\"}
			n=${n%%\"*}
			ends[$n]=$((${ends[$n]:-0} + 1)) ;;
		'core ['*'] IOMMU blocked a DMA by '*)
			n=${line#*(\"}
			n=${n%%\"*}
			# only while the instance that took the fault still runs
			[ "${cur_pid[$n]:-}" = "${fault_pid:-}" ] && blocks[$n]=$((${blocks[$n]:-0} + 1)) ;;
		'edu| edu: all tests passed'*) edu_passes=$((edu_passes + 1)) ;;
		'nic-tap| nic-tap: bh0 <-> nic session'*) nic_sessions=$((nic_sessions + 1)) ;;
		'block-nbd| block-nbd: reconnected'*) nbd_reconnects=$((nbd_reconnects + 1)) ;;
		'pty| term-pty: '*' <-> terminal session'*) serial_sessions=$((serial_sessions + 1)) ;;
		'ccid| ccid: USB session'*) usb_sessions=$((usb_sessions + 1)) ;;
		'apdu| apdu: '*' exchanges: mean'*) apdu_rounds=$((apdu_rounds + 1)) ;;
		'pattern| fb-pattern: screen of'*) fb_sessions=$((fb_sessions + 1)) ;;
		'vpattern| fb-pattern: redrawn after reconnect 1024x768x32 in 8 rectangles: 8 acknowledged with 0 (ok)'*)
			vesa_redraws=$((vesa_redraws + 1)) ;;
		esac
	done
}
others_ended() { # ends of every component but $1
	local k sum=0
	for k in "${!ends[@]}"; do [ "$k" = "$1" ] || sum=$((sum + ends[$k])); done
	echo $sum
}
# progress counters now come from follow()
progress_edu() { echo "$edu_passes"; }
probe_edu() { [ "$edu_passes" -gt "$1" ]; }
alive_edu() { [ -n "${cur_pid[edu]:-}" ] && kill -0 "${cur_pid[edu]}" 2>/dev/null; }
progress_e1000e() { echo "$nic_sessions"; }
probe_e1000e() { [ "$nic_sessions" -gt "$1" ] && busybox ping -c 1 -W 1 10.0.0.2 >/dev/null 2>&1; }
progress_nvme() { echo "$nbd_reconnects"; }
probe_nvme() { [ "$nbd_reconnects" -gt "$1" ] && nvme_read; }
progress_serial() { echo "$serial_sessions"; }
probe_serial() { [ "$serial_sessions" -gt "$1" ] && serial_echo; }
progress_xhci() { echo "$usb_sessions"; }
probe_xhci() { [ "$usb_sessions" -gt "$1" ] && [ "$apdu_rounds" -gt "$apdu_before" ]; }
progress_bochs() { echo "$fb_sessions"; }
probe_bochs() { [ "$fb_sessions" -gt "$1" ]; }
progress_vesa() { echo "$vesa_redraws"; }
probe_vesa() { [ "$vesa_redraws" -gt "$1" ]; }

follow
for i in $(seq 1 "$count"); do
	t=${targets[$((RANDOM % ${#targets[@]}))]}
	eval "set -- \$faults_$t"
	shift $((RANDOM % $#))
	f=$1
	follow
	pid=${cur_pid[$t]:-}
	fault_pid=$pid
	blocks[$t]=0
	others=$(others_ended "$t")
	before=$("progress_$t")
	eval "settle=\$settle_$t"
	sleep "0.$((RANDOM % 5))" # at a random moment (kept short: 1000 injections under TCG)
	"$CLI" inject "$pid" "$f" 2>/dev/null
	# APDUs answered from here on count as the reader serving
	follow
	apdu_before=$apdu_rounds
	t0=$(now_ms)
	outcome=
	while [ -z "$outcome" ]; do
		follow
		el=$(($(now_ms) - t0))
		cur=${cur_pid[$t]:-}
		if [ "$cur" != "$pid" ] && "probe_$t" "$before"; then
			outcome=recovered
		# a fault the driver survives (a leak, say) shows no restart
		elif [ "$cur" = "$pid" ] && [ "$el" -ge "$settle" ] && "alive_$t"; then
			outcome=survived
		elif [ "$el" -gt 30000 ]; then
			outcome=lost
		else
			sleep 0.05
		fi
	done
	ms=$(($(now_ms) - t0))
	alive=1
	kill -0 "$core_pid" 2>/dev/null || alive=0
	disturbed=0
	[ "$(others_ended "$t")" = "$others" ] || disturbed=1
	# did the IOMMU block a DMA by the faulty instance?
	blocked=0
	[ "${blocks[$t]}" -gt 0 ] && blocked=1
	echo "$i $t $f $outcome $ms $alive $disturbed $blocked" >>"$rows"
	[ $alive = 1 ] || break
done
for t in "${targets[@]}"; do
	if kill -0 "$core_pid" 2>/dev/null && declare -F "finish_$t" >/dev/null; then "finish_$t"; fi
done
# and by core's own account: nothing but the targets restarted
"$CLI" status | awk '$1 == "component"'
[ -n "${BULKHEAD_OUT:-}" ] && cp "$rows" "$BULKHEAD_OUT/faults.rows"
[ -n "${BULKHEAD_OUT:-}" ] && cp "$log" "$BULKHEAD_OUT/faults.log"

stop_core
echo "---- IOMMU faults core reported (first 12 of $(grep -c 'IOMMU blocked' "$log")) ----"
grep -B3 'IOMMU blocked' "$log" | head -48
echo "---- fault campaign: $count injections, seed $seed ----"
awk '{ k = $2 " " $3; n[k]++; b[k] += $8; if ($4 == "recovered") { r[k]++ } else if ($4 == "survived") { s[k]++ } else { l[k]++ } }
	END { printf "%-8s %-10s %6s %10s %9s %5s %13s\n", "target", "fault", "count", "recovered", "survived", "lost", "iommu_blocked";
	      for (k in n) { split(k, tk, " "); printf "%-8s %-10s %6d %10d %9d %5d %13d\n", tk[1], tk[2], n[k], r[k], s[k], l[k], b[k] } }' "$rows" | sort -k1,1 -k2,2
crashes=$(awk '$6 == 0' "$rows" | wc -l)
disturbed=$(awk '$7 == 1' "$rows" | wc -l)
lost=$(awk '$4 == "lost"' "$rows" | wc -l)
times=$(awk '$4 == "recovered" { print $5 }' "$rows" | sort -n)
n=$(echo "$times" | grep -c .)
median=$(echo "$times" | awk -v n="$n" 'NR == int((n + 1) / 2) { print }')
p99=$(echo "$times" | awk -v n="$n" 'NR == int(n * 0.99 + 0.999) { print }')
echo "injections=$(wc -l <"$rows") core_crashes=$crashes others_disturbed=$disturbed recoveries=$n lost=$lost recovery_ms_median=${median:-?} recovery_ms_p99=${p99:-?}"
[ "$crashes" = 0 ] && [ "$disturbed" = 0 ] && [ "$lost" = 0 ]
result fault_campaign $? "injections=$(wc -l <"$rows") core_crashes=$crashes others_disturbed=$disturbed lost=$lost recovery median ${median:-?} ms p99 ${p99:-?} ms"
