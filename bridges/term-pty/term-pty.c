// SPDX-License-Identifier: MIT
/*
 * term-pty: a Terminal session as a Linux pty, so unmodified programs
 * (cat, stty, screen, a getty) use a serial line served by an isolated
 * driver.
 *
 * Core creates the pty the config names (pty = NAME), makes it raw, links
 * the slave as /run/bulkhead/pty/NAME and hands us the master; core keeps
 * it open for as long as it runs. We move bytes both ways:
 *   pty -> tx stream: bytes read from the master go into a queue of our
 *     own, and from there into descriptors of the driver's slot size; a
 *     byte leaves the queue when the driver acks its descriptor (it is in
 *     the UART's FIFO then)
 *   rx stream -> pty: received bytes are copied into a buffer of our own
 *     and acked at once; the buffer goes to the master as fast as the
 *     pty takes it
 * Backpressure both ways: with the queue full we stop reading the master
 * (the writer on the slave blocks); with our buffer full we stop taking
 * rx descriptors (the driver runs out of slots and leaves bytes in the
 * UART, and the sender on the line is held back). Nothing is dropped here.
 *
 * When the driver goes away (its session hangs up, or a stream turns out
 * corrupted) we keep the pty and open a new session: programs on the slave
 * see a pause, not a hang-up. What the driver had not acked is sent again
 * (a descriptor is one FIFO's worth, so at most that much can come out
 * twice, if the driver died between filling the FIFO and its ack); what
 * it reported lost (overrun) or had delivered late is logged.
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
#include "bulkhead/terminal.h"

#define TICK_MS 200
#define QUEUE (16u << 10) /* bytes from the pty not yet acked by the driver */
#define OUT (256u << 10)  /* bytes for the pty not yet written; more than an rx ring holds */
#define BATCH 32
#define INFLIGHT 1024 /* tx descriptors we track; more than any ring we accept */

struct bridge {
	struct bh_core core;
	char slave[BH_NAME_MAX];
	int pty;
	struct bh_terminal t;
	/* pty -> line: [head, sub) submitted, [sub, tail) waiting; absolute counts */
	uint8_t q[QUEUE];
	uint64_t q_head, q_sub, q_tail;
	uint32_t sent_len[INFLIGHT]; /* lengths of submitted descriptors, in order */
	uint32_t sent_tag[INFLIGHT];
	unsigned int sent_first, sent_n;
	uint32_t next_tag;
	/* line -> pty */
	uint8_t out[OUT];
	uint64_t out_head, out_tail;
	struct bh_terminal_errors errs;
	uint64_t to_line, from_line, resent, refused, lost_rx, sessions;
	uint64_t next_tick;
};

static void tick(struct bridge *b)
{
	bh_heartbeat_every(&b->core, &b->next_tick, TICK_MS, "term-pty");
}

/* acks from the driver: their bytes leave the queue; -EPROTO if they make no sense */
static int tx_reclaim(struct bridge *b)
{
	struct bh_packet_stream *ps = b->t.tx;
	struct bh_ps_desc d[BATCH];
	int got;

	while ((got = bh_ps_get(ps, d, BATCH)) > 0) {
		for (int i = 0; i < got; i++) {
			uint32_t len;
			/* the driver acks in order: anything else is a broken or lying peer */
			if (!b->sent_n || d[i].tag != b->sent_tag[b->sent_first])
				return -EPROTO;
			len = b->sent_len[b->sent_first];
			b->sent_first = (b->sent_first + 1) % INFLIGHT;
			b->sent_n--;
			if (d[i].status)
				b->refused += len;
			else
				b->to_line += len;
			b->q_head += len;
			bh_ps_free(ps, &d[i]);
		}
	}
	return got;
}

/* the queue's waiting bytes into descriptors, as far as slots allow */
static void tx_submit(struct bridge *b)
{
	struct bh_packet_stream *ps = b->t.tx;
	struct bh_ps_desc d[BATCH];
	unsigned int n = 0;

	while (n < BATCH && b->q_sub < b->q_tail && b->sent_n < INFLIGHT) {
		uint32_t len = ps->slot_size;
		uint8_t *p;

		if (len > b->q_tail - b->q_sub)
			len = (uint32_t) (b->q_tail - b->q_sub);
		if (bh_ps_alloc(ps, len, &d[n]) < 0)
			break;
		p = bh_ps_data(ps, &d[n]);
		for (uint32_t i = 0; i < len; i++)
			p[i] = b->q[(b->q_sub + i) % QUEUE];
		d[n].length = len;
		d[n].op = 0;
		d[n].arg = 0;
		d[n].status = 0;
		d[n].tag = b->next_tag++;
		unsigned int k = (b->sent_first + b->sent_n) % INFLIGHT;
		b->sent_len[k] = len;
		b->sent_tag[k] = d[n].tag;
		b->sent_n++;
		b->q_sub += len;
		n++;
	}
	if (n) {
		bh_ps_put(ps, d, n);
		bh_ps_flush(ps);
	}
}

/* pty -> queue; true if the master had bytes */
static bool pty_read(struct bridge *b)
{
	bool any = false;

	while (b->q_tail - b->q_head < QUEUE) {
		uint64_t room = QUEUE - (b->q_tail - b->q_head);
		size_t at = (size_t) (b->q_tail % QUEUE);
		size_t want = QUEUE - at < room ? QUEUE - at : (size_t) room;
		ssize_t n = read(b->pty, b->q + at, want);
		if (n <= 0)
			break; /* EAGAIN: nothing waits */
		b->q_tail += (uint64_t) n;
		any = true;
	}
	return any;
}

/* rx descriptors into our buffer, acked at once; -EPROTO if the stream broke */
static int rx_take(struct bridge *b, bool hangup)
{
	struct bh_packet_stream *ps = b->t.rx;
	struct bh_ps_desc d[BATCH];
	int got, total = 0;

	for (;;) {
		uint64_t room = OUT - (b->out_tail - b->out_head);
		/* only what surely fits (all the bulk buffer), unless the driver is gone */
		if (!hangup && room < ps->bulk_size)
			break;
		got = bh_ps_get(ps, d, BATCH);
		if (got <= 0)
			return got < 0 ? got : total;
		for (int i = 0; i < got; i++) {
			const uint8_t *p = bh_ps_data(ps, &d[i]);
			uint32_t len = d[i].length;
			if (d[i].status) {
				/* outside the bulk buffer: the stream refused it */
				d[i].status = 0;
				continue;
			}
			room = OUT - (b->out_tail - b->out_head);
			if (len > room) {
				b->lost_rx += len - room;
				len = (uint32_t) room;
			}
			for (uint32_t k = 0; k < len; k++)
				b->out[(b->out_tail + k) % OUT] = p[k];
			b->out_tail += len;
			b->from_line += len;
		}
		if (!hangup) {
			bh_ps_put(ps, d, (unsigned int) got);
			bh_ps_flush(ps);
		}
		total += got;
	}
	return total;
}

/* our buffer -> pty; true if anything went */
static bool pty_write(struct bridge *b)
{
	bool any = false;

	while (b->out_tail > b->out_head) {
		size_t at = (size_t) (b->out_head % OUT);
		uint64_t have = b->out_tail - b->out_head;
		size_t len = OUT - at < have ? OUT - at : (size_t) have;
		ssize_t n = write(b->pty, b->out + at, len);
		if (n <= 0)
			break; /* EAGAIN: the pty is full; its reader is behind */
		b->out_head += (uint64_t) n;
		any = true;
	}
	return any;
}

static void report_errors(struct bridge *b, const struct bh_terminal_errors *e)
{
	if (e->overrun != b->errs.overrun || e->framing != b->errs.framing ||
	    e->parity != b->errs.parity || e->breaks != b->errs.breaks || e->stale != b->errs.stale)
		printf(
		    "term-pty: the line reports overrun %llu (bytes lost in the UART), framing "
		    "%llu, parity %llu, break %llu; %llu bytes left in the UART's FIFO by a dead "
		    "driver, delivered (driver start %llu)\n",
		    (unsigned long long) e->overrun, (unsigned long long) e->framing,
		    (unsigned long long) e->parity, (unsigned long long) e->breaks,
		    (unsigned long long) e->stale, (unsigned long long) e->restarts + 1);
	b->errs = *e;
}

/* events on the session socket: 1 fine, 0 hung up, <0 broken */
static int session_events(struct bridge *b)
{
	struct bh_session_event ev;
	struct bh_terminal_line line;
	struct bh_terminal_errors e;
	int rc;

	while ((rc = bh_session_recv_event(&b->t.s, &ev)) == 1) {
		if (ev.type == BH_TERMINAL_EVENT_SET_BAUD || bh_terminal_event(&ev, &line, &e) < 0)
			continue; /* not ours to act on */
		if (ev.type == BH_TERMINAL_EVENT_LINE)
			printf("term-pty: line %u baud %u%c%u\n", line.baud, line.data_bits,
			       line.parity, line.stop_bits);
		else
			report_errors(b, &e);
	}
	return rc == -EAGAIN ? 1 : rc;
}

/* move bytes until the session ends; returns why it ended */
static const char *run(struct bridge *b)
{
	for (;;) {
		bool moved = false;
		int rc;

		tick(b);
		if (tx_reclaim(b) < 0)
			return "the driver acked what it was not sent (or out of order)";
		moved |= pty_read(b);
		tx_submit(b);
		rc = rx_take(b, false);
		if (rc < 0)
			return "the driver corrupted the rx stream";
		moved |= rc > 0;
		moved |= pty_write(b);
		if (moved)
			continue;
		/* idle: sleep on the master, the streams and the socket */
		if (!bh_ps_prepare_wait(b->t.rx))
			continue;
		if (b->sent_n && !bh_ps_prepare_wait(b->t.tx))
			continue;
		struct pollfd p[4] = {
		    {.fd = b->t.s.fd, .events = POLLIN},
		    {.fd = bh_ps_wait_fd(b->t.rx), .events = POLLIN},
		    {.fd = bh_ps_wait_fd(b->t.tx), .events = POLLIN},
		    {.fd = b->pty,
		     .events = (short) ((b->q_tail - b->q_head < QUEUE ? POLLIN : 0) |
					(b->out_tail > b->out_head ? POLLOUT : 0))},
		};
		int ready = poll(p, 4, TICK_MS);
		if (ready < 0 && errno != EINTR)
			return strerror(errno);
		if (p[1].revents)
			bh_ps_drain_signal(b->t.rx);
		if (p[2].revents)
			bh_ps_drain_signal(b->t.tx);
		if (p[0].revents) {
			rc = session_events(b);
			if (rc == 0)
				return "the driver hung up";
			if (rc < 0)
				return "the driver sent a malformed event";
		}
	}
}

static int session_start(struct bridge *b)
{
	char why[200];
	int rc;

	/* the driver may be restarting: wait in short steps, heartbeating */
	while ((rc = bh_terminal_open(&b->core, TICK_MS, &b->t, why, sizeof(why))) == -EAGAIN)
		tick(b);
	if (rc) {
		fprintf(stderr, "term-pty: %s\n", why);
		/* no route: the config must change first; no core: nothing left to do */
		if (rc == -EACCES || rc == -EPIPE || rc == -ECONNRESET)
			exit(1);
		return rc;
	}
	fcntl(b->t.s.fd, F_SETFL, fcntl(b->t.s.fd, F_GETFL) | O_NONBLOCK);
	/* what the last driver had not acked goes again, from its first byte */
	uint64_t again = b->q_sub - b->q_head;
	b->resent += again;
	b->q_sub = b->q_head;
	b->sent_first = b->sent_n = 0;
	b->sessions++;
	printf("term-pty: %s <-> terminal session %llu (driver %s on %s, %u baud, tx slots of %u "
	       "bytes); %llu bytes queued for the line, %llu of them sent to the last driver "
	       "but not acked\n",
	       b->slave, (unsigned long long) b->sessions, b->t.info.driver, b->t.info.device,
	       b->t.info.line.baud, b->t.tx->slot_size,
	       (unsigned long long) (b->q_tail - b->q_head), (unsigned long long) again);
	return 0;
}

int main(void)
{
	static struct bridge b = {.pty = -1};
	struct timespec pause = {.tv_nsec = 100000000};

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (bh_core_open(&b.core) < 0 || bh_pty_open(&b.core, b.slave, &b.pty) < 0) {
		fprintf(stderr, "term-pty: %s\n", bh_error(&b.core));
		return 1;
	}
	fcntl(b.pty, F_SETFL, fcntl(b.pty, F_GETFL) | O_NONBLOCK);
	printf("term-pty: uid %u, pty %s\n", getuid(), b.slave);
	for (;;) {
		if (session_start(&b) < 0) {
			nanosleep(&pause, NULL);
			tick(&b);
			continue;
		}
		const char *why = run(&b);
		/* what the driver had put in the rx ring is ours: keep it */
		int rc = rx_take(&b, true);
		/*
		 * and what it acked before it died was on the line: only the rest
		 * goes again (a clean-clone make check sent 192 bytes twice when
		 * acks still in the ring counted as unsent)
		 */
		if (tx_reclaim(&b) < 0)
			printf("term-pty: the last driver's acks made no sense: all it had "
			       "not acked before goes again\n");
		printf("term-pty: session %llu ended: %s (to the line %llu, from the line %llu "
		       "bytes, %llu unacked will be sent again, %llu sent again so far, refused "
		       "%llu, lost here %llu%s); %s stays open, reconnecting\n",
		       (unsigned long long) b.sessions, why, (unsigned long long) b.to_line,
		       (unsigned long long) b.from_line, (unsigned long long) (b.q_sub - b.q_head),
		       (unsigned long long) b.resent, (unsigned long long) b.refused,
		       (unsigned long long) b.lost_rx, rc < 0 ? ", its rx ring was corrupt" : "",
		       b.slave);
		bh_terminal_close(&b.t);
		nanosleep(&pause, NULL);
		tick(&b);
	}
}
