# shellcheck shell=bash
# Shared helpers for tools/vm/run and tools/vm/mkinitramfs.sh (sourced, not run).

# The guest boots the host's own kernel and loads modules from the host's
# /lib/modules over 9p, so the kernel must have a matching module tree.
# BULKHEAD_VM_KERNEL=/boot/vmlinuz-X overrides the choice; a series such as
# BULKHEAD_VM_KERNEL=6.12 (tools/vm/run --kernel 6.12) picks the newest of
# that series in /boot or unpacked by tools/vm/get-kernel. The default is
# the newest kernel in /boot: get-kernel never puts one there.
vm_kernel() {
	local want=${BULKHEAD_VM_KERNEL:-} k v best= series=
	if [[ -n $want && ! $want =~ ^[0-9]+\.[0-9]+$ ]]; then
		printf '%s\n' "$want"
		return
	fi
	series=$want
	for k in /boot/vmlinuz-* ${series:+"${BULKHEAD_KERNEL_CACHE:-/var/cache/bulkhead}"/linux-*/boot/vmlinuz-*}; do
		[[ -r $k ]] || continue
		v=${k##*/vmlinuz-}
		[[ -z $series || $v == "$series".* ]] || continue
		[[ -e /lib/modules/$v/modules.dep ]] || continue
		best+="$v $k"$'\n'
	done
	best=$(printf '%s' "$best" | sort -V -k1,1 | tail -n 1 | cut -d' ' -f2-)
	if [[ -z $best && -n $series ]]; then
		echo "vm: no kernel $series.* with modules in /lib/modules: run tools/vm/get-kernel $series (as root; tools/install-deps does)" >&2
		return 1
	fi
	if [[ -z $best ]]; then
		echo "vm: no readable /boot/vmlinuz-* with modules in /lib/modules (install linux-image-amd64)" >&2
		return 1
	fi
	printf '%s\n' "$best"
}

vm_kernel_version() {
	local k=${1:-$(vm_kernel)}
	printf '%s\n' "${k##*/vmlinuz-}"
}

# Under TCG, decompressing a bzImage takes ~3 s of every boot. Debian kernels
# have CONFIG_PVH, so QEMU can boot the uncompressed ELF vmlinux directly:
# extract it once into CACHE_DIR and print its path; print the bzImage path
# if that is not possible (slower, but works).
vm_boot_kernel() { # KERNEL CACHE_DIR
	local k=$1 dir=$2 v out off magic unpack
	v=$(vm_kernel_version "$k")
	out=$dir/vmlinux-$v
	if [[ -s $out && $out -nt $k ]]; then
		printf '%s\n' "$out"
		return
	fi
	if ! grep -qx 'CONFIG_PVH=y' "$(dirname "$k")/config-$v" 2>/dev/null; then
		printf '%s\n' "$k"
		return
	fi
	mkdir -p "$dir"
	# The payload is the first compressed stream whose output is an ELF file.
	for magic in $'\xfd7zXZ' $'\x28\xb5\x2f\xfd' $'\x1f\x8b\x08'; do
		case $magic in
		$'\xfd'*) unpack='xz -dc' ;;
		$'\x28'*) unpack='zstd -qdc' ;;
		*) unpack='gzip -dc' ;;
		esac
		for off in $(LC_ALL=C grep -abo -- "$magic" "$k" 2>/dev/null | cut -d: -f1 | head -n 4); do
			tail -c +$((off + 1)) "$k" | $unpack >"$out.tmp.$$" 2>/dev/null || true
			if [[ $(head -c 4 "$out.tmp.$$" 2>/dev/null) == $'\x7fELF' ]]; then
				mv -f "$out.tmp.$$" "$out"
				printf '%s\n' "$out"
				return
			fi
		done
	done
	rm -f "$out.tmp.$$"
	printf '%s\n' "$k"
}

# vm_module_files KVER MODULE...: the module files to load, dependencies
# first, each once, one a line (from the host's modules.dep); the modules
# in $VM_OPTIONAL_MODULES (" a b ") are skipped where KVER has none of them
vm_module_files() {
	local kver=$1 m deps kind path _
	shift
	declare -A seen=()
	for m in "$@"; do
		if ! deps=$(modprobe -S "$kver" --show-depends "$m" 2>&1); then
			[[ ${VM_OPTIONAL_MODULES:-} == *" $m "* ]] && continue
			echo "cannot resolve module $m for $kver: $deps" >&2
			return 1
		fi
		while read -r kind path _; do
			[[ $kind == insmod ]] || continue # "builtin NAME": nothing to load
			[[ -z ${seen[$path]:-} ]] || continue
			seen[$path]=1
			printf '%s\n' "$path"
		done <<<"$deps"
	done
}

# vm_module_copy FILE DIR: FILE into DIR, uncompressed (busybox insmod reads
# plain modules only); prints the name it got there
vm_module_copy() {
	local f=$1 dir=$2 base
	base=$(basename "$f")
	case $f in
	*.ko) cp "$f" "$dir/$base" ;;
	*.ko.xz) base=${base%.xz} && xz -dc "$f" >"$dir/$base" ;;
	*.ko.zst) base=${base%.zst} && zstd -qdc "$f" >"$dir/$base" ;;
	*.ko.gz) base=${base%.gz} && gzip -dc "$f" >"$dir/$base" ;;
	*) echo "unexpected module file $f" >&2 && return 1 ;;
	esac
	printf '%s\n' "$base"
}

# vm_cpio DIR OUT: DIR as a gzipped newc archive, reproducibly
vm_cpio() {
	local dir=$1 out=$2
	mkdir -p "$(dirname "$out")"
	(cd "$dir" && find . -print0 | LC_ALL=C sort -z |
		cpio --null -o -H newc --owner=0:0 --reproducible --quiet) | gzip -6n >"$out.tmp.$$"
	mv -f "$out.tmp.$$" "$out"
}

# vm_busybox DIR BUSYBOX [APPLETS]: static busybox as DIR/bin/busybox, with a
# link for each applet unless APPLETS is 0 (one process per link: slow under
# TCG; a guest can run "busybox --install -s /bin" itself)
vm_busybox() {
	local root=$1 busybox=$2 applets=${3:-1} applet
	[[ -x $busybox ]] || { echo "$busybox not found (install busybox-static)" >&2 && return 1; }
	if ldd "$busybox" >/dev/null 2>&1; then
		echo "$busybox is dynamically linked; an initramfs needs busybox-static" >&2
		return 1
	fi
	mkdir -p "$root/bin"
	cp "$busybox" "$root/bin/busybox"
	((applets)) || return 0
	for applet in $("$busybox" --list); do
		[[ $applet == busybox || -e $root/bin/$applet ]] || ln -s busybox "$root/bin/$applet"
	done
}
