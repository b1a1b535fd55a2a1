// SPDX-License-Identifier: MIT
/*
 * The component sandbox. Everything here runs in the child between clone and
 * exec, in this order: cgroup, fds, namespaces, its root (with a dynamic
 * program's loader and libraries, core/libs.c), I/O ports (needs
 * CAP_SYS_RAWIO), rlimits, uid/gid, no_new_privs, seccomp (a dynamic
 * program's loader listener handed to core), exec.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/membarrier.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bulkhead/msg.h"
#include "libs.h"
#include "sandbox.h"

/* what a driver may do once it runs: talk over its fds, map, wait, exit */
static const int allowed[] = {
	SCMP_SYS(read),		  SCMP_SYS(write),	   SCMP_SYS(readv),
	SCMP_SYS(writev),	  SCMP_SYS(pread64),	   SCMP_SYS(pwrite64),
	SCMP_SYS(close),	  SCMP_SYS(fstat),	   SCMP_SYS(newfstatat),
	SCMP_SYS(lseek),	  SCMP_SYS(mmap),	   SCMP_SYS(munmap),
	SCMP_SYS(mprotect),	  SCMP_SYS(mremap),	   SCMP_SYS(brk),
	SCMP_SYS(madvise),	  SCMP_SYS(rt_sigaction),  SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(rt_sigreturn),	  SCMP_SYS(sigaltstack),   SCMP_SYS(sendmsg),
	SCMP_SYS(recvmsg),	  SCMP_SYS(sendto),	   SCMP_SYS(recvfrom),
	SCMP_SYS(shutdown),	  SCMP_SYS(epoll_create1), SCMP_SYS(epoll_ctl),
	SCMP_SYS(epoll_wait),	  SCMP_SYS(epoll_pwait),   SCMP_SYS(poll),
	SCMP_SYS(ppoll),	  SCMP_SYS(select),	   SCMP_SYS(pselect6),
	SCMP_SYS(eventfd2),	  SCMP_SYS(timerfd_create), SCMP_SYS(timerfd_settime),
	SCMP_SYS(timerfd_gettime), SCMP_SYS(nanosleep),	   SCMP_SYS(clock_nanosleep),
	SCMP_SYS(clock_gettime),  SCMP_SYS(clock_getres),  SCMP_SYS(gettimeofday),
	SCMP_SYS(getpid),	  SCMP_SYS(gettid),	   SCMP_SYS(getppid),
	SCMP_SYS(getuid),	  SCMP_SYS(geteuid),	   SCMP_SYS(getgid),
	SCMP_SYS(getegid),	  SCMP_SYS(exit),	   SCMP_SYS(exit_group),
	SCMP_SYS(futex),	  SCMP_SYS(set_robust_list), SCMP_SYS(set_tid_address),
	SCMP_SYS(rseq),		  SCMP_SYS(arch_prctl),	   SCMP_SYS(getrandom),
	SCMP_SYS(sched_yield),	  SCMP_SYS(uname),	   SCMP_SYS(restart_syscall),
	SCMP_SYS(prlimit64),	  SCMP_SYS(getrlimit),	   SCMP_SYS(readlink),
	/* on a listening socket core handed over (core/listen.c): it can make no other */
	SCMP_SYS(accept4),
	/* who an accepted peer is (libvncserver logs it) */
	SCMP_SYS(getpeername),	  SCMP_SYS(getsockname),
};

static const int membarrier_cmds[] = { MEMBARRIER_CMD_QUERY,
					MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED,
					MEMBARRIER_CMD_GLOBAL_EXPEDITED };

/* refused with EPERM, so a component sees the refusal instead of dying silently */
static const int refused[] = {
	SCMP_SYS(open),	       SCMP_SYS(openat),      SCMP_SYS(openat2),
	SCMP_SYS(creat),       SCMP_SYS(execve),      SCMP_SYS(socket),
	SCMP_SYS(socketpair),  SCMP_SYS(connect),     SCMP_SYS(bind),
	SCMP_SYS(listen),      SCMP_SYS(ptrace),
	SCMP_SYS(process_vm_readv), SCMP_SYS(process_vm_writev), SCMP_SYS(ioperm),
	SCMP_SYS(iopl),	       SCMP_SYS(memfd_create), SCMP_SYS(dup),
	SCMP_SYS(dup2),	       SCMP_SYS(dup3),	      SCMP_SYS(fork),
	SCMP_SYS(vfork),       SCMP_SYS(clone),       SCMP_SYS(clone3),
	SCMP_SYS(kill),	       SCMP_SYS(setrlimit),   SCMP_SYS(unshare),
	SCMP_SYS(mount),       SCMP_SYS(chdir),	      SCMP_SYS(access),
	SCMP_SYS(faccessat),   SCMP_SYS(faccessat2),  SCMP_SYS(stat),
	SCMP_SYS(lstat),       SCMP_SYS(statx),	      SCMP_SYS(mkdir),
	SCMP_SYS(unlink),      SCMP_SYS(unlinkat),    SCMP_SYS(rename),
};

int bh_sandbox_seccomp(bool io_uring, int *loader)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	int rc = 0;

	if (!ctx)
		return -ENOMEM;
	for (size_t i = 0; !rc && i < sizeof(allowed) / sizeof(allowed[0]); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
	for (size_t i = 0; !rc && i < sizeof(refused) / sizeof(refused[0]); i++)
		if ((!io_uring || (refused[i] != SCMP_SYS(clone) && refused[i] != SCMP_SYS(clone3))) &&
		    (!loader || refused[i] != SCMP_SYS(openat)))
			rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), refused[i], 0);
	/*
	 * a ublk bridge serves each queue from its own thread (the kernel takes
	 * a queue's commands only from the task that fetched for it): clone
	 * with CLONE_THREAD (which implies a shared address space and signal
	 * handlers), nothing else; clone3's flags lie in memory a filter cannot
	 * read, so it is ENOSYS and glibc falls back to clone
	 */
	if (!rc && io_uring)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
				      SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	if (!rc && io_uring)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
				      SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0));
	if (!rc && io_uring)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	/*
	 * a dynamic program's loader opens its libraries: core answers each
	 * openat until the component's first request, and then closes the
	 * listener, after which every openat fails with ENOSYS (core/loader.c)
	 */
	if (!rc && loader)
		rc = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(openat), 0);
	/* ioctl: nothing a driver needs; isatty() and friends get ENOTTY */
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOTTY), SCMP_SYS(ioctl), 0);
	/* fcntl: flags only, no F_DUPFD (that could refill BH_EXEC_FD's slot) */
	for (int cmd = F_GETFD; !rc && cmd <= F_SETFL; cmd++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
				      SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)cmd));
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(fcntl), 1,
				      SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)F_DUPFD));
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(fcntl), 1,
				      SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)F_DUPFD_CLOEXEC));
	/* TCP_NODELAY on an accepted connection (libvncserver sets it) and no other option */
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setsockopt), 2,
				      SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)IPPROTO_TCP),
				      SCMP_A2(SCMP_CMP_EQ, (scmp_datum_t)TCP_NODELAY));
	/* tgkill to itself only, so abort() and raise() work */
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
				      SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));
	/*
	 * membarrier: packet streams' asymmetric barrier (lib/packet_stream.c);
	 * the three commands it uses and no other
	 */
	for (size_t i = 0; !rc && i < sizeof(membarrier_cmds) / sizeof(membarrier_cmds[0]); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(membarrier), 1,
				      SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)membarrier_cmds[i]));
	/* exactly one exec: the program core opened at BH_EXEC_FD, closed by that exec */
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(execveat), 2,
				      SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)BH_EXEC_FD),
				      SCMP_A4(SCMP_CMP_EQ, (scmp_datum_t)AT_EMPTY_PATH));
	/*
	 * io_uring for a ublk bridge only: it restricts its ring to its ublk
	 * commands and then refuses itself further set-up (bridges/block-ublk)
	 */
	if (!rc && io_uring)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(io_uring_setup), 0);
	if (!rc && io_uring)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(io_uring_register), 0);
	if (!rc && io_uring)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(io_uring_enter), 0);
	/* ...for which it adds a filter of its own: filters only ever narrow */
	if (!rc && io_uring)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(seccomp), 1,
				      SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)SECCOMP_SET_MODE_FILTER));
	if (!rc)
		rc = seccomp_load(ctx);
	if (!rc && loader && (*loader = seccomp_notify_fd(ctx)) < 0)
		rc = *loader;
	seccomp_release(ctx);
	return rc;
}

/* in the child: report on the output pipe, then give up */
__attribute__((noreturn)) static void child_fail(const char *what, int e)
{
	if (e)
		dprintf(2, "bulkhead: cannot start: %s: %s\n", what, strerror(e));
	else
		dprintf(2, "bulkhead: cannot start: %s\n", what);
	_exit(127);
}

/* host file path, read-only at the same path in the new root that is mounted on /tmp */
static void bind_file(const char *path)
{
	char dst[PATH_MAX + 8];
	int fd;

	if ((size_t)snprintf(dst, sizeof(dst), "/tmp%s", path) >= sizeof(dst))
		child_fail(path, ENAMETOOLONG);
	for (char *p = dst + 5; (p = strchr(p, '/')); p++) {
		*p = 0;
		if (mkdir(dst, 0755) < 0 && errno != EEXIST)
			child_fail(dst, errno);
		*p = '/';
	}
	fd = open(dst, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0)
		child_fail(dst, errno);
	close(fd);
	/* its own mount: the root is noexec, a library must not be */
	if (mount(path, dst, NULL, MS_BIND, NULL) < 0 ||
	    mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
		child_fail(path, errno);
}

/*
 * An empty, read-only root: the component sees no host file, and its mount
 * namespace holds no host mount (else a filesystem the host unmounts would
 * live on in every component started after it was mounted). It runs from
 * the fd of its program, so a static one needs nothing on disk; a dynamic
 * one gets its loader and libraries (libs), each read-only, and no more.
 */
static void empty_root(const struct bh_libs *libs)
{
	if (mount("bulkhead", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "size=16k,mode=0755") < 0)
		child_fail("tmpfs root", errno);
	for (int i = 0; i < libs->n; i++)
		bind_file(libs->path[i]);
	if (mkdir("/tmp/old", 0700) < 0 || syscall(SYS_pivot_root, "/tmp", "/tmp/old") < 0)
		child_fail("pivot_root", errno);
	if (chdir("/") < 0 || umount2("/old", MNT_DETACH) < 0 || rmdir("/old") < 0)
		child_fail("detaching the host's root", errno);
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  NULL) < 0)
		child_fail("read-only root", errno);
}

__attribute__((noreturn)) static void child(const struct bh_component_config *c, uid_t uid,
					    gid_t gid, int procs, int sock, int out, int exe,
					    const struct bh_vm_sandbox *vm, bool dynamic)
{
	static struct bh_libs libs; /* 256 KiB: not on the stack */
	char why[PATH_MAX + 256];
	char *argv[BH_MAX_ARGS + 2];
	char *envp[BH_MAX_ENV + 1];
	struct rlimit rl;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	setsid();
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* fds: 0 null, 1+2 output, 3 core, BH_EXEC_FD the program; close the rest.
	 * first lift them out of the way so no dup2 below clobbers another */
	null = fcntl(null, F_DUPFD_CLOEXEC, 20);
	out = fcntl(out, F_DUPFD_CLOEXEC, 20);
	sock = fcntl(sock, F_DUPFD_CLOEXEC, 20);
	exe = fcntl(exe, F_DUPFD_CLOEXEC, 20);
	if (procs >= 0 && (procs = fcntl(procs, F_DUPFD_CLOEXEC, 20)) < 0)
		child_fail("fds", errno);
	/* a VM's NIC channel (core/vm_nic.c): two sockets right after core's */
	int nic = vm && vm->nic_fd[0] >= 0 ? fcntl(vm->nic_fd[0], F_DUPFD_CLOEXEC, 20) : -1;
	int line = vm && vm->nic_fd[1] >= 0 ? fcntl(vm->nic_fd[1], F_DUPFD_CLOEXEC, 20) : -1;
	if (vm && vm->nic_fd[0] >= 0 &&
	    (nic < 0 || line < 0 || dup2(nic, BH_VM_NIC_FD) < 0 || dup2(line, BH_VM_NIC_FD + 1) < 0))
		child_fail("fds", errno);
	/* and its block channel's, after those */
	int blk = vm && vm->blk_fd[0] >= 0 ? fcntl(vm->blk_fd[0], F_DUPFD_CLOEXEC, 20) : -1;
	int blkline = vm && vm->blk_fd[1] >= 0 ? fcntl(vm->blk_fd[1], F_DUPFD_CLOEXEC, 20) : -1;
	if (vm && vm->blk_fd[0] >= 0 &&
	    (blk < 0 || blkline < 0 || dup2(blk, BH_VM_BLK_FD) < 0 ||
	     dup2(blkline, BH_VM_BLK_FD + 1) < 0))
		child_fail("fds", errno);
	if (null < 0 || out < 0 || sock < 0 || exe < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0 ||
	    dup2(sock, BH_CORE_FD) < 0 || dup3(exe, BH_EXEC_FD, O_CLOEXEC) < 0)
		child_fail("fds", errno);
	/* its cgroup, as root and before anything of its own runs; its error goes to the log */
	if (procs >= 0 && write(procs, "0", 1) != 1)
		child_fail("joining its cgroup (cgroup.procs)", errno);
	if (close_range(blk >= 0 ? BH_VM_BLK_FD + 2 : nic >= 0 ? BH_VM_NIC_FD + 2 : BH_CORE_FD + 1,
			BH_EXEC_FD - 1, 0) < 0 ||
	    (blk >= 0 && nic < 0 && close_range(BH_CORE_FD + 1, BH_VM_BLK_FD - 1, 0) < 0) ||
	    close_range(BH_EXEC_FD + 1, ~0u, 0) < 0)
		child_fail("close_range", errno);
	/* namespaces came with clone(); mounts made here stay here */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		child_fail("private mounts", errno);
	if (vm) {
		const char *what = "";
		int e = bh_vm_sandbox_root(vm, uid, gid, &what);
		if (e)
			child_fail(what, -e);
		rl.rlim_cur = rl.rlim_max = vm->memlock;
		if (setrlimit(RLIMIT_MEMLOCK, &rl) < 0)
			child_fail("RLIMIT_MEMLOCK", errno);
	} else {
		if (dynamic && bh_libs_closure(c->exec, &libs, why, sizeof(why)) < 0)
			child_fail(why, 0);
		empty_root(&libs);
	}
	for (int i = 0; i < c->nisa; i++)
		if (ioperm(c->isa[i].base, c->isa[i].count, 1) < 0)
			child_fail("ioperm", errno);
	rl.rlim_cur = rl.rlim_max = c->limit_memory;
	if (setrlimit(RLIMIT_AS, &rl) < 0)
		child_fail("RLIMIT_AS", errno);
	rl.rlim_cur = rl.rlim_max = c->limit_fds;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		child_fail("RLIMIT_NOFILE", errno);
	rl.rlim_cur = rl.rlim_max = c->limit_procs;
	if (setrlimit(RLIMIT_NPROC, &rl) < 0)
		child_fail("RLIMIT_NPROC", errno);
	rl.rlim_cur = rl.rlim_max = 0;
	setrlimit(RLIMIT_CORE, &rl);
	if (chdir("/") < 0)
		child_fail("chdir", errno);
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
		child_fail("dropping privileges", errno);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail("no_new_privs", errno);
	argv[0] = (char *)c->name;
	for (int i = 0; i < c->argc; i++)
		argv[i + 1] = (char *)c->argv[i];
	argv[c->argc + 1] = NULL;
	for (int i = 0; i < c->envc; i++)
		envp[i] = (char *)c->env[i];
	envp[c->envc] = NULL;
	/* a VM's QEMU filters its own system calls once it is set up (-sandbox on) */
	int loader = -1;
	int rc = vm ? 0 : bh_sandbox_seccomp(c->ublk >= 0, dynamic ? &loader : NULL);
	if (rc)
		child_fail("seccomp", -rc);
	/* the listener of its loader's openat goes to core: the first datagram core reads */
	if (loader >= 0 && bh_dgram_send(BH_CORE_FD, "L", 1, &loader, 1) < 0)
		child_fail("handing core its loader's listener", errno);
	if (loader >= 0)
		close(loader);
	syscall(SYS_execveat, BH_EXEC_FD, "", vm ? vm->argv : argv, envp, AT_EMPTY_PATH);
	child_fail(c->exec, errno);
}

static int spawn(const struct bh_component_config *c, uid_t uid, gid_t gid, int cgroup,
		 const struct bh_vm_sandbox *vm, struct bh_spawn *out, char *err, size_t err_len)
{
	int sv[2], pipefd[2], exe, procs = -1, dynamic = 0;
	struct stat st;
	pid_t pid;

	/* the child finds the libraries: core's loop never waits for that */
	if (!vm && (dynamic = bh_libs_dynamic(c->exec, err, err_len)) < 0)
		return -ENOEXEC;
	out->dynamic = dynamic;

	exe = open(c->exec, O_PATH | O_CLOEXEC);
	if (exe < 0 || fstat(exe, &st) < 0 || !S_ISREG(st.st_mode) || !(st.st_mode & 0111)) {
		snprintf(err, err_len, "%s: %s: fix exec = in the config (is the project built?)",
			 c->exec, exe < 0 ? strerror(errno) : "not an executable file");
		if (exe >= 0)
			close(exe);
		return -ENOENT;
	}
	/* a VM's is the guest's serial line: a byte stream */
	if (socketpair(AF_UNIX, (vm ? SOCK_STREAM : SOCK_SEQPACKET) | SOCK_CLOEXEC, 0, sv) < 0) {
		close(exe);
		snprintf(err, err_len, "socketpair: %s", strerror(errno));
		return -errno;
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		snprintf(err, err_len, "pipe: %s", strerror(errno));
		close(exe);
		close(sv[0]);
		close(sv[1]);
		return -errno;
	}
	/* opened here, written by the child: it joins before it runs anything of its own */
	if (cgroup >= 0 && (procs = openat(cgroup, "cgroup.procs", O_WRONLY | O_CLOEXEC)) < 0) {
		int e = errno;
		snprintf(err, err_len, "its cgroup's cgroup.procs: %s (was the cgroup removed "
				       "while core ran?)",
			 strerror(e));
		close(exe);
		close(sv[0]);
		close(sv[1]);
		close(pipefd[0]);
		close(pipefd[1]);
		return -e;
	}
	/*
	 * its own pid, mount, network, ipc and uts namespaces: it sees no other
	 * process, no network but its own loopback, and changes no mount of ours
	 */
	pid = (pid_t)syscall(SYS_clone, SIGCHLD | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET |
						CLONE_NEWIPC | CLONE_NEWUTS,
			     NULL, NULL, NULL, NULL);
	if (pid < 0) {
		int e = errno;
		snprintf(err, err_len, "clone: %s", strerror(e));
		if (procs >= 0)
			close(procs);
		close(exe);
		close(sv[0]);
		close(sv[1]);
		close(pipefd[0]);
		close(pipefd[1]);
		return -e;
	}
	if (pid == 0)
		child(c, uid, gid, procs, sv[1], pipefd[1], exe, vm, dynamic);
	if (procs >= 0)
		close(procs);
	close(exe);
	close(sv[1]);
	close(pipefd[1]);

	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
	out->pid = pid;
	out->sock = sv[0];
	out->output = pipefd[0];
	return 0;
}

int bh_spawn(const struct bh_component_config *c, uid_t uid, gid_t gid, int cgroup,
	     struct bh_spawn *out, char *err, size_t err_len)
{
	return spawn(c, uid, gid, cgroup, NULL, out, err, err_len);
}

int bh_spawn_vm(const struct bh_component_config *c, uid_t uid, gid_t gid, int cgroup,
		const struct bh_vm_sandbox *vm, struct bh_spawn *out, char *err, size_t err_len)
{
	return spawn(c, uid, gid, cgroup, vm, out, err, err_len);
}
