/* SPDX-License-Identifier: MIT */
/*
 * The Terminal session: a byte stream each way over a serial line (or any
 * character device), served by a driver (e.g. drivers/serial16550) to a
 * client (e.g. bridges/term-pty).
 *
 * The server offers two packet streams:
 *   stream 0, tx: the client is the source, the server the sink; each
 *                 descriptor carries 1..slot_size bytes for the line, in
 *                 order. The server acks a descriptor once all its bytes
 *                 are in the transmitter, or with -EINVAL if it is
 *                 malformed (nothing of it is sent).
 *   stream 1, rx: the server is the source, the client the sink; each
 *                 descriptor carries bytes received, in order. The client
 *                 acks it when it has taken the bytes, which gives the slot
 *                 back.
 * Flow control is the streams' own: a server with no free rx slot stops
 * taking bytes from the device (the line's sender is held back, nothing is
 * dropped by the server), and a client whose tx slots are all in flight
 * stops reading from its side.
 *
 * The setup info holds struct bh_terminal_info. Events (struct
 * bh_session_event) carry line settings and loss counts:
 *   BH_TERMINAL_EVENT_LINE   server -> client: struct bh_terminal_line, the
 *                            line's settings, at start and after a change
 *   BH_TERMINAL_EVENT_ERRORS server -> client: struct bh_terminal_errors,
 *                            the device's counts since the server started
 *   BH_TERMINAL_EVENT_SET_BAUD client -> server: struct bh_terminal_line
 *                            with the baud rate wanted (the rest ignored);
 *                            the server answers with a LINE event
 */
#ifndef BULKHEAD_TERMINAL_H
#define BULKHEAD_TERMINAL_H

#include <stdint.h>

#include "bulkhead/session.h"

#define BH_TERMINAL_SERVICE "terminal"
#define BH_TERMINAL_VERSION 1
#define BH_TERMINAL_TX 0
#define BH_TERMINAL_RX 1
/* how long a client waits for the setup once the server has the session */
#define BH_TERMINAL_SETUP_MS 5000

enum bh_terminal_event {
	BH_TERMINAL_EVENT_LINE = 1,
	BH_TERMINAL_EVENT_ERRORS = 2,
	BH_TERMINAL_EVENT_SET_BAUD = 3,
};

struct bh_terminal_line {
	uint32_t baud;
	uint8_t data_bits; /* 5..8 */
	uint8_t parity;	   /* 'N', 'E', 'O' */
	uint8_t stop_bits; /* 1 or 2 */
	uint8_t reserved;
};

/* what the device lost or saw go wrong; counts since the server started */
struct bh_terminal_errors {
	uint64_t overrun; /* characters the receiver had no room for (lost) */
	uint64_t framing;
	uint64_t parity;
	uint64_t breaks;
	uint64_t stale;	   /* bytes found in the receiver at start (delivered) */
	uint64_t restarts; /* how often the server was restarted before this run */
};

struct bh_terminal_info {
	uint32_t version;
	uint32_t fifo; /* bytes the transmitter takes at once */
	struct bh_terminal_line line;
	char driver[16];
	char device[32]; /* e.g. the PCI address, for logs */
};

_Static_assert(sizeof(struct bh_terminal_info) <= BH_SESSION_INFO, "terminal info too large");
_Static_assert(sizeof(struct bh_terminal_errors) <= sizeof(((struct bh_session_event *) 0)->data),
	       "terminal event too large");

/* a client's session to a terminal server, checked and mapped */
struct bh_terminal {
	struct bh_session s;
	struct bh_packet_stream *tx; /* we are its source */
	struct bh_packet_stream *rx; /* we are its sink */
	struct bh_terminal_info info;
};

/* a line setting both sides accept */
static inline int bh_terminal_line_ok(const struct bh_terminal_line *l)
{
	return l->baud >= 50 && l->baud <= 4000000 && l->data_bits >= 5 && l->data_bits <= 8 &&
	       (l->parity == 'N' || l->parity == 'E' || l->parity == 'O') &&
	       (l->stop_bits == 1 || l->stop_bits == 2);
}

/*
 * Open a Terminal session (retrying while the server is not serving, up to
 * timeout_ms, -1: forever), take its setup and check it. 0, or -errno with
 * why set.
 */
int bh_terminal_open(struct bh_core *core, int timeout_ms, struct bh_terminal *t, char *why,
		     size_t why_len);
void bh_terminal_close(struct bh_terminal *t);

/*
 * An event's payload: 0 with *line or *errors filled (whichever the type
 * says; the other untouched), or -EPROTO for one that makes no sense
 */
int bh_terminal_event(const struct bh_session_event *ev, struct bh_terminal_line *line,
		      struct bh_terminal_errors *errors);

#endif
