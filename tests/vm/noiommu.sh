#!/usr/bin/env bash
# vm: --devices edu --mem 256 --append intel_iommu=off
# The no-IOMMU fallback, on a test machine booted with intel_iommu=off:
# backend = vfio is refused with the fix; backend = auto falls back to
# uio_pci_generic with a loud warning, and the same edu driver still works
# (INTx, DMA at physical addresses).
set -u
. "$(dirname "$0")/lib.sh"

conf=$WORK/noiommu.conf
log=$WORK/noiommu.log
write_conf() { # backend
	cat >"$conf" <<CONF
[core]
backend = $1
[component "edu"]
exec = $BUILD/drivers/edu/bulkhead-edu
args = --exit
device = 1234:11e8
restart = never
CONF
}

write_conf vfio
out=$(timeout 20 "$CORE" -c "$conf" 2>&1)
rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "backend = vfio, but this machine has no IOMMU groups: boot with intel_iommu=on"
result noiommu_vfio_refused $? "exit $rc: $(echo "$out" | grep -o 'backend = vfio.*' | head -1)"

write_conf auto
start_core "$conf" "$log" || { result noiommu_uio_start 1 "core did not start"; exit 1; }
wait_for "$log" '"edu" \(pid [0-9]+\) ended' 60
grep -q "WARNING: no IOMMU in use: DMA is NOT confined" "$log" && grep -q "backend uio" "$log"
result noiommu_warning $? "$(grep -o 'WARNING: no IOMMU.*' "$log" | head -1)"
for t in identity factorial intx dma; do
	line=$(grep -E "edu\| edu: TEST $t " "$log" | head -1)
	echo "$line" | grep -q " PASS "
	result "uio_edu_$t" $? "$(echo "${line#*TEST $t }" | sed -E 's/^ *(PASS|FAIL) *//')"
done
stop_core
echo "---- core log ----"
cat "$log"
