/* SPDX-License-Identifier: MIT */
/*
 * A component's log: the last BH_LOGBUF_SIZE bytes of what it wrote and what
 * core said about it, whole lines of "SECONDS SOURCE TEXT" (source "out" or
 * "core"). Bounded: the oldest lines go first.
 */
#ifndef BH_CORE_LOGBUF_H
#define BH_CORE_LOGBUF_H

#include <stddef.h>
#include <stdint.h>

#define BH_LOGBUF_SIZE (64u << 10)
#define BH_LOGBUF_LINE 1024 /* a longer line is cut */

struct bh_logbuf {
	char data[BH_LOGBUF_SIZE];
	uint64_t head; /* bytes ever written: the next one goes to data[head % size] */
};

/* one line (text without its newline); what it writes, with time and newline */
size_t bh_logbuf_add(struct bh_logbuf *lb, double seconds, const char *source, const char *text,
		     char *line, size_t line_len);
/* the whole lines still held, oldest first, into out (at most out_len bytes: the newest fit) */
size_t bh_logbuf_read(const struct bh_logbuf *lb, char *out, size_t out_len);

#endif
