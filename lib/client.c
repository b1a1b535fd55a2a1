// SPDX-License-Identifier: MIT
/* libbulkhead's side of the core protocol: one request, one reply, fds beside. */
#include <errno.h>
#include <stdbool.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/msg.h"

__attribute__((format(printf, 3, 4))) static int failed(struct bh_core *core, int err,
							 const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(core->error, sizeof(core->error), fmt, ap);
	va_end(ap);
	return err;
}

const char *bh_error(const struct bh_core *core)
{
	return core->error;
}

/* send a request, wait for its reply; fds of the reply land in fds */
static int call(struct bh_core *core, enum bh_op op, const struct bh_request *req,
		struct bh_msg *reply, int *fds, unsigned int maxfds, unsigned int *nfds)
{
	struct bh_msg m;
	unsigned int got = 0;
	char why[128];
	int rc;

	bh_msg_init(&m, op, ++core->seq);
	if (req)
		m.u.req = *req;
	rc = bh_msg_send(core->fd, &m, NULL, 0);
	if (rc)
		return failed(core, rc, "%s: cannot reach core: %s", bh_op_name(op), strerror(-rc));
	rc = bh_msg_recv(core->fd, reply, fds, maxfds, &got, why, sizeof(why));
	if (rc == -EMFILE) {
		/* core granted a buffer whose fd never reached us: give it back */
		if (op == BH_OP_DMA_ALLOC && reply->seq == m.seq && reply->status == 0) {
			struct bh_request q = { .device = req->device, .iova = reply->u.grant.iova };
			struct bh_msg ignored;
			call(core, BH_OP_DMA_FREE, &q, &ignored, NULL, 0, NULL);
		}
		return failed(core, rc, "%s: the reply from core: %s", bh_op_name(op), why);
	}
	if (rc == 0)
		return failed(core, -ECONNRESET, "%s: core closed the connection", bh_op_name(op));
	if (rc < 0)
		return failed(core, rc, "%s: bad reply from core: %s", bh_op_name(op),
			      rc == -EPROTO ? why : strerror(-rc));
	if (reply->seq != m.seq || reply->op != op) {
		for (unsigned int i = 0; i < got; i++)
			close(fds[i]);
		return failed(core, -EPROTO, "%s: reply out of order", bh_op_name(op));
	}
	if (reply->status < 0) {
		for (unsigned int i = 0; i < got; i++)
			close(fds[i]);
		reply->error[sizeof(reply->error) - 1] = 0;
		return failed(core, reply->status, "%s refused: %s", bh_op_name(op), reply->error);
	}
	if (nfds)
		*nfds = got;
	return 0;
}

int bh_core_open(struct bh_core *core)
{
	struct bh_msg reply;
	unsigned int nfds = 0;
	int rc, ring = -1;

	memset(core, 0, sizeof(*core));
	core->fd = BH_CORE_FD;
	rc = call(core, BH_OP_HELLO, NULL, &reply, &ring, 1, &nfds);
	if (rc)
		return rc;
	/* the flight recorder's ring, where core keeps one for us (bulkhead/trace.h) */
	if (nfds == 1 && (rc = bh_trace_attach(ring)) < 0)
		return failed(core, rc, "hello: the flight recorder's ring from core: %s",
			      strerror(-rc));
	core->hello = reply.u.hello;
	core->hello.component[BH_NAME_MAX - 1] = 0;
	if (core->hello.device_count > 64 || core->hello.isa_count > BH_MAX_ISA)
		return failed(core, -EPROTO, "hello: implausible reply from core");
	return 0;
}

void bh_core_close(struct bh_core *core)
{
	if (core->fd >= 0)
		close(core->fd);
	core->fd = -1;
}

int bh_heartbeat(struct bh_core *core)
{
	struct bh_msg reply;

	bh_trace_tick();
	return call(core, BH_OP_HEARTBEAT, NULL, &reply, NULL, 0, NULL);
}

void bh_heartbeat_every(struct bh_core *core, uint64_t *next_ns, unsigned int ms, const char *who)
{
	uint64_t now = bh_coarse_ns();

	if (now < *next_ns)
		return;
	*next_ns = now + ms * 1000000ull;
	if (bh_heartbeat(core) < 0) {
		fprintf(stderr, "%s: heartbeat: %s; core is gone\n", who, bh_error(core));
		exit(1);
	}
}

int bh_device_info(struct bh_core *core, unsigned int dev, struct bh_device_info *info)
{
	struct bh_request q = { .device = dev };
	struct bh_msg reply;
	int rc = call(core, BH_OP_DEVICE_INFO, &q, &reply, NULL, 0, NULL);

	if (rc)
		return rc;
	*info = reply.u.device;
	info->name[sizeof(info->name) - 1] = 0;
	info->class_name[sizeof(info->class_name) - 1] = 0;
	return 0;
}

int bh_device_find(struct bh_core *core, uint16_t vendor, uint16_t device, unsigned int *dev)
{
	struct bh_device_info info;

	for (unsigned int i = 0; i < core->hello.device_count; i++) {
		if (bh_device_info(core, i, &info) == 0 && info.vendor == vendor &&
		    info.device == device) {
			*dev = i;
			return 0;
		}
	}
	return failed(core, -ENODEV, "no device %04x:%04x among the %u my policy grants", vendor,
		      device, core->hello.device_count);
}

int bh_acquire(struct bh_core *core, unsigned int dev)
{
	struct bh_request q = { .device = dev };
	struct bh_msg reply;

	return call(core, BH_OP_ACQUIRE, &q, &reply, NULL, 0, NULL);
}

int bh_release(struct bh_core *core, unsigned int dev)
{
	struct bh_request q = { .device = dev };
	struct bh_msg reply;

	return call(core, BH_OP_RELEASE, &q, &reply, NULL, 0, NULL);
}

/* one fd and a size: io_mem and PCI io_port */
static int bar_fd(struct bh_core *core, enum bh_op op, unsigned int dev, unsigned int bar, int *fd,
		  uint64_t *size)
{
	struct bh_request q = { .device = dev, .index = bar };
	struct bh_msg reply;
	unsigned int nfds = 0;
	int rc = call(core, op, &q, &reply, fd, 1, &nfds);

	if (rc)
		return rc;
	if (nfds != 1)
		return failed(core, -EPROTO, "%s: core sent no fd", bh_op_name(op));
	*size = reply.u.grant.size;
	return 0;
}

/* what this process mapped, for fault injection (lib/fault.c) */
struct bh_mmio *bh_mapped_bars[BH_MAX_REGIONS * 4];
unsigned int bh_nmapped_bars;

int bh_io_mem(struct bh_core *core, unsigned int dev, unsigned int bar, struct bh_mmio *mmio)
{
	uint64_t size;
	void *p;
	int fd, rc;

	rc = bar_fd(core, BH_OP_IO_MEM, dev, bar, &fd, &size);
	if (rc)
		return rc;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return failed(core, -errno, "io_mem: cannot map BAR %u (%llu bytes): %s", bar,
			      (unsigned long long)size, strerror(errno));
	mmio->base = p;
	mmio->size = size;
	mmio->trace = bh_trace_region(BH_TRACE_MMIO, dev, bar, size);
	if (bh_nmapped_bars < sizeof(bh_mapped_bars) / sizeof(bh_mapped_bars[0]))
		bh_mapped_bars[bh_nmapped_bars++] = mmio;
	return 0;
}

void bh_io_mem_unmap(struct bh_mmio *mmio)
{
	for (unsigned int i = 0; i < bh_nmapped_bars; i++)
		if (bh_mapped_bars[i] == mmio)
			bh_mapped_bars[i] = bh_mapped_bars[--bh_nmapped_bars];
	if (mmio->base)
		munmap((void *)mmio->base, mmio->size);
	mmio->base = NULL;
}

int bh_io_port(struct bh_core *core, unsigned int dev, unsigned int bar, struct bh_ioport *port)
{
	uint64_t size;
	int rc = bar_fd(core, BH_OP_IO_PORT, dev, bar, &port->fd, &size);

	if (rc)
		return rc;
	port->base = 0;
	port->size = (uint32_t)size;
	port->trace = bh_trace_region(BH_TRACE_PORT, dev, bar, size);
	return 0;
}

int bh_io_port_isa(struct bh_core *core, uint16_t base, uint16_t count, struct bh_ioport *port)
{
	struct bh_request q = { .device = BH_DEVICE_ISA, .base = base, .count = count };
	struct bh_msg reply;
	int rc = call(core, BH_OP_IO_PORT, &q, &reply, NULL, 0, NULL);

	if (rc)
		return rc;
	port->fd = -1;
	port->base = base;
	port->size = count;
	port->trace = bh_trace_region(BH_TRACE_ISA, base, 0, count);
	return 0;
}

void bh_io_port_close(struct bh_ioport *port)
{
	if (port->fd >= 0)
		close(port->fd);
	port->fd = -1;
	port->size = 0;
}

uint8_t bh_inb(const struct bh_ioport *port, uint32_t off)
{
	uint8_t v = 0xff;

	if (off >= port->size)
		return 0xff;
	if (port->fd < 0)
		v = inb((unsigned short)(port->base + off));
	else if (pread(port->fd, &v, 1, off) != 1)
		v = 0xff;
	BH_TRACED(port->trace, off, 1, BH_TRACE_READ, v);
	return v;
}

void bh_outb(const struct bh_ioport *port, uint32_t off, uint8_t v)
{
	if (off >= port->size)
		return;
	BH_TRACED(port->trace, off, 1, BH_TRACE_WRITE, v);
	if (port->fd < 0)
		outb(v, (unsigned short)(port->base + off));
	else
		(void)!pwrite(port->fd, &v, 1, off);
}

int bh_irq_open(struct bh_core *core, unsigned int dev, enum bh_irq_type type, unsigned int count,
		struct bh_irq *irqs)
{
	struct bh_request q = { .device = dev, .index = type, .count = count };
	struct bh_msg reply;
	int fds[BH_MAX_FDS];
	unsigned int nfds = 0;
	int rc;

	if (count == 0 || count >= BH_MAX_FDS)
		return failed(core, -EINVAL, "irq: ask for 1 to %d vectors", BH_MAX_FDS - 1);
	rc = call(core, BH_OP_IRQ, &q, &reply, fds, BH_MAX_FDS, &nfds);
	if (rc)
		return rc;
	uint32_t ack = reply.u.grant.flags;
	bool has_ack_fd = ack == BH_ACK_EVENTFD || ack == BH_ACK_UIO;
	if (nfds != count + has_ack_fd) {
		for (unsigned int i = 0; i < nfds; i++)
			close(fds[i]);
		return failed(core, -EPROTO, "irq: core sent %u fds for %u vectors", nfds, count);
	}
	for (unsigned int i = 0; i < count; i++) {
		irqs[i].fd = fds[i];
		irqs[i].ack = ack;
		irqs[i].ack_fd = has_ack_fd ? fds[count] : -1;
		irqs[i].type = type;
		irqs[i].vector = i;
	}
	return 0;
}

int bh_irq_wait(struct bh_irq *irq, int timeout_ms)
{
	struct pollfd p = { .fd = irq->fd, .events = POLLIN };
	int rc;

	do
		rc = poll(&p, 1, timeout_ms);
	while (rc < 0 && errno == EINTR);
	if (rc <= 0)
		return rc < 0 ? -errno : 0;
	bh_trace_tick();
	if (irq->ack == BH_ACK_UIO) {
		uint32_t n;
		if (read(irq->fd, &n, sizeof(n)) != sizeof(n))
			return -errno;
		BH_TRACED(0, irq->vector, 4, BH_TRACE_IRQ, n);
	} else {
		uint64_t n;
		if (read(irq->fd, &n, sizeof(n)) != sizeof(n))
			return errno == EAGAIN ? 0 : -errno;
		BH_TRACED(0, irq->vector, 8, BH_TRACE_IRQ, n);
	}
	return 1;
}

int bh_irq_ack(struct bh_irq *irq)
{
	uint64_t one = 1;

	if (irq->ack_fd < 0)
		return 0;
	return write(irq->ack_fd, &one, sizeof(one)) == sizeof(one) ? 0 : -errno;
}

void bh_irq_close(struct bh_irq *irq)
{
	if (irq->vector == 0 && irq->ack_fd >= 0)
		close(irq->ack_fd);
	if (irq->fd >= 0)
		close(irq->fd);
	irq->fd = irq->ack_fd = -1;
}

/* one request carrying a bh_session_info, one fd back */
static int session_call(struct bh_core *core, enum bh_op op, const struct bh_session_info *info,
			struct bh_msg *reply, int *fd)
{
	struct bh_msg m;
	unsigned int got = 0;
	char why[128];
	int rc, none = -1;

	/* fd NULL: the answer carries none (a ublk start) */
	if (!fd)
		fd = &none;
	bh_msg_init(&m, op, ++core->seq);
	m.u.session = *info;
	rc = bh_msg_send(core->fd, &m, NULL, 0);
	if (rc)
		return failed(core, rc, "%s: cannot reach core: %s", bh_op_name(op), strerror(-rc));
	rc = bh_msg_recv(core->fd, reply, fd, 1, &got, why, sizeof(why));
	if (rc <= 0)
		return failed(core, rc ? rc : -ECONNRESET, "%s: %s", bh_op_name(op),
			      rc ? why : "core closed the connection");
	if (reply->status < 0) {
		if (got)
			close(*fd);
		reply->error[sizeof(reply->error) - 1] = 0;
		return failed(core, reply->status, "%s refused: %s", bh_op_name(op), reply->error);
	}
	if (fd == &none) {
		if (got)
			close(none);
		return 0;
	}
	if (got != 1)
		return failed(core, -EPROTO, "%s: core sent no fd", bh_op_name(op));
	return 0;
}

int bh_service_announce(struct bh_core *core, const char *service, uint64_t cost,
			unsigned int max_sessions, int *channel)
{
	struct bh_session_info info = { .cost = cost, .max_sessions = max_sessions };
	struct bh_msg reply;

	snprintf(info.service, sizeof(info.service), "%s", service);
	return session_call(core, BH_OP_ANNOUNCE, &info, &reply, channel);
}

int bh_service_accept(int channel, struct bh_session_request *req)
{
	struct bh_msg m;
	unsigned int got = 0;
	char why[128];
	int rc = bh_msg_recv(channel, &m, &req->fd, 1, &got, why, sizeof(why));

	if (rc == -EAGAIN)
		return 0;
	if (rc <= 0)
		return rc ? rc : -ECONNRESET;
	if (m.op != BH_OP_SESSION || got != 1) {
		if (got)
			close(req->fd);
		req->fd = -1;
		return -EPROTO;
	}
	req->id = m.u.session.id;
	snprintf(req->client, BH_NAME_MAX, "%.*s", BH_NAME_MAX - 1, m.u.session.client);
	snprintf(req->policy, BH_NAME_MAX, "%.*s", BH_NAME_MAX - 1, m.u.session.name);
	bh_trace_session(BH_TRACE_SESSION_ACCEPT, req->id, req->client, 0);
	return 1;
}

int bh_session_end(struct bh_core *core, uint32_t id, uint32_t flags)
{
	struct bh_msg m, reply;
	char why[128];
	unsigned int got = 0;
	int rc;

	bh_trace_session(BH_TRACE_SESSION_END, id, NULL, flags);
	bh_msg_init(&m, BH_OP_SESSION_END, ++core->seq);
	m.u.session.id = id;
	m.u.session.flags = flags;
	rc = bh_msg_send(core->fd, &m, NULL, 0);
	if (rc)
		return failed(core, rc, "session_end: cannot reach core: %s", strerror(-rc));
	rc = bh_msg_recv(core->fd, &reply, NULL, 0, &got, why, sizeof(why));
	if (rc <= 0)
		return failed(core, rc ? rc : -ECONNRESET, "session_end: %s",
			      rc ? why : "core closed the connection");
	if (reply.status < 0) {
		reply.error[sizeof(reply.error) - 1] = 0;
		return failed(core, reply.status, "session_end refused: %s", reply.error);
	}
	return 0;
}

int bh_session_open(struct bh_core *core, const char *service, int *session_fd)
{
	struct bh_session_info info = { 0 };
	struct bh_msg reply;

	int rc;

	snprintf(info.service, sizeof(info.service), "%s", service);
	rc = session_call(core, BH_OP_SESSION, &info, &reply, session_fd);
	if (rc == 0)
		bh_trace_session(BH_TRACE_SESSION_OPEN, 0, service, 0);
	return rc;
}

int bh_session_open_wait(struct bh_core *core, const char *service, int timeout_ms,
			 int *session_fd)
{
	uint64_t deadline = bh_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	struct timespec pause = { .tv_nsec = 50000000 };

	for (;;) {
		int rc = bh_session_open(core, service, session_fd);
		if (rc != -EAGAIN || (timeout_ms >= 0 && bh_now_ns() > deadline))
			return rc;
		nanosleep(&pause, NULL);
	}
}

int bh_tap_open(struct bh_core *core, char name[BH_NAME_MAX], int *fd)
{
	struct bh_session_info info = { 0 };
	struct bh_msg reply;
	int rc = session_call(core, BH_OP_TAP, &info, &reply, fd);

	if (!rc)
		snprintf(name, BH_NAME_MAX, "%.*s", BH_NAME_MAX - 1, reply.u.session.name);
	return rc;
}

int bh_nbd_open(struct bh_core *core, uint64_t size, uint32_t block_size, char name[BH_NAME_MAX],
		int *fd)
{
	struct bh_session_info info = { .size = size, .block_size = block_size };
	struct bh_msg reply;
	int rc = session_call(core, BH_OP_NBD, &info, &reply, fd);

	if (!rc)
		snprintf(name, BH_NAME_MAX, "%.*s", BH_NAME_MAX - 1, reply.u.session.name);
	return rc;
}

int bh_ublk_call(struct bh_core *core, const struct bh_session_info *in,
		 struct bh_session_info *out, int *fd)
{
	struct bh_msg reply;
	int rc = session_call(core, BH_OP_UBLK, in, &reply, fd);

	if (!rc)
		*out = reply.u.session;
	return rc;
}

int bh_output_open(struct bh_core *core, int *fd)
{
	struct bh_session_info info = { 0 };
	struct bh_msg reply;

	return session_call(core, BH_OP_OUTPUT, &info, &reply, fd);
}

/* a hugetlbfs memfd says its page size as its block size; core aligns the iova to it */
static size_t dma_page(int fd, uint64_t iova)
{
	struct stat st;
	size_t page = 4096;

	if (fstat(fd, &st) == 0 && st.st_blksize > 4096 &&
	    !(st.st_blksize & (st.st_blksize - 1)) && !(iova & (uint64_t)(st.st_blksize - 1)))
		page = (size_t)st.st_blksize;
	return page;
}

int bh_dma_alloc(struct bh_core *core, unsigned int dev, size_t size, uint64_t limit,
		 struct bh_dma *dma)
{
	return bh_dma_alloc_session(core, dev, size, limit, 0, dma);
}

int bh_dma_alloc_session(struct bh_core *core, unsigned int dev, size_t size, uint64_t limit,
			 uint32_t session, struct bh_dma *dma)
{
	struct bh_request q = { .device = dev, .size = size, .limit = limit, .session = session };
	struct bh_msg reply;
	unsigned int nfds = 0;
	int fd, rc;
	void *p;

	rc = call(core, BH_OP_DMA_ALLOC, &q, &reply, &fd, 1, &nfds);
	if (rc)
		return rc;
	if (nfds != 1 || reply.u.grant.size < size)
		return failed(core, -EPROTO, "dma_alloc: bad grant from core");
	p = mmap(NULL, reply.u.grant.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		rc = -errno;
		close(fd);
		return failed(core, rc, "dma_alloc: cannot map %llu bytes: %s",
			      (unsigned long long)reply.u.grant.size, strerror(-rc));
	}
	dma->virt = p;
	dma->iova = reply.u.grant.iova;
	dma->size = reply.u.grant.size;
	dma->page = dma_page(fd, dma->iova);
	dma->fd = fd;
	dma->dev = dev;
	BH_TRACED(0, dma->size >> 10, 8, BH_TRACE_DMA_MAP, dma->iova);
	return 0;
}

int bh_dma_free(struct bh_core *core, struct bh_dma *dma)
{
	struct bh_request q = { .device = dma->dev, .iova = dma->iova };
	struct bh_msg reply;

	BH_TRACED(0, dma->size >> 10, 8, BH_TRACE_DMA_UNMAP, dma->iova);
	if (dma->virt)
		munmap(dma->virt, dma->size);
	if (dma->fd >= 0)
		close(dma->fd);
	dma->virt = NULL;
	dma->fd = -1;
	return call(core, BH_OP_DMA_FREE, &q, &reply, NULL, 0, NULL);
}

static int named_fd(struct bh_core *core, enum bh_op op, char name[BH_NAME_MAX], int *fd)
{
	struct bh_session_info info = { 0 };
	struct bh_msg reply;
	int rc = session_call(core, op, &info, &reply, fd);

	if (!rc)
		snprintf(name, BH_NAME_MAX, "%.*s", BH_NAME_MAX - 1, reply.u.session.name);
	return rc;
}

int bh_pty_open(struct bh_core *core, char name[BH_NAME_MAX], int *fd)
{
	return named_fd(core, BH_OP_PTY, name, fd);
}

int bh_listen_open(struct bh_core *core, char name[BH_NAME_MAX], int *fd)
{
	return named_fd(core, BH_OP_LISTEN, name, fd);
}

int bh_vm_nic_open(struct bh_core *core, unsigned int index, uint64_t size, int *fd)
{
	return bh_vm_nic_stream(core, 0, index, size, fd);
}

int bh_vm_nic_stream(struct bh_core *core, uint32_t session, unsigned int index, uint64_t size,
		     int *fd)
{
	struct bh_request q = { .index = index, .size = size, .session = session };
	struct bh_msg reply;
	unsigned int nfds = 0;
	int rc = call(core, BH_OP_VM_NIC, &q, &reply, fd, 1, &nfds);

	if (rc)
		return rc;
	if (nfds != 1)
		return failed(core, -EPROTO, "vm_nic: core sent %u fds, not 1", nfds);
	return 0;
}

int bh_legacy_mem(struct bh_core *core, enum bh_legacy_kind kind, struct bh_legacy_mem *m)
{
	struct bh_request q = { .index = (uint32_t)kind };
	struct bh_msg reply;
	unsigned int nfds = 0;
	int fd, rc;
	void *p;

	rc = call(core, BH_OP_LEGACY_MEM, &q, &reply, &fd, 1, &nfds);
	if (rc)
		return rc;
	if (nfds != 1 || !reply.u.grant.size || reply.u.grant.size > (1u << 20)) {
		if (nfds)
			close(fd);
		return failed(core, -EPROTO, "legacy_mem: bad grant from core");
	}
	/* private: the copy is sealed, what the driver writes stays in its own pages */
	p = mmap(NULL, reply.u.grant.size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	rc = p == MAP_FAILED ? -errno : 0;
	close(fd);
	if (rc)
		return failed(core, rc, "legacy_mem: cannot map %llu bytes: %s",
			      (unsigned long long)reply.u.grant.size, strerror(-rc));
	m->phys = reply.u.grant.iova;
	m->size = reply.u.grant.size;
	m->virt = p;
	return 0;
}

int bh_usbip_open(struct bh_core *core, unsigned int speed, char name[BH_NAME_MAX], int *fd)
{
	struct bh_session_info info = { .block_size = speed };
	struct bh_msg reply;
	int rc = session_call(core, BH_OP_USBIP, &info, &reply, fd);

	if (!rc)
		snprintf(name, BH_NAME_MAX, "%.*s", BH_NAME_MAX - 1, reply.u.session.name);
	return rc;
}
