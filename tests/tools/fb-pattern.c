// SPDX-License-Identifier: MIT
/*
 * bulkhead-fb-pattern: a Framebuffer session client for tests/vm/display.sh.
 * It owns the screen, draws the test pattern (fb-pattern.h) into its
 * buffer and reports the damage, in bands; then stays, and when the driver
 * goes away it reconnects, sets its mode again if the driver came back in
 * another, and redraws.
 *
 *   --mode WxHxBPP  the mode to ask for (default: the driver's)
 *   --bench N       N full-screen updates, timed (damage to acknowledgement)
 *   --hostile       then: damage that is no rectangle of the mode, modes the
 *                   device cannot do, a valid mode change and back, garbage
 *                   on the session socket; whether the driver still serves;
 *                   last, ring indexes moved impossibly (a new session after)
 *
 * Each hostile step logs "fb-pattern: check NAME PASS|FAIL detail".
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/framebuffer.h"
#include "bulkhead/msg.h"
#include "bulkhead/session.h"
#include "fb-pattern.h"

#define WAIT_MS 10000
#define BANDS 8

static struct bh_core core;
static struct bh_session s;
static struct bh_fb_mode mode;
static uint64_t buffer_size;
static unsigned int failed;
static bool vga; /* the driver drives QEMU's VGA, not bochs-display */

static void check(const char *name, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void check(const char *name, bool ok, const char *fmt, ...)
{
	char detail[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	printf("fb-pattern: check %s %s %s\n", name, ok ? "PASS" : "FAIL", detail);
	failed += !ok;
}

/* a driver that just restarted, or has its one session taken, is worth another try for a while */
static int connect_fb(void)
{
	struct bh_fb_info info;
	char why[160];
	int rc;

	rc = bh_session_connect(&core, BH_FB_SERVICE, 30000, &s, why, sizeof(why));
	if (rc) {
		fprintf(stderr, "fb-pattern: %s\n", why);
		return rc;
	}
	/* the server's numbers are input like any other */
	memcpy(&info, s.info, sizeof(info));
	buffer_size = s.ps[0].bulk_size;
	if (info.version != BH_FB_VERSION || info.buffer_size > buffer_size ||
	    bh_fb_mode_check(&info.mode, buffer_size, why, sizeof(why))) {
		fprintf(stderr, "fb-pattern: the driver's mode makes no sense: %s\n", why);
		bh_session_close(NULL, &s);
		return -EPROTO;
	}
	mode = info.mode;
	info.device[sizeof(info.device) - 1] = 0;
	vga = strncmp(info.device, "VGA", 3) == 0;
	printf("fb-pattern: screen of %s: %ux%ux%u, buffer %llu KiB\n", info.device, mode.width,
	       mode.height, mode.bpp, (unsigned long long) buffer_size >> 10);
	return 0;
}

/* wait for an event on the session socket: 1 with it, 0 on timeout or hang-up */
static int wait_event(struct bh_session_event *ev, int ms)
{
	struct pollfd p = {.fd = s.fd, .events = POLLIN};

	while (poll(&p, 1, ms) == 1) {
		int rc = bh_session_recv_event(&s, ev);
		if (rc == 1)
			return 1;
		if (rc != -EAGAIN)
			return 0;
	}
	return 0;
}

/* ask for a mode: 0 if set, -errno with the driver's reason */
static int mode_request(uint32_t w, uint32_t h, uint32_t bpp, char *why, size_t len)
{
	struct bh_fb_mode_msg want = {.width = (uint16_t) w,
				      .height = (uint16_t) h,
				      .bpp = (uint16_t) bpp},
			      got;
	struct bh_session_event ev;

	snprintf(why, len, "no answer");
	if (bh_session_send_event(&s, BH_FB_EV_MODE_SET, &want, sizeof(want)))
		return -EPIPE;
	if (!wait_event(&ev, WAIT_MS) || ev.type != BH_FB_EV_MODE)
		return -ETIMEDOUT;
	memcpy(&got, ev.data, sizeof(got));
	got.reason[sizeof(got.reason) - 1] = 0;
	snprintf(why, len, "%s", got.reason);
	if (got.status)
		return got.status < 0 ? got.status : -EPROTO;
	mode = (struct bh_fb_mode){.width = got.width,
				   .height = got.height,
				   .bpp = got.bpp,
				   .pitch = got.width * bh_fb_bytes_pp(got.bpp)};
	return bh_fb_mode_check(&mode, buffer_size, why, len);
}

static void draw(void)
{
	uint8_t *p = s.ps[0].bulk;

	for (uint32_t y = 0; y < mode.height; y++) {
		uint8_t *line = p + (size_t) y * mode.pitch;
		for (uint32_t x = 0; x < mode.width; x++) {
			uint32_t v = fb_pattern_pixel(x, y, mode.width, mode.height);
			if (mode.bpp == 32)
				((uint32_t *) line)[x] = v;
			else if (mode.bpp == 16)
				((uint16_t *) line)[x] =
				    (uint16_t) ((v >> 8 & 0xf800) | (v >> 5 & 0x07e0) |
						(v >> 3 & 0x1f));
			else
				memset(line + x * bh_fb_bytes_pp(mode.bpp), (int) (v & 0xff),
				       bh_fb_bytes_pp(mode.bpp));
		}
	}
}

/*
 * submit n descriptors and wait for their acknowledgements; how many came
 * back with status 0 in *ok; -ETIMEDOUT or -EPIPE if the driver did not answer
 */
static int submit(struct bh_ps_desc *d, unsigned int n, unsigned int *ok)
{
	struct bh_packet_stream *ps = &s.ps[0];
	uint64_t end = bh_coarse_ns() + WAIT_MS * 1000000ull;
	unsigned int acked = 0, put;

	*ok = 0;
	put = bh_ps_put(ps, d, n);
	bh_ps_flush(ps);
	while (acked < put) {
		struct bh_ps_desc a[BH_FB_RING];
		struct pollfd p[2] = {{.fd = bh_ps_wait_fd(ps), .events = POLLIN},
				      {.fd = s.fd, .events = POLLIN | POLLRDHUP}};
		int got = bh_ps_get(ps, a, BH_FB_RING);

		if (got < 0)
			return got;
		for (int i = 0; i < got; i++)
			*ok += a[i].status == 0;
		acked += (unsigned int) got;
		if (got || acked >= put || !bh_ps_prepare_wait(ps))
			continue;
		if (bh_coarse_ns() > end)
			return -ETIMEDOUT;
		if (poll(p, 2, 200) > 0) {
			if (p[1].revents & (POLLHUP | POLLRDHUP | POLLERR))
				return -EPIPE;
			bh_ps_drain_signal(ps);
		}
	}
	return put == n ? 0 : -ENOBUFS;
}

/* the pattern, reported in bands as the driver would get it from a real client */
static int paint(const char *what)
{
	struct bh_ps_desc d[BANDS];
	uint64_t t0 = bh_now_ns();
	unsigned int ok, band = (mode.height + BANDS - 1) / BANDS, n = 0;
	int rc;

	draw();
	for (uint32_t y = 0; y < mode.height; y += band) {
		struct bh_fb_rect r = {.x = 0,
				       .y = y,
				       .w = mode.width,
				       .h = y + band > mode.height ? mode.height - y : band};
		if (bh_fb_damage(&mode, &r, n, &d[n]) == 0)
			n++;
	}
	rc = submit(d, n, &ok);
	printf("fb-pattern: %s %ux%ux%u in %u rectangles: %u acknowledged with 0 (%s), %.1f ms\n",
	       what, mode.width, mode.height, mode.bpp, n, ok, rc ? strerror(-rc) : "ok",
	       (double) (bh_now_ns() - t0) / 1e6);
	return rc ? rc : ok == n ? 0 : -EIO;
}

static void bench(unsigned int count)
{
	struct bh_fb_rect all = {.w = mode.width, .h = mode.height};
	struct bh_ps_desc d;
	unsigned int ok, done = 0;
	uint64_t t0 = bh_now_ns();
	double s_;

	bh_fb_damage(&mode, &all, 0, &d);
	for (unsigned int i = 0; i < count; i++) {
		if (submit(&d, 1, &ok) || !ok)
			break;
		done++;
	}
	s_ = (double) (bh_now_ns() - t0) / 1e9;
	printf("fb-pattern: bench: %u full-screen updates of %ux%ux%u in %.2f s: %.1f per second, "
	       "%.0f MB/s\n",
	       done, mode.width, mode.height, mode.bpp, s_, done / s_,
	       done * (double) mode.pitch * mode.height / s_ / 1e6);
	/* a small rectangle, as a cursor or a line of text: the session's own cost */
	struct bh_fb_rect small = {.x = 64, .y = 64, .w = 64, .h = 16};
	bh_fb_damage(&mode, &small, 0, &d);
	done = 0;
	t0 = bh_now_ns();
	for (unsigned int i = 0; i < 10 * count; i++) {
		if (submit(&d, 1, &ok) || !ok)
			break;
		done++;
	}
	s_ = (double) (bh_now_ns() - t0) / 1e9;
	printf("fb-pattern: bench: %u updates of 64x16 in %.2f s: %.0f per second, %.0f us each "
	       "from damage to acknowledgement\n",
	       done, s_, done / s_, s_ * 1e6 / (done ? done : 1));
}

static int take_screen(const struct bh_fb_mode *want, const char *what);

static void hostile(void)
{
	struct bh_fb_mode m0 = mode;
	struct bh_fb_rect r = {.x = 8, .y = 8, .w = 16, .h = 16};
	struct bh_ps_desc good, d[6];
	unsigned int ok;
	char why[80];
	int rc;

	/* damage no rectangle of the mode is: each refused, none copied */
	bh_fb_damage(&mode, &r, 0, &good);
	for (int i = 0; i < 6; i++)
		d[i] = good;
	d[0].arg =
	    (uint64_t) (mode.width - 4) | 16ull << 32 | 16ull << 48; /* past the right edge */
	d[1].arg &= ~(0xffffull << 32);				     /* empty */
	d[2].offset += 4;					     /* not its bytes */
	d[3].op = 99;
	d[4].offset = buffer_size - 4; /* outside the buffer: the stream refuses it */
	d[4].length = 4096;
	d[5].arg = 0xffffull | 0xffffull << 16 | 0xffffull << 32 | 0xffffull << 48;
	rc = submit(d, 6, &ok);
	check("bad_damage_refused", !rc && ok == 0,
	      "6 impossible rectangles (past the edge, empty, wrong offset, wrong op, outside the "
	      "buffer, 65535x65535+65535+65535): %u of 6 accepted (%s)",
	      ok, rc ? strerror(-rc) : "all acknowledged");

	/* modes the device cannot do: refused with a reason, the mode kept (VGA does 24 bpp) */
	struct {
		uint32_t w, h, bpp;
	} bad[] = {{1024, 768, vga ? 4 : 24}, {4096, 4096, 32}, {1001, 768, 32}, {0, 768, 32}};
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char name[40];
		rc = mode_request(bad[i].w, bad[i].h, bad[i].bpp, why, sizeof(why));
		snprintf(name, sizeof(name), "mode_refused_%ux%ux%u", bad[i].w, bad[i].h,
			 bad[i].bpp);
		check(name, rc == -EINVAL && why[0] && mode.width == m0.width,
		      "%ux%ux%u -> %s: \"%s\"", bad[i].w, bad[i].h, bad[i].bpp,
		      rc ? strerror(-rc) : "set", why);
	}

	/*
	 * garbage on the session socket: a short datagram, a bad magic, an unknown
	 * event; then a request on the same socket, whose answer comes after the
	 * driver has read through them, and damage
	 */
	static const char junk[3] = "xyz";
	struct bh_session_event ev = {.magic = 0xdeadbeef, .type = BH_FB_EV_MODE_SET};
	bool sent = send(s.fd, junk, sizeof(junk), MSG_NOSIGNAL) == sizeof(junk) &&
		    send(s.fd, &ev, sizeof(ev), MSG_NOSIGNAL) == sizeof(ev) &&
		    !bh_session_send_event(&s, 77, junk, sizeof(junk));
	int mrc = mode_request(m0.width, m0.height, m0.bpp, why, sizeof(why));
	rc = submit(&good, 1, &ok);
	check("garbage_ignored", sent && !mrc && !rc && ok == 1,
	      "3 malformed datagrams sent (%s); a mode request after them: %s; damage: %s",
	      sent ? "ok" : "failed", mrc ? strerror(-mrc) : "answered",
	      rc   ? strerror(-rc)
	      : ok ? "acknowledged with 0"
		   : "refused");

	/* a mode it can do, and back */
	rc = mode_request(800, 600, 16, why, sizeof(why));
	struct bh_fb_mode m1 = mode;
	int rc2 = mode_request(m0.width, m0.height, m0.bpp, why, sizeof(why));
	check("mode_change",
	      !rc && m1.width == 800 && m1.bpp == 16 && !rc2 && mode.width == m0.width &&
		  mode.bpp == m0.bpp,
	      "800x600x16 -> %s, then %ux%ux%u -> %s", rc ? strerror(-rc) : "set", m0.width,
	      m0.height, m0.bpp, rc2 ? strerror(-rc2) : "set");
	rc = paint("redrawn");
	check("still_serving", rc == 0, "the whole pattern again after all that: %s",
	      rc ? strerror(-rc) : "every band acknowledged with 0");

	/* ring indexes no producer could have written: the driver ends this session, no more */
	struct bh_packet_stream *ps = &s.ps[0];
	volatile uint32_t *tail = (volatile uint32_t *) ((uint8_t *) ps->base + BH_PS_RING_TAIL);
	struct pollfd p = {.fd = s.fd, .events = POLLRDHUP};
	uint64_t one = 1;
	*tail += 5 * BH_FB_RING;
	bool closed = write(ps->submit.efd, &one, sizeof(one)) == sizeof(one) &&
		      poll(&p, 1, WAIT_MS) == 1 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR));
	bh_session_close(NULL, &s);
	rc = closed ? take_screen(&m0, "drawn in a new session") : -ETIMEDOUT;
	check("ring_corrupted", closed && !rc, "submit tail moved %u ahead: %s; a new session: %s",
	      5 * BH_FB_RING, closed ? "the driver closed the session" : "no hang-up",
	      rc ? strerror(-rc) : "the pattern drawn");
}

static int parse_mode(const char *v, struct bh_fb_mode *m)
{
	char end;

	return sscanf(v, "%ux%ux%u%c", &m->width, &m->height, &m->bpp, &end) == 3 ? 0 : -EINVAL;
}

/* the screen as we want it, drawn */
static int take_screen(const struct bh_fb_mode *want, const char *what)
{
	char why[80];
	int rc = connect_fb();

	if (rc)
		return rc;
	if (want->width &&
	    (mode.width != want->width || mode.height != want->height || mode.bpp != want->bpp)) {
		rc = mode_request(want->width, want->height, want->bpp, why, sizeof(why));
		printf("fb-pattern: mode %ux%ux%u: %s%s\n", want->width, want->height, want->bpp,
		       rc ? "refused: " : "set", rc ? why : "");
		if (rc)
			return rc;
	}
	return paint(what);
}

int main(int argc, char **argv)
{
	struct bh_fb_mode want = {0};
	bool hostile_ = false;
	unsigned int nbench = 0, reconnects = 0;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc &&
		    !parse_mode(argv[i + 1], &want))
			i++;
		else if (strcmp(argv[i], "--bench") == 0 && i + 1 < argc)
			nbench = (unsigned int) strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--hostile") == 0)
			hostile_ = true;
		else {
			fprintf(stderr, "fb-pattern: unknown argument '%s'\n", argv[i]);
			return 2;
		}
	}
	if (bh_core_open(&core) < 0) {
		fprintf(stderr, "fb-pattern: %s\n", bh_error(&core));
		return 1;
	}
	if (take_screen(&want, "drawn"))
		return 1;
	if (nbench)
		bench(nbench);
	if (hostile_) {
		hostile();
		printf("fb-pattern: hostile checks done: %u failed\n", failed);
	}
	/* stay the owner; when the driver goes, come back and redraw */
	for (;;) {
		struct bh_session_event ev;
		struct pollfd p = {.fd = s.fd, .events = POLLIN | POLLRDHUP};

		if (poll(&p, 1, 1000) < 0 && errno != EINTR)
			return 1;
		if (!(p.revents & (POLLHUP | POLLRDHUP | POLLERR))) {
			if (p.revents & POLLIN)
				bh_session_recv_event(&s, &ev);
			continue;
		}
		printf("fb-pattern: the driver hung up: reconnecting\n");
		bh_session_close(NULL, &s);
		/* core gone (it is stopping): nothing failed */
		rc = take_screen(&want, "redrawn after reconnect");
		if (rc)
			return bh_heartbeat(&core) < 0 ? 0 : 1;
		printf("fb-pattern: reconnected (%u)\n", ++reconnects);
	}
}
