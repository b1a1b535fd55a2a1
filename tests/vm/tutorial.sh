#!/usr/bin/env bash
# vm: --devices edu --mem 768 --timeout 420
# docs/tutorial.md, followed as written: its code blocks that name a file
# (```c file=mydrv.c) are put one after the other into those files, the
# driver is built with its Makefile against libbulkhead installed into a
# staging root (pkg-config), and the installed core runs it with the
# tutorial's config: the driver's MMIO, interrupt and DMA steps work,
# `bulkhead trace` shows its accesses by the names it declared, and a
# crash leaves a report.
set -u
. "$(dirname "$0")/lib.sh"

B=$CLI
dir=$WORK/tutorial
log=$WORK/tutorial.log
rm -rf "$dir"
mkdir -p "$dir"

# ---- the blocks as written ----
awk -v dir="$dir" '
	/^```[a-z]+ file=/ { split($2, kv, "="); out = dir "/" kv[2]; grab = 1; next }
	/^```/ { grab = 0; next }
	grab { print >> out }
' "$ROOT/docs/tutorial.md"
files=$(cd "$dir" && ls | tr '\n' ' ')
stage=$WORK/stage
pc=$(install_staged "$stage")
prefix=$(sed -n 's/^prefix=//p' "$stage"/usr/local/lib/*/pkgconfig/bulkhead.pc)
PKG_CONFIG_SYSROOT_DIR=$stage PKG_CONFIG_LIBDIR=$pc make -C "$dir" -s >"$WORK/tutorial-build.out" 2>&1
rc=$?
[ $rc = 0 ] && [ -x "$dir/bulkhead-mydrv" ] && [ -f "$dir/mydrv.conf" ]
result tutorial_builds $? "files from docs/tutorial.md: $files($(wc -l <"$dir/mydrv.c") lines of C); make: exit $rc $(head -c 300 "$WORK/tutorial-build.out" | tr '\n' ' ')"

# ---- run by the installed core, with the tutorial's config ----
CORE=$stage$prefix/bin/bulkhead-core start_core "$dir/mydrv.conf" "$log" ||
	{ result tutorial_runs 1 "core did not start: $(tail -3 "$log" | tr '\n' ' ')"; exit 1; }
wait_for "$log" "mydrv\| mydrv: (10! = [0-9]+; ready|something failed)" 90
said=$(grep -E "^mydrv\| mydrv: " "$log" | sed 's/^mydrv| mydrv: //' | tr '\n' ';')
grep -q "mydrv| mydrv: 10! = 3628800; ready" "$log" && grep -qE "mydrv: edu [0-9]+\.[0-9]+, liveness 0xedcba987" "$log" &&
	grep -q "mydrv: interrupt taken, status 0x1234" "$log" && grep -qE "mydrv: 1024 bytes .*: same" "$log"
result tutorial_runs $? "$said"

out=$("$B" trace mydrv --once --last 64)
echo "$out" | tail -8
echo "$out" | grep -qE "write64 +mmio 0:BAR0 +\+0x0098 MYDRV_DMA_CMD" && echo "$out" | grep -q "irq      vector 0" &&
	echo "$out" | grep -qE "read32 +mmio 0:BAR0 +\+0x0008 MYDRV_FACTORIAL +-> 0x00375f00"
result tutorial_trace $? "$(echo "$out" | grep -c '^#') accesses shown, e.g. $(echo "$out" | grep MYDRV_FACTORIAL | tail -1)"

# ---- step 9: a crash leaves a report, and the driver comes back ----
pid=$(field mydrv pid)
kill -SEGV "$pid"
wait_for "$log" '"mydrv" crashed: SIGSEGV' 30
wait_for_count "$log" "mydrv\| mydrv: 10! = 3628800; ready" 2 90
js=$("$B" crashes mydrv --json)
echo "$js" | jq -e '.[0] | .signal == "SIGSEGV" and ([.accesses[].name] | index("MYDRV_DMA_CMD") != null)' >/dev/null &&
	[ "$(field mydrv restarts)" = 1 ]
result tutorial_crash $? "$(echo "$js" | jq -c '.[0] | {how, signal, function, last: .accesses[-1].name}' 2>&1), restarts $(field mydrv restarts)"
stop_core
