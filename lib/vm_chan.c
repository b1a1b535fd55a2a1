// SPDX-License-Identifier: MIT
/* The host's side of a driver VM's channel, for vm-nic and vm-blk alike (bulkhead/vm_chan.h). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bulkhead/vm_chan.h"

void *bh_vm_chan_map(int fd, size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

void bh_vm_chan_open(struct bh_core *core, struct bh_vm_chan *ch, const char *who, uint64_t need)
{
	struct stat st;
	int fd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	ch->who = who;
	ch->kick = ch->line = -1;
	if (bh_core_open(core) < 0) {
		fprintf(stderr, "%s: core: %s\n", who, bh_error(core));
		exit(1);
	}
	if (bh_vm_nic_open(core, 0, 0, &fd) < 0) {
		fprintf(stderr, "%s: the VM's channel memory: %s\n", ch->who, bh_error(core));
		exit(1);
	}
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size < need ||
	    !(ch->mem = bh_vm_chan_map(fd, (size_t)st.st_size))) {
		fprintf(stderr, "%s: the VM's channel memory (%lld bytes) cannot hold the "
				"channel (%llu bytes) or cannot be mapped\n",
			ch->who, (long long)st.st_size, (unsigned long long)need);
		exit(1);
	}
	ch->size = (size_t)st.st_size;
	close(fd);
	if (bh_vm_nic_open(core, 3, 0, &ch->kick) < 0) {
		fprintf(stderr, "%s: the VM's doorbell: %s\n", ch->who, bh_error(core));
		exit(1);
	}
}

void bh_vm_chan_line_open(struct bh_core *core, struct bh_vm_chan *ch)
{
	if (ch->line >= 0)
		close(ch->line);
	ch->line = -1;
	if (bh_vm_nic_open(core, 4, 0, &ch->line) < 0) {
		printf("%s: no wake-up line to the guest (%s): it polls\n", ch->who, bh_error(core));
		ch->line = -1;
	}
}

void bh_vm_chan_line_input(struct bh_vm_chan *ch)
{
	char buf[64];
	ssize_t n = recv(ch->line, buf, sizeof(buf), MSG_DONTWAIT);

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		close(ch->line);
		ch->line = -1;
	}
}

void bh_vm_chan_wake(struct bh_vm_chan *ch, const uint32_t *guest_sleeping)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (ch->line >= 0 && __atomic_load_n(guest_sleeping, __ATOMIC_RELAXED) &&
	    send(ch->line, "!", 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1)
		ch->irqs++;
}

bool bh_vm_chan_may_sleep(bool attached, const uint32_t *wakes_us, uint32_t *sleeping,
			  const struct bh_packet_stream *ps, unsigned int n)
{
	bool idle = true;

	if (!attached || !__atomic_load_n(wakes_us, __ATOMIC_RELAXED))
		return false;
	__atomic_store_n(sleeping, 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (unsigned int i = 0; i < n; i++)
		idle &= !bh_ps_pending(&ps[i]);
	if (!idle)
		__atomic_store_n(sleeping, 0, __ATOMIC_RELAXED);
	return idle;
}

void bh_vm_chan_waiting(struct bh_vm_chan *ch, const void *guest_page, uint64_t now)
{
	const uint32_t *w = guest_page;

	if (!ch->waiting_since)
		ch->waiting_since = now;
	if (now - ch->waiting_since < ch->waiting_said + 10000000000ull)
		return;
	ch->waiting_said = now - ch->waiting_since;
	printf("%s: no agent on the channel after %llu s: the guest's page holds magic 0x%08x, "
	       "version %u, epoch %u\n",
	       ch->who, (unsigned long long)(ch->waiting_said / 1000000000ull),
	       __atomic_load_n(&w[0], __ATOMIC_ACQUIRE), __atomic_load_n(&w[1], __ATOMIC_RELAXED),
	       __atomic_load_n(&w[2], __ATOMIC_RELAXED));
}

const char *bh_vm_chan_sleep(struct bh_vm_chan *ch, struct bh_pollset *ps,
			     const struct timespec *ts, struct bh_session *s,
			     struct bh_packet_stream *stream, uint32_t *sleeping)
{
	const char *why = NULL;
	int who, fd;

	if (ch->line >= 0)
		bh_pollset_add(ps, ch->line, POLLIN, 3);
	if (ppoll(ps->p, ps->n, ts, NULL) > 0) {
		ps->next = 0;
		while (bh_pollset_next(ps, &who, &fd)) {
			if (who == BH_POLL_CORE) {
				fprintf(stderr, "%s: core hung up\n", ch->who);
				exit(1);
			}
			if (who == 1)
				bh_ps_drain_signal(stream);
			if (who == 0 && !why)
				why = bh_vm_chan_client_events(s);
			if (who == 3)
				bh_vm_chan_line_input(ch);
		}
	}
	bh_vm_chan_woken(ch, sleeping);
	return why;
}

int bh_vm_chan_guest(struct bh_vm_chan *ch, struct bh_core *core, int rc, uint64_t beat,
		     uint32_t epoch, uint64_t now)
{
	bool was = ch->alive;

	if (rc == -EPROTO)
		ch->alive = false;
	if (rc)
		return rc == -EPROTO && was ? -1 : 0;
	if (beat != ch->beat) {
		ch->beat = beat;
		ch->beat_ns = now;
	}
	ch->alive = now - ch->beat_ns < BH_VM_CHAN_SILENT_NS;
	if (epoch == ch->epoch || now - ch->last_reset_ns <= BH_VM_CHAN_RESET_GAP_NS)
		return 0;
	ch->epoch = epoch;
	bh_vm_chan_line_open(core, ch);
	ch->last_reset_ns = now;
	ch->resets++;
	ch->beat_ns = now;
	ch->alive = true;
	return 1;
}

void bh_vm_chan_run(struct bh_vm_chan *ch, struct bh_core *core, struct bh_service *svc,
		    const char *service, uint64_t cost, const struct bh_vm_server_ops *ops,
		    void *arg)
{
	for (;;) {
		uint64_t now = bh_now_ns();
		struct bh_session_request req;

		bh_heartbeat_every(core, &ch->next_beat, 1000, ch->who);
		if (!ops->check(arg, now)) {
			bh_vm_chan_waiting(ch, ch->guest_page, now);
		} else if (!ch->announced) {
			if (bh_service_open(svc, core, service, cost, 1) < 0) {
				fprintf(stderr, "%s: announcing the %s service: %s\n", ch->who,
					service, bh_error(core));
				exit(1);
			}
			ch->announced = true;
			printf("%s: ready: serving '%s'\n", ch->who, service);
		}
		if (ch->announced) {
			bh_service_pass(svc);
			while (bh_service_next(svc, &req) == 1)
				ops->open(arg, &req);
		}
		if (ops->move(arg, now))
			ch->busy_until_ns = now + BH_VM_CHAN_BUSY_NS;
		else
			ops->wait(arg, now);
	}
}

const char *bh_vm_chan_idle(struct bh_vm_chan *ch, struct bh_core *core, struct bh_service *svc,
			    struct bh_session *s, struct bh_packet_stream *stream, bool attached,
			    uint64_t now, uint64_t linger_ns)
{
	struct timespec ts = { .tv_nsec = now < ch->busy_until_ns ? 100000l : 1000000l };
	struct bh_pollset ps;

	bh_pollset_server(&ps, core, svc, -1);
	if (s) {
		bh_pollset_add(&ps, s->fd, POLLIN, 0);
		/* the client signals its stream only if we said we sleep */
		if (stream && bh_ps_prepare_wait(stream))
			bh_pollset_add(&ps, bh_ps_wait_fd(stream), POLLIN, 1);
		else if (stream)
			ts.tv_nsec = 0;
	}
	/* with the guest's doorbell: until it rings, or a second for the beats */
	if (ts.tv_nsec && now >= ch->busy_until_ns + linger_ns &&
	    bh_vm_chan_may_sleep(attached, ch->guest_doorbell, ch->host_sleeping, ch->streams,
				 ch->nstreams)) {
		bh_pollset_add(&ps, ch->kick, POLLIN, 2);
		ts = (struct timespec){ .tv_sec = 1 };
	}
	return bh_vm_chan_sleep(ch, &ps, &ts, s, stream, ch->host_sleeping);
}

/*
 * The doorbell's eventfd shares its file description, and so its
 * O_NONBLOCK, with every QEMU the VM has had: core sends it to QEMU over
 * the ivshmem server socket, and QEMU's socket chardev makes every fd it
 * receives that way blocking (qemu_socket_set_block: "O_NONBLOCK is
 * preserved across SCM_RIGHTS so reset it") before ivshmem makes it
 * non-blocking again. A read in between, with nothing counted, slept until
 * the guest rang: never, since it rings only a host that says it sleeps.
 * vm-nic hung so at a QEMU start, for good (tests/vm/dvm.sh, 1 run in 6).
 * So we read it only when poll says it holds a count: nobody else reads it.
 */
void bh_vm_chan_woken(struct bh_vm_chan *ch, uint32_t *sleeping)
{
	struct pollfd p = { .fd = ch->kick, .events = POLLIN };
	uint64_t n;

	__atomic_store_n(sleeping, 0, __ATOMIC_RELAXED);
	if (poll(&p, 1, 0) == 1 && (p.revents & POLLIN) &&
	    read(ch->kick, &n, sizeof(n)) == sizeof(n))
		ch->kicks += n;
}

const char *bh_vm_chan_client_events(struct bh_session *s)
{
	struct bh_session_event ev;
	int rc;

	while ((rc = bh_session_recv_event(s, &ev)) == 1)
		;
	if (rc == 0)
		return "it hung up";
	return rc == -EAGAIN ? NULL : "it sent a malformed event";
}

int bh_vm_chan_offer(struct bh_core *core, const struct bh_session_request *req,
		     const char *service, const struct bh_session_stream_spec *spec,
		     unsigned int n, const void *info, size_t info_len, struct bh_session *s,
		     char *why, size_t why_len)
{
	int memfd[BH_SESSION_STREAMS] = { -1, -1 };
	void *map[BH_SESSION_STREAMS] = { NULL, NULL };
	size_t size[BH_SESSION_STREAMS] = { 0, 0 };
	int rc = n > BH_SESSION_STREAMS ? -EINVAL : 0;

	if (rc)
		snprintf(why, why_len, "%u streams: at most %d", n, BH_SESSION_STREAMS);
	for (unsigned int i = 0; i < n && !rc; i++) {
		size[i] = bh_ps_region_size(spec[i].capacity, spec[i].bulk_size);
		rc = bh_vm_nic_stream(core, req->id, 1 + i, size[i], &memfd[i]);
		if (rc < 0)
			snprintf(why, why_len, "its streams: %s", bh_error(core));
		else if (!(map[i] = bh_vm_chan_map(memfd[i], size[i]))) {
			rc = -errno;
			snprintf(why, why_len, "cannot map a stream: %s", strerror(errno));
		}
	}
	if (!rc) {
		rc = bh_session_offer_regions(req->fd, service, spec, n, memfd, map, info,
					      info_len, s);
		if (rc)
			snprintf(why, why_len, "the setup failed: %s", strerror(-rc));
	}
	for (unsigned int i = 0; i < n; i++) {
		if (!rc) {
			/* bh_session_close unmaps them and closes these */
			s->memfd[i] = memfd[i];
			continue;
		}
		if (map[i])
			munmap(map[i], size[i]);
		if (memfd[i] >= 0)
			close(memfd[i]);
	}
	if (rc)
		return rc;
	s->id = req->id;
	snprintf(s->peer, sizeof(s->peer), "%s", req->client);
	return 0;
}
