// SPDX-License-Identifier: MIT
/*
 * The USB session's client side (lib/usb.c): the setup packet in a
 * descriptor's arg, the configuration descriptor walk with descriptors
 * that lie about their lengths, and a request and its ack over a real
 * packet stream with a server played by the test (and its hang-up).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bulkhead/usb.h"

static void setup_arg_round_trip(void **state)
{
	struct bh_usb_setup s = { .type = 0x80, .request = 6, .value = 0x0200, .index = 0x0409,
				  .length = 93 };
	uint64_t arg = bh_usb_setup_arg(&s);
	struct bh_usb_setup t = bh_usb_arg_setup(arg);

	(void)state;
	/* little-endian as on the wire: bmRequestType is the low byte */
	assert_int_equal(arg & 0xff, 0x80);
	assert_int_equal((arg >> 8) & 0xff, 6);
	assert_int_equal(arg >> 48, 93);
	assert_memory_equal(&s, &t, sizeof(s));
}

static void desc_walk(void **state)
{
	/* configuration, interface, class (0x21), endpoint, endpoint */
	uint8_t cfg[] = { 9, 2, 32, 0, 1, 1, 0, 0x80, 50,  9, 4, 0, 0, 2, 0x0b, 0, 0, 0,
			  0, 0x21, /* patched below */
			  7, 5, 0x82, 2, 64, 0, 0, 7, 5, 0x03, 2, 64, 0, 0 };
	unsigned int off = 0, n = 0;
	const uint8_t *p;

	(void)state;
	/* the class descriptor: 2 bytes long here */
	cfg[18] = 2;
	while ((p = bh_usb_next_desc(cfg, sizeof(cfg), &off, 5)))
		n++;
	assert_int_equal(n, 2);
	off = 0;
	p = bh_usb_next_desc(cfg, sizeof(cfg), &off, 4);
	assert_non_null(p);
	assert_int_equal(p[5], 0x0b);
}

static void desc_walk_lies(void **state)
{
	uint8_t zero[] = { 9, 2, 9, 0, 1, 1, 0, 0x80, 50, 0, 4, 7, 5, 0x81, 3, 8, 0, 10 };
	uint8_t over[] = { 9, 2, 9, 0, 1, 1, 0, 0x80, 50, 200, 5, 0x81, 3, 8, 0, 10 };
	uint8_t one[] = { 1 };
	unsigned int off = 0;

	(void)state;
	/* a zero-length descriptor ends the walk: it would never advance */
	assert_null(bh_usb_next_desc(zero, sizeof(zero), &off, 5));
	/* one that runs past the end is not returned */
	off = 0;
	assert_null(bh_usb_next_desc(over, sizeof(over), &off, 5));
	off = 0;
	assert_null(bh_usb_next_desc(one, sizeof(one), &off, 0));
	/* an offset past the end */
	off = 1000;
	assert_null(bh_usb_next_desc(over, sizeof(over), &off, 0));
}

/* a client's struct bh_usb and the server's sink on the same memory */
struct fx {
	struct bh_usb u;
	struct bh_packet_stream sink;
	void *map;
	size_t size;
	int server_fd;
};

static int fx_setup(void **state)
{
	static struct fx f;
	int sv[2], submit, ack;

	memset(&f, 0, sizeof(f));
	f.size = bh_ps_region_size(BH_USB_RING, BH_USB_BULK_SIZE);
	f.map = mmap(NULL, f.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(f.map != MAP_FAILED);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	submit = eventfd(0, EFD_NONBLOCK);
	ack = eventfd(0, EFD_NONBLOCK);
	assert_int_equal(bh_ps_attach(&f.u.s.ps[0], BH_PS_SOURCE, f.map, f.size, BH_USB_RING,
				      BH_USB_BULK_SIZE, BH_USB_SLOT, submit, ack),
			 0);
	assert_int_equal(bh_ps_attach(&f.sink, BH_PS_SINK, f.map, f.size, BH_USB_RING,
				      BH_USB_BULK_SIZE, BH_USB_SLOT, submit, ack),
			 0);
	f.u.ps = &f.u.s.ps[0];
	f.u.s.fd = sv[0];
	f.server_fd = sv[1];
	*state = &f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	close(f->u.ps->submit.efd);
	close(f->u.ps->ack.efd);
	bh_ps_detach(f->u.ps);
	bh_ps_detach(&f->sink);
	close(f->u.s.fd);
	if (f->server_fd >= 0)
		close(f->server_fd);
	munmap(f->map, f->size);
	return 0;
}

static void request_and_ack(void **state)
{
	struct fx *f = *state;
	struct bh_ps_desc d, got, ack;
	uint8_t payload[4] = { 1, 2, 3, 4 };

	assert_int_equal(bh_usb_submit(&f->u, BH_USB_BULK, 0x03, payload, sizeof(payload), 7, &d),
			 0);
	/* the server's side: the request as sent, its data in the bulk buffer */
	assert_int_equal(bh_ps_get(&f->sink, &got, 1), 1);
	assert_int_equal(got.op, BH_USB_BULK);
	assert_int_equal(got.arg, 0x03);
	assert_int_equal(got.tag, 7);
	assert_memory_equal(bh_ps_data(&f->sink, &got), payload, sizeof(payload));
	got.status = 0;
	got.length = 3;
	assert_int_equal(bh_ps_put(&f->sink, &got, 1), 1);
	bh_ps_flush(&f->sink);
	assert_int_equal(bh_usb_wait(&f->u, 7, 1000, &ack, NULL, NULL), 1);
	assert_int_equal(ack.length, 3);
	assert_int_equal(ack.status, 0);
	bh_ps_free(f->u.ps, &ack);
	/* nothing more: a timeout */
	assert_int_equal(bh_usb_wait(&f->u, 8, 50, &ack, NULL, NULL), 0);
}

static void hang_up(void **state)
{
	struct fx *f = *state;
	struct bh_ps_desc d, ack;

	assert_int_equal(bh_usb_submit(&f->u, BH_USB_BULK, 0x82, NULL, 64, 9, &d), 0);
	/* the server ends the session (a device unplugged): the client sees a hang-up */
	close(f->server_fd);
	f->server_fd = -1;
	assert_int_equal(bh_usb_wait(&f->u, 9, 1000, &ack, NULL, NULL), -ECONNRESET);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(setup_arg_round_trip),
		cmocka_unit_test(desc_walk),
		cmocka_unit_test(desc_walk_lies),
		cmocka_unit_test_setup_teardown(request_and_ack, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(hang_up, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests_name("usb", tests, NULL, NULL);
}
