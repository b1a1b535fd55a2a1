// SPDX-License-Identifier: MIT
/*
 * The VFIO backend: a type1 container per component (its IOMMU domain),
 * groups attached to it, device fds held by core. Drivers get BARs through
 * sysfs resource fds, interrupts as eventfds VFIO signals, and DMA memory
 * core mapped into the container; config space and reset stay with core.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "backend.h"

/* groups already attached; a group joins exactly one container */
static struct {
	int number;
	int fd;
	int container_fd;
	int users;
} groups[64];

static int group_get(int number, struct bh_domain *dom, char *err, size_t err_len)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	char path[64];
	int fd, slot = -1;

	for (int i = 0; i < 64; i++) {
		if (groups[i].users && groups[i].number == number) {
			if (groups[i].container_fd != dom->container_fd) {
				snprintf(err, err_len, "IOMMU group %d holds devices of two "
						       "components; one group, one owner: give "
						       "all of /sys/kernel/iommu_groups/%d/devices "
						       "to the same component",
					 number, number);
				return -EBUSY;
			}
			groups[i].users++;
			return groups[i].fd;
		}
		if (!groups[i].users && slot < 0)
			slot = i;
	}
	if (slot < 0) {
		snprintf(err, err_len, "too many IOMMU groups");
		return -ENOSPC;
	}
	snprintf(path, sizeof(path), "/dev/vfio/%d", number);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, err_len, "%s: %s%s", path, strerror(e),
			 e == EBUSY ? " (another process holds the group)" : "");
		return -e;
	}
	if (ioctl(fd, VFIO_GROUP_GET_STATUS, &st) < 0 || !(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		snprintf(err, err_len, "IOMMU group %d is not viable: every device in "
				       "/sys/kernel/iommu_groups/%d/devices must be bound to "
				       "vfio-pci or to no driver",
			 number, number);
		close(fd);
		return -EPERM;
	}
	if (ioctl(fd, VFIO_GROUP_SET_CONTAINER, &dom->container_fd) < 0) {
		snprintf(err, err_len, "IOMMU group %d: cannot join the container: %s", number,
			 strerror(errno));
		close(fd);
		return -EIO;
	}
	if (!dom->iommu_set) {
		int type = ioctl(dom->container_fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) > 0
				   ? VFIO_TYPE1v2_IOMMU
				   : VFIO_TYPE1_IOMMU;
		if (ioctl(dom->container_fd, VFIO_SET_IOMMU, type) < 0) {
			snprintf(err, err_len, "cannot set the type1 IOMMU: %s", strerror(errno));
			close(fd);
			return -EIO;
		}
		dom->iommu_set = true;
	}
	groups[slot].number = number;
	groups[slot].fd = fd;
	groups[slot].container_fd = dom->container_fd;
	groups[slot].users = 1;
	return fd;
}

static void group_put(int fd)
{
	for (int i = 0; i < 64; i++) {
		if (groups[i].users && groups[i].fd == fd && --groups[i].users == 0) {
			ioctl(fd, VFIO_GROUP_UNSET_CONTAINER);
			close(fd);
		}
	}
}

/*
 * A secondary bus reset resets the whole function; a PM (D3hot) reset may
 * leave a device's DMA engines configured (QEMU's e1000e resumes its old
 * rings). Where the kernel offers both, ask for the bus reset first.
 */
static void prefer_bus_reset(struct bh_device *dev)
{
	char path[PATH_MAX], methods[128], order[160];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/reset_method", dev->pci.address);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, methods, sizeof(methods) - 1);
	if (n > 0) {
		methods[n] = 0;
		methods[strcspn(methods, "\n")] = 0;
		if (strstr(methods, "bus") && strncmp(methods, "bus", 3) != 0) {
			char rest[128] = "";
			for (char *m = strtok(methods, " "); m; m = strtok(NULL, " "))
				if (strcmp(m, "bus") != 0)
					snprintf(rest + strlen(rest), sizeof(rest) - strlen(rest), " %s",
						 m);
			snprintf(order, sizeof(order), "bus%s", rest);
			(void)!pwrite(fd, order, strlen(order), 0);
		}
	}
	close(fd);
}

static int vfio_open(struct bh_device *dev, struct bh_domain *dom, char *err, size_t err_len)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	struct vfio_region_info reg = { .argsz = sizeof(reg) };
	int rc;

	if (dev->pci.iommu_group < 0) {
		snprintf(err, err_len, "%s is in no IOMMU group: boot the kernel with "
				       "intel_iommu=on (or amd_iommu=on), or set 'backend = uio' "
				       "for the unsafe no-IOMMU mode",
			 dev->pci.address);
		return -ENODEV;
	}
	rc = bh_pci_bind(&bh_host_real, dev->pci.address, "vfio-pci", err, err_len);
	if (rc)
		return rc;
	if (dom->container_fd < 0) {
		dom->container_fd = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
		if (dom->container_fd < 0) {
			snprintf(err, err_len, "/dev/vfio/vfio: %s (modprobe vfio-pci)",
				 strerror(errno));
			return -errno;
		}
		if (ioctl(dom->container_fd, VFIO_GET_API_VERSION) != VFIO_API_VERSION ||
		    !ioctl(dom->container_fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU)) {
			snprintf(err, err_len, "this kernel's VFIO has no type1 IOMMU support");
			return -ENOTSUP;
		}
		/* below the x86 MSI window at 0xfee00000 */
		dom->iova_lo = 1ull << 20;
		dom->iova_hi = 0xfee00000ull;
	}
	dev->group_fd = group_get(dev->pci.iommu_group, dom, err, err_len);
	if (dev->group_fd < 0)
		return dev->group_fd;
	dev->device_fd = ioctl(dev->group_fd, VFIO_GROUP_GET_DEVICE_FD, dev->pci.address);
	if (dev->device_fd < 0) {
		snprintf(err, err_len, "%s: cannot open through VFIO: %s", dev->pci.address,
			 strerror(errno));
		group_put(dev->group_fd);
		return -EIO;
	}
	if (ioctl(dev->device_fd, VFIO_DEVICE_GET_INFO, &info) == 0)
		dev->can_reset = info.flags & VFIO_DEVICE_FLAGS_RESET;
	prefer_bus_reset(dev);
	reg.index = VFIO_PCI_CONFIG_REGION_INDEX;
	if (ioctl(dev->device_fd, VFIO_DEVICE_GET_REGION_INFO, &reg) < 0) {
		snprintf(err, err_len, "%s: no config region", dev->pci.address);
		return -EIO;
	}
	dev->config_offset = reg.offset;
	static const unsigned int index[BH_IRQ_TYPES] = {
		[BH_IRQ_INTX] = VFIO_PCI_INTX_IRQ_INDEX,
		[BH_IRQ_MSI] = VFIO_PCI_MSI_IRQ_INDEX,
		[BH_IRQ_MSIX] = VFIO_PCI_MSIX_IRQ_INDEX,
	};
	for (int t = 0; t < BH_IRQ_TYPES; t++) {
		struct vfio_irq_info irq = { .argsz = sizeof(irq), .index = index[t] };
		if (ioctl(dev->device_fd, VFIO_DEVICE_GET_IRQ_INFO, &irq) == 0)
			dev->irq_count[t] = irq.count;
	}
	return 0;
}

static void vfio_close(struct bh_device *dev)
{
	if (dev->device_fd >= 0)
		close(dev->device_fd);
	dev->device_fd = -1;
	if (dev->group_fd >= 0)
		group_put(dev->group_fd);
	dev->group_fd = -1;
}

static int vfio_config_read(struct bh_device *dev, unsigned int off, void *buf, size_t len)
{
	ssize_t n = pread(dev->device_fd, buf, len, (off_t)(dev->config_offset + off));
	return n == (ssize_t)len ? 0 : -EIO;
}

static int vfio_config_write(struct bh_device *dev, unsigned int off, const void *buf, size_t len)
{
	ssize_t n = pwrite(dev->device_fd, buf, len, (off_t)(dev->config_offset + off));
	return n == (ssize_t)len ? 0 : -EIO;
}

static const unsigned int irq_index[BH_IRQ_TYPES] = {
	[BH_IRQ_INTX] = VFIO_PCI_INTX_IRQ_INDEX,
	[BH_IRQ_MSI] = VFIO_PCI_MSI_IRQ_INDEX,
	[BH_IRQ_MSIX] = VFIO_PCI_MSIX_IRQ_INDEX,
};

static int set_irqs(struct bh_device *dev, unsigned int index, uint32_t flags, unsigned int count,
		    const int *fds)
{
	char buf[sizeof(struct vfio_irq_set) + sizeof(int) * BH_MAX_FDS];
	struct vfio_irq_set *set = (struct vfio_irq_set *)buf;

	memset(buf, 0, sizeof(buf));
	set->argsz = sizeof(*set) + sizeof(int) * (fds ? count : 0);
	set->flags = flags;
	set->index = index;
	set->start = 0;
	set->count = count;
	if (fds)
		memcpy(set->data, fds, sizeof(int) * count);
	return ioctl(dev->device_fd, VFIO_DEVICE_SET_IRQS, set) < 0 ? -errno : 0;
}

static void vfio_irq_close(struct bh_device *dev)
{
	if (dev->irq_active >= 0)
		set_irqs(dev, irq_index[dev->irq_active],
			 VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, NULL);
	dev->irq_active = -1;
	dev->irq_vectors = 0;
}

static int vfio_irq_open(struct bh_device *dev, int type, unsigned int count, int *fds,
			 int *ack_fd)
{
	unsigned int i;
	int rc;

	/* VFIO routes one interrupt type at a time */
	vfio_irq_close(dev);
	*ack_fd = -1;
	for (i = 0; i < count; i++) {
		fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fds[i] < 0) {
			rc = -errno;
			goto fail;
		}
	}
	rc = set_irqs(dev, irq_index[type], VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
		      count, fds);
	if (rc)
		goto fail;
	dev->irq_active = type;
	dev->irq_vectors = count;
	if (type != BH_IRQ_INTX)
		return BH_ACK_NONE;
	/* INTx is masked by VFIO when it fires; the driver unmasks through this fd */
	*ack_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (*ack_fd < 0 ||
	    set_irqs(dev, VFIO_PCI_INTX_IRQ_INDEX,
		     VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_UNMASK, 1, ack_fd) < 0) {
		rc = -EIO;
		if (*ack_fd >= 0)
			close(*ack_fd);
		*ack_fd = -1;
		vfio_irq_close(dev);
		goto fail;
	}
	return BH_ACK_EVENTFD;
fail:
	while (i-- > 0)
		close(fds[i]);
	return rc;
}

static int vfio_reset(struct bh_device *dev)
{
	if (!dev->can_reset)
		return -ENOTSUP;
	return ioctl(dev->device_fd, VFIO_DEVICE_RESET) < 0 ? -errno : 0;
}

static int vfio_dma_map(struct bh_domain *dom, void *vaddr, uint64_t size, uint64_t *iova)
{
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uint64_t)(uintptr_t)vaddr,
		.iova = *iova,
		.size = size,
	};
	return ioctl(dom->container_fd, VFIO_IOMMU_MAP_DMA, &map) < 0 ? -errno : 0;
}

static int vfio_dma_unmap(struct bh_domain *dom, uint64_t iova, uint64_t size)
{
	struct vfio_iommu_type1_dma_unmap unmap = {
		.argsz = sizeof(unmap),
		.iova = iova,
		.size = size,
	};
	if (ioctl(dom->container_fd, VFIO_IOMMU_UNMAP_DMA, &unmap) < 0)
		return -errno;
	return unmap.size == size ? 0 : -EIO;
}

static void vfio_domain_close(struct bh_domain *dom)
{
	if (dom->container_fd >= 0)
		close(dom->container_fd);
	dom->container_fd = -1;
	dom->iommu_set = false;
}

const struct bh_backend_ops bh_backend_vfio = {
	.name = "vfio",
	.iommu = true,
	.open = vfio_open,
	.close = vfio_close,
	.config_read = vfio_config_read,
	.config_write = vfio_config_write,
	.irq_open = vfio_irq_open,
	.irq_close = vfio_irq_close,
	.reset = vfio_reset,
	.dma_map = vfio_dma_map,
	.dma_unmap = vfio_dma_unmap,
	.domain_close = vfio_domain_close,
};
