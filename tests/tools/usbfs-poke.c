// SPDX-License-Identifier: MIT
/*
 * usbfs-poke: requests through the kernel's usbfs (linux/usbdevice_fs.h)
 * that a device served by the usb-usbip bridge must answer with an error,
 * and one it must answer after them; for tests/vm/usbip.sh (a plain
 * program, run as root in the test machine).
 *
 * usage: usbfs-poke VID:PID IN-ENDPOINT
 *
 * The kernel's own checks let vendor requests through to the device as
 * they are (drivers/usb/core/devio.c, check_ctrlrecip), and standard ones
 * to the device itself, so these reach the bridge:
 *   no_such_endpoint   vendor request to endpoint 0x8f      -> EINVAL (the xhci driver)
 *   no_such_interface  vendor request to interface 9        -> EINVAL (the xhci driver)
 *   set_configuration  SET_CONFIGURATION(7)                 -> EPERM (the bridge)
 *   test_mode          SET_FEATURE(TEST_MODE)               -> EPERM (the xhci driver)
 *   giant_length       a 2 MiB bulk IN                      -> EMSGSIZE (the bridge)
 *   unlink             a bulk IN the device does not answer -> ETIMEDOUT, after the
 *                      kernel unlinked it (CMD_UNLINK)
 *   still_served       GET_DESCRIPTOR(device)               -> its 18 bytes
 * Each prints "usbfs-poke: check NAME PASS|FAIL detail".
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <linux/usbdevice_fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define GIANT (2u << 20)

static int failures;

static void check(const char *name, int rc, int want, const char *what)
{
	int got = rc < 0 ? errno : 0;
	bool ok = want ? rc < 0 && got == want : rc >= 0;

	printf("usbfs-poke: check %s %s %s: %s (want %s)\n", name, ok ? "PASS" : "FAIL", what,
	       rc < 0 ? strerror(got) : "succeeded", want ? strerror(want) : "success");
	failures += !ok;
}

static int control(int fd, unsigned int type, unsigned int req, unsigned int value,
		   unsigned int index, void *data, unsigned int len)
{
	struct usbdevfs_ctrltransfer c = {.bRequestType = (__u8) type,
					  .bRequest = (__u8) req,
					  .wValue = (__u16) value,
					  .wIndex = (__u16) index,
					  .wLength = (__u16) len,
					  .timeout = 3000,
					  .data = data};

	return ioctl(fd, USBDEVFS_CONTROL, &c);
}

/* /dev/bus/usb/BBB/DDD of the device vid:pid, from sysfs */
static int find(unsigned int vid, unsigned int pid, char *path, size_t len)
{
	DIR *d = opendir("/sys/bus/usb/devices");
	struct dirent *e;
	int found = -1;

	while (d && (e = readdir(d)) && found < 0) {
		char p[300];
		unsigned int v = 0, i = 0, bus = 0, dev = 0;
		FILE *f;
		snprintf(p, sizeof(p), "/sys/bus/usb/devices/%s/uevent", e->d_name);
		f = fopen(p, "re");
		if (!f)
			continue;
		char line[128];
		while (fgets(line, sizeof(line), f)) {
			sscanf(line, "PRODUCT=%x/%x/", &v, &i);
			sscanf(line, "BUSNUM=%u", &bus);
			sscanf(line, "DEVNUM=%u", &dev);
		}
		fclose(f);
		if (v == vid && i == pid && bus && dev) {
			snprintf(path, len, "/dev/bus/usb/%03u/%03u", bus, dev);
			found = 0;
		}
	}
	if (d)
		closedir(d);
	return found;
}

int main(int argc, char **argv)
{
	unsigned int vid, pid, ep;
	char path[64];
	unsigned char desc[18];
	unsigned char *big;
	int fd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 3 || sscanf(argv[1], "%x:%x", &vid, &pid) != 2 ||
	    sscanf(argv[2], "%x", &ep) != 1 || !(ep & 0x80)) {
		fprintf(stderr, "usage: usbfs-poke VID:PID IN-ENDPOINT (e.g. 08e6:4433 0x82)\n");
		return 2;
	}
	if (find(vid, pid, path, sizeof(path)) < 0) {
		fprintf(stderr, "usbfs-poke: no USB device %04x:%04x in /sys/bus/usb/devices\n",
			vid, pid);
		return 1;
	}
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "usbfs-poke: %s: %s\n", path, strerror(errno));
		return 1;
	}
	printf("usbfs-poke: %04x:%04x is %s\n", vid, pid, path);
	check("no_such_endpoint", control(fd, 0xc2, 1, 0, 0x8f, desc, 8), EINVAL,
	      "vendor request to endpoint 0x8f");
	check("no_such_interface", control(fd, 0xc1, 1, 0, 9, desc, 8), EINVAL,
	      "vendor request to interface 9");
	check("set_configuration", control(fd, 0x00, 9, 7, 0, NULL, 0), EPERM,
	      "SET_CONFIGURATION(7)");
	check("test_mode", control(fd, 0x00, 3, 2, 0x0100, NULL, 0), EPERM,
	      "SET_FEATURE(TEST_MODE)");
	big = malloc(GIANT);
	struct usbdevfs_bulktransfer b = {.ep = ep, .len = GIANT, .timeout = 5000, .data = big};
	check("giant_length", big ? ioctl(fd, USBDEVFS_BULK, &b) : -1, EMSGSIZE, "a 2 MiB bulk IN");
	b.len = 64;
	b.timeout = 300;
	check("unlink", ioctl(fd, USBDEVFS_BULK, &b), ETIMEDOUT,
	      "a bulk IN nobody answers, unlinked after 300 ms");
	free(big);
	int n = control(fd, 0x80, 6, 1 << 8, 0, desc, sizeof(desc));
	check("still_served", n == 18 && desc[1] == 1 ? 0 : -1, 0, "GET_DESCRIPTOR(device)");
	close(fd);
	return failures ? 1 : 0;
}
