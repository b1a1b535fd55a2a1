// SPDX-License-Identifier: MIT
/*
 * The flight recorder, core's side (bulkhead/trace.h). Each component gets
 * a ring in a sealed memfd at its first start, handed over with the hello
 * reply; core keeps its own mapping, so the ring is still there when the
 * component is not. When one ends by a signal nobody at the control socket
 * asked for (a crash, the watchdog), or its own handler recorded a fatal
 * signal, core copies the ring into a crash
 * report under the config's 'crashes' directory and logs where it is.
 * Core reads nothing of the ring but a few numbers for its log line: the
 * `bulkhead` command decodes and symbolizes the report.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bulkhead/trace.h"
#include "core.h"

#define BH_CRASH_KEEP 8 /* reports kept per component: NAME.0.crash .. NAME.7.crash */

/* at each start: a ring that is empty and switched as the config says */
int bh_trace_start(struct bh_component *c)
{
	struct bh_trace_header *h;

	if (c->cfg->vm.enabled)
		return 0;
	if (!c->trace) {
		int fd = memfd_create("bulkhead-trace", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		void *p;

		/* sealed: the component can neither shrink it under core's mapping nor grow it */
		if (fd < 0 || ftruncate(fd, BH_TRACE_SIZE) < 0 ||
		    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0 ||
		    (p = mmap(NULL, BH_TRACE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) ==
			    MAP_FAILED) {
			int e = errno;
			bh_log("\"%s\": no flight recorder: its ring: %s", c->cfg->name, strerror(e));
			if (fd >= 0)
				close(fd);
			return -e;
		}
		c->trace = p;
		c->trace_fd = fd;
	}
	h = c->trace;
	memset(h, 0, BH_TRACE_SIZE);
	h->magic = BH_TRACE_MAGIC;
	h->version = BH_TRACE_VERSION;
	h->entries = BH_TRACE_ENTRIES;
	h->on = !c->cfg->trace_off;
	return 0;
}

int bh_trace_fd(const struct bh_component *c)
{
	return c->trace ? fcntl(c->trace_fd, F_DUPFD_CLOEXEC, 0) : -1;
}

static int write_all(int fd, const void *p, size_t n)
{
	for (size_t done = 0; done < n;) {
		ssize_t w = write(fd, (const char *)p + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -errno;
		done += (size_t)w;
	}
	return 0;
}

/* dir and its parents, root's only */
static int make_dir(const char *dir)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s", dir);
	for (char *s = strchr(path + 1, '/');; s = strchr(s + 1, '/')) {
		if (s)
			*s = 0;
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return -errno;
		if (!s)
			return 0;
		*s = '/';
	}
}

static int write_report(struct bh_core_state *core, struct bh_component *c, int status,
			const char *how, char *path, size_t len)
{
	struct bh_crash_file f = { .magic = BH_CRASH_MAGIC, .version = BH_CRASH_VERSION };
	char tmp[PATH_MAX + 8];
	int fd, rc;

	rc = make_dir(core->cfg.crashes);
	if (rc)
		return rc;
	snprintf(f.component, sizeof(f.component), "%s", c->cfg->name);
	snprintf(f.exec, sizeof(f.exec), "%s", c->cfg->exec);
	snprintf(f.how, sizeof(f.how), "%s", how);
	f.pid = c->pid;
	f.status = status;
	f.restarts = c->restarts;
	f.time = (int64_t)time(NULL);
	f.ring_size = BH_TRACE_SIZE;
	snprintf(path, len, "%s/%s.%u.crash", core->cfg.crashes, c->cfg->name,
		 c->crashes % BH_CRASH_KEEP);
	/* whole or not at all: a reader never sees half a report */
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	rc = write_all(fd, &f, sizeof(f));
	if (!rc)
		rc = write_all(fd, c->trace, BH_TRACE_SIZE);
	close(fd);
	if (!rc && rename(tmp, path) < 0)
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

void bh_trace_ended(struct bh_core_state *core, struct bh_component *c, int status,
		    const char *how)
{
	const struct bh_trace_header *h = c->trace;
	char path[PATH_MAX + 32];
	uint64_t accesses;
	int rc;

	/*
	 * a crash: the component's handler wrote a record (abort() in a pid 1
	 * ends in an exit code), or a signal ended it that neither root's stop
	 * or restart nor core's own stop sent (the watchdog's is a crash)
	 */
	if (!h || !(__atomic_load_n(&h->crashed, __ATOMIC_ACQUIRE) || WIFSIGNALED(status)) ||
	    core->stopping || c->admin == BH_ADMIN_STOP || c->admin == BH_ADMIN_RESTART)
		return;
	rc = write_report(core, c, status, how, path, sizeof(path));
	if (rc) {
		/* once: a read-only directory stays read-only */
		static bool said;
		if (!said)
			bh_log("\"%s\": no crash report in %s: %s (set crashes = DIR in [core]); "
			       "core says this once",
			       c->cfg->name, core->cfg.crashes, strerror(-rc));
		said = true;
		return;
	}
	c->crashes++;
	snprintf(c->last_crash, sizeof(c->last_crash), "%s", path);
	/* numbers the component wrote: logged, never used */
	accesses = h->head < BH_TRACE_ENTRIES ? h->head : BH_TRACE_ENTRIES;
	if (__atomic_load_n(&h->crashed, __ATOMIC_ACQUIRE) && h->crash.signal < NSIG)
		bh_log("\"%s\" crashed: SIG%s at pc 0x%llx (address 0x%llx); report with its "
		       "last %llu register accesses: %s (bulkhead crashes %s)",
		       c->cfg->name,
		       sigabbrev_np((int)h->crash.signal) ? sigabbrev_np((int)h->crash.signal)
							   : "?",
		       (unsigned long long)h->crash.pc, (unsigned long long)h->crash.addr,
		       (unsigned long long)accesses, path, c->cfg->name);
	else
		bh_log("\"%s\" %s; report with its last %llu register accesses: %s (bulkhead "
		       "crashes %s)",
		       c->cfg->name, how, (unsigned long long)accesses, path, c->cfg->name);
}

size_t bh_trace_describe(const struct bh_component *c, char *buf, size_t len)
{
	int n;

	if (!c->trace)
		return 0;
	n = snprintf(buf, len, " trace=%s accesses=%llu crashes=%u crash=\"%s\"",
		     c->trace->on ? "on" : "off", (unsigned long long)c->trace->head, c->crashes,
		     c->last_crash[0] ? c->last_crash : "-");
	return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len;
}

/* the ring, read-only, beside one line of reply */
static int send_ring(int fd, const struct bh_component *c, const char *line)
{
	char self[64];
	int ro, rc = 0;
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = { (void *)line, strlen(line) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	/* the same memfd opened anew read-only: the reader cannot write the ring */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", c->trace_fd);
	ro = open(self, O_RDONLY | O_CLOEXEC);
	if (ro < 0)
		return -errno;
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &ro, sizeof(int));
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
		rc = -errno;
	close(ro);
	return rc;
}

/*
 * "trace NAME": the ring's fd; "trace NAME on|off": the switch;
 * "crashes": the directory reports go to. The reply into out, or 0 when sent.
 */
size_t bh_trace_command(struct bh_core_state *core, int fd, const char *cmd, char *out,
			size_t len)
{
	char name[BH_NAME_MAX + 1] = "", word[8] = "";
	struct bh_component *c;
	int n;

	if (strcmp(cmd, "crashes") == 0)
		return (size_t)snprintf(out, len, "ok crashes %s\n", core->cfg.crashes);
	n = sscanf(cmd, "trace %32s %7s", name, word);
	if (n < 1)
		return (size_t)snprintf(out, len, "error usage: trace NAME [on|off]\n");
	c = bh_admin_find(core, name);
	if (!c)
		return (size_t)snprintf(out, len, "error unknown: no component '%s' in %s\n", name,
					core->cfg.path);
	if (!c->trace)
		return (size_t)snprintf(out, len, "error refused: \"%s\" has no flight recorder "
						  "(a driver VM, or core could not make its ring)\n",
					name);
	if (n == 2) {
		if (strcmp(word, "on") && strcmp(word, "off"))
			return (size_t)snprintf(out, len, "error usage: trace NAME on|off\n");
		__atomic_store_n(&c->trace->on, word[1] == 'n', __ATOMIC_RELEASE);
		bh_log("\"%s\": flight recorder switched %s", name, word);
		return (size_t)snprintf(out, len, "ok trace %s %s\n", name, word);
	}
	snprintf(out, len, "ok trace %s\n", name);
	if (send_ring(fd, c, out) < 0)
		return (size_t)snprintf(out, len, "error failed: cannot pass the ring: %s\n",
					strerror(errno));
	return 0;
}
