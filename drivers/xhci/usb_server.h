/* SPDX-License-Identifier: MIT */
/*
 * The USB session's server side (bulkhead/usb.h) on top of xhci.h: one
 * device per session, granted by the client's policy, every request
 * checked against that device's descriptors.
 */
#ifndef BH_XHCI_USB_SERVER_H
#define BH_XHCI_USB_SERVER_H

#include "bulkhead/service.h"
#include "bulkhead/usb.h"
#include "xhci.h"

struct usb_client;

/* one request in flight on the controller */
struct usb_req {
	struct xhci_xfer t;
	struct bh_ps_desc d;
	struct usb_client *c;
	bool used;
};

struct usb_client {
	struct bh_session s;
	struct bh_packet_stream *ps;
	struct usb_device *d; /* NULL once unplugged */
	uint64_t bulk_iova;   /* where the controller finds the bulk buffer */
	struct usb_req req[BH_USB_RING];
	unsigned int inflight;
	bool open;
	bool closing; /* hung up, unplugged or broken: freed once nothing is in flight */
	bool ack_pending;
	char policy[BH_NAME_MAX];
	uint64_t requests, refused;
};

struct usb_server {
	struct xhci *x;
	struct bh_service svc;
	bool ready[XHCI_MAX_DEVS]; /* configured: may be granted */
	struct usb_client client[XHCI_MAX_DEVS];
	bool open;
};

/* announce "usb": one session per device we can drive */
int usb_server_open(struct usb_server *u, struct xhci *x);
/* xhci's plug hooks call these */
void usb_server_attached(struct usb_server *u, struct usb_device *d);
void usb_server_detached(struct usb_server *u, struct usb_device *d);
/*
 * one pass, after xhci_poll: set up at most one new session, take the
 * clients' requests, end sessions that are over; then fill x->wait for
 * the next xhci_poll and say how long it may sleep
 */
int usb_server_pass(struct usb_server *u, int timeout_ms);
/* is d granted to a session (then nobody else may drive it) */
bool usb_server_granted(const struct usb_server *u, const struct usb_device *d);
/* on the way out: cancel what is in flight, end every session */
void usb_server_close(struct usb_server *u);

#endif
