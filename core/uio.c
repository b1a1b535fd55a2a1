// SPDX-License-Identifier: MIT
/*
 * The no-IOMMU fallback: uio_pci_generic for INTx, sysfs for config space
 * and reset, and physical addresses from /proc/self/pagemap for DMA. The
 * device can reach all of memory: core says so loudly at start.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "backend.h"

#define PCI_COMMAND_INTX_DISABLE 0x400

static int uio_open(struct bh_device *dev, struct bh_domain *dom, char *err, size_t err_len)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d;
	int rc, no = -1;

	rc = bh_pci_bind(&bh_host_real, dev->pci.address, "uio_pci_generic", err, err_len);
	if (rc)
		return rc;
	dom->container_fd = -1;
	dom->iova_lo = 0;
	dom->iova_hi = ~0ull;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/uio", dev->pci.address);
	d = opendir(path);
	while (d && (e = readdir(d)))
		if (sscanf(e->d_name, "uio%d", &no) == 1)
			break;
	if (d)
		closedir(d);
	if (no < 0) {
		snprintf(err, err_len, "%s: uio_pci_generic made no uio device (does the device "
				       "support INTx masking?)",
			 dev->pci.address);
		return -ENODEV;
	}
	snprintf(path, sizeof(path), "/dev/uio%d", no);
	dev->device_fd = open(path, O_RDWR | O_CLOEXEC);
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", dev->pci.address);
	dev->config_fd = open(path, O_RDWR | O_CLOEXEC);
	if (dev->device_fd < 0 || dev->config_fd < 0) {
		snprintf(err, err_len, "%s: cannot open /dev/uio%d or its config: %s",
			 dev->pci.address, no, strerror(errno));
		return -EIO;
	}
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/reset", dev->pci.address);
	dev->can_reset = access(path, W_OK) == 0;
	dev->irq_count[BH_IRQ_INTX] = 1;
	return 0;
}

static void uio_close(struct bh_device *dev)
{
	if (dev->device_fd >= 0)
		close(dev->device_fd);
	if (dev->config_fd >= 0)
		close(dev->config_fd);
	dev->device_fd = dev->config_fd = -1;
}

static int uio_config_read(struct bh_device *dev, unsigned int off, void *buf, size_t len)
{
	return pread(dev->config_fd, buf, len, off) == (ssize_t)len ? 0 : -EIO;
}

static int uio_config_write(struct bh_device *dev, unsigned int off, const void *buf, size_t len)
{
	return pwrite(dev->config_fd, buf, len, off) == (ssize_t)len ? 0 : -EIO;
}

/*
 * uio_pci_generic masks INTx (command register bit 10) in its handler and
 * leaves the unmask to config space, which stays with core: the driver acks
 * through an eventfd core watches (core/main.c), and core unmasks.
 */
static int uio_irq_open(struct bh_device *dev, int type, unsigned int count, int *fds,
			int *ack_fd)
{
	if (type != BH_IRQ_INTX || count != 1)
		return -ENOTSUP;
	fds[0] = fcntl(dev->device_fd, F_DUPFD_CLOEXEC, 0);
	if (fds[0] < 0)
		return -errno;
	*ack_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (*ack_fd < 0) {
		close(fds[0]);
		return -errno;
	}
	dev->irq_active = BH_IRQ_INTX;
	dev->irq_vectors = 1;
	bh_device_command(&bh_backend_uio, dev, 0, PCI_COMMAND_INTX_DISABLE);
	return BH_ACK_UIO;
}

static void uio_irq_unmask(struct bh_device *dev)
{
	bh_device_command(&bh_backend_uio, dev, 0, PCI_COMMAND_INTX_DISABLE);
}

static void uio_irq_close(struct bh_device *dev)
{
	if (dev->irq_active >= 0)
		bh_device_command(&bh_backend_uio, dev, PCI_COMMAND_INTX_DISABLE, 0);
	dev->irq_active = -1;
	dev->irq_vectors = 0;
}

static int uio_reset(struct bh_device *dev)
{
	char path[PATH_MAX];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/reset", dev->pci.address);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -ENOTSUP;
	if (write(fd, "1", 1) != 1)
		rc = -errno;
	close(fd);
	return rc;
}

/* a buffer must be physically contiguous: one page, or one huge page */
static int uio_dma_map(struct bh_domain *dom, void *vaddr, uint64_t size, uint64_t *iova)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t first = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	(void)dom;
	if (fd < 0)
		return -errno;
	for (uint64_t off = 0; off < size; off += page) {
		uint64_t ent, vpn = ((uintptr_t)vaddr + off) / page;
		if (pread(fd, &ent, sizeof(ent), (off_t)(vpn * 8)) != sizeof(ent) ||
		    !(ent & (1ull << 63))) {
			close(fd);
			return -EFAULT;
		}
		uint64_t pfn = ent & ((1ull << 55) - 1);
		if (off == 0)
			first = pfn;
		else if (pfn != first + off / page) {
			close(fd);
			return -ERANGE; /* not contiguous */
		}
	}
	close(fd);
	if (!first)
		return -EPERM; /* pagemap hides PFNs from non-root */
	*iova = first * page;
	return 0;
}

static int uio_dma_unmap(struct bh_domain *dom, uint64_t iova, uint64_t size)
{
	(void)dom;
	(void)iova;
	(void)size;
	return 0;
}

static void uio_domain_close(struct bh_domain *dom)
{
	dom->container_fd = -1;
}

const struct bh_backend_ops bh_backend_uio = {
	.name = "uio",
	.iommu = false,
	.open = uio_open,
	.close = uio_close,
	.config_read = uio_config_read,
	.config_write = uio_config_write,
	.irq_open = uio_irq_open,
	.irq_close = uio_irq_close,
	.irq_unmask = uio_irq_unmask,
	.reset = uio_reset,
	.dma_map = uio_dma_map,
	.dma_unmap = uio_dma_unmap,
	.domain_close = uio_domain_close,
};
