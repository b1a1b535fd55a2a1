// SPDX-License-Identifier: MIT
/*
 * Listening sockets for bridges that serve a network protocol (fb-vnc's
 * RFB). A component runs in its own network namespace and may not call
 * socket() or bind() (seccomp): core makes the socket in its own namespace,
 * bound where the config says ('listen = ADDR:PORT'), and hands it over.
 * The component can accept on it and nothing more: it names no other
 * address and reaches no other port.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bulkhead/proto.h"
#include "listen.h"

static int socks[BH_MAX_COMPONENTS]; /* 0: none yet */

static int parse(const char *value, struct sockaddr_in *sa)
{
	char host[32], *end;
	const char *colon = strrchr(value, ':');
	unsigned long port;

	if (!colon || (size_t) (colon - value) >= sizeof(host))
		return -EINVAL;
	memcpy(host, value, (size_t) (colon - value));
	host[colon - value] = 0;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port == 0 || port > 65535)
		return -EINVAL;
	*sa = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -EINVAL;
}

int bh_listen_config(const char *value, char *out, size_t size, char *why, size_t why_len)
{
	struct sockaddr_in sa;

	if (strlen(value) >= size || parse(value, &sa)) {
		snprintf(why, why_len, "an IPv4 address and a port 1-65535, e.g. 127.0.0.1:5900");
		return -EINVAL;
	}
	snprintf(out, size, "%s", value);
	return 0;
}

void bh_listen_request(struct bh_component *c, struct bh_msg *reply, int *fd)
{
	struct sockaddr_in sa;
	int one = 1, s, idx = c->index;

	if (!c->cfg->listen[0] || parse(c->cfg->listen, &sa)) {
		bh_refuse(c, reply, EACCES,
			  "\"%s\" has no socket to listen on: add 'listen = ADDR:PORT' to its "
			  "[component] section",
			  c->cfg->name);
		return;
	}
	if (idx < 0 || idx >= BH_MAX_COMPONENTS)
		return;
	if (!socks[idx]) {
		s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		    bind(s, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(s, 8) < 0) {
			int e = errno;
			bh_refuse(c, reply, e, "listen %s: %s (is the port taken?)",
				  c->cfg->listen, strerror(e));
			if (s >= 0)
				close(s);
			return;
		}
		socks[idx] = s;
		bh_log("listening on %s for \"%s\"", c->cfg->listen, c->cfg->name);
	}
	*fd = fcntl(socks[idx], F_DUPFD_CLOEXEC, 0);
	if (*fd < 0) {
		bh_refuse(c, reply, errno, "listen %s: %s", c->cfg->listen, strerror(errno));
		return;
	}
	snprintf(reply->u.session.name, sizeof(reply->u.session.name), "%s", c->cfg->listen);
}
