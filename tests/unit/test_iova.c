// SPDX-License-Identifier: MIT
/* IOVA placement (first fit) and DMA buffer memory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dma.h"

#define K4 0x1000ull
#define M1 (1ull << 20)
#define M2 (2ull << 20)
/* what vfio.c gives a domain */
#define LO M1
#define HI 0xfee00000ull

static struct bh_dma_buf at(uint64_t iova, uint64_t size)
{
	struct bh_dma_buf b;

	memset(&b, 0, sizeof(b));
	b.memfd = -1;
	b.iova = iova;
	b.size = size;
	return b;
}

/* bh_iova_alloc that must succeed; returns the iova */
static uint64_t place(const struct bh_dma_buf *bufs, int n, uint64_t lo, uint64_t hi,
		      uint64_t size, uint64_t align)
{
	uint64_t iova = 0xdeadbeef;

	assert_int_equal(bh_iova_alloc(bufs, n, lo, hi, size, align, &iova), 0);
	/* whatever it returns is aligned, inside [lo, hi) and free */
	assert_int_equal(iova & (align - 1), 0);
	assert_true(iova >= lo);
	assert_true(iova + size > iova);
	assert_true(iova + size <= hi);
	for (int i = 0; i < n; i++)
		assert_true(iova + size <= bufs[i].iova || bufs[i].iova + bufs[i].size <= iova);
	return iova;
}

static void test_first_fit_empty(void **state)
{
	(void)state;
	assert_int_equal(place(NULL, 0, LO, HI, K4, K4), LO);
	assert_int_equal(place(NULL, 0, 0, HI, K4, K4), 0);
	/* the whole window */
	assert_int_equal(place(NULL, 0, LO, HI, HI - LO, K4), LO);
}

static void test_alignment(void **state)
{
	(void)state;
	/* lo itself is rounded up */
	assert_int_equal(place(NULL, 0, LO + 1, HI, K4, K4), LO + K4);
	assert_int_equal(place(NULL, 0, LO, HI, M2, M2), M2);
	assert_int_equal(place(NULL, 0, 0x1234, HI, 16, 1), 0x1234);
	assert_int_equal(place(NULL, 0, 0x1234, HI, 16, 64), 0x1240);

	/* after a buffer, the next fit is aligned too */
	struct bh_dma_buf b[] = { at(M2, K4) };
	assert_int_equal(place(b, 1, M2, HI, M2, M2), 2 * M2);
	assert_int_equal(place(b, 1, M2, HI, K4, K4), M2 + K4);
}

static void test_skips_buffers(void **state)
{
	(void)state;
	/* unsorted, as a component allocates and frees */
	struct bh_dma_buf b[] = {
		at(LO + 3 * K4, K4), /* [3, 4) */
		at(LO, K4),	     /* [0, 1) */
		at(LO + K4, K4),     /* [1, 2) */
		at(LO + 6 * K4, 2 * K4), /* [6, 8) */
	};
	int n = sizeof(b) / sizeof(b[0]);

	/* the first hole that fits: [2, 3) for one page */
	assert_int_equal(place(b, n, LO, HI, K4, K4), LO + 2 * K4);
	/* two pages only fit at [4, 6) */
	assert_int_equal(place(b, n, LO, HI, 2 * K4, K4), LO + 4 * K4);
	/* three pages only after everything */
	assert_int_equal(place(b, n, LO, HI, 3 * K4, K4), LO + 8 * K4);
	/* a candidate inside a buffer moves to its end */
	assert_int_equal(place(b, n, LO + K4 / 2, HI, K4, K4), LO + 2 * K4);
	/* a buffer that covers lo entirely */
	struct bh_dma_buf big[] = { at(0, 16 * M1) };
	assert_int_equal(place(big, 1, LO, HI, K4, K4), 16 * M1);
}

static void test_respects_limit(void **state)
{
	const uint64_t hi = 1ull << 28; /* a device with 28 address bits */
	struct bh_dma_buf b[] = { at(LO, hi - LO - 2 * K4) };
	uint64_t iova = 0;

	(void)state;
	/* exactly two pages left below the limit */
	assert_int_equal(place(b, 1, LO, hi, 2 * K4, K4), hi - 2 * K4);
	assert_int_equal(bh_iova_alloc(b, 1, LO, hi, 3 * K4, K4, &iova), -ENOSPC);
	/* the same with 2M alignment cannot fit */
	assert_int_equal(bh_iova_alloc(b, 1, LO, hi, K4, M2, &iova), -ENOSPC);
	/* nothing larger than the window */
	assert_int_equal(bh_iova_alloc(NULL, 0, LO, hi, hi - LO + K4, K4, &iova), -ENOSPC);
	/* an empty or inverted window */
	assert_int_equal(bh_iova_alloc(NULL, 0, LO, LO, K4, K4, &iova), -ENOSPC);
	assert_int_equal(bh_iova_alloc(NULL, 0, hi, LO, K4, K4, &iova), -ENOSPC);
	/* lo rounds up past hi */
	assert_int_equal(bh_iova_alloc(NULL, 0, hi - 1, hi + K4 / 2, K4, K4, &iova), -ENOSPC);
}

static void test_full(void **state)
{
	struct bh_dma_buf b[8];
	uint64_t iova = 0;

	(void)state;
	/* fill [LO, LO + 8 pages) one page at a time */
	for (int i = 0; i < 8; i++) {
		uint64_t got = place(b, i, LO, LO + 8 * K4, K4, K4);
		assert_int_equal(got, LO + (uint64_t)i * K4);
		b[i] = at(got, K4);
	}
	assert_int_equal(bh_iova_alloc(b, 8, LO, LO + 8 * K4, K4, K4, &iova), -ENOSPC);
	/* free one in the middle: it is reused */
	b[3] = b[7];
	assert_int_equal(place(b, 7, LO, LO + 8 * K4, K4, K4), LO + 3 * K4);
}

static void test_bad_arguments(void **state)
{
	uint64_t iova = 0x5555;

	(void)state;
	assert_int_equal(bh_iova_alloc(NULL, 0, LO, HI, K4, 0x3000, &iova), -EINVAL);
	assert_int_equal(bh_iova_alloc(NULL, 0, LO, HI, K4, 3, &iova), -EINVAL);
	assert_int_equal(bh_iova_alloc(NULL, 0, LO, HI, K4, 0, &iova), -EINVAL);
	assert_int_equal(bh_iova_alloc(NULL, 0, LO, HI, 0, K4, &iova), -EINVAL);
	assert_int_equal(iova, 0x5555);
}

static void test_overflow(void **state)
{
	uint64_t iova = 0;

	(void)state;
	/* rounding lo up wraps to 0 */
	assert_int_equal(bh_iova_alloc(NULL, 0, UINT64_MAX - 10, UINT64_MAX, 1, K4, &iova),
			 -ENOSPC);
	/* lo rounds up to the last page, where cand + size wraps */
	assert_int_equal(
		bh_iova_alloc(NULL, 0, UINT64_MAX - K4 * 2 + 2, UINT64_MAX, K4, K4, &iova),
		-ENOSPC);
	assert_int_equal(bh_iova_alloc(NULL, 0, UINT64_MAX - K4 + 1, UINT64_MAX, K4, K4, &iova),
			 -ENOSPC);
	assert_int_equal(bh_iova_alloc(NULL, 0, LO, UINT64_MAX, UINT64_MAX, K4, &iova),
			 -ENOSPC);
	/* but all of the last page except its last byte (hi is exclusive) fits */
	assert_int_equal(place(NULL, 0, UINT64_MAX - 2 * K4 + 2, UINT64_MAX, K4 - 1, K4),
			 UINT64_MAX - K4 + 1);
	/* moving past a buffer at the top wraps */
	struct bh_dma_buf b[] = { at(UINT64_MAX - 2 * M2 + 1, M2) };
	assert_int_equal(bh_iova_alloc(b, 1, UINT64_MAX - 2 * M2 + 1, UINT64_MAX, K4, 2 * M2,
				       &iova),
			 -ENOSPC);
	/* size as large as the whole space */
	assert_int_equal(place(NULL, 0, 0, UINT64_MAX, UINT64_MAX, 1), 0);
}

static void test_dma_buf_small(void **state)
{
	long page = sysconf(_SC_PAGESIZE);
	struct bh_dma_buf buf;
	struct stat st;
	uint8_t *p, back[8];
	int fd;

	(void)state;
	assert_int_equal(bh_dma_buf_create(100, false, &buf), 0);
	assert_true(buf.memfd >= 0);
	assert_non_null(buf.vaddr);
	assert_false(buf.huge);
	assert_int_equal(buf.size, page);
	assert_int_equal(buf.iova, 0);
	assert_int_equal(fstat(buf.memfd, &st), 0);
	assert_int_equal(st.st_size, page);
	assert_true(fcntl(buf.memfd, F_GETFD) & FD_CLOEXEC);
	p = buf.vaddr;
	for (long i = 0; i < page; i++)
		if (p[i])
			fail_msg("byte %ld of a fresh DMA buffer is 0x%02x", i, p[i]);
	/* core's mapping and the memfd a component maps are the same memory */
	memcpy(p + 64, "bulkhead", 8);
	assert_int_equal(pread(buf.memfd, back, 8, 64), 8);
	assert_memory_equal(back, "bulkhead", 8);

	fd = buf.memfd;
	bh_dma_buf_destroy(&buf);
	assert_int_equal(buf.memfd, -1);
	assert_null(buf.vaddr);
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	/* destroying twice is harmless */
	bh_dma_buf_destroy(&buf);
}

static void test_dma_buf_sizes(void **state)
{
	long page = sysconf(_SC_PAGESIZE);
	struct bh_dma_buf buf;

	(void)state;
	assert_int_equal(bh_dma_buf_create((uint64_t)page, false, &buf), 0);
	assert_int_equal(buf.size, page);
	bh_dma_buf_destroy(&buf);
	assert_int_equal(bh_dma_buf_create((uint64_t)page + 1, false, &buf), 0);
	assert_int_equal(buf.size, 2 * page);
	bh_dma_buf_destroy(&buf);
	/* one page is always contiguous: no huge page needed */
	assert_int_equal(bh_dma_buf_create(1, true, &buf), 0);
	assert_false(buf.huge);
	assert_int_equal(buf.size, page);
	bh_dma_buf_destroy(&buf);

	assert_int_equal(bh_dma_buf_create(0, false, &buf), -EINVAL);
	assert_int_equal(buf.memfd, -1);
	assert_null(buf.vaddr);
	bh_dma_buf_destroy(&buf);
	/* sizes whose rounding wraps fail cleanly instead of mapping a tiny buffer */
	assert_int_not_equal(bh_dma_buf_create(UINT64_MAX, false, &buf), 0);
	assert_int_equal(buf.memfd, -1);
	assert_null(buf.vaddr);
	assert_int_not_equal(bh_dma_buf_create(UINT64_MAX - 3 * (uint64_t)page, false, &buf), 0);
	assert_int_equal(buf.memfd, -1);
	assert_null(buf.vaddr);
}

/* a stand-in for the kernel's hugepages-2048kB directory: plain files */
static void pool_file(const char *dir, const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static unsigned long pool_count(const char *dir, const char *name)
{
	char path[256];
	unsigned long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%lu", &v), 1);
	fclose(f);
	return v;
}

static void test_hugepages_reserve(void **state)
{
	char dir[] = "/tmp/test-hugepages.XXXXXX";
	unsigned int added = 99;

	(void)state;
	assert_non_null(mkdtemp(dir));
	/* enough free already: the pool stays as it is */
	pool_file(dir, "nr_hugepages", "10\n");
	pool_file(dir, "free_hugepages", "8\n");
	assert_int_equal(bh_hugepages_reserve(dir, 8, &added), 8);
	assert_int_equal(added, 0);
	assert_int_equal(pool_count(dir, "nr_hugepages"), 10);
	/* 6 missing: the pool grows by 6 (a plain file "gets" them all; free reads back 2) */
	pool_file(dir, "free_hugepages", "2\n");
	assert_int_equal(bh_hugepages_reserve(dir, 8, &added), 2);
	assert_int_equal(added, 6);
	assert_int_equal(pool_count(dir, "nr_hugepages"), 16);
	/* and shrinks by as much again */
	bh_hugepages_release(dir, added);
	assert_int_equal(pool_count(dir, "nr_hugepages"), 10);
	bh_hugepages_release(dir, 0);
	assert_int_equal(pool_count(dir, "nr_hugepages"), 10);
	/* nonsense where a count belongs is an error, not a guess */
	pool_file(dir, "free_hugepages", "many\n");
	assert_int_equal(bh_hugepages_reserve(dir, 8, &added), -EIO);
	assert_int_equal(added, 0);
	char path[300];
	snprintf(path, sizeof(path), "%s/nr_hugepages", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/free_hugepages", dir);
	unlink(path);
	/* no such pool (a kernel without huge pages) */
	assert_int_equal(bh_hugepages_reserve(dir, 8, &added), -ENOENT);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_fit_empty), cmocka_unit_test(test_alignment),
		cmocka_unit_test(test_skips_buffers),	cmocka_unit_test(test_respects_limit),
		cmocka_unit_test(test_full),		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_overflow),	cmocka_unit_test(test_dma_buf_small),
		cmocka_unit_test(test_dma_buf_sizes),	cmocka_unit_test(test_hugepages_reserve),
	};

	return cmocka_run_group_tests_name("iova", tests, NULL, NULL);
}
