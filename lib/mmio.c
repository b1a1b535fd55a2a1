// SPDX-License-Identifier: MIT
#include <errno.h>
#include <time.h>

#include "bulkhead/bulkhead.h"

int bh_poll32(const struct bh_mmio *m, size_t off, uint32_t mask, uint32_t want,
	      unsigned int timeout_us)
{
	uint64_t deadline = bh_now_ns() + (uint64_t)timeout_us * 1000ull;
	struct timespec pause = { .tv_nsec = 10000 };

	for (;;) {
		if ((bh_read32(m, off) & mask) == want)
			return 0;
		if (bh_now_ns() > deadline)
			return -ETIMEDOUT;
		nanosleep(&pause, NULL);
		bh_trace_tick();
	}
}
