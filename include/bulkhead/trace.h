/* SPDX-License-Identifier: MIT */
/*
 * The flight recorder: every register access a component makes through
 * libbulkhead's accessors (bh_read32, bh_outb, ...) and every interrupt it
 * takes, in a ring in a memfd core created and handed over with the hello
 * reply. Core keeps its own mapping, so the ring outlives the component:
 * when it dies, core copies the ring into a crash report, and `bulkhead
 * trace NAME` reads the same ring live.
 *
 * The memfd holds a header (switch, head, the regions mapped, the register
 * names the driver declared, the crash record its signal handler wrote) at
 * offset 0 and BH_TRACE_ENTRIES entries at BH_TRACE_RING. One writer: the
 * component. Readers trust nothing in it: every index is masked, every
 * name checked, every count bounded.
 */
#ifndef BULKHEAD_TRACE_H
#define BULKHEAD_TRACE_H

#include <stddef.h>
#include <stdint.h>

#define BH_TRACE_MAGIC 0x31435254u /* "TRC1" */
#define BH_TRACE_VERSION 1
#define BH_TRACE_ENTRIES 4096u /* a power of two */
#define BH_TRACE_REGIONS 16
#define BH_TRACE_NAMES 256
#define BH_TRACE_NAME_MAX 24
#define BH_TRACE_FRAMES 32
#define BH_TRACE_RING 16384u /* where the entries start */
#define BH_TRACE_SIZE (BH_TRACE_RING + BH_TRACE_ENTRIES * sizeof(struct bh_trace_entry))

enum bh_trace_kind {
	BH_TRACE_READ = 1,
	BH_TRACE_WRITE = 2,
	BH_TRACE_IRQ = 3, /* an interrupt taken: offset = vector, value = events */
	BH_TRACE_DMA_MAP = 4,	/* a DMA buffer granted: offset = KiB, value = device address */
	BH_TRACE_DMA_UNMAP = 5, /* and given back */
	/* sessions: value holds up to 8 bytes of a name (NUL-padded) */
	BH_TRACE_SESSION_OPEN = 6,   /* a client opened one: value = the service */
	BH_TRACE_SESSION_ACCEPT = 7, /* a server took one: offset = its id, value = the client */
	BH_TRACE_SESSION_END = 8,    /* a server ended one: offset = its id, value = flags */
};

/* one access: 24 bytes */
struct bh_trace_entry {
	uint64_t ns;	 /* CLOCK_MONOTONIC_COARSE at the last wake-up or within 64 accesses:
			  * order comes from the index, this says roughly when */
	uint64_t value;
	uint32_t offset; /* within the region */
	uint16_t region; /* index into the header's regions; 0: none declared */
	uint8_t width;	 /* bytes: 1, 2, 4, 8 */
	uint8_t kind;	 /* enum bh_trace_kind */
};

enum bh_trace_space { BH_TRACE_MMIO = 1, BH_TRACE_PORT = 2, BH_TRACE_ISA = 3 };

/* a register BAR or port range the component mapped */
struct bh_trace_region {
	uint8_t space; /* enum bh_trace_space; 0: unused */
	uint8_t bar;
	uint16_t reserved;
	uint32_t device; /* index on its platform bus, or the ISA base */
	uint64_t size;
};

/* a register name the driver declared (bh_mmio_names) */
struct bh_trace_name {
	uint16_t region;
	uint8_t width;
	uint8_t reserved;
	uint32_t offset;
	char name[BH_TRACE_NAME_MAX];
};

/* what the component's handler for SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT wrote */
struct bh_trace_crash {
	uint32_t signal;
	int32_t code; /* si_code */
	uint64_t addr; /* si_addr: the faulting address */
	uint64_t pc, sp, bp;
	uint64_t ehdr; /* where its ELF header is mapped: the load bias of a PIE */
	uint32_t nframes;
	uint32_t reserved;
	uint64_t frame[BH_TRACE_FRAMES]; /* backtrace(): the handler, the signal frame, then the fault */
};

struct bh_trace_header {
	uint32_t magic;
	uint32_t version;
	uint32_t on;	  /* core's switch: record while non-zero (config 'trace', bulkhead trace --on/--off) */
	uint32_t entries; /* BH_TRACE_ENTRIES */
	uint64_t head;	  /* entries ever written: the next goes to ring[head % entries] */
	uint32_t nregions;
	uint32_t nnames;
	uint32_t crashed; /* 1 once crash holds a record */
	uint32_t reserved;
	struct bh_trace_region region[BH_TRACE_REGIONS];
	struct bh_trace_name name[BH_TRACE_NAMES];
	struct bh_trace_crash crash;
};

_Static_assert(sizeof(struct bh_trace_entry) == 24, "trace entry layout changed");
_Static_assert(sizeof(struct bh_trace_header) <= BH_TRACE_RING, "trace header too big");

static inline struct bh_trace_entry *bh_trace_ring(const void *base)
{
	return (struct bh_trace_entry *)((uint8_t *)base + BH_TRACE_RING);
}

/*
 * A crash report, as core writes it under its 'crashes' directory
 * (NAME.K.crash): this header, then the ring's memfd as it was at the end.
 */
#define BH_CRASH_MAGIC 0x52434842u /* "BHCR" */
#define BH_CRASH_VERSION 1

struct bh_crash_file {
	uint32_t magic;
	uint32_t version;
	char component[32];
	char exec[512];
	char how[96]; /* "killed by SIGSEGV", "killed by SIGKILL: watchdog" */
	int32_t pid;
	int32_t status; /* waitpid's */
	uint32_t restarts;
	uint32_t reserved;
	int64_t time; /* when it ended, seconds since the epoch */
	uint64_t ring_size;
};

/* a driver's register names, for traces and crash reports: { EDU_STATUS, 4, "STATUS" } */
struct bh_reg_name {
	uint32_t offset;
	uint8_t width;
	const char *name;
};
/* a name from the macro that holds the offset: BH_REG(EDU_STATUS, 4) */
#define BH_REG(off, width) { (off), (width), #off }

/* a session event (what the recorder's switch allows): name's first 8 bytes go in value */
void bh_trace_session(unsigned int kind, uint32_t id, const char *name, uint64_t value);
/* the component woke up (an interrupt, a poll, a heartbeat): entries take the time anew */
void bh_trace_tick(void);
/* libbulkhead's own: the ring from the hello reply, and each BAR or port range mapped */
int bh_trace_attach(int fd);
uint16_t bh_trace_region(enum bh_trace_space space, uint32_t device, uint32_t bar, uint64_t size);

#endif
