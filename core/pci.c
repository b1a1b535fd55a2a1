// SPDX-License-Identifier: MIT
/* PCI enumeration through libpci; host-use checks and binding through sysfs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pci/pci.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pci.h"

const struct bh_host bh_host_real = {
	.sysfs = "/sys",
	.mountinfo = "/proc/self/mountinfo",
	.swaps = "/proc/swaps",
};

/* libpci's error hook must not return: jump back into bh_pci_scan() */
static jmp_buf pci_failed;
static char pci_failure[256];

__attribute__((noreturn)) static void pci_err(char *msg, ...)
{
	va_list ap;

	va_start(ap, msg);
	vsnprintf(pci_failure, sizeof(pci_failure), msg, ap);
	va_end(ap);
	longjmp(pci_failed, 1);
}

static void pci_quiet(char *msg, ...)
{
	(void)msg;
}

int bh_pci_scan(const struct bh_host *h, struct bh_pci_dev **devs, int *ndevs, char *err,
		size_t err_len)
{
	char sysdir[PATH_MAX];
	struct pci_access *acc;
	struct pci_dev *p;
	volatile int n = 0, cap = 0;
	struct bh_pci_dev *volatile out = NULL;

	snprintf(sysdir, sizeof(sysdir), "%s/bus/pci", h->sysfs);
	if (access(sysdir, R_OK) != 0) {
		snprintf(err, err_len, "%s: %s (is sysfs mounted?)", sysdir, strerror(errno));
		return -ENOENT;
	}
	acc = pci_alloc();
	if (setjmp(pci_failed)) {
		snprintf(err, err_len, "scanning PCI devices: %s", pci_failure);
		free(out);
		pci_cleanup(acc);
		return -EIO;
	}
	acc->method = PCI_ACCESS_SYS_BUS_PCI;
	acc->error = pci_err;
	acc->warning = pci_quiet;
	acc->debug = pci_quiet;
	snprintf(sysdir, sizeof(sysdir), "%s/bus/pci", h->sysfs);
	pci_set_param(acc, "sysfs.path", sysdir);
	pci_init(acc);
	pci_scan_bus(acc);
	for (p = acc->devices; p; p = p->next) {
		struct bh_pci_dev *d;
		char *drv;

		pci_fill_info(p, PCI_FILL_IDENT | PCI_FILL_CLASS | PCI_FILL_CLASS_EXT |
					 PCI_FILL_BASES | PCI_FILL_SIZES | PCI_FILL_IO_FLAGS |
					 PCI_FILL_IOMMU_GROUP | PCI_FILL_DRIVER);
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			struct bh_pci_dev *grown = realloc(out, sizeof(*out) * cap);
			if (!grown) {
				free(out);
				pci_cleanup(acc);
				snprintf(err, err_len, "out of memory scanning PCI devices");
				return -ENOMEM;
			}
			out = grown;
		}
		d = &out[n++];
		memset(d, 0, sizeof(*d));
		snprintf(d->address, sizeof(d->address), "%04x:%02x:%02x.%x", p->domain & 0xffff,
			 p->bus, p->dev, p->func);
		d->vendor = p->vendor_id;
		d->device = p->device_id;
		d->class_code = ((uint32_t)p->device_class << 8) | p->prog_if;
		for (int i = 0; i < BH_MAX_REGIONS; i++) {
			pciaddr_t flags = p->flags[i] ? p->flags[i] : p->base_addr[i];
			d->bar_size[i] = p->size[i];
			if (!p->size[i])
				continue;
			d->bar_flags[i] = BH_REGION_PRESENT;
			if (flags & PCI_BASE_ADDRESS_SPACE_IO) {
				d->bar_flags[i] |= BH_REGION_IO;
			} else {
				d->bar_flags[i] |= BH_REGION_MMIO;
				if (flags & PCI_BASE_ADDRESS_MEM_PREFETCH)
					d->bar_flags[i] |= BH_REGION_PREFETCH;
			}
		}
		char *grp = pci_get_string_property(p, PCI_FILL_IOMMU_GROUP);
		d->iommu_group = grp ? atoi(grp) : -1;
		drv = pci_get_string_property(p, PCI_FILL_DRIVER);
		snprintf(d->driver, sizeof(d->driver), "%s", drv ? drv : "");
		char vname[128];
		if (!pci_lookup_name(acc, vname, sizeof(vname), PCI_LOOKUP_VENDOR | PCI_LOOKUP_DEVICE,
				     p->vendor_id, p->device_id))
			snprintf(vname, sizeof(vname), "%04x:%04x", p->vendor_id, p->device_id);
		snprintf(d->name, sizeof(d->name), "%s", vname);
	}
	pci_cleanup(acc);
	*devs = out;
	*ndevs = n;
	return 0;
}

static int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

/* a short string into a sysfs attribute (the driver binds here, ublk.c's
 * scheduler): 0 or -errno */
int bh_sysfs_write(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	if (n < 0)
		return -errno;
	return 0;
}

/* is "dev" (maj:min) mounted or used as swap? */
static bool block_in_use(const struct bh_host *h, const char *devno, const char *name,
			 char *why, size_t why_len)
{
	char line[4096];
	FILE *f = fopen(h->mountinfo, "re");

	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char mdev[32], mnt[1024];
			/* id parent maj:min root mountpoint ... */
			/* by device number, or by source name (btrfs shows 0:NN numbers) */
			const char *sep = strstr(line, " - ");
			char src[256] = "";
			if (sep)
				sscanf(sep + 3, "%*s %255s", src);
			const char *base = strrchr(src, '/');
			if (sscanf(line, "%*d %*d %31s %*s %1023s", mdev, mnt) == 2 &&
			    (strcmp(mdev, devno) == 0 ||
			     (base && strncmp(src, "/dev/", 5) == 0 && strcmp(base + 1, name) == 0))) {
				snprintf(why, why_len, "its disk %s holds the filesystem mounted on %s",
					 name, mnt);
				fclose(f);
				return true;
			}
		}
		fclose(f);
	}
	f = fopen(h->swaps, "re");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char path[1024];
			const char *base;
			if (sscanf(line, "%1023s", path) != 1)
				continue;
			base = strrchr(path, '/');
			if (base && strcmp(base + 1, name) == 0) {
				snprintf(why, why_len, "its disk %s is used as swap", name);
				fclose(f);
				return true;
			}
		}
		fclose(f);
	}
	return false;
}

/* walk /sys/class/<cls>/ for entries that live below the device */
static int class_users(const struct bh_host *h, const char *devpath, const char *cls,
		       char *why, size_t why_len)
{
	char dirpath[PATH_MAX], path[PATH_MAX], real[PATH_MAX], buf[64];
	size_t plen = strlen(devpath);
	struct dirent *e;
	DIR *dir;
	int used = 0;

	snprintf(dirpath, sizeof(dirpath), "%s/class/%s", h->sysfs, cls);
	dir = opendir(dirpath);
	if (!dir)
		return 0;
	while (!used && (e = readdir(dir))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dirpath, e->d_name);
		if (!realpath(path, real) || strncmp(real, devpath, plen) != 0 || real[plen] != '/')
			continue;
		if (strcmp(cls, "tty") == 0) {
			char active[256], *tok, *save;
			snprintf(path, sizeof(path), "%s/class/tty/console/active", h->sysfs);
			if (read_file(path, active, sizeof(active)) != 0)
				continue;
			for (tok = strtok_r(active, " ", &save); tok && !used;
			     tok = strtok_r(NULL, " ", &save)) {
				if (strcmp(tok, e->d_name) == 0) {
					snprintf(why, why_len, "its serial port %s is the system "
							       "console",
						 e->d_name);
					used = 1;
				}
			}
		} else if (strcmp(cls, "net") == 0) {
			snprintf(path, sizeof(path), "%s/flags", real);
			if (read_file(path, buf, sizeof(buf)) == 0 && (strtoul(buf, NULL, 0) & 1)) {
				snprintf(why, why_len, "its network interface %s is up",
					 e->d_name);
				used = 1;
			}
		} else {
			DIR *holders;
			snprintf(path, sizeof(path), "%s/dev", real);
			if (read_file(path, buf, sizeof(buf)) == 0 &&
			    block_in_use(h, buf, e->d_name, why, why_len))
				used = 1;
			snprintf(path, sizeof(path), "%s/holders", real);
			holders = opendir(path);
			while (!used && holders) {
				struct dirent *he = readdir(holders);
				if (!he)
					break;
				if (he->d_name[0] == '.')
					continue;
				snprintf(why, why_len, "its disk %s is held by %s (md/dm)",
					 e->d_name, he->d_name);
				used = 1;
			}
			if (holders)
				closedir(holders);
		}
	}
	closedir(dir);
	return used;
}

int bh_pci_host_use(const struct bh_host *h, const char *address, char *why, size_t why_len)
{
	char path[PATH_MAX], devpath[PATH_MAX], buf[16];

	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s", h->sysfs, address);
	if (!realpath(path, devpath)) {
		snprintf(why, why_len, "no PCI device %s", address);
		return -ENODEV;
	}
	snprintf(path, sizeof(path), "%s/boot_vga", devpath);
	if (read_file(path, buf, sizeof(buf)) == 0 && strcmp(buf, "1") == 0) {
		snprintf(why, why_len, "it is the boot display (the console)");
		return 1;
	}
	if (class_users(h, devpath, "block", why, why_len))
		return 1;
	if (class_users(h, devpath, "net", why, why_len))
		return 1;
	if (class_users(h, devpath, "tty", why, why_len))
		return 1;
	return 0;
}

void bh_pci_driver(const struct bh_host *h, const char *address, char *buf, size_t len)
{
	char path[PATH_MAX], link[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/driver", h->sysfs, address);
	n = readlink(path, link, sizeof(link) - 1);
	buf[0] = 0;
	if (n <= 0)
		return;
	link[n] = 0;
	snprintf(buf, len, "%s", strrchr(link, '/') ? strrchr(link, '/') + 1 : link);
}

int bh_modprobe(const char *module)
{
	char *argv[] = { "modprobe", "-q", (char *)module, NULL };
	extern char **environ;
	pid_t pid;
	int st;

	if (posix_spawnp(&pid, "modprobe", NULL, NULL, argv, environ) != 0)
		return -1;
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -1;
	return 0;
}

/* set driver_override, and leave the current driver cur (if any) */
static int override_and_unbind(const struct bh_host *h, const char *address, const char *driver,
			       const char *cur, char *err, size_t err_len)
{
	char path[PATH_MAX];
	int rc;

	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/driver_override", h->sysfs, address);
	rc = bh_sysfs_write(path, driver);
	if (rc) {
		snprintf(err, err_len, "%s: cannot write driver_override: %s", address,
			 strerror(-rc));
		return rc;
	}
	if (!cur[0])
		return 0;
	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/driver/unbind", h->sysfs, address);
	rc = bh_sysfs_write(path, address);
	if (rc)
		snprintf(err, err_len, "%s: cannot unbind from %s: %s", address, cur, strerror(-rc));
	return rc;
}

int bh_pci_bind(const struct bh_host *h, const char *address, const char *driver, char *err,
		size_t err_len)
{
	char path[PATH_MAX], cur[64];
	int rc;

	bh_pci_driver(h, address, cur, sizeof(cur));
	if (strcmp(cur, driver) == 0)
		return 0;
	snprintf(path, sizeof(path), "%s/bus/pci/drivers/%s", h->sysfs, driver);
	if (access(path, F_OK) != 0) {
		const char *mod = strcmp(driver, "vfio-pci") == 0 ? "vfio-pci" : driver;
		if (bh_modprobe(mod) != 0 || access(path, F_OK) != 0) {
			snprintf(err, err_len, "cannot load kernel module %s for %s: install the "
					       "kernel's modules or run 'modprobe %s' by hand",
				 mod, address, mod);
			return -ENOENT;
		}
	}
	rc = override_and_unbind(h, address, driver, cur, err, err_len);
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "%s/bus/pci/drivers_probe", h->sysfs);
	rc = bh_sysfs_write(path, address);
	bh_pci_driver(h, address, cur, sizeof(cur));
	if (strcmp(cur, driver) != 0) {
		if (strcmp(driver, "vfio-pci") == 0)
			snprintf(err, err_len, "%s: vfio-pci did not take the device (%s); it needs "
					       "an IOMMU group: boot with intel_iommu=on (or "
					       "amd_iommu=on) and check /sys/kernel/iommu_groups, or "
					       "set 'backend = uio' for the unsafe no-IOMMU mode",
				 address, rc ? strerror(-rc) : "no error");
		else
			snprintf(err, err_len, "%s: %s did not take the device (%s)", address,
				 driver, rc ? strerror(-rc) : "no error");
		return -ENODEV;
	}
	return 0;
}

int bh_pci_attr(const struct bh_host *h, const char *address, const char *attr, char *buf,
		size_t len)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/%s", h->sysfs, address, attr);
	buf[0] = 0;
	return read_file(path, buf, len);
}

int bh_pci_unbind(const struct bh_host *h, const char *address, char *err, size_t err_len)
{
	char path[PATH_MAX], cur[64], alias[256];
	int rc;

	bh_pci_driver(h, address, cur, sizeof(cur));
	/* an empty override ("\n") lets the kernel match drivers by ID again */
	rc = override_and_unbind(h, address, "\n", cur, err, err_len);
	if (rc)
		return rc;
	/* without udev nobody loads the device's module: modprobe knows it by its alias */
	if (bh_pci_attr(h, address, "modalias", alias, sizeof(alias)) == 0 && alias[0])
		bh_modprobe(alias);
	snprintf(path, sizeof(path), "%s/bus/pci/drivers_probe", h->sysfs);
	rc = bh_sysfs_write(path, address);
	if (rc && rc != -ENODEV) {
		snprintf(err, err_len, "%s: drivers_probe: %s", address, strerror(-rc));
		return rc;
	}
	return 0;
}
