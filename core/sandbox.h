/* SPDX-License-Identifier: MIT */
/* Starting a component: an unprivileged, sandboxed process with one socket to core. */
#ifndef BH_CORE_SANDBOX_H
#define BH_CORE_SANDBOX_H

#include <stdbool.h>
#include <sys/types.h>

#include "config.h"

#define BH_EXEC_FD 1000 /* the program, above the fd limit so it cannot come back */

struct bh_spawn {
	pid_t pid;
	int sock;   /* core's end of the component's socket */
	int output; /* read end of the component's stdout+stderr */
	bool dynamic; /* its first datagram will be its loader's listener (core/loader.c) */
};

/*
 * clone and exec c as uid:gid in its sandbox: new session, die with core,
 * fds 0 (/dev/null), 1+2 (a pipe to core), 3 (socket to core) and nothing
 * else; its ISA ports enabled; rlimits; no new privileges; seccomp
 * allowlist; own pid, mount, net, ipc and uts namespaces; the config's
 * environment only. With cgroup (a cgroup's directory fd, else -1), it
 * joins that cgroup before anything else.
 */
int bh_spawn(const struct bh_component_config *c, uid_t uid, gid_t gid, int cgroup,
	     struct bh_spawn *out, char *err, size_t err_len);

/*
 * the same for a driver VM's QEMU (core/vm.c): its root holds what vm lists,
 * fd 3 is the guest's serial line (a stream), its memory may be locked,
 * and QEMU's own seccomp filter stands in for ours
 */
struct bh_vm_sandbox;
int bh_spawn_vm(const struct bh_component_config *c, uid_t uid, gid_t gid, int cgroup,
		const struct bh_vm_sandbox *vm, struct bh_spawn *out, char *err, size_t err_len);

/* install the component seccomp filter in the calling process (used after fork) */
/*
 * io_uring: its three system calls too; loader (a dynamic program's): openat
 * goes to the listener this returns there, for core to answer
 */
int bh_sandbox_seccomp(bool io_uring, int *loader);

#endif
