/* SPDX-License-Identifier: MIT */
/*
 * The card's video BIOS, run in libx86emu with everything it touches
 * confined to the grants: memory below 0xa0000 is the driver's own (the
 * interrupt vectors, BIOS data area and EBDA copied in from core's grants,
 * the rest zero: scratch, stack and buffers), the option ROM is core's copy
 * (read-only), I/O goes to the hardware only for the ports the policy
 * grants (ioperm). Any other access stops the BIOS and is reported.
 */
#ifndef VESA_BIOS_H
#define VESA_BIOS_H

#include <stdbool.h>
#include <stdint.h>

#include "bulkhead/bulkhead.h"

#define BIOS_LOW_END 0xa0000u
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
	const struct bh_isa_range *ports;
	unsigned int nports;
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

/* n bytes at real-mode seg:off, if they lie in granted memory; else NULL */
const uint8_t *bios_ptr(const struct bios *b, uint32_t segoff, size_t n);

#endif
