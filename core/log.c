// SPDX-License-Identifier: MIT
/* core's event log: one line per event on stderr, with seconds since start. */
#include <stdarg.h>
#include <stdio.h>

#include "core.h"

void bh_log(const char *fmt, ...)
{
	static uint64_t t0;
	uint64_t now = bh_now_ns();
	char line[1024];
	va_list ap;

	if (!t0)
		t0 = now;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "core [%7.3f] %s\n", (double)(now - t0) / 1e9, line);
}
