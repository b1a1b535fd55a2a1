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
 * The TAP interface has a MAC address of Linux's choosing; the NIC filters
 * unicast frames by its own. Give bh0 the NIC's address (we print it), or
 * run the driver with --promiscuous.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/nic.h"

#define BATCH 32
/* heartbeats to core, so watchdog_ms in the config catches a hung bridge */
#define TICK_MS 200

struct bridge {
	struct bh_core core;
	char ifname[BH_NAME_MAX];
	int tap;
	struct bh_session s;
	uint64_t to_nic, from_nic, refused, tap_drops;
	uint64_t next_tick;
};

/* every TICK_MS, busy or not */
static void tick(struct bridge *b)
{
	uint64_t now = bh_now_ns();

	if (now < b->next_tick)
		return;
	b->next_tick = now + TICK_MS * 1000000ull;
	if (bh_heartbeat(&b->core) < 0) {
		fprintf(stderr, "nic-tap: heartbeat: %s; core is gone\n", bh_error(&b->core));
		exit(1);
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
		if (bh_ps_alloc(ps, ps->slot_size, &d[n]) < 0) {
			*starved = true;
			break;
		}
		ssize_t len = read(b->tap, bh_ps_data(ps, &d[n]), ps->slot_size);
		if (len < 0 || !bh_nic_frame_ok((uint32_t) len)) {
			bh_ps_free(ps, &d[n]);
			if (len < 0)
				break; /* EAGAIN: the TAP queue is empty */
			b->tap_drops++;
			continue;
		}
		d[n++].length = (uint32_t) len;
	}
	if (n) {
		/* the ring has a place for every slot, so all of them fit */
		bh_ps_put(ps, d, (unsigned int) n);
		bh_ps_flush(ps);
		b->to_nic += (uint64_t) n;
	}
	return n;
}

/* NIC -> TAP */
static int nic_to_tap(struct bridge *b)
{
	struct bh_packet_stream *ps = &b->s.ps[BH_NIC_RX];
	struct bh_ps_desc d[BATCH];
	int got = bh_ps_get(ps, d, BATCH);

	if (got <= 0)
		return got;
	for (int i = 0; i < got; i++) {
		if (d[i].status || !bh_nic_frame_ok(d[i].length) ||
		    write(b->tap, bh_ps_data(ps, &d[i]), d[i].length) != (ssize_t) d[i].length)
			b->tap_drops++;
		else
			b->from_nic++;
		d[i].status = 0;
	}
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
		if (poll(p, 3, TICK_MS) < 0 && errno != EINTR)
			return strerror(errno);
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
	printf(
	    "nic-tap: %s <-> nic session (driver %s, MAC %02x:%02x:%02x:%02x:%02x:%02x, MTU %u); "
	    "give %s that address: ip link set %s address %02x:%02x:%02x:%02x:%02x:%02x\n",
	    b->ifname, info.driver, info.mac[0], info.mac[1], info.mac[2], info.mac[3], info.mac[4],
	    info.mac[5], info.mtu, b->ifname, b->ifname, info.mac[0], info.mac[1], info.mac[2],
	    info.mac[3], info.mac[4], info.mac[5]);
	report_link(b, &info.link);
	return 0;
}

int main(void)
{
	static struct bridge b = {.tap = -1};
	struct timespec pause = {.tv_nsec = 100000000};

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
		printf("nic-tap: session %u ended: %s (to nic %llu, from nic %llu, refused %llu, "
		       "dropped %llu); %s stays up, reconnecting\n",
		       round, why, (unsigned long long) b.to_nic, (unsigned long long) b.from_nic,
		       (unsigned long long) b.refused, (unsigned long long) b.tap_drops, b.ifname);
		bh_session_close(NULL, &b.s);
		nanosleep(&pause, NULL);
		tick(&b);
	}
}
