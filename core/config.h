/* SPDX-License-Identifier: MIT */
/* The system config: which components run, what hardware each may have. */
#ifndef BH_CORE_CONFIG_H
#define BH_CORE_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bulkhead/proto.h"
#include "vm.h"

#define BH_MAX_COMPONENTS 24
/* [core] hugepages = N: at most 64 GiB of 2 MiB pages */
#define BH_HUGEPAGES_MAX 32768
#define BH_MAX_MATCH 8
#define BH_MAX_ARGS 16
#define BH_MAX_ENV 16
#define BH_ARG_MAX 256
#define BH_MAX_SERVICES 4
/* what a client may spend on sessions, unless its section says otherwise */
#define BH_SESSIONS_DEFAULT 4
#define BH_SESSIONS_MAX 256
#define BH_SESSION_MEMORY_DEFAULT (64ull << 20)
/* cgroup v2's cpu.weight range, and cpu = N% up to a hundred CPUs */
#define BH_CPU_WEIGHT_DEFAULT 100
#define BH_CPU_WEIGHT_MAX 10000
#define BH_CPU_PERCENT_MAX 10000

enum bh_backend { BH_BACKEND_AUTO, BH_BACKEND_VFIO, BH_BACKEND_UIO };
enum bh_restart { BH_RESTART_NEVER, BH_RESTART_ON_FAILURE, BH_RESTART_ALWAYS };
enum bh_match_kind { BH_MATCH_CLASS, BH_MATCH_ID, BH_MATCH_ADDRESS };

/* one "device = ..." line of a policy */
struct bh_match {
	enum bh_match_kind kind;
	uint32_t class_code; /* CLASS: compared under class_mask */
	uint32_t class_mask;
	uint16_t vendor; /* ID */
	uint16_t device;
	char address[16]; /* ADDRESS: "0000:00:03.0" */
	bool take_from_host; /* ADDRESS only: may take a device the host uses */
	int line;
};

/*
 * "session = nic e1000e": this client's nic sessions go to component e1000e;
 * "session = usb xhci 08e6:4433": and the server learns the client's policy
 */
struct bh_route {
	char service[BH_SERVICE_MAX];
	char server[BH_NAME_MAX];
	char arg[BH_NAME_MAX]; /* passed to the server with each session request, or "" */
	int line;
};

struct bh_component_config {
	char name[BH_NAME_MAX];
	char exec[PATH_MAX];
	char argv[BH_MAX_ARGS][BH_ARG_MAX];
	int argc;
	char env[BH_MAX_ENV][BH_ARG_MAX];
	int envc;
	struct bh_match match[BH_MAX_MATCH];
	int nmatch;
	struct bh_isa_range isa[BH_MAX_ISA];
	int nisa;
	enum bh_restart restart;
	bool uid_auto;
	uid_t uid;
	gid_t gid;
	uint64_t limit_memory; /* bytes of address space, RLIMIT_AS */
	uint32_t limit_fds;
	uint32_t limit_procs;
	uint64_t dma_quota; /* bytes of DMA memory */
	uint32_t sessions;	 /* sessions it may hold open at once, as a client */
	uint64_t session_memory; /* stream memory its servers may spend on its sessions */
	uint32_t max_restarts;
	uint32_t backoff_ms;
	uint32_t backoff_max_ms;
	uint32_t watchdog_ms; /* 0: no heartbeat required */
	uint32_t cpu_percent; /* cpu = N%: at most N% of one CPU (cgroup cpu.max); 0: no limit */
	uint32_t cpu_weight;  /* its share against the others when CPU is short (cpu.weight) */
	int cpu_line;	      /* where cpu = N% was set, or 0; it needs cgroups */
	int cpu_weight_line;  /* where cpu_weight was set, or 0; it needs cgroups */
	char provides[BH_MAX_SERVICES][BH_SERVICE_MAX]; /* services it may announce */
	int nprovides;
	struct bh_route routes[BH_MAX_SERVICES];
	int nroutes;
	char tap[16]; /* TAP interface core creates and hands over, or "" */
	int nbd;      /* /dev/nbdN core connects for it, or -1 */
	char output[256]; /* file core opens for it to write (core/output.c), or "" */
	char pty[16]; /* pty core creates and hands over (/run/bulkhead/pty/NAME), or "" */
	char listen[32]; /* ADDR:PORT core listens on for it (core/listen.c), or "" */
	uint32_t legacy; /* legacy memory copies it may have: 1 << enum bh_legacy_kind */
	int ublk;     /* /dev/ublkbN core adds for it (core/ublk.c), or -1 */
	uint32_t ublk_queues; /* its hardware queues, one thread each (1-16, default 1) */
	bool usbip;   /* core attaches a vhci-hcd port for it (core/usbip.c) */
	struct bh_vm_config vm; /* kind = vm: a driver VM (core/vm.c) */
	int line;
	bool trace_off; /* trace = off: its flight recorder starts switched off (core/trace.c) */
};

struct bh_config {
	char path[PATH_MAX];
	enum bh_backend backend;
	char control[PATH_MAX];
	unsigned int hugepages; /* 2 MiB pages core keeps free for DMA buffers */
	char crashes[PATH_MAX]; /* where crash reports go (core/trace.c) */
	struct bh_component_config comp[BH_MAX_COMPONENTS];
	int ncomp;
};

/* 0, or -errno with "file:line: what is wrong (how to fix)" in err */
int bh_config_load(const char *path, struct bh_config *cfg, char *err, size_t err_len);
int bh_config_parse_string(const char *text, const char *name, struct bh_config *cfg, char *err,
			   size_t err_len);

/* PCI class names usable in policies, "ethernet" -> 0x020000/0xffff00 */
int bh_class_lookup(const char *name, uint32_t *code, uint32_t *mask);
const char *bh_class_name(uint32_t class_code);

const char *bh_restart_name(enum bh_restart r);

/* "64M", "4096", "1G" -> bytes; 0 or -EINVAL */
int bh_config_size(const char *s, uint64_t *out);

#endif
