# bulkhead: a thin wrapper around meson + ninja, and the two commands the README promises.
BUILD ?= build

.PHONY: all deps build check demo unit fuzz bench-ps bench-nic bench-fb bench-usb bench-accessors bench-vm clean format

all: build

deps:
	@tools/install-deps

build: deps
	@[ -f $(BUILD)/build.ninja ] || meson setup $(BUILD) >/dev/null
	@ninja -C $(BUILD) >/dev/null

# unit tests, host tests, then the VM tests; ends with "N passed, N failed"
check: build
	@tests/run-all

unit: build
	@meson test -C $(BUILD) --print-errorlogs

# boots the QEMU test machine and shows the drivers at work
demo: build
	@tools/demo

# the fault-injection campaign, in one test-machine boot (FAULTS injections, default 1000;
# FAULT_TARGETS="e1000e" limits it to some drivers, default all)
FAULTS ?= 1000
FAULT_TARGETS ?=
faults: build
	@tools/vm/run --devices edu:rp,e1000e,e1000e,nvme:rp,pci-serial:echo,xhci-ccid:rp:card,bochs-display,vga --mem 1536 --timeout 5400 --env FAULTS=$(FAULTS) --env FAULT_TARGETS="$(FAULT_TARGETS)" tests/vm/faults.sh

# every libFuzzer target for FUZZ_SECONDS each (default 600), growing the corpus in the repo
FUZZ_SECONDS ?= 600
fuzz:
	@tools/install-deps fuzz
	@[ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false >/dev/null
	@ninja -C build-fuzz >/dev/null
	@tests/fuzz/run $(FUZZ_SECONDS)

# packet-stream throughput between two processes, next to DPDK's rte_ring;
# RESULT lines on stdout, a table in bench/results/packet-stream.md
bench-ps: build
	@bench/packet-stream/install-deps
	@# meson looks for libdpdk at setup: look again once it is installed
	@if pkg-config --exists libdpdk && ! grep -q packet-stream/rte_ring.c $(BUILD)/compile_commands.json; \
		then meson setup --reconfigure $(BUILD) >/dev/null; fi
	@ninja -C $(BUILD) bench/packet-stream/bench-ps >/dev/null
	@$(BUILD)/bench/packet-stream/bench-ps -o bench/results/packet-stream.md

# the register accessors with the flight recorder off and on, against plain volatile
# accesses (host only); RESULT lines, a table in bench/results/accessors.md
bench-accessors: build
	@$(BUILD)/bench/accessors/bench-accessors -o bench/results/accessors.md

# the network benchmark: kernel e1000e vs bulkhead's e1000e + nic-tap, one VM boot
bench-nic: build
	@bench/nic/run

# storage: kernel nvme vs bulkhead via nbd vs the direct client, in one boot
bench-block: build
	@bench/block/run

# the display: frames per second through the session and fb-vnc vs the kernel's bochs DRM, one boot
bench-fb: build
	@bench/fb/run

# USB: usb-storage and the smart-card reader through bulkhead's xhci driver and usb-usbip
# vs the kernel's own xhci_hcd, in one boot
bench-usb: build
	@bench/usb/run

# driver VM vs native: TCP through Linux's e1000e in a VM (vm-nic + nic-tap),
# bulkhead's e1000e + nic-tap and the kernel's e1000e; the VM's boot; one boot
bench-vm: build
	@bench/vm/run

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) build-asan build-fuzz

# re-render docs/architecture.svg from docs/architecture.dot (Graphviz: apt-get install graphviz);
# tests/host/docs.sh fails while the committed .svg differs from what the .dot renders to
.PHONY: docs
docs:
	@command -v dot >/dev/null || { echo "make docs: needs Graphviz's dot: apt-get install graphviz" >&2; exit 1; }
	@dot -Tsvg docs/architecture.dot | sed "1a <!-- rendered from docs/architecture.dot sha256 $$(sha256sum <docs/architecture.dot | cut -d' ' -f1) -->" >docs/architecture.svg
