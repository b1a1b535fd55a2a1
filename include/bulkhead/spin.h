/* SPDX-License-Identifier: MIT */
/*
 * Polling windows measured with the TSC: look at a ring or a completion
 * queue for up to N microseconds before sleeping on an eventfd.
 *
 * Not with the clock: under QEMU's TCG the guest's clocksource is the HPET,
 * so each clock read is a system call and an emulated register read under
 * QEMU's big lock, which the device model needs as well; an rdtsc is one
 * instruction (and under -icount it counts the guest's own time). Not by a
 * number of rounds either: how long a round takes depends on what the loop
 * polls and on the machine, and the window that pays is one of time (as
 * long as the device or the peer usually takes to answer).
 *
 *   struct bh_spin w;
 *   bh_spin_init(&w, "BULKHEAD_X_SPIN_US", 50);  (at start: calibrates, 20 ms)
 *   for (bh_spin_begin(&w); !(got = poll_something()) && bh_spin_more(&w);)
 *           ;
 */
#ifndef BULKHEAD_SPIN_H
#define BULKHEAD_SPIN_H

#include <stdbool.h>
#include <stdint.h>
#include <x86intrin.h>

#define BH_SPIN_MAX_US 100000

struct bh_spin {
	uint64_t ticks; /* the window, in TSC ticks; 0: no polling */
	uint64_t start;
	unsigned int us;
};

/*
 * The window: us microseconds, or the environment variable env's value if
 * it is set (0 to BH_SPIN_MAX_US). 0, or -EINVAL after saying on stderr
 * what is wrong with the variable.
 */
int bh_spin_init(struct bh_spin *s, const char *env, unsigned int us);

static inline void bh_spin_begin(struct bh_spin *s)
{
	s->start = __rdtsc();
}

/* true while the window lasts (a pause first: the peer may be our sibling thread) */
static inline bool bh_spin_more(const struct bh_spin *s)
{
	__builtin_ia32_pause();
	return __rdtsc() - s->start < s->ticks;
}

#endif
