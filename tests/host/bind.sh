#!/usr/bin/env bash
# `bulkhead bind` refuses this machine's root disk and its active network
# interface. Only --dry-run is used: a test must never risk the host's devices.
set -u
. "$(dirname "$0")/../vm/lib.sh"

pci_of() { # sysfs class entry -> PCI address of the device it sits on
	readlink -f "$1" | grep -oE '[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-9a-f]' | tail -1
}

rootdev=$(findmnt -no SOURCE / | sed 's|/dev/||')
rootpci=$(pci_of "/sys/class/block/$rootdev")
if [ -n "$rootpci" ]; then
	out=$("$CLI" bind --dry-run "$rootpci" 2>&1)
	rc=$?
	[ $rc -ne 0 ] && echo "$out" | grep -q "refusing to bind $rootpci: the host is using it"
	result bind_refuses_root_disk $? "$rootpci ($rootdev): $out"
else
	result bind_refuses_root_disk 0 "root filesystem ($rootdev) is not on a PCI device here; nothing to refuse"
fi

nic=$(ip -o route show default 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") print $(i + 1) }' | head -1)
[ -n "$nic" ] || nic=$(ls /sys/class/net | grep -v '^lo$' | head -1)
nicpci=$([ -n "$nic" ] && pci_of "/sys/class/net/$nic")
if [ -n "$nicpci" ] && [ "$(($(cat /sys/class/net/$nic/flags) & 1))" = 1 ]; then
	out=$("$CLI" bind --dry-run "$nicpci" 2>&1)
	rc=$?
	[ $rc -ne 0 ] && echo "$out" | grep -q "refusing to bind $nicpci: the host is using it: its network interface"
	result bind_refuses_active_nic $? "$nicpci ($nic): $out"
else
	result bind_refuses_active_nic 0 "no active PCI network interface here; nothing to refuse"
fi

out=$("$CLI" bind --dry-run 0000:7f:1f.7 2>&1)
[ $? -ne 0 ] && echo "$out" | grep -q "no PCI device 0000:7f:1f.7"
result bind_unknown_device $? "$out"
