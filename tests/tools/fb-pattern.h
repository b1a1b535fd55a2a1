/* SPDX-License-Identifier: MIT */
/*
 * The test picture of the display tests: fb-pattern draws it, fb-compare
 * writes it as the expected image and checks screenshots against it.
 * XRGB8888; every pixel depends on its place, so an offset, a pitch or a
 * colour channel out of order shows.
 */
#ifndef FB_PATTERN_H
#define FB_PATTERN_H

#include <stdint.h>

static inline uint32_t fb_pattern_pixel(uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
	static const uint32_t bars[8] = {0xffffff, 0xffff00, 0x00ffff, 0x00ff00,
					 0xff00ff, 0xff0000, 0x0000ff, 0x000000};
	uint32_t top = h / 2, r, g, b;

	/* a white frame: the edges of the mode are where they should be */
	if (x == 0 || y == 0 || x + 1 == w || y + 1 == h)
		return 0xffffff;
	if (y < top)
		return bars[(uint64_t) x * 8 / w];
	/* gradients for the channels, a checkerboard to show shifts of a pixel */
	r = w > 1 ? x * 255 / (w - 1) : 0;
	g = h - top > 1 ? (y - top) * 255 / (h - top - 1) : 0;
	b = ((x / 16) ^ (y / 16)) & 1 ? 0xc0 : 0x30;
	if (((x ^ y) & 7) == 0)
		b ^= 0xff;
	return r << 16 | g << 8 | b;
}

#endif
