// SPDX-License-Identifier: MIT
/*
 * block-ublk: serves a Block session to Linux as /dev/ublkbN through ublk,
 * the kernel's userspace block driver (Documentation/block/ublk.rst).
 *
 * Core adds the device (the config's 'ublk = N'; control commands need
 * CAP_SYS_ADMIN) and hands us /dev/ublkcN. We serve its queue with
 * io_uring: one FETCH_REQ per tag hands the kernel a buffer and waits for a
 * request; a request's descriptor lies in the read-only mmapped I/O
 * descriptor array; COMMIT_AND_FETCH_REQ answers it and waits for the next.
 *
 * Data moves once. Each tag's buffer is a slot of the Block session's bulk
 * buffer, the DMA memory the NVMe device reads and writes: the kernel
 * copies a write's data into the slot before it tells us, the driver has
 * the device read it from there; a read's data lands there from the device
 * and the kernel copies it out when we commit. (The copy is the one the
 * 6.1-6.12 interface allows; UBLK_F_USER_COPY would only move it to us,
 * and zero copy, UBLK_F_SUPPORT_ZERO_COPY with registered buffers in 6.15+,
 * would need the driver to take the kernel's pages as its DMA targets.)
 *
 * Sandbox: the ring is created disabled, restricted to URING_CMD on
 * registered file 0 (our /dev/ublkcN) with every register operation
 * refused, then enabled; then a seccomp filter of our own refuses
 * io_uring_setup and io_uring_register, so the ring cannot become a way
 * around core's filter (core allows the io_uring calls only to components
 * with 'ublk = N'). BULKHEAD_UBLK_PROBE=1 in the environment makes us try
 * a file open, a read, a socket and a new ring through it and log each
 * refusal (tests/vm/ublk.sh).
 *
 * Recovery: if the driver dies we keep the device, reopen the session and
 * re-issue what was in flight, as block-nbd does. The kernel still holds
 * buffer addresses in the old bulk buffer for idle tags, so an old
 * mapping stays until no tag points into it. If we die, the kernel holds
 * the device quiesced (USER_RECOVERY) and our restart, through core's
 * START/END_USER_RECOVERY, gets the requests in flight again (REISSUE).
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bulkhead/block.h"
#include "bulkhead/bulkhead.h"
#include "bulkhead/fault.h"
#include "bulkhead/proto.h"
#include "bulkhead/ublk.h"

#define MAX_TAGS 128
#define MAX_GENS 16 /* bulk buffers the kernel may still hold addresses in */
#define RECONNECT_MS 60000
#define BEAT_MS 200
#define PROBE_TAG 0xffff0000u

enum tag_state { T_KERNEL, T_DRIVER };

struct tag {
	enum tag_state state;
	int gen;	  /* the stream whose bulk buffer addr lies in */
	uint8_t *addr;	  /* the buffer the kernel has for this tag */
	struct bh_ps_desc d; /* its slot (and request) in the current stream */
};

struct gen {
	struct bh_block blk;
	unsigned int refs; /* tags whose addr lies in it */
	bool open;
};

struct bridge {
	struct bh_core core;
	struct gen gen[MAX_GENS];
	int cur;
	struct bh_block *blk; /* &gen[cur].blk */
	struct io_uring ring;
	const struct ublksrv_io_desc *iod;
	unsigned int depth;
	int dev;
	struct tag tag[MAX_TAGS];
	unsigned int aborted;
	uint64_t requests, reissued, reconnects;
	uint64_t last_beat_ns;
};

static void beat(struct bridge *b)
{
	uint64_t now = bh_coarse_ns(); /* the vDSO's: no system call per loop */

	if (now - b->last_beat_ns < BEAT_MS * 1000000ull)
		return;
	b->last_beat_ns = now;
	if (bh_heartbeat(&b->core) < 0) {
		printf("block-ublk: heartbeat: %s; core went away\n", bh_error(&b->core));
		exit(0);
	}
}

static void die(const char *what, int err)
{
	fprintf(stderr, "block-ublk: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static struct io_uring_sqe *sqe_get(struct bridge *b)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);

	if (!sqe) { /* full: hand the kernel what is there */
		io_uring_submit(&b->ring);
		sqe = io_uring_get_sqe(&b->ring);
		if (!sqe)
			die("io_uring: no room in the submission queue", EBUSY);
	}
	memset(sqe, 0, sizeof(*sqe));
	return sqe;
}

/* FETCH_REQ (first time) or COMMIT_AND_FETCH_REQ with result, buffer: the tag's slot */
static void fetch(struct bridge *b, unsigned int t, bool commit, int result)
{
	struct tag *tg = &b->tag[t];
	struct io_uring_sqe *sqe = sqe_get(b);
	struct ublksrv_io_cmd *cmd = (struct ublksrv_io_cmd *)sqe->cmd;

	if (tg->gen != b->cur) {
		struct gen *old = &b->gen[tg->gen];
		if (--old->refs == 0 && old->open) {
			bh_block_close(&old->blk);
			old->open = false;
		}
		b->gen[b->cur].refs++;
		tg->gen = b->cur;
	}
	tg->addr = bh_ps_data(b->blk->ps, &tg->d);
	tg->state = T_KERNEL;
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = 0; /* registered file 0: /dev/ublkcN */
	sqe->flags = IOSQE_FIXED_FILE;
	sqe->cmd_op = commit ? UBLK_U_IO_COMMIT_AND_FETCH_REQ : UBLK_U_IO_FETCH_REQ;
	sqe->user_data = t;
	cmd->q_id = 0;
	cmd->tag = (uint16_t)t;
	cmd->result = result;
	cmd->addr = (uint64_t)(uintptr_t)tg->addr;
}

/* a request from the kernel on tag t: checked, then to the driver */
static void request(struct bridge *b, unsigned int t)
{
	const struct bh_block_info *in = &b->blk->info;
	struct tag *tg = &b->tag[t];
	struct ublksrv_io_desc iod;
	uint64_t bytes, start;
	uint32_t op;

	/* the kernel's, but read once: what we check is what we use */
	memcpy(&iod, (const void *)&b->iod[t], sizeof(iod));
	bytes = (uint64_t)iod.nr_sectors << 9;
	start = iod.start_sector << 9;
	switch (ublksrv_get_op(&iod)) {
	case UBLK_IO_OP_READ: op = BH_BLOCK_READ; break;
	case UBLK_IO_OP_WRITE: op = BH_BLOCK_WRITE; break;
	case UBLK_IO_OP_FLUSH: op = BH_BLOCK_FLUSH; break;
	case UBLK_IO_OP_DISCARD: op = BH_BLOCK_TRIM; break;
	default: op = 0; break;
	}
	if (!op || (op != BH_BLOCK_FLUSH &&
		    (!bytes || bytes > in->max_transfer || start % in->block_size ||
		     bytes % in->block_size))) {
		fprintf(stderr, "block-ublk: refused op %u at sector %llu, %u sectors\n",
			ublksrv_get_op(&iod), (unsigned long long)iod.start_sector,
			iod.nr_sectors);
		fetch(b, t, true, -EINVAL);
		return;
	}
	b->requests++;
	tg->d.op = op;
	tg->d.arg = op == BH_BLOCK_FLUSH ? 0 : start / in->block_size;
	tg->d.length = op == BH_BLOCK_FLUSH ? 0 : (uint32_t)bytes;
	tg->d.status = 0;
	/* the kernel wrote a write's data where it still thinks our buffer is */
	if (op == BH_BLOCK_WRITE && tg->addr != bh_ps_data(b->blk->ps, &tg->d))
		memcpy(bh_ps_data(b->blk->ps, &tg->d), tg->addr, bytes);
	tg->state = T_DRIVER;
	/* never full: the ring has an entry for every slot, and a tag has one slot */
	bh_ps_put(b->blk->ps, &tg->d, 1);
}

/* acknowledgements from the driver; false if the stream is corrupt */
static bool reap_acks(struct bridge *b)
{
	struct bh_ps_desc a[64];
	int got;

	while ((got = bh_ps_get(b->blk->ps, a, 64)) > 0)
		for (int i = 0; i < got; i++) {
			unsigned int t = a[i].tag;
			int res;

			if (t >= b->depth || b->tag[t].state != T_DRIVER) {
				fprintf(stderr, "block-ublk: ack for unknown tag %u ignored\n", t);
				continue;
			}
			res = a[i].status < 0 ? a[i].status : a[i].status ? -EIO :
			      (int)b->tag[t].d.length;
			if (a[i].status)
				fprintf(stderr, "block-ublk: op %u at block %llu failed: %s\n",
					a[i].op, (unsigned long long)a[i].arg, strerror(-res));
			fetch(b, t, true, res);
		}
	return got == 0;
}

/* completions from the kernel: requests, or the device going away */
static void reap_ring(struct bridge *b)
{
	struct io_uring_cqe *cqe;

	while (io_uring_peek_cqe(&b->ring, &cqe) == 0) {
		unsigned int t = (unsigned int)cqe->user_data;
		int res = cqe->res;

		io_uring_cqe_seen(&b->ring, cqe);
		if (t >= b->depth)
			continue;
		if (res == UBLK_IO_RES_OK) {
			request(b, t);
		} else if (res == UBLK_IO_RES_ABORT) {
			if (++b->aborted == b->depth) {
				printf("block-ublk: /dev/ublkb%d stopped; %llu requests served\n",
				       b->dev, (unsigned long long)b->requests);
				exit(0);
			}
		} else {
			die("the kernel refused a fetch", res);
		}
	}
}

/* the driver went away: a new session, and what was in flight goes again */
static void reconnect(struct bridge *b)
{
	uint64_t deadline = bh_now_ns() + RECONNECT_MS * 1000000ull;
	struct bh_block *old = b->blk;
	unsigned int again = 0;
	int g;
	char why[200];

	reap_acks(b);
	printf("block-ublk: the block session hung up: reconnecting\n");
	for (g = 0; g < MAX_GENS && (b->gen[g].open || g == b->cur); g++)
		;
	if (g == MAX_GENS)
		die("too many driver restarts with requests still on old buffers", EBUSY);
	while (bh_block_open(&b->core, 0, &b->gen[g].blk, why, sizeof(why))) {
		if (bh_now_ns() > deadline) {
			fprintf(stderr, "block-ublk: cannot reopen the block session: %s\n", why);
			exit(1);
		}
		nanosleep(&(struct timespec){ .tv_nsec = 50000000 }, NULL);
		beat(b);
	}
	b->gen[g].open = true;
	b->gen[g].refs = 0;
	if (b->gen[g].blk.size != old->size || b->gen[g].blk.info.block_size != old->info.block_size ||
	    b->gen[g].blk.info.max_transfer < old->info.max_transfer ||
	    b->gen[g].blk.ps->nslots < b->depth) {
		fprintf(stderr, "block-ublk: the disk changed across the driver's restart: giving "
				"up rather than mixing data\n");
		exit(1);
	}
	for (unsigned int t = 0; t < b->depth; t++) {
		struct tag *tg = &b->tag[t];
		struct bh_ps_desc d;

		bh_ps_alloc(b->gen[g].blk.ps, b->gen[g].blk.info.max_transfer, &d);
		if (tg->state == T_DRIVER) {
			memcpy(bh_ps_data(b->gen[g].blk.ps, &d), bh_ps_data(old->ps, &tg->d),
			       tg->d.length);
			d.op = tg->d.op;
			d.arg = tg->d.arg;
			d.length = tg->d.length;
			d.tag = t;
			bh_ps_put(b->gen[g].blk.ps, &d, 1);
			again++;
		}
		d.tag = t;
		tg->d = d;
	}
	bh_ps_flush(b->gen[g].blk.ps);
	b->cur = g;
	b->blk = &b->gen[g].blk;
	/* nothing of the kernel's lies in it any more: free it now */
	for (int o = 0; o < MAX_GENS; o++)
		if (o != g && b->gen[o].open && !b->gen[o].refs) {
			bh_block_close(&b->gen[o].blk);
			b->gen[o].open = false;
		}
	b->reissued += again;
	b->reconnects++;
	printf("block-ublk: reconnected (%llu so far): %u request(s) re-issued\n",
	       (unsigned long long)b->reconnects, again);
}

/*
 * After the ring is restricted: our own filter on top of core's refuses
 * further io_uring set-up and registration (EPERM), so no new, unrestricted
 * ring can be made. A raw filter: libseccomp probes the kernel with calls
 * core's filter does not allow.
 */
static int refuse_io_uring_setup(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 1, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_register, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) ? -errno : 0;
}

/*
 * The ring: disabled at creation, /dev/ublkcN as registered file 0, only
 * URING_CMD on registered files allowed and no register operation, then
 * enabled, then our filter. 0 or -errno with what failed in *what.
 */
static int ring_setup(struct io_uring *ring, unsigned int entries, int ublk_fd, const char **what)
{
	struct io_uring_restriction r[] = {
		{ .opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_URING_CMD },
		{ .opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED, .sqe_flags = IOSQE_FIXED_FILE },
		{ .opcode = IORING_RESTRICTION_SQE_FLAGS_REQUIRED, .sqe_flags = IOSQE_FIXED_FILE },
	};
	struct io_uring_params p = { .flags = IORING_SETUP_R_DISABLED };
	int rc;

	*what = "io_uring_setup";
	rc = io_uring_queue_init_params(entries, ring, &p);
	if (rc)
		return rc;
	*what = "registering /dev/ublkc";
	rc = io_uring_register_files(ring, &ublk_fd, 1);
	if (!rc) {
		*what = "registering the ring's restrictions";
		rc = io_uring_register_restrictions(ring, r, sizeof(r) / sizeof(r[0]));
	}
	if (!rc) {
		*what = "enabling the ring";
		rc = io_uring_enable_rings(ring);
	}
	if (!rc) {
		*what = "our seccomp filter";
		rc = refuse_io_uring_setup();
	}
	return rc;
}

/* BULKHEAD_UBLK_PROBE: what a compromised bridge might try through its ring */
static void probe(struct bridge *b)
{
	static const char *name[] = { "openat /etc/hostname", "read of /dev/ublkc",
				      "socket" };
	struct io_uring other;
	struct io_uring_cqe *cqe;
	unsigned int refused = 0;
	int rc;

	/* one at a time: a refused SQE ends its submission batch */
	for (unsigned int i = 0; i < 3; i++) {
		struct io_uring_sqe *sqe = sqe_get(b);
		static char buf[64];

		if (i == 0)
			io_uring_prep_openat(sqe, AT_FDCWD, "/etc/hostname", O_RDONLY, 0);
		else if (i == 1)
			io_uring_prep_read(sqe, 0, buf, sizeof(buf), 0), sqe->flags = IOSQE_FIXED_FILE;
		else
			io_uring_prep_socket(sqe, AF_INET, SOCK_STREAM, 0, 0);
		sqe->user_data = PROBE_TAG + i;
		io_uring_submit(&b->ring);
		if (io_uring_wait_cqe(&b->ring, &cqe))
			die("waiting for a probe's completion", errno);
		printf("block-ublk: probe: %s through the ring: %s\n", name[i],
		       cqe->res < 0 ? strerror(-cqe->res) : "DONE (not refused)");
		refused += cqe->res == -EACCES;
		io_uring_cqe_seen(&b->ring, cqe);
	}
	rc = io_uring_queue_init(4, &other, 0);
	printf("block-ublk: probe: a new ring: %s\n", rc ? strerror(-rc) : "made (not refused)");
	refused += rc == -EPERM;
	rc = io_uring_register_files_update(&b->ring, 0, &(int){ 1 }, 1);
	printf("block-ublk: probe: registering another file: %s\n",
	       rc < 0 ? strerror(-rc) : "done (not refused)");
	refused += rc == -EPERM || rc == -EACCES;
	printf("block-ublk: probe: %u of 5 refused\n", refused);
}

static void serve(struct bridge *b)
{
	for (;;) {
		struct pollfd p[4];
		int n;

		beat(b);
		if (!reap_acks(b)) {
			fprintf(stderr, "block-ublk: the driver corrupted the stream\n");
			reconnect(b);
		}
		reap_ring(b);
		bh_ps_flush(b->blk->ps);
		io_uring_submit(&b->ring);
		if (io_uring_cq_ready(&b->ring) || !bh_ps_prepare_wait(b->blk->ps))
			continue;
		p[0] = (struct pollfd){ .fd = bh_ps_wait_fd(b->blk->ps), .events = POLLIN };
		p[1] = (struct pollfd){ .fd = b->blk->s.fd, .events = 0 };
		p[2] = (struct pollfd){ .fd = b->core.fd, .events = 0 };
		p[3] = (struct pollfd){ .fd = b->ring.ring_fd, .events = POLLIN };
		n = poll(p, 4, BEAT_MS);
		if (n < 0 && errno != EINTR)
			die("poll", errno);
		if (n <= 0)
			continue;
		if (p[2].revents & (POLLHUP | POLLERR)) {
			printf("block-ublk: core went away\n");
			return;
		}
		if (p[0].revents)
			bh_ps_drain_signal(b->blk->ps);
		if (p[1].revents & (POLLHUP | POLLERR))
			reconnect(b);
	}
}

int main(void)
{
	static struct bridge b;
	struct bh_session_info ask = { 0 }, got = { 0 };
	struct bh_block_info *in;
	const char *what;
	char why[200];
	size_t iod_len;
	int fd = -1, rc;
	void *iod;

	setvbuf(stdout, NULL, _IOLBF, 0);
	bh_fault_arm();
	if (bh_core_open(&b.core) < 0) {
		fprintf(stderr, "block-ublk: %s\n", bh_error(&b.core));
		return 1;
	}
	rc = bh_block_open(&b.core, -1, &b.gen[0].blk, why, sizeof(why));
	if (rc) {
		fprintf(stderr, "block-ublk: %s\n", why);
		return 1;
	}
	b.gen[0].open = true;
	b.blk = &b.gen[0].blk;
	in = &b.blk->info;
	b.depth = b.blk->ps->nslots;
	if (b.depth > in->queue_depth)
		b.depth = in->queue_depth;
	if (b.depth > MAX_TAGS)
		b.depth = MAX_TAGS;
	if (b.blk->ps->submit.capacity < b.depth || in->block_size > 4096) {
		fprintf(stderr, "block-ublk: the server's stream has %u ring entries for %u slots "
				"and %u-byte blocks; ublk needs a ring entry per slot and blocks of "
				"at most 4 KiB\n",
			b.blk->ps->submit.capacity, b.depth, in->block_size);
		return 1;
	}
	ask.size = b.blk->size;
	ask.block_size = in->block_size;
	ask.cost = in->max_transfer & ~4095u;
	ask.max_sessions = b.depth;
	ask.id = 1;
	ask.flags = (((in->flags & BH_BLOCK_WRITABLE) ? BH_UBLK_WRITABLE : 0) |
		     ((in->flags & BH_BLOCK_CAN_TRIM) ? BH_UBLK_CAN_TRIM : 0) |
		     ((in->flags & BH_BLOCK_CAN_FLUSH) ? BH_UBLK_CAN_FLUSH : 0))
		    << 8;
	/* EAGAIN: our previous life still holds the device; it lets go shortly */
	for (int tries = 0; (rc = bh_ublk_call(&b.core, &ask, &got, &fd)) == -EAGAIN; tries++) {
		if (tries == 600)
			break;
		nanosleep(&(struct timespec){ .tv_nsec = 50000000 }, NULL);
		beat(&b);
	}
	if (rc) {
		fprintf(stderr, "block-ublk: %s\n", bh_error(&b.core));
		return 1;
	}
	b.dev = atoi(got.name + strlen("ublkb"));
	iod_len = ((size_t)b.depth * sizeof(struct ublksrv_io_desc) + 4095) & ~(size_t)4095;
	iod = mmap(NULL, iod_len, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, BH_UBLK_IOD_OFFSET(0));
	if (iod == MAP_FAILED)
		die("mmap of the I/O descriptors of /dev/ublkc", errno);
	b.iod = iod;
	rc = ring_setup(&b.ring, b.depth + 8, fd, &what);
	if (rc)
		die(what, rc);
	close(fd); /* the ring holds it */
	if (getenv("BULKHEAD_UBLK_PROBE"))
		probe(&b);
	/* every tag's buffer is its slot in the bulk buffer, for good */
	b.gen[0].refs = b.depth;
	for (unsigned int t = 0; t < b.depth; t++) {
		bh_ps_alloc(b.blk->ps, in->max_transfer, &b.tag[t].d);
		b.tag[t].d.tag = t;
		fetch(&b, t, false, -1);
	}
	io_uring_submit(&b.ring);
	ask = (struct bh_session_info){ .flags = BH_UBLK_START | (got.flags & BH_UBLK_RECOVERING) };
	if (bh_ublk_call(&b.core, &ask, &got, NULL)) {
		fprintf(stderr, "block-ublk: %s\n", bh_error(&b.core));
		return 1;
	}
	printf("block-ublk: /dev/ublkb%d %s %s: %llu MiB in %u-byte blocks, 1 queue of %u "
	       "requests of up to %u KiB\n",
	       b.dev, (ask.flags & BH_UBLK_RECOVERING) ? "recovered, serving" : "serves",
	       in->model, (unsigned long long)(b.blk->size >> 20), in->block_size, b.depth,
	       in->max_transfer >> 10);
	serve(&b);
	return 0;
}
