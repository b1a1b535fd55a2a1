/* SPDX-License-Identifier: MIT */
/*
 * The Input session: keys and pointer events from a source (the VNC
 * bridge; later a USB keyboard's driver) to the client that owns the
 * screen (term-fb). Genode split its GUI stack into Capture and Event
 * sessions in 20.08, both served by the GUI server, which passes events to
 * the client with the focus. Here the display driver serves Framebuffer
 * and Capture; the screen's owner is the GUI server of its screen and so
 * serves "input": sources are its clients, routed by core as any session
 * ('session = input OWNER'), and the driver stays out of the input path.
 *
 * The session has no packet stream: events are rare and small, so each is
 * one struct bh_session_event on the session socket (a SOCK_SEQPACKET
 * pair), type BH_INPUT_EV_KEY or BH_INPUT_EV_POINTER, with a struct
 * bh_input_event in its data. The socket's buffer bounds what a source can
 * queue; the server takes at most BH_INPUT_PER_PASS events per pass of its
 * loop, checks each (bh_input_check) and counts and drops what is wrong; a
 * source that sends more than BH_INPUT_BAD_MAX bad events loses its session.
 *
 * Keys are X11 keysyms (what RFB carries, RFC 6143 7.5.4): the sender's
 * keyboard layout is applied already, so 'A' arrives as 0x41 with shift
 * held. Accepted: Latin-1 (0x20-0x7e, 0xa0-0xff), the function keys and
 * modifiers (0xff00-0xffff) and Unicode keysyms (0x01000000 + code point,
 * up to U+10FFFF). mods is the state of the modifiers after the event
 * (BH_INPUT_MOD_*, kept by bh_input_mods). Pointer: absolute x, y in the
 * screen's pixels and the buttons held (bit 0 left, 1 middle, 2 right,
 * 3/4 wheel up/down).
 */
#ifndef BULKHEAD_INPUT_H
#define BULKHEAD_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bulkhead/session.h"

#define BH_INPUT_SERVICE "input"
#define BH_INPUT_VERSION 1
/* events a server takes from one source in one pass of its loop */
#define BH_INPUT_PER_PASS 64
/* bad events a source may send before its session ends */
#define BH_INPUT_BAD_MAX 64

enum bh_input_type {
	BH_INPUT_EV_KEY = 1,
	BH_INPUT_EV_POINTER = 2,
};

enum bh_input_mod {
	BH_INPUT_MOD_SHIFT = 1u << 0,
	BH_INPUT_MOD_CTRL = 1u << 1,
	BH_INPUT_MOD_ALT = 1u << 2,
	BH_INPUT_MOD_META = 1u << 3,
	BH_INPUT_MOD_ALL = 0xf,
};

/* a few keysyms (X11 keysymdef.h) */
enum {
	BH_KEY_BACKSPACE = 0xff08,
	BH_KEY_TAB = 0xff09,
	BH_KEY_RETURN = 0xff0d,
	BH_KEY_ESCAPE = 0xff1b,
	BH_KEY_HOME = 0xff50,
	BH_KEY_LEFT = 0xff51,
	BH_KEY_UP = 0xff52,
	BH_KEY_RIGHT = 0xff53,
	BH_KEY_DOWN = 0xff54,
	BH_KEY_PAGE_UP = 0xff55,
	BH_KEY_PAGE_DOWN = 0xff56,
	BH_KEY_END = 0xff57,
	BH_KEY_INSERT = 0xff63,
	BH_KEY_KP_ENTER = 0xff8d,
	BH_KEY_F1 = 0xffbe,
	BH_KEY_F12 = 0xffc9,
	BH_KEY_SHIFT_L = 0xffe1,
	BH_KEY_SHIFT_R = 0xffe2,
	BH_KEY_CONTROL_L = 0xffe3,
	BH_KEY_CONTROL_R = 0xffe4,
	BH_KEY_META_L = 0xffe7,
	BH_KEY_META_R = 0xffe8,
	BH_KEY_ALT_L = 0xffe9,
	BH_KEY_ALT_R = 0xffea,
	BH_KEY_DELETE = 0xffff,
	BH_KEY_UNICODE = 0x01000000,
};

/* the session's info (setup) */
struct bh_input_info {
	uint32_t version;
	uint32_t width, height; /* the screen, for pointer positions */
};

/* an event's data */
struct bh_input_event {
	uint32_t keysym;  /* key */
	uint16_t x, y;	  /* pointer */
	uint8_t down;	  /* key: 1 pressed, 0 released */
	uint8_t buttons;  /* pointer */
	uint16_t mods;	  /* BH_INPUT_MOD_* after the event */
	uint32_t reserved;
};

/* the modifiers after keysym went down or up */
uint16_t bh_input_mods(uint16_t mods, uint32_t keysym, bool down);

/* source: send a key or a pointer event; 0 or -errno (-EAGAIN: the server is behind) */
int bh_input_key(struct bh_session *s, uint32_t keysym, bool down, uint16_t mods);
int bh_input_pointer(struct bh_session *s, uint32_t x, uint32_t y, uint8_t buttons);

/*
 * server: check an event against the screen (width x height); 0 with *e,
 * or -EINVAL with why (unknown type, keysym out of range, flags that are
 * not 0/1, modifier bits unknown, pointer outside the screen, reserved
 * bytes set)
 */
int bh_input_check(const struct bh_session_event *ev, uint32_t width, uint32_t height,
		   struct bh_input_event *e, char *why, size_t why_len);

/* the code point a keysym types, or 0 if it is a function key or none */
uint32_t bh_input_unichar(uint32_t keysym);

#endif
