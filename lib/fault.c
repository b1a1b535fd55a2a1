// SPDX-License-Identifier: MIT
/*
 * Fault injection. The faults run in the SIGUSR1 handler: async-signal
 * safety does not matter for code whose job is to break things.
 */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include "bulkhead/fault.h"

static struct {
	bh_fault_fn fn;
	void *arg;
} hooks[BH_FAULT_COUNT];

static const char *const names[BH_FAULT_COUNT] = {
	[BH_FAULT_SEGV] = "segv",	  [BH_FAULT_LOOP] = "loop",
	[BH_FAULT_WILD_MMIO] = "wild-mmio", [BH_FAULT_BAD_DESC] = "bad-desc",
	[BH_FAULT_BAD_DMA] = "bad-dma",	  [BH_FAULT_OOM] = "oom",
	[BH_FAULT_FDS] = "fds",		  [BH_FAULT_ABORT] = "abort",
};

const char *bh_fault_name(enum bh_fault f)
{
	return f > 0 && f < BH_FAULT_COUNT ? names[f] : "?";
}

/* the register BARs this process mapped, for WILD_MMIO (lib/client.c) */
extern struct bh_mmio *bh_mapped_bars[];
extern unsigned int bh_nmapped_bars;

static void wild_mmio(void)
{
	unsigned int seed = (unsigned int)bh_now_ns();

	for (unsigned int b = 0; b < bh_nmapped_bars; b++) {
		struct bh_mmio *m = bh_mapped_bars[b];
		for (int i = 0; m->base && i < 16; i++) {
			size_t off = ((size_t)rand_r(&seed) % m->size) & ~(size_t)3;
			bh_write32(m, off, 0xffffffff);
		}
	}
}

static void inject(int sig, siginfo_t *si, void *ctx)
{
	int f = si->si_code == SI_QUEUE ? si->si_value.sival_int : 0;

	(void)sig;
	(void)ctx;
	switch (f) {
	case BH_FAULT_SEGV: {
		volatile int *volatile wild = (volatile int *)(uintptr_t)16;
		/* a driver's own bug, where it has one to show (its crash report names it) */
		if (hooks[f].fn)
			hooks[f].fn(hooks[f].arg);
		*wild = 1;
		break;
	}
	case BH_FAULT_LOOP:
		for (volatile unsigned long spin = 0;; spin++)
			;
	case BH_FAULT_WILD_MMIO:
		wild_mmio();
		break;
	case BH_FAULT_BAD_DESC:
	case BH_FAULT_BAD_DMA:
		if (hooks[f].fn)
			hooks[f].fn(hooks[f].arg);
		break;
	case BH_FAULT_OOM:
		/* a leak that takes everything: keep it, and carry on if we can */
		for (size_t sz = 1 << 20; sz >= 4096;) {
			void *p = malloc(sz);
			if (!p) {
				sz /= 2;
				continue;
			}
			memset(p, 0x6b, sz);
		}
		break;
	case BH_FAULT_FDS:
		while (eventfd(0, EFD_CLOEXEC) >= 0)
			;
		break;
	case BH_FAULT_ABORT:
		abort();
	}
}

void bh_fault_arm(void)
{
	const char *on = getenv("BULKHEAD_FAULTS");
	struct sigaction sa;

	if (!on || strcmp(on, "1") != 0)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = inject;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
}

static volatile sig_atomic_t deferred;

static void note(void *arg)
{
	deferred = (sig_atomic_t)(intptr_t)arg;
}

void bh_fault_defer(void)
{
	bh_fault_hook(BH_FAULT_BAD_DESC, note, (void *)(intptr_t)BH_FAULT_BAD_DESC);
	bh_fault_hook(BH_FAULT_BAD_DMA, note, (void *)(intptr_t)BH_FAULT_BAD_DMA);
}

enum bh_fault bh_fault_take(void)
{
	enum bh_fault f = (enum bh_fault)deferred;

	deferred = 0;
	return f;
}

void bh_fault_hook(enum bh_fault f, bh_fault_fn fn, void *arg)
{
	if (f > 0 && f < BH_FAULT_COUNT) {
		hooks[f].fn = fn;
		hooks[f].arg = arg;
	}
}
