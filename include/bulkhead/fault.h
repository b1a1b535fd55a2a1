/* SPDX-License-Identifier: MIT */
/*
 * Fault injection, for the fault campaign (tools/faults): when a component
 * runs with BULKHEAD_FAULTS=1 in its environment, SIGUSR1 sent with
 * sigqueue() and a value from enum bh_fault makes it fail that way, from
 * inside, as a real bug would. Off by default; costs nothing when off.
 */
#ifndef BULKHEAD_FAULT_H
#define BULKHEAD_FAULT_H

#include "bulkhead/bulkhead.h"

enum bh_fault {
	BH_FAULT_SEGV = 1,  /* a wild pointer */
	BH_FAULT_LOOP,	    /* an infinite loop: only the watchdog can tell */
	BH_FAULT_WILD_MMIO, /* all-ones written at random offsets of its register BARs */
	BH_FAULT_BAD_DESC,  /* the driver corrupts one of its descriptors (driver hook) */
	BH_FAULT_BAD_DMA,   /* the device is told to DMA outside our buffers (driver hook) */
	BH_FAULT_OOM,	    /* memory allocated until none is left */
	BH_FAULT_FDS,	    /* fds opened until none are left */
	BH_FAULT_ABORT,	    /* an assertion fails */
	BH_FAULT_COUNT
};

typedef void (*bh_fault_fn)(void *arg);

/* arm injection if BULKHEAD_FAULTS=1 is set; a no-op otherwise */
void bh_fault_arm(void);
/* what the driver does for BAD_DESC and BAD_DMA, and SEGV if it likes (runs in signal context) */
void bh_fault_hook(enum bh_fault f, bh_fault_fn fn, void *arg);
const char *bh_fault_name(enum bh_fault f);
/*
 * For a driver that does BAD_DESC and BAD_DMA from its loop, not in signal
 * context: the signal only notes the kind, and bh_fault_take() returns it
 * (0 if none) and clears it
 */
void bh_fault_defer(void);
enum bh_fault bh_fault_take(void);

#endif
