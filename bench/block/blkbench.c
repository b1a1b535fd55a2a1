// SPDX-License-Identifier: MIT
/*
 * blkbench: the direct client. Drives a Block session with no kernel in
 * the way: 4 KiB random reads and writes at queue depth 1 and 32, and
 * 128 KiB sequential reads and writes, each for a few seconds. Prints
 * "blkbench: RESULT direct-<job> iops=N mbps=N lat_us=N" lines.
 *
 * usage: bulkhead-blkbench [SECONDS [SPAN_MIB]]   (run by core as a component)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <x86intrin.h>

#include "bulkhead/block.h"
#include "bulkhead/spin.h"

static struct bh_spin window;

/*
 * Before sleeping, look at the ack ring for up to SPIN_US microseconds
 * (BULKHEAD_BLKBENCH_SPIN_US sets it; timed by the TSC, bulkhead/spin.h);
 * no clock is read per request: under TCG the guest's
 * clocksource is the HPET, so each read is a system call and an emulated
 * register read under QEMU's big lock, which the NVMe model needs as well.
 */
#define SPIN_US 400

/* per-request times by the TSC, for the same reason; the job's length by the clock */
static double tsc_per_us;

struct job {
	const char *name;
	uint32_t op;
	uint32_t size;
	unsigned int qd;
	int random;
};

static const struct job jobs[] = {
	{ "randread-4k-qd1", BH_BLOCK_READ, 4096, 1, 1 },
	{ "randread-4k-qd32", BH_BLOCK_READ, 4096, 32, 1 },
	{ "randwrite-4k-qd1", BH_BLOCK_WRITE, 4096, 1, 1 },
	{ "randwrite-4k-qd32", BH_BLOCK_WRITE, 4096, 32, 1 },
	{ "seqread-128k-qd8", BH_BLOCK_READ, 128 << 10, 8, 0 },
	{ "seqwrite-128k-qd8", BH_BLOCK_WRITE, 128 << 10, 8, 0 },
};

static uint64_t rng = 88172645463325252ull;

static uint64_t next_random(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int run(struct bh_block *b, const struct job *j, double seconds, uint64_t span)
{
	uint64_t per = j->size / b->info.block_size, units = span / j->size, seq = 0;
	uint64_t start_ns = bh_now_ns(), start = __rdtsc(), done = 0;
	uint64_t end = start + (uint64_t)(seconds * 1e6 * tsc_per_us);
	uint64_t lat_sum = 0, sent_at[256], now = start;
	unsigned int inflight = 0;
	int errors = 0;

	if (j->size > b->info.max_transfer || j->qd > b->ps->nslots || !units)
		return -EINVAL;
	while (inflight || now < end) {
		struct bh_ps_desc d[32];
		int got, rc;

		while (inflight < j->qd && now < end) {
			struct bh_ps_desc q;
			uint64_t unit = j->random ? next_random() % units : seq++ % units;
			if (bh_ps_alloc(b->ps, j->size, &q))
				break;
			q.op = j->op;
			q.arg = unit * per;
			q.tag = (uint32_t)(q.offset / b->ps->slot_size);
			sent_at[q.tag % 256] = now;
			bh_ps_put(b->ps, &q, 1);
			inflight++;
		}
		bh_ps_flush(b->ps);
		/* latency is what we measure: poll a little before sleeping */
		bh_spin_begin(&window);
		while (!(got = bh_ps_get(b->ps, d, 32)) && bh_spin_more(&window))
			;
		if (got < 0)
			return got;
		if (got)
			now = __rdtsc();
		for (int i = 0; i < got; i++) {
			lat_sum += now - sent_at[d[i].tag % 256];
			errors += d[i].status != 0;
			bh_ps_free(b->ps, &d[i]);
			inflight--;
			done++;
		}
		if (got)
			continue;
		rc = bh_block_wait(b, -1, 5000);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return -ETIMEDOUT;
		now = __rdtsc();
	}
	double secs = (double)(bh_now_ns() - start_ns) / 1e9;
	printf("blkbench: RESULT direct-%s iops=%.0f mbps=%.1f lat_us=%.0f errors=%d\n", j->name,
	       done / secs, done * (double)j->size / secs / 1e6,
	       done ? (double)lat_sum / done / tsc_per_us : 0.0, errors);
	return errors ? -EIO : 0;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 5;
	uint64_t span = (argc > 2 ? strtoull(argv[2], NULL, 10) : 128) << 20;
	struct bh_core core;
	struct bh_block b;
	char why[200];
	int rc, failed = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (bh_spin_init(&window, "BULKHEAD_BLKBENCH_SPIN_US", SPIN_US))
		return 1;
	tsc_per_us = bh_tsc_per_us();
	if (bh_core_open(&core) < 0) {
		fprintf(stderr, "blkbench: %s\n", bh_error(&core));
		return 1;
	}
	rc = bh_block_open(&core, 30000, &b, why, sizeof(why));
	if (rc) {
		fprintf(stderr, "blkbench: %s\n", why);
		return 1;
	}
	if (span > b.size)
		span = b.size;
	printf("blkbench: %s, %llu MiB, %u-byte blocks; %g s per job over %llu MiB; polls %u us "
	       "before sleeping\n",
	       b.info.model, (unsigned long long)(b.size >> 20), b.info.block_size, seconds,
	       (unsigned long long)(span >> 20), window.us);
	for (size_t i = 0; i < sizeof(jobs) / sizeof(jobs[0]); i++) {
		rc = run(&b, &jobs[i], seconds, span);
		if (rc) {
			printf("blkbench: %s failed: %s\n", jobs[i].name, strerror(-rc));
			failed++;
		}
	}
	printf("blkbench: done (%d failed)\n", failed);
	bh_block_close(&b);
	return failed ? 1 : 0;
}
