/* SPDX-License-Identifier: MIT */
/* A listening TCP socket as a host endpoint: where fb-vnc's viewers connect. */
#ifndef BH_CORE_LISTEN_H
#define BH_CORE_LISTEN_H

#include <stddef.h>

#include "core.h"

/* 'listen = ADDR:PORT' (IPv4) in a component's section: 0, or -EINVAL with why */
int bh_listen_config(const char *value, char *out, size_t size, char *why, size_t why_len);

/*
 * BH_OP_LISTEN: the socket listening where the config says, made on first
 * use and kept by core for its whole life, so viewers that connect while
 * the bridge restarts wait in its backlog; *fd is a duplicate for the
 * bridge, the address goes in reply->u.session.name.
 */
void bh_listen_request(struct bh_component *c, struct bh_msg *reply, int *fd);

#endif
