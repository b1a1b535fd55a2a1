// SPDX-License-Identifier: MIT
/*
 * A dynamic component's loader at work (core/libs.c, core/sandbox.c).
 *
 * Its seccomp filter sends openat to a listener (seccomp user
 * notification, seccomp_unotify(2)) instead of refusing it; the child
 * sends core the listener just before its exec, as the first datagram on
 * its socket, and core reads it like any request, never waiting. Until the
 * component's first request, core lets each one through
 * (SECCOMP_USER_NOTIF_FLAG_CONTINUE): the loader opens its libraries, which
 * are all the root holds, read-only. No untrusted input can have reached
 * the component by then: everything it will ever read comes through core,
 * and core has not answered it yet. At the first request core closes the
 * listener, and from then on every openat fails with ENOSYS, without core
 * hearing of it: the filter is as tight as a static component's.
 */
#include <errno.h>
#include <seccomp.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "bulkhead/msg.h"
#include "core.h"

void bh_loader_expect(struct bh_core_state *core, struct bh_component *c, bool dynamic)
{
	(void)core;
	c->loading = dynamic;
	c->loader = -1;
	c->loader_opens = 0;
}

void bh_loader_receive(struct bh_core_state *core, struct bh_component *c)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = BH_TAG(BH_TAG_LOADER, c->index) };
	unsigned int nfds = 0;
	char b, why[120];
	int fd = -1;
	int rc = bh_dgram_recv(c->sock, &b, 1, &fd, 1, &nfds, why, sizeof(why));

	if (rc == -EAGAIN)
		return;
	if (rc == 1 && nfds == 1 && epoll_ctl(core->epfd, EPOLL_CTL_ADD, fd, &ev) == 0) {
		c->loader = fd;
		return;
	}
	/* core's own child sends it before the exec: only its death comes instead */
	if (fd >= 0)
		close(fd);
	bh_component_stop(core, c, "no listener for its loader");
}

void bh_loader_answer(struct bh_core_state *core, struct bh_component *c)
{
	struct seccomp_notif *req = NULL;
	struct seccomp_notif_resp *resp = NULL;

	if (c->loader < 0 || seccomp_notify_alloc(&req, &resp))
		return;
	if (seccomp_notify_receive(c->loader, req) == 0) {
		/* the kernel opens it in the component's own root; nothing of ours to check */
		resp->id = req->id;
		resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
		if (seccomp_notify_respond(c->loader, resp) == 0)
			c->loader_opens++;
	} else if (errno != EINTR && errno != ENOENT) {
		/* the listener is dead: the process is gone (its exit follows) */
		bh_loader_done(core, c);
	}
	seccomp_notify_free(req, resp);
}

void bh_loader_done(struct bh_core_state *core, struct bh_component *c)
{
	if (!c->loading)
		return;
	c->loading = false;
	if (c->loader >= 0) {
		epoll_ctl(core->epfd, EPOLL_CTL_DEL, c->loader, NULL);
		close(c->loader);
	}
	c->loader = -1;
	if (c->state == BH_RUNNING)
		bh_log("\"%s\" started: its loader opened %u files; openat refused from now on",
		       c->cfg->name, c->loader_opens);
}
