// SPDX-License-Identifier: MIT
/* Coalescing of TCP segments for a TAP with a virtio_net_hdr: see coalesce.h. */
#include <string.h>

#include "bulkhead/coalesce.h"

#define ETH_HLEN 14
#define IP_DF 0x4000 /* IPv4 fragment field: don't fragment, more fragments, offset */
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff
#define TCP_ACK 0x10
#define TCP_PSH 0x08
/* the largest IP packet (IPv4 total length, IPv6 payload length) */
#define IP_MAX 65535u

/* what a frame's own headers say */
struct seg {
	bool ip4, v6;
	bool frag; /* an IPv4 fragment: frag_off, mf and ip_end hold, nothing of TCP */
	bool mf;
	bool tcp; /* TCP over IPv4/IPv6, whole: l4, hdr_len, payload, seq, flags hold */
	uint16_t l4, hdr_len;
	uint32_t ip_end; /* where the IP packet ends in the frame (padding follows) */
	uint32_t frag_off;
	uint32_t payload, seq;
	uint8_t flags;
};

static uint32_t be16(const uint8_t *p)
{
	return (uint32_t) p[0] << 8 | p[1];
}

static uint32_t be32(const uint8_t *p)
{
	return be16(p) << 16 | be16(p + 2);
}

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) (v >> 8);
	p[1] = (uint8_t) v;
}

static uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += be16(p + i);
	if (len & 1)
		sum += (uint32_t) p[len - 1] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t) sum;
}

uint16_t bh_inet_sum(const uint8_t *p, size_t len, uint32_t sum)
{
	return fold(sum16(p, len, sum));
}

uint16_t bh_tcp_pseudo_sum(const uint8_t *ip, bool v6, uint32_t tcp_len)
{
	uint32_t sum = 6 + (tcp_len >> 16) + (tcp_len & 0xffff);

	if (v6)
		sum = sum16(ip + 8, 32, sum);
	else
		sum = sum16(ip + 12, 8, sum);
	return fold(sum);
}

/* h holds the first caplen bytes of a frame of len bytes */
static void parse(const uint8_t *h, uint32_t caplen, uint32_t len, struct seg *s)
{
	const uint8_t *ip = h + ETH_HLEN;
	uint32_t l4;

	memset(s, 0, sizeof(*s));
	if (caplen < ETH_HLEN + 20)
		return;
	if (be16(h + 12) == 0x0800) {
		uint32_t tot = be16(ip + 2), frag = be16(ip + 6);
		/* no options */
		if (ip[0] != 0x45 || tot < 20 || ETH_HLEN + tot > len)
			return;
		s->ip4 = true;
		s->ip_end = ETH_HLEN + tot;
		if (frag & (IP_MF | IP_OFFSET)) {
			s->frag = true;
			s->mf = (frag & IP_MF) != 0;
			s->frag_off = (frag & IP_OFFSET) * 8;
			return;
		}
		if (ip[9] != 6)
			return;
		l4 = ETH_HLEN + 20;
	} else if (be16(h + 12) == 0x86dd) {
		if (caplen < ETH_HLEN + 40 || ip[0] >> 4 != 6 || ip[6] != 6)
			return;
		l4 = ETH_HLEN + 40;
		s->ip_end = l4 + be16(ip + 4);
		s->v6 = true;
		if (s->ip_end > len)
			return;
	} else {
		return;
	}
	if (l4 + 20 > caplen)
		return;
	uint32_t thl = (uint32_t) (h[l4 + 12] >> 4) * 4;
	if (thl < 20 || l4 + thl > caplen || l4 + thl > s->ip_end)
		return;
	s->tcp = true;
	s->l4 = (uint16_t) l4;
	s->hdr_len = (uint16_t) (l4 + thl);
	s->payload = s->ip_end - l4 - thl;
	s->seq = be32(h + l4 + 4);
	s->flags = h[l4 + 13];
}

/* addresses and ports: the same connection, one direction */
static bool same_flow(const struct bh_coalesce_flow *f, const uint8_t *h, const struct seg *s)
{
	if (f->v6 != s->v6 || f->l4 != s->l4)
		return false;
	if (s->v6 ? memcmp(f->hdr + ETH_HLEN + 8, h + ETH_HLEN + 8, 32)
		  : memcmp(f->hdr + ETH_HLEN + 12, h + ETH_HLEN + 12, 8))
		return false;
	return !memcmp(f->hdr + s->l4, h + s->l4, 4);
}

/* may this segment of f's flow join it? (GRO's rules, see coalesce.h) */
static bool joins(const struct bh_coalesce_flow *f, const uint8_t *h, const struct seg *s)
{
	const uint8_t *a = f->hdr, *ip = h + ETH_HLEN;
	uint32_t l4 = s->l4;

	if (f->closed || f->nseg == BH_COALESCE_SEGS || s->hdr_len != f->hdr_len ||
	    s->seq != f->next_seq || s->payload > f->mss)
		return false;
	if (f->hdr_len - f->l3 + f->payload + s->payload > IP_MAX)
		return false;
	if (memcmp(a, h, 12)) /* the MAC addresses */
		return false;
	if (s->v6) {
		/* version, traffic class, flow label; hop limit */
		if (memcmp(a + ETH_HLEN, ip, 4) || a[ETH_HLEN + 7] != ip[7])
			return false;
	} else {
		/* TOS, DF, TTL; and an ID that counts on, unless DF makes it meaningless */
		const uint8_t *aip = a + ETH_HLEN;
		if (aip[1] != ip[1] || aip[6] != ip[6] || aip[8] != ip[8])
			return false;
		if (!(be16(ip + 6) & IP_DF) && be16(ip + 4) != ((be16(aip + 4) + f->nseg) & 0xffff))
			return false;
	}
	/* ack number; data offset, window; options */
	return !memcmp(a + l4 + 8, h + l4 + 8, 5) && !memcmp(a + l4 + 14, h + l4 + 14, 2) &&
	       !memcmp(a + l4 + 20, h + l4 + 20, s->hdr_len - l4 - 20);
}

static bool emit(struct bh_coalesce *c, struct iovec *iov, int n)
{
	bool ok = c->emit(c->ctx, iov, n);

	c->packets_out++;
	if (!ok)
		c->dropped++;
	return ok;
}

static void emit_plain(struct bh_coalesce *c, const uint8_t *frame, uint32_t len, bool csum_ok)
{
	struct virtio_net_hdr vh = {.flags = csum_ok ? VIRTIO_NET_HDR_F_DATA_VALID : 0};
	struct iovec iov[2] = {{&vh, sizeof(vh)}, {(void *) frame, len}};

	emit(c, iov, 2);
}

/* an IPv4 header (without options) with a new total length and fragment field */
static void ip4_header_fix(uint8_t *ip, uint32_t tot, uint32_t frag)
{
	put16(ip + 2, tot);
	put16(ip + 6, frag);
	put16(ip + 10, 0);
	put16(ip + 10, (uint16_t) ~fold(sum16(ip, 20, 0)));
}

/* write one flow's segments as one packet (the NIC checked them: a partial checksum) */
static void flow_write(struct bh_coalesce *c, struct bh_coalesce_flow *f)
{
	uint8_t *h = f->hdr, *ip = h + f->l3, *th = h + f->l4;
	uint32_t tcp_len = f->hdr_len - f->l4 + f->payload;
	struct virtio_net_hdr vh = {
	    .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
	    .gso_type = VIRTIO_NET_HDR_GSO_NONE,
	    .hdr_len = f->hdr_len,
	    .csum_start = f->l4,
	    .csum_offset = 16,
	};
	struct iovec iov[2 + BH_COALESCE_SEGS];

	if (f->nseg > 1) {
		vh.gso_type = f->v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
		vh.gso_size = f->mss;
		c->merged += f->nseg - 1;
	}
	if (f->v6) {
		put16(ip + 4, tcp_len);
	} else {
		ip4_header_fix(ip, f->l4 - f->l3 + tcp_len, be16(ip + 6));
	}
	put16(th + 16, bh_tcp_pseudo_sum(ip, f->v6, tcp_len));
	iov[0] = (struct iovec){&vh, sizeof(vh)};
	iov[1] = (struct iovec){h, f->hdr_len};
	memcpy(iov + 2, f->seg, sizeof(f->seg[0]) * f->nseg);
	emit(c, iov, 2 + (int) f->nseg);
	f->used = false;
}

/* write pending flow number i of the order (oldest first) and forget it */
static void pending_write(struct bh_coalesce *c, unsigned int i)
{
	flow_write(c, &c->flow[c->order[i]]);
	memmove(c->order + i, c->order + i + 1, (c->npending - i - 1) * sizeof(c->order[0]));
	c->npending--;
}

/* ---- IPv4 fragments ---- */

#define L3 ETH_HLEN
#define L4 (ETH_HLEN + 20)

/*
 * The start of a datagram (never the whole: its last fragment is missing)
 * goes up as fragments again, each no larger than the first one came: a
 * router forwarding them must find each within the MTU it crossed (Linux
 * drops a fragment with DF set that is larger than the way out).
 */
static void dgram_write_fragments(struct bh_coalesce *c, struct bh_coalesce_dgram *g)
{
	uint8_t hdr[L4];
	uint32_t df = be16(g->buf + L3 + 6) & IP_DF;
	struct virtio_net_hdr vh = {.gso_type = VIRTIO_NET_HDR_GSO_NONE};

	memcpy(hdr, g->buf, L4);
	for (uint32_t off = 0; off < g->have; off += g->unit) {
		uint32_t part = g->have - off < g->unit ? g->have - off : g->unit;
		struct iovec iov[3] = {{&vh, sizeof(vh)}, {hdr, L4}, {g->buf + L4 + off, part}};
		/* unit is a multiple of 8 (the first fragment had MF set) */
		ip4_header_fix(hdr + L3, 20 + part, df | IP_MF | off / 8);
		emit(c, iov, 3);
	}
}

/* what we have of a datagram goes up: whole, or as the fragments it started with */
static void dgram_write(struct bh_coalesce *c, struct bh_coalesce_dgram *g, bool whole)
{
	uint8_t *ip = g->buf + L3, *th = g->buf + L4;
	uint32_t df = be16(ip + 6) & IP_DF, thl = (uint32_t) (th[12] >> 4) * 4;
	struct virtio_net_hdr vh = {.gso_type = VIRTIO_NET_HDR_GSO_NONE};
	struct iovec iov[2] = {{&vh, sizeof(vh)}, {g->buf, L4 + g->have}};

	g->used = false;
	if (!whole) {
		dgram_write_fragments(c, g);
		return;
	}
	/* nobody checked the TCP checksum of fragments: we do, once, for the whole */
	if (fold(sum16(th, g->have, bh_tcp_pseudo_sum(ip, false, g->have))) != 0xffff) {
		c->bad_csum++;
		return;
	}
	ip4_header_fix(ip, 20 + g->have, df);
	put16(th + 16, bh_tcp_pseudo_sum(ip, false, g->have));
	vh.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	vh.csum_start = L4;
	vh.csum_offset = 16;
	vh.hdr_len = (uint16_t) (L4 + thl);
	/* more than one fragment's worth: segments cut from it fit where they did */
	if (g->have > g->unit) {
		vh.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
		vh.gso_size = (uint16_t) (g->unit - thl);
	}
	emit(c, iov, 2);
}

static bool same_pair(const uint8_t *ip_a, const uint8_t *ip_b)
{
	return !memcmp(ip_a + 12, ip_b + 12, 8);
}

/*
 * Before a fragment that joins nothing: segments held of the same source and
 * destination go first, and what is held of its own datagram (the same ID).
 * Other datagrams stay: when a NIC's ring is full, QEMU queues the rest of
 * a datagram and lets the next one overtake it, and Linux's reassembly,
 * which we stand in for, takes datagrams in any order too.
 */
static void pair_flush(struct bh_coalesce *c, const uint8_t *ip)
{
	for (unsigned int i = 0; i < BH_COALESCE_DGRAMS; i++)
		if (c->dgram[i].used && same_pair(c->dgram[i].buf + L3, ip) &&
		    !memcmp(c->dgram[i].buf + L3 + 4, ip + 4, 2))
			dgram_write(c, &c->dgram[i], false);
	for (unsigned int i = 0; i < c->npending;) {
		struct bh_coalesce_flow *f = &c->flow[c->order[i]];
		if (!f->v6 && same_pair(f->hdr + L3, ip))
			pending_write(c, i);
		else
			i++;
	}
}

/* a fragment continues g: the same datagram, the next bytes */
static bool dgram_joins(const struct bh_coalesce_dgram *g, const uint8_t *ip, uint32_t off,
			uint32_t len)
{
	const uint8_t *a = g->buf + L3;

	return same_pair(a, ip) && !memcmp(a + 4, ip + 4, 2) && a[9] == ip[9] && a[1] == ip[1] &&
	       a[8] == ip[8] && ((be16(a + 6) ^ be16(ip + 6)) & IP_DF) == 0 && off == g->have &&
	       g->have + len <= IP_MAX - 20;
}

static void frag_add(struct bh_coalesce *c, const uint8_t *frame, uint32_t len, const uint8_t *h,
		     const struct seg *s)
{
	const uint8_t *ip = h + L3;
	uint32_t plen = s->ip_end - L4;
	/* what the NIC did not verify for fragments: their IP headers */
	bool ok = fold(sum16(ip, 20, 0)) == 0xffff && (!s->mf || plen % 8 == 0);
	struct bh_coalesce_dgram *g = NULL;
	unsigned int i;

	for (i = 0; i < BH_COALESCE_DGRAMS; i++)
		if (c->dgram[i].used && dgram_joins(&c->dgram[i], ip, s->frag_off, plen))
			g = &c->dgram[i];
	if (g && ok) {
		memcpy(g->buf + L4 + g->have, frame + L4, plen);
		g->have += plen;
		c->merged++;
		if (!s->mf)
			dgram_write(c, g, true);
		return;
	}
	pair_flush(c, ip);
	/* a first fragment of TCP with its whole header and some data starts a datagram */
	uint32_t thl = (uint32_t) (h[L4 + 12] >> 4) * 4;
	if (!ok || s->frag_off || !s->mf || ip[9] != 6 || L4 + 20 > len || thl < 20 ||
	    plen < thl + 8) {
		emit_plain(c, frame, len, false);
		return;
	}
	for (i = 0; c->dgram[i].used; i++)
		if (i + 1 == BH_COALESCE_DGRAMS) {
			dgram_write(c, &c->dgram[0], false);
			i = 0;
			break;
		}
	g = &c->dgram[i];
	g->used = true;
	g->have = g->unit = plen;
	/* the headers from our copy (h), which later decisions read; then the data */
	memcpy(g->buf, h, L4 + thl);
	memcpy(g->buf + L4 + thl, frame + L4 + thl, plen - thl);
}

void bh_coalesce_init(struct bh_coalesce *c, bh_coalesce_emit *e, void *ctx)
{
	memset(c, 0, sizeof(*c));
	c->emit = e;
	c->ctx = ctx;
}

void bh_coalesce_flush(struct bh_coalesce *c)
{
	while (c->npending)
		pending_write(c, 0);
}

void bh_coalesce_flush_all(struct bh_coalesce *c)
{
	bh_coalesce_flush(c);
	for (unsigned int i = 0; i < BH_COALESCE_DGRAMS; i++)
		if (c->dgram[i].used)
			dgram_write(c, &c->dgram[i], false);
}

bool bh_coalesce_holding(const struct bh_coalesce *c)
{
	for (unsigned int i = 0; i < BH_COALESCE_DGRAMS; i++)
		if (c->dgram[i].used)
			return true;
	return false;
}

void bh_coalesce_add(struct bh_coalesce *c, const uint8_t *frame, uint32_t len, bool csum_ok)
{
	uint8_t h[BH_COALESCE_HDR_MAX];
	uint32_t caplen = len < sizeof(h) ? len : (uint32_t) sizeof(h);
	struct seg s;
	unsigned int i;

	c->frames_in++;
	memcpy(h, frame, caplen);
	parse(h, caplen, len, &s);
	if (s.frag) {
		frag_add(c, frame, len, h, &s);
		return;
	}
	if (!s.tcp) {
		/* not TCP we understand: it may belong to any flow, so they go first */
		bh_coalesce_flush_all(c);
		emit_plain(c, frame, len, csum_ok);
		return;
	}
	/* a datagram of these addresses being joined came first */
	if (s.ip4)
		for (i = 0; i < BH_COALESCE_DGRAMS; i++)
			if (c->dgram[i].used && same_pair(c->dgram[i].buf + L3, h + L3))
				dgram_write(c, &c->dgram[i], false);
	for (i = 0; i < c->npending; i++)
		if (same_flow(&c->flow[c->order[i]], h, &s))
			break;
	if (i < c->npending) {
		struct bh_coalesce_flow *f = &c->flow[c->order[i]];
		if (csum_ok && joins(f, h, &s) && s.payload && (s.flags & ~TCP_PSH) == TCP_ACK) {
			f->seg[f->nseg++] = (struct iovec){(void *) (frame + s.hdr_len), s.payload};
			f->payload += s.payload;
			f->next_seq += s.payload;
			if (s.payload < f->mss || (s.flags & TCP_PSH)) {
				f->closed = true;
				/* the merged segment carries the last one's PSH */
				f->hdr[s.l4 + 13] |= s.flags & TCP_PSH;
			}
			return;
		}
		pending_write(c, i);
	}
	if (!csum_ok || !s.payload || (s.flags & ~TCP_PSH) != TCP_ACK) {
		emit_plain(c, frame, len, csum_ok);
		return;
	}
	/* a new flow: in a free entry, or the oldest one's */
	if (c->npending == BH_COALESCE_FLOWS)
		pending_write(c, 0);
	for (i = 0; c->flow[i].used; i++)
		;
	struct bh_coalesce_flow *f = &c->flow[i];
	f->used = true;
	f->v6 = s.v6;
	f->l3 = ETH_HLEN;
	f->l4 = s.l4;
	f->hdr_len = s.hdr_len;
	f->mss = (uint16_t) s.payload;
	f->next_seq = s.seq + s.payload;
	f->payload = s.payload;
	f->closed = (s.flags & TCP_PSH) != 0;
	f->nseg = 1;
	memcpy(f->hdr, h, s.hdr_len);
	f->seg[0] = (struct iovec){(void *) (frame + s.hdr_len), s.payload};
	c->order[c->npending++] = i;
}

/* ---- transmit ---- */

#define TCP_OPT_NOP 1
#define TCP_OPT_TS 8

/* TCP options alike, but for the timestamp's values (a TSO frame's segments share a's) */
static bool options_alike(const uint8_t *a, const uint8_t *b, uint32_t len)
{
	/* the layout Linux sends: NOP, NOP, timestamp (10 bytes) first */
	if (len >= 12 && a[0] == TCP_OPT_NOP && a[1] == TCP_OPT_NOP && a[2] == TCP_OPT_TS &&
	    a[3] == 10 && !memcmp(a, b, 4))
		return !memcmp(a + 12, b + 12, len - 12);
	return !memcmp(a, b, len);
}

bool bh_coalesce_tx_append(uint8_t *a, uint32_t *a_len, const uint8_t *b, uint32_t b_len,
			   uint32_t max_len)
{
	uint8_t ha[BH_COALESCE_HDR_MAX], hb[BH_COALESCE_HDR_MAX];
	uint32_t cap_a = *a_len < sizeof(ha) ? *a_len : (uint32_t) sizeof(ha);
	uint32_t cap_b = b_len < sizeof(hb) ? b_len : (uint32_t) sizeof(hb);
	struct seg sa, sb;

	/* parse our copies: the buffers may be shared with a driver */
	memcpy(ha, a, cap_a);
	memcpy(hb, b, cap_b);
	parse(ha, cap_a, *a_len, &sa);
	parse(hb, cap_b, b_len, &sb);
	if (!sa.tcp || !sb.tcp || sa.v6 != sb.v6 || sa.hdr_len != sb.hdr_len || !sb.payload)
		return false;
	/* whole frames, no padding: what Linux hands a TAP reader */
	if (sa.ip_end != *a_len || sb.ip_end != b_len)
		return false;
	uint32_t len = *a_len + sb.payload, l3 = ETH_HLEN, l4 = sa.l4;
	if (len > max_len || len - l3 - (sa.v6 ? 40 : 0) > IP_MAX)
		return false;
	/* PSH is a hint for the receiver: the NIC sets it on the larger frame's last segment */
	if ((sa.flags & ~TCP_PSH) != TCP_ACK || (sb.flags & ~TCP_PSH) != TCP_ACK ||
	    sb.seq != sa.seq + sa.payload)
		return false;
	/* Ethernet header; ports, ack number, header length; window */
	if (memcmp(ha, hb, l3 + 2) || memcmp(ha + l4, hb + l4, 4) ||
	    memcmp(ha + l4 + 8, hb + l4 + 8, 5) || memcmp(ha + l4 + 14, hb + l4 + 14, 2))
		return false;
	if (sa.v6) {
		/* version, traffic class, flow label; next header, hop limit, addresses */
		if (memcmp(ha + l3, hb + l3, 4) || memcmp(ha + l3 + 6, hb + l3 + 6, 34))
			return false;
	} else {
		/* TOS; DF (IDs mean nothing with it); protocol, TTL; addresses */
		if (ha[l3 + 1] != hb[l3 + 1] || be16(ha + l3 + 6) != IP_DF ||
		    be16(hb + l3 + 6) != IP_DF || memcmp(ha + l3 + 8, hb + l3 + 8, 2) ||
		    memcmp(ha + l3 + 12, hb + l3 + 12, 8))
			return false;
	}
	if (!options_alike(ha + l4 + 20, hb + l4 + 20, sa.hdr_len - l4 - 20u))
		return false;

	memcpy(a + *a_len, b + sb.hdr_len, sb.payload);
	uint32_t tcp_len = len - l4;
	if (sa.v6)
		put16(ha + l3 + 4, len - l3 - 40);
	else
		ip4_header_fix(ha + l3, len - l3, IP_DF);
	ha[l4 + 13] |= sb.flags & TCP_PSH;
	put16(ha + l4 + 16, bh_tcp_pseudo_sum(ha + l3, sa.v6, tcp_len));
	memcpy(a, ha, sa.hdr_len);
	*a_len = len;
	return true;
}
