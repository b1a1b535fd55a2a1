#!/usr/bin/env bash
# make bench-fb's guest side (tools/vm/run --devices bochs-display,bochs-display).
# Full-screen 1024x768x32 frames per second, in one boot:
# - session: fb-pattern owns the screen of bulkhead's isolated bochs driver
#   (the first bochs-display) and reports the whole screen as damage, one
#   update in flight: the driver copies it to video memory and acknowledges;
#   once alone, once with fb-vnc watching (a capture reader);
# - fb-vnc: a VNC viewer (vnc-type, libvncclient) asks fb-vnc for the whole
#   screen again each time it has come: capture buffer to RFB Raw to the
#   viewer over loopback TCP;
# - kernel: the guest kernel's own bochs DRM driver on the second
#   bochs-display, a dumb buffer in video memory written whole per frame
#   (drm-bench), as a fbdev or DRM client would.
# Prints "bench: NAME fps VALUE" lines (and the tools' own lines).
set -u
. "$(dirname "$0")/../../tests/vm/lib.sh"

N=${BENCH_FRAMES:-200}
SECS=${BENCH_SECONDS:-10}
mapfile -t devs < <(pci_devs 0x1234:0x1111)
if [ ${#devs[@]} -lt 2 ]; then
	echo "bench: error: two bochs-display devices wanted, ${#devs[@]} found"
	exit 1
fi
conf=$WORK/bench-fb.conf
log=$WORK/bench-fb.log
# config WITH_VNC: the driver and fb-pattern, and fb-vnc watching if 1
config() {
	cat <<CONF
[core]
backend = vfio
control = /run/bulkhead/core.sock

[component "bochs"]
exec = $BUILD/drivers/bochs/bulkhead-bochs
args = --mode 1024x768x32
device = ${devs[0]}
provides = framebuffer
provides = capture

[component "pattern"]
exec = $BUILD/tests/bulkhead-fb-pattern
args = --bench $N
session = framebuffer bochs
CONF
	[ "$1" = 1 ] && cat <<CONF

[component "vnc"]
exec = $BUILD/bridges/fb-vnc/bulkhead-fb-vnc
session = capture bochs
listen = 127.0.0.1:5900
CONF
}
# the session alone, then with fb-vnc as a capture reader (the driver copies
# each frame to it too), then fb-vnc's own rate to a viewer
for vnc in 0 1; do
	config $vnc >"$conf"
	start_core "$conf" "$log" || exit 1
	wait_for "$log" "pattern\| fb-pattern: bench: [0-9]+ updates of 64x16" $((60 + N))
	line=$(grep -oE "fb-pattern: bench: [0-9]+ full-screen.*" "$log" | tail -1)
	echo "$line"
	name=session
	[ $vnc = 1 ] && name=session+reader
	[[ $line =~ :\ ([0-9.]+)\ per\ second ]] && echo "bench: $name fps ${BASH_REMATCH[1]}"
	if [ $vnc = 1 ]; then
		wait_for "$log" "vnc\| fb-vnc: ready" 30
		line=$("$BUILD/tests/vnc-type" 127.0.0.1 5900 --bench "$SECS" 2>&1 | grep "bench:")
		echo "$line"
		[[ $line =~ :\ ([0-9.]+)\ per\ second ]] && echo "bench: fb-vnc fps ${BASH_REMATCH[1]}"
	fi
	stop_core
done

# the kernel's driver, on the other device (the first is vfio-pci's now)
modprobe bochs
card=
for _ in $(seq 50); do
	for c in /dev/dri/card*; do [ -e "$c" ] && card=$c; done
	[ -n "$card" ] && break
	sleep 0.2
done
if [ -z "$card" ]; then
	echo "bench: error: the kernel's bochs driver made no /dev/dri/card*"
	exit 1
fi
line=$("$BUILD/tests/drm-bench" "$card" 1024x768 "$N" 2>&1)
echo "$line"
[[ $line =~ :\ ([0-9.]+)\ per\ second ]] && echo "bench: kernel fps ${BASH_REMATCH[1]}"
exit 0
