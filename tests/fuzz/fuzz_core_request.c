// SPDX-License-Identifier: MIT
/*
 * libFuzzer: core's request path (framing, validation, every service) on
 * arbitrary datagrams from a component. The device behind it is a fake
 * backend that only keeps config space in memory: what is fuzzed is core's
 * own checking, which must refuse or serve, never crash or leak.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bulkhead/msg.h"
#include "core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t config_space[256];

static int fake_config_read(struct bh_device *dev, unsigned int off, void *buf, size_t len)
{
	if (off + len > sizeof(config_space))
		return -5;
	memcpy(buf, config_space + off, len);
	return 0;
}

static int fake_config_write(struct bh_device *dev, unsigned int off, const void *buf, size_t len)
{
	if (off + len > sizeof(config_space))
		return -5;
	memcpy(config_space + off, buf, len);
	return 0;
}

static int fake_irq_open(struct bh_device *dev, int type, unsigned int count, int *fds,
			 int *ack_fd)
{
	for (unsigned int i = 0; i < count; i++)
		fds[i] = eventfd(0, EFD_CLOEXEC);
	*ack_fd = type == BH_IRQ_INTX ? eventfd(0, EFD_CLOEXEC) : -1;
	dev->irq_active = type;
	return type == BH_IRQ_INTX ? BH_ACK_EVENTFD : BH_ACK_NONE;
}

static void fake_irq_close(struct bh_device *dev)
{
	dev->irq_active = -1;
}

static int fake_reset(struct bh_device *dev)
{
	return 0;
}

static int fake_dma_map(struct bh_domain *dom, void *vaddr, uint64_t size, uint64_t *iova)
{
	return 0;
}

static int fake_dma_unmap(struct bh_domain *dom, uint64_t iova, uint64_t size)
{
	return 0;
}

static const struct bh_backend_ops fake = {
	.name = "fake",
	.iommu = true,
	.config_read = fake_config_read,
	.config_write = fake_config_write,
	.irq_open = fake_irq_open,
	.irq_close = fake_irq_close,
	.reset = fake_reset,
	.dma_map = fake_dma_map,
	.dma_unmap = fake_dma_unmap,
};

static struct bh_core_state core;

static void setup(void)
{
	struct bh_component_config *cc = &core.cfg.comp[0];
	struct bh_device *dev = &core.devices[0];

	core.backend = &fake;
	core.epfd = epoll_create1(EPOLL_CLOEXEC);
	core.ncomp = core.cfg.ncomp = 1;
	snprintf(cc->name, sizeof(cc->name), "fuzzed");
	cc->dma_quota = 1 << 20;
	cc->nisa = 1;
	cc->isa[0].base = 0x40;
	cc->isa[0].count = 4;
	cc->nbd = -1;
	cc->nprovides = 1;
	snprintf(cc->provides[0], sizeof(cc->provides[0]), "nic");
	cc->nroutes = 1;
	snprintf(cc->routes[0].service, sizeof(cc->routes[0].service), "nic");
	snprintf(cc->routes[0].server, sizeof(cc->routes[0].server), "fuzzed");
	core.comp[0].cfg = cc;
	core.comp[0].output = -1;
	core.comp[0].tap_fd = -1;
	for (int k = 0; k < BH_MAX_SERVICES; k++)
		core.comp[0].channel[k] = -1;
	core.comp[0].domain.iova_lo = 1 << 20;
	core.comp[0].domain.iova_hi = 1ull << 32;
	core.comp[0].devices[0] = 0;
	core.comp[0].ndevices = 1;
	core.ndevices = 1;
	/* an address no machine has, so io_mem/io_port open nothing real */
	snprintf(dev->pci.address, sizeof(dev->pci.address), "0000:7f:1f.7");
	dev->pci.vendor = 0x1234;
	dev->pci.device = 0x11e8;
	dev->pci.bar_size[0] = 4096;
	dev->pci.bar_flags[0] = BH_REGION_PRESENT | BH_REGION_MMIO;
	dev->pci.bar_size[1] = 8;
	dev->pci.bar_flags[1] = BH_REGION_PRESENT | BH_REGION_IO;
	dev->irq_count[BH_IRQ_INTX] = 1;
	dev->irq_count[BH_IRQ_MSI] = 1;
	dev->irq_count[BH_IRQ_MSIX] = 4;
	dev->irq_active = -1;
	dev->unmask_fd = -1;
	dev->can_reset = true;
}

static void drain(int fd)
{
	struct bh_msg m;
	int fds[BH_MAX_FDS];
	unsigned int n;
	char why[128];

	while (bh_msg_recv(fd, &m, fds, BH_MAX_FDS, &n, why, sizeof(why)) == 1)
		for (unsigned int i = 0; i < n; i++)
			close(fds[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bh_component *c = &core.comp[0];
	int sv[2];

	if (!core.backend)
		setup();
	if (size > 4096)
		return 0;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		abort();
	c->sock = sv[0];
	c->state = BH_RUNNING;
	c->pid = -1; /* never kill anything */
	/* the input is a sequence of datagrams: [len lo][len hi][bytes]... */
	while (size >= 2) {
		size_t len = data[0] | (size_t)data[1] << 8;
		data += 2;
		size -= 2;
		if (len > size)
			len = size;
		if (send(sv[1], data, len, 0) < 0)
			break;
		data += len;
		size -= len;
		if (c->sock >= 0)
			bh_service_request(&core, c);
		drain(sv[1]);
	}
	close(sv[1]);
	bh_component_revoke(&core, c);
	for (int i = 0; i < c->ndevices; i++)
		bh_device_irq_close(&core, &core.devices[c->devices[i]]);
	if (c->ndma || c->dma_bytes)
		abort(); /* revocation must leave nothing */
	return 0;
}
