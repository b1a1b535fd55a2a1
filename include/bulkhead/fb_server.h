/* SPDX-License-Identifier: MIT */
/*
 * A display driver's side of the Framebuffer and Capture sessions
 * (bulkhead/framebuffer.h), the same for every display driver: one owner
 * draws, up to BH_FB_READERS readers look. The driver brings the device
 * (video memory, a mode setter, a tick for its heartbeat and health check)
 * and this loop does the rest: sessions, damage checked and copied to
 * video memory, what the screen shows copied to the readers, mode requests
 * passed to the driver and answered.
 *
 *	s.core = &core; s.dev = dev; s.tag = "bochs"; s.fb = vram; ...
 *	s.mode_set = my_mode_set; s.tick = my_tick; s.ctx = me;
 *	bh_fb_server_open(&s);
 *	bh_fb_server_run(&s);
 *	bh_fb_server_close(&s);
 */
#ifndef BULKHEAD_FB_SERVER_H
#define BULKHEAD_FB_SERVER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "bulkhead/framebuffer.h"
#include "bulkhead/service.h"
#include "bulkhead/session.h"

#define BH_FB_READERS 4

struct bh_fb_client {
	struct bh_session s;
	bool open;
	bool full_pending; /* reader: its ring was full; the whole screen goes next */
	uint64_t damage, refused;
};

struct bh_fb_server {
	/* the driver's, set before bh_fb_server_open */
	struct bh_core *core;
	unsigned int dev;
	const char *tag;      /* for logs: "bochs" */
	char name[40];	      /* the device, for the sessions' info */
	uint8_t *fb;	      /* video memory: the picture starts here */
	uint64_t vram;	      /* bytes of it; the sessions' buffers are this large */
	struct bh_fb_mode mode; /* the mode set; mode_set keeps it */
	/*
	 * check and program mode *m (set m->pitch): 0 with s->mode = *m, or
	 * -errno with the reason and the old mode still set
	 */
	int (*mode_set)(void *ctx, struct bh_fb_mode *m, char *why, size_t len);
	void (*tick)(void *ctx); /* every pass of the loop, at least every beat_ms */
	void *ctx;
	unsigned int beat_ms;
	volatile sig_atomic_t *stopping; /* the loop ends when it is set */
	/* the server's */
	struct bh_service fb_svc, cap_svc;
	struct bh_fb_client owner;
	struct bh_fb_client reader[BH_FB_READERS];
	uint64_t garbage; /* malformed events from clients */
};

/*
 * A display driver's process-wide flags, set in signal context:
 * bh_fb_stopping by SIGTERM or SIGINT, bh_fb_bad_desc by an injected
 * bad-desc fault (BULKHEAD_FAULTS=1, bulkhead/fault.h), which the driver
 * acts on in its tick. bh_fb_server_signals installs both and arms faults.
 */
extern volatile sig_atomic_t bh_fb_stopping, bh_fb_bad_desc;
void bh_fb_server_signals(void);

/* announce "framebuffer" and "capture" to core; 0 or <0 (bh_error says why) */
int bh_fb_server_open(struct bh_fb_server *s);
/* serve until *s->stopping */
void bh_fb_server_run(struct bh_fb_server *s);
/* the owner's picture onto the screen again (after a mode restore), readers told */
void bh_fb_server_redraw(struct bh_fb_server *s);
/* every session ends */
void bh_fb_server_close(struct bh_fb_server *s);

#endif
