// SPDX-License-Identifier: MIT
/*
 * libFuzzer: receive coalescing fed frames a hostile driver made up. Each
 * frame sits in a buffer of exactly its length (ASan sees any overread);
 * everything written must be readable to its last byte and no larger than
 * a packet Linux takes (64 KiB of IP, Ethernet and virtio_net_hdr).
 *
 * Input: records of [flags][length high][length low][bytes]; flags bit 0:
 * the NIC checked the checksum; bit 1: the batch ends after this frame.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct bh_coalesce c;
	uint8_t *held[BATCH];
	unsigned int n = 0;

	bh_coalesce_init(&c, emit, NULL);
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
