/* SPDX-License-Identifier: MIT */
/* The driver VM's agent: its parts (agent.c, channel.c). */
#ifndef BH_AGENT_H
#define BH_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* one line of /sys/class/net/IF/ATTR into buf, "" if there is none */
void net_attr(const char *ifname, const char *attr, char *buf, size_t len);
/* the name of the driver bound to the interface's device, "?" if none */
const char *if_driver(const char *ifname);

/*
 * Core's words on the console (our stdin): "bulkhead-sysrq KEY" writes KEY
 * to /proc/sysrq-trigger. Reads what is there without waiting.
 */
void console_commands(void);

/*
 * The NIC channel to the host (bulkhead/vm_nic.h), if core gave the VM one:
 * 1 when it is set up on ifname, 0 when there is no channel device, -1 on
 * failure (said on the console)
 */
int channel_open(const char *ifname);
/* the interface was made anew (probe-dma): the channel's frames go through it; -1 on failure */
int channel_rebind(const char *ifname);
/*
 * The confinement probe (probe.c): Linux's e1000e steps aside, ifname's
 * device fetches a transmit descriptor from guest-physical addr (outside
 * the guest's RAM), the driver takes it back; newif: its new interface
 */
int probe_dma(const char *ifname, uint64_t addr, char *newif, size_t len);
/* move frames for ever; each_second is called once a second */
void channel_run(void (*each_second)(void)) __attribute__((noreturn));
/* the channel's state and counters, for the alive line */
void channel_counters(char *buf, size_t len);

/* the channels' polling: every 100 us after work, every 1 ms after that, then sleep */
#define BUSY_NS (20ull * 1000000ull)
#define AWAKE_NS (500ull * 1000000ull)
#define POLL_BUSY_NS 100000l
#define POLL_IDLE_NS 1000000l

/* what each channel keeps of its ivshmem-doorbell device */
struct agent_chan {
	uint8_t *mem;
	size_t size;
	bool attached;
	uint32_t epoch;
	char pci[32];
	volatile uint32_t *regs; /* BAR 0: the doorbell */
	int wake;		 /* the wake-up line, or -1: we poll */
};

/* a channel's counter, for its part of the alive line */
struct counter {
	const char *name;
	unsigned long long value;
};
/* " WHAT epoch=E open|waiting NAME=VALUE ...[ polling]": a channel's part of the alive line */
void counters_line(char *buf, size_t len, const char *what, uint32_t epoch, bool open,
		   const struct counter *c, size_t n, bool polling);

/* ivshmem.c: the channels' devices */
/* the ivshmem-doorbell device whose memory is size bytes: its PCI address in pci */
bool ivshmem_find(uint64_t size, char *pci, size_t len);
/* its memory (BAR 2) mapped, size in *size; NULL on failure (said, naming what) */
void *ivshmem_map(const char *pci, size_t *size, const char *what);
/* its doorbell (BAR 0) and our wake-up line (a tty, raw); false if not (we poll then) */
bool ivshmem_bells(const char *pci, const char *line, const char *what,
		   volatile uint32_t **regs, int *wake);
/* the host woke us on the line: how many reads it took to drain */
unsigned long ivshmem_woken(int wake);
/* we published: ring the host's doorbell if it sleeps; true if we did */
bool ivshmem_ring(volatile uint32_t *regs, const uint32_t *host_sleeping);
/* a sysfs or procfs switch on */
void set_one(const char *path);

/*
 * The block channel (bulkhead/vm_blk.h), if core gave the VM one: 1 when
 * it serves the guest's first disk, 0 when there is no such device, -1 on
 * failure (said on the console). Waits up to a while for the disk.
 */
int block_open(void);
/* serve it from a thread of its own; 0 or -errno */
int block_start(void);
/* the disk's name and geometry, for the ready line; the counters, for the alive line */
void block_describe(char *buf, size_t len);
void block_counters(char *buf, size_t len);

#endif
