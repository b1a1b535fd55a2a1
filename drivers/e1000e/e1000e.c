// SPDX-License-Identifier: MIT
/*
 * e1000e: a driver for the Intel 82574L (8086:10d3) as QEMU emulates it,
 * serving NIC sessions (bulkhead/nic.h) from an unprivileged, sandboxed
 * process. Everything it touches comes from core: the register BAR, one
 * interrupt vector, DMA buffers in its own IOMMU domain, and the session
 * channel.
 *
 * The walk follows the datasheet's software initialization (4.6): quiesce
 * and reset, read the MAC address, set up the receive (7.1) and transmit
 * (7.2) rings with legacy descriptors, then interrupts (7.4).
 *
 * Data path:
 *   rx: the NIC writes into the driver's own rx buffers; each frame is
 *       copied once into every client's rx stream (one copy), with the
 *       NIC's TCP/UDP checksum verdict (RXCSUM).
 *   tx offloads (7.3): a frame whose descriptor asks for a checksum or TCP
 *       segmentation (nic.h) goes out as a context descriptor and data
 *       descriptors; the NIC cuts a 64 KiB TSO frame into MSS segments.
 *   tx: a client's frame is sent straight from its tx stream's bulk buffer,
 *       which is DMA memory of this device (zero copy); with --copy, it is
 *       copied into the driver's own tx buffers first (one copy).
 * Arguments: --copy; --msi or --intx instead of MSI-X; --promiscuous to
 * receive every unicast frame (for a bridge whose MAC differs from ours).
 * Interrupts are moderated (ITR/EITR); after one fires the driver masks
 * them and polls rings and streams until a pass finds no work, then
 * re-arms them (NAPI's scheme). Every descriptor a client submits is
 * checked: the packet-stream library checks offsets, we check lengths.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/coalesce.h"
#include "bulkhead/fault.h"
#include "bulkhead/nic.h"
#include "bulkhead/service.h"
#include "regs.h"

#define RX_RING 256
#define TX_RING 512
#define BUF_SIZE 2048 /* RCTL.BSIZE 2048: one frame per buffer */
/* the tx stream: slots big enough for a segmentation request (nic.h) */
#define TX_SLOT (66u * 1024)
#define TX_SLOTS 64
/*
 * a data descriptor never crosses a page of the client's buffer (QEMU maps
 * each as one piece, and only a page is sure to be one piece in the IOMMU
 * and in memory: 4 KiB, or 2 MiB on huge pages) and holds at most
 * TX_CHUNK bytes, as Linux's e1000e does; with --copy it is one 2 KiB buffer
 */
#define TX_CHUNK 8192u
/* the most descriptors a frame takes: a context and the data chunks */
#define TX_DESC_MAX (2 + TX_SLOT / BUF_SIZE + 1)
_Static_assert(TX_SLOT >= BH_NIC_GSO_MAX, "a tx slot holds a segmentation request");
/* both descriptor rings, page-aligned for the buffers behind them */
#define RINGS_SIZE (((RX_RING + TX_RING) * sizeof(struct e1000e_rx_desc) + 4095) & ~(size_t) 4095)
/* the driver's own DMA memory: rings, rx buffers, tx buffers (one copy) */
#define OWN_DMA (2u << 20)
_Static_assert(RINGS_SIZE + (RX_RING + TX_RING) * BUF_SIZE <= OWN_DMA, "our DMA buffer fits");
#define BATCH 64
#define MAX_CLIENTS 4
/* interrupts per second at most (ITR counts 256 ns units) */
#define IRQ_RATE 20000
#define ITR_VALUE (1000000000u / (IRQ_RATE * 256u))
/* sleep at most this long while serving, in case an interrupt went missing */
#define SAFETY_MS 10
/* polling passes between looks at the fds */
#define POLL_FD_EVERY 16
/* heartbeats to core (its watchdog_ms catches a hung driver) and health checks */
#define TICK_MS 200
/* transmit descriptors the NIC holds without progress this long: a hung unit */
#define TX_HANG_MS 2000

struct client {
	struct bh_session s;
	bool used;
	bool blocked; /* its tx stalls on its own full ack ring */
	uint32_t gen;
	uint32_t inflight; /* its frames the NIC still holds (zero copy) */
	uint64_t bulk_off[BH_SESSION_STREAMS];
	uint64_t rx_frames, rx_dropped, tx_frames, tx_refused;
	uint32_t pending_flush; /* streams with unpublished descriptors */
};

/* who a tx descriptor belongs to, for its ack when the NIC is done */
struct tx_owner {
	int client;
	uint32_t gen;
	struct bh_ps_desc d;
};

struct nic {
	struct bh_core core;
	unsigned int dev;
	struct bh_device_info info;
	struct bh_mmio regs;
	struct bh_irq irq;
	enum bh_irq_type irq_type;
	uint32_t irq_mask;  /* IMS bits while armed */
	uint32_t irq_armed; /* what the last arm asked for; 0 while masked */
	bool irq_fired;
	bool rx_blocked;   /* frames wait in the NIC's ring: no client has a free slot */
	struct bh_dma own; /* our DMA memory: rings, rxbuf and txbuf in it */
	struct bh_dma rings, rxbuf, txbuf; /* its parts */
	volatile struct e1000e_rx_desc *rx;
	volatile struct e1000e_tx_desc *tx;
	uint32_t rx_next;	    /* next rx descriptor the NIC may have filled */
	uint32_t tx_tail, tx_clean; /* free-running counters */
	struct tx_owner owner[TX_RING];
	bool zero_copy;
	bool promiscuous;
	uint8_t mac[6];
	struct bh_nic_link link;
	struct bh_service svc;
	struct bh_loop loop;
	struct client clients[MAX_CLIENTS];
	unsigned int nclients;
	uint32_t gen;
	uint64_t rx_errors, polls, irqs;
	uint64_t late; /* safety timeouts after which there was work: lost notifications */
	/* what we programmed, to notice a device that no longer holds it */
	struct {
		size_t reg;
		uint32_t val;
	} shadow[12];
	unsigned int nshadow;
	uint32_t tx_seen;     /* tx_clean at the last tick */
	uint64_t tx_still_ns; /* since when tx_clean has not moved with work pending */
};

static const char *irq_name[] = {"INTx", "MSI", "MSI-X"};

static void die(struct nic *n, const char *what)
{
	fprintf(stderr, "e1000e: %s: %s\n", what, bh_error(&n->core));
	exit(1);
}

static uint32_t rd(struct nic *n, size_t reg)
{
	return bh_read32(&n->regs, reg);
}

static void wr(struct nic *n, size_t reg, uint32_t v)
{
	bh_write32(&n->regs, reg, v);
}

/* 4.6: interrupts off, receive and transmit off, bus master quiet, then a global reset */
static int reset(struct nic *n)
{
	wr(n, REG_IMC, ~0u);
	wr(n, REG_RCTL, 0);
	wr(n, REG_TCTL, 0);
	wr(n, REG_CTRL, rd(n, REG_CTRL) | CTRL_GIO_MASTER_DISABLE);
	if (bh_poll32(&n->regs, REG_STATUS, STATUS_GIO_MASTER_ENABLE, 0, 10000) < 0)
		fprintf(stderr,
			"e1000e: master requests still pending after 10 ms; resetting anyway\n");
	wr(n, REG_CTRL, rd(n, REG_CTRL) | CTRL_RST);
	/* the datasheet wants 1 ms before the next access */
	nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	if (bh_poll32(&n->regs, REG_CTRL, CTRL_RST, 0, 100000) < 0)
		return -ETIMEDOUT;
	wr(n, REG_IMC, ~0u);
	wr(n, REG_ICR, rd(n, REG_ICR));
	/* link up, speed from autonegotiation; master access back on */
	wr(n, REG_CTRL,
	   (rd(n, REG_CTRL) & ~(CTRL_GIO_MASTER_DISABLE | CTRL_RST)) | CTRL_SLU | CTRL_ASDE);
	return 0;
}

/* the address the EEPROM load put into receive address 0 */
static int read_mac(struct nic *n)
{
	uint32_t lo = rd(n, REG_RAL0), hi = rd(n, REG_RAH0);

	for (int i = 0; i < 4; i++)
		n->mac[i] = (uint8_t) (lo >> (8 * i));
	n->mac[4] = (uint8_t) hi;
	n->mac[5] = (uint8_t) (hi >> 8);
	if (!(hi & RAH_AV) || (!lo && !(hi & 0xffff)) || (n->mac[0] & 1))
		return -ENODATA;
	return 0;
}

static void rx_give(struct nic *n, uint32_t i)
{
	n->rx[i].addr = n->rxbuf.iova + (uint64_t) i * BUF_SIZE;
	n->rx[i].status = 0;
}

/* 4.6, 7.1: legacy descriptors, 2 KiB buffers, FCS stripped, broadcasts and multicasts in */
static void rx_init(struct nic *n)
{
	for (int i = 0; i < 128; i++)
		wr(n, REG_MTA + 4 * i, 0);
	for (uint32_t i = 0; i < RX_RING; i++)
		rx_give(n, i);
	wr(n, REG_RDBAL, (uint32_t) n->rings.iova);
	wr(n, REG_RDBAH, (uint32_t) (n->rings.iova >> 32));
	wr(n, REG_RDLEN, RX_RING * sizeof(struct e1000e_rx_desc));
	wr(n, REG_RDH, 0);
	wr(n, REG_RDT, 0);
	/* no receive timers: ITR does the moderation */
	wr(n, REG_RDTR, 0);
	wr(n, REG_RADV, 0);
	wr(n, REG_RFCTL, 0);
	/* checksum verdicts in the legacy descriptors' status and errors */
	wr(n, REG_RXCSUM, RXCSUM_IPOFLD | RXCSUM_TUOFLD);
	wr(n, REG_RCTL,
	   RCTL_EN | RCTL_BAM | RCTL_MPE | RCTL_SECRC | RCTL_BSIZE_2048 |
	       (n->promiscuous ? RCTL_UPE : 0));
	/* one descriptor stays with us, so a full ring never looks empty */
	wr(n, REG_RDT, RX_RING - 1);
	n->rx_next = 0;
}

/* 4.6, 7.2: one queue, pad short frames, full-duplex collision distance */
static void tx_init(struct nic *n)
{
	uint64_t base = n->rings.iova + RX_RING * sizeof(struct e1000e_rx_desc);

	memset((void *) n->tx, 0, TX_RING * sizeof(struct e1000e_tx_desc));
	for (int i = 0; i < TX_RING; i++)
		n->owner[i].client = -1;
	wr(n, REG_TDBAL, (uint32_t) base);
	wr(n, REG_TDBAH, (uint32_t) (base >> 32));
	wr(n, REG_TDLEN, TX_RING * sizeof(struct e1000e_tx_desc));
	wr(n, REG_TDH, 0);
	wr(n, REG_TDT, 0);
	wr(n, REG_TIDV, 0);
	wr(n, REG_TIPG, TIPG_COPPER);
	wr(n, REG_TARC0, rd(n, REG_TARC0) | TARC_ENABLE);
	wr(n, REG_TCTL, TCTL_EN | TCTL_PSP | TCTL_CT(15) | TCTL_COLD(63) | TCTL_RTLC);
	n->tx_tail = n->tx_clean = 0;
}

/* 7.4: one vector for every cause; MSI-X where the device has it, then MSI, then INTx */
static int irq_init(struct nic *n, int only)
{
	static const enum bh_irq_type order[] = {BH_IRQ_MSIX, BH_IRQ_MSI, BH_IRQ_INTX};
	int rc = -ENODEV;

	for (unsigned int i = 0; i < 3 && rc; i++) {
		if (!n->info.irq_count[order[i]] || (only >= 0 && (int) order[i] != only))
			continue;
		rc = bh_irq_open(&n->core, n->dev, order[i], 1, &n->irq);
		if (!rc)
			n->irq_type = order[i];
		else
			fprintf(stderr, "e1000e: %s: %s\n", irq_name[order[i]], bh_error(&n->core));
	}
	if (rc)
		return rc;
	if (n->irq_type == BH_IRQ_MSIX) {
		uint32_t v0 = IVAR_VALID | 0;
		wr(n, REG_IVAR,
		   v0 << IVAR_RXQ0_SHIFT | v0 << IVAR_TXQ0_SHIFT | v0 << IVAR_OTHER_SHIFT);
		/* queue causes clear themselves and mask until we re-arm */
		wr(n, REG_EIAC, ICR_RXQ0 | ICR_TXQ0);
		wr(n, REG_EITR(0), ITR_VALUE);
		n->irq_mask = ICR_RXQ0 | ICR_TXQ0 | ICR_OTHER | ICR_LSC;
	} else {
		n->irq_mask = ICR_RXT0 | ICR_RXO | ICR_RXDMT0 | ICR_TXDW | ICR_LSC;
	}
	wr(n, REG_ITR, ITR_VALUE);
	return 0;
}

/*
 * Before sleeping: unmask (MSI-X auto-masks a queue cause when it fires,
 * so this is also the re-arm), then look at the rx ring once more. A frame
 * that came in before the unmask is either seen here or raises the
 * interrupt the unmask makes pending. Returns true if it is safe to sleep.
 */
static bool irq_arm(struct nic *n)
{
	uint32_t want = n->irq_mask;

	/*
	 * transmit causes only while the NIC holds frames of ours: a pass
	 * reclaims what is done, and an interrupt for a ring we already
	 * cleaned would only wake us for nothing (QEMU's e1000e finishes a
	 * frame inside the doorbell write, so that is every frame there)
	 */
	if (n->tx_clean == n->tx_tail)
		want &= ~(ICR_TXQ0 | ICR_TXDW);
	if (n->irq_armed & ~want)
		wr(n, REG_IMC, n->irq_armed & ~want);
	n->irq_armed = want;
	wr(n, REG_IMS, want);
	return !(n->rx[n->rx_next].status & RXD_DD);
}

static void irq_mask(struct nic *n)
{
	if (!n->irq_armed)
		return;
	wr(n, REG_IMC, ~0u);
	n->irq_armed = 0;
}

static struct bh_nic_link link_now(struct nic *n)
{
	static const uint32_t speed[] = {10, 100, 1000, 1000};
	uint32_t status = rd(n, REG_STATUS);
	struct bh_nic_link l = {.up = !!(status & STATUS_LU)};

	if (l.up)
		l.speed_mbps = speed[(status >> STATUS_SPEED_SHIFT) & 3];
	return l;
}

static void client_close(struct nic *n, struct client *c, const char *why);

/* link state change: tell every client */
static void link_update(struct nic *n)
{
	struct bh_nic_link l = link_now(n);

	if (l.up == n->link.up && l.speed_mbps == n->link.speed_mbps)
		return;
	n->link = l;
	printf("e1000e: link %s, %u Mbit/s\n", l.up ? "up" : "down", l.speed_mbps);
	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = &n->clients[i];
		if (c->used && bh_session_send_event(&c->s, BH_NIC_EVENT_LINK, &l, sizeof(l)) < 0)
			client_close(n, c, "cannot send it the link state");
	}
}

/* ---- sessions ---- */

static void flush(struct client *c)
{
	for (int i = 0; i < BH_SESSION_STREAMS; i++)
		if (c->pending_flush & (1u << i))
			bh_ps_flush(&c->s.ps[i]);
	c->pending_flush = 0;
}

static void ack(struct client *c, const struct bh_ps_desc *d, int status)
{
	struct bh_ps_desc a = *d;

	a.status = status;
	/* room was reserved when we took it: this cannot fail */
	bh_ps_put(&c->s.ps[BH_NIC_TX], &a, 1);
	c->pending_flush |= 1u << BH_NIC_TX;
}

/* the NIC must be done with a client's buffers before they go */
static void tx_quiesce(struct nic *n, int idx)
{
	uint64_t until = bh_now_ns() + 100000000ull;

	while (rd(n, REG_TDH) != n->tx_tail % TX_RING && bh_now_ns() < until)
		;
	for (uint32_t i = n->tx_clean; i != n->tx_tail; i++)
		if (n->owner[i % TX_RING].client == idx)
			n->owner[i % TX_RING].client = -1;
}

static void client_close(struct nic *n, struct client *c, const char *why)
{
	int idx = (int) (c - n->clients);

	printf("e1000e: session from \"%s\" closed: %s (rx %llu frames, %llu dropped; tx %llu "
	       "frames, %llu refused, %llu invalid descriptors; driver: %llu interrupts, %llu "
	       "polling passes, %llu timeouts that found work)\n",
	       c->s.peer, why, (unsigned long long) c->rx_frames,
	       (unsigned long long) c->rx_dropped, (unsigned long long) c->tx_frames,
	       (unsigned long long) c->tx_refused,
	       (unsigned long long) (c->s.ps[0].invalid + c->s.ps[1].invalid),
	       (unsigned long long) n->irqs, (unsigned long long) n->polls,
	       (unsigned long long) n->late);
	bh_loop_del(&n->loop, c->s.fd);
	bh_loop_del(&n->loop, bh_ps_wait_fd(&c->s.ps[BH_NIC_TX]));
	bh_loop_del(&n->loop, bh_ps_wait_fd(&c->s.ps[BH_NIC_RX]));
	if (c->inflight)
		tx_quiesce(n, idx);
	bh_session_close(&n->core, &c->s);
	c->used = false;
	n->nclients--;
}

static void on_session(void *arg, int fd, uint32_t events);
static void on_wake(void *arg, int fd, uint32_t events);

/* a session's streams, whose memory its client pays for */
static const struct bh_session_stream_spec nic_spec[2] = {
    [BH_NIC_TX] = {BH_PS_SINK, BH_NIC_RING, TX_SLOT, (uint64_t) TX_SLOTS * TX_SLOT},
    [BH_NIC_RX] = {BH_PS_SOURCE, BH_NIC_RING, BH_NIC_SLOT, (uint64_t) BH_NIC_RING * BH_NIC_SLOT},
};

static void client_open(struct nic *n, struct bh_session_request *req)
{
	const char *peer = req->client;
	int fd = req->fd;
	struct bh_nic_info info = {.mtu = BH_NIC_MTU,
				   .link = n->link,
				   .driver = "e1000e",
				   .offloads = BH_NIC_OFF_TX_CSUM | BH_NIC_OFF_TSO4 |
					       BH_NIC_OFF_TSO6 | BH_NIC_OFF_RX_CSUM};
	struct client *c = NULL;
	int rc;

	for (int i = 0; i < MAX_CLIENTS && !c; i++)
		if (!n->clients[i].used)
			c = &n->clients[i];
	if (!c) {
		printf("e1000e: session from \"%s\" refused: %d sessions is the most this driver "
		       "serves\n",
		       peer, MAX_CLIENTS);
		bh_service_refuse(&n->svc, req);
		return;
	}
	memcpy(info.mac, n->mac, sizeof(info.mac));
	memset(c, 0, sizeof(*c));
	rc = bh_session_offer(&n->core, n->dev, req, BH_NIC_SERVICE, nic_spec, 2, &info,
			      sizeof(info), &c->s);
	if (rc) {
		printf("e1000e: session from \"%s\" failed: %s\n", peer,
		       rc == -EPIPE || rc == -ECONNRESET ? "it hung up" : bh_error(&n->core));
		bh_session_close(&n->core, &c->s);
		return;
	}
	snprintf(c->s.peer, sizeof(c->s.peer), "%s", peer);
	for (int i = 0; i < BH_SESSION_STREAMS; i++)
		c->bulk_off[i] = (uint64_t) (c->s.ps[i].bulk - (uint8_t *) c->s.ps[i].base);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	c->used = true;
	n->nclients++;
	c->gen = ++n->gen;
	/*
	 * the session socket for hang-ups, the tx stream's eventfd for frames,
	 * the rx stream's for slots coming back when it was full
	 */
	if (bh_loop_add(&n->loop, fd, on_session, n) < 0 ||
	    bh_loop_add(&n->loop, bh_ps_wait_fd(&c->s.ps[BH_NIC_TX]), on_wake, n) < 0 ||
	    bh_loop_add(&n->loop, bh_ps_wait_fd(&c->s.ps[BH_NIC_RX]), on_wake, n) < 0) {
		client_close(n, c, "out of memory");
		return;
	}
	printf("e1000e: session from \"%s\": tx %u x %u bytes in %zu KiB pages, rx %u x %u "
	       "bytes, tx %s, offloads: checksums, TSO\n",
	       peer, TX_SLOTS, TX_SLOT, c->s.dma[BH_NIC_TX].page / 1024, BH_NIC_RING, BH_NIC_SLOT,
	       n->zero_copy ? "zero copy" : "one copy");
}

/* ---- receive (7.1) ---- */

static void deliver(struct nic *n, const uint8_t *frame, uint32_t len, uint32_t op)
{
	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = &n->clients[i];
		struct bh_packet_stream *ps = &c->s.ps[BH_NIC_RX];
		struct bh_ps_desc d;

		if (!c->used)
			continue;
		if (bh_ps_alloc(ps, len, &d) < 0) {
			c->rx_dropped++;
			continue;
		}
		memcpy(bh_ps_data(ps, &d), frame, len);
		d.op = op;
		if (!bh_ps_put(ps, &d, 1)) {
			bh_ps_free(ps, &d);
			c->rx_dropped++;
			continue;
		}
		c->rx_frames++;
		c->pending_flush |= 1u << BH_NIC_RX;
	}
}

/*
 * Can any client take a frame? If none can, frames wait in the NIC's ring
 * (and, once it is full, the NIC drops them) rather than being taken only
 * to be dropped: the client frees slots at its own pace. With several
 * clients, one that has room gets the frame and a full one misses it.
 */
static bool rx_room(const struct nic *n)
{
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (n->clients[i].used && n->clients[i].s.ps[BH_NIC_RX].nfree)
			return true;
	return !n->nclients;
}

static unsigned int rx_poll(struct nic *n)
{
	unsigned int done = 0;

	n->rx_blocked = false;
	while (done < BATCH) {
		volatile struct e1000e_rx_desc *d = &n->rx[n->rx_next];
		uint8_t status = d->status;

		if (!(status & RXD_DD))
			break;
		if (!rx_room(n)) {
			n->rx_blocked = true;
			break;
		}
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		uint32_t len = d->length;
		uint8_t errors = d->errors;
		/* a bad checksum is Linux's to count: deliver it unverified */
		uint32_t op = (status & (RXD_TCPCS | RXD_UDPCS)) && !(status & RXD_IXSM) &&
				      !(errors & (RXE_TCPE | RXE_IPE))
				  ? BH_NIC_RX_CSUM_OK
				  : 0;
		/* a frame that does not fit one buffer is dropped, like one with errors */
		if ((status & RXD_EOP) && !(errors & ~(RXE_TCPE | RXE_IPE)) && bh_nic_frame_ok(len))
			deliver(n, (uint8_t *) n->rxbuf.virt + (size_t) n->rx_next * BUF_SIZE, len,
				op);
		else
			n->rx_errors++;
		rx_give(n, n->rx_next);
		n->rx_next = (n->rx_next + 1) % RX_RING;
		done++;
	}
	if (done) {
		__atomic_thread_fence(__ATOMIC_RELEASE);
		wr(n, REG_RDT, (n->rx_next + RX_RING - 1) % RX_RING);
	}
	return done;
}

/* slots the client has consumed come back; a corrupted ring ends the session */
static void rx_reclaim(struct nic *n, struct client *c)
{
	struct bh_packet_stream *ps = &c->s.ps[BH_NIC_RX];
	struct bh_ps_desc d[BATCH];
	int got;

	while ((got = bh_ps_get(ps, d, BATCH)) > 0)
		for (int i = 0; i < got; i++)
			bh_ps_free(ps, &d[i]);
	if (got < 0)
		client_close(n, c, "it corrupted its rx ring indexes");
}

/* ---- transmit (7.2) ---- */

static unsigned int tx_reclaim(struct nic *n)
{
	unsigned int done = 0;

	while (n->tx_clean != n->tx_tail) {
		uint32_t i = n->tx_clean % TX_RING;
		struct tx_owner *o = &n->owner[i];

		if (!(n->tx[i].status & TXD_DD))
			break;
		if (o->client >= 0) {
			struct client *c = &n->clients[o->client];
			if (c->used && c->gen == o->gen) {
				ack(c, &o->d, 0);
				c->inflight--;
			}
			o->client = -1;
		}
		n->tx_clean++;
		done++;
	}
	return done;
}

/* the next ring entry, owned by nobody until the frame's last descriptor */
static volatile struct e1000e_tx_desc *tx_next(struct nic *n)
{
	uint32_t i = n->tx_tail++ % TX_RING;

	n->owner[i].client = -1;
	return &n->tx[i];
}

/*
 * An offload request's numbers, checked: the NIC must never be asked to
 * checksum or cut outside the frame. Returns 0 and fills the context
 * descriptor, or -EINVAL.
 */
static int tx_context(const uint8_t *frame, const struct bh_ps_desc *d, struct e1000e_ctx_desc *x,
		      bool *tso, bool *v4, uint32_t *l3_out)
{
	uint32_t op = d->op, len = d->length, start, off, hdr, mss;

	*tso = op & (BH_NIC_TX_TSO4 | BH_NIC_TX_TSO6);
	*v4 = op & BH_NIC_TX_TSO4;
	if ((op & ~(BH_NIC_TX_CSUM | BH_NIC_TX_TSO4 | BH_NIC_TX_TSO6)) ||
	    (op & BH_NIC_TX_TSO4 && op & BH_NIC_TX_TSO6))
		return -EINVAL;
	if (*tso ? len > BH_NIC_GSO_MAX || len > TX_SLOT : !bh_nic_frame_ok(len))
		return -EINVAL;
	bh_nic_tx_arg_split(d->arg, &start, &off, &hdr, &mss);
	/* TUCSS and TUCSO are bytes; the checksum field lies inside the frame */
	if (start < BH_NIC_HEADER || start + off > 255 || start + off + 2 > len)
		return -EINVAL;
	memset(x, 0, sizeof(*x));
	x->tucss = (uint8_t) start;
	x->tucso = (uint8_t) (start + off);
	x->cmd_len = TXC_DEXT | TXC_RS;
	if (!*tso)
		return 0;
	/* headers (HDRLEN is a byte) and segments that fit the MTU */
	if (hdr < start + 20 || hdr > 255 || hdr >= len || mss < 64 || hdr + mss > BH_NIC_FRAME_MAX)
		return -EINVAL;
	/* the IP header: after the Ethernet header (and a tag) */
	uint32_t l3 = frame[12] == 0x81 && frame[13] == 0x00 ? 18 : 14;
	if (*v4) {
		/* IPv4, for its checksum */
		uint32_t ihl = (frame[l3] & 0xfu) * 4;
		if (ihl < 20 || l3 + ihl > start)
			return -EINVAL;
		x->ipcss = (uint8_t) l3;
		x->ipcso = (uint8_t) (l3 + 10);
		x->ipcse = (uint16_t) (l3 + ihl - 1);
	} else if (l3 + 40 > start) {
		return -EINVAL; /* IPv6: its addresses go into the checksum */
	}
	*l3_out = l3;
	x->hdr_len = (uint8_t) hdr;
	x->mss = (uint16_t) mss;
	x->cmd_len |= (len - hdr) | TXC_TSE | TXC_TCP | (*v4 ? TXC_IP : 0);
	return 0;
}

/*
 * For TSO the NIC adds each segment's TCP length to the pseudo-header sum
 * it finds in the checksum field (QEMU's e1000 model does the same), so the
 * field must hold the sum of addresses and protocol alone; Linux leaves the
 * whole frame's length in it (a partial checksum). QEMU 7.2's e1000e
 * ignores the field, hardware does not. The frame is the client's: it may
 * only garble its own checksum.
 */
static void tso_seed(uint8_t *frame, uint32_t l3, uint32_t field, bool v4)
{
	uint16_t sum = bh_tcp_pseudo_sum(frame + l3, !v4, 0);

	frame[field] = (uint8_t) (sum >> 8);
	frame[field + 1] = (uint8_t) sum;
}

/* one frame onto the ring; the descriptors it took, or -EINVAL (nothing queued) */
static int tx_frame(struct nic *n, struct client *c, const struct bh_ps_desc *d)
{
	struct bh_packet_stream *ps = &c->s.ps[BH_NIC_TX];
	uint32_t first = n->tx_tail, len = d->length;
	volatile struct e1000e_tx_desc *t;

	if (!d->op) {
		if (!bh_nic_frame_ok(len))
			return -EINVAL;
		/* a plain frame: one legacy descriptor */
		uint32_t i = n->tx_tail % TX_RING;
		t = tx_next(n);
		if (n->zero_copy) {
			t->addr = c->s.dma[BH_NIC_TX].iova + c->bulk_off[BH_NIC_TX] + d->offset;
		} else {
			memcpy((uint8_t *) n->txbuf.virt + (size_t) i * BUF_SIZE, bh_ps_data(ps, d),
			       len);
			t->addr = n->txbuf.iova + (uint64_t) i * BUF_SIZE;
		}
		t->length = (uint16_t) len;
		t->cmd = TXD_EOP | TXD_IFCS | TXD_RS;
		t->status = 0;
		return 1;
	}

	struct e1000e_ctx_desc x;
	bool tso, v4;
	uint32_t l3 = 0;
	uint8_t *frame = bh_ps_data(ps, d);
	if (tx_context(frame, d, &x, &tso, &v4, &l3) < 0)
		return -EINVAL;
	if (tso)
		tso_seed(frame, l3, x.tucso, v4);
	memcpy((void *) tx_next(n), &x, sizeof(x));
	uint64_t iova = c->s.dma[BH_NIC_TX].iova + c->bulk_off[BH_NIC_TX] + d->offset;
	uint64_t page = c->s.dma[BH_NIC_TX].page;
	for (uint32_t done = 0; done < len;) {
		uint32_t i = n->tx_tail % TX_RING, chunk;
		struct e1000e_data_desc dd = {0};

		if (n->zero_copy) {
			uint64_t rest = page - ((iova + done) & (page - 1));
			chunk = rest < TX_CHUNK ? (uint32_t) rest : TX_CHUNK;
			dd.addr = iova + done;
		} else {
			chunk = BUF_SIZE;
			dd.addr = n->txbuf.iova + (uint64_t) i * BUF_SIZE;
		}
		if (chunk > len - done)
			chunk = len - done;
		if (!n->zero_copy)
			memcpy((uint8_t *) n->txbuf.virt + (size_t) i * BUF_SIZE, frame + done,
			       chunk);
		done += chunk;
		dd.cmd_len = chunk | TXC_DTYP_D | TXC_DEXT | TXC_IFCS | TXC_RS |
			     (tso ? TXC_TSE : 0) | (done == len ? TXC_EOP : 0);
		dd.popts = POPTS_TXSM | (v4 ? POPTS_IXSM : 0);
		memcpy((void *) tx_next(n), &dd, sizeof(dd));
	}
	return (int) (n->tx_tail - first);
}

static unsigned int tx_submit(struct nic *n, struct client *c)
{
	struct bh_packet_stream *ps = &c->s.ps[BH_NIC_TX];
	uint32_t free_desc = TX_RING - 1 - (n->tx_tail - n->tx_clean);
	uint32_t room = bh_ps_space(ps);
	unsigned int taken = 0;

	/* every frame we take needs its ack slot: never take more than we can answer */
	room = room > c->inflight ? room - c->inflight : 0;
	c->blocked = room == 0;
	/* one frame at a time: a frame takes from 1 to TX_DESC_MAX descriptors */
	while (taken < BATCH && room && free_desc >= TX_DESC_MAX) {
		struct bh_ps_desc d;
		int got = bh_ps_get(ps, &d, 1), used;

		if (got < 0) {
			client_close(n, c, "it corrupted its tx ring indexes");
			return taken;
		}
		if (!got)
			break;
		taken++;
		room--;
		/* the library marked bad offsets; lengths and offloads are ours to check */
		if (d.status || (used = tx_frame(n, c, &d)) < 0) {
			c->tx_refused++;
			ack(c, &d, -EINVAL);
			continue;
		}
		free_desc -= (uint32_t) used;
		c->tx_frames++;
		if (n->zero_copy) {
			/* acked when the NIC is done with the frame's last descriptor */
			n->owner[(n->tx_tail - 1) % TX_RING] =
			    (struct tx_owner){(int) (c - n->clients), c->gen, d};
			c->inflight++;
		} else {
			ack(c, &d, 0);
		}
	}
	return taken;
}

/* ---- health and fault injection ---- */

static void shadow_take(struct nic *n)
{
	static const size_t regs[] = {REG_RCTL,	 REG_TCTL,  REG_RDBAL, REG_RDBAH, REG_RDLEN,
				      REG_TDBAL, REG_TDBAH, REG_TDLEN, REG_RAL0,  REG_RAH0};

	n->nshadow = 0;
	for (unsigned int i = 0; i < sizeof(regs) / sizeof(regs[0]); i++)
		n->shadow[n->nshadow++] = (typeof(n->shadow[0])){regs[i], rd(n, regs[i])};
}

/*
 * Like Linux's "Detected Hardware Unit Hang": a device that lost its ring
 * setup (a stray write, a reset we did not ask for) or stopped sending is
 * not worth repairing in place. We exit; core turns bus mastering off,
 * resets the function and starts us on a clean device. Returns a reason.
 */
static const char *health(struct nic *n, char *buf, size_t len)
{
	uint64_t now = bh_now_ns();

	for (unsigned int i = 0; i < n->nshadow; i++) {
		uint32_t v = rd(n, n->shadow[i].reg);
		if (v != n->shadow[i].val) {
			snprintf(buf, len, "register 0x%05zx reads 0x%08x, we wrote 0x%08x",
				 n->shadow[i].reg, v, n->shadow[i].val);
			return buf;
		}
	}
	uint32_t rdt = rd(n, REG_RDT), tdt = rd(n, REG_TDT);
	if (rdt != (n->rx_next + RX_RING - 1) % RX_RING || tdt != n->tx_tail % TX_RING ||
	    rd(n, REG_RDH) >= RX_RING || rd(n, REG_TDH) >= TX_RING) {
		snprintf(buf, len, "ring indexes out of step (RDT %u, TDT %u; ours %u, %u)", rdt,
			 tdt, (n->rx_next + RX_RING - 1) % RX_RING, n->tx_tail % TX_RING);
		return buf;
	}
	if (n->tx_clean == n->tx_tail || n->tx_clean != n->tx_seen || !n->link.up) {
		n->tx_seen = n->tx_clean;
		n->tx_still_ns = now;
	} else if (now - n->tx_still_ns > TX_HANG_MS * 1000000ull) {
		snprintf(buf, len, "transmit unit hung: %u descriptors pending for %u ms",
			 n->tx_tail - n->tx_clean, TX_HANG_MS);
		return buf;
	}
	return NULL;
}

/* an IOVA core never maps: its domains end below 4 GiB, VT-d allows 39 bits */
#define WILD_IOVA 0x7fdead0000ull

static void say(const char *s)
{
	(void) !write(2, s, strlen(s)); /* signal context: no stdio */
}

/*
 * bad-desc: a receive descriptor the NIC is about to fill gets a buffer
 * address outside our buffers, as a stale or mis-computed pointer would.
 * The IOMMU blocks the frame's write; that slot delivers stale bytes once.
 */
static void inject_bad_desc(void *arg)
{
	struct nic *n = arg;
	uint32_t i = (rd(n, REG_RDH) + 1) % RX_RING;

	n->rx[i].addr = WILD_IOVA + (bh_now_ns() & 0xfff00ull);
	say("e1000e: fault: rx descriptor points outside our DMA buffers\n");
}

/*
 * bad-dma: the transmit ring's base is pointed at an IOVA never mapped and
 * the NIC is kicked: its descriptor fetch is blocked by the IOMMU (core logs
 * it), and the health check sees a ring we did not set up.
 */
static void inject_bad_dma(void *arg)
{
	struct nic *n = arg;

	wr(n, REG_TDBAL, (uint32_t) WILD_IOVA);
	wr(n, REG_TDBAH, (uint32_t) (WILD_IOVA >> 32));
	wr(n, REG_TDT, (rd(n, REG_TDH) + 1) % TX_RING);
	say("e1000e: fault: tx ring pointed at an unmapped device address\n");
}

/* ---- the loop ---- */

static void on_irq(void *arg, int fd, uint32_t events)
{
	struct nic *n = arg;

	(void) fd;
	(void) events;
	if (bh_irq_wait(&n->irq, 0) > 0)
		n->irq_fired = true;
	bh_loop_stop(&n->loop);
}

static void on_wake(void *arg, int fd, uint32_t events)
{
	uint64_t v;

	(void) events;
	(void) !read(fd, &v, sizeof(v));
	bh_loop_stop(&((struct nic *) arg)->loop);
}

static void on_channel(void *arg, int fd, uint32_t events)
{
	struct nic *n = arg;
	struct bh_session_request req;
	int rc;

	(void) fd;
	(void) events;
	/* a bounded number per pass: the data path keeps its share of time */
	while ((rc = bh_service_next(&n->svc, &req)) == 1)
		client_open(n, &req);
	if (rc < 0) {
		fprintf(stderr, "e1000e: the session channel failed (%s): core is gone\n",
			strerror(-rc));
		exit(1);
	}
	bh_loop_stop(&n->loop);
}

static void on_session(void *arg, int fd, uint32_t events)
{
	struct nic *n = arg;
	struct bh_session_event ev;
	struct client *c = NULL;
	int rc;

	(void) events;
	for (int i = 0; i < MAX_CLIENTS && !c; i++)
		if (n->clients[i].used && n->clients[i].s.fd == fd)
			c = &n->clients[i];
	if (!c)
		return;
	/* a NIC client has nothing to tell us; read it to see hang-ups and nonsense */
	while ((rc = bh_session_recv_event(&c->s, &ev)) == 1)
		;
	if (rc == 0)
		client_close(n, c, "it hung up");
	else if (rc != -EAGAIN)
		client_close(n, c, rc == -EPROTO ? "it sent a malformed message" : strerror(-rc));
	bh_loop_stop(&n->loop);
}

/* one pass over the NIC and every client; returns how much it moved */
static unsigned int service(struct nic *n)
{
	unsigned int work = 0;

	if (n->irq_fired) {
		uint32_t icr = rd(n, REG_ICR);

		n->irq_fired = false;
		n->irqs++;
		wr(n, REG_ICR, icr);
		irq_mask(n);
		if (n->irq.ack != BH_ACK_NONE)
			bh_irq_ack(&n->irq);
		if (icr & (ICR_LSC | ICR_OTHER))
			link_update(n);
	}
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (n->clients[i].used)
			rx_reclaim(n, &n->clients[i]);
	work += rx_poll(n);
	uint32_t tail = n->tx_tail;
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (n->clients[i].used)
			work += tx_submit(n, &n->clients[i]);
	if (n->tx_tail != tail) {
		/* one doorbell for the whole batch */
		__atomic_thread_fence(__ATOMIC_RELEASE);
		wr(n, REG_TDT, n->tx_tail % TX_RING);
	}
	work += tx_reclaim(n);
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (n->clients[i].used)
			flush(&n->clients[i]);
	return work;
}

/* every TICK_MS, busy or not: heartbeat, lost link events, health */
static void tick(struct nic *n)
{
	char why[128];
	const char *bad;

	link_update(n); /* in case an LSC went missing */
	/* also how we notice that core is gone */
	if (bh_heartbeat(&n->core) < 0)
		die(n, "heartbeat");
	bad = health(n, why, sizeof(why));
	if (bad) {
		fprintf(stderr, "e1000e: device unhealthy: %s; exiting so core resets it\n", bad);
		exit(1);
	}
}

static void serve(struct nic *n)
{
	uint64_t next_tick = bh_coarse_ns() + TICK_MS * 1000000ull;
	bool timed_out = false;

	for (;;) {
		int timeout = TICK_MS;
		bool again = false;
		uint64_t now = bh_coarse_ns();

		bh_service_pass(&n->svc);
		if (now >= next_tick) {
			next_tick = now + TICK_MS * 1000000ull;
			tick(n);
		}
		unsigned int work = service(n);
		if (work && timed_out)
			n->late++;
		timed_out = false;
		if (work) {
			/*
			 * under load: poll instead of sleeping, and look at the fds
			 * now and then (each look is a system call, and in polling
			 * mode nobody signals them but a new session or a hang-up)
			 */
			if (++n->polls % POLL_FD_EVERY == 0)
				bh_loop_run(&n->loop, 0);
			continue;
		}
		for (int i = 0; i < MAX_CLIENTS; i++) {
			struct client *c = &n->clients[i];
			if (!c->used)
				continue;
			if (c->blocked)
				timeout = 10; /* it frees ack room without telling us */
			else if (!bh_ps_prepare_wait(&c->s.ps[BH_NIC_TX]))
				again = true;
			/* frames wait for rx slots: be told when they come back */
			if (n->rx_blocked && !bh_ps_prepare_wait(&c->s.ps[BH_NIC_RX]))
				again = true;
		}
		/*
		 * with frames waiting for rx slots, the client's signal wakes
		 * us, not the NIC (whose ring holds frames we cannot take yet)
		 */
		if (again || (!n->rx_blocked && !irq_arm(n)))
			continue;
		/*
		 * QEMU 7.2's e1000e can drop a notification that interrupt
		 * moderation postponed (seen with MSI, once in a while with
		 * MSI-X): with clients, a short timeout bounds the damage
		 */
		bool safety = timeout > SAFETY_MS && n->link.up && n->nclients;
		if (safety)
			timeout = SAFETY_MS;
		bh_loop_run(&n->loop, timeout);
		/* counted in late when the pass after it finds work */
		timed_out = safety && !n->loop.stop;
	}
}

/* a piece of a DMA buffer, for the rings and buffers carved out of ours */
static struct bh_dma dma_part(const struct bh_dma *whole, size_t off, size_t size)
{
	struct bh_dma part = *whole;

	part.virt = (uint8_t *) whole->virt + off;
	part.iova = whole->iova + off;
	part.size = size;
	return part;
}

/* the registers by name, for bulkhead trace and crash reports (82574L datasheet 10.2) */
static const struct bh_reg_name e1000e_regs[] = {
    BH_REG(REG_CTRL, 4),   BH_REG(REG_STATUS, 4),     BH_REG(REG_ICR, 4),
    BH_REG(REG_ITR, 4),	   BH_REG(REG_IMS, 4),	      BH_REG(REG_IMC, 4),
    BH_REG(REG_EIAC, 4),   BH_REG(REG_IVAR, 4),	      {REG_EITR(0), 20, "REG_EITR"},
    BH_REG(REG_RCTL, 4),   BH_REG(REG_RDBAL, 4),      BH_REG(REG_RDBAH, 4),
    BH_REG(REG_RDLEN, 4),  BH_REG(REG_RDH, 4),	      BH_REG(REG_RDT, 4),
    BH_REG(REG_RDTR, 4),   BH_REG(REG_RADV, 4),	      BH_REG(REG_RFCTL, 4),
    BH_REG(REG_RXCSUM, 4), {REG_MTA, 255, "REG_MTA"}, BH_REG(REG_RAL0, 4),
    BH_REG(REG_RAH0, 4),   BH_REG(REG_TCTL, 4),	      BH_REG(REG_TIPG, 4),
    BH_REG(REG_TDBAL, 4),  BH_REG(REG_TDBAH, 4),      BH_REG(REG_TDLEN, 4),
    BH_REG(REG_TDH, 4),	   BH_REG(REG_TDT, 4),	      BH_REG(REG_TIDV, 4),
    BH_REG(REG_TARC0, 4),
};

static int setup(struct nic *n, int irq_type)
{
	if (bh_core_open(&n->core) < 0 ||
	    bh_device_find(&n->core, E1000E_VENDOR, E1000E_DEVICE, &n->dev) < 0 ||
	    bh_device_info(&n->core, n->dev, &n->info) < 0 || bh_acquire(&n->core, n->dev) < 0 ||
	    bh_io_mem(&n->core, n->dev, 0, &n->regs) < 0)
		return -1;
	bh_mmio_names(&n->regs, e1000e_regs, sizeof(e1000e_regs) / sizeof(e1000e_regs[0]));
	if (reset(n) < 0) {
		snprintf(n->core.error, sizeof(n->core.error),
			 "reset: CTRL.RST did not clear within 100 ms; is this an 82574L?");
		return -1;
	}
	if (read_mac(n) < 0) {
		snprintf(n->core.error, sizeof(n->core.error),
			 "no valid MAC address in RAL0/RAH0 (EEPROM not loaded?)");
		return -1;
	}
	/*
	 * both rings, the rx and the tx buffers in one 2 MiB buffer: a huge
	 * page where core has them, so one IOMMU page; the device does
	 * 64-bit DMA
	 */
	if (bh_dma_alloc(&n->core, n->dev, OWN_DMA, 0, &n->own) < 0)
		return -1;
	n->rings = dma_part(&n->own, 0, RINGS_SIZE);
	n->rxbuf = dma_part(&n->own, RINGS_SIZE, RX_RING * BUF_SIZE);
	n->txbuf = dma_part(&n->own, RINGS_SIZE + RX_RING * BUF_SIZE, TX_RING * BUF_SIZE);
	n->rx = n->rings.virt;
	n->tx = (struct e1000e_tx_desc *) ((uint8_t *) n->rings.virt +
					   RX_RING * sizeof(struct e1000e_rx_desc));
	rx_init(n);
	tx_init(n);
	if (irq_init(n, irq_type) < 0)
		return -1;
	n->link = link_now(n);
	shadow_take(n);
	if (bh_service_open(&n->svc, &n->core, BH_NIC_SERVICE, bh_session_cost(nic_spec, 2),
			    MAX_CLIENTS) < 0)
		return -1;
	if (bh_loop_init(&n->loop) < 0 || bh_loop_add(&n->loop, n->irq.fd, on_irq, n) < 0 ||
	    bh_loop_add(&n->loop, bh_service_fd(&n->svc), on_channel, n) < 0) {
		snprintf(n->core.error, sizeof(n->core.error), "epoll: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct nic n = {.svc.channel = -1, .zero_copy = true};
	int irq_type = -1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--copy") == 0) {
			n.zero_copy = false;
		} else if (strcmp(argv[i], "--msi") == 0) {
			irq_type = BH_IRQ_MSI;
		} else if (strcmp(argv[i], "--intx") == 0) {
			irq_type = BH_IRQ_INTX;
		} else if (strcmp(argv[i], "--promiscuous") == 0) {
			n.promiscuous = true;
		} else {
			fprintf(stderr,
				"e1000e: unknown argument '%s' (known: --copy, --msi, --intx, "
				"--promiscuous)\n",
				argv[i]);
			return 2;
		}
	}
	if (setup(&n, irq_type) < 0)
		die(&n, "setup");
	/* without an IOMMU a multi-page region is not contiguous for the device */
	if (!n.core.hello.iommu && n.zero_copy) {
		n.zero_copy = false;
		printf("e1000e: no IOMMU: transmitting with one copy\n");
	}
	printf("e1000e: uid %u, device %s, MAC %02x:%02x:%02x:%02x:%02x:%02x, %s (%u vectors "
	       "offered), link %s, tx %s, rx one copy, start %u\n",
	       getuid(), n.info.name, n.mac[0], n.mac[1], n.mac[2], n.mac[3], n.mac[4], n.mac[5],
	       irq_name[n.irq_type], n.info.irq_count[n.irq_type], n.link.up ? "up" : "down",
	       n.zero_copy ? "zero copy" : "one copy", n.core.hello.restarts + 1);
	bh_fault_hook(BH_FAULT_BAD_DESC, inject_bad_desc, &n);
	bh_fault_hook(BH_FAULT_BAD_DMA, inject_bad_dma, &n);
	bh_fault_arm();
	serve(&n);
	return 0;
}
