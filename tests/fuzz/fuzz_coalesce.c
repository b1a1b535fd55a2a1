// SPDX-License-Identifier: MIT
/*
 * libFuzzer: receive coalescing fed frames a hostile driver made up. Each
 * frame sits in a buffer of exactly its length (ASan sees any overread);
 * everything written must be readable to its last byte and no larger than
 * a packet Linux takes (64 KiB of IP, Ethernet and virtio_net_hdr). The
 * same frames go through transmit appending, which must stay within its
 * limit.
 *
 * Input: records of [flags][length high][length low][bytes]; flags bit 0:
 * the NIC checked the checksum; bit 1: the batch ends after this frame;
 * bit 2: append the frame to the transmit frame (else it becomes it).
 */
#include <stdlib.h>
#include <string.h>

#include "bulkhead/coalesce.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BATCH 64

static volatile uint8_t sink;

static bool emit(void *ctx, const struct iovec *iov, int n)
{
	size_t total = 0;

	(void) ctx;
	if (n < 2 || iov[0].iov_len != sizeof(struct virtio_net_hdr))
		abort();
	for (int i = 0; i < n; i++) {
		const uint8_t *p = iov[i].iov_base;
		for (size_t k = 0; k < iov[i].iov_len; k++)
			sink ^= p[k];
		total += iov[i].iov_len;
	}
	if (total > sizeof(struct virtio_net_hdr) + 14 + 65535 + 4)
		abort();
	return true;
}

/* transmit: the frame before, and what was appended to it */
static uint8_t tx[70000];
static uint32_t tx_len;

static void tx_add(const uint8_t *f, uint32_t len, bool append)
{
	uint32_t max = len % 2 ? sizeof(tx) : 65554; /* the slot, or the NIC's limit */

	if (append) {
		if (bh_coalesce_tx_append(tx, &tx_len, f, len, max) && tx_len > max)
			abort();
	} else if (len <= sizeof(tx)) {
		memcpy(tx, f, len);
		tx_len = len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct bh_coalesce c;
	uint8_t *held[BATCH];
	unsigned int n = 0;

	bh_coalesce_init(&c, emit, NULL);
	tx_len = 0;
	while (size >= 3) {
		uint8_t flags = data[0];
		size_t len = (size_t) data[1] << 8 | data[2];
		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		uint8_t *f = malloc(len ? len : 1);
		if (!f)
			abort();
		memcpy(f, data, len);
		data += len;
		size -= len;
		held[n++] = f;
		tx_add(f, (uint32_t) len, flags & 4);
		bh_coalesce_add(&c, f, (uint32_t) len, flags & 1);
		if ((flags & 2) || n == BATCH) {
			bh_coalesce_flush(&c);
			while (n)
				free(held[--n]);
		}
	}
	bh_coalesce_flush_all(&c);
	while (n)
		free(held[--n]);
	return 0;
}
