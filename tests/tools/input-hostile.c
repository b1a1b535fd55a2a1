// SPDX-License-Identifier: MIT
/*
 * bulkhead-input-hostile: an Input session source that lies, for
 * tests/vm/vnc.sh. Beside fb-vnc it opens an input session to the screen's
 * owner (term-fb) and sends what no source should: unknown event types,
 * keysyms out of range, key flags that are not 0/1, pointers outside the
 * screen, reserved bytes set, messages of the wrong size, then more bad
 * events than the owner allows (the session must end), then a flood of
 * pointer moves (the socket's buffer must bound it), and last checks a new
 * session still opens. It never sends a valid key: the shell types nothing.
 *
 * Each step logs "input-hostile: check NAME PASS|FAIL detail"; the end
 * "input-hostile: done, N failed".
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/input.h"
#include "bulkhead/msg.h"
#include "bulkhead/session.h"
#include "peer.h"

static struct bh_core core;
static unsigned int failed;

static void check(const char *name, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void check(const char *name, bool ok, const char *fmt, ...)
{
	char detail[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	printf("input-hostile: check %s %s %s\n", name, ok ? "PASS" : "FAIL", detail);
	failed += !ok;
}

static int open_input(struct bh_session *s, struct bh_input_info *info)
{
	char why[160];
	int rc = bh_session_connect(&core, BH_INPUT_SERVICE, 30000, s, why, sizeof(why));

	if (rc)
		printf("input-hostile: %s\n", why);
	else
		memcpy(info, s->info, sizeof(*info));
	return rc;
}

static int send_ev(struct bh_session *s, uint32_t type, struct bh_input_event e)
{
	return bh_session_send_event(s, type, &e, sizeof(e));
}

int main(void)
{
	struct bh_session s;
	struct bh_input_info info;
	struct bh_session_event raw = {.magic = BH_SESSION_MAGIC, .type = BH_INPUT_EV_KEY};
	unsigned int sent = 0, queued = 0;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (bh_core_open(&core) < 0 || open_input(&s, &info)) {
		fprintf(stderr, "input-hostile: %s\n", bh_error(&core));
		return 1;
	}
	check("info", info.version == BH_INPUT_VERSION && info.width && info.height,
	      "version %u, screen %ux%u", info.version, info.width, info.height);
	/* each refused, none ends the session yet (fewer than BH_INPUT_BAD_MAX) */
	sent += !send_ev(&s, 99, (struct bh_input_event){.keysym = 'a', .down = 1});
	sent += !send_ev(&s, BH_INPUT_EV_KEY, (struct bh_input_event){.keysym = 0x12345678, .down = 1});
	sent += !send_ev(&s, BH_INPUT_EV_KEY, (struct bh_input_event){.keysym = 0x1f, .down = 1});
	sent += !send_ev(&s, BH_INPUT_EV_KEY, (struct bh_input_event){.keysym = 'a', .down = 7});
	sent += !send_ev(&s, BH_INPUT_EV_KEY,
			 (struct bh_input_event){.keysym = 'a', .down = 1, .mods = 0x100});
	sent += !send_ev(&s, BH_INPUT_EV_KEY,
			 (struct bh_input_event){.keysym = 'a', .down = 1, .reserved = 1});
	sent += !send_ev(&s, BH_INPUT_EV_POINTER,
			 (struct bh_input_event){.x = 65535, .y = 3});
	sent += !send_ev(&s, BH_INPUT_EV_POINTER,
			 (struct bh_input_event){.x = 1, .y = 1, .buttons = 0xff});
	raw.data[40] = 1; /* past the event: still reserved */
	sent += bh_dgram_send(s.fd, &raw, sizeof(raw), NULL, 0) == 0;
	sent += send(s.fd, "short", 5, MSG_NOSIGNAL) == 5;
	usleep(500000);
	check("bad_events_refused", sent == 10 && !hung_up(s.fd) ? true : false,
	      "%u of 10 bad events sent; the session stays (fewer than %d)", sent,
	      BH_INPUT_BAD_MAX);
	/* more bad events than allowed: the owner ends the session */
	for (unsigned int i = 0; i < BH_INPUT_BAD_MAX + 8; i++)
		send_ev(&s, 99, (struct bh_input_event){0});
	check("too_many_bad_closed", hung_up(s.fd), "after %u more bad events the owner hung up",
	      BH_INPUT_BAD_MAX + 8);
	bh_session_close(NULL, &s);
	/* a flood of valid pointer moves: the socket's buffer bounds it */
	if (open_input(&s, &info))
		return 1;
	fcntl(s.fd, F_SETFL, fcntl(s.fd, F_GETFL) | O_NONBLOCK);
	rc = 0;
	for (unsigned int i = 0; i < 200000 && rc == 0; i++) {
		rc = bh_input_pointer(&s, i % info.width, i % info.height, 0);
		queued += rc == 0;
	}
	check("flood_bounded", rc == -EAGAIN, "%u pointer events went in before the socket "
	      "filled (%s): the owner takes %d per pass", queued,
	      rc == -EAGAIN ? "EAGAIN" : strerror(-rc), BH_INPUT_PER_PASS);
	usleep(1000000);
	check("flood_session_kept", !hung_up(s.fd), "valid events, however many, keep the session");
	bh_session_close(NULL, &s);
	rc = open_input(&s, &info);
	check("still_serves", rc == 0, "a new input session after all that: %s",
	      rc ? strerror(-rc) : "opened");
	if (!rc)
		bh_session_close(NULL, &s);
	printf("input-hostile: done, %u failed\n", failed);
	/* stay, as a component does, until core ends us */
	for (;;) {
		struct pollfd p = {.fd = core.fd};
		if (poll(&p, 1, -1) > 0)
			return 0;
	}
}
