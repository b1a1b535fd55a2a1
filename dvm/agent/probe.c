// SPDX-License-Identifier: MIT
/*
 * The confinement probe (bulkhead probe-dma VM ADDR, tests/vm/dvm.sh): the
 * guest turns its own NIC against the host. It takes the e1000e away from
 * Linux's driver (unbind), points the transmit ring at a guest-physical
 * address outside the guest's RAM, rings the tail, and gives the device
 * back to the driver (bind). The host's IOMMU maps the guest's RAM only, so
 * the descriptor fetch must be refused there (DMAR fault in the host's log);
 * what the device would have written back (the descriptor's DD bit) must
 * not reach the host's memory at ADDR.
 *
 * Registers: Intel 82574 GbE Controller Family datasheet, 10.2 (CTRL,
 * TCTL 10.2.5.1, TDBAL/TDBAH/TDLEN/TDH/TDT 10.2.6.2-10.2.6.6, TARC
 * 10.2.6.10); PCI Local Bus 3.0, 6.2.2 (Command register, Bus Master).
 * The ring used is queue 0, the driver's, while the driver is unbound; it
 * resets the device when it binds again.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#define REG_TCTL 0x0400
#define TCTL_EN (1u << 1)
#define REG_TDBAL 0x3800
#define REG_TDBAH 0x3804
#define REG_TDLEN 0x3808
#define REG_TDH 0x3810
#define REG_TDT 0x3818
#define REG_TARC0 0x3840
#define TARC_ENABLE (1u << 10)
#define RING_BYTES 128 /* 8 descriptors: TDLEN is a multiple of 128 */
#define PCI_COMMAND 4
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4

/* is [addr, addr + len) inside one of the guest's "System RAM" ranges? */
static bool in_guest_ram(uint64_t addr, uint64_t len, uint64_t *top)
{
	FILE *f = fopen("/proc/iomem", "re");
	char line[160];
	bool in = false;

	*top = 0;
	while (f && fgets(line, sizeof(line), f)) {
		uint64_t lo, hi;
		/* top-level ranges only: no indentation */
		if (line[0] == ' ' || !strstr(line, ": System RAM") ||
		    sscanf(line, "%" SCNx64 "-%" SCNx64, &lo, &hi) != 2)
			continue;
		if (hi + 1 > *top)
			*top = hi + 1;
		if (addr <= hi && addr + len - 1 >= lo)
			in = true;
	}
	if (f)
		fclose(f);
	return in;
}

static int sysfs_write(const char *dir, const char *file, const char *value)
{
	char path[200];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, value, strlen(value)) != (ssize_t)strlen(value))
		rc = -errno;
	if (fd >= 0)
		close(fd);
	return rc;
}

/* set or clear bits of the device's PCI Command register, through sysfs */
static int pci_command(const char *pci, uint16_t set, uint16_t clear)
{
	char path[200];
	uint16_t cmd;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", pci);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (pread(fd, &cmd, 2, PCI_COMMAND) != 2)
		rc = -EIO;
	cmd = (uint16_t)((cmd | set) & ~clear);
	if (!rc && pwrite(fd, &cmd, 2, PCI_COMMAND) != 2)
		rc = -EIO;
	close(fd);
	return rc;
}

static void wr(volatile uint32_t *regs, uint32_t reg, uint32_t v)
{
	regs[reg / 4] = v;
}

static uint32_t rd(volatile uint32_t *regs, uint32_t reg)
{
	return regs[reg / 4];
}

/* the device's registers are ours: one descriptor fetch from addr; TDH after it */
static int aim_tx_ring(const char *pci, uint64_t addr, uint32_t *head)
{
	char path[200];
	struct timespec ms = { .tv_nsec = 1000000 };
	volatile uint32_t *regs;
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource0", pci);
	fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return -e;
	}
	regs = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (regs == MAP_FAILED)
		return -errno;
	wr(regs, REG_TCTL, rd(regs, REG_TCTL) & ~TCTL_EN);
	wr(regs, REG_TDBAL, (uint32_t)addr);
	wr(regs, REG_TDBAH, (uint32_t)(addr >> 32));
	wr(regs, REG_TDLEN, RING_BYTES);
	wr(regs, REG_TDH, 0);
	wr(regs, REG_TDT, 0);
	wr(regs, REG_TARC0, rd(regs, REG_TARC0) | TARC_ENABLE);
	wr(regs, REG_TCTL, rd(regs, REG_TCTL) | TCTL_EN);
	/* one descriptor to send: the device fetches it from addr */
	wr(regs, REG_TDT, 1);
	for (int i = 0; i < 500 && rd(regs, REG_TDH) == 0; i++)
		nanosleep(&ms, NULL);
	*head = rd(regs, REG_TDH);
	wr(regs, REG_TCTL, rd(regs, REG_TCTL) & ~TCTL_EN);
	munmap((void *)regs, (size_t)st.st_size);
	return 0;
}

/* the interface the driver made of pci once bound again, waiting up to 10 s */
static bool interface_of(const char *pci, char *ifname, size_t len)
{
	char path[200];
	struct timespec tick = { .tv_nsec = 100000000 };

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/net", pci);
	for (int i = 0; i < 100; i++) {
		DIR *d = opendir(path);
		struct dirent *e;
		while (d && (e = readdir(d)))
			if (e->d_name[0] != '.') {
				snprintf(ifname, len, "%s", e->d_name);
				closedir(d);
				return true;
			}
		if (d)
			closedir(d);
		nanosleep(&tick, NULL);
	}
	return false;
}

int probe_dma(const char *ifname, uint64_t addr, char *newif, size_t len)
{
	char dev[200], link[200], pci[32], drvdir[200];
	uint64_t top = 0;
	uint32_t head = 0;
	ssize_t n;
	int rc;

	snprintf(newif, len, "%s", ifname);
	if (addr % 4096 || in_guest_ram(addr, RING_BYTES, &top)) {
		printf("bulkhead-agent: probe-dma: 0x%" PRIx64 " is not a page outside the guest's "
		       "RAM (which ends at 0x%" PRIx64 "): nothing done\n",
		       addr, top);
		return -EINVAL;
	}
	snprintf(dev, sizeof(dev), "/sys/class/net/%s/device", ifname);
	n = readlink(dev, link, sizeof(link) - 1);
	if (n <= 0 || strcmp(if_driver(ifname), "e1000e") != 0) {
		printf("bulkhead-agent: probe-dma: %s is not an e1000e's interface (driver %s): "
		       "nothing done\n",
		       ifname, if_driver(ifname));
		return -ENODEV;
	}
	link[n] = 0;
	snprintf(pci, sizeof(pci), "%s", strrchr(link, '/') ? strrchr(link, '/') + 1 : link);
	snprintf(drvdir, sizeof(drvdir), "/sys/bus/pci/drivers/e1000e");
	snprintf(dev, sizeof(dev), "/sys/bus/pci/devices/%s", pci);
	/* Linux's driver holds the BAR exclusively: it steps aside for the probe */
	rc = sysfs_write(drvdir, "unbind", pci);
	if (!rc)
		rc = sysfs_write(dev, "enable", "1") ?: pci_command(pci, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 0);
	if (!rc)
		rc = aim_tx_ring(pci, addr, &head);
	printf("bulkhead-agent: probe-dma: %s (%s, unbound from e1000e): transmit ring at "
	       "guest-physical 0x%" PRIx64 ", beyond the guest's RAM (0-0x%" PRIx64 "), tail "
	       "rung: head 0 -> %u%s%s\n",
	       pci, ifname, addr, top, head, rc ? ": " : "", rc ? strerror(-rc) : "");
	pci_command(pci, 0, PCI_COMMAND_MASTER);
	sysfs_write(dev, "enable", "0");
	/* the driver takes the device back and resets it */
	if (sysfs_write(drvdir, "bind", pci) < 0 || !interface_of(pci, newif, len)) {
		printf("bulkhead-agent: probe-dma: e1000e did not take %s back: %s\n", pci,
		       strerror(errno));
		return -EIO;
	}
	printf("bulkhead-agent: probe-dma: e1000e bound to %s again: %s\n", pci, newif);
	return rc;
}
