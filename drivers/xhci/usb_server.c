// SPDX-License-Identifier: MIT
/*
 * The USB session, served: each session is one device on our bus, the one
 * its client's policy names ("08e6:4433", "class:0b", "port:5"), granted
 * to that client alone. Its requests arrive on a packet stream whose
 * region is DMA memory of the controller, so a transfer's TRBs point
 * straight into the client's bulk buffer (zero copy; the IOMMU keeps the
 * controller inside our DMA buffers).
 *
 * Nothing a client sends is trusted: each request is checked against the
 * device's descriptors as we read them at enumeration (USB 2.0 chapter 9)
 * and refused with an error before it reaches the controller; the client
 * hears of it in its ack, and everyone else is served on. Requests that
 * belong to the driver (SET_ADDRESS, SET_CONFIGURATION, SET_INTERFACE:
 * xHCI makes them with Address Device and Configure Endpoint, 4.3.3 and
 * 4.3.5) are refused with -EPERM.
 *
 * Set-up work is bounded by bulkhead/service.h (one session a pass); a
 * client pays for its stream memory (bh_dma_alloc_session, through
 * bh_session_offer). An unplugged device ends its session: the client sees
 * a hang-up.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usb_server.h"

#define BATCH 16

/* USB 2.0 9.4, table 9-4 */
#define REQ_GET_STATUS 0
#define REQ_CLEAR_FEATURE 1
#define REQ_SET_FEATURE 3
#define REQ_SET_ADDRESS 5
#define REQ_GET_DESCRIPTOR 6
#define REQ_SET_DESCRIPTOR 7
#define REQ_GET_CONFIGURATION 8
#define REQ_SET_CONFIGURATION 9
#define REQ_GET_INTERFACE 10
#define REQ_SET_INTERFACE 11
#define REQ_SYNCH_FRAME 12
/* USB 3.2 9.4, table 9-4: the kernel sends it to every SuperSpeed device */
#define REQ_SET_ISOCH_DELAY 49

static const struct bh_session_stream_spec usb_spec = {
    .server_role = BH_PS_SINK,
    .capacity = BH_USB_RING,
    .slot_size = BH_USB_SLOT,
    .bulk_size = BH_USB_BULK_SIZE,
};

/* by the device's own controller: the hooks run before the service is open */
static unsigned int dev_index(const struct usb_device *d)
{
	return (unsigned int) (d - d->x->dev);
}

bool usb_server_granted(const struct usb_server *u, const struct usb_device *d)
{
	for (unsigned int i = 0; i < XHCI_MAX_DEVS; i++)
		if (u->client[i].open && u->client[i].d == d)
			return true;
	return false;
}

int usb_server_open(struct usb_server *u, struct xhci *x)
{
	int rc;

	u->x = x;
	rc = bh_service_open(&u->svc, x->core, BH_USB_SERVICE, bh_session_cost(&usb_spec, 1),
			     XHCI_MAX_DEVS);
	u->open = !rc;
	return rc;
}

void usb_server_attached(struct usb_server *u, struct usb_device *d)
{
	u->ready[dev_index(d)] = true;
}

void usb_server_detached(struct usb_server *u, struct usb_device *d)
{
	u->ready[dev_index(d)] = false;
	for (unsigned int i = 0; i < XHCI_MAX_DEVS; i++) {
		struct usb_client *c = &u->client[i];
		if (!c->open || c->d != d)
			continue;
		/* its transfers complete -ENODEV as the device is freed; nobody hears of them */
		printf("xhci: usb: %04x:%04x of %s unplugged: ending its session\n", d->vendor,
		       d->product, c->s.peer);
		c->d = NULL;
		c->closing = true;
	}
}

/* ---- policy ---- */

static bool has_class(const struct usb_device *d, unsigned int cls)
{
	if (d->desc[USB_DEV_CLASS] == cls)
		return true;
	for (unsigned int off = 0; off + 9 <= d->config_len;) {
		const uint8_t *p = d->config + off;
		if (p[0] < 2 || off + p[0] > d->config_len)
			break;
		if (p[1] == USB_DT_INTERFACE && p[0] >= 9 && p[USB_IF_CLASS] == cls)
			return true;
		off += p[0];
	}
	return false;
}

/* 1 if d is what the policy names, 0 if not, -EINVAL if the policy makes no sense */
static int policy_match(const char *policy, const struct usb_device *d)
{
	unsigned int a, b;
	char end;

	if (sscanf(policy, "class:%x%c", &a, &end) == 1 && a <= 0xff)
		return has_class(d, a);
	if (sscanf(policy, "port:%u%c", &a, &end) == 1)
		return d->port == a;
	if (sscanf(policy, "%4x:%4x%c", &a, &b, &end) == 2 && strlen(policy) == 9)
		return d->vendor == a && d->product == b;
	return -EINVAL;
}

/* the device this request may have, or NULL with why */
static struct usb_device *grant(struct usb_server *u, const struct bh_session_request *req,
				char *why, size_t len)
{
	struct usb_device *taken = NULL;

	if (!req->policy[0]) {
		snprintf(why, len,
			 "its config names no device: give one, e.g. 'session = usb %s "
			 "08e6:4433' (or class:0b, port:5)",
			 "xhci");
		return NULL;
	}
	for (unsigned int k = 0; k < XHCI_MAX_DEVS; k++) {
		struct usb_device *d = &u->x->dev[k];
		int m;

		if (!d->used || d->gone || !u->ready[k])
			continue;
		m = policy_match(req->policy, d);
		if (m < 0) {
			snprintf(why, len, "policy '%s' is none of vvvv:pppp, class:XX, port:N",
				 req->policy);
			return NULL;
		}
		if (!m)
			continue;
		if (!usb_server_granted(u, d))
			return d;
		taken = d;
	}
	if (taken) {
		for (unsigned int i = 0; i < XHCI_MAX_DEVS; i++)
			if (u->client[i].open && u->client[i].d == taken)
				snprintf(why, len, "%04x:%04x on port %u is granted to %s",
					 taken->vendor, taken->product, taken->port,
					 u->client[i].s.peer);
	} else if (policy_match(req->policy, &u->x->dev[0]) < 0) {
		snprintf(why, len, "policy '%s' is none of vvvv:pppp, class:XX, port:N",
			 req->policy);
	} else {
		snprintf(why, len, "no attached device matches '%s'", req->policy);
	}
	return NULL;
}

static void accept_clients(struct usb_server *u)
{
	struct bh_session_request req;
	int rc;

	while ((rc = bh_service_next(&u->svc, &req)) == 1) {
		struct usb_client *c = NULL;
		struct usb_device *d;
		struct bh_usb_info info;
		char why[160];

		for (unsigned int i = 0; i < XHCI_MAX_DEVS && !c; i++)
			if (!u->client[i].open)
				c = &u->client[i];
		d = grant(u, &req, why, sizeof(why));
		if (!d || !c) {
			printf("xhci: usb: refused a session from %s: %s\n", req.client,
			       !d ? why : "every slot serves a session");
			bh_service_refuse(&u->svc, &req);
			continue;
		}
		memset(&info, 0, sizeof(info));
		info.version = BH_USB_VERSION;
		info.speed = (uint8_t) d->speed;
		info.port = (uint8_t) d->port;
		info.config_len = d->config_len;
		info.vendor = d->vendor;
		info.product = d->product;
		info.max_transfer = BH_USB_SLOT;
		memcpy(info.device, d->desc, sizeof(info.device));
		snprintf(info.driver, sizeof(info.driver), "xhci");
		snprintf(info.product_name, sizeof(info.product_name), "%s", d->product_name);
		memset(c, 0, sizeof(*c));
		rc = bh_session_offer(u->x->core, u->x->pci, &req, BH_USB_SERVICE, &usb_spec, 1,
				      &info, sizeof(info), &c->s);
		if (rc) {
			printf("xhci: usb: session for %s failed: %s\n", req.client,
			       rc == -EPIPE || rc == -ECONNRESET ? "it hung up"
								 : bh_error(u->x->core));
			bh_session_close(u->x->core, &c->s);
			continue;
		}
		c->ps = &c->s.ps[0];
		/* the bulk buffer's place in the region, which is one DMA buffer */
		c->bulk_iova =
		    c->s.dma[0].iova + (uint64_t) (c->ps->bulk - (uint8_t *) c->s.dma[0].virt);
		c->d = d;
		c->open = true;
		snprintf(c->policy, sizeof(c->policy), "%s", req.policy);
		printf(
		    "xhci: usb: granted %04x:%04x (slot %u, port %u) to %s by policy '%s'; stream "
		    "%u x %u B at iova 0x%llx\n",
		    d->vendor, d->product, d->slot, d->port, req.client, req.policy, BH_USB_RING,
		    BH_USB_SLOT, (unsigned long long) c->bulk_iova);
	}
	if (rc < 0)
		printf("xhci: usb: channel: %s\n", strerror(-rc));
}

/* ---- requests ---- */

static void ack(struct usb_client *c, const struct bh_ps_desc *d)
{
	/* room was reserved when we took the request, unless the peer lies about its head */
	if (bh_ps_put(c->ps, d, 1) == 1)
		c->ack_pending = true;
}

static void done(struct xhci_xfer *t)
{
	struct usb_req *r = t->arg;
	struct usb_client *c = r->c;

	r->d.status = t->status;
	r->d.length = t->status && t->status != -ECANCELED ? 0 : t->actual;
	r->used = false;
	c->inflight--;
	if (!c->closing)
		ack(c, &r->d);
}

static bool has_interface(const struct usb_device *d, unsigned int n)
{
	for (unsigned int off = 0; off + 9 <= d->config_len;) {
		const uint8_t *p = d->config + off;
		if (p[0] < 2 || off + p[0] > d->config_len)
			break;
		if (p[1] == USB_DT_INTERFACE && p[0] >= 9 && p[USB_IF_NUMBER] == n)
			return true;
		off += p[0];
	}
	return false;
}

/* an endpoint of the device's configuration that we drive, or NULL */
static struct usb_endpoint *endpoint(struct usb_device *d, uint64_t address)
{
	unsigned int a = (unsigned int) address, dci;

	if (address > 0xff || (a & 0x70) || !(a & 0x0f))
		return NULL;
	dci = 2 * (a & 0x0f) + ((a & USB_DIR_IN) ? 1 : 0);
	if (!d->ep[dci].enabled || d->ep[dci].address != a)
		return NULL;
	return &d->ep[dci];
}

/*
 * USB 2.0 9.4: what a client may ask of the device's control endpoint.
 * 0: send it; 1: answered from our copy of the descriptors (into data);
 * -EPERM: the driver's; -EINVAL: names what the device does not have
 */
static int control_check(struct usb_device *d, const struct bh_usb_setup *s, uint8_t *data,
			 uint32_t *answered)
{
	unsigned int type = s->type & 0x60, recip = s->type & 0x1f;
	bool in = s->type & USB_DIR_IN;

	if (type == 0x60 || recip > USB_RECIP_ENDPOINT)
		return -EINVAL;
	if (recip == USB_RECIP_INTERFACE && !has_interface(d, s->index & 0xff))
		return -EINVAL;
	if (recip == USB_RECIP_ENDPOINT && (s->index & 0xff) != 0 && (s->index & 0xff) != 0x80 &&
	    !endpoint(d, s->index & 0xff))
		return -EINVAL;
	if (type != USB_TYPE_STANDARD)
		return 0; /* class and vendor requests are the client's business */
	switch (s->request) {
	case REQ_SET_ADDRESS:
	case REQ_SET_CONFIGURATION:
	case REQ_SET_INTERFACE:
	case REQ_SET_DESCRIPTOR:
		return -EPERM;
	case REQ_SET_FEATURE:
		/* an endpoint's halt is the client's to set; remote wakeup and test modes are not
		 */
		return recip == USB_RECIP_ENDPOINT && s->value == 0 && !in ? 0 : -EPERM;
	case REQ_CLEAR_FEATURE:
		return recip == USB_RECIP_ENDPOINT && s->value == 0 && !in ? 0 : -EPERM;
	case REQ_GET_STATUS:
	case REQ_GET_CONFIGURATION:
	case REQ_GET_INTERFACE:
	case REQ_SYNCH_FRAME:
		return in ? 0 : -EINVAL;
	case REQ_SET_ISOCH_DELAY:
		/* USB 3.2 9.4.11: the delay in ns, for the device's isochronous timing only */
		return recip == USB_RECIP_DEVICE && !in && !s->length ? 0 : -EINVAL;
	case REQ_GET_DESCRIPTOR:
		if (!in)
			return -EINVAL;
		if (recip == USB_RECIP_DEVICE && (s->value >> 8) == USB_DT_DEVICE) {
			*answered = s->length < USB_DEV_LEN ? s->length : USB_DEV_LEN;
			memcpy(data, d->desc, *answered);
			return 1;
		}
		if (recip == USB_RECIP_DEVICE && s->value == USB_DT_CONFIG << 8) {
			*answered = s->length < d->config_len ? s->length : d->config_len;
			memcpy(data, d->config, *answered);
			return 1;
		}
		return 0;
	default:
		return -EINVAL;
	}
}

/* cancel the request tagged tag: 0, or -ENOENT */
static int cancel(struct usb_client *c, uint64_t tag)
{
	for (unsigned int i = 0; i < BH_USB_RING; i++) {
		struct usb_req *r = &c->req[i];
		if (r->used && r->d.tag == tag && r->d.op != BH_USB_CANCEL) {
			xhci_cancel(&r->t);
			return 0;
		}
	}
	return -ENOENT;
}

/* one request onto the controller; 0, or the -errno to ack it with (length: bytes answered) */
static int start(struct usb_client *c, struct bh_ps_desc *d)
{
	struct usb_device *dev = c->d;
	struct usb_req *r = NULL;
	uint8_t *data = c->ps->bulk + d->offset;
	struct bh_usb_setup s;
	struct usb_endpoint *ep = NULL;
	uint8_t address = 0;
	uint32_t answered = 0;
	int rc;

	if (d->status)
		return d->status; /* the stream refused it: outside the bulk buffer */
	if (!dev)
		return -ENODEV;
	/* one slot; a bulk request may span slots (the stream kept it inside the bulk buffer) */
	if (d->length > (d->op == BH_USB_BULK ? BH_USB_BULK_SIZE : BH_USB_SLOT))
		return -EINVAL;
	switch (d->op) {
	case BH_USB_CONTROL:
		s = bh_usb_arg_setup(d->arg);
		if (s.length != d->length)
			return -EINVAL;
		rc = control_check(dev, &s, data, &answered);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			d->length = answered;
			return 1;
		}
		break;
	case BH_USB_BULK:
	case BH_USB_INTERRUPT:
		ep = endpoint(dev, d->arg);
		if (!ep || ep->type != (d->op == BH_USB_BULK ? USB_EP_XFER_BULK : USB_EP_XFER_INT))
			return -EINVAL;
		/* an interrupt transfer: at most what one service interval moves (xHCI 4.14.2) */
		if (ep->type == USB_EP_XFER_INT && d->length > ep->max_packet * (ep->burst + 1u))
			return -EINVAL;
		if ((ep->address & USB_DIR_IN) && !d->length)
			return -EINVAL;
		address = ep->address;
		break;
	case BH_USB_CANCEL:
		if (d->length)
			return -EINVAL;
		rc = cancel(c, d->arg);
		return rc ? rc : 1;
	default:
		return -EINVAL;
	}
	for (unsigned int i = 0; i < BH_USB_RING && !r; i++)
		if (!c->req[i].used)
			r = &c->req[i];
	if (!r)
		return -EBUSY; /* more than the ring holds: a client that lies about its indexes */
	r->t = (struct xhci_xfer){.buf = data,
				  .iova = c->bulk_iova + d->offset,
				  .len = d->length,
				  .done = done,
				  .arg = r};
	if (d->op == BH_USB_CONTROL)
		memcpy(&r->t.setup, &s, sizeof(s));
	r->d = *d;
	r->c = c;
	rc = xhci_submit(dev, address, &r->t);
	if (rc)
		return rc;
	r->used = true;
	c->inflight++;
	return 0;
}

/* take what a client submitted, as far as its ack ring allows */
static void client_take(struct usb_client *c)
{
	struct bh_ps_desc d[BATCH];

	while (c->open && !c->closing) {
		int got = bh_ps_take(c->ps, c->inflight, d, BATCH);

		if (got < 0) {
			printf("xhci: usb: %s corrupted its stream: ending its session\n",
			       c->s.peer);
			c->closing = true;
			break;
		}
		for (int i = 0; i < got; i++) {
			int rc = start(c, &d[i]);
			c->requests++;
			if (!rc)
				continue;
			if (rc < 0) {
				c->refused++;
				printf(
				    "xhci: usb: %s: request %u (op %u, arg 0x%llx, %u B) refused: "
				    "%s\n",
				    c->s.peer, d[i].tag, d[i].op, (unsigned long long) d[i].arg,
				    d[i].length, strerror(-rc));
				d[i].length = 0;
			}
			d[i].status = rc < 0 ? rc : 0;
			ack(c, &d[i]);
		}
		if (got < BATCH)
			break;
	}
}

static void client_release(struct usb_server *u, struct usb_client *c)
{
	printf("xhci: usb: session of %s ended: %llu requests, %llu refused\n", c->s.peer,
	       (unsigned long long) c->requests, (unsigned long long) c->refused);
	bh_session_close(u->x->core, &c->s);
	c->open = c->closing = false;
	c->d = NULL;
}

/* a closing session's transfers come back before its memory goes */
static void client_drain(struct usb_client *c)
{
	for (unsigned int i = 0; i < BH_USB_RING; i++)
		if (c->req[i].used && c->d)
			xhci_cancel(&c->req[i].t);
}

int usb_server_pass(struct usb_server *u, int timeout_ms)
{
	struct xhci *x = u->x;
	unsigned int n = 0;
	bool busy = false;

	if (!u->open)
		return timeout_ms;
	/* what the last sleep saw on the session sockets: a hang-up, or events we ignore */
	for (unsigned int k = 0; k < x->nwait; k++) {
		struct usb_client *c;
		if (!x->wait[k].revents || k == 0)
			continue;
		c = &u->client[(k - 1) / 2];
		if ((k - 1) % 2 == 1 && c->open) {
			struct bh_session_event ev;
			int rc = bh_session_recv_event(&c->s, &ev);
			if (rc == 0 || (rc < 0 && rc != -EAGAIN)) {
				if (rc != 0)
					printf("xhci: usb: %s sent garbage on its session socket "
					       "(%s): "
					       "ending its session\n",
					       c->s.peer, strerror(-rc));
				c->closing = true;
			}
		} else if (c->open) {
			bh_ps_drain_signal(c->ps);
		}
	}
	bh_service_pass(&u->svc);
	accept_clients(u);
	for (unsigned int i = 0; i < XHCI_MAX_DEVS; i++) {
		struct usb_client *c = &u->client[i];
		if (!c->open)
			continue;
		client_take(c);
		if (c->closing)
			client_drain(c);
		if (c->closing && !c->inflight)
			client_release(u, c);
		if (c->ack_pending) {
			c->ack_pending = false;
			bh_ps_flush(c->ps);
		}
	}
	/* sleep on the channel, and each client's submit ring and socket */
	x->wait[n++] = (struct pollfd){.fd = bh_service_fd(&u->svc), .events = POLLIN};
	for (unsigned int i = 0; i < XHCI_MAX_DEVS; i++) {
		struct usb_client *c = &u->client[i];
		bool live = c->open && !c->closing;
		if (live && !bh_ps_prepare_wait(c->ps))
			busy = true;
		x->wait[n++] =
		    (struct pollfd){.fd = live ? bh_ps_wait_fd(c->ps) : -1, .events = POLLIN};
		x->wait[n++] = (struct pollfd){.fd = live ? c->s.fd : -1, .events = POLLIN};
	}
	x->nwait = n;
	return busy ? 0 : timeout_ms;
}

void usb_server_close(struct usb_server *u)
{
	if (!u->open)
		return;
	for (unsigned int i = 0; i < XHCI_MAX_DEVS; i++) {
		struct usb_client *c = &u->client[i];
		if (!c->open)
			continue;
		c->closing = true;
		client_drain(c);
		client_release(u, c);
	}
	u->x->nwait = 0;
	bh_service_close(&u->svc);
	u->open = false;
}
