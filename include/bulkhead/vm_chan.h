/* SPDX-License-Identifier: MIT */
/*
 * The host's side of a driver VM's channel, whichever its kind (the NIC's,
 * bulkhead/vm_nic.h, or the disk's, bulkhead/vm_blk.h): the memory the VM
 * shares with its server, the doorbell the guest rings, and the line whose
 * bytes wake the guest (core/vm_nic.c makes them, BH_OP_VM_NIC hands them
 * out). What drivers/vm-nic and drivers/vm-blk do alike.
 */
#ifndef BULKHEAD_VM_CHAN_H
#define BULKHEAD_VM_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/packet_stream.h"
#include "bulkhead/service.h"
#include "bulkhead/session.h"

struct bh_vm_chan {
	const char *who; /* the server's name, for its messages */
	uint8_t *mem;
	size_t size;
	int kick; /* the doorbell the guest rings: an eventfd */
	int line; /* the line that wakes the guest, or -1: it polls */
	uint64_t irqs, kicks; /* wake-ups sent, doorbells heard */
	uint64_t waiting_since, waiting_said; /* bh_vm_chan_waiting's */
	/*
	 * the server's kind of channel, set after bh_vm_chan_open: the guest's
	 * page, its "I sleep on the line and ring yours" word, our "ring me"
	 * word, and the channel's streams (bh_vm_chan_idle)
	 */
	const void *guest_page;
	const uint32_t *guest_doorbell;
	uint32_t *host_sleeping;
	const struct bh_packet_stream *streams;
	unsigned int nstreams;
	uint64_t next_beat; /* bh_vm_chan_run's */
	bool announced;
	uint64_t busy_until_ns; /* something moved: poll fast until then */
	/* the guest, as its page says (bh_vm_chan_guest) */
	uint64_t beat, beat_ns; /* its last beat, and when it changed */
	uint64_t last_reset_ns, resets;
	uint32_t epoch;
	bool alive;
};

#define BH_VM_CHAN_BUSY_NS (20ull * 1000000ull) /* after a move, poll every 100 us this long */
#define BH_VM_CHAN_SILENT_NS (5000ull * 1000000ull) /* no guest beat for this long: it is away */
#define BH_VM_CHAN_RESET_GAP_NS (100ull * 1000000ull) /* a guest restarting faster is slowed down */

/*
 * the server who (its name, for its messages): stdout line-buffered, core
 * opened, the VM's channel memory (at least need bytes) mapped and its
 * doorbell taken; exits on failure
 */
void bh_vm_chan_open(struct bh_core *core, struct bh_vm_chan *ch, const char *who, uint64_t need);
/* a file mapped shared, or NULL */
void *bh_vm_chan_map(int fd, size_t size);
/* the current QEMU's end of the wake-up line: a new one comes with each VM start */
void bh_vm_chan_line_open(struct bh_core *core, struct bh_vm_chan *ch);
/* the line is readable: drain it, and drop it once QEMU is gone */
void bh_vm_chan_line_input(struct bh_vm_chan *ch);
/* we published on the channel: if the guest sleeps (its page says so), wake it */
void bh_vm_chan_wake(struct bh_vm_chan *ch, const uint32_t *guest_sleeping);
/*
 * may we sleep until the other side wakes us? It must be able to
 * (*wakes_us: the guest rings our doorbell, or the host has a line to the
 * agent), the channel be attached, and nothing wait on the n streams; sets
 * *sleeping (our page) if so, which the side clears once awake (the
 * host: bh_vm_chan_woken). The agent uses it too.
 */
bool bh_vm_chan_may_sleep(bool attached, const uint32_t *wakes_us, uint32_t *sleeping,
			  const struct bh_packet_stream *ps, unsigned int n);
/*
 * no agent has shown itself on the channel yet: every 10 s, say what the
 * guest's page holds (its first words, magic, version and epoch, are the
 * same in every kind of channel), so a channel that stays silent is seen
 */
void bh_vm_chan_waiting(struct bh_vm_chan *ch, const void *guest_page, uint64_t now);
/*
 * a server's sleep: ps holds core's socket (BH_POLL_CORE) and, while a
 * client is there, 0 its session's socket and 1 its stream's wait fd, and
 * 2 our doorbell if we may sleep on it; the line joins as 3. Sleeps up to
 * ts, then: core gone, exit; the stream's signal drained; the line
 * drained; awake (bh_vm_chan_woken). NULL, or why the client on s is gone.
 */
const char *bh_vm_chan_sleep(struct bh_vm_chan *ch, struct bh_pollset *ps,
			     const struct timespec *ts, struct bh_session *s,
			     struct bh_packet_stream *stream, uint32_t *sleeping);
/*
 * what the guest's page, read with rc (0, -EAGAIN before the agent wrote
 * it, -EPROTO nonsense), says of the guest: alive while its beat advanced
 * within BH_VM_CHAN_SILENT_NS; 1 for a new epoch (its agent started over;
 * one per BH_VM_CHAN_RESET_GAP_NS at most), taken with the current QEMU's
 * wake-up line: the server empties and attaches its streams then and
 * publishes the epoch on its page; -1 for nonsense from a guest that was
 * alive (the server says so; it is not alive now); else 0
 */
int bh_vm_chan_guest(struct bh_vm_chan *ch, struct bh_core *core, int rc, uint64_t beat,
		     uint32_t epoch, uint64_t now);
/* what a driver VM's server does its own way (bh_vm_chan_run); arg is the server */
struct bh_vm_server_ops {
	/* read the guest's page: true once the guest has said who it is */
	bool (*check)(void *arg, uint64_t now);
	/* a new client's request: serve it, or refuse it */
	void (*open)(void *arg, struct bh_session_request *req);
	/* move what there is between the client and the guest: true if anything moved (busy) */
	bool (*move)(void *arg, uint64_t now);
	/* nothing moved: wait a while (bh_vm_chan_idle) */
	void (*wait)(void *arg, uint64_t now);
};
/*
 * a server's loop, for ever: each turn its heartbeat to core and the
 * guest's page checked; while the guest is not known, what its page holds
 * said every 10 s; once known, the service announced (one session, cost
 * bytes; exits if core refuses) and new clients opened; then what there
 * is moved, or a wait
 */
void bh_vm_chan_run(struct bh_vm_chan *ch, struct bh_core *core, struct bh_service *svc,
		    const char *service, uint64_t cost, const struct bh_vm_server_ops *ops,
		    void *arg) __attribute__((noreturn));
/*
 * a server's idle wait: 100 us while busy (bh_vm_chan_run), 1 ms after,
 * watching core, the service, the client's socket while s is not NULL and
 * its stream's signal while stream is not NULL (no wait then if the client
 * has already put something); linger_ns after the busy time, with an
 * attached channel whose guest rings and nothing pending on its streams,
 * until the doorbell rings or a second passes. NULL, or why the client on
 * s is gone (bh_vm_chan_sleep)
 */
const char *bh_vm_chan_idle(struct bh_vm_chan *ch, struct bh_core *core, struct bh_service *svc,
			    struct bh_session *s, struct bh_packet_stream *stream, bool attached,
			    uint64_t now, uint64_t linger_ns);
/* after the sleep: we are awake, and the doorbell's count is taken */
void bh_vm_chan_woken(struct bh_vm_chan *ch, uint32_t *sleeping);
/*
 * the client's words on its session socket (none are defined): NULL while
 * it is there, or why it is gone
 */
const char *bh_vm_chan_client_events(struct bh_session *s);
/*
 * offer req a session of n streams whose memory core makes for that session
 * (BH_OP_VM_NIC with its id) and charges to its client's session_memory, as
 * it charges a native driver's DMA for a session: s holds it all then, and
 * bh_session_close gives it back. 0; or -errno with why said, nothing kept,
 * and the request still to refuse (bh_service_refuse).
 */
int bh_vm_chan_offer(struct bh_core *core, const struct bh_session_request *req,
		     const char *service, const struct bh_session_stream_spec *spec,
		     unsigned int n, const void *info, size_t info_len, struct bh_session *s,
		     char *why, size_t why_len);

#endif
