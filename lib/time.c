// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <x86intrin.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/spin.h"

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

int bh_spin_init(struct bh_spin *s, const char *env, unsigned int us)
{
	const char *v = env ? getenv(env) : NULL;
	static double tsc_per_us;

	if (v) {
		char *end;
		unsigned long n = strtoul(v, &end, 10);
		if (!*v || *end || n > BH_SPIN_MAX_US) {
			fprintf(stderr, "%s=%s: expected a polling window in microseconds, 0 to %u\n",
				env, v, BH_SPIN_MAX_US);
			return -EINVAL;
		}
		us = (unsigned int)n;
	}
	if (us && !tsc_per_us)
		tsc_per_us = bh_tsc_per_us();
	s->us = us;
	s->ticks = (uint64_t)(us * tsc_per_us);
	s->start = 0;
	return 0;
}
