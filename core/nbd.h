/* SPDX-License-Identifier: MIT */
/* /dev/nbdN as a host endpoint for the block-nbd bridge. */
#ifndef BH_CORE_NBD_H
#define BH_CORE_NBD_H

#include <stddef.h>
#include <stdint.h>

/*
 * Connect /dev/nbd<index> to sock (one end of a stream socket pair; the
 * bridge serves the NBD transmission protocol on the other end), with the
 * export's size and block size. 0 or -errno with err set.
 */
int bh_nbd_connect(int index, uint64_t size, uint32_t block_size, int sock, char *err,
		   size_t err_len);

/* let /dev/nbd<index> go: core is stopping, and nobody will serve it */
void bh_nbd_disconnect(int index);

#endif
