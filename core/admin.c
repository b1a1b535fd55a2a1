// SPDX-License-Identifier: MIT
/*
 * What root asks of core over the control socket, beyond status: start,
 * stop or restart one component, and reload the config, which starts,
 * stops or restarts exactly the components whose sections changed.
 *
 * Core stays single-threaded: a stop is a SIGKILL (as the watchdog's), and
 * what follows happens when the process has ended (bh_admin_ended), on the
 * same path as a crash: revocation, device reset, then a start at once.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "core.h"

/* the new sections of changed components, applied once the old process ended */
static struct bh_component_config staged[BH_MAX_COMPONENTS];
static struct bh_config next;

const char *bh_state_name(const struct bh_component *c)
{
	static const char *const names[] = {
	    [BH_STOPPED] = "stopped", [BH_RUNNING] = "running",	  [BH_BACKOFF] = "backoff",
	    [BH_FAILED] = "failed",   [BH_FINISHED] = "finished",
	};
	return c->removed ? "removed" : names[c->state];
}

struct bh_component *bh_admin_find(struct bh_core_state *core, const char *name)
{
	for (int i = 0; i < core->ncomp; i++)
		if (strcmp(core->comp[i].cfg->name, name) == 0)
			return &core->comp[i];
	return NULL;
}

static bool alive(const struct bh_component *c)
{
	return c->state == BH_RUNNING && c->pid > 0;
}

/* the process ends; bh_admin_ended does the rest */
static void take_down(struct bh_core_state *core, struct bh_component *c, enum bh_admin what,
		      const char *why)
{
	c->admin = what;
	bh_component_stop(core, c, why);
}

/* a component that is not running comes up now, with a fresh backoff */
static void bring_up(struct bh_core_state *core, struct bh_component *c)
{
	c->admin = BH_ADMIN_NONE;
	c->failures_in_row = 0;
	bh_component_start(core, c);
}

bool bh_admin_ended(struct bh_core_state *core, struct bh_component *c)
{
	enum bh_admin what = c->admin;

	if (what != BH_ADMIN_STOP && what != BH_ADMIN_RESTART)
		return false;
	c->admin = BH_ADMIN_NONE;
	if (c->reconfig) {
		core->cfg.comp[c->index] = staged[c->index];
		c->reconfig = false;
		bh_log("\"%s\": its new section from the reloaded config applies now",
		       c->cfg->name);
	}
	if (what == BH_ADMIN_STOP || core->stopping) {
		c->state = BH_FINISHED;
		c->admin = BH_ADMIN_STOPPED;
		return true;
	}
	/* the supervisor starts it at its next tick, as after a crash, but now */
	c->failures_in_row = 0;
	c->state = BH_BACKOFF;
	c->restart_at_ns = bh_now_ns();
	return true;
}

#define REPLY(...) snprintf(out, len, __VA_ARGS__)

static int one(struct bh_core_state *core, const char *verb, const char *name, char *out,
	       size_t len)
{
	struct bh_component *c = name[0] ? bh_admin_find(core, name) : NULL;

	if (!c || c->removed) {
		char names[BH_MAX_COMPONENTS * (BH_NAME_MAX + 1)] = "";
		for (int i = 0; i < core->ncomp; i++)
			if (!core->comp[i].removed)
				strncat(strncat(names, " ", sizeof(names) - strlen(names) - 1),
					core->comp[i].cfg->name, sizeof(names) - strlen(names) - 1);
		return REPLY("error unknown: no component '%s' in %s; there are:%s\n", name,
			     core->cfg.path, names[0] ? names : " none");
	}
	if (core->stopping)
		return REPLY("error refused: core is stopping\n");
	if (strcmp(verb, "stop") == 0) {
		if (alive(c)) {
			bh_log("\"%s\" (pid %d): stopping, as root asked", c->cfg->name, c->pid);
			take_down(core, c, BH_ADMIN_STOP, "stopped by bulkhead stop");
		} else if (c->state == BH_BACKOFF) {
			bh_log("\"%s\": stays down, as root asked (it was waiting to restart)",
			       c->cfg->name);
			c->state = BH_FINISHED;
			c->admin = BH_ADMIN_STOPPED;
		} else {
			return REPLY("ok %s is not running (%s)\n", name, bh_state_name(c));
		}
		return REPLY("ok stopping %s\n", name);
	}
	if (strcmp(verb, "start") == 0) {
		if (alive(c))
			return REPLY("ok %s is running already (pid %d)\n", name, c->pid);
		if (c->admin == BH_ADMIN_STOP || c->admin == BH_ADMIN_RESTART)
			return REPLY("error refused: %s is being stopped; try again\n", name);
		bh_log("\"%s\": starting, as root asked", c->cfg->name);
		bring_up(core, c);
		if (!alive(c))
			return REPLY("error failed: %s did not start: %s (see bulkhead logs %s)\n",
				     name, c->last_exit, name);
		return REPLY("ok started %s pid %d\n", name, c->pid);
	}
	/* restart */
	if (alive(c)) {
		bh_log("\"%s\" (pid %d): restarting, as root asked", c->cfg->name, c->pid);
		take_down(core, c, BH_ADMIN_RESTART, "restarted by bulkhead restart");
		return REPLY("ok restarting %s\n", name);
	}
	if (c->admin == BH_ADMIN_STOP || c->admin == BH_ADMIN_RESTART)
		return REPLY("error refused: %s is being stopped; try again\n", name);
	bh_log("\"%s\": starting, as root asked (it was %s)", c->cfg->name, bh_state_name(c));
	bring_up(core, c);
	return alive(c) ? REPLY("ok started %s pid %d\n", name, c->pid)
			: REPLY("error failed: %s did not start: %s\n", name, c->last_exit);
}

/* a section without what only tells where it was written */
static void unlined(struct bh_component_config *c)
{
	c->line = c->cpu_line = c->cpu_weight_line = c->vm.line = 0;
	for (int i = 0; i < BH_MAX_MATCH; i++)
		c->match[i].line = 0;
	for (int i = 0; i < BH_MAX_SERVICES; i++)
		c->routes[i].line = 0;
}

bool bh_reload_same(const struct bh_component_config *a, const struct bh_component_config *b)
{
	static struct bh_component_config x, y;

	x = *a;
	y = *b;
	unlined(&x);
	unlined(&y);
	return memcmp(&x, &y, sizeof(x)) == 0;
}

const char *bh_reload_needs_core(const struct bh_component_config *old,
				 const struct bh_component_config *new)
{
	static struct bh_component_config x, y;

	if (!old)
		return new->cpu_line || new->cpu_weight_line
			   ? "cpu limits (cgroups are made at core's start)"
			   : NULL;
	x = *old;
	y = *new;
	unlined(&x);
	unlined(&y);
	if (x.nmatch != y.nmatch || memcmp(x.match, y.match, sizeof(x.match)) != 0)
		return "its devices (core takes devices from the kernel at its start)";
	if (x.cpu_percent != y.cpu_percent || x.cpu_weight != y.cpu_weight)
		return "its cpu limits (cgroups are made at core's start)";
	return NULL;
}

static int reload(struct bh_core_state *core, char *out, size_t len)
{
	char err[1024];
	int changed[BH_MAX_COMPONENTS], nchanged = 0, added[BH_MAX_COMPONENTS], nadded = 0;
	int removed[BH_MAX_COMPONENTS], nremoved = 0;
	char list[3][BH_MAX_COMPONENTS * (BH_NAME_MAX + 1)] = {"", "", ""};

	if (core->stopping)
		return REPLY("error refused: core is stopping\n");
	if (bh_config_load(core->cfg.path, &next, err, sizeof(err)) < 0) {
		bh_log("reload: %s; nothing changed", err);
		return REPLY("error config: %s; nothing changed\n", err);
	}
	if (next.backend != core->cfg.backend || strcmp(next.control, core->cfg.control) != 0 ||
	    next.hugepages != core->cfg.hugepages) {
		bh_log("reload: the [core] section changed; nothing changed");
		return REPLY("error config: %s: the [core] section changed (backend, control or "
			     "hugepages): that needs core restarted; nothing changed\n",
			     core->cfg.path);
	}
	for (int i = 0; i < next.ncomp; i++) {
		const struct bh_component_config *nc = &next.comp[i];
		struct bh_component *c = bh_admin_find(core, nc->name);
		const char *why = bh_reload_needs_core(c ? c->cfg : NULL, nc);

		if (c && bh_reload_same(c->cfg, nc) && !c->removed)
			continue;
		if (why) {
			bh_log("reload: \"%s\" changed %s; nothing changed", nc->name, why);
			return REPLY(
			    "error config: %s:%d: [component \"%s\"] changed %s: that needs "
			    "core restarted; nothing changed\n",
			    next.path, nc->line, nc->name, why);
		}
		if (c)
			changed[nchanged++] = (int) (c - core->comp);
		else
			added[nadded++] = i;
	}
	for (int i = 0; i < core->ncomp; i++) {
		bool kept = false;
		for (int k = 0; k < next.ncomp; k++)
			kept |= strcmp(next.comp[k].name, core->comp[i].cfg->name) == 0;
		if (!kept && !core->comp[i].removed)
			removed[nremoved++] = i;
	}
	if (core->ncomp + nadded > BH_MAX_COMPONENTS)
		return REPLY("error config: %s: %d components, core holds at most %d; nothing "
			     "changed\n",
			     next.path, core->ncomp + nadded, BH_MAX_COMPONENTS);
	/* the checks are done: from here on it happens */
	for (int k = 0; k < nchanged; k++) {
		struct bh_component *c = &core->comp[changed[k]];
		const struct bh_component_config *nc = NULL;

		for (int i = 0; i < next.ncomp; i++)
			if (strcmp(next.comp[i].name, c->cfg->name) == 0)
				nc = &next.comp[i];
		strncat(strncat(list[0], " ", sizeof(list[0]) - strlen(list[0]) - 1), nc->name,
			sizeof(list[0]) - strlen(list[0]) - 1);
		staged[c->index] = *nc;
		c->reconfig = true;
		c->removed = false;
		if (alive(c)) {
			bh_log("reload: \"%s\" changed: restarting it (pid %d)", nc->name, c->pid);
			take_down(core, c, BH_ADMIN_RESTART, "restarted by bulkhead reload");
		} else if (c->admin == BH_ADMIN_STOP || c->admin == BH_ADMIN_RESTART) {
			/* ending now: bh_admin_ended applies the staged section */
		} else if (c->admin == BH_ADMIN_STOPPED) {
			/* root stopped it: it takes the new section and stays down */
			c->admin = BH_ADMIN_STOP;
			bh_admin_ended(core, c);
		} else {
			c->admin = BH_ADMIN_RESTART;
			bh_admin_ended(core, c);
		}
	}
	for (int k = 0; k < nadded; k++) {
		struct bh_component *c = &core->comp[core->ncomp];

		core->cfg.comp[core->ncomp] = next.comp[added[k]];
		core->cfg.ncomp = core->ncomp + 1;
		bh_component_init(core, core->ncomp++);
		c->cgroup = -1;
		strncat(strncat(list[1], " ", sizeof(list[1]) - strlen(list[1]) - 1), c->cfg->name,
			sizeof(list[1]) - strlen(list[1]) - 1);
		bh_log("reload: \"%s\" added", c->cfg->name);
		if (c->cfg->nmatch && bh_platform_add(core, c) < 0)
			bh_log("reload: \"%s\": its devices could not be taken (see above)",
			       c->cfg->name);
		bh_component_start(core, c);
	}
	for (int k = 0; k < nremoved; k++) {
		struct bh_component *c = &core->comp[removed[k]];

		strncat(strncat(list[2], " ", sizeof(list[2]) - strlen(list[2]) - 1), c->cfg->name,
			sizeof(list[2]) - strlen(list[2]) - 1);
		bh_log("reload: \"%s\" is not in the config any more: stopping it", c->cfg->name);
		if (alive(c))
			take_down(core, c, BH_ADMIN_STOP, "removed by bulkhead reload");
		else
			c->state = BH_FINISHED;
		c->removed = true;
	}
	bh_log("reload: %d changed, %d added, %d removed, %d kept running", nchanged, nadded,
	       nremoved, core->ncomp - nchanged - nadded - nremoved);
	return REPLY("ok reloaded %s: restarted:%s added:%s removed:%s\n", core->cfg.path,
		     list[0][0] ? list[0] : " -", list[1][0] ? list[1] : " -",
		     list[2][0] ? list[2] : " -");
}

int bh_admin_command(struct bh_core_state *core, const char *cmd, char *out, size_t len)
{
	char verb[16] = "", name[BH_NAME_MAX + 1] = "", arg[24] = "";

	if (sscanf(cmd, "%15s %32s %23s", verb, name, arg) < 1)
		return REPLY("error usage: empty command\n");
	if (strcmp(verb, "reload") == 0) {
		int n;

		bh_notify("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading %s",
			  (unsigned long long)(bh_now_ns() / 1000), core->cfg.path);
		n = reload(core, out, len);
		/* systemd shows the outcome: "ok reloaded ..." or "error config: ..." */
		bh_notify("READY=1\nSTATUS=%.*s", (int)strcspn(out, "\n"), out);
		return n;
	}
	if (strcmp(verb, "sysrq") == 0)
		return (int)bh_vm_sysrq(core, bh_admin_find(core, name), arg, out, len);
	if (strcmp(verb, "probe-dma") == 0)
		return (int)bh_vm_probe_dma(core, bh_admin_find(core, name), arg, out, len);
	return one(core, verb, name, out, len);
}
