// SPDX-License-Identifier: MIT
/* Built without DPDK: no baseline to compare with. */
#include "harness.h"

double baseline_run(const struct bench_case *c)
{
	(void)c;
	return -1;
}

const char *baseline_name(void)
{
	return "rte_ring";
}
