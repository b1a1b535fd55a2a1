/* SPDX-License-Identifier: MIT */
/*
 * Reading a flight recorder's ring (bulkhead/trace.h), live or from a crash
 * report. The component wrote it: every count is bounded, every index
 * masked, every name checked before it is printed.
 */
#ifndef BH_TRACEFMT_H
#define BH_TRACEFMT_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "bulkhead/trace.h"

/* img (len bytes) is a ring of this version: 0, or -1 with the reason in why */
int bh_trace_check(const void *img, size_t len, char *why, size_t why_len);

/* the entries written, as far as a reader can tell (0 after a restart) */
uint64_t bh_trace_head(const void *img);

/*
 * Entries from index from on that the ring still holds, oldest first, at
 * most max (the newest max if there are more): into out and their indexes
 * into seq. *next: where to go on; *lost: how many were overwritten before
 * they could be read. An entry the writer may be overwriting while we copy
 * is left out. Returns how many.
 */
size_t bh_trace_collect(const void *img, uint64_t from, struct bh_trace_entry *out, uint64_t *seq,
			size_t max, uint64_t *next, uint64_t *lost);

/* the name the driver declared for this register ("EDU_STATUS", "EDU_DMA_SRC+4"), or NULL */
const char *bh_trace_name(const void *img, uint16_t region, uint32_t offset, char *buf,
			  size_t len);
/* "mmio 0:BAR0", "port 0:BAR1", "isa 0x40", or "-" */
const char *bh_trace_region_name(const void *img, uint16_t region, char *buf, size_t len);
const char *bh_trace_kind_name(unsigned int kind);

/* one entry as a line for people, and as a JSON object */
void bh_trace_format(const void *img, const struct bh_trace_entry *e, uint64_t seq, char *buf,
		     size_t len);
struct json_object *bh_trace_entry_json(const void *img, const struct bh_trace_entry *e,
					uint64_t seq);

/* a crash report file's contents: 0, or -1 with why */
int bh_crash_check(const void *file, size_t len, char *why, size_t why_len);
static inline const void *bh_crash_ring(const void *file)
{
	return (const uint8_t *)file + sizeof(struct bh_crash_file);
}

#endif
