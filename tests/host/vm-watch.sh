#!/usr/bin/env bash
# tools/vm/run watches the test machine it runs: two short machines, each a
# stall of the kind seen under TCG made on purpose.
#  - A console whose UART stopped sending (here: its output stopped with
#    tcflow) while the script writes: the guest's heartbeat wakes it, and
#    every line arrives.
#  - A guest that no longer runs (here: QEMU stopped with SIGSTOP): its
#    heartbeat stops, and tools/vm/run ends the machine as dead (125), which
#    tests/run-all runs once more, long before the machine's timeout.
# This boots the test machine twice (about a minute); it touches no device.
set -u
. "$(dirname "$0")/../vm/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/console.sh" <<'EOF'
#!/bin/sh
python3 -c 'import os, termios
fd = os.open("/dev/ttyS0", os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
termios.tcflow(fd, termios.TCOOFF)'
i=0
while [ $i -lt 400 ]; do
	echo "line $i: more than the console's buffers hold, so that the writer waits"
	i=$((i + 1))
done
echo "all written"
EOF
cat >"$tmp/frozen.sh" <<'EOF'
#!/bin/sh
echo "frozen: sleeping"
sleep 200
EOF
chmod +x "$tmp/console.sh" "$tmp/frozen.sh"

t0=$SECONDS
"$ROOT/tools/vm/run" --quiet --timeout 240 --log "$tmp/console.log" "$tmp/console.sh" \
	>"$tmp/console.out" 2>&1
rc=$?
lines=$(grep -ac '^line [0-9]*:' "$tmp/console.log")
woken=$(grep -a "was woken" "$tmp/console.out")
[ $rc = 0 ] && [ "$lines" = 400 ] && grep -aq '^all written' "$tmp/console.log" && [ -n "$woken" ]
result vm_watch_console_woken $? "exit $rc in $((SECONDS - t0)) s, $lines of 400 lines arrived; ${woken:-no wake-up reported}"

t0=$SECONDS
"$ROOT/tools/vm/run" --quiet --stall 15 --timeout 240 --log "$tmp/frozen.log" "$tmp/frozen.sh" \
	>"$tmp/frozen.out" 2>&1 &
run=$!
qpid=
for _ in $(seq 120); do
	sleep 1
	grep -aq '^frozen: sleeping' "$tmp/frozen.log" 2>/dev/null &&
		qpid=$(pgrep -f "^[^ ]*qemu-system-x86_64 .*$tmp/frozen.log" | head -1) && [ -n "$qpid" ] && break
done
[ -n "$qpid" ] && sleep 6 && kill -STOP "$qpid"
wait $run
rc=$?
why=$(grep -a "heartbeat stopped" "$tmp/frozen.out")
[ $rc = 125 ] && [ -n "$why" ] && [ $((SECONDS - t0)) -lt 120 ]
result vm_watch_frozen_guest $? "QEMU ${qpid:-(never found)} stopped: exit $rc in $((SECONDS - t0)) s (timeout 240 s); ${why:-$(tail -3 "$tmp/frozen.out" | tr '\n' ' ')}"
