/* SPDX-License-Identifier: MIT */
/* Each component's cgroup (v2): its CPU weight and limit, and the CPU time it used. */
#ifndef BH_CORE_CGROUP_H
#define BH_CORE_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BH_CGROUP_MOUNT "/sys/fs/cgroup"
#define BH_CGROUP_TOP "bulkhead" /* under the root, when core sits in the root cgroup */
#define BH_CGROUP_CORE "core"	 /* core's own leaf, when it sits in a cgroup of its own */
#define BH_CPU_PERIOD_US 100000	 /* cpu.max's period: cpu = 50% is 50000 of these 100000 us */

struct bh_core_state;
struct bh_component;

struct bh_cgroups {
	char path[PATH_MAX]; /* the components' cgroups are path/NAME; "" without cgroups */
	bool moved;	     /* core moved itself from path into path/core */
	char enabled[64];    /* controllers core enabled in path's cgroup.subtree_control */
};

/*
 * Find core's cgroup and make one per component, with its cpu.weight and
 * cpu.max. Without cgroup v2 or its cpu controller, core logs one warning
 * and runs without them (every c->cgroup is then -1), unless the config sets
 * cpu or cpu_weight: then -ENOTSUP with "file:line: ..." in err.
 */
int bh_cgroup_init(struct bh_core_state *core, char *err, size_t err_len);
/* remove the cgroups core made; call when no component runs any more */
void bh_cgroup_fini(struct bh_core_state *core);
/* status fields " cpu_ms=N cpu_weight=N cpu_max=N%|max", each "-" without a cgroup */
void bh_cgroup_describe(const struct bh_component *c, char *buf, size_t len);

/* the pure parts, for the unit tests */
/* /proc/self/cgroup's "0::/path" line -> "/path" */
int bh_cgroup_parse_self(const char *text, char *path, size_t len);
/* a /proc/self/mountinfo line: true, with its mount point, if it mounts cgroup2 */
bool bh_cgroup_mount_line(const char *line, char *mnt, size_t len);
/* cpu = N% -> cpu.max's "quota period", or "max period" for 0 */
void bh_cgroup_cpu_max(uint32_t percent, char *buf, size_t len);
/* cpu.stat's usage_usec, or -1 */
int64_t bh_cgroup_parse_usage(const char *text);

#endif
