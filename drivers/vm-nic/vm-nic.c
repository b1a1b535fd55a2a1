// SPDX-License-Identifier: MIT
/*
 * bulkhead-vm-nic: the NIC session (bulkhead/nic.h) of a driver VM. Linux's
 * own driver runs the NIC inside the VM; the VM's agent moves the frames of
 * its interface through memory the VM shares with us (an ivshmem-doorbell
 * device, bulkhead/vm_nic.h), and we move them between that memory and the
 * NIC session, so nic-tap and every other client work on top unchanged.
 *
 * Notifications both ways (bulkhead/vm_nic.h): once quiet for 500 ms we
 * sleep on the doorbell the guest rings (every 1 ms we look after the
 * first 20 ms), and we write a byte to the
 * guest's wake-up line (a serial port of the VM's) when it sleeps and we
 * gave it something. While frames flow, both sides poll every 100 us; a
 * guest without the wake-up line (it says so in its page) makes us poll
 * always, every 1 ms when idle. The guest is untrusted:
 * its rings are packet streams (every index and descriptor checked), its
 * page is copied and checked, frames of impossible length are dropped.
 *
 * Offloads: what the guest's agent takes (its page says; ours does all)
 * we offer our client, and pass its checksum and segmentation requests on
 * as they came (bulkhead/vm_nic.h, "Offloads"): the guest's Linux cuts a
 * 64 KiB TCP segment, so it crosses the channel and the guest's send path
 * once. A request lies in a run of the channel's 2 KiB slots; its length is
 * ours to remember, not the guest's ack to tell. Without them nic-tap had
 * to drop every segment Linux gave its TAP larger than a frame, and TCP
 * out through the VM crawled on retransmissions (1.1 Mbit/s).
 *
 * When the VM restarts, the agent starts a new epoch: we empty the rings
 * and attach again. While the guest is silent (its beat stops) the link is
 * down for our client and what it sends is dropped; the session stays, so
 * the interface above (nic-tap's bh0) survives the VM's restart.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/nic.h"
#include "bulkhead/service.h"
#include "bulkhead/session.h"
#include "bulkhead/vm_chan.h"
#include "bulkhead/vm_nic.h"

#define BATCH 32
/*
 * then every 1 ms up to this long after the last frame, before sleeping on
 * the guest's doorbell: a ring costs the guest a VM exit to QEMU, 14.7 ms
 * of its time on average in the nested test machine (the agent's "nic
 * time" line), against a 1 ms poll here
 */
#define AWAKE_NS (500ull * 1000000ull)

/*
 * the session's streams: nic.h's geometry, with tx slots that hold a
 * segmentation request (the guest's Linux cuts it); a few of them, as the
 * channel's to-guest stream holds seven
 */
#define TX_SLOT (66u * 1024)
#define TX_SLOTS 16
_Static_assert(TX_SLOT >= BH_NIC_GSO_MAX, "a tx slot holds a segmentation request");
static const struct bh_session_stream_spec nic_spec[2] = {
	[BH_NIC_TX] = { BH_PS_SINK, BH_NIC_RING, TX_SLOT, (uint64_t)TX_SLOTS * TX_SLOT },
	[BH_NIC_RX] = { BH_PS_SOURCE, BH_NIC_RING, BH_NIC_SLOT,
			(uint64_t)BH_NIC_RING * BH_NIC_SLOT },
};
/* what we pass on to a guest that takes it (bulkhead/vm_nic.h, "Offloads") */
#define OFFLOADS (BH_NIC_OFF_TX_CSUM | BH_NIC_OFF_TSO4 | BH_NIC_OFF_TSO6 | BH_NIC_OFF_RX_CSUM)

struct server {
	struct bh_core core;
	struct bh_service svc;
	/* the channel: its memory, doorbell and line; its streams */
	struct bh_vm_chan vc;
	struct bh_packet_stream ch[2];
	bool attached;
	struct bh_vmnic_guest guest; /* the last good copy */
	bool known;		     /* the guest has said who it is */
	uint32_t offloads;	     /* what this epoch's agent takes, of OFFLOADS */
	/* the length of the frame we sent from each to-guest slot (0: none starts there) */
	uint32_t sent[BH_VMNIC_BULK / BH_VMNIC_SLOT];
	/* the session (one client at a time); its streams are its client's, for its life */
	struct bh_session s;
	bool open;
	struct bh_nic_link link; /* what the client was told */
	uint32_t offered;	 /* the offloads the client was told of */
	/* a frame of the client's waiting for a run of free slots on the channel */
	struct bh_ps_desc held;
	bool holding;
	/* counters */
	uint64_t to_guest, from_guest, dropped_down, dropped_full, refused, invalid;
	uint64_t offloaded, held_count, dropped_offload;
};

/* the link as the client should see it: the guest's, and down while it is silent */
static struct bh_nic_link current_link(const struct server *v)
{
	struct bh_nic_link l = { 0 };

	if (v->known && v->vc.alive && v->attached && v->guest.link_up)
		l = (struct bh_nic_link){ .up = 1, .speed_mbps = v->guest.speed_mbps };
	return l;
}

static void tell_link(struct server *v)
{
	struct bh_nic_link l = current_link(v);

	if (!v->open || (l.up == v->link.up && l.speed_mbps == v->link.speed_mbps))
		return;
	v->link = l;
	printf("vm-nic: link %s for \"%s\"\n", l.up ? "up" : "down", v->s.peer);
	if (bh_session_send_event(&v->s, BH_NIC_EVENT_LINK, &l, sizeof(l)) < 0)
		printf("vm-nic: cannot tell \"%s\" of the link: it will find out\n", v->s.peer);
}

/* ---- the channel to the guest ---- */

/* we published on the channel: if the guest sleeps, wake it */
static void wake_guest(struct server *v)
{
	bh_vm_chan_wake(&v->vc, &bh_vmnic_guest_page(v->vc.mem)->sleeping);
}

static bool guest_check(void *arg, uint64_t now)
{
	struct server *v = arg;
	struct bh_vmnic_guest g = { 0 };
	int rc = bh_vmnic_guest_read(v->vc.mem, &g);
	int news = bh_vm_chan_guest(&v->vc, &v->core, rc, g.beat, g.epoch, now);

	if (rc == -EPROTO) {
		v->invalid++;
		if (news < 0)
			printf("vm-nic: the guest's page holds nonsense (version %u, link %u, mtu "
			       "%u): ignoring it\n",
			       g.version, g.link_up, g.mtu);
		return v->known;
	}
	if (rc)
		return v->known;
	if (news > 0) {
		/* a new agent (the VM restarted): empty rings, then say we are there */
		if (v->attached)
			bh_vmnic_detach(v->ch);
		bh_vmnic_clear(v->vc.mem);
		memset(v->sent, 0, sizeof(v->sent));
		v->offloads = g.offloads & OFFLOADS;
		v->attached = bh_vmnic_attach(v->ch, v->vc.mem, v->vc.size, true) == 0;
		__atomic_store_n(&bh_vmnic_host_page(v->vc.mem)->epoch, g.epoch, __ATOMIC_RELEASE);
		printf("vm-nic: guest agent epoch %u: %s %02x:%02x:%02x:%02x:%02x:%02x (driver "
		       "%s), link %s; channel %s, %s, offloads 0x%x (reset %llu)\n",
		       g.epoch, g.ifname, g.mac[0], g.mac[1], g.mac[2], g.mac[3], g.mac[4],
		       g.mac[5], g.driver, g.link_up ? "up" : "down",
		       v->attached ? "open" : "cannot attach",
		       g.doorbell ? "doorbells both ways" : "polled (the guest has no wake-up line)",
		       v->offloads, (unsigned long long)v->vc.resets);
		if (v->known && memcmp(v->guest.mac, g.mac, 6))
			printf("vm-nic: the guest's MAC changed; the client keeps the first one\n");
		if (!v->known)
			v->guest = g;
		v->known = true;
	}
	if (v->known) {
		v->guest.link_up = g.link_up;
		v->guest.speed_mbps = g.speed_mbps;
	}
	tell_link(v);
	return v->known;
}

/* frames from the guest go to the client: how many; -1 the session broke, -2 the channel */
static int from_guest(struct server *v)
{
	struct bh_packet_stream *in = &v->ch[BH_VMNIC_FROM_GUEST];
	struct bh_packet_stream *out = &v->s.ps[BH_NIC_RX];
	struct bh_ps_desc d[BATCH], o[BATCH];
	unsigned int room = BATCH, n = 0;
	int got;

	if (v->open) {
		/* slots the client has consumed come back */
		got = bh_ps_reclaim(out, BATCH);
		if (got < 0)
			return -1;
		room = (unsigned int)got;
	}
	got = bh_ps_take(in, 0, d, room);
	if (got <= 0)
		return got < 0 ? -2 : 0;
	for (int i = 0; i < got; i++) {
		if (d[i].status < 0 || !bh_nic_frame_ok(d[i].length)) {
			v->invalid++;
		} else if (v->open && bh_ps_alloc(out, d[i].length, &o[n]) == 0) {
			memcpy(bh_ps_data(out, &o[n]), bh_ps_data(in, &d[i]), d[i].length);
			o[n].length = d[i].length;
			o[n].op = v->offered & BH_NIC_OFF_RX_CSUM ? d[i].op & BH_NIC_RX_CSUM_OK : 0;
			n++;
		} else {
			v->dropped_full++;
		}
		d[i].status = 0;
	}
	v->from_guest += n;
	if (n) {
		bh_ps_put(out, o, n);
		bh_ps_flush(out);
	}
	/* the guest's slots go back once their frames are copied */
	bh_ps_put(in, d, (unsigned int)got);
	bh_ps_flush(in);
	wake_guest(v);
	return got;
}

/* the guest's acks: the slots of each frame (one, or a segmentation request's run) are free again */
static int guest_acks(struct server *v)
{
	struct bh_packet_stream *out = &v->ch[BH_VMNIC_TO_GUEST];
	struct bh_ps_desc d[BATCH];
	int got;

	/* the guest says which frame it is done with; how long it was is ours to know */
	while ((got = bh_ps_get(out, d, BATCH)) > 0) {
		for (int i = 0; i < got; i++) {
			uint64_t slot = d[i].offset / BH_VMNIC_SLOT;

			if (d[i].offset % BH_VMNIC_SLOT || !v->sent[slot]) {
				v->invalid++;
				continue;
			}
			bh_ps_free_span(out, d[i].offset, v->sent[slot]);
			v->sent[slot] = 0;
		}
	}
	return got;
}

/*
 * The next frame from the client: the one held for want of room, or a new
 * one (inflight: taken but not acked yet). 1, 0 none, -1 the session broke.
 */
static int next_frame(struct server *v, unsigned int inflight, struct bh_ps_desc *d)
{
	if (v->holding) {
		*d = v->held;
		v->holding = false;
		return 1;
	}
	int got = bh_ps_take(&v->s.ps[BH_NIC_TX], inflight, d, 1);

	return got < 0 ? -1 : got;
}

/* frames from the client go to the guest: how many; -1 the session broke, -2 the channel */
static int to_guest(struct server *v)
{
	struct bh_packet_stream *in = &v->s.ps[BH_NIC_TX];
	struct bh_packet_stream *out = &v->ch[BH_VMNIC_TO_GUEST];
	struct bh_ps_desc d[BATCH], o[BATCH];
	bool up = current_link(v).up;
	unsigned int n = 0, taken = 0;
	int got = 0;
	bool held = v->holding; /* the first frame is one that waited already */

	if (!v->open)
		return 0;
	if (v->attached && guest_acks(v) < 0)
		return -2;
	while (taken < BATCH && (got = next_frame(v, taken, &d[taken])) == 1) {
		struct bh_ps_desc *f = &d[taken];

		if (!bh_vmnic_tx_ok(f, v->offered)) {
			v->refused++;
			f->status = -EINVAL;
			taken++;
			continue;
		}
		f->status = 0;
		if (!up || !bh_vmnic_tx_ok(f, v->offloads)) {
			/* the guest is away, or its agent takes less than the first one did */
			if (up)
				v->dropped_offload++;
			else
				v->dropped_down++;
			taken++;
			continue;
		}
		/* no room on the channel: the frame waits for the guest's acks */
		if (bh_ps_space(out) <= n || bh_ps_alloc_span(out, f->length, &o[n]) < 0) {
			v->held = *f;
			v->holding = true;
			v->held_count += !(held && taken == 0);
			break;
		}
		memcpy(bh_ps_data(out, &o[n]), bh_ps_data(in, f), f->length);
		o[n].length = f->length;
		o[n].op = f->op;
		o[n].arg = f->arg;
		v->sent[o[n].offset / BH_VMNIC_SLOT] = f->length;
		v->offloaded += f->op != 0;
		n++;
		taken++;
	}
	if (got < 0)
		return -1;
	v->to_guest += n;
	if (n) {
		bh_ps_put(out, o, n);
		bh_ps_flush(out);
		wake_guest(v);
	}
	if (taken) {
		bh_ps_put(in, d, taken);
		bh_ps_flush(in);
	}
	return (int)taken;
}

/* the counters, for the log */
static void counters(const struct server *v, char *buf, size_t len)
{
	snprintf(buf, len,
		 "to the guest %llu frames (%llu with offloads), from it %llu; dropped %llu (guest "
		 "away), %llu (no room), %llu (offload the guest lacks); refused %llu; %llu waited "
		 "for room; wake-ups sent %llu, doorbells heard %llu",
		 (unsigned long long)v->to_guest, (unsigned long long)v->offloaded,
		 (unsigned long long)v->from_guest, (unsigned long long)v->dropped_down,
		 (unsigned long long)v->dropped_full, (unsigned long long)v->dropped_offload,
		 (unsigned long long)v->refused, (unsigned long long)v->held_count,
		 (unsigned long long)v->vc.irqs, (unsigned long long)v->vc.kicks);
}

/* every 10 s that moved frames: the counters, for the log */
static void report(struct server *v, uint64_t now)
{
	static uint64_t next, last;
	char buf[400];

	if (now < next || v->to_guest + v->from_guest == last)
		return;
	next = now + 10000000000ull;
	last = v->to_guest + v->from_guest;
	counters(v, buf, sizeof(buf));
	printf("vm-nic: %s; wake-up line %s\n", buf, v->vc.line >= 0 ? "open" : "none");
}

/* ---- the session ---- */

static void client_close(struct server *v, const char *why)
{
	char buf[400];

	counters(v, buf, sizeof(buf));
	printf("vm-nic: session from \"%s\" closed: %s (%s)\n", v->s.peer, why, buf);
	/* the streams go with it: their memory was its client's, and so is a frame held */
	bh_session_close(&v->core, &v->s);
	v->open = false;
	v->holding = false;
}

static void client_open(void *arg, struct bh_session_request *req)
{
	struct server *v = arg;
	struct bh_nic_info info = { .mtu = BH_NIC_MTU, .driver = "vm-nic" };
	char why[300];

	if (v->open) {
		printf("vm-nic: session from \"%s\" refused: \"%s\" has the NIC\n", req->client,
		       v->s.peer);
		bh_service_refuse(&v->svc, req);
		return;
	}
	memcpy(info.mac, v->guest.mac, sizeof(info.mac));
	info.link = current_link(v);
	info.offloads = v->offloads;
	if (bh_vm_chan_offer(&v->core, req, BH_NIC_SERVICE, nic_spec, 2, &info, sizeof(info),
			     &v->s, why, sizeof(why)) < 0) {
		printf("vm-nic: session from \"%s\" refused: %s\n", req->client, why);
		bh_service_refuse(&v->svc, req);
		return;
	}
	v->open = true;
	v->s.set_up = 1;
	v->link = info.link;
	v->offered = info.offloads;
	fcntl(req->fd, F_SETFL, fcntl(req->fd, F_GETFL) | O_NONBLOCK);
	printf("vm-nic: session from \"%s\": MAC %02x:%02x:%02x:%02x:%02x:%02x of the guest's %s "
	       "(%s), link %s, offloads 0x%x (the guest's Linux does them)\n",
	       v->s.peer, info.mac[0], info.mac[1], info.mac[2], info.mac[3], info.mac[4],
	       info.mac[5], v->guest.ifname, v->guest.driver, info.link.up ? "up" : "down",
	       info.offloads);
}

/* ---- set-up ---- */

static void setup(struct server *v)
{
	bh_vm_chan_open(&v->core, &v->vc, "vm-nic", bh_vmnic_stream_offset(2));
	v->vc.guest_page = bh_vmnic_guest_page(v->vc.mem);
	v->vc.guest_doorbell = &bh_vmnic_guest_page(v->vc.mem)->doorbell;
	v->vc.host_sleeping = &bh_vmnic_host_page(v->vc.mem)->sleeping;
	v->vc.streams = v->ch;
	v->vc.nstreams = 2;
	printf("vm-nic: uid %u, channel memory %zu KiB; waiting for the guest's agent\n",
	       getuid(), v->vc.size / 1024);
}

static void sleep_a_while(void *arg, uint64_t now)
{
	struct server *v = arg;
	const char *why = bh_vm_chan_idle(&v->vc, &v->core, &v->svc, v->open ? &v->s : NULL,
					  v->open ? &v->s.ps[BH_NIC_TX] : NULL, v->attached,
					  now, AWAKE_NS - BH_VM_CHAN_BUSY_NS);

	if (why && v->open)
		client_close(v, why);
}

/* frames both ways, the counters said: true if any moved (we poll fast for a while) */
static bool move(void *arg, uint64_t now)
{
	struct server *v = arg;
	int a = v->attached ? from_guest(v) : 0;
	int b = to_guest(v);

	report(v, now);
	if (a == -2 || b == -2) {
		/* the guest broke a ring: wait for its next epoch */
		printf("vm-nic: the guest corrupted the channel's rings; waiting for it to "
		       "start over\n");
		bh_vmnic_detach(v->ch);
		v->attached = false;
		v->invalid++;
	}
	if ((a == -1 || b == -1) && v->open)
		client_close(v, "it corrupted a stream");
	return a > 0 || b > 0;
}

int main(void)
{
	/* no service channel until the guest is there: poll skips fd -1 */
	static struct server v = { .svc = { .channel = -1 } };
	static const struct bh_vm_server_ops ops = { guest_check, client_open, move,
						     sleep_a_while };

	setup(&v);
	/* clients come once the guest has said which MAC they get */
	bh_vm_chan_run(&v.vc, &v.core, &v.svc, BH_NIC_SERVICE, bh_session_cost(nic_spec, 2), &ops,
		       &v);
}
