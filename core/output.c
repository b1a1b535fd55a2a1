// SPDX-License-Identifier: MIT
/*
 * Output files: a component cannot open files (its seccomp filter forbids
 * open), so a bridge that makes a file, such as fb-png's screenshot, gets
 * one from core, as nic-tap gets its TAP interface. The config names the
 * file ('output = PATH'); each request opens it anew and empty, so a bridge
 * that rewrites it leaves no tail of a longer, older version. The last
 * component of the path is never followed as a symlink: the directory may
 * be writable by others.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "bulkhead/proto.h"
#include "core.h"
#include "output.h"

int bh_output_config(const char *value, char *path, size_t size, char *why, size_t why_len)
{
	size_t len = strlen(value);

	if (value[0] != '/' || len >= size || value[len - 1] == '/') {
		snprintf(why, why_len, "an absolute path to a file, shorter than %zu characters",
			 size);
		return -EINVAL;
	}
	snprintf(path, size, "%s", value);
	return 0;
}

void bh_output_grant(struct bh_component *c, struct bh_msg *reply, int *fd)
{
	if (!c->cfg->output[0]) {
		bh_refuse(c, reply, EACCES,
			  "\"%s\" has no output file: add 'output = PATH' to its "
			  "[component] section",
			  c->cfg->name);
		return;
	}
	*fd = open(c->cfg->output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (*fd < 0) {
		bh_refuse(c, reply, errno, "output %s: %s", c->cfg->output, strerror(errno));
		return;
	}
	snprintf(reply->u.session.name, sizeof(reply->u.session.name), "%s", c->cfg->output);
}
