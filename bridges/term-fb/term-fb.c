// SPDX-License-Identifier: MIT
/*
 * bulkhead-term-fb: a terminal on the isolated display. It owns the screen
 * (a Framebuffer session), keeps the terminal's state with libvterm, draws
 * each cell with a console font from Debian's console-setup (PSF, built
 * in: a component opens no files; meson option console_font), and types
 * what comes over the Input sessions it serves (keysyms from fb-vnc or
 * any other source) into a pty.
 *
 * The pty is core's (pty = NAME): its slave, /run/bulkhead/pty/NAME, is
 * this terminal's tty, as /dev/tty1 is the kernel console's; the system
 * runs a getty or a shell on it (a component may not start programs):
 *	stty -F /run/bulkhead/pty/NAME sane rows R cols C
 *	setsid -c sh -l <>/run/bulkhead/pty/NAME >&0 2>&0 &
 * R and C are in the log line "term-fb: ready: C x R cells" (the window
 * size is an ioctl, which no component may make).
 *
 * When the display driver restarts, term-fb reconnects and draws the whole
 * screen again from libvterm's state; the shell never notices.
 *
 * Logs "term-fb: drew N updates" now and then, and per input source what it
 * refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <vterm.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/framebuffer.h"
#include "bulkhead/input.h"
#include "bulkhead/service.h"
#include "bulkhead/session.h"
#include "psf.h"

#define MAX_SOURCES 4
#define PTY_PER_PASS (4u << 10)
#define OUT_MAX 4096

extern const uint8_t term_font_gz[], term_font_gz_end[];
__asm__(".section .rodata\n"
	".balign 16\n"
	".global term_font_gz\n"
	"term_font_gz:\n"
	".incbin \"" TERM_FONT "\"\n"
	".global term_font_gz_end\n"
	"term_font_gz_end:\n"
	".previous\n");

struct source {
	struct bh_session s;
	bool open;
	uint64_t events, bad;
};

struct term {
	struct bh_core core;
	int pty;
	char slave[BH_NAME_MAX];
	struct bh_session fb;
	bool fb_open;
	struct bh_fb_mode mode;
	uint32_t inflight;
	struct psf font;
	VTerm *vt;
	VTermScreen *vs;
	int rows, cols;
	/* cells to draw: [r0, r1) x [c0, c1), empty if r0 >= r1 */
	int r0, r1, c0, c1;
	/* pixels drawn, not yet reported to the driver */
	struct bh_fb_rect pending;
	VTermPos cursor;
	bool cursor_visible;
	struct bh_service in_svc;
	struct source src[MAX_SOURCES];
	uint8_t out[OUT_MAX];
	size_t out_len;
	uint64_t out_dropped, updates, pty_bytes;
};

static struct term t;
static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
	(void) sig;
	stopping = 1;
}

static void dirty(int r0, int r1, int c0, int c1)
{
	if (r0 < 0)
		r0 = 0;
	if (c0 < 0)
		c0 = 0;
	if (r1 > t.rows)
		r1 = t.rows;
	if (c1 > t.cols)
		c1 = t.cols;
	if (r0 >= r1 || c0 >= c1)
		return;
	if (t.r0 >= t.r1) {
		t.r0 = r0, t.r1 = r1, t.c0 = c0, t.c1 = c1;
		return;
	}
	t.r0 = r0 < t.r0 ? r0 : t.r0;
	t.r1 = r1 > t.r1 ? r1 : t.r1;
	t.c0 = c0 < t.c0 ? c0 : t.c0;
	t.c1 = c1 > t.c1 ? c1 : t.c1;
}

static int on_damage(VTermRect r, void *user)
{
	(void) user;
	dirty(r.start_row, r.end_row, r.start_col, r.end_col);
	return 1;
}

static int on_movecursor(VTermPos pos, VTermPos old, int visible, void *user)
{
	(void) user;
	dirty(old.row, old.row + 1, old.col, old.col + 1);
	dirty(pos.row, pos.row + 1, pos.col, pos.col + 1);
	t.cursor = pos;
	t.cursor_visible = visible;
	return 1;
}

static int on_prop(VTermProp prop, VTermValue *val, void *user)
{
	(void) user;
	if (prop == VTERM_PROP_CURSORVISIBLE) {
		t.cursor_visible = val->boolean;
		dirty(t.cursor.row, t.cursor.row + 1, t.cursor.col, t.cursor.col + 1);
	}
	return 1;
}

/* what libvterm answers (keys, replies to queries) goes to the shell */
static void on_output(const char *s, size_t len, void *user)
{
	(void) user;
	if (len > OUT_MAX - t.out_len) {
		t.out_dropped += len;
		return;
	}
	memcpy(t.out + t.out_len, s, len);
	t.out_len += len;
}

static uint32_t pixel(const VTermColor *c)
{
	uint8_t r = c->rgb.red, g = c->rgb.green, b = c->rgb.blue;

	switch (t.mode.bpp) {
	case 16:
		return (uint32_t) (r >> 3) << 11 | (uint32_t) (g >> 2) << 5 | b >> 3;
	case 15:
		return (uint32_t) (r >> 3) << 10 | (uint32_t) (g >> 3) << 5 | b >> 3;
	default:
		return (uint32_t) r << 16 | (uint32_t) g << 8 | b;
	}
}

static void put(uint8_t *p, uint32_t v, uint32_t bytes)
{
	for (uint32_t i = 0; i < bytes; i++)
		p[i] = (uint8_t) (v >> (8 * i));
}

static void draw_cell(int row, int col)
{
	VTermPos pos = {.row = row, .col = col};
	VTermScreenCell cell;
	VTermColor fg, bg;
	uint32_t bytes = bh_fb_bytes_pp(t.mode.bpp), pf, pb;
	uint8_t *base = t.fb.ps[0].bulk + (size_t) row * t.font.height * t.mode.pitch +
			(size_t) col * t.font.width * bytes;
	const uint8_t *g;
	bool inverse;

	if (!vterm_screen_get_cell(t.vs, pos, &cell))
		return;
	fg = cell.fg;
	bg = cell.bg;
	vterm_screen_convert_color_to_rgb(t.vs, &fg);
	vterm_screen_convert_color_to_rgb(t.vs, &bg);
	inverse = cell.attrs.reverse ^
		  (t.cursor_visible && row == t.cursor.row && col == t.cursor.col);
	pf = pixel(inverse ? &bg : &fg);
	pb = pixel(inverse ? &fg : &bg);
	/* the right half of a wide character: drawn with the left */
	g = psf_glyph(&t.font, cell.chars[0] == (uint32_t) -1 || !cell.chars[0] ? ' '
									       : cell.chars[0]);
	for (uint32_t y = 0; y < t.font.height; y++) {
		uint8_t *p = base + (size_t) y * t.mode.pitch;
		bool under = cell.attrs.underline && y == t.font.height - 1;
		for (uint32_t x = 0; x < t.font.width; x++, p += bytes)
			put(p, under || psf_bit(&t.font, g, x, y) ? pf : pb, bytes);
	}
}

/* the dirty cells into the picture; their pixels to report */
static void draw(void)
{
	struct bh_fb_rect r;

	vterm_screen_flush_damage(t.vs);
	if (!t.fb_open || t.r0 >= t.r1)
		return;
	for (int row = t.r0; row < t.r1; row++)
		for (int col = t.c0; col < t.c1; col++)
			draw_cell(row, col);
	r = (struct bh_fb_rect){.x = (uint32_t) t.c0 * t.font.width,
				.y = (uint32_t) t.r0 * t.font.height,
				.w = (uint32_t) (t.c1 - t.c0) * t.font.width,
				.h = (uint32_t) (t.r1 - t.r0) * t.font.height};
	bh_fb_rect_union(&t.pending, &r);
	t.r0 = t.r1 = 0;
}

/* acknowledgements back, and what is drawn reported; <0 if the stream broke */
static int report(void)
{
	struct bh_packet_stream *ps = &t.fb.ps[0];
	struct bh_ps_desc d[BH_FB_RING];
	int n = bh_ps_get(ps, d, BH_FB_RING);

	if (n < 0)
		return n;
	t.inflight -= (uint32_t) n < t.inflight ? (uint32_t) n : t.inflight;
	if (!t.pending.w || t.inflight >= BH_FB_RING)
		return 0;
	if (bh_fb_damage(&t.mode, &t.pending, 0, &d[0]) == 0 && bh_ps_put(ps, d, 1) == 1) {
		t.inflight++;
		t.updates++;
		bh_ps_flush(ps);
	}
	t.pending = (struct bh_fb_rect){0};
	return 0;
}

static int connect_fb(void)
{
	struct bh_fb_info info;
	char why[160];
	int rc = bh_session_connect(&t.core, BH_FB_SERVICE, 30000, &t.fb, why, sizeof(why));

	if (rc) {
		fprintf(stderr, "term-fb: %s\n", why);
		return rc;
	}
	memcpy(&info, t.fb.info, sizeof(info));
	if (info.version != BH_FB_VERSION ||
	    bh_fb_mode_check(&info.mode, t.fb.ps[0].bulk_size, why, sizeof(why)) ||
	    (info.mode.bpp != 32 && info.mode.bpp != 24 && info.mode.bpp != 16 &&
	     info.mode.bpp != 15)) {
		fprintf(stderr, "term-fb: the driver's mode %ux%ux%u: %s\n", info.mode.width,
			info.mode.height, info.mode.bpp, why[0] ? why : "not a true-colour mode");
		bh_session_close(NULL, &t.fb);
		return -EPROTO;
	}
	t.mode = info.mode;
	t.fb_open = true;
	t.inflight = 0;
	t.pending = (struct bh_fb_rect){0};
	return 0;
}

static void source_close(struct source *c, const char *why)
{
	printf("term-fb: input from %s: %s (%llu events, %llu refused)\n", c->s.peer, why,
	       (unsigned long long) c->events, (unsigned long long) c->bad);
	bh_session_close(&t.core, &c->s);
	c->open = false;
}

static void accept_sources(void)
{
	struct bh_input_info info = {
	    .version = BH_INPUT_VERSION, .width = t.mode.width, .height = t.mode.height};
	struct bh_session_request req;

	while (bh_service_next(&t.in_svc, &req) == 1) {
		struct source *c = NULL;
		for (int i = 0; i < MAX_SOURCES && !c; i++)
			if (!t.src[i].open)
				c = &t.src[i];
		if (!c || stopping) {
			printf("term-fb: refused an input session from %s: %s\n", req.client,
			       stopping ? "shutting down" : "too many sources");
			bh_service_refuse(&t.in_svc, &req);
			continue;
		}
		memset(c, 0, sizeof(*c));
		if (bh_session_offer(&t.core, 0, &req, BH_INPUT_SERVICE, NULL, 0, &info,
				     sizeof(info), &c->s)) {
			printf("term-fb: input session for %s failed\n", req.client);
			bh_session_close(&t.core, &c->s);
			continue;
		}
		c->open = true;
		/* events are taken until none is left: the socket must not block */
		fcntl(c->s.fd, F_SETFL, fcntl(c->s.fd, F_GETFL) | O_NONBLOCK);
		printf("term-fb: input from %s\n", req.client);
	}
}

static VTermModifier vmods(uint16_t m)
{
	return (m & BH_INPUT_MOD_SHIFT ? VTERM_MOD_SHIFT : 0) |
	       (m & BH_INPUT_MOD_CTRL ? VTERM_MOD_CTRL : 0) |
	       (m & (BH_INPUT_MOD_ALT | BH_INPUT_MOD_META) ? VTERM_MOD_ALT : 0);
}

static VTermKey vkey(uint32_t k)
{
	static const struct {
		uint32_t sym;
		VTermKey key;
	} keys[] = {
	    {BH_KEY_RETURN, VTERM_KEY_ENTER},	  {BH_KEY_KP_ENTER, VTERM_KEY_ENTER},
	    {BH_KEY_TAB, VTERM_KEY_TAB},	  {BH_KEY_BACKSPACE, VTERM_KEY_BACKSPACE},
	    {BH_KEY_ESCAPE, VTERM_KEY_ESCAPE},	  {BH_KEY_UP, VTERM_KEY_UP},
	    {BH_KEY_DOWN, VTERM_KEY_DOWN},	  {BH_KEY_LEFT, VTERM_KEY_LEFT},
	    {BH_KEY_RIGHT, VTERM_KEY_RIGHT},	  {BH_KEY_INSERT, VTERM_KEY_INS},
	    {BH_KEY_DELETE, VTERM_KEY_DEL},	  {BH_KEY_HOME, VTERM_KEY_HOME},
	    {BH_KEY_END, VTERM_KEY_END},	  {BH_KEY_PAGE_UP, VTERM_KEY_PAGEUP},
	    {BH_KEY_PAGE_DOWN, VTERM_KEY_PAGEDOWN},
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (keys[i].sym == k)
			return keys[i].key;
	if (k >= BH_KEY_F1 && k <= BH_KEY_F12)
		return VTERM_KEY_FUNCTION((int) (k - BH_KEY_F1 + 1));
	return VTERM_KEY_NONE;
}

static void key(const struct bh_input_event *e)
{
	uint32_t u = bh_input_unichar(e->keysym);
	VTermKey k = vkey(e->keysym);

	if (!e->down)
		return;
	if (u)
		vterm_keyboard_unichar(t.vt, u, vmods(e->mods));
	else if (k != VTERM_KEY_NONE)
		vterm_keyboard_key(t.vt, k, vmods(e->mods));
}

/* up to BH_INPUT_PER_PASS events of one source, each checked */
static void source_take(struct source *c)
{
	for (int i = 0; i < BH_INPUT_PER_PASS && c->open; i++) {
		struct bh_session_event ev;
		struct bh_input_event e;
		char why[96];
		int rc = bh_session_recv_event(&c->s, &ev);

		if (rc == -EAGAIN)
			return;
		if (rc == 0 || (rc < 0 && rc != -EPROTO)) {
			source_close(c, rc ? strerror(-rc) : "hung up");
			return;
		}
		c->events++;
		if (rc == -EPROTO) {
			snprintf(why, sizeof(why), "not an event (bad magic or size)");
		} else if (bh_input_check(&ev, t.mode.width, t.mode.height, &e, why,
					  sizeof(why)) == 0) {
			if (ev.type == BH_INPUT_EV_KEY)
				key(&e);
			continue;
		}
		if (c->bad++ < 4)
			printf("term-fb: input from %s: refused: %s\n", c->s.peer, why);
		if (c->bad > BH_INPUT_BAD_MAX)
			source_close(c, "too many bad events: session closed");
	}
}

/* the shell's output into libvterm, a bounded share per pass; <0 if the pty failed */
static int pty_take(void)
{
	char buf[4096];
	size_t got = 0;

	while (got < PTY_PER_PASS) {
		ssize_t n = read(t.pty, buf, sizeof(buf));
		if (n < 0 && (errno == EAGAIN || errno == EINTR || errno == EIO))
			return 0; /* EIO: no program has the slave open */
		if (n <= 0)
			return n < 0 ? -errno : 0;
		vterm_input_write(t.vt, buf, (size_t) n);
		got += (size_t) n;
		t.pty_bytes += (uint64_t) n;
	}
	return 1;
}

static void pty_give(void)
{
	ssize_t n;

	if (!t.out_len)
		return;
	n = write(t.pty, t.out, t.out_len);
	if (n <= 0)
		return;
	memmove(t.out, t.out + n, t.out_len - (size_t) n);
	t.out_len -= (size_t) n;
}

static int setup(void)
{
	static const VTermScreenCallbacks cb = {
	    .damage = on_damage, .movecursor = on_movecursor, .settermprop = on_prop};
	char why[160];

	if (psf_load_gz(&t.font, term_font_gz, (size_t) (term_font_gz_end - term_font_gz), why,
			sizeof(why))) {
		fprintf(stderr, "term-fb: the built-in font %s: %s\n", TERM_FONT, why);
		return -EINVAL;
	}
	if (bh_core_open(&t.core) < 0 || bh_pty_open(&t.core, t.slave, &t.pty) < 0) {
		fprintf(stderr, "term-fb: %s\n", bh_error(&t.core));
		return -EIO;
	}
	fcntl(t.pty, F_SETFL, fcntl(t.pty, F_GETFL) | O_NONBLOCK);
	if (connect_fb())
		return -EIO;
	t.cols = (int) (t.mode.width / t.font.width);
	t.rows = (int) (t.mode.height / t.font.height);
	t.vt = vterm_new(t.rows, t.cols);
	if (!t.vt)
		return -ENOMEM;
	vterm_set_utf8(t.vt, 1);
	vterm_output_set_callback(t.vt, on_output, NULL);
	t.vs = vterm_obtain_screen(t.vt);
	vterm_screen_set_callbacks(t.vs, &cb, NULL);
	/* full-screen programs (vi, top, less) get their own screen, and leave ours as it was */
	vterm_screen_enable_altscreen(t.vs, 1);
	vterm_screen_reset(t.vs, 1);
	t.cursor_visible = true;
	if (bh_service_open(&t.in_svc, &t.core, BH_INPUT_SERVICE, 0, MAX_SOURCES) < 0) {
		fprintf(stderr, "term-fb: %s\n", bh_error(&t.core));
		return -EIO;
	}
	dirty(0, t.rows, 0, t.cols);
	printf("term-fb: font %s: %u glyphs of %ux%u\n", TERM_FONT, t.font.nglyphs, t.font.width,
	       t.font.height);
	printf("term-fb: ready: %d x %d cells on %ux%ux%u, tty %s (stty rows %d cols %d)\n",
	       t.cols, t.rows, t.mode.width, t.mode.height, t.mode.bpp, t.slave, t.rows, t.cols);
	return 0;
}

/* the driver went away: the same screen again from libvterm once it is back */
static int reconnect(void)
{
	printf("term-fb: the driver hung up: reconnecting\n");
	bh_session_close(NULL, &t.fb);
	t.fb_open = false;
	if (connect_fb())
		return -EIO;
	if (t.mode.width / t.font.width != (uint32_t) t.cols ||
	    t.mode.height / t.font.height != (uint32_t) t.rows) {
		fprintf(stderr, "term-fb: the driver came back in %ux%u: not our %dx%d cells\n",
			t.mode.width, t.mode.height, t.cols, t.rows);
		return -EIO;
	}
	dirty(0, t.rows, 0, t.cols);
	printf("term-fb: reconnected: screen redrawn\n");
	return 0;
}

int main(void)
{
	struct sigaction sa = {.sa_handler = on_term};
	uint64_t logged = 0, beat = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	t.in_svc.channel = -1;
	if (setup())
		return 1;
	while (!stopping) {
		struct pollfd p[4 + MAX_SOURCES];
		unsigned int np = 0;
		int busy;

		bh_service_pass(&t.in_svc);
		accept_sources();
		for (int i = 0; i < MAX_SOURCES; i++)
			if (t.src[i].open)
				source_take(&t.src[i]);
		pty_give();
		busy = pty_take();
		if (busy < 0) {
			fprintf(stderr, "term-fb: the pty: %s\n", strerror(-busy));
			return 1;
		}
		draw();
		if (report() < 0 && reconnect())
			return 1;
		if (bh_coarse_ns() - beat > 200000000ull) {
			beat = bh_coarse_ns();
			if (bh_heartbeat(&t.core) < 0)
				break;
			if (t.updates >= logged + 64 || (t.updates != logged && !busy)) {
				logged = t.updates;
				printf("term-fb: drew %llu updates, %llu bytes from the shell\n",
				       (unsigned long long) t.updates,
				       (unsigned long long) t.pty_bytes);
			}
		}
		/* more to do: look at everything else, but do not sleep */
		int timeout = busy || t.r0 < t.r1 ? 0 : 200;
		/* acknowledgements matter only while something waits to be reported */
		if (t.pending.w && !bh_ps_prepare_wait(&t.fb.ps[0]))
			timeout = 0;
		p[np++] = (struct pollfd){.fd = t.core.fd};
		p[np++] = (struct pollfd){.fd = bh_service_fd(&t.in_svc), .events = POLLIN};
		p[np++] = (struct pollfd){.fd = t.pty, .events = POLLIN | (t.out_len ? POLLOUT : 0)};
		p[np++] = (struct pollfd){.fd = t.fb.fd, .events = POLLIN | POLLRDHUP};
		if (t.pending.w)
			p[np++] = (struct pollfd){.fd = bh_ps_wait_fd(&t.fb.ps[0]), .events = POLLIN};
		for (int i = 0; i < MAX_SOURCES; i++)
			if (t.src[i].open)
				p[np++] = (struct pollfd){.fd = t.src[i].s.fd, .events = POLLIN};
		if (poll(p, np, timeout) < 0 && errno != EINTR)
			return 1;
		if (p[0].revents) {
			printf("term-fb: core closed our connection: shutting down\n");
			break;
		}
		if (p[3].revents & (POLLHUP | POLLRDHUP | POLLERR)) {
			if (reconnect())
				return 1;
		} else if (p[3].revents & POLLIN) {
			struct bh_session_event ev;
			/* mode answers we never asked for: nothing to do */
			bh_session_recv_event(&t.fb, &ev);
		}
		if (np > 4 && p[4].fd == bh_ps_wait_fd(&t.fb.ps[0]) && p[4].revents)
			bh_ps_drain_signal(&t.fb.ps[0]);
	}
	for (int i = 0; i < MAX_SOURCES; i++)
		if (t.src[i].open)
			source_close(&t.src[i], "shutting down");
	return 0;
}
