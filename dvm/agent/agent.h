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

#endif
