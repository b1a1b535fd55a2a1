// SPDX-License-Identifier: MIT
/*
 * The agent's view of the ivshmem-doorbell devices core gives a driver VM,
 * one per channel (core/vm_nic.c): the NIC's and the disk's, told apart by
 * the size of their memory (BAR 2). Shared by channel.c and block.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "agent.h"
#include "bulkhead/vm_nic.h"

static bool hex_is(const char *dev, const char *attr, unsigned int want)
{
	char path[300], buf[16] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", dev, attr);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return strtoul(buf, NULL, 16) == want;
}

static bool bar2_is(const char *dev, uint64_t size)
{
	char path[300];
	struct stat st;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource2", dev);
	return stat(path, &st) == 0 && (uint64_t)st.st_size == size;
}

bool ivshmem_find(uint64_t size, char *pci, size_t len)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *e;
	bool found = false;

	while (d && !found && (e = readdir(d)))
		if (e->d_name[0] != '.' && hex_is(e->d_name, "vendor", BH_IVSHMEM_VENDOR) &&
		    hex_is(e->d_name, "device", BH_IVSHMEM_DEVICE) && bar2_is(e->d_name, size)) {
			snprintf(pci, len, "%s", e->d_name);
			found = true;
		}
	if (d)
		closedir(d);
	return found;
}

void set_one(const char *path)
{
	FILE *f = fopen(path, "we");

	if (!f || fputs("1", f) < 0)
		printf("bulkhead-agent: %s: %s\n", path, strerror(errno));
	if (f)
		fclose(f);
}

void *ivshmem_map(const char *pci, size_t *size, const char *what)
{
	char path[300];
	struct stat st;
	void *mem;
	int fd;

	/* memory decoding on: no driver of the guest's has the device, nor enabled it */
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/enable", pci);
	set_one(path);
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource2", pci);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		printf("bulkhead-agent: %s channel: %s: %s\n", what, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	*size = (size_t)st.st_size;
	mem = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (mem == MAP_FAILED) {
		printf("bulkhead-agent: %s channel: cannot map %zu bytes of %s (%s)\n", what, *size,
		       path, strerror(errno));
		return NULL;
	}
	return mem;
}

bool ivshmem_bells(const char *pci, const char *line, const char *what,
		   volatile uint32_t **regs_out, int *wake_out)
{
	char path[300];
	struct termios t;
	void *regs;
	int fd, wake;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource0", pci);
	fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
	regs = fd < 0 ? MAP_FAILED : mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (fd >= 0)
		close(fd);
	wake = open(line, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (regs == MAP_FAILED || wake < 0) {
		printf("bulkhead-agent: %s channel: %s: %s: polling\n", what,
		       regs == MAP_FAILED ? path : line, strerror(errno));
		if (wake >= 0)
			close(wake);
		if (regs != MAP_FAILED)
			munmap(regs, 4096);
		return false;
	}
	/* raw: every byte wakes us, none comes back as an echo */
	if (tcgetattr(wake, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(wake, TCSANOW, &t);
	}
	*regs_out = regs;
	*wake_out = wake;
	return true;
}

unsigned long ivshmem_woken(int wake)
{
	char buf[64];
	unsigned long n = 0;

	while (read(wake, buf, sizeof(buf)) > 0)
		n++;
	return n;
}

bool ivshmem_ring(volatile uint32_t *regs, const uint32_t *host_sleeping)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!regs || !__atomic_load_n(host_sleeping, __ATOMIC_RELAXED))
		return false;
	regs[BH_IVSHMEM_DOORBELL / 4] = BH_VMNIC_HOST_PEER << 16 | 0;
	return true;
}
