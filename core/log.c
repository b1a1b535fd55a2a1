// SPDX-License-Identifier: MIT
/* core's event log: one line per event on stderr, with seconds since start. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bulkhead/msg.h"
#include "core.h"

/* a refusal repeated this long is summed up, and the count starts over */
#define BH_REFUSAL_WINDOW_NS (10ull * 1000000000ull)
/* or once it has been quiet this long */
#define BH_REFUSAL_QUIET_NS (2ull * 1000000000ull)

void (*bh_log_hook)(const char *line);

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
	if (bh_log_hook)
		bh_log_hook(line);
}

/* 3860 -> "3,860": counts a person reads at a glance */
static const char *grouped(unsigned int n, char *buf, size_t len)
{
	char digits[16];
	int nd = snprintf(digits, sizeof(digits), "%u", n);
	size_t o = 0;

	for (int i = 0; i < nd && o + 2 < len; i++) {
		if (i && (nd - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = 0;
	return buf;
}

void bh_refuse_flush(struct bh_component *c, bool force)
{
	uint64_t now = bh_now_ns();
	char n[16];

	if (!c->refusal_repeats)
		return;
	if (!force && now - c->refusal_last_ns < BH_REFUSAL_QUIET_NS &&
	    now - c->refusal_first_ns < BH_REFUSAL_WINDOW_NS)
		return;
	bh_log("\"%s\": the refusal above, %s more time%s in %.0f s", c->cfg->name,
	       grouped(c->refusal_repeats, n, sizeof(n)), c->refusal_repeats == 1 ? "" : "s",
	       (double)(c->refusal_last_ns - c->refusal_first_ns) / 1e9);
	c->refusal_repeats = 0;
	c->refusal_first_ns = now;
}

void bh_refuse(struct bh_component *c, struct bh_msg *reply, int err, const char *fmt, ...)
{
	char line[sizeof(c->last_refusal)];
	uint64_t now = bh_now_ns();
	va_list ap;

	reply->status = -err;
	va_start(ap, fmt);
	vsnprintf(reply->error, sizeof(reply->error), fmt, ap);
	va_end(ap);
	if (err == EAGAIN)
		return;
	if (err == EACCES)
		c->denials++;
	else
		c->refusals++;
	snprintf(line, sizeof(line), "%s \"%s\" %s: %s", err == EACCES ? "policy: denied" : "refused",
		 c->cfg->name, bh_op_name(reply->op), reply->error);
	if (strcmp(line, c->last_refusal) == 0) {
		c->refusal_repeats++;
		c->refusal_last_ns = now;
		if (now - c->refusal_first_ns >= BH_REFUSAL_WINDOW_NS)
			bh_refuse_flush(c, true);
		return;
	}
	bh_refuse_flush(c, true);
	bh_log("%s", line);
	snprintf(c->last_refusal, sizeof(c->last_refusal), "%s", line);
	c->refusal_first_ns = c->refusal_last_ns = now;
}
