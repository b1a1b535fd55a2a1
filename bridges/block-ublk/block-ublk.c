// SPDX-License-Identifier: MIT
/*
 * block-ublk: serves a Block session to Linux as /dev/ublkbN through ublk,
 * the kernel's userspace block driver (Documentation/block/ublk.rst).
 *
 * Core adds the device (the config's 'ublk = N'; control commands need
 * CAP_SYS_ADMIN) and hands us /dev/ublkcN. We serve each of its queues
 * ('ublk_queues = Q') from a thread of its own, with an io_uring and a
 * Block session of its own (the kernel takes a queue's commands only from
 * the task that fetched for it; a packet stream has one producer): one
 * FETCH_REQ per tag hands the kernel a buffer and waits for a request; a
 * request's descriptor lies in the queue's read-only mmapped I/O
 * descriptor array; COMMIT_AND_FETCH_REQ answers it and waits for the next.
 *
 * Latency (a 4 KiB read at queue depth 1): while the driver holds none of
 * a queue's requests, the thread commits what is done and waits for the
 * kernel's next request in one io_uring_enter; while it holds one (up to
 * SPIN_DEPTH), the thread looks at the session's acknowledgements for up
 * to SPIN_US microseconds (by the TSC, bulkhead/spin.h) before it arms the
 * stream's wake-up and sleeps, so a fast completion costs the driver no
 * eventfd write and us no wake-up (BULKHEAD_UBLK_SPIN_US=N sets the
 * window, BULKHEAD_UBLK_SPIN_DEPTH=N the depth); with more in flight acks
 * come anyway, and a spinning vCPU takes what the kernel needs. The
 * kernel's requests come as deferred task work (DEFER_TASKRUN, above
 * TASKRUN), run in one batch when we ask. BULKHEAD_UBLK_STATS=1 logs, per
 * queue, where a request's time went.
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
 * with 'ublk = N', and lets them make threads but not processes).
 * BULKHEAD_UBLK_PROBE=1 in the environment makes us try a file open, a
 * read, a socket and a new ring through it, a file registration and a
 * fork, and log each refusal (tests/vm/ublk.sh).
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
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "bulkhead/block.h"
#include "bulkhead/bulkhead.h"
#include "bulkhead/fault.h"
#include "bulkhead/proto.h"
#include "bulkhead/spin.h"
#include "bulkhead/ublk.h"

#define MAX_TAGS 128
#define MAX_QUEUES 16
#define MAX_GENS 16 /* bulk buffers the kernel may still hold addresses in */
#define RECONNECT_MS 60000
#define BEAT_MS 200
#define STATS_MS 5000
/* looks at the ack ring before sleeping while the driver has requests (BULKHEAD_UBLK_SPIN_US) */
#define SPIN_US 50
/*
 * ... but only while it has at most this many (BULKHEAD_UBLK_SPIN_DEPTH):
 * with more, acks come anyway and a spinning vCPU takes the instructions
 * the kernel needs for the next requests (ublk-ab under --icount 3, 4 KiB
 * random reads at QD32: 0.76-0.78x the kernel without the window,
 * 0.65-0.68x with it)
 */
#define SPIN_DEPTH 1
#define PROBE_TAG 0xffff0000u

/*
 * How the kernel's requests reach us (BULKHEAD_UBLK_TASKRUN): ublk hands
 * each one over as io_uring task work of the queue's thread. signal: the
 * kernel's default, an interrupt (an IPI if we run on the other CPU) runs
 * it at once; coop (COOP_TASKRUN | TASKRUN_FLAG): no interrupt, it runs
 * when we next enter the kernel, and the ring's flags say it waits;
 * defer (SINGLE_ISSUER | DEFER_TASKRUN | TASKRUN_FLAG): it runs only when
 * we ask for completions, so a batch of requests costs one pass.
 */
enum taskrun { TR_SIGNAL, TR_COOP, TR_DEFER };
static const char *const taskrun_name[] = { "signal", "coop", "defer" };
#define TASKRUN TR_DEFER

enum tag_state { T_KERNEL, T_DRIVER };

struct tag {
	enum tag_state state;
	int gen;	  /* the stream whose bulk buffer addr lies in */
	uint8_t *addr;	  /* the buffer the kernel has for this tag */
	struct bh_ps_desc d; /* its slot (and request) in the current stream */
	uint64_t seen;	  /* TSC when its request came (BULKHEAD_UBLK_STATS) */
};

struct gen {
	struct bh_block blk;
	unsigned int refs; /* tags whose addr lies in it */
	bool open;
};

/* where a queue's requests spent their time, for BULKHEAD_UBLK_STATS */
struct stats {
	uint64_t done, driver_ticks; /* requests acked, TSC from request seen to ack seen */
	uint64_t spun, slept, waited; /* acks found spinning, sleeps on the stream, idle enters */
	uint64_t enters; /* io_uring_enter calls (submit, run task work, wait) */
	uint64_t last_ns, last_done;
};

struct bridge;

struct queue {
	struct bridge *b;
	unsigned int id;
	struct gen gen[MAX_GENS];
	int cur;
	struct bh_block *blk; /* &gen[cur].blk */
	struct io_uring ring;
	int ring_efd; /* TR_DEFER: the ring's eventfd, armed only while we sleep in poll */
	const struct ublksrv_io_desc *iod;
	struct tag tag[MAX_TAGS];
	unsigned int aborted;
	unsigned int with_driver; /* tags in T_DRIVER */
	uint64_t requests, reissued, reconnects;
	struct stats st;
	pthread_t thread;
};

struct bridge {
	struct bh_core core;
	pthread_mutex_t core_lock; /* one conversation with core at a time */
	uint64_t next_beat_ns;
	unsigned int depth, nq, stopped;
	int dev;
	bool stats;
	enum taskrun taskrun;
	unsigned int spin_depth;
	struct bh_spin spin; /* SPIN_US, or BULKHEAD_UBLK_SPIN_US (each queue copies it) */
	double tsc_per_us;
	struct queue q[MAX_QUEUES];
};

/* a heartbeat every BEAT_MS from whichever queue comes by; none while another talks to core */
static void beat(struct bridge *b)
{
	if (bh_coarse_ns() < __atomic_load_n(&b->next_beat_ns, __ATOMIC_RELAXED) ||
	    pthread_mutex_trylock(&b->core_lock))
		return;
	bh_heartbeat_every(&b->core, &b->next_beat_ns, BEAT_MS, "block-ublk");
	pthread_mutex_unlock(&b->core_lock);
}

static void die(const char *what, int err)
{
	fprintf(stderr, "block-ublk: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static struct io_uring_sqe *sqe_get(struct queue *q)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);

	if (!sqe) { /* full: hand the kernel what is there */
		io_uring_submit(&q->ring);
		sqe = io_uring_get_sqe(&q->ring);
		if (!sqe)
			die("io_uring: no room in the submission queue", EBUSY);
	}
	memset(sqe, 0, sizeof(*sqe));
	return sqe;
}

/* the kernel has something for us: completions, or task work that makes them */
static bool kernel_pending(struct queue *q)
{
	return io_uring_cq_ready(&q->ring) ||
	       (IO_URING_READ_ONCE(*q->ring.sq.kflags) & IORING_SQ_TASKRUN);
}

/* hand the kernel our commits, and run its task work if some waits: at most one enter */
static void submit(struct queue *q)
{
	q->st.enters += io_uring_sq_ready(&q->ring) ||
			(IO_URING_READ_ONCE(*q->ring.sq.kflags) & IORING_SQ_TASKRUN);
	io_uring_submit(&q->ring);
}

/* FETCH_REQ (first time) or COMMIT_AND_FETCH_REQ with result, buffer: the tag's slot */
static void fetch(struct queue *q, unsigned int t, bool commit, int result)
{
	struct tag *tg = &q->tag[t];
	struct io_uring_sqe *sqe = sqe_get(q);
	struct ublksrv_io_cmd *cmd = (struct ublksrv_io_cmd *)sqe->cmd;

	if (tg->gen != q->cur) {
		struct gen *old = &q->gen[tg->gen];
		if (--old->refs == 0 && old->open) {
			bh_block_close(&old->blk);
			old->open = false;
		}
		q->gen[q->cur].refs++;
		tg->gen = q->cur;
	}
	if (tg->state == T_DRIVER)
		q->with_driver--;
	tg->addr = bh_ps_data(q->blk->ps, &tg->d);
	tg->state = T_KERNEL;
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = 0; /* registered file 0: /dev/ublkcN */
	sqe->flags = IOSQE_FIXED_FILE;
	sqe->cmd_op = commit ? UBLK_U_IO_COMMIT_AND_FETCH_REQ : UBLK_U_IO_FETCH_REQ;
	sqe->user_data = t;
	cmd->q_id = (uint16_t)q->id;
	cmd->tag = (uint16_t)t;
	cmd->result = result;
	cmd->addr = (uint64_t)(uintptr_t)tg->addr;
}

/* a request from the kernel on tag t: checked, then to the driver */
static void request(struct queue *q, unsigned int t)
{
	const struct bh_block_info *in = &q->blk->info;
	struct tag *tg = &q->tag[t];
	struct ublksrv_io_desc iod;
	uint64_t bytes, start;
	uint32_t op;

	/* the kernel's, but read once: what we check is what we use */
	memcpy(&iod, (const void *)&q->iod[t], sizeof(iod));
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
		fetch(q, t, true, -EINVAL);
		return;
	}
	q->requests++;
	tg->d.op = op;
	tg->d.arg = op == BH_BLOCK_FLUSH ? 0 : start / in->block_size;
	tg->d.length = op == BH_BLOCK_FLUSH ? 0 : (uint32_t)bytes;
	tg->d.status = 0;
	/* the kernel wrote a write's data where it still thinks our buffer is */
	if (op == BH_BLOCK_WRITE && tg->addr != bh_ps_data(q->blk->ps, &tg->d))
		memcpy(bh_ps_data(q->blk->ps, &tg->d), tg->addr, bytes);
	tg->state = T_DRIVER;
	q->with_driver++;
	if (q->b->stats)
		tg->seen = __rdtsc();
	/* never full: the ring has an entry for every slot, and a tag has one slot */
	bh_ps_put(q->blk->ps, &tg->d, 1);
}

/* acknowledgements from the driver: how many, or -1 if the stream is corrupt */
static int reap_acks(struct queue *q)
{
	struct bh_ps_desc a[64];
	int got, n = 0;

	while ((got = bh_ps_get(q->blk->ps, a, 64)) > 0)
		for (int i = 0; i < got; i++, n++) {
			unsigned int t = a[i].tag;
			int res;

			if (t >= q->b->depth || q->tag[t].state != T_DRIVER) {
				fprintf(stderr, "block-ublk: ack for unknown tag %u ignored\n", t);
				continue;
			}
			res = a[i].status < 0 ? a[i].status : a[i].status ? -EIO :
			      (int)q->tag[t].d.length;
			if (a[i].status)
				fprintf(stderr, "block-ublk: op %u at block %llu failed: %s\n",
					a[i].op, (unsigned long long)a[i].arg, strerror(-res));
			if (q->b->stats) {
				q->st.done++;
				q->st.driver_ticks += __rdtsc() - q->tag[t].seen;
			}
			fetch(q, t, true, res);
		}
	return got < 0 ? -1 : n;
}

/* every queue stopped: the device is gone */
static void queue_stopped(struct queue *q)
{
	struct bridge *b = q->b;

	if (__atomic_add_fetch(&b->stopped, 1, __ATOMIC_ACQ_REL) < b->nq)
		pthread_exit(NULL);
	printf("block-ublk: /dev/ublkb%d stopped\n", b->dev);
	exit(0);
}

/* completions from the kernel: requests, or the device going away */
static void reap_ring(struct queue *q)
{
	struct io_uring_cqe *cqe;

	while (io_uring_peek_cqe(&q->ring, &cqe) == 0) {
		unsigned int t = (unsigned int)cqe->user_data;
		int res = cqe->res;

		io_uring_cqe_seen(&q->ring, cqe);
		if (t >= q->b->depth)
			continue;
		if (res == UBLK_IO_RES_OK) {
			request(q, t);
		} else if (res == UBLK_IO_RES_ABORT) {
			if (++q->aborted == q->b->depth) {
				printf("block-ublk: queue %u done; %llu requests served\n", q->id,
				       (unsigned long long)q->requests);
				queue_stopped(q);
			}
		} else {
			die("the kernel refused a fetch", res);
		}
	}
}

/* a Block session for queue q, under the core lock; 0 or -errno with why */
static int session_open(struct queue *q, int timeout_ms, struct bh_block *blk, char *why,
			size_t len)
{
	int rc;

	pthread_mutex_lock(&q->b->core_lock);
	rc = bh_block_open(&q->b->core, timeout_ms, blk, why, len);
	pthread_mutex_unlock(&q->b->core_lock);
	return rc;
}

/* the driver went away: a new session, and what was in flight goes again */
static void reconnect(struct queue *q)
{
	uint64_t deadline = bh_now_ns() + RECONNECT_MS * 1000000ull;
	struct bh_block *old = q->blk;
	unsigned int again = 0, depth = q->b->depth;
	int g;
	char why[200];

	reap_acks(q);
	printf("block-ublk: queue %u: the block session hung up: reconnecting\n", q->id);
	for (g = 0; g < MAX_GENS && (q->gen[g].open || g == q->cur); g++)
		;
	if (g == MAX_GENS)
		die("too many driver restarts with requests still on old buffers", EBUSY);
	while (session_open(q, 0, &q->gen[g].blk, why, sizeof(why))) {
		if (bh_now_ns() > deadline) {
			fprintf(stderr, "block-ublk: cannot reopen the block session: %s\n", why);
			exit(1);
		}
		nanosleep(&(struct timespec){ .tv_nsec = 50000000 }, NULL);
		beat(q->b);
	}
	q->gen[g].open = true;
	q->gen[g].refs = 0;
	if (q->gen[g].blk.size != old->size || q->gen[g].blk.info.block_size != old->info.block_size ||
	    q->gen[g].blk.info.max_transfer < old->info.max_transfer ||
	    q->gen[g].blk.ps->nslots < depth) {
		fprintf(stderr, "block-ublk: the disk changed across the driver's restart: giving "
				"up rather than mixing data\n");
		exit(1);
	}
	for (unsigned int t = 0; t < depth; t++) {
		struct tag *tg = &q->tag[t];
		struct bh_ps_desc d;

		bh_ps_alloc(q->gen[g].blk.ps, q->gen[g].blk.info.max_transfer, &d);
		if (tg->state == T_DRIVER) {
			memcpy(bh_ps_data(q->gen[g].blk.ps, &d), bh_ps_data(old->ps, &tg->d),
			       tg->d.length);
			d.op = tg->d.op;
			d.arg = tg->d.arg;
			d.length = tg->d.length;
			d.tag = t;
			bh_ps_put(q->gen[g].blk.ps, &d, 1);
			again++;
		}
		d.tag = t;
		tg->d = d;
	}
	bh_ps_flush(q->gen[g].blk.ps);
	q->cur = g;
	q->blk = &q->gen[g].blk;
	/* nothing of the kernel's lies in it any more: free it now */
	for (int o = 0; o < MAX_GENS; o++)
		if (o != g && q->gen[o].open && !q->gen[o].refs) {
			bh_block_close(&q->gen[o].blk);
			q->gen[o].open = false;
		}
	q->reissued += again;
	q->reconnects++;
	printf("block-ublk: reconnected (%llu so far on queue %u): %u request(s) re-issued\n",
	       (unsigned long long)q->reconnects, q->id, again);
}

/*
 * After the rings are restricted: our own filter on top of core's refuses
 * further io_uring set-up and registration (EPERM), so no new, unrestricted
 * ring can be made. Enabling a ring stays allowed: each queue's thread
 * enables its own (a DEFER_TASKRUN ring belongs to the task that enables
 * it), every ring we have is restricted before, and no new one can come.
 * A raw filter: libseccomp probes the kernel with calls core's filter does
 * not allow. Without TSYNC: it goes on before any queue's thread exists,
 * and threads inherit it.
 */
static int refuse_io_uring_setup(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 3, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_register, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IORING_REGISTER_ENABLE_RINGS, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) ? -errno : 0;
}

/*
 * A queue's ring: disabled at creation, /dev/ublkcN as registered file 0,
 * (TR_DEFER) an eventfd that says task work waits while we sleep in poll,
 * only URING_CMD on registered files allowed and no register operation;
 * the queue's thread enables it (ring_enable). 0 or -errno with what
 * failed in *what.
 */
static int ring_setup(struct queue *q, unsigned int entries, int ublk_fd, const char **what)
{
	static const unsigned int flags[] = {
		[TR_SIGNAL] = 0,
		[TR_COOP] = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
		[TR_DEFER] = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
			     IORING_SETUP_TASKRUN_FLAG,
	};
	struct io_uring *ring = &q->ring;
	enum taskrun tr = q->b->taskrun;
	struct io_uring_restriction r[] = {
		{ .opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_URING_CMD },
		{ .opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED, .sqe_flags = IOSQE_FIXED_FILE },
		{ .opcode = IORING_RESTRICTION_SQE_FLAGS_REQUIRED, .sqe_flags = IOSQE_FIXED_FILE },
	};
	struct io_uring_params p = { .flags = IORING_SETUP_R_DISABLED | flags[tr] };
	int rc;

	*what = tr == TR_SIGNAL ? "io_uring_setup"
		: tr == TR_COOP ? "io_uring_setup with COOP_TASKRUN (5.19+; "
				  "BULKHEAD_UBLK_TASKRUN=signal does without)"
				: "io_uring_setup with DEFER_TASKRUN (6.1+; "
				  "BULKHEAD_UBLK_TASKRUN=signal does without)";
	q->ring_efd = -1;
	rc = io_uring_queue_init_params(entries, ring, &p);
	if (rc)
		return rc;
	*what = "this kernel's io_uring lacks IORING_FEAT_EXT_ARG (5.11+)";
	if (!(p.features & IORING_FEAT_EXT_ARG))
		return -ENOSYS;
	*what = "registering /dev/ublkc";
	rc = io_uring_register_files(ring, &ublk_fd, 1);
	if (!rc && tr == TR_DEFER) {
		*what = "an eventfd for the ring";
		q->ring_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		rc = q->ring_efd < 0 ? -errno : io_uring_register_eventfd(ring, q->ring_efd);
		if (!rc)
			rc = io_uring_cq_eventfd_toggle(ring, false);
	}
	if (!rc) {
		*what = "registering the ring's restrictions";
		rc = io_uring_register_restrictions(ring, r, sizeof(r) / sizeof(r[0]));
	}
	return rc;
}

/* from the thread that serves the queue: with DEFER_TASKRUN, the ring's one submitter */
static void ring_enable(struct queue *q)
{
	int rc = io_uring_enable_rings(&q->ring);

	if (rc)
		die("enabling the ring", rc);
}

/* BULKHEAD_UBLK_PROBE: what a compromised bridge might try through its ring */
static void probe(struct queue *q)
{
	static const char *name[] = { "openat /etc/hostname", "read of /dev/ublkc",
				      "socket" };
	struct io_uring other;
	struct io_uring_cqe *cqe;
	unsigned int refused = 0;
	int rc;

	/* one at a time: a refused SQE ends its submission batch */
	for (unsigned int i = 0; i < 3; i++) {
		struct io_uring_sqe *sqe = sqe_get(q);
		static char buf[64];

		if (i == 0)
			io_uring_prep_openat(sqe, AT_FDCWD, "/etc/hostname", O_RDONLY, 0);
		else if (i == 1)
			io_uring_prep_read(sqe, 0, buf, sizeof(buf), 0), sqe->flags = IOSQE_FIXED_FILE;
		else
			io_uring_prep_socket(sqe, AF_INET, SOCK_STREAM, 0, 0);
		sqe->user_data = PROBE_TAG + i;
		io_uring_submit(&q->ring);
		if (io_uring_wait_cqe(&q->ring, &cqe))
			die("waiting for a probe's completion", errno);
		printf("block-ublk: probe: %s through the ring: %s\n", name[i],
		       cqe->res < 0 ? strerror(-cqe->res) : "DONE (not refused)");
		refused += cqe->res == -EACCES;
		io_uring_cqe_seen(&q->ring, cqe);
	}
	rc = io_uring_queue_init(4, &other, 0);
	printf("block-ublk: probe: a new ring: %s\n", rc ? strerror(-rc) : "made (not refused)");
	refused += rc == -EPERM;
	rc = io_uring_register_files_update(&q->ring, 0, &(int){ 1 }, 1);
	printf("block-ublk: probe: registering another file: %s\n",
	       rc < 0 ? strerror(-rc) : "done (not refused)");
	refused += rc == -EPERM || rc == -EACCES;
	/* threads are allowed (one per queue), processes are not */
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	printf("block-ublk: probe: a new process (fork): %s\n",
	       pid < 0 ? strerror(errno) : "made (not refused)");
	refused += pid < 0 && errno == EPERM;
	printf("block-ublk: probe: %u of 6 refused\n", refused);
}

/* BULKHEAD_UBLK_STATS: every STATS_MS while requests come */
static void stats(struct queue *q)
{
	struct stats *st = &q->st;
	uint64_t now = bh_coarse_ns(), n = st->done - st->last_done;

	if (now - st->last_ns < STATS_MS * 1000000ull)
		return;
	st->last_ns = now;
	if (!n)
		return;
	printf("block-ublk: stats: queue %u: %llu requests, request -> ack %.1f us (session and "
	       "driver); per request: %.2f acks found spinning, %.2f sleeps on the stream, %.2f "
	       "waits for the kernel, %.2f io_uring_enters\n",
	       q->id, (unsigned long long)n, (double)st->driver_ticks / n / q->b->tsc_per_us,
	       (double)st->spun / n, (double)st->slept / n, (double)st->waited / n,
	       (double)st->enters / n);
	st->last_done = st->done;
	st->driver_ticks = st->spun = st->slept = st->waited = st->enters = 0;
}

/* idle: is the session or core gone? (a poll that does not wait) */
static void check_hangups(struct queue *q)
{
	struct pollfd p[2] = {
		{ .fd = q->blk->s.fd, .events = 0 },
		{ .fd = q->b->core.fd, .events = 0 },
	};

	if (poll(p, 2, 0) <= 0)
		return;
	if (p[1].revents & (POLLHUP | POLLERR)) {
		printf("block-ublk: core went away\n");
		exit(0);
	}
	if (p[0].revents & (POLLHUP | POLLERR))
		reconnect(q);
}

/*
 * The polling window while the driver has requests: its acks, or the
 * kernel's next requests (ublk hands them over as task work, which
 * interrupts us); true if it found either
 */
static bool poll_window(struct queue *q)
{
	struct bh_spin w = q->b->spin;

	for (bh_spin_begin(&w); bh_spin_more(&w);)
		if (kernel_pending(q) || reap_acks(q) != 0)
			return true;
	return false;
}

static void serve(struct queue *q)
{
	for (;;) {
		struct pollfd p[4];
		int n;

		beat(q->b);
		if (q->b->stats)
			stats(q);
		if (reap_acks(q) < 0) {
			fprintf(stderr, "block-ublk: the driver corrupted the stream\n");
			reconnect(q);
		}
		reap_ring(q);
		bh_ps_flush(q->blk->ps);
		if (kernel_pending(q)) {
			submit(q);
			continue;
		}
		if (!q->with_driver) {
			/* commit what is done and wait for the kernel's next request: one enter */
			struct __kernel_timespec ts = { .tv_nsec = BEAT_MS * 1000000ll };
			struct io_uring_cqe *cqe;

			q->st.waited++;
			q->st.enters++;
			n = io_uring_submit_and_wait_timeout(&q->ring, &cqe, 1, &ts, NULL);
			if (n == -ETIME)
				check_hangups(q);
			else if (n < 0 && n != -EINTR)
				die("io_uring_enter", n);
			continue;
		}
		submit(q);
		/* the driver has a few: a fast ack is cheaper found than signalled */
		if (q->with_driver <= q->b->spin_depth && poll_window(q)) {
			q->st.spun++;
			continue;
		}
		if (!bh_ps_prepare_wait(q->blk->ps))
			continue;
		/*
		 * deferred task work wakes only a task waiting in io_uring_enter: while
		 * we sleep here, the ring's eventfd says it came (armed, then a last look)
		 */
		if (q->ring_efd >= 0) {
			io_uring_cq_eventfd_toggle(&q->ring, true);
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			if (kernel_pending(q)) {
				io_uring_cq_eventfd_toggle(&q->ring, false);
				continue;
			}
		}
		q->st.slept++;
		p[0] = (struct pollfd){ .fd = bh_ps_wait_fd(q->blk->ps), .events = POLLIN };
		p[1] = (struct pollfd){ .fd = q->blk->s.fd, .events = 0 };
		p[2] = (struct pollfd){ .fd = q->b->core.fd, .events = 0 };
		p[3] = (struct pollfd){ .fd = q->ring_efd >= 0 ? q->ring_efd : q->ring.ring_fd,
					.events = POLLIN };
		n = poll(p, 4, BEAT_MS);
		if (q->ring_efd >= 0) {
			uint64_t v;

			io_uring_cq_eventfd_toggle(&q->ring, false);
			if (n > 0 && p[3].revents)
				(void)!read(q->ring_efd, &v, sizeof(v));
		}
		if (n < 0 && errno != EINTR)
			die("poll", errno);
		if (n <= 0)
			continue;
		if (p[2].revents & (POLLHUP | POLLERR)) {
			printf("block-ublk: core went away\n");
			exit(0);
		}
		if (p[0].revents)
			bh_ps_drain_signal(q->blk->ps);
		if (p[1].revents & (POLLHUP | POLLERR))
			reconnect(q);
	}
}

/* a queue's first fetches: every tag's buffer is its slot in the bulk buffer, for good */
static void fetch_all(struct queue *q)
{
	q->gen[0].refs = q->b->depth;
	for (unsigned int t = 0; t < q->b->depth; t++) {
		bh_ps_alloc(q->blk->ps, q->blk->info.max_transfer, &q->tag[t].d);
		q->tag[t].d.tag = t;
		fetch(q, t, false, -1);
	}
	io_uring_submit(&q->ring);
}

static void *queue_thread(void *arg)
{
	struct queue *q = arg;

	ring_enable(q);
	fetch_all(q);
	serve(q);
	return NULL;
}

/* BULKHEAD_UBLK_TASKRUN (signal, coop or defer) and BULKHEAD_UBLK_SPIN_DEPTH (0 to MAX_TAGS) */
static int settings_init(struct bridge *b)
{
	const char *v = getenv("BULKHEAD_UBLK_TASKRUN"), *d = getenv("BULKHEAD_UBLK_SPIN_DEPTH");
	char *end = NULL;
	unsigned long n;

	b->taskrun = TASKRUN;
	b->spin_depth = SPIN_DEPTH;
	if (d) {
		n = strtoul(d, &end, 10);
		if (!*d || *end || n > MAX_TAGS) {
			fprintf(stderr, "block-ublk: BULKHEAD_UBLK_SPIN_DEPTH=%s: expected how many "
					"requests with the driver still let us poll for acks, 0 to %u\n",
				d, MAX_TAGS);
			return -1;
		}
		b->spin_depth = (unsigned int)n;
	}
	if (!v)
		return 0;
	for (unsigned int i = 0; i < sizeof(taskrun_name) / sizeof(taskrun_name[0]); i++)
		if (!strcmp(v, taskrun_name[i])) {
			b->taskrun = (enum taskrun)i;
			return 0;
		}
	fprintf(stderr, "block-ublk: BULKHEAD_UBLK_TASKRUN=%s: expected signal, coop or defer\n", v);
	return -1;
}

int main(void)
{
	static struct bridge b = { .core_lock = PTHREAD_MUTEX_INITIALIZER };
	struct bh_session_info ask = { 0 }, got = { 0 };
	struct bh_block_info *in;
	const char *what;
	char why[200];
	size_t iod_len;
	int fd = -1, rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	bh_fault_arm();
	if (bh_core_open(&b.core) < 0) {
		fprintf(stderr, "block-ublk: %s\n", bh_error(&b.core));
		return 1;
	}
	b.stats = getenv("BULKHEAD_UBLK_STATS") != NULL;
	if (bh_spin_init(&b.spin, "BULKHEAD_UBLK_SPIN_US", SPIN_US) || settings_init(&b))
		return 1;
	if (b.stats)
		b.tsc_per_us = bh_tsc_per_us();
	for (unsigned int i = 0; i < MAX_QUEUES; i++)
		b.q[i] = (struct queue){ .b = &b, .id = i, .blk = &b.q[i].gen[0].blk };
	rc = bh_block_open(&b.core, -1, b.q[0].blk, why, sizeof(why));
	if (rc) {
		fprintf(stderr, "block-ublk: %s\n", why);
		return 1;
	}
	b.q[0].gen[0].open = true;
	in = &b.q[0].blk->info;
	b.depth = b.q[0].blk->ps->nslots;
	if (b.depth > in->queue_depth)
		b.depth = in->queue_depth;
	if (b.depth > MAX_TAGS)
		b.depth = MAX_TAGS;
	if (b.q[0].blk->ps->submit.capacity < b.depth || in->block_size > 4096) {
		fprintf(stderr, "block-ublk: the server's stream has %u ring entries for %u slots "
				"and %u-byte blocks; ublk needs a ring entry per slot and blocks of "
				"at most 4 KiB\n",
			b.q[0].blk->ps->submit.capacity, b.depth, in->block_size);
		return 1;
	}
	ask.size = b.q[0].blk->size;
	ask.block_size = in->block_size;
	ask.cost = in->max_transfer & ~4095u;
	ask.max_sessions = b.depth;
	ask.id = MAX_QUEUES; /* as many as core gives us */
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
	b.nq = got.id ? got.id : 1; /* a core before ublk_queues answers 0: one */
	if (b.nq > MAX_QUEUES)
		die("core gave more queues than asked for", EPROTO);
	iod_len = ((size_t)b.depth * sizeof(struct ublksrv_io_desc) + 4095) & ~(size_t)4095;
	for (unsigned int i = 0; i < b.nq; i++) {
		struct queue *q = &b.q[i];
		void *iod;

		if (i) {
			rc = bh_block_open(&b.core, 10000, q->blk, why, sizeof(why));
			if (rc) {
				fprintf(stderr, "block-ublk: queue %u's block session: %s\n", i, why);
				return 1;
			}
			q->gen[0].open = true;
			if (q->blk->size != b.q[0].blk->size || q->blk->ps->nslots < b.depth)
				die("the driver's sessions differ", EPROTO);
		}
		iod = mmap(NULL, iod_len, PROT_READ, MAP_SHARED | MAP_POPULATE, fd,
			   BH_UBLK_IOD_OFFSET(i));
		if (iod == MAP_FAILED)
			die("mmap of the I/O descriptors of /dev/ublkc", errno);
		q->iod = iod;
		rc = ring_setup(q, b.depth + 8, fd, &what);
		if (rc)
			die(what, rc);
	}
	rc = refuse_io_uring_setup();
	if (rc)
		die("our seccomp filter", rc);
	close(fd); /* the rings hold it */
	ring_enable(&b.q[0]);
	if (getenv("BULKHEAD_UBLK_PROBE"))
		probe(&b.q[0]);
	for (unsigned int i = 1; i < b.nq; i++) {
		rc = pthread_create(&b.q[i].thread, NULL, queue_thread, &b.q[i]);
		if (rc)
			die("a thread for a queue (processes = in the config counts them)", rc);
	}
	fetch_all(&b.q[0]);
	ask = (struct bh_session_info){ .flags = BH_UBLK_START | (got.flags & BH_UBLK_RECOVERING) };
	pthread_mutex_lock(&b.core_lock);
	rc = bh_ublk_call(&b.core, &ask, &got, NULL);
	pthread_mutex_unlock(&b.core_lock);
	if (rc) {
		fprintf(stderr, "block-ublk: %s\n", bh_error(&b.core));
		return 1;
	}
	printf("block-ublk: /dev/ublkb%d %s %s: %llu MiB in %u-byte blocks, %u queue(s) of %u "
	       "requests of up to %u KiB; task work: %s\n",
	       b.dev, (ask.flags & BH_UBLK_RECOVERING) ? "recovered, serving" : "serves",
	       in->model, (unsigned long long)(b.q[0].blk->size >> 20), in->block_size, b.nq,
	       b.depth, in->max_transfer >> 10, taskrun_name[b.taskrun]);
	serve(&b.q[0]);
	return 0;
}
