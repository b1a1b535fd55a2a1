// SPDX-License-Identifier: MIT
/*
 * Packet streams: a source and a sink over one memfd region mapped twice
 * (as two processes would), two eventfds, and a hostile peer that scribbles
 * on the shared memory. The last case forks and moves a million packets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/membarrier.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bulkhead/packet_stream.h"
#include "testutil.h"

/* the shared layout of one ring, as lib/packet_stream.c defines it */
struct shared_ring {
	_Alignas(64) uint32_t head;
	_Alignas(64) uint32_t tail;
	_Alignas(64) uint32_t waiting;
	uint32_t heavy;
	_Alignas(64) struct bh_ps_desc desc[];
};
_Static_assert(offsetof(struct shared_ring, tail) == BH_PS_RING_TAIL, "layout");
_Static_assert(offsetof(struct shared_ring, desc) == BH_PS_RING_DESC, "layout");
_Static_assert(sizeof(struct bh_ps_desc) == 32, "descriptor is 32 bytes");

#define CAP 64
#define BULK (64 * 2048)
#define SLOT 2048 /* 64 slots: as many as ring entries */

struct fx {
	uint32_t capacity;
	uint64_t bulk;
	uint32_t slot;
	size_t size;
	int memfd;
	void *src_map, *snk_map; /* the same pages, mapped twice */
	int submit_efd, ack_efd;
	struct bh_packet_stream src, snk;
	int fds_before;
};

static size_t ring_bytes(uint32_t capacity)
{
	return (BH_PS_RING_DESC + (size_t)capacity * 32 + 4095) & ~(size_t)4095;
}

/* the rings as the peer sees them: through the other mapping */
static struct shared_ring *submit_of(struct fx *f)
{
	return f->snk_map;
}

static struct shared_ring *ack_of(struct fx *f)
{
	return (struct shared_ring *)((uint8_t *)f->snk_map + ring_bytes(f->capacity));
}

static int fx_open(struct fx *f, uint32_t capacity, uint64_t bulk, uint32_t slot)
{
	memset(f, 0, sizeof(*f));
	f->fds_before = test_count_fds();
	f->capacity = capacity;
	f->bulk = bulk;
	f->slot = slot;
	f->size = bh_ps_region_size(capacity, bulk);
	f->memfd = memfd_create("bh-unit-ps", MFD_CLOEXEC);
	if (f->memfd < 0 || ftruncate(f->memfd, (off_t)f->size) < 0)
		return -1;
	f->src_map = mmap(NULL, f->size, PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);
	f->snk_map = mmap(NULL, f->size, PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);
	if (f->src_map == MAP_FAILED || f->snk_map == MAP_FAILED)
		return -1;
	f->submit_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	f->ack_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->submit_efd < 0 || f->ack_efd < 0)
		return -1;
	return 0;
}

static int fx_attach(struct fx *f)
{
	int rc = bh_ps_attach(&f->src, BH_PS_SOURCE, f->src_map, f->size, f->capacity, f->bulk,
			      f->slot, f->submit_efd, f->ack_efd);

	if (rc)
		return rc;
	return bh_ps_attach(&f->snk, BH_PS_SINK, f->snk_map, f->size, f->capacity, f->bulk, 0,
			    f->submit_efd, f->ack_efd);
}

static void fx_close(struct fx *f)
{
	bh_ps_detach(&f->src);
	bh_ps_detach(&f->snk);
	munmap(f->src_map, f->size);
	munmap(f->snk_map, f->size);
	close(f->memfd);
	close(f->submit_efd);
	close(f->ack_efd);
}

static int setup(void **state)
{
	struct fx *f = malloc(sizeof(*f));

	if (!f || fx_open(f, CAP, BULK, SLOT) || fx_attach(f)) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	int before = f->fds_before;

	fx_close(f);
	free(f);
	/* every test leaves the fd table as it found it */
	return test_count_fds() == before ? 0 : -1;
}

/* how many signals an eventfd got since last read (0 if none) */
static uint64_t signals(int efd)
{
	uint64_t n = 0;

	if (read(efd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

/* source: allocate, fill with a pattern of seq, submit n; flushes */
static void submit(struct fx *f, uint32_t seq, unsigned int n, uint32_t len)
{
	struct bh_ps_desc d[64];

	assert_true(n <= 64);
	for (unsigned int i = 0; i < n; i++) {
		assert_int_equal(bh_ps_alloc(&f->src, len, &d[i]), 0);
		memset(bh_ps_data(&f->src, &d[i]), (int)((seq + i) & 0xff), len);
		d[i].tag = seq + i;
		d[i].op = 7;
		d[i].arg = 0x1000000000ull + seq + i;
	}
	assert_int_equal(bh_ps_put(&f->src, d, n), n);
	bh_ps_flush(&f->src);
}

/* sink: take exactly n, check them, ack them with status; flushes */
static void process(struct fx *f, uint32_t seq, unsigned int n, uint32_t len, int32_t status)
{
	struct bh_ps_desc d[64];

	assert_true(n <= 64);
	assert_int_equal(bh_ps_get(&f->snk, d, n), n);
	for (unsigned int i = 0; i < n; i++) {
		const uint8_t *p = bh_ps_data(&f->snk, &d[i]);
		assert_int_equal(d[i].tag, seq + i);
		assert_int_equal(d[i].length, len);
		assert_int_equal(d[i].op, 7);
		assert_int_equal(d[i].arg, 0x1000000000ull + seq + i);
		assert_int_equal(d[i].status, 0);
		/* the sink maps the region elsewhere, offsets still agree */
		assert_ptr_equal(p, (uint8_t *)f->snk.bulk + d[i].offset);
		for (uint32_t k = 0; k < len; k++)
			assert_int_equal(p[k], (seq + i) & 0xff);
		d[i].status = status;
	}
	assert_int_equal(bh_ps_put(&f->snk, d, n), n);
	bh_ps_flush(&f->snk);
}

/* source: take exactly n acks and free them */
static void reap(struct fx *f, uint32_t seq, unsigned int n, int32_t status)
{
	struct bh_ps_desc d[64];

	assert_true(n <= 64);
	assert_int_equal(bh_ps_get(&f->src, d, n), n);
	for (unsigned int i = 0; i < n; i++) {
		assert_int_equal(d[i].tag, seq + i);
		assert_int_equal(d[i].status, status);
		bh_ps_free(&f->src, &d[i]);
	}
}

static void test_attach_arguments(void **state)
{
	struct fx *f = *state;
	struct bh_packet_stream ps;
	size_t rb = ring_bytes(CAP);

	assert_int_equal(bh_ps_region_size(CAP, BULK), 2 * rb + BULK);
	assert_int_equal(bh_ps_region_size(CAP, 1), 2 * rb + 4096);
	assert_int_equal(bh_ps_region_size(1, 4097), 2 * 4096 + 8192);
	/* geometry the source or sink cannot use */
	assert_int_equal(bh_ps_attach(&ps, BH_PS_SOURCE, f->src_map, f->size, 48, BULK, SLOT,
				      -1, -1),
			 -EINVAL);
	assert_int_equal(bh_ps_attach(&ps, BH_PS_SINK, f->snk_map, f->size, 0, BULK, 0, -1, -1),
			 -EINVAL);
	assert_int_equal(bh_ps_attach(&ps, BH_PS_SINK, f->snk_map, f->size, 1u << 21, BULK, 0,
				      -1, -1),
			 -EINVAL);
	assert_int_equal(bh_ps_attach(&ps, BH_PS_SOURCE, f->src_map, f->size - 1, CAP, BULK,
				      SLOT, -1, -1),
			 -EINVAL);
	assert_int_equal(bh_ps_attach(&ps, BH_PS_SOURCE, f->src_map, f->size, CAP, 0, SLOT, -1,
				      -1),
			 -EINVAL);
	assert_int_equal(bh_ps_attach(&ps, BH_PS_SOURCE, f->src_map, f->size, CAP, BULK, 0, -1,
				      -1),
			 -EINVAL);
	assert_int_equal(bh_ps_attach(&ps, BH_PS_SOURCE, f->src_map, f->size, CAP, BULK,
				      BULK + 1, -1, -1),
			 -EINVAL);
	/* the source's geometry */
	assert_int_equal(f->src.nslots, BULK / SLOT);
	assert_int_equal(f->src.nfree, BULK / SLOT);
	assert_int_equal(bh_ps_space(&f->src), CAP);
	assert_int_equal(bh_ps_space(&f->snk), CAP);
	assert_int_equal(bh_ps_wait_fd(&f->src), f->ack_efd);
	assert_int_equal(bh_ps_wait_fd(&f->snk), f->submit_efd);
}

static void test_round_trip(void **state)
{
	struct fx *f = *state;

	for (uint32_t i = 0; i < 3 * CAP; i++) {
		submit(f, i, 1, 1 + i % SLOT);
		process(f, i, 1, 1 + i % SLOT, -(int32_t)(i % 5));
		reap(f, i, 1, -(int32_t)(i % 5));
		assert_int_equal(f->src.nfree, f->src.nslots);
	}
	/* full-size and empty packets */
	submit(f, 500, 1, SLOT);
	submit(f, 501, 1, 0);
	process(f, 500, 1, SLOT, 0);
	reap(f, 500, 1, 0);
	process(f, 501, 1, 0, 0);
	reap(f, 501, 1, 0);
	assert_int_equal(f->src.invalid, 0);
	assert_int_equal(f->snk.invalid, 0);
	/* nobody waited: nobody was signalled */
	assert_int_equal(signals(f->submit_efd), 0);
	assert_int_equal(signals(f->ack_efd), 0);
}

static void test_nothing_visible_before_flush(void **state)
{
	struct fx *f = *state;
	struct bh_ps_desc d, got[4];

	assert_int_equal(bh_ps_alloc(&f->src, 10, &d), 0);
	assert_int_equal(bh_ps_put(&f->src, &d, 1), 1);
	assert_int_equal(submit_of(f)->tail, 0);
	assert_int_equal(bh_ps_get(&f->snk, got, 4), 0);
	assert_int_equal(bh_ps_space(&f->src), CAP - 1);
	bh_ps_flush(&f->src);
	assert_int_equal(submit_of(f)->tail, 1);
	assert_int_equal(bh_ps_get(&f->snk, got, 4), 1);
	assert_int_equal(got[0].offset, d.offset);
	/* the consumer's head is published by get */
	assert_int_equal(submit_of(f)->head, 1);
	assert_int_equal(bh_ps_space(&f->src), CAP);
}

static void test_batches_of_32(void **state)
{
	struct fx *f = *state;

	for (uint32_t round = 0; round < 20; round++) {
		uint32_t seq = round * 64;
		submit(f, seq, 32, 64);
		submit(f, seq + 32, 32, 1500);
		assert_int_equal(f->src.nfree, 0);
		/* both batches at once: 32 of 64 bytes, then 32 of 1500 */
		struct bh_ps_desc d[64];
		assert_int_equal(bh_ps_get(&f->snk, d, 32), 32);
		assert_int_equal(bh_ps_get(&f->snk, d + 32, 64), 32);
		for (unsigned int i = 0; i < 64; i++) {
			assert_int_equal(d[i].tag, seq + i);
			assert_int_equal(d[i].length, i < 32 ? 64 : 1500);
		}
		assert_int_equal(bh_ps_put(&f->snk, d, 32), 32);
		bh_ps_flush(&f->snk);
		assert_int_equal(bh_ps_put(&f->snk, d + 32, 32), 32);
		bh_ps_flush(&f->snk);
		reap(f, seq, 64, 0);
		assert_int_equal(f->src.nfree, 64);
	}
}

static void test_ring_full(void **state)
{
	struct fx *f = *state;
	struct bh_ps_desc d[CAP + 8], got[CAP];
	unsigned int n;

	/* descriptors need not come from alloc to fill the ring */
	for (unsigned int i = 0; i < CAP + 8; i++)
		d[i] = (struct bh_ps_desc){ .offset = 0, .length = 1, .tag = i };
	assert_int_equal(bh_ps_put(&f->src, d, CAP - 3), CAP - 3);
	assert_int_equal(bh_ps_space(&f->src), 3);
	assert_int_equal(bh_ps_put(&f->src, d + CAP - 3, 11), 3); /* fewer than asked */
	assert_int_equal(bh_ps_space(&f->src), 0);
	assert_int_equal(bh_ps_put(&f->src, d, 1), 0);
	bh_ps_flush(&f->src);
	assert_int_equal(bh_ps_put(&f->src, d, 1), 0);
	/* the consumer takes 5: room for 5 */
	assert_int_equal(bh_ps_get(&f->snk, got, 5), 5);
	assert_int_equal(bh_ps_space(&f->src), 5);
	assert_int_equal(bh_ps_put(&f->src, d + CAP, 8), 5);
	bh_ps_flush(&f->src);
	n = (unsigned int)bh_ps_get(&f->snk, got, CAP);
	assert_int_equal(n, CAP);
	for (unsigned int i = 0; i < n; i++)
		assert_int_equal(got[i].tag, i + 5);
	assert_int_equal(f->src.invalid, 0);
}

/* a sink takes no more than it can ack, counting the requests it still holds */
static void test_take_leaves_ack_room(void **state)
{
	struct fx *f = *state;
	struct bh_ps_desc d[CAP], got[CAP];

	for (unsigned int i = 0; i < CAP; i++)
		d[i] = (struct bh_ps_desc){ .offset = 0, .length = 1, .tag = i };
	assert_int_equal(bh_ps_put(&f->src, d, 20), 20);
	bh_ps_flush(&f->src);
	/* 60 requests held elsewhere: room for 4 acks */
	assert_int_equal(bh_ps_take(&f->snk, 60, got, 10), 4);
	assert_int_equal(bh_ps_take(&f->snk, CAP, got, 10), 0);
	assert_int_equal(bh_ps_take(&f->snk, 0, got, 0), 0);
	assert_int_equal(bh_ps_take(&f->snk, 0, got, CAP), 16);
	assert_int_equal(got[0].tag, 4);
}

static void test_slots_exhausted(void **state)
{
	struct fx *f = *state;
	struct bh_ps_desc d[BULK / SLOT + 1];
	uint8_t seen[BULK / SLOT] = { 0 };

	assert_int_equal(bh_ps_alloc(&f->src, SLOT + 1, &d[0]), -EINVAL);
	assert_int_equal(bh_ps_alloc(&f->snk, 1, &d[0]), -EINVAL);
	for (unsigned int i = 0; i < BULK / SLOT; i++) {
		assert_int_equal(bh_ps_alloc(&f->src, SLOT, &d[i]), 0);
		assert_int_equal(d[i].offset % SLOT, 0);
		assert_true(d[i].offset + SLOT <= BULK);
		assert_int_equal(seen[d[i].offset / SLOT]++, 0); /* every slot once */
	}
	assert_int_equal(bh_ps_alloc(&f->src, 1, &d[BULK / SLOT]), -ENOBUFS);
	bh_ps_free(&f->src, &d[17]);
	assert_int_equal(bh_ps_alloc(&f->src, 1, &d[BULK / SLOT]), 0);
	assert_int_equal(d[BULK / SLOT].offset, d[17].offset);
	assert_int_equal(bh_ps_alloc(&f->src, 1, &d[17]), -ENOBUFS);
	assert_int_equal(f->src.invalid, 0);
}

static void test_spans(void **state)
{
	struct fx *f = *state;
	struct bh_ps_desc big, one[BULK / SLOT], d;

	assert_int_equal(bh_ps_alloc_span(&f->src, BULK + 1, &d), -EINVAL);
	assert_int_equal(bh_ps_alloc_span(&f->snk, SLOT, &d), -EINVAL);
	/* the whole bulk buffer, then nothing else */
	assert_int_equal(bh_ps_alloc_span(&f->src, BULK, &big), 0);
	assert_int_equal(big.offset, 0);
	assert_int_equal(big.length, BULK);
	assert_int_equal(bh_ps_alloc(&f->src, 1, &d), -ENOBUFS);
	bh_ps_free_span(&f->src, big.offset, BULK);
	/* every other slot taken: no run of two, but single slots are there */
	for (unsigned int i = 0; i < BULK / SLOT; i++)
		assert_int_equal(bh_ps_alloc(&f->src, SLOT, &one[i]), 0);
	for (unsigned int i = 0; i < BULK / SLOT; i++)
		if ((one[i].offset / SLOT) % 2)
			bh_ps_free(&f->src, &one[i]);
	assert_int_equal(bh_ps_alloc_span(&f->src, SLOT + 1, &d), -ENOBUFS);
	assert_int_equal(bh_ps_alloc_span(&f->src, SLOT, &d), 0);
	bh_ps_free(&f->src, &d);
	/* two neighbours free: a span of them, and its slots leave the free list */
	for (unsigned int i = 0; i < BULK / SLOT; i++)
		if (one[i].offset == 2 * SLOT)
			bh_ps_free(&f->src, &one[i]);
	assert_int_equal(bh_ps_alloc_span(&f->src, 3 * SLOT, &d), 0);
	assert_int_equal(d.offset, SLOT);
	for (unsigned int i = 0; i < BULK / SLOT / 2 - 2; i++)
		assert_int_equal(bh_ps_alloc(&f->src, 1, &one[0]), 0);
	assert_int_equal(bh_ps_alloc(&f->src, 1, &one[0]), -ENOBUFS);
	bh_ps_free_span(&f->src, d.offset, 3 * SLOT);
	assert_int_equal(bh_ps_alloc_span(&f->src, 3 * SLOT, &d), 0);
	assert_int_equal(f->src.invalid, 0);
}

/* reclaim frees what came back and says how much may go now; pending peeks */
static void test_reclaim_and_pending(void **state)
{
	struct fx *f = *state;

	assert_int_equal(bh_ps_reclaim(&f->src, 1000), CAP);
	assert_int_equal(bh_ps_reclaim(&f->src, 8), 8);
	assert_false(bh_ps_pending(&f->snk));
	submit(f, 0, 40, 100);
	assert_int_equal(bh_ps_reclaim(&f->src, 1000), CAP - 40);
	assert_true(bh_ps_pending(&f->snk));
	assert_false(bh_ps_pending(&f->src));
	process(f, 0, 40, 100, 0);
	assert_false(bh_ps_pending(&f->snk));
	assert_true(bh_ps_pending(&f->src));
	/* the acks come back, their slots are free again */
	assert_int_equal(bh_ps_reclaim(&f->src, 1000), CAP);
	assert_false(bh_ps_pending(&f->src));
	assert_int_equal(f->src.nfree, BULK / SLOT);
	/* a peer that corrupted the indexes is said so */
	ack_of(f)->tail = f->src.ack.head + CAP + 1;
	assert_int_equal(bh_ps_reclaim(&f->src, 1000), -EPROTO);
}

static void test_notify_only_when_waiting(void **state)
{
	struct fx *f = *state;

	/* nobody waits: no signal, however many flushes */
	for (uint32_t i = 0; i < 4; i++) {
		submit(f, i, 1, 8);
		bh_ps_flush(&f->src);
	}
	assert_int_equal(signals(f->submit_efd), 0);
	/* something queued: prepare_wait says "consume first" */
	assert_false(bh_ps_prepare_wait(&f->snk));
	process(f, 0, 4, 8, 0);
	reap(f, 0, 4, 0);
	/* ... and leaves no request to be woken behind */
	assert_int_equal(submit_of(f)->waiting, 0);
	submit(f, 4, 1, 8);
	assert_int_equal(signals(f->submit_efd), 0);
	process(f, 4, 1, 8, 0);
	reap(f, 4, 1, 0);
	/* ten sleeps, ten signals: one each, not one per flush */
	for (uint32_t i = 0; i < 10; i++) {
		assert_true(bh_ps_prepare_wait(&f->snk));
		assert_int_equal(submit_of(f)->waiting, 1);
		submit(f, 10 + 3 * i, 1, 8);
		submit(f, 11 + 3 * i, 2, 8); /* a second flush while it still sleeps */
		assert_int_equal(submit_of(f)->waiting, 0);
		struct pollfd p = { .fd = bh_ps_wait_fd(&f->snk), .events = POLLIN };
		assert_int_equal(poll(&p, 1, 1000), 1);
		assert_int_equal(signals(f->submit_efd), 1);
		process(f, 10 + 3 * i, 3, 8, 0);
		/* the source did not wait for acks: not signalled */
		assert_int_equal(signals(f->ack_efd), 0);
		reap(f, 10 + 3 * i, 3, 0);
	}
	/* the other direction: the source sleeps for acks */
	assert_true(bh_ps_prepare_wait(&f->src));
	submit(f, 100, 2, 8);
	assert_int_equal(signals(f->ack_efd), 0);
	process(f, 100, 2, 8, 0);
	assert_int_equal(signals(f->ack_efd), 1);
	assert_int_equal(signals(f->submit_efd), 0);
	reap(f, 100, 2, 0);
	/* drain_signal clears the count so the next poll sleeps */
	assert_true(bh_ps_prepare_wait(&f->src));
	submit(f, 102, 1, 8);
	process(f, 102, 1, 8, 0);
	struct pollfd p = { .fd = bh_ps_wait_fd(&f->src), .events = POLLIN };
	assert_int_equal(poll(&p, 1, 0), 1);
	bh_ps_drain_signal(&f->src);
	assert_int_equal(poll(&p, 1, 0), 0);
	reap(f, 102, 1, 0);
	bh_ps_drain_signal(&f->src); /* nothing pending: must not block */
	bh_ps_drain_signal(&f->snk);
}

/* both rings' shared and private indexes start at start */
static void set_indexes(struct fx *f, uint32_t start)
{
	struct shared_ring *s = submit_of(f), *a = ack_of(f);

	s->head = s->tail = a->head = a->tail = start;
	f->src.submit.head = f->src.submit.tail = start;
	f->src.ack.head = f->src.ack.tail = start;
	bh_ps_detach(&f->snk);
	assert_int_equal(bh_ps_attach(&f->snk, BH_PS_SINK, f->snk_map, f->size, f->capacity,
				      f->bulk, 0, f->submit_efd, f->ack_efd),
			 0);
}

static void test_wraparound(void **state)
{
	struct fx *f = *state;
	uint32_t seq = 0;

	set_indexes(f, UINT32_MAX - 100);
	/* 7 does not divide 64: the batches straddle the ring's end and 2^32 */
	for (unsigned int round = 0; round < 60; round++) {
		submit(f, seq, 7, 100);
		assert_int_equal(bh_ps_space(&f->src), CAP - 7);
		process(f, seq, 7, 100, 0);
		assert_int_equal(bh_ps_space(&f->snk), CAP - 7);
		reap(f, seq, 7, 0);
		seq += 7;
		/* half full across the wrap, too */
		if (round == 10) {
			submit(f, seq, 40, 10);
			process(f, seq, 40, 10, 0);
			reap(f, seq, 40, 0);
			seq += 40;
		}
	}
	assert_true(submit_of(f)->tail < 1000); /* it did wrap */
	assert_int_equal(submit_of(f)->tail, (uint32_t)(UINT32_MAX - 100 + seq));
	assert_int_equal(ack_of(f)->tail, submit_of(f)->tail);
	assert_int_equal(f->src.invalid + f->snk.invalid, 0);
}

static void test_wraparound_full_ring(void **state)
{
	struct fx *f = *state;
	struct bh_ps_desc d[CAP + 1];

	/* a full ring whose indexes straddle 2^32 is still full, not empty */
	set_indexes(f, UINT32_MAX - CAP / 2);
	for (unsigned int i = 0; i <= CAP; i++)
		d[i] = (struct bh_ps_desc){ .length = 1, .tag = i };
	assert_int_equal(bh_ps_put(&f->src, d, CAP + 1), CAP);
	bh_ps_flush(&f->src);
	assert_int_equal(bh_ps_space(&f->src), 0);
	assert_int_equal(bh_ps_get(&f->snk, d, CAP + 1), CAP);
	for (unsigned int i = 0; i < CAP; i++)
		assert_int_equal(d[i].tag, i);
	assert_int_equal(bh_ps_space(&f->src), CAP);
}

static void test_hostile_tail(void **state)
{
	struct fx *f = *state;
	struct bh_ps_desc d[CAP];

	submit(f, 0, 2, 8);
	/* tail far beyond head: -EPROTO at once, no loop over 2^31 entries */
	submit_of(f)->tail = 0x80000000u;
	assert_int_equal(bh_ps_get(&f->snk, d, CAP), -EPROTO);
	assert_int_equal(f->snk.invalid, 1);
	/* one more than the capacity */
	submit_of(f)->tail = CAP + 1;
	assert_int_equal(bh_ps_get(&f->snk, d, CAP), -EPROTO);
	/* tail behind head */
	submit_of(f)->tail = 2;
	assert_int_equal(bh_ps_get(&f->snk, d, CAP), 2);
	submit_of(f)->tail = 1;
	assert_int_equal(bh_ps_get(&f->snk, d, CAP), -EPROTO);
	assert_int_equal(f->snk.invalid, 3);
	/* a consumer told to sleep on a corrupt ring finds out */
	assert_false(bh_ps_prepare_wait(&f->snk));
	/* exactly the capacity is fine (the peer may fill the ring) */
	submit_of(f)->tail = 2 + CAP;
	assert_int_equal(bh_ps_get(&f->snk, d, CAP), CAP);
	/* and the same on the ack ring, as seen by the source */
	ack_of(f)->tail = UINT32_MAX;
	assert_int_equal(bh_ps_get(&f->src, d, CAP), -EPROTO);
	assert_int_equal(f->src.invalid, 1);
}

static void test_hostile_descriptors(void **state)
{
	struct fx *f = *state;
	struct bh_ps_desc d[6], got[8];
	const struct bh_ps_desc bad[] = {
		{ .offset = BULK, .length = 0 },		/* offset at the end */
		{ .offset = BULK - 10, .length = 11 },		/* overflows the end */
		{ .offset = UINT64_MAX - 5, .length = 10 },	/* offset+length wraps 2^64 */
		{ .offset = 10, .length = UINT32_MAX },		/* length beyond the buffer */
		{ .offset = 1ull << 63, .length = 1 },
	};

	for (unsigned int i = 0; i < 6; i++) {
		assert_int_equal(bh_ps_alloc(&f->src, 16, &d[i]), 0);
		d[i].tag = i;
	}
	assert_int_equal(bh_ps_put(&f->src, d, 6), 6);
	bh_ps_flush(&f->src);
	/* the peer rewrites descriptors 0..4 in place; 5 stays good */
	for (unsigned int i = 0; i < 5; i++) {
		struct bh_ps_desc *s = &submit_of(f)->desc[i];
		s->offset = bad[i].offset;
		s->length = bad[i].length;
		s->status = 123;
	}
	assert_int_equal(bh_ps_get(&f->snk, got, 8), 6);
	for (unsigned int i = 0; i < 5; i++) {
		assert_int_equal(got[i].tag, i); /* so the sink can still ack it */
		assert_int_equal(got[i].status, -EINVAL);
		assert_int_equal(got[i].offset, 0);
		assert_int_equal(got[i].length, 0);
	}
	assert_int_equal(got[5].status, 0);
	assert_int_equal(got[5].offset, d[5].offset);
	assert_int_equal(got[5].length, 16);
	assert_int_equal(f->snk.invalid, 5);
	/* the edge of the buffer itself is fine */
	struct bh_ps_desc edge = { .offset = BULK - 1, .length = 1 };
	struct bh_ps_desc whole = { .offset = 0, .length = BULK };
	struct bh_ps_desc empty_end = { .offset = BULK - 1, .length = 0 };
	assert_int_equal(bh_ps_put(&f->src, &edge, 1), 1);
	assert_int_equal(bh_ps_put(&f->src, &whole, 1), 1);
	assert_int_equal(bh_ps_put(&f->src, &empty_end, 1), 1);
	bh_ps_flush(&f->src);
	assert_int_equal(bh_ps_get(&f->snk, got, 8), 3);
	for (unsigned int i = 0; i < 3; i++)
		assert_int_equal(got[i].status, 0);
	assert_int_equal(f->snk.invalid, 5);
}

static void test_hostile_acks(void **state)
{
	struct fx *f = *state;
	struct bh_ps_desc d[4], got[16];
	struct bh_ps_desc acks[8];
	unsigned int nslots = f->src.nslots;

	for (unsigned int i = 0; i < 4; i++)
		assert_int_equal(bh_ps_alloc(&f->src, 16, &d[i]), 0);
	assert_int_equal(f->src.nfree, nslots - 4);
	acks[0] = d[0];					/* good */
	acks[1] = d[0];					/* the same slot again */
	acks[2] = (struct bh_ps_desc){ .offset = BULK };	/* outside: dropped */
	acks[3] = (struct bh_ps_desc){ .offset = UINT64_MAX - 1, .length = 4 };
	acks[4] = (struct bh_ps_desc){ .offset = d[1].offset + 1 }; /* not a slot start */
	acks[5] = (struct bh_ps_desc){ .offset = (uint64_t)(nslots - 1) * SLOT }; /* never allocated */
	acks[6] = d[2];					/* good */
	acks[7] = (struct bh_ps_desc){ .offset = 0, .length = BULK }; /* inside, but no slot */
	assert_int_equal(bh_ps_put(&f->snk, acks, 8), 8);
	bh_ps_flush(&f->snk);
	/* the source drops the two outside the buffer */
	assert_int_equal(bh_ps_get(&f->src, got, 16), 6);
	assert_int_equal(f->src.invalid, 2);
	for (int i = 0; i < 6; i++)
		bh_ps_free(&f->src, &got[i]);
	/* d[0] and d[2] came back once; the rest counted, nothing freed twice */
	assert_int_equal(f->src.nfree, nslots - 2);
	assert_int_equal(f->src.invalid, 2 + 4);
	/* the free list holds every other slot exactly once */
	uint8_t seen[BULK / SLOT] = { 0 };
	seen[d[1].offset / SLOT] = seen[d[3].offset / SLOT] = 1;
	for (unsigned int i = 0; i < nslots - 2; i++) {
		struct bh_ps_desc x;
		assert_int_equal(bh_ps_alloc(&f->src, 1, &x), 0);
		assert_int_equal(seen[x.offset / SLOT]++, 0);
	}
	assert_int_equal(bh_ps_alloc(&f->src, 1, &d[0]), -ENOBUFS);
	/* freeing is the source's business: a sink that tries is refused, not crashed */
	bh_ps_free(&f->snk, &d[1]);
	assert_int_equal(f->snk.invalid, 1);
}

static void test_hostile_head(void **state)
{
	struct fx *f = *state;
	struct bh_ps_desc d[8];

	submit(f, 0, 4, 8);
	assert_int_equal(bh_ps_get(&f->snk, d, 2), 2);
	assert_int_equal(bh_ps_space(&f->src), CAP - 2);
	/* head moves backwards */
	submit_of(f)->head = 1;
	assert_int_equal(bh_ps_space(&f->src), 0);
	assert_int_equal(bh_ps_put(&f->src, d, 1), 0);
	submit_of(f)->head = UINT32_MAX;
	assert_int_equal(bh_ps_space(&f->src), 0);
	/* head beyond the tail */
	submit_of(f)->head = 5;
	assert_int_equal(bh_ps_space(&f->src), 0);
	submit_of(f)->head = 0x40000000;
	assert_int_equal(bh_ps_space(&f->src), 0);
	assert_int_equal(f->src.invalid, 5);
	/* a head put back where it was is believed again */
	submit_of(f)->head = 2;
	assert_int_equal(bh_ps_space(&f->src), CAP - 2);
	submit_of(f)->head = 4;
	assert_int_equal(bh_ps_space(&f->src), CAP);
	/* the sink's view of the ack ring likewise */
	ack_of(f)->head = 7;
	assert_int_equal(bh_ps_space(&f->snk), 0);
	assert_int_equal(f->snk.invalid, 1);
}

static void test_copy_is_stable(void **state)
{
	struct fx *f = *state;
	struct bh_ps_desc d[2];

	submit(f, 40, 2, 100);
	assert_int_equal(bh_ps_get(&f->snk, d, 2), 2);
	/* the peer rewrites the descriptors after we took them */
	for (int i = 0; i < 2; i++) {
		submit_of(f)->desc[i].offset = UINT64_MAX;
		submit_of(f)->desc[i].length = UINT32_MAX;
		submit_of(f)->desc[i].tag = 999;
	}
	for (int i = 0; i < 2; i++) {
		assert_true(d[i].offset < BULK);
		assert_int_equal(d[i].length, 100);
		assert_int_equal(d[i].tag, 40 + i);
	}
	assert_int_equal(f->snk.invalid, 0);
}

/*
 * Two processes: the child produces N packets carrying their sequence
 * number, the parent consumes and checks them. Both sleep through
 * prepare_wait + poll; a poll that times out is a lost wake-up.
 */
#define TWO_PROC_N 1000000u
#define WAKE_TIMEOUT_MS 5000

struct proc_stats {
	uint64_t sleeps, wakeups;
};

/* 1 if woken, 0 if something is already there, -1 on a lost wake-up */
static int sleep_on(struct bh_packet_stream *ps, struct proc_stats *st)
{
	struct pollfd p = { .fd = bh_ps_wait_fd(ps), .events = POLLIN };

	if (!bh_ps_prepare_wait(ps))
		return 0;
	st->sleeps++;
	if (poll(&p, 1, WAKE_TIMEOUT_MS) != 1)
		return -1;
	bh_ps_drain_signal(ps);
	st->wakeups++;
	return 1;
}

/* child: exit status 0 on success; never returns into cmocka */
static int produce(struct bh_packet_stream *ps, uint32_t n)
{
	struct proc_stats st = { 0 };
	struct bh_ps_desc d[32];
	uint32_t sent = 0, acked = 0, rnd = 12345;

	while (acked < n) {
		int got = bh_ps_get(ps, d, 32);
		if (got < 0)
			return 10;
		for (int i = 0; i < got; i++) {
			if (d[i].status != 0 || d[i].tag != acked)
				return 11;
			acked++;
			bh_ps_free(ps, &d[i]);
		}
		if (got)
			continue;
		/* batches of 1..32 */
		rnd = rnd * 1103515245u + 12345u;
		unsigned int want = 1 + (rnd >> 16) % 32, k = 0;
		while (k < want && sent + k < n && bh_ps_alloc(ps, 64, &d[k]) == 0) {
			uint32_t *p = bh_ps_data(ps, &d[k]);
			p[0] = sent + k;
			p[1] = ~(sent + k);
			p[15] = sent + k;
			d[k].tag = sent + k;
			k++;
		}
		if (k) {
			if (bh_ps_put(ps, d, k) != k)
				return 12;
			bh_ps_flush(ps);
			sent += k;
		} else if (sleep_on(ps, &st) < 0) {
			return 13; /* no slots, no acks, no wake-up */
		}
	}
	return ps->invalid ? 14 : 0;
}

/* parent: 0 on success, or what went wrong */
static int consume(struct bh_packet_stream *ps, uint32_t n, struct proc_stats *st)
{
	struct bh_ps_desc d[32];
	uint32_t expect = 0;

	while (expect < n) {
		int got = bh_ps_get(ps, d, 32);
		if (got < 0)
			return 20;
		if (!got) {
			if (sleep_on(ps, st) < 0)
				return 21;
			continue;
		}
		for (int i = 0; i < got; i++) {
			const uint32_t *p = bh_ps_data(ps, &d[i]);
			if (d[i].status || d[i].length != 64 || p[0] != expect ||
			    p[1] != ~expect || p[15] != expect || d[i].tag != expect)
				return 22;
			expect++;
		}
		if (bh_ps_put(ps, d, (unsigned int)got) != (unsigned int)got)
			return 23;
		bh_ps_flush(ps);
	}
	return ps->invalid ? 24 : 0;
}

static void test_two_processes(void **state)
{
	struct fx *f = *state;
	struct proc_stats st = { 0 };
	int status = -1, rc;
	pid_t pid;

	/* 32 slots, 64 ring entries: acks always fit */
	bh_ps_detach(&f->src);
	assert_int_equal(bh_ps_attach(&f->src, BH_PS_SOURCE, f->src_map, f->size, CAP, BULK,
				      BULK / 32, f->submit_efd, f->ack_efd),
			 0);
	bh_ps_detach(&f->snk);
	assert_int_equal(bh_ps_attach(&f->snk, BH_PS_SINK, f->snk_map, f->size, CAP, BULK, 0,
				      f->submit_efd, f->ack_efd),
			 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(120);
		_exit(produce(&f->src, TWO_PROC_N));
	}
	rc = consume(&f->snk, TWO_PROC_N, &st);
	if (rc)
		kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	print_message("# %u packets, consumer slept %llu times\n", TWO_PROC_N,
		      (unsigned long long)st.sleeps);
	assert_int_equal(rc, 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(st.sleeps, st.wakeups);
}

static bool membarrier_works(void)
{
	long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);

	return cmds > 0 && (cmds & MEMBARRIER_CMD_GLOBAL_EXPEDITED);
}

/*
 * A consumer that keeps polling lets its producer skip the fence; the
 * sleep that follows takes that back before it waits, and still wakes.
 */
static void test_busy_consumer_lifts_fence(void **state)
{
	struct fx *f = *state;
	struct bh_ps_desc d[1];
	uint64_t n;

	if (!membarrier_works()) {
		print_message("# no membarrier(GLOBAL_EXPEDITED) here: both sides fence\n");
		skip();
	}
	for (uint32_t i = 0; i + 1 < BH_PS_HEAVY_AFTER; i++)
		assert_int_equal(bh_ps_get(&f->snk, d, 1), 0);
	assert_int_equal(submit_of(f)->heavy, 0);
	assert_int_equal(bh_ps_get(&f->snk, d, 1), 0);
	assert_int_equal(submit_of(f)->heavy, 1);
	/* the source's acks ring is its own: untouched */
	assert_int_equal(ack_of(f)->heavy, 0);
	assert_true(bh_ps_prepare_wait(&f->snk));
	assert_int_equal(submit_of(f)->heavy, 0);
	assert_int_equal(submit_of(f)->waiting, 1);
	submit(f, 7, 1, 100);
	assert_int_equal(read(f->submit_efd, &n, sizeof(n)), sizeof(n));
	assert_int_equal(bh_ps_get(&f->snk, d, 1), 1);
	assert_int_equal(d[0].tag, 7);
}

/*
 * Two processes, one packet in flight: the consumer polls a random while
 * (often long enough to lift the producer's fence) and then sleeps, the
 * producer submits after a random pause and sleeps for the ack. Every
 * sleep must end in a wake-up, never in the 5 s timeout.
 */
#define PING_PONG_ROUNDS 3000u

static void spin_for(uint32_t ns)
{
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	do
		clock_gettime(CLOCK_MONOTONIC, &b);
	while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < (long)ns);
}

static int ping(struct bh_packet_stream *ps)
{
	struct proc_stats st = { 0 };
	struct bh_ps_desc d[1];
	uint32_t rnd = 777;

	for (uint32_t i = 0; i < PING_PONG_ROUNDS; i++) {
		int got;

		rnd = rnd * 1103515245u + 12345u;
		spin_for((rnd >> 16) % 20000);
		if (bh_ps_alloc(ps, 64, d) || (d[0].tag = i, bh_ps_put(ps, d, 1) != 1))
			return 30;
		bh_ps_flush(ps);
		while (!(got = bh_ps_get(ps, d, 1)))
			if (sleep_on(ps, &st) < 0)
				return 31;
		if (got != 1 || d[0].tag != i)
			return 32;
		bh_ps_free(ps, d);
	}
	return 0;
}

static int pong(struct bh_packet_stream *ps, struct proc_stats *st)
{
	struct bh_ps_desc d[1];
	uint32_t rnd = 4242;

	for (uint32_t i = 0; i < PING_PONG_ROUNDS; i++) {
		uint32_t polls;
		int got = 0;

		rnd = rnd * 1103515245u + 12345u;
		polls = (rnd >> 16) % (2 * BH_PS_HEAVY_AFTER);
		for (uint32_t p = 0; !got && p < polls; p++)
			got = bh_ps_get(ps, d, 1);
		while (!got) {
			if (sleep_on(ps, st) < 0)
				return 40;
			got = bh_ps_get(ps, d, 1);
		}
		if (got != 1 || d[0].tag != i || bh_ps_put(ps, d, 1) != 1)
			return 41;
		bh_ps_flush(ps);
	}
	return 0;
}

static void test_two_processes_busy_then_sleep(void **state)
{
	struct fx *f = *state;
	struct proc_stats st = { 0 };
	int status = -1, rc;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(120);
		_exit(ping(&f->src));
	}
	rc = pong(&f->snk, &st);
	if (rc)
		kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	print_message("# %u round trips, consumer slept %llu times\n", PING_PONG_ROUNDS,
		      (unsigned long long)st.sleeps);
	assert_int_equal(rc, 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(st.sleeps > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_attach_arguments),
		T(test_round_trip),
		T(test_nothing_visible_before_flush),
		T(test_batches_of_32),
		T(test_ring_full),
		T(test_take_leaves_ack_room),
		T(test_slots_exhausted),
		T(test_spans),
		T(test_notify_only_when_waiting),
		T(test_reclaim_and_pending),
		T(test_wraparound),
		T(test_wraparound_full_ring),
		T(test_hostile_tail),
		T(test_hostile_descriptors),
		T(test_hostile_acks),
		T(test_hostile_head),
		T(test_copy_is_stable),
		T(test_two_processes),
		T(test_busy_consumer_lifts_fence),
		T(test_two_processes_busy_then_sleep),
#undef T
	};

	return cmocka_run_group_tests_name("packet_stream", tests, NULL, NULL);
}
