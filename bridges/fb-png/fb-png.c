// SPDX-License-Identifier: MIT
/*
 * bulkhead-fb-png: the screen as a PNG file. A Capture session client: it
 * follows the screen's damage, and once the screen has been still for
 * QUIET_MS after a change it writes the picture, as RGB, to the file its
 * config names ('output = PATH'; core opens it, anew and empty, for each
 * picture: a component cannot open files). It reconnects when the driver
 * restarts, and writes the screen again once it is redrawn.
 *
 * Each picture written logs "fb-png: wrote N bytes: WxH, picture K".
 */
#include <errno.h>
#include <poll.h>
#include <png.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/framebuffer.h"
#include "bulkhead/session.h"

#define QUIET_MS 300

static struct bh_core core;
static struct bh_session s;
static struct bh_fb_mode mode;

/* a driver that just restarted, or has its one session taken, is worth another try for a while */
static int connect_capture(void)
{
	struct bh_fb_info info;
	char why[160];
	int rc;

	rc = bh_session_connect(&core, BH_CAPTURE_SERVICE, 30000, &s, why, sizeof(why));
	if (rc) {
		fprintf(stderr, "fb-png: %s\n", why);
		return rc;
	}
	memcpy(&info, s.info, sizeof(info));
	if (info.version != BH_FB_VERSION ||
	    bh_fb_mode_check(&info.mode, s.ps[0].bulk_size, why, sizeof(why))) {
		fprintf(stderr, "fb-png: the driver's mode makes no sense: %s\n", why);
		bh_session_close(NULL, &s);
		return -EPROTO;
	}
	mode = info.mode;
	printf("fb-png: watching %ux%ux%u\n", mode.width, mode.height, mode.bpp);
	return 0;
}

/* one pixel of the picture as 8-bit R, G, B */
static void rgb(const uint8_t *p, uint8_t *o)
{
	uint32_t v;

	switch (mode.bpp) {
	case 32:
	case 24:
		o[0] = p[2];
		o[1] = p[1];
		o[2] = p[0];
		break;
	case 16:
		v = (uint32_t) p[0] | (uint32_t) p[1] << 8;
		o[0] = (uint8_t) ((v >> 11 & 0x1f) * 255 / 31);
		o[1] = (uint8_t) ((v >> 5 & 0x3f) * 255 / 63);
		o[2] = (uint8_t) ((v & 0x1f) * 255 / 31);
		break;
	case 15:
		v = (uint32_t) p[0] | (uint32_t) p[1] << 8;
		o[0] = (uint8_t) ((v >> 10 & 0x1f) * 255 / 31);
		o[1] = (uint8_t) ((v >> 5 & 0x1f) * 255 / 31);
		o[2] = (uint8_t) ((v & 0x1f) * 255 / 31);
		break;
	default: /* a palette we do not know: its index as grey */
		o[0] = o[1] = o[2] = p[0];
	}
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -errno;
		p += w;
		n -= (size_t) w;
	}
	return 0;
}

/* the picture as it is now; copied first, so the driver may go on drawing */
static int write_png(unsigned int n)
{
	size_t bpp = bh_fb_bytes_pp(mode.bpp), w = mode.width, h = mode.height;
	png_image img = {.version = PNG_IMAGE_VERSION,
			 .width = mode.width,
			 .height = mode.height,
			 .format = PNG_FORMAT_RGB,
			 .flags = PNG_IMAGE_FLAG_FAST};
	png_alloc_size_t size;
	uint8_t *pix = malloc(w * h * 3), *png = NULL;
	int fd = -1, rc = -ENOMEM;

	if (!pix)
		goto out;
	for (size_t y = 0; y < h; y++)
		for (size_t x = 0; x < w; x++)
			rgb(s.ps[0].bulk + y * mode.pitch + x * bpp, pix + (y * w + x) * 3);
	size = PNG_IMAGE_PNG_SIZE_MAX(img);
	png = malloc(size);
	if (!png || !png_image_write_to_memory(&img, png, &size, 0, pix, 0, NULL)) {
		fprintf(stderr, "fb-png: cannot make the PNG: %s\n",
			png ? img.message : "no memory");
		goto out;
	}
	rc = bh_output_open(&core, &fd);
	if (rc) {
		fprintf(stderr, "fb-png: %s\n", bh_error(&core));
		goto out;
	}
	rc = write_all(fd, png, size);
	close(fd);
	if (rc)
		fprintf(stderr, "fb-png: write: %s\n", strerror(-rc));
	else
		printf("fb-png: wrote %zu bytes: %ux%u, picture %u\n", (size_t) size, mode.width,
		       mode.height, n);
out:
	free(png);
	free(pix);
	return rc;
}

/* damage in, acknowledged; 1 if the picture changed, 0 if not, <0 if the stream broke */
static int take(void)
{
	struct bh_packet_stream *ps = &s.ps[0];
	struct bh_ps_desc d[BH_FB_RING];
	int n = bh_ps_get(ps, d, BH_FB_RING), changed = 0;

	if (n <= 0)
		return n;
	for (int i = 0; i < n; i++) {
		struct bh_fb_rect r;
		d[i].status = bh_fb_damage_check(&mode, &d[i], &r);
		changed |= !d[i].status;
	}
	bh_ps_put(ps, d, (unsigned int) n);
	bh_ps_flush(ps);
	return changed;
}

static void mode_event(void)
{
	struct bh_session_event ev;
	struct bh_fb_mode_msg m;
	struct bh_fb_mode next;
	char why[80];

	if (bh_session_recv_event(&s, &ev) != 1 || ev.type != BH_FB_EV_MODE)
		return;
	memcpy(&m, ev.data, sizeof(m));
	next = (struct bh_fb_mode){.width = m.width,
				   .height = m.height,
				   .bpp = m.bpp,
				   .pitch = m.width * bh_fb_bytes_pp(m.bpp)};
	if (bh_fb_mode_check(&next, s.ps[0].bulk_size, why, sizeof(why)) == 0) {
		mode = next;
		printf("fb-png: mode %ux%ux%u\n", mode.width, mode.height, mode.bpp);
	}
}

int main(void)
{
	unsigned int pictures = 0;
	uint64_t changed_ns = 0; /* the last change not yet written, or 0 */

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (bh_core_open(&core) < 0) {
		fprintf(stderr, "fb-png: %s\n", bh_error(&core));
		return 1;
	}
	if (connect_capture())
		return 1;
	for (;;) {
		struct bh_packet_stream *ps = &s.ps[0];
		struct pollfd p[2] = {{.fd = s.fd, .events = POLLIN | POLLRDHUP},
				      {.fd = bh_ps_wait_fd(ps), .events = POLLIN}};
		int rc = take();

		if (rc > 0)
			changed_ns = bh_coarse_ns();
		if (rc < 0) {
			printf("fb-png: the driver broke the stream: reconnecting\n");
		} else if (rc > 0 || !bh_ps_prepare_wait(ps)) {
			continue;
		} else {
			if (changed_ns && bh_coarse_ns() - changed_ns >= QUIET_MS * 1000000ull) {
				changed_ns = 0;
				write_png(++pictures);
			}
			if (poll(p, 2, changed_ns ? 50 : 1000) < 0 && errno != EINTR)
				return 1;
			if (p[1].revents)
				bh_ps_drain_signal(ps);
			if (p[0].revents & POLLIN)
				mode_event();
			if (!(p[0].revents & (POLLHUP | POLLRDHUP | POLLERR)))
				continue;
			printf("fb-png: the driver hung up: reconnecting\n");
		}
		bh_session_close(NULL, &s);
		changed_ns = 0;
		/* core gone (it is stopping): nothing failed */
		rc = connect_capture();
		if (rc)
			return bh_heartbeat(&core) < 0 ? 0 : 1;
	}
}
