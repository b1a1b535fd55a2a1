// SPDX-License-Identifier: MIT
/*
 * dynlib-probe: a dynamically linked component (zlib, libc), for
 * tests/vm/dynlib.sh. Its root should hold its loader and exactly the
 * closure of its libraries, read-only; openat should work only until its
 * first request to core. Before main (a constructor: the loader's phase),
 * it opens the libz it was loaded with, a library that is not in its
 * closure and a host file; in main, after core's hello, the same libz
 * again. It prints "dynlib-probe: check NAME PASS|FAIL detail" per check
 * and "dynlib-probe: done".
 */
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "bulkhead/bulkhead.h"

static char libz[256];
static int early_libz, early_png, early_passwd, early_write;

/* the path the loader found libz at */
static int find_libz(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size, (void)arg;
	if (strstr(info->dlpi_name, "/libz.so"))
		snprintf(libz, sizeof(libz), "%s", info->dlpi_name);
	return 0;
}

/* open path read-only: 0, or the errno */
static int try_open(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);

	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

__attribute__((constructor)) static void before_main(void)
{
	dl_iterate_phdr(find_libz, NULL);
	early_libz = try_open(libz, O_RDONLY);
	early_png = try_open("/lib/x86_64-linux-gnu/libpng16.so.16", O_RDONLY);
	early_passwd = try_open("/etc/passwd", O_RDONLY);
	early_write = try_open(libz, O_RDWR);
}

static void check(const char *name, int ok, const char *fmt, const char *a, int e)
{
	char detail[400];

	snprintf(detail, sizeof(detail), fmt, a, e ? strerror(e) : "opened");
	printf("dynlib-probe: check %s %s %s\n", name, ok ? "PASS" : "FAIL", detail);
}

int main(void)
{
	struct bh_core core;
	int late;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (bh_core_open(&core) < 0) {
		fprintf(stderr, "dynlib-probe: %s\n", bh_error(&core));
		return 1;
	}
	late = try_open(libz, O_RDONLY);
	check("loaded", libz[0] && zlibVersion()[0], "the loader found libz at %s: %s", libz, 0);
	printf("dynlib-probe: zlib %s from %s\n", zlibVersion(), libz);
	check("own_library_before_start", early_libz == 0, "before main, open(%s): %s", libz,
	      early_libz);
	check("library_outside_closure", early_png == ENOENT, "before main, open(%s): %s",
	      "/lib/x86_64-linux-gnu/libpng16.so.16", early_png);
	check("host_file", early_passwd == ENOENT, "before main, open(%s): %s", "/etc/passwd",
	      early_passwd);
	check("library_read_only", early_write == EROFS, "before main, open(%s, O_RDWR): %s", libz,
	      early_write);
	check("open_after_start", late == ENOSYS || late == EPERM,
	      "after core's hello, open(%s): %s", libz, late);
	printf("dynlib-probe: done\n");
	bh_core_close(&core);
	return 0;
}
