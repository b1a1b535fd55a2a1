// SPDX-License-Identifier: MIT
/* The block channel between a driver VM's agent and vm-blk: its geometry, on both sides. */
#include <errno.h>
#include <string.h>

#include "bulkhead/block.h"
#include "bulkhead/vm_blk.h"

static uint64_t stream_size(void)
{
	return (bh_ps_region_size(BH_VMBLK_RING, BH_VMBLK_BULK) + 4095) & ~4095ull;
}

uint64_t bh_vmblk_needed(void)
{
	return BH_VMBLK_STREAM_AT + stream_size();
}

int bh_vmblk_attach(struct bh_packet_stream *ps, void *base, size_t size, bool host)
{
	if (bh_vmblk_needed() > size)
		return -EMSGSIZE;
	/* no eventfds: nothing signals across the VM's boundary but the doorbells */
	return bh_ps_attach(ps, host ? BH_PS_SOURCE : BH_PS_SINK,
			    (uint8_t *)base + BH_VMBLK_STREAM_AT, stream_size(), BH_VMBLK_RING,
			    BH_VMBLK_BULK, BH_VMBLK_SLOT, -1, -1);
}

void bh_vmblk_clear(void *base)
{
	memset((uint8_t *)base + BH_VMBLK_STREAM_AT, 0, stream_size());
}

int bh_vmblk_guest_read(const void *base, struct bh_vmblk_guest *g)
{
	/* one copy, then only the copy is looked at: the guest may be writing */
	memcpy(g, (const uint8_t *)base + BH_VMBLK_GUEST_PAGE, sizeof(*g));
	__asm__ volatile("" : "+m"(*g));
	if (g->magic != BH_VMBLK_MAGIC)
		return -EAGAIN;
	g->model[sizeof(g->model) - 1] = 0;
	g->disk[sizeof(g->disk) - 1] = 0;
	if (g->version != BH_VMBLK_VERSION || g->block_size < 512 || g->block_size > 65536 ||
	    (g->block_size & (g->block_size - 1)) || !g->block_count ||
	    g->block_count > (UINT64_MAX >> 16) ||
	    (g->flags & ~(uint32_t)(BH_BLOCK_WRITABLE | BH_BLOCK_CAN_TRIM | BH_BLOCK_CAN_FLUSH)) ||
	    g->doorbell > 1)
		return -EPROTO;
	return 0;
}
