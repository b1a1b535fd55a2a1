// SPDX-License-Identifier: MIT
/*
 * escape: a component that tries to leave its sandbox. Every attempt must
 * be refused; the last one, a system call outside the allowlist, must get
 * the process killed (SIGSYS), which core logs as a seccomp violation.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static int refused(const char *what, long rc)
{
	int ok = rc < 0;

	printf("escape: %s %s%s%s\n", what, ok ? "refused: " : "ALLOWED", ok ? strerror(errno) : "",
	       "");
	return ok;
}

int main(void)
{
	char *argv[] = { "sh", "-c", "id", NULL };
	char buf[16];
	struct iovec local = { buf, sizeof(buf) }, remote = { (void *)0x400000, sizeof(buf) };
	int ok = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	ok += refused("open(\"/etc/shadow\")", open("/etc/shadow", O_RDONLY));
	ok += refused("execve(\"/bin/sh\")", execve("/bin/sh", argv, NULL));
	ok += refused("socket(AF_INET, SOCK_STREAM)", socket(AF_INET, SOCK_STREAM, 0));
	ok += refused("socket(AF_UNIX, SOCK_DGRAM)", socket(AF_UNIX, SOCK_DGRAM, 0));
	/* another process's memory: pid 1 of the host would be core's parent */
	ok += refused("process_vm_readv(1)", process_vm_readv(1, &local, 1, &remote, 1, 0));
	ok += refused("ptrace(PTRACE_ATTACH, 1)", syscall(SYS_ptrace, 16, 1, 0, 0));
	ok += refused("fork()", fork());
	printf("escape: %d of 7 refused; I am pid %d in my own pid namespace\n", ok, getpid());
	printf("escape: now a system call outside the allowlist (mknod)\n");
	syscall(SYS_mknod, "/tmp/x", 0600, 0);
	printf("escape: STILL ALIVE after mknod\n");
	return 0;
}
