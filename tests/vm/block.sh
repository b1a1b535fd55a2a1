#!/usr/bin/env bash
# vm: --devices nvme:rp --mem 1024 --timeout 900
# The storage path on the test machine: bulkhead's NVMe driver serves a Block
# session, the block-nbd bridge turns it into /dev/nbd0, and Linux formats,
# mounts, fills and checks it; then the driver is killed mid-write and
# restarted under a mounted filesystem. block-probe checks the session
# directly: data integrity, PRP lists, and refusals of bad requests.
set -u
. "$(dirname "$0")/lib.sh"

conf=$WORK/block-test.conf
log=$WORK/block-test.log
mnt=$WORK/mnt
sums=$WORK/sums
dev=/dev/nbd0
mkdir -p "$mnt"
{
	conf_core
	conf_nvme "restart = on-failure" "backoff_ms = 200"
	conf_nbd "restart = on-failure"
	conf_component probe "exec = $BUILD/tests/bulkhead-block-probe" "session = block nvme" \
		"restart = never"
} >"$conf"

modprobe nbd nbds_max=2 2>/dev/null
start_core "$conf" "$log" || { result block_core_start 1 "core did not start"; exit 1; }
wait_for "$log" "probe\| block-probe: (all tests passed|FAILED)" 60
for t in geometry random_io large_io refusals flush_trim; do
	line=$(grep -E "probe\| block-probe: TEST block_$t " "$log" | tail -1)
	echo "$line" | grep -q " PASS "
	result "block_$t" $? "$(echo "${line#*TEST block_$t }" | sed -E 's/^ *(PASS|FAIL) *//')"
done

wait_for "$log" "nbd\| block-nbd: /dev/nbd0 serves" 30
line=$(grep -E "nbd\| block-nbd: /dev/nbd0 serves" "$log" | head -1)
size=$(blockdev --getsize64 $dev 2>/dev/null || echo 0)
[ -n "$line" ] && [ "$size" -gt 0 ]
result block_nbd_connected $? "${line#*block-nbd: }; blockdev says $size bytes"

# write N files of random data (1-64 KiB) under DIR, their sha256 into $sums
fill() { # dir first last
	mkdir -p "$1"
	for i in $(seq "$2" "$3"); do
		head -c $(((RANDOM % 64 + 1) * 1024)) /dev/urandom >"$1/f$i" || return 1
	done
}

mkfs.ext4 -q -F $dev >"$WORK/mkfs.out" 2>&1
result block_mkfs $? "mkfs.ext4 on $dev: $(tr '\n' ' ' <"$WORK/mkfs.out" | cut -c1-120)"
mount $dev "$mnt" 2>"$WORK/mount.err"
result block_mount $? "$(findmnt -no SOURCE,FSTYPE,OPTIONS "$mnt" 2>/dev/null || cat "$WORK/mount.err")"

t0=$SECONDS
fill "$mnt/a" 1 300 && (cd "$mnt" && sha256sum a/*) >"$sums"
n=$(wc -l <"$sums")
umount "$mnt"
result block_write_files $? "$n files written and hashed in $((SECONDS - t0)) s, unmounted"
fsck.ext4 -fn $dev >"$WORK/fsck1.out" 2>&1
rc=$?
result block_fsck_clean $rc "fsck -fn exit $rc: $(tail -1 "$WORK/fsck1.out")"
mount $dev "$mnt" && (cd "$mnt" && sha256sum --quiet -c "$sums") >"$WORK/check1.out" 2>&1
rc=$?
result block_remount_sha256 $rc "remounted; $n files checked, $(grep -c FAILED "$WORK/check1.out") mismatches"

# the driver killed with SIGKILL while files are written and synced, and a big
# file goes out with O_DIRECT (so requests are in flight at the kill)
pid0=$(field nvme pid)
head -c $((24 << 20)) /dev/urandom >"$WORK/big.src"
dd if="$WORK/big.src" of="$mnt/big" bs=1M oflag=direct status=none &
big=$!
(
	for i in $(seq 1 30); do
		fill "$mnt/b" $(((i - 1) * 10 + 1)) $((i * 10)) || exit 1
		sync && echo "$i" >>"$WORK/synced"
	done
) >"$WORK/writer.out" 2>&1 &
writer=$!
wait_for_count "$WORK/synced" "." 5 120
synced_before=$(wc -l <"$WORK/synced")
kill -KILL "$pid0"
wait_for "$log" '"nvme" \(pid '"$pid0"'\) ended: killed by SIGKILL' 10
wait_for "$log" "nbd\| block-nbd: reconnected" 60
reissued=$(grep -E "nbd\| block-nbd: reconnected" "$log" | tail -1 | sed 's/.*: //')
wait "$writer"
wrc=$?
wait "$big"
brc=$?
pid1=$(field nvme pid)
(cd "$mnt" && sha256sum b/*) >"$WORK/sums-b"
(cd "$WORK" && sha256sum big.src | sed 's/big.src/big/') >>"$WORK/sums-b"
sync
[ "$wrc" = 0 ] && [ "$brc" = 0 ] && [ -n "$pid1" ] && [ "$pid1" != "$pid0" ] &&
	[ "$pid1" != 0 ] && [ "$(wc -l <"$WORK/sums-b")" = 301 ]
result block_kill_mid_write $? "driver pid $pid0 killed after $synced_before synced batches, restarted as pid $pid1; bridge: $reissued; file writer exit $wrc, O_DIRECT 24 MiB writer exit $brc"
umount "$mnt"
urc=$?
fsck.ext4 -fn $dev >"$WORK/fsck2.out" 2>&1
rc=$?
[ "$urc" = 0 ] && [ "$rc" = 0 ]
result block_fsck_after_kill $? "umount exit $urc; fsck -fn exit $rc: $(tail -1 "$WORK/fsck2.out")"
mount $dev "$mnt" && (cd "$mnt" && sha256sum --quiet -c "$sums" "$WORK/sums-b") >"$WORK/check2.out" 2>&1
rc=$?
result block_no_lost_writes $rc "remounted; $(cat "$sums" "$WORK/sums-b" | wc -l) files checked (all written before and during the kill), $(grep -c FAILED "$WORK/check2.out") mismatches"
umount "$mnt"

# past the end of the device: the block layer stops at the end; nothing crashes
blocks=$((size / 4096))
out=$(dd if=$dev of=/dev/null bs=4096 skip=$blocks count=1 iflag=direct 2>&1)
rc=$?
recs=$(echo "$out" | grep -oE '^[0-9]+\+[0-9]+ records in')
[ "$recs" = "0+0 records in" ] && [ "$(field nvme state)" = running ] && [ "$(field nbd state)" = running ] &&
	dd if=$dev of=/dev/null bs=4096 skip=$((blocks - 1)) count=1 iflag=direct 2>/dev/null
result block_read_past_end_nbd $? "dd at block $blocks of $blocks: exit $rc, $recs; the last block still reads; nvme and nbd running"

kill -0 "$CORE_PID"
result block_core_survived $? "core pid $CORE_PID alive"
stop_core
grep -E "nvme\| nvme: shutdown" "$log" | tail -1 | grep -q "shutdown complete"
result block_clean_shutdown $? "$(grep -E 'nvme\| nvme: shutdown' "$log" | tail -1 | sed 's/.*nvme: //')"
echo "---- core log ----"
cat "$log"
