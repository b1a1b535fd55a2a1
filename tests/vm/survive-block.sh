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
pool=$WORK/pool
acked=$WORK/acked
dev=/dev/nbd0
mkdir -p "$mnt"
: >"$acked"
rm -f "$WORK/writer.stop" "$WORK/writer.done" "$WORK/writer2.done" "$WORK/big.busy" \
	"$WORK/stream.acked"
{
	conf_core
	conf_nvme "restart = always" "backoff_ms = 50" "backoff_max_ms = 200" \
		"max_restarts = 100" "watchdog_ms = 5000"
	# core answers no heartbeat while it bus-resets the NVMe (2-5 s under TCG)
	conf_nbd "restart = on-failure" "watchdog_ms = 10000"
} >"$conf"

modprobe nbd nbds_max=2 2>/dev/null
start_core "$conf" "$log" || { result survive_block_start 1 "core did not start"; exit 1; }
wait_for "$log" "nbd\| block-nbd: /dev/nbd0 serves" 30
mkfs.ext4 -q -F $dev >"$WORK/smkfs.out" 2>&1 && mount $dev "$mnt" 2>>"$WORK/smkfs.out"
result survive_block_mount $? "ext4 on $dev: $(findmnt -no SOURCE,FSTYPE "$mnt" 2>/dev/null || tail -1 "$WORK/smkfs.out")"

# the files are slices of one random pool: 4-256 KiB each, hashed before the
# write, recorded once dd's fsync (conv=fsync) has returned
head -c $((8 << 20)) /dev/urandom >"$pool"
(
	i=0 errors=0
	while [ ! -e "$WORK/writer.stop" ]; do
		i=$((i + 1))
		n=$((RANDOM % 64 + 1)) off=$((RANDOM % 1900))
		sum=$(dd if="$pool" bs=4k skip=$off count=$n status=none | sha256sum)
		if dd if="$pool" of="$mnt/f$i" bs=4k skip=$off count=$n conv=fsync status=none; then
			echo "${sum%% *}  f$i" >>"$acked"
		else
			errors=$((errors + 1))
		fi
	done
	echo "$i $errors" >"$WORK/writer.done"
) 2>"$WORK/writer.err" &
writer=$!
# and the pool rewritten over one file in 4 KiB O_DIRECT writes, again and
# again, so requests are in flight whenever a kill lands; acknowledged with
# the last rewrite that returned
(
	i=0 errors=0
	while [ ! -e "$WORK/writer.stop" ]; do
		i=$((i + 1))
		touch "$WORK/big.busy"
		if dd if="$pool" of="$mnt/stream" bs=4k oflag=direct conv=notrunc,fsync status=none; then
			echo ok >"$WORK/stream.acked"
		else
			errors=$((errors + 1))
			rm -f "$WORK/stream.acked"
		fi
	done
	rm -f "$WORK/big.busy"
	echo "$i $errors" >"$WORK/writer2.done"
) 2>>"$WORK/writer.err" &
writer2=$!

# the kills: each 2-5 s after the bridge is back on the previous restart, once
# the O_DIRECT rewrite is under way
wait_for_count "$acked" . 3 60
kills=0
for k in $(seq 1 "$KILLS"); do
	sleep "$((RANDOM % 4 + 2)).$((RANDOM % 10))"
	for _ in $(seq 40); do [ -e "$WORK/big.busy" ] && break; sleep 0.1; done
	sleep 0.5
	pid=$(grep -oE 'started "nvme" pid [0-9]+' "$log" | tail -1 | awk '{ print $4 }')
	kill -KILL "$pid" 2>/dev/null && kills=$((kills + 1))
	echo "kill $k: nvme pid $pid after $(wc -l <"$acked") acknowledged files"
	wait_for_count "$log" "nbd\| block-nbd: reconnected" "$k" 30 || break
done
sleep 2
touch "$WORK/writer.stop"
wait "$writer" "$writer2"
read -r tried werrors <"$WORK/writer.done" 2>/dev/null || { tried=0; werrors=writer-lost; }
read -r tried2 werrors2 <"$WORK/writer2.done" 2>/dev/null || { tried2=0; werrors2=writer-lost; }
[ "$werrors2" = 0 ] || werrors="$werrors+$werrors2"
nfiles=$(wc -l <"$acked")
[ -e "$WORK/stream.acked" ] && echo "$(sha256sum <"$pool" | cut -d' ' -f1)  stream" >>"$acked"
nacked=$(wc -l <"$acked")

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
[ "$werrors" = 0 ] && [ "$nacked" -gt 0 ]
result survive_block_writes $? "$tried files written, $nfiles acknowledged (fsync returned), and $tried2 rewrites of an 8 MiB file in 4 KiB O_DIRECT writes, $werrors write errors$( [ -s "$WORK/writer.err" ] && echo ": $(head -c 200 "$WORK/writer.err")")"

umount "$mnt"
urc=$?
fsck.ext4 -fn $dev >"$WORK/sfsck.out" 2>&1
frc=$?
[ "$urc" = 0 ] && [ "$frc" = 0 ]
result survive_block_fsck $? "umount exit $urc; fsck -fn exit $frc: $(tail -1 "$WORK/sfsck.out")"
mount $dev "$mnt" && (cd "$mnt" && sha256sum --quiet -c "$acked") >"$WORK/scheck.out" 2>&1
rc=$?
result survive_block_data $rc "remounted; $nacked acknowledged files checked, $(grep -c FAILED "$WORK/scheck.out") mismatches"
umount "$mnt"

kill -0 "$CORE_PID"
result survive_block_core $? "core pid $CORE_PID alive; $(count_of "$log" 'watchdog:') watchdog kills"
stop_core
grep -E "^core .*(ended|restarts in|watchdog|session 'block')|block-nbd: (reconnected|the block)" "$log"
