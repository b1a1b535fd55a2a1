// SPDX-License-Identifier: MIT
/*
 * block-nbd: serves a Block session to Linux as /dev/nbdN, so mkfs, mount
 * and fio see an ordinary block device.
 *
 * Core connects /dev/nbdN (the config's 'nbd = N') to a socket and hands us
 * the other end; the kernel sends NBD transmission-protocol requests on it
 * (NBD_CMD_READ/WRITE/FLUSH/TRIM/DISC, simple replies). Each request becomes
 * one or more packet-stream descriptors of at most max_transfer bytes
 * ("parts"), many in flight; a write's payload is read from the socket
 * straight into its slots, a read's reply is written from them.
 *
 * The driver may die and be restarted at any time. The socket to the kernel
 * stays open meanwhile, so /dev/nbdN and the filesystem on it stay. When the
 * session hangs up we take the acks it still published, open a new session,
 * move every part that holds a slot into the new stream (copying its data)
 * and re-issue those the driver had not acknowledged. The kernel hears of a
 * request only once the driver has completed all of it.
 *
 * We heartbeat every BEAT_MS, also while waiting for a restarted driver,
 * so the config's watchdog_ms catches a hung bridge.
 */
#include <endian.h>
#include <errno.h>
#include <linux/nbd.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "bulkhead/block.h"
#include "bulkhead/bulkhead.h"
#include "bulkhead/fault.h"

#define MAX_PARTS 256 /* at least the stream's slots */
#define NBD_BLOCK 4096u
#define RECONNECT_MS 60000 /* a driver restart with backoff fits */
#define BEAT_MS 200

/* the wire format (NBD protocol, "simple replies"), big-endian */
struct nbd_req_wire {
	uint32_t magic;
	uint32_t type; /* flags << 16 | command */
	uint8_t handle[8];
	uint64_t from;
	uint32_t len;
} __attribute__((packed));

struct nbd_reply_wire {
	uint32_t magic;
	uint32_t error;
	uint8_t handle[8];
} __attribute__((packed));

enum part_state { P_FREE, P_FILLING, P_INFLIGHT, P_DONE };

struct part {
	enum part_state state;
	int req;
	uint32_t got; /* a write's payload received so far */
	struct bh_ps_desc d;
};

struct req {
	bool used;
	uint8_t handle[8];
	uint32_t cmd;
	uint64_t from;
	uint64_t len;	     /* bytes; a flush is one part of "1 byte" */
	uint64_t next;	     /* bytes split into parts so far */
	unsigned int left;   /* parts not yet done */
	int error;	     /* first failure, positive errno */
	unsigned int nparts; /* a read's parts in order, for the reply */
	uint16_t parts[MAX_PARTS];
};

struct bridge {
	struct bh_core core;
	struct bh_block blk;
	int nbd;
	struct part part[MAX_PARTS];
	/* one more than parts: the request being split may have none yet */
	struct req req[MAX_PARTS + 1];
	/* the request being received from the kernel */
	struct nbd_req_wire hdr;
	size_t hdr_got;
	int cur;	/* its req index, or -1 */
	int filling;	/* the part its payload is going into, or -1 */
	uint64_t skip;	/* payload bytes to throw away (refused writes) */
	bool disconnect;
	unsigned int busy; /* requests not yet answered */
	uint64_t requests, reissued, reconnects;
	uint64_t last_beat_ns;
};

/*
 * The coarse clock, from the vDSO page: under TCG the guest's clocksource
 * is the HPET, and a CLOCK_MONOTONIC read per loop would be a system call
 * and an emulated register read under QEMU's big lock.
 */
static uint64_t coarse_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* every BEAT_MS, busy or not; exits quietly when core is gone */
static void beat(struct bridge *b)
{
	uint64_t now = coarse_ns();

	if (now - b->last_beat_ns < BEAT_MS * 1000000ull)
		return;
	b->last_beat_ns = now;
	if (bh_heartbeat(&b->core) < 0) {
		printf("block-nbd: heartbeat: %s; core went away\n", bh_error(&b->core));
		exit(0);
	}
}

static int part_alloc(struct bridge *b, int r, uint32_t op, uint64_t off, uint32_t len)
{
	struct bh_ps_desc d;
	int i;

	for (i = 0; i < MAX_PARTS && b->part[i].state != P_FREE; i++)
		;
	if (i == MAX_PARTS || bh_ps_alloc(b->blk.ps, b->blk.info.max_transfer, &d))
		return -1;
	d.op = op;
	d.arg = off / b->blk.info.block_size;
	d.length = op == BH_BLOCK_FLUSH ? 0 : len;
	d.tag = (uint32_t)i;
	b->part[i] = (struct part){ .state = P_FILLING, .req = r, .d = d };
	b->req[r].left++;
	return i;
}

static void part_free(struct bridge *b, int i)
{
	bh_ps_free(b->blk.ps, &b->part[i].d);
	b->part[i].state = P_FREE;
}

static void submit(struct bridge *b, int i)
{
	b->part[i].state = P_INFLIGHT;
	/* never full: the ring holds as many entries as there are slots */
	bh_ps_put(b->blk.ps, &b->part[i].d, 1);
}

static int write_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n > 1024 ? 1024 : n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* the simple reply, with a read's data from its slots; then the slots go back */
static void reply(struct bridge *b, int r)
{
	struct req *q = &b->req[r];
	struct nbd_reply_wire w = { .magic = htobe32(NBD_REPLY_MAGIC),
				    .error = htobe32((uint32_t)q->error) };
	struct iovec iov[MAX_PARTS + 1];
	int n = 1, rc;

	memcpy(w.handle, q->handle, 8);
	iov[0] = (struct iovec){ &w, sizeof(w) };
	if (q->cmd == NBD_CMD_READ && !q->error)
		for (unsigned int k = 0; k < q->nparts; k++) {
			struct part *p = &b->part[q->parts[k]];
			iov[n++] = (struct iovec){ bh_ps_data(b->blk.ps, &p->d), p->d.length };
		}
	/* a blocking write: the kernel drains its end on its own */
	rc = write_all(b->nbd, iov, n);
	if (rc) {
		fprintf(stderr, "block-nbd: reply to the kernel failed: %s\n", strerror(-rc));
		exit(1);
	}
	for (unsigned int k = 0; k < q->nparts; k++)
		part_free(b, q->parts[k]);
	q->used = false;
	b->busy--;
}

/* a request is answered once all its parts are done and none is left to make */
static void req_check(struct bridge *b, int r)
{
	struct req *q = &b->req[r];

	if (q->used && !q->left && q->next >= q->len && r != b->cur)
		reply(b, r);
}

/* an ack from the driver */
static void complete(struct bridge *b, const struct bh_ps_desc *a)
{
	struct part *p;
	struct req *q;

	if (a->tag >= MAX_PARTS || b->part[a->tag].state != P_INFLIGHT) {
		fprintf(stderr, "block-nbd: ack for unknown tag %u ignored\n", a->tag);
		return;
	}
	p = &b->part[a->tag];
	q = &b->req[p->req];
	if (a->status && !q->error) {
		q->error = a->status < 0 ? -a->status : EIO;
		fprintf(stderr, "block-nbd: op %u at block %llu failed: %s\n", a->op,
			(unsigned long long)a->arg, strerror(q->error));
	}
	p->state = P_DONE;
	q->left--;
	/* only a read's data is still needed, for its reply */
	if (q->cmd != NBD_CMD_READ)
		part_free(b, (int)a->tag);
	req_check(b, p->req);
}

/*
 * Split the current request into parts as far as slots allow. A write's
 * part is filled from the socket before it goes out; reads, flushes and
 * trims go out at once. True when the request is fully split.
 */
static bool split(struct bridge *b)
{
	struct req *q = &b->req[b->cur];
	uint32_t op = q->cmd == NBD_CMD_READ	? BH_BLOCK_READ :
		      q->cmd == NBD_CMD_WRITE	? BH_BLOCK_WRITE :
		      q->cmd == NBD_CMD_FLUSH	? BH_BLOCK_FLUSH :
						  BH_BLOCK_TRIM;

	while (q->next < q->len && b->filling < 0) {
		uint64_t len = q->len - q->next;
		int i;

		if (len > b->blk.info.max_transfer)
			len = b->blk.info.max_transfer;
		i = part_alloc(b, b->cur, op, q->from + q->next, (uint32_t)len);
		if (i < 0)
			return false; /* wait for acks to free slots */
		q->next += len;
		if (op == BH_BLOCK_READ)
			q->parts[q->nparts++] = (uint16_t)i;
		if (op == BH_BLOCK_WRITE)
			b->filling = i;
		else
			submit(b, i);
	}
	return q->next >= q->len && b->filling < 0;
}

/* a new request from the kernel: checked, then split by split() */
static void start(struct bridge *b)
{
	const struct bh_block_info *in = &b->blk.info;
	uint32_t cmd = be32toh(b->hdr.type) & 0xffff;
	uint64_t max_read = (uint64_t)b->blk.ps->nslots * in->max_transfer / 2;
	struct req *q;
	int r, err = 0;

	if (be32toh(b->hdr.magic) != NBD_REQUEST_MAGIC) {
		fprintf(stderr, "block-nbd: the kernel sent a request with a bad magic: giving up\n");
		exit(1);
	}
	if (cmd == NBD_CMD_DISC) {
		b->disconnect = true;
		return;
	}
	for (r = 0; b->req[r].used; r++)
		;
	q = &b->req[r];
	memset(q, 0, sizeof(*q));
	q->used = true;
	memcpy(q->handle, b->hdr.handle, 8);
	q->cmd = cmd;
	q->from = be64toh(b->hdr.from);
	q->len = be32toh(b->hdr.len);
	b->busy++;
	b->requests++;
	if (cmd != NBD_CMD_READ && cmd != NBD_CMD_WRITE && cmd != NBD_CMD_FLUSH &&
	    cmd != NBD_CMD_TRIM)
		err = EINVAL;
	else if (cmd != NBD_CMD_FLUSH &&
		 (q->from % in->block_size || q->len % in->block_size))
		err = EINVAL;
	else if (cmd == NBD_CMD_READ && q->len > max_read)
		err = EINVAL; /* a read's data must fit our slots: lower max_sectors_kb */
	if (err) {
		fprintf(stderr, "block-nbd: refused command %u at %llu, %llu bytes\n", cmd,
			(unsigned long long)q->from, (unsigned long long)q->len);
		if (cmd == NBD_CMD_WRITE)
			b->skip = q->len;
		q->error = err;
		q->len = 0;
	} else if (cmd == NBD_CMD_FLUSH) {
		q->from = 0;
		q->len = 1;
	} else if (cmd == NBD_CMD_TRIM && !(in->flags & BH_BLOCK_CAN_TRIM)) {
		q->len = 0; /* a hint the disk cannot use */
	}
	b->cur = r;
}

/* 1: progress, 0: the socket has nothing now; exits when the kernel hangs up */
static int take(struct bridge *b, void *buf, size_t len, size_t *got)
{
	ssize_t n = recv(b->nbd, buf, len, MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		/*
		 * a disconnect comes as NBD_CMD_DISC first: this is the kernel
		 * dropping the socket (a request outlived its timeout). Exit as
		 * failed: core restarts us and plugs the new socket in, and the
		 * kernel requeues what we held.
		 */
		fprintf(stderr, "block-nbd: the kernel shut /dev/nbd's socket (%s) after %llu "
				"requests: exiting to be restarted\n",
			n ? strerror(errno) : "end of file", (unsigned long long)b->requests);
		exit(1);
	}
	*got += (size_t)n;
	return 1;
}

/* read requests and write payloads from the kernel while slots allow */
static void receive(struct bridge *b)
{
	static uint8_t sink[65536];

	while (!b->disconnect) {
		if (b->skip) {
			size_t got = 0;
			if (!take(b, sink, b->skip < sizeof(sink) ? b->skip : sizeof(sink), &got))
				return;
			b->skip -= got;
			continue;
		}
		if (b->filling >= 0) {
			struct part *p = &b->part[b->filling];
			size_t got = p->got;
			if (!take(b, (uint8_t *)bh_ps_data(b->blk.ps, &p->d) + p->got,
				  p->d.length - p->got, &got))
				return;
			p->got = (uint32_t)got;
			if (p->got == p->d.length) {
				submit(b, b->filling);
				b->filling = -1;
			}
			continue;
		}
		if (b->cur >= 0) {
			int r = b->cur;
			if (!split(b)) {
				if (b->filling >= 0)
					continue;
				return; /* no slot free: wait for acks */
			}
			b->cur = -1;
			req_check(b, r);
			continue;
		}
		if (!take(b, (uint8_t *)&b->hdr + b->hdr_got, sizeof(b->hdr) - b->hdr_got,
			  &b->hdr_got))
			return;
		if (b->hdr_got == sizeof(b->hdr)) {
			b->hdr_got = 0;
			start(b);
		}
	}
}

/* every ack the driver published; false if the stream is corrupt */
static bool reap(struct bridge *b)
{
	struct bh_ps_desc a[64];
	int got;

	while ((got = bh_ps_get(b->blk.ps, a, 64)) > 0)
		for (int i = 0; i < got; i++)
			complete(b, &a[i]);
	return got == 0;
}

/*
 * The driver went away: open a new session, move every part holding a
 * slot into the new stream, and re-issue the ones not acknowledged.
 */
static void reconnect(struct bridge *b)
{
	struct bh_block old = b->blk;
	uint64_t deadline = bh_now_ns() + RECONNECT_MS * 1000000ull;
	unsigned int again = 0;
	char why[200];

	old.ps = &old.s.ps[0];
	reap(b); /* what it completed before it went counts */
	printf("block-nbd: the block session hung up: reconnecting\n");
	/*
	 * core may still route us to the dying instance, or answer EAGAIN while
	 * the new one starts: retry in short steps, heartbeating between them
	 */
	while (bh_block_open(&b->core, 0, &b->blk, why, sizeof(why))) {
		if (bh_now_ns() > deadline) {
			fprintf(stderr, "block-nbd: cannot reopen the block session: %s\n", why);
			exit(1);
		}
		nanosleep(&(struct timespec){ .tv_nsec = 50000000 }, NULL);
		beat(b);
	}
	if (b->blk.size != old.size || b->blk.info.block_size != old.info.block_size ||
	    b->blk.info.max_transfer < old.info.max_transfer) {
		fprintf(stderr, "block-nbd: the disk changed across the restart (%llu -> %llu "
				"bytes): giving up rather than mixing data\n",
			(unsigned long long)old.size, (unsigned long long)b->blk.size);
		exit(1);
	}
	for (int i = 0; i < MAX_PARTS; i++) {
		struct part *p = &b->part[i];
		struct bh_ps_desc d;

		if (p->state == P_FREE)
			continue;
		if (bh_ps_alloc(b->blk.ps, b->blk.info.max_transfer, &d)) {
			fprintf(stderr, "block-nbd: the new stream has fewer slots: giving up\n");
			exit(1);
		}
		memcpy(bh_ps_data(b->blk.ps, &d), bh_ps_data(old.ps, &p->d), p->d.length);
		p->d.offset = d.offset;
		if (p->state == P_INFLIGHT) {
			bh_ps_put(b->blk.ps, &p->d, 1);
			again++;
		}
	}
	bh_ps_flush(b->blk.ps);
	bh_block_close(&old);
	b->reissued += again;
	b->reconnects++;
	printf("block-nbd: reconnected (%llu so far): %u request part(s) re-issued\n",
	       (unsigned long long)b->reconnects, again);
}

static void serve(struct bridge *b)
{
	for (;;) {
		struct pollfd p[4];
		bool want_socket;
		int n;

		beat(b);
		if (!reap(b)) {
			fprintf(stderr, "block-nbd: the driver corrupted the stream\n");
			reconnect(b);
		}
		receive(b);
		bh_ps_flush(b->blk.ps);
		if (b->disconnect && !b->busy) {
			printf("block-nbd: the kernel disconnected; %llu requests served\n",
			       (unsigned long long)b->requests);
			return;
		}
		if (!bh_ps_prepare_wait(b->blk.ps))
			continue;
		/* a request waiting for slots stays in the socket until acks free some */
		want_socket = !b->disconnect && (b->cur < 0 || b->filling >= 0 || b->skip);
		p[0] = (struct pollfd){ .fd = bh_ps_wait_fd(b->blk.ps), .events = POLLIN };
		p[1] = (struct pollfd){ .fd = b->blk.s.fd, .events = 0 };
		p[2] = (struct pollfd){ .fd = b->core.fd, .events = 0 };
		p[3] = (struct pollfd){ .fd = b->nbd, .events = want_socket ? POLLIN : 0 };
		n = poll(p, 4, BEAT_MS);
		if (n < 0 && errno != EINTR) {
			perror("block-nbd: poll");
			exit(1);
		}
		if (n <= 0)
			continue;
		if (p[2].revents & (POLLHUP | POLLERR)) {
			printf("block-nbd: core went away\n");
			return;
		}
		if (p[0].revents)
			bh_ps_drain_signal(b->blk.ps);
		if (p[1].revents & (POLLHUP | POLLERR))
			reconnect(b);
	}
}

int main(void)
{
	static struct bridge b = { .cur = -1, .filling = -1, .nbd = -1 };
	char why[200], name[BH_NAME_MAX];
	uint32_t nbd_bs;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	bh_fault_arm();
	if (bh_core_open(&b.core) < 0) {
		fprintf(stderr, "block-nbd: %s\n", bh_error(&b.core));
		return 1;
	}
	rc = bh_block_open(&b.core, -1, &b.blk, why, sizeof(why));
	if (rc) {
		fprintf(stderr, "block-nbd: %s\n", why);
		return 1;
	}
	if (b.blk.ps->nslots > MAX_PARTS || b.blk.ps->submit.capacity < b.blk.ps->nslots) {
		fprintf(stderr, "block-nbd: the server's stream has %u slots and %u ring entries; "
				"we handle up to %u slots, and need a ring entry for each\n",
			b.blk.ps->nslots, b.blk.ps->submit.capacity, MAX_PARTS);
		return 1;
	}
	/* 4 KiB blocks where the disk allows: fewer, aligned requests from the kernel */
	nbd_bs = b.blk.info.block_size;
	if (nbd_bs < NBD_BLOCK && b.blk.size % NBD_BLOCK == 0)
		nbd_bs = NBD_BLOCK;
	rc = bh_nbd_open(&b.core, b.blk.size, nbd_bs, name, &b.nbd);
	if (rc) {
		fprintf(stderr, "block-nbd: %s\n", bh_error(&b.core));
		return 1;
	}
	printf("block-nbd: /dev/%s serves %s: %llu MiB in %u-byte blocks, up to %u requests "
	       "of %u KiB in flight\n",
	       name, b.blk.info.model, (unsigned long long)(b.blk.size >> 20), nbd_bs,
	       b.blk.ps->nslots, b.blk.info.max_transfer >> 10);
	serve(&b);
	return 0;
}
