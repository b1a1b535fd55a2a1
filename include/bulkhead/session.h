/* SPDX-License-Identifier: MIT */
/*
 * Sessions between components: setting up packet streams over the session
 * socket core handed both sides (see bh_session_open / bh_service_accept).
 *
 * The server owns the memory: it allocates each stream's region as a DMA
 * buffer of its device, so its device can reach the bulk buffer directly
 * (zero copy), and sends the client one setup message with the geometry
 * and, per stream, the region's memfd and two eventfds. After that either
 * side may send small events (e.g. link state) on the session socket.
 */
#ifndef BULKHEAD_SESSION_H
#define BULKHEAD_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/packet_stream.h"

#define BH_SESSION_MAGIC 0x53484b42u /* "BKHS" */
#define BH_SESSION_VERSION 1
#define BH_SESSION_STREAMS 2
#define BH_SESSION_INFO 128

struct bh_stream_geometry {
	uint32_t capacity;  /* ring entries, power of two */
	uint32_t slot_size; /* the source's allocation unit */
	uint64_t bulk_size;
	uint64_t region_size;
	uint32_t server_role; /* enum bh_ps_role of the server on this stream */
	uint32_t reserved;
};

/* server -> client, first on the session socket; 3 fds per stream follow */
struct bh_session_setup {
	uint32_t magic;
	uint16_t version;
	uint16_t nstreams;
	char service[BH_SERVICE_MAX];
	struct bh_stream_geometry stream[BH_SESSION_STREAMS];
	uint8_t info[BH_SESSION_INFO]; /* service-defined: MAC, geometry, ... */
};

/* either way, after setup */
struct bh_session_event {
	uint32_t magic;
	uint32_t type; /* service-defined */
	uint8_t data[56];
};

struct bh_session_stream_spec {
	enum bh_ps_role server_role;
	uint32_t capacity;
	uint32_t slot_size;
	uint64_t bulk_size;
};

struct bh_session {
	int fd; /* the session socket */
	unsigned int nstreams;
	struct bh_packet_stream ps[BH_SESSION_STREAMS];
	void *map[BH_SESSION_STREAMS];
	size_t map_size[BH_SESSION_STREAMS];
	int memfd[BH_SESSION_STREAMS];
	struct bh_dma dma[BH_SESSION_STREAMS]; /* server: the regions as DMA buffers */
	uint8_t info[BH_SESSION_INFO];
	char peer[BH_NAME_MAX]; /* server: the client's label */
	uint32_t id;		/* server: core's number for it, to end it with */
	int set_up;		/* server: the client has its setup */
};

/* what a session of these streams costs its client: announce it (bh_service_open) */
uint64_t bh_session_cost(const struct bh_session_stream_spec *spec, unsigned int n);

/*
 * server: allocate the streams as DMA buffers of dev (charged to the
 * client), attach, and send the setup. Whatever it returns, s holds the
 * request: bh_session_close() ends it, and tells core how it ended.
 */
int bh_session_offer(struct bh_core *core, unsigned int dev, const struct bh_session_request *req,
		     const char *service, const struct bh_session_stream_spec *spec, unsigned int n,
		     const void *info, size_t info_len, struct bh_session *s);

/*
 * The same with memory the caller provides (memfds of region_size each,
 * already mapped at maps[i]); for servers without a device, and for tests.
 */
int bh_session_offer_regions(int session_fd, const char *service,
			     const struct bh_session_stream_spec *spec, unsigned int n,
			     const int *memfds, void *const *maps, const void *info,
			     size_t info_len, struct bh_session *s);

/* client: take the setup, check every field, map and attach; 0 or -errno */
int bh_session_accept_setup(int session_fd, const char *service, struct bh_session *s,
			    char *why, size_t why_len);

/*
 * client: open a session and take its setup, trying again for up to
 * timeout_ms while the server is not there yet, has all its sessions
 * taken (-EBUSY), or hung up before the setup (-ECONNRESET: it refused
 * this one, or it died); 0, or the last -errno with why said
 */
int bh_session_connect(struct bh_core *core, const char *service, int timeout_ms,
		       struct bh_session *s, char *why, size_t why_len);

/*
 * free the streams and close the socket; core may be NULL for a client. A
 * server's session ends at core too: one never set up, or dropped by its
 * client within a second, counts as the client's failure (core slows it).
 */
void bh_session_close(struct bh_core *core, struct bh_session *s);

int bh_session_send_event(struct bh_session *s, uint32_t type, const void *data, size_t len);
/* 1 with an event, 0 on hang-up, -EAGAIN if none waiting, -EPROTO if malformed */
int bh_session_recv_event(struct bh_session *s, struct bh_session_event *ev);

#endif
