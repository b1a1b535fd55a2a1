/* SPDX-License-Identifier: MIT */
/* Legacy memory grants (bulkhead/legacy.h): copies of what a video BIOS reads. */
#ifndef BH_CORE_LEGACY_H
#define BH_CORE_LEGACY_H

#include "bulkhead/legacy.h"
#include "core.h"

/* "vga-rom" -> BH_LEGACY_VGA_ROM, or -1 */
int bh_legacy_lookup(const char *name);

/*
 * BH_OP_LEGACY_MEM: if the policy names q->index, a sealed memfd holding a
 * copy of that range of physical memory, read through /dev/mem on the first
 * request and shared after; its address and size in reply->u.grant. Else a
 * refusal naming the key.
 */
void bh_legacy_request(struct bh_component *c, const struct bh_request *q, struct bh_msg *reply,
		       int *fd);

#endif
