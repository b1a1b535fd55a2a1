// SPDX-License-Identifier: MIT
/*
 * bulkhead trace NAME: a running component's register accesses and
 * interrupts, live, from its flight recorder; bulkhead crashes [NAME]: the
 * crash reports core wrote, with the faulting function and line and the
 * last register accesses by the names the driver declared.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bulkhead/proto.h"
#include "cli.h"
#include "symbolize.h"
#include "tracefmt.h"

int bh_cmd_help(const char *name, FILE *f, int rc);

#define BH_CRASH_DIR "/var/lib/bulkhead/crashes"

/* ---- trace ---- */

/* --last N: how many of the ring's entries */
static int last_option(const char *arg, long *last)
{
	char *end;

	*last = strtol(arg, &end, 10);
	if (!*arg || *end || *last < 0 || *last > BH_TRACE_ENTRIES) {
		fprintf(stderr, "bulkhead: --last '%s': 0 to %u entries (the ring holds that many)\n",
			arg, BH_TRACE_ENTRIES);
		return -1;
	}
	return 0;
}

/* core said "error KIND text": the text on stderr, and the exit code for the kind */
static int refused(const char *reply)
{
	const char *text = strncmp(reply, "error ", 6) == 0 ? strchr(reply + 6, ' ') : NULL;

	fprintf(stderr, "bulkhead: %s", text ? text + 1 : reply);
	return strncmp(reply, "error unknown", 13) == 0 ? BH_EXIT_UNKNOWN : BH_EXIT_FAILED;
}

/* "trace NAME": core's one-line answer, and the ring's fd beside it */
static int ask_ring(const char *name, int *ring)
{
	char cmd[64], line[256];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = { line, sizeof(line) - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;
	ssize_t n;
	int fd;

	snprintf(cmd, sizeof(cmd), "trace %s", name);
	fd = bh_control_connect(cmd);
	if (fd < 0)
		return -fd;
	n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	close(fd);
	if (n <= 0) {
		fprintf(stderr, "bulkhead: core closed the connection\n");
		return BH_EXIT_FAILED;
	}
	line[n] = 0;
	*ring = -1;
	cm = CMSG_FIRSTHDR(&mh);
	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
		memcpy(ring, CMSG_DATA(cm), sizeof(int));
	if (strncmp(line, "ok", 2) != 0 || *ring < 0) {
		if (*ring >= 0)
			close(*ring);
		/* "error KIND text" */
		return refused(line);
	}
	return 0;
}

static void print_entries(const void *img, const struct bh_trace_entry *e, const uint64_t *seq,
			  size_t n, bool json)
{
	char line[256];

	for (size_t i = 0; i < n; i++) {
		if (json) {
			struct json_object *o = bh_trace_entry_json(img, &e[i], seq[i]);
			puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
			json_object_put(o);
		} else {
			bh_trace_format(img, &e[i], seq[i], line, sizeof(line));
			puts(line);
		}
	}
	fflush(stdout);
}

int bh_cmd_trace(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },	    { "once", no_argument, NULL, '1' },
		{ "last", required_argument, NULL, 'n' }, { "on", no_argument, NULL, 'O' },
		{ "off", no_argument, NULL, 'F' },	    { "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },	    { NULL, 0, NULL, 0 },
	};
	static struct bh_trace_entry e[BH_TRACE_ENTRIES];
	static uint64_t seq[BH_TRACE_ENTRIES];
	bool json = false, once = false;
	const char *sw = NULL;
	long last = 32;
	uint64_t next, lost;
	struct stat st;
	char why[128];
	int opt, rc, ring;
	void *img;

	while ((opt = getopt_long(argc, argv, "j1n:s:h", opts, NULL)) != -1) {
		if (opt == 'j') {
			json = true;
		} else if (opt == '1') {
			once = true;
		} else if (opt == 'n') {
			if (last_option(optarg, &last) < 0)
				return BH_EXIT_USAGE;
		} else if (opt == 'O' || opt == 'F') {
			sw = opt == 'O' ? "on" : "off";
		} else if (opt == 's') {
			bh_control_path = optarg;
		} else {
			return bh_cmd_help("trace", opt == 'h' ? stdout : stderr,
					   opt == 'h' ? 0 : BH_EXIT_USAGE);
		}
	}
	if (optind != argc - 1 || strlen(argv[optind]) >= BH_NAME_MAX ||
	    strchr(argv[optind], ' '))
		return bh_cmd_help("trace", stderr, BH_EXIT_USAGE);
	if (sw) {
		char cmd[64], *reply;
		snprintf(cmd, sizeof(cmd), "trace %s %s", argv[optind], sw);
		rc = bh_control_ask(cmd, &reply);
		if (rc)
			return rc;
		if (strncmp(reply, "ok", 2) == 0) {
			printf("%s: flight recorder %s\n", argv[optind], sw);
		} else {
			rc = refused(reply);
		}
		free(reply);
		return rc;
	}
	rc = ask_ring(argv[optind], &ring);
	if (rc)
		return rc;
	if (fstat(ring, &st) < 0 || (size_t)st.st_size != BH_TRACE_SIZE) {
		fprintf(stderr, "bulkhead: the ring core sent is %lld bytes, not %zu\n",
			(long long)st.st_size, (size_t)BH_TRACE_SIZE);
		return BH_EXIT_FAILED;
	}
	img = mmap(NULL, BH_TRACE_SIZE, PROT_READ, MAP_SHARED, ring, 0);
	close(ring);
	if (img == MAP_FAILED || bh_trace_check(img, BH_TRACE_SIZE, why, sizeof(why)) < 0) {
		fprintf(stderr, "bulkhead: %s\n", img == MAP_FAILED ? strerror(errno) : why);
		return BH_EXIT_FAILED;
	}
	if (!json)
		printf("%s: flight recorder %s, %" PRIu64 " entries so far\n", argv[optind],
		       ((const struct bh_trace_header *)img)->on ? "on" : "off (bulkhead trace --on)",
		       bh_trace_head(img));
	size_t n = bh_trace_collect(img, 0, e, seq, (size_t)last, &next, &lost);
	print_entries(img, e, seq, n, json);
	/* then what comes, until interrupted */
	while (!once) {
		usleep(100000);
		uint64_t head = bh_trace_head(img);
		if (head < next) {
			/* core reset the ring: the component started again */
			if (!json)
				printf("-- %s started again --\n", argv[optind]);
			next = 0;
		}
		n = bh_trace_collect(img, next, e, seq, BH_TRACE_ENTRIES, &next, &lost);
		if (lost && !json)
			printf("-- %" PRIu64 " entries overwritten before they were read --\n",
			       lost);
		print_entries(img, e, seq, n, json);
	}
	munmap(img, BH_TRACE_SIZE);
	return 0;
}

/* ---- crashes ---- */

struct report {
	char path[PATH_MAX];
	void *data;
	size_t len;
	const struct bh_crash_file *f;
};

static void *slurp_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	struct stat st;
	void *buf = NULL;

	if (!f)
		return NULL;
	if (fstat(fileno(f), &st) == 0 && st.st_size > 0 && st.st_size < (64 << 20) &&
	    (buf = malloc((size_t)st.st_size)) && fread(buf, 1, (size_t)st.st_size, f) !=
							   (size_t)st.st_size) {
		free(buf);
		buf = NULL;
	}
	*len = buf ? (size_t)st.st_size : 0;
	fclose(f);
	return buf;
}

static int newest_first(const void *a, const void *b)
{
	const struct report *x = a, *y = b;
	return x->f->time < y->f->time ? 1 : x->f->time > y->f->time ? -1 : 0;
}

static const char *signame(uint32_t sig)
{
	const char *s = sig < NSIG ? sigabbrev_np((int)sig) : NULL;
	static char buf[24];

	snprintf(buf, sizeof(buf), "SIG%s", s ? s : "?");
	return buf;
}

/* what si_code says of a signal, for people */
static const char *code_name(uint32_t sig, int32_t code)
{
	if (code == SI_USER)
		return "SI_USER: sent by kill()";
	if (code == SI_TKILL)
		return "SI_TKILL: sent by the process itself (raise, abort)";
	if (code == SI_KERNEL)
		return "SI_KERNEL: a general protection fault (e.g. a non-canonical address)";
	if (sig == SIGSEGV && code == SEGV_MAPERR)
		return "SEGV_MAPERR: nothing mapped there";
	if (sig == SIGSEGV && code == SEGV_ACCERR)
		return "SEGV_ACCERR: mapped, but not for this access";
	if (sig == SIGBUS && code == BUS_ADRERR)
		return "BUS_ADRERR: no memory behind the address (a BAR gone?)";
	if (sig == SIGBUS && code == BUS_OBJERR)
		return "BUS_OBJERR: beyond the end of a mapped object";
	if (sig == SIGFPE && code == FPE_INTDIV)
		return "FPE_INTDIV: integer division by zero";
	return "";
}

static void symbol_json(struct json_object *o, const struct bh_symbol *sym)
{
	json_object_object_add(o, "function", json_object_new_string(sym->function));
	json_object_object_add(o, "file", json_object_new_string(sym->file));
	json_object_object_add(o, "line", json_object_new_int(sym->line));
}

static struct json_object *hex(uint64_t v)
{
	char buf[24];
	snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
	return json_object_new_string(buf);
}

/* one report, for people or as JSON; last: how many register accesses */
static struct json_object *show(const struct report *r, size_t last, bool json)
{
	static struct bh_trace_entry e[BH_TRACE_ENTRIES];
	static uint64_t seq[BH_TRACE_ENTRIES];
	const struct bh_crash_file *f = r->f;
	const void *img = bh_crash_ring(r->data);
	const struct bh_trace_header *h = img;
	const struct bh_trace_crash *c = &h->crash;
	struct json_object *o = json_object_new_object(), *bt = json_object_new_array(),
			   *acc = json_object_new_array();
	struct bh_symbolizer sym;
	struct bh_symbol s;
	char why[256], when[32], line[256];
	time_t t = (time_t)f->time;
	struct stat st;
	uint64_t next, lost;
	bool symbols = bh_symbolizer_open(&sym, f->exec, c->ehdr, why, sizeof(why)) == 0;
	bool record = h->crashed == 1 && c->nframes <= BH_TRACE_FRAMES;

	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&t));
	json_object_object_add(o, "component", json_object_new_string(f->component));
	json_object_object_add(o, "time", json_object_new_int64(f->time));
	json_object_object_add(o, "pid", json_object_new_int(f->pid));
	json_object_object_add(o, "restarts", json_object_new_int64(f->restarts));
	json_object_object_add(o, "how", json_object_new_string(f->how));
	json_object_object_add(o, "exec", json_object_new_string(f->exec));
	json_object_object_add(o, "report", json_object_new_string(r->path));
	if (!json) {
		printf("%s: %s at %s (pid %d, after %u restarts)\n", f->component, f->how, when,
		       f->pid, f->restarts);
		printf("  program: %s\n", f->exec);
		if (!symbols)
			printf("  (no function names: %s)\n", why);
		/* a program rebuilt since is not the one that crashed */
		if (stat(f->exec, &st) == 0 && st.st_mtime > f->time)
			printf("  (the program changed after the crash: names may be wrong)\n");
	}
	if (record) {
		json_object_object_add(o, "signal", json_object_new_string(signame(c->signal)));
		json_object_object_add(o, "code", json_object_new_int(c->code));
		json_object_object_add(o, "code_name",
				       json_object_new_string(code_name(c->signal, c->code)));
		json_object_object_add(o, "address", hex(c->addr));
		json_object_object_add(o, "pc", hex(c->pc));
		if (symbols && bh_symbolize(&sym, c->pc, &s) == 0)
			symbol_json(o, &s);
		else
			snprintf(s.function, sizeof(s.function), "?"), s.file[0] = 0, s.line = 0;
		if (!json)
			printf("  %s (code %d%s%s) at address 0x%" PRIx64 "\n  in %s at %s:%d (pc 0x%" PRIx64
			       ")\n  backtrace:\n",
			       signame(c->signal), c->code, code_name(c->signal, c->code)[0] ? ", " : "",
			       code_name(c->signal, c->code), c->addr, s.function, s.file, s.line, c->pc);
		/* from the faulting frame on: before it are the handler and the signal's frame */
		uint32_t from = 0;
		for (uint32_t i = 0; i < c->nframes; i++)
			if (c->frame[i] == c->pc) {
				from = i;
				break;
			}
		for (uint32_t i = from, k = 0; i < c->nframes; i++, k++) {
			/* a return address: the call is the byte before */
			uint64_t at = i == from && c->frame[i] == c->pc ? c->pc : c->frame[i] - 1;
			struct json_object *fr = json_object_new_object();
			json_object_object_add(fr, "pc", hex(c->frame[i]));
			/* the signal trampoline is a frame of its own: its own address */
			if (!(symbols && (bh_symbolize(&sym, at, &s) == 0 ||
					  bh_symbolize(&sym, c->frame[i], &s) == 0)))
				snprintf(s.function, sizeof(s.function), "?"), s.file[0] = 0, s.line = 0;
			symbol_json(fr, &s);
			json_object_array_add(bt, fr);
			if (!json && s.line)
				printf("    #%-2u 0x%-10" PRIx64 " %s at %s:%d\n", k, c->frame[i],
				       s.function, s.file, s.line);
			else if (!json)
				printf("    #%-2u 0x%-10" PRIx64 " %s\n", k, c->frame[i], s.function);
		}
		json_object_object_add(o, "backtrace", bt);
	} else {
		json_object_put(bt);
		if (!json)
			printf("  no record from the component itself (a signal it cannot catch)\n");
	}
	size_t n = bh_trace_collect(img, 0, e, seq, last, &next, &lost);
	json_object_object_add(o, "accesses_total", json_object_new_int64((int64_t)next));
	if (!json)
		printf("  its last %zu of %" PRIu64 " register accesses and interrupts:\n", n,
		       next);
	for (size_t i = 0; i < n; i++) {
		json_object_array_add(acc, bh_trace_entry_json(img, &e[i], seq[i]));
		if (!json) {
			bh_trace_format(img, &e[i], seq[i], line, sizeof(line));
			printf("    %s\n", line);
		}
	}
	json_object_object_add(o, "accesses", acc);
	if (!json)
		printf("  report: %s\n", r->path);
	if (symbols)
		bh_symbolizer_close(&sym);
	return o;
}

struct json_object *bh_crash_brief(const char *path)
{
	struct report r = { 0 };
	struct json_object *o = NULL, *full;
	char why[256];

	snprintf(r.path, sizeof(r.path), "%s", path);
	r.data = slurp_file(path, &r.len);
	if (r.data && bh_crash_check(r.data, r.len, why, sizeof(why)) == 0) {
		static const char *const keys[] = { "how", "signal", "function", "file", "line",
						    "report" };
		r.f = r.data;
		full = show(&r, 0, true);
		o = json_object_new_object();
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			struct json_object *v = json_object_object_get(full, keys[i]);
			if (v)
				json_object_object_add(o, keys[i], json_object_get(v));
		}
		json_object_put(full);
	}
	free(r.data);
	return o;
}

void bh_crash_brief_print(const char *name, const char *path, FILE *f)
{
	struct json_object *o = bh_crash_brief(path), *v;

	if (!o)
		return;
	fprintf(f, "\nlast crash: %s", json_object_get_string(json_object_object_get(o, "how")));
	if ((v = json_object_object_get(o, "signal")))
		fprintf(f, ", %s in %s at %s:%d", json_object_get_string(v),
			json_object_get_string(json_object_object_get(o, "function")),
			json_object_get_string(json_object_object_get(o, "file")),
			json_object_get_int(json_object_object_get(o, "line")));
	fprintf(f, " (bulkhead crashes %s)\n", name);
	json_object_put(o);
}

int bh_cmd_crashes(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },	    { "dir", required_argument, NULL, 'd' },
		{ "last", required_argument, NULL, 'n' }, { "all", no_argument, NULL, 'a' },
		{ "socket", required_argument, NULL, 's' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char dir[PATH_MAX] = "", why[256];
	const char *name = NULL;
	bool json = false, all = false;
	long last = 16;
	struct report *r = NULL;
	size_t nr = 0;
	int opt;
	DIR *d;
	struct dirent *de;

	while ((opt = getopt_long(argc, argv, "jd:n:as:h", opts, NULL)) != -1) {
		if (opt == 'j') {
			json = true;
		} else if (opt == 'a') {
			all = true;
		} else if (opt == 'd') {
			snprintf(dir, sizeof(dir), "%s", optarg);
		} else if (opt == 'n') {
			if (last_option(optarg, &last) < 0)
				return BH_EXIT_USAGE;
		} else if (opt == 's') {
			bh_control_path = optarg;
		} else {
			return bh_cmd_help("crashes", opt == 'h' ? stdout : stderr,
					   opt == 'h' ? 0 : BH_EXIT_USAGE);
		}
	}
	if (optind < argc)
		name = argv[optind++];
	if (optind < argc)
		return bh_cmd_help("crashes", stderr, BH_EXIT_USAGE);
	if (!dir[0]) {
		/* where the running core writes them; the default without one */
		char *reply = NULL;
		bh_control_quiet = true;
		if (bh_control_ask("crashes", &reply) == 0 && strncmp(reply, "ok crashes ", 11) == 0)
			snprintf(dir, sizeof(dir), "%.*s", (int)strcspn(reply + 11, "\n"), reply + 11);
		else
			snprintf(dir, sizeof(dir), "%s", BH_CRASH_DIR);
		free(reply);
	}
	d = opendir(dir);
	if (!d && errno != ENOENT) {
		fprintf(stderr, "bulkhead: %s: %s\n", dir, strerror(errno));
		return BH_EXIT_FAILED;
	}
	while (d && (de = readdir(d))) {
		size_t l = strlen(de->d_name);
		struct report x = { 0 };
		if (l < 7 || strcmp(de->d_name + l - 6, ".crash") != 0)
			continue;
		snprintf(x.path, sizeof(x.path), "%s/%s", dir, de->d_name);
		x.data = slurp_file(x.path, &x.len);
		if (!x.data || bh_crash_check(x.data, x.len, why, sizeof(why)) < 0) {
			fprintf(stderr, "bulkhead: %s: %s\n", x.path, x.data ? why : strerror(errno));
			free(x.data);
			continue;
		}
		x.f = x.data;
		if (name && strcmp(x.f->component, name) != 0) {
			free(x.data);
			continue;
		}
		struct report *grown = realloc(r, (nr + 1) * sizeof(*r));
		if (!grown) {
			free(x.data);
			break;
		}
		r = grown;
		r[nr++] = x;
	}
	if (d)
		closedir(d);
	if (!nr) {
		fprintf(stderr, "bulkhead: no crash reports%s%s in %s\n", name ? " of " : "",
			name ? name : "", dir);
		return name ? BH_EXIT_UNKNOWN : 0;
	}
	qsort(r, nr, sizeof(*r), newest_first);
	/* one component: its newest report in full; all of them: one line each */
	struct json_object *a = json_object_new_array();
	for (size_t i = 0; i < nr; i++) {
		bool full = json || all || (name && i == 0);
		if (full) {
			json_object_array_add(a, show(&r[i], (size_t)last, json));
		} else if (!name) {
			char when[32];
			time_t t = (time_t)r[i].f->time;
			const struct bh_trace_header *h = bh_crash_ring(r[i].data);
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&t));
			printf("%s  %-12s %-28s %s%s\n", when, r[i].f->component, r[i].f->how,
			       r[i].path, h->crashed == 1 ? "" : " (no record)");
		}
		if (!full && name)
			break;
	}
	if (json)
		puts(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PRETTY |
							   JSON_C_TO_STRING_NOSLASHESCAPE));
	else if (!name && !all)
		printf("(bulkhead crashes NAME shows one in full)\n");
	json_object_put(a);
	for (size_t i = 0; i < nr; i++)
		free(r[i].data);
	free(r);
	return 0;
}
