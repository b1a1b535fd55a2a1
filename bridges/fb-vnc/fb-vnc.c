// SPDX-License-Identifier: MIT
/*
 * bulkhead-fb-vnc: the screen over VNC, with libvncserver. A Capture
 * session client (it sees the picture and its damage, and cannot draw) and
 * an Input session client (keys and the pointer go to whoever owns the
 * screen, e.g. term-fb). The viewers connect to the TCP socket core listens
 * on for it ('listen = ADDR:PORT'; a component makes no sockets of its own).
 *
 * libvncserver serves RFB (RFC 6143: 3.3-3.8, its encodings, DesktopSize
 * for mode changes) from the capture session's buffer, which is its
 * frameBuffer as it is: each damage rectangle the driver reports is marked
 * modified (rfbMarkRectAsModified), and libvncserver sends what each viewer
 * asked for. Its loop is ours: it makes no socket and starts no thread
 * (socketState is READY before rfbInitServer, so it opens no listening
 * socket; core's is polled here, and each viewer accept4()ed here is handed
 * over with rfbNewClient); rfbProcessEvents runs after each of our polls.
 * Keys and pointer come from its kbdAddEvent and ptrAddEvent callbacks. It
 * is linked as Debian ships it, a shared library: core gives the component
 * its loader and libraries (core/libs.c).
 *
 * Every viewer is untrusted, and libvncserver checks its messages (cut text
 * over 1 MiB ends it); at most MAX_VIEWERS at once; a viewer that stops
 * reading in the middle of an update holds the bridge up to MAX_WAIT_MS,
 * then it is dropped (libvncserver writes each update whole). Keys wait in
 * a queue while the owner's socket is full, and the viewers are not read
 * until it has drained: a key is late rather than lost.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <rfb/rfb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/framebuffer.h"
#include "bulkhead/input.h"
#include "bulkhead/service.h"
#include "bulkhead/session.h"

#define MAX_VIEWERS 4
#define MAX_WAIT_MS 2000
#define QUEUE 256 /* input events waiting for the owner's socket */
#define NAME "bulkhead"

enum { POLL_CAPTURE, POLL_DAMAGE, POLL_LISTEN, POLL_VIEWER, POLL_INPUT };

/* a key or a pointer event on its way to the screen's owner */
struct event {
	bool key;
	uint32_t keysym, x, y;
	bool down;
	uint16_t mods;
	uint8_t buttons;
};

struct viewer {
	int id;
	uint64_t keys;
};

static struct bh_core core;
static struct bh_session cap, input;
static bool input_open;
static struct bh_fb_mode mode;
static rfbScreenInfoPtr screen;
static int lsock = -1, viewers, next_id;
static uint16_t mods;
static struct event queue[QUEUE];
static unsigned int q_head, q_len;
static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
	(void)sig;
	stopping = 1;
}

/* libvncserver's errors, on our output with our prefix (its chatter is dropped) */
static void vnc_quiet(const char *fmt, ...)
{
	(void)fmt;
}

static void vnc_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("fb-vnc: libvncserver: ", stdout);
	vprintf(fmt, ap);
	va_end(ap);
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

/*
 * the queued events, in order, as far as the owner's socket takes them.
 * While any wait, the viewers are not read (backpressure: a key typed
 * while the owner is busy is late, never lost); events that would
 * overflow the queue are dropped
 */
static void input_flush(void)
{
	while (q_len && input_ready()) {
		const struct event *e = &queue[q_head];
		int rc = e->key ? bh_input_key(&input, e->keysym, e->down, e->mods)
				: bh_input_pointer(&input, e->x, e->y, e->buttons);
		if (rc == -EAGAIN)
			return;
		if (rc) {
			printf("fb-vnc: the input session ended (%s): reconnecting\n", strerror(-rc));
			bh_session_close(NULL, &input);
			input_open = false;
			continue;
		}
		q_head = (q_head + 1) % QUEUE;
		q_len--;
	}
	/* no owner to give them to: they go */
	if (!input_open)
		q_len = 0;
}

static void input_queue(const struct event *e)
{
	static uint64_t dropped;

	if (q_len == QUEUE) {
		if (dropped++ % 1000 == 0)
			printf("fb-vnc: the screen's owner is behind: %llu events dropped\n",
			       (unsigned long long)dropped);
		return;
	}
	queue[(q_head + q_len++) % QUEUE] = *e;
	input_flush();
}

/* a viewer's key (an X11 keysym, as RFB carries it: RFC 6143 7.5.4) */
static void on_key(rfbBool down, rfbKeySym k, rfbClientPtr cl)
{
	struct viewer *v = cl->clientData;

	mods = bh_input_mods(mods, k, down);
	v->keys++;
	input_queue(&(struct event){ .key = true, .keysym = k, .down = down != 0, .mods = mods });
}

/* a viewer's pointer (RFC 6143 7.5.5), inside the screen only */
static void on_pointer(int buttons, int x, int y, rfbClientPtr cl)
{
	(void)cl;
	if (input_open && x >= 0 && y >= 0 && (uint32_t)x < mode.width &&
	    (uint32_t)y < mode.height)
		input_queue(&(struct event){ .x = (uint32_t)x, .y = (uint32_t)y,
					     .buttons = (uint8_t)buttons });
}

static void on_gone(rfbClientPtr cl)
{
	struct viewer *v = cl->clientData;

	printf("fb-vnc: viewer %d: disconnected (%d updates, %d bytes, %llu keys)\n", v->id,
	       rfbStatGetMessageCountSent(cl, rfbFramebufferUpdate), rfbStatGetSentBytes(cl),
	       (unsigned long long)v->keys);
	free(v);
	viewers--;
}

static enum rfbNewClientAction on_viewer(rfbClientPtr cl)
{
	struct viewer *v;

	if (viewers == MAX_VIEWERS) {
		printf("fb-vnc: a viewer refused: %d connected already\n", MAX_VIEWERS);
		return RFB_CLIENT_REFUSE;
	}
	v = calloc(1, sizeof(*v));
	if (!v)
		return RFB_CLIENT_REFUSE;
	v->id = next_id++;
	cl->clientData = v;
	cl->clientGoneHook = on_gone;
	viewers++;
	printf("fb-vnc: viewer %d connected (%s)\n", v->id, cl->host);
	return RFB_CLIENT_ACCEPT;
}

/* the screen's pixel format as RFB's (RFC 6143 7.4): XRGB8888, RGB565 or XRGB1555 */
static void server_format(void)
{
	rfbPixelFormat *f = &screen->serverFormat;
	rfbClientIteratorPtr it;
	rfbClientPtr cl;

	f->bigEndian = 0;
	if (mode.bpp == 32) {
		f->redMax = f->greenMax = f->blueMax = 255;
		f->redShift = 16, f->greenShift = 8, f->blueShift = 0;
	} else {
		f->redMax = f->blueMax = 31;
		f->greenMax = mode.bpp == 16 ? 63 : 31;
		f->redShift = mode.bpp == 16 ? 11 : 10, f->greenShift = 5, f->blueShift = 0;
	}
	screen->paddedWidthInBytes = (int)mode.pitch;
	/* each viewer's translation from the format now in force */
	it = rfbGetClientIterator(screen);
	while ((cl = rfbClientIteratorNext(it)))
		rfbSetTranslateFunction(cl);
	rfbReleaseClientIterator(it);
}

/* the screen becomes the capture session's buffer in mode; viewers see all of it again */
static void show(void)
{
	char *fb = (char *)cap.ps[0].bulk;
	int bpp = (int)bh_fb_bytes_pp(mode.bpp);

	if (screen->width == (int)mode.width && screen->height == (int)mode.height &&
	    screen->bitsPerPixel == 8 * bpp) {
		screen->frameBuffer = fb;
		screen->paddedWidthInBytes = (int)mode.pitch;
		rfbMarkRectAsModified(screen, 0, 0, (int)mode.width, (int)mode.height);
		return;
	}
	/* DesktopSize (RFC 6143 7.8.2) for viewers that take it */
	rfbNewFramebuffer(screen, fb, (int)mode.width, (int)mode.height, mode.bpp == 32 ? 8 : 5, 3,
			  bpp);
	server_format();
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

/* the screen's damage, marked for the viewers and acknowledged; <0 if the stream broke */
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
			rfbMarkRectAsModified(screen, (int)r.x, (int)r.y, (int)(r.x + r.w),
					      (int)(r.y + r.h));
	}
	bh_ps_put(ps, d, (unsigned int)n);
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
	next = (struct bh_fb_mode){ .width = m.width, .height = m.height, .bpp = m.bpp,
				    .pitch = m.width * bh_fb_bytes_pp(m.bpp) };
	if (next.bpp < 15 || next.width > UINT16_MAX || next.height > UINT16_MAX ||
	    bh_fb_mode_check(&next, cap.ps[0].bulk_size, why, sizeof(why)))
		return;
	if (next.width == mode.width && next.height == mode.height && next.bpp == mode.bpp)
		return;
	mode = next;
	printf("fb-vnc: mode %ux%ux%u\n", mode.width, mode.height, mode.bpp);
	show();
}

/* the viewers core's socket has waiting, each handed to libvncserver */
static void accept_viewers(void)
{
	int fd;

	while ((fd = accept4(lsock, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
		rfbNewClient(screen, fd); /* it closes the refused */
}

/*
 * what to sleep on: the capture session, its damage, core's socket, and
 * each viewer, or the owner's socket while input waits for it
 */
static void fill(struct bh_pollset *p)
{
	rfbClientIteratorPtr it = rfbGetClientIterator(screen);
	rfbClientPtr cl;

	p->n = p->next = 0;
	bh_pollset_add(p, cap.fd, POLLIN | POLLRDHUP, POLL_CAPTURE);
	bh_pollset_add(p, bh_ps_wait_fd(&cap.ps[0]), POLLIN, POLL_DAMAGE);
	bh_pollset_add(p, lsock, POLLIN, POLL_LISTEN);
	if (q_len)
		bh_pollset_add(p, input.fd, POLLOUT, POLL_INPUT);
	while ((cl = rfbClientIteratorNext(it)))
		if (cl->sock >= 0 && !q_len)
			bh_pollset_add(p, cl->sock, POLLIN, POLL_VIEWER);
	rfbReleaseClientIterator(it);
}

/* the viewers' updates only, while their input waits */
static void updates_only(void)
{
	rfbClientIteratorPtr it = rfbGetClientIterator(screen);
	rfbClientPtr cl;

	while ((cl = rfbClientIteratorNext(it)))
		rfbUpdateClient(cl);
	rfbReleaseClientIterator(it);
}

int main(void)
{
	struct sigaction sa = { .sa_handler = on_term };
	char where[BH_NAME_MAX], *argv[] = { "fb-vnc", NULL };
	int argc = 1;
	uint64_t beat = 0;
	struct bh_pollset p;

	setvbuf(stdout, NULL, _IOLBF, 0);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	rfbLog = vnc_quiet;
	rfbErr = vnc_log;
	if (bh_core_open(&core) < 0 || bh_listen_open(&core, where, &lsock) < 0) {
		fprintf(stderr, "fb-vnc: %s\n", bh_error(&core));
		return 1;
	}
	fcntl(lsock, F_SETFL, fcntl(lsock, F_GETFL) | O_NONBLOCK);
	if (connect_capture())
		return 1;
	screen = rfbGetScreen(&argc, argv, (int)mode.width, (int)mode.height,
			      mode.bpp == 32 ? 8 : 5, 3, (int)bh_fb_bytes_pp(mode.bpp));
	if (!screen) {
		fprintf(stderr, "fb-vnc: libvncserver: rfbGetScreen failed\n");
		return 1;
	}
	screen->desktopName = NAME;
	screen->frameBuffer = (char *)cap.ps[0].bulk;
	screen->alwaysShared = TRUE;
	screen->kbdAddEvent = on_key;
	screen->ptrAddEvent = on_pointer;
	screen->newClientHook = on_viewer;
	screen->cursor = NULL;	     /* it would draw one into the picture, which is not ours */
	screen->deferUpdateTime = 0; /* an update as soon as there is one: our loop waits */
	screen->deferPtrUpdateTime = 0;
	screen->maxClientWait = MAX_WAIT_MS;
	screen->listenSock = screen->listen6Sock = RFB_INVALID_SOCKET;
	screen->socketState = RFB_SOCKET_READY; /* the socket is core's, polled here */
	server_format();
	rfbInitServer(screen);
	printf("fb-vnc: ready: RFB on %s (libvncserver %s)\n", where, LIBVNCSERVER_VERSION);
	while (!stopping) {
		int rc = take(), who, fd;

		(void)fd;
		bool hung_up = rc < 0;

		/* more damage may be waiting: serve the viewers, but do not sleep */
		int timeout = rc > 0 || (rc == 0 && !bh_ps_prepare_wait(&cap.ps[0])) ? 0 : 1000;
		fill(&p);
		if (!hung_up && bh_pollset_wait(&p, timeout) < 0)
			return 1;
		bh_heartbeat_every(&core, &beat, 1000, "fb-vnc");
		while (!hung_up && bh_pollset_next(&p, &who, &fd)) {
			short ev = p.p[p.next - 1].revents;
			if (who == POLL_DAMAGE)
				bh_ps_drain_signal(&cap.ps[0]);
			else if (who == POLL_LISTEN)
				accept_viewers();
			else if (who == POLL_CAPTURE && (ev & POLLIN))
				mode_event();
			if (who == POLL_CAPTURE && (ev & (POLLHUP | POLLRDHUP | POLLERR)))
				hung_up = true;
		}
		if (!hung_up) {
			input_flush();
			if (q_len)
				updates_only();
			else
				rfbProcessEvents(screen, 0); /* the viewers' messages and updates */
			continue;
		}
		printf("fb-vnc: the driver %s: reconnecting\n",
		       rc < 0 ? "broke the stream" : "hung up");
		screen->frameBuffer = NULL;
		bh_session_close(NULL, &cap);
		if (connect_capture())
			return bh_heartbeat(&core) < 0 ? 0 : 1;
		show();
	}
	rfbShutdownServer(screen, TRUE);
	rfbScreenCleanup(screen);
	return 0;
}
