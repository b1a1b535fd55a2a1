// SPDX-License-Identifier: MIT
/*
 * Receive coalescing (lib/coalesce.c): TCP segments built here with valid
 * checksums go in; what would be written to the TAP is recorded and checked
 * the way Linux would see it: the virtio_net_hdr, the IP length and header
 * checksum, the partial TCP checksum completed and verified, the payload
 * bytes in sequence order. Then the cases that must not merge, and frames
 * too short or lying about their lengths (run under ASan in make check).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "bulkhead/coalesce.h"

#define ACK 0x10
#define PSH 0x08
#define SYN 0x02
#define FIN 0x01
#define MSS 1448
#define OPT 12 /* NOP NOP timestamps */

/* what reached "Linux" */
struct out {
	struct virtio_net_hdr vh;
	uint8_t data[70000];
	uint32_t len;
};

struct rec {
	struct out pkt[128];
	unsigned int n;
};

static bool record(void *ctx, const struct iovec *iov, int n)
{
	struct rec *r = ctx;
	struct out *o = &r->pkt[r->n++];

	assert_true(r->n <= 128);
	assert_int_equal(iov[0].iov_len, sizeof(o->vh));
	memcpy(&o->vh, iov[0].iov_base, sizeof(o->vh));
	o->len = 0;
	for (int i = 1; i < n; i++) {
		assert_true(o->len + iov[i].iov_len <= sizeof(o->data));
		memcpy(o->data + o->len, iov[i].iov_base, iov[i].iov_len);
		o->len += (uint32_t) iov[i].iov_len;
	}
	return true;
}

static uint32_t sum(const uint8_t *p, size_t len, uint32_t s)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		s += (uint32_t) p[i] << 8 | p[i + 1];
	if (len & 1)
		s += (uint32_t) p[len - 1] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t) s;
}

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) (v >> 8);
	p[1] = (uint8_t) v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v);
}

static uint32_t get16(const uint8_t *p)
{
	return (uint32_t) p[0] << 8 | p[1];
}

static uint32_t get32(const uint8_t *p)
{
	return get16(p) << 16 | get16(p + 2);
}

/* a segment's payload byte: a function of its sequence number */
static uint8_t pattern(uint32_t seq)
{
	return (uint8_t) (seq * 7 + (seq >> 8));
}

struct seg_spec {
	bool v6;
	uint16_t sport;
	uint32_t seq, ack;
	uint8_t flags;
	uint32_t payload;
	uint16_t id;
	uint16_t window;
};

/* a whole frame with valid checksums; returns its length */
static uint32_t build(uint8_t *f, const struct seg_spec *s)
{
	uint32_t l3 = 14, iph = s->v6 ? 40 : 20, l4 = l3 + iph, thl = 20 + OPT;
	uint32_t tcp_len = thl + s->payload;
	uint8_t *ip = f + l3, *th = f + l4;

	memset(f, 0, l4 + thl);
	memcpy(f, "\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02", 12);
	if (s->v6) {
		put16(f + 12, 0x86dd);
		ip[0] = 0x60;
		put16(ip + 4, tcp_len);
		ip[6] = 6;
		ip[7] = 64;
		ip[8 + 15] = 2;	 /* ::2 */
		ip[24 + 15] = 1; /* ::1 */
	} else {
		put16(f + 12, 0x0800);
		ip[0] = 0x45;
		put16(ip + 2, iph + tcp_len);
		put16(ip + 4, s->id);
		put16(ip + 6, 0x4000); /* DF */
		ip[8] = 64;
		ip[9] = 6;
		memcpy(ip + 12, "\x0a\x00\x00\x02\x0a\x00\x00\x01", 8);
		put16(ip + 10, (uint16_t) ~fold(sum(ip, 20, 0)));
	}
	put16(th, s->sport);
	put16(th + 2, 5201);
	put32(th + 4, s->seq);
	put32(th + 8, s->ack);
	th[12] = (uint8_t) (thl / 4) << 4;
	th[13] = s->flags;
	put16(th + 14, s->window ? s->window : 502);
	memcpy(th + 20, "\x01\x01\x08\x0a\x00\x00\x10\x00\x00\x00\x20\x00", OPT);
	for (uint32_t i = 0; i < s->payload; i++)
		th[thl + i] = pattern(s->seq + i);
	uint32_t ps = bh_tcp_pseudo_sum(ip, s->v6, tcp_len);
	put16(th + 16, (uint16_t) ~fold(sum(th, tcp_len, ps)));
	return l4 + tcp_len;
}

struct ctx {
	struct bh_coalesce c;
	struct rec r;
	uint8_t frames[80][1600]; /* stay valid until the flush, like rx slots */
	unsigned int nframes;
};

static int setup(void **state)
{
	struct ctx *x = calloc(1, sizeof(*x));

	if (!x)
		return -1;
	bh_coalesce_init(&x->c, record, &x->r);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	free(*state);
	return 0;
}

static void add(struct ctx *x, const struct seg_spec *s, bool csum_ok)
{
	uint8_t *f = x->frames[x->nframes++];
	uint32_t len = build(f, s);

	/* Ethernet's minimum: short frames come padded */
	if (len < 60) {
		memset(f + len, 0xee, 60 - len);
		len = 60;
	}
	bh_coalesce_add(&x->c, f, len, csum_ok);
}

/* n full segments of one flow from seq, the last with flags `last` */
static void add_run(struct ctx *x, bool v6, uint32_t seq, unsigned int n, uint8_t last)
{
	for (unsigned int i = 0; i < n; i++) {
		struct seg_spec s = {.v6 = v6,
				     .sport = 40000,
				     .seq = seq + i * MSS,
				     .ack = 1,
				     .flags = i + 1 == n ? last : ACK,
				     .payload = MSS,
				     .id = (uint16_t) (100 + i)};
		add(x, &s, true);
	}
}

/*
 * Check one packet as Linux would take it: headers consistent, the partial
 * checksum (if any) completed and verified, the payload in sequence from
 * seq; returns the payload length.
 */
static uint32_t check_packet(const struct out *o, uint32_t seq)
{
	const uint8_t *f = o->data;
	bool v6 = get16(f + 12) == 0x86dd;
	uint32_t l4 = 14 + (v6 ? 40 : 20);
	const uint8_t *ip = f + 14, *th = f + l4;
	uint32_t tcp_len = o->len - l4, thl = (uint32_t) (th[12] >> 4) * 4;
	uint8_t copy[70000];

	if (v6) {
		assert_int_equal(get16(ip + 4), tcp_len);
	} else {
		assert_int_equal(get16(ip + 2), o->len - 14);
		assert_int_equal(fold(sum(ip, 20, 0)), 0xffff);
	}
	assert_int_equal(get32(th + 4), seq);
	memcpy(copy, th, tcp_len);
	if (o->vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		/* what the partial checksum becomes: the field holds the pseudo-header's sum */
		assert_int_equal(o->vh.csum_start, l4);
		assert_int_equal(o->vh.csum_offset, 16);
		assert_int_equal(get16(th + 16), bh_tcp_pseudo_sum(ip, v6, tcp_len));
		put16(copy + 16, (uint16_t) ~fold(sum(copy, tcp_len, 0)));
	}
	assert_int_equal(fold(sum(copy, tcp_len, bh_tcp_pseudo_sum(ip, v6, tcp_len))), 0xffff);
	for (uint32_t i = 0; i < tcp_len - thl; i++)
		assert_int_equal(th[thl + i], pattern(seq + i));
	return tcp_len - thl;
}

static void merges_a_run_into_one_gso_packet(void **state)
{
	struct ctx *x = *state;

	add_run(x, false, 1000, 10, ACK | PSH);
	assert_int_equal(x->r.n, 0); /* held until the flush */
	bh_coalesce_flush(&x->c);
	assert_int_equal(x->r.n, 1);
	struct out *o = &x->r.pkt[0];
	assert_int_equal(o->vh.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
	assert_int_equal(o->vh.gso_size, MSS);
	assert_int_equal(o->vh.hdr_len, 14 + 20 + 20 + OPT);
	assert_int_equal(check_packet(o, 1000), 10 * MSS);
	/* the last segment's PSH is the merged one's */
	assert_int_equal(o->data[14 + 20 + 13], ACK | PSH);
	assert_int_equal(x->c.merged, 9);
	assert_int_equal(x->c.frames_in, 10);
}

static void merges_ipv6(void **state)
{
	struct ctx *x = *state;

	add_run(x, true, 7, 5, ACK);
	bh_coalesce_flush(&x->c);
	assert_int_equal(x->r.n, 1);
	assert_int_equal(x->r.pkt[0].vh.gso_type, VIRTIO_NET_HDR_GSO_TCPV6);
	assert_int_equal(check_packet(&x->r.pkt[0], 7), 5 * MSS);
}

static void a_single_segment_goes_up_with_a_partial_checksum(void **state)
{
	struct ctx *x = *state;

	add_run(x, false, 5, 1, ACK);
	bh_coalesce_flush(&x->c);
	assert_int_equal(x->r.n, 1);
	assert_int_equal(x->r.pkt[0].vh.gso_type, VIRTIO_NET_HDR_GSO_NONE);
	assert_int_equal(check_packet(&x->r.pkt[0], 5), MSS);
}

static void psh_and_short_segments_end_a_packet(void **state)
{
	struct ctx *x = *state;
	struct seg_spec shrt = {
	    .sport = 40000, .seq = 1 + 3 * MSS, .ack = 1, .flags = ACK, .payload = 100, .id = 103};

	add_run(x, false, 1, 3, ACK | PSH); /* 3 merged, closed by PSH */
	add(x, &shrt, true);		    /* starts the next */
	add_run(x, false, 1 + 3 * MSS + 100, 2, ACK);
	bh_coalesce_flush(&x->c);
	assert_int_equal(x->r.n, 3);
	assert_int_equal(check_packet(&x->r.pkt[0], 1), 3 * MSS);
	/* a short segment closes what it joins: nothing may follow it */
	assert_int_equal(check_packet(&x->r.pkt[1], 1 + 3 * MSS), 100);
	assert_int_equal(check_packet(&x->r.pkt[2], 1 + 3 * MSS + 100), 2 * MSS);
}

static void a_gap_or_another_ack_starts_a_new_packet(void **state)
{
	struct ctx *x = *state;
	struct seg_spec other_ack = {
	    .sport = 40000, .seq = 1 + 6 * MSS, .ack = 99, .flags = ACK, .payload = MSS, .id = 9};

	add_run(x, false, 1, 2, ACK);
	add_run(x, false, 1 + 3 * MSS, 3, ACK); /* the segment at 1 + 2*MSS went missing */
	add(x, &other_ack, true);
	bh_coalesce_flush(&x->c);
	assert_int_equal(x->r.n, 3);
	assert_int_equal(check_packet(&x->r.pkt[0], 1), 2 * MSS);
	assert_int_equal(check_packet(&x->r.pkt[1], 1 + 3 * MSS), 3 * MSS);
	assert_int_equal(check_packet(&x->r.pkt[2], 1 + 6 * MSS), MSS);
}

static void flows_merge_separately_and_keep_their_order(void **state)
{
	struct ctx *x = *state;

	for (unsigned int i = 0; i < 6; i++) {
		struct seg_spec a = {.sport = 1,
				     .seq = i * MSS,
				     .ack = 1,
				     .flags = ACK,
				     .payload = MSS,
				     .id = (uint16_t) i};
		struct seg_spec b = a;
		b.sport = 2;
		b.seq = 50000 + i * MSS;
		add(x, &a, true);
		add(x, &b, true);
	}
	bh_coalesce_flush(&x->c);
	assert_int_equal(x->r.n, 2);
	assert_int_equal(get16(x->r.pkt[0].data + 34), 1);
	assert_int_equal(check_packet(&x->r.pkt[0], 0), 6 * MSS);
	assert_int_equal(get16(x->r.pkt[1].data + 34), 2);
	assert_int_equal(check_packet(&x->r.pkt[1], 50000), 6 * MSS);
}

static void what_cannot_merge_passes_after_its_flow(void **state)
{
	struct ctx *x = *state;
	struct seg_spec fin = {
	    .sport = 40000, .seq = 1 + 2 * MSS, .ack = 1, .flags = ACK | FIN, .id = 3};
	struct seg_spec unverified = {
	    .sport = 40000, .seq = 1 + 2 * MSS, .ack = 1, .flags = ACK, .payload = MSS, .id = 4};

	add_run(x, false, 1, 2, ACK);
	add(x, &fin, true);
	assert_int_equal(x->r.n, 2); /* the merged pair, then the FIN as it came */
	assert_int_equal(check_packet(&x->r.pkt[0], 1), 2 * MSS);
	assert_int_equal(x->r.pkt[1].vh.gso_type, VIRTIO_NET_HDR_GSO_NONE);
	assert_int_equal(x->r.pkt[1].vh.flags, VIRTIO_NET_HDR_F_DATA_VALID);
	assert_int_equal(x->r.pkt[1].len, 14 + 20 + 20 + OPT); /* as it came */
	assert_int_equal(x->r.pkt[1].data[14 + 20 + 13], ACK | FIN);
	/* a frame the NIC did not verify is never merged, nor marked checked */
	add(x, &unverified, false);
	assert_int_equal(x->r.n, 3);
	assert_int_equal(x->r.pkt[2].vh.flags, 0);
	assert_int_equal(check_packet(&x->r.pkt[2], 1 + 2 * MSS), MSS);
}

static void other_protocols_flush_and_pass(void **state)
{
	struct ctx *x = *state;
	uint8_t arp[60] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 2, 0x08, 0x06};

	add_run(x, false, 1, 3, ACK);
	bh_coalesce_add(&x->c, arp, sizeof(arp), false);
	assert_int_equal(x->r.n, 2);
	assert_int_equal(check_packet(&x->r.pkt[0], 1), 3 * MSS);
	assert_int_equal(x->r.pkt[1].len, 60);
	assert_memory_equal(x->r.pkt[1].data, arp, 60);
}

static void a_packet_stays_within_64k(void **state)
{
	struct ctx *x = *state;

	add_run(x, false, 1, 50, ACK);
	bh_coalesce_flush(&x->c);
	assert_int_equal(x->r.n, 2);
	uint32_t first = check_packet(&x->r.pkt[0], 1);
	assert_true(first + 20 + 20 + OPT <= 65535);
	assert_int_equal(first, 45 * MSS); /* 45 * 1448 + 52 = 65212; one more does not fit */
	assert_int_equal(check_packet(&x->r.pkt[1], 1 + first), 5 * MSS);
}

static void many_flows_evict_the_oldest(void **state)
{
	struct ctx *x = *state;

	for (unsigned int f = 0; f < BH_COALESCE_FLOWS + 2; f++)
		for (unsigned int i = 0; i < 2; i++) {
			struct seg_spec s = {.sport = (uint16_t) (100 + f),
					     .seq = i * MSS,
					     .ack = 1,
					     .flags = ACK,
					     .payload = MSS};
			add(x, &s, true);
		}
	bh_coalesce_flush(&x->c);
	assert_int_equal(x->r.n, BH_COALESCE_FLOWS + 2);
	for (unsigned int f = 0; f < BH_COALESCE_FLOWS + 2; f++) {
		assert_int_equal(get16(x->r.pkt[f].data + 34), 100 + f);
		assert_int_equal(check_packet(&x->r.pkt[f], 0), 2 * MSS);
	}
}

/* headers that lie: every one goes through untouched, nothing is read out of bounds */
static void lying_headers_pass_untouched(void **state)
{
	struct ctx *x = *state;
	struct seg_spec s = {.sport = 1, .ack = 1, .flags = ACK, .payload = MSS};
	static const struct {
		uint32_t off;
		uint8_t val;
		uint32_t len; /* 0: the whole frame */
	} lies[] = {
	    {16, 0xff, 0},	     /* IPv4 total length beyond the frame */
	    {14, 0x46, 0},	     /* IPv4 options */
	    {20, 0x20, 0},	     /* more fragments */
	    {14 + 20 + 12, 0x40, 0}, /* TCP data offset 16 bytes */
	    {14 + 20 + 12, 0xf0, 0}, /* 60 bytes of TCP header */
	    {14, 0x44, 0},	     /* an IPv4 header shorter than 20 bytes */
	    {14 + 9, 17, 0},	     /* UDP */
	    {0, 0, 20},		     /* a frame cut to 20 bytes */
	    {0, 0, 53},		     /* ... and to just short of a TCP header */
	};

	for (unsigned int i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		uint32_t len = build(x->frames[0], &s);
		if (lies[i].len)
			len = lies[i].len;
		else
			x->frames[0][lies[i].off] = lies[i].val;
		uint8_t *f = malloc(len); /* exactly len: ASan sees any overread */
		assert_non_null(f);
		memcpy(f, x->frames[0], len);
		x->r.n = 0;
		bh_coalesce_add(&x->c, f, len, true);
		bh_coalesce_flush(&x->c);
		assert_int_equal(x->r.n, 1);
		if (lies[i].off != 14 + 20 + 12 || lies[i].val != 0xf0) {
			assert_int_equal(x->r.pkt[0].len, len);
			assert_memory_equal(x->r.pkt[0].data, f, len);
		}
		free(f);
	}
}

/* ---- IPv4 fragments, as QEMU 7.2's e1000e cuts a TSO segment ---- */

#define UNIT 1448 /* IP payload per fragment */

/*
 * One TCP segment of `payload` bytes from seq, cut into fragments of UNIT
 * bytes of IP payload; of those, numbers from..to-1 are added (to 0: all)
 * except `skip` (-1: none); `corrupt` flips a payload byte. Returns the
 * fragment count.
 */
static unsigned int add_some_fragments(struct ctx *x, uint32_t seq, uint32_t payload,
				       unsigned int from, unsigned int to, int skip, bool corrupt,
				       uint16_t id)
{
	static uint8_t whole[70000];
	struct seg_spec s = {
	    .sport = 40000, .seq = seq, .ack = 1, .flags = ACK, .payload = payload, .id = id};
	uint32_t len = build(whole, &s), ip_payload = len - 34;
	unsigned int n = 0;

	if (corrupt)
		whole[len - 1] ^= 1;
	for (uint32_t off = 0; off < ip_payload; off += UNIT, n++) {
		uint32_t part = ip_payload - off < UNIT ? ip_payload - off : UNIT;
		bool more = off + part < ip_payload;
		uint8_t *f = x->frames[x->nframes];
		if ((int) n == skip || n < from || (to && n >= to))
			continue;
		memcpy(f, whole, 34);
		put16(f + 16, 20 + part);
		put16(f + 20, 0x4000 | (more ? 0x2000 : 0) | off / 8);
		put16(f + 24, 0);
		put16(f + 24, (uint16_t) ~fold(sum(f + 14, 20, 0)));
		memcpy(f + 34, whole + 34 + off, part);
		x->nframes++;
		/* the NIC cannot check a fragment's TCP checksum */
		bh_coalesce_add(&x->c, f, 34 + part, false);
	}
	return n;
}

static unsigned int add_fragments(struct ctx *x, uint32_t seq, uint32_t payload, int skip,
				  bool corrupt, uint16_t id)
{
	return add_some_fragments(x, seq, payload, 0, 0, skip, corrupt, id);
}

static void fragments_become_one_segment(void **state)
{
	struct ctx *x = *state;
	uint32_t payload = 40000;

	add_fragments(x, 77, payload, -1, false, 1);
	bh_coalesce_flush(&x->c);
	assert_int_equal(x->r.n, 1);
	struct out *o = &x->r.pkt[0];
	assert_int_equal(o->vh.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
	/* cut again, its segments fit where the fragments did */
	assert_int_equal(o->vh.gso_size, UNIT - 20 - OPT);
	assert_int_equal(o->vh.hdr_len, 34 + 20 + OPT);
	assert_int_equal(get16(o->data + 20) & 0x3fff, 0); /* no longer a fragment */
	assert_int_equal(check_packet(o, 77), payload);
}

static void fragments_wait_across_batches(void **state)
{
	struct ctx *x = *state;

	/* the batch ends mid-datagram: held, not written */
	add_some_fragments(x, 1, 20000, 0, 6, -1, false, 2);
	bh_coalesce_flush(&x->c);
	assert_int_equal(x->r.n, 0);
	/* the next batch brings the rest */
	add_some_fragments(x, 1, 20000, 6, 0, -1, false, 2);
	assert_int_equal(x->r.n, 1);
	assert_int_equal(x->r.pkt[0].vh.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
	assert_int_equal(check_packet(&x->r.pkt[0], 1), 20000);
	/* going idle mid-datagram writes what there is: fragments Linux can reassemble */
	add_some_fragments(x, 1 + 20000, 20000, 0, 4, -1, false, 3);
	assert_true(bh_coalesce_holding(&x->c));
	bh_coalesce_flush_all(&x->c);
	assert_false(bh_coalesce_holding(&x->c));
	assert_int_equal(x->r.n, 1 + 4);
	for (unsigned int k = 0; k < 4; k++) {
		struct out *o = &x->r.pkt[1 + k];
		/* as they came: DF, MF, UNIT bytes each at their offsets */
		assert_int_equal(get16(o->data + 20), 0x4000 | 0x2000 | k * UNIT / 8);
		assert_int_equal(get16(o->data + 16), 20 + UNIT);
		assert_int_equal(fold(sum(o->data + 14, 20, 0)), 0xffff);
		assert_int_equal(o->len, 34 + UNIT);
	}
}

static void a_lost_fragment_leaves_fragments(void **state)
{
	struct ctx *x = *state;
	uint32_t payload = 10000;

	unsigned int n = add_fragments(x, 1, payload, 3, false, 4);
	bh_coalesce_flush_all(&x->c);
	/* every fragment but the lost one, each as large as it came, in order */
	assert_int_equal(x->r.n, n - 1);
	for (unsigned int k = 0; k < x->r.n; k++) {
		struct out *o = &x->r.pkt[k];
		unsigned int frag = k < 3 ? k : k + 1;
		assert_int_equal(o->vh.flags, 0);
		assert_int_equal((get16(o->data + 20) & 0x1fff) * 8, frag * UNIT);
		assert_int_equal(fold(sum(o->data + 14, 20, 0)), 0xffff);
		if (frag + 1 < n) /* all but the last are full */
			assert_int_equal(o->len, 34 + UNIT);
	}
	assert_int_equal(get16(x->r.pkt[0].data + 20), 0x4000 | 0x2000); /* DF, MF, offset 0 */
	/* the start, from our buffer, has the payload it came with */
	assert_memory_equal(x->r.pkt[1].data + 34, x->frames[1] + 34, UNIT);
}

static void a_reassembled_segment_with_a_bad_checksum_is_dropped(void **state)
{
	struct ctx *x = *state;

	add_fragments(x, 1, 10000, -1, true, 5);
	bh_coalesce_flush_all(&x->c);
	assert_int_equal(x->r.n, 0);
	assert_int_equal(x->c.bad_csum, 1);
}

static void a_fragment_with_a_bad_header_passes_as_it_came(void **state)
{
	struct ctx *x = *state;
	uint8_t *f = x->frames[0];

	add_fragments(x, 1, 3000, -1, false, 6); /* 3 fragments: the last completes it */
	assert_int_equal(x->r.n, 1);
	/* the same first fragment with its header checksum broken */
	f[24] ^= 0xff;
	bh_coalesce_add(&x->c, f, 34 + UNIT, false);
	bh_coalesce_flush_all(&x->c);
	assert_int_equal(x->r.n, 2);
	assert_int_equal(x->r.pkt[1].len, 34 + UNIT);
	assert_memory_equal(x->r.pkt[1].data, f, 34 + UNIT);
}

static void datagrams_that_overtake_each_other_are_joined(void **state)
{
	struct ctx *x = *state;

	/* the start of one, all of the next, then the rest of the first */
	add_some_fragments(x, 1, 20000, 0, 5, -1, false, 10);
	add_fragments(x, 1 + 20000, 10000, -1, false, 11);
	assert_int_equal(x->r.n, 1); /* the second, whole */
	assert_int_equal(check_packet(&x->r.pkt[0], 1 + 20000), 10000);
	add_some_fragments(x, 1, 20000, 5, 0, -1, false, 10);
	assert_int_equal(x->r.n, 2);
	assert_int_equal(x->r.pkt[1].vh.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
	assert_int_equal(check_packet(&x->r.pkt[1], 1), 20000);
	assert_false(bh_coalesce_holding(&x->c));
}

static void segments_and_fragments_of_one_flow_keep_their_order(void **state)
{
	struct ctx *x = *state;

	add_run(x, false, 1, 2, ACK);			   /* plain segments: held as a flow */
	add_fragments(x, 1 + 2 * MSS, 5000, -1, false, 7); /* then a fragmented one */
	add_run(x, false, 1 + 2 * MSS + 5000, 2, ACK);	   /* then plain again */
	bh_coalesce_flush_all(&x->c);
	assert_int_equal(x->r.n, 3);
	assert_int_equal(check_packet(&x->r.pkt[0], 1), 2 * MSS);
	assert_int_equal(check_packet(&x->r.pkt[1], 1 + 2 * MSS), 5000);
	assert_int_equal(check_packet(&x->r.pkt[2], 1 + 2 * MSS + 5000), 2 * MSS);
}

/* ---- transmit: a segment appended to the one before (bh_coalesce_tx_append) ---- */

static uint8_t txa[70000], txb[70000], txsave[70000];

/* the larger frame as the NIC will cut it: lengths, sums, sequence, payload */
static void check_tx(const uint8_t *f, uint32_t len, bool v6, uint32_t seq, uint32_t payload)
{
	uint32_t l4 = v6 ? 54 : 34, thl = 20 + OPT;

	assert_int_equal(len, l4 + thl + payload);
	if (v6) {
		assert_int_equal(get16(f + 18), len - 54);
	} else {
		assert_int_equal(get16(f + 16), len - 14);
		assert_int_equal(fold(sum(f + 14, 20, 0)), 0xffff);
	}
	assert_int_equal(get32(f + l4 + 4), seq);
	/* what Linux leaves for the NIC: the pseudo-header's sum, with the new length */
	assert_int_equal(get16(f + l4 + 16), bh_tcp_pseudo_sum(f + 14, v6, len - l4));
	for (uint32_t i = 0; i < payload; i++)
		if (f[l4 + thl + i] != pattern(seq + i))
			fail_msg("payload byte %u", i);
}

static void tx_a_segment_that_continues_is_appended(void **state)
{
	(void) state;
	for (int v6 = 0; v6 <= 1; v6++) {
		uint32_t l4 = v6 ? 54 : 34;
		struct seg_spec a = {.v6 = v6,
				     .sport = 40000,
				     .seq = 1000,
				     .ack = 1,
				     .flags = ACK,
				     .payload = 20 * MSS};
		struct seg_spec b = a;
		b.seq = a.seq + a.payload;
		b.payload = 10 * MSS;
		b.flags = ACK | PSH;
		uint32_t la = build(txa, &a), lb = build(txb, &b);
		txb[l4 + 24] = 0x11; /* a later timestamp value: a's stays */
		assert_true(bh_coalesce_tx_append(txa, &la, txb, lb, sizeof(txa)));
		check_tx(txa, la, v6, 1000, 30 * MSS);
		assert_int_equal(txa[l4 + 13], ACK | PSH); /* b's PSH, for the last segment */
		assert_int_equal(get32(txa + l4 + 24), 0x1000);
		/* and a third, after a PSH (a hint, nothing more) */
		b.seq = 1000 + 30 * MSS;
		b.payload = 500;
		lb = build(txb, &b);
		assert_true(bh_coalesce_tx_append(txa, &la, txb, lb, sizeof(txa)));
		check_tx(txa, la, v6, 1000, 30 * MSS + 500);
	}
}

static void tx_what_does_not_continue_is_left_alone(void **state)
{
	static const struct {
		const char *what;
		uint32_t off; /* in b, IPv4 */
		uint8_t xor ;
	} change[] = {
	    {"another destination MAC", 0, 1},
	    {"another TOS", 15, 4},
	    {"no DF", 20, 0x40},
	    {"another TTL", 22, 1},
	    {"another source address", 29, 1},
	    {"another port", 35, 1},
	    {"a sequence gap", 41, 1},
	    {"another ack number", 45, 1},
	    {"FIN", 47, FIN},
	    {"SYN", 47, SYN},
	    {"another window", 49, 1},
	    {"other options", 55, 1},
	    {"another timestamp echo layout", 57, 1},
	};
	struct seg_spec a = {
	    .sport = 40000, .seq = 1000, .ack = 1, .flags = ACK, .payload = 8 * MSS};
	struct seg_spec b = a;
	uint32_t la, lb, la0;

	(void) state;
	b.seq = a.seq + a.payload;
	for (size_t i = 0; i < sizeof(change) / sizeof(change[0]); i++) {
		la = la0 = build(txa, &a);
		lb = build(txb, &b);
		memcpy(txsave, txa, la);
		txb[change[i].off] ^= change[i].xor ;
		if (bh_coalesce_tx_append(txa, &la, txb, lb, sizeof(txa)))
			fail_msg("appended despite %s", change[i].what);
		assert_int_equal(la, la0);
		assert_memory_equal(txa, txsave, la0);
	}
	la = la0 = build(txa, &a);
	lb = build(txb, &b);
	/* too large for the buffer, or for IP */
	assert_false(bh_coalesce_tx_append(txa, &la, txb, lb, la + 8 * MSS - 1));
	struct seg_spec big = a;
	big.payload = 40000;
	la = build(txa, &big);
	b.seq = big.seq + big.payload;
	b.payload = 30000;
	lb = build(txb, &b);
	assert_false(bh_coalesce_tx_append(txa, &la, txb, lb, sizeof(txa)));
	/* nothing to append; a frame shorter than its headers say */
	b.payload = 0;
	lb = build(txb, &b);
	assert_false(bh_coalesce_tx_append(txa, &la, txb, lb, sizeof(txa)));
	b.payload = 100;
	lb = build(txb, &b);
	assert_false(bh_coalesce_tx_append(txa, &la, txb, lb - 1, sizeof(txa)));
	assert_false(bh_coalesce_tx_append(txa, &la, txb, 30, sizeof(txa)));
	/* a FIN ends what may grow */
	a.flags = ACK | FIN;
	la = build(txa, &a);
	b.seq = a.seq + a.payload;
	lb = build(txb, &b);
	assert_false(bh_coalesce_tx_append(txa, &la, txb, lb, sizeof(txa)));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(merges_a_run_into_one_gso_packet),
	    T(merges_ipv6),
	    T(a_single_segment_goes_up_with_a_partial_checksum),
	    T(psh_and_short_segments_end_a_packet),
	    T(a_gap_or_another_ack_starts_a_new_packet),
	    T(flows_merge_separately_and_keep_their_order),
	    T(what_cannot_merge_passes_after_its_flow),
	    T(other_protocols_flush_and_pass),
	    T(a_packet_stays_within_64k),
	    T(many_flows_evict_the_oldest),
	    T(lying_headers_pass_untouched),
	    T(fragments_become_one_segment),
	    T(fragments_wait_across_batches),
	    T(a_lost_fragment_leaves_fragments),
	    T(a_reassembled_segment_with_a_bad_checksum_is_dropped),
	    T(a_fragment_with_a_bad_header_passes_as_it_came),
	    T(segments_and_fragments_of_one_flow_keep_their_order),
	    T(datagrams_that_overtake_each_other_are_joined),
	    T(tx_a_segment_that_continues_is_appended),
	    T(tx_what_does_not_continue_is_left_alone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
