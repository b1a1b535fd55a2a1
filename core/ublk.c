// SPDX-License-Identifier: MIT
/*
 * /dev/ublkbN endpoints for the block-ublk bridge: the control commands on
 * /dev/ublk-control (Documentation/block/ublk.rst, "Control commands"),
 * which need CAP_SYS_ADMIN and so are core's to issue, as core connects
 * /dev/nbdN for block-nbd.
 *
 * The commands are io_uring URING_CMDs (128-byte SQEs: struct
 * ublksrv_ctrl_cmd is 32 bytes) on core's one control ring. Most return at
 * once and are waited for. START_DEV and END_USER_RECOVERY wait in the
 * kernel until the server has fetched a request on every tag, and then
 * read the partition table through the server: they go to io_uring's
 * workers (IOSQE_ASYNC) so core's loop never blocks on a bridge, and their
 * completions arrive on the ring's fd in core's epoll (bh_ublk_reap).
 *
 * Every device is added with USER_RECOVERY and USER_RECOVERY_REISSUE: when
 * the bridge dies the kernel keeps /dev/ublkbN and holds its requests
 * (quiesced), and the restarted bridge's START_USER_RECOVERY ... fetch ...
 * END_USER_RECOVERY issues the ones in flight again (docs/design.md says
 * why a write issued twice is harmless).
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "bulkhead/ublk.h"
#include "core.h"
#include "pci.h"
#include "ublk.h"

/* bh_ublk_request: what a bridge may ask for, at most */
#define UBLK_MAX_QUEUES 16
#define UBLK_MAX_IO (1u << 20)

#define UBLK_DEVS 256
#define ASYNC_TAG (1ull << 63) /* user_data of a command nobody waits for */

struct ublk_dev {
	bool added;	/* by us, and not deleted */
	bool started;	/* START_DEV completed: a server has served it */
	uint64_t size;	/* bytes, as added: a restarted bridge must offer the same */
	uint32_t block_size;
	uint32_t queues; /* as added: a restarted bridge serves as many */
};

static struct io_uring ring;
static int ring_ok; /* 1: set up, -errno: cannot be */
static int control_fd = -1;
static uint64_t seq;
static struct ublk_dev devs[UBLK_DEVS];

static const char *cmd_name(uint32_t op)
{
	switch (_IOC_NR(op)) {
	case UBLK_CMD_ADD_DEV: return "ADD_DEV";
	case UBLK_CMD_DEL_DEV: return "DEL_DEV";
	case UBLK_CMD_START_DEV: return "START_DEV";
	case UBLK_CMD_STOP_DEV: return "STOP_DEV";
	case UBLK_CMD_SET_PARAMS: return "SET_PARAMS";
	case UBLK_CMD_START_USER_RECOVERY: return "START_USER_RECOVERY";
	case UBLK_CMD_END_USER_RECOVERY: return "END_USER_RECOVERY";
	default: return "command";
	}
}

/*
 * A started disk gets no I/O scheduler, as the kernel's own nvme disks have
 * none: the kernel gives a single-queue disk mq-deadline, which cost ublk
 * 12-18 % of its 4 KiB random reads at QD32 under TCG (bench/results/block.md),
 * and the NVMe device behind the Block session orders nothing by position.
 * The administrator may choose another in /sys/block/ublkbN/queue/scheduler.
 */
static void no_scheduler(uint32_t id)
{
	char path[64];
	int rc;

	snprintf(path, sizeof(path), "/sys/block/ublkb%u/queue/scheduler", id);
	rc = bh_sysfs_write(path, "none");
	if (rc)
		bh_log("/dev/ublkb%u: could not set its scheduler to none: %s", id, strerror(-rc));
}

/* a completion nobody waited for: START_DEV, END_USER_RECOVERY, DEL_DEV */
static void async_done(const struct io_uring_cqe *cqe)
{
	uint32_t id = (uint32_t)cqe->user_data & 0xffff;
	uint32_t op = (uint32_t)(cqe->user_data >> 16) & 0xffffffff;

	if (cqe->res < 0) {
		bh_log("/dev/ublkb%u: %s failed: %s", id, cmd_name(op), strerror(-cqe->res));
		return;
	}
	if (id < UBLK_DEVS && _IOC_NR(op) != UBLK_CMD_DEL_DEV)
		devs[id].started = true;
	if (_IOC_NR(op) == UBLK_CMD_START_DEV)
		no_scheduler(id);
	bh_log("/dev/ublkb%u: %s done", id,
	       _IOC_NR(op) == UBLK_CMD_START_DEV ? "started" :
	       _IOC_NR(op) == UBLK_CMD_DEL_DEV	 ? "deleted" :
						   "recovered: the new server has it");
}

/* /dev/ublk-control, loading ublk_drv if need be: the fd, or -errno with err set */
static int control_open(char *err, size_t err_len)
{
	int fd = open("/dev/ublk-control", O_RDWR | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT && bh_modprobe("ublk_drv") == 0)
		fd = open("/dev/ublk-control", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fd = -errno;
		snprintf(err, err_len, "ublk: /dev/ublk-control: %s (the kernel needs "
				       "CONFIG_BLK_DEV_UBLK, Linux 6.0 or later: tools/vm/run "
				       "--kernel 6.12; or add 'nbd = N' beside 'ublk = N' and core "
				       "runs block-nbd where ublk is missing)",
			 strerror(-fd));
	}
	return fd;
}

static int ring_setup(struct bh_core_state *core, char *err, size_t err_len)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = BH_TAG(BH_TAG_UBLK, 0) };
	int rc;

	if (ring_ok > 0)
		return 0;
	control_fd = control_open(err, err_len);
	if (control_fd < 0)
		return control_fd;
	rc = io_uring_queue_init(8, &ring, IORING_SETUP_SQE128);
	if (rc < 0) {
		snprintf(err, err_len, "ublk: io_uring_setup for the control commands: %s",
			 strerror(-rc));
		close(control_fd);
		control_fd = -1;
		return rc;
	}
	epoll_ctl(core->epfd, EPOLL_CTL_ADD, ring.ring_fd, &ev);
	ring_ok = 1;
	return 0;
}

/*
 * The fallback: a component with 'ublk = N' and 'nbd = M' where this kernel
 * has no ublk runs block-nbd on /dev/nbdM instead, announced in the log.
 * block-nbd is looked for beside the configured program (installed: one
 * directory) or in its build-tree place (bridges/block-nbd/).
 */
static bool nbd_beside(const char *exec, char *out, size_t len)
{
	static const char *const rel[] = { "bulkhead-block-nbd", "../block-nbd/bulkhead-block-nbd" };
	const char *slash = strrchr(exec, '/');
	int dir = slash ? (int)(slash - exec) : 1;

	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		snprintf(out, len, "%.*s/%s", dir, slash ? exec : ".", rel[i]);
		if (access(out, X_OK) == 0)
			return true;
	}
	return false;
}

void bh_ublk_prepare(struct bh_config *cfg)
{
	char err[256], nbd[PATH_MAX + 40];
	int have = 0; /* 1: ublk here, -errno: not */

	for (int i = 0; i < cfg->ncomp; i++) {
		struct bh_component_config *c = &cfg->comp[i];

		if (c->ublk < 0)
			continue;
		/* each queue's thread counts as a process of its uid (RLIMIT_NPROC) */
		if (c->limit_procs < c->ublk_queues)
			c->limit_procs = c->ublk_queues;
		if (!have) {
			int fd = control_open(err, sizeof(err));
			have = fd < 0 ? fd : 1;
			if (fd >= 0)
				close(fd);
		}
		if (have > 0 || c->nbd < 0)
			continue; /* served, or refused with err when the bridge asks */
		if (!nbd_beside(c->exec, nbd, sizeof(nbd))) {
			bh_log("\"%s\": this kernel has no ublk (%s) and no block-nbd was found "
			       "beside %s for 'nbd = %d': it will be refused",
			       c->name, strerror(-have), c->exec, c->nbd);
			continue;
		}
		bh_log("\"%s\": this kernel has no ublk (/dev/ublk-control: %s): running "
		       "block-nbd on /dev/nbd%d instead of /dev/ublkb%d (%s)",
		       c->name, strerror(-have), c->nbd, c->ublk, nbd);
		snprintf(c->exec, sizeof(c->exec), "%s", nbd);
		c->ublk = -1;
	}
}

static int prep(uint32_t op, uint32_t dev_id, void *buf, uint16_t len, uint64_t data0,
		 uint64_t user_data, bool async)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
	struct ublksrv_ctrl_cmd *cmd;

	/* every command is submitted before the next is made: there is room */
	if (!sqe)
		return -EBUSY;
	memset((void *)sqe, 0, 128); /* an SQE128 slot */
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = control_fd;
	sqe->cmd_op = op;
	sqe->user_data = user_data;
	if (async)
		sqe->flags = IOSQE_ASYNC;
	cmd = (struct ublksrv_ctrl_cmd *)sqe->cmd;
	cmd->dev_id = dev_id;
	cmd->queue_id = (uint16_t)-1;
	cmd->addr = (uint64_t)(uintptr_t)buf;
	cmd->len = len;
	cmd->data[0] = data0;
	return 0;
}

/* one command, waited for: its result (>= 0) or -errno */
static int ctrl(uint32_t op, uint32_t dev_id, void *buf, uint16_t len, uint64_t data0)
{
	uint64_t want = ++seq;

	if (prep(op, dev_id, buf, len, data0, want, false))
		return -EBUSY;
	io_uring_submit(&ring);
	for (;;) {
		struct io_uring_cqe *cqe;
		int rc = io_uring_wait_cqe(&ring, &cqe);
		if (rc == -EINTR)
			continue;
		if (rc < 0)
			return rc;
		uint64_t ud = cqe->user_data;
		int res = cqe->res;
		if (ud & ASYNC_TAG)
			async_done(cqe);
		io_uring_cqe_seen(&ring, cqe);
		if (ud == want)
			return res;
	}
}

/* a command whose completion comes through bh_ublk_reap */
static void ctrl_async(uint32_t op, uint32_t dev_id, uint64_t data0)
{
	if (prep(op, dev_id, NULL, 0, data0, ASYNC_TAG | ((uint64_t)op << 16) | dev_id, true))
		bh_log("/dev/ublkb%u: %s: the control ring is full", dev_id, cmd_name(op));
	io_uring_submit(&ring);
}

void bh_ublk_reap(struct bh_core_state *core)
{
	struct io_uring_cqe *cqe;

	(void)core;
	if (ring_ok <= 0)
		return;
	while (io_uring_peek_cqe(&ring, &cqe) == 0) {
		if (cqe->user_data & ASYNC_TAG)
			async_done(cqe);
		io_uring_cqe_seen(&ring, cqe);
	}
}

static int add(uint32_t id, const struct bh_ublk_geometry *g, char *err, size_t err_len)
{
	struct ublksrv_ctrl_dev_info info = {
		.nr_hw_queues = (uint16_t)g->queues,
		.queue_depth = (uint16_t)g->queue_depth,
		.max_io_buf_bytes = g->max_io,
		.dev_id = id,
		.flags = UBLK_F_USER_RECOVERY | UBLK_F_USER_RECOVERY_REISSUE,
	};
	struct ublk_params p = {
		.len = sizeof(p),
		.types = UBLK_PARAM_TYPE_BASIC,
		.basic = {
			.logical_bs_shift = (uint8_t)__builtin_ctz(g->block_size),
			.physical_bs_shift = (uint8_t)__builtin_ctz(g->block_size),
			.io_min_shift = (uint8_t)__builtin_ctz(g->block_size),
			.io_opt_shift = (uint8_t)__builtin_ctz(g->block_size),
			.max_sectors = g->max_io >> 9,
			.dev_sectors = g->size >> 9,
		},
	};
	int rc;

	if (!(g->attrs & BH_UBLK_WRITABLE))
		p.basic.attrs |= UBLK_ATTR_READ_ONLY;
	if (g->attrs & BH_UBLK_CAN_FLUSH)
		p.basic.attrs |= UBLK_ATTR_VOLATILE_CACHE;
	if (g->attrs & BH_UBLK_CAN_TRIM) {
		p.types |= UBLK_PARAM_TYPE_DISCARD;
		p.discard.discard_granularity = g->block_size;
		p.discard.max_discard_sectors = g->max_io >> 9;
		p.discard.max_discard_segments = 1;
	}
	rc = ctrl(UBLK_U_CMD_ADD_DEV, id, &info, sizeof(info), 0);
	if (rc == -EEXIST) {
		snprintf(err, err_len, "/dev/ublkb%u exists and is not this core's (another ublk "
				       "server's, or left by a core that died): stop and delete it, "
				       "or pick another 'ublk = N'",
			 id);
		return rc;
	}
	if (rc < 0) {
		snprintf(err, err_len, "ublk: ADD_DEV %u refused by the kernel: %s", id,
			 strerror(-rc));
		return rc;
	}
	rc = ctrl(UBLK_U_CMD_SET_PARAMS, id, &p, sizeof(p), 0);
	if (rc < 0) {
		snprintf(err, err_len, "ublk: SET_PARAMS for /dev/ublkb%u refused: %s (%llu bytes "
				       "in %u-byte blocks, %u bytes per request)",
			 id, strerror(-rc), (unsigned long long)g->size, g->block_size, g->max_io);
		ctrl(UBLK_U_CMD_DEL_DEV, id, NULL, 0, 0);
		return rc;
	}
	devs[id] = (struct ublk_dev){ .added = true, .size = g->size, .block_size = g->block_size,
				      .queues = g->queues };
	return 0;
}

int bh_ublk_open(struct bh_core_state *core, int index, const struct bh_ublk_geometry *g,
		 bool *recovering, int *fd, char *err, size_t err_len)
{
	struct ublk_dev *d = &devs[index];
	char path[32];
	int rc;

	rc = ring_setup(core, err, err_len);
	if (rc)
		return rc;
	bh_ublk_reap(core);
	if (d->added && !d->started) {
		/* its bridge died before the disk ever started: nothing to recover */
		ctrl(UBLK_U_CMD_STOP_DEV, (uint32_t)index, NULL, 0, 0);
		ctrl(UBLK_U_CMD_DEL_DEV, (uint32_t)index, NULL, 0, 0);
		d->added = false;
	}
	*recovering = d->added;
	if (d->added) {
		if (g->size != d->size || g->block_size != d->block_size) {
			snprintf(err, err_len, "/dev/ublkb%d holds %llu bytes in %u-byte blocks; "
					       "its bridge now offers %llu in %u: refused rather "
					       "than mixing disks",
				 index, (unsigned long long)d->size, d->block_size,
				 (unsigned long long)g->size, g->block_size);
			return -EINVAL;
		}
		/* -EBUSY until the old server has let go of /dev/ublkcN and the queue is quiet */
		rc = ctrl(UBLK_U_CMD_START_USER_RECOVERY, (uint32_t)index, NULL, 0, 0);
		if (rc == -EBUSY)
			return -EAGAIN;
		if (rc < 0) {
			snprintf(err, err_len, "/dev/ublkb%d: START_USER_RECOVERY refused: %s", index,
				 strerror(-rc));
			return rc;
		}
	} else {
		rc = add((uint32_t)index, g, err, err_len);
		if (rc)
			return rc;
	}
	snprintf(path, sizeof(path), "/dev/ublkc%d", index);
	*fd = open(path, O_RDWR | O_CLOEXEC);
	if (*fd < 0) {
		rc = -errno;
		snprintf(err, err_len, "%s: %s", path, strerror(-rc));
		return rc;
	}
	return 0;
}

void bh_ublk_start(struct bh_core_state *core, int index, pid_t pid, bool recovering)
{
	(void)core;
	/* the pid as the kernel sees it: core's namespace is the initial one */
	ctrl_async(recovering ? UBLK_U_CMD_END_USER_RECOVERY : UBLK_U_CMD_START_DEV,
		   (uint32_t)index, (uint64_t)pid);
}

bool bh_ublk_added(int index)
{
	return index >= 0 && index < UBLK_DEVS && devs[index].added;
}

void bh_ublk_remove(struct bh_core_state *core, int index)
{
	int rc;

	if (!bh_ublk_added(index) || ring_ok <= 0)
		return;
	bh_ublk_reap(core);
	/* fails its held requests, then lets the disk go */
	rc = ctrl(UBLK_U_CMD_STOP_DEV, (uint32_t)index, NULL, 0, 0);
	if (rc < 0)
		bh_log("/dev/ublkb%d: STOP_DEV: %s", index, strerror(-rc));
	/* DEL_DEV waits for the last opener of /dev/ublkcN to close it */
	ctrl_async(UBLK_U_CMD_DEL_DEV, (uint32_t)index, 0);
	devs[index].added = false;
	bh_log("/dev/ublkb%d stopped and being deleted", index);
}

void bh_ublk_request(struct bh_core_state *core, struct bh_component *c,
		     const struct bh_session_info *in, struct bh_msg *reply, int *fd)
{
	int index = c->cfg->ublk;
	struct bh_ublk_geometry g = {
		.size = in->size,
		.block_size = in->block_size,
		.max_io = (uint32_t)in->cost,
		.queue_depth = in->max_sessions,
		.queues = in->id,
		.attrs = in->flags >> 8,
	};
	bool recovering = false;
	char err[256];
	int rc;

	if (index < 0) {
		bh_refuse(c, reply, EACCES, "\"%s\" has no ublk device: add 'ublk = N' to its "
					    "[component] section",
			  c->cfg->name);
		return;
	}
	if (in->flags & BH_UBLK_START) {
		if (!bh_ublk_added(index)) {
			bh_refuse(c, reply, EINVAL, "ublk: start before the device was opened");
			return;
		}
		bh_ublk_start(core, index, c->pid, in->flags & BH_UBLK_RECOVERING);
		snprintf(reply->u.session.name, sizeof(reply->u.session.name), "ublkb%d", index);
		return;
	}
	if (!g.size || g.block_size < 512 || g.block_size > 4096 ||
	    g.block_size & (g.block_size - 1) || g.size % g.block_size || !g.queues ||
	    g.queues > UBLK_MAX_QUEUES || !g.queue_depth || g.queue_depth > UBLK_MAX_QUEUE_DEPTH ||
	    g.max_io < g.block_size || g.max_io > UBLK_MAX_IO || g.max_io % 4096) {
		bh_refuse(c, reply, EINVAL, "ublk: %llu bytes in %u-byte blocks, %u queues of %u, "
					    "%u bytes per request: the block size is a power of two "
					    "512-4096 dividing the size, 1-%d queues of 1-%d, "
					    "requests of 4 KiB multiples up to %u",
			  (unsigned long long)g.size, g.block_size, g.queues, g.queue_depth,
			  g.max_io, UBLK_MAX_QUEUES, UBLK_MAX_QUEUE_DEPTH, UBLK_MAX_IO);
		return;
	}
	/* the bridge offers threads for in->id queues: the config says how many it gets */
	if (g.queues > c->cfg->ublk_queues)
		g.queues = c->cfg->ublk_queues;
	if (bh_ublk_added(index) && devs[index].started) {
		if (devs[index].queues > in->id) {
			bh_refuse(c, reply, EINVAL, "/dev/ublkb%d has %u queues; its bridge now "
						    "serves %u at most",
				  index, devs[index].queues, in->id);
			return;
		}
		g.queues = devs[index].queues;
	}
	rc = bh_ublk_open(core, index, &g, &recovering, fd, err, sizeof(err));
	if (rc == -EAGAIN) {
		bh_refuse(c, reply, EAGAIN, "ublk: the previous server still holds /dev/ublkc%d",
			  index);
		return;
	}
	if (rc) {
		bh_refuse(c, reply, -rc, "%s", err);
		return;
	}
	reply->u.session.flags = recovering ? BH_UBLK_RECOVERING : 0;
	reply->u.session.id = g.queues;
	snprintf(reply->u.session.name, sizeof(reply->u.session.name), "ublkb%d", index);
	bh_log("/dev/ublkb%d %s for \"%s\": %llu bytes, %u queue(s) of %u", index,
	       recovering ? "in user recovery" : "added", c->cfg->name,
	       (unsigned long long)g.size, g.queues, g.queue_depth);
}
