// SPDX-License-Identifier: MIT
/*
 * serial16550: a driver for a 16550A UART behind a PCI I/O BAR (QEMU's
 * pci-serial, 1b36:0002), serving the line as Terminal sessions
 * (bulkhead/terminal.h) from an unprivileged, sandboxed process.
 *
 * The walk follows the PC16550D datasheet (SNLS378): probe by the scratch
 * register (8.10) and the FIFO bits of IIR (8.6); 8N1 at the configured baud
 * through the divisor latch (8.1, 8.3); FIFOs on with a receive trigger
 * level (8.5); interrupts for received data, transmitter empty and line
 * status (8.7), on INTx. An I/O BAR cannot be mapped: every register
 * access is a pread or pwrite on the fd core handed us (bh_inb/bh_outb).
 *
 * Receive: LSR.DR says a byte waits (8.4); we read RBR straight into the
 * client's rx slot and submit the slot when the FIFO runs dry. With no
 * free slot (the client is behind) or no client at all, RDA is switched
 * off and bytes stay in the FIFO: the sender is held back (QEMU offers the
 * chardev only the FIFO's free space), nothing is dropped by us. Overrun,
 * parity, framing and break are counted and sent to the client as events.
 *
 * Transmit: at most 16 bytes per THRE (an empty FIFO takes 16; more would
 * push out the oldest). A tx descriptor is acked once all its bytes are in
 * the FIFO; the client resends what was not acked if we die.
 *
 * Health: a heartbeat to core every BEAT_MS, and a look at the registers:
 * all-ones from LSR and IIR means the device is gone (or core took it), and
 * a changed LCR or IER means someone wrote where we did not; either way we
 * exit non-zero so core resets the device and starts us again.
 *
 * Fault injection (BULKHEAD_FAULTS=1, lib/fault.c): bad-desc makes us
 * treat one of our own rx descriptors as if it ran past the bulk buffer
 * (we must catch it before it reaches the client), bad-dma scribbles on
 * the line settings as a stray register write would (the health check
 * must notice). A UART does no DMA: there is no transfer to misdirect.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/fault.h"
#include "bulkhead/service.h"
#include "bulkhead/session.h"
#include "bulkhead/terminal.h"
#include "regs.h"

#define SERIAL_VENDOR 0x1b36
#define SERIAL_DEVICE 0x0002
#define BAUD_BASE 115200 /* QEMU's pci-serial: the divisor divides this */
#define BEAT_MS 200
#define STATS_MS 2000
/* one THRE's worth per tx descriptor: a descriptor goes into the FIFO whole */
#define TX_SLOT UART_FIFO
#define TX_RING 256
#define RX_SLOT 256
#define RX_RING 256
#define MAX_CLIENTS 2  /* the line's user, and one more (it may only send) */
#define RX_TRIGGER 8   /* FCR_TRIGGER_8 */
#define RX_BUDGET 4096 /* bytes per pass, so tx and the heartbeat get their turn */

struct client {
	struct bh_session s;
	struct bh_packet_stream *tx, *rx;
	bool open;
	bool closing;
	/* the tx descriptor whose bytes are going into the FIFO */
	struct bh_ps_desc txd;
	bool tx_busy;
	uint32_t tx_done;
	uint64_t refused; /* malformed descriptors */
};

struct uart {
	struct bh_core core;
	unsigned int dev;
	struct bh_ioport io;
	struct bh_irq irq;
	char name[BH_NAME_MAX];
	uint8_t ier, lcr, mcr;
	struct bh_terminal_line line;
	struct bh_terminal_errors err;
	bool err_changed;
	unsigned int stale_left; /* bytes of a predecessor's FIFO still to count */
	struct bh_service svc;
	struct client client[MAX_CLIENTS];
	int rx_owner; /* the client that receives: the one opened first, or -1 */
	/* the rx slot being filled */
	struct bh_ps_desc rxd;
	bool rx_have;
	unsigned int rx_known; /* bytes IIR said wait (the trigger level), not yet read */
	uint64_t irqs, rx_bytes, tx_bytes, passes;
	uint64_t last_beat_ns, last_stats_ns, stats_irqs;
	unsigned int tx_rr; /* round robin among senders */
};

static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
	(void) sig;
	stopping = 1;
}

static uint8_t rd(struct uart *u, unsigned int reg)
{
	return bh_inb(&u->io, reg);
}

static void wr(struct uart *u, unsigned int reg, uint8_t v)
{
	bh_outb(&u->io, reg, v);
}

/* 8.10 and 8.6: a scratch register that holds what we write, and FIFOs that work */
static int probe(struct uart *u)
{
	uint8_t a, b, iir;

	wr(u, UART_SCR, 0xa5);
	a = rd(u, UART_SCR);
	wr(u, UART_SCR, 0x5a);
	b = rd(u, UART_SCR);
	if (a != 0xa5 || b != 0x5a) {
		fprintf(stderr,
			"serial16550: no UART at BAR0: the scratch register read 0x%02x, "
			"0x%02x for 0xa5, 0x5a\n",
			a, b);
		return -ENODEV;
	}
	wr(u, UART_FCR, FCR_ENABLE);
	iir = rd(u, UART_IIR);
	if ((iir & IIR_FIFO_MASK) != IIR_FIFO_MASK) {
		fprintf(stderr,
			"serial16550: IIR 0x%02x: no working FIFOs, so not a 16550A "
			"(a 16450 or a 16550 with the FIFO bug); not supported\n",
			iir);
		return -ENOTSUP;
	}
	return 0;
}

/* 8.1, 8.3: the divisor latch behind DLAB, then the word format */
static int line_set(struct uart *u, uint32_t baud)
{
	uint32_t div;

	if (!baud || BAUD_BASE % baud || BAUD_BASE / baud > 0xffff)
		return -EINVAL;
	div = BAUD_BASE / baud;
	u->lcr = LCR_WLS_8; /* 8N1 */
	wr(u, UART_LCR, LCR_DLAB);
	wr(u, UART_DLL, (uint8_t) div);
	wr(u, UART_DLM, (uint8_t) (div >> 8));
	wr(u, UART_LCR, u->lcr);
	u->line =
	    (struct bh_terminal_line){.baud = baud, .data_bits = 8, .parity = 'N', .stop_bits = 1};
	return 0;
}

static void ier_set(struct uart *u, uint8_t ier)
{
	if (ier == u->ier)
		return;
	u->ier = ier;
	wr(u, UART_IER, ier);
}

/*
 * The init sequence: interrupts off, line format, FIFOs on, modem lines.
 * Bytes a dead predecessor left in the receive FIFO stay there (the FIFO is
 * not cleared unless it was off): they are counted and delivered.
 */
static int uart_init(struct uart *u, uint32_t baud)
{
	uint8_t lsr;
	int rc;

	u->ier = 0xff;
	ier_set(u, 0);
	rc = probe(u);
	if (rc)
		return rc;
	if (line_set(u, baud) < 0) {
		fprintf(stderr, "serial16550: %u baud: the divisor must divide %u evenly\n", baud,
			BAUD_BASE);
		return -EINVAL;
	}
	/* 8.5: trigger at 8 bytes leaves half the FIFO for our response time */
	wr(u, UART_FCR, FCR_ENABLE | FCR_TRIGGER_8);
	/* 8.8: DTR and RTS up (the other end may watch them), OUT2 gates the line on PCs */
	u->mcr = MCR_DTR | MCR_RTS | MCR_OUT2;
	wr(u, UART_MCR, u->mcr);
	lsr = rd(u, UART_LSR);
	/* reading MSR clears its deltas; IIR, a stale THRE */
	(void) rd(u, UART_MSR);
	(void) rd(u, UART_IIR);
	if (lsr & LSR_DR)
		u->stale_left = UART_FIFO;
	if (lsr & LSR_DR)
		printf("serial16550: bytes wait in the receive FIFO from before (LSR 0x%02x): they "
		       "go to the first client\n",
		       lsr);
	u->err.restarts = u->core.hello.restarts;
	return 0;
}

static void send_errors(struct uart *u)
{
	struct client *c;

	if (!u->err_changed || u->rx_owner < 0)
		return;
	c = &u->client[u->rx_owner];
	if (bh_session_send_event(&c->s, BH_TERMINAL_EVENT_ERRORS, &u->err, sizeof(u->err)) == 0)
		u->err_changed = false;
}

/* 8.4: errors belong to the character at the top of the FIFO */
static void line_errors(struct uart *u, uint8_t lsr)
{
	if (!(lsr & (LSR_OE | LSR_PE | LSR_FE | LSR_BI)))
		return;
	u->err.overrun += !!(lsr & LSR_OE);
	u->err.parity += !!(lsr & LSR_PE);
	u->err.framing += !!(lsr & LSR_FE);
	u->err.breaks += !!(lsr & LSR_BI);
	u->err_changed = true;
}

/* the rx slot being filled goes to the client */
static void rx_submit(struct uart *u)
{
	struct client *c;

	if (!u->rx_have)
		return;
	c = &u->client[u->rx_owner];
	if (!u->rxd.length) {
		bh_ps_free(c->rx, &u->rxd);
	} else if (u->rxd.offset + u->rxd.length > c->rx->bulk_size) {
		/* only a fault can get here: never hand a client what lies outside */
		printf("serial16550: fault caught: rx descriptor at %llu+%u runs past the bulk "
		       "buffer (%llu bytes); dropped\n",
		       (unsigned long long) u->rxd.offset, u->rxd.length,
		       (unsigned long long) c->rx->bulk_size);
		u->rxd.offset = 0;
		bh_ps_free(c->rx, &u->rxd);
	} else {
		/* the ring has a place for every slot */
		bh_ps_put(c->rx, &u->rxd, 1);
		bh_ps_flush(c->rx);
	}
	u->rx_have = false;
}

/* slots the client is done with come back; false if its stream is broken */
static bool rx_reclaim(struct client *c)
{
	struct bh_ps_desc d[32];
	int got;

	while ((got = bh_ps_get(c->rx, d, 32)) > 0)
		for (int i = 0; i < got; i++)
			bh_ps_free(c->rx, &d[i]);
	return got == 0;
}

/*
 * Received bytes into the owner's slots, until the FIFO is dry, the
 * budget is spent or the client has no room. true if the client has room
 * (RDA may stay on).
 */
static bool rx_pump(struct uart *u)
{
	struct client *c;
	unsigned int budget = RX_BUDGET;
	uint8_t lsr;

	if (u->rx_owner < 0 || u->client[u->rx_owner].closing)
		return false;
	c = &u->client[u->rx_owner];
	if (!rx_reclaim(c)) {
		printf("serial16550: client %s corrupted its rx stream: closing it\n", c->s.peer);
		c->closing = true;
		return false;
	}
	for (;;) {
		lsr = rd(u, UART_LSR);
		line_errors(u, lsr);
		/*
		 * 8.6: an RDA interrupt says the FIFO holds the trigger level: that
		 * many come without a look at LSR each, unless some byte in the
		 * FIFO has an error (8.4, bit 7), whose count wants each LSR
		 */
		if ((lsr & LSR_FIFO_ERR) || !(lsr & LSR_DR))
			u->rx_known = 0;
		if (!(lsr & LSR_DR))
			u->stale_left = 0;
		if (!(lsr & LSR_DR) || !budget)
			break;
		if (!u->rx_have) {
			if (bh_ps_alloc(c->rx, RX_SLOT, &u->rxd) < 0)
				return false; /* the client is behind: leave the rest in the FIFO */
			u->rxd.length = 0;
			u->rxd.op = 0;
			u->rxd.status = 0;
			u->rx_have = true;
		}
		uint8_t *p = bh_ps_data(c->rx, &u->rxd);
		unsigned int n = 1;
		if (u->rx_known > 1) {
			n = u->rx_known;
			if (n > RX_SLOT - u->rxd.length)
				n = RX_SLOT - u->rxd.length;
			if (n > budget)
				n = budget;
		}
		u->rx_known = u->rx_known > n ? u->rx_known - n : 0;
		for (unsigned int i = 0; i < n; i++)
			p[u->rxd.length++] = rd(u, UART_RBR);
		u->rx_bytes += n;
		budget -= n - 1;
		/* what a predecessor left: the FIFO's worth at most, then it ran dry */
		if (u->stale_left) {
			unsigned int k = n < u->stale_left ? n : u->stale_left;
			u->stale_left -= k;
			u->err.stale += k;
			u->err_changed = true;
		}
		budget--;
		/*
		 * published at once: a byte read from RBR but not yet in a
		 * descriptor dies with us, so at most one read's worth is lost
		 */
		rx_submit(u);
	}
	u->rx_known = 0;
	rx_submit(u);
	return true;
}

/* the next tx descriptor among the clients, checked; false if none */
static bool tx_next(struct uart *u, struct client **out)
{
	for (unsigned int k = 0; k < MAX_CLIENTS; k++) {
		struct client *c = &u->client[(u->tx_rr + k) % MAX_CLIENTS];
		struct bh_ps_desc d;
		int got = 0;

		if (!c->open || c->closing)
			continue;
		if (c->tx_busy) {
			*out = c;
			return true;
		}
		/* an ack slot for it: the client's ring has one per descriptor */
		while (bh_ps_space(c->tx) && (got = bh_ps_get(c->tx, &d, 1)) == 1) {
			if (d.status || !d.length || d.length > TX_SLOT ||
			    d.offset > c->tx->bulk_size || d.length > c->tx->bulk_size - d.offset) {
				c->refused++;
				d.status = d.status ? d.status : -EINVAL;
				bh_ps_put(c->tx, &d, 1);
				bh_ps_flush(c->tx);
				continue;
			}
			c->txd = d;
			c->tx_done = 0;
			c->tx_busy = true;
			u->tx_rr = (u->tx_rr + k + 1) % MAX_CLIENTS;
			*out = c;
			return true;
		}
		if (got < 0) {
			printf("serial16550: client %s corrupted its tx stream: closing it\n",
			       c->s.peer);
			c->closing = true;
		}
	}
	return false;
}

/*
 * 8.4: THRE says the transmit FIFO is empty, so 16 bytes fit; then THRE
 * goes off until QEMU (or the line) has taken them. true if more waits.
 */
static bool tx_pump(struct uart *u)
{
	struct client *c;
	unsigned int room;

	for (;;) {
		if (!tx_next(u, &c))
			return false;
		if (!(rd(u, UART_LSR) & LSR_THRE))
			return true;
		room = UART_FIFO;
		while (room && c->tx_busy) {
			const uint8_t *p = bh_ps_data(c->tx, &c->txd);
			uint32_t n = c->txd.length - c->tx_done;
			if (n > room)
				n = room;
			for (uint32_t i = 0; i < n; i++)
				wr(u, UART_THR, p[c->tx_done + i]);
			c->tx_done += n;
			room -= n;
			u->tx_bytes += n;
			if (c->tx_done == c->txd.length) {
				c->txd.status = 0;
				bh_ps_put(c->tx, &c->txd, 1);
				bh_ps_flush(c->tx);
				c->tx_busy = false;
				if (room && !tx_next(u, &c))
					return false;
			}
		}
	}
}

static void client_release(struct uart *u, int i)
{
	struct client *c = &u->client[i];

	if (u->rx_owner == i) {
		if (u->rx_have)
			bh_ps_free(c->rx, &u->rxd);
		u->rx_have = false;
		u->rx_owner = -1;
		/* the next one to receive: whoever else is open */
		for (int k = 0; k < MAX_CLIENTS; k++)
			if (k != i && u->client[k].open && !u->client[k].closing)
				u->rx_owner = k;
	}
	printf("serial16550: client %s gone (%llu malformed descriptors refused)\n", c->s.peer,
	       (unsigned long long) c->refused);
	bh_session_close(&u->core, &c->s);
	memset(c, 0, sizeof(*c));
	c->s.fd = -1;
}

static struct bh_terminal_info info_of(const struct uart *u)
{
	struct bh_terminal_info info = {.version = BH_TERMINAL_VERSION, .fifo = UART_FIFO};

	info.line = u->line;
	snprintf(info.driver, sizeof(info.driver), "serial16550");
	snprintf(info.device, sizeof(info.device), "%s", u->name);
	return info;
}

static void specs(struct bh_session_stream_spec spec[2])
{
	spec[BH_TERMINAL_TX] = (struct bh_session_stream_spec){
	    .server_role = BH_PS_SINK,
	    .capacity = TX_RING,
	    .slot_size = TX_SLOT,
	    .bulk_size = (uint64_t) TX_RING * TX_SLOT,
	};
	spec[BH_TERMINAL_RX] = (struct bh_session_stream_spec){
	    .server_role = BH_PS_SOURCE,
	    .capacity = RX_RING,
	    .slot_size = RX_SLOT,
	    .bulk_size = (uint64_t) RX_RING * RX_SLOT,
	};
}

/* a bounded number per pass (bulkhead/service.h) */
static void accept_clients(struct uart *u)
{
	struct bh_session_stream_spec spec[2];
	struct bh_terminal_info info = info_of(u);
	struct bh_session_request req;
	int rc;

	specs(spec);
	while ((rc = bh_service_next(&u->svc, &req)) == 1) {
		int i = -1;
		for (int k = 0; k < MAX_CLIENTS && i < 0; k++)
			if (!u->client[k].open)
				i = k;
		if (i < 0 || stopping) {
			printf("serial16550: refused a session from %s: %s\n", req.client,
			       stopping ? "shutting down" : "too many clients");
			bh_service_refuse(&u->svc, &req);
			continue;
		}
		struct client *c = &u->client[i];
		rc = bh_session_offer(&u->core, u->dev, &req, BH_TERMINAL_SERVICE, spec, 2, &info,
				      sizeof(info), &c->s);
		if (rc) {
			printf("serial16550: session for %s failed: %s\n", req.client,
			       rc == -EPIPE || rc == -ECONNRESET ? "it hung up"
								 : bh_error(&u->core));
			bh_session_close(&u->core, &c->s);
			continue;
		}
		/* events are read until EAGAIN: the socket must not block us */
		fcntl(c->s.fd, F_SETFL, fcntl(c->s.fd, F_GETFL) | O_NONBLOCK);
		c->tx = &c->s.ps[BH_TERMINAL_TX];
		c->rx = &c->s.ps[BH_TERMINAL_RX];
		c->open = true;
		if (u->rx_owner < 0)
			u->rx_owner = i;
		bh_session_send_event(&c->s, BH_TERMINAL_EVENT_LINE, &u->line, sizeof(u->line));
		u->err_changed = true;
		printf("serial16550: serving %s: %u baud 8N1, %s\n", req.client, u->line.baud,
		       u->rx_owner == i ? "sending and receiving"
					: "sending only (another receives)");
	}
	if (rc < 0)
		printf("serial16550: channel: %s\n", strerror(-rc));
}

/* a client's events: a baud rate wanted; anything else is refused */
static void client_events(struct uart *u, int i)
{
	struct client *c = &u->client[i];
	struct bh_session_event ev;
	struct bh_terminal_line line;
	struct bh_terminal_errors e;
	int rc;

	while ((rc = bh_session_recv_event(&c->s, &ev)) == 1) {
		if (ev.type != BH_TERMINAL_EVENT_SET_BAUD ||
		    bh_terminal_event(&ev, &line, &e) < 0) {
			c->refused++;
			continue;
		}
		if (line_set(u, line.baud) < 0)
			printf("serial16550: %s asked for %u baud: not a divisor of %u\n",
			       c->s.peer, line.baud, BAUD_BASE);
		else
			printf("serial16550: %s set %u baud\n", c->s.peer, line.baud);
		bh_session_send_event(&c->s, BH_TERMINAL_EVENT_LINE, &u->line, sizeof(u->line));
	}
	/* a hang-up, or garbage on the socket: that session is over */
	if (rc == 0 || (rc < 0 && rc != -EAGAIN)) {
		if (rc < 0)
			printf("serial16550: client %s sent a malformed message (%s): closing it\n",
			       c->s.peer, strerror(-rc));
		c->closing = true;
	}
}

static void fault_inject(struct uart *u, enum bh_fault f)
{

	printf("serial16550: fault: %s\n", bh_fault_name(f));
	if (f == BH_FAULT_BAD_DMA) {
		/* what a stray write would do: the line's format changes under us */
		wr(u, UART_LCR, u->lcr ^ LCR_PEN);
	} else if (u->rx_have) {
		u->rxd.offset = (uint64_t) RX_RING * RX_SLOT - 8;
		u->rxd.length = 64;
		rx_submit(u);
	} else {
		printf("serial16550: fault: no rx slot in hand; nothing to corrupt\n");
	}
}

/*
 * every BEAT_MS: a heartbeat, so watchdog_ms catches a hang, and a look at
 * the registers we own
 */
static void beat(struct uart *u)
{
	uint64_t now = bh_coarse_ns();
	uint8_t lsr, iir, lcr, ier;

	if (now - u->last_beat_ns < BEAT_MS * 1000000ull)
		return;
	u->last_beat_ns = now;
	if (bh_heartbeat(&u->core) < 0 && !stopping) {
		printf("serial16550: heartbeat: %s; shutting down\n", bh_error(&u->core));
		stopping = 1;
	}
	lsr = rd(u, UART_LSR);
	iir = rd(u, UART_IIR);
	lcr = rd(u, UART_LCR);
	ier = rd(u, UART_IER);
	line_errors(u, lsr);
	if (lsr == 0xff && iir == 0xff) {
		fprintf(stderr, "serial16550: the registers read all-ones: the device is gone; "
				"exiting so core resets it\n");
		exit(70);
	}
	if (lcr != u->lcr || ier != u->ier) {
		fprintf(stderr,
			"serial16550: the UART changed under us (LCR 0x%02x, we wrote "
			"0x%02x; IER 0x%02x, we wrote 0x%02x): exiting so core resets it\n",
			lcr, u->lcr, ier, u->ier);
		exit(70);
	}
	if (now - u->last_stats_ns >= STATS_MS * 1000000ull && u->irqs != u->stats_irqs) {
		u->last_stats_ns = now;
		u->stats_irqs = u->irqs;
		printf("serial16550: stats: irqs %llu, rx %llu, tx %llu bytes; overrun %llu, "
		       "framing %llu, parity %llu, break %llu\n",
		       (unsigned long long) u->irqs, (unsigned long long) u->rx_bytes,
		       (unsigned long long) u->tx_bytes, (unsigned long long) u->err.overrun,
		       (unsigned long long) u->err.framing, (unsigned long long) u->err.parity,
		       (unsigned long long) u->err.breaks);
	}
}

/* 8.6: what the UART wants; reading IIR also clears a THRE interrupt */
static void irq_service(struct uart *u)
{
	for (int k = 0; k < 8; k++) {
		uint8_t iir = rd(u, UART_IIR);
		if (iir & IIR_NO_INT)
			break;
		if ((iir & IIR_ID_MASK) == IIR_RDA)
			u->rx_known = RX_TRIGGER;
		if ((iir & IIR_ID_MASK) == IIR_MS)
			(void) rd(u, UART_MSR);
		else if ((iir & IIR_ID_MASK) == IIR_RLS)
			line_errors(u, rd(u, UART_LSR));
		else
			break; /* data and THRE: the pumps below */
	}
}

static void serve(struct uart *u)
{
	struct bh_pollset w;

	for (;;) {
		bool room, more_tx, busy = false;
		int who, fd;

		enum bh_fault fault = bh_fault_take();
		if (fault)
			fault_inject(u, fault);
		bh_service_pass(&u->svc);
		beat(u);
		/* a closing client's descriptor in hand goes with its memory */
		for (int i = 0; i < MAX_CLIENTS; i++)
			if (u->client[i].open && u->client[i].closing)
				client_release(u, i);
		if (stopping)
			break;
		u->passes++;
		room = rx_pump(u);
		more_tx = tx_pump(u);
		send_errors(u);
		/* 8.7: receive while the client has room; THRE only while bytes wait */
		ier_set(u, (room ? IER_RDA | IER_RLS : 0) | (more_tx ? IER_THRE : 0));
		/* tell each client to signal us, and re-check before sleeping */
		for (int i = 0; i < MAX_CLIENTS; i++) {
			struct client *c = &u->client[i];
			if (!c->open || c->closing)
				continue;
			if (!c->tx_busy && !bh_ps_prepare_wait(c->tx))
				busy = true;
			if (i == u->rx_owner && !room && !bh_ps_prepare_wait(c->rx))
				busy = true;
		}
		if (busy)
			continue;
		bh_pollset_server(&w, &u->core, &u->svc, u->irq.fd);
		for (int i = 0; i < MAX_CLIENTS; i++) {
			struct client *c = &u->client[i];
			if (!c->open || c->closing)
				continue;
			bh_pollset_add(&w, c->s.fd, POLLIN, i);
			bh_pollset_add(&w, bh_ps_wait_fd(c->tx), POLLIN, i);
			if (i == u->rx_owner)
				bh_pollset_add(&w, bh_ps_wait_fd(c->rx), POLLIN, i);
		}
		if (bh_pollset_wait(&w, BEAT_MS) < 0)
			break;
		while (bh_pollset_next(&w, &who, &fd)) {
			if (who == BH_POLL_CORE) {
				printf("serial16550: core closed our connection: shutting down\n");
				stopping = 1;
			} else if (who == BH_POLL_SERVICE) {
				accept_clients(u);
			} else if (who == BH_POLL_IRQ) {
				if (bh_irq_wait(&u->irq, 0) > 0) {
					u->irqs++;
					irq_service(u);
				}
				/* INTx: the line is masked until we unmask it */
				bh_irq_ack(&u->irq);
			} else if (fd == u->client[who].s.fd) {
				client_events(u, who);
			} else {
				struct client *c = &u->client[who];
				if (c->open && !c->closing) {
					bh_ps_drain_signal(c->tx);
					bh_ps_drain_signal(c->rx);
				}
			}
		}
	}
}

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: serial16550 [--baud N] [--ioport BASE]\n"
	    "  --baud N       N divides %u (default 115200)\n"
	    "  --ioport BASE  BAR0 lies at port BASE and core grants it (ioport = BASE-BASE+7):\n"
	    "                 in/out instructions instead of a system call per register\n",
	    BAUD_BASE);
}

/* the registers by name, for bulkhead trace and crash reports (PC16550D, 8) */
static const struct bh_reg_name uart_regs[] = {
    {UART_RBR, 1, "RBR/THR/DLL"}, {UART_IER, 1, "IER/DLM"}, {UART_IIR, 1, "IIR/FCR"},
    BH_REG(UART_LCR, 1),	  BH_REG(UART_MCR, 1),	    BH_REG(UART_LSR, 1),
    BH_REG(UART_MSR, 1),	  BH_REG(UART_SCR, 1),
};

int main(int argc, char **argv)
{
	static struct uart u = {.svc.channel = -1, .rx_owner = -1};
	struct bh_session_stream_spec spec[2];
	struct bh_device_info info;
	struct sigaction sa = {.sa_handler = on_term};
	uint32_t baud = 115200;
	unsigned long ports = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--baud") == 0 && i + 1 < argc) {
			baud = (uint32_t) strtoul(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--ioport") == 0 && i + 1 < argc) {
			ports = strtoul(argv[++i], NULL, 0);
		} else {
			usage();
			return 2;
		}
	}
	for (int i = 0; i < MAX_CLIENTS; i++)
		u.client[i].s.fd = -1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	bh_fault_defer();
	bh_fault_arm();
	if (bh_core_open(&u.core) < 0 ||
	    bh_device_find(&u.core, SERIAL_VENDOR, SERIAL_DEVICE, &u.dev) < 0 ||
	    bh_device_info(&u.core, u.dev, &info) < 0 || bh_acquire(&u.core, u.dev) < 0 ||
	    (ports ? bh_io_port_isa(&u.core, (uint16_t) ports, UART_REGS, &u.io)
		   : bh_io_port(&u.core, u.dev, 0, &u.io)) < 0 ||
	    bh_irq_open(&u.core, u.dev, BH_IRQ_INTX, 1, &u.irq) < 0) {
		fprintf(stderr, "serial16550: %s\n", bh_error(&u.core));
		return 1;
	}
	bh_ioport_names(&u.io, uart_regs, sizeof(uart_regs) / sizeof(uart_regs[0]));
	snprintf(u.name, sizeof(u.name), "%s", info.name);
	if (u.io.size < UART_REGS) {
		fprintf(stderr, "serial16550: BAR0 of %s has %u ports; a 16550 needs %d\n", u.name,
			u.io.size, UART_REGS);
		return 1;
	}
	printf("serial16550: uid %u, device %s, I/O BAR0 of %u ports (%s), INTx, start %u\n",
	       getuid(), u.name, u.io.size,
	       ports ? "in/out on the ports core granted" : "pread/pwrite on the BAR's fd",
	       u.core.hello.restarts + 1);
	if (uart_init(&u, baud) < 0)
		return 1;
	specs(spec);
	if (bh_service_open(&u.svc, &u.core, BH_TERMINAL_SERVICE, bh_session_cost(spec, 2),
			    MAX_CLIENTS) < 0) {
		fprintf(stderr, "serial16550: %s\n", bh_error(&u.core));
		return 1;
	}
	printf("serial16550: ready: 16550A, FIFOs of %d bytes, %u baud 8N1; serving '%s'\n",
	       UART_FIFO, u.line.baud, BH_TERMINAL_SERVICE);
	serve(&u);
	/* interrupts off; what is in the FIFO still goes out */
	ier_set(&u, 0);
	printf("serial16550: stopped: irqs %llu, rx %llu, tx %llu bytes; overrun %llu\n",
	       (unsigned long long) u.irqs, (unsigned long long) u.rx_bytes,
	       (unsigned long long) u.tx_bytes, (unsigned long long) u.err.overrun);
	return 0;
}
