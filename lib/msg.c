// SPDX-License-Identifier: MIT
/* Framing of struct bh_msg: exactly one message per datagram, fds as SCM_RIGHTS. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bulkhead/msg.h"

static const char *const op_names[BH_OP_COUNT] = {
	[BH_OP_HELLO] = "hello",	 [BH_OP_DEVICE_INFO] = "device_info",
	[BH_OP_ACQUIRE] = "acquire",	 [BH_OP_RELEASE] = "release",
	[BH_OP_IO_MEM] = "io_mem",	 [BH_OP_IO_PORT] = "io_port",
	[BH_OP_IRQ] = "irq",		 [BH_OP_DMA_ALLOC] = "dma_alloc",
	[BH_OP_DMA_FREE] = "dma_free",	 [BH_OP_HEARTBEAT] = "heartbeat",
	[BH_OP_ANNOUNCE] = "announce",	 [BH_OP_SESSION] = "session",
	[BH_OP_TAP] = "tap",		 [BH_OP_NBD] = "nbd",
	[BH_OP_SESSION_END] = "session_end", [BH_OP_OUTPUT] = "output",
	[BH_OP_PTY] = "pty", [BH_OP_LISTEN] = "listen",
	[BH_OP_LEGACY_MEM] = "legacy_mem", [BH_OP_UBLK] = "ublk",
	[BH_OP_USBIP] = "usbip",
	[BH_OP_VM_NIC] = "vm-nic",
};

const char *bh_op_name(unsigned int op)
{
	if (op < BH_OP_COUNT && op_names[op])
		return op_names[op];
	return "unknown";
}

void bh_msg_init(struct bh_msg *m, enum bh_op op, uint32_t seq)
{
	memset(m, 0, sizeof(*m));
	m->magic = BH_PROTO_MAGIC;
	m->version = BH_PROTO_VERSION;
	m->op = (uint16_t)op;
	m->seq = seq;
}

static void close_fds(int *fds, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		close(fds[i]);
}

int bh_msg_send(int sock, const struct bh_msg *m, const int *fds, unsigned int nfds)
{
	return bh_dgram_send(sock, m, sizeof(*m), fds, nfds);
}

int bh_dgram_send(int sock, const void *buf, size_t len, const int *fds, unsigned int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * BH_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds > BH_MAX_FDS)
		return -EINVAL;
	if (nfds) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	for (;;) {
		ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
		if (n == (ssize_t)len)
			return 0;
		if (n >= 0)
			return -EMSGSIZE;
		if (errno != EINTR)
			return -errno;
	}
}


int bh_msg_recv(int sock, struct bh_msg *m, int *fds, unsigned int maxfds, unsigned int *nfds,
		char *why, size_t why_len)
{
	int rc = bh_dgram_recv(sock, m, sizeof(*m), fds, maxfds, nfds, why, why_len);

	/* -EMFILE: the message came whole, its fds did not */
	if (rc == 1 || rc == -EMFILE) {
		int err = bh_msg_check(m, why, why_len);
		if (err) {
			close_fds(fds, *nfds);
			*nfds = 0;
			return err;
		}
	}
	return rc;
}

/* is our fd table full? then the kernel dropped fds it could not install */
static bool fd_limit_reached(void)
{
	int fd = eventfd(0, EFD_CLOEXEC);

	if (fd >= 0) {
		close(fd);
		return false;
	}
	return errno == EMFILE;
}

int bh_dgram_recv(int sock, void *buf, size_t len, int *fds, unsigned int maxfds,
		  unsigned int *nfds, char *why, size_t why_len)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * BH_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	/* one byte more than a message, so an oversized datagram shows as such */
	char over;
	struct iovec iov[2] = { { .iov_base = buf, .iov_len = len },
				{ .iov_base = &over, .iov_len = 1 } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2, .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf) };
	int got[BH_MAX_FDS];
	unsigned int ngot = 0;
	ssize_t n;

	*nfds = 0;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		unsigned int k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (unsigned int i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (ngot < BH_MAX_FDS)
				got[ngot++] = fd;
			else
				close(fd);
		}
	}
	if (n == 0 && ngot == 0)
		return 0;
	if (mh.msg_flags & MSG_CTRUNC) {
		bool full = fd_limit_reached();
		struct rlimit rl;

		close_fds(got, ngot);
		if (!full) {
			snprintf(why, why_len, "more than %d fds attached", BH_MAX_FDS);
			return -EPROTO;
		}
		if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
			rl.rlim_cur = 0;
		/* the message itself arrived whole: the caller may still read it */
		snprintf(why, why_len, "fds came with it that this process could not take: its fd "
				       "limit (fds = %llu) is reached; raise fds = in its [component] "
				       "section, or close fds it no longer needs",
			 (unsigned long long)rl.rlim_cur);
		return n == (ssize_t)len && !(mh.msg_flags & MSG_TRUNC) ? -EMFILE : -EPROTO;
	}
	if (mh.msg_flags & MSG_TRUNC || n != (ssize_t)len) {
		close_fds(got, ngot);
		snprintf(why, why_len, "datagram of %zd%s bytes, expected exactly %zu", n,
			 (mh.msg_flags & MSG_TRUNC) ? "+" : "", len);
		return -EPROTO;
	}
	if (ngot > maxfds) {
		close_fds(got, ngot);
		snprintf(why, why_len, "%u fds attached, at most %u allowed", ngot, maxfds);
		return -EPROTO;
	}
	memcpy(fds, got, sizeof(int) * ngot);
	*nfds = ngot;
	return 1;
}

int bh_msg_check(const struct bh_msg *m, char *why, size_t why_len)
{
	if (m->magic != BH_PROTO_MAGIC) {
		snprintf(why, why_len, "bad magic 0x%08x (not a bulkhead message)", m->magic);
		return -EPROTO;
	}
	if (m->version != BH_PROTO_VERSION) {
		snprintf(why, why_len, "protocol version %u, core speaks %u: rebuild the component",
			 m->version, BH_PROTO_VERSION);
		return -EPROTO;
	}
	if (m->op == 0 || m->op >= BH_OP_COUNT) {
		snprintf(why, why_len, "unknown op %u", m->op);
		return -EPROTO;
	}
	return 0;
}
