// SPDX-License-Identifier: MIT
/*
 * block-probe: a Block session client for the VM tests. Checks data
 * integrity through the driver (many requests in flight, transfers that
 * need PRP lists, an unaligned one) and that malformed or out-of-range
 * requests are refused with an error while the driver keeps serving.
 * Prints "block-probe: TEST name PASS|FAIL detail" lines.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulkhead/block.h"

#define QD 32

static struct bh_core core;
static struct bh_block blk;
static int failures;

static void result(const char *name, int ok, const char *detail)
{
	printf("block-probe: TEST %s %s %s\n", name, ok ? "PASS" : "FAIL", detail);
	if (!ok)
		failures++;
}

/* submit n descriptors (tag = index), wait for every ack; statuses in status[] */
static int run(struct bh_ps_desc *d, unsigned int n, int *status)
{
	unsigned int sent = 0, done = 0;

	for (unsigned int i = 0; i < n; i++) {
		d[i].tag = i;
		status[i] = 1;
	}
	while (done < n) {
		struct bh_ps_desc a[QD];
		int got, rc;

		sent += bh_ps_put(blk.ps, d + sent, n - sent);
		bh_ps_flush(blk.ps);
		got = bh_ps_get(blk.ps, a, QD);
		if (got < 0)
			return got;
		for (int i = 0; i < got; i++) {
			if (a[i].tag >= n || status[a[i].tag] != 1)
				return -EPROTO;
			status[a[i].tag] = a[i].status;
			done++;
		}
		if (got)
			continue;
		rc = bh_block_wait(&blk, -1, 5000);
		if (rc <= 0)
			return rc ? rc : -ETIMEDOUT;
	}
	return 0;
}

static void fill(uint8_t *p, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i += 8) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		memcpy(p + i, &seed, len - i < 8 ? len - i : 8);
	}
}

static struct bh_ps_desc slot(uint32_t op, uint64_t block, uint32_t len)
{
	struct bh_ps_desc d;

	if (bh_ps_alloc(blk.ps, blk.info.max_transfer, &d)) {
		fprintf(stderr, "block-probe: out of slots\n");
		exit(1);
	}
	d.op = op;
	d.arg = block;
	d.length = len;
	return d;
}

static void release(struct bh_ps_desc *d, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		d[i].offset -= d[i].offset % blk.info.max_transfer;
		bh_ps_free(blk.ps, &d[i]);
	}
}

/* QD random 4 KiB writes, read back and compared */
static void test_random_io(void)
{
	uint32_t bs = blk.info.block_size, len = 4096 < bs ? bs : 4096;
	uint64_t span = blk.info.block_count - len / bs;
	struct bh_ps_desc d[QD];
	int st[QD], rc, bad = 0;
	uint64_t lba[QD];
	char msg[160];

	for (int i = 0; i < QD; i++) {
		/* distinct blocks: a 4 KiB stride apart */
		lba[i] = ((uint64_t)(i * 2654435761u) % (span / (len / bs))) * (len / bs);
		for (int k = 0; k < i; k++)
			if (lba[k] == lba[i])
				lba[i] = (lba[i] + len / bs * (uint64_t)(i + 1)) % span;
		d[i] = slot(BH_BLOCK_WRITE, lba[i], len);
		fill(bh_ps_data(blk.ps, &d[i]), len, lba[i] + 1);
	}
	rc = run(d, QD, st);
	for (int i = 0; i < QD && !rc; i++)
		bad += st[i] != 0;
	for (int i = 0; i < QD && !rc; i++) {
		d[i].op = BH_BLOCK_READ;
		memset(bh_ps_data(blk.ps, &d[i]), 0, len);
	}
	if (!rc)
		rc = run(d, QD, st);
	for (int i = 0; i < QD && !rc; i++) {
		uint8_t want[65536];
		fill(want, len, lba[i] + 1);
		bad += st[i] != 0 || memcmp(want, bh_ps_data(blk.ps, &d[i]), len) != 0;
	}
	release(d, QD);
	snprintf(msg, sizeof(msg), "%d writes of %u bytes in flight at once, read back: %d bad%s%s",
		 QD, len, bad, rc ? ", " : "", rc ? strerror(-rc) : "");
	result("block_random_io", !rc && !bad, msg);
}

/* the largest transfer, and one that starts inside a page: PRP lists */
static void test_large_io(void)
{
	uint32_t max = blk.info.max_transfer, odd = max / 2;
	struct bh_ps_desc d[2];
	int st[2], rc, bad = 0;
	char msg[160];

	d[0] = slot(BH_BLOCK_WRITE, 0, max);
	d[1] = slot(BH_BLOCK_WRITE, max / blk.info.block_size, odd);
	d[1].offset += 512; /* PRP1 mid-page, then a list */
	fill(bh_ps_data(blk.ps, &d[0]), max, 7);
	fill(bh_ps_data(blk.ps, &d[1]), odd, 8);
	rc = run(d, 2, st);
	bad = !rc && (st[0] || st[1]);
	memset(bh_ps_data(blk.ps, &d[0]), 0, max);
	memset(bh_ps_data(blk.ps, &d[1]), 0, odd);
	d[0].op = d[1].op = BH_BLOCK_READ;
	if (!rc && !bad)
		rc = run(d, 2, st);
	if (!rc && !bad) {
		static uint8_t want[1 << 20];
		fill(want, max, 7);
		bad += st[0] || memcmp(want, bh_ps_data(blk.ps, &d[0]), max);
		fill(want, odd, 8);
		bad += st[1] || memcmp(want, bh_ps_data(blk.ps, &d[1]), odd);
	}
	release(d, 2);
	snprintf(msg, sizeof(msg), "%u KiB, and %u KiB starting 512 bytes into a page: %s",
		 max >> 10, odd >> 10, rc ? strerror(-rc) : bad ? "data differs" : "verified");
	result("block_large_io", !rc && !bad, msg);
}

/* out of range and malformed requests: errors, and the driver keeps serving */
static void test_refusals(void)
{
	uint64_t end = blk.info.block_count;
	uint32_t bs = blk.info.block_size;
	struct bh_ps_desc d[7];
	int st[7], rc, ok;
	uint64_t held;
	char msg[240];

	d[0] = slot(BH_BLOCK_READ, end, bs);	   /* just past the end */
	d[1] = slot(BH_BLOCK_READ, end - 1, 2 * bs); /* straddles the end */
	d[2] = slot(BH_BLOCK_READ, UINT64_MAX - 1, 2 * bs); /* wraps */
	d[3] = slot(BH_BLOCK_READ, 0, bs / 2);	   /* not a whole block */
	d[4] = slot(77, 0, bs);			   /* no such op */
	d[5] = slot(BH_BLOCK_READ, 0, bs);
	held = d[5].offset;
	d[5].offset = blk.ps->bulk_size; /* outside the bulk buffer */
	d[6] = slot(BH_BLOCK_READ, end - 1, bs); /* the last block: fine */
	rc = run(d, 7, st);
	d[5].offset = held;
	ok = !rc && st[0] == -ENOSPC && st[1] == -ENOSPC && st[2] == -ENOSPC && st[3] == -EINVAL &&
	     st[4] == -EINVAL && st[5] == -EINVAL && st[6] == 0;
	snprintf(msg, sizeof(msg), "past end %d, straddling %d, wrapping %d, half block %d, bad op "
				   "%d, outside bulk %d, last block %d%s%s",
		 st[0], st[1], st[2], st[3], st[4], st[5], st[6], rc ? ": " : "",
		 rc ? strerror(-rc) : "");
	result("block_refusals", ok, msg);
	release(d, 7);
}

static void test_flush_trim(void)
{
	struct bh_ps_desc d[2];
	int st[2] = { 0, 0 }, rc, n = 1;
	char msg[160];

	d[0] = slot(BH_BLOCK_FLUSH, 0, 0);
	if (blk.info.flags & BH_BLOCK_CAN_TRIM) {
		d[1] = slot(BH_BLOCK_TRIM, blk.info.block_count - 64, 64 * blk.info.block_size);
		n = 2;
	}
	rc = run(d, (unsigned int)n, st);
	release(d, (unsigned int)n);
	snprintf(msg, sizeof(msg), "flush %d, trim %s", st[0],
		 n == 2 ? (st[1] ? strerror(-st[1]) : "0") : "not offered");
	result("block_flush_trim", !rc && !st[0] && (n == 1 || !st[1]), msg);
}

int main(void)
{
	char why[200];
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (bh_core_open(&core) < 0) {
		fprintf(stderr, "block-probe: %s\n", bh_error(&core));
		return 1;
	}
	rc = bh_block_open(&core, 30000, &blk, why, sizeof(why));
	if (rc) {
		fprintf(stderr, "block-probe: %s\n", why);
		return 1;
	}
	snprintf(why, sizeof(why), "%s: %llu blocks of %u bytes, max transfer %u KiB, depth %u",
		 blk.info.model, (unsigned long long)blk.info.block_count, blk.info.block_size,
		 blk.info.max_transfer >> 10, blk.info.queue_depth);
	result("block_geometry", blk.info.block_count > 0, why);
	test_random_io();
	test_large_io();
	test_refusals();
	test_flush_trim();
	test_random_io(); /* still serving after the refusals */
	printf("block-probe: %s (%d failed)\n", failures ? "FAILED" : "all tests passed", failures);
	bh_block_close(&blk);
	return failures ? 1 : 0;
}
