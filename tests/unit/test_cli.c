// SPDX-License-Identifier: MIT
/*
 * The bulkhead command's pure pieces (tools/bulkhead/format.c) and core's
 * per-component log ring (core/logbuf.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "core.h"
#include "logbuf.h"

static void record_status_line(void **state)
{
	char line[] =
	    "component edu state=running pid=42 uid=61001 restarts=0 "
	    "last_exit=\"killed by SIGKILL: watchdog\" sessions=0/4 dma_bytes=8192 cpu_ms=-\n";
	struct bh_record r;

	(void) state;
	assert_int_equal(bh_record_parse(line, &r), 0);
	assert_string_equal(r.kind, "component");
	assert_string_equal(r.name, "edu");
	assert_string_equal(bh_record_get(&r, "state"), "running");
	assert_string_equal(bh_record_get(&r, "last_exit"), "killed by SIGKILL: watchdog");
	assert_string_equal(bh_record_get(&r, "sessions"), "0/4");
	assert_string_equal(bh_record_get(&r, "cpu_ms"), "-");
	assert_null(bh_record_get(&r, "nothing"));
}

static void record_malformed(void **state)
{
	char empty[] = "", one[] = "core", odd[] = "device x =1 a= =b k=\"unterminated";
	struct bh_record r;

	(void) state;
	assert_int_equal(bh_record_parse(empty, &r), -1);
	assert_int_equal(bh_record_parse(one, &r), -1);
	/* words without a key are skipped; an unterminated quote runs to the end */
	assert_int_equal(bh_record_parse(odd, &r), 0);
	assert_string_equal(bh_record_get(&r, "a"), "");
	assert_string_equal(bh_record_get(&r, "k"), "\"unterminated");
	assert_null(bh_record_get(&r, ""));
}

static void record_json(void **state)
{
	char line[] = "component edu pid=42 sessions=0/4 last_exit=\"-\" big=123456789012 "
		      "path=/run/x/y half=3/";
	struct bh_record r;
	struct json_object *o, *v;

	(void) state;
	assert_int_equal(bh_record_parse(line, &r), 0);
	o = bh_record_json(&r);
	assert_true(json_object_object_get_ex(o, "pid", &v));
	assert_true(json_object_is_type(v, json_type_int));
	assert_int_equal(json_object_get_int(v), 42);
	assert_true(json_object_object_get_ex(o, "sessions", &v));
	assert_int_equal(json_object_get_int(json_object_object_get(v, "used")), 0);
	assert_int_equal(json_object_get_int(json_object_object_get(v, "limit")), 4);
	assert_true(json_object_object_get_ex(o, "big", &v));
	assert_true(json_object_get_int64(v) == 123456789012ll);
	assert_true(json_object_object_get_ex(o, "last_exit", &v));
	assert_string_equal(json_object_get_string(v), "-");
	assert_string_equal(json_object_get_string(json_object_object_get(o, "path")), "/run/x/y");
	assert_string_equal(json_object_get_string(json_object_object_get(o, "half")), "3/");
	json_object_put(o);
	assert_true(bh_is_integer("-3"));
	assert_false(bh_is_integer("-"));
	assert_false(bh_is_integer("1.5"));
	assert_false(bh_is_integer("12345678901234567890"));
}

static void table(void **state)
{
	static const char *const head[] = {"NAME", "STATE", "PID"};
	const char *r1[] = {"e1000e", "running", "12"}, *r2[] = {"a", "", "7"};
	struct bh_table t;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void) state;
	bh_table_init(&t, 3, head);
	bh_table_add(&t, r1);
	bh_table_add(&t, r2);
	bh_table_print(&t, f);
	fclose(f);
	assert_string_equal(buf, "NAME    STATE    PID\n"
				 "e1000e  running  12\n"
				 "a       -        7\n");
	bh_table_free(&t);
	free(buf);
}

static void human_bytes(void **state)
{
	char b[16];

	(void) state;
	assert_string_equal(bh_human_bytes(0, b, sizeof(b)), "0");
	assert_string_equal(bh_human_bytes(1023, b, sizeof(b)), "1023");
	assert_string_equal(bh_human_bytes(1536, b, sizeof(b)), "1.5K");
	assert_string_equal(bh_human_bytes(16ull << 20, b, sizeof(b)), "16.0M");
}

static void group_viability(void **state)
{
	(void) state;
	assert_true(bh_group_member_ok("", 0x020000));
	assert_true(bh_group_member_ok("vfio-pci", 0x020000));
	assert_true(bh_group_member_ok("pci-stub", 0x010802));
	assert_true(bh_group_member_ok("pcieport", 0x060400)); /* a root port */
	assert_false(bh_group_member_ok("e1000e", 0x020000));
	assert_false(bh_group_member_ok("nvme", 0x010802));
	assert_false(bh_group_member_ok("uio_pci_generic", 0x00ff00));
}

static void irq_counts(void **state)
{
	const char *text =
	    "           CPU0       CPU1       \n"
	    "  0:         40          0   IO-APIC   2-edge      timer\n"
	    " 24:          3          4  PCI-MSI 49152-edge      vfio-msi[0](0000:00:02.0)\n"
	    " 25:         10          0  IR-PCI-MSIX-0000:00:03.0    0-edge      "
	    "vfio-msix[0](0000:00:03.0)\n"
	    " 26:          5          1  IR-PCI-MSIX-0000:00:03.0    1-edge      "
	    "vfio-msix[1](0000:00:03.0)\n"
	    " 27:          9          9  PCI-MSI 1-edge      eth0\n";

	(void) state;
	assert_int_equal(bh_irq_count(text, "0000:00:02.0"), 7);
	assert_int_equal(bh_irq_count(text, "0000:00:03.0"), 16);
	assert_int_equal(bh_irq_count(text, "0000:00:04.0"), 0);
	assert_int_equal(bh_irq_count("", "0000:00:02.0"), 0);
}

static void log_line(void **state)
{
	char line[] = "edu 12.345 out edu: TEST dma PASS 64 bytes\n", bad[] = "edu x out text";
	struct bh_log_line l;

	(void) state;
	assert_int_equal(bh_log_line_parse(line, &l), 0);
	assert_string_equal(l.component, "edu");
	assert_true(l.seconds > 12.344 && l.seconds < 12.346);
	assert_string_equal(l.source, "out");
	assert_string_equal(l.text, "edu: TEST dma PASS 64 bytes");
	assert_int_equal(bh_log_line_parse(bad, &l), -1);
}

static void logbuf_lines(void **state)
{
	static struct bh_logbuf lb;
	static char out[BH_LOGBUF_SIZE];
	char line[BH_LOGBUF_LINE];
	size_t n;

	(void) state;
	memset(&lb, 0, sizeof(lb));
	assert_int_equal(bh_logbuf_read(&lb, out, sizeof(out)), 0);
	n = bh_logbuf_add(&lb, 1.5, "out", "hello\x1b[31m\tworld", line, sizeof(line));
	assert_string_equal(line, "1.500 out hello [31m\tworld\n");
	assert_int_equal(n, strlen(line));
	bh_logbuf_add(&lb, 2, "core", "started \"edu\"", line, sizeof(line));
	n = bh_logbuf_read(&lb, out, sizeof(out));
	out[n] = 0;
	assert_string_equal(out, "1.500 out hello [31m\tworld\n2.000 core started \"edu\"\n");
	/* a short reader gets the newest whole lines that fit */
	n = bh_logbuf_read(&lb, out, 30);
	out[n] = 0;
	assert_string_equal(out, "2.000 core started \"edu\"\n");
}

static void logbuf_wraps(void **state)
{
	static struct bh_logbuf lb;
	static char out[BH_LOGBUF_SIZE + 1];
	char line[BH_LOGBUF_LINE], text[64];
	size_t n;
	int first = -1, last = -1, prev = -1;

	(void) state;
	memset(&lb, 0, sizeof(lb));
	/* ~40 bytes a line: 10000 lines are six times the ring */
	for (int i = 0; i < 10000; i++) {
		snprintf(text, sizeof(text), "line %05d of the component", i);
		bh_logbuf_add(&lb, i / 100.0, "out", text, line, sizeof(line));
	}
	n = bh_logbuf_read(&lb, out, sizeof(out) - 1);
	out[n] = 0;
	assert_true(n <= BH_LOGBUF_SIZE && n > BH_LOGBUF_SIZE - 100);
	/* whole lines only, consecutive, ending with the last one */
	for (char *p = out, *nl; (nl = strchr(p, '\n')); p = nl + 1) {
		int k;
		*nl = 0;
		assert_int_equal(sscanf(strstr(p, "line "), "line %d", &k), 1);
		assert_non_null(strstr(p, " of the component"));
		if (prev >= 0)
			assert_int_equal(k, prev + 1);
		if (first < 0)
			first = k;
		prev = last = k;
	}
	assert_int_equal(last, 9999);
	assert_true(first > 8000);
	/* an overlong line is cut, and still one line */
	memset(text, 'x', sizeof(text));
	char big[4096];
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	n = bh_logbuf_add(&lb, 1, "out", big, line, sizeof(line));
	assert_int_equal(n, sizeof(line) - 1);
	assert_int_equal(line[n - 1], '\n');
}

static void reload_compare(void **state)
{
	static struct bh_config a, b;
	char err[256];
	const char *base = "[component \"x\"]\nexec = /bin/true\ndevice = 1234:11e8\n"
			   "restart = always\n";

	(void) state;
	assert_int_equal(bh_config_parse_string(base, "a.conf", &a, err, sizeof(err)), 0);
	/* the same section, written elsewhere in the file: the same */
	assert_int_equal(bh_config_parse_string("\n\n# moved\n[component \"x\"]\n"
						"device = 1234:11e8\nexec = /bin/true\n"
						"restart = always\n",
						"b.conf", &b, err, sizeof(err)),
			 0);
	assert_true(bh_reload_same(&a.comp[0], &b.comp[0]));
	assert_null(bh_reload_needs_core(&a.comp[0], &b.comp[0]));
	/* a driver VM's section, moved: the same too (a reload must not reboot it) */
	const char *vm = "[component \"v\"]\nkind = vm\ndevice = 1234:11e8\n"
			 "kernel = /bin/true\ninitramfs = /bin/true\n";
	char moved[256];
	snprintf(moved, sizeof(moved), "\n\n%s", vm);
	assert_int_equal(bh_config_parse_string(vm, "a.conf", &a, err, sizeof(err)), 0);
	assert_int_equal(bh_config_parse_string(moved, "b.conf", &b, err, sizeof(err)), 0);
	assert_true(bh_reload_same(&a.comp[0], &b.comp[0]));
	assert_int_equal(bh_config_parse_string(base, "a.conf", &a, err, sizeof(err)), 0);
	/* a changed key: not the same, and a reload restarts it */
	assert_int_equal(bh_config_parse_string("[component \"x\"]\nexec = /bin/true\n"
						"device = 1234:11e8\nrestart = always\n"
						"env = A=1\n",
						"b.conf", &b, err, sizeof(err)),
			 0);
	assert_false(bh_reload_same(&a.comp[0], &b.comp[0]));
	assert_null(bh_reload_needs_core(&a.comp[0], &b.comp[0]));
	/* devices are taken at core's start */
	assert_int_equal(bh_config_parse_string("[component \"x\"]\nexec = /bin/true\n"
						"device = 0000:00:03.0\nrestart = always\n",
						"b.conf", &b, err, sizeof(err)),
			 0);
	assert_false(bh_reload_same(&a.comp[0], &b.comp[0]));
	assert_non_null(strstr(bh_reload_needs_core(&a.comp[0], &b.comp[0]), "devices"));
	/* an added component with devices is fine; with cpu limits it is not */
	assert_null(bh_reload_needs_core(NULL, &a.comp[0]));
	assert_int_equal(bh_config_parse_string("[component \"y\"]\nexec = /bin/true\n"
						"cpu = 50%\n",
						"b.conf", &b, err, sizeof(err)),
			 0);
	assert_non_null(strstr(bh_reload_needs_core(NULL, &b.comp[0]), "cpu"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(record_status_line), cmocka_unit_test(record_malformed),
	    cmocka_unit_test(record_json),	  cmocka_unit_test(table),
	    cmocka_unit_test(human_bytes),	  cmocka_unit_test(group_viability),
	    cmocka_unit_test(irq_counts),	  cmocka_unit_test(log_line),
	    cmocka_unit_test(logbuf_lines),	  cmocka_unit_test(logbuf_wraps),
	    cmocka_unit_test(reload_compare),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
