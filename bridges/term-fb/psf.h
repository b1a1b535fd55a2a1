/* SPDX-License-Identifier: MIT */
/*
 * PC Screen Font (PSF1 and PSF2, as in Debian's console-setup fonts, gzipped):
 * glyph bitmaps and, where the font has one, its Unicode table. The format is
 * the one kbd's psffontop.h and the kernel's lib/fonts describe: PSF1 is
 * 8 pixels wide, 256 or 512 glyphs, a table of 16-bit code points per glyph
 * ended by 0xffff; PSF2 has a header with the sizes, and UTF-8 per glyph
 * ended by 0xff (0xfe starts a sequence, which we skip).
 */
#ifndef TERM_FB_PSF_H
#define TERM_FB_PSF_H

#include <stddef.h>
#include <stdint.h>

struct psf {
	uint8_t *data;	/* the whole font, unpacked */
	const uint8_t *glyphs;
	uint32_t nglyphs, width, height, stride; /* stride: bytes per row */
	uint32_t glyph_size;
	uint16_t map[0x10000]; /* code point (BMP) -> glyph + 1, 0: none */
};

/* a gzipped font in memory: 0, or -EINVAL with why */
int psf_load_gz(struct psf *f, const uint8_t *gz, size_t len, char *why, size_t why_len);
void psf_free(struct psf *f);
/* the glyph for code point cp: its own, else '?', else glyph 0 */
const uint8_t *psf_glyph(const struct psf *f, uint32_t cp);
/* pixel (x, y) of a glyph set? */
static inline int psf_bit(const struct psf *f, const uint8_t *g, uint32_t x, uint32_t y)
{
	return g[y * f->stride + x / 8] >> (7 - x % 8) & 1;
}

#endif
