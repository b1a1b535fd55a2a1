// SPDX-License-Identifier: MIT
/*
 * Built without libsystemd: core cannot tell a service manager its state.
 * A unit with Type=notify would then time out: say so once, to the log.
 */
#include <stdlib.h>

#include "core.h"

void bh_notify(const char *fmt, ...)
{
	static bool said;

	(void) fmt;
	if (!said && getenv("NOTIFY_SOCKET"))
		bh_log("NOTIFY_SOCKET is set but core was built without libsystemd: readiness is "
		       "not reported (install libsystemd-dev and rebuild, or use Type=simple)");
	said = true;
}
