/* SPDX-License-Identifier: MIT */
/* /dev/ublkbN as a host endpoint for the block-ublk bridge (core/ublk.c). */
#ifndef BH_CORE_UBLK_H
#define BH_CORE_UBLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct bh_core_state;
struct bh_config;
struct bh_component;
struct bh_session_info;
struct bh_msg;

struct bh_ublk_geometry {
	uint64_t size; /* bytes */
	uint32_t block_size;
	uint32_t max_io; /* bytes per request */
	uint32_t queue_depth;
	uint32_t queues;
	uint32_t attrs; /* enum bh_ublk_attr */
};

/*
 * Before the components start: where the kernel has no ublk, a component
 * that also names 'nbd = M' runs block-nbd on /dev/nbdM (logged); each
 * queue's thread is allowed for in the component's process limit.
 */
void bh_ublk_prepare(struct bh_config *cfg);

/* BH_OP_UBLK from a bridge (bulkhead/ublk.h describes the two steps) */
void bh_ublk_request(struct bh_core_state *core, struct bh_component *c,
		     const struct bh_session_info *in, struct bh_msg *reply, int *fd);

/*
 * Add /dev/ublkb<index> with this geometry, or start its user recovery if
 * core added it before; *fd: /dev/ublkc<index> opened for the bridge.
 * 0, -EAGAIN (the old server is not gone yet), or -errno with err set.
 */
int bh_ublk_open(struct bh_core_state *core, int index, const struct bh_ublk_geometry *g,
		 bool *recovering, int *fd, char *err, size_t err_len);
/* START_DEV (or END_USER_RECOVERY) for the server pid, not waited for */
void bh_ublk_start(struct bh_core_state *core, int index, pid_t pid, bool recovering);
bool bh_ublk_added(int index);
/* core's control ring has completions: log them */
void bh_ublk_reap(struct bh_core_state *core);
/* nobody will serve it again: stop it (its held requests fail) and delete it */
void bh_ublk_remove(struct bh_core_state *core, int index);

#endif
