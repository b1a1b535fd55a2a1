#!/usr/bin/env bash
# Inside the test machine (see bench/vm/run): TCP throughput and ping from
# the first e1000e to the guest kernel's e1000e in namespace "peer", three
# ways: (a) the kernel's own e1000e driver, (b) bulkhead's native e1000e +
# nic-tap, (c) a driver VM (Linux's e1000e in QEMU with KVM, nested) whose
# interface vm-nic serves as a NIC session, + nic-tap. Also the VM's time
# from QEMU's start to serving, and to bh0 carrying its first ping. Then
# fio on an NVMe through the kernel's nvme and through a driver VM. Writes
# "name metric value" lines to $BULKHEAD_OUT/vm.txt.
set -u
. "$(dirname "$0")/../../tests/vm/lib.sh"

ours=0000:00:02.0
theirs=0000:00:03.0
T=${BENCH_SECONDS:-5}
out=${BULKHEAD_OUT:-/tmp}/vm.txt
: >"$out"
kernel=$BUILD/vm/vmlinux-$(uname -r)
[ -r "$kernel" ] || kernel=/boot/vmlinuz-$(uname -r)
initrd=$BUILD/dvm/e1000e.cpio.gz

kvm_load
[ -e /dev/kvm ] || { echo "bench: no /dev/kvm in the test machine"; exit 1; }
modprobe tun
frag_fixture # the root namespace too: bh0 lives there
peer_netns "$theirs" 10.0.0.2/24 peer >/dev/null
ip netns exec peer iperf3 -s >/dev/null 2>&1 &

# (a) the kernel's e1000e on our NIC, in namespace "kern"; then it is core's
peer_netns "$ours" 10.0.0.1/24 kern >/dev/null
measure kernel kern
ip netns del kern
echo "$ours" >/sys/bus/pci/drivers/e1000e/unbind

conf=$WORK/bench-vm.conf
# dvm_core VM DEVICE INITRD MODULES SERVERS WAIT: core with driver VM VM
# owning DEVICE (Linux's MODULES, from INITRD) and what function SERVERS
# writes of its servers and bridge; then WAIT (a regex) in its log, $log.
# serving: the VM's time from QEMU's start to serving; t0 when core started
dvm_core() {
	{
		conf_core
		conf_component "$1" "kind = vm" "device = $2" "kernel = $kernel" \
			"initramfs = $3" "modules = $4" "guest_memory = 128M" "boot_ms = 300000"
		"$5"
	} >"$conf"
	log=$WORK/bench-vm-$1.log
	t0=$SECONDS
	start_core "$conf" "$log" || { echo "bench: core did not start"; exit 1; }
	wait_for "$log" "$6" 300
	serving=$(grep -oE "vm \"$1\": guest serving [0-9.]+ s" "$log" | grep -oE "[0-9.]+ s" | cut -d' ' -f1)
}
# (b) bulkhead's own e1000e driver and nic-tap
{ conf_core; conf_e1000e "$ours"; conf_nic_tap; } >"$conf"
log=$WORK/bench-vm-native.log
start_core "$conf" "$log" || { echo "bench: core did not start"; exit 1; }
wait_for "$log" "nic-tap\\| nic-tap: bh0 <-> nic session" 30
tap_up "$log" bh0 10.0.0.1/24
measure bulkhead ""
stop_core

# (c) the driver VM, vm-nic and nic-tap
nic_servers() { conf_vm_nic dvm; NIC_SERVER=vm-nic conf_nic_tap; }
dvm_core dvm "$ours" "$initrd" e1000e nic_servers "nic-tap\\| nic-tap: bh0 <-> nic session"
tap_up "$log" bh0 10.0.0.1/24
for _ in $(seq 60); do busybox ping -c 1 -W 1 10.0.0.2 >/dev/null 2>&1 && break; done
first_ping=$((SECONDS - t0))
measure vm ""
echo "vm serving_s ${serving:-0}" >>"$out"
echo "vm first_ping_s $first_ping" >>"$out"
echo "bench: vm: serving ${serving:-?} s after QEMU started, bh0's first ping ${first_ping} s after core started"
grep -E "vm-nic: |guest agent|nic channel" "$log" | head -5 | sed "s/^/bench:   /"
stop_core

# (d) fio on the NVMe: the kernel's own nvme driver, then the same disk
# through a driver VM (Linux's nvme in QEMU with KVM, nested) whose disk
# vm-blk serves as a Block session, + block-nbd
blk_jobs() { # PATH DEV: the three jobs, "PATH JOB_iops N" and "PATH JOB_mbs N" lines
	local j rw bs qd v
	for j in randread-4k-qd1:randread:4k:1 randread-4k-qd32:randread:4k:32 \
		seqread-128k-qd8:read:128k:8; do
		IFS=: read -r j rw bs qd <<<"$j"
		v=$(SECS=$T fio_job "$rw" "$bs" "$qd" "$2")
		echo "$1 ${j}_iops ${v% *}" >>"$out"
		echo "$1 ${j}_mbs ${v#* }" >>"$out"
		echo "bench: $1 $j: ${v% *} IOPS, ${v#* } MB/s"
	done
}
nvme=$(grep -l 0x0010 /sys/bus/pci/devices/*/device | xargs -n1 dirname |
	while read -r d; do grep -q 0x1b36 "$d/vendor" && basename "$d"; done | head -1)
modprobe nvme
for _ in $(seq 100); do ls /sys/bus/pci/devices/"$nvme"/nvme/*/nvme*n1 >/dev/null 2>&1 && break; sleep 0.1; done
kdisk=/dev/$(basename "$(ls -d /sys/bus/pci/devices/"$nvme"/nvme/*/nvme*n1 | head -1)")
blk_jobs kernel-blk "$kdisk"
echo "$nvme" >/sys/bus/pci/drivers/nvme/unbind
modprobe nbd nbds_max=2 2>/dev/null
blk_servers() { conf_vm_blk dvmblk; BLOCK_SERVER=vm-blk conf_nbd; }
dvm_core dvmblk "$nvme" "$BUILD/dvm/nvme.cpio.gz" nvme blk_servers "nbd\\| block-nbd: /dev/nbd0 serves"
echo "vm-blk serving_s ${serving:-0}" >>"$out"
echo "vm-blk nbd_s $((SECONDS - t0))" >>"$out"
blk_jobs vm-blk /dev/nbd0
grep -E "vm-blk: |block channel" "$log" | head -5 | sed "s/^/bench:   /"
stop_core
echo "bench: done"
