/* SPDX-License-Identifier: MIT */
/*
 * QEMU's VGA and bochs-display (1234:1111): BAR0 is video memory, BAR2 4 KiB
 * of registers (QEMU hw/display/vga-pci.c, bochs-display.c; Bochs' VBE
 * "DISPI" interface, vbe.h of its BIOS).
 */
#ifndef BOCHS_REGS_H
#define BOCHS_REGS_H

#define BOCHS_VENDOR 0x1234
#define BOCHS_DEVICE 0x1111

#define BOCHS_BAR_FB 0
#define BOCHS_BAR_MMIO 2

/* BAR2 layout */
#define BOCHS_EDID 0x000	   /* 1 KiB: the EDID blob, 128 bytes per block */
#define BOCHS_VGA_PORTS 0x400	   /* ports 0x3c0-0x3df, VGA only */
#define BOCHS_DISPI 0x500	   /* 16-bit registers, index * 2 */
#define BOCHS_QEXT_SIZE 0x600	   /* bytes of the QEMU extension registers */
#define BOCHS_QEXT_BYTEORDER 0x604 /* PCI revision >= 2 */
#define BOCHS_BYTEORDER_LE 0x1e1e1e1e

/* the VGA ports, as offsets into BAR2 */
#define VGA_PORT(p) (BOCHS_VGA_PORTS + (p) -0x3c0)
#define VGA_ATT_W 0x3c0		   /* attribute controller index/data */
#define VGA_MIS_W 0x3c2		   /* miscellaneous output */
#define VGA_IS1_RC 0x3da	   /* input status 1: reading it resets the attribute flip-flop */
#define VGA_AR_ENABLE_DISPLAY 0x20 /* palette address source: the display is on */

enum dispi_index {
	DISPI_ID = 0x0,
	DISPI_XRES = 0x1,
	DISPI_YRES = 0x2,
	DISPI_BPP = 0x3,
	DISPI_ENABLE = 0x4,
	DISPI_BANK = 0x5,
	DISPI_VIRT_WIDTH = 0x6,
	DISPI_VIRT_HEIGHT = 0x7,
	DISPI_X_OFFSET = 0x8,
	DISPI_Y_OFFSET = 0x9,
	DISPI_VIDEO_MEMORY_64K = 0xa,
};

#define DISPI_REG(i) (BOCHS_DISPI + 2 * (i))

#define DISPI_ID0 0xb0c0
#define DISPI_ID5 0xb0c5

#define DISPI_ENABLED 0x01
#define DISPI_LFB_ENABLED 0x40
#define DISPI_NOCLEARMEM 0x80

/* QEMU's limits (VBE_DISPI_MAX_XRES/YRES); xres a multiple of 8 */
#define DISPI_MAX_XRES 16000
#define DISPI_MAX_YRES 12000

/* EDID 1.4: header, then the first detailed timing (the preferred mode) at 54 */
#define EDID_DTD 54

#endif
