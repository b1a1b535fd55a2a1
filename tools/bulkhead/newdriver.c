// SPDX-License-Identifier: MIT
/*
 * bulkhead new-driver NAME [DIR]: a driver folder from the template
 * (templates/driver/ in the source tree, share/bulkhead/templates/driver/
 * once installed): NAME.c, a Makefile that needs only pkg-config bulkhead,
 * and NAME.conf, the section to paste into core's config.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"

/* the template's files, and what they become: NAME + suffix, or Makefile (NULL) */
static const struct {
	const char *from;
	const char *to_suffix;
} files[] = {
    {"driver.c.in", ".c"},
    {"driver.conf.in", ".conf"},
    {"Makefile.in", NULL},
};

/* C's keywords cannot name a struct or a function */
static bool keyword(const char *s)
{
	static const char *const words[] = {
	    "auto",	"break",    "case",	     "char",	     "const",	  "continue",
	    "default",	"do",	    "double",	     "else",	     "enum",	  "extern",
	    "float",	"for",	    "goto",	     "if",	     "inline",	  "int",
	    "long",	"register", "restrict",	     "return",	     "short",	  "signed",
	    "sizeof",	"static",   "struct",	     "switch",	     "typedef",	  "union",
	    "unsigned", "void",	    "volatile",	     "while",	     "bool",	  "true",
	    "false",	"main",	    "_Bool",	     "_Atomic",	     "alignas",	  "alignof",
	    "nullptr",	"typeof",   "static_assert", "thread_local", "constexpr",
	};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcmp(s, words[i]) == 0)
			return true;
	return false;
}

/* NULL if name can be a driver's name, else why not */
static const char *bad_name(const char *name)
{
	if (!name[0])
		return "it is empty";
	if (strlen(name) >= BH_NAME_MAX)
		return "it is longer than a component's name may be (31 characters)";
	if (isdigit((unsigned char) name[0]))
		return "it starts with a digit";
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char) *p) && *p != '_')
			return "it holds a character other than a letter, a digit or _";
	if (keyword(name))
		return "it is a C keyword (or main)";
	return NULL;
}

/* where the templates are: 0 with the folder in dir, or -1 with where it looked */
static int templates(char *dir, size_t len)
{
	char exe[PATH_MAX], tried[3 * PATH_MAX] = "";
	const char *env = getenv("BULKHEAD_TEMPLATES");
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	const char *candidates[3];
	char relocated[PATH_MAX];
	int nc = 0;

	exe[n > 0 ? n : 0] = 0;
	if (env) {
		candidates[nc++] = env;
	} else {
		/* run from the build tree: the source tree's */
		if (strncmp(exe, BH_BUILD_ROOT "/", strlen(BH_BUILD_ROOT "/")) == 0)
			candidates[nc++] = BH_SOURCE_ROOT "/templates";
		/* installed (or staged): beside the binary, PREFIX/bin/../share */
		if (strrchr(exe, '/')) {
			*strrchr(exe, '/') = 0;
			snprintf(relocated, sizeof(relocated), "%s/../share/bulkhead/templates",
				 exe);
			candidates[nc++] = relocated;
		}
		candidates[nc++] = BH_DATADIR "/bulkhead/templates";
	}
	for (int i = 0; i < nc; i++) {
		struct stat st;
		snprintf(dir, len, "%s/driver", candidates[i]);
		if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
			char real[PATH_MAX];
			if (realpath(dir, real))
				snprintf(dir, len, "%s", real);
			return 0;
		}
		snprintf(tried + strlen(tried), sizeof(tried) - strlen(tried), "%s%s",
			 i ? ", " : "", dir);
	}
	fprintf(stderr,
		"bulkhead: new-driver: no driver template in %s; install bulkhead (meson install) "
		"or set BULKHEAD_TEMPLATES to a folder holding driver/\n",
		tried);
	return -1;
}

/* in's text into out, with each @KEY@ of keys replaced by its value */
static int expand(const char *in, const char *out, const char *const keys[][2], int nkeys)
{
	FILE *f = fopen(in, "re"), *g;
	char *text = NULL;
	size_t cap = 0;
	int rc = 0;

	if (!f || getdelim(&text, &cap, 0, f) < 0) {
		fprintf(stderr, "bulkhead: new-driver: cannot read %s: %s\n", in, strerror(errno));
		if (f)
			fclose(f);
		free(text);
		return -1;
	}
	fclose(f);
	g = fopen(out, "wxe");
	if (!g) {
		fprintf(stderr, "bulkhead: new-driver: cannot write %s: %s\n", out,
			strerror(errno));
		free(text);
		return -1;
	}
	for (const char *p = text; *p;) {
		int k;
		for (k = 0; k < nkeys; k++)
			if (strncmp(p, keys[k][0], strlen(keys[k][0])) == 0)
				break;
		if (k < nkeys) {
			fputs(keys[k][1], g);
			p += strlen(keys[k][0]);
		} else {
			fputc(*p++, g);
		}
	}
	if (fclose(g) != 0) {
		fprintf(stderr, "bulkhead: new-driver: writing %s: %s\n", out, strerror(errno));
		rc = -1;
	}
	free(text);
	return rc;
}

int bh_cmd_new_driver(int argc, char **argv)
{
	char tdir[PATH_MAX], upper[BH_NAME_MAX], abs[PATH_MAX], from[PATH_MAX * 2],
	    to[PATH_MAX * 2];
	const char *name, *dir, *why;
	struct stat st;

	if (argc < 2 || argc > 3)
		return bh_cmd_help("new-driver", stderr, BH_EXIT_USAGE);
	name = argv[1];
	dir = argc == 3 ? argv[2] : name;
	why = bad_name(name);
	if (why) {
		fprintf(stderr,
			"bulkhead: new-driver: '%s' cannot name a driver: %s. The name becomes C "
			"identifiers and the component's name: letters, digits and _, not starting "
			"with a digit (e.g. my_nic)\n",
			name, why);
		return BH_EXIT_USAGE;
	}
	if (lstat(dir, &st) == 0) {
		fprintf(stderr,
			"bulkhead: new-driver: %s exists already: name a folder that does not "
			"(bulkhead new-driver %s DIR), or remove it\n",
			dir, name);
		return BH_EXIT_FAILED;
	}
	if (templates(tdir, sizeof(tdir)) < 0)
		return BH_EXIT_FAILED;
	if (mkdir(dir, 0755) < 0 || !realpath(dir, abs)) {
		fprintf(stderr, "bulkhead: new-driver: cannot make %s: %s\n", dir, strerror(errno));
		return BH_EXIT_FAILED;
	}
	for (size_t i = 0; i <= strlen(name); i++)
		upper[i] = (char) toupper((unsigned char) name[i]);
	const char *const keys[][2] = {{"@NAME@", name}, {"@UPPER@", upper}, {"@DIR@", abs}};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(from, sizeof(from), "%s/%s", tdir, files[i].from);
		if (files[i].to_suffix)
			snprintf(to, sizeof(to), "%s/%s%s", abs, name, files[i].to_suffix);
		else
			snprintf(to, sizeof(to), "%s/Makefile", abs);
		if (expand(from, to, keys, 3) < 0)
			return BH_EXIT_FAILED;
	}
	printf("made %s/ from %s:\n"
	       "  %s.c: the driver: takes its device, maps BAR0, names its registers,\n"
	       "    heartbeats, exits cleanly when core stops it\n"
	       "  Makefile: builds bulkhead-%s with pkg-config bulkhead alone\n"
	       "  %s.conf: its section for core's config\n"
	       "next: make -C %s, paste %s/%s.conf into core's config (set its device), then "
	       "bulkhead reload\n",
	       abs, tdir, name, name, name, dir, dir, name);
	return 0;
}
