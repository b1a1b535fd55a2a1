// SPDX-License-Identifier: MIT
/*
 * The memory a driver VM shares with the server of its NIC. Core creates
 * one file per VM in a tmpfs only root reaches (/run/bulkhead/vm), gives
 * it to the VM's QEMU as an ivshmem-plain device's memory (bound into its
 * root as /vm/nic, core/vm.c) and to the component whose config says
 * vm_nic = VM as an fd. The file lives as long as core, so a restarted VM
 * or server finds the same memory; the channel's epochs (bulkhead/vm_nic.h)
 * tell each side when the other started over.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bulkhead/vm_nic.h"
#include "vm_nic.h"

static struct {
	int fd; /* 0: none yet */
	char path[80];
} mem[BH_MAX_COMPONENTS];

static void cleanup(void)
{
	for (int i = 0; i < BH_MAX_COMPONENTS; i++) {
		if (!mem[i].fd)
			continue;
		unlink(mem[i].path);
		close(mem[i].fd);
		mem[i].fd = 0;
	}
}

/* the VM's memory, made on first use: its fd, or -errno with err said */
static int memory_of(const struct bh_component *vm, char *err, size_t err_len)
{
	static bool registered;
	int i = vm->index, fd;

	if (i < 0 || i >= BH_MAX_COMPONENTS)
		return -EINVAL;
	if (mem[i].fd)
		return mem[i].fd;
	mkdir("/run/bulkhead", 0755);
	mkdir(BH_VM_NIC_DIR, 0700);
	snprintf(mem[i].path, sizeof(mem[i].path), "%s/%s.nic", BH_VM_NIC_DIR, vm->cfg->name);
	unlink(mem[i].path);
	fd = open(mem[i].path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || ftruncate(fd, BH_VMNIC_SIZE) < 0) {
		int e = errno;
		snprintf(err, err_len, "%s: %s (is /run a writable tmpfs?)", mem[i].path,
			 strerror(e));
		if (fd >= 0)
			close(fd);
		unlink(mem[i].path);
		return -e;
	}
	mem[i].fd = fd;
	if (!registered)
		atexit(cleanup);
	registered = true;
	bh_log("vm \"%s\": NIC channel memory %s, %u KiB", vm->cfg->name, mem[i].path,
	       BH_VMNIC_SIZE / 1024);
	return fd;
}

/* the component serving vm's NIC, or NULL */
static const struct bh_component *server_of(struct bh_core_state *core,
					    const struct bh_component *vm)
{
	for (int i = 0; i < core->ncomp; i++)
		if (strcmp(core->comp[i].cfg->vm.nic_of, vm->cfg->name) == 0)
			return &core->comp[i];
	return NULL;
}

int bh_vm_nic_memory(struct bh_core_state *core, struct bh_component *vm, const char **path,
		     char *err, size_t err_len)
{
	int fd;

	*path = NULL;
	if (!server_of(core, vm))
		return 0;
	fd = memory_of(vm, err, err_len);
	if (fd < 0)
		return fd;
	/* QEMU opens it by name, as the VM's uid (a dynamic uid may change) */
	if (fchown(fd, vm->uid, vm->gid) < 0) {
		snprintf(err, err_len, "%s: chown: %s", mem[vm->index].path, strerror(errno));
		return -errno;
	}
	*path = mem[vm->index].path;
	return 0;
}

void bh_vm_nic_request(struct bh_core_state *core, struct bh_component *c,
		       const struct bh_request *q, struct bh_msg *reply, int *fd)
{
	const char *name = c->cfg->vm.nic_of;
	struct bh_component *vm = name[0] ? bh_admin_find(core, name) : NULL;
	char err[160];
	int rc;

	if (!name[0]) {
		bh_refuse(c, reply, EACCES, "\"%s\" serves no driver VM's NIC: add 'vm_nic = VM' "
					    "to its [component] section",
			  c->cfg->name);
		return;
	}
	if (!vm || !vm->cfg->vm.enabled) {
		bh_refuse(c, reply, ENOENT, "vm_nic = %s: there is no [component \"%s\"] with "
					    "kind = vm in the config",
			  name, name);
		return;
	}
	if (q->index == 0) {
		rc = memory_of(vm, err, sizeof(err));
		if (rc < 0) {
			bh_refuse(c, reply, -rc, "%s", err);
			return;
		}
		*fd = fcntl(rc, F_DUPFD_CLOEXEC, 0);
	} else if (q->index <= 2 && q->size && q->size <= BH_VM_NIC_STREAM_MAX) {
		*fd = memfd_create("bulkhead-vm-nic-stream", MFD_CLOEXEC);
		if (*fd >= 0 && ftruncate(*fd, (off_t)q->size) < 0) {
			close(*fd);
			*fd = -1;
		}
	} else {
		bh_refuse(c, reply, EINVAL, "vm-nic: index %u size %llu: ask for index 0 (the VM's "
					    "memory) or 1-2 (a stream of at most %u bytes)",
			  q->index, (unsigned long long)q->size, BH_VM_NIC_STREAM_MAX);
		return;
	}
	if (*fd < 0)
		bh_refuse(c, reply, errno, "vm-nic memory: %s", strerror(errno));
}
