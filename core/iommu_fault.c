// SPDX-License-Identifier: MIT
/*
 * IOMMU faults: the kernel reports a DMA the IOMMU blocked in its log
 * (Intel: "DMAR: [DMA Read ...] Request device [01:00.0] ... fault addr
 * 0x8000000 [fault reason 0x06] ..."). Core follows /dev/kmsg and, when the
 * device is one of its own, names the component whose driver did it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core.h"

int bh_iommu_fault_open(struct bh_core_state *core)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = BH_TAG(BH_TAG_KMSG, 0) };

	core->kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (core->kmsg_fd < 0)
		return -errno;
	/* only what happens from now on */
	lseek(core->kmsg_fd, 0, SEEK_END);
	epoll_ctl(core->epfd, EPOLL_CTL_ADD, core->kmsg_fd, &ev);
	return 0;
}

/* "[01:00.0]" in a DMAR line -> our device with that bus:slot.fn, or NULL */
static struct bh_device *device_in(struct bh_core_state *core, const char *line)
{
	unsigned int bus, slot, fn;
	const char *p = strstr(line, "Request device [");

	if (!p || sscanf(p, "Request device [%x:%x.%x]", &bus, &slot, &fn) != 3)
		return NULL;
	for (int i = 0; i < core->ndevices; i++) {
		unsigned int d, b, s, f;
		if (sscanf(core->devices[i].pci.address, "%x:%x:%x.%x", &d, &b, &s, &f) == 4 &&
		    b == bus && s == slot && f == fn)
			return &core->devices[i];
	}
	return NULL;
}

void bh_iommu_fault_read(struct bh_core_state *core)
{
	char rec[1024];
	ssize_t n;

	/* one record per read; EAGAIN when drained, EPIPE when we fell behind */
	while ((n = read(core->kmsg_fd, rec, sizeof(rec) - 1)) != 0) {
		if (n < 0) {
			if (errno == EPIPE)
				continue;
			return;
		}
		rec[n] = 0;
		char *msg = strchr(rec, ';');
		if (!msg || !strstr(msg, "DMAR") || !strstr(msg, "fault addr"))
			continue;
		msg++;
		msg[strcspn(msg, "\n")] = 0;
		struct bh_device *dev = device_in(core, msg);
		if (!dev)
			continue;
		const char *owner = dev->owner >= 0 ? core->comp[dev->owner].cfg->name : "-";
		char addr[32] = "?";
		const char *fa = strstr(msg, "fault addr ");
		if (fa)
			sscanf(fa, "fault addr %31s", addr);
		dev->iommu_faults++;
		if (dev->owner >= 0)
			core->comp[dev->owner].iommu_faults++;
		bh_log("IOMMU blocked a DMA by %s (\"%s\") to device address 0x%s: %s",
		       dev->pci.address, owner, addr[0] == '0' && addr[1] == 'x' ? addr + 2 : addr,
		       msg);
	}
}
