// SPDX-License-Identifier: MIT
/*
 * nvme: a driver for QEMU's NVMe controller (1b36:0010), serving its first
 * namespace as Block sessions (bulkhead/block.h) from an unprivileged,
 * sandboxed process.
 *
 * Init (NVMe 1.4, 7.6.1): disable the controller and wait for CSTS.RDY = 0,
 * put the admin queues in DMA memory, enable, identify the controller and
 * namespace 1, ask for one I/O queue pair and create it. Interrupts are
 * MSI-X: vector 0 for the admin queue, vector 1 for the I/O queue.
 *
 * Data path: each client's stream region is a DMA buffer of this device,
 * so a request's PRPs point straight into the client's bulk buffer (zero
 * copy; the IOMMU keeps the device inside our DMA buffers). One I/O queue
 * pair is enough for a single-threaded driver: the commands of all
 * clients share it, up to IO_SLOTS in flight.
 *
 * Polling window (BULKHEAD_NVME_SPIN_US, default SPIN_US): after a pass that
 * did something, the loop looks at the completion queue and the clients'
 * request rings for up to that many microseconds (by the TSC, spin.h)
 * before it sleeps on the interrupt and the clients' eventfds. A request
 * or a completion found so costs no wake-up of ours and no eventfd write
 * of the client's. With commands in flight the window always runs (the
 * device answers within it at queue depth 1). With none, it waits only
 * for the clients' next requests, which a client that submits as soon as
 * it has its ack (blkbench) sends within microseconds and one behind the
 * kernel (block-ublk: fio's wake-up, then ublk's task work) sends after
 * more than the window: so that one runs only while such windows have
 * been finding requests (credit), and every PROBE_EVERY-th time to find
 * out again; spinning for nothing takes a CPU the others need.
 *
 * Recovery: a command that does not complete in IO_TIMEOUT_MS means the
 * controller is stuck; a command the controller refuses as malformed, or
 * whose data it could not move, means our queues or mappings are broken.
 * Either way we exit non-zero without acknowledging it; core resets the
 * device and starts us again, and clients re-issue what was in flight. On
 * SIGTERM or when core goes away we drain and shut the controller down
 * cleanly (CC.SHN). We heartbeat every BEAT_MS, so watchdog_ms catches a
 * hang.
 *
 * Fault injection (BULKHEAD_FAULTS=1, lib/fault.c): bad-desc and bad-dma
 * make the loop issue one command of its own, a read into the scratch page,
 * that is broken as a bug would break it. Client commands are never
 * touched: QEMU completes a DMA the IOMMU blocked as a success, so a
 * client's data would silently suffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "bulkhead/block.h"
#include "bulkhead/bulkhead.h"
#include "bulkhead/fault.h"
#include "bulkhead/service.h"
#include "bulkhead/session.h"
#include "bulkhead/spin.h"
#include "regs.h"

#define NVME_VENDOR 0x1b36
#define NVME_DEVICE 0x0010

#define PAGE 4096u
#define ADMIN_DEPTH 32
#define IO_DEPTH 256	 /* SQ/CQ entries */
#define IO_SLOTS 128	 /* commands in flight; fewer than IO_DEPTH, so the SQ never fills */
#define RING 128	 /* ring entries per client */
#define MAX_TRANSFER (128u << 10)
#define MAX_CLIENTS 4
#define ADMIN_TIMEOUT_MS 5000
#define IO_TIMEOUT_MS 10000 /* QEMU under TCG and load: well under 1 s */
#define SPIN_US 400 /* the polling window; BULKHEAD_NVME_SPIN_US sets it */
#define CREDIT_MAX 8 /* idle windows that found a request, remembered */
#define PROBE_EVERY 32 /* without credit, an idle window this often all the same */
#define BATCH 32
#define BEAT_MS 200
#define STATS_MS 5000
#define FAULT_SLOT (-2) /* slot.client of our own, fault-injected command */
/* an IOVA core never maps: its domains end below 4 GiB, VT-d allows 39 bits */
#define WILD_IOVA 0x7fdead0000ull

struct queue {
	struct bh_dma mem; /* SQ, then CQ */
	struct nvme_sqe *sq;
	volatile struct nvme_cqe *cq;
	uint32_t depth;
	uint16_t id;
	uint16_t sq_tail;
	uint16_t sq_head; /* as the controller last told us */
	uint16_t cq_head;
	uint16_t phase;
	size_t sq_db, cq_db;
};

struct client {
	struct bh_session s;
	struct bh_packet_stream *ps;
	uint64_t bulk_iova; /* where the device finds the bulk buffer */
	unsigned int inflight;
	bool open;
	bool closing; /* hung up; freed once the device is done with its memory */
	bool ack_pending;
};

/* one I/O command in flight */
struct slot {
	struct bh_ps_desc d;
	uint64_t start_ns;
	uint64_t start_tsc; /* BULKHEAD_NVME_STATS */
	int client; /* -1: free */
};

struct nvme {
	struct bh_core core;
	unsigned int dev;
	struct bh_mmio regs;
	struct bh_irq irq[2];
	uint32_t dstrd;
	unsigned int ready_ms; /* CAP.TO */
	struct queue admin, io;
	struct bh_dma scratch; /* identify data */
	struct bh_dma prp;     /* a PRP-list page per slot */
	struct slot slot[IO_SLOTS];
	uint16_t free_cid[IO_SLOTS];
	unsigned int nfree;
	unsigned int inflight;
	struct bh_block_info info;
	bool vwc, dsm;
	struct bh_service svc;
	struct client client[MAX_CLIENTS];
	uint64_t requests, refused, failed;
	uint64_t last_check_ns;
	uint64_t last_beat_ns;
	uint32_t cc; /* what we wrote to CC */
	struct bh_spin poll; /* the polling window */
	int credit; /* recent idle windows' finds (CREDIT_MAX) minus misses */
	unsigned int idle_passes;
	/* BULKHEAD_NVME_STATS: where a command's time went, logged every STATS_MS */
	struct {
		bool on;
		double tsc_per_us;
		uint64_t done, device_ticks, spun, slept, last_ns;
	} st;
};

static volatile sig_atomic_t stopping;

/*
 * every BEAT_MS, from init on: core's watchdog_ms counts from our start,
 * and a restart under load can spend a while in controller init
 */
static bool heartbeat(struct nvme *n)
{
	uint64_t now = bh_coarse_ns();

	if (now - n->last_beat_ns < BEAT_MS * 1000000ull)
		return false;
	n->last_beat_ns = now;
	if (bh_heartbeat(&n->core) < 0 && !stopping) {
		printf("nvme: heartbeat: %s; shutting down\n", bh_error(&n->core));
		stopping = 1;
	}
	return true;
}

static void on_term(int sig)
{
	(void)sig;
	stopping = 1;
}

static void doorbell(struct nvme *n, size_t off, uint32_t v)
{
	/* the SQEs (or our use of the CQEs) before the controller sees the index */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	bh_write32(&n->regs, off, v);
}

static size_t doorbell_off(const struct nvme *n, unsigned int qid, bool cq)
{
	return NVME_DOORBELLS + (2 * qid + (cq ? 1 : 0)) * (4u << n->dstrd);
}

static int queue_alloc(struct nvme *n, struct queue *q, uint16_t id, uint32_t depth)
{
	size_t sq_bytes = (depth * sizeof(struct nvme_sqe) + PAGE - 1) & ~(size_t)(PAGE - 1);
	size_t cq_bytes = (depth * sizeof(struct nvme_cqe) + PAGE - 1) & ~(size_t)(PAGE - 1);
	int rc = bh_dma_alloc(&n->core, n->dev, sq_bytes + cq_bytes, 0, &q->mem);

	if (rc)
		return rc;
	memset(q->mem.virt, 0, sq_bytes + cq_bytes);
	q->sq = q->mem.virt;
	q->cq = (volatile struct nvme_cqe *)((uint8_t *)q->mem.virt + sq_bytes);
	q->depth = depth;
	q->id = id;
	q->sq_tail = q->sq_head = q->cq_head = 0;
	q->phase = 1;
	q->sq_db = doorbell_off(n, id, false);
	q->cq_db = doorbell_off(n, id, true);
	return 0;
}

static uint64_t cq_iova(const struct queue *q)
{
	return q->mem.iova + ((uint8_t *)q->cq - (uint8_t *)q->mem.virt);
}

/* place one command; the caller rings the doorbell */
static void sq_put(struct queue *q, const struct nvme_sqe *cmd)
{
	q->sq[q->sq_tail] = *cmd;
	q->sq_tail = (uint16_t)((q->sq_tail + 1) % q->depth);
}

/* the next completion, or NULL; consumes it */
static bool cq_get(struct queue *q, struct nvme_cqe *out)
{
	volatile struct nvme_cqe *e = &q->cq[q->cq_head];

	if ((e->status & 1) != q->phase)
		return false;
	/* the rest of the entry only after its phase tag */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	out->result = e->result;
	out->sq_head = e->sq_head;
	out->sq_id = e->sq_id;
	out->cid = e->cid;
	out->status = e->status;
	if (++q->cq_head == q->depth) {
		q->cq_head = 0;
		q->phase ^= 1;
	}
	if (out->sq_head < q->depth)
		q->sq_head = out->sq_head;
	return true;
}

/* 7.6.1 step 1: CC.EN = 0, then CSTS.RDY = 0 */
static int controller_disable(struct nvme *n)
{
	uint32_t cc = bh_read32(&n->regs, NVME_CC);

	if (cc & NVME_CC_EN)
		bh_write32(&n->regs, NVME_CC, cc & ~NVME_CC_EN);
	return bh_poll32(&n->regs, NVME_CSTS, NVME_CSTS_RDY, 0, n->ready_ms * 1000u);
}

/* one admin command, waited for (init and shutdown only) */
static int admin(struct nvme *n, struct nvme_sqe *cmd, uint32_t *result)
{
	uint64_t deadline = bh_now_ns() + ADMIN_TIMEOUT_MS * 1000000ull;
	static uint16_t cid;
	struct nvme_cqe e;

	cmd->cid = ++cid;
	sq_put(&n->admin, cmd);
	doorbell(n, n->admin.sq_db, n->admin.sq_tail);
	for (;;) {
		while (cq_get(&n->admin, &e)) {
			doorbell(n, n->admin.cq_db, n->admin.cq_head);
			if (e.cid != cid)
				continue; /* a late answer to an earlier command */
			if (result)
				*result = e.result;
			return e.status >> 1 ? -EIO : 0;
		}
		uint64_t now = bh_now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		/* MSI-X vector 0 tells us; the timeout covers a lost interrupt */
		bh_irq_wait(&n->irq[0], BEAT_MS);
		heartbeat(n);
	}
}

static void id_string(char *dst, size_t len, const uint8_t *src, size_t n)
{
	size_t k = n < len - 1 ? n : len - 1;

	memcpy(dst, src, k);
	while (k && (dst[k - 1] == ' ' || dst[k - 1] == 0))
		k--;
	dst[k] = 0;
	for (size_t i = 0; i < k; i++)
		if (dst[i] < 0x20 || dst[i] > 0x7e)
			dst[i] = '?';
}

/* 5.15: identify controller, then namespace 1 */
static int identify(struct nvme *n, uint32_t min_page)
{
	const uint8_t *id = n->scratch.virt;
	struct nvme_sqe cmd = { .opcode = NVME_ADMIN_IDENTIFY, .prp1 = n->scratch.iova,
				.cdw10 = NVME_CNS_CONTROLLER };
	char sn[21], mn[41], fr[9];
	uint32_t nn, max = MAX_TRANSFER, lbads, ms;
	uint64_t nsze;
	uint8_t mdts, flbas;
	int rc;

	rc = admin(n, &cmd, NULL);
	if (rc)
		return rc;
	id_string(sn, sizeof(sn), id + NVME_ID_SN, 20);
	id_string(mn, sizeof(mn), id + NVME_ID_MN, 40);
	id_string(fr, sizeof(fr), id + NVME_ID_FR, 8);
	mdts = id[NVME_ID_MDTS];
	memcpy(&nn, id + NVME_ID_NN, 4);
	n->dsm = id[NVME_ID_ONCS] & NVME_ONCS_DSM;
	n->vwc = id[NVME_ID_VWC] & 1;
	if (mdts && mdts < 20 && ((uint64_t)min_page << mdts) < max)
		max = min_page << mdts;
	if (nn < 1) {
		fprintf(stderr, "nvme: the controller has no namespace: create one (QEMU: "
				"-device nvme,drive=...)\n");
		return -ENODEV;
	}
	memset(&cmd, 0, sizeof(cmd));
	cmd.opcode = NVME_ADMIN_IDENTIFY;
	cmd.nsid = 1;
	cmd.prp1 = n->scratch.iova;
	cmd.cdw10 = NVME_CNS_NAMESPACE;
	rc = admin(n, &cmd, NULL);
	if (rc)
		return rc;
	memcpy(&nsze, id + NVME_NS_NSZE, 8);
	flbas = id[NVME_NS_FLBAS] & 0xf;
	ms = id[NVME_NS_LBAF + 4 * flbas] | (uint32_t)id[NVME_NS_LBAF + 4 * flbas + 1] << 8;
	lbads = id[NVME_NS_LBAF + 4 * flbas + 2];
	if (lbads < 9 || lbads > 16 || ms || !nsze) {
		fprintf(stderr, "nvme: namespace 1 has an unusable format (2^%u-byte blocks, %u "
				"metadata bytes, %llu blocks)\n",
			lbads, ms, (unsigned long long)nsze);
		return -ENOTSUP;
	}
	n->info.version = BH_BLOCK_VERSION;
	n->info.block_size = 1u << lbads;
	n->info.block_count = nsze;
	n->info.flags = BH_BLOCK_WRITABLE | (n->dsm ? BH_BLOCK_CAN_TRIM : 0) |
			(n->vwc ? BH_BLOCK_CAN_FLUSH : 0);
	n->info.max_transfer = max;
	n->info.queue_depth = RING;
	snprintf(n->info.model, sizeof(n->info.model), "%s", mn);
	printf("nvme: %s, serial %s, firmware %s; namespace 1: %llu blocks of %u bytes (%llu "
	       "MiB), max transfer %u KiB%s%s\n",
	       mn, sn, fr, (unsigned long long)nsze, n->info.block_size,
	       (unsigned long long)(nsze << lbads >> 20), max >> 10,
	       n->vwc ? ", volatile write cache" : "", n->dsm ? ", trim" : "");
	return 0;
}

/* 7.6.1 steps 2-9, and 5.3/5.4: one I/O queue pair on vector 1 */
static int controller_init(struct nvme *n)
{
	uint64_t cap = bh_read64(&n->regs, NVME_CAP);
	uint32_t min_page = 1u << (12 + NVME_CAP_MPSMIN(cap));
	uint32_t depth = NVME_CAP_MQES(cap) < IO_DEPTH ? NVME_CAP_MQES(cap) : IO_DEPTH;
	struct nvme_sqe cmd;
	int rc;

	n->dstrd = NVME_CAP_DSTRD(cap);
	n->ready_ms = (NVME_CAP_TO(cap) ? NVME_CAP_TO(cap) : 1) * 500;
	if (!NVME_CAP_CSS_NVM(cap) || min_page > PAGE || depth <= IO_SLOTS) {
		fprintf(stderr, "nvme: unsupported controller (CAP 0x%016llx): needs the NVM "
				"command set, 4 KiB pages and %u queue entries\n",
			(unsigned long long)cap, IO_SLOTS + 1);
		return -ENOTSUP;
	}
	rc = controller_disable(n);
	if (rc) {
		fprintf(stderr, "nvme: the controller did not stop (CSTS 0x%x)\n",
			bh_read32(&n->regs, NVME_CSTS));
		return rc;
	}
	if ((rc = queue_alloc(n, &n->admin, 0, ADMIN_DEPTH)) ||
	    (rc = queue_alloc(n, &n->io, 1, depth)) ||
	    (rc = bh_dma_alloc(&n->core, n->dev, PAGE, 0, &n->scratch)) ||
	    (rc = bh_dma_alloc(&n->core, n->dev, (size_t)IO_SLOTS * PAGE, 0, &n->prp))) {
		fprintf(stderr, "nvme: %s\n", bh_error(&n->core));
		return rc;
	}
	bh_write32(&n->regs, NVME_AQA, NVME_AQA_SIZES(ADMIN_DEPTH, ADMIN_DEPTH));
	bh_write64(&n->regs, NVME_ASQ, n->admin.mem.iova);
	bh_write64(&n->regs, NVME_ACQ, cq_iova(&n->admin));
	bh_write32(&n->regs, NVME_CC,
		   NVME_CC_IOCQES(4) | NVME_CC_IOSQES(6) | NVME_CC_AMS_RR | NVME_CC_MPS(12) |
			   NVME_CC_CSS_NVM | NVME_CC_EN);
	n->cc = bh_read32(&n->regs, NVME_CC);
	rc = bh_poll32(&n->regs, NVME_CSTS, NVME_CSTS_RDY | NVME_CSTS_CFS, NVME_CSTS_RDY,
		       n->ready_ms * 1000u);
	if (rc) {
		fprintf(stderr, "nvme: the controller did not become ready in %u ms (CSTS 0x%x)\n",
			n->ready_ms, bh_read32(&n->regs, NVME_CSTS));
		return rc;
	}
	rc = identify(n, min_page);
	if (rc)
		return rc;
	/* 5.21.1.7: one SQ and one CQ (0-based counts) */
	memset(&cmd, 0, sizeof(cmd));
	cmd.opcode = NVME_ADMIN_SET_FEATURES;
	cmd.cdw10 = NVME_FEAT_NUM_QUEUES;
	cmd.cdw11 = 0;
	rc = admin(n, &cmd, NULL);
	if (rc)
		return rc;
	memset(&cmd, 0, sizeof(cmd));
	cmd.opcode = NVME_ADMIN_CREATE_CQ;
	cmd.prp1 = cq_iova(&n->io);
	cmd.cdw10 = (depth - 1) << 16 | n->io.id;
	cmd.cdw11 = 1u << 16 | NVME_CQ_IRQ_ENABLED | NVME_QUEUE_PHYS_CONTIG;
	rc = admin(n, &cmd, NULL);
	if (rc)
		return rc;
	memset(&cmd, 0, sizeof(cmd));
	cmd.opcode = NVME_ADMIN_CREATE_SQ;
	cmd.prp1 = n->io.mem.iova;
	cmd.cdw10 = (depth - 1) << 16 | n->io.id;
	cmd.cdw11 = (uint32_t)n->io.id << 16 | NVME_QUEUE_PHYS_CONTIG;
	rc = admin(n, &cmd, NULL);
	if (rc)
		return rc;
	for (unsigned int i = 0; i < IO_SLOTS; i++) {
		n->slot[i].client = -1;
		n->free_cid[i] = (uint16_t)(IO_SLOTS - 1 - i);
	}
	n->nfree = IO_SLOTS;
	return 0;
}

/* 7.6.2: a normal shutdown, so the controller's cache reaches the media */
static void controller_shutdown(struct nvme *n)
{
	uint32_t cc = bh_read32(&n->regs, NVME_CC);
	int rc;

	bh_write32(&n->regs, NVME_CC, (cc & ~NVME_CC_SHN_MASK) | NVME_CC_SHN_NORMAL);
	rc = bh_poll32(&n->regs, NVME_CSTS, NVME_CSTS_SHST_MASK, NVME_CSTS_SHST_DONE,
		       ADMIN_TIMEOUT_MS * 1000u);
	printf("nvme: shutdown %s; %llu requests served, %llu refused, %llu failed\n",
	       rc ? "timed out" : "complete", (unsigned long long)n->requests,
	       (unsigned long long)n->refused, (unsigned long long)n->failed);
}

/*
 * 4.3 PRPs for a transfer at iova: PRP1 may start inside a page; PRP2 is
 * the second page, or a list of the remaining pages in this slot's page.
 */
static void prp_fill(struct nvme *n, uint16_t cid, uint64_t iova, uint32_t len,
		     struct nvme_sqe *cmd)
{
	uint32_t first = PAGE - (uint32_t)(iova & (PAGE - 1));
	uint64_t *list = (uint64_t *)((uint8_t *)n->prp.virt + (size_t)cid * PAGE);

	cmd->prp1 = iova;
	if (len <= first)
		return;
	iova += first;
	len -= first;
	if (len <= PAGE) {
		cmd->prp2 = iova;
		return;
	}
	for (unsigned int i = 0; len; i++) {
		list[i] = iova;
		iova += PAGE;
		len -= len < PAGE ? len : PAGE;
	}
	cmd->prp2 = n->prp.iova + (uint64_t)cid * PAGE;
}

static int nvme_errno(uint16_t status)
{
	uint16_t sf = status >> 1;

	if (!sf)
		return 0;
	if (NVME_SF_SCT(sf) == 0 && NVME_SF_SC(sf) == NVME_SC_LBA_RANGE)
		return -ENOSPC;
	if (NVME_SF_SCT(sf) == 0 && NVME_SF_SC(sf) == NVME_SC_INVALID_FIELD)
		return -EINVAL;
	return -EIO;
}

/*
 * Generic statuses that blame the command we built or the data transfer,
 * never the client (bh_block_check has vetted its request): invalid
 * opcode, invalid field, command id conflict, data transfer error, invalid
 * namespace, invalid PRP offset.
 */
static bool our_bug(uint16_t status)
{
	uint16_t sf = status >> 1, sc = NVME_SF_SC(sf);

	return sf && NVME_SF_SCT(sf) == 0 &&
	       (sc == 0x01 || sc == 0x02 || sc == 0x03 || sc == 0x04 || sc == 0x0b || sc == 0x13);
}

/* our queue state is not to be trusted: let core reset the device, clients re-issue */
static void __attribute__((noreturn)) die(struct nvme *n, const char *why, unsigned int cid,
					  uint16_t status)
{
	fprintf(stderr, "nvme: %s (command %u, status 0x%x, CSTS 0x%x): exiting so core resets "
			"the controller\n",
		why, cid, status >> 1, bh_read32(&n->regs, NVME_CSTS));
	exit(70);
}

static void ack(struct client *c, const struct bh_ps_desc *d)
{
	/* room was reserved when we took the request, unless the peer lies about its head */
	if (bh_ps_put(c->ps, d, 1) == 1)
		c->ack_pending = true;
}

static void client_release(struct nvme *n, struct client *c)
{
	bh_session_close(&n->core, &c->s);
	c->open = c->closing = false;
	printf("nvme: client %s gone; its stream memory freed\n", c->s.peer);
}

/* one request onto the I/O queue; 0, or the -errno to acknowledge it with */
static int submit(struct nvme *n, int ci, const struct bh_ps_desc *d)
{
	struct client *c = &n->client[ci];
	struct nvme_sqe cmd = { .nsid = 1 };
	uint16_t cid;
	int rc = bh_block_check(&n->info, d);

	if (rc)
		return rc;
	if (d->op == BH_BLOCK_TRIM && !n->dsm)
		return -EOPNOTSUPP;
	cid = n->free_cid[--n->nfree];
	cmd.cid = cid;
	switch (d->op) {
	case BH_BLOCK_READ:
	case BH_BLOCK_WRITE:
		cmd.opcode = d->op == BH_BLOCK_READ ? NVME_CMD_READ : NVME_CMD_WRITE;
		prp_fill(n, cid, c->bulk_iova + d->offset, d->length, &cmd);
		cmd.cdw10 = (uint32_t)d->arg;
		cmd.cdw11 = (uint32_t)(d->arg >> 32);
		cmd.cdw12 = d->length / n->info.block_size - 1;
		break;
	case BH_BLOCK_FLUSH:
		cmd.opcode = NVME_CMD_FLUSH;
		break;
	case BH_BLOCK_TRIM: {
		/* 6.7: one range, in this slot's PRP page */
		struct nvme_dsm_range *r =
			(struct nvme_dsm_range *)((uint8_t *)n->prp.virt + (size_t)cid * PAGE);
		r->attributes = 0;
		r->nlb = d->length / n->info.block_size;
		r->slba = d->arg;
		cmd.opcode = NVME_CMD_DSM;
		cmd.prp1 = n->prp.iova + (uint64_t)cid * PAGE;
		cmd.cdw10 = 0;
		cmd.cdw11 = NVME_DSM_DEALLOCATE;
		break;
	}
	}
	n->slot[cid].d = *d;
	n->slot[cid].client = ci;
	n->slot[cid].start_ns = bh_coarse_ns();
	if (n->st.on)
		n->slot[cid].start_tsc = __rdtsc();
	sq_put(&n->io, &cmd);
	c->inflight++;
	n->inflight++;
	n->requests++;
	return 0;
}

/* take what a client submitted, as far as command slots and its ack ring allow */
static void client_take(struct nvme *n, int ci)
{
	struct client *c = &n->client[ci];
	struct bh_ps_desc d[BATCH];
	bool queued = false;

	while (c->open && !c->closing) {
		/* no more than there are command slots for */
		unsigned int want = n->nfree < BATCH ? n->nfree : BATCH;
		int got = bh_ps_take(c->ps, c->inflight, d, want);

		if (got < 0) {
			printf("nvme: client %s corrupted its stream: closing it\n", c->s.peer);
			c->closing = true;
			break;
		}
		for (int i = 0; i < got; i++) {
			int rc = submit(n, ci, &d[i]);
			if (!rc) {
				queued = true;
				continue;
			}
			n->refused++;
			d[i].status = rc;
			ack(c, &d[i]);
		}
		if (!got || (unsigned int)got < want)
			break;
	}
	if (queued)
		doorbell(n, n->io.sq_db, n->io.sq_tail);
	if (c->ack_pending) {
		c->ack_pending = false;
		bh_ps_flush(c->ps);
	}
}

/* completions: acknowledge each to its client; true if there were any */
static bool reap(struct nvme *n)
{
	struct nvme_cqe e;
	unsigned int got = 0;

	while (cq_get(&n->io, &e)) {
		struct slot *s;
		struct client *c;

		got++;
		/* a command we never issued: the queue is corrupt, the real one may never end */
		if (e.cid >= IO_SLOTS || n->slot[e.cid].client == -1)
			die(n, "completion for a command not in flight", e.cid, e.status);
		s = &n->slot[e.cid];
		if (our_bug(e.status))
			die(n, "the controller refused a command we built or could not move its data",
			    e.cid, e.status);
		if (s->client == FAULT_SLOT) {
			printf("nvme: fault: our broken command %u completed with status 0x%x\n", e.cid,
			       e.status >> 1);
			s->client = -1;
			n->free_cid[n->nfree++] = e.cid;
			n->inflight--;
			continue;
		}
		c = &n->client[s->client];
		if (n->st.on) {
			n->st.done++;
			n->st.device_ticks += __rdtsc() - s->start_tsc;
		}
		s->d.status = nvme_errno(e.status);
		if (s->d.status) {
			n->failed++;
			printf("nvme: op %u at block %llu: status 0x%x (%s)\n", s->d.op,
			       (unsigned long long)s->d.arg, e.status >> 1, strerror(-s->d.status));
		}
		if (!c->closing)
			ack(c, &s->d);
		s->client = -1;
		n->free_cid[n->nfree++] = e.cid;
		c->inflight--;
		n->inflight--;
	}
	if (!got)
		return false;
	doorbell(n, n->io.cq_db, n->io.cq_head);
	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = &n->client[i];
		if (c->ack_pending) {
			c->ack_pending = false;
			bh_ps_flush(c->ps);
		}
		if (c->open && c->closing && !c->inflight)
			client_release(n, c);
	}
	return true;
}

/* a stuck controller: give it back to core for a reset (we are restarted) */
static void check_timeouts(struct nvme *n)
{
	uint64_t now = bh_coarse_ns();

	if (now - n->last_check_ns < 1000000000ull)
		return;
	n->last_check_ns = now;
	for (unsigned int i = 0; i < IO_SLOTS; i++) {
		struct slot *s = &n->slot[i];
		if (s->client == -1 || now - s->start_ns < IO_TIMEOUT_MS * 1000000ull)
			continue;
		fprintf(stderr, "nvme: command %u (op %u, block %llu) has not completed in %u s "
				"(CSTS 0x%x): the controller is stuck; exiting so core resets it\n",
			i, s->d.op, (unsigned long long)s->d.arg, IO_TIMEOUT_MS / 1000,
			bh_read32(&n->regs, NVME_CSTS));
		exit(70);
	}
}

/*
 * A read of block 0 into the scratch page, broken: bad-desc garbles its
 * namespace id, as a stale or half-written entry would (the controller
 * refuses it and we reset); bad-dma points its PRP at an IOVA core never
 * mapped (the IOMMU blocks the write and core names us).
 */
static void fault_inject(struct nvme *n, enum bh_fault f)
{
	struct nvme_sqe cmd = { .opcode = NVME_CMD_READ, .nsid = 1, .prp1 = n->scratch.iova };
	uint16_t cid;

	if (!n->nfree)
		return;
	cid = n->free_cid[--n->nfree];
	cmd.cid = cid;
	cmd.cdw12 = PAGE / n->info.block_size - 1;
	if (f == BH_FAULT_BAD_DESC)
		cmd.nsid = 0xdeadbeef;
	else
		cmd.prp1 = WILD_IOVA + ((bh_now_ns() >> 10) & 0xff000);
	printf("nvme: fault: %s: command %u %s 0x%llx\n", bh_fault_name(f), cid,
	       f == BH_FAULT_BAD_DESC ? "names namespace" : "reads into unmapped",
	       f == BH_FAULT_BAD_DESC ? (unsigned long long)cmd.nsid
				      : (unsigned long long)cmd.prp1);
	n->slot[cid] = (struct slot){ .client = FAULT_SLOT, .start_ns = bh_coarse_ns() };
	sq_put(&n->io, &cmd);
	n->inflight++;
	doorbell(n, n->io.sq_db, n->io.sq_tail);
}

/*
 * every BEAT_MS, busy or not: a heartbeat, so core's watchdog_ms turns a
 * hang into a restart; and a look at the controller, which a stray
 * register write can disable or shut down without a word
 */
static void beat(struct nvme *n)
{
	uint32_t cc, csts;

	if (!heartbeat(n))
		return;
	cc = bh_read32(&n->regs, NVME_CC);
	csts = bh_read32(&n->regs, NVME_CSTS);
	if (!stopping && (cc != n->cc || (csts & (NVME_CSTS_RDY | NVME_CSTS_CFS |
						   NVME_CSTS_SHST_MASK)) != NVME_CSTS_RDY)) {
		fprintf(stderr, "nvme: the controller changed under us (CC 0x%x, we wrote 0x%x; "
				"CSTS 0x%x): exiting so core resets it\n",
			cc, n->cc, csts);
		exit(70);
	}
}

/* BULKHEAD_NVME_STATS: the device's share of a request's time */
static void stats(struct nvme *n)
{
	uint64_t now = bh_coarse_ns();

	if (!n->st.on || now - n->st.last_ns < STATS_MS * 1000000ull)
		return;
	n->st.last_ns = now;
	if (n->st.done)
		printf("nvme: stats: %llu commands, doorbell -> completion seen %.1f us (the device "
		       "and its interrupt); per command: %.2f completions or requests found in "
		       "the polling window, %.2f windows that ran out with commands in flight\n",
		       (unsigned long long)n->st.done,
		       (double)n->st.device_ticks / n->st.done / n->st.tsc_per_us,
		       (double)n->st.spun / n->st.done, (double)n->st.slept / n->st.done);
	n->st.done = n->st.device_ticks = n->st.spun = n->st.slept = 0;
}

/* a session's stream, whose memory its client pays for */
static struct bh_session_stream_spec block_spec(const struct nvme *n)
{
	return (struct bh_session_stream_spec){
		.server_role = BH_PS_SINK,
		.capacity = RING,
		.slot_size = n->info.max_transfer,
		.bulk_size = (uint64_t)RING * n->info.max_transfer,
	};
}

/* a bounded number per pass (bulkhead/service.h): requests in flight keep their share */
static void accept_clients(struct nvme *n)
{
	struct bh_session_stream_spec spec = block_spec(n);
	struct bh_session_request req;
	int rc;

	while ((rc = bh_service_next(&n->svc, &req)) == 1) {
		struct client *c = NULL;
		for (int i = 0; i < MAX_CLIENTS && !c; i++)
			if (!n->client[i].open)
				c = &n->client[i];
		if (!c || stopping) {
			printf("nvme: refused a session from %s: %s\n", req.client,
			       stopping ? "shutting down" : "too many clients");
			bh_service_refuse(&n->svc, &req);
			continue;
		}
		rc = bh_session_offer(&n->core, n->dev, &req, BH_BLOCK_SERVICE, &spec, 1, &n->info,
				      sizeof(n->info), &c->s);
		if (rc) {
			printf("nvme: session for %s failed: %s\n", req.client,
			       rc == -EPIPE || rc == -ECONNRESET ? "it hung up" : bh_error(&n->core));
			bh_session_close(&n->core, &c->s);
			continue;
		}
		c->ps = &c->s.ps[0];
		/* the bulk buffer's place in the region, which is one DMA buffer */
		c->bulk_iova = c->s.dma[0].iova + (uint64_t)(c->ps->bulk - (uint8_t *)c->s.dma[0].virt);
		c->inflight = 0;
		c->open = true;
		c->closing = false;
		printf("nvme: serving %s: stream of %u x %u KiB at iova 0x%llx\n", req.client, RING,
		       n->info.max_transfer >> 10, (unsigned long long)c->bulk_iova);
	}
	if (rc < 0)
		printf("nvme: channel: %s\n", strerror(-rc));
}

/* a request waits on some client's ring */
static bool clients_pending(const struct nvme *n)
{
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (n->client[i].open && !n->client[i].closing && bh_ps_pending(n->client[i].ps))
			return true;
	return false;
}

/* with nothing in flight: is a window for the clients' next requests worth it? */
static bool idle_window(struct nvme *n)
{
	return n->inflight || n->credit > 0 || ++n->idle_passes % PROBE_EVERY == 0;
}

/*
 * The loop: take requests, reap completions, and after work poll the CQ and
 * the clients' rings for the polling window before sleeping on the
 * interrupt and the clients' eventfds.
 */
static void serve(struct nvme *n)
{
	uint64_t requests = n->requests;
	bool found = false; /* the last polling window found work */
	struct bh_pollset w;

	for (;;) {
		bool busy = false;
		int rc, who, fd;

		enum bh_fault fault = bh_fault_take();
		if (fault)
			fault_inject(n, fault);
		bh_service_pass(&n->svc);
		beat(n);
		stats(n);
		reap(n);
		/*
		 * while a client that went away still has commands on the device,
		 * nobody's new requests go out: its restarted self re-issues the
		 * same writes (block-ublk with REISSUE, block-nbd's requeue), and an
		 * old copy must not land after a newer write to the same blocks
		 * (docs/design.md, "Why a reissued write is harmless")
		 */
		bool draining = false;
		for (int i = 0; i < MAX_CLIENTS; i++)
			draining |= n->client[i].open && n->client[i].closing && n->client[i].inflight;
		for (int i = 0; i < MAX_CLIENTS; i++) {
			struct client *c = &n->client[i];
			if (!draining)
				client_take(n, i);
			if (c->open && c->closing && !c->inflight)
				client_release(n, c);
		}
		if (stopping)
			break;
		if (n->inflight)
			check_timeouts(n);
		/* after work: the polling window (above); an idle pass sleeps at once */
		if ((found || n->requests != requests || n->inflight) && idle_window(n)) {
			bool idle = !n->inflight;

			requests = n->requests;
			found = false;
			for (bh_spin_begin(&n->poll); !found && bh_spin_more(&n->poll);)
				found = (n->inflight && reap(n)) || clients_pending(n);
			n->st.spun += found;
			if (idle)
				n->credit = found ? (n->credit < CREDIT_MAX ? n->credit + 1 : CREDIT_MAX)
						  : (n->credit > 0 ? n->credit - 2 : 0);
			if (found)
				continue;
			n->st.slept += n->inflight != 0;
		}
		/* tell each client to signal us, and re-check before sleeping */
		for (int i = 0; i < MAX_CLIENTS; i++)
			if (n->client[i].open && !n->client[i].closing &&
			    !bh_ps_prepare_wait(n->client[i].ps))
				busy = true;
		if (busy)
			continue;
		bh_pollset_server(&w, &n->core, &n->svc, n->irq[1].fd);
		for (int i = 0; i < MAX_CLIENTS; i++) {
			struct client *c = &n->client[i];
			if (!c->open || c->closing)
				continue;
			bh_pollset_add(&w, bh_ps_wait_fd(c->ps), POLLIN, i);
			bh_pollset_add(&w, c->s.fd, POLLIN, i);
		}
		rc = bh_pollset_wait(&w, n->inflight ? 100 : BEAT_MS);
		if (rc < 0)
			break;
		while (bh_pollset_next(&w, &who, &fd)) {
			if (who == BH_POLL_CORE) {
				printf("nvme: core closed our connection: shutting down\n");
				stopping = 1;
			} else if (who == BH_POLL_SERVICE) {
				accept_clients(n);
			} else if (who == BH_POLL_IRQ) {
				bh_irq_wait(&n->irq[1], 0);
			} else if (fd == n->client[who].s.fd) {
				struct bh_session_event ev;
				/* block defines no events: read and ignore them; 0 is a hang-up */
				rc = bh_session_recv_event(&n->client[who].s, &ev);
				if (rc == 0 || (rc < 0 && rc != -EAGAIN))
					n->client[who].closing = true;
			} else {
				bh_ps_drain_signal(n->client[who].ps);
			}
		}
	}
}

/* drain what is in flight, answer it, then shut the controller down */
static void stop(struct nvme *n)
{
	uint64_t deadline = bh_now_ns() + ADMIN_TIMEOUT_MS * 1000000ull;

	while (n->inflight && bh_now_ns() < deadline)
		if (!reap(n))
			bh_irq_wait(&n->irq[1], 10);
	controller_shutdown(n);
}

/* the registers by name, for bulkhead trace and crash reports (NVMe 1.4, 3.1) */
static const struct bh_reg_name nvme_regs[] = {
    BH_REG(NVME_CAP, 8),   BH_REG(NVME_VS, 4),
    BH_REG(NVME_INTMS, 4), BH_REG(NVME_INTMC, 4),
    BH_REG(NVME_CC, 4),	   BH_REG(NVME_CSTS, 4),
    BH_REG(NVME_AQA, 4),   BH_REG(NVME_ASQ, 8),
    BH_REG(NVME_ACQ, 8),   {NVME_DOORBELLS, 255, "NVME_DOORBELLS"},
};

int main(void)
{
	struct nvme n = { .svc.channel = -1 };
	struct bh_device_info info;
	struct sigaction sa = { .sa_handler = on_term };
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	bh_fault_defer();
	bh_fault_arm();
	if (bh_core_open(&n.core) < 0 ||
	    bh_device_find(&n.core, NVME_VENDOR, NVME_DEVICE, &n.dev) < 0 ||
	    bh_device_info(&n.core, n.dev, &info) < 0 || bh_acquire(&n.core, n.dev) < 0 ||
	    bh_io_mem(&n.core, n.dev, 0, &n.regs) < 0 ||
	    bh_irq_open(&n.core, n.dev, BH_IRQ_MSIX, 2, n.irq) < 0) {
		fprintf(stderr, "nvme: %s\n", bh_error(&n.core));
		return 1;
	}
	bh_mmio_names(&n.regs, nvme_regs, sizeof(nvme_regs) / sizeof(nvme_regs[0]));
	printf("nvme: uid %u, device %s, BAR0 %zu KiB, %s, start %u\n", getuid(), info.name,
	       n.regs.size >> 10, n.core.hello.iommu ? "DMA confined by the IOMMU" : "NO IOMMU",
	       n.core.hello.restarts + 1);
	heartbeat(&n);
	rc = controller_init(&n);
	if (rc) {
		fprintf(stderr, "nvme: controller init failed: %s\n", strerror(-rc));
		return 1;
	}
	struct bh_session_stream_spec spec = block_spec(&n);
	if (bh_service_open(&n.svc, &n.core, BH_BLOCK_SERVICE, bh_session_cost(&spec, 1),
			    MAX_CLIENTS) < 0) {
		fprintf(stderr, "nvme: %s\n", bh_error(&n.core));
		return 1;
	}
	if (bh_spin_init(&n.poll, "BULKHEAD_NVME_SPIN_US", SPIN_US))
		return 1;
	n.st.on = getenv("BULKHEAD_NVME_STATS") != NULL;
	if (n.st.on)
		n.st.tsc_per_us = bh_tsc_per_us();
	printf("nvme: ready: serving '%s'; polling window %u us\n", BH_BLOCK_SERVICE, n.poll.us);
	serve(&n);
	stop(&n);
	return 0;
}
