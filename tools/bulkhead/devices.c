// SPDX-License-Identifier: MIT
/*
 * bulkhead devices, bind, unbind: the machine's PCI devices as sysfs and
 * libpci show them, and handing one to vfio-pci and back, as driverctl and
 * DPDK's dpdk-devbind do (driver_override, then drivers_probe).
 */
#include <dirent.h>
#include <getopt.h>
#include <pci/pci.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "pci.h"

/* an IOMMU group's devices that vfio-pci cannot share it with, "addr (driver), ..." */
static int group_blockers(int group, const char *except, char *buf, size_t len)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	buf[0] = 0;
	snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/%d/devices", group);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char drv[64], cls[16];
		if (e->d_name[0] == '.' || (except && strcmp(e->d_name, except) == 0))
			continue;
		bh_pci_driver(&bh_host_real, e->d_name, drv, sizeof(drv));
		bh_pci_attr(&bh_host_real, e->d_name, "class", cls, sizeof(cls));
		if (bh_group_member_ok(drv, (unsigned int) strtoul(cls, NULL, 16)))
			continue;
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s (%s)", n ? ", " : "",
			 e->d_name, drv);
		n++;
	}
	closedir(d);
	return n;
}

/* the component of a running core that owns address, into buf ("" if none or no core) */
static void owner_of(const char *status, const char *address, char *buf, size_t len)
{
	char *copy = status ? strdup(status) : NULL, *save = NULL;

	buf[0] = 0;
	for (char *line = copy ? strtok_r(copy, "\n", &save) : NULL; line;
	     line = strtok_r(NULL, "\n", &save)) {
		struct bh_record r;
		const char *o;
		if (bh_record_parse(line, &r) == 0 && strcmp(r.kind, "device") == 0 &&
		    strcmp(r.name, address) == 0 && (o = bh_record_get(&r, "owner")) &&
		    strcmp(o, "-"))
			snprintf(buf, len, "%s", o);
	}
	free(copy);
}

/* core's status, quietly: NULL when core does not run */
static char *core_status(void)
{
	char *reply = NULL;

	bh_control_quiet = true;
	if (bh_control_ask("status", &reply) != 0)
		reply = NULL;
	bh_control_quiet = false;
	return reply;
}

static int by_address(const void *a, const void *b)
{
	return strcmp(((const struct bh_pci_dev *) a)->address,
		      ((const struct bh_pci_dev *) b)->address);
}

int bh_cmd_devices(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"socket", required_argument, NULL, 's'},
	    {NULL, 0, NULL, 0},
	};
	static const char *const head[] = {"ADDRESS", "CLASS", "GROUP", "VIABLE",
					   "DRIVER",  "RESET", "OWNER", "DEVICE"};
	struct bh_pci_dev *dev = NULL;
	struct pci_access *acc;
	struct json_object *arr = NULL;
	struct bh_table t;
	char err[512], *status;
	bool json = false;
	int n = 0, opt;

	while ((opt = getopt_long(argc, argv, "js:", opts, NULL)) != -1) {
		if (opt == 'j')
			json = true;
		else if (opt == 's')
			bh_control_path = optarg;
		else
			return bh_cmd_help("devices", stderr, BH_EXIT_USAGE);
	}
	if (optind != argc)
		return bh_cmd_help("devices", stderr, BH_EXIT_USAGE);
	if (bh_pci_scan(&bh_host_real, &dev, &n, err, sizeof(err)) < 0) {
		fprintf(stderr, "bulkhead: %s\n", err);
		return BH_EXIT_FAILED;
	}
	qsort(dev, (size_t) n, sizeof(*dev), by_address);
	status = core_status();
	/* class names from the same ID database lspci reads */
	acc = pci_alloc();
	pci_init(acc);
	if (json)
		arr = json_object_new_array();
	else
		bh_table_init(&t, 8, head);
	for (int i = 0; i < n; i++) {
		const struct bh_pci_dev *d = &dev[i];
		char cls[128], group[16], viable[8], reset[64], owner[64], blockers[512];

		if (!pci_lookup_name(acc, cls, sizeof(cls), PCI_LOOKUP_CLASS, d->class_code >> 8))
			snprintf(cls, sizeof(cls), "class %04x", d->class_code >> 8);
		snprintf(group, sizeof(group), "%d", d->iommu_group);
		if (d->iommu_group < 0)
			snprintf(viable, sizeof(viable), "-");
		else
			snprintf(viable, sizeof(viable), "%s",
				 group_blockers(d->iommu_group, NULL, blockers, sizeof(blockers)) ==
					 0
				     ? "yes"
				     : "no");
		if (bh_pci_attr(&bh_host_real, d->address, "reset_method", reset, sizeof(reset)) <
		    0)
			reset[0] = 0;
		owner_of(status, d->address, owner, sizeof(owner));
		if (json) {
			struct json_object *o = json_object_new_object();
			char id[16];
			snprintf(id, sizeof(id), "%04x:%04x", d->vendor, d->device);
			json_object_object_add(o, "address", json_object_new_string(d->address));
			json_object_object_add(o, "id", json_object_new_string(id));
			json_object_object_add(o, "class", json_object_new_string(cls));
			json_object_object_add(o, "name", json_object_new_string(d->name));
			json_object_object_add(
			    o, "iommu_group",
			    d->iommu_group < 0 ? NULL : json_object_new_int(d->iommu_group));
			json_object_object_add(
			    o, "viable",
			    d->iommu_group < 0 ? NULL : json_object_new_boolean(viable[0] == 'y'));
			json_object_object_add(
			    o, "driver", d->driver[0] ? json_object_new_string(d->driver) : NULL);
			json_object_object_add(o, "reset_method",
					       reset[0] ? json_object_new_string(reset) : NULL);
			json_object_object_add(o, "owner",
					       owner[0] ? json_object_new_string(owner) : NULL);
			json_object_array_add(arr, o);
		} else {
			const char *row[] = {
			    d->address, cls,	   d->iommu_group < 0 ? "-" : group,
			    viable,	d->driver, reset,
			    owner,	d->name};
			bh_table_add(&t, row);
		}
	}
	pci_cleanup(acc);
	free(dev);
	free(status);
	if (json) {
		puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
							     JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(arr);
	} else {
		bh_table_print(&t, stdout);
		bh_table_free(&t);
	}
	return 0;
}

struct bind_args {
	bool dry;
	const char *driver;
	const char *address;
};

static int bind_args(const char *cmd, int argc, char **argv, struct bind_args *a)
{
	static const struct option opts[] = {
	    {"dry-run", no_argument, NULL, 'n'},
	    {"driver", required_argument, NULL, 'd'},
	    {"socket", required_argument, NULL, 's'},
	    {NULL, 0, NULL, 0},
	};
	int opt;

	a->dry = false;
	a->driver = "vfio-pci";
	while ((opt = getopt_long(argc, argv, "nd:s:", opts, NULL)) != -1) {
		if (opt == 'n')
			a->dry = true;
		else if (opt == 'd' && strcmp(cmd, "bind") == 0)
			a->driver = optarg;
		else if (opt == 's')
			bh_control_path = optarg;
		else
			return bh_cmd_help(cmd, stderr, BH_EXIT_USAGE);
	}
	if (optind != argc - 1)
		return bh_cmd_help(cmd, stderr, BH_EXIT_USAGE);
	a->address = argv[optind];
	if (strcmp(a->driver, "vfio-pci") != 0 && strcmp(a->driver, "uio_pci_generic") != 0) {
		fprintf(stderr, "bulkhead: --driver %s: one of vfio-pci, uio_pci_generic\n",
			a->driver);
		return BH_EXIT_USAGE;
	}
	return 0;
}

/* a component of the running core holds it: 1 with the reason printed */
static int held_by_core(const char *verb, const char *address)
{
	char *status = core_status(), owner[64];

	owner_of(status, address, owner, sizeof(owner));
	free(status);
	if (!owner[0])
		return 0;
	fprintf(stderr,
		"bulkhead: refusing to %s %s: core holds it for component \"%s\"; "
		"remove it from the config and stop core first\n",
		verb, address, owner);
	return 1;
}

int bh_cmd_bind(int argc, char **argv)
{
	struct bind_args a;
	char why[512], cur[64];
	int use, rc = bind_args("bind", argc, argv, &a);

	if (rc)
		return rc;
	use = bh_pci_host_use(&bh_host_real, a.address, why, sizeof(why));
	if (use < 0) {
		fprintf(stderr, "bulkhead: %s (bulkhead devices lists them)\n", why);
		return BH_EXIT_UNKNOWN;
	}
	if (use > 0) {
		fprintf(stderr,
			"bulkhead: refusing to bind %s: the host is using it: %s. "
			"Stop using it first (unmount, ip link set down), then try again.\n",
			a.address, why);
		return BH_EXIT_FAILED;
	}
	bh_pci_driver(&bh_host_real, a.address, cur, sizeof(cur));
	if (strcmp(cur, a.driver) == 0) {
		printf("%s: bound to %s already\n", a.address, a.driver);
		return 0;
	}
	if (strcmp(a.driver, "vfio-pci") == 0) {
		char grp[16], link[PATH_MAX], path[PATH_MAX];
		ssize_t n;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", a.address);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0) {
			fprintf(stderr,
				"bulkhead: refusing to bind %s to vfio-pci: it is in no IOMMU "
				"group (no IOMMU): boot with intel_iommu=on (or amd_iommu=on), "
				"or use --driver uio_pci_generic (unsafe: DMA not confined)\n",
				a.address);
			return BH_EXIT_FAILED;
		}
		link[n] = 0;
		snprintf(grp, sizeof(grp), "%s", strrchr(link, '/') + 1);
		if (group_blockers(atoi(grp), a.address, why, sizeof(why)) > 0) {
			fprintf(stderr,
				"bulkhead: refusing to bind %s: its IOMMU group %s is not "
				"viable: %s also in it belong to host drivers. vfio-pci needs "
				"every device of a group: bind those too, or none\n",
				a.address, grp, why);
			return BH_EXIT_FAILED;
		}
	}
	if (a.dry) {
		printf("%s: not in use by the host; would bind to %s (now: %s)\n", a.address,
		       a.driver, cur[0] ? cur : "no driver");
		return 0;
	}
	if (bh_pci_bind(&bh_host_real, a.address, a.driver, why, sizeof(why)) < 0) {
		fprintf(stderr, "bulkhead: %s\n", why);
		return BH_EXIT_FAILED;
	}
	printf("%s: bound to %s (was: %s)\n", a.address, a.driver, cur[0] ? cur : "no driver");
	return 0;
}

int bh_cmd_unbind(int argc, char **argv)
{
	struct bind_args a;
	char why[512], cur[64], now[64];
	int rc = bind_args("unbind", argc, argv, &a);

	if (rc)
		return rc;
	if (bh_pci_host_use(&bh_host_real, a.address, why, sizeof(why)) < 0) {
		fprintf(stderr, "bulkhead: %s (bulkhead devices lists them)\n", why);
		return BH_EXIT_UNKNOWN;
	}
	bh_pci_driver(&bh_host_real, a.address, cur, sizeof(cur));
	if (strcmp(cur, "vfio-pci") != 0 && strcmp(cur, "uio_pci_generic") != 0 &&
	    strcmp(cur, "pci-stub") != 0) {
		printf("%s: not bound to a user-space driver (%s); nothing to do\n", a.address,
		       cur[0] ? cur : "no driver");
		return 0;
	}
	if (held_by_core("unbind", a.address))
		return BH_EXIT_FAILED;
	if (a.dry) {
		printf("%s: would leave %s for its kernel driver\n", a.address, cur);
		return 0;
	}
	if (bh_pci_unbind(&bh_host_real, a.address, why, sizeof(why)) < 0) {
		fprintf(stderr, "bulkhead: %s\n", why);
		return BH_EXIT_FAILED;
	}
	bh_pci_driver(&bh_host_real, a.address, now, sizeof(now));
	printf("%s: left %s; now %s\n", a.address, cur,
	       now[0] ? now : "no driver (no kernel driver for it is loaded)");
	return 0;
}
