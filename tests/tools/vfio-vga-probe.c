// SPDX-License-Identifier: MIT
/*
 * vfio-vga-probe: does VFIO hand out a VGA device's legacy ranges? For
 * docs/design.md, "Handing out physical memory that is not a PCI BAR".
 * Opens the device's group and the device (bound to vfio-pci, nothing else
 * holding the group), asks for VFIO_PCI_VGA_REGION_INDEX, and reads the
 * miscellaneous output register (port 0x3cc) and the first bytes of the
 * window at 0xa0000 through it. A plain program run as root by the test.
 *
 * usage: vfio-vga-probe GROUP ADDRESS   (e.g. 5 0000:00:02.0)
 */
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct vfio_group_status gs = {.argsz = sizeof(gs)};
	struct vfio_region_info ri = {.argsz = sizeof(ri), .index = VFIO_PCI_VGA_REGION_INDEX};
	char path[64];
	uint8_t misc = 0, window[4] = {0};
	int container, group, dev;

	if (argc != 3) {
		fprintf(stderr, "usage: vfio-vga-probe GROUP ADDRESS\n");
		return 2;
	}
	snprintf(path, sizeof(path), "/dev/vfio/%s", argv[1]);
	container = open("/dev/vfio/vfio", O_RDWR);
	group = open(path, O_RDWR);
	if (container < 0 || group < 0 || ioctl(group, VFIO_GROUP_GET_STATUS, &gs) < 0 ||
	    !(gs.flags & VFIO_GROUP_FLAGS_VIABLE) ||
	    ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) < 0 ||
	    ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU) < 0) {
		printf("vfio-vga-probe: group %s: cannot set up: %m\n", argv[1]);
		return 1;
	}
	dev = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, argv[2]);
	if (dev < 0) {
		printf("vfio-vga-probe: %s: %m\n", argv[2]);
		return 1;
	}
	if (ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &ri) < 0 || !ri.size) {
		printf("vfio-vga-probe: %s: no VGA region (%m)\n", argv[2]);
		return 1;
	}
	/* the region: memory 0xa0000-0xbffff and the ports at their own addresses */
	if (pread(dev, &misc, 1, (off_t) (ri.offset + 0x3cc)) != 1 ||
	    pread(dev, window, sizeof(window), (off_t) (ri.offset + 0xa0000)) != sizeof(window)) {
		printf("vfio-vga-probe: %s: VGA region of %llu bytes, flags 0x%x, unreadable: %m\n",
		       argv[2], (unsigned long long) ri.size, ri.flags);
		return 1;
	}
	printf("vfio-vga-probe: %s: VGA region of %llu bytes, flags 0x%x (%s%s%s); port 0x3cc "
	       "reads 0x%02x, 0xa0000 reads %02x %02x %02x %02x\n",
	       argv[2], (unsigned long long) ri.size, ri.flags,
	       ri.flags & VFIO_REGION_INFO_FLAG_READ ? "read " : "",
	       ri.flags & VFIO_REGION_INFO_FLAG_WRITE ? "write " : "",
	       ri.flags & VFIO_REGION_INFO_FLAG_MMAP ? "mmap" : "no mmap", misc, window[0],
	       window[1], window[2], window[3]);
	return 0;
}
