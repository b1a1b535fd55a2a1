/* SPDX-License-Identifier: MIT */
/*
 * The xHCI driver's inside interface: what the component around it (today
 * main.c; later the USB session layer) uses to reach devices on the bus.
 *
 * A transfer is a struct xhci_xfer on one endpoint of an addressed device.
 * Its buffer lies in DMA memory of the controller (a device's bounce
 * buffer, or a session's stream region), given as virt + iova. Transfers
 * complete asynchronously: xhci_poll() reaps the event ring and calls each
 * one's done(), with status 0 or -errno and the bytes moved. A stall is
 * undone on the host side (Reset Endpoint, Set TR Dequeue Pointer) before
 * the transfer completes with -EPIPE; clearing the device's halt is the
 * caller's (xhci_clear_halt). xhci_cancel() takes one transfer back (Stop
 * Endpoint, then Set TR Dequeue Pointer or no-op TRBs).
 *
 * xhci_control() and xhci_transfer() are the synchronous forms: they copy
 * through the device's bounce buffer and poll until done or timed out.
 */
#ifndef BH_XHCI_H
#define BH_XHCI_H

#include <stdbool.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/usb.h"
#include "regs.h"

#define XHCI_MAX_PORTS 16
#define XHCI_MAX_DEVS 8		/* devices at once: our DMA memory has room for this many */
#define XHCI_RING_TRBS 256	/* one 4 KiB segment per ring, the last TRB a link */
#define XHCI_EP_RINGS 8		/* endpoints besides EP0 per device */
#define XHCI_EP_TDS 16		/* transfers in flight per endpoint */
#define XHCI_BOUNCE (16u << 10) /* per device, for the synchronous calls */
#define XHCI_CONFIG_MAX 1024	/* the configuration descriptor we keep */
#define XHCI_MAX_WAIT 40	/* fds xhci_poll sleeps on besides the interrupt */

struct xhci;
struct usb_device;
struct xhci_xfer;

typedef void (*xhci_done_fn)(struct xhci_xfer *t);

struct xhci_xfer {
	/* the caller's */
	struct bh_usb_setup setup; /* control transfers only */
	void *buf;
	uint64_t iova;
	uint32_t len;
	xhci_done_fn done; /* may be NULL; may submit again */
	void *arg;
	/* on completion */
	int status; /* 0, -EPIPE stalled, -ECANCELED, -ENODEV gone, -EPROTO, -EOVERFLOW, -EIO */
	uint32_t actual;
	/* the driver's */
	bool busy;
	struct usb_device *dev;
	uint8_t dci;
};

struct xhci_ring {
	struct xhci_trb *trb; /* XHCI_RING_TRBS, the last one a link back */
	uint64_t iova;
	unsigned int enq;   /* next free TRB */
	unsigned int cycle; /* producer cycle state */
	unsigned int used;  /* TRBs between the oldest live TD and enq */
};

/* one transfer descriptor on a ring */
struct xhci_td {
	struct xhci_xfer *t;
	unsigned int start, end;	     /* first TRB, and the one after the last */
	unsigned int start_cycle, end_cycle; /* the ring's cycle state at start and end */
	unsigned int data, last;	     /* control: data stage TRB (or end), status stage */
	unsigned int trbs;
	uint32_t data_actual; /* control: bytes the data stage moved */
	bool data_seen;	      /* control: the data stage reported (short packet) */
	bool noop;	      /* cancelled behind others: its TRBs were turned to no-ops */
};

struct usb_endpoint {
	uint8_t address; /* bEndpointAddress; 0 for EP0 */
	uint8_t type;	 /* USB_EP_XFER_*; 0 control */
	uint16_t max_packet;
	uint8_t interval;
	uint8_t burst;
	bool enabled;
	bool halted;	 /* the controller halted it; recovery pending */
	int halt_status; /* what the halted transfer completes with */
	struct xhci_ring ring;
	struct xhci_td td[XHCI_EP_TDS];
	unsigned int td_head, td_count;
	uint32_t halt_actual;
	uint32_t stopped_actual; /* from a Stopped transfer event */
	unsigned int stopped_trb;
	bool stopped_seen;
	uint32_t len[XHCI_RING_TRBS]; /* each TRB's length, kept out of the device's reach */
};

struct usb_device {
	struct xhci *x;
	bool used;
	bool gone; /* unplugged; waiting to be freed */
	unsigned int slot;
	unsigned int port;
	unsigned int speed; /* XHCI_SPEED_* */
	uint8_t desc[USB_DEV_LEN];
	uint16_t vendor, product;
	uint8_t config[XHCI_CONFIG_MAX];
	uint16_t config_len;
	uint8_t config_value;
	char manufacturer[64], product_name[64];
	struct usb_endpoint ep[32]; /* by device context index */
	/* its share of our DMA memory */
	uint8_t *out_ctx, *in_ctx;
	uint64_t out_iova, in_iova;
	uint8_t *ring_mem;
	uint64_t ring_iova;
	unsigned int rings_used;
	uint8_t *bounce;
	uint64_t bounce_iova;
	struct xhci_xfer sync; /* the synchronous calls' transfer */
};

struct xhci_port {
	unsigned int major; /* USB 2 or 3, from the supported protocol capability */
	unsigned int slot_type;
	bool changed; /* a port status change event came */
	struct usb_device *dev;
};

struct xhci {
	struct bh_core *core;
	unsigned int pci;
	struct bh_mmio bar;
	size_t op, rt, db; /* register blocks' offsets in BAR0 */
	struct bh_irq irq;
	uint16_t version;
	unsigned int max_slots, max_ports;
	uint32_t hcs1, hcs2, hcc1;
	bool running;
	struct bh_dma mem; /* DCBAA, ERST, command and event rings, devices */
	struct bh_dma scratch;
	uint64_t *dcbaa;
	struct xhci_erst_entry *erst;
	struct xhci_ring cmd;
	struct xhci_trb *evt;
	uint64_t evt_iova;
	unsigned int evt_deq, evt_cycle;
	/* the command in flight: one at a time */
	bool cmd_busy;
	unsigned int cmd_index;
	uint32_t cmd_status, cmd_control;
	struct xhci_port port[XHCI_MAX_PORTS + 1]; /* by port number */
	struct usb_device dev[XHCI_MAX_DEVS];
	struct usb_device *slot_dev[256];
	bool recovering, enumerating;
	uint64_t last_tick_ns;
	uint64_t events, stray_events, irqs;
	/* set by a SIGTERM handler: core is stopping us, its socket may already be gone */
	volatile int *stopping;
	/* a session layer's fds to sleep on too (xhci_poll leaves their revents) */
	struct pollfd wait[XHCI_MAX_WAIT];
	unsigned int nwait;
	/* a session layer's hooks; may be NULL */
	void (*attached)(struct xhci *x, struct usb_device *d);
	void (*detached)(struct xhci *x, struct usb_device *d);
};

/* acquire the device, reset and start the controller (4.2); 0 or -errno, with a message */
int xhci_start(struct xhci *x, struct bh_core *core, unsigned int pci);
/* halt the controller and free every device (on the way out) */
void xhci_stop(struct xhci *x);
/*
 * wait up to timeout_ms for events (or for one of x->wait), complete
 * transfers, follow plug and unplug
 */
void xhci_poll(struct xhci *x, int timeout_ms);

/* fault injection (bad-dma): the command ring is sent where core mapped nothing */
void __attribute__((noreturn)) xhci_fault_bad_dma(struct xhci *x);

int xhci_submit(struct usb_device *d, uint8_t ep_address, struct xhci_xfer *t);
int xhci_cancel(struct xhci_xfer *t);

/* synchronous: the bytes moved, or -errno */
int xhci_control(struct usb_device *d, const struct bh_usb_setup *s, void *buf, int timeout_ms);
int xhci_transfer(struct usb_device *d, uint8_t ep_address, void *buf, uint32_t len,
		  int timeout_ms);
int xhci_clear_halt(struct usb_device *d, uint8_t ep_address);

const char *xhci_cc_name(unsigned int cc);
const char *xhci_speed_name(unsigned int speed);

#endif
