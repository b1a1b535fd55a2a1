/* SPDX-License-Identifier: MIT */
/* The memory a driver VM shares with the server of its NIC (bulkhead/vm_nic.h). */
#ifndef BH_CORE_VM_NIC_H
#define BH_CORE_VM_NIC_H

#include "core.h"

#define BH_VM_NIC_DIR "/run/bulkhead/vm"

/*
 * Spawning VM vm: if a component serves its NIC (vm_nic = its name), the
 * memory's path (its file, created on first use, owned by the VM's uid
 * from now on), else NULL; err says why on failure (NULL too, rc < 0).
 */
int bh_vm_nic_memory(struct bh_core_state *core, struct bh_component *vm, const char **path,
		     char *err, size_t err_len);

/*
 * BH_OP_VM_NIC: index 0, the VM's shared memory (the component's
 * vm_nic = VM); index 1 or 2, a fresh memfd of size bytes (at most
 * BH_VM_NIC_STREAM_MAX) for one stream of the NIC session it serves: a
 * server without a device has no DMA buffers to put them in. The pages
 * are charged to the memory cgroup of whoever touches them first.
 */
#define BH_VM_NIC_STREAM_MAX (4u << 20)
void bh_vm_nic_request(struct bh_core_state *core, struct bh_component *c,
		       const struct bh_request *q, struct bh_msg *reply, int *fd);

#endif
