// SPDX-License-Identifier: MIT
/*
 * bulkhead-vesa: a display through the card's own video BIOS. The VGA
 * option ROM's int 10h handler runs in libx86emu (bios.c), confined to the
 * legacy memory and ports core grants, and this driver walks VBE 3.0:
 *
 *   4F00h (section 4.3) controller information with "VBE2": version 2.0 or
 *         later, video memory, the mode list;
 *   4F01h (4.4) each mode's information: kept if supported, graphics, with
 *         a linear framebuffer, packed 8 bpp or direct colour whose 32-bpp
 *         layout is XRGB8888 (the sessions' pixel format);
 *   4F02h (4.5) a mode from that list with D14 (linear framebuffer) set;
 *   4F03h (4.6) the mode the BIOS has set: the health check.
 *
 * The framebuffer is the device's prefetchable memory BAR, mapped from core
 * (io_mem) like the bochs driver's; the sessions are lib/fb_server.c's.
 * Policy (args): --max WxH, the largest mode a client may ask for;
 * --debug-port P, a port the BIOS writes debug text to (SeaBIOS on QEMU:
 * 0x402), which goes to our log and never to the hardware.
 *
 * At start the driver proves its confinement: a read of 0x100000 and a
 * read of port 0x60 through the emulator must both be refused.
 *
 * Every BEAT_MS a heartbeat; every HEALTH_MS 4F03h: a mode that is not ours
 * is set again and the picture redrawn. Fault injection (BULKHEAD_FAULTS=1):
 * bad-desc sets 640x480 through the BIOS behind the driver's back.
 *
 * usage: bulkhead-vesa [--mode WxHxBPP] [--max WxH] [--debug-port PORT]
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bios.h"
#include "bulkhead/bulkhead.h"
#include "bulkhead/fb_server.h"
#include "vbe.h"

#define BEAT_MS 200
#define HEALTH_MS 1000
#define MAX_MODES 128
#define CLASS_VGA 0x0300

struct vbe_mode {
	uint16_t number;
	struct bh_fb_mode m;
	uint32_t phys_base;
};

struct vesa {
	struct bh_core core;
	unsigned int dev;
	struct bh_mmio fb;
	struct bios bios;
	uint16_t version;
	struct vbe_mode modes[MAX_MODES];
	unsigned int nmodes;
	uint16_t current; /* the VBE mode number set */
	uint32_t max_w, max_h;
	struct bh_fb_server srv;
	uint64_t last_beat_ns, last_health_ns;
	unsigned int restores;
};

/* a VBE function: 0 if AX says supported and successful, else -EIO with why */
static int vbe_call(struct vesa *v, struct bios_regs *r, char *why, size_t len)
{
	uint16_t fn = (uint16_t) r->eax;
	int rc = bios_int10(&v->bios, r, why, len);

	if (rc)
		return rc;
	if ((r->eax & 0xffff) != VBE_OK) {
		snprintf(why, len, "VBE %04Xh answered AX=%04x", fn, r->eax & 0xffff);
		return -EIO;
	}
	return 0;
}

static const char *real_string(struct vesa *v, uint32_t segoff, char *buf, size_t len)
{
	uint32_t a = bios_linear(segoff);
	const uint8_t *p = bios_ptr(&v->bios, a, 1);
	size_t i = 0;

	while (p && i + 1 < len && bios_ptr(&v->bios, a + (uint32_t) i, 1) && p[i] >= 0x20 &&
	       p[i] < 0x7f)
		buf[i] = (char) p[i], i++;
	buf[i] = 0;
	return buf;
}

/* 4.3 and 4.4: the controller and the modes it lists that this driver can serve */
static int vbe_probe(struct vesa *v, char *why, size_t len)
{
	struct bios_regs r = {.eax = VBE_CONTROLLER_INFO, .es = BIOS_BUF_SEG};
	uint8_t *buf = v->bios.low + BIOS_BUF_SEG * 16;
	struct vbe_info info;
	char oem[48];
	int rc;

	memset(buf, 0, sizeof(info));
	memcpy(buf, "VBE2", 4);
	rc = vbe_call(v, &r, why, len);
	if (rc)
		return rc;
	memcpy(&info, buf, sizeof(info));
	if (memcmp(info.signature, "VESA", 4) || info.version < 0x0200) {
		snprintf(why, len, "no VBE 2.0 (signature %.4s, version %x.%x)", info.signature,
			 info.version >> 8, info.version & 0xff);
		return -ENODEV;
	}
	v->version = info.version;
	printf("vesa: VBE %x.%x, \"%s\", %u KiB video memory (4F00h: %llu instructions)\n",
	       info.version >> 8, info.version & 0xff,
	       real_string(v, info.oem_string, oem, sizeof(oem)), info.total_memory * 64u,
	       (unsigned long long) v->bios.steps);
	/* the list may lie in the ROM or in our buffer: copy it before 4F01h reuses the buffer */
	uint16_t list[MAX_MODES * 2];
	unsigned int n = 0, failed = 0;
	for (; n < MAX_MODES * 2; n++) {
		const uint8_t *p = bios_ptr(&v->bios, bios_linear(info.mode_list) + 2 * n, 2);
		if (!p || (list[n] = (uint16_t) (p[0] | p[1] << 8)) == VBE_MODE_END)
			break;
	}
	for (unsigned int i = 0; i < n && v->nmodes < MAX_MODES; i++) {
		struct vbe_mode_info mi;
		r = (struct bios_regs){.eax = VBE_MODE_INFO, .ecx = list[i], .es = BIOS_BUF_SEG};
		memset(buf, 0, sizeof(mi));
		if (vbe_call(v, &r, why, len)) {
			if (failed++ == 0)
				printf("vesa: 4F01h mode 0x%03x: %s\n", list[i], why);
			continue;
		}
		memcpy(&mi, buf, sizeof(mi));
		uint16_t need = VBE_ATTR_SUPPORTED | VBE_ATTR_GRAPHICS | VBE_ATTR_LFB;
		uint32_t pitch = v->version >= 0x0300 && mi.lin_bytes_per_line ? mi.lin_bytes_per_line
									  : mi.bytes_per_line;
		bool xrgb = mi.bpp != 32 || (mi.red_pos == 16 && mi.green_pos == 8 && mi.blue_pos == 0);
		if ((mi.attributes & need) != need || !mi.phys_base || !xrgb ||
		    !(mi.memory_model == VBE_MODEL_DIRECT ||
		      (mi.memory_model == VBE_MODEL_PACKED && mi.bpp == 8)))
			continue;
		struct vbe_mode *m = &v->modes[v->nmodes];
		*m = (struct vbe_mode){.number = list[i],
				       .m = {.width = mi.width,
					     .height = mi.height,
					     .bpp = mi.bpp == 16 && mi.green_size == 5 ? 15 : mi.bpp,
					     .pitch = pitch},
				       .phys_base = mi.phys_base};
		if (!bh_fb_mode_check(&m->m, v->fb.size, why, len))
			v->nmodes++;
	}
	if (!v->nmodes) {
		snprintf(why, len,
			 "none of the %u modes listed has a linear framebuffer we can use (%u "
			 "unanswered)",
			 n, failed);
		return -ENODEV;
	}
	printf("vesa: %u modes listed, %u with a linear framebuffer usable here (4F01h each), "
	       "framebuffer at 0x%08x\n",
	       n, v->nmodes, v->modes[0].phys_base);
	return 0;
}

static const struct vbe_mode *mode_find(const struct vesa *v, const struct bh_fb_mode *m)
{
	for (unsigned int i = 0; i < v->nmodes; i++)
		if (v->modes[i].m.width == m->width && v->modes[i].m.height == m->height &&
		    v->modes[i].m.bpp == m->bpp)
			return &v->modes[i];
	return NULL;
}

/* 4.5: set a listed mode, with the linear framebuffer; the screen starts black */
static int mode_program(struct vesa *v, const struct vbe_mode *vm, char *why, size_t len)
{
	struct bios_regs r = {.eax = VBE_SET_MODE, .ebx = vm->number | VBE_MODE_LFB};
	uint64_t t0 = bh_coarse_ns(), steps = v->bios.steps;
	int rc = vbe_call(v, &r, why, len);

	if (rc)
		return rc;
	v->current = vm->number;
	v->srv.mode = vm->m;
	printf("vesa: 4F02h mode 0x%03x %ux%ux%u: %llu instructions, %.1f ms\n", vm->number,
	       vm->m.width, vm->m.height, vm->m.bpp,
	       (unsigned long long) (v->bios.steps - steps), (bh_coarse_ns() - t0) / 1e6);
	return 0;
}

static int mode_set(void *ctx, struct bh_fb_mode *m, char *why, size_t len)
{
	struct vesa *v = ctx;
	const struct vbe_mode *vm;

	/* the policy first: what the config allows, whatever the device can */
	if (m->width > v->max_w || m->height > v->max_h) {
		snprintf(why, len, "outside the policy: at most %ux%u", v->max_w, v->max_h);
		return -EINVAL;
	}
	vm = mode_find(v, m);
	if (!vm) {
		snprintf(why, len, "not among the BIOS's %u modes", v->nmodes);
		return -EINVAL;
	}
	*m = vm->m;
	return mode_program(v, vm, why, len);
}

/* 4.6: the mode the BIOS says is set; ours, or set it again and redraw */
static void health(struct vesa *v)
{
	struct bios_regs r = {.eax = VBE_CURRENT_MODE};
	char why[160];
	int rc = vbe_call(v, &r, why, sizeof(why));

	if (!rc && (r.ebx & VBE_MODE_NUMBER) == v->current)
		return;
	if (rc) {
		fprintf(stderr, "vesa: 4F03h: %s: exiting so core resets the device\n", why);
		exit(70);
	}
	printf("vesa: the BIOS reports mode 0x%03x, not ours (0x%03x): restoring\n",
	       r.ebx & VBE_MODE_NUMBER, v->current);
	for (unsigned int i = 0; i < v->nmodes; i++)
		if (v->modes[i].number == v->current) {
			if (++v->restores > 8 || mode_program(v, &v->modes[i], why, sizeof(why))) {
				fprintf(stderr, "vesa: cannot restore the mode (%s): exiting\n",
					v->restores > 8 ? "too often" : why);
				exit(70);
			}
			break;
		}
	bh_fb_server_redraw(&v->srv);
	printf("vesa: restored %ux%ux%u%s\n", v->srv.mode.width, v->srv.mode.height,
	       v->srv.mode.bpp, v->srv.owner.open ? ", picture redrawn from the owner's buffer" : "");
}

static void tick(void *ctx)
{
	struct vesa *v = ctx;
	uint64_t now = bh_coarse_ns();
	char why[160];

	if (bh_fb_bad_desc) {
		struct bios_regs r = {.eax = VBE_SET_MODE, .ebx = 0x112 | VBE_MODE_LFB};
		bh_fb_bad_desc = 0;
		printf("vesa: fault: bad-desc: 640x480 set through the BIOS behind our back: %s\n",
		       vbe_call(v, &r, why, sizeof(why)) ? why : "done");
	}
	if (now - v->last_beat_ns >= BEAT_MS * 1000000ull) {
		v->last_beat_ns = now;
		if (bh_heartbeat(&v->core) < 0 && !bh_fb_stopping) {
			printf("vesa: heartbeat: %s; shutting down\n", bh_error(&v->core));
			bh_fb_stopping = 1;
		}
	}
	if (now - v->last_health_ns >= HEALTH_MS * 1000000ull) {
		v->last_health_ns = now;
		health(v);
	}
}

/* the confinement, shown: what the BIOS must not reach, tried through the emulator */
static int confinement(struct vesa *v)
{
	/* xor ax,ax; mov ds,ax; mov eax,0x100000; mov al,[eax]; hlt: reads 0x100000 */
	static const uint8_t high[] = {0x31, 0xc0, 0x8e, 0xd8, 0x66, 0xb8, 0x00, 0x00,
				       0x10, 0x00, 0x67, 0x8a, 0x00, 0xf4};
	/* in al,0x60; hlt: the keyboard controller */
	static const uint8_t port[] = {0xe4, 0x60, 0xf4};
	struct bios_regs r = {0};
	char why[160];
	int bad = 0;

	if (bios_run(&v->bios, high, sizeof(high), &r, why, sizeof(why)) == -EPERM)
		printf("vesa: confinement: memory at 0x100000: refused: %s\n", why);
	else
		printf("vesa: confinement: FAIL: a read of 0x100000 was not refused\n"), bad++;
	r = (struct bios_regs){0};
	if (bios_run(&v->bios, port, sizeof(port), &r, why, sizeof(why)) == -EPERM)
		printf("vesa: confinement: port 0x60: refused: %s\n", why);
	else
		printf("vesa: confinement: FAIL: port 0x60 was not refused\n"), bad++;
	return bad ? -EPERM : 0;
}

static int parse_args(int argc, char **argv, struct bh_fb_mode *want, struct vesa *v)
{
	char end;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc &&
		    sscanf(argv[i + 1], "%ux%ux%u%c", &want->width, &want->height, &want->bpp,
			   &end) == 3) {
			i++;
		} else if (strcmp(argv[i], "--debug-port") == 0 && i + 1 < argc &&
			   sscanf(argv[i + 1], "%hi%c", &v->bios.debug_port, &end) == 1) {
			i++;
		} else if (strcmp(argv[i], "--max") == 0 && i + 1 < argc &&
			   sscanf(argv[i + 1], "%ux%u%c", &v->max_w, &v->max_h, &end) == 2) {
			i++;
		} else {
			fprintf(stderr,
				"vesa: unknown argument '%s' (known: --mode WxHxBPP, --max WxH, "
				"--debug-port PORT)\n",
				argv[i]);
			return -EINVAL;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct vesa v = {.max_w = 16384, .max_h = 16384};
	struct bh_fb_mode want = {.width = 1024, .height = 768, .bpp = 32};
	struct bh_device_info info;
	char why[160];
	int bar = -1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (parse_args(argc, argv, &want, &v))
		return 2;
	bh_fb_server_signals();
	if (bh_core_open(&v.core) < 0 || bh_device_info(&v.core, 0, &info) < 0) {
		fprintf(stderr, "vesa: %s\n", bh_error(&v.core));
		return 1;
	}
	if ((info.class_code >> 8) != CLASS_VGA) {
		fprintf(stderr, "vesa: %s is class 0x%06x, not a VGA (0x0300xx): no video BIOS\n",
			info.name, info.class_code);
		return 1;
	}
	/* the linear framebuffer: the device's prefetchable memory BAR */
	for (int i = 0; i < BH_MAX_REGIONS && bar < 0; i++)
		if ((info.region[i].flags & (BH_REGION_MMIO | BH_REGION_PREFETCH)) ==
		    (BH_REGION_MMIO | BH_REGION_PREFETCH))
			bar = i;
	if (bar < 0 || bh_acquire(&v.core, 0) < 0 || bh_io_mem(&v.core, 0, (unsigned) bar, &v.fb) < 0) {
		fprintf(stderr, "vesa: %s: %s\n", info.name,
			bar < 0 ? "no prefetchable memory BAR" : bh_error(&v.core));
		return 1;
	}
	v.last_beat_ns = v.last_health_ns = bh_coarse_ns();
	bh_heartbeat(&v.core);
	printf("vesa: uid %u, VGA %s (%04x:%04x), framebuffer BAR%d %zu KiB, start %u\n", getuid(),
	       info.name, info.vendor, info.device, bar, v.fb.size >> 10,
	       v.core.hello.restarts + 1);
	if (bios_open(&v.bios, &v.core, why, sizeof(why)) < 0) {
		fprintf(stderr, "vesa: the video BIOS: %s\n", why);
		return 1;
	}
	if (confinement(&v))
		return 1;
	if (vbe_probe(&v, why, sizeof(why))) {
		fprintf(stderr, "vesa: %s\n", why);
		return 1;
	}
	v.srv = (struct bh_fb_server){.core = &v.core,
				      .dev = 0,
				      .tag = "vesa",
				      .fb = (uint8_t *) v.fb.base,
				      .vram = v.fb.size,
				      .mode_set = mode_set,
				      .tick = tick,
				      .ctx = &v,
				      .beat_ms = BEAT_MS,
				      .stopping = &bh_fb_stopping};
	snprintf(v.srv.name, sizeof(v.srv.name), "VGA %s (VBE)", info.name);
	if (mode_set(&v, &want, why, sizeof(why))) {
		fprintf(stderr, "vesa: mode %ux%ux%u: %s\n", want.width, want.height, want.bpp, why);
		return 1;
	}
	printf("vesa: mode %ux%ux%u set (pitch %u); BIOS so far: %llu instructions, %llu port "
	       "accesses, %u ROM writes dropped, %u scratch pages\n",
	       v.srv.mode.width, v.srv.mode.height, v.srv.mode.bpp, v.srv.mode.pitch,
	       (unsigned long long) v.bios.steps, (unsigned long long) v.bios.port_io,
	       v.bios.rom_writes, v.bios.scratch_pages);
	if (bh_fb_server_open(&v.srv) < 0) {
		fprintf(stderr, "vesa: %s\n", bh_error(&v.core));
		return 1;
	}
	bh_fb_server_run(&v.srv);
	bh_fb_server_close(&v.srv);
	return 0;
}
