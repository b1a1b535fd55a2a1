#!/usr/bin/env bash
# Installed like a Linux service: meson install into a staging root puts
# core, the command, every driver and bridge, libbulkhead with its headers
# and pkg-config file, a starting config and the systemd unit where a
# distribution expects them; a driver built outside the tree with nothing
# but pkg-config (examples/hello) links statically against the installed
# library; systemd-analyze verify accepts the unit; the installed core
# reads the installed config. Nothing is installed on this machine itself.
set -u
. "$(dirname "$0")/../vm/lib.sh"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
prefix=$(meson introspect --buildoptions "$BUILD" 2>/dev/null |
	python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')
libdir=$(meson introspect --buildoptions "$BUILD" 2>/dev/null |
	python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "libdir"))')
root=$stage$prefix

out=$(meson install -C "$BUILD" --destdir "$stage" --no-rebuild --quiet 2>&1)
rc=$?
missing=
for f in bin/bulkhead-core bin/bulkhead libexec/bulkhead/bulkhead-e1000e \
	libexec/bulkhead/bulkhead-nvme libexec/bulkhead/bulkhead-term-pty \
	"$libdir/libbulkhead.a" "$libdir/pkgconfig/bulkhead.pc" include/bulkhead/bulkhead.h \
	include/bulkhead/session.h etc/bulkhead/bulkhead.conf lib/systemd/system/bulkhead.service; do
	[ -e "$root/$f" ] || missing+=" $f"
done
[ $rc = 0 ] && [ -z "$missing" ]
result install_staged $? "meson install --destdir: exit $rc, $(find "$stage" -type f | wc -l) files under $prefix${missing:+; missing:$missing}${out:+; $out}"

# a driver from outside the tree: pkg-config, the installed headers and library
hello=$stage/hello
cp -r "$ROOT/examples/hello" "$hello"
export PKG_CONFIG_SYSROOT_DIR=$stage PKG_CONFIG_LIBDIR=$root/$libdir/pkgconfig
out=$(make -C "$hello" -s 2>&1)
rc=$?
# static: no program interpreter to load it
kind=
[ -x "$hello/bulkhead-hello" ] && ! readelf -l "$hello/bulkhead-hello" | grep -q INTERP &&
	kind="statically linked, $(stat -c %s "$hello/bulkhead-hello") bytes"
[ $rc = 0 ] && [ -n "$kind" ]
result install_out_of_tree_driver $? "examples/hello with pkg-config bulkhead ($(pkg-config --cflags --libs bulkhead)): make exit $rc, ${kind:-not built static}${out:+; $out}"
unset PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_LIBDIR

# the unit, against the staged tree and this machine's own systemd units
mkdir -p "$stage/usr/lib/systemd"
cp -a /usr/lib/systemd/system "$stage/usr/lib/systemd/"
out=$(systemd-analyze verify --man=no --root="$stage" "$root/lib/systemd/system/bulkhead.service" 2>&1)
rc=$?
# core reports readiness (sd_notify): systemd waits for READY=1
[ $rc = 0 ] && grep -qx "Type=notify" "$root/lib/systemd/system/bulkhead.service" &&
	grep -qx "Delegate=yes" "$root/lib/systemd/system/bulkhead.service" &&
	grep -qx "KillMode=mixed" "$root/lib/systemd/system/bulkhead.service"
result install_unit_verifies $? "systemd-analyze verify --root: exit $rc${out:+: $out}; $(grep -E '^(Type|ExecStart|ExecReload|Delegate|KillMode)=' "$root/lib/systemd/system/bulkhead.service" | tr '\n' ' ')"
# new-driver's templates, installed where an installed bulkhead looks for them
[ -f "$root/share/bulkhead/templates/driver/driver.c.in" ] && [ -f "$root/share/bulkhead/templates/driver/Makefile.in" ] &&
	[ -f "$root/share/bulkhead/templates/driver/driver.conf.in" ]
result install_templates $? "$(ls "$root/share/bulkhead/templates/driver" | tr '\n' ' ')"

out=$("$root/bin/bulkhead-core" --check -c "$root/etc/bulkhead/bulkhead.conf" 2>&1)
result install_config_parses $? "$out"

# the manual pages: installed where man looks, and rendered without a warning
mandir=$(meson introspect --buildoptions "$BUILD" 2>/dev/null |
	python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "mandir"))')
missing=
warnings=
for page in man1/bulkhead.1 man8/bulkhead-core.8 man5/bulkhead.conf.5; do
	f=$root/$mandir/$page
	[ -e "$f" ] || { missing+=" $page"; continue; }
	w=$(groff -man -ww -z "$f" 2>&1)
	[ -z "$w" ] || warnings+=" $page: $w"
done
[ -z "$missing" ] && [ -z "$warnings" ]
result install_man_pages $? "bulkhead(1), bulkhead-core(8), bulkhead.conf(5) in $prefix/$mandir, groff -man -ww: ${warnings:-no warnings}${missing:+; not installed:$missing}"
