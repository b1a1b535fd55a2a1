// SPDX-License-Identifier: MIT
/*
 * Cgroups (v2): each component runs in one of its own, with a CPU weight
 * and, where the config says so, a limit, so a component that spins cannot
 * starve its neighbours. Its CPU time is read from the same cgroup.
 *
 * cgroup v2 lets only leaves hold processes once a controller is enabled
 * for their children. So when core sits in the root cgroup, the components
 * go to /sys/fs/cgroup/bulkhead/NAME; when it sits in a cgroup of its own
 * (a systemd service), core moves itself into OWN/core and the components
 * go to OWN/NAME.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core.h"

/* controllers core enables for the components; only cpu is required */
static const char *const controllers[] = { "cpu", "pids", "memory" };

static int read_text(int dir, const char *name, char *buf, size_t len)
{
	int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	int e;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	e = errno;
	close(fd);
	if (n < 0)
		return -e;
	buf[n] = 0;
	return 0;
}

static int write_text(int dir, const char *name, const char *text)
{
	int fd = openat(dir, name, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	int e;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	e = errno;
	close(fd);
	return n < 0 ? -e : 0;
}

/* a word of a space-separated list, as cgroup.controllers has them */
static bool has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *s = list; (s = strstr(s, word)); s += n)
		if ((s == list || s[-1] == ' ') && (s[n] == ' ' || s[n] == '\n' || !s[n]))
			return true;
	return false;
}

int bh_cgroup_parse_self(const char *text, char *path, size_t len)
{
	for (const char *s = text; s && *s; s = strchr(s, '\n'), s = s ? s + 1 : NULL) {
		size_t n = strcspn(s, "\n");

		if (strncmp(s, "0::/", 4) != 0)
			continue;
		if (n - 3 >= len)
			return -ENAMETOOLONG;
		snprintf(path, len, "%.*s", (int)(n - 3), s + 3);
		return 0;
	}
	return -ENOENT;
}

bool bh_cgroup_mount_line(const char *line, char *mnt, size_t len)
{
	char point[PATH_MAX], type[32];
	const char *sep = strstr(line, " - ");

	/* id parent major:minor root mount-point options ... - type source options */
	if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1 ||
	    sscanf(sep, " - %31s", type) != 1 || strcmp(type, "cgroup2") != 0 ||
	    strchr(point, '\\') || strlen(point) >= len)
		return false;
	snprintf(mnt, len, "%s", point);
	return true;
}

/* where cgroup2 is mounted: BH_CGROUP_MOUNT if it is there, else the first one */
static int find_mount(char *mnt, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL, point[PATH_MAX];
	size_t cap = 0;
	int rc = -ENOENT;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		if (!bh_cgroup_mount_line(line, point, sizeof(point)))
			continue;
		if (rc == 0 && strcmp(point, BH_CGROUP_MOUNT) != 0)
			continue;
		snprintf(mnt, len, "%s", point);
		rc = 0;
		if (strcmp(point, BH_CGROUP_MOUNT) == 0)
			break;
	}
	free(line);
	fclose(f);
	return rc;
}

void bh_cgroup_cpu_max(uint32_t percent, char *buf, size_t len)
{
	if (!percent)
		snprintf(buf, len, "max %u", BH_CPU_PERIOD_US);
	else
		snprintf(buf, len, "%" PRIu64 " %u",
			 (uint64_t)percent * BH_CPU_PERIOD_US / 100, BH_CPU_PERIOD_US);
}

int64_t bh_cgroup_parse_usage(const char *text)
{
	const char *s = text;
	long long v;

	while (s && strncmp(s, "usage_usec ", 11) != 0)
		if ((s = strchr(s, '\n')))
			s++;
	if (!s || sscanf(s + 11, "%lld", &v) != 1 || v < 0)
		return -1;
	return v;
}

/* enable the controllers for dir's children: cpu or fail, the others if they are there */
static int enable(const char *dir, const char *available, char *done, size_t done_len,
		  char *why, size_t why_len)
{
	char file[PATH_MAX + 32], op[16];

	snprintf(file, sizeof(file), "%s/cgroup.subtree_control", dir);
	if (done)
		done[0] = 0;
	for (size_t i = 0; i < sizeof(controllers) / sizeof(controllers[0]); i++) {
		int rc;

		if (i && !has_word(available, controllers[i]))
			continue;
		snprintf(op, sizeof(op), "+%s", controllers[i]);
		rc = write_text(AT_FDCWD, file, op);
		if (rc < 0 && i == 0) {
			snprintf(why, why_len,
				 "cannot enable the cpu controller in %s: %s%s", file, strerror(-rc),
				 rc == -EBUSY ? " (other processes share core's cgroup: start core "
						"in a cgroup of its own, e.g. as a systemd service "
						"with Delegate=yes or with 'systemd-run --scope -p "
						"Delegate=yes bulkhead-core ...')"
					      : "");
			return rc;
		}
		if (rc == 0 && done) {
			if (done[0])
				strncat(done, " ", done_len - strlen(done) - 1);
			strncat(done, controllers[i], done_len - strlen(done) - 1);
		}
	}
	return 0;
}

/*
 * where the components' cgroups go; moves core into a leaf if need be.
 * weight: what the components' weights add up to
 */
static int find_place(struct bh_cgroups *cg, uint32_t weight, char *why, size_t why_len)
{
	char text[4096], mnt[PATH_MAX], own[PATH_MAX], dir[PATH_MAX * 2], file[PATH_MAX * 2 + 32];
	char available[256];
	int rc;

	if (find_mount(mnt, sizeof(mnt)) < 0) {
		snprintf(why, why_len, "cgroup2 is not mounted (mount it with 'mount -t cgroup2 "
				       "none " BH_CGROUP_MOUNT "')");
		return -ENOENT;
	}
	if (read_text(AT_FDCWD, "/proc/self/cgroup", text, sizeof(text)) < 0 ||
	    bh_cgroup_parse_self(text, own, sizeof(own)) < 0) {
		snprintf(why, why_len, "/proc/self/cgroup has no cgroup v2 line (0::/...)");
		return -ENOENT;
	}
	snprintf(dir, sizeof(dir), "%s%s", mnt, strcmp(own, "/") == 0 ? "" : own);
	snprintf(file, sizeof(file), "%s/cgroup.controllers", dir);
	if (read_text(AT_FDCWD, file, available, sizeof(available)) < 0 ||
	    !has_word(available, "cpu")) {
		if (strcmp(own, "/") == 0)
			snprintf(why, why_len, "cgroup2 at %s has no cpu controller: cgroup v1 "
					       "holds it; boot with systemd.unified_cgroup_"
					       "hierarchy=1 (or cgroup_no_v1=all)",
				 mnt);
		else
			snprintf(why, why_len, "the cpu controller is not delegated to core's "
					       "cgroup %s; run core as a systemd service with "
					       "Delegate=yes (or 'systemd-run --scope -p Delegate=yes')",
				 dir);
		return -ENOTSUP;
	}
	if (strcmp(own, "/") == 0) {
		/* the root may hold processes and still enable controllers */
		if ((rc = enable(dir, available, NULL, 0, why, why_len)) < 0)
			return rc;
		snprintf(dir, sizeof(dir), "%s/" BH_CGROUP_TOP, mnt);
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			snprintf(why, why_len, "cannot make %s: %s", dir, strerror(errno));
			return -errno;
		}
		/*
		 * beside the root's own processes the group counts as one: give it the
		 * weight its components would have as processes of their own
		 */
		snprintf(file, sizeof(file), "%s/cpu.weight", dir);
		snprintf(text, sizeof(text), "%u", weight < BH_CPU_WEIGHT_MAX ? weight : BH_CPU_WEIGHT_MAX);
		if ((rc = write_text(AT_FDCWD, file, text)) < 0) {
			snprintf(why, why_len, "cannot set %s to %s: %s", file, text, strerror(-rc));
			return rc;
		}
		cg->moved = false;
	} else {
		/* a cgroup with children that have controllers holds no process: core leaves */
		snprintf(file, sizeof(file), "%s/" BH_CGROUP_CORE, dir);
		if (mkdir(file, 0755) < 0 && errno != EEXIST) {
			snprintf(why, why_len, "cannot make %s: %s", file, strerror(errno));
			return -errno;
		}
		strncat(file, "/cgroup.procs", sizeof(file) - strlen(file) - 1);
		if ((rc = write_text(AT_FDCWD, file, "0")) < 0) {
			snprintf(why, why_len, "cannot move core into %s: %s", file, strerror(-rc));
			snprintf(file, sizeof(file), "%s/" BH_CGROUP_CORE, dir);
			rmdir(file);
			return rc;
		}
		cg->moved = true;
	}
	/* set before enable(): undo() then moves core back */
	snprintf(cg->path, sizeof(cg->path), "%s", dir);
	return enable(dir, available, cg->enabled, sizeof(cg->enabled), why, why_len);
}

/* its cgroup, made once and kept across restarts */
static int make_one(struct bh_cgroups *cg, struct bh_component *c, char *why, size_t why_len)
{
	const struct bh_component_config *cc = c->cfg;
	char dir[PATH_MAX * 2], text[64];
	int rc;

	if (cg->moved && strcmp(cc->name, BH_CGROUP_CORE) == 0) {
		snprintf(why, why_len, "component \"%s\" would share core's own cgroup %s/%s; "
				       "rename the component",
			 cc->name, cg->path, BH_CGROUP_CORE);
		return -EEXIST;
	}
	snprintf(dir, sizeof(dir), "%s/%s", cg->path, cc->name);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		snprintf(why, why_len, "cannot make %s: %s", dir, strerror(errno));
		return -errno;
	}
	c->cgroup = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->cgroup < 0) {
		snprintf(why, why_len, "cannot open %s: %s", dir, strerror(errno));
		return -errno;
	}
	/* left over from a core that was killed is fine; in use by another is not */
	if (read_text(c->cgroup, "cgroup.events", text, sizeof(text)) == 0 &&
	    strstr(text, "populated 1")) {
		snprintf(why, why_len, "%s holds processes already (another bulkhead-core with a "
				       "component \"%s\"?)",
			 dir, cc->name);
		close(c->cgroup);
		c->cgroup = -1; /* not ours to remove */
		return -EBUSY;
	}
	snprintf(text, sizeof(text), "%u", cc->cpu_weight);
	rc = write_text(c->cgroup, "cpu.weight", text);
	if (rc == 0) {
		bh_cgroup_cpu_max(cc->cpu_percent, text, sizeof(text));
		rc = write_text(c->cgroup, "cpu.max", text);
	}
	if (rc < 0)
		snprintf(why, why_len, "cannot set %s/%s to '%s': %s", dir,
			 strchr(text, ' ') ? "cpu.max" : "cpu.weight", text, strerror(-rc));
	return rc;
}

static void remove_dir(const char *dir)
{
	/* the kernel lets go of an exited process's cgroup shortly after the reap */
	for (int i = 0; i < 100; i++) {
		struct timespec ms10 = { .tv_nsec = 10000000 };

		if (rmdir(dir) == 0 || errno == ENOENT)
			return;
		if (errno != EBUSY)
			break;
		nanosleep(&ms10, NULL);
	}
	bh_log("cannot remove cgroup %s: %s", dir, strerror(errno));
}

/* take back what find_place and make_one did */
static void undo(struct bh_core_state *core)
{
	struct bh_cgroups *cg = &core->cgroups;
	char dir[PATH_MAX * 2], op[16];

	for (int i = 0; i < core->ncomp; i++) {
		struct bh_component *c = &core->comp[i];

		if (c->cgroup < 0)
			continue;
		close(c->cgroup);
		c->cgroup = -1;
		snprintf(dir, sizeof(dir), "%s/%s", cg->path, c->cfg->name);
		remove_dir(dir);
	}
	if (!cg->path[0])
		return;
	if (cg->moved) {
		/* back where it came from, as it was */
		snprintf(dir, sizeof(dir), "%s/cgroup.subtree_control", cg->path);
		for (char *s = cg->enabled; *s; s += strcspn(s, " "), s += *s == ' ') {
			snprintf(op, sizeof(op), "-%.*s", (int)strcspn(s, " "), s);
			write_text(AT_FDCWD, dir, op);
		}
		snprintf(dir, sizeof(dir), "%s/cgroup.procs", cg->path);
		write_text(AT_FDCWD, dir, "0");
		snprintf(dir, sizeof(dir), "%s/" BH_CGROUP_CORE, cg->path);
	} else {
		snprintf(dir, sizeof(dir), "%s", cg->path);
	}
	remove_dir(dir);
	cg->path[0] = 0;
	cg->moved = false;
}

void bh_cgroup_fini(struct bh_core_state *core)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s", core->cgroups.path);
	undo(core);
	if (path[0])
		bh_log("cgroups: removed the components' cgroups in %s", path);
}

int bh_cgroup_init(struct bh_core_state *core, char *err, size_t err_len)
{
	struct bh_cgroups *cg = &core->cgroups;
	uint32_t weight = 0;
	char why[768];
	int rc;

	memset(cg, 0, sizeof(*cg));
	for (int i = 0; i < core->ncomp; i++) {
		core->comp[i].cgroup = -1;
		weight += core->comp[i].cfg->cpu_weight;
	}
	rc = find_place(cg, weight ? weight : BH_CPU_WEIGHT_DEFAULT, why, sizeof(why));
	for (int i = 0; rc == 0 && i < core->ncomp; i++)
		rc = make_one(cg, &core->comp[i], why, sizeof(why));
	if (rc == 0) {
		bh_log("cgroups: components run in %s/NAME (controllers: %s)%s%s%s", cg->path,
		       cg->enabled, cg->moved ? "; core moved itself into " : "",
		       cg->moved ? cg->path : "", cg->moved ? "/" BH_CGROUP_CORE : "");
		return 0;
	}
	undo(core);
	/* a limit the config asks for is not silently dropped */
	for (int i = 0; i < core->ncomp; i++) {
		const struct bh_component_config *cc = core->comp[i].cfg;
		int line = cc->cpu_line ? cc->cpu_line : cc->cpu_weight_line;

		if (!line)
			continue;
		snprintf(err, err_len, "%s:%d: [component \"%s\"] %s needs cgroup v2 with the cpu "
				       "controller, and %s; fix that, or remove the key to run "
				       "without CPU limits",
			 core->cfg.path, line, cc->name, cc->cpu_line ? "cpu" : "cpu_weight", why);
		return -ENOTSUP;
	}
	bh_log("WARNING: components run WITHOUT CPU accounting, weights or limits: %s", why);
	return 0;
}

void bh_cgroup_describe(const struct bh_component *c, char *buf, size_t len)
{
	char text[512], max[16] = "max";
	int64_t usec = -1;

	if (c->cgroup < 0) {
		snprintf(buf, len, " cpu_ms=- cpu_weight=- cpu_max=-");
		return;
	}
	if (read_text(c->cgroup, "cpu.stat", text, sizeof(text)) == 0)
		usec = bh_cgroup_parse_usage(text);
	if (c->cfg->cpu_percent)
		snprintf(max, sizeof(max), "%u%%", c->cfg->cpu_percent);
	if (usec < 0)
		snprintf(buf, len, " cpu_ms=- cpu_weight=%u cpu_max=%s", c->cfg->cpu_weight, max);
	else
		snprintf(buf, len, " cpu_ms=%" PRId64 " cpu_weight=%u cpu_max=%s", usec / 1000,
			 c->cfg->cpu_weight, max);
}
