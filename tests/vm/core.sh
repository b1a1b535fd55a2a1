#!/usr/bin/env bash
# vm: --devices edu:rp,pci-serial
# Core scenarios on the test machine (devices: edu). One boot, one core, many checks:
# port I/O, MMIO, INTx and MSI, DMA through the IOMMU, policy refusals, a hostile
# component, and a killed driver that is revoked, reset and restarted.
set -u
. "$(dirname "$0")/lib.sh"

conf=$WORK/core-test.conf
log=$WORK/core-test.log
cat >"$conf" <<CONF
[core]
backend = vfio
control = /run/bulkhead/core.sock

[component "pit"]
exec = $BUILD/drivers/pit/bulkhead-pit
args = 8
ioport = 0x40-0x43
restart = never

[component "edu"]
exec = $BUILD/drivers/edu/bulkhead-edu
args = --dma-outside
device = 1234:11e8
restart = on-failure
# long enough to read core's state between the death and the restart
backoff_ms = 6000
dma = 1M

[component "ioport"]
exec = $BUILD/tests/bulkhead-ioport-probe
device = serial
restart = never

[component "escape"]
exec = $BUILD/tests/bulkhead-escape
restart = never

[component "hang"]
exec = $BUILD/tests/bulkhead-rogue
args = hang
watchdog_ms = 600
restart = on-failure
max_restarts = 1
backoff_ms = 100

[component "rogue"]
exec = $BUILD/tests/bulkhead-rogue
args = oversize
restart = never
CONF

start_core "$conf" "$log" || { result core_start 1 "core did not start"; exit 1; }
wait_for "$log" "edu\| edu: (all tests passed|FAILED)" 60
wait_for "$log" "pit\| pit: counter decreasing" 30
wait_for "$log" '"rogue" .*ended' 15

# stage 1: port I/O from a process that is not root
pit_uid=$(field pit uid)
line=$(grep -E "pit\| pit: counter decreasing" "$log")
grep -qE "pit\| pit: counter decreasing.*PASS" "$log" && [ "${pit_uid:-0}" -ge 1000 ]
result pit_counter $? "uid=$pit_uid: ${line#*pit: }"
grep -qE "pit\| pit: denied as expected: .*outside the policy" "$log" &&
	grep -qE "pit\| pit: inb\(0x61\) outside the grant faulted" "$log"
result pit_ports_outside_policy $? "$(grep -oE 'I/O ports 0x60-0x60 are outside[^;]*' "$log" | head -1)"

# io_port through a PCI I/O BAR (pci-serial's 16550)
wait_for "$log" "ioport\| ioport: TEST" 20
line=$(grep -E "ioport\| ioport: TEST ioport" "$log" | head -1)
echo "$line" | grep -q " PASS "
result pci_io_bar $? "$(echo "${line#*TEST ioport }" | sed -E 's/^ *(PASS|FAIL) *//')"

# stages 2-4: the edu driver's own checks, each reported as PASS/FAIL
for t in identity factorial intx msi dma iommu policy; do
	line=$(grep -E "edu\| edu: TEST $t " "$log" | head -1)
	echo "$line" | grep -q " PASS "
	result "edu_$t" $? "$(echo "${line#*TEST $t }" | sed -E 's/^ *(PASS|FAIL) *//')"
done
# core attributes the blocked DMA to the driver that programmed it
wait_for "$log" 'IOMMU blocked a DMA by .* \("edu"\) to device address 0xff00000' 10
result iommu_fault_reported $? "$(grep -oE 'IOMMU blocked a DMA by .* to device address 0x[0-9a-f]+' "$log" | head -1); iommu_faults=$(field edu iommu_faults)"
edu_uid=$(field edu uid)
[ "${edu_uid:-0}" -ge 1000 ] && ! grep -q "edu: uid 0," "$log"
result edu_unprivileged $? "edu ran as uid $edu_uid"

# a request outside policy is refused with a reason, logged, and everyone keeps running
grep -qE 'policy: denied "edu" acquire: device 1 is not granted' "$log" &&
	[ "$(field edu state)" = running ] && kill -0 "$CORE_PID"
result policy_refusal_logged $? "$(grep -oE 'policy: denied "edu" acquire: [^;]*' "$log" | head -1)"

# the sandbox: host files, exec, sockets, other processes, fork: all refused; then SIGSYS
wait_for "$log" '"escape" \(pid [0-9]+\) ended' 15
grep -qE "escape\| escape: 7 of 7 refused; I am pid 1 in my own pid namespace" "$log" &&
	grep -qE '"escape" \(pid [0-9]+\) ended: killed by SIGSYS \(seccomp' "$log" &&
	! grep -q "escape: STILL ALIVE" "$log"
result sandbox_escape $? "$(grep -oE 'escape: [0-9] of 7 refused' "$log"); $(grep -oE 'ended: killed by SIGSYS[^,]*' "$log" | head -1)"

# a hung component: the watchdog kills it, it is restarted once, then marked failed
wait_for "$log" '"hang" restarted 1 times: giving up' 30
n=$(grep -cE '"hang" \(pid [0-9]+\) ended: killed by SIGKILL: watchdog' "$log")
[ "$n" = 2 ] && [ "$(field hang state)" = failed ]
result watchdog_hang $? "$n watchdog kills, state=$(field hang state): $(grep -oE 'watchdog: "hang" silent for [0-9]+ ms' "$log" | head -1)"

# a hostile component: its connection is closed, core serves everyone else
grep -qE 'protocol: "rogue" sent a bad message \(datagram of' "$log" &&
	grep -qE '"rogue" \(pid [0-9]+\) ended: .*protocol violation' "$log" &&
	kill -0 "$CORE_PID" && [ "$(field edu state)" = running ]
result malformed_message $? "$(grep -oE 'protocol: "rogue" sent a bad message \([^)]*\)' "$log" | head -1)"

# kill the driver: core disables bus mastering, resets the device, unmaps its DMA, restarts it
dev=$("$CLI" status | awk '$1 == "device" && /owner=edu/ { print $2 }')
resets0=$(field "$dev" resets)
dma0=$(field edu dma_mappings)
pid0=$(field edu pid)
kill -KILL "$pid0"
wait_for "$log" '"edu" \(pid '"$pid0"'\) ended: killed by SIGKILL' 10
wait_for "$log" 'revoked "edu":' 10
revoked=$(grep -E 'revoked "edu":' "$log" | tail -1)
# core's own state while the driver is down
snap=$("$CLI" status)
down="state=$(field edu state "$snap") dma_mappings=$(field edu dma_mappings "$snap") dma_bytes=$(field edu dma_bytes "$snap") acquired=$(field "$dev" acquired "$snap") bus_master=$(field "$dev" bus_master "$snap") irq=$(field "$dev" irq "$snap") resets=$(field "$dev" resets "$snap")"
[ "$down" = "state=backoff dma_mappings=0 dma_bytes=0 acquired=0 bus_master=0 irq=none resets=$((resets0 + 1))" ]
result revoked_state $? "while down: $down (resets before: $resets0)"
wait_for "$log" 'started "edu" pid [0-9]+ .*\(restart\)' 15
wait_for "$log" "edu\| edu: uid .* start 2" 15
wait_for_count "$log" "edu\| edu: (all tests passed|FAILED)" 2 60
pid1=$(field edu pid)
resets1=$(field "$dev" resets)
restarts=$(field edu restarts)
echo "$revoked" | grep -qE "bus mastering off on 1 device\(s\), 1 reset, [1-9][0-9]* DMA buffer\(s\) .* unmapped; DMA mappings now 0"
rev_ok=$?
[ "$rev_ok" = 0 ] && [ "${dma0:-0}" -ge 1 ] && [ "$resets1" -gt "$resets0" ] &&
	[ "$restarts" = 1 ] && [ "$pid1" != "$pid0" ] && [ "$pid1" != 0 ]
result kill_revoke_restart $? "dma mappings before=$dma0; ${revoked#*revoked }; resets $resets0->$resets1; pid $pid0->$pid1, restarts=$restarts"
[ "$(grep -cE 'edu\| edu: all tests passed' "$log")" -ge 2 ]
result restarted_driver_works $? "$(grep -cE 'edu\| edu: all tests passed' "$log") clean runs"

kill -0 "$CORE_PID"
result core_survived $? "core pid $CORE_PID alive after all of the above"
stop_core
grep -q "core stopped" "$log"
result core_clean_stop $? "$(tail -1 "$log")"
echo "---- core log ----"
cat "$log"


# cgroups: each component in one of its own, with a CPU weight and, if set, a limit.
# Every process costs up to a second in a busy guest, so these checks read status
# snapshots, cgroup files and logs with bash alone.
# cg_get VAR WHO KEY SNAPSHOT: like field, into VAR ("core" names the core line)
cg_get() {
	local _l
	printf -v "$1" '%s' ""
	while IFS= read -r _l; do
		[[ "$_l" =~ ^([a-z]+)\ ([^ ]+) ]] || continue
		[ "${BASH_REMATCH[1]}" = "$2" ] || [ "${BASH_REMATCH[2]}" = "$2" ] || continue
		[[ " $_l" =~ \ $3=([^ ]*) ]] && printf -v "$1" '%s' "${BASH_REMATCH[1]}" && return
	done <<<"$4"
}
# cg_count VAR TEXT STRING: how many lines of TEXT hold STRING
cg_count() {
	local _l _n=0
	while IFS= read -r _l; do [[ "$_l" == *"$3"* ]] && _n=$((_n + 1)); done <<<"$2"
	printf -v "$1" '%s' "$_n"
}
# cg_line VAR TEXT REGEX: the first match of REGEX in TEXT, to the end of its line
cg_line() {
	local _re="$3[^"$'\n'"]*"
	printf -v "$1" '%s' ""
	[[ "$2" =~ $_re ]] && printf -v "$1" '%s' "${BASH_REMATCH[0]}"
}
# cg_has FILE LINE: FILE has exactly this line
cg_has() {
	local l
	while IFS= read -r l; do [ "$l" = "$2" ] && return 0; done <"$1"
	return 1
}
cg_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# A second core, with two spinners: a limited one, and an unlimited one that is
# killed and restarted (its cgroup reused, no fd left behind per start).
cgconf=$WORK/cgroup-test.conf
cglog=$WORK/cgroup-test.log
cgroot=/sys/fs/cgroup/bulkhead
cat >"$cgconf" <<CONF
[core]
control = /run/bulkhead/core.sock

[component "spin10"]
exec = $BUILD/tests/bulkhead-spin
# a throttled component still heartbeats
args = --heartbeat
watchdog_ms = 5000
cpu = 10%
restart = never

[component "spin"]
exec = $BUILD/tests/bulkhead-spin
cpu_weight = 200
restart = always
backoff_ms = 10
CONF
if start_core "$cgconf" "$cglog" && wait_for "$cglog" "spin10\| spin: spinning with heartbeats" 20 &&
	wait_for "$cglog" "spin\| spin: spinning" 20; then
	t0=$(cg_ms)
	s0=$("$CLI" status)
	sleep 2
	s1=$("$CLI" status)
	t1=$(cg_ms)
	cg_get core_cg core cgroup "$s1"
	cg_get w10 spin10 cpu_weight "$s1"
	cg_get max10 spin10 cpu_max "$s1"
	cg_get w spin cpu_weight "$s1"
	cg_get max spin cpu_max "$s1"
	cg_get ms10_0 spin10 cpu_ms "$s0"
	cg_get ms10_1 spin10 cpu_ms "$s1"
	cg_get ms_0 spin cpu_ms "$s0"
	cg_get ms_1 spin cpu_ms "$s1"
	shown="cgroup=$core_cg; spin10: cpu_weight=$w10 cpu_max=$max10; spin: cpu_weight=$w cpu_max=$max"
	[ "$shown" = "cgroup=$cgroot; spin10: cpu_weight=100 cpu_max=10%; spin: cpu_weight=200 cpu_max=max" ] &&
		[[ "$ms10_1" =~ ^[0-9]+$ ]]
	result cgroup_status $? "$shown; cpu_ms=$ms10_1"

	cg_get pid10 spin10 pid "$s1"
	# bulkhead/ weighs what its components would as processes: 100 + 200
	files="cpu.max=$(<$cgroot/spin10/cpu.max) weight=$(<$cgroot/spin/cpu.weight) bulkhead/cpu.weight=$(<$cgroot/cpu.weight)"
	[ "$files" = "cpu.max=10000 100000 weight=200 bulkhead/cpu.weight=300" ] && cg_has $cgroot/spin10/cgroup.procs "$pid10" &&
		! cg_has /sys/fs/cgroup/cgroup.procs "$pid10"
	result cgroup_joined $? "$files; spin10 pid $pid10 in $cgroot/spin10/cgroup.procs"

	# CPU share over the wall time, in percent of one CPU
	wall=$((t1 - t0))
	share10=$(((ms10_1 - ms10_0) * 100 / wall))
	share=$(((ms_1 - ms_0) * 100 / wall))
	cg_get state10 spin10 state "$s1"
	[ "$share10" -gt 0 ] && [ "$share10" -le 20 ] && [ "$state10" = running ]
	result cpu_limit $? "spin10 (cpu = 10%) used ${share10}% of a CPU over $wall ms, state=$state10"
	[ "$share" -ge 50 ] && [ "$share" -ge $((share10 * 3)) ]
	result cpu_unlimited $? "spin (no limit) used ${share}% of a CPU over $wall ms, spin10 ${share10}%"

	# restarts stay in the same cgroup, its CPU time adds up, and core's fds do not
	fds0=$(ls -l /proc/"$CORE_PID"/fd)
	cg_get pid0 spin pid "$s1"
	pid1=$pid0
	for i in 1 2; do
		kill -KILL "$pid1"
		wait_for_count "$cglog" "spin\| spin: spinning" $((i + 1)) 10
		cg_get pid1 spin pid "$("$CLI" status)"
	done
	s2=$("$CLI" status)
	fds1=$(ls -l /proc/"$CORE_PID"/fd)
	cg_get ms_2 spin cpu_ms "$s2"
	cg_get restarts spin restarts "$s2"
	cg_has $cgroot/spin/cgroup.procs "$pid1" && [ "$pid1" != "$pid0" ] && [ "$ms_2" -ge "$ms_1" ]
	result cgroup_restart $? "spin pid $pid0->$pid1 in $cgroot/spin after $restarts restarts, cpu_ms $ms_1->$ms_2"
	cg_count n0 "$fds0" ' -> '
	cg_count n1 "$fds1" ' -> '
	cg_count nprocs "$fds1" 'cgroup.procs'
	cg_count ndirs "$fds1" " -> $cgroot/"
	[ "$n1" = "$n0" ] && [ "$nprocs" = 0 ] && [ "$ndirs" = 2 ]
	result cgroup_no_fd_leak $? "core's fds before and after 2 restarts: $n0, $n1 ($ndirs cgroup directories, $nprocs cgroup.procs)"
	stop_core
	gone=0
	for d in $cgroot/spin10 $cgroot/spin $cgroot; do [ -e "$d" ] && gone=1; done
	log=$(<"$cglog")
	[ "$gone" = 0 ] && [[ "$log" == *"cgroups: removed the components' cgroups in $cgroot"* ]] &&
		[[ "$log" != *'watchdog: "spin10"'* ]]
	result cgroup_removed $? "after core stopped: $cgroot exists: $([ -e $cgroot ] && echo yes || echo no)"
else
	result cgroup_start 1 "core or the spinners did not start: $(tail -3 "$cglog")"
	stop_core
fi
echo "---- cgroup core log ----"
cat "$cglog"

# core started in a cgroup of its own (a systemd service with Delegate=yes): it moves
# itself into OWN/core, its components go to OWN/NAME, and it puts all back at the end
svc=/sys/fs/cgroup/bhsvc
svcconf=$WORK/svc-test.conf
svclog=$WORK/svc-test.log
printf '[core]\ncontrol = /run/bulkhead/core.sock\n[component "spin"]\nexec = %s\nrestart = never\ncpu = 20%%\n' \
	"$BUILD/tests/bulkhead-spin" >"$svcconf"
mkdir -p $svc
# a subshell that joins the cgroup, then becomes core
(echo "$BASHPID" >$svc/cgroup.procs && exec "$CORE" -c "$svcconf") >"$svclog" 2>&1 &
CORE_PID=$!
if wait_for "$svclog" "spin\| spin: spinning" 20; then
	snap=$("$CLI" status)
	cg_get spid spin pid "$snap"
	cg_get core_cg core cgroup "$snap"
	where="core in $(</proc/"$CORE_PID"/cgroup), spin in $(</proc/"$spid"/cgroup), $(<$svc/spin/cpu.max)"
	[ "$where" = "core in 0::/bhsvc/core, spin in 0::/bhsvc/spin, 20000 100000" ] && [ "$core_cg" = $svc ]
	cg_line said "$(<"$svclog")" 'cgroups: components run in '
	result cgroup_delegated $? "$where; cgroup=$core_cg; $said"
	stop_core
	left=""
	for d in $svc/*/; do [ -d "$d" ] && left="$left $d"; done
	subtree=$(<$svc/cgroup.subtree_control)
	[ -z "$left" ] && [ -z "$subtree" ]
	result cgroup_delegated_removed $? "after core stopped: cgroups left in $svc: '${left}', subtree_control: '$subtree'"
else
	result cgroup_delegated 1 "core or spin did not start in $svc: $(tail -3 "$svclog")"
	stop_core
fi
# another process in core's cgroup: it cannot enable cpu there, and says why
(echo "$BASHPID" >$svc/cgroup.procs && exec sleep 30) &
sleeper=$!
out=$( (echo "$BASHPID" >$svc/cgroup.procs && exec timeout 20 "$CORE" -c "$svcconf") 2>&1)
rc=$?
kill "$sleeper"
wait "$sleeper" 2>/dev/null
cg_line msg "$out" "$svcconf:6: "
[ "$rc" = 1 ] && [[ "$msg" == *"other processes share core's cgroup"* ]] && [ ! -e $svc/core ]
result cgroup_shared_refused $? "exit $rc: ${msg:-$out}"
rmdir $svc

# without cgroup2: a config that sets cpu refuses to start, naming the key; one that
# does not runs with one warning and no CPU accounting
nocg=$WORK/nocgroup-test.conf
nocglog=$WORK/nocgroup-test.log
umount /sys/fs/cgroup 2>/dev/null || umount -l /sys/fs/cgroup
printf '[core]\ncontrol = /run/bulkhead/core.sock\n[component "spin"]\nexec = %s\nargs = --for 100\nrestart = never\ncpu = 10%%\n' \
	"$BUILD/tests/bulkhead-spin" >"$nocg"
out=$(timeout 20 "$CORE" -c "$nocg" 2>&1)
rc=$?
cg_line msg "$out" "$nocg:7: \\[component \"spin\"\\] cpu needs cgroup v2 "
[ "$rc" = 1 ] && [[ "$msg" == *"cgroup2 is not mounted"* ]]
result cgroup_missing_refused $? "exit $rc: ${msg:-$out}"
# the same without the cpu line
printf '[core]\ncontrol = /run/bulkhead/core.sock\n[component "spin"]\nexec = %s\nargs = --for 100\nrestart = never\n' \
	"$BUILD/tests/bulkhead-spin" >"$nocg"
if start_core "$nocg" "$nocglog"; then
	snap=$("$CLI" status)
	cg_get core_cg core cgroup "$snap"
	cg_get ms spin cpu_ms "$snap"
	cg_get w spin cpu_weight "$snap"
	cg_get max spin cpu_max "$snap"
	shown="cgroup=$core_cg cpu_ms=$ms cpu_weight=$w cpu_max=$max"
	log=$(<"$nocglog")
	cg_line warning "$log" 'WARNING: components run WITHOUT CPU accounting'
	rest=${log#*WITHOUT CPU accounting}
	[ "$shown" = "cgroup=none cpu_ms=- cpu_weight=- cpu_max=-" ] && [[ "$rest" != *"WITHOUT CPU accounting"* ]] &&
		[[ "$warning" == *"cgroup2 is not mounted (mount it with 'mount -t cgroup2 none /sys/fs/cgroup')" ]]
	result cgroup_missing_warned $? "$shown; $warning"
	stop_core
else
	result cgroup_missing_warned 1 "core did not start without cgroup2: $(tail -3 "$nocglog")"
fi
mount -t cgroup2 cgroup2 /sys/fs/cgroup
echo "---- core log without cgroup2 ----"
cat "$nocglog"
