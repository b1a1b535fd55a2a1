// SPDX-License-Identifier: MIT
/*
 * edu: a driver for QEMU's educational PCI device (1234:11e8), proving
 * stages 2-4 of the classic plan from an unprivileged, sandboxed process:
 * registers through io_mem, interrupts (INTx and MSI) through irq, and the
 * device's DMA engine on memory core mapped into our IOMMU domain.
 *
 * Register map (QEMU docs/specs/edu.rst), BAR0:
 *   0x00 identification 0xRRrr00ed   0x04 liveness: reads back ~value
 *   0x08 factorial                    0x20 status: 0x01 busy, 0x80 irq when done
 *   0x24 interrupt status             0x60 raise interrupt  0x64 acknowledge
 *   0x80 DMA source  0x88 DMA destination  0x90 DMA count
 *   0x98 DMA command: 0x01 start, 0x02 device-to-RAM, 0x04 irq 0x100 when done
 * The device's own DMA buffer sits at 0x40000 (4 KiB); it drives only the
 * low 28 address bits, so our buffers must lie below 256 MiB.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/fault.h"

#define EDU_VENDOR 0x1234
#define EDU_DEVICE 0x11e8

#define EDU_ID 0x00
#define EDU_LIVENESS 0x04
#define EDU_FACTORIAL 0x08
#define EDU_STATUS 0x20
#define EDU_STATUS_BUSY 0x01
#define EDU_IRQ_STATUS 0x24
#define EDU_IRQ_RAISE 0x60
#define EDU_IRQ_ACK 0x64
#define EDU_DMA_SRC 0x80
#define EDU_DMA_DST 0x88
#define EDU_DMA_COUNT 0x90
#define EDU_DMA_CMD 0x98
#define EDU_DMA_START 0x01
#define EDU_DMA_TO_RAM 0x02
#define EDU_DMA_IRQ 0x04
#define EDU_DMA_IRQ_VALUE 0x100
#define EDU_BUFFER 0x40000
#define EDU_BUFFER_SIZE 4096
/* QEMU 7.2's range check wants the transfer to end before the buffer's
 * last byte, and a failed check aborts the whole machine: stay below it */
#define EDU_DMA_MAX (EDU_BUFFER_SIZE - 32)
#define EDU_DMA_LIMIT (1ull << 28)

/* the names traces and crash reports show (bulkhead trace edu) */
static const struct bh_reg_name edu_regs[] = {
	BH_REG(EDU_ID, 4),	    BH_REG(EDU_LIVENESS, 4),   BH_REG(EDU_FACTORIAL, 4),
	BH_REG(EDU_STATUS, 4),	    BH_REG(EDU_IRQ_STATUS, 4), BH_REG(EDU_IRQ_RAISE, 4),
	BH_REG(EDU_IRQ_ACK, 4),	    BH_REG(EDU_DMA_SRC, 8),    BH_REG(EDU_DMA_DST, 8),
	BH_REG(EDU_DMA_COUNT, 8),   BH_REG(EDU_DMA_CMD, 8),
};

struct edu {
	struct bh_core core;
	unsigned int dev;
	struct bh_mmio regs;
	struct bh_irq irq;
	int failures;
};

static void result(struct edu *e, const char *test, int ok, const char *detail)
{
	printf("edu: TEST %-10s %s %s\n", test, ok ? "PASS" : "FAIL", detail);
	if (!ok)
		e->failures++;
}

static void test_identity(struct edu *e)
{
	uint32_t id = bh_read32(&e->regs, EDU_ID);
	char msg[96];

	bh_write32(&e->regs, EDU_LIVENESS, 0x12345678);
	uint32_t live = bh_read32(&e->regs, EDU_LIVENESS);
	snprintf(msg, sizeof(msg), "id 0x%08x (edu %u.%u), liveness ~0x12345678 = 0x%08x", id,
		 id >> 24, (id >> 16) & 0xff, live);
	result(e, "identity", (id & 0xffff) == 0x00ed && live == ~0x12345678u, msg);
}

static void test_factorials(struct edu *e)
{
	uint32_t expect = 1;
	int bad = 0;
	char msg[96] = "";

	for (uint32_t n = 1; n <= 12; n++) {
		expect *= n;
		bh_write32(&e->regs, EDU_FACTORIAL, n);
		if (bh_poll32(&e->regs, EDU_STATUS, EDU_STATUS_BUSY, 0, 1000000) < 0) {
			bad++;
			continue;
		}
		uint32_t got = bh_read32(&e->regs, EDU_FACTORIAL);
		if (got != expect)
			bad++;
		if (n == 10)
			snprintf(msg, sizeof(msg), "10! = %u, 12 factorials checked, %d wrong", got,
				 bad);
	}
	if (bad)
		snprintf(msg, sizeof(msg), "%d of 12 factorials wrong", bad);
	result(e, "factorial", !bad, msg);
}

/* wait for the interrupt, check what raised it, acknowledge at device and core */
static int take_irq(struct edu *e, uint32_t want, uint32_t *status)
{
	int rc = bh_irq_wait(&e->irq, 5000);

	if (rc <= 0)
		return rc ? rc : -ETIMEDOUT;
	*status = bh_read32(&e->regs, EDU_IRQ_STATUS);
	bh_write32(&e->regs, EDU_IRQ_ACK, *status);
	rc = bh_irq_ack(&e->irq);
	return rc < 0 ? rc : ((*status & want) == want ? 0 : -EIO);
}

static void test_irq(struct edu *e, enum bh_irq_type type, const char *name)
{
	uint32_t status = 0;
	char msg[160];
	int rc;

	if (e->irq.fd >= 0)
		bh_irq_close(&e->irq);
	rc = bh_irq_open(&e->core, e->dev, type, 1, &e->irq);
	if (rc < 0) {
		result(e, name, 0, bh_error(&e->core));
		e->irq.fd = -1;
		return;
	}
	/* twice: the second proves the first was acknowledged and unmasked */
	for (uint32_t round = 1; round <= 2 && rc == 0; round++) {
		bh_write32(&e->regs, EDU_IRQ_RAISE, 0x1000 * round);
		rc = take_irq(e, 0x1000 * round, &status);
	}
	snprintf(msg, sizeof(msg), "2 interrupts delivered as eventfd, status 0x%x, acknowledged%s",
		 status, rc ? " -- but the wait failed" : "");
	result(e, name, rc == 0, msg);
}

static int dma_run(struct edu *e, uint64_t src, uint64_t dst, uint32_t count, uint32_t dir)
{
	uint32_t status;

	bh_write64(&e->regs, EDU_DMA_SRC, src);
	bh_write64(&e->regs, EDU_DMA_DST, dst);
	bh_write64(&e->regs, EDU_DMA_COUNT, count);
	bh_write64(&e->regs, EDU_DMA_CMD, EDU_DMA_START | dir | EDU_DMA_IRQ);
	/* completion is signalled by interrupt 0x100 */
	return take_irq(e, EDU_DMA_IRQ_VALUE, &status);
}

/* two page-sized buffers: without an IOMMU each must be physically contiguous */
static void test_dma(struct edu *e)
{
	struct bh_dma out, back;
	char msg[192];
	int rc;

	if (bh_dma_alloc(&e->core, e->dev, EDU_BUFFER_SIZE, EDU_DMA_LIMIT, &out) < 0 ||
	    bh_dma_alloc(&e->core, e->dev, EDU_BUFFER_SIZE, EDU_DMA_LIMIT, &back) < 0) {
		result(e, "dma", 0, bh_error(&e->core));
		return;
	}
	for (int i = 0; i < EDU_BUFFER_SIZE; i++)
		((uint8_t *)out.virt)[i] = (uint8_t)(i * 7 + 3);
	memset(back.virt, 0, EDU_BUFFER_SIZE);
	rc = dma_run(e, out.iova, EDU_BUFFER, EDU_DMA_MAX, 0);
	if (!rc)
		rc = dma_run(e, EDU_BUFFER, back.iova, EDU_DMA_MAX, EDU_DMA_TO_RAM);
	int same = !rc && memcmp(out.virt, back.virt, EDU_DMA_MAX) == 0;
	snprintf(msg, sizeof(msg), "%d bytes RAM->device->RAM, device addresses 0x%llx -> 0x%llx "
				   "(%s), %s",
		 EDU_DMA_MAX, (unsigned long long)out.iova, (unsigned long long)back.iova,
		 e->core.hello.iommu ? "IOMMU-mapped" : "physical",
		 rc ? strerror(-rc) : same ? "data verified" : "data differs");
	result(e, "dma", same, msg);
	/* keep the buffers: core must unmap them when we die */
}

/*
 * a buggy driver: the device is told to write to a device address core
 * never mapped for us. With an IOMMU the write is blocked (core reports
 * the fault from the kernel's log) and nothing of ours or anyone's changes.
 */
static void test_dma_outside(struct edu *e)
{
	const uint64_t wild = 0x0ff00000; /* below edu's 28 bits, never handed out */
	struct bh_dma canary;
	char msg[160];
	int rc;

	if (bh_dma_alloc(&e->core, e->dev, EDU_BUFFER_SIZE, EDU_DMA_LIMIT, &canary) < 0) {
		result(e, "iommu", 0, bh_error(&e->core));
		return;
	}
	memset(canary.virt, 0xc5, EDU_BUFFER_SIZE);
	rc = dma_run(e, EDU_BUFFER, wild, EDU_DMA_MAX, EDU_DMA_TO_RAM);
	int intact = 1;
	for (int i = 0; i < EDU_BUFFER_SIZE; i++)
		intact &= ((uint8_t *)canary.virt)[i] == 0xc5;
	snprintf(msg, sizeof(msg), "device told to write %d bytes to unmapped device address "
				   "0x%llx: %s; our buffers intact: %s",
		 EDU_DMA_MAX, (unsigned long long)wild, rc ? strerror(-rc) : "completed",
		 intact ? "yes" : "NO");
	result(e, "iommu", e->core.hello.iommu && intact && !rc, msg);
}

/* fault injection: the device DMAs to an address we were never given */
static void inject_bad_dma(void *arg)
{
	struct edu *e = arg;

	bh_write64(&e->regs, EDU_DMA_SRC, EDU_BUFFER);
	bh_write64(&e->regs, EDU_DMA_DST, 0x0fe00000);
	bh_write64(&e->regs, EDU_DMA_COUNT, EDU_DMA_MAX);
	bh_write64(&e->regs, EDU_DMA_CMD, EDU_DMA_START | EDU_DMA_TO_RAM);
}

/*
 * fault injection: a bug of our own. The driver takes the DMA source
 * register for a pointer of its own (it is a device address: 0x40000, the
 * device's buffer) and writes through it. Its crash report names this
 * function and line, after the two register reads.
 */
static void inject_crash(void *arg)
{
	struct edu *e = arg;
	uint32_t status = bh_read32(&e->regs, EDU_STATUS);
	volatile uint32_t *buffer = (volatile uint32_t *)(uintptr_t)bh_read64(&e->regs, EDU_DMA_SRC);

	*buffer = status;
}

/* asking for what the policy does not grant: refused with a reason, we keep running */
static void test_denials(struct edu *e)
{
	struct bh_ioport port;
	char msg[BH_ERROR_MAX + 64];
	int denied = 0;

	if (bh_acquire(&e->core, e->core.hello.device_count) < 0) {
		printf("edu: denied: %s\n", bh_error(&e->core));
		denied++;
	}
	if (bh_io_port_isa(&e->core, 0x70, 2, &port) < 0) {
		printf("edu: denied: %s\n", bh_error(&e->core));
		denied++;
	}
	int fd = open("/etc/shadow", O_RDONLY);
	if (fd < 0) {
		printf("edu: sandbox: open(\"/etc/shadow\") refused: %s\n", strerror(errno));
		denied++;
	} else {
		close(fd);
	}
	snprintf(msg, sizeof(msg), "%d of 3 requests outside the policy refused", denied);
	result(e, "policy", denied == 3, msg);
}

int main(int argc, char **argv)
{
	struct edu e = { .irq.fd = -1 };
	int stay = 1, outside = 0;
	struct bh_device_info info;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--exit") == 0)
			stay = 0;
		else if (strcmp(argv[i], "--dma-outside") == 0)
			outside = 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (bh_core_open(&e.core) < 0 ||
	    bh_device_find(&e.core, EDU_VENDOR, EDU_DEVICE, &e.dev) < 0 ||
	    bh_device_info(&e.core, e.dev, &info) < 0 || bh_acquire(&e.core, e.dev) < 0 ||
	    bh_io_mem(&e.core, e.dev, 0, &e.regs) < 0) {
		fprintf(stderr, "edu: %s\n", bh_error(&e.core));
		return 1;
	}
	bh_mmio_names(&e.regs, edu_regs, sizeof(edu_regs) / sizeof(edu_regs[0]));
	printf("edu: uid %u, device %s, BAR0 %zu KiB mapped, %s, start %u\n", getuid(), info.name,
	       e.regs.size >> 10, e.core.hello.iommu ? "DMA confined by the IOMMU" : "NO IOMMU",
	       e.core.hello.restarts + 1);
	test_identity(&e);
	test_factorials(&e);
	test_irq(&e, BH_IRQ_INTX, "intx");
	if (info.irq_count[BH_IRQ_MSI])
		test_irq(&e, BH_IRQ_MSI, "msi");
	else
		printf("edu: TEST msi        SKIP this backend routes INTx only\n");
	test_dma(&e);
	if (outside)
		test_dma_outside(&e);
	test_denials(&e);
	printf("edu: %s (%d failed)\n", e.failures ? "FAILED" : "all tests passed", e.failures);
	bh_fault_hook(BH_FAULT_BAD_DMA, inject_bad_dma, &e);
	bh_fault_hook(BH_FAULT_SEGV, inject_crash, &e);
	bh_fault_arm();
	if (!stay)
		return e.failures ? 1 : 0;
	/* serve until core goes away: heartbeats keep the watchdog content */
	for (;;) {
		struct pollfd p = { .fd = e.core.fd, .events = POLLIN };
		if (poll(&p, 1, 1000) != 0 && (p.revents & (POLLHUP | POLLERR)))
			break;
		if (bh_heartbeat(&e.core) < 0)
			break;
	}
	return 0;
}
