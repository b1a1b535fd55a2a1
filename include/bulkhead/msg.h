/* SPDX-License-Identifier: MIT */
/* Framing of struct bh_msg on a SOCK_SEQPACKET socket, shared by core and libbulkhead. */
#ifndef BULKHEAD_MSG_H
#define BULKHEAD_MSG_H

#include <stddef.h>

#include "bulkhead/proto.h"

void bh_msg_init(struct bh_msg *m, enum bh_op op, uint32_t seq);

/* send m with nfds fds attached; 0 or -errno */
int bh_msg_send(int sock, const struct bh_msg *m, const int *fds, unsigned int nfds);

/*
 * Receive one message. Returns 1 with *nfds fds stored in fds (at most
 * maxfds; extra fds are closed and the message is refused), 0 on hang-up,
 * -EPROTO for a datagram that is not exactly one struct bh_msg (why says
 * what), or another -errno.
 */
int bh_msg_recv(int sock, struct bh_msg *m, int *fds, unsigned int maxfds, unsigned int *nfds,
		char *why, size_t why_len);

/* the same framing for any fixed-size datagram (session setup and events) */
int bh_dgram_send(int sock, const void *buf, size_t len, const int *fds, unsigned int nfds);
int bh_dgram_recv(int sock, void *buf, size_t len, int *fds, unsigned int maxfds,
		  unsigned int *nfds, char *why, size_t why_len);

/* header checks every receiver makes: magic, version, op range; 0 or -EPROTO */
int bh_msg_check(const struct bh_msg *m, char *why, size_t why_len);

const char *bh_op_name(unsigned int op);

#endif
