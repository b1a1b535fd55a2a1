/* SPDX-License-Identifier: MIT */
/*
 * The Smartcard session: one card slot, served by a reader driver (e.g.
 * drivers/ccid) to native clients (e.g. tests/tools/apdu.c).
 *
 * An APDU is at most a few hundred bytes and a card answers a few dozen a
 * second, so the session has no packet stream: every message, either way,
 * is one fixed-size struct bh_smartcard_msg datagram on the session
 * socket, checked by its receiver like any other input.
 *
 *   server -> client  BH_SC_STATUS    the slot changed: present, and the
 *                                     ATR of a powered card (ISO 7816-3 8.2)
 *   client -> server  BH_SC_APDU      a command APDU (ISO 7816-4 5.1), tag
 *                                     the client's
 *   server -> client  BH_SC_RESPONSE  its response APDU (data and SW1 SW2),
 *                                     same tag; status 0, or -errno:
 *                                     -ENOMEDIUM no card, -EIO the reader
 *                                     failed, -EINVAL a malformed command,
 *                                     -EBUSY one is already in flight
 *
 * The setup's info is struct bh_smartcard_info: the state at setup time.
 * One APDU at a time per session; a card is shared by its sessions, their
 * APDUs taken in turn.
 */
#ifndef BULKHEAD_SMARTCARD_H
#define BULKHEAD_SMARTCARD_H

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "bulkhead/session.h"

#define BH_SMARTCARD_SERVICE "smartcard"
#define BH_SMARTCARD_VERSION 1
#define BH_SC_MAGIC 0x44524143u /* "CARD" */
#define BH_SC_ATR_MAX 33	/* ISO 7816-3: TS and at most 32 more */
/* a short APDU: 4 header bytes, Lc, 255 data bytes, Le; a response: 256 data + SW */
#define BH_SC_APDU_MAX 261
#define BH_SC_RESPONSE_MAX 258

enum bh_smartcard_type {
	BH_SC_STATUS = 1,
	BH_SC_APDU = 2,
	BH_SC_RESPONSE = 3,
};

struct bh_smartcard_info {
	uint32_t version;
	uint8_t present; /* a card is in the slot */
	uint8_t atr_len; /* 0 while it is not powered */
	uint8_t atr[BH_SC_ATR_MAX];
	uint8_t reserved;
	char reader[48]; /* what serves it, for logs */
};

struct bh_smartcard_msg {
	uint32_t magic;
	uint16_t type; /* enum bh_smartcard_type */
	uint16_t len;  /* bytes of data */
	uint32_t tag;
	int32_t status;
	uint8_t present; /* BH_SC_STATUS */
	uint8_t reserved[3];
	uint8_t data[300];
};

_Static_assert(sizeof(struct bh_smartcard_info) <= BH_SESSION_INFO, "smartcard info too large");

/* a message as its receiver must find it; 0, or -EPROTO */
static inline int bh_smartcard_check(const struct bh_smartcard_msg *m)
{
	if (m->magic != BH_SC_MAGIC)
		return -EPROTO;
	switch (m->type) {
	case BH_SC_STATUS:
		return m->len <= BH_SC_ATR_MAX && m->present <= 1 ? 0 : -EPROTO;
	case BH_SC_APDU:
		return m->len >= 4 && m->len <= BH_SC_APDU_MAX ? 0 : -EPROTO;
	case BH_SC_RESPONSE:
		return m->len <= BH_SC_RESPONSE_MAX && (m->status || m->len >= 2) ? 0 : -EPROTO;
	}
	return -EPROTO;
}

#endif
