// SPDX-License-Identifier: MIT
/* Is the host using a PCI device? Checked against a fake sysfs, mountinfo and swaps. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "pci.h"
#include "testutil.h"

struct fixture {
	char root[PATH_MAX];
	char sysfs[PATH_MAX];
	char mountinfo[PATH_MAX];
	char swaps[PATH_MAX];
	struct bh_host host;
	char why[256];
};

/* the host's own disk and network, as mountinfo shows them */
static const char mountinfo_base[] =
	"21 26 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
	"22 26 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
	"26 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n"
	"30 26 254:10 / /data rw,relatime shared:9 - ext4 /dev/vdb rw\n";

static const char swaps_header[] = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";

static int host_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	*state = f;
	if (test_mkdtemp(f->root, "hostuse"))
		return -1;
	snprintf(f->sysfs, sizeof(f->sysfs), "%s/sys", f->root);
	snprintf(f->mountinfo, sizeof(f->mountinfo), "%s/mountinfo", f->root);
	snprintf(f->swaps, sizeof(f->swaps), "%s/swaps", f->root);
	f->host.sysfs = f->sysfs;
	f->host.mountinfo = f->mountinfo;
	f->host.swaps = f->swaps;
	if (test_mkdirs("%s/bus/pci/devices", f->sysfs) || test_mkdirs("%s/class/block", f->sysfs) ||
	    test_mkdirs("%s/class/net", f->sysfs) || test_mkdirs("%s/class/tty/console", f->sysfs))
		return -1;
	if (test_write_file(f->mountinfo, mountinfo_base) || test_write_file(f->swaps, swaps_header))
		return -1;
	return 0;
}

static int host_teardown(void **state)
{
	struct fixture *f = *state;

	test_rmtree(f->root);
	free(f);
	return 0;
}

static void write_at(struct fixture *f, const char *rel, const char *text)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", f->sysfs, rel);
	assert_int_equal(test_write_file(path, text), 0);
}

/* sys/devices/pci0000:00/ADDR, and bus/pci/devices/ADDR linking to it as sysfs does */
static void add_device(struct fixture *f, const char *addr)
{
	char path[PATH_MAX], target[PATH_MAX];

	assert_int_equal(test_mkdirs("%s/devices/pci0000:00/%s", f->sysfs, addr), 0);
	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s", f->sysfs, addr);
	snprintf(target, sizeof(target), "../../../devices/pci0000:00/%s", addr);
	assert_int_equal(symlink(target, path), 0);
}

/* a class/CLS/NAME entry for a directory REL below the device at ADDR */
static void add_class_entry(struct fixture *f, const char *cls, const char *name,
			    const char *addr, const char *rel)
{
	char path[PATH_MAX], target[PATH_MAX];

	assert_int_equal(test_mkdirs("%s/devices/pci0000:00/%s/%s", f->sysfs, addr, rel), 0);
	snprintf(path, sizeof(path), "%s/class/%s/%s", f->sysfs, cls, name);
	snprintf(target, sizeof(target), "../../devices/pci0000:00/%s/%s", addr, rel);
	assert_int_equal(symlink(target, path), 0);
}

/* a disk (or partition) at REL below the device, with its maj:min */
static void add_block(struct fixture *f, const char *addr, const char *name, const char *rel,
		      const char *devno)
{
	char file[PATH_MAX], text[32];

	add_class_entry(f, "block", name, addr, rel);
	snprintf(file, sizeof(file), "devices/pci0000:00/%s/%s/dev", addr, rel);
	snprintf(text, sizeof(text), "%s\n", devno);
	write_at(f, file, text);
}

static void add_nic(struct fixture *f, const char *addr, const char *name, const char *flags)
{
	char rel[64], file[PATH_MAX], text[32];

	snprintf(rel, sizeof(rel), "net/%s", name);
	add_class_entry(f, "net", name, addr, rel);
	snprintf(file, sizeof(file), "devices/pci0000:00/%s/%s/flags", addr, rel);
	snprintf(text, sizeof(text), "%s\n", flags);
	write_at(f, file, text);
}

static void set_boot_vga(struct fixture *f, const char *addr, const char *value)
{
	char file[PATH_MAX];

	snprintf(file, sizeof(file), "devices/pci0000:00/%s/boot_vga", addr);
	write_at(f, file, value);
}

/* a virtio disk vda on 00:02.0 with partitions vda1 and vda2, nothing mounted yet */
static void add_virtio_disk(struct fixture *f)
{
	add_device(f, "0000:00:02.0");
	add_block(f, "0000:00:02.0", "vda", "virtio0/block/vda", "254:0");
	add_block(f, "0000:00:02.0", "vda1", "virtio0/block/vda/vda1", "254:1");
	add_block(f, "0000:00:02.0", "vda2", "virtio0/block/vda/vda2", "254:2");
}

static void append(const char *path, const char *text)
{
	FILE *fp = fopen(path, "ae");

	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
}

static int host_use(struct fixture *f, const char *addr)
{
	memset(f->why, 0, sizeof(f->why));
	return bh_pci_host_use(&f->host, addr, f->why, sizeof(f->why));
}

static void assert_why(struct fixture *f, const char *s)
{
	if (!strstr(f->why, s))
		fail_msg("why = \"%s\" does not contain \"%s\"", f->why, s);
}

static void test_disk_mounted(void **state)
{
	struct fixture *f = *state;

	add_virtio_disk(f);
	assert_int_equal(host_use(f, "0000:00:02.0"), 0);
	append(f->mountinfo, "40 26 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n");
	assert_int_equal(host_use(f, "0000:00:02.0"), 1);
	assert_why(f, "disk vda ");
	assert_why(f, "mounted on /");
}

static void test_partition_mounted(void **state)
{
	struct fixture *f = *state;

	add_virtio_disk(f);
	append(f->mountinfo, "41 26 254:1 / /boot rw,relatime shared:2 - ext4 /dev/vda1 rw\n");
	assert_int_equal(host_use(f, "0000:00:02.0"), 1);
	assert_why(f, "vda1");
	assert_why(f, "mounted on /boot");
}

static void test_swap(void **state)
{
	struct fixture *f = *state;

	add_virtio_disk(f);
	append(f->swaps, "/dev/vda2                               partition\t1048572\t\t0\t\t-2\n");
	assert_int_equal(host_use(f, "0000:00:02.0"), 1);
	assert_why(f, "vda2");
	assert_why(f, "swap");
}

static void test_swap_on_other_disk(void **state)
{
	struct fixture *f = *state;

	add_virtio_disk(f);
	/* vda20 is not vda2, and a swap file is not a disk */
	append(f->swaps, "/dev/vda20 partition 1048572 0 -2\n/swapfile file 1048572 0 -3\n");
	assert_int_equal(host_use(f, "0000:00:02.0"), 0);
}

static void test_similar_devno_not_mounted(void **state)
{
	struct fixture *f = *state;

	/* mountinfo_base mounts 254:10 and 8:1: neither is 254:1 nor 254:0 */
	add_virtio_disk(f);
	assert_int_equal(host_use(f, "0000:00:02.0"), 0);
	assert_string_equal(f->why, "");
}

static void test_held_by_dm(void **state)
{
	struct fixture *f = *state;

	add_virtio_disk(f);
	assert_int_equal(test_mkdirs("%s/devices/pci0000:00/0000:00:02.0/virtio0/block/vda/vda2/"
				     "holders/dm-0",
				     f->sysfs),
			 0);
	assert_int_equal(host_use(f, "0000:00:02.0"), 1);
	assert_why(f, "vda2");
	assert_why(f, "held by dm-0");
}

static void test_nic(void **state)
{
	struct fixture *f = *state;

	add_device(f, "0000:00:03.0");
	add_nic(f, "0000:00:03.0", "eth0", "0x1002"); /* IFF_BROADCAST|IFF_MULTICAST, down */
	assert_int_equal(host_use(f, "0000:00:03.0"), 0);
	write_at(f, "devices/pci0000:00/0000:00:03.0/net/eth0/flags", "0x1003\n"); /* IFF_UP */
	assert_int_equal(host_use(f, "0000:00:03.0"), 1);
	assert_why(f, "interface eth0 is up");
}

static void test_console_serial(void **state)
{
	struct fixture *f = *state;

	add_device(f, "0000:00:06.0");
	add_class_entry(f, "tty", "ttyS4", "0000:00:06.0", "tty/ttyS4");
	write_at(f, "class/tty/console/active", "tty0 ttyS0\n");
	assert_int_equal(host_use(f, "0000:00:06.0"), 0);
	write_at(f, "class/tty/console/active", "tty0 ttyS4\n");
	assert_int_equal(host_use(f, "0000:00:06.0"), 1);
	assert_why(f, "ttyS4 is the system console");
}

static void test_boot_vga(void **state)
{
	struct fixture *f = *state;

	add_device(f, "0000:00:01.0");
	set_boot_vga(f, "0000:00:01.0", "0\n");
	assert_int_equal(host_use(f, "0000:00:01.0"), 0);
	set_boot_vga(f, "0000:00:01.0", "1\n");
	assert_int_equal(host_use(f, "0000:00:01.0"), 1);
	assert_why(f, "boot display");
}

static void test_unused_device(void **state)
{
	struct fixture *f = *state;

	/* the host uses 00:02.0 (disk), 00:03.0 (nic) and 00:01.0 (console) ... */
	add_virtio_disk(f);
	append(f->mountinfo, "40 26 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n");
	add_device(f, "0000:00:03.0");
	add_nic(f, "0000:00:03.0", "eth0", "0x1003");
	add_device(f, "0000:00:01.0");
	set_boot_vga(f, "0000:00:01.0", "1\n");
	/* ... but not the edu device, or a nic that is down */
	add_device(f, "0000:00:04.0");
	add_device(f, "0000:00:05.0");
	add_nic(f, "0000:00:05.0", "eth1", "0x1002");
	set_boot_vga(f, "0000:00:05.0", "0\n");

	assert_int_equal(host_use(f, "0000:00:02.0"), 1);
	assert_int_equal(host_use(f, "0000:00:03.0"), 1);
	assert_int_equal(host_use(f, "0000:00:01.0"), 1);
	assert_int_equal(host_use(f, "0000:00:04.0"), 0);
	assert_int_equal(host_use(f, "0000:00:05.0"), 0);
}

static void test_no_proc_files(void **state)
{
	struct fixture *f = *state;

	/* unreadable mountinfo and swaps: nothing is known to be mounted */
	add_virtio_disk(f);
	assert_int_equal(unlink(f->mountinfo), 0);
	assert_int_equal(unlink(f->swaps), 0);
	assert_int_equal(host_use(f, "0000:00:02.0"), 0);
}

static void test_missing_device(void **state)
{
	struct fixture *f = *state;
	char link[PATH_MAX];

	add_device(f, "0000:00:04.0");
	assert_int_equal(host_use(f, "0000:00:09.0"), -ENODEV);
	assert_why(f, "0000:00:09.0");
	/* a dangling link is no device either */
	snprintf(link, sizeof(link), "%s/bus/pci/devices/0000:00:0a.0", f->sysfs);
	assert_int_equal(symlink("../../../devices/pci0000:00/0000:00:0a.0", link), 0);
	assert_int_equal(host_use(f, "0000:00:0a.0"), -ENODEV);
	assert_why(f, "no PCI device 0000:00:0a.0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, host_setup, host_teardown)
		T(test_disk_mounted),
		T(test_partition_mounted),
		T(test_swap),
		T(test_swap_on_other_disk),
		T(test_similar_devno_not_mounted),
		T(test_held_by_dm),
		T(test_nic),
		T(test_boot_vga),
		T(test_console_serial),
		T(test_unused_device),
		T(test_no_proc_files),
		T(test_missing_device),
#undef T
	};

	return cmocka_run_group_tests_name("hostuse", tests, NULL, NULL);
}
