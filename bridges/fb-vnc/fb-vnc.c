// SPDX-License-Identifier: MIT
/*
 * bulkhead-fb-vnc: the screen over VNC. A Capture session client (it sees
 * the picture and its damage, and cannot draw) and an Input session client
 * (keys and the pointer go to whoever owns the screen, e.g. term-fb). The
 * viewers connect to the TCP socket core listens on for it ('listen =
 * ADDR:PORT'; a component makes no sockets of its own).
 *
 * The RFB protocol, version 3.3, 3.7 or 3.8 (RFC 6143), security "None",
 * Raw encoding in the pixel format each viewer asks for (true colour, 8, 16
 * or 32 bits per pixel, either byte order), and the DesktopSize
 * pseudo-encoding (RFC 6143 7.8.2) for mode changes. Debian packages
 * libvncserver only as a shared library, and a component runs from an
 * empty root with no dynamic loader: so the server side is here, and the
 * test's viewer (tests/tools/vnc-type.c) is Debian's libvncclient.
 *
 * Every viewer is untrusted: its messages are parsed with their lengths
 * checked, a colour-map pixel format or an unknown message ends it with the
 * reason logged, cut text is skipped (at most CUT_MAX bytes), and an update
 * is built only when the last one has left (RFB is pull: a viewer that
 * reads slowly gets fewer, larger updates and slows no one else).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/framebuffer.h"
#include "bulkhead/input.h"
#include "bulkhead/session.h"

#define MAX_VIEWERS 4
#define IN_MAX 8192
#define CUT_MAX (1u << 20)
#define ENC_RAW 0
#define ENC_DESKTOP_SIZE (-223)
#define NAME "bulkhead"

enum state { VERSION, SECURITY, INIT, NORMAL };

struct pixfmt {
	uint8_t bpp, depth, big_endian, true_colour;
	uint16_t rmax, gmax, bmax;
	uint8_t rshift, gshift, bshift;
};

struct viewer {
	int fd;
	enum state state;
	int minor; /* protocol 3.minor */
	struct pixfmt pf;
	bool desktop_size, resized, wants;
	struct bh_fb_rect want;	 /* the region it asked for */
	struct bh_fb_rect dirty; /* changed since it last got it */
	uint8_t in[IN_MAX];
	size_t in_len;
	uint32_t skip; /* cut text still to skip */
	uint8_t *out;
	size_t out_len, out_off;
	uint64_t updates, bytes, keys;
};

static struct bh_core core;
static struct bh_session cap, input;
static bool input_open;
static struct bh_fb_mode mode;
static int lsock = -1;
static struct viewer viewers[MAX_VIEWERS];
static uint16_t mods;
static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
	(void) sig;
	stopping = 1;
}

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) (v >> 8);
	p[1] = (uint8_t) v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t) (p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t) get16(p) << 16 | get16(p + 2);
}

static struct bh_fb_rect screen(void)
{
	return (struct bh_fb_rect){.w = mode.width, .h = mode.height};
}

static void viewer_close(struct viewer *v, const char *why)
{
	printf("fb-vnc: viewer %d: %s (%llu updates, %llu bytes, %llu keys)\n",
	       (int) (v - viewers), why, (unsigned long long) v->updates,
	       (unsigned long long) v->bytes, (unsigned long long) v->keys);
	close(v->fd);
	free(v->out);
	memset(v, 0, sizeof(*v));
	v->fd = -1;
}

/* queue bytes for a viewer (small messages: the handshake) */
static int send_bytes(struct viewer *v, const void *p, size_t n)
{
	uint8_t *o = realloc(v->out, v->out_len + n);

	if (!o)
		return -ENOMEM;
	memcpy(o + v->out_len, p, n);
	v->out = o;
	v->out_len += n;
	return 0;
}

/* as much of the queue as the socket takes; <0 if the viewer is gone */
static int flush_out(struct viewer *v)
{
	while (v->out_off < v->out_len) {
		ssize_t n = send(v->fd, v->out + v->out_off, v->out_len - v->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n <= 0)
			return -EPIPE;
		v->out_off += (size_t) n;
		v->bytes += (uint64_t) n;
	}
	free(v->out);
	v->out = NULL;
	v->out_len = v->out_off = 0;
	return 0;
}

static const struct pixfmt server_pf = {.bpp = 32, .depth = 24, .true_colour = 1,
					 .rmax = 255, .gmax = 255, .bmax = 255,
					 .rshift = 16, .gshift = 8, .bshift = 0};

static void pf_put(uint8_t *p, const struct pixfmt *f)
{
	p[0] = f->bpp, p[1] = f->depth, p[2] = f->big_endian, p[3] = f->true_colour;
	put16(p + 4, f->rmax);
	put16(p + 6, f->gmax);
	put16(p + 8, f->bmax);
	p[10] = f->rshift, p[11] = f->gshift, p[12] = f->bshift;
	p[13] = p[14] = p[15] = 0;
}

static int server_init(struct viewer *v)
{
	uint8_t m[24 + sizeof(NAME) - 1];

	put16(m, mode.width);
	put16(m + 2, mode.height);
	pf_put(m + 4, &server_pf);
	put32(m + 20, sizeof(NAME) - 1);
	memcpy(m + 24, NAME, sizeof(NAME) - 1);
	v->pf = server_pf;
	return send_bytes(v, m, sizeof(m));
}

/* one pixel of the screen as 8-bit r, g, b */
static void rgb(const uint8_t *p, uint32_t *r, uint32_t *g, uint32_t *b)
{
	uint32_t v;

	switch (mode.bpp) {
	case 16:
		v = (uint32_t) p[0] | (uint32_t) p[1] << 8;
		*r = (v >> 11 & 0x1f) * 255 / 31, *g = (v >> 5 & 0x3f) * 255 / 63;
		*b = (v & 0x1f) * 255 / 31;
		break;
	case 15:
		v = (uint32_t) p[0] | (uint32_t) p[1] << 8;
		*r = (v >> 10 & 0x1f) * 255 / 31, *g = (v >> 5 & 0x1f) * 255 / 31;
		*b = (v & 0x1f) * 255 / 31;
		break;
	default:
		*r = p[2], *g = p[1], *b = p[0];
	}
}

/* 32-bit XRGB into a 32-bit little-endian true-colour format of 8 bits a channel */
static bool fast32(const struct pixfmt *f)
{
	return mode.bpp == 32 && f->bpp == 32 && !f->big_endian && f->rmax == 255 &&
	       f->gmax == 255 && f->bmax == 255 && f->rshift <= 24 && f->gshift <= 24 &&
	       f->bshift <= 24;
}

/* rectangle r of the screen in the viewer's pixel format, at o */
static void convert(const struct viewer *v, const struct bh_fb_rect *r, uint8_t *o)
{
	const struct pixfmt *f = &v->pf;
	uint32_t sb = bh_fb_bytes_pp(mode.bpp), db = f->bpp / 8;
	bool fast = fast32(f);

	for (uint32_t y = r->y; y < r->y + r->h; y++) {
		const uint8_t *p = cap.ps[0].bulk + (size_t) y * mode.pitch + (size_t) r->x * sb;
		if (fast && f->rshift == 16 && f->gshift == 8 && f->bshift == 0) {
			/* the screen's own format: the row as it is */
			memcpy(o, p, (size_t) r->w * 4);
			o += (size_t) r->w * 4;
			continue;
		}
		for (uint32_t x = 0; x < r->w; x++, p += sb, o += db) {
			uint32_t cr, cg, cb, px;
			if (fast) {
				px = (uint32_t) p[2] << f->rshift | (uint32_t) p[1] << f->gshift |
				     (uint32_t) p[0] << f->bshift;
				memcpy(o, &px, 4);
				continue;
			}
			rgb(p, &cr, &cg, &cb);
			px = (cr * f->rmax + 127) / 255 << f->rshift |
			     (cg * f->gmax + 127) / 255 << f->gshift |
			     (cb * f->bmax + 127) / 255 << f->bshift;
			for (uint32_t i = 0; i < db; i++)
				o[f->big_endian ? db - 1 - i : i] = (uint8_t) (px >> (8 * i));
		}
	}
}

/* an update, if one is asked for, there is something to send and the last one has left */
static int update(struct viewer *v)
{
	struct bh_fb_rect r;
	size_t size;
	uint8_t *o;

	if (v->state != NORMAL || !v->wants || v->out_len)
		return 0;
	if (v->resized) {
		o = v->out = calloc(1, 16);
		if (!o)
			return -ENOMEM;
		put16(o + 2, 1);
		put16(o + 8, mode.width);
		put16(o + 10, mode.height);
		put32(o + 12, (uint32_t) ENC_DESKTOP_SIZE);
		v->out_len = 16;
		v->resized = v->wants = false;
		v->dirty = screen();
		return flush_out(v);
	}
	r = bh_fb_rect_clip(&v->dirty, &v->want);
	if (!r.w)
		return 0;
	size = 16 + (size_t) r.w * r.h * (v->pf.bpp / 8);
	o = v->out = malloc(size);
	if (!o)
		return -ENOMEM;
	o[0] = 0, o[1] = 0;
	put16(o + 2, 1);
	put16(o + 4, r.x);
	put16(o + 6, r.y);
	put16(o + 8, r.w);
	put16(o + 10, r.h);
	put32(o + 12, ENC_RAW);
	convert(v, &r, o + 16);
	v->out_len = size;
	v->wants = false;
	v->updates++;
	/* what was sent is no longer dirty; the rest of the box stays, as a box */
	if (r.x == v->dirty.x && r.y == v->dirty.y && r.w == v->dirty.w && r.h == v->dirty.h)
		v->dirty = (struct bh_fb_rect){0};
	return flush_out(v);
}

static bool input_ready(void)
{
	static uint64_t retry_ns, failures;
	char why[160];

	if (input_open)
		return true;
	/* the screen's owner may be restarting: a short try, then none for a while */
	if (bh_coarse_ns() < retry_ns)
		return false;
	if (bh_session_connect(&core, BH_INPUT_SERVICE, 500, &input, why, sizeof(why))) {
		if (failures++ % 16 == 0)
			printf("fb-vnc: no input session (%s): keys and pointer dropped for 2 s\n",
			       why);
		retry_ns = bh_coarse_ns() + 2000000000ull;
		return false;
	}
	failures = 0;
	input_open = true;
	/* a stuck owner must not stop the screen: a full socket drops the event */
	fcntl(input.fd, F_SETFL, fcntl(input.fd, F_GETFL) | O_NONBLOCK);
	printf("fb-vnc: input goes to the screen's owner\n");
	return true;
}

static void input_sent(int rc)
{
	static uint64_t dropped;

	if (rc == 0)
		return;
	if (rc == -EAGAIN) {
		if (dropped++ % 1000 == 0)
			printf("fb-vnc: the screen's owner is behind: %llu events dropped\n",
			       (unsigned long long) dropped);
		return;
	}
	printf("fb-vnc: the input session ended (%s): reconnecting at the next event\n",
	       strerror(-rc));
	bh_session_close(NULL, &input);
	input_open = false;
}

static int set_pixel_format(struct viewer *v, const uint8_t *m)
{
	struct pixfmt f = {.bpp = m[4], .depth = m[5], .big_endian = m[6], .true_colour = m[7],
			   .rmax = get16(m + 8), .gmax = get16(m + 10), .bmax = get16(m + 12),
			   .rshift = m[14], .gshift = m[15], .bshift = m[16]};

	if ((f.bpp != 8 && f.bpp != 16 && f.bpp != 32) || !f.true_colour || !f.rmax ||
	    !f.gmax || !f.bmax || f.rshift >= f.bpp || f.gshift >= f.bpp || f.bshift >= f.bpp) {
		printf("fb-vnc: viewer %d: pixel format %u bpp, true colour %u, shifts "
		       "%u/%u/%u: only true colour in 8, 16 or 32 bits is served\n",
		       (int) (v - viewers), f.bpp, f.true_colour, f.rshift, f.gshift, f.bshift);
		return -EINVAL;
	}
	v->pf = f;
	v->dirty = screen();
	return 0;
}

/* one client message at m (n bytes there): its length once whole, 0 if not yet, <0 if bad */
static long message(struct viewer *v, const uint8_t *m, size_t n)
{
	size_t need;

	switch (m[0]) {
	case 0: /* SetPixelFormat */
		if (n < 20)
			return 0;
		return set_pixel_format(v, m) ? -EINVAL : 20;
	case 2: /* SetEncodings */
		if (n < 4)
			return 0;
		need = 4 + 4 * (size_t) get16(m + 2);
		if (need > IN_MAX)
			return -EMSGSIZE;
		if (n < need)
			return 0;
		for (size_t i = 4; i < need; i += 4)
			v->desktop_size |= (int32_t) get32(m + i) == ENC_DESKTOP_SIZE;
		return (long) need;
	case 3: { /* FramebufferUpdateRequest */
		struct bh_fb_rect r, s = screen();
		if (n < 10)
			return 0;
		r = (struct bh_fb_rect){get16(m + 2), get16(m + 4), get16(m + 6), get16(m + 8)};
		v->want = bh_fb_rect_clip(&r, &s);
		v->wants = true;
		if (!m[1])
			bh_fb_rect_union(&v->dirty, &v->want);
		return 10;
	}
	case 4: { /* KeyEvent */
		uint32_t k;
		if (n < 8)
			return 0;
		k = get32(m + 4);
		mods = bh_input_mods(mods, k, m[1]);
		v->keys++;
		if (input_ready())
			input_sent(bh_input_key(&input, k, m[1] != 0, mods));
		return 8;
	}
	case 5: { /* PointerEvent */
		uint32_t x, y;
		if (n < 6)
			return 0;
		x = get16(m + 2), y = get16(m + 4);
		if (input_open && x < mode.width && y < mode.height)
			input_sent(bh_input_pointer(&input, x, y, m[1]));
		return 6;
	}
	case 6: /* ClientCutText: not ours to take */
		if (n < 8)
			return 0;
		if (get32(m + 4) > CUT_MAX)
			return -EMSGSIZE;
		v->skip = get32(m + 4);
		return 8;
	default:
		printf("fb-vnc: viewer %d: message type %u is none of RFC 6143's\n",
		       (int) (v - viewers), m[0]);
		return -EPROTO;
	}
}

/* the handshake's steps, then messages; how much of in[] is used, 0 if not yet, <0 if bad */
static long step(struct viewer *v, const uint8_t *m, size_t n)
{
	static const uint8_t none_list[] = {1, 1}, result_ok[4] = {0}, none33[4] = {0, 0, 0, 1};

	switch (v->state) {
	case VERSION:
		if (n < 12)
			return 0;
		if (memcmp(m, "RFB 003.", 8) || m[11] != '\n' ||
		    (memcmp(m + 8, "003", 3) && memcmp(m + 8, "007", 3) &&
		     memcmp(m + 8, "008", 3))) {
			printf("fb-vnc: viewer %d: protocol '%.11s': not RFB 3.3, 3.7 or 3.8\n",
			       (int) (v - viewers), m);
			return -EPROTO;
		}
		v->minor = m[10] - '0';
		if (v->minor == 3) {
			v->state = INIT;
			return send_bytes(v, none33, 4) ?: 12;
		}
		v->state = SECURITY;
		return send_bytes(v, none_list, 2) ?: 12;
	case SECURITY:
		if (m[0] != 1) {
			printf("fb-vnc: viewer %d: security type %u: only None (1) is offered\n",
			       (int) (v - viewers), m[0]);
			return -EPROTO;
		}
		v->state = INIT;
		return (v->minor == 8 ? send_bytes(v, result_ok, 4) : 0) ?: 1;
	case INIT: /* ClientInit: shared or not, all viewers share here */
		v->state = NORMAL;
		return server_init(v) ?: 1;
	case NORMAL:
		if (v->skip) {
			uint32_t k = n < v->skip ? (uint32_t) n : v->skip;
			v->skip -= k;
			return k;
		}
		return message(v, m, n);
	}
	return -EPROTO;
}

static void viewer_read(struct viewer *v)
{
	ssize_t n = recv(v->fd, v->in + v->in_len, IN_MAX - v->in_len, MSG_DONTWAIT);
	size_t off = 0;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		viewer_close(v, n ? strerror(errno) : "disconnected");
		return;
	}
	v->in_len += (size_t) n;
	while (off < v->in_len) {
		long used = step(v, v->in + off, v->in_len - off);
		if (used < 0) {
			viewer_close(v, used == -EMSGSIZE ? "message too long: dropped"
							  : "protocol error: dropped");
			return;
		}
		if (!used)
			break;
		off += (size_t) used;
	}
	memmove(v->in, v->in + off, v->in_len - off);
	v->in_len -= off;
}

static void accept_viewers(void)
{
	for (;;) {
		int fd = accept4(lsock, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct viewer *v = NULL;

		if (fd < 0)
			return;
		for (int i = 0; i < MAX_VIEWERS && !v; i++)
			if (viewers[i].fd < 0)
				v = &viewers[i];
		if (!v) {
			printf("fb-vnc: a viewer refused: %d connected already\n", MAX_VIEWERS);
			close(fd);
			continue;
		}
		memset(v, 0, sizeof(*v));
		v->fd = fd;
		if (send_bytes(v, "RFB 003.008\n", 12) || flush_out(v))
			viewer_close(v, "cannot greet it");
		else
			printf("fb-vnc: viewer %d connected\n", (int) (v - viewers));
	}
}

static int connect_capture(void)
{
	struct bh_fb_info info;
	char why[160];
	int rc = bh_session_connect(&core, BH_CAPTURE_SERVICE, 30000, &cap, why, sizeof(why));

	if (rc) {
		fprintf(stderr, "fb-vnc: %s\n", why);
		return rc;
	}
	memcpy(&info, cap.info, sizeof(info));
	if (info.version != BH_FB_VERSION ||
	    bh_fb_mode_check(&info.mode, cap.ps[0].bulk_size, why, sizeof(why)) ||
	    info.mode.bpp < 15 || info.mode.width > UINT16_MAX || info.mode.height > UINT16_MAX) {
		fprintf(stderr, "fb-vnc: the driver's mode %ux%ux%u: %s\n", info.mode.width,
			info.mode.height, info.mode.bpp, why[0] ? why : "not true colour");
		bh_session_close(NULL, &cap);
		return -EPROTO;
	}
	mode = info.mode;
	printf("fb-vnc: watching %ux%ux%u (%s)\n", mode.width, mode.height, mode.bpp,
	       info.device);
	return 0;
}

static void all_dirty(const struct bh_fb_rect *r)
{
	for (int i = 0; i < MAX_VIEWERS; i++)
		if (viewers[i].fd >= 0)
			bh_fb_rect_union(&viewers[i].dirty, r);
}

/* the screen's damage, acknowledged; <0 if the stream broke */
static int take(void)
{
	struct bh_packet_stream *ps = &cap.ps[0];
	struct bh_ps_desc d[BH_FB_RING];
	int n = bh_ps_get(ps, d, BH_FB_RING);

	if (n <= 0)
		return n;
	for (int i = 0; i < n; i++) {
		struct bh_fb_rect r;
		d[i].status = bh_fb_damage_check(&mode, &d[i], &r);
		if (!d[i].status)
			all_dirty(&r);
	}
	bh_ps_put(ps, d, (unsigned int) n);
	bh_ps_flush(ps);
	return n;
}

static void mode_event(void)
{
	struct bh_session_event ev;
	struct bh_fb_mode_msg m;
	struct bh_fb_mode next;
	char why[80];

	if (bh_session_recv_event(&cap, &ev) != 1 || ev.type != BH_FB_EV_MODE)
		return;
	memcpy(&m, ev.data, sizeof(m));
	next = (struct bh_fb_mode){.width = m.width, .height = m.height, .bpp = m.bpp,
				   .pitch = m.width * bh_fb_bytes_pp(m.bpp)};
	if (next.bpp < 15 || bh_fb_mode_check(&next, cap.ps[0].bulk_size, why, sizeof(why)))
		return;
	if (next.width == mode.width && next.height == mode.height && next.bpp == mode.bpp)
		return;
	mode = next;
	printf("fb-vnc: mode %ux%ux%u\n", mode.width, mode.height, mode.bpp);
	for (int i = 0; i < MAX_VIEWERS; i++) {
		struct viewer *v = &viewers[i];
		if (v->fd < 0 || v->state != NORMAL)
			continue;
		if (v->desktop_size)
			v->resized = true;
		else
			viewer_close(v, "the mode changed and it takes no DesktopSize");
	}
}

int main(void)
{
	struct sigaction sa = {.sa_handler = on_term};
	char where[BH_NAME_MAX];
	uint64_t beat = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	for (int i = 0; i < MAX_VIEWERS; i++)
		viewers[i].fd = -1;
	if (bh_core_open(&core) < 0 || bh_listen_open(&core, where, &lsock) < 0) {
		fprintf(stderr, "fb-vnc: %s\n", bh_error(&core));
		return 1;
	}
	fcntl(lsock, F_SETFL, fcntl(lsock, F_GETFL) | O_NONBLOCK);
	if (connect_capture())
		return 1;
	printf("fb-vnc: ready: RFB on %s\n", where);
	while (!stopping) {
		struct bh_packet_stream *ps = &cap.ps[0];
		struct pollfd p[3 + MAX_VIEWERS];
		int rc = take(), who[MAX_VIEWERS];
		unsigned int np = 3;

		for (int i = 0; i < MAX_VIEWERS; i++)
			if (viewers[i].fd >= 0 &&
			    (flush_out(&viewers[i]) < 0 || update(&viewers[i]) < 0))
				viewer_close(&viewers[i], "gone while we sent");
		/* more damage may be waiting: look at the viewers, but do not sleep */
		int timeout = rc > 0 || (rc == 0 && !bh_ps_prepare_wait(ps)) ? 0 : 1000;
		p[0] = (struct pollfd){.fd = cap.fd, .events = POLLIN | POLLRDHUP};
		p[1] = (struct pollfd){.fd = bh_ps_wait_fd(ps), .events = POLLIN};
		p[2] = (struct pollfd){.fd = lsock, .events = POLLIN};
		for (int i = 0; i < MAX_VIEWERS; i++) {
			if (viewers[i].fd < 0)
				continue;
			who[np - 3] = i;
			p[np++] = (struct pollfd){
			    .fd = viewers[i].fd,
			    .events = (short) (POLLIN | (viewers[i].out_len ? POLLOUT : 0))};
		}
		if (rc >= 0) {
			if (poll(p, np, timeout) < 0 && errno != EINTR)
				return 1;
			if (bh_coarse_ns() - beat > 1000000000ull) {
				beat = bh_coarse_ns();
				if (bh_heartbeat(&core) < 0)
					break;
			}
			if (p[1].revents)
				bh_ps_drain_signal(ps);
			if (p[2].revents)
				accept_viewers();
			for (unsigned int k = 3; k < np; k++)
				if (p[k].revents & (POLLIN | POLLHUP | POLLERR))
					viewer_read(&viewers[who[k - 3]]);
			if (p[0].revents & POLLIN)
				mode_event();
			if (!(p[0].revents & (POLLHUP | POLLRDHUP | POLLERR)))
				continue;
		}
		printf("fb-vnc: the driver %s: reconnecting\n",
		       rc < 0 ? "broke the stream" : "hung up");
		bh_session_close(NULL, &cap);
		if (connect_capture())
			return bh_heartbeat(&core) < 0 ? 0 : 1;
		struct bh_fb_rect all = screen();
		all_dirty(&all);
	}
	for (int i = 0; i < MAX_VIEWERS; i++)
		if (viewers[i].fd >= 0)
			viewer_close(&viewers[i], "shutting down");
	return 0;
}
