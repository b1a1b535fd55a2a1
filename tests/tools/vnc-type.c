// SPDX-License-Identifier: MIT
/*
 * vnc-type: a VNC viewer for the tests, with Debian's libvncclient (a plain
 * program run as root in the test machine, not a component).
 *
 *   vnc-type HOST PORT [--type TEXT]... [--quiet-ms N] [--png FILE]
 *   vnc-type HOST PORT --bench SECONDS
 *
 * It connects, waits for the whole screen, types each TEXT as key presses
 * and releases ('\n' is Return), reads updates until the screen has been
 * still for N ms (default 1500), and writes what it sees as a PNG. It
 * prints "vnc-type: screen WxH 'NAME'", "vnc-type: typed N keys" and
 * "vnc-type: N updates, N pixels, the last T s after the last key" and
 * exits 0, or says what failed. --bench asks for the whole screen, not
 * incrementally, again each time it has come, for SECONDS, and prints
 * "vnc-type: bench: N full-screen updates in S s: F per second, M MB/s".
 */
#include <png.h>
#include <rfb/rfbclient.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned long updates, pixels;
static double last_update;

static double now(void);

static void got(rfbClient *c, int x, int y, int w, int h)
{
	(void) c, (void) x, (void) y;
	updates++;
	pixels += (unsigned long) w * h;
	last_update = now();
}

static void quiet_log(const char *fmt, ...)
{
	(void) fmt;
}

static void err_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("vnc-type: libvncclient: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* read updates until none came for quiet seconds (or limit seconds passed); 0 or -1 */
static int settle(rfbClient *c, double quiet, double limit)
{
	double start = now(), last = now();

	while (now() - last < quiet && now() - start < limit) {
		unsigned long before = updates;
		int n = WaitForMessage(c, 100000);
		if (n < 0 || (n > 0 && !HandleRFBServerMessage(c)))
			return -1;
		if (updates != before)
			last = now();
	}
	return 0;
}

static unsigned long finished;

static void done(rfbClient *c)
{
	(void) c;
	finished++;
}

/* whole-screen updates, one asked for at a time: fb-vnc's own rate */
static int bench(rfbClient *c, double seconds)
{
	double t0 = now(), s;
	unsigned long n = 0;

	c->FinishedFrameBufferUpdate = done;
	while (now() - t0 < seconds) {
		unsigned long before = finished;
		if (!SendFramebufferUpdateRequest(c, 0, 0, c->width, c->height, FALSE))
			return -1;
		while (finished == before) {
			int r = WaitForMessage(c, 1000000);
			if (r < 0 || (r > 0 && !HandleRFBServerMessage(c)))
				return -1;
		}
		n++;
	}
	s = now() - t0;
	printf("vnc-type: bench: %lu full-screen updates of %dx%d in %.2f s: %.1f per second, "
	       "%.0f MB/s\n",
	       n, c->width, c->height, s, n / s, n * 4.0 * c->width * c->height / s / 1e6);
	return 0;
}

static int write_png(rfbClient *c, const char *path)
{
	png_image img = {.version = PNG_IMAGE_VERSION,
			 .width = (png_uint_32) c->width,
			 .height = (png_uint_32) c->height,
			 .format = PNG_FORMAT_RGBA};

	/* rfbGetClient(8, 3, 4): bytes R, G, B, unused in memory */
	for (int i = 0; i < c->width * c->height; i++)
		c->frameBuffer[i * 4 + 3] = 0xff;
	if (!png_image_write_to_file(&img, path, 0, c->frameBuffer, 0, NULL)) {
		fprintf(stderr, "vnc-type: %s: %s\n", path, img.message);
		return -1;
	}
	return 0;
}

static void type(rfbClient *c, const char *s, unsigned long *keys)
{
	for (; *s; s++) {
		uint32_t k = *s == '\n' ? 0xff0d : (unsigned char) *s;
		SendKeyEvent(c, k, TRUE);
		SendKeyEvent(c, k, FALSE);
		++*keys;
	}
}

int main(int argc, char **argv)
{
	const char *png = NULL;
	double quiet = 1.5, typed_at = 0, settled_from;
	unsigned long updates0, pixels0;
	unsigned long keys = 0;
	rfbClient *c;

	if (argc < 3) {
		fprintf(stderr, "usage: vnc-type HOST PORT [--type TEXT]... [--quiet-ms N] "
				"[--png FILE]\n");
		return 2;
	}
	rfbClientLog = quiet_log;
	rfbClientErr = err_log;
	c = rfbGetClient(8, 3, 4);
	c->serverHost = strdup(argv[1]);
	c->serverPort = atoi(argv[2]);
	c->GotFrameBufferUpdate = got;
	if (!rfbInitClient(c, NULL, NULL)) {
		fprintf(stderr, "vnc-type: cannot connect to %s:%s\n", argv[1], argv[2]);
		return 1;
	}
	if (settle(c, 0.5, 120) || !updates) {
		fprintf(stderr, "vnc-type: no picture from the server\n");
		return 1;
	}
	printf("vnc-type: screen %dx%d '%s', first picture in %lu updates\n", c->width, c->height,
	       c->desktopName, updates);
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--type") && i + 1 < argc) {
			type(c, argv[++i], &keys);
			typed_at = now();
			/* each line as a person would: let the terminal answer first */
			if (settle(c, 0.3, 60))
				return 1;
		} else if (!strcmp(argv[i], "--quiet-ms") && i + 1 < argc) {
			quiet = atoi(argv[++i]) / 1000.0;
		} else if (!strcmp(argv[i], "--bench") && i + 1 < argc) {
			if (bench(c, atof(argv[++i])))
				return 1;
		} else if (!strcmp(argv[i], "--png") && i + 1 < argc) {
			png = argv[++i];
		} else {
			fprintf(stderr, "vnc-type: unknown argument '%s'\n", argv[i]);
			return 2;
		}
	}
	printf("vnc-type: typed %lu keys\n", keys);
	updates0 = updates, pixels0 = pixels, settled_from = now();
	if (settle(c, quiet, 120)) {
		fprintf(stderr, "vnc-type: the server went away\n");
		return 1;
	}
	printf("vnc-type: %lu updates, %lu pixels; after the last line's settling: %lu "
	       "updates, %.1f Mpixel in %.2f s; the last update %.2f s after the last key\n",
	       updates, pixels, updates - updates0, (pixels - pixels0) / 1e6,
	       updates > updates0 ? last_update - settled_from : 0.0,
	       typed_at && last_update > typed_at ? last_update - typed_at : 0.0);
	if (png && write_png(c, png))
		return 1;
	rfbClientCleanup(c);
	return 0;
}
