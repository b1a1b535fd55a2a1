// SPDX-License-Identifier: MIT
/*
 * bulkhead-core: the one privileged process. Reads the system config, takes
 * the granted devices from the kernel, starts every component sandboxed and
 * unprivileged, answers their requests, and supervises them. Single-threaded
 * around one epoll loop; it keeps no driver logic.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core.h"
#include "dma.h"
#include "nbd.h"
#include "ublk.h"
#include "usbip.h"

static struct bh_core_state core;
/* 2 MiB pages core added to the kernel's pool, given back at the end */
static unsigned int hugepages_added;

static void usage(FILE *f)
{
	fprintf(f, "usage: bulkhead-core [-c CONFIG] [--check]\n"
		   "  -c, --config FILE  the system config (default /etc/bulkhead/bulkhead.conf)\n"
		   "  --check            parse the config, print what it says, and exit\n");
}

static void print_config(const struct bh_config *cfg)
{
	printf("%s: backend=%s control=%s hugepages=%u, %d component(s)\n", cfg->path,
	       (const char *[]){ "auto", "vfio", "uio" }[cfg->backend], cfg->control,
	       cfg->hugepages, cfg->ncomp);
	for (int i = 0; i < cfg->ncomp; i++) {
		const struct bh_component_config *c = &cfg->comp[i];
		printf("  %s: exec=%s devices=%d ioports=%d restart=%s dma=%llu memory=%llu\n",
		       c->name, c->exec, c->nmatch, c->nisa, bh_restart_name(c->restart),
		       (unsigned long long)c->dma_quota, (unsigned long long)c->limit_memory);
	}
}

static void handle_signals(void)
{
	struct signalfd_siginfo si;

	while (read(core.sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGCHLD) {
			bh_component_reap(&core);
		} else if (!core.stopping) {
			bh_log("signal %d: stopping all components", si.ssi_signo);
			core.stopping = true;
			bh_notify("STOPPING=1\nSTATUS=stopping: signal %d", si.ssi_signo);
			/* a hang-up on its core socket, and SIGTERM for those that handle it
			 * (a component is pid 1 of its namespace: default actions do not apply) */
			for (int i = 0; i < core.ncomp; i++) {
				struct bh_component *c = &core.comp[i];
				if (c->state != BH_RUNNING || c->pid <= 0)
					continue;
				if (c->sock >= 0) {
					epoll_ctl(core.epfd, EPOLL_CTL_DEL, c->sock, NULL);
					close(c->sock);
					c->sock = -1;
				}
				kill(c->pid, SIGTERM);
			}
		}
	}
}

static bool any_running(void)
{
	for (int i = 0; i < core.ncomp; i++)
		if (core.comp[i].state == BH_RUNNING)
			return true;
	return false;
}

static void dispatch(uint64_t tag)
{
	enum bh_tag_kind kind = (enum bh_tag_kind)(tag >> 32);
	int index = (int)(uint32_t)tag;

	switch (kind) {
	case BH_TAG_SIGNAL:
		handle_signals();
		break;
	case BH_TAG_CONTROL:
		bh_control_accept(&core);
		break;
	case BH_TAG_SOCK:
		if (core.comp[index].sock >= 0)
			bh_service_request(&core, &core.comp[index]);
		break;
	case BH_TAG_OUTPUT:
		bh_component_output(&core, &core.comp[index]);
		break;
	case BH_TAG_KMSG:
		bh_iommu_fault_read(&core);
		break;
	case BH_TAG_UBLK:
		bh_ublk_reap(&core);
		break;
	case BH_TAG_VM:
		bh_vm_channel(&core, &core.comp[index]);
		break;
	case BH_TAG_UNMASK:
		bh_device_irq_unmask(&core, &core.devices[index]);
		break;
	case BH_TAG_LOADER:
		bh_loader_answer(&core, &core.comp[index]);
		break;
	case BH_TAG_DEBUG:
		if (core.comp[index].debug_fd >= 0)
			bh_debug_event(&core, &core.comp[index]);
		break;
	}
}

static int run(void)
{
	uint64_t stop_deadline = 0;

	for (;;) {
		struct epoll_event ev[16];
		int timeout = bh_supervisor_tick(&core);
		int n;

		if (core.stopping) {
			uint64_t now = bh_now_ns();
			if (!any_running())
				return 0;
			if (!stop_deadline)
				stop_deadline = now + 2000000000ull;
			if (now >= stop_deadline) {
				for (int i = 0; i < core.ncomp; i++)
					if (core.comp[i].state == BH_RUNNING)
						kill(core.comp[i].pid, SIGKILL);
			}
			timeout = 100;
		}
		n = epoll_wait(core.epfd, ev, 16, timeout);
		if (n < 0 && errno != EINTR) {
			bh_log("epoll_wait: %s", strerror(errno));
			return 1;
		}
		for (int i = 0; i < n; i++)
			dispatch(ev[i].data.u64);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = "/etc/bulkhead/bulkhead.conf";
	bool check = false;
	char err[1024];
	sigset_t mask;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'k':
			check = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (bh_config_load(path, &core.cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "bulkhead-core: %s\n", err);
		return 2;
	}
	if (check) {
		print_config(&core.cfg);
		return 0;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "bulkhead-core: must run as root: it takes devices from the kernel "
				"and starts components under their own uids\n");
		return 1;
	}
	core.start_ns = bh_now_ns();
	core.control_fd = -1;
	core.kmsg_fd = -1;
	core.ncomp = core.cfg.ncomp;
	for (int i = 0; i < core.ncomp; i++)
		bh_component_init(&core, i);
	bh_complog_attach(&core);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	core.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	core.epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = BH_TAG(BH_TAG_SIGNAL, 0) };
	epoll_ctl(core.epfd, EPOLL_CTL_ADD, core.sigfd, &ev);

	bh_log("bulkhead core starting: config %s, %d component(s)", path, core.ncomp);
	if (bh_cgroup_init(&core, err, sizeof(err)) < 0) {
		bh_log("%s", err);
		return 1;
	}
	if (bh_platform_init(&core, err, sizeof(err)) < 0) {
		bh_log("%s", err);
		return 1;
	}
	if (bh_control_open(&core, err, sizeof(err)) < 0) {
		bh_log("%s", err);
		/* the devices it took go back to the kernel, as at a stop */
		bh_platform_fini(&core);
		return 1;
	}
	if (core.backend->iommu && bh_iommu_fault_open(&core) < 0)
		bh_log("cannot follow /dev/kmsg: IOMMU faults will not be attributed");
	if (core.cfg.hugepages) {
		int got = bh_hugepages_reserve(BH_HUGEPAGES_DIR, core.cfg.hugepages,
					       &hugepages_added);
		if (got < 0)
			bh_log("hugepages = %u: cannot reserve 2 MiB pages (%s, %s); DMA buffers "
			       "use 4 KiB pages",
			       core.cfg.hugepages, BH_HUGEPAGES_DIR, strerror(-got));
		else if ((unsigned int)got < core.cfg.hugepages)
			bh_log("hugepages = %u: the kernel found only %d free 2 MiB pages (memory is "
			       "fragmented: reserve them at boot with hugepages=%u on the kernel "
			       "command line); larger DMA buffers beyond them use 4 KiB pages",
			       core.cfg.hugepages, got, core.cfg.hugepages);
		else
			bh_log("hugepages: %d free 2 MiB pages for DMA buffers (%u reserved by core)",
			       got, hugepages_added);
	}
	bh_log("backend %s, DMA %s; control socket %s", core.backend->name,
	       core.backend->iommu ? "confined by the IOMMU" : "NOT confined (no IOMMU)",
	       core.cfg.control);
	bh_ublk_prepare(&core.cfg);
	for (int i = 0; i < core.ncomp; i++)
		bh_component_start(&core, &core.comp[i]);
	bh_notify("READY=1\nSTATUS=%d component(s) started, %d device(s); control socket %s",
		  core.ncomp, core.ndevices, core.cfg.control);
	rc = run();
	for (int i = 0; i < core.ncomp; i++) {
		if (core.comp[i].sock >= 0 || core.comp[i].ndma)
			bh_component_revoke(&core, &core.comp[i]);
		/* nobody serves it any more: I/O on it fails now instead of hanging */
		if (core.cfg.comp[i].nbd >= 0)
			bh_nbd_disconnect(core.cfg.comp[i].nbd);
		bh_ublk_remove(&core, core.cfg.comp[i].ublk);
		if (core.comp[i].tap_fd >= 0)
			close(core.comp[i].tap_fd);
		bh_usbip_detach(&core.comp[i]);
	}
	if (core.kmsg_fd >= 0)
		close(core.kmsg_fd);
	bh_cgroup_fini(&core);
	bh_platform_fini(&core);
	bh_control_close(&core);
	bh_hugepages_release(BH_HUGEPAGES_DIR, hugepages_added);
	bh_notify("STATUS=stopped: every component ended, %d device(s) quiesced and given back",
		  core.ndevices);
	bh_log("core stopped");
	return rc;
}
