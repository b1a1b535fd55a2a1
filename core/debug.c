// SPDX-License-Identifier: MIT
/*
 * "bulkhead debug NAME": root's gdb attaches to a running component from
 * outside its sandbox. Core tells the CLI the component's pid as the host
 * sees it and its program (for symbols), and keeps the CLI's control
 * connection: while it stays open, a component the debugger holds stopped
 * is not the watchdog's to kill. The pause ends when the CLI closes the
 * connection (gdb ended, or the CLI died), and when the component ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core.h"

#define BH_DEBUG_POLL_MS 250 /* how soon core notices the debugger stopped or resumed it */

/* is pid stopped: by a tracer ('t') or a stop signal ('T')? /proc/PID/stat's third field */
static bool stopped(pid_t pid)
{
	char path[32], buf[512], *paren;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	/* the name in parentheses may hold anything: the state follows the last ')' */
	paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' && (paren[2] == 't' || paren[2] == 'T');
}

void bh_debug_end(struct bh_core_state *core, struct bh_component *c, const char *why)
{
	if (c->debug_fd < 0)
		return;
	epoll_ctl(core->epfd, EPOLL_CTL_DEL, c->debug_fd, NULL);
	close(c->debug_fd);
	c->debug_fd = -1;
	c->debug_stopped = false;
	/* a heartbeat is due a watchdog period from now, not from before the debugger */
	c->last_heartbeat_ns = bh_now_ns();
	bh_log("debug: \"%s\": %s; its watchdog runs again", c->cfg->name, why);
}

void bh_debug_event(struct bh_core_state *core, struct bh_component *c)
{
	char b[64];
	ssize_t n = recv(c->debug_fd, b, sizeof(b), MSG_DONTWAIT);

	/* the CLI says nothing more: anything it sends is ignored, its hang-up ends it */
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		bh_debug_end(core, c, "the debugger's connection closed");
}

bool bh_debug_holds(struct bh_component *c, uint64_t now, int64_t *next)
{
	bool held;

	if (c->debug_fd < 0 || c->pid <= 0)
		return false;
	held = stopped(c->pid);
	if (held != c->debug_stopped)
		bh_log("debug: \"%s\" (pid %d) %s", c->cfg->name, c->pid,
		       held ? "stopped by the debugger: its watchdog waits"
			    : "running again under the debugger");
	c->debug_stopped = held;
	/* stopped time is not silence: the watchdog counts from when it runs again */
	if (held)
		c->last_heartbeat_ns = now;
	if (*next < 0 || *next > BH_DEBUG_POLL_MS)
		*next = BH_DEBUG_POLL_MS;
	return held;
}

/* core's one-line answer "error KIND text" to the CLI; err returned */
static int __attribute__((format(printf, 3, 4))) refuse(int fd, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdprintf(fd, fmt, ap);
	va_end(ap);
	return err;
}

int bh_debug_command(struct bh_core_state *core, int fd, const char *cmd)
{
	char name[BH_NAME_MAX + 1] = "";
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP};
	struct bh_component *c;

	if (!bh_control_peer_root(fd))
		return refuse(fd, -EACCES, "error denied: only root may debug a component\n");
	if (sscanf(cmd, "debug %32s", name) != 1)
		return refuse(fd, -EINVAL, "error usage: debug NAME\n");
	c = bh_admin_find(core, name);
	if (!c || c->removed)
		return refuse(fd, -ENOENT,
			      "error unknown: no component '%s' in %s (bulkhead status lists "
			      "them)\n",
			      name, core->cfg.path);
	if (c->cfg->vm.enabled)
		return refuse(fd, -EPERM,
			      "error refused: \"%s\" is a driver VM (kind = vm): its driver runs "
			      "in the guest's kernel, which gdb on the host cannot attach to; read "
			      "its console with 'bulkhead logs %s', or have the guest's kernel "
			      "show its tasks' stacks with 'bulkhead sysrq %s t'\n",
			      name, name, name);
	if (c->state != BH_RUNNING || c->pid <= 0)
		return refuse(fd, -ESRCH,
			      "error refused: \"%s\" is not running (%s%s%s); start it with "
			      "'bulkhead start %s'\n",
			      name, bh_state_name(c), c->last_exit[0] ? ", last exit: " : "",
			      c->last_exit, name);
	if (c->debug_fd >= 0)
		return refuse(fd, -EBUSY,
			      "error refused: \"%s\" is being debugged already (one debugger at "
			      "a time)\n",
			      name);
	ev.data.u64 = BH_TAG(BH_TAG_DEBUG, c->index);
	if (epoll_ctl(core->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return refuse(fd, -errno, "error failed: %s\n", strerror(errno));
	/* the pid is core's (the host's) view: the CLI runs outside the component's namespace */
	dprintf(fd, "ok debug %s pid=%d exec=%s\n", name, c->pid, c->cfg->exec);
	c->debug_fd = fd;
	c->debug_stopped = false;
	bh_log("debug: \"%s\" (pid %d): a debugger attaches; while it holds it stopped the "
	       "watchdog waits",
	       name, c->pid);
	return 0;
}
