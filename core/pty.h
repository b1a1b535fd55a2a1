/* SPDX-License-Identifier: MIT */
/* Pseudo-terminals as host endpoints for the term-pty bridge. */
#ifndef BH_CORE_PTY_H
#define BH_CORE_PTY_H

#include "core.h"

#define BH_PTY_DIR "/run/bulkhead/pty"

/*
 * BH_OP_PTY: the pty master the component's 'pty = NAME' names, created on
 * first use and kept by core for core's whole life, so the pty outlives a
 * bridge restart; *fd is a duplicate for the bridge, the slave's path goes
 * in reply->u.session.name.
 */
void bh_pty_request(struct bh_core_state *core, struct bh_component *c, struct bh_msg *reply,
		    int *fd);

#endif
