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
