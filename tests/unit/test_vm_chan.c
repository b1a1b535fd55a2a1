// SPDX-License-Identifier: MIT
/*
 * The host's side of a driver VM's channel (lib/vm_chan.c), where it must
 * not block: the doorbell's eventfd shares its O_NONBLOCK with QEMU, whose
 * socket chardev clears it on every fd it receives (so does any other
 * holder), and the wake-up line is a socket anyone may make blocking. Here
 * both are made blocking behind the server's back, as QEMU does, and the
 * server's calls must still return at once, counting what was there.
 * And the NIC channel's offload requests (lib/vm_nic.c), which both sides
 * check against what the guest said it takes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bulkhead/nic.h"
#include "bulkhead/vm_chan.h"
#include "bulkhead/vm_nic.h"

/* another holder of the same file description (QEMU) clears O_NONBLOCK */
static void make_blocking(int fd)
{
	assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK), 0);
}

static void doorbell_read_never_blocks(void **state)
{
	struct bh_vm_chan ch = { .who = "test", .line = -1 };
	int core = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	uint32_t sleeping = 1;
	uint64_t one = 1;

	(void)state;
	assert_true(core >= 0);
	ch.kick = fcntl(core, F_DUPFD_CLOEXEC, 0); /* as BH_OP_VM_NIC hands it out */
	make_blocking(core);
	/* nothing rang: returns, counts nothing, says we are awake */
	alarm(5);
	bh_vm_chan_woken(&ch, &sleeping);
	alarm(0);
	assert_int_equal(sleeping, 0);
	assert_int_equal(ch.kicks, 0);
	/* two rings are counted, then nothing again */
	assert_int_equal(write(core, &one, sizeof(one)), sizeof(one));
	assert_int_equal(write(core, &one, sizeof(one)), sizeof(one));
	bh_vm_chan_woken(&ch, &sleeping);
	assert_int_equal(ch.kicks, 2);
	alarm(5);
	bh_vm_chan_woken(&ch, &sleeping);
	alarm(0);
	assert_int_equal(ch.kicks, 2);
	close(ch.kick);
	close(core);
}

static void line_never_blocks(void **state)
{
	struct bh_vm_chan ch = { .who = "test", .kick = -1 };
	uint32_t guest_sleeping = 1;
	int sv[2];
	char buf[8];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ch.line = sv[0];
	/* empty: drained at once, kept */
	alarm(5);
	bh_vm_chan_line_input(&ch);
	alarm(0);
	assert_int_equal(ch.line, sv[0]);
	/* a wake-up goes out while the guest sleeps */
	bh_vm_chan_wake(&ch, &guest_sleeping);
	assert_int_equal(ch.irqs, 1);
	assert_int_equal(read(sv[1], buf, sizeof(buf)), 1);
	/* QEMU gone: the line is dropped */
	close(sv[1]);
	bh_vm_chan_line_input(&ch);
	assert_int_equal(ch.line, -1);
	close(sv[0]);
}

/* a request as nic-tap makes it: TCP over IPv4 at 34, its checksum field 16 bytes in */
static struct bh_ps_desc tx(uint32_t op, uint32_t len, uint16_t hdr, uint16_t mss)
{
	return (struct bh_ps_desc){ .op = op, .length = len,
				    .arg = bh_nic_tx_arg(34, 16, op == BH_NIC_TX_CSUM ? 0 : hdr, mss) };
}

static void tx_requests_checked(void **state)
{
	const uint32_t all = BH_NIC_OFF_TX_CSUM | BH_NIC_OFF_TSO4 | BH_NIC_OFF_TSO6;
	struct bh_ps_desc d;

	(void)state;
	/* plain frames: any guest, any length a frame may have */
	d = tx(0, 60, 0, 0);
	assert_true(bh_vmnic_tx_ok(&d, 0));
	d = tx(0, BH_NIC_FRAME_MAX + 1, 0, 0);
	assert_false(bh_vmnic_tx_ok(&d, all));
	d.length = 60;
	d.status = -EINVAL;
	assert_false(bh_vmnic_tx_ok(&d, all));
	/* a checksum: only for a guest that takes it, its field inside the frame */
	d = tx(BH_NIC_TX_CSUM, 60, 0, 0);
	assert_true(bh_vmnic_tx_ok(&d, BH_NIC_OFF_TX_CSUM));
	assert_false(bh_vmnic_tx_ok(&d, BH_NIC_OFF_TSO4));
	d = tx(BH_NIC_TX_CSUM, 51, 0, 0);
	assert_false(bh_vmnic_tx_ok(&d, all));
	/* segmentation: 64 KiB, headers before the payload, segments that fit the MTU */
	d = tx(BH_NIC_TX_TSO4, BH_NIC_GSO_MAX, 66, 1448);
	assert_true(bh_vmnic_tx_ok(&d, all));
	assert_false(bh_vmnic_tx_ok(&d, BH_NIC_OFF_TX_CSUM | BH_NIC_OFF_TSO6));
	d = tx(BH_NIC_TX_TSO4, BH_NIC_GSO_MAX + 1, 66, 1448);
	assert_false(bh_vmnic_tx_ok(&d, all));
	d = tx(BH_NIC_TX_TSO6, 9000, 86, 1500);
	assert_false(bh_vmnic_tx_ok(&d, all));
	d = tx(BH_NIC_TX_TSO4, 9000, 40, 1448);
	assert_false(bh_vmnic_tx_ok(&d, all));
	d = tx(BH_NIC_TX_TSO4, 66, 66, 1448);
	assert_false(bh_vmnic_tx_ok(&d, all));
	d = tx(BH_NIC_TX_TSO4, 9000, 66, 0);
	assert_false(bh_vmnic_tx_ok(&d, all));
	/* one request at a time, none unknown */
	d = tx(BH_NIC_TX_TSO4 | BH_NIC_TX_TSO6, 9000, 66, 1448);
	assert_false(bh_vmnic_tx_ok(&d, all));
	d = tx(1u << 7, 60, 0, 0);
	assert_false(bh_vmnic_tx_ok(&d, all));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(doorbell_read_never_blocks),
		cmocka_unit_test(line_never_blocks),
		cmocka_unit_test(tx_requests_checked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
