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
#include "bulkhead/fb_server.h"
#include "regs.h"

#define BEAT_MS 200
#define CLASS_VGA 0x0300 /* class/subclass: VGA-compatible, with the VGA ports */

struct bochs {
	struct bh_core core;
	unsigned int dev;
	struct bh_mmio fb, mmio;
	bool vga;
	uint16_t id;
	uint64_t vram;
	struct bh_fb_server srv; /* srv.mode: the mode set */
	uint64_t last_beat_ns;
	unsigned int restores;
};

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
	b->srv.mode = *m;
	return 0;
}

static int mode_set(void *ctx, struct bh_fb_mode *m, char *why, size_t len)
{
	struct bochs *b = ctx;
	struct bh_fb_mode old = b->srv.mode;
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

/* the device as we left it? */
static void health(struct bochs *b)
{
	uint16_t id = dispi_read(b, DISPI_ID);
	uint16_t x = dispi_read(b, DISPI_XRES), y = dispi_read(b, DISPI_YRES);
	uint16_t bpp = dispi_read(b, DISPI_BPP), en = dispi_read(b, DISPI_ENABLE);
	uint16_t vw = dispi_read(b, DISPI_VIRT_WIDTH);
	struct bh_fb_mode m = b->srv.mode;
	char why[80];

	if (id < DISPI_ID0 || id > DISPI_ID5) {
		fprintf(stderr,
			"bochs: the ID register reads 0x%04x: exiting so core resets the "
			"device\n",
			id);
		exit(70);
	}
	if (x == m.width && y == m.height && bpp == m.bpp && vw == x &&
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
	bh_fb_server_redraw(&b->srv);
	printf("bochs: restored %ux%ux%u%s\n", m.width, m.height, m.bpp,
	       b->srv.owner.open ? ", picture redrawn from the owner's buffer" : "");
}

static void beat(void *ctx)
{
	struct bochs *b = ctx;
	uint64_t now = bh_coarse_ns();

	if (bh_fb_bad_desc) {
		bh_fb_bad_desc = 0;
		printf("bochs: fault: bad-desc: XRES scribbled to 640\n");
		dispi_write(b, DISPI_XRES, 640);
	}
	if (now - b->last_beat_ns < BEAT_MS * 1000000ull)
		return;
	b->last_beat_ns = now;
	if (bh_heartbeat(&b->core) < 0 && !bh_fb_stopping) {
		printf("bochs: heartbeat: %s; shutting down\n", bh_error(&b->core));
		bh_fb_stopping = 1;
	}
	health(b);
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
	bh_fb_server_signals();
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
	b.srv = (struct bh_fb_server){.core = &b.core,
				      .dev = b.dev,
				      .tag = "bochs",
				      .fb = (uint8_t *) b.fb.base,
				      .vram = b.vram,
				      .mode_set = mode_set,
				      .tick = beat,
				      .ctx = &b,
				      .beat_ms = BEAT_MS,
				      .stopping = &bh_fb_stopping};
	snprintf(b.srv.name, sizeof(b.srv.name), "%s %s", b.vga ? "VGA" : "bochs-display",
		 info.name);
	printf("bochs: uid %u, %s (class 0x%06x), ID 0x%04x, video memory %llu KiB, start %u\n",
	       getuid(), b.srv.name, info.class_code, b.id, (unsigned long long) b.vram >> 10,
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
	printf("bochs: mode %ux%ux%u set (pitch %u)\n", b.srv.mode.width, b.srv.mode.height,
	       b.srv.mode.bpp, b.srv.mode.pitch);
	if (bh_fb_server_open(&b.srv) < 0) {
		fprintf(stderr, "bochs: %s\n", bh_error(&b.core));
		return 1;
	}
	bh_fb_server_run(&b.srv);
	bh_fb_server_close(&b.srv);
	return 0;
}
