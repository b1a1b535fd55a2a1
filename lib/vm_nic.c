// SPDX-License-Identifier: MIT
/* The channel between a driver VM's agent and vm-nic: its geometry, on both sides. */
#include <errno.h>
#include <string.h>

#include "bulkhead/nic.h"
#include "bulkhead/vm_nic.h"

static uint64_t stream_size(void)
{
	return (bh_ps_region_size(BH_VMNIC_RING, BH_VMNIC_BULK) + 4095) & ~4095ull;
}

uint64_t bh_vmnic_stream_offset(unsigned int which)
{
	return BH_VMNIC_STREAMS_AT + which * stream_size();
}

int bh_vmnic_attach(struct bh_packet_stream ps[2], void *base, size_t size, bool host)
{
	uint8_t *b = base;
	int rc;

	if (bh_vmnic_stream_offset(2) > size)
		return -EMSGSIZE;
	for (unsigned int i = 0; i < 2; i++) {
		/* the host is the source of the stream to the guest, the guest of the other */
		enum bh_ps_role role = (i == BH_VMNIC_TO_GUEST) == host ? BH_PS_SOURCE : BH_PS_SINK;
		/* no eventfds: nothing signals across the VM's boundary, both sides poll */
		rc = bh_ps_attach(&ps[i], role, b + bh_vmnic_stream_offset(i), stream_size(),
				  BH_VMNIC_RING, BH_VMNIC_BULK, BH_VMNIC_SLOT, -1, -1);
		if (rc) {
			if (i)
				bh_ps_detach(&ps[0]);
			return rc;
		}
	}
	return 0;
}

void bh_vmnic_detach(struct bh_packet_stream ps[2])
{
	bh_ps_detach(&ps[0]);
	bh_ps_detach(&ps[1]);
}

void bh_vmnic_clear(void *base)
{
	memset((uint8_t *)base + BH_VMNIC_STREAMS_AT, 0, 2 * stream_size());
}

int bh_vmnic_guest_read(const void *base, struct bh_vmnic_guest *g)
{
	/* one copy, then only the copy is looked at: the guest may be writing */
	memcpy(g, (const uint8_t *)base + BH_VMNIC_GUEST_PAGE, sizeof(*g));
	__asm__ volatile("" : "+m"(*g));
	if (g->magic != BH_VMNIC_MAGIC)
		return -EAGAIN;
	g->driver[sizeof(g->driver) - 1] = 0;
	g->ifname[sizeof(g->ifname) - 1] = 0;
	if (g->version != BH_VMNIC_VERSION || g->link_up > 1 || g->mtu < 68 || g->mtu > 9000)
		return -EPROTO;
	return 0;
}

bool bh_vmnic_tx_ok(const struct bh_ps_desc *d, uint32_t offloads)
{
	uint32_t start, off, hdr, mss, len = d->length;

	if (d->status < 0)
		return false;
	if (d->op == 0)
		return bh_nic_frame_ok(len);
	bh_nic_tx_arg_split(d->arg, &start, &off, &hdr, &mss);
	/* the checksum's field inside the frame, past the Ethernet header */
	if (start < BH_NIC_HEADER || start + off + 2 > len)
		return false;
	if (d->op == BH_NIC_TX_CSUM)
		return (offloads & BH_NIC_OFF_TX_CSUM) && bh_nic_frame_ok(len);
	if (d->op != BH_NIC_TX_TSO4 && d->op != BH_NIC_TX_TSO6)
		return false;
	/* TCP headers (20 bytes at least), payload after them, segments that fit the MTU */
	return (offloads & (d->op == BH_NIC_TX_TSO4 ? BH_NIC_OFF_TSO4 : BH_NIC_OFF_TSO6)) &&
	       len <= BH_NIC_GSO_MAX && hdr >= start + 20 && hdr < len && mss >= 64 &&
	       hdr + mss <= BH_NIC_FRAME_MAX;
}
