// SPDX-License-Identifier: MIT
/* The system config parser: every field of a valid config, and every mistake's message. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulkhead/legacy.h"
#include "config.h"
#include "testutil.h"

struct fixture {
	struct bh_config cfg;
	char err[512];
	char dir[PATH_MAX];
};

static int cfg_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	*state = f;
	return 0;
}

static int cfg_teardown(void **state)
{
	struct fixture *f = *state;

	test_rmtree(f->dir);
	free(f);
	return 0;
}

static void parse_ok(struct fixture *f, const char *text)
{
	f->err[0] = 0;
	if (bh_config_parse_string(text, "test.conf", &f->cfg, f->err, sizeof(f->err)) != 0)
		fail_msg("config refused: %s", f->err);
}

/* the text must be refused as "test.conf:LINE: ..." with every string of the NULL-ended list */
static void expect_error(struct fixture *f, const char *text, int line, ...)
{
	char prefix[64];
	const char *s;
	va_list ap;

	memset(f->err, 0, sizeof(f->err));
	assert_int_equal(bh_config_parse_string(text, "test.conf", &f->cfg, f->err,
						sizeof(f->err)),
			 -EINVAL);
	snprintf(prefix, sizeof(prefix), "test.conf:%d: ", line);
	if (strncmp(f->err, prefix, strlen(prefix)) != 0)
		fail_msg("error \"%s\" does not start with \"%s\"", f->err, prefix);
	va_start(ap, line);
	while ((s = va_arg(ap, const char *)))
		if (!strstr(f->err, s))
			fail_msg("error \"%s\" does not contain \"%s\"", f->err, s);
	va_end(ap);
}

static const char full_config[] =
	"# the whole system\n"
	"[core]\n"
	"backend = vfio\n"
	"control = /run/test/core.sock\n"
	"\n"
	"[component \"nic\"]\n"
	"exec = /usr/lib/bulkhead/bulkhead-e1000e\n"
	"args = --mac 52:54:00:12:34:56\t -v  \n"
	"env = LOG=debug\n"
	"env = EQ=a=b\n"
	"device = ethernet\n"
	"device = 8086:10D3\n"
	"device = 0000:00:1F.3 take-from-host\n"
	"device = 0000:00:03.0\n"
	"ioport = 0x40-0x43\n"
	"ioport = 0x3f8\n"
	"ioport = 0x2f8-0x2ff\n"
	"restart = always\n"
	"memory = 128M\n"
	"dma = 16K\n"
	"fds = 128\n"
	"processes = 4\n"
	"user = auto\n"
	"max_restarts = 3\n"
	"backoff_ms = 200\n"
	"backoff_max_ms = 50\n"
	"watchdog_ms = 1000\n"
	"\n"
	"; a second one, mostly defaults\n"
	"[component \"blk-0_x\"]\n"
	"exec = drivers/nvme/bulkhead-nvme\n"
	"device = nvme\n"
	"user = 1234\n"
	"memory = 512k\n"
	"dma = 2G\n"
	"restart = never\n"
	"\n"
	"[component \"edu\"]\n"
	"exec = edu\n"
	"device = other\n"
	"restart = on-failure\n"
	"memory = 1048576\n"
	"dma = 0x200000\n";

static void test_full_config(void **state)
{
	struct fixture *f = *state;
	struct bh_config *cfg = &f->cfg;
	const struct bh_component_config *c;

	parse_ok(f, full_config);
	assert_string_equal(cfg->path, "test.conf");
	assert_int_equal(cfg->backend, BH_BACKEND_VFIO);
	assert_string_equal(cfg->control, "/run/test/core.sock");
	assert_int_equal(cfg->ncomp, 3);

	c = &cfg->comp[0];
	assert_string_equal(c->name, "nic");
	assert_int_equal(c->line, 6);
	assert_string_equal(c->exec, "/usr/lib/bulkhead/bulkhead-e1000e");
	assert_int_equal(c->argc, 3);
	assert_string_equal(c->argv[0], "--mac");
	assert_string_equal(c->argv[1], "52:54:00:12:34:56");
	assert_string_equal(c->argv[2], "-v");
	assert_int_equal(c->envc, 2);
	assert_string_equal(c->env[0], "LOG=debug");
	assert_string_equal(c->env[1], "EQ=a=b");

	assert_int_equal(c->nmatch, 4);
	assert_int_equal(c->match[0].kind, BH_MATCH_CLASS);
	assert_int_equal(c->match[0].class_code, 0x020000);
	assert_int_equal(c->match[0].class_mask, 0xffff00);
	assert_false(c->match[0].take_from_host);
	assert_int_equal(c->match[0].line, 11);
	assert_int_equal(c->match[1].kind, BH_MATCH_ID);
	assert_int_equal(c->match[1].vendor, 0x8086);
	assert_int_equal(c->match[1].device, 0x10d3);
	assert_false(c->match[1].take_from_host);
	assert_int_equal(c->match[1].line, 12);
	assert_int_equal(c->match[2].kind, BH_MATCH_ADDRESS);
	assert_string_equal(c->match[2].address, "0000:00:1f.3"); /* lower-cased like sysfs */
	assert_true(c->match[2].take_from_host);
	assert_int_equal(c->match[2].line, 13);
	assert_int_equal(c->match[3].kind, BH_MATCH_ADDRESS);
	assert_string_equal(c->match[3].address, "0000:00:03.0");
	assert_false(c->match[3].take_from_host);

	assert_int_equal(c->nisa, 3);
	assert_int_equal(c->isa[0].base, 0x40);
	assert_int_equal(c->isa[0].count, 4);
	assert_int_equal(c->isa[1].base, 0x3f8);
	assert_int_equal(c->isa[1].count, 1);
	assert_int_equal(c->isa[2].base, 0x2f8);
	assert_int_equal(c->isa[2].count, 8);

	assert_int_equal(c->restart, BH_RESTART_ALWAYS);
	assert_int_equal(c->limit_memory, 128ull << 20);
	assert_int_equal(c->dma_quota, 16ull << 10);
	assert_int_equal(c->limit_fds, 128);
	assert_int_equal(c->limit_procs, 4);
	assert_true(c->uid_auto);
	assert_int_equal(c->max_restarts, 3);
	assert_int_equal(c->backoff_ms, 200);
	/* a maximum below the start is raised to it */
	assert_int_equal(c->backoff_max_ms, 200);
	assert_int_equal(c->watchdog_ms, 1000);

	c = &cfg->comp[1];
	assert_string_equal(c->name, "blk-0_x");
	/* parse_string has no file: relative paths are relative to "." */
	assert_string_equal(c->exec, "./drivers/nvme/bulkhead-nvme");
	assert_int_equal(c->argc, 0);
	assert_int_equal(c->envc, 0);
	assert_int_equal(c->nmatch, 1);
	assert_int_equal(c->match[0].kind, BH_MATCH_CLASS);
	assert_int_equal(c->match[0].class_code, 0x010802);
	assert_int_equal(c->match[0].class_mask, 0xffffff);
	assert_int_equal(c->nisa, 0);
	assert_false(c->uid_auto);
	assert_int_equal(c->uid, 1234);
	assert_int_equal(c->gid, 1234);
	assert_int_equal(c->limit_memory, 512ull << 10);
	assert_int_equal(c->dma_quota, 2ull << 30);
	assert_int_equal(c->restart, BH_RESTART_NEVER);
	/* defaults */
	assert_int_equal(c->limit_fds, 64);
	assert_int_equal(c->limit_procs, 1);
	assert_int_equal(c->max_restarts, 10);
	assert_int_equal(c->backoff_ms, 100);
	assert_int_equal(c->backoff_max_ms, 5000);
	assert_int_equal(c->watchdog_ms, 0);

	c = &cfg->comp[2];
	assert_string_equal(c->name, "edu");
	assert_string_equal(c->exec, "./edu");
	assert_int_equal(c->match[0].class_code, 0xff0000);
	assert_int_equal(c->restart, BH_RESTART_ON_FAILURE);
	assert_int_equal(c->limit_memory, 1048576);
	assert_int_equal(c->dma_quota, 0x200000);
	assert_true(c->uid_auto);
}

static void test_defaults(void **state)
{
	struct fixture *f = *state;
	const struct bh_component_config *c;

	/* an empty config is valid: core runs nothing */
	parse_ok(f, "");
	assert_int_equal(f->cfg.ncomp, 0);
	assert_int_equal(f->cfg.backend, BH_BACKEND_AUTO);
	assert_string_equal(f->cfg.control, "/run/bulkhead/core.sock");

	parse_ok(f, "[core]\n[component \"a\"]\nexec=/bin/a\n");
	assert_int_equal(f->cfg.ncomp, 1);
	c = &f->cfg.comp[0];
	assert_int_equal(c->restart, BH_RESTART_ON_FAILURE);
	assert_true(c->uid_auto);
	assert_int_equal(c->limit_memory, 512ull << 20);
	assert_int_equal(c->dma_quota, 64ull << 20);
	assert_int_equal(c->nmatch, 0);
	assert_int_equal(c->nisa, 0);

	parse_ok(f, "[core]\nbackend = uio\n");
	assert_int_equal(f->cfg.backend, BH_BACKEND_UIO);
	parse_ok(f, "[core]\nbackend = auto\n");
	assert_int_equal(f->cfg.backend, BH_BACKEND_AUTO);
	assert_int_equal(f->cfg.hugepages, 0);
	parse_ok(f, "[core]\nhugepages = 64\n");
	assert_int_equal(f->cfg.hugepages, 64);
	/* no newline at the end */
	parse_ok(f, "[component \"a\"]\nexec = /bin/a");
	assert_string_equal(f->cfg.comp[0].exec, "/bin/a");
}

static void test_user_by_name(void **state)
{
	struct fixture *f = *state;

	/* "nobody" exists everywhere, with a uid that is not 0 */
	parse_ok(f, "[component \"a\"]\nexec = /bin/a\nuser = nobody\n");
	assert_false(f->cfg.comp[0].uid_auto);
	assert_int_not_equal(f->cfg.comp[0].uid, 0);
	/* a later line wins */
	parse_ok(f, "[component \"a\"]\nexec = /bin/a\nuser = 77\nuser = auto\n");
	assert_true(f->cfg.comp[0].uid_auto);
}

static void test_error_unknown_key(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "[component \"nic\"]\nexec = /bin/x\ncolour = red\n", 3,
		     "unknown key 'colour'", "[component \"nic\"]", "known keys: exec", NULL);
	expect_error(f, "[core]\nbackend = vfio\nsocket = /x\n", 3, "unknown key 'socket' in [core]",
		     "backend control", NULL);
}

static void test_error_bad_core_values(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "[core]\nbackend = iommu\n", 2, "backend = 'iommu'",
		     "expected auto, vfio or uio", NULL);
	expect_error(f, "[core]\ncontrol = run/core.sock\n", 2, "must be an absolute path", NULL);
	expect_error(f, "[core]\nhugepages = many\n", 2, "hugepages = 'many'", "2 MiB pages",
		     NULL);
	expect_error(f, "[core]\nhugepages = 64M\n", 2, "expected a count", NULL);
	expect_error(f, "[core]\nhugepages = -1\n", 2, "expected a count", NULL);
	expect_error(f, "[core]\nhugepages = 99999\n", 2, "0 to 32768", NULL);
}

static void test_error_unknown_section(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "[core]\n\n[drivers]\nexec = /bin/x\n", 3, "unknown section [drivers]",
		     "[core] and [component \"name\"]", NULL);
	/* an empty bad section is caught too */
	expect_error(f, "[core]\n[component nic]\n", 2, "unknown section [component nic]", NULL);
	expect_error(f, "[component \"a b\"]\nexec = /bin/x\n", 1, "component name 'a b'",
		     "letters, digits", NULL);
	expect_error(f, "[component \"a\"] \n[component \"abcdefghijklmnopqrstuvwxyz0123456789\"]\n",
		     2, "longer than 31 characters", NULL);
}

static void test_error_key_outside_section(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "# comment\nbackend = vfio\n[core]\n", 2, "'backend' outside a section",
		     "put it under [core]", NULL);
}

static void test_error_duplicate_component(void **state)
{
	struct fixture *f = *state;

	expect_error(f,
		     "[component \"nic\"]\nexec = /bin/a\n\n[component \"blk\"]\nexec = /bin/b\n"
		     "[component \"nic\"]\nexec = /bin/c\n",
		     6, "component \"nic\" is defined twice", "first at line 1", NULL);
}

static void test_error_missing_exec(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "[core]\n\n[component \"nic\"]\ndevice = ethernet\n", 3,
		     "component \"nic\" has no exec", NULL);
	expect_error(f, "[component \"nic\"]\nexec =\n", 2, "exec is empty", NULL);
}

static void test_error_bad_device(void **state)
{
	struct fixture *f = *state;
	const char *head = "[component \"nic\"]\nexec = /bin/x\n";
	char text[512];

	snprintf(text, sizeof(text), "%sdevice = ethernat\n", head);
	expect_error(f, text, 3, "device = 'ethernat'", "class name", "ethernet", "nvme", NULL);
	snprintf(text, sizeof(text), "%sdevice = 8086:10d3x\n", head);
	expect_error(f, text, 3, "'8086:10d3x'", NULL);
	snprintf(text, sizeof(text), "%sdevice = 0000:00:20.0\n", head); /* slot 32 */
	expect_error(f, text, 3, "'0000:00:20.0'", NULL);
	snprintf(text, sizeof(text), "%sdevice = 0000:00:03.8\n", head); /* function 8 */
	expect_error(f, text, 3, "'0000:00:03.8'", NULL);
	snprintf(text, sizeof(text), "%sdevice = 00:03.0\n", head); /* no domain */
	expect_error(f, text, 3, "'00:03.0'", NULL);
	snprintf(text, sizeof(text), "%sdevice = 0000:00:03.0 take-from-host extra\n", head);
	expect_error(f, text, 3, "expected a class name, vendor:device, or a PCI address", NULL);
	snprintf(text, sizeof(text), "%sdevice = 0000:00:03.0 force\n", head);
	expect_error(f, text, 3, "unknown flag 'force'", "take-from-host", NULL);
	snprintf(text, sizeof(text), "%sdevice =\n", head);
	expect_error(f, text, 3, "device = ''", NULL);
}

static void test_error_take_from_host_needs_address(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "[component \"nic\"]\nexec = /bin/x\ndevice = ethernet take-from-host\n",
		     3, "'take-from-host' is only allowed with a PCI address", NULL);
	expect_error(f, "[component \"nic\"]\nexec = /bin/x\ndevice = 8086:10d3 take-from-host\n",
		     3, "'take-from-host' is only allowed with a PCI address", NULL);
}

static void test_error_too_many_devices(void **state)
{
	struct fixture *f = *state;
	char text[1024];
	int off;

	off = snprintf(text, sizeof(text), "[component \"nic\"]\nexec = /bin/x\n");
	for (int i = 0; i <= BH_MAX_MATCH; i++)
		off += snprintf(text + off, sizeof(text) - off, "device = 0000:00:%02x.0\n", i);
	expect_error(f, text, 3 + BH_MAX_MATCH, "more than 8 device lines", NULL);
}

static void test_error_bad_ioport(void **state)
{
	struct fixture *f = *state;
	const char *bad[] = { "0x43-0x40", "0x10000", "0xfff0-0x10000", "port", "0x40-",
			      "0x40-0x43x", "-1", "" };
	char text[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "[component \"pit\"]\nexec = /bin/x\nioport = %s\n",
			 bad[i]);
		expect_error(f, text, 3, "ioport = '", "0x40-0x43", NULL);
	}
	expect_error(f,
		     "[component \"pit\"]\nexec = /bin/x\nioport = 1\nioport = 2\nioport = 3\n"
		     "ioport = 4\nioport = 5\n",
		     7, "more than 4 ioport lines", NULL);
}

static void test_error_user_root(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "[component \"a\"]\nexec = /bin/x\nuser = root\n", 3, "user = 'root'",
		     "never run as root", NULL);
	expect_error(f, "[component \"a\"]\nexec = /bin/x\nuser = 0\n", 3, "user = 0",
		     "never run as root", NULL);
	expect_error(f, "[component \"a\"]\nexec = /bin/x\nuser = bh-no-such-user\n", 3,
		     "'bh-no-such-user': no such user", "auto", NULL);
}

static void test_error_fds_range(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "[component \"a\"]\nexec = /bin/x\nfds = 7\n", 3, "fds = 7",
		     "between 8 and 512", NULL);
	expect_error(f, "[component \"a\"]\nexec = /bin/x\nfds = 513\n", 3,
		     "between 8 and 512", NULL);
	expect_error(f, "[component \"a\"]\nexec = /bin/x\nfds = many\n", 3,
		     "fds = 'many': expected a whole number", NULL);
	expect_error(f, "[component \"a\"]\nexec = /bin/x\nprocesses = 4294967296\n", 3,
		     "expected a whole number", NULL);
	parse_ok(f, "[component \"a\"]\nexec = /bin/x\nfds = 8\nprocesses = 4294967295\n");
	assert_int_equal(f->cfg.comp[0].limit_fds, 8);
	assert_int_equal(f->cfg.comp[0].limit_procs, 4294967295u);
	parse_ok(f, "[component \"a\"]\nexec = /bin/x\nfds = 512\n");
	assert_int_equal(f->cfg.comp[0].limit_fds, 512);
}

/* what a client may spend on sessions: a count and stream memory */
static void test_session_quota_keys(void **state)
{
	struct fixture *f = *state;

	parse_ok(f, "[component \"a\"]\nexec = /bin/x\n");
	assert_int_equal(f->cfg.comp[0].sessions, BH_SESSIONS_DEFAULT);
	assert_int_equal(f->cfg.comp[0].session_memory, BH_SESSION_MEMORY_DEFAULT);
	parse_ok(f, "[component \"a\"]\nexec = /bin/x\nsessions = 0\nsession_memory = 8M\n");
	assert_int_equal(f->cfg.comp[0].sessions, 0);
	assert_int_equal(f->cfg.comp[0].session_memory, 8ull << 20);
	expect_error(f, "[component \"a\"]\nexec = /bin/x\nsessions = 257\n", 3,
		     "sessions = 257", "between 0 and 256", NULL);
	expect_error(f, "[component \"a\"]\nexec = /bin/x\nsessions = lots\n", 3,
		     "sessions = 'lots': expected a whole number", NULL);
	expect_error(f, "[component \"a\"]\nexec = /bin/x\nsession_memory = 0\n", 3,
		     "session_memory = '0'", "a size like 64M", NULL);
	expect_error(f, "[component \"a\"]\nexec = /bin/x\nsesions = 2\n", 3,
		     "unknown key 'sesions'", "sessions session_memory", NULL);
}

/* a route may carry the client's policy for its server */
static void test_route_argument(void **state)
{
	struct fixture *f = *state;

	parse_ok(f, "[component \"x\"]\nexec = /bin/x\nprovides = usb\n"
		    "[component \"a\"]\nexec = /bin/x\nsession = usb x 08e6:4433\n"
		    "session = nic x2\n[component \"x2\"]\nexec = /bin/x\nprovides = nic\n");
	assert_string_equal(f->cfg.comp[1].routes[0].arg, "08e6:4433");
	assert_string_equal(f->cfg.comp[1].routes[1].arg, "");
	expect_error(f, "[component \"a\"]\nexec = /bin/x\nsession = usb x a b\n", 3,
		     "expected SERVICE COMPONENT [ARGUMENT]", NULL);
	expect_error(f, "[component \"a\"]\nexec = /bin/x\nsession = usb x "
			"0123456789012345678901234567890123\n",
		     3, "up to 31 characters", NULL);
}

static void test_usbip_key(void **state)
{
	struct fixture *f = *state;

	parse_ok(f, "[component \"t\"]\nexec = /bin/x\nusbip = yes\n"
		    "[component \"u\"]\nexec = /bin/x\nusbip = no\n");
	assert_true(f->cfg.comp[0].usbip);
	assert_false(f->cfg.comp[1].usbip);
	expect_error(f, "[component \"t\"]\nexec = /bin/x\nusbip = 1\n", 3, "usbip = '1'",
		     "yes", NULL);
}

static void test_pty_key(void **state)
{
	struct fixture *f = *state;

	parse_ok(f, "[component \"t\"]\nexec = /bin/x\npty = ser-0.a_b\n"
		    "[component \"u\"]\nexec = /bin/x\n");
	assert_string_equal(f->cfg.comp[0].pty, "ser-0.a_b");
	assert_string_equal(f->cfg.comp[1].pty, "");
	/* a name under /run/bulkhead/pty: no paths, no dot-files, no spaces, 15 at most */
	expect_error(f, "[component \"t\"]\nexec = /bin/x\npty = ../etc\n", 3, "pty = '../etc'",
		     "/run/bulkhead/pty/NAME", NULL);
	expect_error(f, "[component \"t\"]\nexec = /bin/x\npty = a/b\n", 3, "pty = 'a/b'", NULL);
	expect_error(f, "[component \"t\"]\nexec = /bin/x\npty = .hidden\n", 3,
		     "not starting with '.'", NULL);
	expect_error(f, "[component \"t\"]\nexec = /bin/x\npty = a b\n", 3, "pty = 'a b'", NULL);
	expect_error(f, "[component \"t\"]\nexec = /bin/x\npty = 0123456789abcdef\n", 3,
		     "1-15 letters", NULL);
	expect_error(f, "[component \"t\"]\nexec = /bin/x\npty =\n", 3, "pty = ''", NULL);
}

static void test_legacy_key(void **state)
{
	struct fixture *f = *state;

	parse_ok(f, "[component \"v\"]\nexec = /bin/x\nlegacy = bios-data\nlegacy = vga-rom\n"
		    "legacy = ebda\n[component \"u\"]\nexec = /bin/x\n");
	assert_int_equal(f->cfg.comp[0].legacy, 1u << BH_LEGACY_BIOS_DATA |
						    1u << BH_LEGACY_VGA_ROM | 1u << BH_LEGACY_EBDA);
	assert_int_equal(f->cfg.comp[1].legacy, 0);
	/* named ranges only: an address would let a config reach any memory */
	expect_error(f, "[component \"v\"]\nexec = /bin/x\nlegacy = 0xa0000\n", 3,
		     "legacy = '0xa0000'", "bios-data, ebda, vga-rom", NULL);
}

static void test_ublk_key(void **state)
{
	struct fixture *f = *state;

	parse_ok(f, "[component \"t\"]\nexec = /bin/x\nublk = 3\n"
		    "[component \"u\"]\nexec = /bin/x\n");
	assert_int_equal(f->cfg.comp[0].ublk, 3);
	assert_int_equal(f->cfg.comp[1].ublk, -1);
	expect_error(f, "[component \"t\"]\nexec = /bin/x\nublk = 256\n", 3, "ublk = '256'",
		     "/dev/ublkbN (0-255)", NULL);
	expect_error(f, "[component \"t\"]\nexec = /bin/x\nublk = b0\n", 3, "ublk = 'b0'", NULL);
}

static void test_ublk_queues_key(void **state)
{
	struct fixture *f = *state;

	parse_ok(f, "[component \"t\"]\nexec = /bin/x\nublk = 0\nublk_queues = 4\n"
		    "[component \"u\"]\nexec = /bin/x\n");
	assert_int_equal(f->cfg.comp[0].ublk_queues, 4);
	assert_int_equal(f->cfg.comp[1].ublk_queues, 1);
	expect_error(f, "[component \"t\"]\nexec = /bin/x\nublk_queues = 0\n", 3,
		     "ublk_queues = '0'", "(1-16)", NULL);
	expect_error(f, "[component \"t\"]\nexec = /bin/x\nublk_queues = 17\n", 3,
		     "ublk_queues = '17'", NULL);
}

static void test_error_bad_size(void **state)
{
	struct fixture *f = *state;
	const char *bad[] = { "12Q", "-1", "0", "M", "1MB", "1.5G", "" };
	char text[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "[component \"a\"]\nexec = /bin/x\nmemory = %s\n",
			 bad[i]);
		expect_error(f, text, 3, "memory = '", "expected a size like 64M or 1G", NULL);
		snprintf(text, sizeof(text), "[component \"a\"]\nexec = /bin/x\ndma = %s\n",
			 bad[i]);
		expect_error(f, text, 3, "dma = '", NULL);
	}
}

static void test_error_bad_restart_and_env(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "[component \"a\"]\nexec = /bin/x\nrestart = sometimes\n", 3,
		     "restart = 'sometimes'", "never, on-failure or always", NULL);
	expect_error(f, "[component \"a\"]\nexec = /bin/x\nenv = NOVALUE\n", 3,
		     "expected NAME=VALUE", NULL);
	expect_error(f, "[component \"a\"]\nexec = /bin/x\nenv = =x\n", 3, "expected NAME=VALUE",
		     NULL);
}

static void test_error_too_many_components(void **state)
{
	struct fixture *f = *state;
	char text[2048];
	int off = 0;

	for (int i = 0; i <= BH_MAX_COMPONENTS; i++)
		off += snprintf(text + off, sizeof(text) - off,
				"[component \"c%d\"]\nexec = /bin/c%d\n", i, i);
	expect_error(f, text, 2 * BH_MAX_COMPONENTS + 1, "more than 24 components", NULL);
	/* exactly the maximum is fine */
	text[0] = 0;
	off = 0;
	for (int i = 0; i < BH_MAX_COMPONENTS; i++)
		off += snprintf(text + off, sizeof(text) - off,
				"[component \"c%d\"]\nexec = /bin/c%d\n", i, i);
	parse_ok(f, text);
	assert_int_equal(f->cfg.ncomp, BH_MAX_COMPONENTS);
	assert_string_equal(f->cfg.comp[15].name, "c15");
}

static void test_error_syntax(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "[core]\nbackend vfio\n", 2, "cannot parse this line", NULL);
	/* the bad line itself, not the file's last line */
	expect_error(f, "[core]\nbackend vfio\ncontrol = /x\n\n\n", 2, "cannot parse this line",
		     NULL);
}

static void test_error_overflow_and_ranges(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "[component \"a\"]\nexec = /bin/x\nmemory = 20000000000G\n", 3,
		     "memory = '20000000000G'", NULL);
	expect_error(f, "[component \"a\"]\nexec = /bin/x\nioport = 0-0xffff\n", 3,
		     "at most 65535", NULL);
	expect_error(f, "[component \"a\"]\nexec = /bin/x\nioport = 0x40-\n", 3,
		     "ioport = '0x40-'", NULL);
	/* decimal, never octal */
	parse_ok(f, "[component \"a\"]\nexec = /bin/x\nfds = 010\n");
	assert_int_equal(f->cfg.comp[0].limit_fds, 10);
}

static void test_long_lines(void **state)
{
	struct fixture *f = *state;
	char text[PATH_MAX + 256];
	char path[400];

	/* Debian's libinih reads at most 200 bytes a line: say so, at the right line */
	memset(path, 'p', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = 0;
	snprintf(text, sizeof(text), "[component \"a\"]\nexec = %s\nfds = 8\n", path);
	expect_error(f, text, 2, "line longer than", "relative", NULL);
	/* continuation lines are not a feature: they do not silently change exec */
	expect_error(f, "[component \"a\"]\nexec = /bin/x\n  /bin/y\n", 3,
		     "cannot parse this line", NULL);
}

static void test_cpu_keys(void **state)
{
	struct fixture *f = *state;
	const struct bh_component_config *c = &f->cfg.comp[0];

	/* by default: weight 100, no limit, nothing that needs cgroups */
	parse_ok(f, "[component \"a\"]\nexec = /bin/x\n");
	assert_int_equal(c->cpu_weight, 100);
	assert_int_equal(c->cpu_percent, 0);
	assert_int_equal(c->cpu_line, 0);
	assert_int_equal(c->cpu_weight_line, 0);
	parse_ok(f, "[component \"a\"]\nexec = /bin/x\ncpu = 50%\ncpu_weight = 200\n");
	assert_int_equal(c->cpu_percent, 50);
	assert_int_equal(c->cpu_line, 3);
	assert_int_equal(c->cpu_weight, 200);
	assert_int_equal(c->cpu_weight_line, 4);
	/* more than one CPU, and the ends of both ranges */
	parse_ok(f, "[component \"a\"]\nexec = /bin/x\ncpu = 150%\ncpu_weight = 1\n");
	assert_int_equal(c->cpu_percent, 150);
	assert_int_equal(c->cpu_weight, 1);
	parse_ok(f, "[component \"a\"]\nexec = /bin/x\ncpu = 1%\ncpu_weight = 10000\n");
	assert_int_equal(c->cpu_percent, 1);
	assert_int_equal(c->cpu_weight, 10000);
	parse_ok(f, "[component \"a\"]\nexec = /bin/x\ncpu = 10000%\n");
	assert_int_equal(c->cpu_percent, 10000);
	/* max: no limit, and nothing asked of cgroups; a later line wins */
	parse_ok(f, "[component \"a\"]\nexec = /bin/x\ncpu = 20%\ncpu = max\n");
	assert_int_equal(c->cpu_percent, 0);
	assert_int_equal(c->cpu_line, 0);
}

static void test_error_cpu(void **state)
{
	struct fixture *f = *state;
	const char *bad_cpu[] = { "50",	 "0%",	 "10001%", "-5%", "50 %", "1.5%",
				  "%",	 "half", "",	   "50%%", "0x10%", "99999999999%" };
	const char *bad_weight[] = { "0", "10001", "-1", "heavy", "1.5", "", "100%", "4294967297" };
	char text[256];

	for (size_t i = 0; i < sizeof(bad_cpu) / sizeof(bad_cpu[0]); i++) {
		snprintf(text, sizeof(text), "[component \"a\"]\nexec = /bin/x\ncpu = %s\n",
			 bad_cpu[i]);
		expect_error(f, text, 3, "cpu = '", "whole percentage of one CPU from 1% to 10000%",
			     "'cpu = 50%'", "150% is one and a half CPUs", "'max' for no limit",
			     NULL);
	}
	for (size_t i = 0; i < sizeof(bad_weight) / sizeof(bad_weight[0]); i++) {
		snprintf(text, sizeof(text),
			 "[component \"a\"]\nexec = /bin/x\n\ncpu_weight = %s\n", bad_weight[i]);
		expect_error(f, text, 4, "cpu_weight = '", "whole number from 1 to 10000",
			     "default 100", NULL);
	}
	/* the unknown-key message lists both */
	expect_error(f, "[component \"a\"]\nexec = /bin/x\ncpus = 1\n", 3, "unknown key 'cpus'",
		     " cpu cpu_weight", NULL);
}

static void test_error_first_one_wins(void **state)
{
	struct fixture *f = *state;

	/* only the first mistake is reported, with its own line */
	expect_error(f, "[component \"a\"]\nexec = /bin/x\nfds = 1\nmemory = lots\n", 3,
		     "fds = 1", NULL);
	/* a short err buffer is still terminated */
	char small[12];
	assert_int_equal(bh_config_parse_string("[bad]\n", "test.conf", &f->cfg, small,
						sizeof(small)),
			 -EINVAL);
	assert_string_equal(small, "test.conf:1");
}

static void test_class_names(void **state)
{
	uint32_t code = 0, mask = 0;

	(void)state;
	assert_int_equal(bh_class_lookup("ethernet", &code, &mask), 0);
	assert_int_equal(code, 0x020000);
	assert_int_equal(mask, 0xffff00);
	assert_int_equal(bh_class_lookup("nvme", &code, &mask), 0);
	assert_int_equal(code, 0x010802);
	assert_int_equal(mask, 0xffffff);
	assert_int_equal(bh_class_lookup("other", &code, &mask), 0);
	assert_int_equal(code, 0xff0000);
	assert_int_equal(bh_class_lookup("Ethernet", &code, &mask), -ENOENT);
	assert_int_equal(bh_class_lookup("", &code, &mask), -ENOENT);

	/* the specific name wins over the general one */
	assert_string_equal(bh_class_name(0x020000), "ethernet");
	assert_string_equal(bh_class_name(0x028000), "network");
	assert_string_equal(bh_class_name(0x010802), "nvme");
	assert_string_equal(bh_class_name(0x010601), "storage");
	assert_string_equal(bh_class_name(0x030000), "vga");
	assert_string_equal(bh_class_name(0x0c0330), "usb");
	assert_string_equal(bh_class_name(0x070002), "serial");
	/* QEMU's edu device */
	assert_string_equal(bh_class_name(0xff0000), "other");
	assert_string_equal(bh_class_name(0x0b4000), "unclassified");
	assert_string_equal(bh_class_name(0x000000), "unclassified");

	assert_string_equal(bh_restart_name(BH_RESTART_NEVER), "never");
	assert_string_equal(bh_restart_name(BH_RESTART_ON_FAILURE), "on-failure");
	assert_string_equal(bh_restart_name(BH_RESTART_ALWAYS), "always");
}

static void test_load_file(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX], want[PATH_MAX + 32], real[PATH_MAX];

	assert_int_equal(test_mkdtemp(f->dir, "config"), 0);
	snprintf(path, sizeof(path), "%s/etc/system.conf", f->dir);
	assert_int_equal(test_write_file(path, "[core]\nbackend = uio\n\n"
					       "[component \"edu\"]\n"
					       "exec = ../build/bulkhead-edu\n"
					       "device = 1234:11e8\n"
					       "[component \"pit\"]\n"
					       "exec = /opt/pit\n"),
			 0);
	assert_int_equal(bh_config_load(path, &f->cfg, f->err, sizeof(f->err)), 0);
	assert_string_equal(f->cfg.path, path);
	assert_int_equal(f->cfg.backend, BH_BACKEND_UIO);
	assert_int_equal(f->cfg.ncomp, 2);
	/* relative to the config's directory, whatever the working directory is */
	assert_non_null(realpath(f->dir, real));
	snprintf(want, sizeof(want), "%s/etc/../build/bulkhead-edu", real);
	assert_string_equal(f->cfg.comp[0].exec, want);
	assert_string_equal(f->cfg.comp[1].exec, "/opt/pit");

	/* errors in a file name the file and the line */
	assert_int_equal(test_write_file(path, "[core]\n\n[component \"edu\"]\nexec = x\nfds = 1\n"),
			 0);
	assert_int_equal(bh_config_load(path, &f->cfg, f->err, sizeof(f->err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:5: fds = 1", path);
	if (strncmp(f->err, want, strlen(want)) != 0)
		fail_msg("error \"%s\" does not start with \"%s\"", f->err, want);
}

static void test_load_missing_file(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX];
	int rc;

	assert_int_equal(test_mkdtemp(f->dir, "config"), 0);
	snprintf(path, sizeof(path), "%s/no-such.conf", f->dir);
	rc = bh_config_load(path, &f->cfg, f->err, sizeof(f->err));
	assert_true(rc < 0);
	assert_int_equal(rc, -ENOENT);
	assert_non_null(strstr(f->err, path));
	assert_non_null(strstr(f->err, "cannot open"));
	assert_int_equal(f->cfg.ncomp, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, cfg_setup, cfg_teardown)
		T(test_full_config),
		T(test_defaults),
		T(test_user_by_name),
		T(test_error_unknown_key),
		T(test_error_bad_core_values),
		T(test_error_unknown_section),
		T(test_error_key_outside_section),
		T(test_error_duplicate_component),
		T(test_error_missing_exec),
		T(test_error_bad_device),
		T(test_error_take_from_host_needs_address),
		T(test_error_too_many_devices),
		T(test_error_bad_ioport),
		T(test_error_user_root),
		T(test_error_fds_range),
		T(test_session_quota_keys),
		T(test_route_argument),
		T(test_pty_key),
		T(test_legacy_key),
		T(test_ublk_key),
		T(test_ublk_queues_key),
		T(test_usbip_key),
		T(test_error_bad_size),
		T(test_error_bad_restart_and_env),
		T(test_error_too_many_components),
		T(test_error_syntax),
		T(test_error_overflow_and_ranges),
		T(test_long_lines),
		T(test_cpu_keys),
		T(test_error_cpu),
		T(test_error_first_one_wins),
		T(test_class_names),
		T(test_load_file),
		T(test_load_missing_file),
#undef T
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
