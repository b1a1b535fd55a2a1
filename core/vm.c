// SPDX-License-Identifier: MIT
/*
 * Driver VMs: a component whose program is Debian's QEMU with KVM. Core
 * grants it devices by the same policy as a native driver, then lets go of
 * their VFIO groups (QEMU 7.2 opens /dev/vfio/N itself, and a group is open
 * in one process only), starts QEMU unprivileged in a root that holds only
 * /usr, /dev/kvm, the groups' nodes and the guest's kernel and initramfs,
 * and listens to the guest on its serial line: the agent's "ready" and
 * "alive" lines are its heartbeats. When the VM ends, core takes the groups
 * back, resets the devices, and the supervisor restarts it as any other.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core.h"
#include "sandbox.h"
#include "vm.h"
#include "vm_nic.h"

#define AGENT_READY "bulkhead-agent: ready"
#define AGENT_ALIVE "bulkhead-agent: alive"
#define VM_LINE_MAX 256

/* what core knows of each VM beyond what every component has */
static struct vm_state {
	char line[VM_LINE_MAX];
	size_t len;
	bool ready;
	uint64_t ready_ms; /* start to the agent's "ready", of the last boot */
	unsigned int boots, heartbeats, lines;
} vms[BH_MAX_COMPONENTS];

/* ---- in the child: the VM's root ---- */

static int node(const char *host, const char *path, uid_t uid, gid_t gid)
{
	struct stat st;

	if (stat(host, &st) < 0)
		return -errno;
	if (!S_ISCHR(st.st_mode))
		return -ENODEV;
	if (mknod(path, S_IFCHR | 0600, st.st_rdev) < 0 || chown(path, uid, gid) < 0)
		return -errno;
	return 0;
}

static int bind_ro(const char *from, const char *to, bool file)
{
	if (file) {
		int fd = open(to, O_CREAT | O_WRONLY | O_CLOEXEC, 0444);
		if (fd < 0)
			return -errno;
		close(fd);
	} else if (mkdir(to, 0755) < 0) {
		return -errno;
	}
	if (mount(from, to, NULL, MS_BIND | MS_REC, NULL) < 0 ||
	    mount(NULL, to, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
		return -errno;
	return 0;
}

#define TRY(step, text)                                                                            \
	do {                                                                                       \
		int e_ = (step);                                                                   \
		if (e_ < 0) {                                                                      \
			*what = (text);                                                            \
			return e_ == -1 ? -errno : e_;                                             \
		}                                                                                  \
	} while (0)

int bh_vm_sandbox_root(const struct bh_vm_sandbox *s, uid_t uid, gid_t gid, const char **what)
{
	char path[128], link[96], kernel[64], initramfs[64];
	int kfd = open(s->kernel, O_PATH | O_CLOEXEC), ifd = open(s->initramfs, O_PATH | O_CLOEXEC);

	/* opened before the new root hides them (they may lie below /tmp) */
	TRY(kfd, "the guest's kernel");
	TRY(ifd, "the guest's initramfs");
	snprintf(kernel, sizeof(kernel), "/proc/self/fd/%d", kfd);
	snprintf(initramfs, sizeof(initramfs), "/proc/self/fd/%d", ifd);
	/* device nodes of its own, owned by its uid: the host's stay as they are */
	TRY(mount("bulkhead-vm", "/tmp", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755"),
	    "tmpfs root");
	TRY(bind_ro("/usr", "/tmp/usr", false), "/usr (QEMU, its libraries and firmware)");
	TRY(symlink("usr/lib", "/tmp/lib"), "/lib");
	TRY(symlink("usr/lib64", "/tmp/lib64"), "/lib64");
	TRY(symlink("usr/bin", "/tmp/bin"), "/bin");
	TRY(mkdir("/tmp/vm", 0755), "/vm");
	TRY(bind_ro(kernel, "/tmp/vm/kernel", true), "the guest's kernel");
	TRY(bind_ro(initramfs, "/tmp/vm/initramfs", true), "the guest's initramfs");
	close(kfd);
	close(ifd);
	TRY(mkdir("/tmp/dev", 0755), "/dev");
	TRY(node("/dev/kvm", "/tmp/dev/kvm", uid, gid), "/dev/kvm (modprobe kvm_intel or kvm_amd)");
	TRY(node("/dev/null", "/tmp/dev/null", uid, gid), "/dev/null");
	TRY(mkdir("/tmp/dev/vfio", 0755), "/dev/vfio");
	TRY(node("/dev/vfio/vfio", "/tmp/dev/vfio/vfio", uid, gid), "/dev/vfio/vfio");
	TRY(mkdir("/tmp/sys", 0755) | mkdir("/tmp/sys/bus", 0755) |
		    mkdir("/tmp/sys/bus/pci", 0755) | mkdir("/tmp/sys/bus/pci/devices", 0755),
	    "/sys");
	for (int i = 0; i < s->ndevices; i++) {
		char host[64];
		snprintf(host, sizeof(host), "/dev/vfio/%d", s->groups[i]);
		snprintf(path, sizeof(path), "/tmp/dev/vfio/%d", s->groups[i]);
		TRY(node(host, path, uid, gid), "a granted device's /dev/vfio/N");
		/* all QEMU reads of sysfs: the device's directory and its group's number */
		snprintf(path, sizeof(path), "/tmp/sys/bus/pci/devices/%s", s->address[i]);
		TRY(mkdir(path, 0755), "the device's sysfs directory");
		snprintf(path, sizeof(path), "/tmp/sys/bus/pci/devices/%s/iommu_group",
			 s->address[i]);
		snprintf(link, sizeof(link), "../../../../kernel/iommu_groups/%d", s->groups[i]);
		TRY(symlink(link, path), "the device's iommu_group link");
	}
	TRY(mkdir("/tmp/old", 0700), "pivot_root");
	TRY((int)syscall(SYS_pivot_root, "/tmp", "/tmp/old"), "pivot_root");
	TRY(chdir("/") | umount2("/old", MNT_DETACH) | rmdir("/old"), "detaching the host's root");
	TRY(mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC, NULL),
	    "read-only root");
	return 0;
}

/* ---- in core ---- */

/* let go of the devices: QEMU opens their groups itself */
static void release(struct bh_core_state *core, struct bh_component *c)
{
	for (int i = 0; i < c->ndevices; i++) {
		struct bh_device *dev = &core->devices[c->devices[i]];
		if (dev->device_fd >= 0 || dev->group_fd >= 0)
			core->backend->close(dev);
		dev->acquired = true; /* by the guest's driver */
	}
	core->backend->domain_close(&c->domain);
}

void bh_vm_reacquire(struct bh_core_state *core, struct bh_component *c)
{
	for (int i = 0; i < c->ndevices; i++) {
		struct bh_device *dev = &core->devices[c->devices[i]];
		char err[256] = "";
		int rc = 0;

		if (dev->device_fd >= 0)
			continue;
		/* QEMU's group fds close as it dies, maybe a moment after its exit */
		for (int tries = 0; tries < 40; tries++) {
			rc = core->backend->open(dev, &c->domain, err, sizeof(err));
			if (rc != -EBUSY)
				break;
			core->backend->close(dev);
			usleep(50000);
		}
		if (rc < 0) {
			core->backend->close(dev);
			bh_log("vm \"%s\": cannot take %s back to reset it: %s", c->cfg->name,
			       dev->pci.address, err);
		}
	}
}

static int add_arg(struct bh_vm_sandbox *s, int *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int add_arg(struct bh_vm_sandbox *s, int *n, const char *fmt, ...)
{
	va_list ap;
	int len;

	if (*n >= (int)(sizeof(s->args) / sizeof(s->args[0])) - 1)
		return -E2BIG;
	va_start(ap, fmt);
	len = vsnprintf(s->args[*n], sizeof(s->args[*n]), fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(s->args[*n]))
		return -E2BIG;
	s->argv[*n] = s->args[*n];
	s->argv[++*n] = NULL;
	return 0;
}

/*
 * The block channel (core/vm_nic.c, bulkhead/vm_blk.h), if a component
 * serves the VM's disk: a second ivshmem-doorbell device, and a serial
 * line after the NIC's, whose name the guest finds on its command line
 * (argument append of the n so far). 0, -E2BIG, or -errno with err said.
 */
static int vm_blk_channel(struct bh_core_state *core, struct bh_component *c,
			  struct bh_vm_sandbox *s, int *n, int append, char *err, size_t err_len)
{
	char *cmdline = s->args[append];
	size_t len = strlen(cmdline);
	int rc = bh_vm_channel_server(core, c, BH_VM_CHAN_BLK, s->blk_fd, err, err_len);

	if (rc < 0 || s->blk_fd[0] < 0)
		return rc;
	rc |= add_arg(s, n, "-chardev");
	rc |= add_arg(s, n, "socket,id=bhblk,fd=%d", BH_VM_BLK_FD);
	rc |= add_arg(s, n, "-device");
	rc |= add_arg(s, n, "ivshmem-doorbell,chardev=bhblk,vectors=1");
	rc |= add_arg(s, n, "-chardev");
	rc |= add_arg(s, n, "socket,id=bhblkwake,fd=%d", BH_VM_BLK_FD + 1);
	rc |= add_arg(s, n, "-serial");
	rc |= add_arg(s, n, "chardev:bhblkwake");
	/* the console is ttyS0, the NIC's line (if any) ttyS1 */
	if (rc || snprintf(cmdline + len, sizeof(s->args[0]) - len, " bulkhead.blkline=ttyS%d",
			   s->nic_fd[0] >= 0 ? 2 : 1) >= (int)(sizeof(s->args[0]) - len))
		return -E2BIG;
	return 0;
}

int bh_vm_spawn(struct bh_core_state *core, struct bh_component *c, struct bh_spawn *sp,
		char *err, size_t err_len)
{
	const struct bh_component_config *cc = c->cfg;
	const struct bh_vm_config *vm = &cc->vm;
	static struct bh_vm_sandbox s; /* large; the child gets its own copy */
	int n = 0, rc = 0, append = 0;

	if (!core->backend->iommu) {
		snprintf(err, err_len, "a driver VM needs VFIO with an IOMMU (backend = %s): boot "
				       "with intel_iommu=on (or amd_iommu=on)",
			 core->backend->name);
		return -ENODEV;
	}
	if (c->ndevices == 0) {
		snprintf(err, err_len, "no device was granted to it (see the policy lines above): "
				       "a driver VM without a device has nothing to drive");
		return -ENODEV;
	}
	if (c->ndevices > BH_VM_MAX_DEVICES) {
		snprintf(err, err_len, "%d devices; a driver VM takes at most %d", c->ndevices,
			 BH_VM_MAX_DEVICES);
		return -E2BIG;
	}
	if (access("/dev/kvm", R_OK | W_OK) < 0) {
		snprintf(err, err_len, "/dev/kvm: %s (load kvm_intel or kvm_amd; a driver VM "
				       "needs KVM)",
			 strerror(errno));
		return -ENODEV;
	}
	release(core, c);
	memset(&s, 0, sizeof(s));
	s.blk_fd[0] = s.blk_fd[1] = -1;
	s.kernel = vm->kernel;
	s.initramfs = vm->initramfs;
	s.memlock = vm->memory + (256ull << 20);
	s.ndevices = c->ndevices;
	rc |= add_arg(&s, &n, "%s", cc->name);
	static const char *const fixed[] = {
		/* no firmware ROMs, no default devices, no user config, no reboots */
		"-accel", "kvm", "-cpu", "host", "-M", "q35", "-nodefaults", "-no-user-config",
		"-display", "none", "-no-reboot", "-msg", "timestamp=off",
		/* the guest's console is its line to core (fd 3) */
		"-chardev", "socket,id=agent,fd=3", "-serial", "chardev:agent",
		"-kernel", "/vm/kernel", "-initrd", "/vm/initramfs",
		"-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
	};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		rc |= add_arg(&s, &n, "%s", fixed[i]);
	rc |= add_arg(&s, &n, "-name");
	rc |= add_arg(&s, &n, "bulkhead-%s", cc->name);
	rc |= add_arg(&s, &n, "-m");
	rc |= add_arg(&s, &n, "%llum", (unsigned long long)(vm->memory >> 20));
	rc |= add_arg(&s, &n, "-smp");
	rc |= add_arg(&s, &n, "%u", vm->vcpus);
	rc |= add_arg(&s, &n, "-append");
	append = n;
	rc |= add_arg(&s, &n, "console=ttyS0 quiet loglevel=3 panic=-1 bulkhead.modules=%s%s%s",
		      vm->modules[0] ? vm->modules : "-", vm->append[0] ? " " : "", vm->append);
	for (int i = 0; i < c->ndevices; i++) {
		const struct bh_device *dev = &core->devices[c->devices[i]];
		s.groups[i] = dev->pci.iommu_group;
		snprintf(s.address[i], sizeof(s.address[i]), "%s", dev->pci.address);
		rc |= add_arg(&s, &n, "-device");
		/* rombar=0: the guest's Linux needs no option ROM, and SeaBIOS is faster without */
		rc |= add_arg(&s, &n, "vfio-pci,host=%s,rombar=0", dev->pci.address);
	}
	if (rc) {
		snprintf(err, err_len, "the QEMU command line is too long");
		return -E2BIG;
	}
	rc = bh_vm_nic_server(core, c, s.nic_fd, err, err_len);
	if (rc < 0)
		return rc;
	if (s.nic_fd[0] >= 0) {
		/*
		 * the NIC channel (core/vm_nic.c): ivshmem-doorbell with core its
		 * server, and a second serial line, which wakes the guest
		 */
		rc |= add_arg(&s, &n, "-chardev");
		rc |= add_arg(&s, &n, "socket,id=bhnic,fd=%d", BH_VM_NIC_FD);
		rc |= add_arg(&s, &n, "-device");
		rc |= add_arg(&s, &n, "ivshmem-doorbell,chardev=bhnic,vectors=1");
		rc |= add_arg(&s, &n, "-chardev");
		rc |= add_arg(&s, &n, "socket,id=bhwake,fd=%d", BH_VM_NIC_FD + 1);
		rc |= add_arg(&s, &n, "-serial");
		rc |= add_arg(&s, &n, "chardev:bhwake");
	}
	rc = rc ?: vm_blk_channel(core, c, &s, &n, append, err, err_len);
	if (rc == -E2BIG) {
		snprintf(err, err_len, "the QEMU command line is too long");
	} else if (!rc) {
		rc = bh_spawn_vm(cc, c->uid, c->gid, c->cgroup, &s, sp, err, err_len);
	}
	for (int i = 0; i < 2; i++) {
		if (s.nic_fd[i] >= 0)
			close(s.nic_fd[i]);
		if (s.blk_fd[i] >= 0)
			close(s.blk_fd[i]);
	}
	return rc;
}

void bh_vm_started(struct bh_core_state *core, struct bh_component *c)
{
	struct vm_state *v = &vms[c->index];
	const struct bh_component_config *cc = c->cfg;

	(void)core;
	v->len = 0;
	v->ready = false;
	v->boots++;
	/* the watchdog waits for the first heartbeat until boot_ms after the start */
	if (cc->watchdog_ms && cc->vm.boot_ms > cc->watchdog_ms)
		c->last_heartbeat_ns += (uint64_t)(cc->vm.boot_ms - cc->watchdog_ms) * 1000000ull;
}

/* one line from the guest: its agent's words, or its console */
static void guest_line(struct bh_component *c, struct vm_state *v, char *line)
{
	uint64_t now = bh_now_ns();

	for (char *q = line; *q; q++)
		if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e)
			*q = '?';
	if (strncmp(line, AGENT_ALIVE, strlen(AGENT_ALIVE)) == 0) {
		if (v->ready) {
			c->last_heartbeat_ns = now;
			v->heartbeats++;
		}
		return;
	}
	if (strncmp(line, AGENT_READY, strlen(AGENT_READY)) == 0 && !v->ready) {
		v->ready = true;
		v->ready_ms = (now - c->started_ns) / 1000000ull;
		c->last_heartbeat_ns = now;
		bh_log("vm \"%s\": guest serving %.1f s after start:%s", c->cfg->name,
		       (double)v->ready_ms / 1e3, line + strlen(AGENT_READY));
		return;
	}
	v->lines++;
	fprintf(stdout, "%s guest| %s\n", c->cfg->name, line);
}

void bh_vm_channel(struct bh_core_state *core, struct bh_component *c)
{
	struct vm_state *v = &vms[c->index];

	while (c->sock >= 0) {
		ssize_t n = read(c->sock, v->line + v->len, sizeof(v->line) - 1 - v->len);
		char *nl;

		if (n <= 0) {
			/* QEMU is gone; the supervisor hears of it from SIGCHLD */
			if (n == 0 || (errno != EAGAIN && errno != EINTR))
				epoll_ctl(core->epfd, EPOLL_CTL_DEL, c->sock, NULL);
			break;
		}
		v->len += (size_t)n;
		v->line[v->len] = 0;
		while ((nl = memchr(v->line, '\n', v->len))) {
			size_t used = (size_t)(nl + 1 - v->line);
			*nl = 0;
			if (nl > v->line && nl[-1] == '\r')
				nl[-1] = 0;
			guest_line(c, v, v->line);
			v->len -= used;
			memmove(v->line, v->line + used, v->len + 1);
		}
		/* an overlong line goes out in pieces */
		if (v->len == sizeof(v->line) - 1) {
			guest_line(c, v, v->line);
			v->len = 0;
		}
	}
	fflush(stdout);
}

/*
 * is c a running VM, whose agent reads core's words on the guest's console?
 * 0 if so, else the length of the error said in out
 */
static size_t unreachable(const struct bh_component *c, const char *usage, char *out, size_t len)
{
	if (c && c->cfg->vm.enabled && c->pid > 0 && c->sock >= 0)
		return 0;
	return (size_t)snprintf(out, len, "error usage: %s: '%s' is not a running driver VM\n",
				usage, c ? c->cfg->name : "?");
}

/* line to the agent, on the guest's console (its stdin) */
static size_t tell_agent(struct bh_component *c, const char *line, char *out, size_t len)
{
	size_t n = strlen(line);

	if (write(c->sock, line, n) != (ssize_t)n)
		return (size_t)snprintf(out, len, "error failed: cannot write to %s's console: %s\n",
					c->cfg->name, strerror(errno));
	return 0;
}

size_t bh_vm_sysrq(struct bh_core_state *core, struct bh_component *c, const char *key, char *out,
		   size_t len)
{
	char line[32];
	size_t n;

	(void)core;
	n = unreachable(c, "sysrq VM KEY", out, len);
	if (n)
		return n;
	if (strlen(key) != 1 || !strchr("bcehilmstw", key[0]))
		return (size_t)snprintf(out, len, "error usage: sysrq VM KEY: KEY is one of "
						  "b c e h i l m s t w (c crashes the guest's kernel)\n");
	snprintf(line, sizeof(line), "\nbulkhead-sysrq %c\n", key[0]);
	n = tell_agent(c, line, out, len);
	if (n)
		return n;
	bh_log("vm \"%s\": sysrq %c, as root asked", c->cfg->name, key[0]);
	return (size_t)snprintf(out, len, "ok sysrq %c sent to %s\n", key[0], c->cfg->name);
}

size_t bh_vm_probe_dma(struct bh_core_state *core, struct bh_component *c, const char *addr,
		       char *out, size_t len)
{
	unsigned long long a;
	char line[64], *end;
	size_t n;

	(void)core;
	n = unreachable(c, "probe-dma VM ADDR", out, len);
	if (n)
		return n;
	errno = 0;
	a = strtoull(addr, &end, 16);
	if (errno || end == addr || *end || a == 0 || a % 4096)
		return (size_t)snprintf(out, len, "error usage: probe-dma VM ADDR: ADDR '%s' is not a "
						  "page-aligned guest-physical address in hex, e.g. "
						  "0x20000000\n",
					addr);
	snprintf(line, sizeof(line), "\nbulkhead-probe-dma %llx\n", a);
	n = tell_agent(c, line, out, len);
	if (n)
		return n;
	bh_log("vm \"%s\": its agent aims the device's DMA at 0x%llx, as root asked",
	       c->cfg->name, a);
	return (size_t)snprintf(out, len, "ok probe-dma 0x%llx sent to %s\n", a, c->cfg->name);
}

size_t bh_vm_describe(const struct bh_component *c, char *buf, size_t len)
{
	const struct vm_state *v = &vms[c->index];

	if (!c->cfg->vm.enabled)
		return 0;
	return (size_t)snprintf(buf, len,
				"vm %s boots=%u guest=%s ready_ms=%llu heartbeats=%u "
				"guest_lines=%u memory=%llu vcpus=%u modules=%s\n",
				c->cfg->name, v->boots, v->ready ? "serving" : "booting",
				(unsigned long long)v->ready_ms, v->heartbeats, v->lines,
				(unsigned long long)c->cfg->vm.memory, c->cfg->vm.vcpus,
				c->cfg->vm.modules[0] ? c->cfg->vm.modules : "-");
}
