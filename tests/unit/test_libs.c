// SPDX-License-Identifier: MIT
/* core/libs.c: what a dynamic component's root holds, from its ELF. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libs.h"

static struct bh_libs libs;

static int has(const char *suffix)
{
	for (int i = 0; i < libs.n; i++) {
		size_t n = strlen(libs.path[i]), k = strlen(suffix);
		if (n >= k && !strcmp(libs.path[i] + n - k, suffix))
			return 1;
	}
	return 0;
}

/* this test is itself dynamic: the loader first, libc and cmocka, each once */
static void own_closure(void **state)
{
	char err[256] = "";

	(void)state;
	assert_int_equal(bh_libs_closure("/proc/self/exe", &libs, err, sizeof(err)), 0);
	assert_true(libs.n >= 3);
	assert_string_equal(libs.path[0], "/lib64/ld-linux-x86-64.so.2");
	assert_true(has("/libc.so.6"));
	assert_true(has("/libcmocka.so.0"));
	/* libc's DT_NEEDED of the loader is the loader itself, not a second copy */
	for (int i = 1; i < libs.n; i++)
		assert_null(strstr(libs.path[i], "ld-linux"));
	for (int i = 0; i < libs.n; i++) {
		assert_int_equal(access(libs.path[i], R_OK), 0);
		for (int k = 0; k < i; k++)
			assert_string_not_equal(libs.path[i], libs.path[k]);
	}
}

/* a static program gets nothing more */
static void static_program(void **state)
{
	char err[256] = "";

	(void)state;
	if (access("/bin/busybox", R_OK))
		skip();
	assert_int_equal(bh_libs_closure("/bin/busybox", &libs, err, sizeof(err)), 0);
	assert_int_equal(libs.n, 0);
}

/* what core itself reads: whether there is a loader to give */
static void dynamic_or_not(void **state)
{
	char err[256] = "";

	(void)state;
	assert_int_equal(bh_libs_dynamic("/proc/self/exe", err, sizeof(err)), 1);
	if (!access("/bin/busybox", R_OK))
		assert_int_equal(bh_libs_dynamic("/bin/busybox", err, sizeof(err)), 0);
	assert_true(bh_libs_dynamic("/etc/hostname", err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "/etc/hostname: not an ELF program"));
}

/* not an ELF file, or no file: the error names it */
static void not_elf(void **state)
{
	char err[256] = "";

	(void)state;
	assert_true(bh_libs_closure("/etc/hostname", &libs, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "/etc/hostname: not an ELF file"));
	assert_true(bh_libs_closure("/nonexistent/x", &libs, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "/nonexistent/x"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(own_closure),
		cmocka_unit_test(static_program),
		cmocka_unit_test(not_elf),
		cmocka_unit_test(dynamic_or_not),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
