// SPDX-License-Identifier: MIT
/*
 * nic-tap: a NIC session as a Linux TAP interface, so unmodified programs
 * (ping, iperf3, a routing table) use an isolated NIC driver.
 *
 * Core creates the TAP interface the config names (tap = bh0), brings it
 * up and hands us its fd; core keeps the interface for as long as it runs.
 * We move frames both ways in batches:
 *   TAP -> tx stream: read a frame into a free slot, submit; free on ack
 *   rx stream -> TAP: write the frame, ack the descriptor
 * When the driver goes away (its session hangs up, or a stream turns out
 * corrupted) we keep the TAP fd and open a new session: the interface stays
 * up, and TCP above it sees a short gap, not a dead link.
 *
 * Offloads: core opens the TAP with a virtio_net_hdr in front of every
 * frame and lets Linux send partial checksums and 64 KiB TCP segments
 * (TSO). We pass them to the driver as nic.h offload requests when it has
 * them (bh_nic_info.offloads), and finish checksums in software when it
 * has not; a segment the driver cannot cut is dropped (counted). A segment
 * that continues the one read just before it is appended to that one
 * (bh_coalesce_tx_append): Linux sizes its segments by the round trip,
 * which our wake-ups lengthen, and the NIC cuts a larger frame as cheaply.
 *
 * Receive: tun does no GRO for what we write, so a frame written as it came
 * costs Linux a pass through its stack per 1.5 KB. We feed each rx batch
 * through lib/coalesce.c instead: consecutive TCP segments of one flow (and
 * the IPv4 fragments QEMU's e1000e cuts a TSO segment into) go up as one
 * GSO packet with a partial checksum, only where the checksums were checked
 * (by the NIC, or by us for fragments). See include/bulkhead/coalesce.h.
 *
 * The TAP interface has a MAC address of Linux's choosing; the NIC filters
 * unicast frames by its own. Give bh0 the NIC's address (we print it), or
 * run the driver with --promiscuous.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_net.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/coalesce.h"
#include "bulkhead/nic.h"

#define BATCH 32
/* received frames per pass: the more, the more of them merge */
#define RX_BATCH 64
/* heartbeats to core, so watchdog_ms in the config catches a hung bridge */
#define TICK_MS 200
/*
 * fragments of a datagram held for the rest: the NIC delivers them together,
 * so we wait this long after the last frame before we write what there is,
 * and no longer than HOLD_MAX_MS while other traffic keeps us busy
 */
#define HOLD_MS 1
#define HOLD_MAX_MS 10

struct bridge {
	struct bh_core core;
	char ifname[BH_NAME_MAX];
	int tap;
	struct bh_session s;
	uint32_t offloads;     /* the driver's, BH_NIC_OFF_* */
	struct bh_coalesce rx; /* merges received TCP segments for Linux */
	uint64_t to_nic, tx_batches, tx_appended, refused, tap_drops, sw_csums, rx_batches;
	uint64_t next_tick;
	uint64_t held_since; /* when the coalescer began holding fragments, or 0 */
	bool said_no_tso; /* segments dropped for want of TSO: said once a session */
};

/* every TICK_MS, busy or not */
static void tick(struct bridge *b)
{
	bh_heartbeat_every(&b->core, &b->next_tick, TICK_MS, "nic-tap");
}

/* held fragments go up once they have waited HOLD_MAX_MS, busy or not */
static void hold_check(struct bridge *b)
{
	uint64_t now;

	if (!bh_coalesce_holding(&b->rx)) {
		b->held_since = 0;
		return;
	}
	now = bh_coarse_ns();
	if (!b->held_since) {
		b->held_since = now;
	} else if (now - b->held_since > HOLD_MAX_MS * 1000000ull) {
		bh_coalesce_flush_all(&b->rx);
		b->held_since = 0;
	}
}

/* frames the driver is done with: their slots come back */
static int tx_reclaim(struct bridge *b)
{
	struct bh_packet_stream *ps = &b->s.ps[BH_NIC_TX];
	struct bh_ps_desc d[BATCH];
	int got;

	while ((got = bh_ps_get(ps, d, BATCH)) > 0) {
		for (int i = 0; i < got; i++) {
			if (d[i].status)
				b->refused++;
			bh_ps_free(ps, &d[i]);
		}
	}
	return got;
}

/* a partial checksum finished here: the field holds the pseudo-header's sum */
static void csum_sw(uint8_t *p, uint32_t len, uint32_t start, uint32_t off)
{
	uint16_t c = (uint16_t) ~bh_inet_sum(p + start, len - start, 0);

	if (!c)
		c = 0xffff; /* as Linux does: 0 means "none" for UDP */
	p[start + off] = (uint8_t) (c >> 8);
	p[start + off + 1] = (uint8_t) c;
}

/*
 * What the driver is to do with a frame Linux handed us with header h:
 * fills d->op and d->arg; false to drop it.
 */
static bool tx_offload(struct bridge *b, const struct virtio_net_hdr *h, uint8_t *frame,
		       struct bh_ps_desc *d)
{
	uint32_t len = d->length, start = h->csum_start, off = h->csum_offset;
	uint8_t gso = h->gso_type & (uint8_t) ~VIRTIO_NET_HDR_GSO_ECN;

	d->op = 0;
	d->arg = 0;
	if (gso != VIRTIO_NET_HDR_GSO_NONE) {
		uint32_t want = gso == VIRTIO_NET_HDR_GSO_TCPV4	  ? BH_NIC_OFF_TSO4
				: gso == VIRTIO_NET_HDR_GSO_TCPV6 ? BH_NIC_OFF_TSO6
								  : 0;
		if (want && !(b->offloads & want) && !b->said_no_tso) {
			b->said_no_tso = true;
			printf("nic-tap: the driver cannot cut TCP segments (no TSO): Linux's larger "
			       "ones are dropped, TCP out will crawl\n");
		}
		if (!want || !(b->offloads & want) || !(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) ||
		    start + 13 >= len)
			return false;
		/* Linux's hdr_len is only a hint: the TCP header's own length counts */
		uint32_t hdr = start + (uint32_t) (frame[start + 12] >> 4) * 4;
		d->op = want == BH_NIC_OFF_TSO4 ? BH_NIC_TX_TSO4 : BH_NIC_TX_TSO6;
		d->arg =
		    bh_nic_tx_arg((uint16_t) start, (uint16_t) off, (uint16_t) hdr, h->gso_size);
		return hdr < len;
	}
	if (!bh_nic_frame_ok(len))
		return false;
	if (!(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
		return true;
	if (start + off + 2 > len)
		return false;
	if ((b->offloads & BH_NIC_OFF_TX_CSUM) && start >= BH_NIC_HEADER && start + off <= 255) {
		d->op = BH_NIC_TX_CSUM;
		d->arg = bh_nic_tx_arg((uint16_t) start, (uint16_t) off, 0, 0);
	} else {
		csum_sw(frame, len, start, off);
		b->sw_csums++;
	}
	return true;
}

/*
 * Segment d continues TSO request a (read just before it): its payload is
 * appended to a's, and the NIC cuts one larger frame (see coalesce.h)
 */
static bool tx_append(struct bridge *b, struct bh_ps_desc *a, const struct bh_ps_desc *d)
{
	struct bh_packet_stream *ps = &b->s.ps[BH_NIC_TX];
	uint32_t len = a->length, sa, oa, ha, ma, sd, od, hd, md;
	uint32_t max = ps->slot_size < BH_NIC_GSO_MAX ? ps->slot_size : BH_NIC_GSO_MAX;

	if (!(a->op & (BH_NIC_TX_TSO4 | BH_NIC_TX_TSO6)))
		return false;
	bh_nic_tx_arg_split(a->arg, &sa, &oa, &ha, &ma);
	bh_nic_tx_arg_split(d->arg, &sd, &od, &hd, &md);
	/* a TSO request cut alike, or one segment whose checksum the NIC is to finish */
	if (sd != sa || od != oa ||
	    (d->op == a->op ? hd != ha || md != ma : d->op != BH_NIC_TX_CSUM))
		return false;
	if (!bh_coalesce_tx_append(bh_ps_data(ps, a), &len, bh_ps_data(ps, d), d->length, max))
		return false;
	a->length = len;
	return true;
}

/* TAP -> NIC; returns frames moved, or -EPROTO; *starved when out of slots */
static int tap_to_nic(struct bridge *b, bool *starved)
{
	struct bh_packet_stream *ps = &b->s.ps[BH_NIC_TX];
	struct bh_ps_desc d[BATCH];
	int n = 0;

	*starved = false;
	if (tx_reclaim(b) < 0)
		return -EPROTO;
	while (n < BATCH) {
		struct virtio_net_hdr h;

		if (bh_ps_alloc(ps, ps->slot_size, &d[n]) < 0) {
			*starved = true;
			break;
		}
		uint8_t *frame = bh_ps_data(ps, &d[n]);
		struct iovec iov[2] = {{&h, sizeof(h)}, {frame, ps->slot_size}};
		ssize_t len = readv(b->tap, iov, 2);
		if (len < 0) {
			bh_ps_free(ps, &d[n]);
			break; /* EAGAIN: the TAP queue is empty */
		}
		d[n].length =
		    len > (ssize_t) sizeof(h) ? (uint32_t) (len - (ssize_t) sizeof(h)) : 0;
		/* a full slot may be a truncated frame */
		if (d[n].length >= ps->slot_size || !tx_offload(b, &h, frame, &d[n])) {
			bh_ps_free(ps, &d[n]);
			b->tap_drops++;
			continue;
		}
		if (n && tx_append(b, &d[n - 1], &d[n])) {
			bh_ps_free(ps, &d[n]);
			b->tx_appended++;
			continue;
		}
		n++;
	}
	if (n) {
		/* the ring has a place for every slot, so all of them fit */
		bh_ps_put(ps, d, (unsigned int) n);
		bh_ps_flush(ps);
		b->to_nic += (uint64_t) n;
		b->tx_batches++;
	}
	return n;
}

/* one packet to Linux: a frame as it came, or a batch's segments of one TCP flow merged */
static bool tap_write(void *ctx, const struct iovec *iov, int n)
{
	struct bridge *b = ctx;
	size_t want = 0;

	for (int i = 0; i < n; i++)
		want += iov[i].iov_len;
	return writev(b->tap, iov, n) == (ssize_t) want;
}

/* NIC -> TAP */
static int nic_to_tap(struct bridge *b)
{
	struct bh_packet_stream *ps = &b->s.ps[BH_NIC_RX];
	struct bh_ps_desc d[RX_BATCH];
	int got = bh_ps_get(ps, d, RX_BATCH);

	if (got <= 0)
		return got;
	b->rx_batches++;
	for (int i = 0; i < got; i++) {
		if (d[i].status || !bh_nic_frame_ok(d[i].length))
			b->tap_drops++;
		else
			bh_coalesce_add(&b->rx, bh_ps_data(ps, &d[i]), d[i].length,
					d[i].op & BH_NIC_RX_CSUM_OK);
		d[i].status = 0;
	}
	/* the frames must stay put until they are written: ack after the flush */
	bh_coalesce_flush(&b->rx);
	bh_ps_put(ps, d, (unsigned int) got);
	bh_ps_flush(ps);
	return got;
}

static void report_link(struct bridge *b, const struct bh_nic_link *l)
{
	printf("nic-tap: link %s, %u Mbit/s\n", l->up ? "up" : "down", l->speed_mbps);
}

/* events on the session socket: 1 fine, 0 hung up, <0 broken */
static int session_events(struct bridge *b)
{
	struct bh_session_event ev;
	struct bh_nic_link l;
	int rc;

	while ((rc = bh_session_recv_event(&b->s, &ev)) == 1)
		if (bh_nic_link_event(&ev, &l) == 0)
			report_link(b, &l);
	return rc == -EAGAIN ? 1 : rc;
}

/* move frames until the session ends; returns why it ended */
static const char *run(struct bridge *b)
{
	for (;;) {
		bool starved;
		int in = tap_to_nic(b, &starved);
		int out = nic_to_tap(b);

		tick(b);
		hold_check(b);
		if (in < 0 || out < 0)
			return "the driver corrupted a stream";
		if (in || out)
			continue;
		/* idle: sleep on the TAP (if we have slots), the rx stream and the socket */
		if (!bh_ps_prepare_wait(&b->s.ps[BH_NIC_RX]))
			continue;
		if (starved && !bh_ps_prepare_wait(&b->s.ps[BH_NIC_TX]))
			continue;
		struct pollfd p[4] = {
		    {.fd = b->s.fd, .events = POLLIN},
		    {.fd = bh_ps_wait_fd(&b->s.ps[BH_NIC_RX]), .events = POLLIN},
		    {.fd = starved ? bh_ps_wait_fd(&b->s.ps[BH_NIC_TX]) : b->tap, .events = POLLIN},
		};
		int ready = poll(p, 3, bh_coalesce_holding(&b->rx) ? HOLD_MS : TICK_MS);
		if (ready < 0 && errno != EINTR)
			return strerror(errno);
		if (ready == 0) /* quiet: the rest of what is held is not coming */
			bh_coalesce_flush_all(&b->rx);
		if (p[1].revents)
			bh_ps_drain_signal(&b->s.ps[BH_NIC_RX]);
		if (starved && p[2].revents)
			bh_ps_drain_signal(&b->s.ps[BH_NIC_TX]);
		if (p[0].revents) {
			int rc = session_events(b);
			if (rc == 0)
				return "the driver hung up";
			if (rc < 0)
				return "the driver sent a malformed event";
		}
	}
}

static int session_start(struct bridge *b)
{
	struct bh_nic_info info;
	char why[160];
	int fd, rc;

	/* the driver may be restarting: wait in short steps, heartbeating */
	while ((rc = bh_session_open_wait(&b->core, BH_NIC_SERVICE, TICK_MS, &fd)) == -EAGAIN)
		tick(b);
	if (rc) {
		fprintf(stderr, "nic-tap: %s\n", bh_error(&b->core));
		/* no route: the config must change first; no core: nothing left to do */
		if (rc == -EACCES || rc == -EPIPE || rc == -ECONNRESET)
			exit(1);
		return rc;
	}
	/* the setup comes right after the driver accepted; wait for it, not forever */
	struct pollfd p = {.fd = fd, .events = POLLIN};
	for (int waited = 0; waited < 5000 && poll(&p, 1, TICK_MS) == 0; waited += TICK_MS)
		tick(b);
	if (!(p.revents & POLLIN)) {
		fprintf(stderr, "nic-tap: the driver sent no session setup within 5 s\n");
		close(fd);
		return -ETIMEDOUT;
	}
	rc = bh_session_accept_setup(fd, BH_NIC_SERVICE, &b->s, why, sizeof(why));
	if (!rc && bh_nic_info(&b->s, &info) < 0) {
		snprintf(why, sizeof(why), "the NIC info is implausible");
		rc = -EPROTO;
	}
	if (rc) {
		fprintf(stderr, "nic-tap: session refused: %s\n", why);
		bh_session_close(NULL, &b->s);
		return rc;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	b->offloads = info.offloads;
	b->said_no_tso = false;
	printf(
	    "nic-tap: %s <-> nic session (driver %s, MAC %02x:%02x:%02x:%02x:%02x:%02x, MTU %u); "
	    "give %s that address: ip link set %s address %02x:%02x:%02x:%02x:%02x:%02x\n",
	    b->ifname, info.driver, info.mac[0], info.mac[1], info.mac[2], info.mac[3], info.mac[4],
	    info.mac[5], info.mtu, b->ifname, b->ifname, info.mac[0], info.mac[1], info.mac[2],
	    info.mac[3], info.mac[4], info.mac[5]);
	printf("nic-tap: driver offloads:%s%s%s%s%s; tx slots of %u bytes\n",
	       info.offloads & BH_NIC_OFF_TX_CSUM ? " tx-checksum" : "",
	       info.offloads & BH_NIC_OFF_TSO4 ? " tso4" : "",
	       info.offloads & BH_NIC_OFF_TSO6 ? " tso6" : "",
	       info.offloads & BH_NIC_OFF_RX_CSUM ? " rx-checksum" : "",
	       info.offloads ? "" : " none", b->s.ps[BH_NIC_TX].slot_size);
	report_link(b, &info.link);
	return 0;
}

int main(void)
{
	static struct bridge b = {.tap = -1};
	struct timespec pause = {.tv_nsec = 100000000};

	bh_coalesce_init(&b.rx, tap_write, &b);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (bh_core_open(&b.core) < 0 || bh_tap_open(&b.core, b.ifname, &b.tap) < 0) {
		fprintf(stderr, "nic-tap: %s\n", bh_error(&b.core));
		return 1;
	}
	fcntl(b.tap, F_SETFL, fcntl(b.tap, F_GETFL) | O_NONBLOCK);
	printf("nic-tap: uid %u, TAP interface %s\n", getuid(), b.ifname);
	for (unsigned int round = 1;; round++) {
		if (session_start(&b) < 0) {
			nanosleep(&pause, NULL);
			tick(&b);
			continue;
		}
		const char *why = run(&b);
		printf("nic-tap: session %u ended: %s (to nic %llu in %llu batches, %llu segments "
		       "appended to the one before, from nic %llu in %llu batches "
		       "as %llu packets, "
		       "refused %llu, dropped %llu, software checksums %llu, bad checksums %llu); "
		       "%s stays up, "
		       "reconnecting\n",
		       round, why, (unsigned long long) b.to_nic, (unsigned long long) b.tx_batches,
		       (unsigned long long) b.tx_appended, (unsigned long long) b.rx.frames_in,
		       (unsigned long long) b.rx_batches, (unsigned long long) b.rx.packets_out,
		       (unsigned long long) b.refused,
		       (unsigned long long) (b.tap_drops + b.rx.dropped),
		       (unsigned long long) b.sw_csums, (unsigned long long) b.rx.bad_csum,
		       b.ifname);
		bh_session_close(NULL, &b.s);
		nanosleep(&pause, NULL);
		tick(&b);
	}
}
