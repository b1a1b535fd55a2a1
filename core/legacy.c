// SPDX-License-Identifier: MIT
/*
 * Legacy memory for a driver that runs a video BIOS (drivers/vesa): the
 * interrupt vector table and BIOS data area, the extended BIOS data area
 * and the option ROM, each copied from /dev/mem into a sealed memfd when
 * first asked for, and handed only to components whose policy names it
 * ('legacy = NAME'). The copy is what the machine held then: a snapshot of
 * the data area, whose timer count goes on ticking in the real one.
 *
 * Why copies: /dev/mem is one file for all of memory; an fd to it, or to a
 * mapping of it, cannot be narrowed to a range, so it never leaves core. The
 * ranges here are read-only to the BIOS in practice (ROM, vectors) or its
 * scratch state (BDA, EBDA), so a private copy serves the emulated BIOS as
 * well as the real memory would, and the driver's writes reach nothing.
 * Live device memory (BARs) goes through io_mem instead; docs/design.md,
 * "Handing out physical memory that is not a PCI BAR", has the rest.
 *
 * Addresses: IBM PC/AT BIOS data area (0x400: 0x40e holds the EBDA's
 * segment); PCI Firmware Specification 3.0 section 5.1 (an option ROM
 * image starts 0x55 0xaa, byte 2 its length in 512-byte blocks).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <stdio.h>
#include <unistd.h>

#include "legacy.h"

#define DEVMEM "/dev/mem"
#define BIOS_DATA_END 0x500u
#define BDA_EBDA_SEG 0x40eu
#define EBDA_LOW 0x80000u /* an EBDA below 512 KiB is no EBDA */
#define LOW_MEM_END 0xa0000u
#define VGA_ROM 0xc0000u
#define VGA_ROM_MAX 0x20000u /* 0xc0000-0xdffff: option ROM space before other ROMs */

static const char *const names[BH_LEGACY_KINDS] = BH_LEGACY_NAMES;

/* the copies, made on first request */
static struct copy {
	int fd;
	uint64_t base, size;
} copies[BH_LEGACY_KINDS] = {{.fd = -1}, {.fd = -1}, {.fd = -1}};

int bh_legacy_lookup(const char *name)
{
	for (int i = 0; i < BH_LEGACY_KINDS; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

static int devmem_read(int mem, uint64_t at, void *buf, size_t len)
{
	ssize_t n = pread(mem, buf, len, (off_t) at);

	return n == (ssize_t) len ? 0 : (n < 0 ? -errno : -EIO);
}

/* where kind lies in this machine: 0, or -errno with why */
static int range_of(int mem, enum bh_legacy_kind kind, uint64_t *base, uint64_t *size,
		    char *why, size_t len)
{
	uint8_t hdr[3];
	uint16_t seg;
	int rc;

	switch (kind) {
	case BH_LEGACY_BIOS_DATA:
		*base = 0;
		*size = BIOS_DATA_END;
		return 0;
	case BH_LEGACY_EBDA:
		rc = devmem_read(mem, BDA_EBDA_SEG, &seg, sizeof(seg));
		if (rc)
			break;
		*base = (uint64_t) seg << 4;
		*size = LOW_MEM_END - *base;
		if (*base < EBDA_LOW || *base >= LOW_MEM_END) {
			snprintf(why, len, "the BIOS data area puts the EBDA at 0x%llx: no EBDA "
					   "(expected 0x%x-0x%x)",
				 (unsigned long long) *base, EBDA_LOW, LOW_MEM_END - 1);
			return -ENOENT;
		}
		return 0;
	case BH_LEGACY_VGA_ROM:
		rc = devmem_read(mem, VGA_ROM, hdr, sizeof(hdr));
		if (rc)
			break;
		*base = VGA_ROM;
		*size = hdr[2] * 512u;
		if (hdr[0] != 0x55 || hdr[1] != 0xaa || !*size || *size > VGA_ROM_MAX) {
			snprintf(why, len, "no video BIOS at 0x%x (header %02x %02x, %u blocks): "
					   "was the machine booted by a legacy BIOS?",
				 VGA_ROM, hdr[0], hdr[1], hdr[2]);
			return -ENOENT;
		}
		return 0;
	default:
		snprintf(why, len, "no legacy memory kind %d", kind);
		return -EINVAL;
	}
	snprintf(why, len, "%s: %s", DEVMEM, strerror(-rc));
	return rc;
}

/* a sealed memfd holding physical [base, base+size) */
static int copy_of(int mem, const char *name, uint64_t base, uint64_t size, char *why,
		   size_t len)
{
	char label[32];
	void *buf = malloc(size);
	int fd = -1, rc = buf ? devmem_read(mem, base, buf, size) : -ENOMEM;

	snprintf(label, sizeof(label), "legacy-%s", name);
	if (!rc) {
		fd = memfd_create(label, MFD_CLOEXEC | MFD_ALLOW_SEALING);
		rc = fd < 0 ? -errno : 0;
	}
	if (!rc && pwrite(fd, buf, size, 0) != (ssize_t) size)
		rc = -EIO;
	if (!rc && fcntl(fd, F_ADD_SEALS,
			 F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		rc = -errno;
	free(buf);
	if (rc) {
		snprintf(why, len, "copying 0x%llx-0x%llx: %s", (unsigned long long) base,
			 (unsigned long long) (base + size - 1), strerror(-rc));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	return fd;
}

void bh_legacy_request(struct bh_component *c, const struct bh_request *q, struct bh_msg *reply,
		       int *fd)
{
	uint64_t base = 0, size = 0;
	char why[128];
	int mem, rc;

	if (q->index >= BH_LEGACY_KINDS) {
		bh_refuse(c, reply, EINVAL, "legacy memory kind %u: expected 0-%d (bios-data, "
					    "ebda, vga-rom)",
			  q->index, BH_LEGACY_KINDS - 1);
		return;
	}
	if (!(c->cfg->legacy & (1u << q->index))) {
		bh_refuse(c, reply, EACCES,
			  "legacy memory '%s' is outside the policy of \"%s\": add 'legacy = %s' "
			  "to its [component] section",
			  names[q->index], c->cfg->name, names[q->index]);
		return;
	}
	/*
	 * one copy per kind for core's life, shared (sealed, so no one can change
	 * it): however often drivers ask, core holds at most three, a few hundred KiB
	 */
	struct copy *k = &copies[q->index];
	if (k->fd < 0) {
		mem = open(DEVMEM, O_RDONLY | O_CLOEXEC);
		if (mem < 0) {
			bh_refuse(c, reply, errno, "%s: %s (core needs CAP_SYS_RAWIO)", DEVMEM,
				  strerror(errno));
			return;
		}
		rc = range_of(mem, (enum bh_legacy_kind) q->index, &base, &size, why, sizeof(why));
		if (!rc)
			rc = copy_of(mem, names[q->index], base, size, why, sizeof(why));
		close(mem);
		if (rc < 0) {
			bh_refuse(c, reply, -rc, "legacy memory '%s': %s", names[q->index], why);
			return;
		}
		*k = (struct copy){.fd = rc, .base = base, .size = size};
	}
	*fd = fcntl(k->fd, F_DUPFD_CLOEXEC, 0);
	if (*fd < 0) {
		bh_refuse(c, reply, errno, "legacy memory '%s': dup: %s", names[q->index],
			  strerror(errno));
		return;
	}
	reply->u.grant.size = k->size;
	reply->u.grant.iova = k->base;
	reply->u.grant.nfds = 1;
	bh_log("legacy memory '%s' for \"%s\": a copy of 0x%05llx-0x%05llx", names[q->index],
	       c->cfg->name, (unsigned long long) k->base,
	       (unsigned long long) (k->base + k->size - 1));
}
