// SPDX-License-Identifier: MIT
/*
 * Pseudo-terminals for the term-pty bridge. A component cannot open files
 * (seccomp), so core opens the pty and hands the master over, as it does
 * the TAP interface: the bridge moves bytes between it and a Terminal
 * session, and unmodified programs open the slave, found by name at
 * /run/bulkhead/pty/NAME (a symlink to /dev/pts/N).
 *
 * Core keeps its own reference to both ends: the master so the pty (and
 * what waits in it) outlives a bridge restart, the slave so the master
 * never sees a hang-up when the last program closes it; what a program
 * writes with nobody reading waits in the pty, and the writer blocks.
 * The line is raw (cfmakeraw): bytes pass as they are, no echo, no line
 * editing; a program may change that on the slave as on any tty.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "pty.h"

static struct {
	int master, slave; /* 0: none yet (fds 0-2 are never a pty of ours) */
	char slave_path[32];
	char link[64];
} ptys[BH_MAX_COMPONENTS];

static void pty_cleanup(void)
{
	for (int i = 0; i < BH_MAX_COMPONENTS; i++) {
		if (!ptys[i].master)
			continue;
		unlink(ptys[i].link);
		close(ptys[i].master);
		close(ptys[i].slave);
		ptys[i].master = ptys[i].slave = 0;
	}
}

static int pty_create(const char *name, int idx, char *err, size_t err_len)
{
	struct termios t;
	char path[32];
	int m, s;

	m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0) {
		snprintf(err, err_len, "pty %s: posix_openpt: %s (is devpts mounted on /dev/pts?)",
			 name, strerror(errno));
		return -errno;
	}
	if (grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, path, sizeof(path)) != 0) {
		snprintf(err, err_len, "pty %s: cannot unlock the slave: %s", name,
			 strerror(errno));
		close(m);
		return -EIO;
	}
	/* raw: the bytes of a serial line pass untouched both ways */
	if (tcgetattr(m, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(m, TCSANOW, &t);
	}
	s = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	if (s < 0) {
		snprintf(err, err_len, "pty %s: %s: %s", name, path, strerror(errno));
		close(m);
		return -EIO;
	}
	mkdir("/run/bulkhead", 0755);
	mkdir(BH_PTY_DIR, 0755);
	snprintf(ptys[idx].link, sizeof(ptys[idx].link), "%s/%s", BH_PTY_DIR, name);
	unlink(ptys[idx].link);
	if (symlink(path, ptys[idx].link) < 0) {
		snprintf(err, err_len, "pty %s: symlink %s: %s", name, ptys[idx].link,
			 strerror(errno));
		close(s);
		close(m);
		return -EIO;
	}
	ptys[idx].master = m;
	ptys[idx].slave = s;
	snprintf(ptys[idx].slave_path, sizeof(ptys[idx].slave_path), "%s", path);
	return 0;
}

void bh_pty_request(struct bh_core_state *core, struct bh_component *c, struct bh_msg *reply,
		    int *fd)
{
	static bool registered;
	char err[160];
	int rc, idx = c->index;

	(void) core;
	if (!c->cfg->pty[0]) {
		bh_refuse(c, reply, EACCES,
			  "\"%s\" has no pty: add 'pty = NAME' to its "
			  "[component] section",
			  c->cfg->name);
		return;
	}
	if (idx < 0 || idx >= BH_MAX_COMPONENTS)
		return;
	if (!ptys[idx].master) {
		rc = pty_create(c->cfg->pty, idx, err, sizeof(err));
		if (rc < 0) {
			bh_refuse(c, reply, -rc, "%s", err);
			return;
		}
		if (!registered)
			atexit(pty_cleanup);
		registered = true;
		bh_log("pty %s created for \"%s\": %s (raw)", ptys[idx].link, c->cfg->name,
		       ptys[idx].slave_path);
	}
	*fd = fcntl(ptys[idx].master, F_DUPFD_CLOEXEC, 0);
	if (*fd < 0)
		bh_refuse(c, reply, errno, "dup: %s", strerror(errno));
	snprintf(reply->u.session.name, sizeof(reply->u.session.name), "%s", ptys[idx].slave_path);
}
