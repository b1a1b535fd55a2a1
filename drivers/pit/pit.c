// SPDX-License-Identifier: MIT
/*
 * pit: stage 1 of the classic plan, port I/O. The Intel 8254 PIT at ports
 * 0x40-0x43; core enabled exactly those ports for this process (ioperm
 * before exec). We program counter 0 as a free-running down-counter and
 * latch and read it repeatedly.
 *
 * 8254 datasheet: control word (port 0x43) bits 7-6 select the counter,
 * 5-4 the access mode (11 = low byte then high byte, 00 = counter latch),
 * 3-1 the mode (000 = mode 0, interrupt on terminal count: counts down
 * from the initial count and keeps counting after it), bit 0 BCD.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"

#define PIT_BASE 0x40
#define PIT_PORTS 4
#define PIT_COUNTER0 0
#define PIT_CONTROL 3
#define PIT_CW_C0_LOHI_MODE0 0x30
#define PIT_CW_C0_LATCH 0x00

static sigjmp_buf fault_jmp;

static void on_fault(int sig)
{
	siglongjmp(fault_jmp, sig);
}

static uint16_t pit_read(const struct bh_ioport *pit)
{
	uint8_t lo, hi;

	bh_outb(pit, PIT_CONTROL, PIT_CW_C0_LATCH);
	lo = bh_inb(pit, PIT_COUNTER0);
	hi = bh_inb(pit, PIT_COUNTER0);
	return (uint16_t)(hi << 8 | lo);
}

/* the CPU, not just core, enforces the grant: a port outside it faults */
static void probe_outside(uint16_t port)
{
	struct sigaction sa = { .sa_handler = on_fault };
	volatile uint8_t v = 0;

	sigaction(SIGSEGV, &sa, NULL);
	if (sigsetjmp(fault_jmp, 1) == 0) {
		v = inb(port);
		printf("pit: FAIL inb(0x%x) outside the grant returned 0x%02x\n", port, v);
	} else {
		printf("pit: inb(0x%x) outside the grant faulted (SIGSEGV): the I/O bitmap "
		       "holds only 0x40-0x43\n",
		       port);
	}
	signal(SIGSEGV, SIG_DFL);
}

int main(int argc, char **argv)
{
	struct bh_core core;
	struct bh_ioport pit, other;
	int reads = argc > 1 ? atoi(argv[1]) : 8;
	uint16_t prev = 0;
	int decreasing = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (reads < 2 || reads > 10000)
		reads = 8;
	if (bh_core_open(&core) < 0) {
		fprintf(stderr, "pit: %s\n", bh_error(&core));
		return 1;
	}
	printf("pit: running as uid %u (not root), component \"%s\"\n", getuid(),
	       core.hello.component);
	if (bh_io_port_isa(&core, PIT_BASE, PIT_PORTS, &pit) < 0) {
		fprintf(stderr, "pit: %s\n", bh_error(&core));
		return 1;
	}
	/* outside the policy: core refuses and says why */
	if (bh_io_port_isa(&core, 0x60, 1, &other) < 0)
		printf("pit: denied as expected: %s\n", bh_error(&core));
	else
		printf("pit: FAIL port 0x60 was granted\n");
	probe_outside(0x61);

	bh_outb(&pit, PIT_CONTROL, PIT_CW_C0_LOHI_MODE0);
	bh_outb(&pit, PIT_COUNTER0, 0xff);
	bh_outb(&pit, PIT_COUNTER0, 0xff);
	for (int i = 0; i < reads; i++) {
		struct timespec pause = { .tv_nsec = 2000000 };
		uint16_t v = pit_read(&pit);

		/* a down-counter; one wrap past zero is allowed */
		if (i && v != prev && (v < prev || prev < 0x4000))
			decreasing++;
		printf("pit: read %d: counter 0x%04x\n", i, v);
		prev = v;
		nanosleep(&pause, NULL);
	}
	printf("pit: counter decreasing in %d of %d intervals: %s\n", decreasing, reads - 1,
	       decreasing >= reads - 2 ? "PASS" : "FAIL");
	bh_core_close(&core);
	return decreasing >= reads - 2 ? 0 : 1;
}
