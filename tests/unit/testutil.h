/* SPDX-License-Identifier: MIT */
/* Small helpers shared by the unit tests: temp trees, files, fd counting. */
#ifndef BH_TEST_UTIL_H
#define BH_TEST_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* number of open fds of this process (the directory stream's own fd included) */
static inline int test_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static inline int test_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* rm -rf dir; a no-op for NULL or "" */
static inline void test_rmtree(const char *dir)
{
	if (dir && dir[0])
		nftw(dir, test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* a fresh directory /tmp/bh-unit-<what>-XXXXXX into buf (PATH_MAX); 0 or -errno */
static inline int test_mkdtemp(char *buf, const char *what)
{
	snprintf(buf, PATH_MAX, "/tmp/bh-unit-%s-XXXXXX", what);
	return mkdtemp(buf) ? 0 : -errno;
}

/* mkdir -p of a path built like printf; 0 or -errno */
__attribute__((format(printf, 1, 2))) static inline int test_mkdirs(const char *fmt, ...)
{
	char path[PATH_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* write text to path (creating its directories); 0 or -errno */
static inline int test_write_file(const char *path, const char *text)
{
	char dir[PATH_MAX];
	char *slash;
	FILE *f;
	int rc;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		rc = test_mkdirs("%s", dir);
		if (rc)
			return rc;
	}
	f = fopen(path, "we");
	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) == 0 ? 0 : -errno;
}

#endif
