// SPDX-License-Identifier: MIT
/*
 * ccid: a class driver for USB smart-card readers (USB CCID 1.1, "Device
 * Class: Smart Card CCID", revision 1.1), written against QEMU's usb-ccid
 * with an emulated card, running as an unprivileged, sandboxed process.
 *
 * It owns no hardware: its reader is a USB device the xhci driver grants
 * it over a USB session (bulkhead/usb.h; "session = usb xhci 08e6:4433").
 * From the configuration descriptor it takes the CCID interface, its
 * class descriptor (5.1) and its three endpoints (3.2.x: bulk OUT for
 * commands, bulk IN for their answers, interrupt IN for slot changes).
 * Then, for slot 0:
 *   PC_to_RDR_GetSlotStatus (6.1.3) -> RDR_to_PC_SlotStatus (6.2.2): is
 *     there a card;
 *   PC_to_RDR_IccPowerOn (6.1.1) -> RDR_to_PC_DataBlock (6.2.1): its ATR;
 *   PC_to_RDR_XfrBlock (6.1.4) -> RDR_to_PC_DataBlock: one APDU each way
 *     (QEMU's reader exchanges TPDUs for T=0 with an emulated card that
 *     takes whole APDUs, so a short APDU goes as it is);
 *   RDR_to_PC_NotifySlotChange (6.3.1) on interrupt IN: card inserted or
 *     removed; an interrupt IN request is kept in flight for it.
 * Each answer's bStatus and bError (6.2.6) are checked, and its bSeq
 * against the command's; a time extension request (bmCommandStatus 2)
 * makes us read again.
 *
 * It serves the card as the Smartcard session (bulkhead/smartcard.h) to
 * native clients, set-up bounded by bulkhead/service.h: the state and ATR
 * at setup and on every change, one APDU in and its response out.
 *
 * When the USB session hangs up (the reader was unplugged, or the xhci
 * driver restarted), the card is gone to our clients, an APDU in flight
 * fails with -EIO, and we open a new USB session until one is granted.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/msg.h"
#include "bulkhead/service.h"
#include "bulkhead/session.h"
#include "bulkhead/smartcard.h"
#include "bulkhead/usb.h"

#define BEAT_MS 200
#define RECONNECT_MS 500
#define CMD_TIMEOUT_MS 5000 /* an answer from the reader */
#define MAX_CLIENTS 4

/* USB 2.0 9.4: descriptor types */
#define USB_DT_INTERFACE 4
#define USB_DT_ENDPOINT 5
/* USB CCID 1.1, 4.3 and 5.1 */
#define CCID_CLASS 0x0b
#define CCID_DT_FUNCTIONAL 0x21
#define CCID_DESC_LEN 0x36
/* 6.1 and 6.2: message types */
#define PC_TO_RDR_ICC_POWER_ON 0x62
#define PC_TO_RDR_ICC_POWER_OFF 0x63
#define PC_TO_RDR_GET_SLOT_STATUS 0x65
#define PC_TO_RDR_XFR_BLOCK 0x6f
#define RDR_TO_PC_DATA_BLOCK 0x80
#define RDR_TO_PC_SLOT_STATUS 0x81
#define RDR_TO_PC_NOTIFY_SLOT_CHANGE 0x50
#define RDR_TO_PC_HARDWARE_ERROR 0x51
#define CCID_HEADER 10
/* 6.2.6: bStatus */
#define ICC_STATUS(b) ((b) & 3)
#define ICC_ACTIVE 0
#define ICC_INACTIVE 1
#define ICC_ABSENT 2
#define CMD_STATUS(b) ((b) >> 6)
#define CMD_FAILED 1
#define CMD_TIME_EXTENSION 2

/* tags of our USB requests */
#define TAG_OUT 1
#define TAG_IN 2
#define TAG_INTR 3
#define TAG_CTRL 4

struct client {
	struct bh_session s;
	bool open;
};

struct ccid {
	struct bh_core core;
	struct bh_service svc;
	struct client client[MAX_CLIENTS];
	/* the reader */
	struct bh_usb usb;
	bool connected;
	uint8_t bulk_in, bulk_out, intr_in;
	uint16_t intr_len;
	uint32_t max_msg; /* dwMaxCCIDMessageLength, within a slot */
	uint32_t features;
	uint8_t seq;
	bool intr_busy;
	bool notified; /* a slot change came while we waited for something else */
	uint8_t slot_state;
	/* the card */
	bool present;
	uint8_t atr[BH_SC_ATR_MAX];
	uint8_t atr_len;
	uint64_t last_beat_ns, last_try_ns;
	uint64_t apdus, sessions;
	unsigned int connects;
	char last_why[256];
};

static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
	(void)sig;
	stopping = 1;
}

static void beat(struct ccid *c)
{
	uint64_t now = bh_coarse_ns();

	if (now - c->last_beat_ns < BEAT_MS * 1000000ull)
		return;
	c->last_beat_ns = now;
	if (bh_heartbeat(&c->core) < 0) {
		if (!stopping)
			printf("ccid: heartbeat: %s; core is gone\n", bh_error(&c->core));
		exit(0);
	}
}

static void hex(char *out, size_t size, const uint8_t *b, unsigned int n)
{
	size_t len = 0;

	out[0] = 0;
	for (unsigned int i = 0; i < n && len + 3 < size; i++)
		len += (size_t)snprintf(out + len, size - len, "%02x", b[i]);
}

static uint32_t le32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- smartcard sessions ---- */

static void send_status(struct ccid *c, struct client *cl)
{
	struct bh_smartcard_msg m = { .magic = BH_SC_MAGIC, .type = BH_SC_STATUS,
				      .present = c->present, .len = c->present ? c->atr_len : 0 };

	memcpy(m.data, c->atr, m.len);
	bh_dgram_send(cl->s.fd, &m, sizeof(m), NULL, 0);
}

static void broadcast_status(struct ccid *c)
{
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (c->client[i].open)
			send_status(c, &c->client[i]);
}

static void accept_clients(struct ccid *c)
{
	struct bh_session_request req;
	int rc;

	while ((rc = bh_service_next(&c->svc, &req)) == 1) {
		struct client *cl = NULL;
		struct bh_smartcard_info info = { .version = BH_SMARTCARD_VERSION };

		for (int i = 0; i < MAX_CLIENTS && !cl; i++)
			if (!c->client[i].open)
				cl = &c->client[i];
		if (!cl || stopping) {
			printf("ccid: refused a session from %s: %s\n", req.client,
			       stopping ? "shutting down" : "too many clients");
			bh_service_refuse(&c->svc, &req);
			continue;
		}
		info.present = c->present;
		info.atr_len = c->present ? c->atr_len : 0;
		memcpy(info.atr, c->atr, info.atr_len);
		snprintf(info.reader, sizeof(info.reader), "%s", c->connected ? c->usb.info.product_name
									 : "(no reader)");
		rc = bh_session_offer_regions(req.fd, BH_SMARTCARD_SERVICE, NULL, 0, NULL, NULL, &info,
					      sizeof(info), &cl->s);
		cl->s.id = req.id;
		snprintf(cl->s.peer, sizeof(cl->s.peer), "%s", req.client);
		if (rc) {
			printf("ccid: session for %s failed: %s\n", req.client, strerror(-rc));
			bh_session_close(&c->core, &cl->s);
			continue;
		}
		cl->s.set_up = 1;
		cl->open = true;
		c->sessions++;
		printf("ccid: serving %s: card %s\n", req.client, c->present ? "present" : "absent");
	}
}

static void client_close(struct ccid *c, struct client *cl)
{
	printf("ccid: client %s gone\n", cl->s.peer);
	bh_session_close(&c->core, &cl->s);
	cl->open = false;
}

/* ---- the reader ---- */

static void reader_lost(struct ccid *c, const char *why)
{
	if (!c->connected)
		return;
	printf("ccid: reader lost (%s): the card is gone to our clients; reconnecting\n", why);
	bh_usb_close(&c->usb);
	c->connected = false;
	c->intr_busy = false;
	c->present = false;
	c->atr_len = 0;
	broadcast_status(c);
}

/* an interrupt IN ack that came while we waited for another: note the slot change */
static void on_other(void *arg, const struct bh_ps_desc *d)
{
	struct ccid *c = arg;

	if (d->tag == TAG_INTR) {
		const uint8_t *b = bh_ps_data(c->usb.ps, d);
		c->intr_busy = false;
		if (!d->status && d->length >= 2 && b[0] == RDR_TO_PC_NOTIFY_SLOT_CHANGE) {
			c->slot_state = b[1];
			c->notified = true;
		}
	}
	bh_ps_free(c->usb.ps, d);
}

/* wait for our request tag, in BEAT_MS steps; 1 with *ack, 0 timeout, <0 hang-up */
static int usb_wait(struct ccid *c, uint32_t tag, int timeout_ms, struct bh_ps_desc *ack)
{
	for (int waited = 0; waited < timeout_ms; waited += BEAT_MS) {
		int rc;

		if (!c->connected)
			return -ECONNRESET;
		rc = bh_usb_wait(&c->usb, tag, BEAT_MS, ack, on_other, c);
		beat(c);
		if (rc < 0)
			reader_lost(c, "the USB session hung up");
		if (rc)
			return rc;
	}
	return 0;
}

/* take a request back that the device did not answer, and the slot with it */
static void usb_cancel(struct ccid *c, uint32_t tag)
{
	struct bh_ps_desc d, ack;

	if (!c->connected || bh_usb_submit(&c->usb, BH_USB_CANCEL, tag, NULL, 0, TAG_CTRL + 100, &d))
		return;
	if (usb_wait(c, tag, 1000, &ack) == 1)
		bh_ps_free(c->usb.ps, &ack);
	if (usb_wait(c, TAG_CTRL + 100, 1000, &ack) == 1)
		bh_ps_free(c->usb.ps, &ack);
}

/*
 * One command message out on bulk OUT, its answer in on bulk IN (6.1, 6.2).
 * The answer's length, or -errno: -EIO the transfer failed, -EBADMSG an
 * answer that is not one to this command, -ETIMEDOUT no answer.
 */
static int ccid_command(struct ccid *c, uint8_t type, const uint8_t *data, uint32_t len,
			uint8_t *reply, uint32_t size)
{
	uint8_t msg[CCID_HEADER + BH_SC_APDU_MAX];
	struct bh_ps_desc d, ack;
	uint8_t seq = c->seq++;
	int rc, tries = 0;

	if (!c->connected)
		return -ECONNRESET;
	if (len > BH_SC_APDU_MAX)
		return -EINVAL;
	memset(msg, 0, CCID_HEADER);
	msg[0] = type;
	msg[1] = (uint8_t)len;
	msg[2] = (uint8_t)(len >> 8);
	msg[6] = seq; /* bSlot 0; bBWI, wLevelParameter or bPowerSelect 0 (automatic) */
	memcpy(msg + CCID_HEADER, data, len);
	rc = bh_usb_submit(&c->usb, BH_USB_BULK, c->bulk_out, msg, CCID_HEADER + len, TAG_OUT, &d);
	if (rc)
		return rc;
	rc = usb_wait(c, TAG_OUT, CMD_TIMEOUT_MS, &ack);
	if (rc <= 0) {
		if (rc == 0)
			usb_cancel(c, TAG_OUT);
		return rc ? rc : -ETIMEDOUT;
	}
	bh_ps_free(c->usb.ps, &ack);
	if (ack.status)
		return ack.status;
again:
	rc = bh_usb_submit(&c->usb, BH_USB_BULK, c->bulk_in, NULL, c->max_msg, TAG_IN, &d);
	if (rc)
		return rc;
	rc = usb_wait(c, TAG_IN, CMD_TIMEOUT_MS, &ack);
	if (rc <= 0) {
		if (rc == 0)
			usb_cancel(c, TAG_IN);
		return rc ? rc : -ETIMEDOUT;
	}
	if (ack.status) {
		bh_ps_free(c->usb.ps, &ack);
		return ack.status;
	}
	rc = (int)(ack.length < size ? ack.length : size);
	memcpy(reply, bh_ps_data(c->usb.ps, &ack), (size_t)rc);
	bh_ps_free(c->usb.ps, &ack);
	/* 6.2: the answer to our bSeq, whole, on slot 0 */
	if (rc < CCID_HEADER || reply[5] != 0 || reply[6] != seq ||
	    le32(reply + 1) > (uint32_t)rc - CCID_HEADER) {
		printf("ccid: answer to message 0x%02x (seq %u) malformed: %d bytes, type 0x%02x, "
		       "seq %u\n",
		       type, seq, rc, rc > 0 ? reply[0] : 0, rc > 6 ? reply[6] : 0);
		return -EBADMSG;
	}
	/* 6.2.6: the card asks for more time; the answer follows */
	if (CMD_STATUS(reply[7]) == CMD_TIME_EXTENSION && ++tries < 10)
		goto again;
	return rc;
}

static const char *icc_name(uint8_t status)
{
	static const char *const s[] = { "present and active", "present, inactive", "absent",
					 "reserved" };
	return s[ICC_STATUS(status)];
}

/* 6.1.1: power the card on; its ATR, or absent */
static void power_on(struct ccid *c)
{
	uint8_t r[512];
	char h[2 * BH_SC_ATR_MAX + 1];
	uint64_t t0 = bh_now_ns();
	int n = ccid_command(c, PC_TO_RDR_ICC_POWER_ON, NULL, 0, r, sizeof(r));
	uint32_t len = n >= CCID_HEADER ? le32(r + 1) : 0;

	if (n < CCID_HEADER || r[0] != RDR_TO_PC_DATA_BLOCK || CMD_STATUS(r[7]) == CMD_FAILED ||
	    len < 2 || len > BH_SC_ATR_MAX) {
		printf("ccid: IccPowerOn: %s (bStatus 0x%02x, bError 0x%02x, %u ATR bytes)\n",
		       n < 0 ? strerror(-n) : "no ATR", n > 7 ? r[7] : 0, n > 8 ? r[8] : 0, len);
		c->present = n >= CCID_HEADER && ICC_STATUS(r[7]) != ICC_ABSENT;
		c->atr_len = 0;
		return;
	}
	c->present = true;
	c->atr_len = (uint8_t)len;
	memcpy(c->atr, r + CCID_HEADER, len);
	hex(h, sizeof(h), c->atr, len);
	printf("ccid: IccPowerOn -> RDR_to_PC_DataBlock: ATR %s (%u bytes, bStatus 0x%02x: %s) in "
	       "%llu us\n",
	       h, len, r[7], icc_name(r[7]), (unsigned long long)(bh_now_ns() - t0) / 1000);
}

/* 6.1.3: what is in the slot; powers a card on that is there */
static void slot_status(struct ccid *c)
{
	uint8_t r[512];
	int n = ccid_command(c, PC_TO_RDR_GET_SLOT_STATUS, NULL, 0, r, sizeof(r));

	if (n < CCID_HEADER || r[0] != RDR_TO_PC_SLOT_STATUS) {
		printf("ccid: GetSlotStatus: %s\n", n < 0 ? strerror(-n) : "not a slot status");
		return;
	}
	printf("ccid: GetSlotStatus -> RDR_to_PC_SlotStatus: bStatus 0x%02x (ICC %s), bError "
	       "0x%02x, bClockStatus %u\n",
	       r[7], icc_name(r[7]), r[8], r[9]);
	c->present = ICC_STATUS(r[7]) != ICC_ABSENT;
	if (c->present)
		power_on(c);
	else
		c->atr_len = 0;
}

/* 6.1.4: one APDU to the card; the response's length (data and SW1 SW2), or -errno */
static int xfr_block(struct ccid *c, const uint8_t *apdu, uint32_t len, uint8_t *resp,
		     uint32_t size)
{
	uint8_t r[CCID_HEADER + 512];
	int n;
	uint32_t rlen;

	if (!c->connected)
		return -EIO;
	if (!c->present || !c->atr_len)
		return -ENOMEDIUM;
	n = ccid_command(c, PC_TO_RDR_XFR_BLOCK, apdu, len, r, sizeof(r));
	if (n < 0)
		return n == -EINVAL ? n : -EIO;
	rlen = le32(r + 1);
	if (r[0] != RDR_TO_PC_DATA_BLOCK || CMD_STATUS(r[7]) == CMD_FAILED || rlen < 2 ||
	    rlen > size) {
		printf("ccid: XfrBlock: type 0x%02x, bStatus 0x%02x (%s), bError 0x%02x, %u bytes\n",
		       r[0], r[7], icc_name(r[7]), r[8], rlen);
		if (ICC_STATUS(r[7]) == ICC_ABSENT)
			return -ENOMEDIUM;
		return -EIO;
	}
	memcpy(resp, r + CCID_HEADER, rlen);
	return (int)rlen;
}

/* 6.3.1: keep one interrupt IN request in flight for slot changes */
static void arm_interrupt(struct ccid *c)
{
	struct bh_ps_desc d;

	if (!c->intr_in || c->intr_busy || !c->connected)
		return;
	if (!bh_usb_submit(&c->usb, BH_USB_INTERRUPT, c->intr_in, NULL, c->intr_len, TAG_INTR, &d))
		c->intr_busy = true;
}

static void slot_changed(struct ccid *c)
{
	bool was = c->present;

	c->notified = false;
	printf("ccid: RDR_to_PC_NotifySlotChange: bmSlotICCState 0x%02x: card %s%s\n",
	       c->slot_state, c->slot_state & 1 ? "present" : "absent",
	       c->slot_state & 2 ? ", changed" : "");
	if (c->slot_state & 1) {
		if (!was || (c->slot_state & 2) || !c->atr_len)
			slot_status(c);
	} else {
		c->present = false;
		c->atr_len = 0;
	}
	if (was != c->present || (c->slot_state & 2))
		printf("ccid: card %s\n", c->present ? "inserted" : "removed");
	broadcast_status(c);
}

/* the CCID interface in the configuration descriptor, its class descriptor and endpoints */
static int parse_config(struct ccid *c, const uint8_t *cfg, unsigned int len)
{
	const uint8_t *p, *func = NULL;
	unsigned int off = 0;
	bool in_ccid = false;
	uint32_t max_msg;
	char ver[8];

	c->bulk_in = c->bulk_out = c->intr_in = 0;
	while ((p = bh_usb_next_desc(cfg, len, &off, 0))) {
		if (p[1] == USB_DT_INTERFACE && p[0] >= 9)
			in_ccid = p[5] == CCID_CLASS && p[3] == 0;
		else if (in_ccid && p[1] == CCID_DT_FUNCTIONAL && p[0] >= CCID_DESC_LEN)
			func = p;
		else if (in_ccid && p[1] == USB_DT_ENDPOINT && p[0] >= 7) {
			uint8_t a = p[2], type = p[3] & 3;
			uint16_t mps = (uint16_t)(p[4] | p[5] << 8);
			if (type == 2 && (a & 0x80))
				c->bulk_in = a;
			else if (type == 2)
				c->bulk_out = a;
			else if (type == 3 && (a & 0x80)) {
				c->intr_in = a;
				c->intr_len = mps & 0x7ff;
			}
		}
	}
	if (!func || !c->bulk_in || !c->bulk_out) {
		printf("ccid: the device has no CCID interface with a class descriptor and bulk "
		       "endpoints (USB CCID 1.1, 4.3, 5.1)\n");
		return -ENODEV;
	}
	/* 5.1: bcdCCID at 2, bMaxSlotIndex 4, dwProtocols 6, dwFeatures 40, dwMaxCCIDMessageLength 44 */
	c->features = le32(func + 40);
	max_msg = le32(func + 44);
	/* what one bulk IN request reads: the reader's longest message, within a slot */
	c->max_msg = max_msg < CCID_HEADER + 2 || max_msg > BH_USB_SLOT ? BH_USB_SLOT : max_msg;
	if (c->intr_len < 2 || c->intr_len > 64)
		c->intr_len = 2;
	snprintf(ver, sizeof(ver), "%x.%02x", func[3], func[2]);
	printf("ccid: CCID %s, %u slot(s), protocols%s%s, %s exchanges, max message %u bytes; "
	       "bulk IN 0x%02x, bulk OUT 0x%02x, interrupt IN 0x%02x (%u B)\n",
	       ver, func[4] + 1u, le32(func + 6) & 1 ? " T=0" : "", le32(func + 6) & 2 ? " T=1" : "",
	       c->features & 0x40000   ? "extended APDU"
	       : c->features & 0x20000 ? "short APDU"
	       : c->features & 0x10000 ? "TPDU"
				       : "character",
	       max_msg, c->bulk_in, c->bulk_out, c->intr_in, c->intr_len);
	return 0;
}

/* one try at a USB session: the reader's descriptors, then what is in its slot */
static void reader_connect(struct ccid *c)
{
	uint8_t cfg[1024];
	struct bh_usb_setup get = { .type = 0x80, .request = 6, .value = 2 << 8 };
	char why[256];
	uint64_t t0;
	int rc, n;

	c->last_try_ns = bh_coarse_ns();
	rc = bh_usb_open(&c->core, 1000, &c->usb, why, sizeof(why));
	if (rc) {
		/* say it once, not every RECONNECT_MS */
		if (strcmp(why, c->last_why) != 0)
			printf("ccid: no USB session: %s\n", why);
		snprintf(c->last_why, sizeof(c->last_why), "%s", why);
		return;
	}
	c->last_why[0] = 0;
	c->connected = true;
	c->connects++;
	printf("ccid: USB session %u: %04x:%04x \"%s\" on port %u via %s, USB %x.%02x, class "
	       "0x%02x, configuration %u bytes\n",
	       c->connects, c->usb.info.vendor, c->usb.info.product, c->usb.info.product_name,
	       c->usb.info.port, c->usb.info.driver, c->usb.info.device[3], c->usb.info.device[2],
	       c->usb.info.device[4], c->usb.info.config_len);
	get.length = c->usb.info.config_len < sizeof(cfg) ? c->usb.info.config_len : sizeof(cfg);
	t0 = bh_now_ns();
	n = bh_usb_control(&c->usb, &get, cfg, 2000);
	if (n < 9 || parse_config(c, cfg, (unsigned int)n) < 0) {
		printf("ccid: GET_DESCRIPTOR(configuration): %s\n",
		       n < 0 ? strerror(-n) : "unusable");
		reader_lost(c, "no CCID interface");
		return;
	}
	printf("ccid: GET_DESCRIPTOR(configuration): %d bytes in %llu us\n", n,
	       (unsigned long long)(bh_now_ns() - t0) / 1000);
	slot_status(c);
	if (!c->connected)
		return;
	arm_interrupt(c);
	broadcast_status(c);
}

/* an APDU from a client: through the reader, the response back */
static void client_apdu(struct ccid *c, struct client *cl, const struct bh_smartcard_msg *m)
{
	struct bh_smartcard_msg r = { .magic = BH_SC_MAGIC, .type = BH_SC_RESPONSE, .tag = m->tag };
	char h[64];
	uint64_t t0 = bh_now_ns();
	int n = xfr_block(c, m->data, m->len, r.data, BH_SC_RESPONSE_MAX);

	c->apdus++;
	if (n < 0) {
		r.status = n;
	} else {
		r.len = (uint16_t)n;
	}
	/* the first few, then one in a hundred: a client may exchange many */
	if (c->apdus > 3 && c->apdus % 100 && n >= 0)
		goto send;
	hex(h, sizeof(h), m->data, m->len < 16 ? m->len : 16);
	printf("ccid: APDU %llu: %s%s from %s -> %s%02x%02x in %llu us\n",
	       (unsigned long long)c->apdus, h, m->len > 16 ? ".." : "", cl->s.peer, n < 0 ? strerror(-n) : "SW ", n >= 2 ? r.data[n - 2] : 0,
	       n >= 2 ? r.data[n - 1] : 0, (unsigned long long)(bh_now_ns() - t0) / 1000);
send:
	bh_dgram_send(cl->s.fd, &r, sizeof(r), NULL, 0);
}

static void client_msg(struct ccid *c, struct client *cl)
{
	struct bh_smartcard_msg m;
	unsigned int nfds;
	char why[128];
	int fds[1];
	int rc = bh_dgram_recv(cl->s.fd, &m, sizeof(m), fds, 0, &nfds, why, sizeof(why));

	if (rc == -EAGAIN)
		return;
	if (rc == 1 && !bh_smartcard_check(&m) && m.type == BH_SC_APDU) {
		client_apdu(c, cl, &m);
		return;
	}
	if (rc != 0)
		printf("ccid: %s sent what is not an APDU (%s): ending its session\n", cl->s.peer,
		       rc == 1 ? "bad message" : why);
	client_close(c, cl);
}

static void serve(struct ccid *c)
{
	while (!stopping) {
		struct pollfd p[3 + MAX_CLIENTS];
		unsigned int np = 0;
		int rc;

		beat(c);
		bh_service_pass(&c->svc);
		accept_clients(c);
		if (!c->connected && bh_coarse_ns() - c->last_try_ns > RECONNECT_MS * 1000000ull)
			reader_connect(c);
		if (c->connected) {
			struct bh_ps_desc d;
			/* the interrupt IN answer, or a stray one */
			while ((rc = bh_ps_get(c->usb.ps, &d, 1)) == 1)
				on_other(c, &d);
			if (rc < 0)
				reader_lost(c, "the server broke the stream");
		}
		if (c->notified)
			slot_changed(c);
		arm_interrupt(c);
		p[np++] = (struct pollfd){ .fd = c->core.fd, .events = 0 };
		p[np++] = (struct pollfd){ .fd = bh_service_fd(&c->svc), .events = POLLIN };
		if (c->connected && bh_ps_prepare_wait(c->usb.ps)) {
			p[np++] = (struct pollfd){ .fd = bh_ps_wait_fd(c->usb.ps), .events = POLLIN };
			p[np++] = (struct pollfd){ .fd = c->usb.s.fd, .events = POLLIN };
		} else if (c->connected) {
			continue;
		}
		for (int i = 0; i < MAX_CLIENTS; i++)
			if (c->client[i].open && np < sizeof(p) / sizeof(p[0]))
				p[np++] = (struct pollfd){ .fd = c->client[i].s.fd, .events = POLLIN };
		rc = poll(p, np, BEAT_MS);
		if (rc < 0 && errno != EINTR)
			break;
		if (rc <= 0)
			continue;
		if (p[0].revents & (POLLHUP | POLLERR)) {
			printf("ccid: core closed our connection: shutting down\n");
			break;
		}
		for (unsigned int k = 2; k < np; k++) {
			if (!p[k].revents)
				continue;
			if (c->connected && p[k].fd == c->usb.s.fd) {
				struct bh_session_event ev;
				rc = bh_session_recv_event(&c->usb.s, &ev);
				if (rc == 0 || (rc < 0 && rc != -EAGAIN))
					reader_lost(c, "the USB session hung up");
			} else if (c->connected && p[k].fd == bh_ps_wait_fd(c->usb.ps)) {
				bh_ps_drain_signal(c->usb.ps);
			} else {
				for (int i = 0; i < MAX_CLIENTS; i++)
					if (c->client[i].open && c->client[i].s.fd == p[k].fd)
						client_msg(c, &c->client[i]);
			}
		}
	}
}

int main(void)
{
	static struct ccid c;
	struct sigaction sa = { .sa_handler = on_term };

	setvbuf(stdout, NULL, _IOLBF, 0);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (bh_core_open(&c.core) < 0) {
		fprintf(stderr, "ccid: %s\n", bh_error(&c.core));
		return 1;
	}
	printf("ccid: uid %u, start %u\n", getuid(), c.core.hello.restarts + 1);
	if (bh_service_open(&c.svc, &c.core, BH_SMARTCARD_SERVICE, 0, MAX_CLIENTS) < 0) {
		fprintf(stderr, "ccid: %s\n", bh_error(&c.core));
		return 1;
	}
	printf("ccid: serving '%s'\n", BH_SMARTCARD_SERVICE);
	serve(&c);
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (c.client[i].open)
			client_close(&c, &c.client[i]);
	if (c.connected)
		bh_usb_close(&c.usb);
	printf("ccid: stopped: %llu APDUs, %llu sessions, %u USB sessions\n",
	       (unsigned long long)c.apdus, (unsigned long long)c.sessions, c.connects);
	return 0;
}
