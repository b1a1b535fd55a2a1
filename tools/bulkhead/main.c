// SPDX-License-Identifier: MIT
/*
 * bulkhead: the command line for people (and scripts, with --json).
 * Each subcommand is a cmd_NAME below; `bulkhead --help` lists them all.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"

static const struct {
	const char *name;
	const char *usage;
	const char *help;
} commands[] = {
    {"status", "status [NAME] [--json|--table|--raw]",
     "What core holds: each component's state, pid, uid, restarts, last exit, sessions and\n"
     "their peers, interrupts (of its devices, from /proc/interrupts), DMA memory and\n"
     "refusals; and its devices. With NAME only that component (exit 4 if core has none).\n"
     "A table on a terminal, core's key=value lines otherwise (--raw), or JSON (--json)."},
    {"devices", "devices [--json]",
     "Every PCI device, like lspci: address, class and name (libpci's ID database), IOMMU\n"
     "group and whether it is viable for vfio-pci (every device in it bound to vfio-pci,\n"
     "pci-stub or nothing, or a bridge), kernel driver, reset method, and the component\n"
     "that owns it when core runs. Reads only."},
    {"bind", "bind [--dry-run] [--driver vfio-pci|uio_pci_generic] ADDRESS",
     "Give a PCI device to vfio-pci (driver_override, then drivers_probe). Refuses, with\n"
     "the reason, a device the host uses (its root disk or any mounted filesystem, a\n"
     "network interface that is up, the console) and a device whose IOMMU group is not\n"
     "viable. --dry-run checks and says what it would do, and writes nothing."},
    {"unbind", "unbind [--dry-run] ADDRESS",
     "Give a PCI device back to its kernel driver (clears driver_override, loads the\n"
     "driver's module by the device's alias, probes). Refuses a device a component of\n"
     "the running core owns."},
    {"start", "start [--no-wait] [--timeout SEC] NAME",
     "Start a component that is not running (stopped, failed, finished). Waits until it runs."},
    {"stop", "stop [--no-wait] [--timeout SEC] NAME",
     "Stop a component (SIGKILL, then core takes back what it held and resets its devices);\n"
     "it stays down until `bulkhead start`. Waits until it is down."},
    {"restart", "restart [--no-wait] [--timeout SEC] NAME",
     "Stop a component and start it again at once, with the program as it is on disk now:\n"
     "a rebuilt driver swaps in. Its clients reconnect as after a crash. Waits until the new\n"
     "process runs."},
    {"reload", "reload [--no-wait] [--timeout SEC]",
     "Core reads its config file again and restarts the components whose sections changed,\n"
     "starts the added ones and stops the removed ones; every other component keeps running\n"
     "(same pid). A config with a mistake changes nothing (exit 1, with the mistake).\n"
     "Changed devices, cpu limits or [core] keys need core restarted, and are refused."},
    {"logs", "logs [NAME] [-f] [--json]",
     "What a component wrote (stdout, stderr) and what core said about it, from the last\n"
     "64 KiB core keeps per component; all components without NAME. -f follows: new lines\n"
     "as they come, until interrupted. --json: one array (with -f: one object a line)."},
    {"trace", "trace [--json] [--once] [--last N] [--on|--off] NAME",
     "A component's register reads and writes and its interrupts, from its flight recorder\n"
     "(a ring core keeps, which libbulkhead's accessors fill), with the register names the\n"
     "driver declared: the last N (default 32), then each new one as it comes, until\n"
     "interrupted (--once: stop there). --json: one object a line. --on/--off switch the\n"
     "recorder while the component runs (the config's 'trace = on|off' says how it starts)."},
    {"crashes", "crashes [--json] [--all] [--last N] [--dir DIR] [NAME]",
     "The crash reports core wrote when a component died of a signal (its own fault, or the\n"
     "watchdog): one line each; with NAME its newest in full: the signal, the function and\n"
     "source line it struck in, the backtrace, and its last N (default 16) register accesses\n"
     "by name. --all: every report in full. DIR: the [core] crashes key of the running core,\n"
     "else /var/lib/bulkhead/crashes."},
    {"check", "check CONFIG", "Parse a system config and report the first mistake."},
    {"sysrq", "sysrq VM KEY",
     "Have a driver VM's agent write KEY to the guest's /proc/sysrq-trigger (c crashes the\n"
     "guest's kernel: core restarts the VM as after any crash)."},
    {"probe-dma", "probe-dma VM ADDR",
     "Have a driver VM's agent aim its e1000e's DMA at guest-physical ADDR (hex), which must\n"
     "lie outside the guest's RAM: it unbinds Linux's driver, points a transmit ring there,\n"
     "rings the tail and binds the driver again. The IOMMU must refuse the DMA (core logs\n"
     "the fault); a test of the VM's confinement (tests/vm/dvm.sh)."},
    {"inject", "inject PID segv|loop|wild-mmio|bad-desc|bad-dma|oom|fds|abort",
     "Make a component fail from inside (fault campaigns; it must run with\n"
     "env = BULKHEAD_FAULTS=1)."},
    {"debug", "debug [--gdb PATH] NAME [GDB-ARGS...]",
     "Attach gdb to a running component from outside its sandbox (its pid as the host sees\n"
     "it, its program for symbols). While gdb holds it stopped, core's watchdog for it\n"
     "waits (bulkhead status shows debugging=1); it runs again when gdb detaches or exits,\n"
     "or if this command dies. GDB-ARGS pass through: bulkhead debug edu -batch -ex bt\n"
     "prints a backtrace and detaches. gdb: --gdb PATH, else $BULKHEAD_GDB, else gdb in\n"
     "$PATH. Refuses an unknown component (exit 4), one that is not running and a driver\n"
     "VM (kind = vm) (exit 1), and says so when gdb is missing (exit 1). Otherwise exits\n"
     "with gdb's status."},
    {"new-driver", "new-driver NAME [DIR]",
     "Make a driver folder DIR (default ./NAME) from the template: NAME.c (takes its granted\n"
     "device, maps BAR0, declares its register names, logs what it found, heartbeats, and\n"
     "exits cleanly when core stops it), a Makefile that builds it with pkg-config bulkhead\n"
     "alone, and NAME.conf, a section to paste into core's config. NAME: a C identifier\n"
     "(letters, digits, _; not starting with a digit), at most 31 characters. Refuses a\n"
     "DIR that exists. Templates: $BULKHEAD_TEMPLATES, else the source tree's (when run\n"
     "from build/), else the installed share/bulkhead/templates."},
};
#define NCOMMANDS (int) (sizeof(commands) / sizeof(commands[0]))

static int help(FILE *f, int rc)
{
	fprintf(f, "usage: bulkhead [-s SOCKET] COMMAND [ARGS]\n\n");
	for (int i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  bulkhead %s\n", commands[i].usage);
	fprintf(f,
		"\n  -s, --socket PATH  core's control socket (default /run/bulkhead/core.sock)\n"
		"  bulkhead COMMAND --help  says more about one command\n\n"
		"exit status:\n"
		"  0  done\n"
		"  1  refused or failed: the reason is on stderr\n"
		"  2  a mistake on the command line\n"
		"  3  core is not running, or its socket cannot be reached (root only)\n"
		"  4  no such component or device\n");
	return rc;
}

int bh_cmd_help(const char *name, FILE *f, int rc)
{
	for (int i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0) {
			fprintf(f, "usage: bulkhead %s\n\n%s\n", commands[i].usage,
				commands[i].help);
			return rc;
		}
	return help(f, rc);
}

static void print_json(struct json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
						   JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

/* core's reply to a request that changes something: "ok ..." or "error KIND text" */
static int judge(const char *reply)
{
	if (strncmp(reply, "ok", 2) == 0)
		return BH_EXIT_OK;
	fprintf(stderr, "bulkhead: %s",
		strncmp(reply, "error ", 6) == 0 ? strchr(reply + 6, ' ') + 1 : reply);
	if (strncmp(reply, "error unknown", 13) == 0)
		return BH_EXIT_UNKNOWN;
	if (strncmp(reply, "error usage", 11) == 0)
		return BH_EXIT_USAGE;
	return BH_EXIT_FAILED;
}

/* ---- status ---- */

struct snapshot {
	char *raw; /* core's reply as it came */
	char *text;
	struct bh_record rec[256];
	int nrec;
	char *interrupts;
};

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0;

	if (!f)
		return strdup("");
	if (getdelim(&buf, &len, 0, f) < 0) {
		free(buf);
		buf = strdup("");
	}
	fclose(f);
	return buf;
}

static int snapshot(struct snapshot *s)
{
	int rc = bh_control_ask("status", &s->text);
	char *save = NULL;

	s->nrec = 0;
	s->interrupts = NULL;
	s->raw = NULL;
	if (rc)
		return rc;
	s->raw = strdup(s->text);
	if (strncmp(s->text, "error", 5) == 0) {
		rc = judge(s->text);
		free(s->text);
		return rc;
	}
	for (char *line = strtok_r(s->text, "\n", &save); line && s->nrec < 256;
	     line = strtok_r(NULL, "\n", &save))
		if (bh_record_parse(line, &s->rec[s->nrec]) == 0)
			s->nrec++;
	s->interrupts = slurp("/proc/interrupts");
	return 0;
}

static void snapshot_free(struct snapshot *s)
{
	free(s->raw);
	free(s->text);
	free(s->interrupts);
}

static const struct bh_record *find(const struct snapshot *s, const char *kind, const char *name)
{
	for (int i = 0; i < s->nrec; i++)
		if (strcmp(s->rec[i].kind, kind) == 0 && strcmp(s->rec[i].name, name) == 0)
			return &s->rec[i];
	return NULL;
}

static const char *get(const struct bh_record *r, const char *key)
{
	const char *v = r ? bh_record_get(r, key) : NULL;
	return v ? v : "";
}

static unsigned long long component_irqs(const struct snapshot *s, const char *name)
{
	unsigned long long n = 0;

	for (int i = 0; i < s->nrec; i++)
		if (strcmp(s->rec[i].kind, "device") == 0 &&
		    strcmp(get(&s->rec[i], "owner"), name) == 0)
			n += bh_irq_count(s->interrupts, s->rec[i].name);
	return n;
}

/* the components name has sessions with, "a,b" */
static void peers(const struct snapshot *s, const char *name, char *buf, size_t len)
{
	buf[0] = 0;
	for (int i = 0; i < s->nrec; i++) {
		const struct bh_record *r = &s->rec[i];
		const char *peer = NULL;
		char *hit;
		size_t pl;

		if (strcmp(r->kind, "session") != 0)
			continue;
		if (strcmp(get(r, "server"), name) == 0)
			peer = get(r, "client");
		else if (strcmp(get(r, "client"), name) == 0)
			peer = get(r, "server");
		if (!peer || !peer[0])
			continue;
		pl = strlen(peer);
		/* each peer once */
		for (hit = strstr(buf, peer); hit; hit = strstr(hit + 1, peer))
			if ((hit == buf || hit[-1] == ',') && (hit[pl] == ',' || !hit[pl]))
				break;
		if (!hit)
			snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", buf[0] ? "," : "",
				 peer);
	}
}

/* does record r belong to component name (or to everything, name NULL)? */
static bool concerns(const struct bh_record *r, const char *name)
{
	size_t n;

	if (!name)
		return true;
	if (strcmp(r->kind, "component") == 0)
		return strcmp(r->name, name) == 0;
	if (strcmp(r->kind, "device") == 0)
		return strcmp(get(r, "owner"), name) == 0;
	if (strcmp(r->kind, "session") == 0)
		return strcmp(get(r, "server"), name) == 0 || strcmp(get(r, "client"), name) == 0;
	n = strlen(name);
	if (strcmp(r->kind, "service") == 0)
		return strncmp(r->name, name, n) == 0 && r->name[n] == ':';
	return false;
}

static struct json_object *status_json(const struct snapshot *s, const char *name)
{
	struct json_object *o = json_object_new_object();
	struct json_object *lists[4];
	static const char *const kinds[4] = {"component", "service", "session", "device"};
	/* in one component's object "devices" (a count in core's line) becomes the list */
	static const char *const keys[4] = {"components", "services", "session_list", "devices"};

	for (int k = 0; k < 4; k++)
		lists[k] = json_object_new_array();
	for (int i = 0; i < s->nrec; i++) {
		const struct bh_record *r = &s->rec[i];
		struct json_object *j;
		char buf[512];

		if (strcmp(r->kind, "core") == 0) {
			if (!name)
				json_object_object_add(o, "core", bh_record_json(r));
			continue;
		}
		if (!concerns(r, name))
			continue;
		for (int k = 0; k < 4; k++) {
			if (strcmp(r->kind, kinds[k]) != 0)
				continue;
			j = bh_record_json(r);
			if (k == 0) {
				/* its last crash, from core's report (tools/bulkhead/trace.c) */
				struct json_object *crash = bh_crash_brief(get(r, "crash"));
				if (crash)
					json_object_object_add(j, "last_crash", crash);
				peers(s, r->name, buf, sizeof(buf));
				json_object_object_add(j, "peers", json_object_new_string(buf));
				json_object_object_add(
				    j, "irqs",
				    json_object_new_int64((int64_t) component_irqs(s, r->name)));
			} else if (k == 3) {
				json_object_object_add(j, "address",
						       json_object_new_string(r->name));
				json_object_object_add(j, "irqs",
						       json_object_new_int64((int64_t) bh_irq_count(
							   s->interrupts, r->name)));
			}
			json_object_array_add(lists[k], j);
		}
	}
	if (name) {
		/* one component: its own object, with what is its inside */
		struct json_object *c = json_object_get(json_object_array_get_idx(lists[0], 0));
		for (int k = 1; k < 4; k++)
			json_object_object_add(c, keys[k], lists[k]);
		json_object_put(lists[0]);
		json_object_put(o);
		return c;
	}
	json_object_object_add(o, "components", lists[0]);
	json_object_object_add(o, "services", lists[1]);
	json_object_object_add(o, "sessions", lists[2]);
	json_object_object_add(o, "devices", lists[3]);
	return o;
}

static void status_table(const struct snapshot *s, const char *name)
{
	static const char *const chead[] = {"NAME",	"STATE",     "PID",	 "UID",
					    "RESTARTS", "LAST EXIT", "SESSIONS", "PEERS",
					    "IRQS",	"DMA",	     "REFUSALS"};
	static const char *const dhead[] = {"DEVICE", "ID",  "CLASS", "OWNER",
					    "GROUP",  "IRQ", "IRQS",  "RESETS"};
	struct bh_table ct, dt;

	bh_table_init(&ct, 11, chead);
	bh_table_init(&dt, 8, dhead);
	for (int i = 0; i < s->nrec; i++) {
		const struct bh_record *r = &s->rec[i];
		char peer[256], irqs[24], dma[24], ref[24];

		if (!concerns(r, name))
			continue;
		if (strcmp(r->kind, "component") == 0) {
			peers(s, r->name, peer, sizeof(peer));
			snprintf(irqs, sizeof(irqs), "%llu", component_irqs(s, r->name));
			bh_human_bytes(strtoull(get(r, "dma_bytes"), NULL, 10), dma, sizeof(dma));
			snprintf(ref, sizeof(ref), "%lu",
				 strtoul(get(r, "denials"), NULL, 10) +
				     strtoul(get(r, "refusals"), NULL, 10));
			const char *row[] = {r->name,
					     strcmp(get(r, "debugging"), "1") == 0 ? "debugging"
										: get(r, "state"),
					     get(r, "pid"),
					     get(r, "uid"),
					     get(r, "restarts"),
					     get(r, "last_exit"),
					     get(r, "sessions"),
					     peer,
					     irqs,
					     dma,
					     ref};
			bh_table_add(&ct, row);
		} else if (strcmp(r->kind, "device") == 0) {
			snprintf(irqs, sizeof(irqs), "%llu", bh_irq_count(s->interrupts, r->name));
			const char *row[] = {r->name,
					     get(r, "id"),
					     get(r, "class"),
					     get(r, "owner"),
					     get(r, "group"),
					     get(r, "irq"),
					     irqs,
					     get(r, "resets")};
			bh_table_add(&dt, row);
		}
	}
	bh_table_print(&ct, stdout);
	if (dt.nrow) {
		putchar('\n');
		bh_table_print(&dt, stdout);
	}
	bh_table_free(&ct);
	bh_table_free(&dt);
}

static int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'}, {"table", no_argument, NULL, 't'},
	    {"raw", no_argument, NULL, 'r'},  {"socket", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	enum { RAW, TABLE, JSON } form = isatty(STDOUT_FILENO) ? TABLE : RAW;
	const char *name = NULL;
	struct snapshot s;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "jtrs:h", opts, NULL)) != -1) {
		if (opt == 'j')
			form = JSON;
		else if (opt == 't')
			form = TABLE;
		else if (opt == 'r')
			form = RAW;
		else if (opt == 's')
			bh_control_path = optarg;
		else
			return bh_cmd_help("status", opt == 'h' ? stdout : stderr,
					   opt == 'h' ? 0 : BH_EXIT_USAGE);
	}
	if (optind < argc)
		name = argv[optind++];
	if (optind < argc)
		return bh_cmd_help("status", stderr, BH_EXIT_USAGE);
	rc = snapshot(&s);
	if (rc)
		return rc;
	if (name && !find(&s, "component", name)) {
		fprintf(stderr,
			"bulkhead: core has no component '%s' (bulkhead status lists them)\n",
			name);
		snapshot_free(&s);
		return BH_EXIT_UNKNOWN;
	}
	if (form == JSON) {
		print_json(status_json(&s, name));
	} else if (form == TABLE) {
		status_table(&s, name);
		if (name)
			bh_crash_brief_print(name, get(find(&s, "component", name), "crash"), stdout);
	} else {
		/* core's own lines, as they came */
		char *save = NULL;
		for (char *line = strtok_r(s.raw, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			struct bh_record r;
			char *copy = strdup(line);
			if (copy && bh_record_parse(copy, &r) == 0 &&
			    (!name || (strcmp(r.kind, "core") != 0 && concerns(&r, name))))
				puts(line);
			free(copy);
		}
	}
	snapshot_free(&s);
	return 0;
}

/* ---- start, stop, restart, reload ---- */

struct wait_opts {
	bool wait;
	int timeout_s;
};

static int wait_options(const char *cmd, int argc, char **argv, struct wait_opts *w)
{
	static const struct option opts[] = {
	    {"no-wait", no_argument, NULL, 'n'},
	    {"timeout", required_argument, NULL, 't'},
	    {"socket", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int opt;

	w->wait = true;
	w->timeout_s = 60;
	while ((opt = getopt_long(argc, argv, "nt:s:h", opts, NULL)) != -1) {
		if (opt == 'n') {
			w->wait = false;
		} else if (opt == 't') {
			char *end;
			w->timeout_s = (int) strtol(optarg, &end, 10);
			if (*end || w->timeout_s <= 0) {
				fprintf(stderr, "bulkhead: --timeout '%s': a number of seconds\n",
					optarg);
				return -BH_EXIT_USAGE;
			}
		} else if (opt == 's') {
			bh_control_path = optarg;
		} else {
			return -bh_cmd_help(cmd, stderr, BH_EXIT_USAGE);
		}
	}
	return 0;
}

/* a component's state and pid now: 0, or an exit code */
static int state_of(const char *name, char *state, size_t len, long *pid)
{
	struct snapshot s;
	int rc = snapshot(&s);
	const struct bh_record *r;

	if (rc)
		return rc;
	r = find(&s, "component", name);
	snprintf(state, len, "%s", r ? get(r, "state") : "absent");
	*pid = r ? strtol(get(r, "pid"), NULL, 10) : 0;
	snapshot_free(&s);
	return 0;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/*
 * until name is running with a pid other than old_pid (up), or not running
 * (down); 0, or an exit code with the reason printed
 */
static int wait_for(const char *name, bool up, long old_pid, int timeout_s)
{
	double end = now_s() + timeout_s;
	char state[32] = "";
	long pid = 0;

	for (;;) {
		int rc = state_of(name, state, sizeof(state), &pid);
		if (rc)
			return rc;
		if (up && strcmp(state, "running") == 0 && pid != old_pid) {
			printf("%s: running, pid %ld\n", name, pid);
			return 0;
		}
		if (!up && strcmp(state, "running") != 0) {
			printf("%s: %s\n", name, state);
			return 0;
		}
		if (up && (strcmp(state, "failed") == 0 || strcmp(state, "finished") == 0) &&
		    pid != old_pid) {
			fprintf(stderr,
				"bulkhead: %s did not come up: it is %s (bulkhead logs %s)\n", name,
				state, name);
			return BH_EXIT_FAILED;
		}
		if (now_s() > end) {
			fprintf(stderr, "bulkhead: %s is still %s after %d s (bulkhead logs %s)\n",
				name, state, timeout_s, name);
			return BH_EXIT_FAILED;
		}
		usleep(100000);
	}
}

static int cmd_one(const char *verb, int argc, char **argv)
{
	struct wait_opts w;
	char cmd[128], state[32], *reply;
	long pid = 0;
	int rc = wait_options(verb, argc, argv, &w);

	if (rc)
		return -rc;
	if (optind != argc - 1)
		return bh_cmd_help(verb, stderr, BH_EXIT_USAGE);
	if (strlen(argv[optind]) >= BH_NAME_MAX || strchr(argv[optind], ' ')) {
		fprintf(stderr, "bulkhead: '%s' cannot be a component's name\n", argv[optind]);
		return BH_EXIT_UNKNOWN;
	}
	rc = state_of(argv[optind], state, sizeof(state), &pid);
	if (rc)
		return rc;
	if (strcmp(state, "running") != 0)
		pid = 0;
	snprintf(cmd, sizeof(cmd), "%s %s", verb, argv[optind]);
	rc = bh_control_ask(cmd, &reply);
	if (rc)
		return rc;
	rc = judge(reply);
	if (rc == 0 && !w.wait)
		fputs(reply + 3, stdout);
	free(reply);
	if (rc || !w.wait)
		return rc;
	return wait_for(argv[optind], strcmp(verb, "stop") != 0,
			strcmp(verb, "start") == 0 ? -1 : pid, w.timeout_s);
}

static int cmd_reload(int argc, char **argv)
{
	struct wait_opts w;
	struct snapshot before;
	char *reply, *save = NULL;
	int rc = wait_options("reload", argc, argv, &w);

	if (rc)
		return -rc;
	if (optind != argc)
		return bh_cmd_help("reload", stderr, BH_EXIT_USAGE);
	rc = snapshot(&before);
	if (rc)
		return rc;
	rc = bh_control_ask("reload", &reply);
	if (rc == 0)
		rc = judge(reply);
	if (rc == 0) {
		/* "ok reloaded PATH: restarted: a b added: c removed: -" */
		fputs(reply + 3, stdout);
		bool up = true;
		for (char *word = strtok_r(strchr(reply, ':') + 1, " \n", &save);
		     word && w.wait && !rc; word = strtok_r(NULL, " \n", &save)) {
			if (strcmp(word, "restarted:") == 0 || strcmp(word, "added:") == 0) {
				up = true;
			} else if (strcmp(word, "removed:") == 0) {
				up = false;
			} else if (strcmp(word, "-") != 0) {
				const struct bh_record *r = find(&before, "component", word);
				rc = wait_for(word, up, r ? strtol(get(r, "pid"), NULL, 10) : -1,
					      w.timeout_s);
			}
		}
	}
	free(reply);
	snapshot_free(&before);
	return rc;
}

/* ---- logs ---- */

static struct json_object *log_json(const struct bh_log_line *l)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "component", json_object_new_string(l->component));
	json_object_object_add(o, "seconds", json_object_new_double(l->seconds));
	json_object_object_add(o, "source", json_object_new_string(l->source));
	json_object_object_add(o, "text", json_object_new_string(l->text));
	return o;
}

static void log_print(char *line, bool json)
{
	struct bh_log_line l;

	if (bh_log_line_parse(line, &l) < 0)
		return;
	if (json) {
		struct json_object *o = log_json(&l);
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
	} else {
		printf("[%9.3f] %s%s %s\n", l.seconds, l.component,
		       strcmp(l.source, "core") == 0 ? " (core):" : ":", l.text);
	}
	fflush(stdout);
}

static int by_time(const void *a, const void *b)
{
	/* "NAME SECONDS ...": compare the seconds */
	const char *x = strchr(*(char *const *) a, ' '), *y = strchr(*(char *const *) b, ' ');
	double dx = x ? atof(x) : 0, dy = y ? atof(y) : 0;
	return dx < dy ? -1 : dx > dy;
}

static int cmd_logs(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"follow", no_argument, NULL, 'f'},
	    {"json", no_argument, NULL, 'j'},
	    {"socket", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	bool follow = false, json = false;
	const char *name = "*";
	char cmd[128], *line = NULL;
	size_t cap = 0;
	int opt, fd;
	FILE *in;

	while ((opt = getopt_long(argc, argv, "fjs:h", opts, NULL)) != -1) {
		if (opt == 'f')
			follow = true;
		else if (opt == 'j')
			json = true;
		else if (opt == 's')
			bh_control_path = optarg;
		else
			return bh_cmd_help("logs", opt == 'h' ? stdout : stderr,
					   opt == 'h' ? 0 : BH_EXIT_USAGE);
	}
	if (optind < argc)
		name = argv[optind++];
	if (optind < argc || strlen(name) >= BH_NAME_MAX || strchr(name, ' '))
		return bh_cmd_help("logs", stderr, BH_EXIT_USAGE);
	snprintf(cmd, sizeof(cmd), "logs %s%s", name, follow ? " follow" : "");
	fd = bh_control_connect(cmd);
	if (fd < 0)
		return -fd;
	in = fdopen(fd, "r");
	if (!in || getline(&line, &cap, in) <= 0) {
		fprintf(stderr, "bulkhead: core closed the connection\n");
		return BH_EXIT_FAILED;
	}
	if (strncmp(line, "ok", 2) != 0) {
		int rc = judge(line);
		free(line);
		fclose(in);
		return rc;
	}
	if (follow) {
		/* the rings one after the other, then new lines as core sends them */
		setvbuf(stdout, NULL, _IOLBF, 0);
		while (getline(&line, &cap, in) > 0)
			log_print(line, json);
	} else {
		char **lines = NULL;
		size_t n = 0, ncap = 0;
		while (getline(&line, &cap, in) > 0) {
			if (n == ncap) {
				ncap = ncap ? ncap * 2 : 256;
				char **grown = realloc(lines, ncap * sizeof(*lines));
				if (!grown)
					break;
				lines = grown;
			}
			lines[n++] = strdup(line);
		}
		/* the components' rings interleaved by time */
		qsort(lines, n, sizeof(*lines), by_time);
		if (json) {
			struct json_object *a = json_object_new_array();
			for (size_t i = 0; i < n; i++) {
				struct bh_log_line l;
				if (bh_log_line_parse(lines[i], &l) == 0)
					json_object_array_add(a, log_json(&l));
			}
			print_json(a);
		} else {
			for (size_t i = 0; i < n; i++)
				log_print(lines[i], false);
		}
		for (size_t i = 0; i < n; i++)
			free(lines[i]);
		free(lines);
	}
	free(line);
	fclose(in);
	return 0;
}

/* ---- check, inject ---- */

/* fault injection: the component must run with env = BULKHEAD_FAULTS=1 */
static int cmd_inject(int argc, char **argv)
{
	static const char *const names[] = {"",	       "segv", "loop", "wild-mmio", "bad-desc",
					    "bad-dma", "oom",  "fds",  "abort"};
	union sigval v;
	long pid;
	char *end;

	if (argc != 3)
		return bh_cmd_help("inject", stderr, BH_EXIT_USAGE);
	pid = strtol(argv[1], &end, 10);
	if (*end || pid <= 1) {
		fprintf(stderr,
			"bulkhead: inject: '%s' is not a component's pid (see bulkhead "
			"status)\n",
			argv[1]);
		return BH_EXIT_USAGE;
	}
	v.sival_int = 0;
	for (int i = 1; i < (int) (sizeof(names) / sizeof(names[0])); i++)
		if (strcmp(argv[2], names[i]) == 0)
			v.sival_int = i;
	if (!v.sival_int) {
		fprintf(stderr,
			"bulkhead: inject: unknown fault '%s'; one of segv loop wild-mmio "
			"bad-desc bad-dma oom fds abort\n",
			argv[2]);
		return BH_EXIT_USAGE;
	}
	if (sigqueue((pid_t) pid, SIGUSR1, v) < 0) {
		fprintf(stderr, "bulkhead: inject %s into %ld: %s\n", argv[2], pid,
			strerror(errno));
		return BH_EXIT_FAILED;
	}
	return 0;
}

/* sysrq VM KEY, probe-dma VM ADDR: words for a driver VM's agent */
static int cmd_vm_ask(int argc, char **argv)
{
	char cmd[96], *reply = NULL;
	int rc;

	if (argc != 3)
		return bh_cmd_help(argv[0], stderr, BH_EXIT_USAGE);
	snprintf(cmd, sizeof(cmd), "%s %.32s %.23s", argv[0], argv[1], argv[2]);
	rc = bh_control_ask(cmd, &reply);
	if (rc)
		return rc;
	fputs(reply, strncmp(reply, "ok", 2) == 0 ? stdout : stderr);
	rc = strncmp(reply, "ok", 2) == 0 ? 0 : 1;
	free(reply);
	return rc;
}

static int cmd_check(int argc, char **argv)
{
	static struct bh_config cfg;
	char err[1024];

	if (argc != 2)
		return bh_cmd_help("check", stderr, BH_EXIT_USAGE);
	if (bh_config_load(argv[1], &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return BH_EXIT_FAILED;
	}
	printf("%s: ok, %d component(s)\n", argv[1], cfg.ncomp);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd;

	/* global options, before the command */
	while (argc > 2 && (strcmp(argv[1], "-s") == 0 || strcmp(argv[1], "--socket") == 0)) {
		bh_control_path = argv[2];
		argv[2] = argv[0];
		argc -= 2;
		argv += 2;
	}
	if (argc < 2)
		return help(stderr, BH_EXIT_USAGE);
	cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0)
		return argc > 2 ? bh_cmd_help(argv[2], stdout, 0) : help(stdout, 0);
	/* every command takes --help, even those without other options */
	for (int i = 2; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return bh_cmd_help(cmd, stdout, 0);
	argc--;
	argv++;
	optind = 1;
	if (strcmp(cmd, "status") == 0)
		return cmd_status(argc, argv);
	if (strcmp(cmd, "devices") == 0)
		return bh_cmd_devices(argc, argv);
	if (strcmp(cmd, "bind") == 0)
		return bh_cmd_bind(argc, argv);
	if (strcmp(cmd, "unbind") == 0)
		return bh_cmd_unbind(argc, argv);
	if (strcmp(cmd, "start") == 0 || strcmp(cmd, "stop") == 0 || strcmp(cmd, "restart") == 0)
		return cmd_one(cmd, argc, argv);
	if (strcmp(cmd, "reload") == 0)
		return cmd_reload(argc, argv);
	if (strcmp(cmd, "logs") == 0)
		return cmd_logs(argc, argv);
	if (strcmp(cmd, "check") == 0)
		return cmd_check(argc, argv);
	if (strcmp(cmd, "trace") == 0)
		return bh_cmd_trace(argc, argv);
	if (strcmp(cmd, "crashes") == 0)
		return bh_cmd_crashes(argc, argv);
	if (strcmp(cmd, "inject") == 0)
		return cmd_inject(argc, argv);
	if (strcmp(cmd, "sysrq") == 0 || strcmp(cmd, "probe-dma") == 0)
		return cmd_vm_ask(argc, argv);
	if (strcmp(cmd, "debug") == 0)
		return bh_cmd_debug(argc, argv);
	if (strcmp(cmd, "new-driver") == 0)
		return bh_cmd_new_driver(argc, argv);
	fprintf(stderr, "bulkhead: unknown command '%s'\n\n", cmd);
	return help(stderr, BH_EXIT_USAGE);
}
