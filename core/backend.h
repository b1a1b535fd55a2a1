/* SPDX-License-Identifier: MIT */
/*
 * How core reaches a device: VFIO with an IOMMU (core/vfio.c), or the
 * unsafe no-IOMMU fallback through uio_pci_generic (core/uio.c). Drivers
 * see the same fds either way.
 */
#ifndef BH_CORE_BACKEND_H
#define BH_CORE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pci.h"

/* a DMA domain: one per component, holding all of its devices */
struct bh_domain {
	int container_fd; /* VFIO container; -1 for uio */
	bool iommu_set;
	uint64_t iova_lo, iova_hi; /* usable IOVA window */
};

struct bh_device {
	struct bh_pci_dev pci;
	int owner; /* component index, -1 if none */
	bool acquired;
	bool bus_master;
	int group_fd;  /* vfio */
	int device_fd; /* vfio device, or uio /dev/uioN */
	int config_fd; /* uio: sysfs config file */
	uint64_t config_offset; /* vfio: config region within device_fd */
	int unmask_fd;		/* uio: the driver's ack eventfd, which core watches */
	uint32_t irq_count[BH_IRQ_TYPES];
	int irq_active; /* enum bh_irq_type, or -1 */
	uint32_t irq_vectors;
	bool can_reset;
	unsigned int resets;
	unsigned int iommu_faults;
	unsigned int reset_failures;
};

struct bh_backend_ops {
	const char *name;
	bool iommu; /* DMA confined? */
	/* take the device from the kernel and open it into the domain */
	int (*open)(struct bh_device *dev, struct bh_domain *dom, char *err, size_t err_len);
	void (*close)(struct bh_device *dev);
	int (*config_read)(struct bh_device *dev, unsigned int off, void *buf, size_t len);
	int (*config_write)(struct bh_device *dev, unsigned int off, const void *buf, size_t len);
	/*
	 * route count vectors of type to new eventfds: fds[0..count) fire, and for
	 * INTx *ack_fd unmasks; returns the enum bh_irq_ack kind or -errno
	 */
	int (*irq_open)(struct bh_device *dev, int type, unsigned int count, int *fds, int *ack_fd);
	void (*irq_close)(struct bh_device *dev);
	/* uio only: the driver acked; let INTx through again */
	void (*irq_unmask)(struct bh_device *dev);
	int (*reset)(struct bh_device *dev);
	/* make [vaddr, +size) reachable by the domain's devices; *iova in/out */
	int (*dma_map)(struct bh_domain *dom, void *vaddr, uint64_t size, uint64_t *iova);
	int (*dma_unmap)(struct bh_domain *dom, uint64_t iova, uint64_t size);
	void (*domain_close)(struct bh_domain *dom);
};

extern const struct bh_backend_ops bh_backend_vfio;
extern const struct bh_backend_ops bh_backend_uio;

/* bus mastering through the config space the backend reaches */
int bh_device_set_bus_master(const struct bh_backend_ops *ops, struct bh_device *dev, bool on);

/* set or clear bits of the command register */
int bh_device_command(const struct bh_backend_ops *ops, struct bh_device *dev, uint16_t set,
		      uint16_t clear);

#endif
