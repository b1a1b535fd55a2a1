// SPDX-License-Identifier: MIT
/*
 * term-hostile: a Terminal client that lies, for the VM tests. It opens
 * sessions to the serial driver beside the real user of the line and
 * submits what no honest client would: offsets past the bulk buffer,
 * lengths no slot has, a status of its own, ring indexes that make no
 * sense, and a malformed message on the session socket. The driver must
 * refuse each one (an ack with -EINVAL, or closing that session) and keep
 * serving the line. Nothing it sends reaches the line but one byte, "\n",
 * which proves its session worked. Prints "term-hostile: TEST name
 * PASS|FAIL detail". Its argument: milliseconds to wait first, so the real
 * user of the line is connected before it.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/terminal.h"

#include "peer.h"

static int failures;

static void result(const char *name, int ok, const char *detail)
{
	printf("term-hostile: TEST %s %s %s\n", name, ok ? "PASS" : "FAIL", detail);
	failures += !ok;
}

static void bad_descriptors(struct bh_terminal *t)
{
	struct bh_packet_stream *ps = t->tx;
	struct bh_ps_desc d[6], slot;
	int32_t st[6] = {1, 1, 1, 1, 1, 1};
	char msg[240];

	if (bh_ps_alloc(ps, ps->slot_size, &slot) < 0)
		return result("term_bad_descriptors", 0, "no slot");
	memset(bh_ps_data(ps, &slot), '\n', ps->slot_size);
	for (int i = 0; i < 6; i++)
		d[i] = slot;
	d[0].offset = ps->bulk_size + 4096; /* past the bulk buffer */
	d[0].length = 1;
	d[1].length = ps->slot_size + 1; /* longer than a slot */
	d[2].length = 0xffffffffu;	 /* wraps any naive offset + length */
	d[3].length = 0;		 /* nothing to send */
	d[4].length = 1;
	d[4].status = 12345; /* a status is the sink's to set */
	d[5].length = 1;     /* fine: one newline */
	bh_ps_put(ps, d, 6);
	bh_ps_flush(ps);
	int got = collect_acks(ps, st, 6);
	int ok = got == 6 && st[0] == -EINVAL && st[1] == -EINVAL && st[2] == -EINVAL &&
		 st[3] == -EINVAL && st[4] != 0 && st[5] == 0;
	snprintf(msg, sizeof(msg),
		 "%d of 6 acked: offset past bulk %d, length %u %d, length 2^32-1 %d, length 0 "
		 "%d, own status %d, one good byte %d",
		 got, st[0], ps->slot_size + 1, st[1], st[2], st[3], st[4], st[5]);
	result("term_bad_descriptors", ok, msg);
}

/* the submit ring's producer index (ours) jumps by a million: the session must end */
static void garbage_tail(struct bh_terminal *t)
{
	struct bh_packet_stream *ps = t->tx;
	volatile uint32_t *tail = (uint32_t *) ((uint8_t *) ps->submit.shared + BH_PS_RING_TAIL);
	uint64_t one = 1;

	*tail += 1000000;
	(void) !write(ps->submit.efd, &one, sizeof(one));
	result("term_garbage_indexes", hung_up(t->s.fd),
	       "tx submit tail += 1000000: the driver closed this session");
}

static void malformed_event(struct bh_terminal *t)
{
	static const char junk[3] = "bad";

	(void) !send(t->s.fd, junk, sizeof(junk), MSG_NOSIGNAL);
	result("term_malformed_event", hung_up(t->s.fd),
	       "a 3-byte message on the session socket: the driver closed this session");
}

/* a baud rate the UART cannot make: refused, and the line stays as it was */
static void bad_baud(struct bh_terminal *t)
{
	struct bh_terminal_line want = {.baud = 7}, got = {0};
	struct bh_terminal_errors e;
	struct bh_session_event ev;
	uint64_t until = bh_now_ns() + 3000000000ull;
	char msg[160];
	int ok = 0;

	/* what the driver said at the start is not the answer */
	for (struct pollfd p = {.fd = t->s.fd, .events = POLLIN}; poll(&p, 1, 200) > 0;)
		if (bh_session_recv_event(&t->s, &ev) != 1)
			break;
	bh_session_send_event(&t->s, BH_TERMINAL_EVENT_SET_BAUD, &want, sizeof(want));
	while (!ok && bh_now_ns() < until) {
		struct pollfd p = {.fd = t->s.fd, .events = POLLIN};
		if (poll(&p, 1, 100) <= 0)
			continue;
		if (bh_session_recv_event(&t->s, &ev) == 1 && ev.type == BH_TERMINAL_EVENT_LINE &&
		    bh_terminal_event(&ev, &got, &e) == 0)
			ok = got.baud == t->info.line.baud;
	}
	snprintf(msg, sizeof(msg), "asked for 7 baud: the line stays at %u baud", got.baud);
	result("term_bad_baud", ok, msg);
}

static int open_session(struct bh_core *core, struct bh_terminal *t)
{
	char why[200];

	/*
	 * The session before this one was closed by the driver a moment ago;
	 * until the driver tells core, it still counts against the server's
	 * limit, and core refuses with "try again when one closes" (seen in a
	 * clean-clone make check): ask again for up to 10 s.
	 */
	for (int tries = 0; bh_terminal_open(core, 30000, t, why, sizeof(why)) < 0; tries++) {
		if (!strstr(why, "try again") || tries == 50) {
			printf("term-hostile: %s\n", why);
			return -1;
		}
		nanosleep(&(struct timespec){.tv_nsec = 200000000}, NULL);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct timespec delay = {0};
	struct bh_core core;
	struct bh_terminal a, b;
	long ms = argc > 1 ? strtol(argv[1], NULL, 10) : 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (bh_core_open(&core) < 0) {
		printf("term-hostile: %s\n", bh_error(&core));
		return 1;
	}
	/* heartbeats are not asked of us: no watchdog_ms in the test's config */
	delay.tv_sec = ms / 1000;
	delay.tv_nsec = (ms % 1000) * 1000000;
	nanosleep(&delay, NULL);
	if (open_session(&core, &a) < 0)
		return 1;
	bad_descriptors(&a);
	bad_baud(&a);
	garbage_tail(&a);
	bh_terminal_close(&a);
	if (open_session(&core, &b) < 0)
		return 1;
	malformed_event(&b);
	bh_terminal_close(&b);
	printf("term-hostile: done, %d failed\n", failures);
	return failures ? 1 : 0;
}
