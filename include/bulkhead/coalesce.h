/* SPDX-License-Identifier: MIT */
/*
 * Receive coalescing: consecutive TCP segments of one flow, merged into one
 * large segment that Linux takes through a TAP with a virtio_net_hdr; and
 * its transmit counterpart, bh_coalesce_tx_append() below.
 *
 * Linux merges the frames its own NIC drivers receive (GRO) before its TCP
 * stack sees them; a frame written to a TAP gets no such treatment, so a
 * bridge that writes frames one by one makes Linux run its stack once per
 * 1.5 KB. A bridge feeds a batch of received frames through bh_coalesce_add()
 * and ends the batch with bh_coalesce_flush(); what comes out are writes of
 * [virtio_net_hdr | headers | payload...], each either one frame as it came
 * or up to 64 KiB of one flow's payload with gso_type TCPV4/TCPV6 and
 * gso_size set to the segments' size, as GRO would have produced:
 *
 *   - only frames whose checksums the NIC verified are merged (the merged
 *     segment goes up as CHECKSUM_PARTIAL, which Linux trusts);
 *   - IPv4 without options or fragments, or IPv6 with TCP as the next header;
 *   - the same addresses, ports, ack number, window, TCP options, TOS/TTL
 *     (traffic class/hop limit), and a sequence number that continues the
 *     last one; flags ACK, plus PSH on the last segment only;
 *   - every segment but the last of the same payload size.
 *
 * IPv4 fragments of a TCP segment are joined too: a NIC that cuts a large
 * segment into IP fragments (QEMU 7.2's e1000e does, for its TSO) would
 * otherwise cost one write and one trip through Linux's reassembly per
 * fragment. Fragments that continue one another (same addresses, ID, DF,
 * TOS, TTL; each header checksum verified) are copied into a buffer that
 * outlives the batch. A whole datagram whose TCP checksum we verify goes up
 * like merged segments (gso_size: what fits into the fragments' size); one
 * that fails is dropped and counted. Whatever stops short of the whole goes
 * up as the fragments it came in (their sizes at most the first one's), for
 * Linux to reassemble or forward as before. A NIC delivers a datagram's
 * fragments together, so a bridge that finds itself idle with a datagram
 * held (bh_coalesce_holding) waits a moment for the rest before it flushes.
 *
 * Anything else goes through unchanged, after whatever of its own flow (or
 * address pair, for fragments) is pending, so each flow's order is kept;
 * datagrams being joined are the exception: like Linux's reassembly, which
 * we stand in for, they go up as each completes, while others of the same
 * addresses wait (QEMU lets one overtake the rest of another).
 *
 * The frames must stay valid until bh_coalesce_flush(). Headers are copied
 * into the coalescer before they are parsed, so a peer that changes a frame
 * under us can garble what Linux gets (which checks it), never what we read.
 */
#ifndef BULKHEAD_COALESCE_H
#define BULKHEAD_COALESCE_H

#include <linux/virtio_net.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define BH_COALESCE_FLOWS 8
#define BH_COALESCE_SEGS 64
#define BH_COALESCE_DGRAMS 4
/* Ethernet + IPv6 + TCP with the most options */
#define BH_COALESCE_HDR_MAX (14 + 40 + 60)

/* writes one packet: iov[0] is the virtio_net_hdr; returns false if it was dropped */
typedef bool bh_coalesce_emit(void *ctx, const struct iovec *iov, int iovcnt);

struct bh_coalesce_flow {
	bool used;
	bool v6;
	uint16_t l3;	  /* offset of the IP header */
	uint16_t l4;	  /* offset of the TCP header */
	uint16_t hdr_len; /* Ethernet + IP + TCP */
	uint16_t mss;	  /* payload bytes of the first segment */
	uint32_t next_seq;
	uint32_t payload; /* bytes merged so far */
	bool closed;	  /* a short or PSH segment came: nothing more joins */
	unsigned int nseg;
	uint8_t hdr[BH_COALESCE_HDR_MAX]; /* the first segment's headers, our copy */
	struct iovec seg[BH_COALESCE_SEGS];
};

/* an IPv4 datagram being put back together from its fragments */
struct bh_coalesce_dgram {
	bool used;
	uint32_t have;		      /* IP payload bytes from offset 0, contiguous */
	uint32_t unit;		      /* the first fragment's IP payload */
	uint8_t buf[14 + 20 + 65535]; /* the first fragment's headers, then the payload */
};

struct bh_coalesce {
	bh_coalesce_emit *emit;
	void *ctx;
	struct bh_coalesce_flow flow[BH_COALESCE_FLOWS];
	unsigned int order[BH_COALESCE_FLOWS]; /* pending flows, oldest first */
	unsigned int npending;
	struct bh_coalesce_dgram dgram[BH_COALESCE_DGRAMS];
	/* statistics */
	uint64_t frames_in, packets_out, merged, dropped, bad_csum;
};

void bh_coalesce_init(struct bh_coalesce *c, bh_coalesce_emit *emit, void *ctx);
/*
 * One received frame (Ethernet header onwards). csum_ok: the NIC verified
 * its checksums. It is written now, or held (pointer and length) until a
 * later add or the flush writes it.
 */
void bh_coalesce_add(struct bh_coalesce *c, const uint8_t *frame, uint32_t len, bool csum_ok);
/* end of a batch: write everything that points into its frames */
void bh_coalesce_flush(struct bh_coalesce *c);
/* before going idle: write everything held, fragments being joined too */
void bh_coalesce_flush_all(struct bh_coalesce *c);
/* fragments of a datagram are held, waiting for the rest */
bool bh_coalesce_holding(const struct bh_coalesce *c);

/*
 * Transmit: TCP segment b (b_len bytes, as Linux handed it to a TAP reader
 * for segmentation or a checksum) appended to segment a (*a_len bytes in a
 * buffer of at least max_len), where b continues a: the NIC then cuts one
 * larger TSO frame, which is what TCP would have sent had its segment been
 * larger (Linux sizes TSO segments by the round trip time: the longer, the
 * smaller). The rules: TCP over IPv4 (no options, DF set) or IPv6, the same
 * Ethernet header, addresses, ports, TOS/TTL (traffic class, flow label,
 * hop limit), ack number, window and header length; TCP options alike but
 * for the timestamp's values (the larger frame's segments all carry a's,
 * as a TSO frame's do); b's sequence number continues a; flags ACK, or
 * ACK|PSH (Linux sets PSH on most TSO segments; PSH is a hint to the
 * receiver, and the NIC puts it on the larger frame's last segment); the
 * result within max_len and IP's 64 KiB. Then a's
 * lengths, PSH and the checksum field's pseudo-header sum are updated, *a_len
 * grows and true comes back; otherwise nothing changes.
 */
bool bh_coalesce_tx_append(uint8_t *a, uint32_t *a_len, const uint8_t *b, uint32_t b_len,
			   uint32_t max_len);

/* the one's complement sum of the TCP pseudo-header (helper, exposed for tests) */
uint16_t bh_tcp_pseudo_sum(const uint8_t *ip, bool v6, uint32_t tcp_len);
/* the one's complement sum of len bytes (big-endian words) added to sum, folded */
uint16_t bh_inet_sum(const uint8_t *p, size_t len, uint32_t sum);

#endif
