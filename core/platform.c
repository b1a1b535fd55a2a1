// SPDX-License-Identifier: MIT
/*
 * The platform: which devices each component's policy grants. Core resolves
 * every policy at start, takes the granted devices from the kernel through
 * the backend, and holds them for the components' whole lives.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core.h"
#include "policy.h"

static bool iommu_present(void)
{
	DIR *d = opendir("/sys/kernel/iommu_groups");
	struct dirent *e;
	bool any = false;

	while (d && !any && (e = readdir(d)))
		any = e->d_name[0] != '.';
	if (d)
		closedir(d);
	return any;
}

static int choose_backend(struct bh_core_state *core, char *err, size_t err_len)
{
	bool iommu = iommu_present();

	switch (core->cfg.backend) {
	case BH_BACKEND_VFIO:
		if (!iommu) {
			snprintf(err, err_len, "%s: backend = vfio, but this machine has no IOMMU "
					       "groups: boot with intel_iommu=on (or amd_iommu=on), "
					       "or set backend = uio (unsafe: DMA not confined)",
				 core->cfg.path);
			return -ENODEV;
		}
		core->backend = &bh_backend_vfio;
		break;
	case BH_BACKEND_UIO:
		core->backend = &bh_backend_uio;
		break;
	case BH_BACKEND_AUTO:
		core->backend = iommu ? &bh_backend_vfio : &bh_backend_uio;
		break;
	}
	if (!core->backend->iommu) {
		bh_log("WARNING: no IOMMU in use: DMA is NOT confined. A driver's device can read "
		       "and write all of memory. Boot with intel_iommu=on for isolation.");
		bh_log("WARNING: running the uio_pci_generic backend (unsafe mode)");
	}
	return 0;
}

static int add_device(struct bh_core_state *core, struct bh_component *c,
		      const struct bh_pci_dev *pci)
{
	struct bh_device *dev;
	char err[512];

	for (int i = 0; i < core->ndevices; i++) {
		if (strcmp(core->devices[i].pci.address, pci->address) != 0)
			continue;
		if (core->devices[i].owner != c->index)
			bh_log("policy: %s is granted to both \"%s\" and \"%s\"; \"%s\" keeps it",
			       pci->address, core->comp[core->devices[i].owner].cfg->name,
			       c->cfg->name, core->comp[core->devices[i].owner].cfg->name);
		return 0;
	}
	if (core->ndevices >= BH_MAX_DEVICES || c->ndevices >= BH_MAX_DEVICES) {
		bh_log("policy: too many devices; %s left out", pci->address);
		return -ENOSPC;
	}
	dev = &core->devices[core->ndevices];
	memset(dev, 0, sizeof(*dev));
	dev->pci = *pci;
	dev->owner = c->index;
	dev->group_fd = dev->device_fd = dev->config_fd = -1;
	dev->irq_active = -1;
	dev->unmask_fd = -1;
	if (core->backend->open(dev, &c->domain, err, sizeof(err)) < 0) {
		bh_log("device %s (%s) for \"%s\" cannot be used: %s", pci->address, pci->name,
		       c->cfg->name, err);
		core->backend->close(dev);
		return -EIO;
	}
	/* a clean device: no DMA, no interrupts until a driver acquires it */
	bh_device_set_bus_master(core->backend, dev, false);
	if (dev->can_reset && core->backend->reset(dev) == 0)
		dev->resets++;
	c->devices[c->ndevices++] = core->ndevices++;
	bh_log("device %s %04x:%04x (%s, %s) -> \"%s\" via %s, IOMMU group %d, reset %s",
	       pci->address, pci->vendor, pci->device, bh_class_name(pci->class_code), pci->name,
	       c->cfg->name, core->backend->name, pci->iommu_group,
	       dev->can_reset ? "available" : "not available");
	return 0;
}

/* the devices c's policy grants, of the npci the host has */
static void resolve(struct bh_core_state *core, struct bh_component *c,
		    const struct bh_pci_dev *pci, int npci)
{
	const struct bh_component_config *cc = c->cfg;

	c->domain.container_fd = -1;
	for (int mi = 0; mi < cc->nmatch; mi++) {
		const struct bh_match *m = &cc->match[mi];
		int found = 0;

		for (int pi = 0; pi < npci; pi++) {
			char why[256];
			if (!bh_policy_matches(m, &pci[pi]))
				continue;
			found++;
			if (bh_pci_host_use(&bh_host_real, pci[pi].address, why, sizeof(why)) == 1 &&
			    !m->take_from_host) {
				bh_log("policy: \"%s\" does not get %s (%s): the host is using it: "
				       "%s. To take it anyway, name it by address: device = %s "
				       "take-from-host",
				       cc->name, pci[pi].address, pci[pi].name, why, pci[pi].address);
				continue;
			}
			add_device(core, c, &pci[pi]);
		}
		if (!found)
			bh_log("policy: %s:%d: no PCI device matches for \"%s\"", core->cfg.path,
			       m->line, cc->name);
	}
}

int bh_platform_init(struct bh_core_state *core, char *err, size_t err_len)
{
	struct bh_pci_dev *pci = NULL;
	int npci = 0, rc;

	rc = choose_backend(core, err, err_len);
	if (rc)
		return rc;
	rc = bh_pci_scan(&bh_host_real, &pci, &npci, err, err_len);
	if (rc)
		return rc;
	for (int ci = 0; ci < core->ncomp; ci++)
		resolve(core, &core->comp[ci], pci, npci);
	free(pci);
	return 0;
}

int bh_platform_add(struct bh_core_state *core, struct bh_component *c)
{
	struct bh_pci_dev *pci = NULL;
	char err[512];
	int npci = 0, rc = bh_pci_scan(&bh_host_real, &pci, &npci, err, sizeof(err));

	if (rc) {
		bh_log("\"%s\": %s", c->cfg->name, err);
		return rc;
	}
	resolve(core, c, pci, npci);
	free(pci);
	return 0;
}

/*
 * core bound dev to vfio-pci (or uio_pci_generic) at its start: clear the
 * override and let the kernel's own driver, if it has one, probe it again.
 * A device root bound beforehand (bulkhead bind) stays as root left it.
 */
static void give_back(const struct bh_device *dev)
{
	const char *addr = dev->pci.address;
	char now[64], err[512];

	bh_pci_driver(&bh_host_real, addr, now, sizeof(now));
	if (strcmp(now, dev->pci.driver) == 0)
		return;
	if (bh_pci_unbind(&bh_host_real, addr, err, sizeof(err)) < 0) {
		bh_log("device %s: cannot give it back to the kernel: %s", addr, err);
		return;
	}
	bh_pci_driver(&bh_host_real, addr, now, sizeof(now));
	bh_log("device %s given back to the kernel: driver %s (core found it with %s)", addr,
	       now[0] ? now : "none", dev->pci.driver[0] ? dev->pci.driver : "none");
}

void bh_platform_fini(struct bh_core_state *core)
{
	for (int i = 0; i < core->ndevices; i++) {
		struct bh_device *dev = &core->devices[i];
		bh_device_irq_close(core, dev);
		bh_device_set_bus_master(core->backend, dev, false);
		core->backend->close(dev);
	}
	for (int i = 0; i < core->ncomp; i++)
		core->backend->domain_close(&core->comp[i].domain);
	/* every fd on them closed: the kernel may take them */
	for (int i = 0; i < core->ndevices; i++)
		give_back(&core->devices[i]);
}

void bh_device_irq_close(struct bh_core_state *core, struct bh_device *dev)
{
	if (dev->unmask_fd >= 0) {
		epoll_ctl(core->epfd, EPOLL_CTL_DEL, dev->unmask_fd, NULL);
		close(dev->unmask_fd);
		dev->unmask_fd = -1;
	}
	core->backend->irq_close(dev);
}

int bh_device_irq_watch_unmask(struct bh_core_state *core, struct bh_device *dev, int ack_fd)
{
	struct epoll_event ev = { .events = EPOLLIN,
				  .data.u64 = BH_TAG(BH_TAG_UNMASK, dev - core->devices) };

	dev->unmask_fd = fcntl(ack_fd, F_DUPFD_CLOEXEC, 0);
	if (dev->unmask_fd < 0 || epoll_ctl(core->epfd, EPOLL_CTL_ADD, dev->unmask_fd, &ev) < 0)
		return -errno;
	return 0;
}

void bh_device_irq_unmask(struct bh_core_state *core, struct bh_device *dev)
{
	uint64_t n;

	if (dev->unmask_fd >= 0 && read(dev->unmask_fd, &n, sizeof(n)) == sizeof(n) &&
	    core->backend->irq_unmask)
		core->backend->irq_unmask(dev);
}

int bh_device_command(const struct bh_backend_ops *ops, struct bh_device *dev, uint16_t set,
		      uint16_t clear)
{
	uint16_t cmd;
	int rc = ops->config_read(dev, 4, &cmd, sizeof(cmd));

	if (rc)
		return rc;
	cmd = (uint16_t)((cmd | set) & ~clear);
	return ops->config_write(dev, 4, &cmd, sizeof(cmd));
}

int bh_device_set_bus_master(const struct bh_backend_ops *ops, struct bh_device *dev, bool on)
{
	/* command register bit 2: bus master enable */
	int rc = bh_device_command(ops, dev, on ? 0x4 : 0, on ? 0 : 0x4);

	if (!rc)
		dev->bus_master = on;
	return rc;
}
