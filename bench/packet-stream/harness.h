/* SPDX-License-Identifier: MIT */
/*
 * Two processes, one core each: the child produces, the parent consumes
 * and times the run. Shared by the packet-stream side and the baseline.
 */
#ifndef BENCH_PS_HARNESS_H
#define BENCH_PS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_SLOTS 256	    /* buffers in flight, both sides */
#define BENCH_SLOT_SIZE 2048 /* room for a 1500-byte frame */

struct bench_case {
	uint32_t size;	/* payload bytes, copied in and out */
	uint32_t batch; /* at most this many per put/get */
	uint64_t n;	/* packets in the run */
	bool sleep;	/* sleep on eventfds when idle instead of spinning */
};

/* one side of a run: 0 or a nonzero code saying what went wrong */
typedef int (*bench_side)(void *arg, const struct bench_case *c);

/*
 * Runs producer in a child on one core and consumer here on the other;
 * returns packets per second from the start barrier to the consumer's
 * last packet, or a negative value on failure.
 */
double bench_run(bench_side producer, bench_side consumer, void *arg, const struct bench_case *c);

/* the payload: sequence number first, a pattern behind it */
void bench_fill(uint8_t *dst, const uint8_t *pattern, uint32_t size, uint64_t seq);
/* copies the payload out and checks its sequence number: 0 or -1 */
int bench_check(uint8_t *copy, const uint8_t *src, uint32_t size, uint64_t seq);

/* shared memory both processes see: MAP_SHARED anonymous, made before the fork */
void *bench_shared_alloc(size_t size);

/* the rte_ring baseline; < 0 when built without DPDK */
double baseline_run(const struct bench_case *c);
const char *baseline_name(void);

#endif
