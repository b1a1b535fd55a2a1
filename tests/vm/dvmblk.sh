#!/usr/bin/env bash
# vm: --devices nvme:rp --mem 1536 --timeout 900
# A driver VM's disk as a Block session (drivers/vm-blk, dvm/agent/block.c):
# the NVMe goes to a "kind = vm" component, QEMU with KVM (nested, inside
# this TCG machine) booting the host's kernel with an initramfs of nvme.ko,
# busybox and bulkhead's agent; Linux's own nvme driver makes /dev/nvme0n1
# in there, the agent serves it over the VM's block channel (a second
# ivshmem-doorbell device) to vm-blk, which serves the Block session to
# block-nbd: /dev/nbd0 here. Checks: formatted, mounted, files written with
# their sha256, fsck clean, remounted and read back; then, with fsync'ed
# files and O_DIRECT rewrites going, the guest's kernel crashed from inside
# (sysrq c) and QEMU killed from outside: core resets the NVMe and restarts
# the VM, vm-blk reissues what was in flight, the mounted filesystem
# survives, the writes of the outage complete, fsck is clean and every
# acknowledged file intact; vm-blk and core keep their pids.
set -u
. "$(dirname "$0")/lib.sh"

conf=$WORK/dvmblk.conf
log=$WORK/dvmblk.log
mnt=$WORK/dvmblk-mnt
dev=/dev/nbd0
initrd=$BUILD/dvm/nvme.cpio.gz
# the kernel uncompressed, as tools/vm/run boots it (PVH): saves decompressing it
kernel=$BUILD/vm/vmlinux-$(uname -r)
[ -r "$kernel" ] || kernel=/boot/vmlinuz-$(uname -r)

modprobe kvm_amd 2>/dev/null || modprobe kvm_intel 2>/dev/null
[ -e /dev/kvm ]
result dvmblk_kvm $? "/dev/kvm in the test machine: $(ls -l /dev/kvm 2>&1)" || exit 1
if [ ! -s "$initrd" ]; then
	initrd=$WORK/dvm-nvme.cpio.gz
	"$ROOT/tools/dvm/mkguest" "$initrd" nvme >"$WORK/mkguest.out" 2>&1
fi
zcat "$initrd" | cpio -t --quiet 2>/dev/null | grep -qx "lib/modules/nvme.ko"
result dvmblk_guest_initramfs $? "$initrd: $(zcat "$initrd" | cpio -t --quiet 2>/dev/null | grep -E '\.ko$' | tr '\n' ' ')" || exit 1

{
	conf_core
	conf_component dvmblk "kind = vm" "device = 1b36:0010" "kernel = $kernel" \
		"initramfs = $initrd" "modules = nvme" "guest_memory = 128M" \
		"watchdog_ms = 15000" "boot_ms = 240000" "restart = on-failure" "backoff_ms = 500"
	conf_vm_blk dvmblk
	# the kernel drops the bridge's socket when a request is 15 s old
	# (core/nbd.c): a VM's restart takes longer (45-120 s here), so the
	# bridge restarts too, every 15 s until the VM serves again: more than
	# the 10 restarts core allows by default
	BLOCK_SERVER=vm-blk conf_nbd "restart = on-failure" "max_restarts = 100" \
		"backoff_ms = 200" "backoff_max_ms = 1000"
} >"$conf"

modprobe nbd nbds_max=2 2>/dev/null
trap 'cp "$log" "${BULKHEAD_OUT:-/tmp}/" 2>/dev/null' EXIT
start_core "$conf" "$log" || { result dvmblk_core_start 1 "core did not start"; exit 1; }
wait_for "$log" "vm \"dvmblk\": guest serving" 300
serving=$(grep -E "vm \"dvmblk\": guest serving" "$log" | head -1)
echo "$serving" | grep -q "block channel for nvme"
result dvmblk_guest_serving $? "${serving#*] }" || { tail -n 40 "$log"; exit 1; }
boot1=$(echo "$serving" | grep -oE "serving [0-9.]+ s" | grep -oE "[0-9.]+")
# the NVMe's address, as core's status names it
ours=$("$CLI" status | awk '/^device / && /owner=dvmblk/ { print $2; exit }')

wait_for "$log" "nbd\| block-nbd: /dev/nbd0 serves" 60
chan=$(grep -E "vm-blk\| vm-blk: guest agent epoch" "$log" | head -1)
sess=$(grep -E "vm-blk\| vm-blk: serving" "$log" | head -1)
[ -n "$chan" ] && [ -n "$sess" ] && [ -b $dev ]
result dvmblk_session $? "${chan#*| }; ${sess#*| }; $(grep -E "nbd\| block-nbd: /dev/nbd0 serves" "$log" | head -1 | sed 's/^.*| //')" || { tail -n 40 "$log"; exit 1; }

# the disk through the VM, as any disk: ext4, files, fsck, read back
block_fs_checks dvmblk $dev "$mnt"

# a first measure, for the report (bench-vm has the comparison)
t0=$(date +%s%N)
dd if="$dev" of=/dev/null bs=128k count=256 iflag=direct status=none
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
result dvmblk_read_direct $rc "32 MiB in 128 KiB O_DIRECT reads through the VM in $ms ms ($((32000 / (ms + 1))) MiB/s)"

# the others' pids, which a VM's restart must not change
others() { printf 'vm-blk=%s ' "$(field vm-blk pid)"; }
others0=$(others)
nbd0=$(field nbd pid)
# 1 MiB rewrites: each 4 KiB O_DIRECT write crosses the nested VM
# shellcheck disable=SC2034 # read by lib.sh's kill writers
KW_STREAM_BLOCKS=256
kill_writers_start "$mnt"

# the VM's restart, and the writes going on across it: PREFIX HOW
outage() {
	local name=$1 how=$2 qpid resets0 restarts0 serving0 t0 acked0 epochs0 snap what
	qpid=$(field dvmblk pid)
	resets0=$(field "$ours" resets)
	restarts0=$(field dvmblk restarts)
	serving0=$(count_of "$log" "vm \"dvmblk\": guest serving")
	epochs0=$(count_of "$log" "vm-blk: guest agent epoch")
	kill_writers_busy
	acked0=$(wc -l <"$KW_ACKED")
	t0=$SECONDS
	if [ "$how" = sysrq ]; then
		what=$("$CLI" sysrq dvmblk c 2>&1)
	else
		kill -KILL "$qpid"
		what="QEMU pid $qpid SIGKILLed"
	fi
	wait_for "$log" "\"dvmblk\" \(pid $qpid\) ended" 60
	wait_for_count "$log" "vm \"dvmblk\": guest serving" $((serving0 + 1)) 300
	wait_for_count "$log" "vm-blk: guest agent epoch" $((epochs0 + 1)) 60
	# the writers go on: acknowledged files after the guest is back
	for _ in $(seq 60); do [ "$(wc -l <"$KW_ACKED")" -gt $((acked0 + 3)) ] && break; sleep 1; done
	snap=$("$CLI" status)
	[ "$(wc -l <"$KW_ACKED")" -gt $((acked0 + 3)) ] &&
		[ "$(field dvmblk restarts "$snap")" -gt "$restarts0" ] &&
		[ "$(field "$ours" resets "$snap")" -gt "$resets0" ] &&
		[ "$(field dvmblk pid "$snap")" != "$qpid" ] && [ "$(others)" = "$others0" ] &&
		grep -qE "vm \"dvmblk\": guest serving" "$log"
	result "dvmblk_$name" $? "$what; $(grep -E "\"dvmblk\" \(pid $qpid\) ended" "$log" | head -1 | sed 's/^.*] //'); back serving and written to in $((SECONDS - t0)) s; restarts $restarts0 -> $(field dvmblk restarts "$snap"), NVMe resets $resets0 -> $(field "$ours" resets "$snap"); acknowledged files $acked0 -> $(wc -l <"$KW_ACKED"); $(grep -E "vm-blk: reissued" "$log" | tail -1 | sed 's/^.*vm-blk: //'); pids $(others)"
}
outage crash sysrq
boot2=$(grep -E "vm \"dvmblk\": guest serving" "$log" | sed -n 2p | grep -oE "serving [0-9.]+ s" | grep -oE "[0-9.]+")
outage kill kill
boot3=$(grep -E "vm \"dvmblk\": guest serving" "$log" | sed -n 3p | grep -oE "serving [0-9.]+ s" | grep -oE "[0-9.]+")
sleep 2
kill_writers_stop
nacked=$(wc -l <"$KW_ACKED")
[ "$KW_ERRORS" = 0 ] && [ "$nacked" -gt 0 ]
result dvmblk_outage_writes $? "$KW_FILES files written, $KW_NFILES acknowledged (fsync returned), $KW_REWRITES rewrites of a 1 MiB file in 4 KiB O_DIRECT writes across two VM restarts; write errors: $KW_ERRORS; reissued by vm-blk: $(grep -oE 'vm-blk: reissued [0-9]+' "$log" | awk '{ s += $3 } END { print s + 0 }') requests; block-nbd restarts (the kernel's 15 s request timeout): $(count_of "$log" '"nbd" \(pid [0-9]+\) ended')"

umount "$mnt"
urc=$?
fsck.ext4 -fn $dev >"$WORK/dvmblk.fsck2" 2>&1
frc=$?
[ "$urc" = 0 ] && [ "$frc" = 0 ]
result dvmblk_outage_fsck $? "umount exit $urc; fsck -fn exit $frc: $(tail -1 "$WORK/dvmblk.fsck2")"
mount $dev "$mnt" && (cd "$mnt" && sha256sum --quiet -c "$KW_ACKED" && sha256sum --quiet -c "$BF_SUMS") \
	>"$WORK/dvmblk.check2" 2>&1
rc=$?
result dvmblk_outage_data $rc "remounted; $nacked acknowledged files and the $(wc -l <"$BF_SUMS") earlier ones checked, $(grep -c FAILED "$WORK/dvmblk.check2") mismatches"
umount "$mnt"

kill -0 "$CORE_PID"
result dvmblk_core $? "core pid $CORE_PID alive; vm-blk $others0-> $(others); nbd pid $nbd0 -> $(field nbd pid)"
echo "dvmblk figures: boot to serving ${boot1:-?} s (first), ${boot2:-?} s (after sysrq c), ${boot3:-?} s (after the kill)"
stop_core
grep -E "^core .*(ended|restarts in|watchdog|revoked)|vm-blk: (reissued|guest agent|session)|block-nbd: (reconnected|the kernel)" "$log" | tail -40
