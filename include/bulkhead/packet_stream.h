/* SPDX-License-Identifier: MIT */
/*
 * Packet streams: the bulk data path of a session.
 *
 * One shared-memory region holds a submit ring, an acknowledgement ring and
 * a bulk buffer. The source allocates packets in the bulk buffer, fills them
 * and submits descriptors; the sink processes them and acknowledges them;
 * the source then frees them. Offsets, never pointers, cross the boundary.
 *
 *   region: [ submit ring | ack ring | bulk buffer ]
 *   ring:   head (consumer) | tail (producer) | waiting flag | descriptors
 *
 * Each side keeps the geometry (ring capacity, bulk size) privately, from
 * session setup; the shared memory holds only indexes and descriptors, and
 * every value read from it is checked before use: a hostile peer can make
 * a stream fail, never make us read or write outside the region or loop.
 *
 * Notifications (eventfds) go only on empty->non-empty transitions the
 * consumer asked for: it sets "waiting" before it sleeps, and the producer
 * signals only if it sees the flag (sDDF's "consumer signalled" scheme).
 */
#ifndef BULKHEAD_PACKET_STREAM_H
#define BULKHEAD_PACKET_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A consumer that polled this often without sleeping lets its producer skip
 * the fence in bh_ps_flush, and pays a membarrier when it next sleeps
 * (lib/packet_stream.c explains).
 */
#define BH_PS_HEAVY_AFTER (1u << 14)

/*
 * Where a ring's fields lie in shared memory, in bytes from the ring's
 * start: the layout is the protocol between the two sides (and what a test
 * playing a hostile peer writes to). Each index has a cache line to itself.
 */
#define BH_PS_RING_HEAD 0
#define BH_PS_RING_TAIL 64
#define BH_PS_RING_WAITING 128
#define BH_PS_RING_DESC 192

/* one descriptor: 32 bytes */
struct bh_ps_desc {
	uint64_t offset; /* into the bulk buffer */
	uint32_t length;
	uint32_t op;	 /* session-defined: e.g. block read/write */
	uint64_t arg;	 /* session-defined: e.g. block number */
	uint32_t tag;	 /* source-defined: echoed back in the ack */
	int32_t status;	 /* sink -> source: 0 or -errno */
};

enum bh_ps_role { BH_PS_SOURCE, BH_PS_SINK };

/* the private view of one ring in shared memory */
struct bh_ps_ring {
	struct bh_ps_ring_shared *shared;
	uint32_t capacity; /* power of two, private */
	uint32_t head;	   /* our copy: consumer index */
	uint32_t tail;	   /* our copy: producer index */
	int efd;	   /* signals the ring's consumer */
	/* consumer: polls since it last slept; whether its producer may skip fences */
	uint32_t polls;
	bool heavy;
};

struct bh_packet_stream {
	enum bh_ps_role role;
	void *base;
	size_t size;
	uint8_t *bulk;
	uint64_t bulk_size;
	struct bh_ps_ring submit; /* source -> sink */
	struct bh_ps_ring ack;	  /* sink -> source */
	/* source only: fixed-size slots in the bulk buffer */
	uint32_t slot_size;
	uint32_t slot_shift; /* log2(slot_size) when a power of two, else 0 */
	uint32_t nslots;
	uint32_t *free_slots;
	uint32_t nfree;
	uint8_t *slot_busy;
	/* hostile-peer accounting */
	uint64_t invalid;
};

/* bytes of shared memory for this geometry (rings rounded to pages) */
size_t bh_ps_region_size(uint32_t capacity, uint64_t bulk_size);

/*
 * Attach to a region both sides map. capacity: ring entries, a power of
 * two; bulk_size: bytes of bulk buffer; slot_size: source's allocation
 * unit (ignored by the sink). submit_efd signals the sink, ack_efd the
 * source. Indexes start from what the region holds (a fresh region is
 * zeroed), so either side may attach first. 0 or -errno.
 */
int bh_ps_attach(struct bh_packet_stream *ps, enum bh_ps_role role, void *base, size_t size,
		 uint32_t capacity, uint64_t bulk_size, uint32_t slot_size, int submit_efd,
		 int ack_efd);
void bh_ps_detach(struct bh_packet_stream *ps);

/* source: a slot of at least len bytes; -ENOBUFS when all are in flight */
int bh_ps_alloc(struct bh_packet_stream *ps, uint32_t len, struct bh_ps_desc *d);
void bh_ps_free(struct bh_packet_stream *ps, const struct bh_ps_desc *d);
/*
 * source: consecutive slots for a payload larger than one (up to the bulk
 * buffer), or one slot; -ENOBUFS when no run of free slots is that long.
 * bh_ps_free_span gives back what bh_ps_alloc_span took for len bytes at offset.
 */
int bh_ps_alloc_span(struct bh_packet_stream *ps, uint32_t len, struct bh_ps_desc *d);
void bh_ps_free_span(struct bh_packet_stream *ps, uint64_t offset, uint32_t len);

/* the payload of a validated descriptor */
static inline void *bh_ps_data(struct bh_packet_stream *ps, const struct bh_ps_desc *d)
{
	return ps->bulk + d->offset;
}

/*
 * Produce: queue up to n descriptors on our outgoing ring (source: submit,
 * sink: ack); returns how many fit. Nothing is visible to the peer until
 * bh_ps_flush(), which publishes and signals if the peer is waiting.
 */
unsigned int bh_ps_put(struct bh_packet_stream *ps, const struct bh_ps_desc *d, unsigned int n);
void bh_ps_flush(struct bh_packet_stream *ps);
/* free room on our outgoing ring */
unsigned int bh_ps_space(struct bh_packet_stream *ps);

/*
 * Consume: up to n descriptors from our incoming ring (sink: submit,
 * source: ack), each copied out of shared memory and validated. A
 * descriptor outside the bulk buffer is counted in ps->invalid; the sink
 * gets it back with status -EINVAL (so it can ack it), the source drops
 * it. Returns the count, or -EPROTO if the peer corrupted the indexes
 * (the stream is unusable: close the session).
 */
int bh_ps_get(struct bh_packet_stream *ps, struct bh_ps_desc *d, unsigned int n);

/*
 * A sink's take: up to n requests, no more than its ack ring has room for
 * once the inflight ones taken earlier are acknowledged, so every request
 * taken can be acked. The count (0: nothing, or no room), or -EPROTO.
 */
int bh_ps_take(struct bh_packet_stream *ps, unsigned int inflight, struct bh_ps_desc *d,
	       unsigned int n);

/*
 * Before sleeping on the incoming eventfd: sets our waiting flag and
 * re-checks. Returns true if the ring is still empty (sleep now), false if
 * something arrived meanwhile (consume first).
 */
bool bh_ps_prepare_wait(struct bh_packet_stream *ps);
/*
 * source: free the slots whose acks came back; then the number of frames
 * that may be submitted now (free slots, bounded by ring room and max),
 * or -EPROTO
 */
int bh_ps_reclaim(struct bh_packet_stream *ps, unsigned int max);
/* something waits on our incoming ring (taken by nothing: a look before sleeping) */
bool bh_ps_pending(const struct bh_packet_stream *ps);
/* clear the incoming eventfd's count after a wake-up */
void bh_ps_drain_signal(struct bh_packet_stream *ps);
/* the fd to poll for incoming descriptors */
int bh_ps_wait_fd(const struct bh_packet_stream *ps);

#endif
