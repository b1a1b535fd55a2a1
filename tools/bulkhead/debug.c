// SPDX-License-Identifier: MIT
/*
 * bulkhead debug NAME [GDB-ARGS...]: gdb on a running component, from
 * outside its sandbox. Core names the component's pid as the host sees it
 * and its program; this command keeps core's connection open while gdb
 * runs (core pauses the component's watchdog while gdb holds it stopped),
 * and closes it when gdb ends: if this command dies, the kernel closes it,
 * and the watchdog runs again.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"

/* gdb: --gdb, then $BULKHEAD_GDB, then "gdb" in $PATH; the path into buf, or NULL */
static const char *find_gdb(const char *given, char *buf, size_t len)
{
	const char *path = getenv("PATH");
	const char *name = given ? given : getenv("BULKHEAD_GDB");

	if (name && strchr(name, '/'))
		return access(name, X_OK) == 0 ? name : NULL;
	if (!name)
		name = "gdb";
	for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
		size_t n = strcspn(p, ":");
		if ((size_t) snprintf(buf, len, "%.*s/%s", (int) n, p, name) < len &&
		    access(buf, X_OK) == 0)
			return buf;
		p += n + (p[n] == ':');
	}
	return NULL;
}

/* core's first line, a byte at a time: what follows on fd is not ours to read */
static int read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;

	while (n + 1 < len) {
		ssize_t r = read(fd, buf + n, 1);
		if (r <= 0)
			return -1;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = 0;
	return 0;
}

/* the program the component runs: core's exec, unless it was replaced on disk since */
static const char *program(long pid, const char *exec, char *buf, size_t len)
{
	struct stat on_disk, running;

	snprintf(buf, len, "/proc/%ld/exe", pid);
	if (stat(exec, &on_disk) == 0 && stat(buf, &running) == 0 &&
	    (on_disk.st_dev != running.st_dev || on_disk.st_ino != running.st_ino)) {
		fprintf(stderr,
			"bulkhead: %s changed since the component started: symbols from "
			"the running program (%s)\n",
			exec, buf);
		return buf;
	}
	return exec;
}

int bh_cmd_debug(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"gdb", required_argument, NULL, 'g'},
	    {"socket", required_argument, NULL, 's'},
	    {NULL, 0, NULL, 0},
	};
	const char *given = NULL, *gdb, *exec, *name;
	char gdb_path[PATH_MAX], cmd[64], line[PATH_MAX + 128], exe[64], pid_arg[24];
	struct sigaction ignore = {.sa_handler = SIG_IGN}, old_int, old_quit;
	long pid;
	int opt, fd, status;
	pid_t child;

	/* "+": options stop at NAME; what follows it is gdb's */
	while ((opt = getopt_long(argc, argv, "+g:s:", opts, NULL)) != -1) {
		if (opt == 'g')
			given = optarg;
		else if (opt == 's')
			bh_control_path = optarg;
		else
			return bh_cmd_help("debug", stderr, BH_EXIT_USAGE);
	}
	if (optind >= argc)
		return bh_cmd_help("debug", stderr, BH_EXIT_USAGE);
	name = argv[optind++];
	if (strlen(name) >= BH_NAME_MAX || strchr(name, ' ')) {
		fprintf(stderr, "bulkhead: '%s' cannot be a component's name\n", name);
		return BH_EXIT_UNKNOWN;
	}
	gdb = find_gdb(given, gdb_path, sizeof(gdb_path));
	if (!gdb) {
		fprintf(stderr,
			"bulkhead: debug needs gdb, and %s%s is not there: install Debian's gdb "
			"(apt-get install gdb), or name one with --gdb PATH\n",
			given			 ? given
			: getenv("BULKHEAD_GDB") ? getenv("BULKHEAD_GDB")
						 : "gdb",
			given || getenv("BULKHEAD_GDB") ? "" : " (in $PATH)");
		return BH_EXIT_FAILED;
	}
	snprintf(cmd, sizeof(cmd), "debug %s", name);
	fd = bh_control_connect(cmd);
	if (fd < 0)
		return -fd;
	if (read_line(fd, line, sizeof(line)) < 0) {
		fprintf(stderr, "bulkhead: core closed the connection\n");
		close(fd);
		return BH_EXIT_FAILED;
	}
	/* "ok debug NAME pid=N exec=PATH", or "error KIND text" */
	exec = strstr(line, " exec=");
	if (strncmp(line, "ok debug ", 9) != 0 || !strstr(line, " pid=") || !exec) {
		const char *why = strncmp(line, "error ", 6) == 0 ? strchr(line + 6, ' ') : NULL;
		fprintf(stderr, "bulkhead: %s\n", why ? why + 1 : line);
		close(fd);
		if (strncmp(line, "error unknown", 13) == 0)
			return BH_EXIT_UNKNOWN;
		return strncmp(line, "error usage", 11) == 0 ? BH_EXIT_USAGE : BH_EXIT_FAILED;
	}
	pid = strtol(strstr(line, " pid=") + 5, NULL, 10);
	exec = program(pid, exec + 6, exe, sizeof(exe));
	snprintf(pid_arg, sizeof(pid_arg), "%ld", pid);

	/* gdb, then what the user added; the terminal's ^C and ^\ are gdb's */
	char **args = calloc((size_t) (argc - optind) + 8, sizeof(*args));
	int n = 0;
	if (!args)
		return BH_EXIT_FAILED;
	args[n++] = (char *) gdb;
	args[n++] = "-q";
	args[n++] = "-iex";
	args[n++] = "set debuginfod enabled off";
	args[n++] = "-p";
	args[n++] = pid_arg;
	args[n++] = (char *) exec;
	for (int i = optind; i < argc; i++)
		args[n++] = argv[i];
	sigaction(SIGINT, &ignore, &old_int);
	sigaction(SIGQUIT, &ignore, &old_quit);
	fflush(NULL);
	child = fork();
	if (child == 0) {
		sigaction(SIGINT, &old_int, NULL);
		sigaction(SIGQUIT, &old_quit, NULL);
		close(fd);
		execv(gdb, args);
		fprintf(stderr, "bulkhead: %s: %s\n", gdb, strerror(errno));
		_exit(127);
	}
	free(args);
	if (child < 0) {
		fprintf(stderr, "bulkhead: fork: %s\n", strerror(errno));
		close(fd);
		return BH_EXIT_FAILED;
	}
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	/* gdb has detached (or died, and the kernel detached it): the watchdog runs again */
	close(fd);
	return WIFEXITED(status) ? WEXITSTATUS(status) : BH_EXIT_FAILED;
}
