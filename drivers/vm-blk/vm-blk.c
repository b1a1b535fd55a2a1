// SPDX-License-Identifier: MIT
/*
 * bulkhead-vm-blk: the Block session (bulkhead/block.h) of a driver VM.
 * Linux's own nvme driver runs the disk inside the VM; the VM's agent serves
 * its /dev/nvme0n1 (O_DIRECT, Linux AIO, several requests in flight) over a
 * channel in memory the VM shares with us (a second ivshmem-doorbell device,
 * bulkhead/vm_blk.h), and we serve the Block session to one client exactly
 * as drivers/nvme does, so block-nbd (or block-ublk) on top cannot tell.
 *
 * A request: the client's descriptor is checked against the geometry
 * (bh_block_check), given a row of our table (its index is the channel
 * tag), a slot of the channel (a write's data copied in) and sent to the
 * agent; the agent's ack is checked (a tag we have in flight, a status in
 * the errno range), a read's data copied out of our slot to where the
 * client asked, and the client acked. The guest never sees the client's
 * memory, nor the client the guest's.
 *
 * The VM restarts (core kills and resets it, or it crashes): its agent
 * starts a new epoch; we empty the channel, attach again and reissue every
 * request still in our table, in table order, before taking new ones. That
 * is safe for writes (docs/design.md, "Why a reissued write is harmless"):
 * the client was not acked, the write sets whole blocks to the same bytes,
 * and the first copy cannot land after the second because core reset the
 * disk before the new VM started (and an agent that starts an epoch in a
 * live guest first waits for all its own I/O to end). Failing them instead
 * would hand the filesystem above an I/O error for every outage. While the
 * guest is away, requests wait; the session stays.
 *
 * A client that hangs up with requests in the guest: nobody's new requests
 * go out until the guest has acked those (its restarted self re-sends the
 * same writes, which must not be overtaken by the old copies), as in
 * drivers/nvme; if the VM dies meanwhile they are dropped, since its disk
 * was reset.
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

#include "bulkhead/block.h"
#include "bulkhead/bulkhead.h"
#include "bulkhead/service.h"
#include "bulkhead/session.h"
#include "bulkhead/vm_blk.h"
#include "bulkhead/vm_chan.h"

#define RING BH_VMBLK_RING

/* one request of the client's, while it is ours */
struct row {
	bool used;
	bool sent;		 /* on the channel of the current epoch */
	bool orphan;		 /* its client hung up: ack nobody */
	struct bh_ps_desc client; /* as the client gave it (checked) */
	struct bh_ps_desc chan;	 /* as we gave it to the guest */
};

struct server {
	struct bh_core core;
	struct bh_service svc;
	/* the channel: its memory, doorbell and line; its stream */
	struct bh_vm_chan vc;
	struct bh_packet_stream ch;
	bool attached;
	struct bh_vmblk_guest guest; /* the first good copy: the geometry clients get */
	bool known;
	/* the session (one client at a time); its stream is its client's, for its life */
	struct bh_block_info info;
	struct bh_session s;
	struct bh_packet_stream *ps;
	bool open;
	struct row row[RING];
	unsigned int used, orphans;
	/* counters */
	uint64_t requests, refused, failed, reissued, dropped, invalid;
};

static struct bh_session_stream_spec block_spec(void)
{
	return (struct bh_session_stream_spec){
		.server_role = BH_PS_SINK,
		.capacity = RING,
		.slot_size = BH_VMBLK_SLOT,
		.bulk_size = BH_VMBLK_BULK,
	};
}

/* ---- the channel to the guest ---- */

/* we published on the channel: if the guest sleeps, wake it */
static void wake_guest(struct server *v)
{
	bh_vm_chan_wake(&v->vc, &bh_vmblk_guest_page(v->vc.mem)->sleeping);
}

static void row_free(struct server *v, unsigned int i)
{
	v->row[i].used = v->row[i].sent = false;
	if (v->row[i].orphan)
		v->orphans--;
	v->row[i].orphan = false;
	v->used--;
}

/* one row onto the channel: its slot, a write's data; false if there is no room */
static bool send_row(struct server *v, unsigned int i)
{
	struct row *r = &v->row[i];
	struct bh_ps_desc d;

	if (bh_ps_alloc(&v->ch, BH_VMBLK_SLOT, &d) < 0)
		return false;
	d.op = r->client.op;
	d.arg = r->client.arg;
	d.length = r->client.length;
	d.tag = i;
	d.status = 0;
	if (d.op == BH_BLOCK_WRITE)
		memcpy(bh_ps_data(&v->ch, &d), bh_ps_data(v->ps, &r->client), d.length);
	if (bh_ps_put(&v->ch, &d, 1) != 1) {
		bh_ps_free(&v->ch, &d);
		return false;
	}
	r->chan = d;
	r->sent = true;
	return true;
}

/* rows not on the channel yet go out, in table order: how many */
static unsigned int send_pending(struct server *v)
{
	unsigned int n = 0;

	for (unsigned int i = 0; v->attached && i < RING; i++)
		if (v->row[i].used && !v->row[i].sent && !v->row[i].orphan && send_row(v, i))
			n++;
	if (n) {
		bh_ps_flush(&v->ch);
		wake_guest(v);
	}
	return n;
}

/* a new epoch: every row still ours goes out again, the orphans' to nobody */
static void reissue(struct server *v)
{
	unsigned int n;

	for (unsigned int i = 0; i < RING; i++) {
		struct row *r = &v->row[i];
		if (r->used && r->orphan) {
			/* the guest's disk was reset with it: nothing of them will land */
			row_free(v, i);
			v->dropped++;
		}
		r->sent = false;
	}
	n = send_pending(v);
	if (n) {
		v->reissued += n;
		printf("vm-blk: reissued %u request(s) that were in flight when the guest went "
		       "away\n",
		       n);
	}
}

static bool guest_check(void *arg, uint64_t now)
{
	struct server *v = arg;
	struct bh_vmblk_guest g = { 0 };
	int rc = bh_vmblk_guest_read(v->vc.mem, &g);
	int news = bh_vm_chan_guest(&v->vc, &v->core, rc, g.beat, g.epoch, now);

	if (rc == -EPROTO) {
		v->invalid++;
		if (news < 0)
			printf("vm-blk: the guest's page holds nonsense (version %u, block size %u, "
			       "%llu blocks, flags 0x%x): ignoring it\n",
			       g.version, g.block_size, (unsigned long long)g.block_count, g.flags);
		return v->known;
	}
	if (rc)
		return v->known;
	if (!news)
		return v->known;
	/* a new agent (the VM restarted), or one that found our ring broken */
	if (v->attached)
		bh_ps_detach(&v->ch);
	bh_vmblk_clear(v->vc.mem);
	v->attached = bh_vmblk_attach(&v->ch, v->vc.mem, v->vc.size, true) == 0;
	__atomic_store_n(&bh_vmblk_host_page(v->vc.mem)->epoch, g.epoch, __ATOMIC_RELEASE);
	printf("vm-blk: guest agent epoch %u: %s (%s), %llu blocks of %u bytes%s%s%s; channel "
	       "%s, %s (reset %llu)\n",
	       g.epoch, g.disk, g.model, (unsigned long long)g.block_count, g.block_size,
	       g.flags & BH_BLOCK_WRITABLE ? ", writable" : ", read-only",
	       g.flags & BH_BLOCK_CAN_FLUSH ? ", flush" : "", g.flags & BH_BLOCK_CAN_TRIM ? ", trim" : "",
	       v->attached ? "open" : "cannot attach",
	       g.doorbell ? "doorbells both ways" : "polled (the guest has no wake-up line)",
	       (unsigned long long)v->vc.resets);
	if (!v->known) {
		v->guest = g;
		v->info = (struct bh_block_info){
			.version = BH_BLOCK_VERSION,
			.block_size = g.block_size,
			.block_count = g.block_count,
			.flags = g.flags,
			.max_transfer = BH_VMBLK_SLOT,
			.queue_depth = RING,
		};
		snprintf(v->info.model, sizeof(v->info.model), "vm %s: %s", g.disk, g.model);
		v->known = true;
	} else if (g.block_size != v->guest.block_size || g.block_count != v->guest.block_count ||
		   g.flags != v->guest.flags) {
		/* the geometry of the session cannot change under a client: say so, keep serving */
		printf("vm-blk: the guest's disk is not the one it was (%llu blocks of %u, flags "
		       "0x%x; it was %llu of %u, 0x%x): requests past its end fail in the guest\n",
		       (unsigned long long)g.block_count, g.block_size, g.flags,
		       (unsigned long long)v->guest.block_count, v->guest.block_size,
		       v->guest.flags);
	}
	reissue(v);
	return v->known;
}

/* ack one request to the client, unless it hung up */
static void client_ack(struct server *v, struct row *r, int32_t status)
{
	r->client.status = status;
	if (status)
		v->failed++;
	if (!r->orphan && v->open)
		bh_ps_put(v->ps, &r->client, 1);
}

/* the guest's acks: how many; -2 the channel broke */
static int from_guest(struct server *v)
{
	struct bh_ps_desc d[RING];
	int got = bh_ps_get(&v->ch, d, RING);

	if (got < 0)
		return -2;
	for (int k = 0; k < got; k++) {
		struct row *r = d[k].tag < RING ? &v->row[d[k].tag] : NULL;

		/* a tag not in flight, or an ack for another slot: the guest lies */
		if (!r || !r->used || !r->sent || d[k].offset != r->chan.offset) {
			v->invalid++;
			return -2;
		}
		int32_t status = bh_vmblk_status(d[k].status);
		if (!status && r->client.op == BH_BLOCK_READ && !r->orphan && v->open)
			memcpy(bh_ps_data(v->ps, &r->client), bh_ps_data(&v->ch, &r->chan),
			       r->client.length);
		client_ack(v, r, status);
		bh_ps_free(&v->ch, &r->chan);
		row_free(v, d[k].tag);
	}
	if (got && v->open)
		bh_ps_flush(v->ps);
	return got;
}

/* the client's requests: how many; -1 the session broke */
static int from_client(struct server *v)
{
	struct bh_ps_desc d[RING];
	unsigned int room = RING - v->used;
	int got;

	/* nothing new while the guest is away, or an old client's writes are in flight */
	if (!v->open || !v->attached || !v->vc.alive || v->orphans || !room)
		return 0;
	got = bh_ps_take(v->ps, v->used, d, room);
	if (got < 0)
		return -1;
	for (int k = 0; k < got; k++) {
		int rc = bh_block_check(&v->info, &d[k]);
		unsigned int i = 0;

		if (rc) {
			v->refused++;
			d[k].status = rc;
			bh_ps_put(v->ps, &d[k], 1);
			continue;
		}
		while (v->row[i].used)
			i++; /* room was counted: there is a free row */
		v->row[i] = (struct row){ .used = true, .client = d[k] };
		v->used++;
		v->requests++;
	}
	if (got)
		bh_ps_flush(v->ps);
	/* the channel has as many slots as we have rows */
	send_pending(v);
	return got;
}

/* every 10 s that moved requests: the counters, for the log */
static void report(struct server *v, uint64_t now)
{
	static uint64_t next, last;

	if (now < next || v->requests == last)
		return;
	next = now + 10000000000ull;
	last = v->requests;
	printf("vm-blk: %llu requests (%llu refused, %llu failed in the guest, %llu reissued, "
	       "%llu dropped with their client); in flight %u; wake-ups sent %llu, doorbells "
	       "heard %llu\n",
	       (unsigned long long)v->requests, (unsigned long long)v->refused,
	       (unsigned long long)v->failed, (unsigned long long)v->reissued,
	       (unsigned long long)v->dropped, v->used, (unsigned long long)v->vc.irqs,
	       (unsigned long long)v->vc.kicks);
}

/* ---- the session ---- */

static void client_close(struct server *v, const char *why)
{
	unsigned int held = 0;

	for (unsigned int i = 0; i < RING; i++) {
		if (!v->row[i].used || v->row[i].orphan)
			continue;
		if (v->row[i].sent) {
			/* in the guest: it finishes them before anyone's new ones go out */
			v->row[i].orphan = true;
			v->orphans++;
			held++;
		} else {
			row_free(v, i);
			v->dropped++;
		}
	}
	printf("vm-blk: session from \"%s\" closed: %s (%llu requests, %llu refused, %llu failed, "
	       "%llu reissued; %u still in the guest)\n",
	       v->s.peer, why, (unsigned long long)v->requests, (unsigned long long)v->refused,
	       (unsigned long long)v->failed, (unsigned long long)v->reissued, held);
	/* the stream goes with it: its memory was its client's */
	bh_session_close(&v->core, &v->s);
	v->open = false;
}

static void client_open(void *arg, struct bh_session_request *req)
{
	struct server *v = arg;
	struct bh_session_stream_spec spec = block_spec();
	char why[300];

	if (v->open) {
		printf("vm-blk: session from \"%s\" refused: \"%s\" has the disk\n", req->client,
		       v->s.peer);
		bh_service_refuse(&v->svc, req);
		return;
	}
	if (bh_vm_chan_offer(&v->core, req, BH_BLOCK_SERVICE, &spec, 1, &v->info,
			     sizeof(v->info), &v->s, why, sizeof(why)) < 0) {
		printf("vm-blk: session from \"%s\" refused: %s\n", req->client, why);
		bh_service_refuse(&v->svc, req);
		return;
	}
	v->open = true;
	v->s.set_up = 1;
	v->ps = &v->s.ps[0];
	fcntl(req->fd, F_SETFL, fcntl(req->fd, F_GETFL) | O_NONBLOCK);
	printf("vm-blk: serving \"%s\": the guest's %s (%s), %llu blocks of %u bytes, %u x %u KiB "
	       "in flight\n",
	       v->s.peer, v->guest.disk, v->guest.model, (unsigned long long)v->info.block_count,
	       v->info.block_size, RING, BH_VMBLK_SLOT >> 10);
}

/* ---- set-up ---- */

static void setup(struct server *v)
{
	bh_vm_chan_open(&v->core, &v->vc, "vm-blk", bh_vmblk_needed());
	v->vc.guest_page = bh_vmblk_guest_page(v->vc.mem);
	v->vc.guest_doorbell = &bh_vmblk_guest_page(v->vc.mem)->doorbell;
	v->vc.host_sleeping = &bh_vmblk_host_page(v->vc.mem)->sleeping;
	v->vc.streams = &v->ch;
	v->vc.nstreams = 1;
	printf("vm-blk: uid %u, channel memory %zu KiB; waiting for the guest's agent\n", getuid(),
	       v->vc.size / 1024);
}

static void sleep_a_while(void *arg, uint64_t now)
{
	struct server *v = arg;
	bool takes = v->open && v->attached && v->vc.alive && !v->orphans && v->used < RING;
	const char *why = bh_vm_chan_idle(&v->vc, &v->core, &v->svc, v->open ? &v->s : NULL,
					  takes ? v->ps : NULL, v->attached,
					  now, 0);

	if (why && v->open)
		client_close(v, why);
}

/* the guest's acks and the client's requests, the counters said: true if any moved */
static bool move(void *arg, uint64_t now)
{
	struct server *v = arg;
	int a = v->attached ? from_guest(v) : 0;
	int b;

	report(v, now);
	if (a == -2) {
		/* the guest broke the ring: wait for its next epoch, then reissue */
		printf("vm-blk: the guest corrupted the channel's ring; waiting for it to "
		       "start over\n");
		bh_ps_detach(&v->ch);
		v->attached = false;
		v->invalid++;
	}
	b = from_client(v);
	if (b == -1 && v->open)
		client_close(v, "it corrupted its stream");
	return a > 0 || b > 0;
}

int main(void)
{
	/* no service channel until the guest is there: poll skips fd -1 */
	static struct server v = { .svc = { .channel = -1 } };
	static const struct bh_vm_server_ops ops = { guest_check, client_open, move,
						     sleep_a_while };
	struct bh_session_stream_spec spec = block_spec();

	setup(&v);
	/* clients come once the guest has said what disk they get */
	bh_vm_chan_run(&v.vc, &v.core, &v.svc, BH_BLOCK_SERVICE, bh_session_cost(&spec, 1), &ops,
		       &v);
}
