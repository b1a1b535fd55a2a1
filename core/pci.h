/* SPDX-License-Identifier: MIT */
/* PCI devices as sysfs shows them: enumeration, host use, driver binding. */
#ifndef BH_CORE_PCI_H
#define BH_CORE_PCI_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bulkhead/proto.h"

struct bh_pci_dev {
	char address[16]; /* "0000:00:03.0" */
	uint16_t vendor;
	uint16_t device;
	uint32_t class_code; /* 0xCCSSPP */
	uint64_t bar_size[BH_MAX_REGIONS];
	uint32_t bar_flags[BH_MAX_REGIONS]; /* enum bh_region_flags */
	char driver[32];		    /* bound driver or "" */
	int iommu_group;		    /* -1: none */
	char name[96];			    /* vendor and device names, for people */
};

/* where sysfs and procfs live; tests point these at fake trees */
struct bh_host {
	const char *sysfs;     /* "/sys" */
	const char *mountinfo; /* "/proc/self/mountinfo" */
	const char *swaps;     /* "/proc/swaps" */
};

extern const struct bh_host bh_host_real;

/* all PCI devices; *devs is malloc'ed */
int bh_pci_scan(const struct bh_host *h, struct bh_pci_dev **devs, int *ndevs, char *err,
		size_t err_len);

/*
 * Is the host using this device? 1 with the reason in why (a mounted
 * filesystem or swap on one of its disks, an interface that is up, the boot
 * display, the system console), 0 if not.
 */
int bh_pci_host_use(const struct bh_host *h, const char *address, char *why, size_t why_len);

/* bind to driver ("vfio-pci", "uio_pci_generic") with driver_override; 0 or -errno */
int bh_pci_bind(const struct bh_host *h, const char *address, const char *driver, char *err,
		size_t err_len);

/* the device's current driver into buf ("" if none) */
void bh_pci_driver(const struct bh_host *h, const char *address, char *buf, size_t len);

/* a sysfs attribute of the device ("reset_method", "class"), first line; 0 or -errno */
int bh_pci_attr(const struct bh_host *h, const char *address, const char *attr, char *buf,
		size_t len);

/* back to the kernel's own driver: clear driver_override, unbind, probe; 0 or -errno */
int bh_pci_unbind(const struct bh_host *h, const char *address, char *err, size_t err_len);

/* load a kernel module by running modprobe; 0 or -1 */
int bh_modprobe(const char *module);
/* a short string into a sysfs attribute: 0 or -errno */
int bh_sysfs_write(const char *path, const char *s);

#endif
