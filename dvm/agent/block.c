// SPDX-License-Identifier: MIT
/*
 * The agent's side of the block channel (bulkhead/vm_blk.h): the guest's
 * first disk (Linux's own nvme driver made it: /dev/nvme0n1), served to
 * the host's vm-blk through the memory of the VM's second ivshmem-doorbell
 * device. It runs in a thread of its own, beside the NIC channel's loop.
 *
 * Each request the host sends is checked against the disk's geometry
 * (bh_block_check: the host is untrusted too) and goes to the disk with
 * O_DIRECT through Linux AIO (io_submit), up to BH_VMBLK_RING in flight;
 * completions come back on an eventfd. The device memory (a PCI BAR)
 * cannot take O_DIRECT's DMA, so each request has a bounce buffer of ours:
 * a write's data is copied in before, a read's out after. Flush is
 * fdatasync, trim BLKDISCARD, both done at once (they are rare).
 *
 * A new epoch (at start, or when the host's ring is found broken) is
 * published only once nothing of the last one is in flight on the disk:
 * the host reissues what it had not seen acked, and an old copy of a write
 * must not land after the new one.
 *
 * Wake-ups as for the NIC (channel.c): the host's doorbell, our own line
 * (bulkhead.blkline=ttySN on the command line), polling while busy.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "agent.h"
#include "bulkhead/vm_chan.h"
#include "bulkhead/block.h"
#include "bulkhead/vm_blk.h"

#define RING BH_VMBLK_RING
#define DISK_WAIT_MS 30000

static struct {
	struct agent_chan k;
	struct bh_vmblk_guest *page;
	struct bh_packet_stream ch;
	/* the disk */
	char disk[16];
	int fd;
	struct bh_block_info info;
	/* the disk's requests in flight */
	aio_context_t aio;
	int done; /* eventfd: completions */
	struct {
		bool busy;
		struct bh_ps_desc d;
	} io[RING];
	unsigned int inflight;
	uint8_t *bounce; /* RING x BH_VMBLK_SLOT, page-aligned */
	uint64_t reads, writes, flushes, trims, errors, refused, epochs, irqs, rings;
} b = { .fd = -1, .k.wake = -1, .done = -1 };

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t sys_u64(const char *disk, const char *attr)
{
	char path[128], buf[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/sys/block/%s/%s", disk, attr);
	f = fopen(path, "re");
	if (f && !fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	if (f)
		fclose(f);
	return strtoull(buf, NULL, 10);
}

/* the first whole disk a device driver made (not loop, not ram): false if none yet */
static bool find_disk(void)
{
	DIR *d = opendir("/sys/block");
	struct dirent *e;
	bool found = false;

	while (d && !found && (e = readdir(d))) {
		char path[300];
		if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof(b.disk))
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/device", e->d_name);
		if (access(path, F_OK) == 0) {
			snprintf(b.disk, sizeof(b.disk), "%s", e->d_name);
			found = true;
		}
	}
	if (d)
		closedir(d);
	return found;
}

/* its geometry, into info and the guest page's fields */
static int disk_open(void)
{
	char path[64], model[64] = "";
	uint64_t bytes = 0;
	int bs = 0, ro = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/dev/%s", b.disk);
	b.fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (b.fd < 0 || ioctl(b.fd, BLKGETSIZE64, &bytes) < 0 || ioctl(b.fd, BLKSSZGET, &bs) < 0 ||
	    ioctl(b.fd, BLKROGET, &ro) < 0) {
		printf("bulkhead-agent: block channel: %s: %s\n", path, strerror(errno));
		return -1;
	}
	b.info = (struct bh_block_info){
		.version = BH_BLOCK_VERSION,
		.block_size = (uint32_t)bs,
		.block_count = bytes / (uint64_t)bs,
		.flags = (ro ? 0 : BH_BLOCK_WRITABLE) |
			 (sys_u64(b.disk, "queue/discard_max_bytes") ? BH_BLOCK_CAN_TRIM : 0),
		.max_transfer = BH_VMBLK_SLOT,
		.queue_depth = RING,
	};
	snprintf(path, sizeof(path), "/sys/block/%s/queue/write_cache", b.disk);
	f = fopen(path, "re");
	if (f && fgets(model, sizeof(model), f) && strncmp(model, "write back", 10) == 0)
		b.info.flags |= BH_BLOCK_CAN_FLUSH;
	if (f)
		fclose(f);
	model[0] = 0;
	snprintf(path, sizeof(path), "/sys/block/%s/device/model", b.disk);
	f = fopen(path, "re");
	if (f && fgets(model, sizeof(model), f))
		model[strcspn(model, "\n")] = 0;
	if (f)
		fclose(f);
	/* trailing blanks of the controller's identify string */
	for (size_t n = strlen(model); n && model[n - 1] == ' '; n--)
		model[n - 1] = 0;
	snprintf(b.info.model, sizeof(b.info.model), "%s", model);
	return 0;
}

int block_open(void)
{
	char line[32] = "/dev/", cmdline[1024] = "";
	const char *arg;
	FILE *f;

	if (!ivshmem_find(BH_VMBLK_SIZE, b.k.pci, sizeof(b.k.pci)))
		return 0;
	/* Linux's nvme probes asynchronously: the disk comes a moment after the module */
	for (int waited = 0; !find_disk(); waited += 100) {
		if (waited >= DISK_WAIT_MS) {
			printf("bulkhead-agent: block channel: no disk after %d s: did the module "
			       "load, and does it know the device? (see the guest's lines above)\n",
			       DISK_WAIT_MS / 1000);
			return -1;
		}
		usleep(100000);
	}
	if (disk_open() < 0)
		return -1;
	b.k.mem = ivshmem_map(b.k.pci, &b.k.size, "block");
	if (!b.k.mem)
		return -1;
	if (b.k.size < bh_vmblk_needed()) {
		printf("bulkhead-agent: block channel: %zu bytes of memory, %llu needed\n", b.k.size,
		       (unsigned long long)bh_vmblk_needed());
		return -1;
	}
	b.page = bh_vmblk_guest_page(b.k.mem);
	if (posix_memalign((void **)&b.bounce, 4096, (size_t)RING * BH_VMBLK_SLOT) ||
	    syscall(SYS_io_setup, RING, &b.aio) < 0 ||
	    (b.done = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		printf("bulkhead-agent: block channel: AIO: %s\n", strerror(errno));
		return -1;
	}
	/* our wake-up line: core names it on the command line */
	f = fopen("/proc/cmdline", "re");
	if (f && !fgets(cmdline, sizeof(cmdline), f))
		cmdline[0] = 0;
	if (f)
		fclose(f);
	arg = strstr(cmdline, "bulkhead.blkline=");
	if (arg && sscanf(arg, "bulkhead.blkline=%15[a-zA-Z0-9]", line + 5) == 1)
		ivshmem_bells(b.k.pci, line, "block", &b.k.regs, &b.k.wake);
	else
		printf("bulkhead-agent: block channel: no bulkhead.blkline= on the command line: "
		       "polling\n");
	return 1;
}

void block_describe(char *buf, size_t len)
{
	snprintf(buf, len, "%s %s %llu x %u%s", b.disk, b.info.model,
		 (unsigned long long)b.info.block_count, b.info.block_size,
		 b.info.flags & BH_BLOCK_WRITABLE ? "" : " read-only");
}

void block_counters(char *buf, size_t len)
{
	const struct counter c[] = {
		{ "reads", b.reads },	    { "writes", b.writes }, { "flushes", b.flushes },
		{ "trims", b.trims },	    { "errors", b.errors }, { "refused", b.refused },
		{ "inflight", b.inflight }, { "irqs", b.irqs },	    { "doorbells", b.rings },
	};

	counters_line(buf, len, "block", b.k.epoch, b.k.attached, c, sizeof(c) / sizeof(c[0]),
		      b.k.wake < 0);
}

/* we published on the channel: if the host sleeps, ring its doorbell */
static void wake_host(void)
{
	if (ivshmem_ring(b.k.regs, &bh_vmblk_host_page(b.k.mem)->sleeping))
		b.rings++;
}

static void ack(struct bh_ps_desc *d, int status)
{
	d->status = status;
	if (status)
		b.errors++;
	/* room was reserved when the request was taken */
	bh_ps_put(&b.ch, d, 1);
}

/* the disk's completions: how many (acks queued, not flushed) */
static int reap(long min, struct timespec *wait)
{
	struct io_event ev[RING];
	long got = syscall(SYS_io_getevents, b.aio, min, RING, ev, wait);

	for (long i = 0; i < got; i++) {
		unsigned int j = (unsigned int)ev[i].data;
		struct bh_ps_desc *d = &b.io[j].d;
		int status = ev[i].res == (long long)d->length ? 0
			     : ev[i].res < 0		       ? (int)ev[i].res
							       : -EIO;

		if (!status && d->op == BH_BLOCK_READ && b.k.attached)
			memcpy(bh_ps_data(&b.ch, d), b.bounce + (size_t)j * BH_VMBLK_SLOT, d->length);
		if (b.k.attached)
			ack(d, status);
		b.io[j].busy = false;
		b.inflight--;
	}
	return got < 0 ? 0 : (int)got;
}

/*
 * Requests done at once, d[0] and those after it that it takes along:
 * a flush, or a trim with the valid trims that continue its range (mkfs
 * trims a whole disk in max_transfer pieces: one ioctl for a batch of
 * them). How many it took; each acked.
 */
static int at_once(struct bh_ps_desc *d, int n)
{
	int rc, k = 1;

	if (d[0].op == BH_BLOCK_FLUSH) {
		b.flushes++;
		ack(&d[0], fdatasync(b.fd) < 0 ? -errno : 0);
		return 1;
	}
	uint64_t range[2] = { d[0].arg * b.info.block_size, d[0].length };
	while (k < n && d[k].op == BH_BLOCK_TRIM && !bh_block_check(&b.info, &d[k]) &&
	       d[k].arg * b.info.block_size == range[0] + range[1])
		range[1] += d[k++].length;
	b.trims += (uint64_t)k;
	if (!(b.info.flags & BH_BLOCK_CAN_TRIM))
		rc = -EOPNOTSUPP;
	else
		rc = ioctl(b.fd, BLKDISCARD, range) < 0 ? -errno : 0;
	for (int i = 0; i < k; i++)
		ack(&d[i], rc);
	return k;
}

/* the host's requests to the disk: how many, or -1 if it broke the ring */
static int take(void)
{
	struct bh_ps_desc d[RING];
	struct iocb cb[RING], *cbs[RING];
	unsigned int n = 0;
	int got = bh_ps_take(&b.ch, b.inflight, d, RING - b.inflight);

	if (got < 0)
		return -1;
	for (int k = 0; k < got; k++) {
		/* the host is untrusted: its requests are checked as a driver's clients' are */
		int rc = bh_block_check(&b.info, &d[k]);
		unsigned int j = 0;

		if (rc) {
			b.refused++;
			ack(&d[k], rc);
			continue;
		}
		if (d[k].op == BH_BLOCK_FLUSH || d[k].op == BH_BLOCK_TRIM) {
			k += at_once(&d[k], got - k) - 1;
			continue;
		}
		while (b.io[j].busy)
			j++; /* taken no more than there are free rows */
		b.io[j].busy = true;
		b.io[j].d = d[k];
		b.inflight++;
		uint8_t *buf = b.bounce + (size_t)j * BH_VMBLK_SLOT;
		if (d[k].op == BH_BLOCK_WRITE) {
			memcpy(buf, bh_ps_data(&b.ch, &d[k]), d[k].length);
			b.writes++;
		} else {
			b.reads++;
		}
		cb[n] = (struct iocb){
			.aio_data = j,
			.aio_lio_opcode = d[k].op == BH_BLOCK_WRITE ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD,
			.aio_fildes = (uint32_t)b.fd,
			.aio_buf = (uint64_t)(uintptr_t)buf,
			.aio_nbytes = d[k].length,
			.aio_offset = (int64_t)(d[k].arg * b.info.block_size),
			.aio_flags = IOCB_FLAG_RESFD,
			.aio_resfd = (uint32_t)b.done,
		};
		cbs[n] = &cb[n];
		n++;
	}
	for (unsigned int sent = 0; sent < n;) {
		long rc = syscall(SYS_io_submit, b.aio, (long)(n - sent), cbs + sent);
		if (rc > 0) {
			sent += (unsigned int)rc;
			continue;
		}
		/* the first not taken fails; the rest are tried again */
		unsigned int j = (unsigned int)cb[sent].aio_data;
		ack(&b.io[j].d, rc < 0 ? -errno : -EIO);
		b.io[j].busy = false;
		b.inflight--;
		sent++;
	}
	return got;
}

/*
 * A new epoch: first everything of the last one off the disk, then the
 * epoch published; the host empties the ring and says so, we attach then
 */
static void start_epoch(void)
{
	struct bh_vmnic_host *host = bh_vmblk_host_page(b.k.mem);

	if (b.k.attached)
		bh_ps_detach(&b.ch);
	b.k.attached = false;
	while (b.inflight)
		reap((long)b.inflight, NULL);
	b.k.epoch = __atomic_load_n(&host->epoch, __ATOMIC_ACQUIRE) + 1;
	if (!b.k.epoch)
		b.k.epoch = 1;
	b.epochs++;
	b.page->version = BH_VMBLK_VERSION;
	b.page->block_size = b.info.block_size;
	b.page->block_count = b.info.block_count;
	b.page->flags = b.info.flags;
	b.page->doorbell = b.k.wake >= 0;
	snprintf(b.page->model, sizeof(b.page->model), "%s", b.info.model);
	snprintf(b.page->disk, sizeof(b.page->disk), "%s", b.disk);
	__atomic_store_n(&b.page->epoch, b.k.epoch, __ATOMIC_RELEASE);
	__atomic_store_n(&b.page->magic, BH_VMBLK_MAGIC, __ATOMIC_RELEASE);
}

static void try_attach(void)
{
	struct bh_vmnic_host *host = bh_vmblk_host_page(b.k.mem);

	if (__atomic_load_n(&host->epoch, __ATOMIC_ACQUIRE) != b.k.epoch)
		return;
	b.k.attached = bh_vmblk_attach(&b.ch, b.k.mem, b.k.size, false) == 0;
	printf("bulkhead-agent: block channel %s: %s <-> ivshmem %s, epoch %u\n",
	       b.k.attached ? "open" : "cannot attach", b.disk, b.k.pci, b.k.epoch);
}

/* may we sleep until an interrupt or a completion? Only with a line, and nothing waiting */
static bool may_sleep(void)
{
	/* the host wakes us only through the line (a completion through the eventfd) */
	const uint32_t line = b.k.wake >= 0;

	return bh_vm_chan_may_sleep(b.k.attached, &line, &b.page->sleeping, &b.ch, 1);
}

static void *run(void *arg)
{
	uint64_t last = 0;

	(void)arg;
	start_epoch();
	for (;;) {
		uint64_t now = now_ns();
		struct timespec zero = { 0 };
		int taken = 0, done;

		__atomic_store_n(&b.page->beat, now / 1000000, __ATOMIC_RELAXED);
		if (!b.k.attached)
			try_attach();
		done = reap(0, &zero);
		if (b.k.attached && (taken = take()) < 0) {
			printf("bulkhead-agent: block channel: the host's ring is not what we left "
			       "(it restarted, or broke it): epoch %u ends\n",
			       b.k.epoch);
			start_epoch();
			continue;
		}
		if (done || taken) {
			if (b.k.attached) {
				bh_ps_flush(&b.ch);
				wake_host();
			}
			last = now;
			continue;
		}
		struct pollfd p[2] = { { .fd = b.done, .events = POLLIN },
				       { .fd = b.k.wake, .events = POLLIN } };
		struct timespec ts = { .tv_nsec = now - last < BUSY_NS ? POLL_BUSY_NS : POLL_IDLE_NS };
		if (now - last >= AWAKE_NS && may_sleep())
			ts = (struct timespec){ .tv_sec = 1 };
		if (ppoll(p, 2, &ts, NULL) > 0) {
			uint64_t n;
			if (p[0].revents && read(b.done, &n, sizeof(n)) < 0)
				n = 0;
			if (p[1].revents)
				b.irqs += ivshmem_woken(b.k.wake);
		}
		__atomic_store_n(&b.page->sleeping, 0, __ATOMIC_RELAXED);
	}
	return NULL;
}

int block_start(void)
{
	pthread_t t;
	int rc = pthread_create(&t, NULL, run, NULL);

	return rc ? -rc : 0;
}
