// SPDX-License-Identifier: MIT
/* The set of fds a server sleeps on, rebuilt each pass (service.h). */
#include <errno.h>

#include "bulkhead/service.h"

int bh_pollset_add(struct bh_pollset *s, int fd, short events, int who)
{
	if (s->n >= BH_POLLSET_MAX)
		return -ENOSPC;
	s->p[s->n] = (struct pollfd){.fd = fd, .events = events};
	s->who[s->n++] = who;
	return 0;
}

void bh_pollset_server(struct bh_pollset *s, struct bh_core *core, struct bh_service *svc,
		       int irq_fd)
{
	s->n = s->next = 0;
	/* no events asked: poll still reports the hang-up */
	bh_pollset_add(s, core->fd, 0, BH_POLL_CORE);
	bh_pollset_add(s, bh_service_fd(svc), POLLIN, BH_POLL_SERVICE);
	if (irq_fd >= 0)
		bh_pollset_add(s, irq_fd, POLLIN, BH_POLL_IRQ);
}

int bh_pollset_wait(struct bh_pollset *s, int timeout_ms)
{
	int rc = poll(s->p, s->n, timeout_ms);

	s->next = 0;
	if (rc > 0)
		return rc;
	s->n = 0; /* nothing to walk */
	return rc < 0 && errno != EINTR ? -errno : 0;
}

bool bh_pollset_next(struct bh_pollset *s, int *who, int *fd)
{
	while (s->next < s->n) {
		unsigned int k = s->next++;
		if (s->p[k].revents) {
			*who = s->who[k];
			*fd = s->p[k].fd;
			return true;
		}
	}
	return false;
}
