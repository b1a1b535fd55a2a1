// SPDX-License-Identifier: MIT
/*
 * bulkhead: the command line for people.
 *   bulkhead status              what core holds: components, devices, DMA
 *   bulkhead bind [-n] ADDRESS   give a PCI device to vfio-pci (refuses devices the host uses)
 *   bulkhead check CONFIG        parse a system config and report the first mistake
 *   bulkhead inject PID FAULT    make a component fail from inside (fault campaigns)
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "pci.h"

static int usage(void)
{
	fprintf(stderr, "usage: bulkhead status [-s SOCKET]\n"
			"       bulkhead bind [--dry-run] [--driver vfio-pci|uio_pci_generic] "
			"ADDRESS\n"
			"       bulkhead check CONFIG\n"
			"       bulkhead inject PID segv|loop|wild-mmio|bad-desc|bad-dma|oom|fds|abort\n");
	return 2;
}

static int cmd_status(int argc, char **argv)
{
	const char *path = "/run/bulkhead/core.sock";
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[4096];
	ssize_t n;
	int fd;

	if (argc >= 3 && strcmp(argv[1], "-s") == 0)
		path = argv[2];
	if (strlen(path) >= sizeof(sa.sun_path))
		return fprintf(stderr, "bulkhead: socket path too long\n"), 2;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "bulkhead: cannot reach core at %s: %s (is bulkhead-core running? "
				"are you root?)\n",
			path, strerror(errno));
		return 1;
	}
	if (write(fd, "status\n", 7) != 7)
		return 1;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)n, stdout);
	close(fd);
	return 0;
}

static int cmd_bind(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "driver", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	const char *driver = "vfio-pci";
	char why[512], cur[64];
	bool dry = false;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "nd:", opts, NULL)) != -1) {
		if (opt == 'n')
			dry = true;
		else if (opt == 'd')
			driver = optarg;
		else
			return usage();
	}
	if (optind != argc - 1)
		return usage();
	const char *addr = argv[optind];
	int use = bh_pci_host_use(&bh_host_real, addr, why, sizeof(why));
	if (use < 0) {
		fprintf(stderr, "bulkhead: %s (see lspci -D for addresses)\n", why);
		return 1;
	}
	if (use > 0) {
		fprintf(stderr, "bulkhead: refusing to bind %s: the host is using it: %s. "
				"Stop using it first (unmount, ip link set down), then try again.\n",
			addr, why);
		return 1;
	}
	bh_pci_driver(&bh_host_real, addr, cur, sizeof(cur));
	if (dry) {
		printf("%s: not in use by the host; would bind to %s (now: %s)\n", addr, driver,
		       cur[0] ? cur : "no driver");
		return 0;
	}
	if (bh_pci_bind(&bh_host_real, addr, driver, why, sizeof(why)) < 0) {
		fprintf(stderr, "bulkhead: %s\n", why);
		return 1;
	}
	printf("%s: bound to %s\n", addr, driver);
	return 0;
}

/* fault injection: the component must run with env = BULKHEAD_FAULTS=1 */
static int cmd_inject(int argc, char **argv)
{
	static const char *const names[] = { "", "segv", "loop", "wild-mmio", "bad-desc",
					     "bad-dma", "oom", "fds", "abort" };
	union sigval v;
	long pid;
	char *end;

	if (argc != 3)
		return usage();
	pid = strtol(argv[1], &end, 10);
	if (*end || pid <= 1) {
		fprintf(stderr, "bulkhead: inject: '%s' is not a component's pid (see bulkhead "
				"status)\n",
			argv[1]);
		return 2;
	}
	v.sival_int = 0;
	for (int i = 1; i < (int)(sizeof(names) / sizeof(names[0])); i++)
		if (strcmp(argv[2], names[i]) == 0)
			v.sival_int = i;
	if (!v.sival_int) {
		fprintf(stderr, "bulkhead: inject: unknown fault '%s'; one of segv loop wild-mmio "
				"bad-desc bad-dma oom fds abort\n",
			argv[2]);
		return 2;
	}
	if (sigqueue((pid_t)pid, SIGUSR1, v) < 0) {
		fprintf(stderr, "bulkhead: inject %s into %ld: %s\n", argv[2], pid, strerror(errno));
		return 1;
	}
	return 0;
}

static int cmd_check(int argc, char **argv)
{
	static struct bh_config cfg;
	char err[1024];

	if (argc != 2)
		return usage();
	if (bh_config_load(argv[1], &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	printf("%s: ok, %d component(s)\n", argv[1], cfg.ncomp);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (strcmp(argv[1], "status") == 0)
		return cmd_status(argc - 1, argv + 1);
	if (strcmp(argv[1], "bind") == 0)
		return cmd_bind(argc - 1, argv + 1);
	if (strcmp(argv[1], "check") == 0)
		return cmd_check(argc - 1, argv + 1);
	if (strcmp(argv[1], "inject") == 0)
		return cmd_inject(argc - 1, argv + 1);
	return usage();
}
