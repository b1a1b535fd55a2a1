#!/usr/bin/env bash
# vm: --devices vga --monitor --mem 1024
# tests/vm/display.sh on QEMU's VGA (class 0x0300): the same driver, with
# the attribute controller's unblank step through the VGA ports in BAR2; the
# VGA is the boot display, so the config names it by address, take-from-host.
exec "$(dirname "$0")/display.sh" "$@"
