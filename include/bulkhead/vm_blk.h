/* SPDX-License-Identifier: MIT */
/*
 * The block channel between a driver VM's agent and the host's vm-blk
 * server: the NIC channel's scheme (bulkhead/vm_nic.h) with one stream.
 *
 * Core makes the memory (a memfd per VM, BH_VMBLK_SIZE bytes: a second
 * ivshmem-doorbell device of the VM, told from the NIC's by its size) and a
 * host doorbell, exactly as for the NIC channel (core/vm_nic.c, kind
 * BH_VM_CHAN_BLK); the component whose config says vm_blk = VM gets them.
 *
 *   [ guest page | host page | request stream ]
 *
 * The stream is a packet stream whose source is the host and whose sink is
 * the agent, with the Block session's descriptors (bulkhead/block.h): op,
 * arg = first block, length = bytes, offset = the slot in the bulk buffer,
 * tag = the host's name for the request (its slot in its table). The agent
 * checks each one against its disk's geometry (bh_block_check) and acks it
 * with 0 or -errno; the host checks each ack's tag against what it has in
 * flight and each status against the errno range. Neither side trusts the
 * other.
 *
 * Epochs as for the NIC: the agent writes a new epoch once nothing of its
 * last one is in flight on the disk, the host clears the stream, attaches,
 * echoes the epoch and reissues every request it had in flight (the
 * guest's disk was reset with the VM, or the agent finished it: nothing of
 * the first copy can land after the second; docs/design.md, "Why a
 * reissued write is harmless").
 *
 * Wake-ups: the host's doorbell (the device's BAR 0) one way; the other a
 * byte on a serial line of the VM, whose name core puts on the guest's
 * command line (bulkhead.blkline=ttyS2).
 */
#ifndef BULKHEAD_VM_BLK_H
#define BULKHEAD_VM_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bulkhead/packet_stream.h"
#include "bulkhead/vm_nic.h"

#define BH_VMBLK_MAGIC 0x4b4c5642u /* "BVLK" */
#define BH_VMBLK_VERSION 1
/* a power of two (ivshmem), and not the NIC channel's size: the agent tells them apart so */
#define BH_VMBLK_SIZE (4u << 20)
#define BH_VMBLK_RING 32u	  /* requests in flight at most */
#define BH_VMBLK_SLOT (64u << 10) /* bytes per request at most */
#define BH_VMBLK_BULK ((uint64_t)BH_VMBLK_RING * BH_VMBLK_SLOT)
#define BH_VMBLK_GUEST_PAGE 0
#define BH_VMBLK_HOST_PAGE 4096 /* a struct bh_vmnic_host, written by vm-blk */
#define BH_VMBLK_STREAM_AT 8192

/* written by the agent only */
struct bh_vmblk_guest {
	uint32_t magic; /* BH_VMBLK_MAGIC once the rest is written */
	uint32_t version;
	uint32_t epoch;
	uint32_t block_size; /* the disk's logical block size */
	uint64_t block_count;
	uint32_t flags;	   /* enum bh_block_flags */
	uint32_t sleeping; /* the agent sleeps: wake it */
	uint32_t doorbell; /* 1: the agent sleeps on its wake-up line and rings ours */
	uint32_t reserved;
	uint64_t beat; /* advances while the agent runs */
	char model[40];
	char disk[16]; /* the guest's name of the disk: "nvme0n1" */
};

/* the stream's geometry, on both sides; 0, or -errno (-EMSGSIZE: memory too small) */
int bh_vmblk_attach(struct bh_packet_stream *ps, void *base, size_t size, bool host);
/* the host, before attaching for a new guest epoch: the stream emptied */
void bh_vmblk_clear(void *base);
/* bytes the channel needs */
uint64_t bh_vmblk_needed(void);

/*
 * A copy of the guest page, checked: 0, or -EAGAIN while the agent has not
 * written it, -EPROTO if it holds nonsense (strings are terminated).
 */
int bh_vmblk_guest_read(const void *base, struct bh_vmblk_guest *g);

static inline struct bh_vmblk_guest *bh_vmblk_guest_page(void *base)
{
	return (struct bh_vmblk_guest *)((uint8_t *)base + BH_VMBLK_GUEST_PAGE);
}

static inline struct bh_vmnic_host *bh_vmblk_host_page(void *base)
{
	return (struct bh_vmnic_host *)((uint8_t *)base + BH_VMBLK_HOST_PAGE);
}

/* an ack's status as the other side may be told it: 0 or -1..-4095, else -EIO */
static inline int32_t bh_vmblk_status(int32_t status)
{
	return status == 0 || (status < 0 && status >= -4095) ? status : -5 /* EIO */;
}

#endif
