// SPDX-License-Identifier: MIT
/*
 * hello: the smallest bulkhead component, built outside bulkhead's tree
 * against the installed libbulkhead (pkg-config bulkhead; see Makefile).
 *
 * Core starts it with one capability, its socket to core. It says hello,
 * prints the devices its policy grants (names, ids, class), sends three
 * heartbeats and exits 0: enough to show that a driver built elsewhere
 * runs under an installed core, sandboxed like the drivers in the tree.
 */
#include <stdio.h>
#include <time.h>

#include <bulkhead/bulkhead.h>

int main(void)
{
	struct bh_core core;
	struct timespec beat = {.tv_nsec = 200000000};

	if (bh_core_open(&core) < 0) {
		fprintf(stderr, "hello: %s\n", bh_error(&core));
		return 1;
	}
	printf("hello: I am \"%s\", %u device(s) granted, DMA %s\n", core.hello.component,
	       core.hello.device_count, core.hello.iommu ? "confined by the IOMMU" : "NOT confined");
	for (unsigned int i = 0; i < core.hello.device_count; i++) {
		struct bh_device_info d;
		if (bh_device_info(&core, i, &d) < 0) {
			fprintf(stderr, "hello: device %u: %s\n", i, bh_error(&core));
			return 1;
		}
		printf("hello: device %u: %s %04x:%04x (%s)\n", i, d.name, d.vendor, d.device,
		       d.class_name);
	}
	for (int i = 0; i < 3; i++) {
		if (bh_heartbeat(&core) < 0) {
			fprintf(stderr, "hello: heartbeat: %s\n", bh_error(&core));
			return 1;
		}
		nanosleep(&beat, NULL);
	}
	printf("hello: done\n");
	bh_core_close(&core);
	return 0;
}
