#!/usr/bin/env bash
# vm: --mem 512 --timeout 900
# 1,000 restarts of a component that exits at once (issue 13): core's fd
# count and memory must be the same after them as after a warm-up. The
# component, bulkhead-hostile exit, says hello and exits 0; restart =
# always with a 1 ms backoff brings it straight back. At restart 50 (the
# warm-up) and 1050 it waits for SIGUSR1 instead, so both snapshots find it
# in the same state: alive, connected, said hello.
set -u
. "$(dirname "$0")/lib.sh"

conf=$WORK/restarts.conf
log=$WORK/restarts.log
warm=50
n=1000
cat >"$conf" <<CONF
[core]
backend = vfio
control = /run/bulkhead/core.sock

[component "churn"]
exec = $BUILD/tests/bulkhead-hostile
args = exit $warm $((warm + n))
restart = always
backoff_ms = 1
backoff_max_ms = 1
max_restarts = $((warm + n + 10))
CONF

start_core "$conf" "$log" || { result restarts_core_start 1 "core did not start"; exit 1; }
t0=$SECONDS
if ! wait_for "$log" "churn\| hostile: exit: holding at restart $warm\$" 300; then
	result restarts_1000 1 "no warm-up: $(grep -c '^core .*started "churn"' "$log") starts in $((SECONDS - t0)) s; $(field churn state) $(field churn last_exit)"
	stop_core
	tail -50 "$log"
	exit 1
fi
sleep 0.5
fds0=$(core_fds) rss0=$(core_rss) mem0=$(core_mem)
echo "core after $warm restarts (warm-up, $((SECONDS - t0)) s): $fds0 fds, $mem0 (KiB)"
t1=$(date +%s.%N)
kill -USR1 "$(field churn pid)"
wait_for "$log" "churn\| hostile: exit: holding at restart $((warm + n))\$" 900
rc=$?
t2=$(date +%s.%N)
sleep 0.5
fds1=$(core_fds) rss1=$(core_rss) mem1=$(core_mem)
secs=$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.1f", b - a }')
restarts=$(field churn restarts)
echo "core after $restarts restarts: $fds1 fds, $mem1 (KiB)"
echo "RESULT restarts-1000 restarts=$n seconds=$secs fds_before=$fds0 fds_after=$fds1 rss_before_kib=$rss0 rss_after_kib=$rss1"
# RSS: after the warm-up nothing new is touched; a leak of one heap block
# per restart (glibc's smallest is 32 bytes) would add 32 KiB in 1000
[ $rc = 0 ] && [ "$fds1" = "$fds0" ] && [ $((rss1 - rss0)) -le 16 ]
result restarts_1000 $? "$n restarts in $secs s ($(awk -v s="$secs" -v n=$n 'BEGIN { printf "%.1f", s * 1000 / n }') ms each); core fds $fds0 -> $fds1, VmRSS $rss0 -> $rss1 KiB (allowed: +16 KiB); restarts counted by core: $restarts"
kill -USR1 "$(field churn pid)" 2>/dev/null
stop_core
echo "---- core log (first and last 20 lines of $(wc -l <"$log")) ----"
head -20 "$log"
echo ...
tail -20 "$log"
