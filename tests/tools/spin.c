// SPDX-License-Identifier: MIT
/*
 * spin: a component that does nothing but burn CPU, for the cgroup tests
 * and hostile neighbours.
 *   bulkhead-spin                 spin forever
 *   bulkhead-spin --for MS        spin MS ms, then exit 1 (on-failure restarts it)
 *   bulkhead-spin --heartbeat     say hello and heartbeat every 100 ms while
 *                                 spinning, so a watchdog does not end it
 * The options combine. SIGTERM ends it at once (core's polite stop).
 */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"

/* a component is pid 1 of its namespace: SIGTERM does nothing without a handler */
static void on_term(int sig)
{
	(void)sig;
	_exit(0);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	uint64_t start = now_ms(), beat = start, until = 0;
	bool heartbeat = false;
	struct bh_core core;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGTERM, on_term);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--heartbeat") == 0) {
			heartbeat = true;
		} else if (strcmp(argv[i], "--for") == 0 && i + 1 < argc) {
			until = start + strtoull(argv[++i], NULL, 10);
		} else {
			printf("spin: unknown argument %s; usage: bulkhead-spin [--for MS] "
			       "[--heartbeat]\n",
			       argv[i]);
			return 2;
		}
	}
	if (heartbeat && bh_core_open(&core) < 0) {
		printf("spin: %s\n", bh_error(&core));
		return 1;
	}
	printf("spin: spinning%s\n", heartbeat ? " with heartbeats" : "");
	for (;;) {
		/* well under a ms of pure work between looks at the clock (the vDSO's) */
		for (volatile unsigned long n = 0; n < 100000; n++)
			;
		uint64_t t = now_ms();
		if (until && t >= until) {
			printf("spin: spun %llu ms; exiting\n", (unsigned long long)(t - start));
			return 1;
		}
		if (heartbeat && t - beat >= 100) {
			bh_heartbeat(&core);
			beat = t;
		}
	}
}
