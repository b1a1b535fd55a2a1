/* SPDX-License-Identifier: MIT */
/* DMA buffers: memfds core maps into a component's IOMMU domain. */
#ifndef BH_CORE_DMA_H
#define BH_CORE_DMA_H

#include <stdbool.h>
#include <stdint.h>

struct bh_dma_buf {
	int memfd;
	void *vaddr; /* core's own mapping, kept while the device may use it */
	uint64_t iova;
	uint64_t size;
	unsigned int dev; /* the component's device index it was asked for */
	uint32_t session; /* the session it is for, charged to its client; 0: the owner's own */
	bool huge;
};

/*
 * First fit in [lo, hi) avoiding the n buffers already placed; align is a
 * power of two. 0 with *iova set, or -ENOSPC.
 */
int bh_iova_alloc(const struct bh_dma_buf *bufs, int n, uint64_t lo, uint64_t hi, uint64_t size,
		  uint64_t align, uint64_t *iova);

/* a zeroed, populated memfd buffer of at least size bytes; huge pages if it pays */
int bh_dma_buf_create(uint64_t size, bool need_contiguous, struct bh_dma_buf *buf);
void bh_dma_buf_destroy(struct bh_dma_buf *buf);

/* where the kernel counts 2 MiB pages: nr_hugepages and free_hugepages */
#define BH_HUGEPAGES_DIR "/sys/kernel/mm/hugepages/hugepages-2048kB"

/*
 * "hugepages = N" in [core]: at least N 2 MiB pages free for DMA buffers,
 * raising the kernel's pool (in dir) by what is missing. Returns how many
 * are free now (fewer when memory is fragmented; buffers then fall back to
 * 4 KiB pages) and sets *added to what we raised the pool by, or -errno.
 */
int bh_hugepages_reserve(const char *dir, unsigned int want, unsigned int *added);
/* gives back what bh_hugepages_reserve added (pages still in use stay, as surplus) */
void bh_hugepages_release(const char *dir, unsigned int added);

#endif
