// SPDX-License-Identifier: MIT
/* Block sessions, the client side: open, check the geometry, wait for acks. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bulkhead/block.h"

int bh_block_open(struct bh_core *core, int timeout_ms, struct bh_block *b, char *why,
		  size_t why_len)
{
	const struct bh_block_info *in;
	int fd, rc;

	memset(b, 0, sizeof(*b));
	b->s.fd = -1;
	rc = bh_session_open_wait(core, BH_BLOCK_SERVICE, timeout_ms, &fd);
	if (rc) {
		snprintf(why, why_len, "%s", bh_error(core));
		return rc;
	}
	rc = bh_session_accept_setup(fd, BH_BLOCK_SERVICE, &b->s, why, why_len);
	if (rc) {
		close(fd);
		return rc;
	}
	in = (const struct bh_block_info *)b->s.info;
	b->ps = &b->s.ps[0];
	/* the server's geometry is input like any other */
	if (b->s.nstreams != 1 || b->ps->role != BH_PS_SOURCE || in->version != BH_BLOCK_VERSION ||
	    in->block_size < 512 || in->block_size > 65536 ||
	    in->block_size & (in->block_size - 1) || !in->block_count ||
	    in->block_count > (UINT64_MAX >> 16) || !in->max_transfer ||
	    in->max_transfer % in->block_size || in->max_transfer != b->ps->slot_size ||
	    !in->queue_depth) {
		snprintf(why, why_len, "block: the server offered an impossible geometry (%u-byte "
				       "blocks, %u-byte transfers)",
			 in->block_size, in->max_transfer);
		bh_block_close(b);
		return -EPROTO;
	}
	/* kick the server once: its waiting flag may predate our zeroing of the rings */
	(void)!write(b->ps->submit.efd, &(uint64_t){ 1 }, sizeof(uint64_t));
	b->info = *in;
	b->info.model[sizeof(b->info.model) - 1] = 0;
	b->size = in->block_count * in->block_size;
	return 0;
}

void bh_block_close(struct bh_block *b)
{
	bh_session_close(NULL, &b->s);
	b->ps = NULL;
}

int bh_block_wait(struct bh_block *b, int extra_fd, int timeout_ms)
{
	struct pollfd p[3] = {
		{ .fd = bh_ps_wait_fd(b->ps), .events = POLLIN },
		{ .fd = b->s.fd, .events = 0 }, /* a hang-up shows without asking */
		{ .fd = extra_fd, .events = POLLIN },
	};
	int rc;

	if (!bh_ps_prepare_wait(b->ps))
		return 1;
	rc = poll(p, extra_fd >= 0 ? 3 : 2, timeout_ms);
	if (rc < 0)
		return errno == EINTR ? 1 : -errno;
	if (p[1].revents & (POLLHUP | POLLERR))
		return -ECONNRESET;
	if (p[0].revents)
		bh_ps_drain_signal(b->ps);
	return rc > 0;
}
