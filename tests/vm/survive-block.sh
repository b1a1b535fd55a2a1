#!/usr/bin/env bash
# vm: --devices nvme:rp --mem 1024
# Survival of the storage path: ext4 on /dev/nbd0 (bulkhead's NVMe driver
# behind the block-nbd bridge) takes a stream of fsync'ed files while the
# driver is SIGKILLed 5 times at spread-out moments. A file counts as
# acknowledged only once its fsync returned; then its sha256 is recorded.
# Afterwards: umount, fsck -fn clean, remount, every acknowledged file intact.
set -u
. "$(dirname "$0")/lib.sh"

KILLS=${KILLS:-5}
conf=$WORK/survive-block.conf
log=$WORK/survive-block.log
mnt=$WORK/smnt
dev=/dev/nbd0
mkdir -p "$mnt"
{
	conf_nvme_killable
	# core answers no heartbeat while it bus-resets the NVMe (2-5 s under TCG)
	conf_nbd "restart = on-failure" "watchdog_ms = 10000"
} >"$conf"

modprobe nbd nbds_max=2 2>/dev/null
start_core "$conf" "$log" || { result survive_block_start 1 "core did not start"; exit 1; }
wait_for "$log" "nbd\| block-nbd: /dev/nbd0 serves" 30
mkfs.ext4 -q -F $dev >"$WORK/smkfs.out" 2>&1 && mount $dev "$mnt" 2>>"$WORK/smkfs.out"
result survive_block_mount $? "ext4 on $dev: $(findmnt -no SOURCE,FSTYPE "$mnt" 2>/dev/null || tail -1 "$WORK/smkfs.out")"

# fsync'ed files and O_DIRECT rewrites (lib.sh's kill writers); the kills:
# each 2-5 s after the bridge is back on the previous restart, once a
# rewrite is under way
kill_writers_start "$mnt"
kills=0
for k in $(seq 1 "$KILLS"); do
	sleep "$((RANDOM % 4 + 2)).$((RANDOM % 10))"
	kill_writers_busy
	pid=$(grep -oE 'started "nvme" pid [0-9]+' "$log" | tail -1 | awk '{ print $4 }')
	kill -KILL "$pid" 2>/dev/null && kills=$((kills + 1))
	echo "kill $k: nvme pid $pid after $(wc -l <"$KW_ACKED") acknowledged files"
	wait_for_count "$log" "nbd\| block-nbd: reconnected" "$k" 30 || break
done
sleep 2
kill_writers_stop
nacked=$(wc -l <"$KW_ACKED")

# each gap: the kill's "ended" line to the bridge's new session, from core's clock
gaps=$(awk 'function t() { match($0, /\[ *[0-9.]+\]/); return substr($0, RSTART + 1, RLENGTH - 2) + 0 }
	/^core .*"nvme" \(pid [0-9]+\) ended: killed by SIGKILL/ { k = t() }
	k && /^core .*session .block.: "nbd" -> "nvme"/ { printf "%d ", (t() - k) * 1000; k = 0 }' "$log")
ngaps=$(echo "$gaps" | wc -w)
maxgap=$(echo "$gaps" | tr ' ' '\n' | sort -n | tail -1)
restarts=$(count_of "$log" 'started "nvme" pid [0-9]+ .*\(restart\)')
nbd_ends=$(count_of "$log" '"nbd" \(pid [0-9]+\) ended')
[ "$kills" = "$KILLS" ] && [ "$ngaps" = "$KILLS" ] && [ "$restarts" -ge "$KILLS" ] && [ "$nbd_ends" = 0 ]
result survive_block_kills $? "$kills SIGKILLs, $restarts restarts, gaps kill->reconnect (ms): ${gaps:-none}(max ${maxgap:-?}); bridge restarts $nbd_ends; re-issued: $(grep -oE 'reconnected .*' "$log" | awk -F': ' '{ s += $2 } END { print s + 0 }') request parts"
[ "$KW_ERRORS" = 0 ] && [ "$nacked" -gt 0 ]
result survive_block_writes $? "$KW_FILES files written, $KW_NFILES acknowledged (fsync returned), and $KW_REWRITES rewrites of an 8 MiB file in 4 KiB O_DIRECT writes, write errors: $KW_ERRORS"

umount "$mnt"
urc=$?
fsck.ext4 -fn $dev >"$WORK/sfsck.out" 2>&1
frc=$?
[ "$urc" = 0 ] && [ "$frc" = 0 ]
result survive_block_fsck $? "umount exit $urc; fsck -fn exit $frc: $(tail -1 "$WORK/sfsck.out")"
mount $dev "$mnt" && (cd "$mnt" && sha256sum --quiet -c "$KW_ACKED") >"$WORK/scheck.out" 2>&1
rc=$?
result survive_block_data $rc "remounted; $nacked acknowledged files checked, $(grep -c FAILED "$WORK/scheck.out") mismatches"
umount "$mnt"

kill -0 "$CORE_PID"
result survive_block_core $? "core pid $CORE_PID alive; $(count_of "$log" 'watchdog:') watchdog kills"
stop_core
grep -E "^core .*(ended|restarts in|watchdog|session 'block')|block-nbd: (reconnected|the block)" "$log"
