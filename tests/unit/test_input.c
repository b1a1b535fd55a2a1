// SPDX-License-Identifier: MIT
/* lib/input.c: the Input session's events, as a hostile source would send them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "bulkhead/input.h"

static int check(uint32_t type, struct bh_input_event e, char *why, size_t len)
{
	struct bh_session_event ev = {.magic = BH_SESSION_MAGIC, .type = type};
	struct bh_input_event got;

	memcpy(ev.data, &e, sizeof(e));
	return bh_input_check(&ev, 1024, 768, &got, why, len);
}

static void events(void **state)
{
	char why[96];

	(void) state;
	assert_int_equal(check(BH_INPUT_EV_KEY, (struct bh_input_event){.keysym = 'a', .down = 1},
			       why, sizeof(why)), 0);
	assert_int_equal(check(BH_INPUT_EV_KEY,
			       (struct bh_input_event){.keysym = BH_KEY_RETURN, .mods = 3}, why,
			       sizeof(why)), 0);
	assert_int_equal(check(BH_INPUT_EV_KEY,
			       (struct bh_input_event){.keysym = BH_KEY_UNICODE + 0x20ac}, why,
			       sizeof(why)), 0);
	assert_int_equal(check(BH_INPUT_EV_POINTER,
			       (struct bh_input_event){.x = 1023, .y = 767, .buttons = 5}, why,
			       sizeof(why)), 0);
}

static void hostile(void **state)
{
	char why[96];

	(void) state;
	assert_int_equal(check(99, (struct bh_input_event){.keysym = 'a'}, why, sizeof(why)),
			 -EINVAL);
	assert_non_null(strstr(why, "event type 99"));
	assert_int_equal(check(BH_INPUT_EV_KEY, (struct bh_input_event){.keysym = 0x1f}, why,
			       sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "keysym 0x1f"));
	assert_int_equal(check(BH_INPUT_EV_KEY,
			       (struct bh_input_event){.keysym = BH_KEY_UNICODE + 0xd800}, why,
			       sizeof(why)), -EINVAL);
	assert_int_equal(check(BH_INPUT_EV_KEY, (struct bh_input_event){.keysym = 'a', .down = 2},
			       why, sizeof(why)), -EINVAL);
	assert_int_equal(check(BH_INPUT_EV_KEY,
			       (struct bh_input_event){.keysym = 'a', .mods = 0x10}, why,
			       sizeof(why)), -EINVAL);
	assert_int_equal(check(BH_INPUT_EV_KEY,
			       (struct bh_input_event){.keysym = 'a', .reserved = 1}, why,
			       sizeof(why)), -EINVAL);
	assert_int_equal(check(BH_INPUT_EV_POINTER, (struct bh_input_event){.x = 1024}, why,
			       sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "outside the 1024x768"));
	assert_int_equal(check(BH_INPUT_EV_POINTER, (struct bh_input_event){.buttons = 0x80},
			       why, sizeof(why)), -EINVAL);
	assert_int_equal(check(BH_INPUT_EV_POINTER, (struct bh_input_event){.keysym = 'a'}, why,
			       sizeof(why)), -EINVAL);
}

static void mods(void **state)
{
	uint16_t m = 0;

	(void) state;
	m = bh_input_mods(m, BH_KEY_SHIFT_L, true);
	m = bh_input_mods(m, BH_KEY_CONTROL_R, true);
	assert_int_equal(m, BH_INPUT_MOD_SHIFT | BH_INPUT_MOD_CTRL);
	m = bh_input_mods(m, 'a', true);
	m = bh_input_mods(m, BH_KEY_SHIFT_L, false);
	assert_int_equal(m, BH_INPUT_MOD_CTRL);
	assert_int_equal(bh_input_unichar('A'), 'A');
	assert_int_equal(bh_input_unichar(0xe9), 0xe9);
	assert_int_equal(bh_input_unichar(BH_KEY_UNICODE + 0x20ac), 0x20ac);
	assert_int_equal(bh_input_unichar(BH_KEY_RETURN), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(events),
	    cmocka_unit_test(hostile),
	    cmocka_unit_test(mods),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
