// SPDX-License-Identifier: MIT
/*
 * The VESA driver's emulated BIOS (drivers/vesa/bios.c) on the host: the
 * library loads and runs, and every access outside the grants stops it.
 * Core's grants are stood in for here; no port is granted, so nothing
 * reaches this machine's hardware.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bios.h"

static uint8_t rom[0x8000];
static uint8_t data[0x500];

/* core's copies, stood in for: a ROM whose int 10h answers AX=004Fh */
int bh_legacy_mem(struct bh_core *core, enum bh_legacy_kind kind, struct bh_legacy_mem *m)
{
	(void) core;
	if (kind == BH_LEGACY_VGA_ROM)
		*m = (struct bh_legacy_mem){.phys = 0xc0000, .size = sizeof(rom), .virt = rom};
	else if (kind == BH_LEGACY_BIOS_DATA)
		*m = (struct bh_legacy_mem){.phys = 0, .size = sizeof(data), .virt = data};
	else
		return -EACCES;
	return 0;
}

const char *bh_error(const struct bh_core *core)
{
	(void) core;
	return "not granted here";
}

static struct bios b;
static struct bh_core core;

static int setup(void **state)
{
	static const uint8_t int10[] = {0xb8, 0x4f, 0x00, 0xcf}; /* mov ax,004fh; iret */
	char why[160];

	(void) state;
	rom[0] = 0x55;
	rom[1] = 0xaa;
	memcpy(rom + 0x100, int10, sizeof(int10));
	data[0x40] = 0x00; /* vector 10h: c000:0100 */
	data[0x41] = 0x01;
	data[0x42] = 0x00;
	data[0x43] = 0xc0;
	return bios_open(&b, &core, why, sizeof(why));
}

static int run(const uint8_t *code, size_t n, struct bios_regs *r, char *why, size_t len)
{
	memset(r, 0, sizeof(*r));
	return bios_run(&b, code, n, r, why, len);
}

static void test_runs(void **state)
{
	static const uint8_t code[] = {0xb8, 0x34, 0x12, 0xf4}; /* mov ax,1234h; hlt */
	struct bios_regs r;
	char why[160];

	(void) state;
	assert_int_equal(run(code, sizeof(code), &r, why, sizeof(why)), 0);
	assert_int_equal(r.eax & 0xffff, 0x1234);
	r = (struct bios_regs){.eax = 0x4f00};
	assert_int_equal(bios_int10(&b, &r, why, sizeof(why)), 0);
	assert_int_equal(r.eax & 0xffff, 0x004f);
}

/* expect a refusal naming what */
static void refused(const uint8_t *code, size_t n, const char *what)
{
	struct bios_regs r;
	char why[160];

	assert_int_equal(run(code, n, &r, why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, what));
}

static void test_outside_refused(void **state)
{
	/* xor ax,ax; mov ds,ax; mov eax,100000h; mov al,[eax]; hlt */
	static const uint8_t high[] = {0x31, 0xc0, 0x8e, 0xd8, 0x66, 0xb8, 0x00, 0x00,
				       0x10, 0x00, 0x67, 0x8a, 0x00, 0xf4};
	static const uint8_t port[] = {0xe4, 0x60, 0xf4}; /* in al,60h; hlt */
	/* mov ax,0a000h; mov ds,ax; mov al,[0]; hlt: the VGA window */
	static const uint8_t window[] = {0xb8, 0x00, 0xa0, 0x8e, 0xd8, 0xa0, 0x00, 0x00, 0xf4};
	/* jmp f000:fff0: the system BIOS */
	static const uint8_t sysbios[] = {0xea, 0xf0, 0xff, 0x00, 0xf0};

	(void) state;
	refused(high, sizeof(high), "a read of 0x100000");
	refused(port, sizeof(port), "a read of port 0x60");
	refused(window, sizeof(window), "a read of 0xa0000");
	refused(sysbios, sizeof(sysbios), "a read of 0xffff0");
}

static void test_rom_and_scratch(void **state)
{
	/* mov ax,0c000h; mov ds,ax; mov byte [0],0; mov al,[0]; hlt */
	static const uint8_t rom_write[] = {0xb8, 0x00, 0xc0, 0x8e, 0xd8, 0xc6, 0x06,
					    0x00, 0x00, 0x00, 0xa0, 0x00, 0x00, 0xf4};
	/* mov ax,0e000h; mov ds,ax; mov byte [10h],5ah; mov al,[10h]; hlt */
	static const uint8_t scratch[] = {0xb8, 0x00, 0xe0, 0x8e, 0xd8, 0xc6, 0x06,
					  0x10, 0x00, 0x5a, 0xa0, 0x10, 0x00, 0xf4};
	/* mov ax,0e800h; mov ds,ax; mov al,[0]; hlt: a page it never wrote */
	static const uint8_t unwritten[] = {0xb8, 0x00, 0xe8, 0x8e, 0xd8, 0xa0, 0x00, 0x00, 0xf4};
	struct bios_regs r;
	char why[160];

	(void) state;
	assert_int_equal(run(rom_write, sizeof(rom_write), &r, why, sizeof(why)), 0);
	assert_int_equal(r.eax & 0xff, 0x55); /* dropped: the ROM still starts 55 aa */
	assert_true(b.rom_writes >= 1);
	assert_int_equal(run(scratch, sizeof(scratch), &r, why, sizeof(why)), 0);
	assert_int_equal(r.eax & 0xff, 0x5a);
	refused(unwritten, sizeof(unwritten), "a read of 0xe8000");
}

static void test_loop_stopped(void **state)
{
	static const uint8_t loop[] = {0xeb, 0xfe}; /* jmp $ */
	struct bios_regs r;
	char why[160];

	(void) state;
	assert_int_equal(run(loop, sizeof(loop), &r, why, sizeof(why)), -ETIMEDOUT);
	assert_non_null(strstr(why, "loops forever"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runs),
		cmocka_unit_test(test_outside_refused),
		cmocka_unit_test(test_rom_and_scratch),
		cmocka_unit_test(test_loop_stopped),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
