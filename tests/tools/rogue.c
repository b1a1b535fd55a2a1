// SPDX-License-Identifier: MIT
/*
 * rogue: a misbehaving component for the tests. It says a proper hello,
 * then breaks the protocol the way its argument names, and reports what
 * core did about it. Core must close the connection and serve everyone else.
 * "hang" sends heartbeats for a second and then spins: the watchdog's case.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/msg.h"

int main(int argc, char **argv)
{
	const char *how = argc > 1 ? argv[1] : "oversize";
	struct bh_core core;
	char big[2048];
	struct bh_msg m;
	ssize_t n = -1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (bh_core_open(&core) < 0) {
		printf("rogue: %s\n", bh_error(&core));
		return 1;
	}
	if (strcmp(how, "hang") == 0) {
		/* alive for a second, then stuck: the watchdog must notice */
		for (int i = 0; i < 4; i++) {
			bh_heartbeat(&core);
			poll(NULL, 0, 250);
		}
		printf("rogue: hanging now\n");
		for (volatile unsigned long spin = 0;; spin++)
			;
	}
	memset(big, 0x5a, sizeof(big));
	bh_msg_init(&m, BH_OP_HELLO, 99);
	if (strcmp(how, "oversize") == 0) {
		n = send(core.fd, big, sizeof(big), 0);
	} else if (strcmp(how, "short") == 0) {
		n = send(core.fd, &m, 10, 0);
	} else if (strcmp(how, "badmagic") == 0) {
		m.magic = 0xdeadbeef;
		n = send(core.fd, &m, sizeof(m), 0);
	} else if (strcmp(how, "badop") == 0) {
		m.op = 999;
		n = send(core.fd, &m, sizeof(m), 0);
	} else {
		printf("rogue: unknown mode %s\n", how);
		return 2;
	}
	printf("rogue: sent a %s message (%zd bytes)\n", how, n);
	struct pollfd p = { .fd = core.fd, .events = POLLIN };
	int rc = poll(&p, 1, 5000);
	if (rc == 1 && (p.revents & POLLHUP))
		printf("rogue: core closed the connection\n");
	else
		printf("rogue: core did not close the connection (poll %d, revents 0x%x)\n", rc,
		       p.revents);
	for (;;)
		poll(NULL, 0, 1000);
	return 0;
}
