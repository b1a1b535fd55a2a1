// SPDX-License-Identifier: MIT
/*
 * ioport-probe: io_port through a PCI I/O BAR, on QEMU's pci-serial
 * (1b36:0002, a 16550 UART behind BAR0). Writes and reads back the
 * scratch register and reads the line status register, which an idle
 * 16550 reports as 0x60 (transmitter empty).
 */
#include <stdio.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"

#define UART_LSR 5
#define UART_SCR 7

int main(void)
{
	struct bh_core core;
	struct bh_ioport port;
	unsigned int dev;
	int bad = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (bh_core_open(&core) < 0 || bh_device_find(&core, 0x1b36, 0x0002, &dev) < 0 ||
	    bh_acquire(&core, dev) < 0 || bh_io_port(&core, dev, 0, &port) < 0) {
		printf("ioport: TEST ioport FAIL %s\n", bh_error(&core));
		return 1;
	}
	for (unsigned int v = 0x5a; v <= 0xa5; v += 0x4b) {
		bh_outb(&port, UART_SCR, (uint8_t)v);
		bad += bh_inb(&port, UART_SCR) != v;
	}
	uint8_t lsr = bh_inb(&port, UART_LSR);
	/* past the BAR's end: refused by the library, not sent to the device */
	uint8_t beyond = bh_inb(&port, port.size + 4);
	printf("ioport: TEST ioport %s uid %u: BAR0 of %u ports, scratch register read back %s, "
	       "LSR 0x%02x, port past the BAR reads 0x%02x\n",
	       !bad && (lsr & 0x60) == 0x60 && beyond == 0xff ? "PASS" : "FAIL", getuid(),
	       port.size, bad ? "wrong" : "right", lsr, beyond);
	return bad ? 1 : 0;
}
