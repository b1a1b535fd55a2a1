// SPDX-License-Identifier: MIT
/* The keys of a driver VM's [component] section (core/vm_config.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "testutil.h"

struct fixture {
	struct bh_config cfg;
	char err[512];
	char dir[PATH_MAX];
	char text[4096];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char path[PATH_MAX + 16];

	if (!f || test_mkdtemp(f->dir, "vm"))
		return -1;
	snprintf(path, sizeof(path), "%s/kernel", f->dir);
	test_write_file(path, "k");
	snprintf(path, sizeof(path), "%s/guest.gz", f->dir);
	test_write_file(path, "i");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	test_rmtree(f->dir);
	free(f);
	return 0;
}

/* a [component "dvm"] with kind = vm, its files, and more keys after them */
static int parse(struct fixture *f, const char *more)
{
	snprintf(f->text, sizeof(f->text),
		 "[component \"dvm\"]\n"
		 "kind = vm\n"
		 "device = 0000:00:02.0\n"
		 "kernel = %s/kernel\n"
		 "initramfs = %s/guest.gz\n"
		 "%s",
		 f->dir, f->dir, more);
	f->err[0] = 0;
	return bh_config_parse_string(f->text, "test.conf", &f->cfg, f->err, sizeof(f->err));
}

static void expect(struct fixture *f, int rc, int line, const char *part)
{
	char prefix[32];

	assert_int_equal(rc, -EINVAL);
	snprintf(prefix, sizeof(prefix), "test.conf:%d: ", line);
	if (strncmp(f->err, prefix, strlen(prefix)) != 0 || !strstr(f->err, part))
		fail_msg("error \"%s\": expected \"%s...%s\"", f->err, prefix, part);
}

static void test_vm_defaults(void **state)
{
	struct fixture *f = *state;
	const struct bh_component_config *c = &f->cfg.comp[0];

	if (parse(f, "modules = e1000e nvme\n"))
		fail_msg("refused: %s", f->err);
	assert_true(c->vm.enabled);
	assert_string_equal(c->exec, BH_VM_QEMU);
	assert_string_equal(c->vm.modules, "e1000e,nvme");
	assert_int_equal(c->vm.memory, BH_VM_MEMORY_DEFAULT);
	assert_int_equal(c->vm.vcpus, 1);
	assert_int_equal(c->vm.boot_ms, BH_VM_BOOT_MS_DEFAULT);
	/* room for QEMU: guest memory, its threads, VFIO's fds */
	assert_true(c->limit_memory > c->vm.memory);
	assert_int_equal(c->limit_procs, 32);
	assert_int_equal(c->limit_fds, 256);
	assert_int_equal(c->nmatch, 1);
}

static void test_vm_keys(void **state)
{
	struct fixture *f = *state;
	const struct bh_component_config *c = &f->cfg.comp[0];

	if (parse(f, "guest_memory = 256M\nvcpus = 2\nguest_append = bulkhead.ip=10.0.0.3/24\n"
		     "boot_ms = 5000\nprocesses = 8\n"))
		fail_msg("refused: %s", f->err);
	assert_int_equal(c->vm.memory, 256ull << 20);
	assert_int_equal(c->vm.vcpus, 2);
	assert_int_equal(c->vm.boot_ms, 5000);
	assert_string_equal(c->vm.append, "bulkhead.ip=10.0.0.3/24");
	assert_int_equal(c->limit_procs, 8); /* what the section says stands */
}

static void test_vm_errors(void **state)
{
	struct fixture *f = *state;

	expect(f, parse(f, "guest_memory = 1M\n"), 6, "guest_memory = '1M': whole MiB from 32M");
	expect(f, parse(f, "vcpus = 0\n"), 6, "vcpus = '0': a whole number from 1");
	expect(f, parse(f, "modules = e1000e;reboot\n"), 6, "kernel module names");
	expect(f, parse(f, "guest_append = a\"b\n"), 6, "without quotes");
	expect(f, parse(f, "kernel = \n"), 6, "kernel is empty");
	expect(f, bh_config_parse_string("[component \"x\"]\nkind = container\n", "test.conf",
					 &f->cfg, f->err, sizeof(f->err)),
	       2, "expected 'process'");
	/* a VM needs its kernel and initramfs, and they must be there */
	expect(f, bh_config_parse_string("[component \"x\"]\nkind = vm\n", "test.conf", &f->cfg,
					 f->err, sizeof(f->err)),
	       2, "give 'kernel = FILE' and 'initramfs = FILE'");
	expect(f, bh_config_parse_string("[component \"x\"]\nkind = vm\nkernel = /nonexistent/k\n"
					 "initramfs = /nonexistent/i\n",
					 "test.conf", &f->cfg, f->err, sizeof(f->err)),
	       2, "/nonexistent/k is not a readable file");
	/* guest keys on a process are a mistake, not ignored */
	expect(f, bh_config_parse_string("[component \"x\"]\nexec = /bin/true\nmodules = e1000e\n",
					 "test.conf", &f->cfg, f->err, sizeof(f->err)),
	       1, "but no 'kind = vm'");
}

/* vm_nic = VM: the server of a VM's NIC names it; the VM itself may not */
static void test_vm_nic(void **state)
{
	struct fixture *f = *state;

	if (parse(f, "\n[component \"vm-nic\"]\nexec = /bin/true\nvm_nic = dvm\nprovides = nic\n"))
		fail_msg("refused: %s", f->err);
	assert_string_equal(f->cfg.comp[1].vm.nic_of, "dvm");
	assert_false(f->cfg.comp[1].vm.enabled);
	assert_string_equal(f->cfg.comp[0].vm.nic_of, "");
	expect(f, parse(f, "vm_nic = dvm\n"), 2, "vm_nic belongs in the section of the server");
	expect(f, parse(f, "\n[component \"v\"]\nexec = /bin/true\nvm_nic = a/b\n"), 9,
	       "vm_nic = 'a/b': the name of a [component] with kind = vm");
}

/* vm_blk = VM: the same for the server of a VM's disk; one server serves one channel */
static void test_vm_blk(void **state)
{
	struct fixture *f = *state;

	if (parse(f, "\n[component \"vm-blk\"]\nexec = /bin/true\nvm_blk = dvm\nprovides = block\n"))
		fail_msg("refused: %s", f->err);
	assert_string_equal(f->cfg.comp[1].vm.blk_of, "dvm");
	assert_string_equal(f->cfg.comp[1].vm.nic_of, "");
	expect(f, parse(f, "vm_blk = dvm\n"), 2, "vm_blk belongs in the section of the server");
	expect(f, parse(f, "\n[component \"v\"]\nexec = /bin/true\nvm_nic = dvm\nvm_blk = dvm\n"),
	       10, "vm_blk = 'dvm': this component already serves a VM's NIC");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_vm_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vm_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vm_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vm_nic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vm_blk, setup, teardown),
	};
	return cmocka_run_group_tests_name("vm_config", tests, NULL, NULL);
}
