/* SPDX-License-Identifier: MIT */
/*
 * libbulkhead: what a component links to talk to core.
 *
 * A component starts with one capability, its socket to core (fd 3). From
 * core it gets its devices' registers (io_mem), I/O ports (io_port),
 * interrupts (irq) and DMA memory (dma). Every call returns 0 or -errno;
 * bh_error() says in words what core or the library refused and why.
 */
#ifndef BULKHEAD_H
#define BULKHEAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/io.h>

#include "bulkhead/legacy.h"
#include "bulkhead/proto.h"
#include "bulkhead/trace.h"

struct bh_core {
	int fd;
	uint32_t seq;
	struct bh_hello hello;
	char error[BH_ERROR_MAX + 64];
};

/* connect to core over fd BH_CORE_FD and say hello */
int bh_core_open(struct bh_core *core);
void bh_core_close(struct bh_core *core);
/* the message of the last failed call */
const char *bh_error(const struct bh_core *core);
int bh_heartbeat(struct bh_core *core);
/* a heartbeat once *next_ns has passed, the next ms later; exit(1) if core is gone */
void bh_heartbeat_every(struct bh_core *core, uint64_t *next_ns, unsigned int ms, const char *who);

/* platform session: the devices my policy grants */
int bh_device_info(struct bh_core *core, unsigned int dev, struct bh_device_info *info);
/* first granted device with this vendor:device; -ENODEV if none */
int bh_device_find(struct bh_core *core, uint16_t vendor, uint16_t device, unsigned int *dev);
int bh_acquire(struct bh_core *core, unsigned int dev);
int bh_release(struct bh_core *core, unsigned int dev);

/* io_mem: a device's memory-mapped register BAR */
struct bh_mmio {
	volatile uint8_t *base;
	size_t size;
	uint16_t trace; /* its region in the flight recorder (bulkhead/trace.h) */
};

int bh_io_mem(struct bh_core *core, unsigned int dev, unsigned int bar, struct bh_mmio *mmio);
void bh_io_mem_unmap(struct bh_mmio *mmio);

/*
 * The flight recorder (bulkhead/trace.h): while core's switch in the ring
 * is on, each access is recorded (a write before it happens, a read with
 * what it returned). Off, an access costs one load and one branch more.
 */
extern const volatile uint32_t *bh_trace_on;
void bh_trace_access(uint16_t region, size_t off, unsigned int width, unsigned int kind,
		     uint64_t value);
/* name a region's registers for traces and crash reports; 0 or -ENOSPC */
int bh_mmio_names(const struct bh_mmio *m, const struct bh_reg_name *names, size_t n);

#define BH_TRACED(region, off, width, kind, v)                                                    \
	do {                                                                                       \
		if (__builtin_expect(*bh_trace_on, 0))                                             \
			bh_trace_access(region, off, width, kind, v);                              \
	} while (0)

/* the compiler barrier keeps register accesses in program order */
static inline uint32_t bh_read32(const struct bh_mmio *m, size_t off)
{
	__asm__ volatile("" ::: "memory");
	uint32_t v = *(volatile uint32_t *)(m->base + off);
	BH_TRACED(m->trace, off, 4, BH_TRACE_READ, v);
	return v;
}

static inline void bh_write32(const struct bh_mmio *m, size_t off, uint32_t v)
{
	BH_TRACED(m->trace, off, 4, BH_TRACE_WRITE, v);
	__asm__ volatile("" ::: "memory");
	*(volatile uint32_t *)(m->base + off) = v;
}

static inline uint64_t bh_read64(const struct bh_mmio *m, size_t off)
{
	__asm__ volatile("" ::: "memory");
	uint64_t v = *(volatile uint64_t *)(m->base + off);
	BH_TRACED(m->trace, off, 8, BH_TRACE_READ, v);
	return v;
}

static inline void bh_write64(const struct bh_mmio *m, size_t off, uint64_t v)
{
	BH_TRACED(m->trace, off, 8, BH_TRACE_WRITE, v);
	__asm__ volatile("" ::: "memory");
	*(volatile uint64_t *)(m->base + off) = v;
}

/* poll until (reg & mask) == want; 0, or -ETIMEDOUT after timeout_us */
int bh_poll32(const struct bh_mmio *m, size_t off, uint32_t mask, uint32_t want,
	      unsigned int timeout_us);

/*
 * io_port: either a PCI I/O BAR (accessed through an fd core hands out) or
 * an ISA range core enabled for this process with ioperm() before exec.
 */
struct bh_ioport {
	int fd; /* PCI BAR; -1 for ISA */
	uint32_t base;
	uint32_t size;
	uint16_t trace; /* its region in the flight recorder */
};

int bh_io_port(struct bh_core *core, unsigned int dev, unsigned int bar, struct bh_ioport *port);
int bh_io_port_isa(struct bh_core *core, uint16_t base, uint16_t count, struct bh_ioport *port);
void bh_io_port_close(struct bh_ioport *port);
uint8_t bh_inb(const struct bh_ioport *port, uint32_t off);
void bh_outb(const struct bh_ioport *port, uint32_t off, uint8_t v);
int bh_ioport_names(const struct bh_ioport *port, const struct bh_reg_name *names, size_t n);

/* irq: a pollable fd per vector; wait, handle, then ack */
struct bh_irq {
	int fd;
	int ack_fd;
	uint32_t ack; /* enum bh_irq_ack */
	uint32_t type;
	uint32_t vector;
};

/* open count vectors of one type; switching type closes the previous ones */
int bh_irq_open(struct bh_core *core, unsigned int dev, enum bh_irq_type type, unsigned int count,
		struct bh_irq *irqs);
/* 1: fired (count events consumed), 0: timeout, <0: error */
int bh_irq_wait(struct bh_irq *irq, int timeout_ms);
int bh_irq_ack(struct bh_irq *irq);
void bh_irq_close(struct bh_irq *irq);

/* dma: memory the device reaches at iova (IOMMU-confined where there is one) */
struct bh_dma {
	void *virt;
	uint64_t iova;
	size_t size;
	/*
	 * memory and device addresses run on unbroken within each aligned
	 * block of this size: 4 KiB, or 2 MiB where core found huge pages
	 * (then the IOMMU, too, maps the buffer in 2 MiB pages)
	 */
	size_t page;
	int fd;
	unsigned int dev;
};

/* limit: the device's highest usable address + 1, or 0 for any */
int bh_dma_alloc(struct bh_core *core, unsigned int dev, size_t size, uint64_t limit,
		 struct bh_dma *dma);
/* the same for a session we serve: charged to its client's session_memory, not our dma */
int bh_dma_alloc_session(struct bh_core *core, unsigned int dev, size_t size, uint64_t limit,
			 uint32_t session, struct bh_dma *dma);
int bh_dma_free(struct bh_core *core, struct bh_dma *dma);

/*
 * sessions: a server announces a service and accepts sessions on the
 * channel it gets; a client opens a session to a service and core routes it
 * to the server its config names. Both then talk over the session socket
 * (see bulkhead/session.h for packet streams on it, bulkhead/service.h for
 * a server's side with its set-up work bounded).
 *
 * The client pays: the server announces what one session costs (the stream
 * memory it allocates for it) and how many it serves at once; core charges
 * each session to its client's "sessions" and "session_memory" and refuses
 * one beyond them, saying which limit it reached.
 */
struct bh_session_request {
	int fd;	     /* the session socket */
	uint32_t id; /* core's number for it: DMA for it is charged to the client */
	char client[BH_NAME_MAX];
	/* "session = usb xhci 08e6:4433" in the client's config: "08e6:4433", or "" */
	char policy[BH_NAME_MAX];
};

int bh_service_announce(struct bh_core *core, const char *service, uint64_t cost,
			unsigned int max_sessions, int *channel);
/* the next session on a channel: 1 with *req, 0 if none yet */
int bh_service_accept(int channel, struct bh_session_request *req);
/* server: session id is over (flags: BH_SESSION_END_*); core gives its client's share back */
int bh_session_end(struct bh_core *core, uint32_t id, uint32_t flags);
/* -EAGAIN while the server is not (yet) serving */
int bh_session_open(struct bh_core *core, const char *service, int *session_fd);
/* retry bh_session_open until it works or timeout_ms passes (-1: forever) */
int bh_session_open_wait(struct bh_core *core, const char *service, int timeout_ms,
			 int *session_fd);

/* host endpoints for bridges: the TAP interface and /dev/nbdN the config names */
int bh_tap_open(struct bh_core *core, char name[BH_NAME_MAX], int *fd);
int bh_nbd_open(struct bh_core *core, uint64_t size, uint32_t block_size, char name[BH_NAME_MAX],
		int *fd);
/*
 * /dev/ublkbN the config's 'ublk = N' names (bulkhead/ublk.h): in is the
 * request (flags, geometry), *out the reply's; *fd: /dev/ublkcN when opening
 */
struct bh_session_info;
int bh_ublk_call(struct bh_core *core, const struct bh_session_info *in,
		 struct bh_session_info *out, int *fd);
/* the file the config's 'output = PATH' names, opened anew and empty, write-only */
int bh_output_open(struct bh_core *core, int *fd);
/* the pty master the config names (pty = NAME); name: the slave's path */
int bh_pty_open(struct bh_core *core, char name[BH_NAME_MAX], int *fd);
/* the TCP socket core listens on for us (listen = ADDR:PORT); name: the address */
int bh_listen_open(struct bh_core *core, char name[BH_NAME_MAX], int *fd);
/*
 * a driver VM's NIC server (vm_nic = VM): index 0, the memory the VM shares
 * with us (bulkhead/vm_nic.h); 1 or 2, a memfd of size bytes for a stream
 */
int bh_vm_nic_open(struct bh_core *core, unsigned int index, uint64_t size, int *fd);
/*
 * the same, index 1 or 2, for a stream of session (its id): core charges it
 * to the session's client (session_memory), as DMA for a session is; with
 * session 0 (bh_vm_nic_open) it counts against our own dma quota
 */
int bh_vm_nic_stream(struct bh_core *core, uint32_t session, unsigned int index, uint64_t size,
		     int *fd);
/* a private copy of legacy memory the policy names (legacy = NAME; bulkhead/legacy.h) */
int bh_legacy_mem(struct bh_core *core, enum bh_legacy_kind kind, struct bh_legacy_mem *m);
/*
 * a socket a vhci-hcd port speaks USB/IP on (usbip = yes), for a device of
 * speed (the kernel's enum usb_device_speed); name: the port
 */
int bh_usbip_open(struct bh_core *core, unsigned int speed, char name[BH_NAME_MAX], int *fd);

/* a small epoll loop: a callback per fd */
typedef void (*bh_loop_fn)(void *arg, int fd, uint32_t events);

struct bh_watch;

struct bh_loop {
	int epfd;
	int stop;
	struct bh_watch *watches;
};

int bh_loop_init(struct bh_loop *loop);
int bh_loop_add(struct bh_loop *loop, int fd, bh_loop_fn fn, void *arg);
int bh_loop_del(struct bh_loop *loop, int fd);
/* run until bh_loop_stop() or timeout_ms passes without events (-1: forever) */
int bh_loop_run(struct bh_loop *loop, int timeout_ms);
void bh_loop_stop(struct bh_loop *loop);
void bh_loop_fini(struct bh_loop *loop);

/* time in nanoseconds, CLOCK_MONOTONIC */
uint64_t bh_now_ns(void);
/*
 * The same clock at tick resolution (1-10 ms), for timeouts, heartbeats and
 * anything in a hot loop. Under TCG the guest's clocksource is the HPET: a
 * CLOCK_MONOTONIC read is a system call and an emulated register read under
 * QEMU's big lock, which the device models need too. The coarse clock comes
 * from the vDSO page.
 */
uint64_t bh_coarse_ns(void);
/*
 * TSC ticks per microsecond, measured against CLOCK_MONOTONIC over 20 ms
 * (sleeps): for per-request timings in a hot path (x86's rdtsc, no system
 * call), e.g. the ublk bridge's and the NVMe driver's statistics.
 */
double bh_tsc_per_us(void);

#endif
