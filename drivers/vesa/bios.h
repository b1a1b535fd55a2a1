/* SPDX-License-Identifier: MIT */
/*
 * The card's video BIOS, run in libx86emu with everything it touches
 * confined to the grants: memory below 0xa0000 is the driver's own (the
 * interrupt vectors, BIOS data area and EBDA copied in from core's grants,
 * the rest zero: scratch, stack and buffers), the option ROM is core's copy
 * (read-only), other upper memory is private scratch that reads back only
 * what the BIOS wrote (its stack), I/O goes to the hardware only for the
 * ports the policy grants (ioperm). Any other access stops the BIOS and is
 * reported: the VGA window 0xa0000-0xbffff, anything above 1 MiB, a port
 * outside the grants.
 */
#ifndef VESA_BIOS_H
#define VESA_BIOS_H

#include <stdbool.h>
#include <stdint.h>

#include "bulkhead/bulkhead.h"

#define BIOS_LOW_END 0xa0000u
#define BIOS_SCRATCH 0xc0000u /* upper memory: ROMs, and the BIOS's scratch */
#define BIOS_HIGH_END 0x100000u
/* where the driver puts its things in the emulated conventional memory */
#define BIOS_TRAMPOLINE 0x0600u /* int 10h; hlt */
#define BIOS_STACK_TOP 0x7000u
#define BIOS_BUF_SEG 0x0800u /* 0x8000: VBE info and mode info blocks */

struct x86emu_s;

struct bios_regs {
	uint32_t eax, ebx, ecx, edx, esi, edi;
	uint16_t es;
};

struct bios {
	struct x86emu_s *emu;
	uint8_t *low; /* BIOS_LOW_END bytes */
	struct bh_legacy_mem rom;
	uint8_t *scratch; /* upper memory the BIOS wrote: its own, nothing of the machine's */
	uint8_t scratch_used[(BIOS_HIGH_END - BIOS_SCRATCH) / 4096];
	unsigned int scratch_pages;
	const struct bh_isa_range *ports;
	unsigned int nports;
	uint16_t debug_port; /* the BIOS's debug console, or 0: kept from the hardware */
	char debug_line[120];
	unsigned int debug_len, debug_lines;
	uint64_t steps;		 /* instructions emulated, all calls */
	uint64_t port_io;	 /* port accesses passed to the hardware */
	unsigned int refusals;	 /* accesses outside the grants */
	unsigned int rom_writes; /* writes to the ROM, dropped as the real shadow drops them */
	char refused[128];	 /* the first refusal of the last call */
};

/* load libx86emu, take the grants from core; 0 or -errno with why */
int bios_open(struct bios *b, struct bh_core *core, char *why, size_t len);

/*
 * int 10h with r, through the interrupt vector table as a real-mode caller
 * would; r gets the registers back. 0, or -EPERM (an access outside the
 * grants, why says which) or -ETIMEDOUT (it ran too long, or looped)
 */
int bios_int10(struct bios *b, struct bios_regs *r, char *why, size_t len);

/* code (16-bit real mode, ending in hlt) at the trampoline, run like int10 */
int bios_run(struct bios *b, const uint8_t *code, size_t n, struct bios_regs *r, char *why,
	     size_t len);

/* n bytes at address a as the BIOS sees them, if granted; else NULL */
const uint8_t *bios_ptr(const struct bios *b, uint32_t a, size_t n);

/* a real-mode far pointer (segment << 16 | offset) as an address */
static inline uint32_t bios_linear(uint32_t segoff)
{
	return (segoff >> 16) * 16 + (segoff & 0xffff);
}

#endif
