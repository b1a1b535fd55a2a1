#!/usr/bin/env bash
# vm: --devices e1000e,e1000e --mem 1024
# TCP survives driver restarts: iperf3 runs for 20 s from the peer namespace
# (kernel e1000e) to bh0 (bulkhead's e1000e via nic-tap) while the e1000e
# driver is killed with SIGKILL 5 times. Core revokes, resets and restarts
# it; nic-tap keeps bh0 up and reconnects; iperf3 must complete.
set -u
. "$(dirname "$0")/lib.sh"

ours=0000:00:02.0
theirs=0000:00:03.0
conf=$WORK/survive-nic.conf
log=$WORK/survive-nic.log
T=20
KILLS=5
{
	conf_core
	conf_e1000e "$ours" "restart = always" "backoff_ms = 20" "backoff_max_ms = 100" \
		"max_restarts = 1000" "watchdog_ms = 2000"
	conf_nic_tap "restart = always" "backoff_ms = 20" "watchdog_ms = 2000"
} >"$conf"

modprobe tun
start_core "$conf" "$log" || { result survive_nic_start 1 "core did not start"; exit 1; }
wait_for "$log" "nic-tap\| nic-tap: bh0 <-> nic session" 30

peer_if=$(peer_netns "$theirs" 10.0.0.2/24)
tap_up "$log" bh0 10.0.0.1/24
busybox ping -c 2 -W 3 10.0.0.2 >/dev/null 2>&1

iperf3 -s -1 -B 10.0.0.1 >/dev/null 2>&1 &
srv=$!
sleep 0.5
ip netns exec peer timeout $((T + 40)) iperf3 -c 10.0.0.1 -t $T -i 0 >"$WORK/survive-iperf3.txt" 2>&1 &
cli=$!

now_ms() { echo $(($(date +%s%N) / 1000000)); }
sessions() { grep -cE "nic-tap\| nic-tap: bh0 <-> nic session" "$log"; }
gaps=
killed=0
# spread out over the run: 2.5 s, 5.5 s, 8.5 s, 11.5 s, 14.5 s
sleep 2.5
for k in $(seq 1 $KILLS); do
	pid=$(field e1000e pid)
	before=$(sessions)
	t0=$(now_ms)
	[ -n "$pid" ] && kill -KILL "$pid" && killed=$((killed + 1))
	# the gap: until nic-tap has a session with the restarted driver
	until [ "$(sessions)" -gt "$before" ] || [ $(($(now_ms) - t0)) -gt 10000 ]; do sleep 0.02; done
	gap=$(($(now_ms) - t0))
	gaps="$gaps ${gap}ms"
	[ "$k" = $KILLS ] || sleep "$(awk -v g="$gap" 'BEGIN { s = 3 - g / 1000; print (s > 0.2 ? s : 0.2) }')"
done
wait "$cli"
rc=$?
kill "$srv" 2>/dev/null
wait "$srv" 2>/dev/null
out=$(cat "$WORK/survive-iperf3.txt")
mbits=$(echo "$out" | awk '/receiver$/ { for (i = 1; i <= NF; i++) if ($i ~ /bits\/sec/) { v = $(i - 1); u = $i } }
	END { if (u ~ /^G/) v *= 1000; if (u ~ /^K/) v /= 1000; if (v != "") printf "%.1f", v }')
# the same gaps from core's clock (the script is starved while iperf3 runs):
# the driver's death -> nic-tap's session with its successor
core_gaps=$(awk 'function ts() { match($0, /\[ *[0-9.]+\]/); return substr($0, RSTART + 1, RLENGTH - 2) + 0 }
	/"e1000e" \(pid [0-9]+\) ended: killed by SIGKILL/ { t = ts() }
	/session .nic.: "nic-tap" -> "e1000e"/ && t { printf " %dms", (ts() - t) * 1000; t = 0 }' "$log")
restarts=$(field e1000e restarts)
tapid=$(field nic-tap restarts)
[ $rc = 0 ] && [ -n "$mbits" ] && [ "$killed" = $KILLS ] && [ "${restarts:-0}" -ge $KILLS ] && [ "${tapid:-1}" = 0 ]
result survive_nic_iperf3 $? "iperf3 ${T}s peer -> bh0 completed (exit $rc): ${mbits:-none} Mbit/s with $killed SIGKILLs of the e1000e driver; gaps, death -> nic-tap session again (core's clock):${core_gaps:- ?}; as the starved script saw them:$gaps; driver restarts=$restarts, nic-tap restarts=$tapid $(echo "$out" | grep -E "error" | head -1)"

# and after all that, the link still answers
out=$(busybox ping -c 3 -W 3 10.0.0.2 2>&1)
echo "$out" | grep -q " 0% packet loss"
result survive_nic_ping_after $? "$(echo "$out" | grep -E "packet loss" | tr -d '\n')"

stop_core
echo "---- core log (tail) ----"
tail -40 "$log"
