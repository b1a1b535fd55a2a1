// SPDX-License-Identifier: MIT
/*
 * The system config, a git-config-like file parsed by libinih:
 *
 *   [core]
 *   backend = auto
 *   [component "edu"]
 *   exec = ../build/drivers/edu/bulkhead-edu
 *   device = 1234:11e8
 *
 * Every mistake is reported as "file:line: what is wrong" with the fix.
 */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <libgen.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "legacy.h"
#include "listen.h"
#include "output.h"

struct parse {
	struct bh_config *cfg;
	struct bh_component_config *comp; /* the section being read, or NULL for [core] */
	int line;
	bool failed;
	char *err;
	size_t err_len;
	const char *file;
	char section[64]; /* inih tells sections only with their keys */
	char dir[PATH_MAX]; /* relative exec paths are relative to the config's directory */
};

static const struct {
	const char *name;
	uint32_t code;
	uint32_t mask;
} classes[] = {
	{ "nvme", 0x010802, 0xffffff },	    { "storage", 0x010000, 0xff0000 },
	{ "ethernet", 0x020000, 0xffff00 }, { "network", 0x020000, 0xff0000 },
	{ "vga", 0x030000, 0xffff00 },	    { "display", 0x030000, 0xff0000 },
	{ "multimedia", 0x040000, 0xff0000 }, { "bridge", 0x060000, 0xff0000 },
	{ "serial", 0x070000, 0xffff00 },   { "communication", 0x070000, 0xff0000 },
	{ "system", 0x080000, 0xff0000 },   { "usb", 0x0c0300, 0xffff00 },
	{ "smbus", 0x0c0500, 0xffff00 },    { "other", 0xff0000, 0xff0000 },
};

int bh_class_lookup(const char *name, uint32_t *code, uint32_t *mask)
{
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
		if (strcmp(classes[i].name, name) == 0) {
			*code = classes[i].code;
			*mask = classes[i].mask;
			return 0;
		}
	}
	return -ENOENT;
}

const char *bh_class_name(uint32_t class_code)
{
	/* the table lists specific classes before general ones */
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
		if ((class_code & classes[i].mask) == classes[i].code)
			return classes[i].name;
	return "unclassified";
}

const char *bh_restart_name(enum bh_restart r)
{
	switch (r) {
	case BH_RESTART_NEVER:
		return "never";
	case BH_RESTART_ON_FAILURE:
		return "on-failure";
	case BH_RESTART_ALWAYS:
		return "always";
	}
	return "?";
}

__attribute__((format(printf, 2, 3))) static int fail(struct parse *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->failed)
		return 0;
	p->failed = true;
	n = snprintf(p->err, p->err_len, "%s:%d: ", p->file, p->line);
	if (n < 0 || (size_t)n >= p->err_len)
		return 0;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->err_len - n, fmt, ap);
	va_end(ap);
	return 0; /* inih: stop treating this line as valid */
}

/* decimal, or hex with 0x; never octal, so "010" means ten */
static int number_base(const char *s)
{
	return (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) ? 16 : 10;
}

/* "64M", "4096", "1G" -> bytes */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	unsigned int shift = 0;

	errno = 0;
	v = strtoull(s, &end, number_base(s));
	if (errno || end == s || s[0] == '-')
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case 'G':
		shift = 30;
		break;
	case 'M':
		shift = 20;
		break;
	case 'K':
		shift = 10;
		break;
	}
	if (shift)
		end++;
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -EINVAL;
	v <<= shift;
	*out = v;
	return 0;
}

static int parse_u32(const char *s, uint32_t *out)
{
	uint64_t v;

	if (parse_size(s, &v) || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static bool is_pci_address(const char *s)
{
	unsigned int d, b, sl, f;
	int n = 0;

	return sscanf(s, "%4x:%2x:%2x.%1x%n", &d, &b, &sl, &f, &n) == 4 && n == 12 && !s[n] &&
	       sl < 32 && f < 8;
}

static int parse_device(struct parse *p, const char *value)
{
	struct bh_component_config *c = p->comp;
	char what[64], extra[32] = "";
	struct bh_match *m;
	unsigned int v, d;
	int n = 0;

	if (c->nmatch >= BH_MAX_MATCH)
		return fail(p, "more than %d device lines in [component \"%s\"]", BH_MAX_MATCH,
			    c->name);
	if (sscanf(value, "%63s %31s %n", what, extra, &n) < 1 || (n && value[n]))
		return fail(p, "device = '%s': expected a class name, vendor:device, or a PCI "
			       "address, e.g. 'ethernet', '8086:10d3' or '0000:00:03.0'",
			    value);
	m = &c->match[c->nmatch];
	memset(m, 0, sizeof(*m));
	m->line = p->line;
	if (is_pci_address(what)) {
		m->kind = BH_MATCH_ADDRESS;
		snprintf(m->address, sizeof(m->address), "%s", what);
		for (char *q = m->address; *q; q++)
			*q = (char)tolower((unsigned char)*q);
		if (extra[0]) {
			if (strcmp(extra, "take-from-host") != 0)
				return fail(p, "device = '%s': unknown flag '%s'; the only flag is "
					       "'take-from-host'",
					    value, extra);
			m->take_from_host = true;
		}
	} else if (sscanf(what, "%4x:%4x%n", &v, &d, &n) == 2 && !what[n] && n == 9) {
		m->kind = BH_MATCH_ID;
		m->vendor = (uint16_t)v;
		m->device = (uint16_t)d;
	} else if (bh_class_lookup(what, &m->class_code, &m->class_mask) == 0) {
		m->kind = BH_MATCH_CLASS;
	} else {
		char known[256] = "";
		for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
			strncat(known, classes[i].name, sizeof(known) - strlen(known) - 2);
			strncat(known, " ", sizeof(known) - strlen(known) - 1);
		}
		return fail(p, "device = '%s': not a PCI address (0000:00:03.0), vendor:device "
			       "(8086:10d3) or class name (%s)",
			    what, known);
	}
	if (extra[0] && m->kind != BH_MATCH_ADDRESS)
		return fail(p, "device = '%s': '%s' is only allowed with a PCI address, so a "
			       "policy by class or id never takes a device the host is using",
			    value, extra);
	c->nmatch++;
	return 1;
}

static int parse_ioport(struct parse *p, const char *value)
{
	struct bh_component_config *c = p->comp;
	unsigned long lo, hi;
	char *end;

	if (c->nisa >= BH_MAX_ISA)
		return fail(p, "more than %d ioport lines in [component \"%s\"]", BH_MAX_ISA,
			    c->name);
	errno = 0;
	lo = strtoul(value, &end, number_base(value));
	hi = lo;
	if (end != value && *end == '-') {
		const char *second = end + 1;
		hi = strtoul(second, &end, number_base(second));
		if (end == second)
			end = (char *)value; /* "0x40-": no upper end */
	}
	if (errno || *end || end == value || hi < lo || hi > 0xffff || hi - lo + 1 > 0xffff)
		return fail(p, "ioport = '%s': expected a port or a range like 0x40-0x43 "
			       "(ports go up to 0xffff; at most 65535 in one range)",
			    value);
	c->isa[c->nisa].base = (uint16_t)lo;
	c->isa[c->nisa].count = (uint16_t)(hi - lo + 1);
	c->nisa++;
	return 1;
}

static int parse_user(struct parse *p, const char *value)
{
	struct bh_component_config *c = p->comp;
	struct passwd *pw;
	char *end;
	unsigned long v;

	if (strcmp(value, "auto") == 0) {
		c->uid_auto = true;
		return 1;
	}
	c->uid_auto = false;
	errno = 0;
	v = strtoul(value, &end, 10);
	if (!errno && !*end && end != value) {
		if (v == 0 || v >= 0xfffffffful)
			return fail(p, "user = %s: components never run as root; use 'auto' or "
				       "an unprivileged uid",
				    value);
		c->uid = (uid_t)v;
		c->gid = (gid_t)v;
		return 1;
	}
	pw = getpwnam(value);
	if (!pw)
		return fail(p, "user = '%s': no such user; use 'auto' for a uid of its own",
			    value);
	if (pw->pw_uid == 0)
		return fail(p, "user = '%s' is root; components never run as root", value);
	c->uid = pw->pw_uid;
	c->gid = pw->pw_gid;
	return 1;
}

static int split_args(struct parse *p, const char *value)
{
	struct bh_component_config *c = p->comp;
	const char *s = value;

	while (*s) {
		size_t n;

		while (isspace((unsigned char)*s))
			s++;
		if (!*s)
			break;
		n = strcspn(s, " \t");
		if (c->argc >= BH_MAX_ARGS - 1)
			return fail(p, "args: more than %d arguments", BH_MAX_ARGS - 1);
		if (n >= BH_ARG_MAX)
			return fail(p, "args: argument longer than %d characters", BH_ARG_MAX - 1);
		memcpy(c->argv[c->argc], s, n);
		c->argv[c->argc][n] = 0;
		c->argc++;
		s += n;
	}
	return 1;
}

static bool service_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= BH_SERVICE_MAX)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
			return false;
	return true;
}

/* cpu = 50%: a share of one CPU, over 100% for more than one; max: no limit */
static int parse_cpu(struct parse *p, const char *value)
{
	struct bh_component_config *c = p->comp;
	size_t digits = strspn(value, "0123456789");
	uint32_t v;
	char num[16];

	if (strcmp(value, "max") == 0) {
		c->cpu_percent = 0;
		c->cpu_line = 0;
		return 1;
	}
	if (digits && digits < sizeof(num) && strcmp(value + digits, "%") == 0) {
		snprintf(num, sizeof(num), "%.*s", (int)digits, value);
		if (parse_u32(num, &v) == 0 && v >= 1 && v <= BH_CPU_PERCENT_MAX) {
			c->cpu_percent = v;
			c->cpu_line = p->line;
			return 1;
		}
	}
	return fail(p, "cpu = '%s': expected a whole percentage of one CPU from 1%% to %d%%, "
		       "e.g. 'cpu = 50%%' (150%% is one and a half CPUs), or 'max' for no limit",
		    value, BH_CPU_PERCENT_MAX);
}

static int component_key(struct parse *p, const char *name, const char *value)
{
	struct bh_component_config *c = p->comp;
	uint32_t *u32 = NULL;
	char why[512];
	int vm = bh_vm_config_key(&c->vm, p->dir, name, value, why, sizeof(why));

	if (vm >= 0) {
		if (vm == 1 && strcmp(name, "kind") == 0)
			c->vm.line = p->line;
		return vm ? 1 : fail(p, "%s", why);
	}
	if (strcmp(name, "exec") == 0) {
		int n;
		if (!value[0])
			return fail(p, "exec is empty: name the component's program");
		if (value[0] == '/')
			n = snprintf(c->exec, sizeof(c->exec), "%s", value);
		else
			n = snprintf(c->exec, sizeof(c->exec), "%s/%s", p->dir, value);
		if (n < 0 || (size_t)n >= sizeof(c->exec))
			return fail(p, "exec path too long");
		return 1;
	}
	if (strcmp(name, "args") == 0)
		return split_args(p, value);
	if (strcmp(name, "env") == 0) {
		const char *eq = strchr(value, '=');
		if (!eq || eq == value)
			return fail(p, "env = '%s': expected NAME=VALUE", value);
		if (c->envc >= BH_MAX_ENV)
			return fail(p, "more than %d env lines", BH_MAX_ENV);
		if (strlen(value) >= BH_ARG_MAX)
			return fail(p, "env = '%s': longer than %d characters", value,
				    BH_ARG_MAX - 1);
		snprintf(c->env[c->envc++], BH_ARG_MAX, "%s", value);
		return 1;
	}
	if (strcmp(name, "device") == 0)
		return parse_device(p, value);
	if (strcmp(name, "provides") == 0) {
		if (c->nprovides >= BH_MAX_SERVICES)
			return fail(p, "more than %d provides lines", BH_MAX_SERVICES);
		if (!service_name_ok(value))
			return fail(p, "provides = '%s': a service name is 1-15 letters, digits, "
				       "- or _",
				    value);
		snprintf(c->provides[c->nprovides++], BH_SERVICE_MAX, "%s", value);
		return 1;
	}
	if (strcmp(name, "session") == 0) {
		struct bh_route *r = &c->routes[c->nroutes];
		char svc[64], server[64], arg[64] = "";
		int n = 0, got;
		if (c->nroutes >= BH_MAX_SERVICES)
			return fail(p, "more than %d session lines", BH_MAX_SERVICES);
		got = sscanf(value, "%63s %63s %n%63s %n", svc, server, &n, arg, &n);
		if (got < 2 || value[n] || !service_name_ok(svc) || strlen(server) >= BH_NAME_MAX ||
		    strlen(arg) >= BH_NAME_MAX)
			return fail(p, "session = '%s': expected SERVICE COMPONENT [ARGUMENT], e.g. "
				       "'session = nic e1000e' or 'session = usb xhci 08e6:4433' (the "
				       "argument, up to %d characters, tells the server this client's "
				       "policy)",
				    value, BH_NAME_MAX - 1);
		snprintf(r->service, sizeof(r->service), "%s", svc);
		snprintf(r->server, sizeof(r->server), "%s", server);
		snprintf(r->arg, sizeof(r->arg), "%s", arg);
		r->line = p->line;
		c->nroutes++;
		return 1;
	}
	if (strcmp(name, "tap") == 0) {
		if (!value[0] || strlen(value) >= sizeof(c->tap) || strchr(value, '/') ||
		    strchr(value, ' '))
			return fail(p, "tap = '%s': an interface name of 1-15 characters", value);
		snprintf(c->tap, sizeof(c->tap), "%s", value);
		return 1;
	}
	if (strcmp(name, "output") == 0) {
		char why[160];
		if (bh_output_config(value, c->output, sizeof(c->output), why, sizeof(why)))
			return fail(p, "output = '%s': %s", value, why);
		return 1;
	}
	if (strcmp(name, "pty") == 0) {
		if (!value[0] || strlen(value) >= sizeof(c->pty) || value[0] == '.' ||
		    value[strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					"0123456789-_.")])
			return fail(p, "pty = '%s': a name of 1-15 letters, digits, '-', '_' or '.', "
				       "not starting with '.' (the pty appears as /run/bulkhead/pty/NAME)",
				    value);
		snprintf(c->pty, sizeof(c->pty), "%s", value);
		return 1;
	}
	if (strcmp(name, "listen") == 0) {
		char why[160];
		if (bh_listen_config(value, c->listen, sizeof(c->listen), why, sizeof(why)))
			return fail(p, "listen = '%s': %s", value, why);
		return 1;
	}
	if (strcmp(name, "legacy") == 0) {
		int kind = bh_legacy_lookup(value);
		if (kind < 0)
			return fail(p, "legacy = '%s': one of bios-data, ebda, vga-rom (see "
				       "bulkhead/legacy.h)",
				    value);
		c->legacy |= 1u << kind;
		return 1;
	}
	if (strcmp(name, "usbip") == 0) {
		if (strcmp(value, "yes") && strcmp(value, "no"))
			return fail(p, "usbip = '%s': yes (core attaches vhci-hcd ports for it: "
				       "a USB/IP bridge) or no", value);
		c->usbip = value[0] == 'y';
		return 1;
	}
	if (strcmp(name, "nbd") == 0) {
		uint32_t idx;
		if (parse_u32(value, &idx) || idx > 255)
			return fail(p, "nbd = '%s': the index N of /dev/nbdN (0-255)", value);
		c->nbd = (int)idx;
		return 1;
	}
	if (strcmp(name, "ublk") == 0) {
		uint32_t idx;
		if (parse_u32(value, &idx) || idx > 255)
			return fail(p, "ublk = '%s': the index N of /dev/ublkbN (0-255)", value);
		c->ublk = (int)idx;
		return 1;
	}
	if (strcmp(name, "trace") == 0) {
		if (strcmp(value, "on") && strcmp(value, "off"))
			return fail(p, "trace = '%s': on (its register accesses go to the flight "
				       "recorder, the default) or off (bulkhead trace --on switches "
				       "it on while it runs)",
				    value);
		c->trace_off = value[1] == 'f';
		return 1;
	}
	if (strcmp(name, "ublk_queues") == 0) {
		uint32_t n;
		if (parse_u32(value, &n) || n < 1 || n > 16)
			return fail(p, "ublk_queues = '%s': the queues of /dev/ublkbN, each served "
				       "by a thread of the bridge (1-16)",
				    value);
		c->ublk_queues = n;
		return 1;
	}
	if (strcmp(name, "ioport") == 0)
		return parse_ioport(p, value);
	if (strcmp(name, "user") == 0)
		return parse_user(p, value);
	if (strcmp(name, "restart") == 0) {
		if (strcmp(value, "never") == 0)
			c->restart = BH_RESTART_NEVER;
		else if (strcmp(value, "on-failure") == 0)
			c->restart = BH_RESTART_ON_FAILURE;
		else if (strcmp(value, "always") == 0)
			c->restart = BH_RESTART_ALWAYS;
		else
			return fail(p, "restart = '%s': expected never, on-failure or always",
				    value);
		return 1;
	}
	if (strcmp(name, "memory") == 0 || strcmp(name, "dma") == 0 ||
	    strcmp(name, "session_memory") == 0) {
		uint64_t *dst = name[0] == 'm'	 ? &c->limit_memory
				: name[0] == 'd' ? &c->dma_quota
						 : &c->session_memory;
		if (parse_size(value, dst) || *dst == 0)
			return fail(p, "%s = '%s': expected a size like 64M or 1G", name, value);
		return 1;
	}
	if (strcmp(name, "cpu") == 0)
		return parse_cpu(p, value);
	if (strcmp(name, "cpu_weight") == 0) {
		uint32_t v;
		if (!value[0] || value[strspn(value, "0123456789")] || parse_u32(value, &v) < 0 ||
		    v < 1 || v > BH_CPU_WEIGHT_MAX)
			return fail(p, "cpu_weight = '%s': expected a whole number from 1 to %d "
				       "(default 100; 200 gets twice the CPU of 100 when both want "
				       "more than there is)",
				    value, BH_CPU_WEIGHT_MAX);
		c->cpu_weight = v;
		c->cpu_weight_line = p->line;
		return 1;
	}
	if (strcmp(name, "fds") == 0)
		u32 = &c->limit_fds;
	else if (strcmp(name, "processes") == 0)
		u32 = &c->limit_procs;
	else if (strcmp(name, "max_restarts") == 0)
		u32 = &c->max_restarts;
	else if (strcmp(name, "backoff_ms") == 0)
		u32 = &c->backoff_ms;
	else if (strcmp(name, "backoff_max_ms") == 0)
		u32 = &c->backoff_max_ms;
	else if (strcmp(name, "watchdog_ms") == 0)
		u32 = &c->watchdog_ms;
	else if (strcmp(name, "sessions") == 0)
		u32 = &c->sessions;
	if (u32) {
		if (parse_u32(value, u32))
			return fail(p, "%s = '%s': expected a whole number", name, value);
		if (u32 == &c->limit_fds && (c->limit_fds < 8 || c->limit_fds > 512))
			return fail(p, "fds = %s: give between 8 and 512", value);
		if (u32 == &c->sessions && c->sessions > BH_SESSIONS_MAX)
			return fail(p, "sessions = %s: give between 0 and %d", value,
				    BH_SESSIONS_MAX);
		return 1;
	}
	return fail(p, "unknown key '%s' in [component \"%s\"]; known keys: exec args env device "
		       "ioport user restart memory fds processes dma max_restarts backoff_ms "
		       "backoff_max_ms watchdog_ms provides session sessions session_memory tap nbd "
		       "output pty cpu cpu_weight listen legacy ublk usbip kind kernel initramfs modules "
		       "guest_memory vcpus guest_append boot_ms trace ublk_queues vm_nic vm_blk",
		    name, c->name);
}

static int core_key(struct parse *p, const char *name, const char *value)
{
	struct bh_config *cfg = p->cfg;

	if (strcmp(name, "backend") == 0) {
		if (strcmp(value, "auto") == 0)
			cfg->backend = BH_BACKEND_AUTO;
		else if (strcmp(value, "vfio") == 0)
			cfg->backend = BH_BACKEND_VFIO;
		else if (strcmp(value, "uio") == 0)
			cfg->backend = BH_BACKEND_UIO;
		else
			return fail(p, "backend = '%s': expected auto, vfio or uio", value);
		return 1;
	}
	if (strcmp(name, "control") == 0) {
		if (value[0] != '/')
			return fail(p, "control = '%s': must be an absolute path", value);
		snprintf(cfg->control, sizeof(cfg->control), "%s", value);
		return 1;
	}
	if (strcmp(name, "hugepages") == 0) {
		uint32_t v;
		if (!value[0] || value[strspn(value, "0123456789")] || parse_u32(value, &v) < 0 ||
		    v > BH_HUGEPAGES_MAX)
			return fail(p, "hugepages = '%s': expected a count of 2 MiB pages, 0 to %d",
				    value, BH_HUGEPAGES_MAX);
		cfg->hugepages = v;
		return 1;
	}
	if (strcmp(name, "crashes") == 0) {
		if (value[0] != '/')
			return fail(p, "crashes = '%s': the directory for crash reports, an absolute "
				       "path",
				    value);
		snprintf(cfg->crashes, sizeof(cfg->crashes), "%s", value);
		return 1;
	}
	return fail(p, "unknown key '%s' in [core]; known keys: backend control hugepages crashes",
		    name);
}

static void component_defaults(struct bh_component_config *c)
{
	memset(c, 0, sizeof(*c));
	c->restart = BH_RESTART_ON_FAILURE;
	c->uid_auto = true;
	c->limit_memory = 512ull << 20;
	c->limit_fds = 64;
	c->limit_procs = 1;
	c->dma_quota = 64ull << 20;
	c->sessions = BH_SESSIONS_DEFAULT;
	c->session_memory = BH_SESSION_MEMORY_DEFAULT;
	c->max_restarts = 10;
	c->backoff_ms = 100;
	c->backoff_max_ms = 5000;
	c->nbd = -1;
	c->ublk = -1;
	c->ublk_queues = 1;
	c->cpu_weight = BH_CPU_WEIGHT_DEFAULT;
}

/* [component "name"] or [core] */
static int begin_section(struct parse *p, const char *section)
{
	struct bh_config *cfg = p->cfg;
	char name[BH_NAME_MAX + 8];
	int n = 0;

	if (strcmp(section, "core") == 0) {
		p->comp = NULL;
		return 1;
	}
	if (sscanf(section, "component \"%39[^\"]\"%n", name, &n) != 1 || section[n])
		return fail(p, "unknown section [%s]; sections are [core] and "
			       "[component \"name\"]",
			    section);
	if (strlen(name) >= BH_NAME_MAX)
		return fail(p, "component name '%s' is longer than %d characters", name,
			    BH_NAME_MAX - 1);
	for (char *q = name; *q; q++)
		if (!isalnum((unsigned char)*q) && *q != '-' && *q != '_')
			return fail(p, "component name '%s': use letters, digits, - and _", name);
	for (int i = 0; i < cfg->ncomp; i++)
		if (strcmp(cfg->comp[i].name, name) == 0)
			return fail(p, "component \"%s\" is defined twice (first at line %d)",
				    name, cfg->comp[i].line);
	if (cfg->ncomp >= BH_MAX_COMPONENTS)
		return fail(p, "more than %d components", BH_MAX_COMPONENTS);
	p->comp = &cfg->comp[cfg->ncomp++];
	component_defaults(p->comp);
	snprintf(p->comp->name, sizeof(p->comp->name), "%s", name);
	p->comp->line = p->line;
	return 1;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;

	if (p->failed)
		return 0;
	if (strncmp(section, p->section, sizeof(p->section)) != 0) {
		snprintf(p->section, sizeof(p->section), "%s", section);
		if (section[0] && !begin_section(p, section))
			return 0;
	}
	if (!name)
		return 1;
	if (!section[0])
		return fail(p, "'%s' outside a section; put it under [core] or "
			       "[component \"name\"]",
			    name);
	if (p->comp)
		return component_key(p, name, value);
	return core_key(p, name, value);
}

/* a [section] line: checked here too, so an empty section is not silently accepted */
static void section_line(struct parse *p, const char *line)
{
	char name[64];
	const char *end;

	while (*line == ' ' || *line == '\t')
		line++;
	if (*line != '[' || p->failed || !(end = strchr(line, ']')))
		return;
	snprintf(name, sizeof(name), "%.*s", (int)(end - line - 1), line + 1);
	snprintf(p->section, sizeof(p->section), "%s", name);
	begin_section(p, name);
}

/* libinih's knobs: one error is enough, no continuation lines */
static void ini_settings(void)
{
	ini_stop_on_first_error = true;
	ini_allow_multiline = false;
}

/* reads like fgets and counts lines, so errors can say where */
struct reader {
	struct parse *p;
	const char *text; /* string source */
	FILE *file;       /* or file source */
};

static char *read_line(char *str, int num, void *stream)
{
	struct reader *r = stream;
	char *ret;

	if (r->file) {
		ret = fgets(str, num, r->file);
	} else {
		size_t n = strcspn(r->text, "\n");
		if (!*r->text)
			return NULL;
		if (r->text[n] == '\n')
			n++;
		if (n > (size_t)num - 1)
			n = (size_t)num - 1;
		memcpy(str, r->text, n);
		str[n] = 0;
		r->text += n;
		ret = str;
	}
	if (ret) {
		size_t len = strlen(ret);
		r->p->line++;
		if (len == (size_t)num - 1 && ret[len - 1] != '\n') {
			fail(r->p, "line longer than %d characters (libinih's limit): shorten it; "
				   "exec paths may be relative to the config's directory",
			     num - 3);
			return NULL;
		}
		section_line(r->p, ret);
	}
	return ret;
}

/* a route must name a component that provides the service */
static void check_route(struct parse *p, const struct bh_component_config *c,
			const struct bh_route *r)
{
	const struct bh_config *cfg = p->cfg;

	for (int i = 0; i < cfg->ncomp; i++) {
		if (strcmp(cfg->comp[i].name, r->server) != 0)
			continue;
		for (int k = 0; k < cfg->comp[i].nprovides; k++)
			if (strcmp(cfg->comp[i].provides[k], r->service) == 0)
				return;
		p->line = r->line;
		fail(p, "session = %s %s: component \"%s\" does not provide '%s'; add "
			"'provides = %s' to its section",
		     r->service, r->server, r->server, r->service, r->service);
		return;
	}
	p->line = r->line;
	fail(p, "session = %s %s: there is no component \"%s\"", r->service, r->server,
	     r->server);
}

static int finish(struct parse *p, int rc)
{
	struct bh_config *cfg = p->cfg;

	if (!p->failed && rc > 0) {
		p->line = rc;
		fail(p, "cannot parse this line: expected 'key = value' or a [section]");
	}
	if (!p->failed && rc < 0)
		fail(p, "cannot read the file");
	for (int i = 0; !p->failed && i < cfg->ncomp; i++) {
		struct bh_component_config *c = &cfg->comp[i];
		char why[512];
		if (bh_vm_config_finish(c, why, sizeof(why))) {
			p->line = c->vm.line ? c->vm.line : c->line;
			fail(p, "%s", why);
		}
		if (!p->failed && !c->exec[0]) {
			p->line = c->line;
			fail(p, "component \"%s\" has no exec = line naming its program", c->name);
		}
		if (c->backoff_max_ms < c->backoff_ms)
			c->backoff_max_ms = c->backoff_ms;
		for (int k = 0; !p->failed && k < c->nroutes; k++)
			check_route(p, c, &c->routes[k]);
	}
	return p->failed ? -EINVAL : 0;
}

static void config_defaults(struct bh_config *cfg, const char *path)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->path, sizeof(cfg->path), "%s", path);
	cfg->backend = BH_BACKEND_AUTO;
	snprintf(cfg->control, sizeof(cfg->control), "/run/bulkhead/core.sock");
	snprintf(cfg->crashes, sizeof(cfg->crashes), "/var/lib/bulkhead/crashes");
}

int bh_config_parse_string(const char *text, const char *name, struct bh_config *cfg, char *err,
			   size_t err_len)
{
	struct parse p = { .cfg = cfg, .err = err, .err_len = err_len, .file = name };
	struct reader r = { .p = &p, .text = text };

	config_defaults(cfg, name);
	ini_settings();
	snprintf(p.dir, sizeof(p.dir), ".");
	return finish(&p, ini_parse_stream(read_line, &r, handler, &p));
}

int bh_config_load(const char *path, struct bh_config *cfg, char *err, size_t err_len)
{
	struct parse p = { .cfg = cfg, .err = err, .err_len = err_len, .file = path };
	struct reader r = { .p = &p };
	char tmp[PATH_MAX];
	int rc;

	config_defaults(cfg, path);
	ini_settings();
	snprintf(tmp, sizeof(tmp), "%s", path);
	if (!realpath(dirname(tmp), p.dir))
		snprintf(p.dir, sizeof(p.dir), ".");
	r.file = fopen(path, "re");
	if (!r.file) {
		snprintf(err, err_len, "%s: cannot open: %s (give the config with -c FILE)", path,
			 strerror(errno));
		return -errno;
	}
	rc = ini_parse_stream(read_line, &r, handler, &p);
	fclose(r.file);
	return finish(&p, rc);
}

int bh_config_size(const char *s, uint64_t *out)
{
	return parse_size(s, out);
}
