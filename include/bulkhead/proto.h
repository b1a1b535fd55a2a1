/* SPDX-License-Identifier: MIT */
/*
 * The wire protocol between core and a component.
 *
 * One SOCK_SEQPACKET connection per component, on fd BH_CORE_FD. Every
 * request and every reply is exactly one struct bh_msg; capabilities (fds)
 * travel beside it as SCM_RIGHTS. Anything else (a short or long datagram,
 * a wrong magic or version, an unknown op, fds sent to core) is a protocol
 * violation: core closes that connection and keeps serving everyone else.
 */
#ifndef BULKHEAD_PROTO_H
#define BULKHEAD_PROTO_H

#include <stdint.h>

#define BH_PROTO_MAGIC 0x314b4842u /* "BHK1" little-endian */
#define BH_PROTO_VERSION 2
#define BH_CORE_FD 3 /* where a component finds its socket to core */

#define BH_NAME_MAX 32
#define BH_ERROR_MAX 192
#define BH_MAX_REGIONS 6 /* PCI BARs */
#define BH_MAX_FDS 8     /* fds in one reply */
#define BH_MAX_ISA 4     /* ISA port ranges per component */
#define BH_DEVICE_ISA 0xffffffffu
#define BH_SERVICE_MAX 16 /* service names: "nic", "block" */

enum bh_op {
	BH_OP_HELLO = 1,   /* -> bh_hello */
	BH_OP_DEVICE_INFO, /* device -> bh_device_info */
	BH_OP_ACQUIRE,     /* device */
	BH_OP_RELEASE,     /* device */
	BH_OP_IO_MEM,      /* device, index=bar -> fd, grant.size */
	BH_OP_IO_PORT,     /* device, index=bar -> fd; device=ISA: base, count */
	BH_OP_IRQ,         /* device, type, count -> count eventfds (+ unmask fd) */
	BH_OP_DMA_ALLOC,   /* device, size, limit -> memfd, grant.iova */
	BH_OP_DMA_FREE,    /* device, iova */
	BH_OP_HEARTBEAT,   /* nothing; tells the watchdog we are alive */
	BH_OP_ANNOUNCE,    /* server: name=service -> fd: the channel sessions arrive on */
	BH_OP_SESSION,     /* client: name=service -> fd: the session socket to the server;
			    * also what core sends on a server's channel, with the other end */
	BH_OP_TAP,         /* bridge: -> fd of the TAP interface the config names; name=ifname */
	BH_OP_NBD,         /* bridge: size, index=block size -> fd: socket /dev/nbdN serves on;
			    * name=device */
	BH_OP_SESSION_END, /* server: id, flags: that session is over; its client's quota
			    * comes back */
	BH_OP_OUTPUT,      /* bridge: -> fd of the file the config's 'output' names, opened
			    * anew and empty for each request; name=path */
	BH_OP_PTY,         /* bridge: -> fd of the pty master the config names; name=slave */
	BH_OP_LISTEN,      /* bridge: -> fd of the TCP socket listening where the config's
			    * 'listen' says; name=ADDR:PORT */
	BH_OP_LEGACY_MEM,  /* index=enum bh_legacy_kind -> sealed memfd copy, grant.size,
			    * grant.iova = its physical address (bulkhead/legacy.h) */
	BH_OP_UBLK,        /* bridge: /dev/ublkbN, in two steps (bulkhead/ublk.h) -> fd of
			    * /dev/ublkcN; name=device */
	BH_OP_USBIP,       /* bridge: block_size=speed -> fd: socket a vhci-hcd port speaks
			    * USB/IP on; name=the port */
	BH_OP_VM_NIC,      /* server: -> fd of the memory a driver VM shares with it (the config's
			    * vm_nic = VM; bulkhead/vm_nic.h); name=the VM */
	BH_OP_COUNT
};

enum bh_region_flags {
	BH_REGION_PRESENT = 1u << 0,
	BH_REGION_MMIO = 1u << 1,
	BH_REGION_IO = 1u << 2,
	BH_REGION_PREFETCH = 1u << 3,
};

enum bh_irq_type {
	BH_IRQ_INTX = 0,
	BH_IRQ_MSI = 1,
	BH_IRQ_MSIX = 2,
	BH_IRQ_TYPES
};

/* how an irq fd is acknowledged; see bh_irq_ack() */
enum bh_irq_ack {
	BH_ACK_NONE = 0,   /* edge (MSI/MSI-X): reading the eventfd is enough */
	BH_ACK_EVENTFD = 1, /* INTx via VFIO: write 1 to the unmask eventfd */
	BH_ACK_UIO = 2,     /* INTx via uio: the fd counts in 4 bytes; unmask as EVENTFD */
};

struct bh_region_info {
	uint64_t size;
	uint32_t flags; /* enum bh_region_flags */
	uint32_t reserved;
};

struct bh_device_info {
	char name[BH_NAME_MAX]; /* PCI address, "0000:00:03.0" */
	char class_name[16];    /* "ethernet", "nvme", ... or "other" */
	uint16_t vendor;
	uint16_t device;
	uint32_t class_code; /* 0xCCSSPP */
	uint32_t irq_count[BH_IRQ_TYPES];
	uint32_t acquired;
	uint32_t reserved;
	struct bh_region_info region[BH_MAX_REGIONS];
};

struct bh_isa_range {
	uint16_t base;
	uint16_t count;
};

struct bh_hello {
	char component[BH_NAME_MAX];
	uint32_t device_count;
	uint32_t isa_count;
	struct bh_isa_range isa[BH_MAX_ISA];
	uint32_t iommu; /* 1: DMA confined by the IOMMU; 0: physical addresses */
	uint32_t restarts;
};

struct bh_request {
	uint32_t device;
	uint32_t index; /* BAR, or irq type */
	uint32_t count; /* irq vectors, ISA port count */
	uint32_t base;  /* ISA port base */
	uint64_t size;  /* DMA size */
	uint64_t limit; /* DMA: highest usable device address + 1, 0 = any */
	uint64_t iova;  /* DMA free */
	uint32_t session; /* DMA alloc: for this session, charged to its client; 0: our own */
	uint32_t reserved;
};

/* a session that ended before its server set it up, or that its client dropped at once */
#define BH_SESSION_END_FAILED 1u

/* sessions: who asks for what */
struct bh_session_info {
	char service[BH_SERVICE_MAX];
	char client[BH_NAME_MAX]; /* the client component's label */
	char name[BH_NAME_MAX];	  /* TAP interface or nbd device; to a server: the route's
				   * argument from the client's config (its policy) */
	uint64_t size;		  /* NBD: export size */
	uint32_t block_size;	  /* NBD */
	uint32_t id;		  /* core's number for a session (to its server; SESSION_END) */
	uint64_t cost;		  /* ANNOUNCE: stream memory one session costs its client */
	uint32_t max_sessions;	  /* ANNOUNCE: sessions the server serves at once */
	uint32_t flags;		  /* SESSION_END: BH_SESSION_END_* */
};

struct bh_grant {
	uint64_t size;
	uint64_t iova;    /* DMA: the address the device uses */
	uint64_t offset;  /* mmap offset within the fd */
	uint32_t flags;   /* io_mem/io_port: region flags; irq: enum bh_irq_ack */
	uint32_t nfds;    /* fds attached */
};

struct bh_msg {
	uint32_t magic;
	uint16_t version;
	uint16_t op;
	uint32_t seq;
	int32_t status; /* reply: 0 or -errno */
	union {
		struct bh_request req;
		struct bh_hello hello;
		struct bh_device_info device;
		struct bh_grant grant;
		struct bh_session_info session;
		uint8_t raw[256];
	} u;
	char error[BH_ERROR_MAX]; /* reply with status < 0: what went wrong */
};

_Static_assert(sizeof(struct bh_msg) == 464, "wire format changed: bump BH_PROTO_VERSION");

#endif
