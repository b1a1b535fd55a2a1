// SPDX-License-Identifier: MIT
/*
 * bulkhead-usb-hostile: a USB session client that asks for what it must
 * not get, for tests/vm/usb.sh. Each step prints
 * "usb-hostile: check NAME PASS|FAIL detail".
 *
 *   bulkhead-usb-hostile            the device our policy names: requests
 *                                   for an endpoint it does not have, an
 *                                   interrupt transfer beyond the
 *                                   endpoint's limit, descriptors outside
 *                                   the bulk buffer, SET_ADDRESS and
 *                                   SET_CONFIGURATION, a control request
 *                                   whose wLength lies, an unknown op, a
 *                                   cancel of nothing, a request to an
 *                                   interface the device does not have;
 *                                   then a good request (still served),
 *                                   then garbage on the session socket
 *                                   (the server ends our session)
 *   bulkhead-usb-hostile --second   a device granted to another client:
 *                                   the session must be refused
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/usb.h"

static struct bh_core core;
static struct bh_usb u;
static unsigned int passed, failed;
static uint32_t next_tag = 100;

static void check(const char *name, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void check(const char *name, bool ok, const char *fmt, ...)
{
	char detail[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	printf("usb-hostile: check %s %s %s\n", name, ok ? "PASS" : "FAIL", detail);
	ok ? passed++ : failed++;
}

static const char *err(int rc)
{
	return rc < 0 ? strerror(-rc) : rc == 0 ? "ok" : "positive";
}

/* a raw descriptor, as a hostile client writes it; the ack's status, or 1 with no ack */
static int raw(uint32_t op, uint64_t arg, uint64_t offset, uint32_t length, uint32_t *acked_len)
{
	struct bh_ps_desc d = { .offset = offset, .length = length, .op = op, .arg = arg,
				.tag = next_tag++ }, ack;
	int rc;

	if (bh_ps_put(u.ps, &d, 1) != 1)
		return -ENOSPC;
	bh_ps_flush(u.ps);
	rc = bh_usb_wait(&u, d.tag, 3000, &ack, NULL, NULL);
	if (rc <= 0)
		return rc < 0 ? rc : 1;
	if (acked_len)
		*acked_len = ack.length;
	return ack.status;
}

/* a well-formed descriptor in a slot of ours; the ack's status */
static int req(uint32_t op, uint64_t arg, uint32_t len, uint32_t *got)
{
	struct bh_ps_desc d, ack;
	uint32_t tag = next_tag++;
	int rc = bh_usb_submit(&u, op, arg, NULL, len, tag, &d);

	if (rc)
		return rc;
	rc = bh_usb_wait(&u, tag, 3000, &ack, NULL, NULL);
	if (rc <= 0)
		return rc < 0 ? rc : 1;
	if (got)
		*got = ack.length;
	bh_ps_free(u.ps, &ack);
	return ack.status;
}

static int setup_req(uint8_t type, uint8_t request, uint16_t value, uint16_t index, uint16_t length,
		     uint32_t desc_len)
{
	struct bh_usb_setup s = { .type = type, .request = request, .value = value, .index = index,
				  .length = length };

	return req(BH_USB_CONTROL, bh_usb_setup_arg(&s), desc_len, NULL);
}

static int second(void)
{
	char why[256];

	/* until we are refused: the first tries may come before the other client holds it */
	for (int i = 0; i < 30; i++) {
		int rc = bh_usb_open(&core, 5000, &u, why, sizeof(why));
		if (rc == -ECONNRESET) {
			check("second_client_refused", true, "try %d: session refused: %s", i + 1, why);
			return 0;
		}
		if (!rc) {
			printf("usb-hostile: try %d: granted %04x:%04x (nobody held it yet); letting "
			       "go\n",
			       i + 1, u.info.vendor, u.info.product);
			bh_usb_close(&u);
		} else {
			printf("usb-hostile: try %d: %s\n", i + 1, why);
		}
		sleep(1);
		bh_heartbeat(&core);
	}
	check("second_client_refused", false, "never refused in 30 tries");
	return 1;
}

int main(int argc, char **argv)
{
	uint8_t cfg[512];
	char why[256];
	struct bh_usb_setup get = { .type = 0x80, .request = 6, .value = 2 << 8 };
	uint8_t intr = 0, intr_mps = 0, bulk_missing;
	unsigned int off = 0;
	const uint8_t *p;
	int rc, n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (bh_core_open(&core) < 0) {
		fprintf(stderr, "usb-hostile: %s\n", bh_error(&core));
		return 1;
	}
	if (argc > 1 && strcmp(argv[1], "--second") == 0)
		return second();
	/* the device may be plugged in later: ask until we get it */
	for (int i = 0;; i++) {
		rc = bh_usb_open(&core, 5000, &u, why, sizeof(why));
		if (!rc)
			break;
		if (i == 90) {
			check("granted", false, "no session in 90 tries: %s", why);
			return 1;
		}
		sleep(1);
		bh_heartbeat(&core);
	}
	check("granted", true, "%04x:%04x \"%s\" on port %u, device descriptor bcdUSB %x.%02x class "
			       "0x%02x, configuration %u bytes",
	      u.info.vendor, u.info.product, u.info.product_name, u.info.port, u.info.device[3],
	      u.info.device[2], u.info.device[4], u.info.config_len);
	get.length = u.info.config_len < sizeof(cfg) ? u.info.config_len : sizeof(cfg);
	n = bh_usb_control(&u, &get, cfg, 3000);
	while (n > 0 && (p = bh_usb_next_desc(cfg, (unsigned int)n, &off, 5)))
		if ((p[3] & 3) == 3 && (p[2] & 0x80)) {
			intr = p[2];
			intr_mps = p[4];
		}
	check("config_read", n >= 9, "GET_DESCRIPTOR(configuration) -> %d bytes, interrupt IN 0x%02x "
				     "(%u B)",
	      n, intr, intr_mps);
	/* an IN endpoint number the device does not have */
	bulk_missing = 0x8e;
	rc = req(BH_USB_BULK, bulk_missing, 64, NULL);
	check("no_such_endpoint", rc == -EINVAL, "bulk IN 0x%02x -> %s", bulk_missing, err(rc));
	rc = req(BH_USB_BULK, 0x1ff, 64, NULL);
	check("bad_endpoint_address", rc == -EINVAL, "endpoint address 0x1ff -> %s", err(rc));
	if (intr) {
		rc = req(BH_USB_BULK, intr, 8, NULL);
		check("wrong_type", rc == -EINVAL, "bulk on interrupt endpoint 0x%02x -> %s", intr,
		      err(rc));
		rc = req(BH_USB_INTERRUPT, intr, 4096, NULL);
		check("beyond_endpoint_limit", rc == -EINVAL,
		      "interrupt IN 0x%02x of 4096 bytes (max packet %u) -> %s", intr, intr_mps,
		      err(rc));
	}
	rc = raw(BH_USB_CONTROL, 0, u.ps->bulk_size + 4096, 8, NULL);
	check("offset_outside", rc == -EINVAL, "offset %llu past the %llu-byte bulk buffer -> %s",
	      (unsigned long long)u.ps->bulk_size + 4096, (unsigned long long)u.ps->bulk_size,
	      err(rc));
	rc = raw(BH_USB_BULK, intr, u.ps->bulk_size - 16, 64, NULL);
	check("length_outside", rc == -EINVAL, "64 bytes at 16 before the end -> %s", err(rc));
	rc = raw(BH_USB_CONTROL, 0, (uint64_t)-4096, 8192, NULL);
	check("offset_wraps", rc == -EINVAL, "offset 2^64-4096 -> %s", err(rc));
	{
		/* wLength tops out below a slot: a control request spanning two is a lie */
		struct bh_usb_setup big = { .type = 0x80, .request = 6, .value = 1 << 8,
					    .length = 0xffff };
		rc = raw(BH_USB_CONTROL, bh_usb_setup_arg(&big), 0, 2 * BH_USB_SLOT, NULL);
		check("beyond_slot", rc == -EINVAL,
		      "GET_DESCRIPTOR over %u bytes (slots are %u, wLength 65535) -> %s",
		      2 * BH_USB_SLOT, BH_USB_SLOT, err(rc));
	}
	rc = setup_req(0x00, 5, 42, 0, 0, 0);
	check("set_address", rc == -EPERM, "SET_ADDRESS 42 -> %s", err(rc));
	rc = setup_req(0x00, 9, 0, 0, 0, 0);
	check("set_configuration", rc == -EPERM, "SET_CONFIGURATION 0 -> %s", err(rc));
	rc = setup_req(0x80, 6, 1 << 8, 0, 18, 64);
	check("wlength_lies", rc == -EINVAL, "wLength 18 in a 64-byte request -> %s", err(rc));
	rc = setup_req(0xa1, 1, 0, 7, 8, 8);
	check("no_such_interface", rc == -EINVAL, "class request to interface 7 -> %s", err(rc));
	rc = req(99, 0, 8, NULL);
	check("unknown_op", rc == -EINVAL, "op 99 -> %s", err(rc));
	rc = req(BH_USB_CANCEL, 0xdead, 0, NULL);
	check("cancel_nothing", rc == -ENOENT, "cancel of tag 0xdead -> %s", err(rc));
	/* after all that: a good request is served */
	{
		struct bh_usb_setup s = { .type = 0x80, .request = 6, .value = 1 << 8, .length = 18 };
		uint8_t dev[18];
		uint64_t t0 = bh_now_ns();
		rc = bh_usb_control(&u, &s, dev, 3000);
		check("still_served", rc == 18 && dev[1] == 1, "GET_DESCRIPTOR(device) -> %d bytes "
							      "(%04x:%04x) in %llu us",
		      rc, dev[8] | dev[9] << 8, dev[10] | dev[11] << 8,
		      (unsigned long long)(bh_now_ns() - t0) / 1000);
		/* a control request the device answers itself: GET_STATUS */
		s = (struct bh_usb_setup){ .type = 0x80, .request = 0, .length = 2 };
		t0 = bh_now_ns();
		rc = bh_usb_control(&u, &s, dev, 3000);
		check("device_control", rc == 2, "GET_STATUS(device) -> %s%d bytes in %llu us",
		      rc < 0 ? strerror(-rc) : "", rc, (unsigned long long)(bh_now_ns() - t0) / 1000);
	}
	/* a transfer the device holds (no key pressed: NAK), taken back with a cancel */
	if (intr) {
		struct bh_ps_desc d, ack, c;
		uint32_t tag = 0;
		int held = 0, st = 1, cst = 1, reports = 0;

		for (int i = 0; i < 3 && !held; i++) {
			tag = next_tag++;
			if (bh_usb_submit(&u, BH_USB_INTERRUPT, intr, NULL, intr_mps, tag, &d))
				break;
			rc = bh_usb_wait(&u, tag, 300, &ack, NULL, NULL);
			if (rc == 0)
				held = 1; /* still in flight */
			else if (rc == 1) {
				reports++; /* a report was waiting: take it and try again */
				bh_ps_free(u.ps, &ack);
			}
		}
		if (held && !bh_usb_submit(&u, BH_USB_CANCEL, tag, NULL, 0, next_tag, &c)) {
			uint64_t t0 = bh_now_ns();
			if (bh_usb_wait(&u, tag, 3000, &ack, NULL, NULL) == 1) {
				st = ack.status;
				bh_ps_free(u.ps, &ack);
			}
			if (bh_usb_wait(&u, next_tag, 3000, &ack, NULL, NULL) == 1) {
				cst = ack.status;
				bh_ps_free(u.ps, &ack);
			}
			next_tag++;
			check("cancel_in_flight", st == -ECANCELED && cst == 0,
			      "interrupt IN 0x%02x held 300 ms (%d report(s) before), cancelled -> %s, "
			      "the cancel -> %s, in %llu us",
			      intr, reports, err(st), err(cst),
			      (unsigned long long)(bh_now_ns() - t0) / 1000);
		} else {
			check("cancel_in_flight", false, "the device never held interrupt IN 0x%02x "
							 "(%d reports)",
			      intr, reports);
		}
	}
	/* a request the device does not know: it stalls EP0, and EP0 works again after */
	{
		struct bh_usb_setup v = { .type = 0xc0, .request = 0x42, .length = 8 };
		struct bh_usb_setup g = { .type = 0x80, .request = 0, .length = 2 };
		uint8_t b[8];
		int after;

		rc = bh_usb_control(&u, &v, b, 3000);
		after = bh_usb_control(&u, &g, b, 3000);
		check("control_stall", rc == -EPIPE && after == 2,
		      "vendor request 0x42 -> %s; GET_STATUS after it -> %d bytes", err(rc), after);
	}
	/* garbage on the session socket: the server ends this session, not itself */
	{
		static const char junk[13] = "not an event";
		struct pollfd pf = { .fd = u.s.fd, .events = POLLIN | POLLRDHUP };
		send(u.s.fd, junk, sizeof(junk), MSG_NOSIGNAL);
		rc = poll(&pf, 1, 5000);
		check("garbage_ends_session", rc == 1 && (pf.revents & (POLLHUP | POLLRDHUP)),
		      "13 bytes of garbage on the session socket -> %s",
		      rc == 1 && (pf.revents & (POLLHUP | POLLRDHUP)) ? "hang-up" : "still open");
	}
	bh_usb_close(&u);
	printf("usb-hostile: done: %u passed, %u failed\n", passed, failed);
	/* stay, quietly: core would restart a component that ends */
	for (;;) {
		sleep(1);
		if (bh_heartbeat(&core) < 0)
			return 0;
	}
}
