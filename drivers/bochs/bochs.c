// SPDX-License-Identifier: MIT
/*
 * bulkhead-bochs: QEMU's VGA and bochs-display (1234:1111), natively,
 * through the DISPI registers in BAR2 (VFIO passes no ports 0x1ce/0x1cf).
 *
 * Init: the ID register must read 0xB0C0-0xB0C5; video memory is
 * VIDEO_MEMORY_64K * 64 KiB (at most BAR0); EDID's first detailed timing is
 * the preferred mode; little-endian byte order where the QEMU extension
 * registers exist. A mode is checked before it is set (bpp the device
 * takes, xres a multiple of 8, QEMU's limits, the picture within video
 * memory) and read back after: a refusal says why.
 *
 * Serves "framebuffer" (one client draws) and "capture" (readers look); see
 * bulkhead/framebuffer.h. Damage is copied from the client's buffer to
 * video memory, and from video memory to each reader's buffer.
 *
 * Every BEAT_MS: a heartbeat, and a look at the device: an ID that is no
 * longer 0xB0Cx means it stopped answering (exit, core resets it); mode
 * registers changed under us are set again and the picture redrawn from the
 * owner's buffer.
 *
 * Fault injection (BULKHEAD_FAULTS=1, lib/fault.c): bad-desc scribbles the
 * XRES register, as a stray write would; the health check repairs it.
 *
 * usage: bulkhead-bochs [--mode WxHxBPP]
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/fault.h"
#include "bulkhead/framebuffer.h"
#include "bulkhead/service.h"
#include "bulkhead/session.h"
#include "regs.h"

#define BEAT_MS 200
#define MAX_READERS 4
#define CLASS_VGA 0x0300 /* class/subclass: VGA-compatible, with the VGA ports */

struct client {
	struct bh_session s;
	bool open;
	bool full_pending; /* reader: its ring was full; the whole screen goes next */
	uint64_t damage, refused;
};

struct bochs {
	struct bh_core core;
	unsigned int dev;
	struct bh_mmio fb, mmio;
	bool vga;
	uint16_t id;
	uint64_t vram;
	struct bh_fb_mode mode;
	char name[40];
	struct bh_service fb_svc, cap_svc;
	struct client owner;
	struct client reader[MAX_READERS];
	uint64_t last_beat_ns;
	unsigned int restores;
	uint64_t garbage; /* malformed events from clients */
};

static volatile sig_atomic_t stopping;
static volatile sig_atomic_t fault_pending;

static uint16_t dispi_read(struct bochs *b, enum dispi_index i)
{
	__asm__ volatile("" ::: "memory");
	return *(volatile uint16_t *) (b->mmio.base + DISPI_REG(i));
}

static void dispi_write(struct bochs *b, enum dispi_index i, uint16_t v)
{
	__asm__ volatile("" ::: "memory");
	*(volatile uint16_t *) (b->mmio.base + DISPI_REG(i)) = v;
}

static uint8_t mmio_read8(struct bochs *b, size_t off)
{
	__asm__ volatile("" ::: "memory");
	return *(volatile uint8_t *) (b->mmio.base + off);
}

static void mmio_write8(struct bochs *b, size_t off, uint8_t v)
{
	__asm__ volatile("" ::: "memory");
	*(volatile uint8_t *) (b->mmio.base + off) = v;
}

static void on_term(int sig)
{
	(void) sig;
	stopping = 1;
}

/* signal context: only note it */
static void on_bad_desc(void *arg)
{
	(void) arg;
	fault_pending = 1;
}

/* EDID 1.4 section 3.10: the first detailed timing is the preferred mode */
static bool edid_preferred(struct bochs *b, uint32_t *w, uint32_t *h)
{
	static const uint8_t header[8] = {0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0};
	uint8_t e[128], sum = 0;

	for (unsigned int i = 0; i < sizeof(e); i++) {
		e[i] = mmio_read8(b, BOCHS_EDID + i);
		sum += e[i];
	}
	if (memcmp(e, header, sizeof(header)) || sum || !(e[EDID_DTD] | e[EDID_DTD + 1]))
		return false;
	*w = e[EDID_DTD + 2] | (e[EDID_DTD + 4] & 0xf0u) << 4;
	*h = e[EDID_DTD + 5] | (e[EDID_DTD + 7] & 0xf0u) << 4;
	return *w && *h;
}

/* what this device can show; 0 or -EINVAL with the reason */
static int mode_valid(struct bochs *b, struct bh_fb_mode *m, char *why, size_t len)
{
	m->pitch = m->width * bh_fb_bytes_pp(m->bpp);
	if (!b->vga && m->bpp != 16 && m->bpp != 32) {
		snprintf(why, len, "%u bpp: bochs-display does 16 or 32", m->bpp);
		return -EINVAL;
	}
	/* the reason goes back in 44 bytes: it need not repeat the mode */
	if (m->width % 8) {
		snprintf(why, len, "width %u is no multiple of 8", m->width);
		return -EINVAL;
	}
	if (m->width > DISPI_MAX_XRES || m->height > DISPI_MAX_YRES) {
		snprintf(why, len, "over QEMU's limit of %ux%u", DISPI_MAX_XRES, DISPI_MAX_YRES);
		return -EINVAL;
	}
	if ((uint64_t) m->pitch * m->height > b->vram) {
		snprintf(why, len, "needs %llu KiB of %llu KiB video memory",
			 (unsigned long long) m->pitch * m->height >> 10,
			 (unsigned long long) b->vram >> 10);
		return -EINVAL;
	}
	return bh_fb_mode_check(m, b->vram, why, len);
}

/*
 * Program a checked mode and read it back. Enabling resets VIRT_WIDTH and
 * the offsets, so they come after ENABLE (QEMU vbe_update_vgaregs).
 */
static int mode_program(struct bochs *b, const struct bh_fb_mode *m, char *why, size_t len)
{
	uint16_t x, y, bpp, vw, en;

	dispi_write(b, DISPI_ENABLE, 0);
	dispi_write(b, DISPI_BPP, (uint16_t) m->bpp);
	dispi_write(b, DISPI_XRES, (uint16_t) m->width);
	dispi_write(b, DISPI_YRES, (uint16_t) m->height);
	dispi_write(b, DISPI_BANK, 0);
	dispi_write(b, DISPI_ENABLE, DISPI_ENABLED | DISPI_LFB_ENABLED);
	dispi_write(b, DISPI_VIRT_WIDTH, (uint16_t) m->width);
	dispi_write(b, DISPI_X_OFFSET, 0);
	dispi_write(b, DISPI_Y_OFFSET, 0);
	if (b->vga) {
		/* the attribute controller blanks the screen until PAS is set */
		mmio_write8(b, VGA_PORT(VGA_MIS_W), 0x01);
		(void) mmio_read8(b, VGA_PORT(VGA_IS1_RC));
		mmio_write8(b, VGA_PORT(VGA_ATT_W), VGA_AR_ENABLE_DISPLAY);
	}
	x = dispi_read(b, DISPI_XRES);
	y = dispi_read(b, DISPI_YRES);
	bpp = dispi_read(b, DISPI_BPP);
	vw = dispi_read(b, DISPI_VIRT_WIDTH);
	en = dispi_read(b, DISPI_ENABLE);
	if (x != m->width || y != m->height || bpp != m->bpp || vw != m->width ||
	    !(en & DISPI_ENABLED)) {
		snprintf(why, len, "the device took %ux%ux%u (virt %u, enable 0x%x)", x, y, bpp, vw,
			 en);
		return -EIO;
	}
	b->mode = *m;
	return 0;
}

static int mode_set(struct bochs *b, struct bh_fb_mode *m, char *why, size_t len)
{
	struct bh_fb_mode old = b->mode;
	char again[80];
	int rc = mode_valid(b, m, why, len);

	if (rc)
		return rc;
	rc = mode_program(b, m, why, len);
	if (rc && old.width && mode_program(b, &old, again, sizeof(again)))
		fprintf(stderr, "bochs: cannot go back to %ux%ux%u: %s\n", old.width, old.height,
			old.bpp, again);
	return rc;
}

static struct bh_session_stream_spec stream_spec(const struct bochs *b, enum bh_ps_role role)
{
	return (struct bh_session_stream_spec){
	    .server_role = role,
	    .capacity = BH_FB_RING,
	    .slot_size = (uint32_t) b->vram,
	    .bulk_size = b->vram,
	};
}

static struct bh_fb_info fb_info(const struct bochs *b)
{
	struct bh_fb_info i = {.version = BH_FB_VERSION, .mode = b->mode, .buffer_size = b->vram};

	snprintf(i.device, sizeof(i.device), "%s", b->name);
	return i;
}

static struct bh_fb_rect full(const struct bochs *b)
{
	return (struct bh_fb_rect){.w = b->mode.width, .h = b->mode.height};
}

static void client_close(struct bochs *b, struct client *c, const char *why)
{
	printf("bochs: %s %s: %s (%llu damage, %llu refused)\n",
	       c == &b->owner ? "framebuffer" : "capture", c->s.peer, why,
	       (unsigned long long) c->damage, (unsigned long long) c->refused);
	bh_session_close(&b->core, &c->s);
	c->open = false;
}

/* what the device shows, rectangle r, into a reader's buffer: or the whole screen later */
static void reader_damage(struct bochs *b, struct client *c, const struct bh_fb_rect *r)
{
	struct bh_packet_stream *ps = &c->s.ps[0];
	struct bh_ps_desc d;

	if (c->full_pending || bh_ps_space(ps) == 0) {
		c->full_pending = true;
		return;
	}
	bh_fb_copy(ps->bulk, b->mode.pitch, (const void *) b->fb.base, b->mode.pitch, &b->mode, r);
	if (bh_fb_damage(&b->mode, r, 0, &d) == 0 && bh_ps_put(ps, &d, 1) == 1)
		c->damage++;
}

static void readers_damage(struct bochs *b, const struct bh_fb_rect *r)
{
	for (int i = 0; i < MAX_READERS; i++)
		if (b->reader[i].open)
			reader_damage(b, &b->reader[i], r);
}

static void readers_flush(struct bochs *b)
{
	for (int i = 0; i < MAX_READERS; i++)
		if (b->reader[i].open)
			bh_ps_flush(&b->reader[i].s.ps[0]);
}

/* a reader's acknowledgements: room for more; a pending whole screen goes when there is */
static void reader_take(struct bochs *b, struct client *c)
{
	struct bh_packet_stream *ps = &c->s.ps[0];
	struct bh_ps_desc d[BH_FB_RING];
	struct bh_fb_rect all = full(b);

	if (bh_ps_get(ps, d, BH_FB_RING) < 0) {
		client_close(b, c, "corrupted its ring: session closed");
		return;
	}
	if (c->full_pending && bh_ps_space(ps)) {
		c->full_pending = false;
		reader_damage(b, c, &all);
		bh_ps_flush(ps);
	}
}

static void mode_changed(struct bochs *b)
{
	struct bh_fb_mode_msg msg = {.width = (uint16_t) b->mode.width,
				     .height = (uint16_t) b->mode.height,
				     .bpp = (uint16_t) b->mode.bpp};
	struct bh_fb_rect all = full(b);

	for (int i = 0; i < MAX_READERS; i++) {
		struct client *c = &b->reader[i];
		if (!c->open)
			continue;
		bh_session_send_event(&c->s, BH_FB_EV_MODE, &msg, sizeof(msg));
		c->full_pending = false;
		reader_damage(b, c, &all);
	}
	readers_flush(b);
}

/* the owner's damage: checked, copied to video memory, passed to readers, acknowledged */
static void owner_take(struct bochs *b)
{
	struct client *c = &b->owner;
	struct bh_packet_stream *ps = &c->s.ps[0];
	struct bh_ps_desc d[BH_FB_RING];
	/* no more than we can acknowledge: a client that reads no acks waits */
	unsigned int room = bh_ps_space(ps);
	int n = bh_ps_get(ps, d, room < BH_FB_RING ? room : BH_FB_RING);

	if (n < 0) {
		client_close(b, c, "corrupted its ring: session closed");
		return;
	}
	for (int i = 0; i < n; i++) {
		struct bh_fb_rect r;
		if (bh_fb_damage_check(&b->mode, &d[i], &r)) {
			if (c->refused++ < 4)
				printf(
				    "bochs: framebuffer %s: damage %ux%u+%u+%u (offset %llu length "
				    "%u) refused: not a rectangle of %ux%ux%u\n",
				    c->s.peer, r.w, r.h, r.x, r.y, (unsigned long long) d[i].offset,
				    d[i].length, b->mode.width, b->mode.height, b->mode.bpp);
			d[i].status = -EINVAL;
			continue;
		}
		bh_fb_copy((void *) b->fb.base, b->mode.pitch, ps->bulk, b->mode.pitch, &b->mode,
			   &r);
		readers_damage(b, &r);
		c->damage++;
		d[i].status = 0;
	}
	if (n > 0) {
		bh_ps_put(ps, d, (unsigned int) n);
		bh_ps_flush(ps);
		readers_flush(b);
	}
}

static void owner_event(struct bochs *b)
{
	struct client *c = &b->owner;
	struct bh_session_event ev;
	struct bh_fb_mode_msg want, reply = {0};
	struct bh_fb_mode m = {0};
	int rc = bh_session_recv_event(&c->s, &ev);

	if (rc == -EAGAIN)
		return;
	if (rc == 0 || (rc < 0 && rc != -EPROTO)) {
		client_close(b, c, rc ? strerror(-rc) : "hung up");
		return;
	}
	if (rc < 0 || ev.type != BH_FB_EV_MODE_SET) {
		/* nothing a client says can stop us: count it and go on */
		if (b->garbage++ < 4)
			printf("bochs: framebuffer %s: malformed event ignored\n", c->s.peer);
		return;
	}
	memcpy(&want, ev.data, sizeof(want));
	m = (struct bh_fb_mode){.width = want.width, .height = want.height, .bpp = want.bpp};
	/* the mode we have: nothing to do, and the picture stays */
	bool same = m.width == b->mode.width && m.height == b->mode.height && m.bpp == b->mode.bpp;
	rc = same ? 0 : mode_set(b, &m, reply.reason, sizeof(reply.reason));
	reply.status = rc;
	if (rc)
		printf("bochs: mode %ux%ux%u for %s refused: %s\n", want.width, want.height,
		       want.bpp, c->s.peer, reply.reason);
	else
		printf("bochs: mode %ux%ux%u set for %s\n", b->mode.width, b->mode.height,
		       b->mode.bpp, c->s.peer);
	reply.width = (uint16_t) b->mode.width;
	reply.height = (uint16_t) b->mode.height;
	reply.bpp = (uint16_t) b->mode.bpp;
	bh_session_send_event(&c->s, BH_FB_EV_MODE, &reply, sizeof(reply));
	if (!rc && !same)
		mode_changed(b);
}

static void reader_event(struct bochs *b, struct client *c)
{
	struct bh_session_event ev;
	int rc = bh_session_recv_event(&c->s, &ev);

	if (rc == 0 || (rc < 0 && rc != -EAGAIN && rc != -EPROTO))
		client_close(b, c, rc ? strerror(-rc) : "hung up");
	else if (rc != -EAGAIN && b->garbage++ < 4)
		printf("bochs: capture %s: event ignored: readers cannot change anything\n",
		       c->s.peer);
}

static void accept_owner(struct bochs *b)
{
	struct bh_session_stream_spec spec = stream_spec(b, BH_PS_SINK);
	struct bh_session_request req;
	struct bh_fb_info info;
	int rc;

	while ((rc = bh_service_next(&b->fb_svc, &req)) == 1) {
		if (b->owner.open || stopping) {
			printf("bochs: refused a framebuffer session from %s: %s\n", req.client,
			       stopping ? "shutting down" : "the screen has an owner");
			bh_service_refuse(&b->fb_svc, &req);
			continue;
		}
		info = fb_info(b);
		memset(&b->owner, 0, sizeof(b->owner));
		rc = bh_session_offer(&b->core, b->dev, &req, BH_FB_SERVICE, &spec, 1, &info,
				      sizeof(info), &b->owner.s);
		if (rc) {
			printf("bochs: framebuffer session for %s failed: %s\n", req.client,
			       rc == -EPIPE || rc == -ECONNRESET ? "it hung up"
								 : bh_error(&b->core));
			bh_session_close(&b->core, &b->owner.s);
			continue;
		}
		b->owner.open = true;
		printf("bochs: framebuffer: %s owns the screen (%ux%ux%u, buffer %llu KiB)\n",
		       req.client, b->mode.width, b->mode.height, b->mode.bpp,
		       (unsigned long long) b->vram >> 10);
	}
}

static void accept_readers(struct bochs *b)
{
	struct bh_session_stream_spec spec = stream_spec(b, BH_PS_SOURCE);
	struct bh_session_request req;
	struct bh_fb_info info;
	int rc;

	while ((rc = bh_service_next(&b->cap_svc, &req)) == 1) {
		struct client *c = NULL;
		for (int i = 0; i < MAX_READERS && !c; i++)
			if (!b->reader[i].open)
				c = &b->reader[i];
		if (!c || stopping) {
			printf("bochs: refused a capture session from %s: %s\n", req.client,
			       stopping ? "shutting down" : "too many readers");
			bh_service_refuse(&b->cap_svc, &req);
			continue;
		}
		info = fb_info(b);
		memset(c, 0, sizeof(*c));
		rc = bh_session_offer(&b->core, b->dev, &req, BH_CAPTURE_SERVICE, &spec, 1, &info,
				      sizeof(info), &c->s);
		if (rc) {
			printf("bochs: capture session for %s failed: %s\n", req.client,
			       rc == -EPIPE || rc == -ECONNRESET ? "it hung up"
								 : bh_error(&b->core));
			bh_session_close(&b->core, &c->s);
			continue;
		}
		c->open = true;
		printf("bochs: capture: %s watches\n", req.client);
		/* a new reader sees the whole screen first */
		struct bh_fb_rect all = full(b);
		reader_damage(b, c, &all);
		bh_ps_flush(&c->s.ps[0]);
	}
}

/* the device as we left it? */
static void health(struct bochs *b)
{
	uint16_t id = dispi_read(b, DISPI_ID);
	uint16_t x = dispi_read(b, DISPI_XRES), y = dispi_read(b, DISPI_YRES);
	uint16_t bpp = dispi_read(b, DISPI_BPP), en = dispi_read(b, DISPI_ENABLE);
	uint16_t vw = dispi_read(b, DISPI_VIRT_WIDTH);
	struct bh_fb_mode m = b->mode;
	char why[80];

	if (id < DISPI_ID0 || id > DISPI_ID5) {
		fprintf(stderr,
			"bochs: the ID register reads 0x%04x: exiting so core resets the "
			"device\n",
			id);
		exit(70);
	}
	if (x == b->mode.width && y == b->mode.height && bpp == b->mode.bpp && vw == x &&
	    (en & (DISPI_ENABLED | DISPI_LFB_ENABLED)) == (DISPI_ENABLED | DISPI_LFB_ENABLED))
		return;
	printf("bochs: mode registers changed under us (%ux%ux%u virt %u enable 0x%x): "
	       "restoring %ux%ux%u\n",
	       x, y, bpp, vw, en, m.width, m.height, m.bpp);
	if (mode_program(b, &m, why, sizeof(why)) || ++b->restores > 8) {
		fprintf(stderr,
			"bochs: cannot restore the mode (%s): exiting so core resets the "
			"device\n",
			b->restores > 8 ? "too often" : why);
		exit(70);
	}
	/* the picture is in the owner's buffer */
	struct bh_fb_rect all = full(b);
	if (b->owner.open)
		bh_fb_copy((void *) b->fb.base, m.pitch, b->owner.s.ps[0].bulk, m.pitch, &m, &all);
	mode_changed(b);
	printf("bochs: restored %ux%ux%u%s\n", m.width, m.height, m.bpp,
	       b->owner.open ? ", picture redrawn from the owner's buffer" : "");
}

static void beat(struct bochs *b)
{
	uint64_t now = bh_coarse_ns();

	if (fault_pending) {
		fault_pending = 0;
		printf("bochs: fault: bad-desc: XRES scribbled to 640\n");
		dispi_write(b, DISPI_XRES, 640);
	}
	if (now - b->last_beat_ns < BEAT_MS * 1000000ull)
		return;
	b->last_beat_ns = now;
	if (bh_heartbeat(&b->core) < 0 && !stopping) {
		printf("bochs: heartbeat: %s; shutting down\n", bh_error(&b->core));
		stopping = 1;
	}
	health(b);
}

static void serve(struct bochs *b)
{
	enum { CORE = -1, FB_SVC = -2, CAP_SVC = -3, OWNER_PS = -4, OWNER_SOCK = -5 };
	struct pollfd p[5 + 2 * MAX_READERS];
	int who[5 + 2 * MAX_READERS];

	while (!stopping) {
		unsigned int np = 0;
		int rc;

		beat(b);
		bh_service_pass(&b->fb_svc);
		bh_service_pass(&b->cap_svc);
		if (b->owner.open)
			owner_take(b);
		for (int i = 0; i < MAX_READERS; i++)
			if (b->reader[i].open)
				reader_take(b, &b->reader[i]);
		/* re-check before sleeping: damage may have come in meanwhile */
		if (b->owner.open && !bh_ps_prepare_wait(&b->owner.s.ps[0]))
			continue;
		p[np] = (struct pollfd){.fd = b->core.fd};
		who[np++] = CORE;
		p[np] = (struct pollfd){.fd = bh_service_fd(&b->fb_svc), .events = POLLIN};
		who[np++] = FB_SVC;
		p[np] = (struct pollfd){.fd = bh_service_fd(&b->cap_svc), .events = POLLIN};
		who[np++] = CAP_SVC;
		if (b->owner.open) {
			p[np] = (struct pollfd){.fd = bh_ps_wait_fd(&b->owner.s.ps[0]),
						.events = POLLIN};
			who[np++] = OWNER_PS;
			p[np] = (struct pollfd){.fd = b->owner.s.fd, .events = POLLIN};
			who[np++] = OWNER_SOCK;
		}
		for (int i = 0; i < MAX_READERS; i++) {
			struct client *c = &b->reader[i];
			if (!c->open)
				continue;
			p[np] = (struct pollfd){.fd = c->s.fd, .events = POLLIN};
			who[np++] = i;
			/* acknowledgements matter only to a reader owed the whole screen */
			if (c->full_pending && bh_ps_prepare_wait(&c->s.ps[0])) {
				p[np] = (struct pollfd){.fd = bh_ps_wait_fd(&c->s.ps[0]),
							.events = POLLIN};
				who[np++] = MAX_READERS + i;
			}
		}
		rc = poll(p, np, BEAT_MS);
		if (rc < 0 && errno != EINTR)
			break;
		for (unsigned int k = 0; rc > 0 && k < np; k++) {
			if (!p[k].revents)
				continue;
			switch (who[k]) {
			case CORE:
				printf("bochs: core closed our connection: shutting down\n");
				stopping = 1;
				break;
			case FB_SVC:
				accept_owner(b);
				break;
			case CAP_SVC:
				accept_readers(b);
				break;
			case OWNER_PS:
				if (b->owner.open)
					bh_ps_drain_signal(&b->owner.s.ps[0]);
				break;
			case OWNER_SOCK:
				if (b->owner.open)
					owner_event(b);
				break;
			default:
				if (who[k] >= MAX_READERS) {
					if (b->reader[who[k] - MAX_READERS].open)
						bh_ps_drain_signal(
						    &b->reader[who[k] - MAX_READERS].s.ps[0]);
				} else if (b->reader[who[k]].open) {
					reader_event(b, &b->reader[who[k]]);
				}
			}
		}
	}
}

static int parse_mode(const char *s, struct bh_fb_mode *m)
{
	char end;

	return sscanf(s, "%ux%ux%u%c", &m->width, &m->height, &m->bpp, &end) == 3 ? 0 : -EINVAL;
}

int main(int argc, char **argv)
{
	static struct bochs b;
	struct bh_device_info info;
	struct sigaction sa = {.sa_handler = on_term};
	struct bh_fb_mode want = {0};
	uint32_t ew = 0, eh = 0;
	char why[80];
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc &&
		    !parse_mode(argv[i + 1], &want)) {
			i++;
		} else {
			fprintf(stderr, "bochs: unknown argument '%s' (known: --mode WxHxBPP)\n",
				argv[i]);
			return 2;
		}
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	bh_fault_hook(BH_FAULT_BAD_DESC, on_bad_desc, NULL);
	bh_fault_arm();
	b.fb_svc.channel = b.cap_svc.channel = -1;
	if (bh_core_open(&b.core) < 0 ||
	    bh_device_find(&b.core, BOCHS_VENDOR, BOCHS_DEVICE, &b.dev) < 0 ||
	    bh_device_info(&b.core, b.dev, &info) < 0 || bh_acquire(&b.core, b.dev) < 0 ||
	    bh_io_mem(&b.core, b.dev, BOCHS_BAR_FB, &b.fb) < 0 ||
	    bh_io_mem(&b.core, b.dev, BOCHS_BAR_MMIO, &b.mmio) < 0) {
		fprintf(stderr, "bochs: %s\n", bh_error(&b.core));
		return 1;
	}
	b.last_beat_ns = bh_coarse_ns();
	bh_heartbeat(&b.core);
	if (b.mmio.size < BOCHS_QEXT_SIZE) {
		fprintf(stderr, "bochs: BAR2 is %zu bytes: no DISPI registers\n", b.mmio.size);
		return 1;
	}
	b.vga = (info.class_code >> 8) == CLASS_VGA;
	b.id = dispi_read(&b, DISPI_ID);
	if (b.id < DISPI_ID0 || b.id > DISPI_ID5) {
		fprintf(stderr, "bochs: ID register 0x%04x, not 0xb0c0-0xb0c5\n", b.id);
		return 1;
	}
	b.vram = (uint64_t) dispi_read(&b, DISPI_VIDEO_MEMORY_64K) << 16;
	if (!b.vram || b.vram > b.fb.size)
		b.vram = b.fb.size;
	/* the QEMU extension registers, where there are: our byte order */
	if (b.mmio.size >= BOCHS_QEXT_BYTEORDER + 4 && bh_read32(&b.mmio, BOCHS_QEXT_SIZE) >= 8)
		bh_write32(&b.mmio, BOCHS_QEXT_BYTEORDER, BOCHS_BYTEORDER_LE);
	snprintf(b.name, sizeof(b.name), "%s %s", b.vga ? "VGA" : "bochs-display", info.name);
	printf("bochs: uid %u, %s (class 0x%06x), ID 0x%04x, video memory %llu KiB, start %u\n",
	       getuid(), b.name, info.class_code, b.id, (unsigned long long) b.vram >> 10,
	       b.core.hello.restarts + 1);
	if (edid_preferred(&b, &ew, &eh))
		printf("bochs: EDID: preferred mode %ux%u\n", ew, eh);
	if (!want.width) {
		want = (struct bh_fb_mode){
		    .width = ew ? ew : 1024, .height = eh ? eh : 768, .bpp = 32};
		if (mode_valid(&b, &want, why, sizeof(why)))
			want = (struct bh_fb_mode){.width = 1024, .height = 768, .bpp = 32};
	}
	rc = mode_set(&b, &want, why, sizeof(why));
	if (rc) {
		fprintf(stderr, "bochs: mode %ux%ux%u: %s\n", want.width, want.height, want.bpp,
			why);
		return 1;
	}
	printf("bochs: mode %ux%ux%u set (pitch %u)\n", b.mode.width, b.mode.height, b.mode.bpp,
	       b.mode.pitch);
	struct bh_session_stream_spec fs = stream_spec(&b, BH_PS_SINK);
	struct bh_session_stream_spec cs = stream_spec(&b, BH_PS_SOURCE);
	if (bh_service_open(&b.fb_svc, &b.core, BH_FB_SERVICE, bh_session_cost(&fs, 1), 1) < 0 ||
	    bh_service_open(&b.cap_svc, &b.core, BH_CAPTURE_SERVICE, bh_session_cost(&cs, 1),
			    MAX_READERS) < 0) {
		fprintf(stderr, "bochs: %s\n", bh_error(&b.core));
		return 1;
	}
	printf("bochs: ready: serving '%s' and '%s'\n", BH_FB_SERVICE, BH_CAPTURE_SERVICE);
	serve(&b);
	if (b.owner.open)
		client_close(&b, &b.owner, "shutting down");
	for (int i = 0; i < MAX_READERS; i++)
		if (b.reader[i].open)
			client_close(&b, &b.reader[i], "shutting down");
	return 0;
}
