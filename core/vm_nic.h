/* SPDX-License-Identifier: MIT */
/* A driver VM's NIC channel: memory and doorbells it shares with vm-nic (bulkhead/vm_nic.h). */
#ifndef BH_CORE_VM_NIC_H
#define BH_CORE_VM_NIC_H

#include "core.h"

/*
 * Spawning VM vm: if a component serves its NIC (vm_nic = its name), fd[0]
 * is a socket for QEMU's ivshmem-doorbell chardev with core's ivshmem
 * server messages waiting in it (the memory, the host's doorbell eventfd),
 * fd[1] QEMU's end of the line that wakes the guest (its second serial
 * port); else both -1. 0, or -errno with err said.
 */
/* the kinds of channel a VM may have, each served by its own component */
enum bh_vm_chan {
	BH_VM_CHAN_NIC, /* vm_nic = VM: bulkhead/vm_nic.h */
	BH_VM_CHAN_BLK, /* vm_blk = VM: bulkhead/vm_blk.h */
	BH_VM_CHANS
};
int bh_vm_channel_server(struct bh_core_state *core, struct bh_component *vm,
			 enum bh_vm_chan kind, int fd[2], char *err, size_t err_len);
static inline int bh_vm_nic_server(struct bh_core_state *core, struct bh_component *vm,
				   int fd[2], char *err, size_t err_len)
{
	return bh_vm_channel_server(core, vm, BH_VM_CHAN_NIC, fd, err, err_len);
}

/*
 * BH_OP_VM_NIC, for the component whose config says vm_nic = VM (or
 * vm_blk = VM: the same for the VM's block channel):
 * index 0, the VM's shared memory; 1 or 2, a fresh memfd of size bytes
 * (at most BH_VM_NIC_STREAM_MAX) for one stream of the NIC session it
 * serves (a server without a device has no DMA buffers to put them in),
 * paid as DMA is: with q->session, by that session's client (its
 * session_memory, core/account.c), else by the server's own dma quota;
 * 3, the eventfd the guest's doorbell writes; 4, vm-nic's end of
 * the current QEMU's wake-up line (a byte on it interrupts the guest;
 * EAGAIN before the VM's first start).
 */
#define BH_VM_NIC_STREAM_MAX (4u << 20)
void bh_vm_nic_request(struct bh_core_state *core, struct bh_component *c,
		       const struct bh_request *q, struct bh_msg *reply, int *fd);

#endif
