/* SPDX-License-Identifier: MIT */
/*
 * The vm component kind: core runs Debian's QEMU with KVM as an
 * unprivileged, sandboxed process that owns the granted devices through
 * VFIO, and boots a small guest in which Linux's own driver runs them
 * (docs/design.md, "Driver VMs").
 */
#ifndef BH_CORE_VM_H
#define BH_CORE_VM_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define BH_VM_QEMU "/usr/bin/qemu-system-x86_64"
#define BH_VM_MEMORY_DEFAULT (128ull << 20)
#define BH_VM_MEMORY_MAX (64ull << 30)
#define BH_VM_VCPUS_MAX 64
#define BH_VM_BOOT_MS_DEFAULT 120000
#define BH_VM_APPEND_MAX 256
#define BH_VM_MODULES_MAX 128
#define BH_VM_MAX_DEVICES 8
#define BH_VM_NIC_FD 4 /* where QEMU finds its NIC channel's server socket; its wake-up line at 5 */
#define BH_VM_BLK_FD 6 /* its block channel's, and that channel's wake-up line at 7 */

/* what a [component] with kind = vm says about its guest */
struct bh_vm_config {
	bool enabled;	       /* kind = vm */
	char kernel[PATH_MAX]; /* the guest's kernel */
	char initramfs[PATH_MAX];
	char modules[BH_VM_MODULES_MAX]; /* "e1000e,...": what the guest loads */
	char append[BH_VM_APPEND_MAX];	 /* more of the guest's kernel command line */
	uint64_t memory;		 /* guest RAM */
	uint32_t vcpus;
	uint32_t boot_ms; /* from start to the agent's first word, at most */
	int line;	  /* of kind = vm */
	char nic_of[32];  /* vm_nic = VM: this component serves that VM's NIC (core/vm_nic.c) */
	char blk_of[32];  /* vm_blk = VM: this component serves that VM's disk (the same) */
};

struct bh_component_config;

/*
 * A vm key of a [component] section: 1 if it was one (and was good), 0 with
 * why set if it was one and wrong, -1 if it is not a vm key.
 */
int bh_vm_config_key(struct bh_vm_config *vm, const char *dir, const char *name,
		     const char *value, char *why, size_t why_len);
/* the section is read: check it and fill in what was left out (0, or why) */
int bh_vm_config_finish(struct bh_component_config *c, char *why, size_t why_len);

/* what the sandbox gives a VM's QEMU beyond the empty root (core/sandbox.c) */
struct bh_vm_sandbox {
	char *argv[64 + 4 * BH_VM_MAX_DEVICES];
	char args[64 + 4 * BH_VM_MAX_DEVICES][512];
	int groups[BH_VM_MAX_DEVICES]; /* IOMMU groups: /dev/vfio/N */
	char address[BH_VM_MAX_DEVICES][16];
	int ndevices;
	uint64_t memlock; /* RLIMIT_MEMLOCK: VFIO pins all of guest memory */
	const char *kernel, *initramfs;
	int nic_fd[2]; /* its NIC channel (core/vm_nic.c), at BH_VM_NIC_FD and after; or -1 */
	int blk_fd[2]; /* its block channel, at BH_VM_BLK_FD and after; or -1 */
};

/* in the child, as root after the namespaces: the VM's root; 0 or -errno, what in *what */
int bh_vm_sandbox_root(const struct bh_vm_sandbox *s, uid_t uid, gid_t gid, const char **what);

#endif
