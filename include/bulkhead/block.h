/* SPDX-License-Identifier: MIT */
/*
 * The Block session: a disk served by a driver (e.g. drivers/nvme) to a
 * client (e.g. bridges/block-nbd) over one packet stream.
 *
 * The client is the stream's source, the server its sink. A request is one
 * descriptor: op, arg = first block, length = bytes (a whole number of
 * blocks, at most max_transfer), offset = where in the bulk buffer the data
 * is (written from for a write, read into for a read), tag = the client's
 * name for the request. The server acknowledges each descriptor once, with
 * status 0 or -errno and the same tag; acknowledgements may come out of
 * order, and up to queue_depth requests may be in flight.
 *
 * Flush and trim carry no data, but still name a slot of the bulk buffer so
 * every descriptor validates the same way: a trim covers length bytes from
 * block arg, so it too is at most max_transfer.
 *
 * The server checks every descriptor: a range past the end of the disk gets
 * -ENOSPC, a malformed one -EINVAL, a write to a read-only disk -EROFS; it
 * never touches memory outside the bulk buffer.
 */
#ifndef BULKHEAD_BLOCK_H
#define BULKHEAD_BLOCK_H

#include <errno.h>
#include <stdint.h>

#include "bulkhead/packet_stream.h"
#include "bulkhead/session.h"

#define BH_BLOCK_SERVICE "block"
#define BH_BLOCK_VERSION 1

enum bh_block_op {
	BH_BLOCK_READ = 1,
	BH_BLOCK_WRITE = 2,
	BH_BLOCK_FLUSH = 3, /* everything acknowledged before is on stable media */
	BH_BLOCK_TRIM = 4,  /* the range's contents are no longer needed */
};

enum bh_block_flags {
	BH_BLOCK_WRITABLE = 1u << 0,
	BH_BLOCK_CAN_TRIM = 1u << 1,
	BH_BLOCK_CAN_FLUSH = 1u << 2, /* the disk has a volatile write cache */
};

/* the setup's info: the disk's geometry */
struct bh_block_info {
	uint32_t version;
	uint32_t block_size; /* bytes, a power of two, 512..65536 */
	uint64_t block_count;
	uint32_t flags;	       /* enum bh_block_flags */
	uint32_t max_transfer; /* bytes per request; also the stream's slot size */
	uint32_t queue_depth;  /* requests in flight at most */
	uint32_t reserved;
	char model[40]; /* what the server drives, for logs */
};

/*
 * The server's check of one descriptor against the geometry: 0, or the
 * -errno to acknowledge it with. The offset must be 4-byte aligned (a
 * device's DMA wants at least that).
 */
static inline int bh_block_check(const struct bh_block_info *info, const struct bh_ps_desc *d)
{
	uint64_t blocks;

	if (d->status)
		return d->status; /* the stream already refused it */
	if (d->op < BH_BLOCK_READ || d->op > BH_BLOCK_TRIM)
		return -EINVAL;
	if (d->op == BH_BLOCK_FLUSH)
		return 0;
	if (!d->length || d->length % info->block_size || d->length > info->max_transfer ||
	    d->offset % 4)
		return -EINVAL;
	if ((d->op == BH_BLOCK_WRITE || d->op == BH_BLOCK_TRIM) && !(info->flags & BH_BLOCK_WRITABLE))
		return -EROFS;
	blocks = d->length / info->block_size;
	if (d->arg >= info->block_count || blocks > info->block_count - d->arg)
		return -ENOSPC;
	return 0;
}

/* the client side: a session to a block server, checked and mapped */
struct bh_block {
	struct bh_session s;
	struct bh_packet_stream *ps; /* we are its source */
	struct bh_block_info info;
	uint64_t size; /* bytes */
};

/*
 * Open a Block session (retrying while the server is not serving, up to
 * timeout_ms, -1: forever), take its setup and check the geometry.
 * 0, or -errno with why set.
 */
int bh_block_open(struct bh_core *core, int timeout_ms, struct bh_block *b, char *why,
		  size_t why_len);
void bh_block_close(struct bh_block *b);

/*
 * Sleep until acknowledgements may be waiting (after arming the stream's
 * wake-up), timeout_ms passes, or extra_fd (if >= 0) is readable.
 * 1: look at the ack ring, 0: timeout, -ECONNRESET: the server hung up.
 */
int bh_block_wait(struct bh_block *b, int extra_fd, int timeout_ms);

#endif
