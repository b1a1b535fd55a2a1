// SPDX-License-Identifier: MIT
/* A server's side of a service: session requests taken a bounded number per pass. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bulkhead/service.h"

int bh_service_open(struct bh_service *svc, struct bh_core *core, const char *name, uint64_t cost,
		    unsigned int max_sessions)
{
	int rc;

	memset(svc, 0, sizeof(*svc));
	svc->core = core;
	svc->per_pass = BH_SERVICE_PER_PASS;
	snprintf(svc->name, sizeof(svc->name), "%s", name);
	rc = bh_service_announce(core, name, cost, max_sessions, &svc->channel);
	if (rc) {
		svc->channel = -1;
		return rc;
	}
	/* taking requests must not block: an empty channel is EAGAIN */
	fcntl(svc->channel, F_SETFL, fcntl(svc->channel, F_GETFL) | O_NONBLOCK);
	return 0;
}

void bh_service_pass(struct bh_service *svc)
{
	svc->left = svc->per_pass;
}

/* the client gave up before we got to it: a poll, not a set-up, finds out */
static bool hung_up(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR));
}

int bh_service_next(struct bh_service *svc, struct bh_session_request *req)
{
	while (svc->left) {
		int rc = bh_service_accept(svc->channel, req);

		if (rc == -EPROTO)
			continue; /* core's message was not a session: nothing to set up */
		if (rc <= 0)
			return rc;
		svc->left--;
		svc->taken++;
		if (!hung_up(req->fd))
			return 1;
		svc->dropped++;
		bh_service_refuse(svc, req);
	}
	return 0;
}

void bh_service_refuse(struct bh_service *svc, struct bh_session_request *req)
{
	close(req->fd);
	req->fd = -1;
	bh_session_end(svc->core, req->id, BH_SESSION_END_FAILED);
}

void bh_service_close(struct bh_service *svc)
{
	if (svc->channel >= 0)
		close(svc->channel);
	svc->channel = -1;
}
