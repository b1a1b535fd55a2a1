// SPDX-License-Identifier: MIT
/* DMA buffer memory and IOVA placement. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <linux/memfd.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dma.h"

#define HUGE_2M (2ull << 20)

int bh_iova_alloc(const struct bh_dma_buf *bufs, int n, uint64_t lo, uint64_t hi, uint64_t size,
		  uint64_t align, uint64_t *iova)
{
	uint64_t cand = (lo + align - 1) & ~(align - 1);

	if (!size || !align || align & (align - 1))
		return -EINVAL;
	/* move past every buffer the candidate overlaps until none does */
	for (int moved = 1; moved;) {
		moved = 0;
		if (cand < lo || cand + size < cand || cand + size > hi)
			return -ENOSPC;
		for (int i = 0; i < n; i++) {
			if (cand < bufs[i].iova + bufs[i].size && bufs[i].iova < cand + size) {
				uint64_t next = bufs[i].iova + bufs[i].size;
				cand = (next + align - 1) & ~(align - 1);
				if (cand < next)
					return -ENOSPC;
				moved = 1;
			}
		}
	}
	*iova = cand;
	return 0;
}

static int buf_map(struct bh_dma_buf *buf, unsigned int flags, uint64_t size)
{
	buf->memfd = memfd_create("bulkhead-dma", MFD_CLOEXEC | MFD_ALLOW_SEALING | flags);
	if (buf->memfd < 0)
		return -errno;
	/* sealed: whoever maps it (a driver, its clients) can rely on its size */
	if (ftruncate(buf->memfd, (off_t)size) < 0 ||
	    fcntl(buf->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto fail;
	buf->vaddr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
			  buf->memfd, 0);
	if (buf->vaddr == MAP_FAILED)
		goto fail;
	/* pinned and resident: the device may use it at any time */
	if (mlock(buf->vaddr, size) < 0) {
		munmap(buf->vaddr, size);
		goto fail;
	}
	buf->size = size;
	return 0;
fail:
	close(buf->memfd);
	buf->memfd = -1;
	buf->vaddr = NULL;
	return -ENOMEM;
}

int bh_dma_buf_create(uint64_t size, bool need_contiguous, struct bh_dma_buf *buf)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t rounded = (size + page - 1) & ~((uint64_t)page - 1);

	memset(buf, 0, sizeof(*buf));
	buf->memfd = -1;
	if (!size)
		return -EINVAL;
	if (rounded >= HUGE_2M || (need_contiguous && rounded > (uint64_t)page)) {
		uint64_t huge = (size + HUGE_2M - 1) & ~(HUGE_2M - 1);
		if (buf_map(buf, MFD_HUGETLB | MFD_HUGE_2MB, huge) == 0) {
			buf->huge = true;
			return 0;
		}
		if (need_contiguous)
			return -ENOMEM; /* no huge pages: see the caller's message */
	}
	return buf_map(buf, 0, rounded);
}

void bh_dma_buf_destroy(struct bh_dma_buf *buf)
{
	if (buf->vaddr)
		munmap(buf->vaddr, buf->size);
	if (buf->memfd >= 0)
		close(buf->memfd);
	buf->vaddr = NULL;
	buf->memfd = -1;
}

static int count_read(const char *dir, const char *name, unsigned long *v)
{
	char path[PATH_MAX], text[32], *end;
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	len = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (len <= 0)
		return -EIO;
	text[len] = 0;
	errno = 0;
	*v = strtoul(text, &end, 10);
	return errno || end == text ? -EIO : 0;
}

static int count_write(const char *dir, const char *name, unsigned long v)
{
	char path[PATH_MAX], text[32];
	int fd, len, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	len = snprintf(text, sizeof(text), "%lu\n", v);
	if (write(fd, text, (size_t)len) != len)
		rc = -errno ? -errno : -EIO;
	close(fd);
	return rc;
}

int bh_hugepages_reserve(const char *dir, unsigned int want, unsigned int *added)
{
	unsigned long total, free_now, after;
	int rc;

	*added = 0;
	if ((rc = count_read(dir, "nr_hugepages", &total)) < 0 ||
	    (rc = count_read(dir, "free_hugepages", &free_now)) < 0)
		return rc;
	if (free_now >= want)
		return (int)(free_now > INT_MAX ? INT_MAX : free_now);
	/* the kernel gives what it can find; read back what that was */
	rc = count_write(dir, "nr_hugepages", total + (want - free_now));
	if (rc < 0)
		return rc;
	if ((rc = count_read(dir, "nr_hugepages", &after)) < 0 ||
	    (rc = count_read(dir, "free_hugepages", &free_now)) < 0)
		return rc;
	*added = after > total ? (unsigned int)(after - total) : 0;
	return (int)(free_now > INT_MAX ? INT_MAX : free_now);
}

void bh_hugepages_release(const char *dir, unsigned int added)
{
	unsigned long total;

	if (added && count_read(dir, "nr_hugepages", &total) == 0)
		count_write(dir, "nr_hugepages", total > added ? total - added : 0);
}
