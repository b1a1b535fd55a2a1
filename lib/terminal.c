// SPDX-License-Identifier: MIT
/* Terminal sessions, the client side: open, check the setup, read events. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bulkhead/terminal.h"

int bh_terminal_open(struct bh_core *core, int timeout_ms, struct bh_terminal *t, char *why,
		     size_t why_len)
{
	const struct bh_terminal_info *in;
	int fd, rc;

	memset(t, 0, sizeof(*t));
	t->s.fd = -1;
	rc = bh_session_open_wait(core, BH_TERMINAL_SERVICE, timeout_ms, &fd);
	if (rc) {
		snprintf(why, why_len, "%s", bh_error(core));
		return rc;
	}
	/* the setup follows at once from a live server; a dead one never sends it */
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, BH_TERMINAL_SETUP_MS) != 1) {
		snprintf(why, why_len, "terminal: no session setup within %d ms",
			 BH_TERMINAL_SETUP_MS);
		close(fd);
		return -ETIMEDOUT;
	}
	rc = bh_session_accept_setup(fd, BH_TERMINAL_SERVICE, &t->s, why, why_len);
	if (rc) {
		close(fd);
		return rc;
	}
	in = (const struct bh_terminal_info *) t->s.info;
	t->tx = &t->s.ps[BH_TERMINAL_TX];
	t->rx = &t->s.ps[BH_TERMINAL_RX];
	/* the server's numbers are input like any other */
	if (t->s.nstreams != 2 || t->tx->role != BH_PS_SOURCE || t->rx->role != BH_PS_SINK ||
	    in->version != BH_TERMINAL_VERSION || !in->fifo || in->fifo > 4096 ||
	    !bh_terminal_line_ok(&in->line)) {
		snprintf(why, why_len,
			 "terminal: the server offered an impossible setup (version "
			 "%u, %u streams, fifo %u, %u baud)",
			 in->version, t->s.nstreams, in->fifo, in->line.baud);
		bh_terminal_close(t);
		return -EPROTO;
	}
	/* kick the server once: its waiting flag may predate our attach */
	(void) !write(t->tx->submit.efd, &(uint64_t){1}, sizeof(uint64_t));
	t->info = *in;
	t->info.driver[sizeof(t->info.driver) - 1] = 0;
	t->info.device[sizeof(t->info.device) - 1] = 0;
	return 0;
}

void bh_terminal_close(struct bh_terminal *t)
{
	bh_session_close(NULL, &t->s);
	t->tx = t->rx = NULL;
}

int bh_terminal_event(const struct bh_session_event *ev, struct bh_terminal_line *line,
		      struct bh_terminal_errors *errors)
{
	switch (ev->type) {
	case BH_TERMINAL_EVENT_LINE:
	case BH_TERMINAL_EVENT_SET_BAUD:
		memcpy(line, ev->data, sizeof(*line));
		return ev->type == BH_TERMINAL_EVENT_SET_BAUD || bh_terminal_line_ok(line)
			   ? 0
			   : -EPROTO;
	case BH_TERMINAL_EVENT_ERRORS:
		memcpy(errors, ev->data, sizeof(*errors));
		return 0;
	}
	return -EPROTO;
}
