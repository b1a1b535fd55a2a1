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
optional=" netfs fscache "

kernel=$(vm_kernel)
kver=$(vm_kernel_version "$kernel")
[[ -x $busybox ]] || die "$busybox not found (install busybox-static)"
if ldd "$busybox" >/dev/null 2>&1; then
	die "$busybox is dynamically linked; the initramfs needs busybox-static"
fi

# Resolve dependencies with the host's modules.dep; keep first occurrence.
modfiles=()
declare -A seen=()
for m in "${wanted[@]}"; do
	if ! deps=$(modprobe -S "$kver" --show-depends "$m" 2>&1) && [[ $optional == *" $m "* ]]; then
		continue
	fi
	[[ $deps != *FATAL* ]] ||
		die "cannot resolve module $m for $kver: $deps"
	while read -r kind path _; do
		[[ $kind == insmod ]] || continue # "builtin NAME": nothing to load
		[[ -z ${seen[$path]:-} ]] || continue
		seen[$path]=1
		modfiles+=("$path")
	done <<<"$deps"
done

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
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
	[[ $applet == busybox || -e $root/bin/$applet ]] || ln -s busybox "$root/bin/$applet"
done

# busybox insmod cannot read compressed modules: store them plain.
: >"$root/lib/modules/load.list"
for f in "${modfiles[@]}"; do
	base=$(basename "$f")
	case $f in
	*.ko) cp "$f" "$root/lib/modules/$base" ;;
	*.ko.xz) base=${base%.xz} && xz -dc "$f" >"$root/lib/modules/$base" ;;
	*.ko.zst) base=${base%.zst} && zstd -qdc "$f" >"$root/lib/modules/$base" ;;
	*.ko.gz) base=${base%.gz} && gzip -dc "$f" >"$root/lib/modules/$base" ;;
	*) die "unexpected module file $f" ;;
	esac
	echo "$base" >>"$root/lib/modules/load.list"
done

install -m 755 "$here/init" "$root/init"
# Kernel-requested module loads run in the initramfs; forward them to the
# host's modprobe and module tree inside the chroot.
cat >"$root/sbin/bulkhead-modprobe" <<'EOF'
#!/bin/sh
exec chroot /newroot /sbin/modprobe "$@"
EOF
chmod 755 "$root/sbin/bulkhead-modprobe"

mkdir -p "$(dirname "$out")"
(cd "$root" && find . -print0 | LC_ALL=C sort -z |
	cpio --null -o -H newc --owner=0:0 --reproducible --quiet) | gzip -6n >"$out.tmp.$$"
mv -f "$out.tmp.$$" "$out"
echo "$key" >"$out.key"
