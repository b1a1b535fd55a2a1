/* SPDX-License-Identifier: MIT */
/*
 * VESA BIOS Extension (VBE) Core Functions Standard, version 3.0
 * (VESA, September 1998): the functions and structures this driver uses.
 */
#ifndef VESA_VBE_H
#define VESA_VBE_H

#include <stdint.h>

/* section 4.2: AX = 4Fxxh; AL = 4Fh supported, AH = 00h successful */
#define VBE_OK 0x004f
#define VBE_CONTROLLER_INFO 0x4f00 /* 4.3: ES:DI -> VbeInfoBlock */
#define VBE_MODE_INFO 0x4f01	   /* 4.4: CX = mode, ES:DI -> ModeInfoBlock */
#define VBE_SET_MODE 0x4f02	   /* 4.5: BX = mode | flags */
#define VBE_CURRENT_MODE 0x4f03	   /* 4.6: -> BX = mode | flags */

/* 4.5, BX: D14 use the linear framebuffer; D15 do not clear the display */
#define VBE_MODE_LFB 0x4000
#define VBE_MODE_NOCLEAR 0x8000
#define VBE_MODE_NUMBER 0x3fff
#define VBE_MODE_END 0xffff /* 4.3: the mode list's end */

/* 4.3, table "VbeInfoBlock": 512 bytes; VbeSignature "VBE2" in asks for 2.0+ fields */
struct vbe_info {
	char signature[4]; /* "VESA" out */
	uint16_t version;  /* BCD: 0x0300 */
	uint32_t oem_string; /* real-mode far pointers: segment << 16 | offset */
	uint32_t capabilities;
	uint32_t mode_list;
	uint16_t total_memory; /* 64 KiB blocks */
	uint16_t oem_software_rev;
	uint32_t oem_vendor, oem_product, oem_revision;
	uint8_t reserved[222];
	uint8_t oem_data[256];
} __attribute__((packed));

/* 4.4, table "ModeInfoBlock": 256 bytes */
struct vbe_mode_info {
	uint16_t attributes;
	uint8_t win_a, win_b;
	uint16_t win_granularity, win_size, win_a_segment, win_b_segment;
	uint32_t win_func;
	uint16_t bytes_per_line;
	/* VBE 1.2+ */
	uint16_t width, height;
	uint8_t char_width, char_height, planes, bpp, banks, memory_model, bank_size;
	uint8_t image_pages, reserved0;
	uint8_t red_size, red_pos, green_size, green_pos, blue_size, blue_pos;
	uint8_t rsvd_size, rsvd_pos, direct_color_info;
	/* VBE 2.0+ */
	uint32_t phys_base;
	uint32_t reserved1;
	uint16_t reserved2;
	/* VBE 3.0 */
	uint16_t lin_bytes_per_line;
	uint8_t bnk_image_pages, lin_image_pages;
	uint8_t lin_red_size, lin_red_pos, lin_green_size, lin_green_pos, lin_blue_size,
	    lin_blue_pos, lin_rsvd_size, lin_rsvd_pos;
	uint32_t max_pixel_clock;
	uint8_t reserved3[190];
} __attribute__((packed));

_Static_assert(sizeof(struct vbe_info) == 512, "VbeInfoBlock is 512 bytes");
_Static_assert(sizeof(struct vbe_mode_info) == 256, "ModeInfoBlock is 256 bytes");

/* 4.4, ModeAttributes: D0 supported by the hardware, D4 graphics, D7 linear framebuffer */
#define VBE_ATTR_SUPPORTED 0x0001
#define VBE_ATTR_GRAPHICS 0x0010
#define VBE_ATTR_LFB 0x0080
/* 4.4, MemoryModel: 04h packed pixel, 06h direct color */
#define VBE_MODEL_PACKED 4
#define VBE_MODEL_DIRECT 6

#endif
