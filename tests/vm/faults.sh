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

# per target: the faults that apply, and how to tell it is back in service
targets=(edu)
faults_edu="segv loop wild-mmio bad-dma oom fds abort"
probe_edu() { # the driver's own checks passed again since the injection
	[ "$(grep -c 'edu| edu: all tests passed' "$log")" -gt "$1" ] && [ "$(field edu state)" = running ]
}
progress_edu() { grep -c 'edu| edu: all tests passed' "$log"; }

start_core "$conf" "$log" || { result faults_start 1 "core did not start"; exit 1; }
wait_for "$log" "edu\| edu: all tests passed" 60
core_pid=$CORE_PID

now_ms() { echo $(($(date +%s%N) / 1000000)); }
for i in $(seq 1 "$count"); do
	t=${targets[$((RANDOM % ${#targets[@]}))]}
	eval "set -- \$faults_$t"
	shift $((RANDOM % $#))
	f=$1
	snap=$("$CLI" status)
	pid=$(field "$t" pid "$snap")
	others=$(echo "$snap" | awk -v t="$t" '$1 == "component" && $2 != t { print $2, $5 }' | sort)
	before=$("progress_$t")
	sleep "0.$((RANDOM % 10))" # at a random moment
	t0=$(now_ms)
	"$CLI" inject "$pid" "$f" 2>/dev/null
	outcome=recovered
	until "probe_$t" "$before"; do
		if [ $(($(now_ms) - t0)) -gt 30000 ]; then
			outcome=lost
			break
		fi
		# a fault the driver survives (a leak, say) shows no restart: count it as survived
		if [ "$(field "$t" pid)" = "$pid" ] && [ $(($(now_ms) - t0)) -gt 5000 ] &&
			[ "$(field "$t" state)" = running ]; then
			outcome=survived
			break
		fi
		sleep 0.05
	done
	ms=$(($(now_ms) - t0))
	alive=1
	kill -0 "$core_pid" 2>/dev/null || alive=0
	now_others=$("$CLI" status 2>/dev/null | awk -v t="$t" '$1 == "component" && $2 != t { print $2, $5 }' | sort)
	disturbed=0
	[ "$others" = "$now_others" ] || disturbed=1
	echo "$i $t $f $outcome $ms $alive $disturbed" >>"$rows"
	[ $alive = 1 ] || break
done

stop_core
echo "---- fault campaign: $count injections, seed $seed ----"
awk '{ n[$3]++; if ($4 == "recovered") { r[$3]++ } else if ($4 == "survived") { s[$3]++ } else { l[$3]++ } }
	END { printf "%-10s %6s %10s %9s %5s\n", "fault", "count", "recovered", "survived", "lost";
	      for (k in n) printf "%-10s %6d %10d %9d %5d\n", k, n[k], r[k], s[k], l[k] }' "$rows"
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
