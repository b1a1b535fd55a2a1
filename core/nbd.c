// SPDX-License-Identifier: MIT
/* /dev/nbdN endpoints. */
#include <errno.h>
#include <stdio.h>

#include "nbd.h"

int bh_nbd_connect(int index, uint64_t size, uint32_t block_size, int sock, char *err,
		   size_t err_len)
{
	(void)size;
	(void)block_size;
	(void)sock;
	snprintf(err, err_len, "/dev/nbd%d: NBD endpoints are not implemented yet", index);
	return -ENOTSUP;
}
