// SPDX-License-Identifier: MIT
/*
 * bulkhead-agent: the guest side of a driver VM (core/vm.c). It runs in a
 * small guest booted by core, after dvm/guest/init has loaded the modules
 * the config names. It brings up the network interfaces Linux's own driver
 * made of the granted devices, says "ready" with what it found, and then
 * "alive" once a second with their counters: core's watchdog listens on the
 * guest's serial line, the VM's only line to core. If core gave the VM a
 * NIC channel (an ivshmem-doorbell device), the first interface's frames go
 * through it to the host's vm-nic server (channel.c).
 */
#include <errno.h>
#include <net/if.h>
#include <stdbool.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#define MAX_IFS 8
#define CARRIER_WAIT_MS 10000

static char ifs[MAX_IFS][IFNAMSIZ];
static int nifs;
static int channel; /* channel_open's answer */
static int inet_sock; /* for the interfaces' flags and addresses */
static int block;     /* block_open's answer */

static void alive(void);

void net_attr(const char *ifname, const char *attr, char *buf, size_t len)
{
	char path[128];
	FILE *f;

	buf[0] = 0;
	snprintf(path, sizeof(path), "/sys/class/net/%s/%s", ifname, attr);
	f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = 0;
	fclose(f);
}

/* the interfaces a device driver made: those with a device link (not lo) */
static void find_interfaces(void)
{
	DIR *d = opendir("/sys/class/net");
	struct dirent *e;

	while (d && (e = readdir(d)) && nifs < MAX_IFS) {
		char path[300];
		if (e->d_name[0] == '.' || strlen(e->d_name) >= IFNAMSIZ)
			continue;
		snprintf(path, sizeof(path), "/sys/class/net/%s/device", e->d_name);
		if (access(path, F_OK) == 0)
			snprintf(ifs[nifs++], IFNAMSIZ, "%s", e->d_name);
	}
	if (d)
		closedir(d);
}

static int bring_up(int sock, const char *ifname)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0)
		return -errno;
	ifr.ifr_flags |= IFF_UP;
	return ioctl(sock, SIOCSIFFLAGS, &ifr) < 0 ? -errno : 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

const char *if_driver(const char *ifname)
{
	static char driver[64];
	char path[128], link[128];
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/class/net/%s/device/driver", ifname);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return "?";
	link[n] = 0;
	snprintf(driver, sizeof(driver), "%s", strrchr(link, '/') ? strrchr(link, '/') + 1 : link);
	return driver;
}

static bool all_carrier(void);

/* the first interface's IPv4 address and mask (0: none), to give it back after the probe */
static void inet_addr_get(const char *ifname, struct ifreq *addr, struct ifreq *mask)
{
	memset(addr, 0, sizeof(*addr));
	memset(mask, 0, sizeof(*mask));
	snprintf(addr->ifr_name, sizeof(addr->ifr_name), "%s", ifname);
	snprintf(mask->ifr_name, sizeof(mask->ifr_name), "%s", ifname);
	if (ioctl(inet_sock, SIOCGIFADDR, addr) < 0 || ioctl(inet_sock, SIOCGIFNETMASK, mask) < 0)
		addr->ifr_addr.sa_family = 0;
}

/*
 * probe-dma ADDR from core: the probe takes the first interface's device
 * from Linux's driver and gives it back; we bring the new interface up as
 * the old one was, and the channel carries its frames again
 */
static void probe_command(uint64_t addr)
{
	struct ifreq a, m;
	char newif[IFNAMSIZ];
	int rc;

	if (!nifs) {
		printf("bulkhead-agent: probe-dma: no network interface to probe with\n");
		return;
	}
	inet_addr_get(ifs[0], &a, &m);
	rc = probe_dma(ifs[0], addr, newif, sizeof(newif));
	if (rc == -EINVAL || rc == -ENODEV)
		return;
	snprintf(ifs[0], IFNAMSIZ, "%s", newif);
	if (a.ifr_addr.sa_family == AF_INET) {
		snprintf(a.ifr_name, sizeof(a.ifr_name), "%s", newif);
		snprintf(m.ifr_name, sizeof(m.ifr_name), "%s", newif);
		if (ioctl(inet_sock, SIOCSIFADDR, &a) < 0 || ioctl(inet_sock, SIOCSIFNETMASK, &m) < 0)
			printf("bulkhead-agent: probe-dma: %s's address: %s\n", newif, strerror(errno));
	}
	rc = bring_up(inet_sock, newif);
	/* the beat goes on while the link comes back: core's watchdog listens */
	for (int waited = 0; !rc && !all_carrier() && waited < CARRIER_WAIT_MS; waited += 100) {
		if (waited % 1000 == 0)
			alive();
		sleep_ms(100);
	}
	if (channel > 0 && channel_rebind(newif) < 0)
		rc = -EIO;
	printf("bulkhead-agent: probe-dma: %s %s, link %s%s\n", newif,
	       rc ? "not serving again" : "serving again", all_carrier() ? "up" : "down",
	       channel > 0 ? ", nic channel on it" : "");
}

static bool all_carrier(void)
{
	char buf[16];

	for (int i = 0; i < nifs; i++) {
		net_attr(ifs[i], "carrier", buf, sizeof(buf));
		if (strcmp(buf, "1") != 0)
			return false;
	}
	return true;
}

void console_commands(void)
{
	static char line[128];
	static size_t len;
	ssize_t n;

	while ((n = read(0, line + len, sizeof(line) - 1 - len)) > 0) {
		char *nl;
		len += (size_t)n;
		line[len] = 0;
		while ((nl = memchr(line, '\n', len))) {
			char key;
			unsigned long long addr;
			*nl = 0;
			if (sscanf(line, "bulkhead-probe-dma %llx", &addr) == 1)
				probe_command(addr);
			if (sscanf(line, "bulkhead-sysrq %c", &key) == 1) {
				int fd = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC);
				printf("bulkhead-agent: sysrq %c, as core asked\n", key);
				fflush(stdout);
				if (fd < 0 || write(fd, &key, 1) != 1)
					printf("bulkhead-agent: sysrq: %s\n", strerror(errno));
				if (fd >= 0)
					close(fd);
			}
			len -= (size_t)(nl + 1 - line);
			memmove(line, nl + 1, len + 1);
		}
		if (len == sizeof(line) - 1)
			len = 0; /* an overlong line is nobody's command */
	}
}

void counters_line(char *buf, size_t len, const char *what, uint32_t epoch, bool open,
		   const struct counter *c, size_t n, bool polling)
{
	size_t at = (size_t)snprintf(buf, len, " %s epoch=%u %s", what, epoch,
				     open ? "open" : "waiting");

	for (size_t i = 0; i < n && at < len; i++)
		at += (size_t)snprintf(buf + at, len - at, " %s=%llu", c[i].name, c[i].value);
	if (polling && at < len)
		snprintf(buf + at, len - at, " polling");
}

/* the heartbeat core's watchdog waits for, with the interfaces' counters */
static void alive(void)
{
	static unsigned long beat;
	char ch[160] = "", blk[200] = "";

	/* one line, whole: the block channel's thread prints too */
	flockfile(stdout);
	printf("bulkhead-agent: alive %lu", ++beat);
	for (int i = 0; i < nifs; i++) {
		char rx[32], tx[32];
		net_attr(ifs[i], "statistics/rx_packets", rx, sizeof(rx));
		net_attr(ifs[i], "statistics/tx_packets", tx, sizeof(tx));
		printf(" %s rx=%s tx=%s", ifs[i], rx, tx);
	}
	if (channel > 0)
		channel_counters(ch, sizeof(ch));
	if (block > 0)
		block_counters(blk, sizeof(blk));
	printf("%s%s\n", ch, blk);
	funlockfile(stdout);
}

int main(void)
{
	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	inet_sock = sock;
	setvbuf(stdout, NULL, _IOLBF, 0);
	find_interfaces();
	block = block_open();
	if (!nifs && !block)
		printf("bulkhead-agent: no network interface: did the module load, and does "
		       "it know the device? (see the guest's lines above)\n");
	for (int i = 0; i < nifs; i++) {
		int rc = bring_up(sock, ifs[i]);
		if (rc)
			printf("bulkhead-agent: cannot bring %s up: %s\n", ifs[i], strerror(-rc));
	}
	/* a NIC reports carrier a moment after it is up (e1000e: from its watchdog) */
	for (int waited = 0; nifs && !all_carrier() && waited < CARRIER_WAIT_MS; waited += 100)
		sleep_ms(100);
	channel = nifs ? channel_open(ifs[0]) : 0;
	printf("bulkhead-agent: ready");
	for (int i = 0; i < nifs; i++) {
		char mac[32], carrier[8], speed[16];
		net_attr(ifs[i], "address", mac, sizeof(mac));
		net_attr(ifs[i], "carrier", carrier, sizeof(carrier));
		net_attr(ifs[i], "speed", speed, sizeof(speed));
		printf("%s %s %s driver=%s link=%s speed=%s", i ? ";" : "", ifs[i], mac,
		       if_driver(ifs[i]), strcmp(carrier, "1") == 0 ? "up" : "down",
		       speed[0] ? speed : "?");
	}
	if (channel > 0)
		printf("; nic channel for %s", ifs[0]);
	if (block > 0) {
		char disk[96];
		block_describe(disk, sizeof(disk));
		printf("%s block channel for %s", nifs ? ";" : "", disk);
	}
	/* the guest's share of the boot: the rest went to QEMU and the firmware */
	char uptime[32];
	FILE *f = fopen("/proc/uptime", "re");
	if (!f || fscanf(f, "%31s", uptime) != 1)
		snprintf(uptime, sizeof(uptime), "?");
	if (f)
		fclose(f);
	printf("; guest uptime %s s\n", uptime);
	fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
	if (block > 0 && block_start() < 0)
		printf("bulkhead-agent: block channel: cannot start its thread\n");
	if (channel > 0)
		channel_run(alive);
	for (;;) {
		struct pollfd p = { .fd = 0, .events = POLLIN };
		alive();
		for (int waited = 0; waited < 1000; waited += 100)
			if (poll(&p, 1, 100) > 0)
				console_commands();
	}
}
