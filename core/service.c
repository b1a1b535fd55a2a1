// SPDX-License-Identifier: MIT
/*
 * core's services to a component: platform (hello, device_info, acquire,
 * release), io_mem, io_port, irq, dma. Every request is untrusted input:
 * each field is checked against the component's policy before anything is
 * done, and a refusal is a reply with a reason, never a crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "bulkhead/msg.h"
#include "core.h"
#include "listen.h"
#include "legacy.h"
#include "ublk.h"
#include "output.h"
#include "policy.h"
#include "pty.h"
#include "vm_nic.h"
#include "usbip.h"

struct reply {
	struct bh_msg msg;
	int fds[BH_MAX_FDS];
	unsigned int nfds;
};

static void refuse_fmt(struct bh_component *c, struct reply *r, int err, const char *fmt,
		       va_list ap)
{
	char text[BH_ERROR_MAX];

	vsnprintf(text, sizeof(text), fmt, ap);
	bh_refuse(c, &r->msg, err, "%s", text);
}

__attribute__((format(printf, 4, 5))) static void refuse(struct bh_component *c,
							  struct reply *r, int err,
							  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	refuse_fmt(c, r, err, fmt, ap);
	va_end(ap);
}

/* the device a request names, if it is on the component's bus */
static struct bh_device *device_of(struct bh_core_state *core, struct bh_component *c,
				   struct reply *r, uint32_t idx, bool need_acquired)
{
	struct bh_device *dev;

	if (idx >= (uint32_t)c->ndevices) {
		refuse(c, r, EACCES, "device %u is not granted: the policy of \"%s\" grants %d "
				     "device(s) (indexes 0..%d); add a device = line to its "
				     "[component] section",
		       idx, c->cfg->name, c->ndevices, c->ndevices - 1);
		return NULL;
	}
	dev = &core->devices[c->devices[idx]];
	if (need_acquired && !dev->acquired) {
		refuse(c, r, EPERM, "device %u (%s) is not acquired: call bh_acquire() first", idx,
		       dev->pci.address);
		return NULL;
	}
	return dev;
}

static void do_hello(struct bh_core_state *core, struct bh_component *c, struct reply *r)
{
	struct bh_hello *h = &r->msg.u.hello;

	snprintf(h->component, sizeof(h->component), "%s", c->cfg->name);
	h->device_count = (uint32_t)c->ndevices;
	h->isa_count = (uint32_t)c->cfg->nisa;
	for (int i = 0; i < c->cfg->nisa; i++)
		h->isa[i] = c->cfg->isa[i];
	h->iommu = core->backend->iommu;
	h->restarts = c->restarts;
	/* its flight recorder's ring (core/trace.c) */
	int ring = bh_trace_fd(c);
	if (ring >= 0)
		r->fds[r->nfds++] = ring;
}

static void do_device_info(struct bh_core_state *core, struct bh_component *c, struct reply *r,
			   const struct bh_request *q)
{
	struct bh_device *dev = device_of(core, c, r, q->device, false);
	struct bh_device_info *info = &r->msg.u.device;

	if (!dev)
		return;
	snprintf(info->name, sizeof(info->name), "%s", dev->pci.address);
	snprintf(info->class_name, sizeof(info->class_name), "%s",
		 bh_class_name(dev->pci.class_code));
	info->vendor = dev->pci.vendor;
	info->device = dev->pci.device;
	info->class_code = dev->pci.class_code;
	memcpy(info->irq_count, dev->irq_count, sizeof(info->irq_count));
	info->acquired = dev->acquired;
	for (int i = 0; i < BH_MAX_REGIONS; i++) {
		info->region[i].size = dev->pci.bar_size[i];
		info->region[i].flags = dev->pci.bar_flags[i];
	}
}

static void do_acquire(struct bh_core_state *core, struct bh_component *c, struct reply *r,
		       const struct bh_request *q, bool acquire)
{
	struct bh_device *dev = device_of(core, c, r, q->device, false);
	int rc;

	if (!dev)
		return;
	if (!acquire) {
		bh_device_irq_close(core, dev);
		bh_device_set_bus_master(core->backend, dev, false);
		dev->acquired = false;
		return;
	}
	/* MSI and DMA need bus mastering; core is the one who turns it on */
	rc = bh_device_set_bus_master(core->backend, dev, true);
	if (rc) {
		refuse(c, r, -rc, "%s: cannot enable bus mastering: %s", dev->pci.address,
		       strerror(-rc));
		return;
	}
	dev->acquired = true;
	bh_log("\"%s\" acquired %s (bus master on)", c->cfg->name, dev->pci.address);
}

/* io_mem and PCI io_port: the BAR's sysfs resource file, exactly that region */
static void do_bar(struct bh_core_state *core, struct bh_component *c, struct reply *r,
		   const struct bh_request *q, uint32_t want)
{
	struct bh_device *dev = device_of(core, c, r, q->device, true);
	const char *kind = want == BH_REGION_MMIO ? "memory" : "I/O port";
	char path[128];
	int fd;

	if (!dev)
		return;
	if (q->index >= BH_MAX_REGIONS || !(dev->pci.bar_flags[q->index] & want)) {
		refuse(c, r, EINVAL, "%s has no %s BAR %u; see bh_device_info() for its regions",
		       dev->pci.address, kind, q->index);
		return;
	}
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource%u", dev->pci.address,
		 q->index);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		refuse(c, r, errno, "%s: %s", path, strerror(errno));
		return;
	}
	r->fds[r->nfds++] = fd;
	r->msg.u.grant.size = dev->pci.bar_size[q->index];
	r->msg.u.grant.flags = dev->pci.bar_flags[q->index];
	r->msg.u.grant.nfds = 1;
}

static void do_io_port(struct bh_core_state *core, struct bh_component *c, struct reply *r,
		       const struct bh_request *q)
{
	char grants[128];

	if (q->device != BH_DEVICE_ISA) {
		do_bar(core, c, r, q, BH_REGION_IO);
		return;
	}
	if (!bh_policy_isa_allows(c->cfg, q->base, q->count)) {
		bh_policy_isa_describe(c->cfg, grants, sizeof(grants));
		refuse(c, r, EACCES, "I/O ports 0x%x-0x%x are outside the policy of \"%s\" "
				     "(granted: %s); add ioport = lines to its [component] section",
		       q->base, q->base + (q->count ? q->count - 1 : 0), c->cfg->name, grants);
		return;
	}
	/* core enabled them with ioperm() before exec; this confirms the grant */
	r->msg.u.grant.size = q->count;
}

static void do_irq(struct bh_core_state *core, struct bh_component *c, struct reply *r,
		   const struct bh_request *q)
{
	static const char *const names[] = { "INTx", "MSI", "MSI-X" };
	struct bh_device *dev = device_of(core, c, r, q->device, true);
	int ack_fd = -1, rc;

	if (!dev)
		return;
	if (q->index >= BH_IRQ_TYPES) {
		refuse(c, r, EINVAL, "irq type %u: expected INTx (0), MSI (1) or MSI-X (2)",
		       q->index);
		return;
	}
	if (q->count == 0 || q->count > dev->irq_count[q->index] || q->count > BH_MAX_FDS - 1) {
		refuse(c, r, EINVAL, "%s: %u %s vector(s) asked, the device has %u (at most %d "
				     "per request)",
		       dev->pci.address, q->count, names[q->index], dev->irq_count[q->index],
		       BH_MAX_FDS - 1);
		return;
	}
	bh_device_irq_close(core, dev);
	rc = core->backend->irq_open(dev, (int)q->index, q->count, r->fds, &ack_fd);
	if (rc == BH_ACK_UIO && bh_device_irq_watch_unmask(core, dev, ack_fd) < 0) {
		bh_device_irq_close(core, dev);
		for (unsigned int i = 0; i < q->count; i++)
			close(r->fds[i]);
		close(ack_fd);
		rc = -EIO;
	}
	if (rc < 0) {
		refuse(c, r, -rc, "%s: cannot route %s through %s: %s", dev->pci.address,
		       names[q->index], core->backend->name, strerror(-rc));
		return;
	}
	r->nfds = q->count;
	if (ack_fd >= 0)
		r->fds[r->nfds++] = ack_fd;
	r->msg.u.grant.flags = (uint32_t)rc;
	r->msg.u.grant.nfds = r->nfds;
	bh_log("\"%s\" %s: %u %s vector(s) routed", c->cfg->name, dev->pci.address, q->count,
	       names[q->index]);
}

static void do_dma_alloc(struct bh_core_state *core, struct bh_component *c, struct reply *r,
			 const struct bh_request *q)
{
	struct bh_device *dev = device_of(core, c, r, q->device, true);
	struct bh_domain *dom = &c->domain;
	/* its own; what it holds for its clients' sessions they pay for */
	uint64_t own = c->dma_bytes - c->session_dma;
	struct bh_dma_buf buf;
	uint64_t hi, iova = 0;
	int rc;

	if (!dev)
		return;
	if (q->size == 0) {
		refuse(c, r, EINVAL, "DMA buffer of 0 bytes: ask for at least one byte");
		return;
	}
	if (q->session) {
		if (bh_account_charge(core, c, q->session, q->size, &r->msg) < 0)
			return;
	} else if (q->size > c->cfg->dma_quota - own || own > c->cfg->dma_quota) {
		refuse(c, r, EDQUOT, "DMA buffer of %llu bytes: \"%s\" has %llu of %llu bytes of "
				     "DMA quota left; raise dma = in its [component] section",
		       (unsigned long long)q->size, c->cfg->name,
		       (unsigned long long)(own < c->cfg->dma_quota ? c->cfg->dma_quota - own : 0),
		       (unsigned long long)c->cfg->dma_quota);
		return;
	}
	if (c->ndma >= BH_MAX_DMA) {
		refuse(c, r, ENOSPC, "\"%s\" holds %d DMA buffers already, core's limit per "
				     "component (BH_MAX_DMA): free some, or allocate fewer larger ones",
		       c->cfg->name, BH_MAX_DMA);
		return;
	}
	rc = bh_dma_buf_create(q->size, !core->backend->iommu, &buf);
	if (rc) {
		refuse(c, r, ENOMEM, "cannot allocate %llu bytes of DMA memory%s",
		       (unsigned long long)q->size,
		       core->backend->iommu ? ""
					    : " (no-IOMMU mode needs huge pages for buffers over "
					      "4 KiB: echo 64 > /proc/sys/vm/nr_hugepages)");
		return;
	}
	buf.dev = q->device;
	hi = dom->iova_hi;
	if (q->limit && q->limit < hi)
		hi = q->limit;
	if (core->backend->iommu) {
		rc = bh_iova_alloc(c->dma, c->ndma, dom->iova_lo, hi, buf.size,
				   buf.huge ? (2ull << 20) : 4096, &iova);
		if (rc) {
			bh_dma_buf_destroy(&buf);
			refuse(c, r, ENOSPC, "no room for %llu bytes below device address 0x%llx",
			       (unsigned long long)buf.size, (unsigned long long)hi);
			return;
		}
	}
	rc = core->backend->dma_map(dom, buf.vaddr, buf.size, &iova);
	if (rc == 0 && iova + buf.size > hi) {
		core->backend->dma_unmap(dom, iova, buf.size);
		rc = -ERANGE;
	}
	if (rc) {
		bh_dma_buf_destroy(&buf);
		refuse(c, r, -rc, "cannot map %llu bytes for DMA below 0x%llx: %s",
		       (unsigned long long)buf.size, (unsigned long long)hi, strerror(-rc));
		return;
	}
	buf.iova = iova;
	buf.session = q->session;
	bh_account_charged(core, c, &buf);
	c->dma[c->ndma++] = buf;
	c->dma_bytes += buf.size;
	r->fds[r->nfds++] = buf.memfd;
	r->msg.u.grant.size = buf.size;
	r->msg.u.grant.iova = iova;
	r->msg.u.grant.nfds = 1;
}

static void do_dma_free(struct bh_core_state *core, struct bh_component *c, struct reply *r,
			const struct bh_request *q)
{
	for (int i = 0; i < c->ndma; i++) {
		struct bh_dma_buf *b = &c->dma[i];
		if (b->iova != q->iova)
			continue;
		core->backend->dma_unmap(&c->domain, b->iova, b->size);
		bh_account_uncharge(core, c, b);
		c->dma_bytes -= b->size;
		bh_dma_buf_destroy(b);
		c->dma[i] = c->dma[--c->ndma];
		return;
	}
	refuse(c, r, ENOENT, "no DMA buffer at device address 0x%llx",
	       (unsigned long long)q->iova);
}

static void handle(struct bh_core_state *core, struct bh_component *c, const struct bh_msg *in)
{
	struct reply r;
	int rc;

	memset(&r, 0, sizeof(r));
	bh_msg_init(&r.msg, (enum bh_op)in->op, in->seq);
	switch (in->op) {
	case BH_OP_HELLO:
		do_hello(core, c, &r);
		break;
	case BH_OP_DEVICE_INFO:
		do_device_info(core, c, &r, &in->u.req);
		break;
	case BH_OP_ACQUIRE:
	case BH_OP_RELEASE:
		do_acquire(core, c, &r, &in->u.req, in->op == BH_OP_ACQUIRE);
		break;
	case BH_OP_IO_MEM:
		do_bar(core, c, &r, &in->u.req, BH_REGION_MMIO);
		break;
	case BH_OP_IO_PORT:
		do_io_port(core, c, &r, &in->u.req);
		break;
	case BH_OP_IRQ:
		do_irq(core, c, &r, &in->u.req);
		break;
	case BH_OP_DMA_ALLOC:
		do_dma_alloc(core, c, &r, &in->u.req);
		break;
	case BH_OP_DMA_FREE:
		do_dma_free(core, c, &r, &in->u.req);
		break;
	case BH_OP_HEARTBEAT:
		c->last_heartbeat_ns = bh_now_ns();
		break;
	case BH_OP_SESSION_END:
		bh_account_end(core, c, in->u.session.id, in->u.session.flags, &r.msg);
		break;
	case BH_OP_LEGACY_MEM: {
		int fd = -1;
		bh_legacy_request(c, &in->u.req, &r.msg, &fd);
		if (fd >= 0)
			r.fds[r.nfds++] = fd;
		break;
	}
	case BH_OP_UBLK: {
		int fd = -1;
		bh_ublk_request(core, c, &in->u.session, &r.msg, &fd);
		if (fd >= 0)
			r.fds[r.nfds++] = fd;
		break;
	}
	case BH_OP_USBIP:
	case BH_OP_PTY: {
		int fd = -1;
		if (in->op == BH_OP_USBIP)
			bh_usbip_request(core, c, &in->u.session, &r.msg, &fd);
		else
			bh_pty_request(core, c, &r.msg, &fd);
		if (fd >= 0)
			r.fds[r.nfds++] = fd;
		break;
	}
	case BH_OP_VM_NIC: {
		int fd = -1;
		bh_vm_nic_request(core, c, &in->u.req, &r.msg, &fd);
		if (fd >= 0)
			r.fds[r.nfds++] = fd;
		break;
	}
	case BH_OP_LISTEN: {
		int fd = -1;
		bh_listen_request(c, &r.msg, &fd);
		if (fd >= 0)
			r.fds[r.nfds++] = fd;
		break;
	}
	case BH_OP_ANNOUNCE:
	case BH_OP_SESSION:
	case BH_OP_TAP:
	case BH_OP_NBD:
	case BH_OP_OUTPUT: {
		int fd = -1;
		if (in->op == BH_OP_ANNOUNCE)
			bh_session_announce(core, c, &in->u.session, &r.msg, &fd);
		else if (in->op == BH_OP_SESSION)
			bh_session_open(core, c, &in->u.session, &r.msg, &fd);
		else if (in->op == BH_OP_TAP)
			bh_session_tap(core, c, &r.msg, &fd);
		else if (in->op == BH_OP_OUTPUT)
			bh_output_grant(c, &r.msg, &fd);
		else
			bh_session_nbd(core, c, &in->u.session, &r.msg, &fd);
		if (fd >= 0)
			r.fds[r.nfds++] = fd;
		break;
	}
	}
	rc = bh_msg_send(c->sock, &r.msg, r.fds, r.nfds);
	/* the fds are the component's now; DMA memfds stay open in core too */
	for (unsigned int i = 0; i < r.nfds; i++) {
		bool kept = false;
		for (int k = 0; k < c->ndma; k++)
			kept |= c->dma[k].memfd == r.fds[i];
		if (!kept)
			close(r.fds[i]);
	}
	if (rc < 0 && rc != -EPIPE)
		bh_log("cannot reply to \"%s\": %s", c->cfg->name, strerror(-rc));
}

/* core reads nothing more from c until then; bh_supervisor_tick resumes it */
static void hold(struct bh_core_state *core, struct bh_component *c, uint64_t until)
{
	c->held = true;
	c->held_until_ns = until;
	epoll_ctl(core->epfd, EPOLL_CTL_DEL, c->sock, NULL);
}

/*
 * A client whose sessions keep failing waits before the next one is routed:
 * core keeps the request and reads nothing else from it until then, so the
 * client's call returns late.
 */
static bool park(struct bh_core_state *core, struct bh_component *c, const struct bh_msg *in)
{
	uint64_t wait = bh_account_delay_ns(c, bh_now_ns());

	if (in->op != BH_OP_SESSION || !wait)
		return false;
	c->parked_msg = *in;
	c->parked = true;
	c->session_delays++;
	hold(core, c, c->session_not_before_ns);
	if (c->session_delays == 1 || !(c->session_delays & (c->session_delays - 1)))
		bh_log("\"%s\": %u session(s) in a row failed or were dropped at once; its next "
		       "session request waits %llu ms (backoff_ms, doubling up to backoff_max_ms; "
		       "%u delayed so far)",
		       c->cfg->name, c->session_failures, (unsigned long long)(wait / 1000000ull),
		       c->session_delays);
	return true;
}

static unsigned int request_cost(unsigned int op)
{
	switch (op) {
	case BH_OP_HELLO:
	case BH_OP_DEVICE_INFO:
	case BH_OP_HEARTBEAT:
	case BH_OP_DMA_FREE:
	case BH_OP_SESSION_END:
	case BH_OP_RELEASE:
		return 1;
	default:
		return BH_REQUEST_HEAVY;
	}
}

/*
 * No component has more of core than its share: one that asks faster than
 * BH_REQUEST_RATE (after a burst) is not read from until its account is
 * back within the burst; its calls return late, nobody else's do.
 */
static bool throttle(struct bh_core_state *core, struct bh_component *c)
{
	const uint64_t burst = BH_REQUEST_BURST * (1000000000ull / BH_REQUEST_RATE);
	uint64_t now = bh_now_ns();

	if (c->request_tat_ns <= now + burst)
		return false;
	c->throttled++;
	hold(core, c, c->request_tat_ns - burst);
	if (c->throttled == 1 || !(c->throttled & (c->throttled - 1)))
		bh_log("\"%s\" asks core faster than %d requests a second (after a burst of %d): "
		       "reading from it paused for %llu ms (%u time%s so far)",
		       c->cfg->name, BH_REQUEST_RATE, BH_REQUEST_BURST,
		       (unsigned long long)((c->request_tat_ns - burst - now) / 1000000ull),
		       c->throttled, c->throttled == 1 ? "" : "s");
	return true;
}

static void charge_request(struct bh_component *c, unsigned int op)
{
	uint64_t now = bh_now_ns();

	if (c->request_tat_ns < now)
		c->request_tat_ns = now;
	c->request_tat_ns += request_cost(op) * (1000000000ull / BH_REQUEST_RATE);
}

void bh_service_resume(struct bh_core_state *core, struct bh_component *c)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = BH_TAG(BH_TAG_SOCK, c->index) };
	bool parked = c->parked;

	c->held = c->parked = false;
	if (c->sock < 0)
		return;
	/* it could not heartbeat while it waited on us */
	c->last_heartbeat_ns = bh_now_ns();
	epoll_ctl(core->epfd, EPOLL_CTL_ADD, c->sock, &ev);
	if (parked)
		handle(core, c, &c->parked_msg);
}

void bh_service_request(struct bh_core_state *core, struct bh_component *c)
{
	struct bh_msg in;
	char why[160];
	int fds[BH_MAX_FDS];
	unsigned int nfds = 0;
	int rc;

	/* a dynamic program's first datagram, from core's own code before its exec */
	if (c->loading && c->loader < 0) {
		bh_loader_receive(core, c);
		return;
	}
	if (throttle(core, c))
		return;
	rc = bh_msg_recv(c->sock, &in, fds, 0, &nfds, why, sizeof(why));
	if (rc == -EAGAIN)
		return;
	if (rc == 0) {
		/* hang-up: stop listening; the process exit tells the rest */
		epoll_ctl(core->epfd, EPOLL_CTL_DEL, c->sock, NULL);
		close(c->sock);
		c->sock = -1;
		return;
	}
	if (rc < 0) {
		core->protocol_errors++;
		bh_log("protocol: \"%s\" sent a bad message (%s); closing its connection",
		       c->cfg->name, rc == -EPROTO ? why : strerror(-rc));
		bh_component_stop(core, c, "protocol violation");
		return;
	}
	bh_loader_done(core, c); /* it has started: its loader opens no more */
	charge_request(c, in.op);
	if (park(core, c, &in))
		return;
	handle(core, c, &in);
}
