// SPDX-License-Identifier: MIT
/*
 * The baseline: DPDK's rte_ring, single producer and single consumer, in
 * shared memory. Buffers are mbuf-like: a 64-byte header with the data
 * length, then the data room; the rings carry 8-byte buffer indexes, one
 * ring to the consumer and one back (DPDK's mempool would be a third ring
 * the consumer puts buffers back on: the same cost).
 *
 * No EAL: rte_ring_init works on memory we provide, and the enqueue and
 * dequeue paths are inline code that touches nothing but the ring.
 */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "harness.h"

struct mbuf_like {
	_Alignas(64) uint32_t data_len;
	uint32_t pad[15];
	uint8_t data[BENCH_SLOT_SIZE];
};

struct rr_pair {
	struct rte_ring *tx;	  /* producer -> consumer */
	struct rte_ring *ret;	  /* consumer -> producer: free buffers */
	struct mbuf_like *pool;	  /* BENCH_SLOTS buffers */
};

static uint8_t pattern[BENCH_SLOT_SIZE];

static int rr_producer(void *arg, const struct bench_case *c)
{
	struct rr_pair *rp = arg;
	uint64_t idx[64], free_idx[BENCH_SLOTS];
	unsigned int nfree = 0;
	uint64_t sent = 0;

	while (sent < c->n) {
		unsigned int k = 0;

		nfree += rte_ring_sc_dequeue_burst_elem(rp->ret, free_idx + nfree, sizeof(uint64_t),
							BENCH_SLOTS - nfree, NULL);
		while (k < c->batch && sent + k < c->n && nfree) {
			struct mbuf_like *m = &rp->pool[free_idx[--nfree]];
			idx[k] = (uint64_t)(m - rp->pool);
			m->data_len = c->size;
			bench_fill(m->data, pattern, c->size, sent + k);
			k++;
		}
		if (!k)
			continue;
		if (rte_ring_sp_enqueue_burst_elem(rp->tx, idx, sizeof(uint64_t), k, NULL) != k)
			return 4;
		sent += k;
	}
	return 0;
}

static int rr_consumer(void *arg, const struct bench_case *c)
{
	struct rr_pair *rp = arg;
	uint8_t copy[BENCH_SLOT_SIZE];
	uint64_t idx[64], seq = 0;

	while (seq < c->n) {
		unsigned int got = rte_ring_sc_dequeue_burst_elem(rp->tx, idx, sizeof(uint64_t),
								  c->batch, NULL);
		for (unsigned int i = 0; i < got; i++) {
			struct mbuf_like *m = &rp->pool[idx[i] % BENCH_SLOTS];
			if (m->data_len != c->size || bench_check(copy, m->data, c->size, seq++))
				return 5;
		}
		if (got && rte_ring_sp_enqueue_burst_elem(rp->ret, idx, sizeof(uint64_t), got,
							  NULL) != got)
			return 4;
	}
	return 0;
}

double baseline_run(const struct bench_case *c)
{
	/* 512 entries (511 usable) hold every buffer: enqueues never fall short */
	ssize_t rsize = rte_ring_get_memsize_elem(sizeof(uint64_t), BENCH_SLOTS * 2);
	size_t total = 2 * (size_t)rsize + BENCH_SLOTS * sizeof(struct mbuf_like);
	struct rr_pair rp;
	uint8_t *mem;
	double pps = -1;

	if (rsize < 0 || !(mem = bench_shared_alloc(total)))
		return -1;
	for (unsigned int i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)i;
	rp.tx = (struct rte_ring *)mem;
	rp.ret = (struct rte_ring *)(mem + rsize);
	rp.pool = (struct mbuf_like *)(mem + 2 * rsize);
	if (!rte_ring_init(rp.tx, "bench-tx", BENCH_SLOTS * 2, RING_F_SP_ENQ | RING_F_SC_DEQ) &&
	    !rte_ring_init(rp.ret, "bench-ret", BENCH_SLOTS * 2, RING_F_SP_ENQ | RING_F_SC_DEQ)) {
		uint64_t all[BENCH_SLOTS];
		for (unsigned int i = 0; i < BENCH_SLOTS; i++)
			all[i] = i;
		if (rte_ring_sp_enqueue_bulk_elem(rp.ret, all, sizeof(uint64_t), BENCH_SLOTS,
						  NULL) == BENCH_SLOTS)
			pps = bench_run(rr_producer, rr_consumer, &rp, c);
	}
	munmap(mem, total);
	return pps;
}

const char *baseline_name(void)
{
	return "rte_ring";
}
