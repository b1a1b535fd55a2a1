/* SPDX-License-Identifier: MIT */
/*
 * The NIC session: an Ethernet port on top of the session layer.
 *
 * The server (a NIC driver) offers two packet streams:
 *   stream 0, tx: the client is the source, the driver the sink; each
 *                 descriptor is one frame (destination MAC onwards, no FCS);
 *                 the driver acks it once the frame left (status 0) or was
 *                 refused (status -EINVAL: bad length or offset).
 *   stream 1, rx: the driver is the source, the client the sink; each
 *                 descriptor is one received frame; the client acks it when
 *                 it has consumed the data, which gives the slot back.
 * The setup info holds struct bh_nic_info; link changes arrive as session
 * events of type BH_NIC_EVENT_LINK carrying struct bh_nic_link.
 *
 * Offloads (info.offloads says which the server has): a tx descriptor's op
 * may ask for a checksum (BH_NIC_TX_CSUM: the one's complement sum from
 * csum_start to the end, stored at csum_start + csum_offset, like Linux's
 * CHECKSUM_PARTIAL) or for TCP segmentation (BH_NIC_TX_TSO4/6: a frame of
 * up to BH_NIC_GSO_MAX bytes whose first hdr_len bytes are the headers,
 * cut into segments of mss payload bytes, each with its checksums). Its arg
 * packs those numbers: bh_nic_tx_arg(). The tx stream's slot size (from the
 * session setup) is then large enough for such a frame. An rx descriptor's
 * op carries BH_NIC_RX_CSUM_OK when the NIC verified the frame's TCP or UDP
 * checksum (and the IPv4 header's).
 */
#ifndef BULKHEAD_NIC_H
#define BULKHEAD_NIC_H

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "bulkhead/session.h"

#define BH_NIC_SERVICE "nic"
#define BH_NIC_TX 0
#define BH_NIC_RX 1
#define BH_NIC_MTU 1500
#define BH_NIC_HEADER 14
/* header + MTU + one VLAN tag; the FCS is the hardware's business */
#define BH_NIC_FRAME_MAX (BH_NIC_HEADER + BH_NIC_MTU + 4)
#define BH_NIC_FRAME_MIN BH_NIC_HEADER
/* the geometry a NIC server offers: one frame per 2 KiB slot */
#define BH_NIC_SLOT 2048
#define BH_NIC_RING 256
/* a segmentation request: 64 KiB of IP packet, its Ethernet header and a VLAN tag */
#define BH_NIC_GSO_MAX (65536 + BH_NIC_HEADER + 4)

/* bh_nic_info.offloads */
#define BH_NIC_OFF_TX_CSUM (1u << 0)
#define BH_NIC_OFF_TSO4 (1u << 1)
#define BH_NIC_OFF_TSO6 (1u << 2)
#define BH_NIC_OFF_RX_CSUM (1u << 3)

/* tx descriptor op; 0 is a plain frame */
#define BH_NIC_TX_CSUM (1u << 0)
#define BH_NIC_TX_TSO4 (1u << 1) /* implies the checksums */
#define BH_NIC_TX_TSO6 (1u << 2)
/* rx descriptor op */
#define BH_NIC_RX_CSUM_OK (1u << 0)

static inline uint64_t bh_nic_tx_arg(uint16_t csum_start, uint16_t csum_offset, uint16_t hdr_len,
				     uint16_t mss)
{
	return (uint64_t) csum_start | (uint64_t) csum_offset << 16 | (uint64_t) hdr_len << 32 |
	       (uint64_t) mss << 48;
}

static inline void bh_nic_tx_arg_split(uint64_t arg, uint32_t *csum_start, uint32_t *csum_offset,
				       uint32_t *hdr_len, uint32_t *mss)
{
	*csum_start = (uint32_t) (arg & 0xffff);
	*csum_offset = (uint32_t) (arg >> 16 & 0xffff);
	*hdr_len = (uint32_t) (arg >> 32 & 0xffff);
	*mss = (uint32_t) (arg >> 48);
}

enum bh_nic_event {
	BH_NIC_EVENT_LINK = 1,
};

struct bh_nic_link {
	uint32_t up;
	uint32_t speed_mbps; /* 0 when down */
};

struct bh_nic_info {
	uint8_t mac[6];
	uint16_t mtu;
	struct bh_nic_link link;
	char driver[16];
	uint32_t offloads; /* BH_NIC_OFF_*; 0 from a server that has none */
};

_Static_assert(sizeof(struct bh_nic_info) <= BH_SESSION_INFO, "nic info too large");
_Static_assert(sizeof(struct bh_nic_link) <= sizeof(((struct bh_session_event *) 0)->data),
	       "nic event too large");

/* the info from a session's setup; 0, or -EPROTO if the server sent nonsense */
static inline int bh_nic_info(const struct bh_session *s, struct bh_nic_info *info)
{
	memcpy(info, s->info, sizeof(*info));
	info->driver[sizeof(info->driver) - 1] = 0;
	if (s->nstreams != 2 || info->mtu < 68 || info->mtu > 9000 || info->link.up > 1)
		return -EPROTO;
	return 0;
}

/* a link event's payload; 0, or -EPROTO */
static inline int bh_nic_link_event(const struct bh_session_event *ev, struct bh_nic_link *link)
{
	if (ev->type != BH_NIC_EVENT_LINK)
		return -EPROTO;
	memcpy(link, ev->data, sizeof(*link));
	return link->up > 1 ? -EPROTO : 0;
}

/* a frame length a NIC accepts */
static inline int bh_nic_frame_ok(uint32_t len)
{
	return len >= BH_NIC_FRAME_MIN && len <= BH_NIC_FRAME_MAX;
}

#endif
