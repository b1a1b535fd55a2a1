/* SPDX-License-Identifier: MIT */
/*
 * Legacy memory: what a PC's video BIOS reads besides its own device, as
 * copies core makes from /dev/mem of exactly the range the policy names
 * ('legacy = NAME' in a [component] section; core/legacy.c). A /dev/mem fd
 * never leaves core: it reaches all of memory. The copy is a sealed memfd;
 * the component maps it privately, so what it writes stays its own.
 *
 * bios-data  0x00000-0x004ff: the interrupt vector table and the BIOS data area
 * ebda       the extended BIOS data area, from BDA 0x40e up to 0xa0000
 * vga-rom    the video BIOS at 0xc0000, as long as its header says
 */
#ifndef BULKHEAD_LEGACY_H
#define BULKHEAD_LEGACY_H

#include <stddef.h>
#include <stdint.h>

enum bh_legacy_kind {
	BH_LEGACY_BIOS_DATA = 0,
	BH_LEGACY_EBDA = 1,
	BH_LEGACY_VGA_ROM = 2,
	BH_LEGACY_KINDS
};

#define BH_LEGACY_NAMES { "bios-data", "ebda", "vga-rom" }

/* a granted copy: phys..phys+size of the machine, at virt in this process */
struct bh_legacy_mem {
	uint64_t phys;
	size_t size;
	uint8_t *virt;
};

#endif
