// SPDX-License-Identifier: MIT
/*
 * Each component's log: its output lines and core's lines that name it
 * (core quotes a component's name: "started \"edu\" pid 12"), in a ring of
 * BH_LOGBUF_SIZE bytes per component, for "bulkhead logs". A follower (logs
 * -f) keeps its control connection; core writes new lines to it without
 * waiting, and drops a follower that does not keep up.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core.h"

#define BH_MAX_FOLLOWERS 8

static struct bh_core_state *logged;
static struct {
	int fd;	  /* 0: a free entry (fd 0 is never a connection of core's) */
	int comp; /* -1: every component */
} followers[BH_MAX_FOLLOWERS];

static void drop(int i)
{
	close(followers[i].fd);
	followers[i].fd = 0;
}

/* a follower that hung up: its connection reads end-of-file */
static bool gone(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
	char b;

	if (poll(&p, 1, 0) != 1)
		return false;
	return (p.revents & (POLLHUP | POLLRDHUP | POLLERR)) || recv(fd, &b, 1, MSG_DONTWAIT) <= 0;
}

static void add(struct bh_component *c, const char *source, const char *text)
{
	char line[BH_LOGBUF_LINE + BH_NAME_MAX + 2];
	int off = snprintf(line, sizeof(line), "%s ", c->cfg->name);
	size_t n = bh_logbuf_add(&c->log, (double) (bh_now_ns() - logged->start_ns) / 1e9, source,
				 text, line + off, sizeof(line) - (size_t) off);

	for (int i = 0; i < BH_MAX_FOLLOWERS; i++) {
		if (!followers[i].fd || (followers[i].comp >= 0 && followers[i].comp != c->index))
			continue;
		/* a follower that cannot take a whole line now is too slow: it goes */
		if (send(followers[i].fd, line, (size_t) off + n, MSG_DONTWAIT | MSG_NOSIGNAL) !=
		    (ssize_t) ((size_t) off + n))
			drop(i);
	}
}

static void core_line(const char *line)
{
	char quoted[BH_NAME_MAX + 3];

	for (int i = 0; i < logged->ncomp; i++) {
		struct bh_component *c = &logged->comp[i];

		snprintf(quoted, sizeof(quoted), "\"%s\"", c->cfg->name);
		if (strstr(line, quoted))
			add(c, "core", line);
	}
}

void bh_complog_attach(struct bh_core_state *core)
{
	logged = core;
	bh_log_hook = core_line;
}

void bh_complog_output(struct bh_core_state *core, struct bh_component *c, const char *text)
{
	(void) core;
	if (logged)
		add(c, "out", text);
}

/* the ring's lines, each with the component's name in front */
static int send_ring(int fd, const struct bh_component *c)
{
	static char text[BH_LOGBUF_SIZE];
	size_t n = bh_logbuf_read(&c->log, text, sizeof(text));
	char *p = text, *end = text + n;
	char name[BH_NAME_MAX + 2];
	int k = snprintf(name, sizeof(name), "%s ", c->cfg->name);

	while (p < end) {
		char *nl = memchr(p, '\n', (size_t) (end - p));
		size_t len = (size_t) (nl - p) + 1;
		struct iovec iov[2] = {{name, (size_t) k}, {p, len}};

		if (writev(fd, iov, 2) < 0)
			return -errno;
		p += len;
	}
	return 0;
}

int bh_complog_command(struct bh_core_state *core, int fd, const char *cmd)
{
	char name[BH_NAME_MAX + 1] = "", word[16] = "";
	bool follow = false;
	int comp = -1, slot = -1;
	const char *arg = cmd + strlen("logs");

	/* "logs", "logs NAME", "logs NAME follow", "logs * follow" */
	if (sscanf(arg, "%32s %15s", name, word) >= 1 && strcmp(name, "*") != 0) {
		struct bh_component *c = bh_admin_find(core, name);
		if (!c) {
			dprintf(fd, "error unknown: no component '%s' in %s\n", name,
				core->cfg.path);
			return -ENOENT;
		}
		comp = c->index;
	}
	follow = strcmp(word, "follow") == 0;
	if (follow) {
		for (int i = 0; i < BH_MAX_FOLLOWERS; i++) {
			if (followers[i].fd && gone(followers[i].fd))
				drop(i);
			if (!followers[i].fd && slot < 0)
				slot = i;
		}
		if (slot < 0) {
			dprintf(fd, "error refused: %d followers already; stop one (logs -f)\n",
				BH_MAX_FOLLOWERS);
			return -EBUSY;
		}
	}
	dprintf(fd, "ok logs\n");
	for (int i = 0; i < core->ncomp; i++)
		if ((comp < 0 || comp == i) && send_ring(fd, &core->comp[i]) < 0)
			return -EIO;
	if (!follow)
		return -ENOENT;
	followers[slot].fd = fd;
	followers[slot].comp = comp;
	return 0;
}
