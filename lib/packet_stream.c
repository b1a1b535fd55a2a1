// SPDX-License-Identifier: MIT
/* Packet streams: two single-producer/single-consumer rings and a bulk buffer. */
#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bulkhead/packet_stream.h"

#define CACHELINE 64
#define PAGE 4096u

/* indexes on separate cache lines: producer and consumer never share one */
struct bh_ps_ring_shared {
	_Alignas(CACHELINE) uint32_t head;    /* consumer's */
	_Alignas(CACHELINE) uint32_t tail;    /* producer's */
	_Alignas(CACHELINE) uint32_t waiting; /* consumer sleeps; producer must signal */
	uint32_t heavy; /* consumer fences with membarrier before it sleeps */
	_Alignas(CACHELINE) struct bh_ps_desc desc[];
};
_Static_assert(offsetof(struct bh_ps_ring_shared, tail) == BH_PS_RING_TAIL, "layout");
_Static_assert(offsetof(struct bh_ps_ring_shared, waiting) == BH_PS_RING_WAITING, "layout");
_Static_assert(offsetof(struct bh_ps_ring_shared, desc) == BH_PS_RING_DESC, "layout");

static size_t ring_bytes(uint32_t capacity)
{
	size_t n = sizeof(struct bh_ps_ring_shared) + (size_t)capacity * sizeof(struct bh_ps_desc);

	return (n + PAGE - 1) & ~(size_t)(PAGE - 1);
}

size_t bh_ps_region_size(uint32_t capacity, uint64_t bulk_size)
{
	return 2 * ring_bytes(capacity) + (size_t)((bulk_size + PAGE - 1) & ~(uint64_t)(PAGE - 1));
}

/*
 * The waiting flag is a Dekker handshake: the producer stores the tail and
 * loads the flag, the consumer stores the flag and loads the tail, and on
 * x86 neither may let its load pass its store. A fence costs the producer
 * a wait for its stores to reach the consumer's core on every flush (a third
 * of the throughput at one packet a flush). While the consumer keeps busy,
 * the fence is made asymmetric: the consumer sets the ring's "heavy" flag,
 * the producer then needs only a compiler barrier, and the consumer, on its
 * way to sleep, clears the flag and runs membarrier(GLOBAL_EXPEDITED),
 * which puts a full barrier into every registered process running at that
 * moment, the producer among them: any flush that skipped its fence has
 * then made its tail visible, and any later one sees the flag clear and
 * fences. membarrier interrupts the other cores (52 us here with a busy
 * peer, against a fence's fraction of a microsecond), so the consumer only
 * sets the flag after BH_PS_HEAVY_AFTER polls without a sleep, and sleeps
 * in the fenced mode until then. A producer trusts the flag only if its own process
 * is registered; a consumer that lies about it only loses its own wake-ups.
 */
static int heavy_state; /* 0 not asked yet, 1 registered, -1 unavailable */

static void heavy_register(void)
{
	long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
	int state = -1;

	if (cmds > 0 && (cmds & MEMBARRIER_CMD_GLOBAL_EXPEDITED) &&
	    !syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0))
		state = 1;
	__atomic_store_n(&heavy_state, state, __ATOMIC_RELAXED);
}

/* a child of fork() registers again: streams attached before it go on in it */
static void heavy_init(void)
{
	if (__atomic_load_n(&heavy_state, __ATOMIC_RELAXED))
		return;
	heavy_register();
	pthread_atfork(NULL, NULL, heavy_register);
}

static bool heavy(void)
{
	return __atomic_load_n(&heavy_state, __ATOMIC_RELAXED) > 0;
}

static bool power_of_two(uint32_t v)
{
	return v && !(v & (v - 1));
}

int bh_ps_attach(struct bh_packet_stream *ps, enum bh_ps_role role, void *base, size_t size,
		 uint32_t capacity, uint64_t bulk_size, uint32_t slot_size, int submit_efd,
		 int ack_efd)
{
	size_t rb = ring_bytes(capacity);

	memset(ps, 0, sizeof(*ps));
	if (!power_of_two(capacity) || capacity > (1u << 20) || !bulk_size ||
	    size < bh_ps_region_size(capacity, bulk_size))
		return -EINVAL;
	ps->role = role;
	ps->base = base;
	ps->size = size;
	ps->submit.shared = base;
	ps->ack.shared = (struct bh_ps_ring_shared *)((uint8_t *)base + rb);
	ps->submit.capacity = ps->ack.capacity = capacity;
	ps->submit.efd = submit_efd;
	ps->ack.efd = ack_efd;
	ps->bulk = (uint8_t *)base + 2 * rb;
	ps->bulk_size = bulk_size;
	heavy_init();
	/* our incoming ring's flag is ours: we are its consumer, and start fenced */
	__atomic_store_n(&(role == BH_PS_SINK ? ps->submit : ps->ack).shared->heavy, 0,
			 __ATOMIC_RELAXED);
	/*
	 * start from what is in shared memory (a fresh region is all zeros); never
	 * clear it: the side that attached first may already wait for a signal
	 */
	if (role == BH_PS_SINK) {
		ps->submit.head = __atomic_load_n(&ps->submit.shared->head, __ATOMIC_ACQUIRE);
		ps->submit.tail = ps->submit.head;
		ps->ack.tail = __atomic_load_n(&ps->ack.shared->tail, __ATOMIC_ACQUIRE);
		ps->ack.head = ps->ack.tail;
		return 0;
	}
	if (!slot_size || slot_size > bulk_size)
		return -EINVAL;
	ps->submit.tail = __atomic_load_n(&ps->submit.shared->tail, __ATOMIC_ACQUIRE);
	ps->submit.head = ps->submit.tail;
	ps->ack.head = __atomic_load_n(&ps->ack.shared->head, __ATOMIC_ACQUIRE);
	ps->ack.tail = ps->ack.head;
	ps->slot_size = slot_size;
	if (power_of_two(slot_size) && slot_size > 1)
		ps->slot_shift = (uint32_t)__builtin_ctz(slot_size);
	ps->nslots = (uint32_t)(bulk_size / slot_size);
	ps->free_slots = malloc(sizeof(uint32_t) * ps->nslots);
	ps->slot_busy = calloc(ps->nslots, 1);
	if (!ps->free_slots || !ps->slot_busy) {
		bh_ps_detach(ps);
		return -ENOMEM;
	}
	/* hand out low slots first: they are warm in the cache */
	for (uint32_t i = 0; i < ps->nslots; i++)
		ps->free_slots[i] = ps->nslots - 1 - i;
	ps->nfree = ps->nslots;
	return 0;
}

void bh_ps_detach(struct bh_packet_stream *ps)
{
	free(ps->free_slots);
	free(ps->slot_busy);
	ps->free_slots = NULL;
	ps->slot_busy = NULL;
	ps->nfree = 0;
}

int bh_ps_alloc(struct bh_packet_stream *ps, uint32_t len, struct bh_ps_desc *d)
{
	uint32_t slot;

	if (ps->role != BH_PS_SOURCE || len > ps->slot_size)
		return -EINVAL;
	if (!ps->nfree)
		return -ENOBUFS;
	slot = ps->free_slots[--ps->nfree];
	ps->slot_busy[slot] = 1;
	memset(d, 0, sizeof(*d));
	d->offset = (uint64_t)slot * ps->slot_size;
	d->length = len;
	return 0;
}

void bh_ps_free(struct bh_packet_stream *ps, const struct bh_ps_desc *d)
{
	uint64_t slot;

	/* a sink has no slots (slot_size 0): check the role before dividing */
	if (ps->role != BH_PS_SOURCE) {
		ps->invalid++;
		return;
	}
	if (ps->slot_shift) {
		/* the common case: no division on the hot path */
		slot = d->offset >> ps->slot_shift;
		if (d->offset & (ps->slot_size - 1))
			slot = ps->nslots;
	} else {
		slot = d->offset % ps->slot_size ? ps->nslots : d->offset / ps->slot_size;
	}
	if (slot >= ps->nslots || !ps->slot_busy[slot]) {
		ps->invalid++;
		return;
	}
	ps->slot_busy[slot] = 0;
	ps->free_slots[ps->nfree++] = (uint32_t)slot;
}

int bh_ps_alloc_span(struct bh_packet_stream *ps, uint32_t len, struct bh_ps_desc *d)
{
	uint32_t need, run = 0;

	if (ps->role != BH_PS_SOURCE || !ps->slot_size || len > ps->bulk_size)
		return -EINVAL;
	if (len <= ps->slot_size)
		return bh_ps_alloc(ps, len, d);
	need = (uint32_t)(((uint64_t)len + ps->slot_size - 1) / ps->slot_size);
	for (uint32_t s = 0; s < ps->nslots; s++) {
		uint32_t first;

		run = ps->slot_busy[s] ? 0 : run + 1;
		if (run < need)
			continue;
		first = s + 1 - need;
		for (uint32_t i = 0; i < ps->nfree;) {
			if (ps->free_slots[i] >= first && ps->free_slots[i] <= s)
				ps->free_slots[i] = ps->free_slots[--ps->nfree];
			else
				i++;
		}
		memset(ps->slot_busy + first, 1, need);
		memset(d, 0, sizeof(*d));
		d->offset = (uint64_t)first * ps->slot_size;
		d->length = len;
		return 0;
	}
	return -ENOBUFS;
}

void bh_ps_free_span(struct bh_packet_stream *ps, uint64_t offset, uint32_t len)
{
	struct bh_ps_desc d = {.offset = offset};
	uint32_t n = ps->slot_size && len > ps->slot_size
			 ? (uint32_t)(((uint64_t)len + ps->slot_size - 1) / ps->slot_size)
			 : 1;

	for (uint32_t i = 0; i < n; i++, d.offset += ps->slot_size)
		bh_ps_free(ps, &d);
}

static struct bh_ps_ring *outgoing(struct bh_packet_stream *ps)
{
	return ps->role == BH_PS_SOURCE ? &ps->submit : &ps->ack;
}

static struct bh_ps_ring *incoming(struct bh_packet_stream *ps)
{
	return ps->role == BH_PS_SOURCE ? &ps->ack : &ps->submit;
}

int bh_ps_take(struct bh_packet_stream *ps, unsigned int inflight, struct bh_ps_desc *d,
	       unsigned int n)
{
	unsigned int room = bh_ps_space(ps);

	room = room > inflight ? room - inflight : 0;
	if (n > room)
		n = room;
	return n ? bh_ps_get(ps, d, n) : 0;
}

unsigned int bh_ps_space(struct bh_packet_stream *ps)
{
	struct bh_ps_ring *r = outgoing(ps);
	uint32_t head = __atomic_load_n(&r->shared->head, __ATOMIC_ACQUIRE);
	uint32_t used = r->tail - head;

	/* a head that ran past our tail, or went backwards, is a lie: no room */
	if (used > r->capacity || (uint32_t)(head - r->head) > (uint32_t)(r->tail - r->head)) {
		ps->invalid++;
		return 0;
	}
	r->head = head;
	return r->capacity - used;
}

unsigned int bh_ps_put(struct bh_packet_stream *ps, const struct bh_ps_desc *d, unsigned int n)
{
	struct bh_ps_ring *r = outgoing(ps);
	unsigned int room = bh_ps_space(ps);
	struct bh_ps_desc *desc = r->shared->desc;
	uint32_t tail = r->tail, mask = r->capacity - 1;

	if (n > room)
		n = room;
	for (unsigned int i = 0; i < n; i++)
		desc[(tail + i) & mask] = d[i];
	r->tail = tail + n;
	return n;
}

void bh_ps_flush(struct bh_packet_stream *ps)
{
	struct bh_ps_ring *r = outgoing(ps);
	uint64_t one = 1;

	__atomic_store_n(&r->shared->tail, r->tail, __ATOMIC_RELEASE);
	/* pairs with the barrier in bh_ps_prepare_wait: one of us sees the other */
	if (heavy() && __atomic_load_n(&r->shared->heavy, __ATOMIC_RELAXED))
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
	else
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&r->shared->waiting, __ATOMIC_RELAXED) &&
	    __atomic_exchange_n(&r->shared->waiting, 0, __ATOMIC_ACQ_REL))
		(void)!write(r->efd, &one, sizeof(one));
}

static bool valid(const struct bh_packet_stream *ps, const struct bh_ps_desc *d)
{
	return d->offset < ps->bulk_size && d->length <= ps->bulk_size - d->offset;
}

int bh_ps_get(struct bh_packet_stream *ps, struct bh_ps_desc *d, unsigned int n)
{
	struct bh_ps_ring *r = incoming(ps);
	uint32_t tail = __atomic_load_n(&r->shared->tail, __ATOMIC_ACQUIRE);
	uint32_t head = r->head, mask = r->capacity - 1;
	const struct bh_ps_desc *desc = r->shared->desc;
	uint32_t avail = tail - head;
	unsigned int got = 0;

	if (avail > r->capacity) {
		ps->invalid++;
		return -EPROTO;
	}
	if (!r->heavy && ++r->polls >= BH_PS_HEAVY_AFTER && heavy()) {
		r->heavy = true;
		__atomic_store_n(&r->shared->heavy, 1, __ATOMIC_RELAXED);
	}
	if (n > avail)
		n = avail;
	for (unsigned int i = 0; i < n; i++) {
		struct bh_ps_desc *c = &d[got];

		/*
		 * copy first, then check the copy: the peer may change shared memory
		 * under us, and the barrier tells the compiler the copy is the only
		 * place to read the fields from again
		 */
		*c = desc[(head + i) & mask];
		__asm__ volatile("" : "+m"(*c));
		if (!valid(ps, c)) {
			ps->invalid++;
			if (ps->role == BH_PS_SOURCE)
				continue;
			c->status = -EINVAL;
			c->length = 0;
			c->offset = 0;
		}
		got++;
	}
	/* an empty poll writes nothing: the producer's cache keeps the line */
	if (n) {
		r->head += n;
		__atomic_store_n(&r->shared->head, r->head, __ATOMIC_RELEASE);
	}
	return (int)got;
}

bool bh_ps_prepare_wait(struct bh_packet_stream *ps)
{
	struct bh_ps_ring *r = incoming(ps);
	bool lifted = r->heavy; /* our producer may have skipped its fence */

	r->polls = 0;
	r->heavy = false;
	if (lifted)
		__atomic_store_n(&r->shared->heavy, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&r->shared->waiting, 1, __ATOMIC_RELAXED);
	/* a failed membarrier after a good registration cannot happen; fence anyway */
	if (!lifted || syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0))
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&r->shared->tail, __ATOMIC_ACQUIRE) == r->head)
		return true;
	/* not sleeping after all: take the request back, or the next flush signals for nothing */
	__atomic_store_n(&r->shared->waiting, 0, __ATOMIC_RELAXED);
	return false;
}

int bh_ps_reclaim(struct bh_packet_stream *ps, unsigned int max)
{
	struct bh_ps_desc d[32];
	unsigned int room;
	int got;

	while ((got = bh_ps_get(ps, d, 32)) > 0)
		for (int i = 0; i < got; i++)
			bh_ps_free(ps, &d[i]);
	if (got < 0)
		return got;
	room = bh_ps_space(ps) < ps->nfree ? bh_ps_space(ps) : ps->nfree;
	return (int)(room < max ? room : max);
}

bool bh_ps_pending(const struct bh_packet_stream *ps)
{
	const struct bh_ps_ring *r = ps->role == BH_PS_SOURCE ? &ps->ack : &ps->submit;

	return __atomic_load_n(&r->shared->tail, __ATOMIC_ACQUIRE) != r->head;
}

void bh_ps_drain_signal(struct bh_packet_stream *ps)
{
	uint64_t n;

	(void)!read(incoming(ps)->efd, &n, sizeof(n));
}

int bh_ps_wait_fd(const struct bh_packet_stream *ps)
{
	return ps->role == BH_PS_SOURCE ? ps->ack.efd : ps->submit.efd;
}
