// SPDX-License-Identifier: MIT
/* A small epoll loop for components: one callback per fd. */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"

struct bh_watch {
	int fd;
	bh_loop_fn fn;
	void *arg;
	struct bh_watch *next;
};

int bh_loop_init(struct bh_loop *loop)
{
	loop->stop = 0;
	loop->watches = NULL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	return loop->epfd < 0 ? -errno : 0;
}

int bh_loop_add(struct bh_loop *loop, int fd, bh_loop_fn fn, void *arg)
{
	struct bh_watch *w = malloc(sizeof(*w));
	struct epoll_event ev = { .events = EPOLLIN };

	if (!w)
		return -ENOMEM;
	w->fd = fd;
	w->fn = fn;
	w->arg = arg;
	ev.data.ptr = w;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = errno;
		free(w);
		return -e;
	}
	w->next = loop->watches;
	loop->watches = w;
	return 0;
}

/* marked here, freed after the current batch: its event may still be pending */
int bh_loop_del(struct bh_loop *loop, int fd)
{
	for (struct bh_watch *w = loop->watches; w; w = w->next) {
		if (w->fd != fd || !w->fn)
			continue;
		w->fn = NULL;
		return epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 ? -errno : 0;
	}
	return -ENOENT;
}

static void sweep(struct bh_loop *loop)
{
	for (struct bh_watch **p = &loop->watches; *p;) {
		struct bh_watch *w = *p;
		if (w->fn) {
			p = &w->next;
			continue;
		}
		*p = w->next;
		free(w);
	}
}

int bh_loop_run(struct bh_loop *loop, int timeout_ms)
{
	loop->stop = 0;
	while (!loop->stop) {
		struct epoll_event ev[16];
		int n = epoll_wait(loop->epfd, ev, 16, timeout_ms);

		bh_trace_tick();

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		for (int i = 0; i < n && !loop->stop; i++) {
			struct bh_watch *w = ev[i].data.ptr;
			if (w->fn)
				w->fn(w->arg, w->fd, ev[i].events);
		}
		sweep(loop);
	}
	return 0;
}

void bh_loop_stop(struct bh_loop *loop)
{
	loop->stop = 1;
}

void bh_loop_fini(struct bh_loop *loop)
{
	while (loop->watches) {
		struct bh_watch *w = loop->watches;
		loop->watches = w->next;
		free(w);
	}
	if (loop->epfd >= 0)
		close(loop->epfd);
	loop->epfd = -1;
}
