// SPDX-License-Identifier: MIT
/* USB sessions, the client side: open, check the info, submit and wait. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bulkhead/usb.h"

int bh_usb_open(struct bh_core *core, int timeout_ms, struct bh_usb *u, char *why, size_t why_len)
{
	const struct bh_usb_info *in;
	int fd, rc;

	memset(u, 0, sizeof(*u));
	u->s.fd = -1;
	rc = bh_session_open_wait(core, BH_USB_SERVICE, timeout_ms, &fd);
	if (rc) {
		snprintf(why, why_len, "%s", bh_error(core));
		return rc;
	}
	rc = bh_session_accept_setup(fd, BH_USB_SERVICE, &u->s, why, why_len);
	if (rc) {
		close(fd);
		return rc;
	}
	in = (const struct bh_usb_info *)u->s.info;
	u->ps = &u->s.ps[0];
	/* the server's numbers are input like any other */
	if (u->s.nstreams != 1 || u->ps->role != BH_PS_SOURCE || in->version != BH_USB_VERSION ||
	    in->device[0] != 18 || in->device[1] != 1 || in->config_len < 9 ||
	    in->max_transfer != u->ps->slot_size || in->speed < BH_USB_SPEED_FULL ||
	    in->speed > BH_USB_SPEED_SUPER) {
		snprintf(why, why_len, "usb: the server offered an impossible device (version %u, "
				       "descriptor %u/%u, configuration %u bytes, slot %u)",
			 in->version, in->device[0], in->device[1], in->config_len,
			 in->max_transfer);
		bh_usb_close(u);
		return -EPROTO;
	}
	u->info = *in;
	u->info.driver[sizeof(u->info.driver) - 1] = 0;
	u->info.product_name[sizeof(u->info.product_name) - 1] = 0;
	/* kick the server once: its waiting flag may predate our zeroing of the rings */
	(void)!write(u->ps->submit.efd, &(uint64_t){ 1 }, sizeof(uint64_t));
	return 0;
}

void bh_usb_close(struct bh_usb *u)
{
	bh_session_close(NULL, &u->s);
	u->ps = NULL;
}

int bh_usb_submit(struct bh_usb *u, uint32_t op, uint64_t arg, const void *data, uint32_t len,
		  uint32_t tag, struct bh_ps_desc *d)
{
	int rc = bh_ps_alloc_span(u->ps, len ? len : 1, d);

	if (rc)
		return rc;
	d->op = op;
	d->arg = arg;
	d->length = len;
	d->tag = tag;
	d->status = 0;
	if (data && len)
		memcpy(bh_ps_data(u->ps, d), data, len);
	if (bh_ps_put(u->ps, d, 1) != 1) {
		bh_ps_free_span(u->ps, d->offset, len);
		return -ENOSPC;
	}
	bh_ps_flush(u->ps);
	return 0;
}

int bh_usb_wait(struct bh_usb *u, uint32_t tag, int timeout_ms, struct bh_ps_desc *ack,
		void (*other)(void *arg, const struct bh_ps_desc *d), void *arg)
{
	uint64_t end = bh_now_ns() + (uint64_t)timeout_ms * 1000000ull;

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = bh_ps_wait_fd(u->ps), .events = POLLIN },
			{ .fd = u->s.fd, .events = POLLIN }, /* a hang-up, or an event */
		};
		struct bh_ps_desc d;
		uint64_t now;
		int rc;

		while ((rc = bh_ps_get(u->ps, &d, 1)) == 1) {
			if (d.tag == tag) {
				*ack = d;
				return 1;
			}
			if (other)
				other(arg, &d);
			else
				bh_ps_free(u->ps, &d);
		}
		if (rc < 0)
			return -ECONNRESET; /* a server that corrupts the ring is gone to us */
		now = bh_now_ns();
		if (now >= end)
			return 0;
		if (!bh_ps_prepare_wait(u->ps))
			continue;
		rc = poll(p, 2, (int)((end - now) / 1000000ull) + 1);
		if (rc < 0 && errno != EINTR)
			return -errno;
		if (p[1].revents & (POLLHUP | POLLERR | POLLRDHUP))
			return -ECONNRESET;
		if (p[1].revents & POLLIN) {
			struct bh_session_event ev;
			/* usb defines no events: read them; 0 is a hang-up */
			rc = bh_session_recv_event(&u->s, &ev);
			if (rc == 0 || (rc < 0 && rc != -EAGAIN && rc != -EPROTO))
				return -ECONNRESET;
		}
		if (p[0].revents)
			bh_ps_drain_signal(u->ps);
	}
}

int bh_usb_control(struct bh_usb *u, const struct bh_usb_setup *s, void *data, int timeout_ms)
{
	static uint32_t seq;
	uint32_t tag = 0x80000000u | (++seq & 0x7fffffffu);
	struct bh_ps_desc d, ack;
	bool in = s->type & 0x80;
	int rc = bh_usb_submit(u, BH_USB_CONTROL, bh_usb_setup_arg(s), in ? NULL : data, s->length,
			       tag, &d);

	if (rc)
		return rc;
	rc = bh_usb_wait(u, tag, timeout_ms, &ack, NULL, NULL);
	if (rc == 0) {
		struct bh_ps_desc c;
		/* take it back, and wait for both acks: the slot is ours again only then */
		if (bh_usb_submit(u, BH_USB_CANCEL, tag, NULL, 0, tag ^ 0x40000000u, &c) == 0 &&
		    bh_usb_wait(u, tag, 1000, &ack, NULL, NULL) == 1) {
			bh_ps_free(u->ps, &ack);
			if (bh_usb_wait(u, tag ^ 0x40000000u, 1000, &c, NULL, NULL) == 1)
				bh_ps_free(u->ps, &c);
		}
		return -ETIMEDOUT;
	}
	if (rc < 0)
		return rc;
	rc = ack.status ? ack.status : (int)ack.length;
	if (!ack.status && in && data && ack.length <= s->length)
		memcpy(data, bh_ps_data(u->ps, &ack), ack.length);
	bh_ps_free(u->ps, &ack);
	return rc;
}

const uint8_t *bh_usb_next_desc(const uint8_t *cfg, unsigned int len, unsigned int *off,
				uint8_t type)
{
	while (*off + 2 <= len) {
		const uint8_t *p = cfg + *off;
		if (p[0] < 2 || *off + p[0] > len)
			return NULL;
		*off += p[0];
		if (!type || p[1] == type)
			return p;
	}
	return NULL;
}
