/* SPDX-License-Identifier: MIT */
/* What the hostile test clients share: waiting on a server's answers, and on its hang-up. */
#ifndef BH_TESTS_PEER_H
#define BH_TESTS_PEER_H

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/packet_stream.h"

/* wait until n acks came back or 3 s passed; their statuses in st */
static inline int collect_acks(struct bh_packet_stream *ps, int32_t *st, int n)
{
	uint64_t until = bh_now_ns() + 3000000000ull;
	int have = 0;

	while (have < n && bh_now_ns() < until) {
		struct bh_ps_desc d[16];
		int got = bh_ps_get(ps, d, 16);
		for (int i = 0; i < got && have < n; i++)
			st[have++] = d[i].status;
		if (got <= 0 && bh_ps_prepare_wait(ps)) {
			struct pollfd p = {.fd = bh_ps_wait_fd(ps), .events = POLLIN};
			poll(&p, 1, 100);
			bh_ps_drain_signal(ps);
		}
	}
	return have;
}

/* the session socket hangs up within 3 s: the driver dropped us */
static inline int hung_up(int fd)
{
	uint64_t until = bh_now_ns() + 3000000000ull;
	char buf[128];

	while (bh_now_ns() < until) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 100) > 0) {
			ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (n == 0 || (n < 0 && errno != EAGAIN))
				return 1;
		}
	}
	return 0;
}

#endif
