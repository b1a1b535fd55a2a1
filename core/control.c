// SPDX-License-Identifier: MIT
/*
 * The control socket: root asks core what it holds ("bulkhead status"),
 * for its components' logs, and to start, stop, restart or reload them.
 * One line per component and per device, key=value, so tests and people
 * read the same thing.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "core.h"

static size_t status(struct bh_core_state *core, char *buf, size_t len)
{
	size_t off = 0;

#define OUT(...)                                                                                   \
	do {                                                                                       \
		if (off < len)                                                                     \
			off += (size_t)snprintf(buf + off, len - off, __VA_ARGS__);                \
	} while (0)
	OUT("core pid=%d backend=%s iommu=%d components=%d devices=%d protocol_errors=%u",
	    getpid(), core->backend->name, core->backend->iommu, core->ncomp, core->ndevices,
	    core->protocol_errors);
	OUT(" cgroup=%s\n", core->cgroups.path[0] ? core->cgroups.path : "none");
	for (int i = 0; i < core->ncomp; i++) {
		struct bh_component *c = &core->comp[i];
		char cpu[128];
		OUT("component %s state=%s pid=%d uid=%u restarts=%u devices=%d dma_mappings=%d "
		    "dma_bytes=%llu denials=%u iommu_faults=%u sessions=%u/%u session_bytes=%llu/%llu "
		    "session_failures=%u session_delays=%u refusals=%u throttled=%u last_exit=\"%s\""
		    " debugging=%d",
		    c->cfg->name, bh_state_name(c), c->pid, c->uid, c->restarts, c->ndevices,
		    c->ndma, (unsigned long long)c->dma_bytes, c->denials, c->iommu_faults,
		    c->open_sessions, c->cfg->sessions, (unsigned long long)c->session_bytes,
		    (unsigned long long)c->cfg->session_memory, c->session_failures,
		    c->session_delays, c->refusals, c->throttled,
		    c->last_exit[0] ? c->last_exit : "-", c->debug_fd >= 0);
		/* from its cgroup, which outlives restarts: cpu_ms counts them all */
		bh_cgroup_describe(c, cpu, sizeof(cpu));
		OUT("%s", cpu);
		if (off < len)
			off += bh_trace_describe(c, buf + off, len - off);
		OUT("\n");
		if (off < len)
			off += bh_vm_describe(c, buf + off, len - off);
		for (int k = 0; k < c->cfg->nprovides; k++)
			if (c->channel[k] >= 0)
				OUT("service %s:%s sessions=%u/%u cost=%llu session_dma=%llu\n",
				    c->cfg->name, c->cfg->provides[k], c->session_live[k],
				    c->session_max[k], (unsigned long long)c->session_cost[k],
				    (unsigned long long)c->session_dma);
	}
	/* who talks to whom: one line per session core routed */
	for (int i = 0; i < BH_MAX_SESSIONS; i++) {
		const struct bh_session_rec *r = &core->session[i];
		if (r->id)
			OUT("session %u service=%s server=%s client=%s reserved=%llu charged=%llu\n",
			    r->id, core->comp[r->server].cfg->provides[r->service],
			    core->comp[r->server].cfg->name,
			    r->client >= 0 ? core->comp[r->client].cfg->name : "-",
			    (unsigned long long)r->reserved, (unsigned long long)r->charged);
	}
	for (int i = 0; i < core->ndevices; i++) {
		struct bh_device *d = &core->devices[i];
		OUT("device %s id=%04x:%04x class=%s owner=%s group=%d acquired=%d bus_master=%d "
		    "irq=%s resets=%u reset_failures=%u\n",
		    d->pci.address, d->pci.vendor, d->pci.device, bh_class_name(d->pci.class_code),
		    d->owner >= 0 ? core->comp[d->owner].cfg->name : "-", d->pci.iommu_group,
		    d->acquired, d->bus_master,
		    d->irq_active < 0 ? "none" : (const char *[]){ "intx", "msi", "msix" }[d->irq_active],
		    d->resets, d->reset_failures);
	}
#undef OUT
	return off < len ? off : len;
}

int bh_control_open(struct bh_core_state *core, char *err, size_t err_len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[sizeof(sa.sun_path)];
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = BH_TAG(BH_TAG_CONTROL, 0) };

	if (strlen(core->cfg.control) >= sizeof(sa.sun_path)) {
		snprintf(err, err_len, "control socket path too long: %s", core->cfg.control);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, core->cfg.control);
	strcpy(dir, core->cfg.control);
	*strrchr(dir, '/') = 0;
	if (dir[0])
		mkdir(dir, 0700);
	core->control_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	unlink(sa.sun_path);
	if (core->control_fd < 0 || bind(core->control_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(sa.sun_path, 0600) < 0 || listen(core->control_fd, 8) < 0) {
		snprintf(err, err_len, "control socket %s: %s (is another core running?)",
			 sa.sun_path, strerror(errno));
		return -errno;
	}
	epoll_ctl(core->epfd, EPOLL_CTL_ADD, core->control_fd, &ev);
	return 0;
}

bool bh_control_peer_root(int fd)
{
	struct ucred cred;
	socklen_t cl = sizeof(cred);

	/* the socket is root's (0600), but a root that dropped to another uid may hold it */
	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0 && cred.uid == 0;
}

static bool is_admin(const char *cmd)
{
	static const char *const verbs[] = { "start ", "stop ", "restart ", "reload", "sysrq ",
					       "probe-dma " };

	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strncmp(cmd, verbs[i], strlen(verbs[i])) == 0)
			return true;
	return strcmp(cmd, "start") == 0 || strcmp(cmd, "stop") == 0 ||
	       strcmp(cmd, "restart") == 0;
}

void bh_control_accept(struct bh_core_state *core)
{
	struct timeval tv = { .tv_sec = 1 };
	char cmd[64] = "", out[16384];
	ssize_t n;
	size_t len;
	int fd = accept4(core->control_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	/* a slow client gets a second, then nothing: core serves everyone else */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	n = read(fd, cmd, sizeof(cmd) - 1);
	if (n > 0) {
		cmd[n] = 0;
		cmd[strcspn(cmd, "\r\n")] = 0;
	}
	if (strcmp(cmd, "status") == 0) {
		len = status(core, out, sizeof(out));
	} else if (strncmp(cmd, "logs", 4) == 0 && (!cmd[4] || cmd[4] == ' ')) {
		/* 0: core keeps the connection, to follow */
		if (bh_complog_command(core, fd, cmd) == 0)
			return;
		len = 0;
	} else if (strncmp(cmd, "trace ", 6) == 0 || strcmp(cmd, "crashes") == 0) {
		/* 0: the reply went with the ring's fd */
		len = bh_trace_command(core, fd, cmd, out, sizeof(out));
	} else if (strncmp(cmd, "debug ", 6) == 0) {
		/* 0: core keeps the connection while gdb is attached */
		if (bh_debug_command(core, fd, cmd) == 0)
			return;
		len = 0;
	} else if (is_admin(cmd)) {
		if (!bh_control_peer_root(fd))
			len = (size_t)snprintf(out, sizeof(out), "error denied: only root may %s\n",
					       cmd);
		else
			len = (size_t)bh_admin_command(core, cmd, out, sizeof(out));
		if (len >= sizeof(out))
			len = sizeof(out) - 1;
	} else {
		len = (size_t)snprintf(out, sizeof(out),
				       "error usage: unknown command '%s'; try status, logs [NAME] "
				       "[follow], start|stop|restart NAME, reload, trace NAME [on|off], "
				       "crashes, sysrq VM KEY, probe-dma VM ADDR, debug NAME\n",
				       cmd);
	}
	(void)!write(fd, out, len);
	close(fd);
}

void bh_control_close(struct bh_core_state *core)
{
	if (core->control_fd >= 0) {
		close(core->control_fd);
		unlink(core->cfg.control);
	}
	core->control_fd = -1;
}
