/* SPDX-License-Identifier: MIT */
/*
 * A server's side of a service, with its set-up work bounded.
 *
 * However many session requests wait on the channel, a server takes at
 * most per_pass of them in one pass of its loop (sDDF's rule: no peer makes
 * a server do unbounded work), so its data path keeps its share of time.
 * The channel's backlog is bounded by core: it routes no more sessions than
 * the server announced it serves at once. A request whose client hung up
 * before the server got to it costs only a word to core, which counts it
 * as that client's failure and makes its next request wait.
 *
 * The loop of a server:
 *
 *	for (;;) {
 *		bh_service_pass(&svc);
 *		while (bh_service_next(&svc, &req) == 1)
 *			... bh_session_offer(core, dev, &req, ...) ...
 *		... the data path ...
 *		... sleep on the channel (bh_service_fd) and the data path's fds ...
 *	}
 */
#ifndef BULKHEAD_SERVICE_H
#define BULKHEAD_SERVICE_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "bulkhead/bulkhead.h"

/* session set-ups in one pass of a server's loop */
#define BH_SERVICE_PER_PASS 1

struct bh_service {
	struct bh_core *core;
	int channel;
	char name[BH_SERVICE_MAX];
	unsigned int per_pass;
	unsigned int left; /* set-ups left in this pass */
	uint64_t taken;	   /* requests taken from the channel */
	uint64_t dropped;  /* of them, hung up by their client before we got to them */
};

/*
 * announce the service to core: cost is what one session costs its client
 * (bh_session_cost of its streams), max_sessions how many we serve at once
 */
int bh_service_open(struct bh_service *svc, struct bh_core *core, const char *name, uint64_t cost,
		    unsigned int max_sessions);
/* a new pass of the loop: per_pass more set-ups */
void bh_service_pass(struct bh_service *svc);
/*
 * the next request to set up: 1 with *req, 0 if there is none or this
 * pass has had its share, <0 if the channel failed (core is gone)
 */
int bh_service_next(struct bh_service *svc, struct bh_session_request *req);
/* a request we will not serve (full, shutting down): core hears of it, the client hangs up */
void bh_service_refuse(struct bh_service *svc, struct bh_session_request *req);
/* the channel's fd, to sleep on: readable while requests wait */
static inline int bh_service_fd(const struct bh_service *svc)
{
	return svc->channel;
}
void bh_service_close(struct bh_service *svc);

/*
 * The fds a server sleeps on, each tagged with whose it is (a client's
 * index, or one of the BH_POLL_ values): filled anew each pass, since
 * clients come and go, then polled, then walked with bh_pollset_next.
 */
#define BH_POLLSET_MAX 64
enum { BH_POLL_CORE = -1, BH_POLL_SERVICE = -2, BH_POLL_IRQ = -3 };

struct bh_pollset {
	struct pollfd p[BH_POLLSET_MAX];
	int who[BH_POLLSET_MAX];
	unsigned int n, next;
};

/*
 * Empty it, then add what every server watches: core's connection (any
 * event on it means core hung up), the service channel (session requests)
 * and, if irq_fd >= 0, the interrupt's eventfd.
 */
void bh_pollset_server(struct bh_pollset *s, struct bh_core *core, struct bh_service *svc,
		       int irq_fd);
/* one more fd; -ENOSPC when the set is full (BH_POLLSET_MAX) */
int bh_pollset_add(struct bh_pollset *s, int fd, short events, int who);
/* poll: the number of ready fds, 0 on timeout or a signal, -errno on failure */
int bh_pollset_wait(struct bh_pollset *s, int timeout_ms);
/* the next ready fd and whose it is; false when none is left */
bool bh_pollset_next(struct bh_pollset *s, int *who, int *fd);


#endif
