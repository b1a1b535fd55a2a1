// SPDX-License-Identifier: MIT
/* core/cgroup.c's pure parts: reading /proc's cgroup files, and writing cpu.max. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "cgroup.h"

static void test_self(void **state)
{
	char path[64];

	(void)state;
	/* pure v2 */
	assert_int_equal(bh_cgroup_parse_self("0::/\n", path, sizeof(path)), 0);
	assert_string_equal(path, "/");
	assert_int_equal(bh_cgroup_parse_self("0::/system.slice/bulkhead.service\n", path,
					      sizeof(path)),
			 0);
	assert_string_equal(path, "/system.slice/bulkhead.service");
	/* hybrid: the v2 line among v1 ones, and no newline at the end */
	assert_int_equal(bh_cgroup_parse_self("12:cpu,cpuacct:/x\n1:name=systemd:/y\n0::/z", path,
					      sizeof(path)),
			 0);
	assert_string_equal(path, "/z");
	/* v1 only, or nothing */
	assert_int_equal(bh_cgroup_parse_self("4:memory:/a\n2:cpu:/\n", path, sizeof(path)),
			 -ENOENT);
	assert_int_equal(bh_cgroup_parse_self("", path, sizeof(path)), -ENOENT);
	/* "0::" must start a line */
	assert_int_equal(bh_cgroup_parse_self("10::/x\n", path, sizeof(path)), -ENOENT);
	assert_int_equal(bh_cgroup_parse_self("0::/a-rather-long-path\n", path, 8), -ENAMETOOLONG);
}

static void test_mount_line(void **state)
{
	char mnt[64];

	(void)state;
	assert_true(bh_cgroup_mount_line("35 24 0:30 / /sys/fs/cgroup rw,nosuid shared:9 - "
					 "cgroup2 cgroup2 rw,nsdelegate\n",
					 mnt, sizeof(mnt)));
	assert_string_equal(mnt, "/sys/fs/cgroup");
	/* hybrid: v2 beside v1 */
	assert_true(bh_cgroup_mount_line("41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - "
					 "cgroup2 cgroup2 rw",
					 mnt, sizeof(mnt)));
	assert_string_equal(mnt, "/sys/fs/cgroup/unified");
	/* v1 and other file systems are not it */
	assert_false(bh_cgroup_mount_line("32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu",
					  mnt, sizeof(mnt)));
	assert_false(bh_cgroup_mount_line("31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw", mnt,
					  sizeof(mnt)));
	/* a mount point with an escaped space, a line without a separator */
	assert_false(bh_cgroup_mount_line("1 2 0:3 / /a\\040b rw - cgroup2 cgroup2 rw", mnt,
					  sizeof(mnt)));
	assert_false(bh_cgroup_mount_line("1 2 0:3 / /x rw cgroup2", mnt, sizeof(mnt)));
	assert_false(bh_cgroup_mount_line("", mnt, sizeof(mnt)));
	assert_false(bh_cgroup_mount_line("1 2 0:3 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw", mnt,
					  8));
}

static void test_cpu_max(void **state)
{
	char buf[32];

	(void)state;
	bh_cgroup_cpu_max(0, buf, sizeof(buf));
	assert_string_equal(buf, "max 100000");
	bh_cgroup_cpu_max(50, buf, sizeof(buf));
	assert_string_equal(buf, "50000 100000");
	bh_cgroup_cpu_max(1, buf, sizeof(buf));
	assert_string_equal(buf, "1000 100000"); /* the kernel's smallest quota, 1 ms */
	bh_cgroup_cpu_max(150, buf, sizeof(buf));
	assert_string_equal(buf, "150000 100000");
	bh_cgroup_cpu_max(10000, buf, sizeof(buf));
	assert_string_equal(buf, "10000000 100000");
}

static void test_usage(void **state)
{
	(void)state;
	assert_int_equal(bh_cgroup_parse_usage("usage_usec 123456\nuser_usec 100000\n"
					       "system_usec 23456\n"),
			 123456);
	/* with the cpu controller, more lines follow; the order is not promised */
	assert_int_equal(bh_cgroup_parse_usage("user_usec 1\nusage_usec 7\nnr_periods 3\n"
					       "nr_throttled 2\nthrottled_usec 9\n"),
			 7);
	assert_int_equal(bh_cgroup_parse_usage("usage_usec 0"), 0);
	assert_int_equal(bh_cgroup_parse_usage("user_usec 5\n"), -1);
	assert_int_equal(bh_cgroup_parse_usage("usage_usec x\n"), -1);
	assert_int_equal(bh_cgroup_parse_usage("xusage_usec 5\n"), -1);
	assert_int_equal(bh_cgroup_parse_usage(""), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_self),
		cmocka_unit_test(test_mount_line),
		cmocka_unit_test(test_cpu_max),
		cmocka_unit_test(test_usage),
	};

	return cmocka_run_group_tests_name("cgroup", tests, NULL, NULL);
}
