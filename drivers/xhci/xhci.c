// SPDX-License-Identifier: MIT
/*
 * xhci: the host controller side of bulkhead's USB driver, written for
 * QEMU's qemu-xhci (1b36:000d) and the xHCI 1.2 specification, running in
 * an unprivileged, sandboxed process with registers, MSI-X and DMA memory
 * from core.
 *
 * The walk follows the specification's initialization (4.2): halt and
 * reset the controller (5.4.1), program MaxSlotsEn, the device context
 * base address array (6.1), the command ring (4.6.1) and one event ring
 * segment (4.9.4, 6.5), turn on interrupter 0 (4.17) and run. Devices come
 * from port status changes (4.19): a USB2 port is reset (4.19.5), a USB3
 * port trains by itself; then Enable Slot and Address Device (4.3.2,
 * 4.3.3), the descriptors, Configure Endpoint (4.3.5, 4.6.6) and
 * SET_CONFIGURATION.
 *
 * Transfers go on rings of one 4 KiB segment closed by a link TRB (4.11.5.1,
 * 6.4.4.1): control transfers as setup, data and status stages (4.11.2.2),
 * bulk and interrupt transfers as chains of normal TRBs (4.11.2.1). The
 * event ring tells us how each ended (4.11.3.1, 6.4.2.1); every pointer in
 * an event must lie in a ring of ours or we stop trusting the controller.
 * A halted endpoint is reset and moved past the failed transfer (4.6.8,
 * 4.6.10); a cancelled one is stopped first (4.6.9, 4.6.10).
 *
 * Memory: one DMA buffer holds the DCBAA, the event ring segment table,
 * the command and event rings, and per device its contexts, its transfer
 * rings and a bounce buffer. Contexts are 32 bytes (HCCPARAMS1.CSZ = 0).
 *
 * Recovery: a controller that halts on its own, reports a host system or
 * controller error, or leaves a command unanswered is not repaired in
 * place: we exit non-zero and core resets the function and restarts us.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "xhci.h"

#define PAGE 4096u
#define EVT_TRBS 256 /* one event ring segment (QEMU: 16-4096) */
#define CMD_TIMEOUT_MS 5000
#define TICK_MS 200	   /* heartbeat and health check */
#define IMOD_INTERVAL 1000 /* 250 ns units: at most 4000 interrupts a second */
/* our DMA buffer: page 0 DCBAA + ERST, 1 command ring, 2 event ring, then devices */
#define DEV_SLICE (64u << 10)
#define DEV_RINGS_OFF PAGE
#define DEV_BOUNCE_OFF (DEV_SLICE - XHCI_BOUNCE)
#define MEM_SIZE (3 * PAGE + XHCI_MAX_DEVS * DEV_SLICE)
_Static_assert(DEV_RINGS_OFF + (1 + XHCI_EP_RINGS) * PAGE <= DEV_BOUNCE_OFF,
	       "a device's share fits");
_Static_assert(XHCI_IN_CTX_SIZE <= PAGE - 2048, "the input context fits behind the output context");

static void __attribute__((noreturn, format(printf, 2, 3)))
die(struct xhci *x, const char *fmt, ...);

/* ---- registers ---- */

static uint32_t cap_rd(struct xhci *x, size_t off)
{
	return bh_read32(&x->bar, off);
}

static uint32_t op_rd(struct xhci *x, size_t off)
{
	return bh_read32(&x->bar, x->op + off);
}

static void op_wr(struct xhci *x, size_t off, uint32_t v)
{
	bh_write32(&x->bar, x->op + off, v);
}

static void ir_wr(struct xhci *x, size_t off, uint32_t v)
{
	bh_write32(&x->bar, x->rt + XHCI_IR(0) + off, v);
}

/* 5.6: doorbells take dword writes only; what they announce must be in memory first */
static void doorbell(struct xhci *x, unsigned int slot, uint32_t target)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	bh_write32(&x->bar, x->db + XHCI_DB(slot), target);
}

/* 64-bit registers as two dwords, low half first: QEMU acts on the high half's write */
static void wr64(struct xhci *x, size_t lo, uint64_t v)
{
	bh_write32(&x->bar, lo, (uint32_t) v);
	bh_write32(&x->bar, lo + 4, (uint32_t) (v >> 32));
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

const char *xhci_cc_name(unsigned int cc)
{
	static const char *const names[] = {
	    [0] = "invalid",
	    [XHCI_CC_SUCCESS] = "success",
	    [XHCI_CC_DATA_BUFFER] = "data buffer error",
	    [XHCI_CC_BABBLE] = "babble",
	    [XHCI_CC_TRANSACTION] = "USB transaction error",
	    [XHCI_CC_TRB] = "TRB error",
	    [XHCI_CC_STALL] = "stall",
	    [XHCI_CC_RESOURCE] = "resource error",
	    [XHCI_CC_BANDWIDTH] = "bandwidth error",
	    [XHCI_CC_NO_SLOTS] = "no slots available",
	    [10] = "invalid stream type",
	    [XHCI_CC_SLOT_NOT_ENABLED] = "slot not enabled",
	    [XHCI_CC_EP_NOT_ENABLED] = "endpoint not enabled",
	    [XHCI_CC_SHORT_PACKET] = "short packet",
	    [XHCI_CC_RING_UNDERRUN] = "ring underrun",
	    [XHCI_CC_RING_OVERRUN] = "ring overrun",
	    [16] = "VF event ring full",
	    [XHCI_CC_PARAMETER] = "parameter error",
	    [18] = "bandwidth overrun",
	    [XHCI_CC_CONTEXT_STATE] = "context state error",
	    [20] = "no ping response",
	    [XHCI_CC_EVENT_RING_FULL] = "event ring full",
	    [22] = "incompatible device",
	    [23] = "missed service",
	    [24] = "command ring stopped",
	    [XHCI_CC_COMMAND_ABORTED] = "command aborted",
	    [XHCI_CC_STOPPED] = "stopped",
	    [XHCI_CC_STOPPED_LENGTH_INVALID] = "stopped, length invalid",
	    [XHCI_CC_STOPPED_SHORT_PACKET] = "stopped, short packet",
	    [29] = "max exit latency too large",
	};

	if (cc < sizeof(names) / sizeof(names[0]) && names[cc])
		return names[cc];
	return "unknown";
}

const char *xhci_speed_name(unsigned int speed)
{
	switch (speed) {
	case XHCI_SPEED_LOW:
		return "low-speed";
	case XHCI_SPEED_FULL:
		return "full-speed";
	case XHCI_SPEED_HIGH:
		return "high-speed";
	case XHCI_SPEED_SUPER:
		return "SuperSpeed";
	}
	return "unknown-speed";
}

/* ---- health ---- */

/* our view of the controller is no longer to be trusted: core resets it and restarts us */
static void die(struct xhci *x, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "xhci: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (USBSTS 0x%08x, USBCMD 0x%08x): exiting so core resets the controller\n",
		op_rd(x, XHCI_USBSTS), op_rd(x, XHCI_USBCMD));
	exit(70);
}

/*
 * every TICK_MS, from any wait: a heartbeat for core's watchdog, and a look
 * at USBSTS, where a controller reports what it will not recover from by
 * itself (5.4.2: HSE, HCE; a halt we did not ask for)
 */
static void tick(struct xhci *x)
{
	uint64_t now = bh_coarse_ns();
	uint32_t sts, cmd;

	if (now - x->last_tick_ns < TICK_MS * 1000000ull)
		return;
	x->last_tick_ns = now;
	if (bh_heartbeat(x->core) < 0) {
		bool asked = x->stopping && *x->stopping;
		/* no DMA from a controller nobody drives any more */
		if (x->running)
			op_wr(x, XHCI_USBCMD, op_rd(x, XHCI_USBCMD) & ~XHCI_CMD_RUN);
		if (!asked)
			fprintf(stderr, "xhci: heartbeat: %s; core is gone\n", bh_error(x->core));
		exit(asked ? 0 : 1);
	}
	if (!x->running)
		return;
	sts = op_rd(x, XHCI_USBSTS);
	cmd = op_rd(x, XHCI_USBCMD);
	if (sts == 0xffffffffu)
		die(x, "registers read all ones: the device is gone");
	if (sts & XHCI_STS_HSE)
		die(x, "host system error: the controller failed a DMA (outside our memory?)");
	if (sts & XHCI_STS_HCE)
		die(x, "host controller error");
	if ((sts & XHCI_STS_HCH) || !(cmd & XHCI_CMD_RUN))
		die(x, "the controller halted under us");
	if (sts & XHCI_STS_CNR)
		die(x, "the controller says it is not ready");
}

/* ---- rings ---- */

static void ring_init(struct xhci_ring *r, void *mem, uint64_t iova)
{
	memset(mem, 0, PAGE);
	r->trb = mem;
	r->iova = iova;
	r->enq = 0;
	r->cycle = 1;
	r->used = 0;
	/* 4.11.5.1: the last TRB links back to the first and toggles the cycle */
	r->trb[XHCI_RING_TRBS - 1].param = iova;
	r->trb[XHCI_RING_TRBS - 1].control = XHCI_TRB_TYPE(XHCI_TRB_LINK) | XHCI_TRB_TC;
}

static uint64_t ring_addr(const struct xhci_ring *r, unsigned int i)
{
	return r->iova + (uint64_t) i * sizeof(struct xhci_trb);
}

/* the index of a TRB address in our ring, or -1: never follow the controller elsewhere */
static int ring_index(const struct xhci_ring *r, uint64_t addr)
{
	if (addr < r->iova || addr >= ring_addr(r, XHCI_RING_TRBS - 1) ||
	    (addr - r->iova) % sizeof(struct xhci_trb))
		return -1;
	return (int) ((addr - r->iova) / sizeof(struct xhci_trb));
}

/*
 * Put one TRB at the enqueue pointer. The first TRB of a transfer is
 * written with the wrong cycle bit and handed over by ring_publish once
 * the rest is in place (4.11.1: the controller may be reading the ring).
 * At the end of the segment the link TRB is given to the controller,
 * chained if the TD goes on behind it.
 */
static unsigned int ring_put(struct xhci_ring *r, uint64_t param, uint32_t status, uint32_t control,
			     bool first, uint32_t *len_shadow)
{
	volatile struct xhci_trb *t = &r->trb[r->enq];
	unsigned int i = r->enq;

	t->param = param;
	t->status = status;
	t->control = control | (first ? r->cycle ^ 1 : r->cycle);
	if (len_shadow)
		len_shadow[i] = XHCI_TRB_LEN(status);
	r->used++;
	if (++r->enq == XHCI_RING_TRBS - 1) {
		volatile struct xhci_trb *l = &r->trb[r->enq];
		l->control =
		    XHCI_TRB_TYPE(XHCI_TRB_LINK) | XHCI_TRB_TC | (control & XHCI_TRB_CH) | r->cycle;
		r->enq = 0;
		r->cycle ^= 1;
		r->used++;
	}
	return i;
}

static void ring_publish(struct xhci_ring *r, unsigned int first)
{
	volatile struct xhci_trb *t = &r->trb[first];

	__atomic_thread_fence(__ATOMIC_RELEASE);
	t->control ^= XHCI_TRB_CYCLE;
}

/* next index on a ring, skipping the link */
static unsigned int ring_next(unsigned int i)
{
	return i + 1 == XHCI_RING_TRBS - 1 ? 0 : i + 1;
}

/* is i within [start, end) on a ring that may have wrapped */
static bool ring_within(unsigned int start, unsigned int end, unsigned int i)
{
	if (start <= end)
		return i >= start && i < end;
	return i >= start || i < end;
}

/* ---- events ---- */

static int dci_of(uint8_t ep_address)
{
	if ((ep_address & 0x0f) == 0)
		return 1;
	return 2 * (ep_address & 0x0f) + ((ep_address & USB_DIR_IN) ? 1 : 0);
}

/* bytes in a TD's TRBs from its start up to (not including) index i */
static uint32_t td_bytes_before(const struct usb_endpoint *ep, unsigned int from, unsigned int i)
{
	uint32_t n = 0;

	for (unsigned int k = from; k != i; k = ring_next(k))
		n += ep->len[k];
	return n;
}

static struct xhci_td *td_at(struct usb_endpoint *ep, unsigned int k)
{
	return &ep->td[(ep->td_head + k) % XHCI_EP_TDS];
}

/*
 * A TD ended: pop it and those before it (no-op'd ones the controller
 * passed), give their ring space back, and tell the caller.
 */
static void td_complete(struct usb_endpoint *ep, struct xhci_td *td, int status, uint32_t actual)
{
	struct xhci_xfer *t = td->t;

	while (ep->td_count) {
		struct xhci_td *h = td_at(ep, 0);
		ep->ring.used -= h->trbs;
		ep->td_head = (ep->td_head + 1) % XHCI_EP_TDS;
		ep->td_count--;
		if (h == td)
			break;
		if (h->t && !h->noop) {
			/* the controller went past a TD without a word: it is lost */
			struct xhci_xfer *lost = h->t;
			printf("xhci: ep %u: a transfer was skipped by the controller\n",
			       lost->dci);
			lost->status = -EIO;
			lost->actual = 0;
			lost->busy = false;
			if (lost->done)
				lost->done(lost);
		}
	}
	if (!t)
		return;
	t->status = status;
	t->actual = actual > t->len ? t->len : actual;
	t->busy = false;
	if (t->done)
		t->done(t);
}

static int cc_errno(unsigned int cc)
{
	switch (cc) {
	case XHCI_CC_SUCCESS:
	case XHCI_CC_SHORT_PACKET:
		return 0;
	case XHCI_CC_STALL:
		return -EPIPE;
	case XHCI_CC_BABBLE:
		return -EOVERFLOW;
	case XHCI_CC_TRANSACTION:
		return -EPROTO;
	default:
		return -EIO;
	}
}

/*
 * A transfer failed. 4.10.2: stall, babble and transaction errors halt the
 * endpoint (the endpoint context says so too); the TD completes once the
 * recovery has moved the ring past it. Anything else ends only the TD.
 */
static void td_failed(struct xhci *x, struct usb_device *d, unsigned int dci, struct xhci_td *td,
		      unsigned int cc, uint32_t actual)
{
	struct usb_endpoint *ep = &d->ep[dci];
	const volatile uint32_t *ctx = (const uint32_t *) (d->out_ctx + dci * XHCI_CTX_SIZE);
	bool halted = cc == XHCI_CC_STALL || cc == XHCI_CC_BABBLE || cc == XHCI_CC_TRANSACTION ||
		      XHCI_EP_STATE(ctx[0]) == XHCI_EPS_HALTED;

	if (cc == XHCI_CC_TRB)
		die(x, "slot %u endpoint %u: the controller refused a TRB we built", d->slot, dci);
	if (cc != XHCI_CC_STALL)
		printf("xhci: slot %u dci %u: transfer failed: %s (%u)%s\n", d->slot, dci,
		       xhci_cc_name(cc), cc, halted ? "; endpoint halted" : "");
	if (!halted) {
		td_complete(ep, td, cc_errno(cc), actual);
		return;
	}
	/* the failed TD is the oldest live one: transfers end in order */
	ep->halted = true;
	ep->halt_status = cc_errno(cc);
	ep->halt_actual = actual;
}

static void transfer_event(struct xhci *x, const struct xhci_trb *ev)
{
	unsigned int slot = XHCI_EV_SLOT(ev->control), dci = XHCI_EV_EP(ev->control);
	unsigned int cc = XHCI_EV_CODE(ev->status);
	uint32_t residual = XHCI_EV_LEN(ev->status), done;
	struct usb_device *d = slot < 256 ? x->slot_dev[slot] : NULL;
	struct usb_endpoint *ep;
	struct xhci_td *td = NULL;
	int i;

	if (!d || dci < 1 || !d->ep[dci].enabled) {
		printf("xhci: transfer event for slot %u endpoint %u, which we do not use (%s)\n",
		       slot, dci, xhci_cc_name(cc));
		x->stray_events++;
		return;
	}
	if (ev->control & XHCI_TRB_ED)
		die(x, "an event data transfer event, but we queue no event data TRBs");
	ep = &d->ep[dci];
	i = ring_index(&ep->ring, ev->param);
	if (i < 0)
		die(x, "slot %u endpoint %u: transfer event points at 0x%llx, outside our ring",
		    slot, dci, (unsigned long long) ev->param);
	for (unsigned int k = 0; k < ep->td_count && !td; k++)
		if (ring_within(td_at(ep, k)->start, td_at(ep, k)->end, (unsigned int) i) &&
		    td_at(ep, k)->t && !td_at(ep, k)->noop)
			td = td_at(ep, k);
	if (!td) {
		/* e.g. a TD we cancelled that ended in the meantime */
		x->stray_events++;
		return;
	}
	/* what the TRB moved: its length less the residue (never trusted beyond the length) */
	done = residual > ep->len[i] ? 0 : ep->len[i] - residual;
	if (cc == XHCI_CC_STOPPED || cc == XHCI_CC_STOPPED_LENGTH_INVALID ||
	    cc == XHCI_CC_STOPPED_SHORT_PACKET) {
		/* 4.6.9: stopped inside this TD; the canceller decides */
		ep->stopped_seen = true;
		ep->stopped_actual = 0;
		if (dci == 1 && (unsigned int) i == td->start)
			return; /* in the setup stage: no data yet */
		ep->stopped_actual =
		    td_bytes_before(ep, dci == 1 ? td->data : td->start, (unsigned int) i);
		if (cc != XHCI_CC_STOPPED_LENGTH_INVALID)
			ep->stopped_actual += done;
		return;
	}
	if (dci != 1) {
		uint32_t actual = td_bytes_before(ep, td->start, (unsigned int) i) + done;
		if (cc == XHCI_CC_SUCCESS || cc == XHCI_CC_SHORT_PACKET)
			td_complete(ep, td, 0, actual);
		else
			td_failed(x, d, dci, td, cc, actual);
		return;
	}
	/* 4.11.2.2 control: a short data stage reports, then the status stage */
	if ((unsigned int) i == td->last) {
		uint32_t actual = td->data_seen ? td->data_actual : td->t->len;
		if (cc == XHCI_CC_SUCCESS || cc == XHCI_CC_SHORT_PACKET)
			td_complete(ep, td, 0, actual);
		else
			td_failed(x, d, dci, td, cc, td->data_seen ? td->data_actual : 0);
		return;
	}
	if ((unsigned int) i != td->start &&
	    (cc == XHCI_CC_SUCCESS || cc == XHCI_CC_SHORT_PACKET)) {
		td->data_seen = true;
		td->data_actual = td_bytes_before(ep, td->data, (unsigned int) i) + done;
		return;
	}
	td_failed(x, d, dci, td, cc,
		  (unsigned int) i == td->start
		      ? 0
		      : td_bytes_before(ep, td->data, (unsigned int) i) + done);
}

static void handle_event(struct xhci *x, const struct xhci_trb *ev)
{
	unsigned int type = XHCI_TRB_TYPE_OF(ev->control);

	x->events++;
	switch (type) {
	case XHCI_TRB_TRANSFER_EVENT:
		transfer_event(x, ev);
		break;
	case XHCI_TRB_COMMAND_COMPLETION:
		if (!x->cmd_busy || ev->param != ring_addr(&x->cmd, x->cmd_index)) {
			printf("xhci: completion for a command we did not issue (0x%llx)\n",
			       (unsigned long long) ev->param);
			x->stray_events++;
			break;
		}
		x->cmd_status = ev->status;
		x->cmd_control = ev->control;
		x->cmd_busy = false;
		break;
	case XHCI_TRB_PORT_STATUS_CHANGE: {
		unsigned int port = XHCI_EV_PORT(ev->param);
		if (port >= 1 && port <= x->max_ports)
			x->port[port].changed = true;
		break;
	}
	case XHCI_TRB_HOST_CONTROLLER:
		printf("xhci: host controller event: %s (%u)\n",
		       xhci_cc_name(XHCI_EV_CODE(ev->status)), XHCI_EV_CODE(ev->status));
		break;
	default:
		break; /* MFINDEX wrap and the like */
	}
}

/* 4.9.4: consume events while their cycle bit is ours, then move ERDP */
static unsigned int events_reap(struct xhci *x)
{
	unsigned int n = 0;

	for (;;) {
		volatile struct xhci_trb *e = &x->evt[x->evt_deq];
		struct xhci_trb ev;
		uint64_t erdp;

		ev.control = e->control;
		/* at most a ring's worth per call: a controller that keeps writing cannot hold us
		 */
		if ((ev.control & XHCI_TRB_CYCLE) != x->evt_cycle || n == EVT_TRBS) {
			if (!n)
				return 0;
			erdp = x->evt_iova + (uint64_t) x->evt_deq * sizeof(struct xhci_trb);
			/* 5.5.2.3.3: and clear Event Handler Busy */
			wr64(x, x->rt + XHCI_IR(0) + XHCI_ERDP_LO, erdp | XHCI_ERDP_EHB);
			return n;
		}
		/* the rest of the event only after its cycle bit */
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		ev.param = e->param;
		ev.status = e->status;
		if (++x->evt_deq == EVT_TRBS) {
			x->evt_deq = 0;
			x->evt_cycle ^= 1;
		}
		n++;
		handle_event(x, &ev);
	}
}

/* one wait: the interrupt or timeout_ms, then the events */
static void wait_once(struct xhci *x, int timeout_ms)
{
	tick(x);
	if (events_reap(x))
		return;
	if (bh_irq_wait(&x->irq, timeout_ms) > 0) {
		x->irqs++;
		/* 4.17.5: MSI-X clears IP by itself; clear it and EINT anyway, both are RW1C */
		ir_wr(x, XHCI_IMAN, XHCI_IMAN_IE | XHCI_IMAN_IP);
		op_wr(x, XHCI_USBSTS, XHCI_STS_EINT);
	}
	events_reap(x);
}

/* ---- commands (4.6) ---- */

/* one command, waited for; its completion code, or we exit: a controller that does not answer */
static unsigned int command(struct xhci *x, uint64_t param, uint32_t status, uint32_t control,
			    uint32_t *result)
{
	uint64_t deadline = bh_coarse_ns() + CMD_TIMEOUT_MS * 1000000ull;
	unsigned int i;

	if (x->cmd_busy)
		die(x, "a command while another is in flight (a bug of ours)");
	i = ring_put(&x->cmd, param, status, control, true, NULL);
	x->cmd.used = 0; /* one at a time: the ring never fills */
	ring_publish(&x->cmd, i);
	x->cmd_index = i;
	x->cmd_busy = true;
	doorbell(x, XHCI_DB_COMMAND, 0);
	while (x->cmd_busy) {
		if (bh_coarse_ns() > deadline)
			die(x, "command type %u has not completed in %u ms",
			    XHCI_TRB_TYPE_OF(control), CMD_TIMEOUT_MS);
		wait_once(x, 50);
	}
	if (result)
		*result = x->cmd_control;
	return XHCI_EV_CODE(x->cmd_status);
}

/* an IOVA core never maps: its domains end below 4 GiB, VT-d allows 39 bits */
#define WILD_IOVA 0x7fdead0000ull

/*
 * bad-dma: a link TRB sends the command ring to an address core never
 * mapped, and a command is rung in. The IOMMU blocks the fetch (core logs
 * it and names us), the command never completes, and the wait for it ends
 * the way a controller that stopped answering ends: we exit for a reset.
 */
void xhci_fault_bad_dma(struct xhci *x)
{
	volatile struct xhci_trb *l = &x->cmd.trb[x->cmd.enq];
	uint64_t deadline = bh_coarse_ns() + CMD_TIMEOUT_MS * 1000000ull;

	printf("xhci: fault: bad-dma: the command ring links to unmapped 0x%llx\n",
	       (unsigned long long) WILD_IOVA);
	l->param = WILD_IOVA;
	l->status = 0;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	l->control = XHCI_TRB_TYPE(XHCI_TRB_LINK) | x->cmd.cycle;
	x->cmd_index = XHCI_RING_TRBS; /* no completion can match it */
	x->cmd_busy = true;
	doorbell(x, XHCI_DB_COMMAND, 0);
	while (bh_coarse_ns() < deadline)
		wait_once(x, 50);
	die(x, "a command has not completed in %u ms", CMD_TIMEOUT_MS);
}

/* 4.6.10: the endpoint (stopped or after Reset Endpoint) resumes at ring index i */
static unsigned int set_dequeue(struct xhci *x, struct usb_device *d, unsigned int dci,
				unsigned int i, unsigned int cycle)
{
	return command(
	    x, ring_addr(&d->ep[dci].ring, i) | (cycle ? XHCI_TRB_DCS : 0), 0,
	    XHCI_TRB_TYPE(XHCI_TRB_SET_TR_DEQ) | XHCI_TRB_SLOT(d->slot) | XHCI_TRB_EP(dci), NULL);
}

/* ---- transfers ---- */

/* TRB pieces: none may cross a 64 KiB boundary (6.4.1), nor a page where memory is not contiguous
 */
static uint32_t piece_len(const struct xhci *x, uint64_t iova, uint32_t left)
{
	uint64_t bound = x->core->hello.iommu ? 65536 : PAGE;
	uint64_t room = bound - (iova & (bound - 1));

	return left < room ? left : (uint32_t) room;
}

static unsigned int pieces(const struct xhci *x, uint64_t iova, uint32_t len)
{
	unsigned int n = 0;

	do {
		uint32_t k = piece_len(x, iova, len);
		iova += k;
		len -= k;
		n++;
	} while (len);
	return n;
}

/* data TRBs for [iova, iova + len): the first typed first_type, the rest normal, chained */
static void put_data(struct xhci *x, struct usb_endpoint *ep, struct xhci_xfer *t,
		     uint32_t first_type, uint32_t flags, bool last_ioc, bool first_is_td_start,
		     unsigned int *first_index)
{
	uint64_t iova = t->iova;
	uint32_t left = t->len, mps = ep->max_packet ? ep->max_packet : 8;
	bool first = true;

	do {
		uint32_t k = piece_len(x, iova, left);
		bool last = k == left;
		/* 4.11.2.4: packets still to come after this TRB */
		uint32_t td_size = last ? 0 : (left - k + mps - 1) / mps;
		/* 6.4.1.2.2: DIR is the data stage TRB's; normal TRBs after it have none */
		uint32_t control = XHCI_TRB_TYPE(first ? first_type : XHCI_TRB_NORMAL) |
				   (first ? flags : flags & ~XHCI_TRB_DIR_IN) |
				   (last ? (last_ioc ? XHCI_TRB_IOC : 0) : XHCI_TRB_CH);
		unsigned int i =
		    ring_put(&ep->ring, iova, XHCI_TRB_LEN(k) | XHCI_TRB_TD_SIZE(td_size), control,
			     first && first_is_td_start, ep->len);
		if (first && first_index)
			*first_index = i;
		first = false;
		iova += k;
		left -= k;
	} while (left);
}

int xhci_submit(struct usb_device *d, uint8_t ep_address, struct xhci_xfer *t)
{
	struct xhci *x = d->x;
	int dci = dci_of(ep_address);
	struct usb_endpoint *ep = &d->ep[dci];
	bool control = dci == 1, in;
	unsigned int need, first, used0;
	struct xhci_td *td;

	if (!d->used || d->gone || !ep->enabled)
		return -ENODEV;
	if (t->busy || ep->td_count == XHCI_EP_TDS)
		return -EBUSY;
	if (t->len > (4u << 20) || (t->len && !t->iova))
		return -EINVAL;
	in = control ? (t->setup.type & USB_DIR_IN) != 0 : (ep_address & USB_DIR_IN) != 0;
	if (control && t->len != t->setup.length)
		return -EINVAL;
	need = (t->len || !control ? pieces(x, t->iova, t->len) : 0) + (control ? 2 : 0);
	/* room for the TD and a link TRB inside it, and one TRB left empty */
	if (ep->ring.used + need + 2 > XHCI_RING_TRBS)
		return -EAGAIN;
	used0 = ep->ring.used;
	td = td_at(ep, ep->td_count);
	memset(td, 0, sizeof(*td));
	td->t = t;
	td->start = ep->ring.enq;
	td->start_cycle = ep->ring.cycle;
	if (control) {
		uint64_t setup;
		uint32_t trt = !t->len ? XHCI_TRB_TRT_NONE
			       : in    ? XHCI_TRB_TRT_IN
				       : XHCI_TRB_TRT_OUT;

		/* 4.11.2.2, 6.4.1.2.1: the setup packet rides in the TRB itself */
		memcpy(&setup, &t->setup, sizeof(setup));
		first = ring_put(&ep->ring, setup, 8,
				 XHCI_TRB_TYPE(XHCI_TRB_SETUP) | XHCI_TRB_IDT | trt, true, ep->len);
		ep->len[first] = 0;
		td->data = ep->ring.enq;
		if (t->len)
			put_data(x, ep, t, XHCI_TRB_DATA, in ? XHCI_TRB_DIR_IN | XHCI_TRB_ISP : 0,
				 false, false, NULL);
		/* 6.4.1.2.3: the status stage goes the other way (IN when there is no data) */
		td->last = ring_put(&ep->ring, 0, 0,
				    XHCI_TRB_TYPE(XHCI_TRB_STATUS) | XHCI_TRB_IOC |
					(t->len && in ? 0 : XHCI_TRB_DIR_IN),
				    false, ep->len);
	} else {
		/* 4.11.2.1: short packets end the TD early; ISP reports it */
		put_data(x, ep, t, XHCI_TRB_NORMAL, in ? XHCI_TRB_ISP : 0, true, true, &first);
		td->data = td->start;
	}
	td->end = ep->ring.enq;
	td->end_cycle = ep->ring.cycle;
	td->trbs = ep->ring.used - used0;
	ep->td_count++;
	t->busy = true;
	t->dev = d;
	t->dci = (uint8_t) dci;
	t->status = 0;
	t->actual = 0;
	ring_publish(&ep->ring, first);
	if (!ep->halted)
		doorbell(x, d->slot, (uint32_t) dci);
	return 0;
}

/* the first live TD of an endpoint and its place in the queue, or NULL */
static struct xhci_td *td_live_head(struct usb_endpoint *ep, unsigned int *k)
{
	for (unsigned int i = 0; i < ep->td_count; i++) {
		if (td_at(ep, i)->t && !td_at(ep, i)->noop) {
			if (k)
				*k = i;
			return td_at(ep, i);
		}
	}
	return NULL;
}

/*
 * 4.6.10: the stopped or reset endpoint resumes behind the head TD (and
 * the no-op'd TDs right after it, which need not run at all); the head
 * TD then completes with status
 */
static void move_past(struct xhci *x, struct usb_device *d, unsigned int dci, struct xhci_td *td,
		      int status, uint32_t actual, const char *why)
{
	struct usb_endpoint *ep = &d->ep[dci];
	unsigned int k = 0, end = td->end, cycle = td->end_cycle, skip = 0, cc;

	while (td_at(ep, k) != td)
		k++;
	for (unsigned int j = k + 1; j < ep->td_count && td_at(ep, j)->noop; j++) {
		end = td_at(ep, j)->end;
		cycle = td_at(ep, j)->end_cycle;
		skip++;
	}
	cc = set_dequeue(x, d, dci, end, cycle);
	if (cc != XHCI_CC_SUCCESS)
		die(x, "slot %u ep %u: set TR dequeue pointer after %s: %s", d->slot, dci, why,
		    xhci_cc_name(cc));
	td_complete(ep, td, status, actual);
	while (skip--)
		td_complete(ep, td_at(ep, 0), 0, 0);
}

/*
 * 4.6.8, 4.6.10: a halted endpoint is reset and its ring moved past the
 * failed TD, which then completes; TDs behind it run on. Not reentered:
 * its commands wait on events, and those may halt another endpoint.
 */
static void recover(struct xhci *x)
{
	if (x->recovering)
		return;
	x->recovering = true;
	for (unsigned int k = 0; k < XHCI_MAX_DEVS; k++) {
		struct usb_device *d = &x->dev[k];
		for (unsigned int dci = 1; d->used && dci < 32; dci++) {
			struct usb_endpoint *ep = &d->ep[dci];
			struct xhci_td *td;
			unsigned int cc;

			if (!ep->enabled || !ep->halted)
				continue;
			ep->halted = false;
			cc = command(x, 0, 0,
				     XHCI_TRB_TYPE(XHCI_TRB_RESET_EP) | XHCI_TRB_SLOT(d->slot) |
					 XHCI_TRB_EP(dci),
				     NULL);
			if (cc != XHCI_CC_SUCCESS)
				printf("xhci: slot %u dci %u: reset endpoint: %s\n", d->slot, dci,
				       xhci_cc_name(cc));
			td = td_live_head(ep, NULL);
			if (!td)
				continue;
			printf("xhci: slot %u dci %u: halted (%s); endpoint reset, ring moved past "
			       "the "
			       "transfer\n",
			       d->slot, dci, strerror(-ep->halt_status));
			move_past(x, d, dci, td, ep->halt_status, ep->halt_actual, "a halt");
			if (ep->td_count)
				doorbell(x, d->slot, dci);
		}
	}
	x->recovering = false;
}

/*
 * After Stop Endpoint the controller resumes at the endpoint context's TR
 * dequeue pointer (4.6.9), inside the TD it was working on. QEMU instead
 * drops that TD (its dequeue pointer already lies behind it): if nothing
 * of it moved, point the ring back at its start so it runs again.
 */
static void stopped_head(struct xhci *x, struct usb_device *d, unsigned int dci,
			 struct xhci_td *skip)
{
	struct usb_endpoint *ep = &d->ep[dci];
	const volatile uint32_t *ctx = (const uint32_t *) (d->out_ctx + dci * XHCI_CTX_SIZE);
	uint64_t deq = ((uint64_t) ctx[3] << 32 | ctx[2]) & ~(uint64_t) 0xf;
	struct xhci_td *head = td_live_head(ep, NULL);
	int i = ring_index(&ep->ring, deq);
	unsigned int cc;

	if (!head || head == skip || i < 0 || ring_within(head->start, head->end, (unsigned int) i))
		return;
	if (ep->stopped_seen && ep->stopped_actual) {
		/* part of it moved: it cannot run again; it ends with what it has */
		td_complete(ep, head, 0, ep->stopped_actual);
		return;
	}
	cc = set_dequeue(x, d, dci, head->start, head->start_cycle);
	if (cc != XHCI_CC_SUCCESS)
		die(x, "slot %u ep %u: set TR dequeue pointer back to a stopped TD: %s", d->slot,
		    dci, xhci_cc_name(cc));
}

int xhci_cancel(struct xhci_xfer *t)
{
	struct usb_device *d = t->dev;
	struct usb_endpoint *ep;
	struct xhci_td *td = NULL, *head;
	struct xhci *x;
	unsigned int cc;

	if (!t->busy)
		return 0;
	x = d->x;
	ep = &d->ep[t->dci];
	ep->stopped_seen = false;
	/* 4.6.9: the controller lets go of the ring; a TD it was in reports Stopped */
	cc = command(x, 0, 0,
		     XHCI_TRB_TYPE(XHCI_TRB_STOP_EP) | XHCI_TRB_SLOT(d->slot) | XHCI_TRB_EP(t->dci),
		     NULL);
	if (cc != XHCI_CC_SUCCESS && cc != XHCI_CC_CONTEXT_STATE)
		printf("xhci: slot %u dci %u: stop endpoint: %s\n", d->slot, t->dci,
		       xhci_cc_name(cc));
	if (ep->halted)
		recover(x);
	if (!t->busy) {
		/* it ended before the stop took hold */
		if (ep->td_count)
			doorbell(x, d->slot, t->dci);
		return 0;
	}
	for (unsigned int k = 0; k < ep->td_count && !td; k++)
		if (td_at(ep, k)->t == t)
			td = td_at(ep, k);
	if (!td)
		die(x, "a busy transfer with no TD (a bug of ours)");
	head = td_live_head(ep, NULL);
	if (head == td) {
		move_past(x, d, t->dci, td, -ECANCELED, ep->stopped_seen ? ep->stopped_actual : 0,
			  "a stop");
	} else {
		/* the controller has not reached it: no-op TRBs in its place (4.6.9) */
		for (unsigned int i = td->start; i != td->end; i = ring_next(i)) {
			volatile struct xhci_trb *r = &ep->ring.trb[i];
			r->control = XHCI_TRB_TYPE(XHCI_TRB_NOOP) |
				     (r->control & (XHCI_TRB_CYCLE | XHCI_TRB_CH));
		}
		td->noop = true;
		td->t = NULL;
		stopped_head(x, d, t->dci, td);
		t->status = -ECANCELED;
		t->actual = 0;
		t->busy = false;
		if (t->done)
			t->done(t);
	}
	if (ep->td_count)
		doorbell(x, d->slot, t->dci);
	return 0;
}

static int sync_wait(struct xhci *x, struct xhci_xfer *t, int timeout_ms)
{
	uint64_t deadline = bh_coarse_ns() + (uint64_t) timeout_ms * 1000000ull;

	while (t->busy) {
		if (bh_coarse_ns() > deadline) {
			xhci_cancel(t);
			if (t->status == -ECANCELED || t->busy)
				return -ETIMEDOUT;
			break;
		}
		wait_once(x, 20);
		recover(x);
	}
	return t->status;
}

int xhci_control(struct usb_device *d, const struct bh_usb_setup *s, void *buf, int timeout_ms)
{
	struct xhci_xfer *t = &d->sync;
	int rc;

	if (s->length > XHCI_BOUNCE)
		return -EINVAL;
	if (t->busy)
		return -EBUSY;
	if (!(s->type & USB_DIR_IN) && s->length)
		memcpy(d->bounce, buf, s->length);
	*t = (struct xhci_xfer){
	    .setup = *s, .buf = d->bounce, .iova = d->bounce_iova, .len = s->length};
	rc = xhci_submit(d, 0, t);
	if (rc)
		return rc;
	rc = sync_wait(d->x, t, timeout_ms);
	if (rc)
		return rc;
	if (s->type & USB_DIR_IN)
		memcpy(buf, d->bounce, t->actual);
	return (int) t->actual;
}

int xhci_transfer(struct usb_device *d, uint8_t ep_address, void *buf, uint32_t len, int timeout_ms)
{
	struct xhci_xfer *t = &d->sync;
	int rc;

	if (len > XHCI_BOUNCE)
		return -EINVAL;
	if (t->busy)
		return -EBUSY;
	if (!(ep_address & USB_DIR_IN))
		memcpy(d->bounce, buf, len);
	*t = (struct xhci_xfer){.buf = d->bounce, .iova = d->bounce_iova, .len = len};
	rc = xhci_submit(d, ep_address, t);
	if (rc)
		return rc;
	rc = sync_wait(d->x, t, timeout_ms);
	if (rc)
		return rc;
	if (ep_address & USB_DIR_IN)
		memcpy(buf, d->bounce, t->actual);
	return (int) t->actual;
}

/* USB 2.0 9.4.1: the device's side of a halt; ours was reset when the stall came */
int xhci_clear_halt(struct usb_device *d, uint8_t ep_address)
{
	struct bh_usb_setup s = {.type = USB_TYPE_STANDARD | USB_RECIP_ENDPOINT,
			      .request = USB_REQ_CLEAR_FEATURE,
			      .value = USB_FEATURE_ENDPOINT_HALT,
			      .index = ep_address};

	return xhci_control(d, &s, NULL, 1000);
}

/* ---- devices ---- */

static uint8_t *ctx_at(uint8_t *base, unsigned int i)
{
	return base + (size_t) i * XHCI_CTX_SIZE;
}

static void ctx_wr(uint8_t *ctx, unsigned int dword, uint32_t v)
{
	memcpy(ctx + 4 * dword, &v, 4);
}

static int get_descriptor(struct usb_device *d, uint8_t type, uint8_t index, uint16_t lang,
			  void *buf, uint16_t len)
{
	struct bh_usb_setup s = {.type = USB_DIR_IN | USB_TYPE_STANDARD | USB_RECIP_DEVICE,
			      .request = USB_REQ_GET_DESCRIPTOR,
			      .value = (uint16_t) (type << 8 | index),
			      .index = lang,
			      .length = len};

	return xhci_control(d, &s, buf, 1000);
}

/* a string descriptor as printable ASCII (US English), or empty */
static void get_string(struct usb_device *d, uint8_t index, char *out, size_t size)
{
	uint8_t buf[255];
	int n;
	size_t k = 0;

	out[0] = 0;
	if (!index)
		return;
	n = get_descriptor(d, USB_DT_STRING, index, 0x0409, buf, sizeof(buf));
	if (n < 2 || buf[1] != USB_DT_STRING)
		return;
	if (n > buf[0])
		n = buf[0];
	for (int i = 2; i + 1 < n && k + 1 < size; i += 2)
		out[k++] = buf[i] >= 0x20 && buf[i] < 0x7f && !buf[i + 1] ? (char) buf[i] : '?';
	out[k] = 0;
}

static void device_free(struct xhci *x, struct usb_device *d, bool disable)
{
	for (unsigned int dci = 1; dci < 32; dci++) {
		struct usb_endpoint *ep = &d->ep[dci];
		while (ep->td_count)
			td_complete(ep, td_at(ep, 0), -ENODEV, 0);
	}
	if (d->slot) {
		if (disable)
			command(x, 0, 0,
				XHCI_TRB_TYPE(XHCI_TRB_DISABLE_SLOT) | XHCI_TRB_SLOT(d->slot),
				NULL);
		x->dcbaa[d->slot] = 0;
		x->slot_dev[d->slot] = NULL;
	}
	if (d->port && x->port[d->port].dev == d)
		x->port[d->port].dev = NULL;
	d->used = false;
}

/* 6.2.3.6: the interval as 2^n 125 us units */
static unsigned int ep_interval(unsigned int speed, unsigned int type, unsigned int b)
{
	unsigned int n = 0;

	if (type == USB_EP_XFER_BULK)
		return 0;
	if (speed == XHCI_SPEED_HIGH || speed == XHCI_SPEED_SUPER || type == USB_EP_XFER_ISOC) {
		n = b ? b - 1 : 0;
		if (speed == XHCI_SPEED_FULL)
			n += 3; /* full-speed isochronous counts frames as 2^(b-1) */
		return n > 15 ? 15 : n;
	}
	/* low and full speed interrupt: b frames of 1 ms, rounded down to a power of two */
	for (b = b ? b * 8 : 8; b > 1; b >>= 1)
		n++;
	return n < 3 ? 3 : n > 10 ? 10 : n;
}

/*
 * The interfaces' endpoints (alternate setting 0) from the configuration
 * descriptor, checked as we walk it: each descriptor within the total.
 */
static int parse_config(struct usb_device *d, char *summary, size_t size)
{
	const uint8_t *c = d->config;
	unsigned int off = 0, alt = 0, len = 0;
	int n = 0;

	summary[0] = 0;
	while (off + 2 <= d->config_len) {
		unsigned int l = c[off], type = c[off + 1];
		if (l < 2 || off + l > d->config_len)
			break;
		if (type == USB_DT_INTERFACE && l >= 9) {
			alt = c[off + USB_IF_ALT];
			if (!alt)
				len += (unsigned int) snprintf(
				    summary + len, len < size ? size - len : 0,
				    "%sinterface %u class 0x%02x:", len ? "; " : "",
				    c[off + USB_IF_NUMBER], c[off + USB_IF_CLASS]);
		} else if (type == USB_DT_ENDPOINT && l >= 7 && !alt) {
			uint8_t a = c[off + USB_EP_ADDRESS], at = c[off + USB_EP_ATTRIBUTES] & 3;
			uint16_t mps = (uint16_t) (c[off + USB_EP_MAX_PACKET] |
						   c[off + USB_EP_MAX_PACKET + 1] << 8);
			int dci = dci_of(a);
			struct usb_endpoint *ep = &d->ep[dci];
			static const char *const kind[] = {"control", "isochronous", "bulk",
							   "interrupt"};

			len += (unsigned int) snprintf(summary + len, len < size ? size - len : 0,
						       " ep 0x%02x %s %s %u B", a, kind[at],
						       a & USB_DIR_IN ? "IN" : "OUT", mps & 0x7ff);
			if (at == USB_EP_XFER_ISOC || at == 0 || (a & 0x0f) == 0 || ep->type) {
				len += (unsigned int) snprintf(
				    summary + len, len < size ? size - len : 0, " (not used)");
			} else {
				ep->address = a;
				ep->type = at;
				ep->max_packet = mps & 0x7ff;
				ep->burst = d->speed == XHCI_SPEED_HIGH && at == USB_EP_XFER_INT
						? (mps >> 11) & 3
						: 0;
				ep->interval = c[off + USB_EP_INTERVAL];
				n++;
			}
		} else if (type == USB_DT_SS_EP_COMP && l >= 6 && !alt && n) {
			/* applies to the endpoint just before it */
			for (int dci = 31; dci > 1; dci--)
				if (d->ep[dci].type && !d->ep[dci].enabled && !d->ep[dci].burst) {
					d->ep[dci].burst = c[off + 2] & 0x0f;
					break;
				}
		}
		off += l;
	}
	return n;
}

/* 4.3.5, 4.6.6: Configure Endpoint for every endpoint parse_config found */
static int configure_endpoints(struct xhci *x, struct usb_device *d)
{
	uint32_t add = 1, slot0;
	unsigned int last = 1, cc;

	memset(d->in_ctx, 0, XHCI_IN_CTX_SIZE);
	for (unsigned int dci = 2; dci < 32; dci++) {
		struct usb_endpoint *ep = &d->ep[dci];
		uint8_t *ctx = ctx_at(d->in_ctx, dci + 1);
		bool in = ep->address & USB_DIR_IN;
		unsigned int type, avg;

		if (!ep->type)
			continue;
		if (d->rings_used == XHCI_EP_RINGS) {
			printf("xhci: slot %u: more than %u endpoints; ep 0x%02x not used\n",
			       d->slot, XHCI_EP_RINGS, ep->address);
			ep->type = 0;
			continue;
		}
		ring_init(&ep->ring, d->ring_mem + (size_t) (1 + d->rings_used) * PAGE,
			  d->ring_iova + (uint64_t) (1 + d->rings_used) * PAGE);
		d->rings_used++;
		type = ep->type == USB_EP_XFER_BULK ? (in ? XHCI_EP_BULK_IN : XHCI_EP_BULK_OUT)
						    : (in ? XHCI_EP_INTR_IN : XHCI_EP_INTR_OUT);
		/* 4.14.1.1: suggested average TRB lengths */
		avg = ep->type == USB_EP_XFER_BULK ? 3072 : 1024;
		ctx_wr(ctx, 0, XHCI_EP_INTERVAL(ep_interval(d->speed, ep->type, ep->interval)));
		ctx_wr(ctx, 1,
		       XHCI_EP_CERR(3) | XHCI_EP_TYPE(type) | XHCI_EP_MAX_BURST(ep->burst) |
			   XHCI_EP_MAX_PACKET(ep->max_packet));
		ctx_wr(ctx, 2, (uint32_t) ep->ring.iova | 1);
		ctx_wr(ctx, 3, (uint32_t) (ep->ring.iova >> 32));
		ctx_wr(ctx, 4,
		       XHCI_EP_AVG_TRB_LEN(avg) |
			   (ep->type == USB_EP_XFER_INT
				? XHCI_EP_MAX_ESIT_LO(ep->max_packet * (ep->burst + 1u))
				: 0));
		add |= 1u << dci;
		last = dci;
	}
	if (add == 1)
		return 0;
	/* the slot context as the controller keeps it, with the last valid DCI */
	memcpy(ctx_at(d->in_ctx, 1), ctx_at(d->out_ctx, 0), XHCI_CTX_SIZE);
	memcpy(&slot0, ctx_at(d->in_ctx, 1), 4);
	ctx_wr(ctx_at(d->in_ctx, 1), 0,
	       (slot0 & ~XHCI_SLOT_ENTRIES_MASK) | XHCI_SLOT_ENTRIES(last));
	ctx_wr(ctx_at(d->in_ctx, 1), 3, 0); /* state and address are the controller's */
	ctx_wr(d->in_ctx, XHCI_ICC_ADD, add);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	cc = command(x, d->in_iova, 0,
		     XHCI_TRB_TYPE(XHCI_TRB_CONFIGURE_EP) | XHCI_TRB_SLOT(d->slot), NULL);
	if (cc != XHCI_CC_SUCCESS) {
		printf("xhci: slot %u: configure endpoint: %s\n", d->slot, xhci_cc_name(cc));
		return -EIO;
	}
	for (unsigned int dci = 2; dci < 32; dci++)
		if (d->ep[dci].type)
			d->ep[dci].enabled = true;
	return 0;
}

/* EP0's max packet size by speed until the device descriptor tells (4.3.3, USB 2.0 5.5.3) */
static uint16_t ep0_max_packet(unsigned int speed)
{
	switch (speed) {
	case XHCI_SPEED_LOW:
		return 8;
	case XHCI_SPEED_SUPER:
		return 512;
	default:
		return 64;
	}
}

static void enumerate(struct xhci *x, unsigned int port, unsigned int speed)
{
	struct usb_device *d = NULL;
	uint32_t result;
	unsigned int cc, slot, k;
	uint16_t mps, total;
	uint8_t *ep0;
	char summary[512];
	int n;

	for (k = 0; k < XHCI_MAX_DEVS; k++)
		if (!x->dev[k].used)
			break;
	if (k == XHCI_MAX_DEVS) {
		printf("xhci: port %u: a device, but we already drive %u\n", port, XHCI_MAX_DEVS);
		return;
	}
	d = &x->dev[k];
	/* 4.3.2, 4.6.3: a slot for the device */
	cc = command(x, 0, 0, XHCI_TRB_TYPE(XHCI_TRB_ENABLE_SLOT) | x->port[port].slot_type << 16,
		     &result);
	slot = XHCI_EV_SLOT(result);
	if (cc != XHCI_CC_SUCCESS || slot < 1 || slot > x->max_slots || x->slot_dev[slot]) {
		printf("xhci: port %u: enable slot: %s (slot %u)\n", port, xhci_cc_name(cc), slot);
		return;
	}
	memset(d, 0, sizeof(*d));
	d->x = x;
	d->used = true;
	d->slot = slot;
	d->port = port;
	d->speed = speed;
	d->out_ctx = (uint8_t *) x->mem.virt + 3 * PAGE + (size_t) k * DEV_SLICE;
	d->out_iova = x->mem.iova + 3 * PAGE + (uint64_t) k * DEV_SLICE;
	d->in_ctx = d->out_ctx + 2048;
	d->in_iova = d->out_iova + 2048;
	d->ring_mem = d->out_ctx + DEV_RINGS_OFF;
	d->ring_iova = d->out_iova + DEV_RINGS_OFF;
	d->bounce = d->out_ctx + DEV_BOUNCE_OFF;
	d->bounce_iova = d->out_iova + DEV_BOUNCE_OFF;
	memset(d->out_ctx, 0, PAGE);
	x->slot_dev[slot] = d;
	x->port[port].dev = d;
	/* 6.1: the controller finds the output device context through the DCBAA */
	x->dcbaa[slot] = d->out_iova;

	/* 4.3.3: input context with the slot and EP0 contexts (add flags A0, A1) */
	mps = ep0_max_packet(speed);
	ring_init(&d->ep[1].ring, d->ring_mem, d->ring_iova);
	d->ep[1].max_packet = mps;
	ctx_wr(d->in_ctx, XHCI_ICC_ADD, 3);
	ctx_wr(ctx_at(d->in_ctx, 1), 0, XHCI_SLOT_SPEED(speed) | XHCI_SLOT_ENTRIES(1));
	ctx_wr(ctx_at(d->in_ctx, 1), 1, XHCI_SLOT_PORT(port));
	ep0 = ctx_at(d->in_ctx, 2);
	ctx_wr(ep0, 1, XHCI_EP_CERR(3) | XHCI_EP_TYPE(XHCI_EP_CONTROL) | XHCI_EP_MAX_PACKET(mps));
	ctx_wr(ep0, 2, (uint32_t) d->ep[1].ring.iova | 1);
	ctx_wr(ep0, 3, (uint32_t) (d->ep[1].ring.iova >> 32));
	ctx_wr(ep0, 4, XHCI_EP_AVG_TRB_LEN(8));
	__atomic_thread_fence(__ATOMIC_RELEASE);
	cc = command(x, d->in_iova, 0, XHCI_TRB_TYPE(XHCI_TRB_ADDRESS_DEVICE) | XHCI_TRB_SLOT(slot),
		     NULL);
	if (cc != XHCI_CC_SUCCESS) {
		printf("xhci: port %u slot %u: address device: %s\n", port, slot, xhci_cc_name(cc));
		device_free(x, d, true);
		return;
	}
	d->ep[1].enabled = true;

	/* the first 8 bytes say EP0's real max packet size; 4.6.7 Evaluate Context if it differs */
	n = get_descriptor(d, USB_DT_DEVICE, 0, 0, d->desc, 8);
	if (n < 8) {
		printf("xhci: slot %u: device descriptor: %s\n", slot,
		       n < 0 ? strerror(-n) : "too short");
		device_free(x, d, true);
		return;
	}
	{
		uint16_t real = speed == XHCI_SPEED_SUPER ? (uint16_t) (1u << (d->desc[7] & 0xf))
							  : d->desc[USB_DEV_MAX_PACKET0];
		if (real != mps && real >= 8) {
			memset(d->in_ctx, 0, XHCI_IN_CTX_SIZE);
			ctx_wr(d->in_ctx, XHCI_ICC_ADD, 2);
			memcpy(ep0, ctx_at(d->out_ctx, 1), XHCI_CTX_SIZE);
			ctx_wr(ep0, 0, 0);
			ctx_wr(ep0, 1,
			       XHCI_EP_CERR(3) | XHCI_EP_TYPE(XHCI_EP_CONTROL) |
				   XHCI_EP_MAX_PACKET(real));
			__atomic_thread_fence(__ATOMIC_RELEASE);
			cc = command(x, d->in_iova, 0,
				     XHCI_TRB_TYPE(XHCI_TRB_EVALUATE_CTX) | XHCI_TRB_SLOT(slot),
				     NULL);
			if (cc != XHCI_CC_SUCCESS)
				printf("xhci: slot %u: evaluate context (EP0 %u B): %s\n", slot,
				       real, xhci_cc_name(cc));
			else
				d->ep[1].max_packet = real;
		}
	}
	n = get_descriptor(d, USB_DT_DEVICE, 0, 0, d->desc, USB_DEV_LEN);
	if (n < USB_DEV_LEN || d->desc[1] != USB_DT_DEVICE) {
		printf("xhci: slot %u: device descriptor: %s\n", slot,
		       n < 0 ? strerror(-n) : "malformed");
		device_free(x, d, true);
		return;
	}
	d->vendor = (uint16_t) (d->desc[USB_DEV_VENDOR] | d->desc[USB_DEV_VENDOR + 1] << 8);
	d->product = (uint16_t) (d->desc[USB_DEV_PRODUCT] | d->desc[USB_DEV_PRODUCT + 1] << 8);
	get_string(d, d->desc[USB_DEV_MANUFACTURER], d->manufacturer, sizeof(d->manufacturer));
	get_string(d, d->desc[USB_DEV_PRODUCT_STR], d->product_name, sizeof(d->product_name));
	printf("xhci: port %u: %s device in slot %u: %04x:%04x, USB %x.%02x, class 0x%02x, EP0 %u "
	       "B, \"%s\" \"%s\", %u configuration(s)\n",
	       port, xhci_speed_name(speed), slot, d->vendor, d->product,
	       d->desc[USB_DEV_BCD_USB + 1], d->desc[USB_DEV_BCD_USB], d->desc[USB_DEV_CLASS],
	       d->ep[1].max_packet, d->manufacturer, d->product_name, d->desc[USB_DEV_NUM_CONFIGS]);

	/* configuration 0: its header for the total length, then all of it */
	n = get_descriptor(d, USB_DT_CONFIG, 0, 0, d->config, USB_CFG_LEN);
	if (n < USB_CFG_LEN || d->config[1] != USB_DT_CONFIG) {
		printf("xhci: slot %u: configuration descriptor: %s\n", slot,
		       n < 0 ? strerror(-n) : "malformed");
		return;
	}
	total = (uint16_t) (d->config[USB_CFG_TOTAL_LEN] | d->config[USB_CFG_TOTAL_LEN + 1] << 8);
	if (total > XHCI_CONFIG_MAX)
		total = XHCI_CONFIG_MAX;
	n = get_descriptor(d, USB_DT_CONFIG, 0, 0, d->config, total);
	if (n < USB_CFG_LEN) {
		printf("xhci: slot %u: configuration descriptor: %s\n", slot,
		       n < 0 ? strerror(-n) : "too short");
		return;
	}
	d->config_len = (uint16_t) n;
	d->config_value = d->config[USB_CFG_VALUE];
	n = parse_config(d, summary, sizeof(summary));
	printf("xhci: slot %u: configuration %u (%u bytes, %u interface(s)): %s\n", slot,
	       d->config_value, d->config_len, d->config[USB_CFG_NUM_IFACES], summary);
	if (configure_endpoints(x, d) < 0)
		return;
	{
		struct bh_usb_setup s = {.type = USB_TYPE_STANDARD | USB_RECIP_DEVICE,
				      .request = USB_REQ_SET_CONFIGURATION,
				      .value = d->config_value};
		int rc = xhci_control(d, &s, NULL, 1000);
		if (rc < 0) {
			printf("xhci: slot %u: SET_CONFIGURATION %u: %s\n", slot, d->config_value,
			       strerror(-rc));
			return;
		}
	}
	printf("xhci: slot %u: configured: configuration %u, %d endpoint(s) besides EP0\n", slot,
	       d->config_value, n);
	if (x->attached)
		x->attached(x, d);
}

/* 4.19.1.1: a PORTSC write that changes nothing but what we ask */
static void port_write(struct xhci *x, unsigned int port, uint32_t sc, uint32_t set)
{
	op_wr(x, XHCI_PORTSC(port), (sc & XHCI_PORT_KEEP) | set);
}

/* 4.19.5: USB2 ports need a reset to be enabled; USB3 ports enable after link training */
static void port_attach(struct xhci *x, unsigned int port)
{
	uint32_t sc = op_rd(x, XHCI_PORTSC(port));

	if (!(sc & XHCI_PORT_PED) && x->port[port].major == 3) {
		for (int i = 0; i < 50 && !(sc & XHCI_PORT_PED); i++) {
			sleep_ms(10);
			sc = op_rd(x, XHCI_PORTSC(port));
		}
	}
	if (!(sc & XHCI_PORT_PED)) {
		port_write(x, port, sc, XHCI_PORT_PR);
		if (bh_poll32(&x->bar, x->op + XHCI_PORTSC(port), XHCI_PORT_PRC, XHCI_PORT_PRC,
			      500000) < 0) {
			printf("xhci: port %u: reset did not complete in 500 ms (PORTSC 0x%08x)\n",
			       port, op_rd(x, XHCI_PORTSC(port)));
			return;
		}
		sc = op_rd(x, XHCI_PORTSC(port));
		port_write(x, port, sc, XHCI_PORT_PRC);
		if (!(sc & XHCI_PORT_PED) || !(sc & XHCI_PORT_CCS)) {
			printf("xhci: port %u: not enabled after reset (PORTSC 0x%08x)\n", port,
			       sc);
			return;
		}
		printf("xhci: port %u: reset, enabled (PORTSC 0x%08x)\n", port, sc);
	}
	enumerate(x, port, XHCI_PORT_SPEED(sc));
}

/* 4.19.2: follow connects and disconnects the port status change events announced */
static void ports_scan(struct xhci *x)
{
	if (x->enumerating)
		return;
	x->enumerating = true;
	for (unsigned int p = 1; p <= x->max_ports; p++) {
		struct xhci_port *port = &x->port[p];
		uint32_t sc;

		if (!port->changed)
			continue;
		port->changed = false;
		sc = op_rd(x, XHCI_PORTSC(p));
		if (sc & XHCI_PORT_CHANGES)
			port_write(x, p, sc, sc & XHCI_PORT_CHANGES);
		if (port->dev && (!(sc & XHCI_PORT_CCS) || (sc & XHCI_PORT_CSC))) {
			struct usb_device *d = port->dev;
			printf("xhci: port %u: slot %u (%04x:%04x) disconnected\n", p, d->slot,
			       d->vendor, d->product);
			d->gone = true;
			if (x->detached)
				x->detached(x, d);
			device_free(x, d, true);
		}
		if ((sc & XHCI_PORT_CCS) && !port->dev) {
			printf("xhci: port %u (USB%u): connected, %s (PORTSC 0x%08x)\n", p,
			       port->major, xhci_speed_name(XHCI_PORT_SPEED(sc)), sc);
			port_attach(x, p);
		}
	}
	x->enumerating = false;
}

/*
 * The interrupt or one of the caller's fds (x->wait: a session layer's
 * eventfds and sockets; their revents are left for it), or timeout_ms
 */
static void wait_any(struct xhci *x, int timeout_ms)
{
	struct pollfd p[1 + XHCI_MAX_WAIT];
	unsigned int n = x->nwait < XHCI_MAX_WAIT ? x->nwait : XHCI_MAX_WAIT;
	int rc;

	for (unsigned int i = 0; i < x->nwait; i++)
		x->wait[i].revents = 0;
	tick(x);
	if (!n || events_reap(x)) {
		wait_once(x, n ? 0 : timeout_ms);
		return;
	}
	p[0] = (struct pollfd){.fd = x->irq.fd, .events = POLLIN};
	memcpy(p + 1, x->wait, n * sizeof(*p));
	rc = poll(p, n + 1, timeout_ms);
	if (rc <= 0)
		return;
	memcpy(x->wait, p + 1, n * sizeof(*p));
	if (p[0].revents)
		wait_once(x, 0);
}

void xhci_poll(struct xhci *x, int timeout_ms)
{
	wait_any(x, timeout_ms);
	recover(x);
	ports_scan(x);
}

/* ---- controller ---- */

/* 7.1.1 and 7.2: take the controller from firmware, learn which ports speak which protocol */
static void extended_caps(struct xhci *x)
{
	size_t off = (size_t) XHCI_HCC1_XECP(x->hcc1) * 4;

	for (int guard = 0; off && off + 16 <= x->bar.size && guard < 64; guard++) {
		uint32_t v = cap_rd(x, off);

		if (XHCI_XCAP_ID(v) == XHCI_XCAP_LEGACY && (v & XHCI_LEGACY_BIOS_OWNED)) {
			bh_write32(&x->bar, off, v | XHCI_LEGACY_OS_OWNED);
			if (bh_poll32(&x->bar, off, XHCI_LEGACY_BIOS_OWNED, 0, 1000000) < 0)
				printf("xhci: firmware did not let go of the controller in 1 s\n");
		} else if (XHCI_XCAP_ID(v) == XHCI_XCAP_PROTOCOL) {
			uint32_t ports = cap_rd(x, off + 8), type = cap_rd(x, off + 12);
			unsigned int first = XHCI_PROTO_PORT_OFF(ports);
			unsigned int count = XHCI_PROTO_PORT_COUNT(ports);

			for (unsigned int p = first; p && p < first + count && p <= x->max_ports;
			     p++) {
				x->port[p].major = XHCI_PROTO_MAJOR(v);
				x->port[p].slot_type = XHCI_PROTO_SLOT_TYPE(type);
			}
		}
		if (!XHCI_XCAP_NEXT(v))
			break;
		off += (size_t) XHCI_XCAP_NEXT(v) * 4;
	}
}

/* "USB3 1-4, USB2 5-8" */
static void port_summary(struct xhci *x, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = 0;
	for (unsigned int p = 1; p <= x->max_ports; p++) {
		unsigned int q = p;
		while (q < x->max_ports && x->port[q + 1].major == x->port[p].major)
			q++;
		len += (size_t) snprintf(buf + len, len < size ? size - len : 0, "%sUSB%u %u-%u",
					 len ? ", " : "", x->port[p].major, p, q);
		p = q;
	}
}

static int fail(struct xhci *x, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(x->core->error, sizeof(x->core->error), fmt, ap);
	va_end(ap);
	return rc;
}

int xhci_start(struct xhci *x, struct bh_core *core, unsigned int pci)
{
	uint32_t v, sts;
	unsigned int scratchpads, cc;
	char ports[128];
	int rc;

	x->core = core;
	x->pci = pci;
	if ((rc = bh_acquire(core, pci)) < 0 || (rc = bh_io_mem(core, pci, 0, &x->bar)) < 0)
		return rc;
	/* 5.3: where the other register blocks are, checked against the BAR */
	v = cap_rd(x, XHCI_CAPLENGTH);
	x->version = (uint16_t) XHCI_CAP_VERSION(v);
	x->op = XHCI_CAP_LENGTH(v);
	x->hcs1 = cap_rd(x, XHCI_HCSPARAMS1);
	x->hcs2 = cap_rd(x, XHCI_HCSPARAMS2);
	x->hcc1 = cap_rd(x, XHCI_HCCPARAMS1);
	x->db = cap_rd(x, XHCI_DBOFF) & XHCI_DBOFF_MASK;
	x->rt = cap_rd(x, XHCI_RTSOFF) & XHCI_RTSOFF_MASK;
	x->max_slots = XHCI_HCS1_MAX_SLOTS(x->hcs1);
	x->max_ports = XHCI_HCS1_MAX_PORTS(x->hcs1);
	if (x->max_ports > XHCI_MAX_PORTS)
		x->max_ports = XHCI_MAX_PORTS;
	if (x->op < 0x20 || x->op + XHCI_PORTSC(x->max_ports) + 16 > x->bar.size ||
	    x->rt + XHCI_IR(1) > x->bar.size || x->db + XHCI_DB(x->max_slots + 1) > x->bar.size ||
	    !x->max_slots || !x->max_ports)
		return fail(
		    x, -ENODEV,
		    "capability registers make no sense for a %zu-byte BAR (CAPLENGTH 0x%x, "
		    "RTSOFF 0x%zx, DBOFF 0x%zx, %u slots, %u ports): is this an xHCI?",
		    x->bar.size, (unsigned int) x->op, x->rt, x->db, x->max_slots, x->max_ports);
	if (x->hcc1 & XHCI_HCC1_CSZ)
		return fail(x, -ENOTSUP,
			    "the controller uses 64-byte contexts; only 32-byte ones "
			    "are implemented");
	if (!(op_rd(x, XHCI_PAGESIZE) & 1))
		return fail(x, -ENOTSUP, "the controller does not do 4 KiB pages (PAGESIZE 0x%x)",
			    op_rd(x, XHCI_PAGESIZE));
	extended_caps(x);

	/* 4.2 and 5.4.1: halt, then reset; registers are usable once CNR clears */
	op_wr(x, XHCI_USBCMD, op_rd(x, XHCI_USBCMD) & ~(XHCI_CMD_RUN | XHCI_CMD_INTE));
	if (bh_poll32(&x->bar, x->op + XHCI_USBSTS, XHCI_STS_HCH, XHCI_STS_HCH, 100000) < 0)
		return fail(x, -ETIMEDOUT, "the controller did not halt in 100 ms (USBSTS 0x%x)",
			    op_rd(x, XHCI_USBSTS));
	op_wr(x, XHCI_USBCMD, XHCI_CMD_HCRST);
	if (bh_poll32(&x->bar, x->op + XHCI_USBCMD, XHCI_CMD_HCRST, 0, 1000000) < 0 ||
	    bh_poll32(&x->bar, x->op + XHCI_USBSTS, XHCI_STS_CNR, 0, 1000000) < 0)
		return fail(x, -ETIMEDOUT,
			    "the controller did not come out of reset in 1 s "
			    "(USBCMD 0x%x, USBSTS 0x%x)",
			    op_rd(x, XHCI_USBCMD), op_rd(x, XHCI_USBSTS));

	/* our memory; a controller without 64-bit addressing gets it below 4 GiB */
	rc =
	    bh_dma_alloc(core, pci, MEM_SIZE, (x->hcc1 & XHCI_HCC1_AC64) ? 0 : 1ull << 32, &x->mem);
	if (rc < 0)
		return rc;
	memset(x->mem.virt, 0, MEM_SIZE);
	x->dcbaa = x->mem.virt;
	x->erst = (struct xhci_erst_entry *) ((uint8_t *) x->mem.virt + 2048);
	ring_init(&x->cmd, (uint8_t *) x->mem.virt + PAGE, x->mem.iova + PAGE);
	x->evt = (struct xhci_trb *) ((uint8_t *) x->mem.virt + 2 * PAGE);
	x->evt_iova = x->mem.iova + 2 * PAGE;
	x->evt_deq = 0;
	x->evt_cycle = 1;

	/* 4.20: scratchpad buffers, when the controller wants them (QEMU's does not) */
	scratchpads = XHCI_HCS2_SCRATCHPADS(x->hcs2);
	if (scratchpads) {
		uint64_t *array;
		rc = bh_dma_alloc(core, pci, (size_t) (scratchpads + 1) * PAGE,
				  (x->hcc1 & XHCI_HCC1_AC64) ? 0 : 1ull << 32, &x->scratch);
		if (rc < 0)
			return rc;
		memset(x->scratch.virt, 0, (size_t) (scratchpads + 1) * PAGE);
		array = x->scratch.virt;
		for (unsigned int i = 0; i < scratchpads; i++)
			array[i] = x->scratch.iova + (uint64_t) (i + 1) * PAGE;
		x->dcbaa[0] = x->scratch.iova;
	}

	/* 4.2 steps: slots, DCBAA, command ring */
	if (x->max_slots > 255)
		x->max_slots = 255;
	if ((size_t) (x->max_slots + 1) * 8 > 2048)
		x->max_slots = 2048 / 8 - 1;
	op_wr(x, XHCI_CONFIG, (op_rd(x, XHCI_CONFIG) & ~0xffu) | x->max_slots);
	wr64(x, x->op + XHCI_DCBAAP_LO, x->mem.iova);
	wr64(x, x->op + XHCI_CRCR_LO, x->cmd.iova | XHCI_CRCR_RCS);

	/* 4.9.4, 5.5.2: one event ring segment; writing ERSTBA (high half last) loads it */
	x->erst[0].base = x->evt_iova;
	x->erst[0].size = EVT_TRBS;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	ir_wr(x, XHCI_ERSTSZ, 1);
	wr64(x, x->rt + XHCI_IR(0) + XHCI_ERDP_LO, x->evt_iova);
	wr64(x, x->rt + XHCI_IR(0) + XHCI_ERSTBA_LO, x->mem.iova + 2048);

	/* 4.17: MSI-X vector 0 for interrupter 0, moderated */
	rc = bh_irq_open(core, pci, BH_IRQ_MSIX, 1, &x->irq);
	if (rc < 0)
		return rc;
	ir_wr(x, XHCI_IMOD, IMOD_INTERVAL);
	ir_wr(x, XHCI_IMAN, XHCI_IMAN_IE | XHCI_IMAN_IP);

	/* 4.2 last step: run */
	op_wr(x, XHCI_USBCMD, XHCI_CMD_RUN | XHCI_CMD_INTE | XHCI_CMD_HSEE);
	if (bh_poll32(&x->bar, x->op + XHCI_USBSTS, XHCI_STS_HCH, 0, 100000) < 0)
		return fail(x, -ETIMEDOUT, "the controller did not start in 100 ms (USBSTS 0x%x)",
			    op_rd(x, XHCI_USBSTS));
	x->running = true;
	/* the command ring works: a no-op command (4.6.2) */
	cc = command(x, 0, 0, XHCI_TRB_TYPE(XHCI_TRB_NOOP_CMD), NULL);
	if (cc != XHCI_CC_SUCCESS)
		return fail(x, -EIO, "the no-op command failed: %s", xhci_cc_name(cc));
	sts = op_rd(x, XHCI_USBSTS);
	port_summary(x, ports, sizeof(ports));
	printf("xhci: controller started: HCIVERSION %x.%02x, %u slots, %u ports (%s), %u "
	       "interrupters, %u scratchpads, %s-bit DMA, MSI-X, USBSTS 0x%x\n",
	       x->version >> 8, x->version & 0xff, x->max_slots, x->max_ports, ports,
	       XHCI_HCS1_MAX_INTRS(x->hcs1), scratchpads, (x->hcc1 & XHCI_HCC1_AC64) ? "64" : "32",
	       sts);

	/* ports: power where we control it, then look at every one */
	for (unsigned int p = 1; p <= x->max_ports; p++) {
		uint32_t sc = op_rd(x, XHCI_PORTSC(p));
		if (!(sc & XHCI_PORT_PP) && (x->hcc1 & XHCI_HCC1_PPC)) {
			port_write(x, p, sc, XHCI_PORT_PP);
			sleep_ms(20);
		}
		x->port[p].changed = true;
	}
	ports_scan(x);
	return 0;
}

void xhci_stop(struct xhci *x)
{
	if (!x->running)
		return;
	for (unsigned int k = 0; k < XHCI_MAX_DEVS; k++)
		if (x->dev[k].used)
			device_free(x, &x->dev[k], true);
	x->running = false;
	op_wr(x, XHCI_USBCMD, op_rd(x, XHCI_USBCMD) & ~(XHCI_CMD_RUN | XHCI_CMD_INTE));
	if (bh_poll32(&x->bar, x->op + XHCI_USBSTS, XHCI_STS_HCH, XHCI_STS_HCH, 100000) < 0)
		printf("xhci: the controller did not halt in 100 ms\n");
	printf("xhci: stopped: %llu events (%llu stray), %llu interrupts\n",
	       (unsigned long long) x->events, (unsigned long long) x->stray_events,
	       (unsigned long long) x->irqs);
}
