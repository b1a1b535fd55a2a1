// SPDX-License-Identifier: MIT
/* PSF fonts: see psf.h. Every size in the file is checked against the file. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "psf.h"

#define PSF1_MAGIC 0x0436
#define PSF1_MODE512 0x01
#define PSF1_MODEHASTAB 0x02
#define PSF1_MODESEQ 0x04
#define PSF2_MAGIC 0x864ab572u
#define PSF2_HAS_UNICODE_TABLE 0x01
#define MAX_FONT (4u << 20)

static int gunzip(const uint8_t *gz, size_t len, uint8_t **out, size_t *out_len)
{
	z_stream z = {.next_in = (Bytef *) gz, .avail_in = (uInt) len};
	size_t cap = 64 << 10;
	uint8_t *buf = malloc(cap);
	int rc;

	if (!buf || inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
		free(buf);
		return -ENOMEM;
	}
	do {
		if (z.total_out == cap) {
			uint8_t *n = cap < MAX_FONT ? realloc(buf, cap * 2) : NULL;
			if (!n) {
				rc = Z_MEM_ERROR;
				break;
			}
			buf = n;
			cap *= 2;
		}
		z.next_out = buf + z.total_out;
		z.avail_out = (uInt) (cap - z.total_out);
		rc = inflate(&z, Z_NO_FLUSH);
	} while (rc == Z_OK);
	*out_len = z.total_out;
	inflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(buf);
		return -EINVAL;
	}
	*out = buf;
	return 0;
}

static void map(struct psf *f, uint32_t cp, uint32_t glyph)
{
	if (cp < 0x10000 && !f->map[cp])
		f->map[cp] = (uint16_t) (glyph + 1);
}

/* one UTF-8 character at *p (before end): its code point, or -1 */
static long utf8(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *s = *p;
	unsigned int n = *s < 0x80 ? 0 : *s >= 0xf0 ? 3 : *s >= 0xe0 ? 2 : *s >= 0xc0 ? 1 : 9;
	long cp = n ? *s & (0x3f >> n) : *s;

	if (n > 3 || (size_t) (end - s) <= n)
		return -1;
	for (unsigned int i = 1; i <= n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return -1;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	*p = s + n + 1;
	return cp;
}

static int psf1(struct psf *f, size_t len, char *why, size_t why_len)
{
	const uint8_t *d = f->data, *t, *end = f->data + len;
	uint8_t mode = d[2];

	f->nglyphs = mode & PSF1_MODE512 ? 512 : 256;
	f->width = 8;
	f->height = d[3];
	f->stride = 1;
	f->glyph_size = f->height;
	f->glyphs = d + 4;
	if (!f->height || 4 + (size_t) f->nglyphs * f->glyph_size > len) {
		snprintf(why, why_len, "PSF1: %u glyphs of 8x%u do not fit in %zu bytes",
			 f->nglyphs, f->height, len);
		return -EINVAL;
	}
	if (!(mode & (PSF1_MODEHASTAB | PSF1_MODESEQ)))
		return 0;
	t = f->glyphs + (size_t) f->nglyphs * f->glyph_size;
	for (uint32_t g = 0; g < f->nglyphs && t + 2 <= end; g++) {
		bool seq = false;
		for (; t + 2 <= end; t += 2) {
			uint16_t u = (uint16_t) (t[0] | t[1] << 8);
			if (u == 0xffff)
				break;
			seq |= u == 0xfffe;
			if (!seq)
				map(f, u, g);
		}
		t += 2;
	}
	return 0;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 |
	       (uint32_t) p[3] << 24;
}

static int psf2(struct psf *f, size_t len, char *why, size_t why_len)
{
	const uint8_t *d = f->data, *t, *end = f->data + len;
	uint32_t hdr = le32(d + 8), flags = le32(d + 12);

	f->nglyphs = le32(d + 16);
	f->glyph_size = le32(d + 20);
	f->height = le32(d + 24);
	f->width = le32(d + 28);
	f->stride = (f->width + 7) / 8;
	if (len < 32 || hdr < 32 || hdr > len || !f->width || f->width > 64 || !f->height ||
	    f->height > 128 || f->glyph_size != f->stride * f->height || !f->nglyphs ||
	    f->nglyphs > 0xffff || (len - hdr) / f->glyph_size < f->nglyphs) {
		snprintf(why, why_len, "PSF2: header (%u glyphs of %ux%u, %u bytes each) does not "
			 "fit the %zu bytes", f->nglyphs, f->width, f->height, f->glyph_size, len);
		return -EINVAL;
	}
	f->glyphs = d + hdr;
	if (!(flags & PSF2_HAS_UNICODE_TABLE))
		return 0;
	t = f->glyphs + (size_t) f->nglyphs * f->glyph_size;
	for (uint32_t g = 0; g < f->nglyphs && t < end; g++) {
		bool seq = false;
		while (t < end && *t != 0xff) {
			long cp;
			if (*t == 0xfe) {
				seq = true;
				t++;
				continue;
			}
			cp = utf8(&t, end);
			if (cp < 0)
				t++;
			else if (!seq)
				map(f, (uint32_t) cp, g);
		}
		t++;
	}
	return 0;
}

int psf_load_gz(struct psf *f, const uint8_t *gz, size_t len, char *why, size_t why_len)
{
	size_t n;
	int rc;

	memset(f, 0, sizeof(*f));
	if (gunzip(gz, len, &f->data, &n)) {
		snprintf(why, why_len, "not a gzipped font (%zu bytes)", len);
		return -EINVAL;
	}
	if (n >= 32 && le32(f->data) == PSF2_MAGIC)
		rc = psf2(f, n, why, why_len);
	else if (n >= 4 && (f->data[0] | f->data[1] << 8) == PSF1_MAGIC)
		rc = psf1(f, n, why, why_len);
	else {
		snprintf(why, why_len, "no PSF1 or PSF2 magic");
		rc = -EINVAL;
	}
	if (rc) {
		psf_free(f);
		return rc;
	}
	/* a font without a table is indexed by code point */
	bool any = false;
	for (uint32_t c = 0; c < 0x80 && !any; c++)
		any = f->map[c];
	for (uint32_t g = 0; !any && g < f->nglyphs && g < 0x10000; g++)
		f->map[g] = (uint16_t) (g + 1);
	return 0;
}

void psf_free(struct psf *f)
{
	free(f->data);
	f->data = NULL;
}

const uint8_t *psf_glyph(const struct psf *f, uint32_t cp)
{
	uint32_t g = cp < 0x10000 ? f->map[cp] : 0;

	if (!g)
		g = f->map['?'] ? f->map['?'] : 1;
	return f->glyphs + (size_t) (g - 1) * f->glyph_size;
}
