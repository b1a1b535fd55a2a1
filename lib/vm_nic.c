// SPDX-License-Identifier: MIT
/* The channel between a driver VM's agent and vm-nic: its geometry, on both sides. */
#include <errno.h>
#include <string.h>

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
