/* SPDX-License-Identifier: MIT */
/*
 * The USB session: one USB device, served by a host controller driver
 * (drivers/xhci) to one client (e.g. drivers/ccid) over one packet stream.
 *
 * Which device a client gets is its policy: the argument of its config's
 * "session = usb xhci ARG" line, where ARG is vendor:product ("08e6:4433"),
 * a class ("class:0b", of the device or of one of its interfaces) or a root
 * port ("port:5"). The server grants the first attached device that matches
 * and is not granted to another session; otherwise it refuses the session.
 * A device is never shared: while one client holds it, the others are
 * refused. When the device is unplugged, the server closes the session and
 * the client sees a hang-up; so it does when the driver restarts.
 *
 * The setup's info is struct bh_usb_info: the device descriptor, speed,
 * where it is, and the configuration descriptor's length. The client reads
 * the configuration descriptor with a GET_DESCRIPTOR control request like
 * any other; the server answers it (and the device descriptor) from the
 * copy it checks every request against, so the client sees exactly the
 * descriptors its requests are held to.
 *
 * The client is the stream's source, the server its sink. A request is one
 * descriptor: op (enum bh_usb_op), arg, length and offset of its data in
 * the bulk buffer (read from for OUT, written to for IN), tag (the client's
 * name for it, echoed back). The server acknowledges each request once,
 * status 0 or -errno, length = bytes moved; acknowledgements may come out
 * of order across endpoints, in order on one endpoint.
 *
 *   BH_USB_CONTROL    arg = the 8-byte setup packet (bh_usb_setup_arg),
 *                     length = its wLength; on endpoint 0
 *   BH_USB_BULK       arg = bEndpointAddress of a bulk endpoint
 *   BH_USB_INTERRUPT  arg = bEndpointAddress of an interrupt endpoint;
 *                     length at most one service interval's payload
 *   BH_USB_CANCEL     arg = the tag of a request in flight, length 0; the
 *                     request is acked -ECANCELED (with what moved, if any),
 *                     then the cancel itself 0, or -ENOENT if nothing had
 *                     that tag
 *
 * The server checks each request against the device's own descriptors and
 * this client's grant: an endpoint the device does not have, an op that is
 * not the endpoint's type, a length beyond the endpoint's limit or the
 * slot, get -EINVAL; a control request that is the driver's to make
 * (SET_ADDRESS, SET_CONFIGURATION, SET_INTERFACE, SET_DESCRIPTOR, a device
 * SET_FEATURE) gets -EPERM; an interface or endpoint request naming one the
 * device does not have gets -EINVAL. Device errors come back as they are:
 * -EPIPE a stall (the device's halt is the client's to clear with
 * CLEAR_FEATURE(ENDPOINT_HALT)), -EPROTO, -EOVERFLOW, -EIO; -ENODEV when
 * the device is gone.
 */
#ifndef BULKHEAD_USB_H
#define BULKHEAD_USB_H

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "bulkhead/packet_stream.h"
#include "bulkhead/session.h"

#define BH_USB_SERVICE "usb"
#define BH_USB_VERSION 1
/*
 * the stream a server offers: 16 requests in flight in 64 KiB slots; a bulk
 * request may span consecutive slots (bh_ps_alloc_span), up to the whole
 * bulk buffer, so a mass-storage command's data moves as one transfer
 */
#define BH_USB_RING 16
#define BH_USB_SLOT 65536u
#define BH_USB_BULK_SIZE (BH_USB_RING * BH_USB_SLOT)

enum bh_usb_op {
	BH_USB_CONTROL = 1,
	BH_USB_BULK = 2,
	BH_USB_INTERRUPT = 3,
	BH_USB_CANCEL = 4,
};

/* bh_usb_info.speed: as xHCI's port speed IDs */
enum bh_usb_speed {
	BH_USB_SPEED_FULL = 1,
	BH_USB_SPEED_LOW = 2,
	BH_USB_SPEED_HIGH = 3,
	BH_USB_SPEED_SUPER = 4,
};

/* USB 2.0 9.3: the setup packet, little-endian as on the wire */
struct bh_usb_setup {
	uint8_t type; /* bmRequestType */
	uint8_t request;
	uint16_t value;
	uint16_t index;
	uint16_t length;
} __attribute__((packed));

/* the setup's info */
struct bh_usb_info {
	uint32_t version;
	uint8_t speed; /* enum bh_usb_speed */
	uint8_t port;  /* root hub port */
	uint16_t config_len;   /* the configuration descriptor's bytes (GET_DESCRIPTOR) */
	uint16_t vendor, product;
	uint32_t max_transfer; /* bytes per request: the stream's slot size */
	uint8_t device[18];    /* the device descriptor (USB 2.0 9.6.1) */
	uint8_t reserved[2];
	char driver[16];       /* the controller's driver, for logs */
	char product_name[64]; /* the product string, printable ASCII, or "" */
};

_Static_assert(sizeof(struct bh_usb_setup) == 8, "a setup packet is 8 bytes");
_Static_assert(sizeof(struct bh_usb_info) <= BH_SESSION_INFO, "usb info too large");

static inline uint64_t bh_usb_setup_arg(const struct bh_usb_setup *s)
{
	uint64_t arg;

	memcpy(&arg, s, sizeof(arg));
	return arg;
}

static inline struct bh_usb_setup bh_usb_arg_setup(uint64_t arg)
{
	struct bh_usb_setup s;

	memcpy(&s, &arg, sizeof(s));
	return s;
}

/* the client side: a session to a USB device, checked and mapped */
struct bh_usb {
	struct bh_session s;
	struct bh_packet_stream *ps; /* we are its source */
	struct bh_usb_info info;
};

/*
 * Open a USB session (retrying while the server is not serving, up to
 * timeout_ms, -1: forever), take its setup and check the info. 0, or
 * -errno with why set; -ECONNRESET when the server refused the session
 * (no device matches our policy, or it is granted to another client).
 */
int bh_usb_open(struct bh_core *core, int timeout_ms, struct bh_usb *u, char *why, size_t why_len);
void bh_usb_close(struct bh_usb *u);

/*
 * Submit one request: a slot (or a span of them, for len beyond one) for len
 * bytes, data copied in for OUT (data may be NULL), tag ours. 0, -ENOBUFS
 * when no slots are free, or -ENOSPC when the ring is full. Its ack's slots
 * go back with bh_ps_free_span(ps, offset, len).
 */
int bh_usb_submit(struct bh_usb *u, uint32_t op, uint64_t arg, const void *data, uint32_t len,
		  uint32_t tag, struct bh_ps_desc *d);

/*
 * Wait up to timeout_ms for the ack of tag (others that come first are
 * handed to other, if not NULL, else freed). 1 with *ack (its slot still
 * held: read bh_ps_data, then bh_ps_free), 0 on timeout, -ECONNRESET when
 * the server hung up.
 */
int bh_usb_wait(struct bh_usb *u, uint32_t tag, int timeout_ms, struct bh_ps_desc *ack,
		void (*other)(void *arg, const struct bh_ps_desc *d), void *arg);

/* a control request, synchronous: bytes moved or -errno (-ETIMEDOUT: cancelled) */
int bh_usb_control(struct bh_usb *u, const struct bh_usb_setup *s, void *data, int timeout_ms);

/* walk a configuration descriptor: the next descriptor at *off of type (0: any), or NULL */
const uint8_t *bh_usb_next_desc(const uint8_t *cfg, unsigned int len, unsigned int *off,
				uint8_t type);

#endif
