#!/usr/bin/env bash
# vm: --host-cc --devices edu,e1000e,e1000e --mem 1024 --timeout 900
# The bulkhead command (issue 16): devices, bind and unbind of a test-machine
# NIC, status (table and JSON), logs and logs -f, stop/start/restart, and a
# reload that restarts one changed component and starts one added component
# while the others keep their pids and the NIC keeps its traffic; and the
# refusals, each with its reason. debug: gdb's backtrace of edu, edu held
# stopped past its watchdog and alive after, a killed debug command that
# leaves edu to its watchdog. Readiness for systemd (READY=1, RELOADING=1,
# STOPPING=1 on NOTIFY_SOCKET), devices given back to the kernel at core's
# stop, and new-driver: a driver from the installed template, built with
# pkg-config, run by the installed core on edu.
#   0000:00:02.0 edu     core's edu driver
#   0000:00:03.0 e1000e  core's e1000e driver, nic-tap makes it bh0
#   0000:00:04.0 e1000e  bound and unbound by the tests, then the kernel's
#                        driver in namespace "peer": bh0's other end
set -u
. "$(dirname "$0")/lib.sh"

edu=0000:00:02.0
ours=0000:00:03.0
spare=0000:00:04.0
conf=$WORK/cli.conf
log=$WORK/cli.log
B=$CLI

# jq_true JSON FILTER: the filter holds (jq -e alone passes on empty input)
jq_true() { [ -n "$1" ] && echo "$1" | jq -e "$2" >/dev/null; }
driver_of() { basename "$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null)" 2>/dev/null; }

# ---- with no core: devices, bind, unbind ----
out=$("$B" --help)
rc=$?
[ $rc = 0 ] && echo "$out" | grep -q "^exit status:" && echo "$out" | grep -q "4  no such component"
result cli_help $? "bulkhead --help: exit $rc, lists $(echo "$out" | grep -c '^  bulkhead ') commands and the exit codes"

"$B" status >/dev/null 2>&1
rc=$?
[ $rc = 3 ]
result cli_no_core $? "status with no core running: exit $rc (3: core not reachable)"

devs=$("$B" devices --json)
echo "$devs" | jq -c '.[]' | head -8
n=$(echo "$devs" | jq length)
edu_j=$(echo "$devs" | jq -c ".[] | select(.address == \"$edu\")")
nic_j=$(echo "$devs" | jq -c ".[] | select(.address == \"$spare\")")
jq_true "$edu_j" '.iommu_group != null and .viable == true and .driver == null and .id == "1234:11e8"' &&
	jq_true "$nic_j" '(.name | test("82574")) and (.class | test("Ethernet")) and .reset_method != null' &&
	[ "$n" -ge 3 ]
result cli_devices_json $? "$n devices; edu: $edu_j; spare NIC: $nic_j"

"$B" devices | tee "$WORK/devices.txt" | head -12
grep -qE "^$spare +Ethernet controller +[0-9]+ +yes" "$WORK/devices.txt"
result cli_devices_table $? "$(grep "^$spare" "$WORK/devices.txt")"

before=$(driver_of $spare)
out=$("$B" bind "$spare" 2>&1)
rc=$?
after=$(driver_of $spare)
[ $rc = 0 ] && [ "$after" = vfio-pci ] && jq_true "$("$B" devices --json)" ".[] | select(.address == \"$spare\") | .driver == \"vfio-pci\" and .viable"
result cli_bind $? "bind $spare: exit $rc, driver ${before:-none} -> $after: $out"

out=$("$B" unbind "$spare" 2>&1)
rc=$?
after=$(driver_of $spare)
[ $rc = 0 ] && [ "$after" = e1000e ]
result cli_unbind $? "unbind $spare: exit $rc, vfio-pci -> ${after:-none}: $out"

# the kernel's e1000e has the NIC now: up with an address, it is the host's
ifname=$(ls /sys/bus/pci/devices/$spare/net 2>/dev/null | head -1)
ip addr add 10.9.9.9/24 dev "$ifname" 2>/dev/null
ip link set "$ifname" up
out=$("$B" bind --dry-run "$spare" 2>&1)
rc=$?
[ $rc = 1 ] && echo "$out" | grep -q "refusing to bind $spare: the host is using it: its network interface"
result cli_bind_refuses_active_nic $? "exit $rc: $out"
ip link set "$ifname" down
ip addr flush dev "$ifname"

out=$("$B" bind --dry-run 0000:00:1f.6 2>&1)
rc=$?
[ $rc = 4 ] && echo "$out" | grep -q "no PCI device 0000:00:1f.6"
result cli_bind_unknown $? "exit $rc: $out"

# ---- core with five components ----
idle() { # NAME [ENV]: a component that connects to core and waits
	printf '[component "%s"]\nexec = %s\nargs = spin\nrestart = on-failure\n%s\n\n' \
		"$1" "$BUILD/tests/bulkhead-hostile" "${2:-}"
}
write_conf() { # extra lines for idle2, then more sections
	cat <<CONF
[core]
backend = vfio
control = /run/bulkhead/core.sock

[component "edu"]
exec = $edubin
device = 1234:11e8
restart = on-failure
dma = 1M
watchdog_ms = 8000

[component "e1000e"]
exec = $BUILD/drivers/e1000e/bulkhead-e1000e
device = $ours
provides = nic
dma = 16M
restart = always

[component "nic-tap"]
exec = $BUILD/bridges/nic-tap/bulkhead-nic-tap
session = nic e1000e
tap = bh0
restart = always

$(idle idle1)
$(idle idle2 "$1")
${2:-}
CONF
}
# edu runs from a copy a developer may replace (the edit-to-running test below)
edubin=$WORK/devloop/bulkhead-edu
mkdir -p "$WORK/devloop"
cp "$BUILD/drivers/edu/bulkhead-edu" "$edubin"
write_conf "" >"$conf"
modprobe tun
# what core tells systemd (sd_notify), each datagram a line: a unit's NOTIFY_SOCKET
notify=$WORK/notify.txt
rm -f "$WORK/notify.sock" "$notify"
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as f:
    while True:
        f.write(s.recv(4096).decode(errors="replace").replace("\n", " | ") + "\n")
' "$WORK/notify.sock" "$notify" &
listener=$!
for _ in $(seq 50); do [ -S "$WORK/notify.sock" ] && break; sleep 0.1; done
NOTIFY_SOCKET=$WORK/notify.sock start_core "$conf" "$log" || { result cli_core_start 1 "core did not start"; exit 1; }
wait_for "$log" "edu\| edu: (all tests passed|FAILED)" 90
wait_for "$log" "nic-tap\| nic-tap: bh0 <-> nic session" 60
wait_for_count "$log" "hostile: spin: ready" 2 30
peer_if=$(peer_netns "$spare" 10.0.0.2/24)
tap_up "$log" bh0 10.0.0.1/24
busybox ping -c 2 -W 3 10.0.0.2 >/dev/null 2>&1

wait_for "$notify" "READY=1" 10
grep -qE "^READY=1 \| STATUS=5 component\(s\) started" "$notify"
result cli_notify_ready $? "NOTIFY_SOCKET got: $(head -1 "$notify")"

# ---- status ----
"$B" status --table
st=$("$B" status --json)
jq_true "$st" '(.components | length) == 5 and ([.components[].state] | all(. == "running")) and .core.backend == "vfio"'
result cli_status_json $? "$(echo "$st" | jq -c '[.components[] | {name, state, pid, restarts}]')"

one=$("$B" status edu --json)
jq_true "$one" ".name == \"edu\" and .state == \"running\" and .devices[0].address == \"$edu\" and .irqs > 0 and .uid > 0 and (.dma_bytes | type) == \"number\""
result cli_status_name_json $? "$(echo "$one" | jq -c '{name, state, pid, uid, restarts, irqs, dma_bytes, last_exit, devices: [.devices[] | {name, irqs, resets}]}')"

tap=$("$B" status nic-tap --json)
jq_true "$tap" '(.peers | split(",") | index("e1000e")) != null and (.session_list | length) >= 1'
result cli_status_peers $? "nic-tap: peers $(echo "$tap" | jq -c '.peers'), sessions $(echo "$tap" | jq -c '.session_list')"

# the flight recorder has the session from both ends (tests/vm/trace.sh: the rest of it)
opened=$("$B" trace nic-tap --once --last 4096 --json | jq -c 'select(.kind == "session-open")' | head -1)
took=$("$B" trace e1000e --once --last 4096 --json | jq -c 'select(.kind == "session-accept")' | head -1)
jq_true "$opened" '.peer == "nic"' && jq_true "$took" '.peer == "nic-tap"'
result cli_trace_sessions $? "nic-tap: $opened; e1000e: $took"

# every driver names its registers (82574L's REG_*), not only edu
named=$("$B" trace e1000e --once --last 4096 --json | jq -r 'select(.name != null) | .name' | sort | uniq -c | sort -rn)
echo "$named" | head -8
echo "$named" | grep -qE ' REG_[A-Z]+$'
result cli_trace_names $? "e1000e's accesses by name: $(echo "$named" | head -4 | awk '{ printf "%s%s x%s", s, $2, $1; s = ", " }')"

"$B" status nosuch >/dev/null 2>&1
rc=$?
[ $rc = 4 ]
result cli_status_unknown $? "status nosuch: exit $rc (4: no such component)"

# ---- logs ----
lg=$("$B" logs edu)
echo "$lg" | head -4
echo "$lg" | grep -q "edu: edu: all tests passed" && echo "$lg" | grep -qE 'edu \(core\): started "edu" pid'
result cli_logs $? "$(echo "$lg" | wc -l) lines for edu, its output and core's lines about it"

lj=$("$B" logs --json)
jq_true "$lj" '(map(.component) | unique | length) == 5 and (map(select(.source == "core")) | length) > 0'
result cli_logs_json $? "$(echo "$lj" | jq length) lines of 5 components as JSON"

out=$("$B" logs nosuch 2>&1)
rc=$?
[ $rc = 4 ] && echo "$out" | grep -q "no component 'nosuch'"
result cli_logs_unknown $? "exit $rc: $out"

"$B" logs -f edu >"$WORK/follow.txt" 2>&1 &
follower=$!
sleep 1

# ---- stop, start, restart ----
# of one `status --json`: comp JSON NAME KEY
comp() { echo "$1" | jq -r ".components[] | select(.name == \"$2\") | .$3"; }
pids() { echo "$1" | jq -r '[.components[] | "\(.name)=\(.pid)"] | join(" ")'; }
s0=$("$B" status --json)
out=$("$B" stop idle1)
rc=$?
s1=$("$B" status --json)
[ $rc = 0 ] && [ "$(comp "$s1" idle1 state)" = finished ] && [ "$(comp "$s1" idle2 pid)" = "$(comp "$s0" idle2 pid)" ] &&
	comp "$s1" idle1 last_exit | grep -q "stopped by bulkhead stop"
result cli_stop $? "exit $rc: $out; idle1 $(comp "$s1" idle1 state), last exit: $(comp "$s1" idle1 last_exit)"
sleep 1
s1=$("$B" status --json)
[ "$(comp "$s1" idle1 state)" = finished ]
result cli_stop_stays_down $? "idle1 a second later: $(comp "$s1" idle1 state) (restart = on-failure does not bring it back)"

out=$("$B" stop --no-wait idle1)
rc=$?
[ $rc = 0 ] && echo "$out" | grep -q "idle1 is not running (finished)"
result cli_stop_again $? "a second stop: exit $rc: $out"

out=$("$B" debug idle1 2>&1)
rc=$?
[ $rc = 1 ] && echo "$out" | grep -q '"idle1" is not running (finished'
result cli_debug_not_running $? "exit $rc: $out"

out=$("$B" start idle1)
rc=$?
s1=$("$B" status --json)
[ $rc = 0 ] && [ "$(comp "$s1" idle1 state)" = running ]
result cli_start $? "exit $rc: $out"

out=$("$B" restart edu)
rc=$?
wait_for "$log" "edu\| edu: .*start 2" 60
s2=$("$B" status --json)
[ $rc = 0 ] && [ "$(comp "$s2" edu pid)" != "$(comp "$s1" edu pid)" ] && [ "$(comp "$s2" edu restarts)" = $(($(comp "$s1" edu restarts) + 1)) ] &&
	[ "$(comp "$s2" e1000e pid)" = "$(comp "$s1" e1000e pid)" ]
result cli_restart $? "exit $rc: $out; pid $(comp "$s1" edu pid) -> $(comp "$s2" edu pid), restarts $(comp "$s1" edu restarts) -> $(comp "$s2" edu restarts), last exit: $(comp "$s2" edu last_exit)"

sleep 0.5
kill $follower 2>/dev/null
wait $follower 2>/dev/null
grep -q 'restarting, as root asked' "$WORK/follow.txt" && grep -q "edu: edu: uid .* start 2" "$WORK/follow.txt"
result cli_logs_follow $? "logs -f edu saw $(wc -l <"$WORK/follow.txt") lines, among them: $(grep -E 'restarting|start 2' "$WORK/follow.txt" | head -2 | tr '\n' ';')"

out=$("$B" restart nosuch 2>&1)
rc=$?
[ $rc = 4 ] && echo "$out" | grep -q "no component 'nosuch'"
result cli_restart_unknown $? "exit $rc: $out"

out=$(setpriv --reuid 65534 --regid 65534 --clear-groups "$B" stop edu 2>&1)
rc=$?
[ $rc = 3 ] && [ "$(comp "$("$B" status --json)" edu state)" = running ]
result cli_not_root $? "stop edu as nobody: exit $rc: $out"

out=$("$B" unbind --dry-run "$edu" 2>&1)
rc=$?
[ $rc = 1 ] && echo "$out" | grep -q 'core holds it for component "edu"'
result cli_unbind_refuses_held $? "exit $rc: $out"

# ---- debug: gdb from outside the sandbox, the watchdog paused while gdb holds it ----
# one session (gdb takes seconds to start here): a backtrace, then edu held
# stopped 9 s, past its 8 s watchdog (edu's tests before its first heartbeat
# took over 3 s at a load average of 14): alive after, same pid, no restart
# core's clock at its last log line matching RE
at() { grep -E "$1" "$log" | tail -1 | sed -E 's/^core \[ *([0-9.]+)\].*/\1/'; }
stops='debug: "edu" \(pid [0-9]+\) stopped by the debugger'
s0=$("$B" status --json)
n=$(grep -cE "$stops" "$log")
"$B" debug edu -batch -ex bt -ex "shell sleep 9" >"$WORK/debug-hold.out" 2>&1 &
dbg=$!
wait_for_count "$log" "$stops" $((n + 1)) 30
during=$(field edu debugging)
shown=$("$B" status --table edu | awk '$1 == "edu" { print $2 }')
wait $dbg
rc=$?
bt=$(grep -E '^#[0-9]+ ' "$WORK/debug-hold.out")
[ $rc = 0 ] && echo "$bt" | grep -qE ' main \(.*\) at [^ ]*edu\.c:[0-9]+'
result cli_debug_bt $? "debug edu -batch -ex bt: exit $rc: $(echo "$bt" | head -3 | tr -s ' ' | tr '\n' ';')"
sleep 8.5 # past the watchdog again: edu heartbeats
s1=$("$B" status --json)
held=$(echo "$(at "$stops") $(at 'debug: "edu".*watchdog runs again')" | awk '{ printf "%.1f", $2 - $1 }')
[ $rc = 0 ] && [ "$during" = 1 ] && [ "$shown" = debugging ] && [ "$(comp "$s1" edu pid)" = "$(comp "$s0" edu pid)" ] &&
	[ "$(comp "$s1" edu restarts)" = "$(comp "$s0" edu restarts)" ] && [ "$(comp "$s1" edu state)" = running ] &&
	[ "$(comp "$s1" edu debugging)" = 0 ] && ! grep -q 'watchdog: "edu"' "$log"
result cli_debug_watchdog_paused $? "held stopped ${held:-?} s (watchdog_ms = 8000): debugging=$during, table state '$shown'; after: pid $(comp "$s0" edu pid) -> $(comp "$s1" edu pid), restarts $(comp "$s0" edu restarts) -> $(comp "$s1" edu restarts), $(comp "$s1" edu state) 8.5 s later"

# the debug command killed while gdb holds edu: core's watchdog is back, and ends it
r0=$(comp "$s1" edu restarts)
"$B" debug edu -batch -ex "shell sleep 120" >"$WORK/debug-killed.out" 2>&1 &
dbg=$!
wait_for_count "$log" "$stops" $((n + 2)) 30
gdbpid=$(pgrep -P $dbg)
kill -KILL $dbg
wait $dbg 2>/dev/null
wait_for "$log" 'watchdog: "edu" silent' 30
killed=$?
# gdb still traces it: core hears of its end once gdb has gone
kill -KILL $gdbpid 2>/dev/null
wait_for "$log" "edu\| edu: .*start $((r0 + 2))" 90
s2=$("$B" status --json)
[ $killed = 0 ] && grep -q "debugger's connection closed; its watchdog runs again" "$log" &&
	[ "$(comp "$s2" edu state)" = running ] && [ "$(comp "$s2" edu restarts)" = $((r0 + 1)) ]
result cli_debug_cli_killed $? "$(grep -E 'debugger.s connection closed|watchdog: "edu"' "$log" | tail -2 | sed 's/^core //' | tr '\n' ';') edu $(comp "$s2" edu state), restarts $r0 -> $(comp "$s2" edu restarts)"

out=$("$B" debug nosuch 2>&1)
rc=$?
[ $rc = 4 ] && echo "$out" | grep -q "no component 'nosuch'"
result cli_debug_unknown $? "exit $rc: $out"

out=$(PATH=/nonexistent "$B" debug edu 2>&1)
rc=$?
[ $rc = 1 ] && echo "$out" | grep -q "debug needs gdb"
result cli_debug_no_gdb $? "PATH without gdb: exit $rc: $out"

# ---- reload ----
p1=$(pids "$("$B" status --json)")
cp "$conf" "$WORK/cli.conf.orig"
printf 'this is not a section\n' >>"$conf"
out=$("$B" reload 2>&1)
rc=$?
[ $rc = 1 ] && echo "$out" | grep -q "nothing changed" && [ "$(pids "$("$B" status --json)")" = "$p1" ]
result cli_reload_broken $? "exit $rc: $out; pids unchanged: $([ "$(pids "$("$B" status --json)")" = "$p1" ] && echo yes || echo no)"

sed "s|^device = $ours|device = $spare|" "$WORK/cli.conf.orig" >"$conf"
out=$("$B" reload 2>&1)
rc=$?
[ $rc = 1 ] && echo "$out" | grep -q "changed its devices" && [ "$(pids "$("$B" status --json)")" = "$p1" ]
result cli_reload_refuses_devices $? "exit $rc: $out"

write_conf "env = CHANGED=1" "$(idle idle3)" >"$conf"
busybox ping -i 0.2 -c 40 -W 2 10.0.0.2 >"$WORK/ping.txt" 2>&1 &
pinger=$!
sleep 1
t0=$(date +%s%N)
out=$("$B" reload 2>&1)
rc=$?
t1=$(date +%s%N)
s3=$("$B" status --json)
p2=$(pids "$s3")
wait $pinger
loss=$(grep -oE "[0-9]+% packet loss" "$WORK/ping.txt")
kept=yes
for c in edu e1000e nic-tap idle1; do
	[ "$(echo "$p1" | grep -oE "(^| )$c=[0-9]+")" = "$(echo "$p2" | grep -oE "(^| )$c=[0-9]+")" ] || kept=no
done
changed=$([ "$(echo "$p1" | grep -oE 'idle2=[0-9]+')" != "$(echo "$p2" | grep -oE 'idle2=[0-9]+')" ] && echo yes || echo no)
[ $rc = 0 ] && [ $kept = yes ] && [ $changed = yes ] && [ "$(comp "$s3" idle3 state)" = running ] &&
	echo "$out" | grep -q "restarted: idle2 added: idle3"
result cli_reload $? "exit $rc in $(((t1 - t0) / 1000000)) ms: $(echo "$out" | tr '\n' ' ')| before: $p1 | after: $p2 | others kept their pids: $kept"
busybox ping -c 2 -W 3 10.0.0.2 >/dev/null 2>&1
result cli_reload_traffic $? "ping through bh0 across the reload: ${loss:-no summary}; after it: replies"
echo "RESULT cli reload_ms=$(((t1 - t0) / 1000000)) ping_during_reload=\"${loss:-?}\""
grep -qE "^RELOADING=1 \| MONOTONIC_USEC=[0-9]+ \| STATUS=reloading" "$notify" &&
	grep -qE "^READY=1 \| STATUS=ok reloaded .*added: idle3" "$notify"
result cli_notify_reload $? "$(grep -E '^RELOADING|^READY=1 \| STATUS=ok' "$notify" | tail -2 | tr '\n' ';')"

# edit to running: a developer changes edu's source, rebuilds the one driver
# against the built libbulkhead, puts the binary in place and restarts it;
# from the edit to the new driver's tests passing on the device. The
# developer builds on the host (tools/vm/run --host-cc compiles there, 10-20x
# faster than TCG runs a compiler in here); without it, in here.
dev=$WORK/devloop
cp "$ROOT/drivers/edu/edu.c" "$dev/edu.c"
pid0=$(comp "$("$B" status --json)" edu pid)
hcc=${BULKHEAD_HOST_CC:-}
where="in the test machine"
if [ -n "$hcc" ]; then
	mkdir -p "$hcc" && rm -f "$hcc"/edu "$hcc"/edu.* && where="on the host (tools/vm/host-cc)"
fi
t0=$(date +%s%N)
sed -i 's/"all tests passed"/"all tests passed, edited"/' "$dev/edu.c"
if [ -n "$hcc" ]; then
	cp "$dev/edu.c" "$hcc/edu.c" && echo edu >"$hcc/edu.tmp" && mv "$hcc/edu.tmp" "$hcc/edu.build"
	for _ in $(seq 600); do [ -e "$hcc/edu.done" ] && break; sleep 0.02; done
	cp "$hcc/edu.out" "$dev/cc.out" 2>/dev/null
	[ "$(cat "$hcc/edu.done" 2>/dev/null)" = 0 ] && cp "$hcc/edu" "$dev/new" && mv "$dev/new" "$edubin"
else
	cc -std=gnu17 -O2 -D_GNU_SOURCE -I"$ROOT/include" -I"$ROOT/drivers/edu" -c "$dev/edu.c" \
		-o "$dev/edu.o" >"$dev/cc.out" 2>&1 &&
		cc -static "$dev/edu.o" "$BUILD/lib/libbulkhead.a" -o "$dev/new" >>"$dev/cc.out" 2>&1 &&
		mv "$dev/new" "$edubin"
fi
t1=$(date +%s%N)
"$B" restart edu >"$dev/restart.out" 2>&1
wait_for "$log" "edu\| edu: all tests passed, edited" 60
t2=$(date +%s%N)
pid1=$(comp "$("$B" status --json)" edu pid)
grep -q "edu| edu: all tests passed, edited" "$log" && [ "$pid1" != "$pid0" ]
result cli_edit_to_running $? "edit -> rebuilt $where $(((t1 - t0) / 1000000)) ms -> restarted and serving (its tests passed on the device) $(((t2 - t0) / 1000000)) ms in all (issue 16 asks under 5 s); pid $pid0 -> $pid1; $(head -c 300 "$dev/cc.out") $(cat "$dev/restart.out")"
echo "RESULT cli edit_to_running_ms=$(((t2 - t0) / 1000000)) rebuild_ms=$(((t1 - t0) / 1000000))"

stop_core
echo "---- core log (last 40 of $(wc -l <"$log")) ----"
tail -40 "$log"
kill $listener 2>/dev/null
wait $listener 2>/dev/null
grep -q "^STOPPING=1" "$notify" && tail -1 "$notify" | grep -q "STATUS=stopped: every component ended"
result cli_notify_stopping $? "$(grep -A1 '^STOPPING=1' "$notify" | tr '\n' ';')"
# core bound edu and its NIC to vfio-pci: now edu is nobody's, the NIC the kernel's e1000e
ov_edu=$(cat /sys/bus/pci/devices/$edu/driver_override)
[ -z "$(driver_of $edu)" ] && [ "$(driver_of $ours)" = e1000e ] && [ "$ov_edu" = "(null)" ] &&
	grep -q "device $ours given back to the kernel: driver e1000e" "$log"
result cli_devices_given_back $? "after core's stop: $edu driver '$(driver_of $edu)' override $ov_edu; $ours driver '$(driver_of $ours)'; $(grep 'given back' "$log" | sed 's/^core //' | tr '\n' ';')"

# installed like a service: meson install into a staging root, drivers
# built outside the tree against it with pkg-config, run by the installed
# core: examples/hello on the NIC core gave back, and a driver new-driver
# made from the installed template on edu; and a driver VM debug refuses
stage=$WORK/stage
pc=$(install_staged "$stage")
prefix=$(sed -n 's/^prefix=//p' "$stage"/usr/local/lib/*/pkgconfig/bulkhead.pc)
IB=$stage$prefix/bin/bulkhead
cp -r "$ROOT/examples/hello" "$WORK/hello"
PKG_CONFIG_SYSROOT_DIR=$stage PKG_CONFIG_LIBDIR=$pc make -C "$WORK/hello" -s >>"$WORK/install.out" 2>&1
nd_out=$(cd "$WORK" && "$IB" new-driver mydrv 2>&1)
nd_rc=$?
PKG_CONFIG_SYSROOT_DIR=$stage PKG_CONFIG_LIBDIR=$pc make -C "$WORK/mydrv" -s >"$WORK/mydrv.out" 2>&1
mk_rc=$?
hconf=$WORK/installed.conf
{
	conf_core
	conf_component hello "exec = $WORK/hello/bulkhead-hello" "device = $ours" \
		"restart = never"
	# the snippet new-driver wrote, pasted as it is
	echo
	cat "$WORK/mydrv/mydrv.conf"
	# a driver VM that cannot start (no device): debug's refusal is about its kind
	conf_component vmx "kind = vm" "kernel = $(ls /boot/vmlinuz-* | head -1)" \
		"initramfs = $BUILD/build.ninja" "restart = never"
} >"$hconf"
hlog=$WORK/installed.log
CORE=$stage$prefix/bin/bulkhead-core start_core "$hconf" "$hlog" &&
	wait_for "$hlog" "hello\| hello: (done|.*: )" 30 && wait_for "$hlog" "mydrv\| mydrv: (ready|.*: )" 30
names=$("$IB" trace mydrv --once --last 64 --json | jq -r 'select(.name != null) | .name' | sort -u | tr '\n' ' ')
vm_out=$("$IB" debug vmx 2>&1)
vm_rc=$?
stop_core
said=$(grep -E "hello\| hello: " "$hlog" | sed 's/^hello| //' | tr '\n' ' ')
grep -q "hello| hello: done" "$hlog" && grep -q "hello| hello: device 0: .* 8086:10d3" "$hlog"
result cli_installed_out_of_tree $? "installed core $prefix/bin/bulkhead-core ran examples/hello (built against the installed libbulkhead): ${said:-nothing; $(tail -3 "$hlog" "$WORK/install.out" | tr '\n' ' ')}"

said=$(grep -E "mydrv\| mydrv: " "$hlog" | sed 's/^mydrv| //' | tr '\n' ' ')
[ $nd_rc = 0 ] && [ $mk_rc = 0 ] && grep -qE "mydrv\| mydrv: device .* 1234:11e8 .*BAR0 [0-9]+ KiB mapped" "$hlog" &&
	grep -qE "mydrv\| mydrv: MYDRV_REG0 = 0x[0-9a-f]{4}00ed" "$hlog" && echo "$names" | grep -qw MYDRV_REG0 &&
	grep -qE "mydrv\| mydrv: stopping \((SIGTERM|core hung up)\)" "$hlog" && grep -qE '"mydrv" \(pid [0-9]+\) ended: exit code 0' "$hlog"
result cli_new_driver $? "new-driver (installed template): exit $nd_rc, make with pkg-config: exit $mk_rc $(head -c 200 "$WORK/mydrv.out"); it said: ${said:-nothing; $(tail -3 "$hlog" | tr '\n' ' ')}; trace names: $names; $(grep -oE '"mydrv" \(pid [0-9]+\) ended: [^,]*' "$hlog")"

[ $vm_rc = 1 ] && echo "$vm_out" | grep -q 'is a driver VM (kind = vm)'
result cli_debug_vm $? "exit $vm_rc: $vm_out"
