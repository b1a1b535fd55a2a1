/* SPDX-License-Identifier: MIT */
/* A file as a host endpoint: what a bridge writes (a screenshot), opened by core for it. */
#ifndef BH_CORE_OUTPUT_H
#define BH_CORE_OUTPUT_H

#include <stddef.h>

struct bh_component;
struct bh_msg;

/* 'output = PATH' in a component's section: 0, or -EINVAL with why */
int bh_output_config(const char *value, char *path, size_t size, char *why, size_t why_len);

/* BH_OP_OUTPUT: the file, created or emptied, write-only, as *fd; or a refusal in reply */
void bh_output_grant(struct bh_component *c, struct bh_msg *reply, int *fd);

#endif
