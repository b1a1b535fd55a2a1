// SPDX-License-Identifier: MIT
/* The Input session's events: see bulkhead/input.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bulkhead/input.h"

static uint16_t mod_of(uint32_t keysym)
{
	switch (keysym) {
	case BH_KEY_SHIFT_L:
	case BH_KEY_SHIFT_R:
		return BH_INPUT_MOD_SHIFT;
	case BH_KEY_CONTROL_L:
	case BH_KEY_CONTROL_R:
		return BH_INPUT_MOD_CTRL;
	case BH_KEY_ALT_L:
	case BH_KEY_ALT_R:
		return BH_INPUT_MOD_ALT;
	case BH_KEY_META_L:
	case BH_KEY_META_R:
		return BH_INPUT_MOD_META;
	default:
		return 0;
	}
}

uint16_t bh_input_mods(uint16_t mods, uint32_t keysym, bool down)
{
	uint16_t m = mod_of(keysym);

	return (uint16_t) (down ? mods | m : mods & ~m);
}

static bool keysym_valid(uint32_t k)
{
	return (k >= 0x20 && k <= 0x7e) || (k >= 0xa0 && k <= 0xff) ||
	       (k >= 0xff00 && k <= 0xffff) ||
	       (k >= BH_KEY_UNICODE + 0x20 && k <= BH_KEY_UNICODE + 0x10ffff &&
		!(k >= BH_KEY_UNICODE + 0xd800 && k <= BH_KEY_UNICODE + 0xdfff));
}

uint32_t bh_input_unichar(uint32_t k)
{
	if ((k >= 0x20 && k <= 0x7e) || (k >= 0xa0 && k <= 0xff))
		return k;
	if (k >= BH_KEY_UNICODE + 0x20 && keysym_valid(k))
		return k - BH_KEY_UNICODE;
	return 0;
}

int bh_input_key(struct bh_session *s, uint32_t keysym, bool down, uint16_t mods)
{
	struct bh_input_event e = {.keysym = keysym, .down = down, .mods = mods};

	return bh_session_send_event(s, BH_INPUT_EV_KEY, &e, sizeof(e));
}

int bh_input_pointer(struct bh_session *s, uint32_t x, uint32_t y, uint8_t buttons)
{
	struct bh_input_event e = {.x = (uint16_t) x, .y = (uint16_t) y, .buttons = buttons};

	if (x > UINT16_MAX || y > UINT16_MAX)
		return -EINVAL;
	return bh_session_send_event(s, BH_INPUT_EV_POINTER, &e, sizeof(e));
}

int bh_input_check(const struct bh_session_event *ev, uint32_t width, uint32_t height,
		   struct bh_input_event *e, char *why, size_t why_len)
{
	static const uint8_t zero[sizeof(ev->data) - sizeof(*e)];

	memcpy(e, ev->data, sizeof(*e));
	if (e->reserved || memcmp(ev->data + sizeof(*e), zero, sizeof(zero))) {
		snprintf(why, why_len, "reserved bytes set");
		return -EINVAL;
	}
	switch (ev->type) {
	case BH_INPUT_EV_KEY:
		if (!keysym_valid(e->keysym)) {
			snprintf(why, why_len, "keysym 0x%x is none this session carries",
				 e->keysym);
			return -EINVAL;
		}
		if (e->down > 1 || (e->mods & ~BH_INPUT_MOD_ALL) || e->x || e->y || e->buttons) {
			snprintf(why, why_len, "key 0x%x: down %u, mods 0x%x: not a key event",
				 e->keysym, e->down, e->mods);
			return -EINVAL;
		}
		return 0;
	case BH_INPUT_EV_POINTER:
		if (e->x >= width || e->y >= height) {
			snprintf(why, why_len, "pointer at %u,%u: outside the %ux%u screen", e->x,
				 e->y, width, height);
			return -EINVAL;
		}
		if (e->keysym || e->down || e->mods || (e->buttons & 0xe0)) {
			snprintf(why, why_len, "pointer: buttons 0x%x and key fields set",
				 e->buttons);
			return -EINVAL;
		}
		return 0;
	default:
		snprintf(why, why_len, "event type %u: neither key (1) nor pointer (2)", ev->type);
		return -EINVAL;
	}
}
