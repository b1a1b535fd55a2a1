// SPDX-License-Identifier: MIT
#include <time.h>
#include <x86intrin.h>

#include "bulkhead/bulkhead.h"

uint64_t bh_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

uint64_t bh_coarse_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

double bh_tsc_per_us(void)
{
	uint64_t t0 = bh_now_ns(), c0 = __rdtsc();

	nanosleep(&(struct timespec){.tv_nsec = 20000000}, NULL);
	return (double) (__rdtsc() - c0) / ((double) (bh_now_ns() - t0) / 1e3);
}
