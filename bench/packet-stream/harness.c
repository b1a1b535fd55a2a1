// SPDX-License-Identifier: MIT
/* The fork, the pinning, the start barrier and the clock of a benchmark run. */
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

struct barrier {
	uint32_t producer_ready;
	uint32_t go;
};

void *bench_shared_alloc(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* one core each when there are two; 0 when pinned */
static int pin(int cpu)
{
	cpu_set_t all, one;
	int n = 0, k = -1;

	if (sched_getaffinity(0, sizeof(all), &all))
		return -1;
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &all) && n++ == cpu)
			k = i;
	if (n < 2 || k < 0)
		return -1;
	CPU_ZERO(&one);
	CPU_SET(k, &one);
	return sched_setaffinity(0, sizeof(one), &one);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double bench_run(bench_side producer, bench_side consumer, void *arg, const struct bench_case *c)
{
	struct barrier *b = bench_shared_alloc(sizeof(*b));
	cpu_set_t saved;
	double t0, t1;
	int status, rc;
	pid_t pid;

	if (!b || sched_getaffinity(0, sizeof(saved), &saved))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		pin(0);
		alarm(120);
		__atomic_store_n(&b->producer_ready, 1, __ATOMIC_RELEASE);
		while (!__atomic_load_n(&b->go, __ATOMIC_ACQUIRE))
			;
		_exit(producer(arg, c));
	}
	pin(1);
	while (!__atomic_load_n(&b->producer_ready, __ATOMIC_ACQUIRE))
		;
	t0 = now();
	__atomic_store_n(&b->go, 1, __ATOMIC_RELEASE);
	rc = consumer(arg, c);
	t1 = now();
	if (rc)
		kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	sched_setaffinity(0, sizeof(saved), &saved);
	munmap(b, sizeof(*b));
	if (rc || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "bench-ps: run failed: consumer %d, producer status 0x%x\n", rc,
			status);
		return -1;
	}
	return (double)c->n / (t1 - t0);
}

void bench_fill(uint8_t *dst, const uint8_t *pattern, uint32_t size, uint64_t seq)
{
	memcpy(dst, pattern, size);
	memcpy(dst, &seq, sizeof(seq));
}

int bench_check(uint8_t *copy, const uint8_t *src, uint32_t size, uint64_t seq)
{
	uint64_t got;

	memcpy(copy, src, size);
	memcpy(&got, copy, sizeof(got));
	return got == seq && copy[size - 1] == (uint8_t)(size - 1) ? 0 : -1;
}
