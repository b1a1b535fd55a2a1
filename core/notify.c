// SPDX-License-Identifier: MIT
/*
 * Core's state for its service manager (sd_notify(3), libsystemd): READY=1
 * once its components have started, RELOADING=1 and READY=1 around a
 * reload, STOPPING=1 when it stops, and STATUS= lines a person reads in
 * `systemctl status bulkhead`. Without $NOTIFY_SOCKET (not started by
 * systemd with Type=notify) sd_notify does nothing.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "core.h"

void bh_notify(const char *fmt, ...)
{
	char state[512];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(state, sizeof(state), fmt, ap);
	va_end(ap);
	/* 0: $NOTIFY_SOCKET stays set, for the next state; components get their own env */
	rc = sd_notify(0, state);
	if (rc < 0)
		bh_log("sd_notify \"%.*s\": %s", (int) strcspn(state, "\n"), state, strerror(-rc));
}
