// SPDX-License-Identifier: MIT
/* lib/framebuffer.c: modes and damage rectangles, as a hostile client would send them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "bulkhead/framebuffer.h"

static const struct bh_fb_mode xga = {.width = 1024, .height = 768, .bpp = 32, .pitch = 4096};

static void modes(void **state)
{
	struct bh_fb_mode m = xga;
	char why[80];

	(void) state;
	assert_int_equal(bh_fb_mode_check(&m, 16 << 20, why, sizeof(why)), 0);
	m.bpp = 12;
	assert_int_equal(bh_fb_mode_check(&m, 16 << 20, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "12 bpp"));
	m = (struct bh_fb_mode){.width = 4096, .height = 4096, .bpp = 32, .pitch = 16384};
	assert_int_equal(bh_fb_mode_check(&m, 16 << 20, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "needs 65536 KiB"));
	m = xga;
	m.pitch = 100;
	assert_int_equal(bh_fb_mode_check(&m, 16 << 20, why, sizeof(why)), -EINVAL);
	m = xga;
	m.width = 0;
	assert_int_equal(bh_fb_mode_check(&m, 16 << 20, why, sizeof(why)), -EINVAL);
}

static void damage(void **state)
{
	struct bh_fb_rect r = {.x = 10, .y = 20, .w = 30, .h = 40}, got;
	struct bh_ps_desc d;

	(void) state;
	assert_int_equal(bh_fb_damage(&xga, &r, 7, &d), 0);
	assert_int_equal(d.offset, 20 * 4096 + 10 * 4);
	assert_int_equal(d.length, 39 * 4096 + 30 * 4);
	assert_int_equal(bh_fb_damage_check(&xga, &d, &got), 0);
	assert_memory_equal(&got, &r, sizeof(r));
	/* the whole screen, and a pixel in its last corner */
	r = (struct bh_fb_rect){.w = 1024, .h = 768};
	assert_int_equal(bh_fb_damage(&xga, &r, 0, &d), 0);
	assert_int_equal(d.offset + d.length, 768 * 4096);
	r = (struct bh_fb_rect){.x = 1023, .y = 767, .w = 1, .h = 1};
	assert_int_equal(bh_fb_damage(&xga, &r, 0, &d), 0);
	assert_int_equal(bh_fb_damage_check(&xga, &d, &got), 0);
}

static void hostile(void **state)
{
	struct bh_fb_rect r = {.x = 0, .y = 0, .w = 8, .h = 8}, got;
	struct bh_ps_desc d, bad;

	(void) state;
	/* empty, past the edge, wrapping around */
	r.w = 0;
	assert_int_equal(bh_fb_damage(&xga, &r, 0, &d), -EINVAL);
	r = (struct bh_fb_rect){.x = 1020, .y = 0, .w = 8, .h = 1};
	assert_int_equal(bh_fb_damage(&xga, &r, 0, &d), -EINVAL);
	r = (struct bh_fb_rect){.x = 1, .y = 0, .w = 0xffff, .h = 1};
	assert_int_equal(bh_fb_damage(&xga, &r, 0, &d), -EINVAL);
	/* a valid descriptor altered: the receiver refuses each */
	r = (struct bh_fb_rect){.x = 8, .y = 8, .w = 8, .h = 8};
	assert_int_equal(bh_fb_damage(&xga, &r, 0, &d), 0);
	bad = d;
	bad.length += 4;
	assert_int_equal(bh_fb_damage_check(&xga, &bad, &got), -EINVAL);
	bad = d;
	bad.offset = 0;
	assert_int_equal(bh_fb_damage_check(&xga, &bad, &got), -EINVAL);
	bad = d;
	bad.op = 2;
	assert_int_equal(bh_fb_damage_check(&xga, &bad, &got), -EINVAL);
	bad = d;
	bad.arg |= 0xffffull << 48; /* h = 65535 */
	assert_int_equal(bh_fb_damage_check(&xga, &bad, &got), -EINVAL);
	bad = d;
	bad.status = -EINVAL; /* what bh_ps_get makes of one outside the buffer */
	assert_int_equal(bh_fb_damage_check(&xga, &bad, &got), -EINVAL);
}

static void copy(void **state)
{
	static uint32_t a[16 * 8], b[16 * 8];
	struct bh_fb_mode m = {.width = 16, .height = 8, .bpp = 32, .pitch = 64};
	struct bh_fb_rect r = {.x = 2, .y = 3, .w = 4, .h = 2};

	(void) state;
	for (unsigned int i = 0; i < 16 * 8; i++)
		a[i] = i;
	bh_fb_copy(b, 64, a, 64, &m, &r);
	for (unsigned int y = 0; y < 8; y++)
		for (unsigned int x = 0; x < 16; x++)
			assert_int_equal(b[y * 16 + x],
					 x >= 2 && x < 6 && y >= 3 && y < 5 ? y * 16 + x : 0);
}

static void rects(void **state)
{
	struct bh_fb_rect a = {0}, b = {.x = 10, .y = 20, .w = 5, .h = 5}, c = {.x = 0, .y = 0, .w = 12, .h = 22};
	struct bh_fb_rect empty = {.x = 100, .y = 100}, got;

	(void) state;
	bh_fb_rect_union(&a, &b);
	assert_memory_equal(&a, &b, sizeof(a));
	bh_fb_rect_union(&a, &empty);
	assert_memory_equal(&a, &b, sizeof(a));
	bh_fb_rect_union(&a, &c);
	assert_int_equal(a.x, 0);
	assert_int_equal(a.w, 15);
	assert_int_equal(a.h, 25);
	got = bh_fb_rect_clip(&b, &c);
	assert_int_equal(got.x, 10);
	assert_int_equal(got.w, 2);
	assert_int_equal(got.h, 2);
	got = bh_fb_rect_clip(&b, &empty);
	assert_int_equal(got.w, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(modes),
	    cmocka_unit_test(damage),
	    cmocka_unit_test(hostile),
	    cmocka_unit_test(copy),
	    cmocka_unit_test(rects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
