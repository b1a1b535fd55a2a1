// SPDX-License-Identifier: MIT
/*
 * usb-usbip: a USB session given to Linux through USB/IP and vhci-hcd, so
 * the kernel sees an ordinary USB device (lsusb, libusb, usbfs, its own
 * class drivers) served by an isolated host controller driver.
 *
 * We open the USB session our policy names (session = usb xhci 08e6:4433),
 * read the device's configuration descriptor through it, and ask core to
 * attach a vhci-hcd port of the device's speed (usbip = yes; core/usbip.c):
 * core writes the attach file and hands us our end of the socket. Then the
 * kernel enumerates the device through us, and every URB it submits comes
 * as a CMD_SUBMIT (usbip.h):
 *   - endpoint 0: one control request (its setup packet as it is), except
 *     SET_CONFIGURATION and SET_INTERFACE: the xhci driver configured the
 *     device (Configure Endpoint), so we answer success when the kernel
 *     asks for what is already set (the configuration's
 *     bConfigurationValue, alternate setting 0) and -EPERM otherwise;
 *     SET_ADDRESS never comes (vhci answers it itself);
 *   - a bulk or interrupt endpoint of the configuration descriptor: the URB
 *     in pieces, a bulk piece a span of the session's slots up to half its
 *     bulk buffer (one transfer on the ring: a usb-storage command's data
 *     in one or two), an interrupt piece one service interval's payload
 *     (USB 2.0 5.7.3); one piece in flight per
 *     endpoint, so URBs on one endpoint complete in order; an IN URB ends
 *     at a short piece, as a transfer ends at a short packet (USB 2.0
 *     5.8.3), and URB_SHORT_NOT_OK turns that into -EREMOTEIO; an OUT URB
 *     with URB_ZERO_PACKET gets its zero-length packet;
 *   - anything else (an endpoint the device does not have, isochronous,
 *     a URB beyond MAX_URB bytes) gets an error status (-EINVAL, -EXDEV,
 *     -EMSGSIZE) and we carry on.
 * The session's server checks every request again against the device's
 * descriptors and our grant; what it refuses comes back as its status.
 * A CMD_UNLINK cancels the piece in flight (BH_USB_CANCEL) and is answered
 * RET_UNLINK -ECONNRESET at once, with no RET_SUBMIT for that URB; an
 * unlink for a URB already answered gets status 0.
 *
 * When the session hangs up (the reader was unplugged, or the xhci driver
 * restarted and reset the device), the device cannot stay: its state
 * (address, configuration, a card's power) is gone with the reset. We
 * close our socket, the kernel disconnects the device (its URBs fail with
 * -ESHUTDOWN or -EPROTO, programs that hold it see it go, as on an
 * unplug), and when the driver serves the device again we attach it anew:
 * it comes back on the vhci bus with a new device number, and hot-plug
 * (udev) tells pcscd and the like. When the kernel drops the port (usbip
 * detach, a malformed message), we attach again the same way.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/usb.h"
#include "usbip.h"

#define TICK_MS 200
#define MAX_URBS 64	   /* URBs we hold at once; beyond, we stop reading the socket */
#define MAX_URB (1u << 20) /* bytes of one URB we buffer */
#define MAX_ISO_PACKETS 1024
#define BATCH 16

/* USB 2.0 9.4 and 9.6 */
#define USB_REQ_SET_CONFIGURATION 9
#define USB_REQ_SET_INTERFACE 11
#define USB_DT_CONFIG 2
#define USB_DT_INTERFACE 4
#define USB_DT_ENDPOINT 5
#define USB_DT_SS_EP_COMP 0x30
#define USB_EP_CONTROL 0
#define USB_EP_ISO 1
#define USB_EP_BULK 2
#define USB_EP_INT 3

struct endpoint {
	uint8_t type;	/* USB_EP_*; 0 and no limit: the device has no such endpoint */
	uint32_t limit; /* bytes per request */
	uint16_t max_packet;
};

struct urb {
	bool used, busy, unlinked, zlp_sent;
	uint32_t seqnum;
	uint64_t order; /* arrival, for the order on one endpoint */
	uint8_t key;	/* endpoint number | 0x10 for IN; 0 for all of endpoint 0 */
	uint8_t type;	/* USB_EP_* */
	bool in;
	uint32_t flags;
	uint32_t len, done;
	uint32_t tag, chunk; /* the piece in flight */
	uint64_t offset;     /* its place in the bulk buffer, as we allocated it */
	bool cancel_pending; /* unlinked while busy; the cancel waits for a slot */
	struct bh_usb_setup setup;
	uint8_t *buf;
	uint64_t t0;	    /* when it came */
	uint64_t t_piece;   /* when its piece went to the driver */
	uint64_t driver_ns; /* its pieces' time in the driver */
};

struct bridge {
	struct bh_core core;
	struct bh_usb u;
	int sock; /* to vhci-hcd, or -1 */
	char port[BH_NAME_MAX];
	uint8_t config[4096];
	unsigned int config_len;
	uint8_t config_value;
	struct endpoint ep[32]; /* [number | 0x10 for IN] */
	struct urb urbs[MAX_URBS];
	unsigned int nurbs;
	uint64_t next_order;
	uint32_t next_tag;
	uint64_t next_tick;
	/* figures */
	uint64_t submitted, completed, errors, unlinks, attaches, refused_local;
	/* control and bulk URBs, from CMD_SUBMIT to RET_SUBMIT: a line every TIMED of them */
	uint64_t timed, timed_ns, timed_max_ns;
	/* of that: in the driver (a piece's submit to its ack), and the bytes moved */
	uint64_t timed_driver_ns, timed_bytes;
};

#define TIMED 200

static void tick(struct bridge *b)
{
	bh_heartbeat_every(&b->core, &b->next_tick, TICK_MS, "usb-usbip");
}

/* all of len bytes from the socket: 0, or -errno (-ECONNRESET: the kernel let go) */
static int read_full(int fd, void *p, size_t len)
{
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd w = {.fd = fd, .events = POLLIN};
				poll(&w, 1, 1000);
				continue;
			}
			return -errno;
		}
		p = (uint8_t *) p + n;
		len -= (size_t) n;
	}
	return 0;
}

static int write_full(int fd, struct iovec *iov, int n)
{
	while (n) {
		ssize_t w = writev(fd, iov, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd p = {.fd = fd, .events = POLLOUT};
				poll(&p, 1, 1000);
				continue;
			}
			return -errno;
		}
		while (n && (size_t) w >= iov->iov_len) {
			w -= (ssize_t) iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (uint8_t *) iov->iov_base + w;
			iov->iov_len -= (size_t) w;
		}
	}
	return 0;
}

/* RET_SUBMIT for seqnum; data: an IN transfer's bytes; iso: packets to answer (-EXDEV each) */
static int ret_submit(struct bridge *b, uint32_t seqnum, int status, uint32_t actual,
		      const void *data, unsigned int iso)
{
	static struct usbip_iso_packet packets[MAX_ISO_PACKETS];
	struct usbip_header h = {0};
	struct iovec iov[3] = {{&h, sizeof(h)}, {(void *) data, data ? actual : 0}, {packets, 0}};

	h.base.command = htobe32(USBIP_RET_SUBMIT);
	h.base.seqnum = htobe32(seqnum);
	h.u.ret_submit.status = (int32_t) htobe32((uint32_t) status);
	h.u.ret_submit.actual_length = (int32_t) htobe32(actual);
	h.u.ret_submit.number_of_packets = (int32_t) htobe32(iso);
	h.u.ret_submit.error_count = (int32_t) htobe32(iso);
	for (unsigned int i = 0; i < iso; i++)
		packets[i] = (struct usbip_iso_packet){.status = htobe32((uint32_t) -EXDEV)};
	iov[2].iov_len = iso * sizeof(packets[0]);
	if (status)
		b->errors++;
	b->completed++;
	return write_full(b->sock, iov, 3);
}

static int ret_unlink(struct bridge *b, uint32_t seqnum, int status)
{
	struct usbip_header h = {0};
	struct iovec iov = {&h, sizeof(h)};

	h.base.command = htobe32(USBIP_RET_UNLINK);
	h.base.seqnum = htobe32(seqnum);
	h.u.ret_unlink.status = (int32_t) htobe32((uint32_t) status);
	return write_full(b->sock, &iov, 1);
}

static void urb_free(struct bridge *b, struct urb *r)
{
	free(r->buf);
	*r = (struct urb){0};
	b->nurbs--;
}

/* the URB is over: its RET_SUBMIT goes, it leaves the table */
static int urb_complete(struct bridge *b, struct urb *r, int status)
{
	int rc;

	if (!status && r->in && r->done < r->len && (r->flags & USBIP_URB_SHORT_NOT_OK))
		status = -EREMOTEIO;
	if (r->type != USB_EP_INT) {
		uint64_t ns = bh_now_ns() - r->t0;
		b->timed_ns += ns;
		b->timed_max_ns = ns > b->timed_max_ns ? ns : b->timed_max_ns;
		b->timed_driver_ns += r->driver_ns;
		b->timed_bytes += r->done;
		if (++b->timed % TIMED == 0) {
			printf(
			    "usb-usbip: %d control and bulk URBs: mean %llu us from the kernel's "
			    "submit to our answer (%llu us of it in the driver), longest %llu us; "
			    "mean %llu bytes\n",
			    TIMED, (unsigned long long) (b->timed_ns / TIMED / 1000),
			    (unsigned long long) (b->timed_driver_ns / TIMED / 1000),
			    (unsigned long long) (b->timed_max_ns / 1000),
			    (unsigned long long) (b->timed_bytes / TIMED));
			b->timed_ns = b->timed_max_ns = b->timed_driver_ns = b->timed_bytes = 0;
		}
	}
	rc = ret_submit(b, r->seqnum, status, r->done, r->in ? r->buf : NULL, 0);
	urb_free(b, r);
	return rc;
}

/* the configuration descriptor's endpoints: what each URB's endpoint is, and its limit */
static int parse_config(struct bridge *b)
{
	const struct endpoint none = {0};
	const uint32_t slot = b->u.info.max_transfer; /* the server's request size */
	/*
	 * a bulk piece spans slots, up to half the bulk buffer: a URB of the
	 * kernel's usb-storage (120 KiB at high speed, 1 MiB at SuperSpeed)
	 * is one or two transfers, and a piece fits the transfer ring even
	 * where TRBs stop at every 4 KiB page (no IOMMU)
	 */
	const uint32_t span = (uint32_t) (b->u.ps->bulk_size / 2);
	unsigned int off = 0;
	const uint8_t *d;
	struct endpoint *last = NULL;

	for (unsigned int i = 0; i < 32; i++)
		b->ep[i] = none;
	b->ep[0] = (struct endpoint){
	    .type = USB_EP_CONTROL, .limit = slot, .max_packet = b->u.info.device[7]};
	b->ep[0x10] = b->ep[0];
	if (b->config_len < 9 || b->config[1] != USB_DT_CONFIG)
		return -EINVAL;
	b->config_value = b->config[5];
	while ((d = bh_usb_next_desc(b->config, b->config_len, &off, 0))) {
		if (d[1] == USB_DT_SS_EP_COMP && d[0] >= 3 && last && last->type == USB_EP_INT) {
			/* USB 3.2 9.6.7: bMaxBurst more packets per service interval */
			last->limit = last->max_packet * (d[2] + 1u);
			continue;
		}
		if (d[1] != USB_DT_ENDPOINT || d[0] < 7)
			continue;
		unsigned int key = (d[2] & 0x0f) | (d[2] & 0x80 ? 0x10 : 0);
		uint16_t mps = (uint16_t) (d[4] | d[5] << 8);
		struct endpoint *e = &b->ep[key];
		e->type = d[3] & 3;
		e->max_packet = mps & 0x7ff;
		e->limit = e->type == USB_EP_BULK ? span : slot;
		if (e->type == USB_EP_INT) {
			/* USB 2.0 9.6.6: high-speed high-bandwidth endpoints move 1-3 packets */
			e->limit = e->max_packet * (1u + ((mps >> 11) & 3));
			if (!e->limit || e->limit > slot)
				e->limit = slot;
		}
		last = e;
	}
	return 0;
}

static bool has_interface(const struct bridge *b, unsigned int n)
{
	unsigned int off = 0;
	const uint8_t *d;

	while ((d = bh_usb_next_desc(b->config, b->config_len, &off, USB_DT_INTERFACE)))
		if (d[0] >= 9 && d[2] == n)
			return true;
	return false;
}

/*
 * Endpoint 0's requests that the driver made already (USB 2.0 9.4.7, 9.4.10):
 * 1 answered (*status), 0 to send on
 */
static int control_local(struct bridge *b, const struct bh_usb_setup *s, int *status)
{
	if ((s->type & 0x60) != 0 || (s->type & 0x80))
		return 0;
	if (s->request == USB_REQ_SET_CONFIGURATION && (s->type & 0x1f) == 0) {
		*status = (s->value & 0xff) == b->config_value ? 0 : -EPERM;
	} else if (s->request == USB_REQ_SET_INTERFACE && (s->type & 0x1f) == 1) {
		*status = s->value == 0 && has_interface(b, s->index & 0xff) ? 0 : -EPERM;
	} else {
		return 0;
	}
	if (*status) {
		b->refused_local++;
		printf("usb-usbip: the kernel asked for %s %u (interface %u): the driver set "
		       "configuration %u, alternate settings 0: refused\n",
		       s->request == USB_REQ_SET_CONFIGURATION ? "configuration"
							       : "alternate setting",
		       s->value, s->index, b->config_value);
	}
	return 1;
}

/* the URB's next piece onto the session: 0, -ENOBUFS (no slot: later), or an -errno for it */
static int urb_start(struct bridge *b, struct urb *r)
{
	struct bh_ps_desc d;
	uint32_t op, len;
	uint64_t arg;
	int rc;

	if (r->type == USB_EP_CONTROL) {
		op = BH_USB_CONTROL;
		arg = bh_usb_setup_arg(&r->setup);
		len = r->setup.length;
	} else {
		const struct endpoint *e = &b->ep[r->key];
		op = r->type == USB_EP_BULK ? BH_USB_BULK : BH_USB_INTERRUPT;
		arg = (r->key & 0x0f) | (r->in ? 0x80 : 0);
		len = r->len - r->done;
		if (len > e->limit)
			len = e->limit;
	}
	r->tag = b->next_tag;
	rc = bh_usb_submit(&b->u, op, arg, r->in ? NULL : r->buf + r->done, len, r->tag, &d);
	if (rc == -ENOSPC)
		rc = -ENOBUFS;
	if (rc)
		return rc;
	b->next_tag = (b->next_tag + 1) & 0x3fffffffu;
	if (!b->next_tag)
		b->next_tag = 1;
	r->chunk = len;
	r->offset = d.offset;
	r->t_piece = bh_now_ns();
	r->busy = true;
	return 0;
}

/* is an older URB on r's endpoint still there? */
static bool waits_behind(const struct bridge *b, const struct urb *r)
{
	for (unsigned int i = 0; i < MAX_URBS; i++) {
		const struct urb *o = &b->urbs[i];
		if (o->used && o != r && o->key == r->key && o->order < r->order)
			return true;
	}
	return false;
}

/* cancels that wait for a slot, then every endpoint's first URB onto the session */
static int pump(struct bridge *b)
{
	for (unsigned int i = 0; i < MAX_URBS; i++) {
		struct urb *r = &b->urbs[i];
		struct bh_ps_desc d;
		if (!r->used || !r->busy || !r->cancel_pending)
			continue;
		if (bh_usb_submit(&b->u, BH_USB_CANCEL, r->tag, NULL, 0, 0x40000000u | r->tag, &d))
			return 0; /* no slot: the next ack frees one */
		r->cancel_pending = false;
	}
	for (unsigned int i = 0; i < MAX_URBS; i++) {
		struct urb *r = &b->urbs[i];
		int rc;
		if (!r->used || r->busy || r->unlinked || waits_behind(b, r))
			continue;
		rc = urb_start(b, r);
		if (rc == -ENOBUFS)
			return 0;
		if (rc && urb_complete(b, r, rc) < 0)
			return -EPIPE;
	}
	return 0;
}

/* one ack from the session's server; its slots go back as we allocated them */
static int on_ack(struct bridge *b, const struct bh_ps_desc *d)
{
	struct urb *r = NULL;

	for (unsigned int i = 0; i < MAX_URBS && !r; i++)
		if (b->urbs[i].used && b->urbs[i].busy && b->urbs[i].tag == d->tag)
			r = &b->urbs[i];
	if (!r) {
		/* a cancel's own ack (its tag has 0x40000000): one slot; nothing else is ours */
		if (d->tag & 0x40000000u)
			bh_ps_free(b->u.ps, d);
		return 0;
	}
	bh_ps_free_span(b->u.ps, r->offset, r->chunk);
	r->busy = false;
	r->driver_ns += bh_now_ns() - r->t_piece;
	if (d->length > r->chunk) {
		printf("usb-usbip: the driver acked %u bytes for a request of %u\n", d->length,
		       r->chunk);
		return -EPROTO;
	}
	if (r->unlinked) {
		urb_free(b, r); /* its RET_UNLINK went already */
		return 0;
	}
	/* our slots were free again above, but nothing reuses them before we return */
	if (r->in && d->length)
		memcpy(r->buf + r->done, b->u.ps->bulk + r->offset, d->length);
	r->done += d->length;
	if (d->status)
		return urb_complete(b, r, d->status);
	if (r->type == USB_EP_CONTROL)
		return urb_complete(b, r, 0);
	if (r->in && (d->length < r->chunk || r->done == r->len))
		return urb_complete(b, r, 0); /* a short piece ends the transfer */
	if (!r->in && r->done == r->len) {
		/* USB 2.0 5.8.3: a transfer of whole packets ends with a zero-length one */
		bool zlp = (r->flags & USBIP_URB_ZERO_PACKET) && r->len &&
			   !(r->len % (b->ep[r->key].max_packet ? b->ep[r->key].max_packet : 1));
		if (!zlp || r->zlp_sent)
			return urb_complete(b, r, 0);
		r->zlp_sent = true; /* the next piece has no bytes left: the zero-length one */
	}
	return 0;
}

static int acks(struct bridge *b)
{
	struct bh_ps_desc d[BATCH];
	int got, rc = 0;

	while ((got = bh_ps_get(b->u.ps, d, BATCH)) > 0) {
		for (int i = 0; i < got; i++)
			if (!rc)
				rc = on_ack(b, &d[i]);
		if (rc)
			return rc;
	}
	return got < 0 ? -EPROTO : 0;
}

/* bytes the socket carries that we do not keep */
static int discard(int fd, uint64_t len)
{
	static uint8_t sink[4096];

	while (len) {
		size_t n = len < sizeof(sink) ? (size_t) len : sizeof(sink);
		int rc = read_full(fd, sink, n);
		if (rc)
			return rc;
		len -= n;
	}
	return 0;
}

/* CMD_SUBMIT: a new URB into the table, or answered at once */
static int cmd_submit(struct bridge *b, const struct usbip_header *h)
{
	uint32_t seqnum = be32toh(h->base.seqnum), ep = be32toh(h->base.ep);
	bool in = be32toh(h->base.direction) == USBIP_DIR_IN;
	int32_t len = (int32_t) be32toh((uint32_t) h->u.cmd_submit.transfer_buffer_length);
	int32_t np = (int32_t) be32toh((uint32_t) h->u.cmd_submit.number_of_packets);
	uint64_t payload, iso;
	struct urb *r = NULL;
	struct bh_usb_setup s = {0};
	int status = 0, rc;

	/* what the kernel can never send: the stream is not USB/IP any more */
	if (len < 0 || ep > 15 || np > MAX_ISO_PACKETS || np < -1) {
		printf("usb-usbip: malformed CMD_SUBMIT (endpoint %u, length %d, %d iso packets)\n",
		       ep, len, np);
		return -EPROTO;
	}
	payload = in ? 0 : (uint64_t) len;
	iso = np > 0 ? (uint64_t) np * sizeof(struct usbip_iso_packet) : 0;
	b->submitted++;
	unsigned int key = ep == 0 ? 0 : (ep | (in ? 0x10 : 0));
	const struct endpoint *e = &b->ep[key];
	if (np > 0 || e->type == USB_EP_ISO) {
		status = -EXDEV; /* the USB session moves no isochronous data */
	} else if (ep && !e->limit) {
		status = -EINVAL; /* the device has no such endpoint */
	} else if ((uint32_t) len > MAX_URB) {
		status = -EMSGSIZE;
	}
	if (!status && ep == 0) {
		memcpy(&s, h->u.cmd_submit.setup, sizeof(s));
		/* the setup's direction and length are what the device sees: they must agree */
		if (!!(s.type & 0x80) != in || s.length > (uint32_t) len)
			status = -EINVAL;
		else if (control_local(b, &s, &status))
			goto answer;
	}
	if (status)
		goto answer;
	for (unsigned int i = 0; i < MAX_URBS && !r; i++)
		if (!b->urbs[i].used)
			r = &b->urbs[i];
	if (!r)
		return -EPROTO; /* we read only with a free entry */
	*r = (struct urb){.used = true,
			  .seqnum = seqnum,
			  .order = b->next_order++,
			  .key = (uint8_t) key,
			  .type = e->type,
			  .in = in,
			  .flags = be32toh(h->u.cmd_submit.transfer_flags),
			  .len = (uint32_t) len,
			  .setup = s,
			  .t0 = bh_now_ns()};
	if (ep == 0)
		r->len = s.length;
	r->buf = malloc(len ? (size_t) len : 1);
	if (!r->buf) {
		*r = (struct urb){0};
		status = -ENOMEM;
		goto answer;
	}
	b->nurbs++;
	rc = payload ? read_full(b->sock, r->buf, (size_t) payload) : 0;
	if (!rc && iso)
		rc = discard(b->sock, iso);
	if (!rc && !in && !r->len && r->type != USB_EP_CONTROL) {
		/* an empty OUT URB is one zero-length packet */
		r->zlp_sent = true;
	} else if (!rc && in && !r->len && r->type != USB_EP_CONTROL) {
		return urb_complete(b, r, 0); /* nothing to read */
	}
	return rc;
answer:
	rc = discard(b->sock, payload + iso);
	if (!rc && status) {
		if (status != -EPERM)
			printf("usb-usbip: URB %u to endpoint %u %s, %d bytes: %s\n", seqnum, ep,
			       in ? "IN" : "OUT", len, strerror(-status));
		b->refused_local++;
	}
	return rc ? rc : ret_submit(b, seqnum, status, 0, NULL, np > 0 ? (unsigned int) np : 0);
}

static int cmd_unlink(struct bridge *b, const struct usbip_header *h)
{
	uint32_t seqnum = be32toh(h->base.seqnum);
	uint32_t victim = be32toh(h->u.cmd_unlink.seqnum);

	b->unlinks++;
	/* a URB the driver finished meanwhile is answered with its data, not unlinked */
	int rc = acks(b);
	if (rc)
		return rc;
	for (unsigned int i = 0; i < MAX_URBS; i++) {
		struct urb *r = &b->urbs[i];
		if (!r->used || r->unlinked || r->seqnum != victim)
			continue;
		if (r->busy) {
			/* its piece is the server's until acked: cancel it, drop it then */
			r->unlinked = true;
			r->cancel_pending = true;
		} else {
			urb_free(b, r);
		}
		return ret_unlink(b, seqnum, -ECONNRESET);
	}
	return ret_unlink(b, seqnum, 0); /* answered already */
}

/* one message from the kernel */
static int from_kernel(struct bridge *b)
{
	struct usbip_header h;
	int rc = read_full(b->sock, &h, sizeof(h));

	if (rc)
		return rc;
	switch (be32toh(h.base.command)) {
	case USBIP_CMD_SUBMIT:
		return cmd_submit(b, &h);
	case USBIP_CMD_UNLINK:
		return cmd_unlink(b, &h);
	default:
		printf("usb-usbip: unknown command %u from the kernel\n", be32toh(h.base.command));
		return -EPROTO;
	}
}

/* the session's socket: 1 fine, 0 hung up */
static int session_alive(struct bridge *b)
{
	struct bh_session_event ev;
	int rc;

	while ((rc = bh_session_recv_event(&b->u.s, &ev)) == 1)
		; /* the USB session defines no events */
	return rc == 0 || (rc < 0 && rc != -EAGAIN && rc != -EPROTO) ? 0 : 1;
}

static const char *run(struct bridge *b)
{
	for (;;) {
		int rc;

		tick(b);
		rc = acks(b);
		if (rc == -EPROTO)
			return "the driver corrupted the stream";
		if (rc)
			return "the kernel let the device go";
		if (pump(b))
			return "the kernel let the device go";
		if (!bh_ps_prepare_wait(b->u.ps))
			continue;
		struct pollfd p[3] = {
		    {.fd = b->u.s.fd, .events = POLLIN},
		    {.fd = bh_ps_wait_fd(b->u.ps), .events = POLLIN},
		    {.fd = b->sock, .events = b->nurbs < MAX_URBS ? POLLIN : 0},
		};
		if (poll(p, 3, TICK_MS) < 0 && errno != EINTR)
			return strerror(errno);
		if (p[1].revents)
			bh_ps_drain_signal(b->u.ps);
		if (p[0].revents && !session_alive(b))
			return "the driver hung up";
		if (p[2].revents & (POLLIN | POLLHUP | POLLERR)) {
			rc = from_kernel(b);
			if (rc == -EPROTO)
				return "the kernel sent what is not USB/IP, or the driver "
				       "corrupted the stream";
			if (rc)
				return "the kernel let the device go";
		}
	}
}

/* the kernel's enum usb_device_speed for the session's (xHCI's port speed IDs) */
static unsigned int kernel_speed(uint8_t speed)
{
	switch (speed) {
	case BH_USB_SPEED_LOW:
		return 1;
	case BH_USB_SPEED_FULL:
		return 2;
	case BH_USB_SPEED_HIGH:
		return 3;
	default:
		return 5;
	}
}

/* a USB session, its descriptors, a vhci port: 0, or <0 to try again later */
static int start(struct bridge *b)
{
	struct bh_usb_setup get = {.type = 0x80, .request = 6, .value = USB_DT_CONFIG << 8};
	char why[256];
	int rc, n;

	while ((rc = bh_usb_open(&b->core, TICK_MS, &b->u, why, sizeof(why))) == -EAGAIN)
		tick(b);
	if (rc) {
		fprintf(stderr, "usb-usbip: no USB session: %s\n", why);
		/* no route: the config must change first; no core: nothing left to do */
		if (rc == -EACCES || rc == -EPIPE)
			exit(1);
		return rc;
	}
	fcntl(b->u.s.fd, F_SETFL, fcntl(b->u.s.fd, F_GETFL) | O_NONBLOCK);
	get.length =
	    b->u.info.config_len < sizeof(b->config) ? b->u.info.config_len : sizeof(b->config);
	n = bh_usb_control(&b->u, &get, b->config, 2000);
	b->config_len = n > 0 ? (unsigned int) n : 0;
	if (n < 0 || parse_config(b) < 0) {
		fprintf(stderr, "usb-usbip: GET_DESCRIPTOR(configuration): %s\n",
			n < 0 ? strerror(-n) : "not a configuration descriptor");
		bh_usb_close(&b->u);
		return -EIO;
	}
	tick(b);
	rc = bh_usbip_open(&b->core, kernel_speed(b->u.info.speed), b->port, &b->sock);
	if (rc) {
		fprintf(stderr, "usb-usbip: %s\n", bh_error(&b->core));
		bh_usb_close(&b->u);
		if (rc == -EACCES || rc == -EPIPE)
			exit(1);
		return rc;
	}
	b->attaches++;
	printf("usb-usbip: %04x:%04x \"%s\" (port %u of %s, speed %u, configuration %u, %u "
	       "bytes of descriptors) attached to the kernel on %s (attach %llu)\n",
	       b->u.info.vendor, b->u.info.product, b->u.info.product_name, b->u.info.port,
	       b->u.info.driver, b->u.info.speed, b->config_value, b->config_len, b->port,
	       (unsigned long long) b->attaches);
	return 0;
}

/* the device leaves the kernel: our socket closes, what was in flight is dropped */
static void stop(struct bridge *b, const char *why)
{
	unsigned int dropped = b->nurbs;

	close(b->sock);
	b->sock = -1;
	for (unsigned int i = 0; i < MAX_URBS; i++)
		if (b->urbs[i].used)
			urb_free(b, &b->urbs[i]);
	bh_usb_close(&b->u);
	printf("usb-usbip: detached from %s: %s (%u URBs in flight dropped; so far %llu URBs, "
	       "%llu answered with an error, %llu refused here, %llu unlinks)\n",
	       b->port, why, dropped, (unsigned long long) b->submitted,
	       (unsigned long long) b->errors, (unsigned long long) b->refused_local,
	       (unsigned long long) b->unlinks);
}

int main(void)
{
	static struct bridge b = {.sock = -1, .next_tag = 1};
	struct timespec pause = {.tv_nsec = 200000000};

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (bh_core_open(&b.core) < 0) {
		fprintf(stderr, "usb-usbip: %s\n", bh_error(&b.core));
		return 1;
	}
	printf("usb-usbip: uid %u\n", getuid());
	for (;;) {
		if (start(&b) < 0) {
			nanosleep(&pause, NULL);
			tick(&b);
			continue;
		}
		stop(&b, run(&b));
		nanosleep(&pause, NULL);
		tick(&b);
	}
}
