// SPDX-License-Identifier: MIT
/*
 * dma-canary MIN MAX: a page of this machine's memory a DMA must not reach
 * (tests/vm/dvm.sh). It takes a locked page whose physical address lies in
 * [MIN, MAX) (hex; root reads it from /proc/self/pagemap), fills it with
 * what an e1000e would act on if the IOMMU let it fetch a transmit
 * descriptor there: a legacy descriptor (82574 datasheet 7.2.10.1) whose
 * buffer is the page's second half, with Report Status set, so the device
 * would write its DD bit back into the page. It prints "canary at 0xADDR",
 * waits for SIGTERM or SIGINT, and says whether the page is as it wrote it:
 * exit 0 if so, 1 if anything changed it, 2 on a usage or set-up error.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <fcntl.h>

#define PAGE 4096
#define POOL (64u << 20) /* pages to choose from */

struct tx_desc {
	uint64_t addr;
	uint16_t length;
	uint8_t cso, cmd, status, css;
	uint16_t special;
};

static uint64_t phys_of(int pagemap, const void *p)
{
	uint64_t ent;

	if (pread(pagemap, &ent, sizeof(ent), (off_t)((uintptr_t)p / PAGE * 8)) != sizeof(ent) ||
	    !(ent & (1ull << 63)))
		return 0;
	return (ent & ((1ull << 55) - 1)) * PAGE;
}

int main(int argc, char **argv)
{
	uint64_t min, max, phys = 0;
	uint8_t *pool, *page = NULL, copy[PAGE];
	int pagemap, sig, differ = 0, first = -1;
	sigset_t set;

	if (argc != 3 || !(min = strtoull(argv[1], NULL, 16)) ||
	    (max = strtoull(argv[2], NULL, 16)) <= min) {
		fprintf(stderr, "usage: dma-canary MIN MAX (hex physical addresses, MIN < MAX)\n");
		return 2;
	}
	pool = mmap(NULL, POOL, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		    -1, 0);
	pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pool == MAP_FAILED || mlock(pool, POOL) < 0 || pagemap < 0) {
		fprintf(stderr, "dma-canary: %s (run as root)\n", strerror(errno));
		return 2;
	}
	for (size_t off = 0; off < POOL && !page; off += PAGE) {
		uint64_t p = phys_of(pagemap, pool + off);
		if (p >= min && p < max) {
			page = pool + off;
			phys = p;
		}
	}
	if (!page) {
		fprintf(stderr, "dma-canary: none of %u MiB of pages lies in [0x%" PRIx64
				", 0x%" PRIx64 ") (pagemap shows PFNs to root only)\n",
			POOL >> 20, min, max);
		return 2;
	}
	for (int i = 0; i < PAGE; i++)
		page[i] = (uint8_t)(0xa5 ^ i);
	/* the bait: 8 descriptors, each sending 60 bytes of the page and asking for DD */
	for (int i = 0; i < 8; i++) {
		struct tx_desc d = { .addr = phys + PAGE / 2, .length = 60,
				     .cmd = 0x01 | 0x02 | 0x08 /* EOP IFCS RS */ };
		memcpy(page + i * sizeof(d), &d, sizeof(d));
	}
	memcpy(copy, page, PAGE);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	printf("canary at 0x%" PRIx64 "\n", phys);
	fflush(stdout);
	sigwait(&set, &sig);
	if (phys_of(pagemap, page) != phys) {
		printf("canary: the page moved (0x%" PRIx64 " now): cannot tell\n",
		       phys_of(pagemap, page));
		return 2;
	}
	for (int i = 0; i < PAGE; i++)
		if (page[i] != copy[i] && differ++ == 0)
			first = i;
	if (differ) {
		printf("canary at 0x%" PRIx64 " CHANGED: %d bytes differ, the first at +%d\n", phys,
		       differ, first);
		return 1;
	}
	printf("canary at 0x%" PRIx64 " intact: %d bytes as written\n", phys, PAGE);
	return 0;
}
