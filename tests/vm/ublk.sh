#!/usr/bin/env bash
# vm: --kernel 6.12 --devices nvme:rp --mem 1024 --timeout 900
# Storage through ublk (Linux 6.12): ext4 on /dev/ublkb0, served by the
# block-ublk bridge from bulkhead's NVMe driver, with two queues (a thread
# and a Block session each; 'ublk_queues = 2').
#  1. the bridge's io_uring refuses everything but its ublk commands (the
#     bridge's own probe, BULKHEAD_UBLK_PROBE=1, through the ring it serves with),
#     and core's filter lets it make threads (one per queue) but not processes
#  2. mkfs, mount, files with sha256, umount, fsck clean, remount, files intact
#  3. user recovery with reissue: with ext4 mounted and fsync'ed files and
#     O_DIRECT rewrites going on, the NVMe driver and the bridge are each
#     SIGKILLed KILLS times (alternating); then fsck clean and every
#     acknowledged write intact
set -u
. "$(dirname "$0")/lib.sh"

conf=$WORK/ublk.conf log=$WORK/ublk.log mnt=$WORK/umnt dev=/dev/ublkb0
{
	conf_nvme_killable
	conf_ublk_killable ublk "ublk = 0" "ublk_queues = 2" "env = BULKHEAD_UBLK_PROBE=1" \
		"sessions = 8" "session_memory = 160M"
} >"$conf"

modprobe ublk_drv
start_core "$conf" "$log" || { result ublk_start 1 "core did not start"; exit 1; }
wait_for "$log" "block-ublk: /dev/ublkb0 serves|\"ublk\" .*ended" 60
for _ in $(seq 150); do [ -b $dev ] && break; sleep 0.2; done
nq=$(ls -d /sys/block/ublkb0/mq/[0-9]* 2>/dev/null | wc -l)
[ -b $dev ] && grep -q "ublkb0: started" "$log" && [ "$nq" = 2 ]
rc=$?
[ -n "${BULKHEAD_OUT:-}" ] && trap 'cp "$log" "$BULKHEAD_OUT/ublk.log" 2>/dev/null' EXIT
result ublk_started $rc "$(grep -oE 'block-ublk: /dev/ublkb0 serves.*' "$log" | head -1); $(grep -oE '/dev/ublkb0: started' "$log" | head -1); blockdev says $(blockdev --getsize64 $dev 2>/dev/null) bytes; $nq hardware queues in sysfs"
[ $rc = 0 ] || { tail -30 "$log"; stop_core; exit 1; }

# 1. the ring's sandbox: each attempt refused, counted by the bridge
probes=$(grep -oE 'block-ublk: probe: [^0-9].*' "$log" | head -6 | sed 's/block-ublk: probe: //' | tr '\n' ';')
grep -q "block-ublk: probe: 6 of 6 refused" "$log"
result ublk_ring_sandbox $? "$probes"

# 2. a filesystem on it; 3. kills under writes (lib.sh's storage checks)
block_fs_checks ublk $dev "$mnt"
block_kill_checks ublk $dev "$mnt" "$log" nvme ublk "block-ublk: reconnected" "ublkb0: recovered"
# each queue's thread took its own new session after each driver kill
q0=$(count_of "$log" 'reconnected .* on queue 0')
q1=$(count_of "$log" 'reconnected .* on queue 1')
[ "$q0" -ge "${KILLS:-5}" ] && [ "$q1" -ge "${KILLS:-5}" ]
result ublk_queues_reconnect $? "queue 0 reconnected $q0 times, queue 1 $q1 times (re-issued on queue 1: $(grep -oE 'on queue 1\): [0-9]+' "$log" | awk -F': ' '{ s += $2 } END { print s + 0 }'))"

kill -0 "$CORE_PID"
result ublk_core $? "core pid $CORE_PID alive; $(count_of "$log" 'watchdog:') watchdog kills"
stop_core
grep -E "^core .*(ended|ublkb0|watchdog)|block-ublk: (reconnected|the block|/dev)" "$log" | tail -40
