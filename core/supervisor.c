// SPDX-License-Identifier: MIT
/*
 * Supervision: start components, notice when they end, take back
 * everything they held (process death is revocation), and restart them as
 * their policy says, with exponential backoff.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core.h"
#include "nbd.h"
#include "ublk.h"
#include "usbip.h"
#include "sandbox.h"

#define BH_UID_BASE 61000 /* auto uids: one per component */
#define BH_STABLE_NS (10ull * 1000000000ull) /* ran this long: backoff starts over */

static void watch(struct bh_core_state *core, int fd, enum bh_tag_kind kind, int index)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = BH_TAG(kind, index) };

	epoll_ctl(core->epfd, EPOLL_CTL_ADD, fd, &ev);
}

void bh_component_init(struct bh_core_state *core, int i)
{
	struct bh_component *c = &core->comp[i];

	c->cfg = &core->cfg.comp[i];
	c->index = i;
	c->sock = c->output = -1;
	c->domain.container_fd = -1;
	c->tap_fd = -1;
	c->debug_fd = -1;
	for (int k = 0; k < BH_MAX_SERVICES; k++)
		c->channel[k] = -1;
	/*
	 * the log ring's pages are taken now, not one by one as the log fills:
	 * core's resident size then stays flat however long it runs
	 */
	memset(c->log.data, 0, sizeof(c->log.data));
}

int bh_component_start(struct bh_core_state *core, struct bh_component *c)
{
	const struct bh_component_config *cc = c->cfg;
	struct bh_spawn sp;
	char err[512];
	int rc;

	c->uid = cc->uid_auto ? (uid_t)(BH_UID_BASE + c->index) : cc->uid;
	c->gid = cc->uid_auto ? (gid_t)(BH_UID_BASE + c->index) : cc->gid;
	bh_trace_start(c);
	if (cc->vm.enabled)
		rc = bh_vm_spawn(core, c, &sp, err, sizeof(err));
	else
		rc = bh_spawn(cc, c->uid, c->gid, c->cgroup, &sp, err, sizeof(err));
	if (rc) {
		bh_log("cannot start \"%s\": %s", cc->name, err);
		c->state = BH_FAILED;
		snprintf(c->last_exit, sizeof(c->last_exit), "cannot start");
		return rc;
	}
	c->pid = sp.pid;
	c->sock = sp.sock;
	c->output = sp.output;
	c->outlen = 0;
	c->kill_reason[0] = 0;
	c->state = BH_RUNNING;
	c->started_ns = c->last_heartbeat_ns = bh_now_ns();
	if (c->starts++)
		c->restarts++;
	watch(core, c->sock, cc->vm.enabled ? BH_TAG_VM : BH_TAG_SOCK, c->index);
	if (cc->vm.enabled)
		bh_vm_started(core, c);
	watch(core, c->output, BH_TAG_OUTPUT, c->index);
	bh_loader_expect(core, c, sp.dynamic);
	bh_log("started \"%s\" pid %d uid %u, %d device(s)%s", cc->name, c->pid, c->uid,
	       c->ndevices, c->restarts ? " (restart)" : "");
	return 0;
}

/* one line of a component's output: core's stdout, and the component's log ring */
static void emit(struct bh_core_state *core, struct bh_component *c, const char *text)
{
	fprintf(stdout, "%s| %s\n", c->cfg->name, text);
	bh_complog_output(core, c, text);
}

void bh_component_output(struct bh_core_state *core, struct bh_component *c)
{
	for (;;) {
		ssize_t n;
		char *nl;

		if (c->output < 0)
			return;
		n = read(c->output, c->outbuf + c->outlen, sizeof(c->outbuf) - 1 - c->outlen);
		if (n <= 0) {
			if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				epoll_ctl(core->epfd, EPOLL_CTL_DEL, c->output, NULL);
				close(c->output);
				c->output = -1;
			}
			/* flush a last partial line at end of output */
			if (c->output < 0 && c->outlen) {
				c->outbuf[c->outlen] = 0;
				emit(core, c, c->outbuf);
				c->outlen = 0;
			}
			fflush(stdout);
			return;
		}
		c->outlen += (size_t)n;
		c->outbuf[c->outlen] = 0;
		while ((nl = strchr(c->outbuf, '\n'))) {
			*nl = 0;
			emit(core, c, c->outbuf);
			c->outlen -= (size_t)(nl + 1 - c->outbuf);
			memmove(c->outbuf, nl + 1, c->outlen + 1);
		}
		/* an overlong line goes out in pieces */
		if (c->outlen == sizeof(c->outbuf) - 1) {
			emit(core, c, c->outbuf);
			c->outlen = 0;
		}
	}
}

void bh_component_stop(struct bh_core_state *core, struct bh_component *c, const char *why)
{
	if (c->sock >= 0) {
		epoll_ctl(core->epfd, EPOLL_CTL_DEL, c->sock, NULL);
		close(c->sock);
		c->sock = -1;
	}
	if (c->state == BH_RUNNING && c->pid > 0) {
		snprintf(c->kill_reason, sizeof(c->kill_reason), "%s", why);
		kill(c->pid, SIGKILL);
	}
}

void bh_component_revoke(struct bh_core_state *core, struct bh_component *c)
{
	unsigned int resets = 0, unmapped = (unsigned int)c->ndma;
	uint64_t bytes = c->dma_bytes;

	if (c->sock >= 0) {
		epoll_ctl(core->epfd, EPOLL_CTL_DEL, c->sock, NULL);
		close(c->sock);
		c->sock = -1;
	}
	bh_component_output(core, c);
	bh_loader_done(core, c);
	c->held = c->parked = false;
	c->request_tat_ns = 0;
	bh_refuse_flush(c, true);
	bh_session_revoke(core, c);
	if (c->cfg->vm.enabled)
		bh_vm_reacquire(core, c);
	/* stop the devices first: no DMA may hit memory we are about to free */
	for (int i = 0; i < c->ndevices; i++) {
		struct bh_device *dev = &core->devices[c->devices[i]];
		/*
		 * bus mastering off, reset, and only then interrupts off: QEMU 7.2's
		 * e1000e aborts the whole machine when MSI-X is disabled while an
		 * interrupt it throttled is still pending; its reset cancels those
		 */
		bh_device_set_bus_master(core->backend, dev, false);
		if (dev->can_reset) {
			if (core->backend->reset(dev) == 0) {
				dev->resets++;
				resets++;
			} else {
				dev->reset_failures++;
			}
		}
		bh_device_irq_close(core, dev);
		dev->acquired = false;
	}
	for (int i = 0; i < c->ndma; i++) {
		core->backend->dma_unmap(&c->domain, c->dma[i].iova, c->dma[i].size);
		bh_dma_buf_destroy(&c->dma[i]);
	}
	c->ndma = 0;
	c->dma_bytes = 0;
	bh_log("revoked \"%s\": bus mastering off on %d device(s), %u reset, %u DMA buffer(s) "
	       "(%llu bytes) unmapped; DMA mappings now %d",
	       c->cfg->name, c->ndevices, resets, unmapped, (unsigned long long)bytes, c->ndma);
}

static void describe_exit(int status, char *buf, size_t len)
{
	if (WIFEXITED(status)) {
		snprintf(buf, len, "exit code %d", WEXITSTATUS(status));
	} else if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		snprintf(buf, len, "killed by SIG%s%s", sigabbrev_np(sig) ? sigabbrev_np(sig) : "?",
			 sig == SIGSYS ? " (seccomp: a system call outside its sandbox)" : "");
	} else {
		snprintf(buf, len, "status 0x%x", status);
	}
}

static void ended(struct bh_core_state *core, struct bh_component *c, int status)
{
	const struct bh_component_config *cc = c->cfg;
	uint64_t now = bh_now_ns();
	/*
	 * a driver VM never ends of its own accord: QEMU's exit 0 is its guest
	 * panicking or rebooting (panic=-1, -no-reboot), a failure all the same
	 */
	bool failed = cc->vm.enabled || !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	char how[96];

	describe_exit(status, how, sizeof(how));
	if (c->kill_reason[0]) {
		strncat(how, ": ", sizeof(how) - strlen(how) - 1);
		strncat(how, c->kill_reason, sizeof(how) - strlen(how) - 1);
		c->kill_reason[0] = 0;
	}
	snprintf(c->last_exit, sizeof(c->last_exit), "%s", how);
	bh_log("\"%s\" (pid %d) ended: %s, after %.1f s", cc->name, c->pid, how,
	       (double)(now - c->started_ns) / 1e9);
	bh_trace_ended(core, c, status, how);
	bh_debug_end(core, c, "it ended");
	c->pid = 0;
	/*
	 * A bridge that will not be back: let its /dev/nbdN go now, not after
	 * the other components' device resets (seconds each), or I/O on it
	 * hangs for the dead-connection timeout if core is killed meanwhile.
	 */
	bool stays_down = core->stopping || c->admin == BH_ADMIN_STOP ||
			  cc->restart == BH_RESTART_NEVER || (cc->restart == BH_RESTART_ON_FAILURE && !failed);
	if (cc->nbd >= 0 && (stays_down || c->restarts >= cc->max_restarts)) {
		bh_nbd_disconnect(cc->nbd);
		bh_log("/dev/nbd%d disconnected: \"%s\" will not serve it again", cc->nbd,
		       cc->name);
	}
	if (cc->ublk >= 0 && (stays_down || c->restarts >= cc->max_restarts))
		bh_ublk_remove(core, cc->ublk);
	/* its USB device leaves the kernel now; a restarted bridge attaches anew */
	bh_usbip_detach(c);
	bh_component_revoke(core, c);
	if (bh_admin_ended(core, c))
		return;
	if (stays_down) {
		c->state = BH_FINISHED;
		return;
	}
	if (now - c->started_ns > BH_STABLE_NS)
		c->failures_in_row = 0;
	if (c->restarts >= cc->max_restarts) {
		c->state = BH_FAILED;
		bh_log("\"%s\" restarted %u times: giving up (max_restarts = %u)", cc->name,
		       c->restarts, cc->max_restarts);
		return;
	}
	uint64_t delay = cc->backoff_ms;
	for (unsigned int i = 0; i < c->failures_in_row && delay < cc->backoff_max_ms; i++)
		delay *= 2;
	if (delay > cc->backoff_max_ms)
		delay = cc->backoff_max_ms;
	c->failures_in_row++;
	c->state = BH_BACKOFF;
	c->restart_at_ns = now + delay * 1000000ull;
	bh_log("\"%s\" restarts in %llu ms", cc->name, (unsigned long long)delay);
}

void bh_component_reap(struct bh_core_state *core)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);

		if (pid <= 0)
			return;
		for (int i = 0; i < core->ncomp; i++)
			if (core->comp[i].pid == pid)
				ended(core, &core->comp[i], status);
	}
}

int bh_supervisor_tick(struct bh_core_state *core)
{
	uint64_t now = bh_now_ns();
	int64_t next = -1;

	for (int i = 0; i < core->ncomp; i++) {
		struct bh_component *c = &core->comp[i];
		const struct bh_component_config *cc = c->cfg;

		if (c->state == BH_BACKOFF && !core->stopping) {
			if (c->restart_at_ns <= now) {
				bh_component_start(core, c);
			} else {
				int64_t ms = (int64_t)((c->restart_at_ns - now) / 1000000ull) + 1;
				if (next < 0 || ms < next)
					next = ms;
			}
		}
		if (c->held) {
			if (c->held_until_ns <= now) {
				bh_service_resume(core, c);
			} else {
				int64_t ms = (int64_t)((c->held_until_ns - now) / 1000000ull) + 1;
				if (next < 0 || ms < next)
					next = ms;
			}
		}
		if (c->refusal_repeats) {
			bh_refuse_flush(c, false);
			if (c->refusal_repeats && (next < 0 || next > 1000))
				next = 1000;
		}
		/* a held component waits on core, not the other way round */
		if (c->state == BH_RUNNING && cc->watchdog_ms && c->sock >= 0 && !c->held &&
		    !bh_debug_holds(c, now, &next)) {
			/* a component started just now in this loop heartbeats after now */
			uint64_t quiet = now > c->last_heartbeat_ns
						 ? (now - c->last_heartbeat_ns) / 1000000ull
						 : 0;
			/*
			 * a heartbeat may be waiting unread: core's own loop can stall for
			 * seconds (a bus reset); read it before blaming the component
			 */
			struct pollfd pending = { .fd = c->sock, .events = POLLIN };
			if (quiet > cc->watchdog_ms && poll(&pending, 1, 0) == 1) {
				if (next < 0 || next > 1)
					next = 0;
			} else if (quiet > cc->watchdog_ms) {
				bh_log("watchdog: \"%s\" silent for %llu ms; killing it", cc->name,
				       (unsigned long long)quiet);
				bh_component_stop(core, c, "watchdog");
			} else if (next < 0 || (int64_t)(cc->watchdog_ms - quiet) < next) {
				next = (int64_t)(cc->watchdog_ms - quiet) + 1;
			}
		}
	}
	return (int)next;
}
