/* SPDX-License-Identifier: MIT */
/* core's state: the components it runs and the devices it owns for them. */
#ifndef BH_CORE_CORE_H
#define BH_CORE_CORE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend.h"
#include "cgroup.h"
#include "config.h"
#include "dma.h"

#define BH_MAX_DEVICES 32
#define BH_MAX_DMA 64
#define BH_MAX_CONTROL 8

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
	unsigned int sessions;
	unsigned int iommu_faults;
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
};

/* core/log.c */
void bh_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

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

uint64_t bh_now_ns(void); /* lib/time.c */

/* epoll tags: what an fd is */
enum bh_tag_kind {
	BH_TAG_SIGNAL,
	BH_TAG_CONTROL,
	BH_TAG_SOCK,
	BH_TAG_OUTPUT,
	BH_TAG_UNMASK,
	BH_TAG_KMSG,
};
#define BH_TAG(kind, index) (((uint64_t)(kind) << 32) | (uint32_t)(index))

#endif
