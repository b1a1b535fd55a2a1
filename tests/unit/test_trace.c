// SPDX-License-Identifier: MIT
/*
 * The flight recorder: the ring as libbulkhead's accessors write it
 * (lib/trace.c) and as the bulkhead command reads it (tools/bulkhead/
 * tracefmt.c), a ring a hostile component scribbled on, crash report files,
 * and the config keys.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"
#include "config.h"
#include "tracefmt.h"

static struct bh_trace_entry e[BH_TRACE_ENTRIES];
static uint64_t seq[BH_TRACE_ENTRIES];

/* an empty ring, as core makes it */
static void *ring_image(void)
{
	struct bh_trace_header *h = calloc(1, BH_TRACE_SIZE);

	assert_non_null(h);
	h->magic = BH_TRACE_MAGIC;
	h->version = BH_TRACE_VERSION;
	h->entries = BH_TRACE_ENTRIES;
	h->on = 1;
	return h;
}

static void put(void *img, uint64_t i, uint16_t region, uint32_t off, uint8_t width, uint8_t kind,
		uint64_t value)
{
	struct bh_trace_entry *r = bh_trace_ring(img);

	r[i & (BH_TRACE_ENTRIES - 1)] = (struct bh_trace_entry){ .ns = 1000000000ull * i,
								 .value = value,
								 .offset = off,
								 .region = region,
								 .width = width,
								 .kind = kind };
}

/* the real accessors on an ordinary buffer standing in for a BAR, through a memfd ring */
static void accessors_record(void **state)
{
	static const struct bh_reg_name regs[] = { { 0x20, 4, "STATUS" }, { 0x80, 8, "DMA_SRC" } };
	uint32_t bar[64] = { 0 };
	struct bh_mmio m = { .base = (volatile uint8_t *)bar, .size = sizeof(bar) };
	int fd = memfd_create("test-trace", MFD_CLOEXEC);
	void *core_view, *img;
	uint64_t next, lost;
	char line[256], name[32];

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, BH_TRACE_SIZE), 0);
	core_view = mmap(NULL, BH_TRACE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(core_view != MAP_FAILED);
	img = ring_image();
	memcpy(core_view, img, sizeof(struct bh_trace_header));
	free(img);
	/* nothing is recorded before there is a ring */
	bh_write32(&m, 0x20, 7);
	assert_int_equal(bh_trace_attach(dup(fd)), 0);
	m.trace = bh_trace_region(BH_TRACE_MMIO, 0, 2, sizeof(bar));
	assert_int_equal(m.trace, 1);
	assert_int_equal(bh_mmio_names(&m, regs, 2), 0);

	bh_write32(&m, 0x20, 0x1234);
	assert_int_equal(bh_read32(&m, 0x20), 0x1234);
	bh_write64(&m, 0x80, 0x40000);
	assert_int_equal(bh_read64(&m, 0x80), 0x40000);
	assert_int_equal(bh_trace_head(core_view), 4);

	assert_int_equal(bh_trace_collect(core_view, 0, e, seq, 16, &next, &lost), 4);
	assert_int_equal(next, 4);
	assert_int_equal(lost, 0);
	assert_int_equal(e[0].kind, BH_TRACE_WRITE);
	assert_int_equal(e[1].kind, BH_TRACE_READ);
	assert_int_equal(e[1].value, 0x1234);
	assert_int_equal(e[2].width, 8);
	assert_string_equal(bh_trace_name(core_view, e[2].region, e[2].offset, name, sizeof(name)),
			    "DMA_SRC");
	bh_trace_format(core_view, &e[1], seq[1], line, sizeof(line));
	assert_non_null(strstr(line, "read32   mmio 0:BAR2  +0x0020 STATUS"));
	assert_non_null(strstr(line, "-> 0x00001234"));
	bh_trace_format(core_view, &e[2], seq[2], line, sizeof(line));
	assert_non_null(strstr(line, "write64  mmio 0:BAR2  +0x0080 DMA_SRC"));
	assert_non_null(strstr(line, "<- 0x0000000000040000"));

	/* core's switch: off, an access leaves no entry */
	((struct bh_trace_header *)core_view)->on = 0;
	bh_write32(&m, 0x20, 1);
	assert_int_equal(bh_trace_head(core_view), 4);
	((struct bh_trace_header *)core_view)->on = 1;
	bh_write32(&m, 0x24, 1);
	assert_int_equal(bh_trace_head(core_view), 5);
	/* an undeclared register has no name */
	assert_null(bh_trace_name(core_view, 1, 0x24, name, sizeof(name)));

	/* sessions: a name's first 8 bytes ride in the value */
	bh_trace_session(BH_TRACE_SESSION_OPEN, 0, "nic", 0);
	bh_trace_session(BH_TRACE_SESSION_ACCEPT, 12, "nic-tap-bridge", 0);
	bh_trace_session(BH_TRACE_SESSION_END, 12, NULL, 1);
	assert_int_equal(bh_trace_collect(core_view, 5, e, seq, 16, &next, &lost), 3);
	bh_trace_format(core_view, &e[0], seq[0], line, sizeof(line));
	assert_non_null(strstr(line, "session-open   service nic"));
	bh_trace_format(core_view, &e[1], seq[1], line, sizeof(line));
	assert_non_null(strstr(line, "session-accept #12 from nic-tap-"));
	bh_trace_format(core_view, &e[2], seq[2], line, sizeof(line));
	assert_non_null(strstr(line, "session-end    #12 (flags 0x1)"));
	struct json_object *o = bh_trace_entry_json(core_view, &e[1], seq[1]);
	assert_string_equal(json_object_get_string(json_object_object_get(o, "peer")), "nic-tap-");
	assert_string_equal(json_object_get_string(json_object_object_get(o, "kind")),
			    "session-accept");
	json_object_put(o);
	munmap(core_view, BH_TRACE_SIZE);
	close(fd);
}

/* a reader that fell behind a full lap: the overwritten entries are counted, not shown */
static void collect_wraps(void **state)
{
	void *img = ring_image();
	struct bh_trace_header *h = img;
	uint64_t next, lost;
	size_t n;

	(void)state;
	for (uint64_t i = 0; i < 10000; i++)
		put(img, i, 0, (uint32_t)i, 4, BH_TRACE_READ, i);
	h->head = 10000;
	n = bh_trace_collect(img, 0, e, seq, BH_TRACE_ENTRIES, &next, &lost);
	/* the writer (at 10000) would overwrite entry 10000 - 4096 next */
	assert_int_equal(n, BH_TRACE_ENTRIES - 1);
	assert_int_equal(seq[0], 10000 - BH_TRACE_ENTRIES + 1);
	assert_int_equal(e[0].value, seq[0]);
	assert_int_equal(lost, 10000 - BH_TRACE_ENTRIES + 1);
	assert_int_equal(next, 10000);
	/* the newest few */
	n = bh_trace_collect(img, 0, e, seq, 3, &next, &lost);
	assert_int_equal(n, 3);
	assert_int_equal(seq[0], 9997);
	assert_int_equal(e[2].value, 9999);
	/* nothing new */
	assert_int_equal(bh_trace_collect(img, 10000, e, seq, 16, &next, &lost), 0);
	/* a head behind the reader: the component started again */
	h->head = 2;
	assert_int_equal(bh_trace_collect(img, 10000, e, seq, 16, &next, &lost), 0);
	assert_int_equal(next, 2);
	free(img);
}

/* what a hostile component may write: nothing read out of bounds, nothing unprintable */
static void hostile_ring(void **state)
{
	void *img = ring_image();
	struct bh_trace_header *h = img;
	char name[BH_TRACE_NAME_MAX + 8], where[32], line[256];
	struct json_object *o;

	(void)state;
	h->nnames = 0xffffffffu;
	h->nregions = 0xffffffffu;
	for (int i = 0; i < BH_TRACE_NAMES; i++) {
		h->name[i].region = 3;
		h->name[i].offset = 0x1000 + (uint32_t)i * 8;
		h->name[i].width = 8;
		memset(h->name[i].name, 'A', sizeof(h->name[i].name)); /* no NUL */
	}
	h->name[7].name[2] = '\n';
	h->region[3].space = BH_TRACE_MMIO;
	assert_string_equal(bh_trace_name(img, 3, 0x1000, name, sizeof(name)),
			    "AAAAAAAAAAAAAAAAAAAAAAAA");
	assert_string_equal(bh_trace_name(img, 3, 0x1038, name, sizeof(name)),
			    "AA?AAAAAAAAAAAAAAAAAAAAA");
	/* within an 8-byte register: its name and the byte */
	assert_string_equal(bh_trace_name(img, 3, 0x1004, name, sizeof(name)),
			    "AAAAAAAAAAAAAAAAAAAAAAAA+4");
	assert_string_equal(bh_trace_region_name(img, 40000, where, sizeof(where)), "-");
	assert_string_equal(bh_trace_region_name(img, BH_TRACE_REGIONS, where, sizeof(where)), "-");
	/* a width no access has, a kind no entry has */
	put(img, 0, 40000, 0x10, 3, 77, ~0ull);
	h->head = 1;
	bh_trace_format(img, bh_trace_ring(img), 0, line, sizeof(line));
	assert_non_null(strstr(line, "?64"));
	o = bh_trace_entry_json(img, bh_trace_ring(img), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(o, "kind")), "?");
	assert_null(json_object_object_get(o, "name"));
	json_object_put(o);
	free(img);
}

static void check_ring(void **state)
{
	void *img = ring_image();
	struct bh_trace_header *h = img;
	char why[128];

	(void)state;
	assert_int_equal(bh_trace_check(img, BH_TRACE_SIZE, why, sizeof(why)), 0);
	assert_int_equal(bh_trace_check(img, 4096, why, sizeof(why)), -1);
	h->version = 9;
	assert_int_equal(bh_trace_check(img, BH_TRACE_SIZE, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "version 9"));
	h->magic = 0;
	assert_int_equal(bh_trace_check(img, BH_TRACE_SIZE, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "not a flight recorder"));
	free(img);
}

static void crash_file(void **state)
{
	size_t len = sizeof(struct bh_crash_file) + BH_TRACE_SIZE;
	uint8_t *buf = calloc(1, len);
	struct bh_crash_file *f = (struct bh_crash_file *)buf;
	void *img = ring_image();
	char why[128];

	(void)state;
	memcpy(buf + sizeof(*f), img, BH_TRACE_SIZE);
	free(img);
	f->magic = BH_CRASH_MAGIC;
	f->version = BH_CRASH_VERSION;
	f->ring_size = BH_TRACE_SIZE;
	snprintf(f->component, sizeof(f->component), "edu");
	assert_int_equal(bh_crash_check(buf, len, why, sizeof(why)), 0);
	assert_int_equal(bh_crash_check(buf, len - 1, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "cut short"));
	assert_int_equal(bh_crash_check(buf, 10, why, sizeof(why)), -1);
	memset(f->component, 'x', sizeof(f->component));
	assert_int_equal(bh_crash_check(buf, len, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "not terminated"));
	free(buf);
}

static void config_keys(void **state)
{
	static struct bh_config cfg;
	char err[512];

	(void)state;
	assert_int_equal(bh_config_parse_string("[core]\ncrashes = /tmp/c\n[component \"a\"]\n"
						"exec = /bin/true\ntrace = off\n",
						"t.conf", &cfg, err, sizeof(err)),
			 0);
	assert_true(cfg.comp[0].trace_off);
	assert_string_equal(cfg.crashes, "/tmp/c");
	assert_int_equal(bh_config_parse_string("[component \"a\"]\nexec = /bin/true\n", "t.conf",
						&cfg, err, sizeof(err)),
			 0);
	assert_false(cfg.comp[0].trace_off);
	assert_string_equal(cfg.crashes, "/var/lib/bulkhead/crashes");
	assert_int_not_equal(bh_config_parse_string("[component \"a\"]\nexec = /bin/true\ntrace = "
						    "1\n",
						    "t.conf", &cfg, err, sizeof(err)),
			     0);
	assert_non_null(strstr(err, "trace = '1': on"));
	assert_int_not_equal(bh_config_parse_string("[core]\ncrashes = here\n", "t.conf", &cfg,
						    err, sizeof(err)),
			     0);
	assert_non_null(strstr(err, "an absolute path"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accessors_record), cmocka_unit_test(collect_wraps),
		cmocka_unit_test(hostile_ring),	    cmocka_unit_test(check_ring),
		cmocka_unit_test(crash_file),	    cmocka_unit_test(config_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
