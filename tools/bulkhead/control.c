// SPDX-License-Identifier: MIT
/* Talking to core over its control socket: one line asked, the reply read to its end. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"

const char *bh_control_path = "/run/bulkhead/core.sock";
bool bh_control_quiet;

int bh_control_connect(const char *cmd)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n;
	int fd;

	if (strlen(bh_control_path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "bulkhead: socket path too long: %s\n", bh_control_path);
		return -BH_EXIT_USAGE;
	}
	strcpy(sa.sun_path, bh_control_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
		if (!bh_control_quiet)
			fprintf(stderr,
				"bulkhead: cannot reach core at %s: %s (is bulkhead-core running? "
				"are you root? -s SOCKET names another socket)\n",
				bh_control_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -BH_EXIT_NO_CORE;
	}
	char line[256];
	/*
	 * one write: core reads the request once, answers and closes; a byte it
	 * did not read would turn its close into a reset that loses the answer
	 */
	n = (size_t) snprintf(line, sizeof(line), "%s\n", cmd);
	if (n >= sizeof(line) || send(fd, line, n, MSG_NOSIGNAL) != (ssize_t) n) {
		fprintf(stderr, "bulkhead: writing to core: %s\n", strerror(errno));
		close(fd);
		return -BH_EXIT_NO_CORE;
	}
	return fd;
}

int bh_control_ask(const char *cmd, char **reply)
{
	size_t len = 0, cap = 16384;
	char *buf = malloc(cap);
	ssize_t n;
	int fd = bh_control_connect(cmd);

	*reply = NULL;
	if (fd < 0) {
		free(buf);
		return -fd;
	}
	while (buf && (n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t) n;
		if (cap - len < 4096) {
			char *grown = realloc(buf, cap * 2);
			if (!grown)
				break;
			buf = grown;
			cap *= 2;
		}
	}
	close(fd);
	if (!buf)
		return BH_EXIT_FAILED;
	buf[len] = 0;
	*reply = buf;
	return BH_EXIT_OK;
}
