// SPDX-License-Identifier: MIT
/* Session setup: the server offers packet streams, the client checks and maps them. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bulkhead/msg.h"
#include "bulkhead/session.h"

static enum bh_ps_role other(enum bh_ps_role r)
{
	return r == BH_PS_SOURCE ? BH_PS_SINK : BH_PS_SOURCE;
}

static void session_init(struct bh_session *s, int fd)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	for (int i = 0; i < BH_SESSION_STREAMS; i++) {
		s->memfd[i] = -1;
		s->dma[i].fd = -1;
		s->ps[i].submit.efd = s->ps[i].ack.efd = -1;
	}
}

static int offer_regions(int session_fd, const char *service,
			 const struct bh_session_stream_spec *spec, unsigned int n,
			 const int *memfds, void *const *maps, const void *info, size_t info_len,
			 struct bh_session *s)
{
	struct bh_session_setup setup;
	int fds[3 * BH_SESSION_STREAMS];
	unsigned int nfds = 0;
	int rc;

	if (n > BH_SESSION_STREAMS || info_len > sizeof(setup.info))
		return -EINVAL;
	memset(&setup, 0, sizeof(setup));
	setup.magic = BH_SESSION_MAGIC;
	setup.version = BH_SESSION_VERSION;
	setup.nstreams = (uint16_t)n;
	snprintf(setup.service, sizeof(setup.service), "%s", service);
	if (info_len)
		memcpy(setup.info, info, info_len);
	s->fd = session_fd;
	s->nstreams = n;
	for (unsigned int i = 0; i < n; i++) {
		struct bh_stream_geometry *g = &setup.stream[i];
		int submit = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		int ack = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

		g->capacity = spec[i].capacity;
		g->slot_size = spec[i].slot_size;
		g->bulk_size = spec[i].bulk_size;
		g->region_size = bh_ps_region_size(spec[i].capacity, spec[i].bulk_size);
		g->server_role = spec[i].server_role;
		if (submit < 0 || ack < 0) {
			rc = -errno;
			if (submit >= 0)
				close(submit);
			goto fail;
		}
		rc = bh_ps_attach(&s->ps[i], spec[i].server_role, maps[i], g->region_size,
				  g->capacity, g->bulk_size, g->slot_size, submit, ack);
		if (rc) {
			close(submit);
			close(ack);
			goto fail;
		}
		s->map[i] = maps[i];
		s->map_size[i] = g->region_size;
		fds[nfds++] = memfds[i];
		fds[nfds++] = submit;
		fds[nfds++] = ack;
	}
	rc = bh_dgram_send(session_fd, &setup, sizeof(setup), fds, nfds);
	if (rc)
		goto fail;
	return 0;
fail:
	for (unsigned int i = 0; i < n; i++) {
		if (s->ps[i].submit.efd >= 0 && s->map[i]) {
			close(s->ps[i].submit.efd);
			close(s->ps[i].ack.efd);
			bh_ps_detach(&s->ps[i]);
		}
		s->ps[i].submit.efd = s->ps[i].ack.efd = -1;
		s->map[i] = NULL;
	}
	return rc;
}

int bh_session_offer_regions(int session_fd, const char *service,
			     const struct bh_session_stream_spec *spec, unsigned int n,
			     const int *memfds, void *const *maps, const void *info,
			     size_t info_len, struct bh_session *s)
{
	/* the caller's s may hold anything: no fd in it is ours to close */
	session_init(s, session_fd);
	return offer_regions(session_fd, service, spec, n, memfds, maps, info, info_len, s);
}

uint64_t bh_session_cost(const struct bh_session_stream_spec *spec, unsigned int n)
{
	uint64_t cost = 0;

	for (unsigned int i = 0; i < n; i++)
		cost += (bh_ps_region_size(spec[i].capacity, spec[i].bulk_size) + 4095) & ~4095ull;
	return cost;
}

int bh_session_offer(struct bh_core *core, unsigned int dev, const struct bh_session_request *req,
		     const char *service, const struct bh_session_stream_spec *spec, unsigned int n,
		     const void *info, size_t info_len, struct bh_session *s)
{
	int memfds[BH_SESSION_STREAMS] = { -1, -1 };
	void *maps[BH_SESSION_STREAMS] = { NULL, NULL };
	int rc;

	session_init(s, req->fd);
	s->id = req->id;
	snprintf(s->peer, sizeof(s->peer), "%s", req->client);
	if (n > BH_SESSION_STREAMS)
		return -EINVAL;
	for (unsigned int i = 0; i < n; i++) {
		size_t size = bh_ps_region_size(spec[i].capacity, spec[i].bulk_size);
		rc = bh_dma_alloc_session(core, dev, size, 0, s->id, &s->dma[i]);
		if (rc) {
			while (i-- > 0)
				bh_dma_free(core, &s->dma[i]);
			return rc;
		}
		memfds[i] = s->dma[i].fd;
		maps[i] = s->dma[i].virt;
	}
	rc = offer_regions(req->fd, service, spec, n, memfds, maps, info, info_len, s);
	if (rc)
		for (unsigned int i = 0; i < n; i++)
			bh_dma_free(core, &s->dma[i]);
	s->set_up = !rc;
	return rc;
}

int bh_session_accept_setup(int session_fd, const char *service, struct bh_session *s,
			    char *why, size_t why_len)
{
	struct bh_session_setup setup;
	int fds[3 * BH_SESSION_STREAMS];
	unsigned int nfds = 0;
	int rc;

	session_init(s, session_fd);
	rc = bh_dgram_recv(session_fd, &setup, sizeof(setup), fds, 3 * BH_SESSION_STREAMS, &nfds,
			   why, why_len);
	if (rc <= 0) {
		if (rc == 0)
			snprintf(why, why_len, "the server hung up before the setup");
		return rc ? rc : -ECONNRESET;
	}
	rc = -EPROTO;
	if (setup.magic != BH_SESSION_MAGIC || setup.version != BH_SESSION_VERSION) {
		snprintf(why, why_len, "setup: bad magic or version");
		goto fail;
	}
	if (strncmp(setup.service, service, BH_SERVICE_MAX) != 0) {
		snprintf(why, why_len, "setup: service '%.15s', expected '%s'", setup.service,
			 service);
		goto fail;
	}
	if (setup.nstreams > BH_SESSION_STREAMS || nfds != 3u * setup.nstreams) {
		snprintf(why, why_len, "setup: %u streams with %u fds", setup.nstreams, nfds);
		goto fail;
	}
	for (unsigned int i = 0; i < setup.nstreams; i++) {
		const struct bh_stream_geometry *g = &setup.stream[i];
		struct stat st;
		void *map;

		/* the server's numbers are checked like any other input */
		if (!g->capacity || g->capacity & (g->capacity - 1) || g->capacity > (1u << 20) ||
		    !g->bulk_size || g->bulk_size > (1ull << 34) ||
		    g->region_size != bh_ps_region_size(g->capacity, g->bulk_size) ||
		    g->server_role > BH_PS_SINK || !g->slot_size || g->slot_size > g->bulk_size ||
		    fstat(fds[3 * i], &st) < 0 || (uint64_t)st.st_size < g->region_size) {
			/* rc is attach's 0 after the first stream */
			rc = -EPROTO;
			snprintf(why, why_len, "setup: stream %u has an impossible geometry", i);
			goto fail;
		}
		map = mmap(NULL, g->region_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[3 * i], 0);
		if (map == MAP_FAILED) {
			rc = -errno;
			snprintf(why, why_len, "setup: cannot map stream %u: %s", i, strerror(errno));
			goto fail;
		}
		s->map[i] = map;
		s->map_size[i] = g->region_size;
		s->memfd[i] = fds[3 * i];
		fds[3 * i] = -1;
		rc = bh_ps_attach(&s->ps[i], other(g->server_role), map, g->region_size,
				  g->capacity, g->bulk_size, g->slot_size, fds[3 * i + 1],
				  fds[3 * i + 2]);
		if (rc) {
			/* attach left 0s or the eventfds in ps: they are closed below, once */
			s->ps[i].submit.efd = s->ps[i].ack.efd = -1;
			snprintf(why, why_len, "setup: stream %u: %s", i, strerror(-rc));
			goto fail;
		}
		fds[3 * i + 1] = fds[3 * i + 2] = -1;
		s->nstreams = i + 1;
	}
	memcpy(s->info, setup.info, sizeof(s->info));
	return 0;
fail:
	for (unsigned int i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	s->fd = -1; /* the socket stays the caller's, open */
	bh_session_close(NULL, s);
	s->fd = session_fd;
	return rc;
}

int bh_session_connect(struct bh_core *core, const char *service, int timeout_ms,
		       struct bh_session *s, char *why, size_t why_len)
{
	uint64_t end = bh_coarse_ns() + (uint64_t)timeout_ms * 1000000ull;
	struct timespec pause = { .tv_nsec = 100000000 };
	int fd, rc;

	for (;;) {
		rc = bh_session_open_wait(core, service, timeout_ms, &fd);
		if (rc) {
			snprintf(why, why_len, "%s", bh_error(core));
		} else {
			rc = bh_session_accept_setup(fd, service, s, why, why_len);
			if (rc)
				close(fd);
		}
		if ((rc != -EBUSY && rc != -ECONNRESET) || bh_coarse_ns() > end)
			return rc;
		nanosleep(&pause, NULL);
	}
}

void bh_session_close(struct bh_core *core, struct bh_session *s)
{
	for (unsigned int i = 0; i < BH_SESSION_STREAMS; i++) {
		if (s->ps[i].submit.efd >= 0)
			close(s->ps[i].submit.efd);
		if (s->ps[i].ack.efd >= 0)
			close(s->ps[i].ack.efd);
		s->ps[i].submit.efd = s->ps[i].ack.efd = -1;
		bh_ps_detach(&s->ps[i]);
		if (s->dma[i].fd >= 0 && core) {
			bh_dma_free(core, &s->dma[i]);
		} else if (s->map[i] && s->dma[i].fd < 0) {
			munmap(s->map[i], s->map_size[i]);
		}
		if (s->memfd[i] >= 0)
			close(s->memfd[i]);
		s->memfd[i] = -1;
		s->map[i] = NULL;
	}
	s->nstreams = 0;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	if (core && s->id)
		bh_session_end(core, s->id, s->set_up ? 0 : BH_SESSION_END_FAILED);
	s->id = 0;
	s->set_up = 0;
}

int bh_session_send_event(struct bh_session *s, uint32_t type, const void *data, size_t len)
{
	struct bh_session_event ev = { .magic = BH_SESSION_MAGIC, .type = type };

	if (len > sizeof(ev.data))
		return -EINVAL;
	if (len)
		memcpy(ev.data, data, len);
	return bh_dgram_send(s->fd, &ev, sizeof(ev), NULL, 0);
}

int bh_session_recv_event(struct bh_session *s, struct bh_session_event *ev)
{
	unsigned int nfds = 0;
	char why[64];
	int fds[1];
	int rc = bh_dgram_recv(s->fd, ev, sizeof(*ev), fds, 0, &nfds, why, sizeof(why));

	if (rc == 1 && ev->magic != BH_SESSION_MAGIC)
		return -EPROTO;
	return rc;
}
