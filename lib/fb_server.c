// SPDX-License-Identifier: MIT
/*
 * The Framebuffer and Capture sessions, served: see bulkhead/fb_server.h.
 * Damage is copied from the owner's buffer to video memory, and from video
 * memory to each reader's buffer; nothing a client sends can stop the loop.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "bulkhead/fault.h"
#include "bulkhead/fb_server.h"

static struct bh_session_stream_spec stream_spec(const struct bh_fb_server *s,
						 enum bh_ps_role role)
{
	return (struct bh_session_stream_spec){
	    .server_role = role,
	    .capacity = BH_FB_RING,
	    .slot_size = (uint32_t) s->vram,
	    .bulk_size = s->vram,
	};
}

static struct bh_fb_info fb_info(const struct bh_fb_server *s)
{
	struct bh_fb_info i = {.version = BH_FB_VERSION, .mode = s->mode, .buffer_size = s->vram};

	snprintf(i.device, sizeof(i.device), "%s", s->name);
	return i;
}

static struct bh_fb_rect full(const struct bh_fb_server *s)
{
	return (struct bh_fb_rect){.w = s->mode.width, .h = s->mode.height};
}

static void client_close(struct bh_fb_server *s, struct bh_fb_client *c, const char *why)
{
	printf("%s: %s %s: %s (%llu damage, %llu refused)\n", s->tag,
	       c == &s->owner ? "framebuffer" : "capture", c->s.peer, why,
	       (unsigned long long) c->damage, (unsigned long long) c->refused);
	bh_session_close(s->core, &c->s);
	c->open = false;
}

/* what the device shows, rectangle r, into a reader's buffer: or the whole screen later */
static void reader_damage(struct bh_fb_server *s, struct bh_fb_client *c,
			  const struct bh_fb_rect *r)
{
	struct bh_packet_stream *ps = &c->s.ps[0];
	struct bh_ps_desc d;

	if (c->full_pending || bh_ps_space(ps) == 0) {
		c->full_pending = true;
		return;
	}
	bh_fb_copy(ps->bulk, s->mode.pitch, s->fb, s->mode.pitch, &s->mode, r);
	if (bh_fb_damage(&s->mode, r, 0, &d) == 0 && bh_ps_put(ps, &d, 1) == 1)
		c->damage++;
}

static void readers_damage(struct bh_fb_server *s, const struct bh_fb_rect *r)
{
	for (int i = 0; i < BH_FB_READERS; i++)
		if (s->reader[i].open)
			reader_damage(s, &s->reader[i], r);
}

static void readers_flush(struct bh_fb_server *s)
{
	for (int i = 0; i < BH_FB_READERS; i++)
		if (s->reader[i].open)
			bh_ps_flush(&s->reader[i].s.ps[0]);
}

/* a reader's acknowledgements: room for more; a pending whole screen goes when there is */
static void reader_take(struct bh_fb_server *s, struct bh_fb_client *c)
{
	struct bh_packet_stream *ps = &c->s.ps[0];
	struct bh_ps_desc d[BH_FB_RING];
	struct bh_fb_rect all = full(s);

	if (bh_ps_get(ps, d, BH_FB_RING) < 0) {
		client_close(s, c, "corrupted its ring: session closed");
		return;
	}
	if (c->full_pending && bh_ps_space(ps)) {
		c->full_pending = false;
		reader_damage(s, c, &all);
		bh_ps_flush(ps);
	}
}

/* the readers hear of the mode and see the whole screen */
static void mode_changed(struct bh_fb_server *s)
{
	struct bh_fb_mode_msg msg = {.width = (uint16_t) s->mode.width,
				     .height = (uint16_t) s->mode.height,
				     .bpp = (uint16_t) s->mode.bpp};
	struct bh_fb_rect all = full(s);

	for (int i = 0; i < BH_FB_READERS; i++) {
		struct bh_fb_client *c = &s->reader[i];
		if (!c->open)
			continue;
		bh_session_send_event(&c->s, BH_FB_EV_MODE, &msg, sizeof(msg));
		c->full_pending = false;
		reader_damage(s, c, &all);
	}
	readers_flush(s);
}

void bh_fb_server_redraw(struct bh_fb_server *s)
{
	struct bh_fb_rect all = full(s);

	if (s->owner.open)
		bh_fb_copy(s->fb, s->mode.pitch, s->owner.s.ps[0].bulk, s->mode.pitch, &s->mode,
			   &all);
	mode_changed(s);
}

/* the owner's damage: checked, copied to video memory, passed to readers, acknowledged */
static void owner_take(struct bh_fb_server *s)
{
	struct bh_fb_client *c = &s->owner;
	struct bh_packet_stream *ps = &c->s.ps[0];
	struct bh_ps_desc d[BH_FB_RING];
	/* no more than we can acknowledge: a client that reads no acks waits */
	unsigned int room = bh_ps_space(ps);
	int n = bh_ps_get(ps, d, room < BH_FB_RING ? room : BH_FB_RING);

	if (n < 0) {
		client_close(s, c, "corrupted its ring: session closed");
		return;
	}
	for (int i = 0; i < n; i++) {
		struct bh_fb_rect r;
		if (bh_fb_damage_check(&s->mode, &d[i], &r)) {
			if (c->refused++ < 4)
				printf("%s: framebuffer %s: damage %ux%u+%u+%u (offset %llu length "
				       "%u) refused: not a rectangle of %ux%ux%u\n",
				       s->tag, c->s.peer, r.w, r.h, r.x, r.y,
				       (unsigned long long) d[i].offset, d[i].length, s->mode.width,
				       s->mode.height, s->mode.bpp);
			d[i].status = -EINVAL;
			continue;
		}
		bh_fb_copy(s->fb, s->mode.pitch, ps->bulk, s->mode.pitch, &s->mode, &r);
		readers_damage(s, &r);
		c->damage++;
		d[i].status = 0;
	}
	if (n > 0) {
		bh_ps_put(ps, d, (unsigned int) n);
		bh_ps_flush(ps);
		readers_flush(s);
	}
}

static void owner_event(struct bh_fb_server *s)
{
	struct bh_fb_client *c = &s->owner;
	struct bh_session_event ev;
	struct bh_fb_mode_msg want, reply = {0};
	struct bh_fb_mode m = {0};
	int rc = bh_session_recv_event(&c->s, &ev);

	if (rc == -EAGAIN)
		return;
	if (rc == 0 || (rc < 0 && rc != -EPROTO)) {
		client_close(s, c, rc ? strerror(-rc) : "hung up");
		return;
	}
	if (rc < 0 || ev.type != BH_FB_EV_MODE_SET) {
		/* nothing a client says can stop us: count it and go on */
		if (s->garbage++ < 4)
			printf("%s: framebuffer %s: malformed event ignored\n", s->tag, c->s.peer);
		return;
	}
	memcpy(&want, ev.data, sizeof(want));
	m = (struct bh_fb_mode){.width = want.width, .height = want.height, .bpp = want.bpp};
	/* the mode we have: nothing to do, and the picture stays */
	bool same = m.width == s->mode.width && m.height == s->mode.height && m.bpp == s->mode.bpp;
	rc = same ? 0 : s->mode_set(s->ctx, &m, reply.reason, sizeof(reply.reason));
	reply.status = rc;
	if (rc)
		printf("%s: mode %ux%ux%u for %s refused: %s\n", s->tag, want.width, want.height,
		       want.bpp, c->s.peer, reply.reason);
	else
		printf("%s: mode %ux%ux%u set for %s\n", s->tag, s->mode.width, s->mode.height,
		       s->mode.bpp, c->s.peer);
	reply.width = (uint16_t) s->mode.width;
	reply.height = (uint16_t) s->mode.height;
	reply.bpp = (uint16_t) s->mode.bpp;
	bh_session_send_event(&c->s, BH_FB_EV_MODE, &reply, sizeof(reply));
	if (!rc && !same)
		mode_changed(s);
}

static void reader_event(struct bh_fb_server *s, struct bh_fb_client *c)
{
	struct bh_session_event ev;
	int rc = bh_session_recv_event(&c->s, &ev);

	if (rc == 0 || (rc < 0 && rc != -EAGAIN && rc != -EPROTO))
		client_close(s, c, rc ? strerror(-rc) : "hung up");
	else if (rc != -EAGAIN && s->garbage++ < 4)
		printf("%s: capture %s: event ignored: readers cannot change anything\n", s->tag,
		       c->s.peer);
}

/* one session set up on svc for c, or a refusal; 0 if c now serves */
static int accept_one(struct bh_fb_server *s, struct bh_service *svc, const char *service,
		      enum bh_ps_role role, struct bh_session_request *req, struct bh_fb_client *c,
		      const char *busy)
{
	struct bh_session_stream_spec spec = stream_spec(s, role);
	struct bh_fb_info info;
	int rc;

	if (!c || *s->stopping) {
		printf("%s: refused a %s session from %s: %s\n", s->tag, service, req->client,
		       *s->stopping ? "shutting down" : busy);
		bh_service_refuse(svc, req);
		return -EBUSY;
	}
	info = fb_info(s);
	memset(c, 0, sizeof(*c));
	rc = bh_session_offer(s->core, s->dev, req, service, &spec, 1, &info, sizeof(info),
			      &c->s);
	if (rc) {
		printf("%s: %s session for %s failed: %s\n", s->tag, service, req->client,
		       rc == -EPIPE || rc == -ECONNRESET ? "it hung up" : bh_error(s->core));
		bh_session_close(s->core, &c->s);
		return rc;
	}
	c->open = true;
	return 0;
}

static void accept_owner(struct bh_fb_server *s)
{
	struct bh_session_request req;

	while (bh_service_next(&s->fb_svc, &req) == 1)
		if (!accept_one(s, &s->fb_svc, BH_FB_SERVICE, BH_PS_SINK, &req,
				s->owner.open ? NULL : &s->owner, "the screen has an owner"))
			printf("%s: framebuffer: %s owns the screen (%ux%ux%u, buffer %llu KiB)\n",
			       s->tag, req.client, s->mode.width, s->mode.height, s->mode.bpp,
			       (unsigned long long) s->vram >> 10);
}

static void accept_readers(struct bh_fb_server *s)
{
	struct bh_session_request req;

	while (bh_service_next(&s->cap_svc, &req) == 1) {
		struct bh_fb_client *c = NULL;
		for (int i = 0; i < BH_FB_READERS && !c; i++)
			if (!s->reader[i].open)
				c = &s->reader[i];
		if (accept_one(s, &s->cap_svc, BH_CAPTURE_SERVICE, BH_PS_SOURCE, &req, c,
			       "too many readers"))
			continue;
		printf("%s: capture: %s watches\n", s->tag, req.client);
		/* a new reader sees the whole screen first */
		struct bh_fb_rect all = full(s);
		reader_damage(s, c, &all);
		bh_ps_flush(&c->s.ps[0]);
	}
}

int bh_fb_server_open(struct bh_fb_server *s)
{
	struct bh_session_stream_spec fs = stream_spec(s, BH_PS_SINK);
	struct bh_session_stream_spec cs = stream_spec(s, BH_PS_SOURCE);

	s->fb_svc.channel = s->cap_svc.channel = -1;
	if (bh_service_open(&s->fb_svc, s->core, BH_FB_SERVICE, bh_session_cost(&fs, 1), 1) < 0 ||
	    bh_service_open(&s->cap_svc, s->core, BH_CAPTURE_SERVICE, bh_session_cost(&cs, 1),
			    BH_FB_READERS) < 0)
		return -1;
	printf("%s: ready: serving '%s' and '%s'\n", s->tag, BH_FB_SERVICE, BH_CAPTURE_SERVICE);
	return 0;
}

void bh_fb_server_run(struct bh_fb_server *s)
{
	enum { CORE = -1, FB_SVC = -2, CAP_SVC = -3, OWNER_PS = -4, OWNER_SOCK = -5 };
	struct pollfd p[5 + 2 * BH_FB_READERS];
	int who[5 + 2 * BH_FB_READERS];

	while (!*s->stopping) {
		unsigned int np = 0;
		int rc;

		s->tick(s->ctx);
		bh_service_pass(&s->fb_svc);
		bh_service_pass(&s->cap_svc);
		if (s->owner.open)
			owner_take(s);
		for (int i = 0; i < BH_FB_READERS; i++)
			if (s->reader[i].open)
				reader_take(s, &s->reader[i]);
		/* re-check before sleeping: damage may have come in meanwhile */
		if (s->owner.open && !bh_ps_prepare_wait(&s->owner.s.ps[0]))
			continue;
		p[np] = (struct pollfd){.fd = s->core->fd};
		who[np++] = CORE;
		p[np] = (struct pollfd){.fd = bh_service_fd(&s->fb_svc), .events = POLLIN};
		who[np++] = FB_SVC;
		p[np] = (struct pollfd){.fd = bh_service_fd(&s->cap_svc), .events = POLLIN};
		who[np++] = CAP_SVC;
		if (s->owner.open) {
			p[np] = (struct pollfd){.fd = bh_ps_wait_fd(&s->owner.s.ps[0]),
						.events = POLLIN};
			who[np++] = OWNER_PS;
			p[np] = (struct pollfd){.fd = s->owner.s.fd, .events = POLLIN};
			who[np++] = OWNER_SOCK;
		}
		for (int i = 0; i < BH_FB_READERS; i++) {
			struct bh_fb_client *c = &s->reader[i];
			if (!c->open)
				continue;
			p[np] = (struct pollfd){.fd = c->s.fd, .events = POLLIN};
			who[np++] = i;
			/* acknowledgements matter only to a reader owed the whole screen */
			if (c->full_pending && bh_ps_prepare_wait(&c->s.ps[0])) {
				p[np] = (struct pollfd){.fd = bh_ps_wait_fd(&c->s.ps[0]),
							.events = POLLIN};
				who[np++] = BH_FB_READERS + i;
			}
		}
		rc = poll(p, np, (int) s->beat_ms);
		if (rc < 0 && errno != EINTR)
			break;
		for (unsigned int k = 0; rc > 0 && k < np; k++) {
			if (!p[k].revents)
				continue;
			switch (who[k]) {
			case CORE:
				printf("%s: core closed our connection: shutting down\n", s->tag);
				*s->stopping = 1;
				break;
			case FB_SVC:
				accept_owner(s);
				break;
			case CAP_SVC:
				accept_readers(s);
				break;
			case OWNER_PS:
				if (s->owner.open)
					bh_ps_drain_signal(&s->owner.s.ps[0]);
				break;
			case OWNER_SOCK:
				if (s->owner.open)
					owner_event(s);
				break;
			default:
				if (who[k] >= BH_FB_READERS) {
					if (s->reader[who[k] - BH_FB_READERS].open)
						bh_ps_drain_signal(
						    &s->reader[who[k] - BH_FB_READERS].s.ps[0]);
				} else if (s->reader[who[k]].open) {
					reader_event(s, &s->reader[who[k]]);
				}
			}
		}
	}
}

void bh_fb_server_close(struct bh_fb_server *s)
{
	if (s->owner.open)
		client_close(s, &s->owner, "shutting down");
	for (int i = 0; i < BH_FB_READERS; i++)
		if (s->reader[i].open)
			client_close(s, &s->reader[i], "shutting down");
}

volatile sig_atomic_t bh_fb_stopping, bh_fb_bad_desc;

static void on_term(int sig)
{
	(void)sig;
	bh_fb_stopping = 1;
}

/* signal context: only note it */
static void on_bad_desc(void *arg)
{
	(void)arg;
	bh_fb_bad_desc = 1;
}

void bh_fb_server_signals(void)
{
	struct sigaction sa = { .sa_handler = on_term };

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	bh_fault_hook(BH_FAULT_BAD_DESC, on_bad_desc, NULL);
	bh_fault_arm();
}
