// SPDX-License-Identifier: MIT
/* Policy decisions: which devices a device = line matches, which ports an ioport grant allows. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "policy.h"

static struct bh_pci_dev dev(const char *address, uint16_t vendor, uint16_t device,
			     uint32_t class_code)
{
	struct bh_pci_dev d;

	memset(&d, 0, sizeof(d));
	snprintf(d.address, sizeof(d.address), "%s", address);
	d.vendor = vendor;
	d.device = device;
	d.class_code = class_code;
	d.iommu_group = -1;
	return d;
}

static struct bh_match class_match(const char *name)
{
	struct bh_match m;

	memset(&m, 0, sizeof(m));
	m.kind = BH_MATCH_CLASS;
	assert_int_equal(bh_class_lookup(name, &m.class_code, &m.class_mask), 0);
	return m;
}

static bool class_matches(const char *name, uint32_t class_code)
{
	struct bh_match m = class_match(name);
	struct bh_pci_dev d = dev("0000:00:03.0", 0x8086, 0x10d3, class_code);

	return bh_policy_matches(&m, &d);
}

static void test_match_class(void **state)
{
	(void)state;
	/* ethernet is 02 00 xx: any prog-if, but not another network subclass */
	assert_true(class_matches("ethernet", 0x020000));
	assert_true(class_matches("ethernet", 0x020001));
	assert_false(class_matches("ethernet", 0x028000));
	assert_false(class_matches("ethernet", 0x010802));
	assert_true(class_matches("network", 0x028000));
	assert_true(class_matches("network", 0x020000));
	assert_false(class_matches("network", 0x030000));
	/* nvme is exact, prog-if included */
	assert_true(class_matches("nvme", 0x010802));
	assert_false(class_matches("nvme", 0x010801));
	assert_false(class_matches("nvme", 0x010600));
	assert_true(class_matches("storage", 0x010802));
	assert_true(class_matches("storage", 0x010600));
	assert_true(class_matches("vga", 0x030000));
	assert_false(class_matches("vga", 0x038000));
	assert_true(class_matches("display", 0x038000));
	assert_true(class_matches("usb", 0x0c0330));
	assert_false(class_matches("usb", 0x0c0500));
	assert_true(class_matches("smbus", 0x0c0500));
	assert_true(class_matches("serial", 0x070002));
	assert_false(class_matches("serial", 0x070100));
	assert_true(class_matches("communication", 0x070100));
	/* QEMU's edu device */
	assert_true(class_matches("other", 0xff0000));
	assert_false(class_matches("other", 0x080000));
	assert_true(class_matches("system", 0x088000));
	assert_true(class_matches("bridge", 0x060400));
	assert_true(class_matches("multimedia", 0x040300));
}

static void test_match_id(void **state)
{
	struct bh_match m = { .kind = BH_MATCH_ID, .vendor = 0x1234, .device = 0x11e8 };
	struct bh_pci_dev edu = dev("0000:00:04.0", 0x1234, 0x11e8, 0xff0000);
	struct bh_pci_dev vga = dev("0000:00:02.0", 0x1234, 0x1111, 0x030000);
	struct bh_pci_dev other = dev("0000:00:05.0", 0x8086, 0x11e8, 0xff0000);

	(void)state;
	assert_true(bh_policy_matches(&m, &edu));
	assert_false(bh_policy_matches(&m, &vga));
	assert_false(bh_policy_matches(&m, &other));
	/* an ID match ignores the class */
	edu.class_code = 0x020000;
	assert_true(bh_policy_matches(&m, &edu));
}

static void test_match_address(void **state)
{
	struct bh_match m = { .kind = BH_MATCH_ADDRESS, .address = "0000:00:1f.3" };
	struct bh_pci_dev a = dev("0000:00:1f.3", 0x8086, 0x2930, 0x0c0500);
	struct bh_pci_dev b = dev("0000:00:1f.2", 0x8086, 0x2922, 0x010601);
	struct bh_pci_dev c = dev("0001:00:1f.3", 0x8086, 0x2930, 0x0c0500);

	(void)state;
	assert_true(bh_policy_matches(&m, &a));
	assert_false(bh_policy_matches(&m, &b));
	assert_false(bh_policy_matches(&m, &c));
}

static void grant(struct bh_component_config *c, uint16_t base, uint16_t count)
{
	c->isa[c->nisa].base = base;
	c->isa[c->nisa].count = count;
	c->nisa++;
}

static void test_isa_allows(void **state)
{
	struct bh_component_config c;

	(void)state;
	memset(&c, 0, sizeof(c));
	/* nothing granted: nothing allowed */
	assert_false(bh_policy_isa_allows(&c, 0x40, 1));
	grant(&c, 0x40, 4);
	grant(&c, 0x3f8, 8);

	assert_true(bh_policy_isa_allows(&c, 0x40, 4)); /* exactly the range */
	assert_true(bh_policy_isa_allows(&c, 0x41, 2)); /* inside */
	assert_true(bh_policy_isa_allows(&c, 0x43, 1)); /* the last port */
	assert_true(bh_policy_isa_allows(&c, 0x3f8, 8));
	assert_true(bh_policy_isa_allows(&c, 0x3fc, 4));
	assert_false(bh_policy_isa_allows(&c, 0x42, 4));  /* overlapping the end */
	assert_false(bh_policy_isa_allows(&c, 0x40, 5));  /* one too many */
	assert_false(bh_policy_isa_allows(&c, 0x3f, 2));  /* overlapping the start */
	assert_false(bh_policy_isa_allows(&c, 0x44, 1));  /* just after */
	assert_false(bh_policy_isa_allows(&c, 0x3f, 1));  /* just before */
	assert_false(bh_policy_isa_allows(&c, 0x80, 1));  /* outside */
	assert_false(bh_policy_isa_allows(&c, 0x40, 0x3c0)); /* spanning both grants */
	assert_false(bh_policy_isa_allows(&c, 0x40, 0));  /* count 0 */
	assert_false(bh_policy_isa_allows(&c, 0x3f8, 0));
}

static void test_isa_wrap(void **state)
{
	struct bh_component_config c;

	(void)state;
	memset(&c, 0, sizeof(c));
	grant(&c, 0xfff0, 0x10);
	assert_true(bh_policy_isa_allows(&c, 0xfff0, 0x10));
	assert_true(bh_policy_isa_allows(&c, 0xffff, 1));
	assert_false(bh_policy_isa_allows(&c, 0xffff, 2)); /* past 0xffff */
	assert_false(bh_policy_isa_allows(&c, 0xfff0, 0x11));
	assert_false(bh_policy_isa_allows(&c, 0x10000, 1));
	/* base and count come from the wire as u32: their sum must not wrap */
	assert_false(bh_policy_isa_allows(&c, 0xffffffffu, 2));
	assert_false(bh_policy_isa_allows(&c, 0xfffffff8u, 0x10));
	assert_false(bh_policy_isa_allows(&c, 0xfff0, 0xffffffffu));
	assert_false(bh_policy_isa_allows(&c, 0, 0xffffffffu));

	/* a grant of everything, as "ioport = 0-0xffff" parses */
	memset(&c, 0, sizeof(c));
	grant(&c, 0, 0); /* count wraps to 0 as a u16: 0x10000 ports do not fit */
	assert_false(bh_policy_isa_allows(&c, 0x40, 1));
}

static void test_isa_describe(void **state)
{
	struct bh_component_config c;
	char buf[128];

	(void)state;
	memset(&c, 0, sizeof(c));
	bh_policy_isa_describe(&c, buf, sizeof(buf));
	assert_string_equal(buf, "none");
	grant(&c, 0x40, 4);
	bh_policy_isa_describe(&c, buf, sizeof(buf));
	assert_string_equal(buf, "0x40-0x43");
	grant(&c, 0x3f8, 8);
	grant(&c, 0x80, 1);
	bh_policy_isa_describe(&c, buf, sizeof(buf));
	assert_string_equal(buf, "0x40-0x43, 0x3f8-0x3ff, 0x80-0x80");
	/* a short buffer is truncated, terminated, and not overrun */
	memset(buf, 'x', sizeof(buf));
	bh_policy_isa_describe(&c, buf, 12);
	assert_string_equal(buf, "0x40-0x43, ");
	assert_int_equal(buf[12], 'x');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match_class),  cmocka_unit_test(test_match_id),
		cmocka_unit_test(test_match_address), cmocka_unit_test(test_isa_allows),
		cmocka_unit_test(test_isa_wrap),     cmocka_unit_test(test_isa_describe),
	};

	return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
