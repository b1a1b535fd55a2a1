// SPDX-License-Identifier: MIT
/*
 * libFuzzer: a client taking a session setup from a hostile server. The
 * input is the setup datagram; the fds beside it are memfds and eventfds
 * of sizes the input also chooses. Refuse or accept, never crash or leak.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bulkhead/msg.h"
#include "bulkhead/session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bh_session_setup setup;
	struct bh_session s;
	int fds[6], sv[2];
	unsigned int nfds;
	char why[160];

	if (size < 2)
		return 0;
	/* first byte: how many fds; second: memfd size in pages */
	nfds = data[0] % 7;
	size_t pages = data[1];
	data += 2;
	size -= 2;
	memset(&setup, 0, sizeof(setup));
	memcpy(&setup, data, size < sizeof(setup) ? size : sizeof(setup));
	for (unsigned int i = 0; i < nfds; i++) {
		if (i % 3 == 0) {
			fds[i] = memfd_create("fuzz", MFD_CLOEXEC);
			if (ftruncate(fds[i], (off_t)pages * 4096) < 0)
				abort();
		} else {
			fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		}
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	size_t len = size > sizeof(setup) ? sizeof(setup) + (size - sizeof(setup)) % 3 : sizeof(setup);
	if (bh_dgram_send(sv[1], &setup, len > sizeof(setup) ? sizeof(setup) : len, fds, nfds) < 0)
		abort();
	for (unsigned int i = 0; i < nfds; i++)
		close(fds[i]);
	if (bh_session_accept_setup(sv[0], "nic", &s, why, sizeof(why)) == 0) {
		/* accepted: every stream must be usable within its own region */
		for (unsigned int i = 0; i < s.nstreams; i++)
			if (s.ps[i].bulk + s.ps[i].bulk_size > (uint8_t *)s.map[i] + s.map_size[i])
				abort();
	}
	bh_session_close(NULL, &s);
	close(sv[1]);
	return 0;
}
