// SPDX-License-Identifier: MIT
/* A component's log ring (see logbuf.h). */
#include <stdio.h>
#include <string.h>

#include "logbuf.h"

size_t bh_logbuf_add(struct bh_logbuf *lb, double seconds, const char *source, const char *text,
		     char *line, size_t line_len)
{
	int n = snprintf(line, line_len, "%.3f %s %s", seconds, source, text);
	size_t len;

	if (n < 0)
		return 0;
	len = (size_t) n < line_len ? (size_t) n : line_len - 1;
	/* a line is one line: what it carried of control characters goes */
	for (size_t i = 0; i < len; i++)
		if ((unsigned char) line[i] < 0x20 && line[i] != '\t')
			line[i] = ' ';
	if (len + 1 < line_len)
		line[len++] = '\n';
	else
		line[len - 1] = '\n';
	line[len] = 0;
	for (size_t done = 0; done < len;) {
		size_t at = (size_t) (lb->head % BH_LOGBUF_SIZE);
		size_t part = BH_LOGBUF_SIZE - at < len - done ? BH_LOGBUF_SIZE - at : len - done;

		memcpy(lb->data + at, line + done, part);
		done += part;
		lb->head += part;
	}
	return len;
}

size_t bh_logbuf_read(const struct bh_logbuf *lb, char *out, size_t out_len)
{
	uint64_t held = lb->head < BH_LOGBUF_SIZE ? lb->head : BH_LOGBUF_SIZE;
	uint64_t from = lb->head - held;
	size_t n = 0;

	if (!out_len)
		return 0;
	if (held > out_len)
		from = lb->head - out_len;
	/* the ring was overwritten (or out is short): skip to the first whole line */
	if (from > 0 &&
	    (from == lb->head - held || lb->data[(from - 1) % BH_LOGBUF_SIZE] != '\n')) {
		while (from < lb->head && lb->data[from % BH_LOGBUF_SIZE] != '\n')
			from++;
		from++;
	}
	while (from < lb->head) {
		size_t at = (size_t) (from % BH_LOGBUF_SIZE);
		size_t part = BH_LOGBUF_SIZE - at;

		if (part > lb->head - from)
			part = (size_t) (lb->head - from);
		memcpy(out + n, lb->data + at, part);
		n += part;
		from += part;
	}
	return n;
}
