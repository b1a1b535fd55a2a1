#!/usr/bin/env bash
# vm: --kernel 6.12 --devices nvme:rp --mem 1024 --timeout 900
# Storage through ublk (Linux 6.12): ext4 on /dev/ublkb0, served by the
# block-ublk bridge from bulkhead's NVMe driver.
#  1. the bridge's io_uring refuses everything but its ublk commands (the
#     bridge's own probe, BULKHEAD_UBLK_PROBE=1, through the ring it serves with)
#  2. mkfs, mount, files with sha256, umount, fsck clean, remount, files intact
#  3. user recovery with reissue: with ext4 mounted and fsync'ed files and
#     O_DIRECT rewrites going on, the NVMe driver and the bridge are each
#     SIGKILLed KILLS times (alternating); then fsck clean and every
#     acknowledged write intact
set -u
. "$(dirname "$0")/lib.sh"

KILLS=${KILLS:-5}
conf=$WORK/ublk.conf
log=$WORK/ublk.log
mnt=$WORK/umnt
sums=$WORK/usums
dev=/dev/ublkb0
mkdir -p "$mnt"
{
	conf_nvme_killable
	# core answers no heartbeat while it bus-resets the NVMe (2-5 s under TCG)
	conf_component ublk "exec = $BUILD/bridges/block-ublk/bulkhead-block-ublk" \
		"session = block nvme" "ublk = 0" "env = BULKHEAD_UBLK_PROBE=1" \
		"restart = on-failure" "backoff_ms = 50" "max_restarts = 100" "watchdog_ms = 10000"
} >"$conf"

modprobe ublk_drv
start_core "$conf" "$log" || { result ublk_start 1 "core did not start"; exit 1; }
wait_for "$log" "block-ublk: /dev/ublkb0 serves|\"ublk\" .*ended" 60
for _ in $(seq 150); do [ -b $dev ] && break; sleep 0.2; done
[ -b $dev ] && grep -q "ublkb0: started" "$log"
rc=$?
[ -n "${BULKHEAD_OUT:-}" ] && trap 'cp "$log" "$BULKHEAD_OUT/ublk.log" 2>/dev/null' EXIT
result ublk_started $rc "$(grep -oE 'block-ublk: /dev/ublkb0 serves.*' "$log" | head -1); $(grep -oE '/dev/ublkb0: started' "$log" | head -1); blockdev says $(blockdev --getsize64 $dev 2>/dev/null) bytes"
[ $rc = 0 ] || { tail -30 "$log"; stop_core; exit 1; }

# 1. the ring's sandbox: each attempt refused, counted by the bridge
probes=$(grep -oE 'block-ublk: probe: [^0-9].*' "$log" | head -5 | sed 's/block-ublk: probe: //' | tr '\n' ';')
grep -q "block-ublk: probe: 5 of 5 refused" "$log"
result ublk_ring_sandbox $? "$probes"

# 2. a filesystem on it
mkfs.ext4 -q -F $dev >"$WORK/umkfs.out" 2>&1
result ublk_mkfs $? "mkfs.ext4 on $dev: $(tr '\n' ' ' <"$WORK/umkfs.out" | cut -c1-120)"
mount $dev "$mnt" 2>"$WORK/umount.err"
result ublk_mount $? "$(findmnt -no SOURCE,FSTYPE,OPTIONS "$mnt" 2>/dev/null || cat "$WORK/umount.err")"
t0=$SECONDS
mkdir -p "$mnt/a"
for i in $(seq 1 100); do
	head -c $(((RANDOM % 64 + 1) * 1024)) /dev/urandom >"$mnt/a/f$i" || break
done
(cd "$mnt" && sha256sum a/*) >"$sums"
n=$(wc -l <"$sums")
umount "$mnt"
urc=$?
[ "$urc" = 0 ] && [ "$n" = 100 ]
result ublk_write_files $? "$n files written and hashed in $((SECONDS - t0)) s, umount exit $urc"
fsck.ext4 -fn $dev >"$WORK/ufsck1.out" 2>&1
rc=$?
result ublk_fsck_clean $rc "fsck -fn exit $rc: $(tail -1 "$WORK/ufsck1.out")"
mount $dev "$mnt" && (cd "$mnt" && sha256sum --quiet -c "$sums") >"$WORK/ucheck1.out" 2>&1
rc=$?
result ublk_remount_sha256 $rc "remounted; $n files checked, $(grep -c FAILED "$WORK/ucheck1.out") mismatches"

# 3. kills during fsync'ed files and O_DIRECT rewrites (lib.sh's kill writers)
kill_writers_start "$mnt"
nkills=0 bkills=0
for k in $(seq 1 "$KILLS"); do
	for who in nvme ublk; do
		sleep "$((RANDOM % 3 + 1)).$((RANDOM % 10))"
		kill_writers_busy
		pid=$(grep -oE "started \"$who\" pid [0-9]+" "$log" | tail -1 | awk '{ print $4 }')
		kill -KILL "$pid" 2>/dev/null || continue
		echo "kill $k: $who pid $pid after $(wc -l <"$KW_ACKED") acknowledged files"
		if [ $who = nvme ]; then
			nkills=$((nkills + 1))
			wait_for_count "$log" "block-ublk: reconnected" "$k" 40 || break 2
		else
			bkills=$((bkills + 1))
			wait_for_count "$log" "ublkb0: recovered" "$k" 60 || break 2
		fi
	done
done
sleep 2
kill_writers_stop
recovered=$(count_of "$log" 'ublkb0: recovered')
reconnected=$(count_of "$log" 'block-ublk: reconnected')
[ "$nkills" = "$KILLS" ] && [ "$bkills" = "$KILLS" ] && [ "$recovered" -ge "$KILLS" ] &&
	[ "$reconnected" -ge "$KILLS" ]
result ublk_kills $? "$nkills driver and $bkills bridge SIGKILLs; $reconnected session reconnects re-issuing $(grep -oE 'reconnected .*: [0-9]+' "$log" | awk -F': ' '{ s += $2 } END { print s + 0 }') requests; $recovered user recoveries of /dev/ublkb0 (the kernel re-issued what the dead bridge held)"
[ "$KW_ERRORS" = 0 ] && [ "$KW_NFILES" -gt 0 ]
result ublk_kill_writes $? "$KW_FILES files written, $KW_NFILES acknowledged (fsync returned), $KW_REWRITES rewrites of an 8 MiB file in 4 KiB O_DIRECT writes, write errors: $KW_ERRORS"
umount "$mnt"
urc=$?
fsck.ext4 -fn $dev >"$WORK/ufsck2.out" 2>&1
frc=$?
[ "$urc" = 0 ] && [ "$frc" = 0 ]
result ublk_kill_fsck $? "umount exit $urc; fsck -fn exit $frc: $(tail -1 "$WORK/ufsck2.out")"
mount $dev "$mnt" && (cd "$mnt" && sha256sum --quiet -c "$KW_ACKED" && sha256sum --quiet -c "$sums") \
	>"$WORK/ucheck2.out" 2>&1
rc=$?
result ublk_kill_data $rc "remounted; $(wc -l <"$KW_ACKED") acknowledged files and the $n earlier ones checked, $(grep -c FAILED "$WORK/ucheck2.out") mismatches"
umount "$mnt"

kill -0 "$CORE_PID"
result ublk_core $? "core pid $CORE_PID alive; $(count_of "$log" 'watchdog:') watchdog kills"
stop_core
grep -E "^core .*(ended|ublkb0|watchdog)|block-ublk: (reconnected|the block|/dev)" "$log" | tail -40
