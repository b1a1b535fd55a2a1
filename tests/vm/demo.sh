#!/usr/bin/env bash
# `make demo`, inside the test machine: core starts the demo config's drivers
# (pit, edu) unprivileged and sandboxed; we watch them work, kill one, and
# watch core take everything back and restart it.
set -u
. "$(dirname "$0")/lib.sh"
conf=${DEMO_CONFIG:-$ROOT/etc/bulkhead.conf}
log=$WORK/demo.log

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "bulkhead demo: QEMU q35, emulated Intel IOMMU, edu device + the PIT; config $conf"
"$CORE" -c "$conf" >"$log" 2>&1 &
CORE_PID=$!
tail -n +1 -f "$log" &
TAIL=$!
wait_for "$log" "edu\| edu: (all tests passed|FAILED)" 60
wait_for "$log" '"pit" \(pid [0-9]+\) ended' 20
sleep 0.5

say "what core holds now (bulkhead status)"
"$CLI" status

say "killing the edu driver with SIGKILL: core must disable bus mastering, reset the device, unmap its DMA and restart it"
pid=$(field edu pid)
kill -KILL "$pid"
wait_for "$log" 'started "edu" pid [0-9]+ .*\(restart\)' 20
wait_for "$log" "edu\| edu: uid .* start 2" 20
wait_for_count "$log" "edu\| edu: (all tests passed|FAILED)" 2 60
sleep 0.5

say "after the restart (bulkhead status)"
"$CLI" status
stop_core
sleep 0.3
kill "$TAIL" 2>/dev/null

say "summary"
echo "pit:  $(grep -oE 'pit: counter decreasing.*' "$log" | head -1), as uid $(grep -oE 'pit: running as uid [0-9]+' "$log" | grep -oE '[0-9]+$')"
grep -oE 'edu: TEST [a-z]+ +(PASS|FAIL)' "$log" | head -6 | sed 's/^/edu:  /'
echo "denied: $(grep -c 'policy: denied' "$log") requests outside policy (each logged with its reason)"
echo "revoked: $(grep -oE 'revoked "edu":.*' "$log" | head -1)"
echo "restarts: edu ran $(grep -c 'edu: all tests passed' "$log") times, core never stopped"
grep -q "edu: FAILED" "$log" && exit 1
exit 0
