// SPDX-License-Identifier: MIT
/*
 * Who pays for a session. As in Genode, the client does: when core routes
 * a session, it reserves for the client what the server announced one
 * session costs (the stream memory it will allocate), within the client's
 * "sessions = N" and "session_memory = SIZE". The DMA the server then
 * allocates for that session is charged to the same record, not to the
 * server's own "dma" quota, so a client can exhaust only its own share.
 *
 * A record lives from the routing until the server says the session is
 * over (BH_OP_SESSION_END, which libbulkhead sends from bh_session_close)
 * or the server ends. A session that ended before its server could set it
 * up, or that its client dropped within BH_SESSION_SHORT_NS, is a failure
 * of the client's: each one in a row doubles the wait before core takes
 * its next session request, as restarts back off.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core.h"

#define BH_SESSION_SHORT_NS (1000ull * 1000000ull)

static struct bh_session_rec *rec_new(struct bh_core_state *core)
{
	for (int i = 0; i < BH_MAX_SESSIONS; i++)
		if (!core->session[i].id)
			return &core->session[i];
	return NULL;
}

struct bh_session_rec *bh_account_find(struct bh_core_state *core, const struct bh_component *server,
				       uint32_t id)
{
	if (!id)
		return NULL;
	for (int i = 0; i < BH_MAX_SESSIONS; i++)
		if (core->session[i].id == id && core->session[i].server == server->index)
			return &core->session[i];
	return NULL;
}

/* what a record holds of its client's session_memory */
static uint64_t held(const struct bh_session_rec *r)
{
	return r->charged > r->reserved ? r->charged : r->reserved;
}

/* exact enough to compare: 16 MiB, 16392 KiB, 5 bytes */
static void format_size(uint64_t bytes, char *buf, size_t len)
{
	if (bytes && !(bytes & ((1ull << 20) - 1)))
		snprintf(buf, len, "%llu MiB", (unsigned long long)(bytes >> 20));
	else if (bytes && !(bytes & 1023))
		snprintf(buf, len, "%llu KiB", (unsigned long long)(bytes >> 10));
	else
		snprintf(buf, len, "%llu bytes", (unsigned long long)bytes);
}

uint64_t bh_account_delay_ns(const struct bh_component *c, uint64_t now)
{
	return c->session_not_before_ns > now ? c->session_not_before_ns - now : 0;
}

struct bh_session_rec *bh_account_open(struct bh_core_state *core, struct bh_component *client,
				       struct bh_component *server, int k, struct bh_msg *reply)
{
	const struct bh_component_config *cc = client->cfg;
	const char *service = server->cfg->provides[k];
	uint64_t cost = server->session_cost[k];
	struct bh_session_rec *r;
	char have[32], want[32], limit[32];

	if (client->open_sessions >= cc->sessions) {
		bh_refuse(client, reply, EDQUOT,
			  "\"%s\" has %u session(s) open, its limit: raise sessions = %u in its "
			  "[component] section, or close one",
			  cc->name, client->open_sessions, cc->sessions);
		return NULL;
	}
	if (client->session_bytes + cost > cc->session_memory) {
		format_size(cost, want, sizeof(want));
		format_size(cc->session_memory - client->session_bytes, have, sizeof(have));
		format_size(cc->session_memory, limit, sizeof(limit));
		bh_refuse(client, reply, EDQUOT,
			  "a '%s' session of \"%s\" costs %s of stream memory; \"%s\" has %s of its "
			  "session_memory = %s left: raise session_memory in its [component] section",
			  service, server->cfg->name, want, cc->name, have, limit);
		return NULL;
	}
	if (server->session_live[k] >= server->session_max[k]) {
		bh_refuse(client, reply, EBUSY,
			  "\"%s\" serves at most %u '%s' session(s) at once and has them all: try "
			  "again when one closes",
			  server->cfg->name, server->session_max[k], service);
		return NULL;
	}
	r = rec_new(core);
	if (!r) {
		bh_refuse(client, reply, ENOSPC,
			  "core tracks at most %d sessions at once (BH_MAX_SESSIONS), all in use",
			  BH_MAX_SESSIONS);
		return NULL;
	}
	if (!++core->next_session_id)
		++core->next_session_id;
	*r = (struct bh_session_rec){
		.id = core->next_session_id,
		.client = client->index,
		.server = server->index,
		.service = k,
		.reserved = cost,
		.opened_ns = bh_now_ns(),
	};
	client->open_sessions++;
	client->session_bytes += cost;
	server->session_live[k]++;
	return r;
}

/* take the record off its client's and its server's books */
static void rec_free(struct bh_core_state *core, struct bh_session_rec *r)
{
	struct bh_component *server = &core->comp[r->server];

	if (r->client >= 0) {
		struct bh_component *client = &core->comp[r->client];
		client->open_sessions--;
		client->session_bytes -= held(r);
	}
	if (server->session_live[r->service])
		server->session_live[r->service]--;
	/* DMA still held for it is the server's own from now on */
	for (int i = 0; i < server->ndma; i++) {
		if (server->dma[i].session != r->id)
			continue;
		server->dma[i].session = 0;
		server->session_dma -= server->dma[i].size;
	}
	memset(r, 0, sizeof(*r));
}

void bh_account_cancel(struct bh_core_state *core, struct bh_session_rec *r)
{
	rec_free(core, r);
}

int bh_account_charge(struct bh_core_state *core, struct bh_component *server, uint32_t id,
		      uint64_t size, struct bh_msg *reply)
{
	struct bh_session_rec *r = bh_account_find(core, server, id);
	struct bh_component *client;
	uint64_t more;
	char want[32], have[32], limit[32];

	if (!r) {
		bh_refuse(server, reply, EINVAL,
			  "DMA for session %u: \"%s\" serves no such session (it ended, or core "
			  "never routed it)",
			  id, server->cfg->name);
		return -EINVAL;
	}
	if (r->client < 0)
		return 0; /* its client is gone; the server frees it when it sees the hang-up */
	client = &core->comp[r->client];
	more = r->charged + size > r->reserved ? r->charged + size - held(r) : 0;
	if (client->session_bytes + more > client->cfg->session_memory) {
		format_size(size, want, sizeof(want));
		format_size(client->cfg->session_memory - client->session_bytes, have, sizeof(have));
		format_size(client->cfg->session_memory, limit, sizeof(limit));
		bh_refuse(server, reply, EDQUOT,
			  "DMA of %s for a session of \"%s\": more than \"%s\" announced a session "
			  "costs, and \"%s\" has %s of its session_memory = %s left (raise it in "
			  "its [component] section, or announce the true cost)",
			  want, client->cfg->name, server->cfg->name, client->cfg->name, have, limit);
		client->refusals++;
		return -EDQUOT;
	}
	return 0;
}

/* size more bytes for r's session: its client holds the larger of reservation and charge */
static void rec_add(struct bh_core_state *core, struct bh_session_rec *r, uint64_t size)
{
	uint64_t before = held(r);

	r->charged += size;
	if (r->client >= 0)
		core->comp[r->client].session_bytes += held(r) - before;
}

void bh_account_charged(struct bh_core_state *core, struct bh_component *server,
			struct bh_dma_buf *buf)
{
	struct bh_session_rec *r = bh_account_find(core, server, buf->session);

	if (!r) {
		buf->session = 0;
		return;
	}
	rec_add(core, r, buf->size);
	server->session_dma += buf->size;
}

void bh_account_charged_memory(struct bh_core_state *core, struct bh_component *server,
			       uint32_t id, uint64_t size)
{
	struct bh_session_rec *r = bh_account_find(core, server, id);

	if (r)
		rec_add(core, r, size);
}

void bh_account_uncharge(struct bh_core_state *core, struct bh_component *server,
			 const struct bh_dma_buf *buf)
{
	struct bh_session_rec *r = bh_account_find(core, server, buf->session);

	if (!buf->session)
		return;
	server->session_dma -= buf->size;
	if (!r)
		return;
	if (r->client >= 0) {
		uint64_t before = held(r);
		r->charged -= buf->size;
		core->comp[r->client].session_bytes -= before - held(r);
	} else {
		r->charged -= buf->size;
	}
}

void bh_account_end(struct bh_core_state *core, struct bh_component *server, uint32_t id,
		    uint32_t flags, struct bh_msg *reply)
{
	struct bh_session_rec *r = bh_account_find(core, server, id);
	uint64_t now = bh_now_ns();

	if (!r) {
		bh_refuse(server, reply, ENOENT, "session_end: \"%s\" serves no session %u",
			  server->cfg->name, id);
		return;
	}
	if (r->client >= 0) {
		struct bh_component *client = &core->comp[r->client];
		const struct bh_component_config *cc = client->cfg;

		if ((flags & BH_SESSION_END_FAILED) || now - r->opened_ns < BH_SESSION_SHORT_NS) {
			uint64_t delay = cc->backoff_ms;
			for (unsigned int i = 0; i < client->session_failures && delay < cc->backoff_max_ms;
			     i++)
				delay *= 2;
			if (delay > cc->backoff_max_ms)
				delay = cc->backoff_max_ms;
			client->session_failures++;
			client->session_not_before_ns = now + delay * 1000000ull;
		} else {
			client->session_failures = 0;
		}
	}
	rec_free(core, r);
}

void bh_account_ended(struct bh_core_state *core, struct bh_component *c)
{
	for (int i = 0; i < BH_MAX_SESSIONS; i++) {
		struct bh_session_rec *r = &core->session[i];
		if (!r->id)
			continue;
		if (r->server == c->index) {
			/* its DMA went with it: the clients get their share back */
			rec_free(core, r);
		} else if (r->client == c->index) {
			/* the server frees it when it sees the hang-up; a new start pays afresh */
			c->open_sessions--;
			c->session_bytes -= held(r);
			r->client = -1;
		}
	}
	memset(c->session_live, 0, sizeof(c->session_live));
	c->session_dma = 0;
}

void bh_account_service_reset(struct bh_core_state *core, struct bh_component *server, int k)
{
	for (int i = 0; i < BH_MAX_SESSIONS; i++)
		if (core->session[i].id && core->session[i].server == server->index &&
		    core->session[i].service == k)
			rec_free(core, &core->session[i]);
}
