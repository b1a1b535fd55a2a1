// SPDX-License-Identifier: MIT
/*
 * libFuzzer: a packet-stream sink and source reading a region a hostile
 * peer filled with the fuzz input. Nothing they return may point outside
 * the bulk buffer, and no call may loop or crash.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bulkhead/packet_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP 64
#define BULK (64 * 2048)

static void check(const struct bh_packet_stream *ps, const struct bh_ps_desc *d, int n)
{
	for (int i = 0; i < n; i++)
		if (d[i].offset > ps->bulk_size || d[i].length > ps->bulk_size - d[i].offset)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *region;
	static size_t rsize;
	static int efd[2] = { -1, -1 };
	struct bh_packet_stream sink, source;
	struct bh_ps_desc d[CAP];

	if (!region) {
		rsize = bh_ps_region_size(CAP, BULK);
		region = aligned_alloc(4096, rsize);
		efd[0] = eventfd(0, EFD_NONBLOCK);
		efd[1] = eventfd(0, EFD_NONBLOCK);
	}
	/* source: allocates, then reads acks the peer wrote */
	if (bh_ps_attach(&source, BH_PS_SOURCE, region, rsize, CAP, BULK, 2048, efd[0], efd[1]))
		abort();
	for (int i = 0; i < 8; i++) {
		struct bh_ps_desc a;
		if (bh_ps_alloc(&source, 100, &a) == 0)
			bh_ps_put(&source, &a, 1);
	}
	memcpy(region, data, size < rsize ? size : rsize);
	for (int round = 0; round < 4; round++) {
		int n = bh_ps_get(&source, d, CAP);
		if (n > 0) {
			check(&source, d, n);
			for (int i = 0; i < n; i++)
				bh_ps_free(&source, &d[i]);
		}
		bh_ps_space(&source);
	}
	bh_ps_detach(&source);

	/* sink: reads submissions the peer wrote */
	memcpy(region, data, size < rsize ? size : rsize);
	if (bh_ps_attach(&sink, BH_PS_SINK, region, rsize, CAP, BULK, 0, efd[0], efd[1]))
		abort();
	for (int round = 0; round < 4; round++) {
		int n = bh_ps_get(&sink, d, CAP);
		if (n > 0) {
			check(&sink, d, n);
			bh_ps_put(&sink, d, (unsigned int)n);
			bh_ps_flush(&sink);
		}
		bh_ps_prepare_wait(&sink);
	}
	bh_ps_detach(&sink);
	return 0;
}
