#!/usr/bin/env bash
# vm: --devices nvme:rp --mem 1024 --timeout 900
# ublk.sh's storage checks on Debian 12's 6.1 kernel, which has no ublk:
# the same component config as for ublk ('ublk = 0', with 'nbd = 0' as its
# fallback) makes core run block-nbd on /dev/nbd0 instead, and say so.
#  1. the fallback is announced; a component with 'ublk = N' and no 'nbd'
#     is refused with a message naming the missing kernel support
#  2. mkfs, mount, files with sha256, umount, fsck clean, remount, files intact
#  3. with ext4 mounted and fsync'ed files and O_DIRECT rewrites going on,
#     the NVMe driver and the NBD bridge are each SIGKILLed KILLS times
#     (alternating); then fsck clean and every acknowledged write intact
set -u
. "$(dirname "$0")/lib.sh"

conf=$WORK/nbd.conf log=$WORK/nbd.log mnt=$WORK/nmnt dev=/dev/nbd0
{
	conf_nvme_killable
	conf_ublk_killable disk "ublk = 0" "nbd = 0"
	conf_component ublkonly "exec = $BUILD/bridges/block-ublk/bulkhead-block-ublk" \
		"session = block nvme" "ublk = 1" "restart = never"
} >"$conf"

modprobe nbd nbds_max=2 2>/dev/null
start_core "$conf" "$log" || { result nbd_start 1 "core did not start"; exit 1; }
[ -n "${BULKHEAD_OUT:-}" ] && trap 'cp "$log" "$BULKHEAD_OUT/nbd.log" 2>/dev/null' EXIT
wait_for "$log" "disk\| block-nbd: /dev/nbd0 serves" 60
wait_for "$log" '"ublkonly" \(pid [0-9]+\) ended' 30
load_lines "$log" ""
fallback=$(pick '"disk": this kernel has no ublk .*')
serves=$(pick 'disk\| block-nbd: /dev/nbd0 serves.*')
[ -n "$fallback" ] && [ -n "$serves" ] && [ -b $dev ] && [ ! -e /dev/ublkb0 ]
result nbd_ublk_fallback $? "${fallback#*: }; ${serves#*| }"
refusal=$(pick 'ublkonly\| block-ublk: .*')
[[ $refusal =~ ublk-control.*CONFIG_BLK_DEV_UBLK ]]
result nbd_ublk_refused $? "without 'nbd': ${refusal#*| }"
[ -n "$serves" ] || { tail -30 "$log"; stop_core; exit 1; }

block_fs_checks nbd $dev "$mnt"
block_kill_checks nbd $dev "$mnt" "$log" nvme disk "disk\| block-nbd: reconnected" \
	"disk\| block-nbd: /dev/nbd0 serves"

kill -0 "$CORE_PID"
result nbd_core $? "core pid $CORE_PID alive; $(count_of "$log" 'watchdog:') watchdog kills; $(count_of "$log" 'block-nbd: the kernel shut') bridge exits on a request timeout; the kernel requeued on a timeout $(dmesg | grep -c 'nbd0: Connection timed out') times (rate-limited)"
stop_core
grep -E "^core .*(ended|nbd|watchdog)|block-nbd: (reconnected|the block|the kernel|/dev)" "$log" | tail -40
