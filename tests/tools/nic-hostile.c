// SPDX-License-Identifier: MIT
/*
 * nic-hostile: a NIC client that lies, for the VM tests. It opens sessions
 * to the NIC driver and submits what no honest client would: offsets past
 * the bulk buffer, lengths no frame has, ring indexes that make no sense,
 * and a malformed message on the session socket. The driver must refuse
 * each one (an ack with -EINVAL, or closing that session) and keep serving
 * everyone else. Prints "nic-hostile: TEST name PASS|FAIL detail".
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/nic.h"

#include "peer.h"

static int failures;

static void result(const char *name, int ok, const char *detail)
{
	printf("nic-hostile: TEST %s %s %s\n", name, ok ? "PASS" : "FAIL", detail);
	failures += !ok;
}

static int open_session(struct bh_core *core, struct bh_session *s)
{
	char why[160];
	int fd;

	if (bh_session_open_wait(core, BH_NIC_SERVICE, 30000, &fd) < 0) {
		printf("nic-hostile: %s\n", bh_error(core));
		return -1;
	}
	if (bh_session_accept_setup(fd, BH_NIC_SERVICE, s, why, sizeof(why)) < 0) {
		printf("nic-hostile: setup: %s\n", why);
		return -1;
	}
	return 0;
}

static void bad_descriptors(struct bh_session *s)
{
	struct bh_packet_stream *ps = &s->ps[BH_NIC_TX];
	struct bh_ps_desc d[5], slot;
	int32_t st[5] = {1, 1, 1, 1, 1};
	char msg[200];

	if (bh_ps_alloc(ps, ps->slot_size, &slot) < 0)
		return result("nic_bad_descriptors", 0, "no slot");
	/* a real broadcast frame last, to prove the session still works */
	memset(bh_ps_data(ps, &slot), 0xff, 6);
	memset((uint8_t *) bh_ps_data(ps, &slot) + 6, 0x02, 54);
	for (int i = 0; i < 5; i++)
		d[i] = slot;
	d[0].offset = ps->bulk_size + 4096; /* past the bulk buffer */
	d[0].length = 60;
	d[1].length = (uint32_t) ps->bulk_size; /* inside the buffer, but no frame is that long */
	d[2].length = 0xffffffffu;		/* wraps any naive offset + length */
	d[3].length = 3;			/* shorter than an Ethernet header */
	d[4].length = 60;			/* fine */
	d[1].status = d[2].status = 12345;	/* a status is the sink's to set */
	bh_ps_put(ps, d, 5);
	bh_ps_flush(ps);
	int got = collect_acks(ps, st, 5);
	int ok = got == 5 && st[0] == -EINVAL && st[1] == -EINVAL && st[2] == -EINVAL &&
		 st[3] == -EINVAL && st[4] == 0;
	snprintf(msg, sizeof(msg),
		 "%d of 5 acked: offset past bulk %d, length %llu %d, "
		 "length 2^32-1 %d, length 3 %d, good frame %d",
		 got, st[0], (unsigned long long) ps->bulk_size, st[1], st[2], st[3], st[4]);
	result("nic_bad_descriptors", ok, msg);
}

/* the ack ring's consumer index (ours) runs ahead: the driver must not trust it or spin */
static void lying_head(struct bh_session *s)
{
	struct bh_packet_stream *ps = &s->ps[BH_NIC_TX];
	volatile uint32_t *head = (uint32_t *) ((uint8_t *) ps->ack.shared + BH_PS_RING_HEAD);
	struct bh_ps_desc d;
	int32_t st;

	*head += 1000;
	if (bh_ps_alloc(ps, 60, &d) == 0) {
		memset(bh_ps_data(ps, &d), 0xff, 60);
		bh_ps_put(ps, &d, 1);
		bh_ps_flush(ps);
	}
	/* nothing comes back: the driver sees no room for an ack and holds off */
	int got = collect_acks(ps, &st, 1);
	result("nic_lying_ack_head", 1,
	       got ? "driver acked anyway (tolerated)"
		   : "driver held the frame: no room for its ack");
}

/* the submit ring's producer index (ours) jumps by a million: the session must end */
static void garbage_tail(struct bh_session *s)
{
	struct bh_packet_stream *ps = &s->ps[BH_NIC_TX];
	volatile uint32_t *tail = (uint32_t *) ((uint8_t *) ps->submit.shared + BH_PS_RING_TAIL);
	uint64_t one = 1;

	*tail += 1000000;
	(void) !write(ps->submit.efd, &one, sizeof(one));
	result("nic_garbage_indexes", hung_up(s->fd),
	       "submit tail += 1000000: the driver closed this session");
}

static void malformed_event(struct bh_session *s)
{
	static const char junk[3] = "bad";

	(void) !send(s->fd, junk, sizeof(junk), MSG_NOSIGNAL);
	result("nic_malformed_event", hung_up(s->fd),
	       "a 3-byte message on the session socket: the driver closed this session");
}

int main(void)
{
	struct bh_core core;
	struct bh_session a, b;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (bh_core_open(&core) < 0) {
		printf("nic-hostile: %s\n", bh_error(&core));
		return 1;
	}
	if (open_session(&core, &a) < 0)
		return 1;
	bad_descriptors(&a);
	garbage_tail(&a);
	bh_session_close(NULL, &a);
	if (open_session(&core, &b) < 0)
		return 1;
	lying_head(&b);
	malformed_event(&b);
	bh_session_close(NULL, &b);
	printf("nic-hostile: done, %d failed\n", failures);
	return failures ? 1 : 0;
}
