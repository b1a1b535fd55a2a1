#!/bin/bash
# Build the test VM's initramfs: static busybox, the modules needed to mount
# the host root over 9p, and tools/vm/init as /init.
#
# usage: tools/vm/mkinitramfs.sh OUT.cpio.gz
#
# Up-to-date check: OUT.key records the kernel and the size/mtime of every
# input; when it matches, nothing is rebuilt (cheap enough to call from make
# on every run).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

die() {
	echo "mkinitramfs: $*" >&2
	exit 1
}

[[ $# -eq 1 && $1 != -* ]] || die "usage: $0 OUT.cpio.gz"
out=$1
busybox=${BUSYBOX:-/bin/busybox}
# Modules to load in order; overlay lets the guest see the host's /tmp.
wanted=(virtio_pci 9pnet 9pnet_virtio netfs fscache 9p overlay)
# ...of which some are gone in later kernels (fscache is part of netfs in 6.12)
VM_OPTIONAL_MODULES=" netfs fscache "

kernel=$(vm_kernel)
kver=$(vm_kernel_version "$kernel")
[[ -x $busybox ]] || die "$busybox not found (install busybox-static)"
if ldd "$busybox" >/dev/null 2>&1; then
	die "$busybox is dynamically linked; the initramfs needs busybox-static"
fi

# Resolve dependencies with the host's modules.dep; keep first occurrence.
mapfile -t modfiles <<<"$(vm_module_files "$kver" "${wanted[@]}")" && [[ -n ${modfiles[0]} ]] ||
	die "cannot resolve the modules ${wanted[*]} for $kver"

key=$({
	echo "$kernel $kver"
	stat -L -c '%n %s %Y' "$busybox" "$here/init" "$here/mkinitramfs.sh" \
		"$here/common.sh" "$kernel" "${modfiles[@]}"
} | sha256sum | cut -d' ' -f1)
if [[ -s $out && -f $out.key && $(<"$out.key") == "$key" ]]; then
	exit 0
fi

echo "mkinitramfs: building $out for $kver" >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
mkdir -p "$root"/{bin,sbin,dev,proc,sys,newroot,etc,tmp,lib/modules}
vm_busybox "$root" "$busybox" || die "no static busybox"

# busybox insmod cannot read compressed modules: store them plain.
: >"$root/lib/modules/load.list"
for f in "${modfiles[@]}"; do
	vm_module_copy "$f" "$root/lib/modules" >>"$root/lib/modules/load.list" || die "cannot copy $f"
done

install -m 755 "$here/init" "$root/init"
# Kernel-requested module loads run in the initramfs; forward them to the
# host's modprobe and module tree inside the chroot.
cat >"$root/sbin/bulkhead-modprobe" <<'EOF'
#!/bin/sh
exec chroot /newroot /sbin/modprobe "$@"
EOF
chmod 755 "$root/sbin/bulkhead-modprobe"

vm_cpio "$root" "$out"
echo "$key" >"$out.key"
