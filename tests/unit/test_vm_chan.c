// SPDX-License-Identifier: MIT
/*
 * The host's side of a driver VM's channel (lib/vm_chan.c), where it must
 * not block: the doorbell's eventfd shares its O_NONBLOCK with QEMU, whose
 * socket chardev clears it on every fd it receives (so does any other
 * holder), and the wake-up line is a socket anyone may make blocking. Here
 * both are made blocking behind the server's back, as QEMU does, and the
 * server's calls must still return at once, counting what was there.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bulkhead/vm_chan.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(doorbell_read_never_blocks),
		cmocka_unit_test(line_never_blocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
