// SPDX-License-Identifier: MIT
/*
 * A driver VM's NIC channel (bulkhead/vm_nic.h). Core creates, once per VM
 * and for its own whole life, the channel's memory (a memfd) and the
 * host's doorbell (an eventfd the guest rings, vm-nic sleeps on). QEMU's
 * ivshmem-doorbell device gets them from core speaking the ivshmem server
 * protocol (QEMU's docs/specs/ivshmem-spec.rst): the messages wait in a
 * socket QEMU finds as fd 4, so QEMU needs no path and no server to
 * connect to. The other way, the device's interrupts are MSI-X only, which
 * no driver of Debian's guest kernel hands to user space (no VFIO no-IOMMU,
 * uio_pci_generic is INTx): vm-nic wakes the guest with a byte on a second
 * serial line instead (fd 5, a socket pair made anew for each QEMU; the
 * guest's 8250 driver takes the interrupt). The component whose config
 * says vm_nic = VM gets the memory, the doorbell and its end of the line
 * (BH_OP_VM_NIC). A restarted VM or server finds the memory as it was;
 * the channel's epochs tell each side when the other started over.
 *
 * A VM has a channel of each kind a component serves: the NIC's (vm_nic =
 * VM, bulkhead/vm_nic.h) and the disk's (vm_blk = VM, bulkhead/vm_blk.h),
 * each its own memory, doorbell, ivshmem-doorbell device and line.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bulkhead/msg.h"
#include "bulkhead/vm_blk.h"
#include "bulkhead/vm_nic.h"
#include "vm_nic.h"

static struct chan {
	int mem, kick; /* 0: none yet (fds 0-2 are never ours) */
	int server;    /* core's end of the current QEMU's server socket, or 0 */
	int line;      /* vm-nic's end of the current QEMU's wake-up line, or 0 */
} chans[BH_VM_CHANS][BH_MAX_COMPONENTS];

static const struct {
	const char *name, *memfd;
	uint32_t size;
} kinds[BH_VM_CHANS] = {
	[BH_VM_CHAN_NIC] = { "NIC", "bulkhead-vm-nic", BH_VMNIC_SIZE },
	[BH_VM_CHAN_BLK] = { "block", "bulkhead-vm-blk", BH_VMBLK_SIZE },
};

/* the VM's channel of that kind, made on first use: 0, or -errno with err said */
static int channel_of(const struct bh_component *vm, enum bh_vm_chan kind, char *err,
		      size_t err_len)
{
	int i = vm->index;
	struct chan *ch = chans[kind];

	if (i < 0 || i >= BH_MAX_COMPONENTS)
		return -EINVAL;
	if (ch[i].mem)
		return 0;
	ch[i].mem = memfd_create(kinds[kind].memfd, MFD_CLOEXEC);
	ch[i].kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ch[i].mem < 0 || ch[i].kick < 0 ||
	    ftruncate(ch[i].mem, kinds[kind].size) < 0) {
		int e = errno;
		snprintf(err, err_len, "vm \"%s\": its %s channel: %s", vm->cfg->name,
			 kinds[kind].name, strerror(e));
		if (ch[i].mem > 0)
			close(ch[i].mem);
		if (ch[i].kick > 0)
			close(ch[i].kick);
		ch[i].mem = ch[i].kick = 0;
		return -e;
	}
	bh_log("vm \"%s\": %s channel of %u KiB, with a doorbell each way", vm->cfg->name,
	       kinds[kind].name, kinds[kind].size / 1024);
	return 0;
}

/* the VM a component serves a channel of (vm_nic = VM or vm_blk = VM), "" if none */
static const char *served_vm(const struct bh_component *c, enum bh_vm_chan kind)
{
	return kind == BH_VM_CHAN_NIC ? c->cfg->vm.nic_of : c->cfg->vm.blk_of;
}

/* the component serving vm's channel of that kind, or NULL */
static const struct bh_component *server_of(struct bh_core_state *core,
					    const struct bh_component *vm, enum bh_vm_chan kind)
{
	for (int i = 0; i < core->ncomp; i++)
		if (strcmp(served_vm(&core->comp[i], kind), vm->cfg->name) == 0)
			return &core->comp[i];
	return NULL;
}

/* one message of the ivshmem server protocol: a little-endian int64, maybe an fd */
static int say(int sock, int64_t value, int fd)
{
	return bh_dgram_send(sock, &value, sizeof(value), fd >= 0 ? &fd : NULL, fd >= 0);
}

static void replace(int *fd, int with)
{
	if (*fd > 0)
		close(*fd);
	*fd = with;
}

int bh_vm_channel_server(struct bh_core_state *core, struct bh_component *vm,
			 enum bh_vm_chan kind, int fd[2], char *err, size_t err_len)
{
	int sv[2], line[2], rc, i = vm->index;
	struct chan *ch = chans[kind];

	fd[0] = fd[1] = -1;
	if (!server_of(core, vm, kind))
		return 0;
	rc = channel_of(vm, kind, err, err_len);
	if (rc)
		return rc;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, err_len, "vm \"%s\": socketpair: %s", vm->cfg->name,
			 strerror(errno));
		return -errno;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, line) < 0) {
		snprintf(err, err_len, "vm \"%s\": socketpair: %s", vm->cfg->name,
			 strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return -errno;
	}
	/*
	 * version 0; the guest's id; the host's doorbell (peer 0, vector 0);
	 * then the memory (-1), which ends QEMU's synchronous set-up
	 */
	rc = say(sv[0], 0, -1) ?: say(sv[0], BH_VMNIC_GUEST_PEER, -1) ?:
	     say(sv[0], BH_VMNIC_HOST_PEER, ch[i].kick) ?: say(sv[0], -1, ch[i].mem);
	if (rc) {
		snprintf(err, err_len, "vm \"%s\": the ivshmem set-up messages: %s", vm->cfg->name,
			 strerror(-rc));
		close(sv[0]);
		close(sv[1]);
		close(line[0]);
		close(line[1]);
		return rc;
	}
	/* ours stays open while QEMU runs: a hang-up would be a server gone away */
	replace(&ch[i].server, sv[0]);
	replace(&ch[i].line, line[0]);
	fd[0] = sv[1];
	fd[1] = line[1];
	return 0;
}

/*
 * a stream's memory, paid as DMA is: for a session (q->session), by its
 * client's session_memory (core/account.c); else by the server's own dma
 * quota, for its life (core cannot see it close a memfd)
 */
static void stream(struct bh_core_state *core, struct bh_component *c, const struct bh_request *q,
		   struct bh_msg *reply, int *fd)
{
	uint64_t size = (q->size + 4095) & ~4095ull, own = c->dma_bytes - c->session_dma;

	if (q->session) {
		if (bh_account_charge(core, c, q->session, size, reply) < 0)
			return;
	} else if (size > c->cfg->dma_quota - own || own > c->cfg->dma_quota) {
		bh_refuse(c, reply, EDQUOT, "a stream of %llu bytes for no session: \"%s\" has %llu of "
					    "%llu bytes of DMA quota left; raise dma = in its "
					    "[component] section, or ask for the stream with its "
					    "session's id (its client pays then)",
			  (unsigned long long)size, c->cfg->name,
			  (unsigned long long)(own < c->cfg->dma_quota ? c->cfg->dma_quota - own : 0),
			  (unsigned long long)c->cfg->dma_quota);
		return;
	}
	*fd = memfd_create("bulkhead-vm-nic-stream", MFD_CLOEXEC);
	if (*fd >= 0 && ftruncate(*fd, (off_t)q->size) < 0) {
		close(*fd);
		*fd = -1;
	}
	if (*fd < 0) {
		bh_refuse(c, reply, errno, "vm-nic stream: %s", strerror(errno));
		return;
	}
	if (q->session)
		bh_account_charged_memory(core, c, q->session, size);
	else
		c->dma_bytes += size;
}

void bh_vm_nic_request(struct bh_core_state *core, struct bh_component *c,
		       const struct bh_request *q, struct bh_msg *reply, int *fd)
{
	/* the channel the caller serves: its config says which (one of the two, never both) */
	enum bh_vm_chan kind = c->cfg->vm.nic_of[0] ? BH_VM_CHAN_NIC : BH_VM_CHAN_BLK;
	const char *name = served_vm(c, kind);
	struct bh_component *vm = name[0] ? bh_admin_find(core, name) : NULL;
	struct chan *ch = chans[kind];
	char err[160];
	int rc;

	if (!name[0]) {
		bh_refuse(c, reply, EACCES, "\"%s\" serves no driver VM's NIC or disk: add 'vm_nic "
					    "= VM' or 'vm_blk = VM' to its [component] section",
			  c->cfg->name);
		return;
	}
	if (!vm || !vm->cfg->vm.enabled) {
		bh_refuse(c, reply, ENOENT, "%s = %s: there is no [component \"%s\"] with "
					    "kind = vm in the config",
			  kind == BH_VM_CHAN_NIC ? "vm_nic" : "vm_blk", name, name);
		return;
	}
	if (q->index == 4 && ch[vm->index].line <= 0) {
		bh_refuse(c, reply, EAGAIN, "vm \"%s\" has not started yet", name);
	} else if (q->index == 0 || q->index == 3 || q->index == 4) {
		rc = channel_of(vm, kind, err, sizeof(err));
		if (rc < 0) {
			bh_refuse(c, reply, -rc, "%s", err);
			return;
		}
		rc = q->index == 0 ? ch[vm->index].mem
		     : q->index == 3 ? ch[vm->index].kick
				     : ch[vm->index].line;
		*fd = fcntl(rc, F_DUPFD_CLOEXEC, 0);
	} else if (q->index <= 2 && q->size && q->size <= BH_VM_NIC_STREAM_MAX) {
		stream(core, c, q, reply, fd);
		return;
	} else {
		bh_refuse(c, reply, EINVAL, "vm-nic: index %u size %llu: ask for index 0 (the VM's "
					    "memory), 1-2 (a stream of at most %u bytes), 3 (the "
					    "host's doorbell) or 4 (the line that wakes the guest)",
			  q->index, (unsigned long long)q->size, BH_VM_NIC_STREAM_MAX);
		return;
	}
	if (*fd < 0 && reply->status == 0)
		bh_refuse(c, reply, errno, "vm-nic channel: %s", strerror(errno));
}
