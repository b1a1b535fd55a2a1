// SPDX-License-Identifier: MIT
/*
 * The video BIOS in libx86emu, confined (see bios.h). libx86emu is
 * Debian's libx86emu.so.3, linked as it ships (core gives a dynamic
 * component its loader and libraries: core/libs.c); its memory and port
 * accesses all go through memio() below, which is the confinement:
 * libx86emu's own page memory is not used.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <time.h>
#include <x86emu.h>

#include "bios.h"

/* a BIOS call that runs longer is broken or hostile: VBE calls take thousands */
#define BIOS_MAX_STEPS 20000000ull

static struct bios *the_bios; /* memio() has only the emulator */

static void refuse(struct bios *b, x86emu_t *emu, const char *fmt, uint32_t addr,
		   unsigned int n)
{
	if (!b->refused[0])
		snprintf(b->refused, sizeof(b->refused), fmt, addr, n, emu->x86.saved_cs,
			 emu->x86.saved_eip);
	b->refusals++;
	x86emu_stop(emu);
}

static bool port_granted(const struct bios *b, uint32_t port, unsigned int n)
{
	for (unsigned int i = 0; i < b->nports; i++)
		if (port >= b->ports[i].base &&
		    port + n <= (uint32_t) b->ports[i].base + b->ports[i].count)
			return true;
	return false;
}

/* the BIOS's debug console (SeaBIOS writes it on QEMU): its lines in our log, no hardware */
static void debug_char(struct bios *b, uint32_t c)
{
	if (c != '\n' && b->debug_len < sizeof(b->debug_line) - 1) {
		b->debug_line[b->debug_len++] = c >= 0x20 && c < 0x7f ? (char) c : '.';
		return;
	}
	b->debug_line[b->debug_len] = 0;
	if (b->debug_lines++ < 16)
		printf("vesa: BIOS debug: %s\n", b->debug_line);
	b->debug_len = 0;
}

static unsigned int port_io(struct bios *b, x86emu_t *emu, uint32_t port, uint32_t *val,
			    unsigned int n, bool out)
{
	if (b->debug_port && port == b->debug_port) {
		if (out)
			debug_char(b, *val & 0xff);
		else
			*val = 0xffffffffu;
		return 0;
	}
	if (!port_granted(b, port, n)) {
		refuse(b, emu,
		       out ? "a write to port 0x%x (%u bytes), outside the grants, at %04x:%04x"
			   : "a read of port 0x%x (%u bytes), outside the grants, at %04x:%04x",
		       port, n);
		*val = out ? *val : 0xffffffffu;
		return 1;
	}
	b->port_io++;
	if (out) {
		if (n == 1)
			outb((uint8_t) *val, (uint16_t) port);
		else if (n == 2)
			outw((uint16_t) *val, (uint16_t) port);
		else
			outl(*val, (uint16_t) port);
	} else {
		*val = n == 1 ? inb((uint16_t) port) : n == 2 ? inw((uint16_t) port) : inl((uint16_t) port);
	}
	return 0;
}

const uint8_t *bios_ptr(const struct bios *b, uint32_t a, size_t n)
{
	if (a < BIOS_LOW_END && n <= BIOS_LOW_END - a)
		return b->low + a;
	if (a >= b->rom.phys && a - b->rom.phys < b->rom.size && n <= b->rom.size - (a - b->rom.phys))
		return b->rom.virt + (a - b->rom.phys);
	return NULL;
}

/*
 * upper memory outside the grants (0xc0000-0xfffff, less the ROM): private
 * scratch pages, such as the stack SeaVGABIOS keeps there. A page holds
 * nothing of the machine's: the BIOS may read back only what it wrote, and
 * a page it never wrote is refused like any other address.
 */
static uint8_t *scratch(struct bios *b, uint32_t a, unsigned int n, bool write)
{
	uint32_t page = (a - BIOS_SCRATCH) / 4096;

	if (a < BIOS_SCRATCH || a + n > BIOS_HIGH_END || page != (a + n - 1 - BIOS_SCRATCH) / 4096)
		return NULL;
	if (write && !b->scratch_used[page]) {
		b->scratch_used[page] = 1;
		b->scratch_pages++;
	}
	return b->scratch_used[page] ? b->scratch + (a - BIOS_SCRATCH) : NULL;
}

/* every memory and port access of the emulated BIOS */
static unsigned memio(x86emu_t *emu, u32 addr, u32 *val, unsigned type)
{
	struct bios *b = the_bios;
	unsigned int size = type & 0xff, kind = type & ~0xffu;
	unsigned int n = size == X86EMU_MEMIO_16 ? 2 : size == X86EMU_MEMIO_32 ? 4 : 1;
	uint8_t *p;

	if (kind == X86EMU_MEMIO_I || kind == X86EMU_MEMIO_O)
		return port_io(b, emu, addr, val, n, kind == X86EMU_MEMIO_O);
	p = (uint8_t *) bios_ptr(b, addr, n);
	if (!p)
		p = scratch(b, addr, n, kind == X86EMU_MEMIO_W);
	if (!p) {
		refuse(b, emu,
		       kind == X86EMU_MEMIO_W ? "a write of 0x%x (%u bytes), outside the grants, "
						"at %04x:%04x"
					      : "a read of 0x%x (%u bytes), outside the grants, at "
						"%04x:%04x",
		       addr, n);
		if (kind != X86EMU_MEMIO_W)
			*val = 0xffffffffu;
		return 1;
	}
	if (kind == X86EMU_MEMIO_W) {
		/* the shadowed ROM is read-only on the machine too */
		if (p >= b->rom.virt && p < b->rom.virt + b->rom.size)
			b->rom_writes++;
		else
			memcpy(p, val, n);
		return 0;
	}
	*val = 0;
	memcpy(val, p, n);
	return 0;
}

/*
 * before each instruction: after a refusal the BIOS runs no further (the
 * emulator answers a refused access with a fault, whose handler is not ours
 * to run)
 */
static int code_check(x86emu_t *emu)
{
	(void) emu;
	return the_bios->refused[0] != 0;
}

int bios_open(struct bios *b, struct bh_core *core, char *why, size_t len)
{
	struct bh_legacy_mem data, ebda;

	b->low = calloc(1, BIOS_LOW_END);
	b->scratch = calloc(1, BIOS_HIGH_END - BIOS_SCRATCH);
	if (!b->low || !b->scratch)
		return -ENOMEM;
	/* what the BIOS reads: the vectors and data area, its EBDA if granted, its ROM */
	if (bh_legacy_mem(core, BH_LEGACY_BIOS_DATA, &data) < 0 ||
	    bh_legacy_mem(core, BH_LEGACY_VGA_ROM, &b->rom) < 0) {
		snprintf(why, len, "%s", bh_error(core));
		return -EACCES;
	}
	memcpy(b->low + data.phys, data.virt, data.size);
	if (bh_legacy_mem(core, BH_LEGACY_EBDA, &ebda) == 0 && ebda.phys + ebda.size <= BIOS_LOW_END)
		memcpy(b->low + ebda.phys, ebda.virt, ebda.size);
	else
		printf("vesa: no EBDA (%s): the BIOS gets zeroes there\n", bh_error(core));
	b->ports = core->hello.isa;
	b->nports = core->hello.isa_count < BH_MAX_ISA ? core->hello.isa_count : BH_MAX_ISA;
	b->emu = x86emu_new(0, 0);
	if (!b->emu) {
		snprintf(why, len, "x86emu_new failed");
		return -ENOMEM;
	}
	the_bios = b;
	x86emu_set_memio_handler(b->emu, memio);
	x86emu_set_code_handler(b->emu, code_check);
	printf("vesa: libx86emu %s; grants: vectors and BIOS data 0x%05llx-0x%05llx, "
	       "EBDA %s, video BIOS 0x%05llx-0x%05llx, %u port range(s)\n",
	       "3 (Debian's shared library)", (unsigned long long) data.phys,
	       (unsigned long long) (data.phys + data.size - 1), ebda.size ? "copied" : "none",
	       (unsigned long long) b->rom.phys, (unsigned long long) (b->rom.phys + b->rom.size - 1),
	       b->nports);
	return 0;
}

static int run_at(struct bios *b, struct bios_regs *r, char *why, size_t len)
{
	x86emu_t *emu = b->emu;
	uint64_t start = emu->x86.R_TSC;
	unsigned int flags;

	b->refused[0] = 0;
	emu->x86.R_EAX = r->eax;
	emu->x86.R_EBX = r->ebx;
	emu->x86.R_ECX = r->ecx;
	emu->x86.R_EDX = r->edx;
	emu->x86.R_ESI = r->esi;
	emu->x86.R_EDI = r->edi;
	emu->x86.R_ESP = BIOS_STACK_TOP;
	emu->x86.R_EBP = 0;
	emu->x86.R_EIP = BIOS_TRAMPOLINE;
	emu->x86.R_FLG = 0x0202; /* IF, and the reserved bit */
	x86emu_set_seg_register(emu, emu->x86.R_CS_SEL, 0);
	x86emu_set_seg_register(emu, emu->x86.R_SS_SEL, 0);
	x86emu_set_seg_register(emu, emu->x86.R_DS_SEL, 0);
	x86emu_set_seg_register(emu, emu->x86.R_ES_SEL, r->es);
	emu->max_instr = start + BIOS_MAX_STEPS;
	flags = x86emu_run(emu, X86EMU_RUN_MAX_INSTR | X86EMU_RUN_LOOP);
	b->steps += emu->x86.R_TSC - start;
	r->eax = emu->x86.R_EAX;
	r->ebx = emu->x86.R_EBX;
	r->ecx = emu->x86.R_ECX;
	r->edx = emu->x86.R_EDX;
	r->esi = emu->x86.R_ESI;
	r->edi = emu->x86.R_EDI;
	r->es = emu->x86.R_ES;
	if (b->refused[0]) {
		snprintf(why, len, "the BIOS was stopped: %s", b->refused);
		return -EPERM;
	}
	if (flags & (X86EMU_RUN_MAX_INSTR | X86EMU_RUN_LOOP | X86EMU_RUN_NO_CODE)) {
		snprintf(why, len, "the BIOS %s at %04x:%04x",
			 flags & X86EMU_RUN_LOOP	 ? "loops forever"
			 : flags & X86EMU_RUN_NO_CODE ? "ran into no code"
						      : "ran over 20 million instructions",
			 emu->x86.R_CS, emu->x86.R_EIP);
		return -ETIMEDOUT;
	}
	return 0;
}

int bios_run(struct bios *b, const uint8_t *code, size_t n, struct bios_regs *r, char *why,
	     size_t len)
{
	memcpy(b->low + BIOS_TRAMPOLINE, code, n);
	return run_at(b, r, why, len);
}

int bios_int10(struct bios *b, struct bios_regs *r, char *why, size_t len)
{
	static const uint8_t int10[] = {0xcd, 0x10, 0xf4}; /* int 10h; hlt */

	return bios_run(b, int10, sizeof(int10), r, why, len);
}
