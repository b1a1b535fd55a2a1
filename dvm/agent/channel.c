// SPDX-License-Identifier: MIT
/*
 * The agent's side of the NIC channel (bulkhead/vm_nic.h): frames between
 * the guest's network interface (an AF_PACKET socket on it) and the memory
 * the VM shares with the host's vm-nic server (the ivshmem-doorbell device's
 * BAR 2, mapped through sysfs). The host is untrusted here too: its rings
 * are packet streams, checked on every read; if it breaks them (or was
 * restarted and emptied them under us) we start a new epoch.
 *
 * Notifications (bulkhead/vm_nic.h): we ring the host's doorbell (the
 * ivshmem-doorbell device's BAR 0) when it sleeps and we gave it
 * something, and sleep on the socket and on the wake-up line, the VM's
 * second serial port (/dev/ttyS1), on which the host sends a byte when we
 * sleep and it gave us something. The device's own interrupts are MSI-X,
 * which no driver of Debian's kernel gives to user space. While frames
 * flowed in the last 20 ms we poll every 100 us instead of sleeping, then
 * every 1 ms up to half a second after the last frame (a wake-up through
 * the serial line takes long: 27-1000 ms, median 170 ms, in the nested test
 * machine); without the line we poll always.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <linux/virtio_net.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "bulkhead/vm_chan.h"
#include "bulkhead/nic.h"
#include "bulkhead/vm_nic.h"

#define BATCH 32
#define WAKE_LINE "/dev/ttyS1" /* the VM's second serial port (core/vm.c) */

static struct {
	struct agent_chan k;
	struct bh_vmnic_guest *page;
	struct bh_packet_stream ch[2];
	int sock;
	uint32_t offloads; /* BH_NIC_OFF_* we take: all once the socket carries virtio_net_hdr */
	char ifname[IFNAMSIZ];
	uint64_t to_host, from_host, dropped, epochs, irqs, rings, offloaded, csum_ok;
	/* where the time goes: ringing the host, sending on the wire, short naps */
	uint64_t ring_ns, sends, send_ns, naps, nap_ns, nap_asked_ns;
} c = { .sock = -1, .k.wake = -1 };

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* the interface carries frames for the host only: no GRO, no IPv6 of the guest's own */
static void quiet_interface(const char *ifname)
{
	struct ethtool_value ev = { .cmd = ETHTOOL_SGRO, .data = 0 };
	struct ifreq ifr;
	char path[128];

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = (void *)&ev;
	/* GRO would hand us 64 KiB packets where the wire had frames */
	if (ioctl(c.sock, SIOCETHTOOL, &ifr) < 0)
		printf("bulkhead-agent: cannot turn GRO off on %s: %s\n", ifname, strerror(errno));
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifname);
	set_one(path);
}

/* the host woke us: what it sent says nothing more */
static void woken(void)
{
	c.irqs += ivshmem_woken(c.k.wake);
}

/* we published on the channel: if the host sleeps, ring its doorbell */
static void wake_host(void)
{
	uint64_t t0 = now_ns();

	if (ivshmem_ring(c.k.regs, &bh_vmnic_host_page(c.k.mem)->sleeping)) {
		c.rings++;
		c.ring_ns += now_ns() - t0;
	}
}

/* may we sleep until an interrupt? Only with one, and with nothing waiting */
static bool may_sleep(void)
{
	/* the host wakes us only through the line */
	const uint32_t line = c.k.wake >= 0;

	return bh_vm_chan_may_sleep(c.k.attached, &line, &c.page->sleeping, c.ch, 2);
}

/* the AF_PACKET socket on ifname the frames go through (anew when the interface is) */
static int packet_socket(const char *ifname)
{
	int one = 1, rcvbuf = 4 << 20;
	const uint32_t all = BH_NIC_OFF_TX_CSUM | BH_NIC_OFF_TSO4 | BH_NIC_OFF_TSO6 |
			     BH_NIC_OFF_RX_CSUM;
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };

	if (c.sock >= 0)
		close(c.sock);
	sll.sll_ifindex = (int)if_nametoindex(ifname);
	c.sock = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (c.sock < 0 || bind(c.sock, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		printf("bulkhead-agent: nic channel: AF_PACKET on %s: %s\n", ifname,
		       strerror(errno));
		return -1;
	}
	/* what the guest's own stack sends is not the host's business */
	setsockopt(c.sock, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
	/*
	 * a virtio_net_hdr before every frame: the host's partial checksums and
	 * 64 KiB TCP segments go to Linux as they came to the host's TAP, and
	 * Linux cuts them (in the NIC, or in software), one send for up to 45
	 * frames on the wire; received frames say whether the NIC checked them
	 */
	c.offloads = setsockopt(c.sock, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) == 0 ? all
											      : 0;
	if (!c.offloads)
		printf("bulkhead-agent: nic channel: no virtio_net_hdr on AF_PACKET (%s): no "
		       "offloads\n",
		       strerror(errno));
	setsockopt(c.sock, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
	setsockopt(c.sock, SOL_SOCKET, SO_SNDBUFFORCE, &rcvbuf, sizeof(rcvbuf));
	quiet_interface(ifname);
	return 0;
}

int channel_open(const char *ifname)
{
	/* the NIC's memory is BH_VMNIC_SIZE: a block channel's is another size */
	if (!ivshmem_find(BH_VMNIC_SIZE, c.k.pci, sizeof(c.k.pci)))
		return 0;
	snprintf(c.ifname, sizeof(c.ifname), "%s", ifname);
	c.k.mem = ivshmem_map(c.k.pci, &c.k.size, "nic");
	if (!c.k.mem)
		return -1;
	c.page = bh_vmnic_guest_page(c.k.mem);
	if (packet_socket(ifname) < 0)
		return -1;
	ivshmem_bells(c.k.pci, WAKE_LINE, "nic", &c.k.regs, &c.k.wake);
	return 1;
}

int channel_rebind(const char *ifname)
{
	if (!c.k.mem)
		return 0;
	snprintf(c.ifname, sizeof(c.ifname), "%s", ifname);
	return packet_socket(ifname);
}

/* the guest page: who we are, and the link (once a second) */
static void describe(void)
{
	char mac[32], carrier[8], speed[16];
	unsigned int m[6] = { 0 };

	net_attr(c.ifname, "address", mac, sizeof(mac));
	net_attr(c.ifname, "carrier", carrier, sizeof(carrier));
	net_attr(c.ifname, "speed", speed, sizeof(speed));
	sscanf(mac, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]);
	for (int i = 0; i < 6; i++)
		c.page->mac[i] = (uint8_t)m[i];
	c.page->mtu = BH_NIC_MTU;
	c.page->link_up = strcmp(carrier, "1") == 0;
	c.page->speed_mbps = c.page->link_up ? (uint32_t)strtoul(speed, NULL, 10) : 0;
	c.page->dropped = c.dropped;
}

/* a new epoch: the host empties the rings and says so; we attach then */
static void start_epoch(void)
{
	struct bh_vmnic_host *host = bh_vmnic_host_page(c.k.mem);

	if (c.k.attached)
		bh_vmnic_detach(c.ch);
	c.k.attached = false;
	c.k.epoch = __atomic_load_n(&host->epoch, __ATOMIC_ACQUIRE) + 1;
	if (!c.k.epoch)
		c.k.epoch = 1;
	c.epochs++;
	describe();
	snprintf(c.page->driver, sizeof(c.page->driver), "%s", if_driver(c.ifname));
	snprintf(c.page->ifname, sizeof(c.page->ifname), "%s", c.ifname);
	c.page->version = BH_VMNIC_VERSION;
	c.page->doorbell = c.k.wake >= 0;
	c.page->offloads = c.offloads;
	__atomic_store_n(&c.page->epoch, c.k.epoch, __ATOMIC_RELEASE);
	__atomic_store_n(&c.page->magic, BH_VMNIC_MAGIC, __ATOMIC_RELEASE);
}

/* has the host emptied the rings for our epoch? Then attach: whether we are */
static bool try_attach(void)
{
	struct bh_vmnic_host *host = bh_vmnic_host_page(c.k.mem);

	if (__atomic_load_n(&host->epoch, __ATOMIC_ACQUIRE) != c.k.epoch)
		return false;
	c.k.attached = bh_vmnic_attach(c.ch, c.k.mem, c.k.size, false) == 0;
	printf("bulkhead-agent: nic channel %s: %s <-> ivshmem %s, epoch %u\n",
	       c.k.attached ? "open" : "cannot attach", c.ifname, c.k.pci, c.k.epoch);
	return c.k.attached;
}

/* the virtio_net_hdr that asks Linux for frame d's offload (bulkhead/vm_nic.h) */
static void vnet_hdr(const struct bh_ps_desc *d, struct virtio_net_hdr *h)
{
	uint32_t start, off, hdr, mss;

	memset(h, 0, sizeof(*h));
	if (!d->op)
		return;
	bh_nic_tx_arg_split(d->arg, &start, &off, &hdr, &mss);
	h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h->csum_start = (uint16_t)start;
	h->csum_offset = (uint16_t)off;
	if (d->op == BH_NIC_TX_CSUM)
		return;
	h->gso_type = d->op == BH_NIC_TX_TSO4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6;
	h->gso_size = (uint16_t)mss;
	h->hdr_len = (uint16_t)hdr;
}

/* one frame from the host onto the wire, with its offload request: 0, or -1 (dropped) */
static int send_frame(struct bh_packet_stream *ps, const struct bh_ps_desc *d)
{
	struct virtio_net_hdr h;
	struct iovec iov[2] = { { &h, sizeof(h) }, { bh_ps_data(ps, d), d->length } };
	struct msghdr m = { .msg_iov = c.offloads ? iov : iov + 1, .msg_iovlen = c.offloads ? 2 : 1 };

	if (!bh_vmnic_tx_ok(d, c.offloads))
		return -1;
	vnet_hdr(d, &h);
	return sendmsg(c.sock, &m, 0) < 0 ? -1 : 0;
}

/* frames from the host go out on the wire; how many, or -1 if the host broke the ring */
static int host_to_wire(void)
{
	struct bh_packet_stream *ps = &c.ch[BH_VMNIC_TO_GUEST];
	struct bh_ps_desc d[BATCH];
	int got = bh_ps_take(ps, 0, d, BATCH);

	if (got <= 0)
		return got < 0 ? -1 : 0;
	uint64_t t0 = now_ns();
	for (int i = 0; i < got; i++) {
		if (send_frame(ps, &d[i]) < 0) {
			c.dropped++;
		} else {
			c.from_host++;
			c.offloaded += d[i].op != 0;
		}
		d[i].status = 0;
	}
	c.sends += (uint64_t)got;
	c.send_ns += now_ns() - t0;
	bh_ps_put(ps, d, (unsigned int)got);
	bh_ps_flush(ps);
	wake_host();
	return got;
}

/* frames from the wire go to the host; how many, or -1 if the host broke the ring */
static int wire_to_host(void)
{
	struct bh_packet_stream *ps = &c.ch[BH_VMNIC_FROM_GUEST];
	struct bh_ps_desc d[BATCH];
	unsigned int n = 0;
	int got;

	got = bh_ps_reclaim(ps, BATCH);
	if (got < 0)
		return -1;
	while (n < (unsigned int)got && bh_ps_alloc(ps, BH_VMNIC_SLOT, &d[n]) == 0) {
		struct virtio_net_hdr h = { 0 };
		struct iovec iov[2] = { { &h, sizeof(h) }, { bh_ps_data(ps, &d[n]), BH_VMNIC_SLOT } };
		struct msghdr m = { .msg_iov = c.offloads ? iov : iov + 1,
				    .msg_iovlen = c.offloads ? 2 : 1 };
		ssize_t len = recvmsg(c.sock, &m, MSG_DONTWAIT | MSG_TRUNC);
		if (len < 0) {
			bh_ps_free(ps, &d[n]);
			break;
		}
		/* MSG_TRUNC: the frame's length, past the slot if it was longer */
		if (c.offloads)
			len = len >= (ssize_t)sizeof(h) ? len - (ssize_t)sizeof(h) : 0;
		if (!bh_nic_frame_ok((uint32_t)len)) {
			bh_ps_free(ps, &d[n]);
			c.dropped++;
			continue;
		}
		d[n].length = (uint32_t)len;
		/* the NIC checked its TCP or UDP checksum (CHECKSUM_UNNECESSARY) */
		d[n].op = h.flags & VIRTIO_NET_HDR_F_DATA_VALID ? BH_NIC_RX_CSUM_OK : 0;
		c.csum_ok += d[n].op != 0;
		n++;
	}
	if (n) {
		c.to_host += n;
		bh_ps_put(ps, d, n);
		bh_ps_flush(ps);
		wake_host();
	}
	return (int)n;
}

/* while no channel is open: what arrives has nowhere to go */
static int drain(void)
{
	char buf[64];
	int n = 0;

	while (recv(c.sock, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC) >= 0)
		n++;
	c.dropped += (uint64_t)n;
	return 0;
}

/* an average in microseconds, 0 of none */
static unsigned long long avg_us(uint64_t ns, uint64_t n)
{
	return n ? (unsigned long long)(ns / n / 1000) : 0;
}

/* every 10 s that moved frames: the counters, on the console (core's log) */
static void report(void)
{
	static uint64_t last;
	char buf[200];

	if (c.to_host + c.from_host == last)
		return;
	last = c.to_host + c.from_host;
	channel_counters(buf, sizeof(buf));
	printf("bulkhead-agent: nic%s\n", buf);
	printf("bulkhead-agent: nic time: us per doorbell %llu, per frame sent %llu, per nap %llu "
	       "(asked %llu; %llu naps)\n",
	       avg_us(c.ring_ns, c.rings), avg_us(c.send_ns, c.sends), avg_us(c.nap_ns, c.naps),
	       avg_us(c.nap_asked_ns, c.naps), (unsigned long long)c.naps);
}

void channel_run(void (*each_second)(void))
{
	uint64_t last_frame = 0, next_second = 0;
	unsigned int seconds = 0;
	bool said_waiting = false;

	start_epoch();
	for (;;) {
		uint64_t now = now_ns();
		int a = 0, b = 0;

		__atomic_store_n(&c.page->beat, now / 1000000, __ATOMIC_RELAXED);
		if (now >= next_second) {
			next_second = now + 1000000000ull;
			describe();
			each_second();
			if (++seconds % 10 == 0)
				report();
		}
		if (!c.k.attached && !try_attach() && seconds == 10 && !said_waiting) {
			said_waiting = true;
			printf("bulkhead-agent: nic channel: no host after 10 s: our epoch %u, the "
			       "host page's %u\n",
			       c.k.epoch, __atomic_load_n(&bh_vmnic_host_page(c.k.mem)->epoch,
							 __ATOMIC_ACQUIRE));
		}
		if (c.k.attached) {
			a = host_to_wire();
			b = wire_to_host();
			if (a < 0 || b < 0) {
				printf("bulkhead-agent: nic channel: the host's rings are not what we "
				       "left (it restarted, or broke them): epoch %u ends\n",
				       c.k.epoch);
				start_epoch();
				continue;
			}
		} else {
			drain();
		}
		if (a > 0 || b > 0) {
			last_frame = now;
			continue;
		}
		struct pollfd p[3] = { { .fd = c.sock, .events = POLLIN },
				       { .fd = 0, .events = POLLIN },
				       { .fd = c.k.wake, .events = POLLIN } };
		struct timespec ts = { .tv_nsec = now - last_frame < BUSY_NS ? POLL_BUSY_NS : POLL_IDLE_NS };
		/*
		 * quiet for a while: sleep until the host wakes us (or a second, for
		 * the beat); while traffic flows, a short poll costs less than waking
		 */
		if (now - last_frame >= AWAKE_NS && may_sleep())
			ts = (struct timespec){ .tv_sec = 1 };
		bool nap = ts.tv_sec == 0;
		uint64_t t0 = now_ns();
		int ready = ppoll(p, 3, &ts, NULL);
		if (nap) {
			c.naps++;
			c.nap_ns += now_ns() - t0;
			c.nap_asked_ns += (uint64_t)(now - last_frame < BUSY_NS ? POLL_BUSY_NS
									: POLL_IDLE_NS);
		}
		if (ready > 0) {
			if (p[1].revents)
				console_commands();
			if (p[2].revents)
				woken();
		}
		__atomic_store_n(&c.page->sleeping, 0, __ATOMIC_RELAXED);
	}
}

void channel_counters(char *buf, size_t len)
{
	const struct counter k[] = {
		{ "to_host", c.to_host }, { "from_host", c.from_host }, { "dropped", c.dropped },
		{ "irqs", c.irqs },	  { "doorbells", c.rings },	   { "offloaded", c.offloaded },
		{ "csum_ok", c.csum_ok },
	};

	counters_line(buf, len, "channel", c.k.epoch, c.k.attached, k, sizeof(k) / sizeof(k[0]),
		      c.k.wake < 0);
}
