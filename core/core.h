/* SPDX-License-Identifier: MIT */
/* core's state: the components it runs and the devices it owns for them. */
#ifndef BH_CORE_CORE_H
#define BH_CORE_CORE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend.h"
#include "cgroup.h"
#include "config.h"
#include "dma.h"
#include "logbuf.h"

#define BH_MAX_DEVICES 32
#define BH_MAX_DMA 64
#define BH_MAX_CONTROL 8
#define BH_MAX_SESSIONS 256 /* sessions core tracks at once, all servers together */
#define BH_SESSION_COST_MAX (64ull << 30) /* what a server may announce one session costs */
/*
 * What core does for one component: a request costs 1 (10 for one that
 * maps, routes or allocates); a component earns BH_REQUEST_RATE a second
 * and may save up BH_REQUEST_BURST. Beyond that core stops reading from it.
 */
#define BH_REQUEST_RATE 500
#define BH_REQUEST_BURST 1000
#define BH_REQUEST_HEAVY 10

/* what root asked of a component (core/admin.c) */
enum bh_admin {
	BH_ADMIN_NONE,
	BH_ADMIN_STOP,	  /* killed: stays down once it ended */
	BH_ADMIN_RESTART, /* killed: starts again at once once it ended */
	BH_ADMIN_STOPPED, /* down because root said so: no restart */
};

enum bh_state {
	BH_STOPPED,  /* not started yet */
	BH_RUNNING,
	BH_BACKOFF,  /* waiting to be restarted */
	BH_FAILED,   /* gave up: too many restarts, or it cannot start */
	BH_FINISHED, /* exited and its policy says stay down */
};

struct bh_component {
	const struct bh_component_config *cfg;
	int index;
	enum bh_state state;
	pid_t pid;
	int sock;
	int output;
	char outbuf[512];
	size_t outlen;
	uid_t uid;
	gid_t gid;
	int cgroup; /* its cgroup's directory (kept across restarts), or -1 */
	int devices[BH_MAX_DEVICES]; /* indexes into core.devices: its virtual bus */
	int ndevices;
	struct bh_domain domain;
	struct bh_dma_buf dma[BH_MAX_DMA];
	int ndma;
	uint64_t dma_bytes;
	unsigned int starts;
	unsigned int restarts;
	unsigned int failures_in_row;
	unsigned int denials;
	uint64_t started_ns;
	uint64_t restart_at_ns;
	uint64_t last_heartbeat_ns;
	char last_exit[96];
	char kill_reason[48]; /* why core killed it, if it did */
	int channel[BH_MAX_SERVICES]; /* core's end of each announced service's channel */
	int tap_fd;		      /* core's own reference: the interface outlives the bridge */
	unsigned int sessions; /* opened, as client; routed to it, as server */
	unsigned int iommu_faults;
	/* as a client: what its sessions cost it (core/account.c) */
	unsigned int open_sessions;
	uint64_t session_bytes;	       /* of session_memory */
	unsigned int session_failures; /* in a row: set-up failed, or dropped at once */
	uint64_t session_not_before_ns; /* its next session request waits until then */
	unsigned int session_delays;
	/* core reads nothing from it until held_until_ns: it asked too fast, or too often failed */
	bool held;
	uint64_t held_until_ns;
	bool parked; /* with a session request read and waiting */
	struct bh_msg parked_msg;
	uint64_t request_tat_ns; /* its request rate: when its account of requests is even */
	unsigned int throttled;	 /* times it was held for asking too fast */
	/* as a server: what it announced, and what its clients pay for */
	uint64_t session_cost[BH_MAX_SERVICES];
	unsigned int session_max[BH_MAX_SERVICES];
	unsigned int session_live[BH_MAX_SERVICES];
	uint64_t session_dma; /* of dma_bytes: charged to its clients */
	/* refusals of quota and requests (denials count those of policy) */
	unsigned int refusals;
	/* the log: a refusal said again and again is logged once, with a count */
	char last_refusal[BH_ERROR_MAX + 64];
	unsigned int refusal_repeats;
	uint64_t refusal_first_ns, refusal_last_ns;
	/* root's start/stop/restart/reload (core/admin.c) */
	enum bh_admin admin;
	bool reconfig; /* a reloaded section waits for the old process to end */
	bool removed;  /* reloaded config no longer has it */
	struct bh_logbuf log; /* what it wrote and what core said about it */
	/* its flight recorder (core/trace.c): core's mapping of the ring, and its crashes */
	struct bh_trace_header *trace;
	int trace_fd;
	unsigned int crashes;
	char last_crash[PATH_MAX + 32];
	/* a dynamic program, until it starts: its loader's openat listener (core/loader.c) */
	bool loading;
	int loader; /* -1 until the child sent it */
	unsigned int loader_opens;
	/* bulkhead debug (core/debug.c): the CLI's connection while gdb is attached, or -1 */
	int debug_fd;
	bool debug_stopped; /* the debugger holds it stopped: the watchdog waits */
};

/* one session core routed: who serves it, and who pays for it */
struct bh_session_rec {
	uint32_t id; /* 0: a free entry */
	int client;  /* component index; -1 once that client has ended */
	int server;
	int service;	   /* index into the server's provides */
	uint64_t reserved; /* the server's announced cost, held for the client */
	uint64_t charged;  /* DMA the server allocated for it so far */
	uint64_t opened_ns;
};

struct bh_core_state {
	struct bh_config cfg;
	const struct bh_backend_ops *backend;
	struct bh_device devices[BH_MAX_DEVICES];
	int ndevices;
	struct bh_component comp[BH_MAX_COMPONENTS];
	int ncomp;
	int epfd;
	int sigfd;
	int control_fd;
	int kmsg_fd;
	struct bh_cgroups cgroups;
	bool stopping;
	uint64_t start_ns;
	unsigned int protocol_errors;
	struct bh_session_rec session[BH_MAX_SESSIONS];
	uint32_t next_session_id;
};

/* core/log.c */
void bh_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * A refusal: the reply says why (status -err, the text in its error), the
 * component's denials (EACCES, policy) or refusals (the rest) count it, and
 * the log has it, but a text said again and again only once, with a count.
 * EAGAIN ("not yet, try again") is neither counted nor logged.
 */
void bh_refuse(struct bh_component *c, struct bh_msg *reply, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* the count of a repeated refusal, once it has gone quiet (or now, with force) */
void bh_refuse_flush(struct bh_component *c, bool force);

/* core/account.c: who pays for a session */
struct bh_session_rec *bh_account_open(struct bh_core_state *core, struct bh_component *client,
				       struct bh_component *server, int k, struct bh_msg *reply);
/* the routing failed after all: nothing was spent */
void bh_account_cancel(struct bh_core_state *core, struct bh_session_rec *r);
struct bh_session_rec *bh_account_find(struct bh_core_state *core, const struct bh_component *server,
				       uint32_t id);
/* may the server allocate size bytes of DMA for session id? 0, or -errno with reply set */
int bh_account_charge(struct bh_core_state *core, struct bh_component *server, uint32_t id,
		      uint64_t size, struct bh_msg *reply);
/* it did (buf->session says for which), or it freed it */
void bh_account_charged(struct bh_core_state *core, struct bh_component *server,
			struct bh_dma_buf *buf);
void bh_account_uncharge(struct bh_core_state *core, struct bh_component *server,
			 const struct bh_dma_buf *buf);
/*
 * memory for session id other than DMA (a driver VM's streams, core/vm_nic.c),
 * after bh_account_charge allowed it: the record holds it until the session ends
 */
void bh_account_charged_memory(struct bh_core_state *core, struct bh_component *server,
			       uint32_t id, uint64_t size);
/* the server says session id is over; flags: BH_SESSION_END_* */
void bh_account_end(struct bh_core_state *core, struct bh_component *server, uint32_t id,
		    uint32_t flags, struct bh_msg *reply);
/* a component ended: the sessions it served go, the ones it used are nobody's */
void bh_account_ended(struct bh_core_state *core, struct bh_component *c);
/* a server announced service k again: what was queued on the old channel is gone */
void bh_account_service_reset(struct bh_core_state *core, struct bh_component *server, int k);
/* how long the component's next session request must wait */
uint64_t bh_account_delay_ns(const struct bh_component *c, uint64_t now);

/* core/platform.c: resolve policies to devices and open them */
int bh_platform_init(struct bh_core_state *core, char *err, size_t err_len);
void bh_platform_fini(struct bh_core_state *core);
/* stop a device's interrupts (and core's watch on its unmask fd, if any) */
void bh_device_irq_close(struct bh_core_state *core, struct bh_device *dev);
/* uio: watch the driver's ack eventfd; unmask when it fires */
int bh_device_irq_watch_unmask(struct bh_core_state *core, struct bh_device *dev, int ack_fd);
void bh_device_irq_unmask(struct bh_core_state *core, struct bh_device *dev);

/* core/service.c: one request from a component */
void bh_service_request(struct bh_core_state *core, struct bh_component *c);
/* a held component's time is up: read from it again (and answer what waited) */
void bh_service_resume(struct bh_core_state *core, struct bh_component *c);

/* core/supervisor.c */
int bh_component_start(struct bh_core_state *core, struct bh_component *c);
void bh_component_reap(struct bh_core_state *core);
void bh_component_revoke(struct bh_core_state *core, struct bh_component *c);
void bh_component_output(struct bh_core_state *core, struct bh_component *c);
void bh_component_stop(struct bh_core_state *core, struct bh_component *c, const char *why);
/* start what is due; returns ms until the next deadline, or -1 */
int bh_supervisor_tick(struct bh_core_state *core);

/* core/session.c: routing sessions between components, and host endpoints */
void bh_session_announce(struct bh_core_state *core, struct bh_component *c,
			 const struct bh_session_info *in, struct bh_msg *reply, int *fd);
void bh_session_open(struct bh_core_state *core, struct bh_component *c,
		     const struct bh_session_info *in, struct bh_msg *reply, int *fd);
void bh_session_tap(struct bh_core_state *core, struct bh_component *c, struct bh_msg *reply,
		    int *fd);
void bh_session_nbd(struct bh_core_state *core, struct bh_component *c,
		    const struct bh_session_info *in, struct bh_msg *reply, int *fd);
/* a component ended: its announced channels go */
void bh_session_revoke(struct bh_core_state *core, struct bh_component *c);

/* core/iommu_fault.c: DMA the IOMMU blocked, from the kernel log */
int bh_iommu_fault_open(struct bh_core_state *core);
void bh_iommu_fault_read(struct bh_core_state *core);

/* core/control.c: the root-only status socket */
int bh_control_open(struct bh_core_state *core, char *err, size_t err_len);
void bh_control_accept(struct bh_core_state *core);
void bh_control_close(struct bh_core_state *core);
/* the peer of control connection fd is root */
bool bh_control_peer_root(int fd);

/* core/notify.c: a state line for systemd (sd_notify: "READY=1\nSTATUS=..."), if it asked */
void bh_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* core/debug.c: "debug NAME" (gdb attached by the CLI); 0 if core keeps fd */
int bh_debug_command(struct bh_core_state *core, int fd, const char *cmd);
/* the debugger's connection has something: its hang-up ends the session */
void bh_debug_event(struct bh_core_state *core, struct bh_component *c);
/* the session ends (the connection closed, the component ended) */
void bh_debug_end(struct bh_core_state *core, struct bh_component *c, const char *why);
/* does a debugger hold c stopped now? then the watchdog waits; *next: when to look again */
bool bh_debug_holds(struct bh_component *c, uint64_t now, int64_t *next);

/* core/admin.c: root's start, stop, restart and reload; the reply (one line) into out */
int bh_admin_command(struct bh_core_state *core, const char *cmd, char *out, size_t len);
struct bh_component *bh_admin_find(struct bh_core_state *core, const char *name);
/* "running", "backoff", ... or "removed" (by a reload) */
const char *bh_state_name(const struct bh_component *c);
/* the component ended: true if root's request decided what happens next */
bool bh_admin_ended(struct bh_core_state *core, struct bh_component *c);
/* two sections say the same, wherever they were written */
bool bh_reload_same(const struct bh_component_config *a, const struct bh_component_config *b);
/* what of new (old: NULL for an added one) only core's start can apply, or NULL */
const char *bh_reload_needs_core(const struct bh_component_config *old,
				 const struct bh_component_config *new);
/* a fresh component slot i for core->cfg.comp[i] */
void bh_component_init(struct bh_core_state *core, int i);
/* core/platform.c: take the devices a component added by a reload is granted */
int bh_platform_add(struct bh_core_state *core, struct bh_component *c);

/* core/complog.c: each component's log ring, and who follows it */
void bh_complog_attach(struct bh_core_state *core);
void bh_complog_output(struct bh_core_state *core, struct bh_component *c, const char *text);
/* "logs [NAME] [follow]" on the control socket fd; 0 if core keeps fd to follow */
int bh_complog_command(struct bh_core_state *core, int fd, const char *cmd);
/* log.c calls this with each line core logs, when set */
extern void (*bh_log_hook)(const char *line);
/* core/trace.c: the flight recorder's rings and crash reports */
struct bh_trace_header;
int bh_trace_start(struct bh_component *c);
/* a new fd of c's ring for its hello reply, or -1 */
int bh_trace_fd(const struct bh_component *c);
/* c ended with status (how: in words): a crash report if a signal nobody asked for ended it */
void bh_trace_ended(struct bh_core_state *core, struct bh_component *c, int status,
		    const char *how);
/* " trace=on accesses=N crashes=N crash=PATH" for its status line */
size_t bh_trace_describe(const struct bh_component *c, char *buf, size_t len);
/* "trace NAME [on|off]", "crashes" on the control socket: a reply in out, or 0 if sent */
size_t bh_trace_command(struct bh_core_state *core, int fd, const char *cmd, char *out,
			size_t len);
/* core/vm.c: driver VMs */
struct bh_spawn;
int bh_vm_spawn(struct bh_core_state *core, struct bh_component *c, struct bh_spawn *sp,
		char *err, size_t err_len);
void bh_vm_started(struct bh_core_state *core, struct bh_component *c);
/* the guest's serial line has something */
void bh_vm_channel(struct bh_core_state *core, struct bh_component *c);
/* the VM ended: take its devices back from the kernel so they can be reset */
void bh_vm_reacquire(struct bh_core_state *core, struct bh_component *c);
/* root's "sysrq VM KEY": the agent writes KEY to the guest's /proc/sysrq-trigger */
size_t bh_vm_sysrq(struct bh_core_state *core, struct bh_component *c, const char *key, char *out,
		   size_t len);
/* root's "probe-dma VM ADDR": the agent aims its NIC's DMA at ADDR, outside the guest */
size_t bh_vm_probe_dma(struct bh_core_state *core, struct bh_component *c, const char *addr,
		       char *out, size_t len);
/* its line for "bulkhead status", or nothing for other components */
size_t bh_vm_describe(const struct bh_component *c, char *buf, size_t len);

uint64_t bh_now_ns(void); /* lib/time.c */

/*
 * a dynamic component's loader (core/loader.c): expect its listener, take
 * it (the first datagram), answer it, end it
 */
void bh_loader_expect(struct bh_core_state *core, struct bh_component *c, bool dynamic);
void bh_loader_receive(struct bh_core_state *core, struct bh_component *c);
void bh_loader_answer(struct bh_core_state *core, struct bh_component *c);
void bh_loader_done(struct bh_core_state *core, struct bh_component *c);

/* epoll tags: what an fd is */
enum bh_tag_kind {
	BH_TAG_SIGNAL,
	BH_TAG_CONTROL,
	BH_TAG_SOCK,
	BH_TAG_OUTPUT,
	BH_TAG_UNMASK,
	BH_TAG_KMSG,
	BH_TAG_UBLK, /* core's ublk control ring: completions */
	BH_TAG_VM, /* a driver VM's serial line */
	BH_TAG_LOADER, /* a dynamic component's loader: its openat (core/loader.c) */
	BH_TAG_DEBUG, /* bulkhead debug's connection (core/debug.c) */
};
#define BH_TAG(kind, index) (((uint64_t)(kind) << 32) | (uint32_t)(index))

#endif
