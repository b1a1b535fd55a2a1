// SPDX-License-Identifier: MIT
/*
 * Who pays for a session (core/account.c): a client's sessions and stream
 * memory, a server's announced limit, the wait for a client whose sessions
 * keep failing, and the wording of every refusal: it names the limit, its
 * value and the config key that raises it. Also core's log of refusals:
 * one said again and again is logged once, with a count.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bulkhead/msg.h"
#include "core.h"

static struct bh_core_state core;
static struct bh_component_config cfg[3];
enum { CLIENT, SERVER, OTHER };

static int setup(void **state)
{
	(void)state;
	memset(&core, 0, sizeof(core));
	memset(cfg, 0, sizeof(cfg));
	core.ncomp = 3;
	for (int i = 0; i < 3; i++) {
		snprintf(cfg[i].name, sizeof(cfg[i].name), "%s",
			 (const char *[]){ "tap", "e1000e", "rogue" }[i]);
		cfg[i].sessions = 2;
		cfg[i].session_memory = 16ull << 20;
		cfg[i].backoff_ms = 100;
		cfg[i].backoff_max_ms = 5000;
		core.comp[i].cfg = &cfg[i];
		core.comp[i].index = i;
	}
	snprintf(cfg[SERVER].provides[0], BH_SERVICE_MAX, "nic");
	cfg[SERVER].nprovides = 1;
	core.comp[SERVER].session_cost[0] = 5ull << 20;
	core.comp[SERVER].session_max[0] = 4;
	return 0;
}

static struct bh_session_rec *open_one(int client, struct bh_msg *reply)
{
	bh_msg_init(reply, BH_OP_SESSION, 1);
	return bh_account_open(&core, &core.comp[client], &core.comp[SERVER], 0, reply);
}

static void test_sessions_limit(void **state)
{
	struct bh_component *c = &core.comp[CLIENT];
	struct bh_msg reply;

	(void)state;
	assert_non_null(open_one(CLIENT, &reply));
	assert_non_null(open_one(CLIENT, &reply));
	assert_int_equal(c->open_sessions, 2);
	assert_int_equal(c->session_bytes, 10ull << 20);
	assert_null(open_one(CLIENT, &reply));
	assert_int_equal(reply.status, -EDQUOT);
	assert_non_null(strstr(reply.error, "\"tap\" has 2 session(s) open, its limit"));
	assert_non_null(strstr(reply.error, "sessions = 2"));
	assert_non_null(strstr(reply.error, "[component]"));
	assert_int_equal(c->refusals, 1);
	assert_int_equal(core.comp[SERVER].session_live[0], 2);
}

static void test_session_memory_limit(void **state)
{
	struct bh_msg reply;

	(void)state;
	cfg[CLIENT].sessions = 8;
	cfg[CLIENT].session_memory = 12ull << 20;
	assert_non_null(open_one(CLIENT, &reply));
	assert_non_null(open_one(CLIENT, &reply));
	assert_null(open_one(CLIENT, &reply));
	assert_int_equal(reply.status, -EDQUOT);
	assert_non_null(strstr(reply.error, "a 'nic' session of \"e1000e\" costs 5 MiB"));
	assert_non_null(strstr(reply.error, "\"tap\" has 2 MiB of its session_memory = 12 MiB left"));
	assert_non_null(strstr(reply.error, "raise session_memory in its [component] section"));
}

static void test_server_limit(void **state)
{
	struct bh_msg reply;

	(void)state;
	core.comp[SERVER].session_max[0] = 1;
	assert_non_null(open_one(CLIENT, &reply));
	assert_null(open_one(OTHER, &reply));
	assert_int_equal(reply.status, -EBUSY);
	assert_non_null(strstr(reply.error, "\"e1000e\" serves at most 1 'nic' session(s)"));
	/* the other client paid nothing for the refusal */
	assert_int_equal(core.comp[OTHER].open_sessions, 0);
	assert_int_equal(core.comp[OTHER].session_bytes, 0);
}

static void test_session_table_full(void **state)
{
	struct bh_msg reply;

	(void)state;
	cfg[CLIENT].sessions = BH_MAX_SESSIONS + 1;
	cfg[CLIENT].session_memory = ~0ull;
	core.comp[SERVER].session_max[0] = BH_MAX_SESSIONS + 1;
	core.comp[SERVER].session_cost[0] = 0;
	for (int i = 0; i < BH_MAX_SESSIONS; i++)
		assert_non_null(open_one(CLIENT, &reply));
	assert_null(open_one(CLIENT, &reply));
	assert_int_equal(reply.status, -ENOSPC);
	assert_non_null(strstr(reply.error, "at most 256 sessions"));
	assert_non_null(strstr(reply.error, "BH_MAX_SESSIONS"));
}

static void test_end_gives_back(void **state)
{
	struct bh_component *c = &core.comp[CLIENT];
	struct bh_msg reply;
	struct bh_session_rec *r;

	(void)state;
	r = open_one(CLIENT, &reply);
	assert_non_null(r);
	/* opened long ago, ended normally: no failure, the share comes back */
	r->opened_ns -= 5000000000ull;
	bh_account_end(&core, &core.comp[SERVER], r->id, 0, &reply);
	assert_int_equal(c->open_sessions, 0);
	assert_int_equal(c->session_bytes, 0);
	assert_int_equal(c->session_failures, 0);
	assert_int_equal(bh_account_delay_ns(c, bh_now_ns()), 0);
	assert_int_equal(core.comp[SERVER].session_live[0], 0);
	/* an unknown session, or one another server serves, is refused */
	bh_msg_init(&reply, BH_OP_SESSION_END, 2);
	bh_account_end(&core, &core.comp[SERVER], 12345, 0, &reply);
	assert_int_equal(reply.status, -ENOENT);
	assert_non_null(strstr(reply.error, "\"e1000e\" serves no session 12345"));
}

static void test_failures_back_off(void **state)
{
	struct bh_component *c = &core.comp[CLIENT];
	uint64_t prev = 0;
	struct bh_msg reply;

	(void)state;
	/* each failure in a row doubles the wait, up to backoff_max_ms */
	for (int i = 0; i < 8; i++) {
		struct bh_session_rec *r = open_one(CLIENT, &reply);
		assert_non_null(r);
		bh_account_end(&core, &core.comp[SERVER], r->id, BH_SESSION_END_FAILED, &reply);
		uint64_t wait = bh_account_delay_ns(c, bh_now_ns());
		uint64_t want = 100ull << i;
		if (want > 5000)
			want = 5000;
		assert_true(wait <= want * 1000000ull);
		assert_true(wait > (want - 20) * 1000000ull);
		assert_true(wait >= prev || want == 5000);
		prev = wait;
	}
	assert_int_equal(c->session_failures, 8);
	/* a session dropped at once counts as a failure too */
	struct bh_session_rec *r = open_one(CLIENT, &reply);
	bh_account_end(&core, &core.comp[SERVER], r->id, 0, &reply);
	assert_int_equal(c->session_failures, 9);
	/* one that lived resets the count */
	r = open_one(CLIENT, &reply);
	r->opened_ns -= 2000000000ull;
	bh_account_end(&core, &core.comp[SERVER], r->id, 0, &reply);
	assert_int_equal(c->session_failures, 0);
}

static void test_dma_charged_to_client(void **state)
{
	struct bh_component *c = &core.comp[CLIENT], *s = &core.comp[SERVER];
	struct bh_dma_buf buf = { .memfd = -1 };
	struct bh_msg reply;
	struct bh_session_rec *r = open_one(CLIENT, &reply);

	(void)state;
	/* within what the server announced: held already, no more */
	assert_int_equal(bh_account_charge(&core, s, r->id, 4ull << 20, &reply), 0);
	buf.size = 4ull << 20;
	buf.session = r->id;
	bh_account_charged(&core, s, &buf);
	s->dma[s->ndma++] = buf;
	assert_int_equal(c->session_bytes, 5ull << 20);
	assert_int_equal(s->session_dma, 4ull << 20);
	/* beyond it: the client pays the rest, up to its session_memory (16 MiB) */
	assert_int_equal(bh_account_charge(&core, s, r->id, 8ull << 20, &reply), 0);
	bh_msg_init(&reply, BH_OP_DMA_ALLOC, 3);
	assert_int_equal(bh_account_charge(&core, s, r->id, 13ull << 20, &reply), -EDQUOT);
	assert_non_null(strstr(reply.error, "for a session of \"tap\""));
	assert_non_null(strstr(reply.error, "session_memory = 16 MiB"));
	assert_non_null(strstr(reply.error, "11 MiB"));
	/* DMA for a session the server does not serve */
	assert_int_equal(bh_account_charge(&core, s, r->id + 1, 4096, &reply), -EINVAL);
	assert_non_null(strstr(reply.error, "serves no such session"));
	/* freed: the charge goes */
	bh_account_uncharge(&core, s, &s->dma[0]);
	assert_int_equal(c->session_bytes, 5ull << 20);
	assert_int_equal(s->session_dma, 0);
}

/* a driver VM's streams (core/vm_nic.c): memory, not DMA, charged to the record alike */
static void test_memory_charged_to_client(void **state)
{
	struct bh_component *c = &core.comp[CLIENT], *s = &core.comp[SERVER];
	struct bh_msg reply;
	struct bh_session_rec *r = open_one(CLIENT, &reply);

	(void)state;
	assert_int_equal(bh_account_charge(&core, s, r->id, 3ull << 20, &reply), 0);
	bh_account_charged_memory(&core, s, r->id, 3ull << 20);
	bh_account_charged_memory(&core, s, r->id, 4ull << 20);
	/* 7 MiB charged of 5 reserved: the client holds 7; none of it is the server's DMA */
	assert_int_equal(r->charged, 7ull << 20);
	assert_int_equal(c->session_bytes, 7ull << 20);
	assert_int_equal(s->session_dma, 0);
	assert_int_equal(bh_account_charge(&core, s, r->id, 10ull << 20, &reply), -EDQUOT);
	assert_non_null(strstr(reply.error, "session_memory = 16 MiB"));
	/* the session ends: the client's share comes back */
	r->opened_ns -= 5000000000ull;
	bh_account_end(&core, s, r->id, 0, &reply);
	assert_int_equal(c->session_bytes, 0);
}

static void test_component_ends(void **state)
{
	struct bh_component *c = &core.comp[CLIENT], *s = &core.comp[SERVER];
	struct bh_msg reply;
	struct bh_session_rec *r = open_one(CLIENT, &reply);
	uint32_t id = r->id;

	(void)state;
	assert_non_null(open_one(OTHER, &reply));
	/* the client ends: its next life pays afresh; the server still ends the record */
	bh_account_ended(&core, c);
	assert_int_equal(c->open_sessions, 0);
	assert_int_equal(c->session_bytes, 0);
	assert_int_equal(s->session_live[0], 2);
	bh_account_end(&core, s, id, BH_SESSION_END_FAILED, &reply);
	assert_int_equal(s->session_live[0], 1);
	assert_int_equal(c->session_failures, 0);
	/* the server ends: every client gets its share back */
	bh_account_ended(&core, s);
	assert_int_equal(core.comp[OTHER].open_sessions, 0);
	assert_int_equal(core.comp[OTHER].session_bytes, 0);
	for (int i = 0; i < BH_MAX_SESSIONS; i++)
		assert_int_equal(core.session[i].id, 0);
}

/* run fn with stderr going to a memfd; returns what it wrote */
static char *captured(void (*fn)(void))
{
	static char out[8192];
	int mem = memfd_create("stderr", 0), saved = dup(2);
	ssize_t n;

	fflush(stderr);
	dup2(mem, 2);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(mem, out, sizeof(out) - 1, 0);
	out[n > 0 ? n : 0] = 0;
	close(mem);
	return out;
}

static void flood(void)
{
	struct bh_msg reply;

	for (int i = 0; i < 3860; i++) {
		bh_msg_init(&reply, BH_OP_SESSION, (uint32_t)i);
		bh_refuse(&core.comp[OTHER], &reply, EDQUOT, "\"rogue\" has 2 session(s) open");
	}
	bh_refuse_flush(&core.comp[OTHER], true);
}

static void test_refusals_logged_once(void **state)
{
	char *log;

	(void)state;
	log = captured(flood);
	assert_non_null(strstr(log, "refused \"rogue\" session: \"rogue\" has 2 session(s) open"));
	assert_non_null(strstr(log, "\"rogue\": the refusal above, 3,859 more times in"));
	/* two lines, not 3,860 */
	int lines = 0;
	for (char *p = log; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 2);
	assert_int_equal(core.comp[OTHER].refusals, 3860);
	/* EAGAIN ("try again") is neither counted nor logged; EACCES counts as a denial */
	struct bh_msg reply;
	bh_msg_init(&reply, BH_OP_SESSION, 1);
	bh_refuse(&core.comp[OTHER], &reply, EAGAIN, "not yet");
	assert_int_equal(reply.status, -EAGAIN);
	assert_int_equal(core.comp[OTHER].refusals, 3860);
	bh_refuse(&core.comp[OTHER], &reply, EACCES, "no route");
	assert_int_equal(core.comp[OTHER].denials, 1);
}

/* what a server announces is checked like any other request */
static void test_announce(void **state)
{
	struct bh_session_info in = { .service = "nic", .max_sessions = 0, .cost = 4096 };
	struct bh_component *s = &core.comp[SERVER];
	struct bh_msg reply;
	int fd = -1;

	(void)state;
	for (int k = 0; k < BH_MAX_SERVICES; k++)
		s->channel[k] = -1;
	bh_msg_init(&reply, BH_OP_ANNOUNCE, 1);
	bh_session_announce(&core, s, &in, &reply, &fd);
	assert_int_equal(reply.status, -EINVAL);
	assert_non_null(strstr(reply.error, "give 1 to 256 sessions of at most 64 GiB"));
	assert_int_equal(fd, -1);
	in.max_sessions = 3;
	bh_msg_init(&reply, BH_OP_ANNOUNCE, 2);
	bh_session_announce(&core, s, &in, &reply, &fd);
	assert_int_equal(reply.status, 0);
	assert_true(fd >= 0);
	assert_int_equal(s->session_max[0], 3);
	assert_int_equal(s->session_cost[0], 4096);
	close(fd);
	close(s->channel[0]);
}

/*
 * A client whose sessions keep failing: core reads its next session request
 * but answers it only once the wait is over, and meanwhile reads nothing
 * else from it.
 */
static void test_request_waits(void **state)
{
	struct bh_component *c = &core.comp[CLIENT];
	struct bh_msg m, reply;
	int sv[2], fds[1];
	unsigned int nfds;
	char why[128];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
	core.epfd = epoll_create1(EPOLL_CLOEXEC);
	c->sock = sv[0];
	c->state = BH_RUNNING;
	c->session_failures = 3;
	c->session_not_before_ns = bh_now_ns() + 60000000000ull;
	bh_msg_init(&m, BH_OP_SESSION, 7);
	snprintf(m.u.session.service, sizeof(m.u.session.service), "nic");
	assert_int_equal(bh_msg_send(sv[1], &m, NULL, 0), 0);
	bh_service_request(&core, c);
	assert_true(c->parked);
	assert_int_equal(c->session_delays, 1);
	assert_int_equal(bh_msg_recv(sv[1], &reply, fds, 1, &nfds, why, sizeof(why)), -EAGAIN);
	/* not yet: the tick says when to look again */
	assert_true(bh_supervisor_tick(&core) > 59000);
	assert_true(c->parked);
	/* the wait is over: the request is answered (here: no route) */
	c->session_not_before_ns = c->held_until_ns = 0;
	bh_supervisor_tick(&core);
	assert_false(c->parked);
	assert_int_equal(bh_msg_recv(sv[1], &reply, fds, 1, &nfds, why, sizeof(why)), 1);
	assert_int_equal(reply.seq, 7);
	assert_int_equal(reply.status, -EACCES);
	assert_non_null(strstr(reply.error, "no route for 'nic'"));
	close(sv[0]);
	close(sv[1]);
	close(core.epfd);
}

/* a component asking faster than its share is not read from for a while */
static void test_request_rate(void **state)
{
	struct bh_component *c = &core.comp[OTHER];
	struct bh_msg m, reply;
	int sv[2], fds[1], answered = 0;
	unsigned int nfds;
	char why[128];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv),
			 0);
	core.epfd = epoll_create1(EPOLL_CLOEXEC);
	c->sock = sv[0];
	c->state = BH_RUNNING;
	/* heavy requests (10 each): the burst of 1000 is spent after about 100 */
	for (int i = 0; i < 600 && !c->held; i++) {
		bh_msg_init(&m, BH_OP_ACQUIRE, (uint32_t)i);
		assert_int_equal(bh_msg_send(sv[1], &m, NULL, 0), 0);
		bh_service_request(&core, c);
		while (bh_msg_recv(sv[1], &reply, fds, 1, &nfds, why, sizeof(why)) == 1)
			answered++;
	}
	assert_true(c->held);
	assert_int_equal(c->throttled, 1);
	assert_in_range(answered, 98, 105);
	/* what it sent meanwhile waits, unread; resumed, it is answered */
	assert_int_equal(bh_msg_recv(sv[1], &reply, fds, 1, &nfds, why, sizeof(why)), -EAGAIN);
	assert_true(bh_supervisor_tick(&core) >= 1);
	c->held_until_ns = 0;
	bh_supervisor_tick(&core);
	assert_false(c->held);
	close(sv[0]);
	close(sv[1]);
	close(core.epfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup(fn, setup)
		T(test_sessions_limit),
		T(test_session_memory_limit),
		T(test_server_limit),
		T(test_session_table_full),
		T(test_end_gives_back),
		T(test_failures_back_off),
		T(test_dma_charged_to_client),
		T(test_memory_charged_to_client),
		T(test_component_ends),
		T(test_refusals_logged_once),
		T(test_announce),
		T(test_request_waits),
		T(test_request_rate),
#undef T
	};

	return cmocka_run_group_tests_name("account", tests, NULL, NULL);
}
