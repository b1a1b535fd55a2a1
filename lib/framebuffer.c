// SPDX-License-Identifier: MIT
/* Framebuffer and Capture sessions: modes and damage rectangles, checked the same on both sides. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bulkhead/framebuffer.h"

/* larger than any device we drive; keeps every product below in 64 bits */
#define FB_DIM_MAX 16384u

int bh_fb_mode_check(const struct bh_fb_mode *m, uint64_t buffer_size, char *why, size_t why_len)
{
	uint64_t bytes;

	if (!m->width || !m->height || m->width > FB_DIM_MAX || m->height > FB_DIM_MAX) {
		snprintf(why, why_len, "%ux%u: 1-%u pixels each way", m->width, m->height,
			 FB_DIM_MAX);
		return -EINVAL;
	}
	if (m->bpp != 8 && m->bpp != 15 && m->bpp != 16 && m->bpp != 24 && m->bpp != 32) {
		snprintf(why, why_len, "%u bpp: 8, 15, 16, 24 or 32", m->bpp);
		return -EINVAL;
	}
	if (m->pitch < m->width * bh_fb_bytes_pp(m->bpp) || m->pitch > 4 * FB_DIM_MAX) {
		snprintf(why, why_len, "pitch %u for %u pixels of %u bpp", m->pitch, m->width,
			 m->bpp);
		return -EINVAL;
	}
	bytes = (uint64_t) m->pitch * m->height;
	if (bytes > buffer_size) {
		snprintf(why, why_len, "%ux%ux%u needs %llu KiB, the buffer holds %llu", m->width,
			 m->height, m->bpp, (unsigned long long) (bytes >> 10),
			 (unsigned long long) (buffer_size >> 10));
		return -EINVAL;
	}
	return 0;
}

static uint64_t rect_arg(const struct bh_fb_rect *r)
{
	return (uint64_t) (r->x & 0xffff) | (uint64_t) (r->y & 0xffff) << 16 |
	       (uint64_t) (r->w & 0xffff) << 32 | (uint64_t) (r->h & 0xffff) << 48;
}

/* 0 if r is a non-empty rectangle inside m; its bytes at m's pitch */
static int rect_span(const struct bh_fb_mode *m, const struct bh_fb_rect *r, uint64_t *offset,
		     uint64_t *length)
{
	uint32_t bpp = bh_fb_bytes_pp(m->bpp);

	if (!r->w || !r->h || r->x >= m->width || r->y >= m->height || r->w > m->width - r->x ||
	    r->h > m->height - r->y)
		return -EINVAL;
	*offset = (uint64_t) r->y * m->pitch + (uint64_t) r->x * bpp;
	*length = (uint64_t) (r->h - 1) * m->pitch + (uint64_t) r->w * bpp;
	return 0;
}

int bh_fb_damage(const struct bh_fb_mode *m, const struct bh_fb_rect *r, uint32_t tag,
		 struct bh_ps_desc *d)
{
	uint64_t offset, length;

	if (rect_span(m, r, &offset, &length) || length > UINT32_MAX)
		return -EINVAL;
	*d = (struct bh_ps_desc){.offset = offset,
				 .length = (uint32_t) length,
				 .op = BH_FB_DAMAGE,
				 .arg = rect_arg(r),
				 .tag = tag};
	return 0;
}

int bh_fb_damage_check(const struct bh_fb_mode *m, const struct bh_ps_desc *d, struct bh_fb_rect *r)
{
	uint64_t offset, length;

	/* a copy: d lives in our memory already (bh_ps_get), r is ours too */
	*r = (struct bh_fb_rect){.x = d->arg & 0xffff,
				 .y = (d->arg >> 16) & 0xffff,
				 .w = (d->arg >> 32) & 0xffff,
				 .h = d->arg >> 48};
	if (d->op != BH_FB_DAMAGE || d->status || rect_span(m, r, &offset, &length) ||
	    d->offset != offset || d->length != length)
		return -EINVAL;
	return 0;
}

void bh_fb_copy(void *dst, uint32_t dst_pitch, const void *src, uint32_t src_pitch,
		const struct bh_fb_mode *m, const struct bh_fb_rect *r)
{
	uint32_t bpp = bh_fb_bytes_pp(m->bpp);
	size_t row = (size_t) r->w * bpp;
	uint8_t *d = (uint8_t *) dst + (size_t) r->y * dst_pitch + (size_t) r->x * bpp;
	const uint8_t *s = (const uint8_t *) src + (size_t) r->y * src_pitch + (size_t) r->x * bpp;

	for (uint32_t y = 0; y < r->h; y++, d += dst_pitch, s += src_pitch)
		memcpy(d, s, row);
}

void bh_fb_rect_union(struct bh_fb_rect *a, const struct bh_fb_rect *b)
{
	uint32_t x1, y1;

	if (!b->w || !b->h)
		return;
	if (!a->w || !a->h) {
		*a = *b;
		return;
	}
	x1 = a->x + a->w > b->x + b->w ? a->x + a->w : b->x + b->w;
	y1 = a->y + a->h > b->y + b->h ? a->y + a->h : b->y + b->h;
	a->x = a->x < b->x ? a->x : b->x;
	a->y = a->y < b->y ? a->y : b->y;
	a->w = x1 - a->x;
	a->h = y1 - a->y;
}

struct bh_fb_rect bh_fb_rect_clip(const struct bh_fb_rect *a, const struct bh_fb_rect *b)
{
	uint32_t x0 = a->x > b->x ? a->x : b->x, y0 = a->y > b->y ? a->y : b->y;
	uint32_t x1 = a->x + a->w < b->x + b->w ? a->x + a->w : b->x + b->w;
	uint32_t y1 = a->y + a->h < b->y + b->h ? a->y + a->h : b->y + b->h;

	if (x1 <= x0 || y1 <= y0)
		return (struct bh_fb_rect){0};
	return (struct bh_fb_rect){.x = x0, .y = y0, .w = x1 - x0, .h = y1 - y0};
}
