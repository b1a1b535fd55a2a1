// SPDX-License-Identifier: MIT
/*
 * bulkhead-xhci: the component around xhci.c. It takes the first granted
 * qemu-xhci (1b36:000d), starts the controller, enumerates what is plugged
 * in and follows plug and unplug until core stops it.
 *
 * With --ccid-check it also talks to a CCID smart-card reader on the bus
 * (USB CCID 1.1; QEMU's usb-ccid is 08e6:4433), end to end through the
 * controller: slot status and power-on over the bulk endpoints, a stall on
 * EP0 and one on bulk OUT with the endpoint reset behind each, and
 * transfers cancelled while the device holds them (NAK); a reader plugged
 * in later is checked too. Each step logs a "check NAME PASS|FAIL" line.
 * Its clients get devices through the USB session (usb_server.c) where
 * the config provides "usb".
 *
 * Fault injection (BULKHEAD_FAULTS=1, lib/fault.c): bad-dma sends the
 * command ring to an unmapped address; the driver exits when the command
 * does not complete, as it does for any controller that stops answering.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/fault.h"
#include "usb_server.h"
#include "xhci.h"

#define XHCI_VENDOR 0x1b36
#define XHCI_DEVICE 0x000d
#define POLL_MS 200

/* CCID 1.1, 6.1 and 6.2: message types */
#define PC_TO_RDR_ICC_POWER_ON 0x62
#define PC_TO_RDR_GET_SLOT_STATUS 0x65
#define RDR_TO_PC_DATA_BLOCK 0x80
#define RDR_TO_PC_SLOT_STATUS 0x81
#define CCID_HEADER 10
#define CCID_CLASS 0x0b
/* CCID 1.1, 5.3.3: GET_DATA_RATES, a class request QEMU's reader does not implement */
#define CCID_GET_DATA_RATES 0x03

static volatile int stopping; /* int: xhci.c looks at it too */

static volatile sig_atomic_t fault_pending; /* bad-dma, done by the loop */
static struct usb_device *plugged;	    /* hot-plugged: checked by the loop */
static bool follow_plugs;		    /* after the first check: check what comes later */
static struct usb_server usb;

static void on_attached(struct xhci *x, struct usb_device *d)
{
	(void) x;
	if (follow_plugs)
		plugged = d;
	usb_server_attached(&usb, d);
}

static void on_detached(struct xhci *x, struct usb_device *d)
{
	(void) x;
	if (plugged == d)
		plugged = NULL;
	usb_server_detached(&usb, d);
}

static void on_term(int sig)
{
	(void) sig;
	stopping = 1;
}

/* signal context: only note it */
static void on_bad_dma(void *arg)
{
	(void) arg;
	fault_pending = 1;
}

struct ccid {
	struct xhci *x;
	struct usb_device *d;
	uint8_t bulk_in, bulk_out, intr_in;
	uint8_t seq;
	struct bh_dma buf; /* for the asynchronous transfers */
	unsigned int passed, failed;
};

static void check(struct ccid *c, const char *name, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void check(struct ccid *c, const char *name, bool ok, const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	printf("xhci: check %s %s %s\n", name, ok ? "PASS" : "FAIL", detail);
	if (ok)
		c->passed++;
	else
		c->failed++;
}

static const char *err_name(int rc)
{
	return rc < 0 ? strerror(-rc) : "ok";
}

static void hex(char *out, size_t size, const uint8_t *b, int n)
{
	size_t len = 0;

	out[0] = 0;
	for (int i = 0; i < n && len + 4 < size; i++)
		len += (size_t) snprintf(out + len, size - len, "%s%02x", i ? " " : "", b[i]);
}

/* 6.2.6: bStatus bits 1:0, the ICC */
static const char *icc_status(uint8_t status)
{
	static const char *const s[] = {"ICC present and active", "ICC present, inactive",
					"no ICC present", "reserved"};
	return s[status & 3];
}

/* one command message out, its answer in; the answer's length or -errno */
static int ccid_exchange(struct ccid *c, uint8_t type, uint8_t *reply, uint32_t size)
{
	uint8_t msg[CCID_HEADER] = {type, 0, 0, 0, 0, 0, c->seq, 0, 0, 0};
	int rc = xhci_transfer(c->d, c->bulk_out, msg, sizeof(msg), 2000);

	if (rc < 0)
		return rc;
	rc = xhci_transfer(c->d, c->bulk_in, reply, size, 2000);
	if (rc >= 0 && (rc < CCID_HEADER || reply[6] != c->seq))
		rc = -EBADMSG;
	c->seq++;
	return rc;
}

static bool slot_status(struct ccid *c, const char *name)
{
	uint8_t r[512];
	char h[64];
	int n = ccid_exchange(c, PC_TO_RDR_GET_SLOT_STATUS, r, sizeof(r));
	bool ok = n >= CCID_HEADER && r[0] == RDR_TO_PC_SLOT_STATUS;

	hex(h, sizeof(h), r, n > 0 ? n : 0);
	check(c, name, ok,
	      "GetSlotStatus -> %s: type 0x%02x slot %u seq %u bStatus 0x%02x (%s) bError 0x%02x "
	      "bClockStatus %u [%s]",
	      n < 0 ? err_name(n) : "RDR_to_PC_SlotStatus", n > 0 ? r[0] : 0, n > 5 ? r[5] : 0,
	      n > 6 ? r[6] : 0, n > 7 ? r[7] : 0, icc_status(n > 7 ? r[7] : 3), n > 8 ? r[8] : 0,
	      n > 9 ? r[9] : 0, h);
	return ok;
}

static void power_on(struct ccid *c)
{
	uint8_t r[512];
	char h[3 * 64];
	int n = ccid_exchange(c, PC_TO_RDR_ICC_POWER_ON, r, sizeof(r));
	uint32_t len = n >= CCID_HEADER
			   ? (uint32_t) (r[1] | r[2] << 8 | r[3] << 16 | (uint32_t) r[4] << 24)
			   : 0;
	bool ok =
	    n >= CCID_HEADER && r[0] == RDR_TO_PC_DATA_BLOCK && len <= (uint32_t) n - CCID_HEADER;

	if (ok && len)
		hex(h, sizeof(h), r + CCID_HEADER, (int) len);
	else
		snprintf(h, sizeof(h), "none");
	check(c, "ccid_power_on", ok,
	      "IccPowerOn -> %s: type 0x%02x dwLength %u bStatus 0x%02x (%s) bError 0x%02x ATR %s",
	      n < 0 ? err_name(n) : "RDR_to_PC_DataBlock", n > 0 ? r[0] : 0, len, n > 7 ? r[7] : 0,
	      icc_status(n > 7 ? r[7] : 3), n > 8 ? r[8] : 0, h);
}

/* a control request the device does not know: a stall on EP0, then EP0 works again */
static void control_stall(struct ccid *c)
{
	struct bh_usb_setup s = {.type = USB_DIR_IN | USB_TYPE_CLASS | USB_RECIP_INTERFACE,
			      .request = CCID_GET_DATA_RATES,
			      .length = 64};
	uint8_t buf[64], desc[USB_DEV_LEN];
	struct bh_usb_setup g = {.type = USB_DIR_IN,
			      .request = USB_REQ_GET_DESCRIPTOR,
			      .value = USB_DT_DEVICE << 8,
			      .length = sizeof(desc)};
	int rc = xhci_control(c->d, &s, buf, 1000);
	int after = xhci_control(c->d, &g, desc, 1000);

	check(c, "control_stall", rc == -EPIPE && after == USB_DEV_LEN,
	      "GET_DATA_RATES -> %s; GET_DESCRIPTOR(device) after it -> %d bytes", err_name(rc),
	      after);
}

/* a 5-byte message: QEMU's reader stalls bulk OUT on a header it cannot read */
static void bulk_stall(struct ccid *c)
{
	uint8_t half[5] = {PC_TO_RDR_GET_SLOT_STATUS, 0, 0, 0, 0};
	int rc = xhci_transfer(c->d, c->bulk_out, half, sizeof(half), 2000);
	int clear = xhci_clear_halt(c->d, c->bulk_out);

	check(c, "bulk_stall", rc == -EPIPE,
	      "5-byte message on bulk OUT 0x%02x -> %s; endpoint reset and moved on; "
	      "CLEAR_FEATURE(ENDPOINT_HALT) -> %s",
	      c->bulk_out, err_name(rc), err_name(clear));
	slot_status(c, "bulk_after_stall");
}

static void poll_for(struct xhci *x, int ms)
{
	uint64_t end = bh_coarse_ns() + (uint64_t) ms * 1000000ull;

	while (bh_coarse_ns() < end)
		xhci_poll(x, 20);
}

/*
 * Transfers the device holds (it answers NAK: no slot change to report, no
 * answer queued), cancelled: the interrupt IN one alone, then two bulk IN
 * ones, the later first (no-ops in its place), then the one the
 * controller is working on (Set TR Dequeue Pointer).
 */
static void cancel(struct ccid *c)
{
	struct xhci_xfer ti = {.buf = c->buf.virt, .iova = c->buf.iova, .len = 64};
	struct xhci_xfer t1 = {
	    .buf = (uint8_t *) c->buf.virt + 512, .iova = c->buf.iova + 512, .len = 512};
	struct xhci_xfer t2 = {
	    .buf = (uint8_t *) c->buf.virt + 1024, .iova = c->buf.iova + 1024, .len = 512};
	int rc, notes = 0;

	if (c->intr_in) {
		rc = xhci_submit(c->d, c->intr_in, &ti);
		poll_for(c->x, 300);
		/* a pending slot change comes first: take it, and wait once more */
		while (!rc && !ti.busy && notes < 2) {
			uint8_t *b = ti.buf;
			printf("xhci: ccid: interrupt IN: %u bytes: type 0x%02x bmSlotICCState "
			       "0x%02x\n",
			       ti.actual, b[0], b[1]);
			notes++;
			rc = xhci_submit(c->d, c->intr_in, &ti);
			poll_for(c->x, 300);
		}
		bool held = !rc && ti.busy;
		xhci_cancel(&ti);
		check(c, "cancel_interrupt", held && ti.status == -ECANCELED && !ti.busy,
		      "interrupt IN 0x%02x held by the device for 300 ms (submit %s), stop "
		      "endpoint: %s, %u bytes",
		      c->intr_in, err_name(rc), err_name(ti.status), ti.actual);
	}
	rc = xhci_submit(c->d, c->bulk_in, &t1);
	if (!rc)
		rc = xhci_submit(c->d, c->bulk_in, &t2);
	poll_for(c->x, 300);
	bool held = !rc && t1.busy && t2.busy;
	xhci_cancel(&t2);
	int s2 = t2.status;
	bool t1_still = t1.busy;
	xhci_cancel(&t1);
	check(c, "cancel_bulk", held && s2 == -ECANCELED && t1_still && t1.status == -ECANCELED,
	      "two bulk IN 0x%02x held for 300 ms (submit %s): the second cancelled behind the "
	      "first -> %s, then the first -> %s",
	      c->bulk_in, err_name(rc), err_name(s2), err_name(t1.status));
	slot_status(c, "bulk_after_cancel");
}

static bool is_ccid(const struct usb_device *e)
{
	for (unsigned int off = 0; e->used && off + 9 <= e->config_len;) {
		if (e->config[off] < 2)
			break;
		if (e->config[off + 1] == USB_DT_INTERFACE &&
		    e->config[off + USB_IF_CLASS] == CCID_CLASS)
			return true;
		off += e->config[off];
	}
	return false;
}

/* the reader d, or the first one on the bus */
static void ccid_check(struct xhci *x, struct bh_core *core, struct usb_device *d)
{
	struct ccid c = {.x = x};

	for (unsigned int k = 0; k < XHCI_MAX_DEVS && !d; k++)
		if (is_ccid(&x->dev[k]))
			d = &x->dev[k];
	if (d && !is_ccid(d))
		return;
	if (!d) {
		check(&c, "ccid_found", false, "no configured device with a CCID interface");
		return;
	}
	c.d = d;
	for (unsigned int dci = 2; dci < 32; dci++) {
		struct usb_endpoint *ep = &d->ep[dci];
		if (!ep->enabled)
			continue;
		if (ep->type == USB_EP_XFER_BULK && (ep->address & USB_DIR_IN))
			c.bulk_in = ep->address;
		else if (ep->type == USB_EP_XFER_BULK)
			c.bulk_out = ep->address;
		else if (ep->type == USB_EP_XFER_INT && (ep->address & USB_DIR_IN))
			c.intr_in = ep->address;
	}
	check(&c, "ccid_found", c.bulk_in && c.bulk_out,
	      "slot %u: %04x:%04x, bulk IN 0x%02x, bulk OUT 0x%02x, interrupt IN 0x%02x", d->slot,
	      d->vendor, d->product, c.bulk_in, c.bulk_out, c.intr_in);
	if (!c.bulk_in || !c.bulk_out)
		return;
	if (bh_dma_alloc(core, x->pci, 4096, 0, &c.buf) < 0) {
		check(&c, "ccid_memory", false, "%s", bh_error(core));
		return;
	}
	slot_status(&c, "ccid_slot_status");
	power_on(&c);
	control_stall(&c);
	bulk_stall(&c);
	cancel(&c);
	printf("xhci: ccid check done: %u passed, %u failed\n", c.passed, c.failed);
	bh_dma_free(core, &c.buf);
}

int main(int argc, char **argv)
{
	static struct bh_core core;
	static struct xhci x;
	struct bh_device_info info;
	struct sigaction sa = {.sa_handler = on_term};
	bool ccid = false;
	unsigned int pci;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--ccid-check") == 0) {
			ccid = true;
		} else {
			fprintf(stderr, "xhci: unknown argument '%s' (known: --ccid-check)\n",
				argv[i]);
			return 2;
		}
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	bh_fault_hook(BH_FAULT_BAD_DMA, on_bad_dma, NULL);
	bh_fault_arm();
	if (bh_core_open(&core) < 0 || bh_device_find(&core, XHCI_VENDOR, XHCI_DEVICE, &pci) < 0 ||
	    bh_device_info(&core, pci, &info) < 0) {
		fprintf(stderr, "xhci: %s\n", bh_error(&core));
		return 1;
	}
	printf("xhci: uid %u, device %s, %s, start %u\n", getuid(), info.name,
	       core.hello.iommu ? "DMA confined by the IOMMU" : "NO IOMMU",
	       core.hello.restarts + 1);
	x.stopping = &stopping;
	x.attached = on_attached;
	x.detached = on_detached;
	if (xhci_start(&x, &core, pci) < 0) {
		fprintf(stderr, "xhci: %s\n", bh_error(&core));
		return 1;
	}
	if (ccid)
		ccid_check(&x, &core, NULL);
	/* from now on, what is plugged in is checked too */
	follow_plugs = true;
	/* the USB session, where the config provides it */
	if (usb_server_open(&usb, &x) < 0)
		printf("xhci: not serving '%s': %s\n", BH_USB_SERVICE, bh_error(&core));
	else
		printf("xhci: serving '%s'\n", BH_USB_SERVICE);
	printf("xhci: ready\n");
	while (!stopping) {
		int timeout;

		if (fault_pending)
			xhci_fault_bad_dma(&x);
		timeout = usb_server_pass(&usb, POLL_MS);
		xhci_poll(&x, timeout);
		if (plugged && ccid) {
			struct usb_device *d = plugged;
			plugged = NULL;
			if (!usb_server_granted(&usb, d))
				ccid_check(&x, &core, d);
		}
	}
	usb_server_close(&usb);
	xhci_stop(&x);
	return 0;
}
