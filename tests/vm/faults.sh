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
nics=$(for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/vendor")" = 0x8086 ] && [ "$(cat "$d/device")" = 0x10d3 ] && basename "$d"
done 2>/dev/null)
nic_ours=$(echo "$nics" | sed -n 1p)
nic_peer=$(echo "$nics" | sed -n 2p)

cat >"$conf" <<CONF
[core]
backend = vfio

[component "edu"]
exec = $BUILD/drivers/edu/bulkhead-edu
device = 1234:11e8
env = BULKHEAD_FAULTS=1
restart = always
backoff_ms = 50
backoff_max_ms = 400
max_restarts = 100000
watchdog_ms = 3000

[component "pit"]
exec = $BUILD/drivers/pit/bulkhead-pit
args = 4
ioport = 0x40-0x43
restart = never
CONF
if [ -n "$nic_peer" ]; then
	cat >>"$conf" <<CONF

[component "e1000e"]
exec = $BUILD/drivers/e1000e/bulkhead-e1000e
device = $nic_ours
provides = nic
dma = 16M
env = BULKHEAD_FAULTS=1
restart = always
backoff_ms = 20
backoff_max_ms = 200
max_restarts = 100000
watchdog_ms = 1000

[component "nic-tap"]
exec = $BUILD/bridges/nic-tap/bulkhead-nic-tap
session = nic e1000e
tap = bh0
restart = on-failure
watchdog_ms = 3000
CONF
fi

# per target: the faults that apply, and how to tell it is back in service:
#   probe_T BEFORE   in service again after a restart (BEFORE: progress_T then)
#   alive_T          still serving, for a fault it survived without a restart
#   settle_T         ms after the injection before "survived" may be declared
targets=(edu)
faults_edu="segv loop wild-mmio bad-dma oom fds abort"
probe_edu() { # the driver's own checks passed again since the injection
	[ "$(grep -c 'edu| edu: all tests passed' "$log")" -gt "$1" ] && [ "$(field edu state)" = running ]
}
progress_edu() { grep -c 'edu| edu: all tests passed' "$log"; }
alive_edu() { [ "$(field edu state)" = running ]; }
settle_edu=5000

if [ -n "$nic_peer" ]; then
	targets+=(e1000e)
fi
faults_e1000e="segv loop wild-mmio bad-desc bad-dma oom fds abort"
# traffic flows again: an echo through bh0 -> nic-tap -> e1000e -> hub -> peer
probe_e1000e() { [ "$(field e1000e state)" = running ] && busybox ping -c 1 -W 1 10.0.0.2 >/dev/null 2>&1; }
progress_e1000e() { echo 0; }
alive_e1000e() { probe_e1000e; }
# two heartbeat ticks: the driver's health check has looked at the device by then
settle_e1000e=600
# FAULT_TARGETS="e1000e ..." picks some of them
[ -n "${FAULT_TARGETS:-}" ] && read -r -a targets <<<"$FAULT_TARGETS"

setup_e1000e() {
	modprobe tun
	wait_for "$log" "nic-tap\| nic-tap: bh0 <-> nic session" 30
	modprobe e1000e
	for _ in $(seq 50); do [ -d "/sys/bus/pci/devices/$nic_peer/net" ] && break; sleep 0.1; done
	local peer_if mac
	peer_if=$(ls "/sys/bus/pci/devices/$nic_peer/net" | head -1)
	ip netns add peer
	ip link set "$peer_if" netns peer
	ip -n peer addr add 10.0.0.2/24 dev "$peer_if"
	ip -n peer link set "$peer_if" up
	mac=$(grep -oE "ip link set bh0 address [0-9a-f:]{17}" "$log" | head -1 | awk '{ print $NF }')
	ip link set bh0 address "$mac"
	ip addr add 10.0.0.1/24 dev bh0
	ip link set bh0 up
	for _ in $(seq 50); do probe_e1000e && break; sleep 0.2; done
	# light background traffic, so faults land while frames are in flight
	ip netns exec peer busybox ping -q -i 0.2 10.0.0.1 >/dev/null 2>&1 &
}

start_core "$conf" "$log" || { result faults_start 1 "core did not start"; exit 1; }
wait_for "$log" "edu\| edu: all tests passed" 60
core_pid=$CORE_PID
for t in "${targets[@]}"; do
	if declare -F "setup_$t" >/dev/null; then "setup_$t"; fi
done
echo "fault campaign: targets ${targets[*]}"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
for i in $(seq 1 "$count"); do
	t=${targets[$((RANDOM % ${#targets[@]}))]}
	eval "set -- \$faults_$t"
	shift $((RANDOM % $#))
	f=$1
	snap=$("$CLI" status)
	pid=$(field "$t" pid "$snap")
	iommu0=$(field "$t" iommu_faults "$snap")
	others=$(echo "$snap" | awk -v t="$t" '$1 == "component" && $2 != t { print $2, $4 }' | sort)
	before=$("progress_$t")
	eval "settle=\$settle_$t"
	sleep "0.$((RANDOM % 10))" # at a random moment
	t0=$(now_ms)
	"$CLI" inject "$pid" "$f" 2>/dev/null
	outcome=
	while [ -z "$outcome" ]; do
		el=$(($(now_ms) - t0))
		cur=$(field "$t" pid)
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
	now_others=$("$CLI" status 2>/dev/null | awk -v t="$t" '$1 == "component" && $2 != t { print $2, $4 }' | sort)
	disturbed=0
	[ "$others" = "$now_others" ] || disturbed=1
	# did the IOMMU block a DMA of this target's device since the injection?
	blocked=0
	[ "$(field "$t" iommu_faults)" -gt "${iommu0:-0}" ] 2>/dev/null && blocked=1
	echo "$i $t $f $outcome $ms $alive $disturbed $blocked" >>"$rows"
	[ $alive = 1 ] || break
done

stop_core
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
