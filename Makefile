# bulkhead: a thin wrapper around meson + ninja, and the two commands the README promises.
BUILD ?= build

.PHONY: all deps build check demo unit clean format

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

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)
