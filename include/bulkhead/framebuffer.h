/* SPDX-License-Identifier: MIT */
/*
 * The Framebuffer and Capture sessions: a screen served by a display driver
 * (drivers/bochs) to one client that draws and to readers that only look
 * (Genode's split since 20.08: a GUI owns the screen, capture clients such
 * as a VNC server or a screenshot tool watch it).
 *
 * Both are one packet stream whose bulk buffer is a picture: mode.pitch
 * bytes per line, mode.height lines, pixels as the mode's bpp says
 * (32: XRGB8888 little-endian; 16: RGB565; 15: XRGB1555; 8: palette index).
 * The buffer is as large as the largest mode the device can take
 * (info.buffer_size), so a mode change needs no new session.
 *
 * framebuffer: the client is the source. It draws into the bulk buffer and
 * submits one descriptor per damaged rectangle (bh_fb_damage); the driver
 * copies the rectangle to the device's video memory and acknowledges it
 * with status 0, or -EINVAL for a rectangle that is empty or leaves the
 * mode (counted, nothing copied, the session goes on). The pixel buffer is
 * not the device's memory: the client can scribble over all of its buffer
 * and never reach anything else, and its picture survives the driver, so
 * a client that reconnects after a driver restart redraws by sending its
 * damage again. One client owns the screen at a time.
 *
 * capture: the driver is the source. It copies what the device shows into
 * the reader's bulk buffer and submits a descriptor per damaged rectangle;
 * the reader acknowledges each when it has looked. A reader gets the whole
 * screen as damage when it connects and after each mode change. What a
 * reader writes into its buffer reaches nothing but its own copy.
 *
 * Events on the session socket (struct bh_fb_mode_msg in the data):
 * - BH_FB_EV_MODE_SET, framebuffer client -> driver: the mode it wants.
 * - BH_FB_EV_MODE, driver -> client: the answer (status 0 and the mode set,
 *   or -errno, the mode kept and the reason), and to readers after a change.
 * A new mode starts black: the client redraws and reports the damage. Asking
 * for the mode already set changes nothing.
 */
#ifndef BULKHEAD_FRAMEBUFFER_H
#define BULKHEAD_FRAMEBUFFER_H

#include <stdint.h>

#include "bulkhead/packet_stream.h"
#include "bulkhead/session.h"

#define BH_FB_SERVICE "framebuffer"
#define BH_CAPTURE_SERVICE "capture"
#define BH_FB_VERSION 1
/* damage descriptors in flight; a reader that falls behind gets the whole screen later */
#define BH_FB_RING 64

enum bh_fb_op {
	BH_FB_DAMAGE = 1, /* arg: the rectangle (bh_fb_rect_arg); offset/length: its bytes */
};

enum bh_fb_event {
	BH_FB_EV_MODE_SET = 1,
	BH_FB_EV_MODE = 2,
};

struct bh_fb_mode {
	uint32_t width;
	uint32_t height;
	uint32_t bpp;	/* 8, 15, 16, 24, 32 */
	uint32_t pitch; /* bytes per line */
};

/* the setup's info */
struct bh_fb_info {
	uint32_t version;
	uint32_t reserved;
	struct bh_fb_mode mode;
	uint64_t buffer_size; /* the bulk buffer: the largest mode */
	char device[40];      /* what the driver drives, for logs */
};

/* an event's data: a wish for a mode, or the answer to one */
struct bh_fb_mode_msg {
	int32_t status; /* answer: 0 or -errno */
	uint16_t width, height, bpp, reserved;
	char reason[44]; /* answer: why not, "" if set */
};

struct bh_fb_rect {
	uint32_t x, y, w, h;
};

static inline uint32_t bh_fb_bytes_pp(uint32_t bpp)
{
	return (bpp + 7) / 8;
}

/* 0, or -EINVAL with why: a mode whose numbers do not hold together or exceed the buffer */
int bh_fb_mode_check(const struct bh_fb_mode *m, uint64_t buffer_size, char *why, size_t why_len);

/* a descriptor for rectangle r of mode m; -EINVAL if r is empty or leaves the mode */
int bh_fb_damage(const struct bh_fb_mode *m, const struct bh_fb_rect *r, uint32_t tag,
		 struct bh_ps_desc *d);

/*
 * receiver's check of a damage descriptor against the mode now set: 0 with
 * the rectangle in *r, or -EINVAL (wrong op, empty, outside the mode, or
 * offset/length that are not the rectangle's bytes)
 */
int bh_fb_damage_check(const struct bh_fb_mode *m, const struct bh_ps_desc *d,
		       struct bh_fb_rect *r);

/* copy rectangle r between two pictures of mode m (pitches may differ) */
void bh_fb_copy(void *dst, uint32_t dst_pitch, const void *src, uint32_t src_pitch,
		const struct bh_fb_mode *m, const struct bh_fb_rect *r);

/* the smallest rectangle holding a and b (an empty one, w or h 0, adds nothing) */
void bh_fb_rect_union(struct bh_fb_rect *a, const struct bh_fb_rect *b);
/* a's part inside b; empty (all 0) if none */
struct bh_fb_rect bh_fb_rect_clip(const struct bh_fb_rect *a, const struct bh_fb_rect *b);

#endif
