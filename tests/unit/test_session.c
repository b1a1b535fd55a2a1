// SPDX-License-Identifier: MIT
/*
 * Session setup over a SOCK_SEQPACKET socketpair: the server offers two
 * streams in memfds of its own, the client checks and maps them; setups
 * a hostile server could send are refused without leaking fds or maps.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif
#ifdef __SANITIZE_ADDRESS__
#define ASAN 1
#else
#define ASAN 0
#endif

#include "bulkhead/msg.h"
#include "bulkhead/session.h"
#include "testutil.h"

/*
 * Every close() of this program, the library's included, comes here: an fd
 * closed twice is a bug even when the second close fails quietly, since in a
 * real component the number may already belong to something else.
 */
static unsigned int closed_twice;

int close(int fd)
{
	long rc = syscall(SYS_close, fd);

	if (rc < 0 && errno == EBADF)
		closed_twice++;
	return (int)rc;
}

struct sfx {
	int sv[2]; /* [0] server, [1] client */
	struct bh_session_stream_spec spec[2];
	size_t size[2];
	int memfd[2];
	void *map[2];
	struct bh_session server, client;
	bool server_owns, client_owns; /* the sessions own the socket ends (and server the maps) */
	int fds_before;
	int maps_before;
};

/* mappings of memfds in /proc/self/maps: a leaked stream shows up here */
static int count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, "/memfd:") != NULL;
	fclose(f);
	return n;
}

static int region(size_t size, void **map)
{
	int fd = memfd_create("bh-unit-session", MFD_CLOEXEC);

	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		return -1;
	*map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	return *map == MAP_FAILED ? -1 : fd;
}

static int setup(void **state)
{
	struct sfx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->fds_before = test_count_fds();
	f->maps_before = count_maps();
	/* stream 0 server -> client (rx), stream 1 client -> server (tx) */
	f->spec[0] = (struct bh_session_stream_spec){ BH_PS_SOURCE, 64, 2048, 64 * 2048 };
	f->spec[1] = (struct bh_session_stream_spec){ BH_PS_SINK, 32, 4096, 32 * 4096 };
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, f->sv) < 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		f->size[i] = bh_ps_region_size(f->spec[i].capacity, f->spec[i].bulk_size);
		f->memfd[i] = region(f->size[i], &f->map[i]);
		if (f->memfd[i] < 0)
			return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct sfx *f = *state;
	int fds_before = f->fds_before, maps_before = f->maps_before;

	/* the server session owns the maps it was given, the memfds stay ours */
	if (f->server_owns) {
		bh_session_close(NULL, &f->server); /* again, if the test closed it */
	} else {
		close(f->sv[0]);
		for (int i = 0; i < 2; i++)
			munmap(f->map[i], f->size[i]);
	}
	if (f->client_owns)
		bh_session_close(NULL, &f->client);
	else
		close(f->sv[1]);
	for (int i = 0; i < 2; i++)
		close(f->memfd[i]);
	free(f);
	if (test_count_fds() != fds_before || count_maps() != maps_before || closed_twice)
		return -1;
	return 0;
}

static const uint8_t info[] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0xff };

static void offer(struct sfx *f)
{
	assert_int_equal(bh_session_offer_regions(f->sv[0], "nic", f->spec, 2, f->memfd,
						  f->map, info, sizeof(info), &f->server),
			 0);
	f->server_owns = true;
}

static void accept_ok(struct sfx *f)
{
	char why[128] = "";

	assert_int_equal(bh_session_accept_setup(f->sv[1], "nic", &f->client, why, sizeof(why)),
			 0);
	f->client_owns = true;
	assert_string_equal(why, "");
}

static void assert_same_file(int a, int b)
{
	struct stat sa, sb;

	assert_int_equal(fstat(a, &sa), 0);
	assert_int_equal(fstat(b, &sb), 0);
	assert_int_equal(sa.st_ino, sb.st_ino);
	assert_int_equal(sa.st_dev, sb.st_dev);
}

static void test_geometry_and_roles(void **state)
{
	struct sfx *f = *state;
	struct bh_session *c = &f->client, *s = &f->server;

	offer(f);
	accept_ok(f);
	assert_int_equal(s->nstreams, 2);
	assert_int_equal(c->nstreams, 2);
	assert_int_equal(c->fd, f->sv[1]);
	assert_int_equal(s->ps[0].role, BH_PS_SOURCE);
	assert_int_equal(c->ps[0].role, BH_PS_SINK);
	assert_int_equal(s->ps[1].role, BH_PS_SINK);
	assert_int_equal(c->ps[1].role, BH_PS_SOURCE);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(c->ps[i].submit.capacity, f->spec[i].capacity);
		assert_int_equal(c->ps[i].ack.capacity, f->spec[i].capacity);
		assert_int_equal(c->ps[i].bulk_size, f->spec[i].bulk_size);
		assert_int_equal(c->map_size[i], f->size[i]);
		assert_ptr_not_equal(c->map[i], f->map[i]);
		assert_same_file(c->memfd[i], f->memfd[i]);
		assert_same_file(c->ps[i].submit.efd, s->ps[i].submit.efd);
		assert_same_file(c->ps[i].ack.efd, s->ps[i].ack.efd);
		assert_ptr_equal(s->map[i], f->map[i]);
	}
	/* the client allocates on the stream it sources, in the server's slot size */
	assert_int_equal(c->ps[1].slot_size, 4096);
	assert_int_equal(c->ps[1].nslots, 32);
	assert_int_equal(s->ps[0].nslots, 64);
	assert_memory_equal(c->info, info, sizeof(info));
	for (size_t i = sizeof(info); i < BH_SESSION_INFO; i++)
		assert_int_equal(c->info[i], 0);
}

/* the source of ps sends n packets, the sink on the other side checks and acks them */
static void flow(struct bh_packet_stream *src, struct bh_packet_stream *snk, unsigned int n,
		 uint32_t len)
{
	struct bh_ps_desc d[64];

	assert_true(n <= 64);
	for (unsigned int i = 0; i < n; i++) {
		assert_int_equal(bh_ps_alloc(src, len, &d[i]), 0);
		snprintf(bh_ps_data(src, &d[i]), len, "packet %u of %u", i, n);
		d[i].tag = i;
	}
	assert_int_equal(bh_ps_put(src, d, n), n);
	/* the sink sleeps first: the flush must wake it through its own eventfd */
	assert_true(bh_ps_prepare_wait(snk));
	bh_ps_flush(src);
	struct pollfd p = { .fd = bh_ps_wait_fd(snk), .events = POLLIN };
	assert_int_equal(poll(&p, 1, 1000), 1);
	bh_ps_drain_signal(snk);
	memset(d, 0, sizeof(d));
	assert_int_equal(bh_ps_get(snk, d, 64), n);
	for (unsigned int i = 0; i < n; i++) {
		char want[64];
		snprintf(want, sizeof(want), "packet %u of %u", i, n);
		assert_int_equal(d[i].tag, i);
		assert_int_equal(d[i].length, len);
		assert_string_equal(bh_ps_data(snk, &d[i]), want);
		d[i].status = -(int32_t)i;
	}
	assert_int_equal(bh_ps_put(snk, d, n), n);
	bh_ps_flush(snk);
	assert_int_equal(bh_ps_get(src, d, 64), n);
	for (unsigned int i = 0; i < n; i++) {
		assert_int_equal(d[i].status, -(int32_t)i);
		bh_ps_free(src, &d[i]);
	}
	assert_int_equal(src->nfree, src->nslots);
	assert_int_equal(src->invalid + snk->invalid, 0);
}

static void test_data_flows_both_ways(void **state)
{
	struct sfx *f = *state;

	offer(f);
	accept_ok(f);
	for (int round = 0; round < 5; round++) {
		flow(&f->server.ps[0], &f->client.ps[0], 32, 1500);
		flow(&f->client.ps[1], &f->server.ps[1], 32, 4096);
		flow(&f->server.ps[0], &f->client.ps[0], 1, 64);
	}
}

static void test_events_both_ways(void **state)
{
	struct sfx *f = *state;
	struct bh_session_event ev;
	uint8_t big[57] = { 0 };
	const char up[] = "link up";

	offer(f);
	accept_ok(f);
	assert_int_equal(bh_session_send_event(&f->server, 3, up, sizeof(up)), 0);
	assert_int_equal(bh_session_send_event(&f->client, 4, NULL, 0), 0);
	assert_int_equal(bh_session_recv_event(&f->client, &ev), 1);
	assert_int_equal(ev.type, 3);
	assert_string_equal((char *)ev.data, up);
	assert_int_equal(bh_session_recv_event(&f->server, &ev), 1);
	assert_int_equal(ev.type, 4);
	assert_int_equal(ev.data[0], 0);
	/* 56 bytes fit, 57 do not */
	assert_int_equal(bh_session_send_event(&f->server, 5, big, 56), 0);
	assert_int_equal(bh_session_send_event(&f->server, 5, big, sizeof(big)), -EINVAL);
	assert_int_equal(bh_session_recv_event(&f->client, &ev), 1);
	/* none waiting on a non-blocking socket */
	fcntl(f->sv[1], F_SETFL, O_NONBLOCK);
	assert_int_equal(bh_session_recv_event(&f->client, &ev), -EAGAIN);
	/* a datagram that is not an event */
	struct bh_session_event bad = { .magic = 0x12345678, .type = 1 };
	assert_int_equal(bh_dgram_send(f->sv[0], &bad, sizeof(bad), NULL, 0), 0);
	assert_int_equal(bh_session_recv_event(&f->client, &ev), -EPROTO);
	assert_int_equal(bh_dgram_send(f->sv[0], &bad, 10, NULL, 0), 0);
	assert_int_equal(bh_session_recv_event(&f->client, &ev), -EPROTO);
	/* an event carrying an fd is refused and the fd not kept */
	int fds_now = test_count_fds();
	bad.magic = BH_SESSION_MAGIC;
	assert_int_equal(bh_dgram_send(f->sv[0], &bad, sizeof(bad), &f->memfd[0], 1), 0);
	assert_int_equal(bh_session_recv_event(&f->client, &ev), -EPROTO);
	assert_int_equal(test_count_fds(), fds_now);
	/* the server hangs up */
	bh_session_close(NULL, &f->server);
	assert_int_equal(bh_session_recv_event(&f->client, &ev), 0);
}

/* a setup exactly as the server would send it, with fresh eventfds in fds */
static void good_setup(struct sfx *f, struct bh_session_setup *st, int fds[6])
{
	memset(st, 0, sizeof(*st));
	st->magic = BH_SESSION_MAGIC;
	st->version = BH_SESSION_VERSION;
	st->nstreams = 2;
	snprintf(st->service, sizeof(st->service), "nic");
	for (int i = 0; i < 2; i++) {
		st->stream[i].capacity = f->spec[i].capacity;
		st->stream[i].slot_size = f->spec[i].slot_size;
		st->stream[i].bulk_size = f->spec[i].bulk_size;
		st->stream[i].region_size = f->size[i];
		st->stream[i].server_role = f->spec[i].server_role;
		fds[3 * i] = f->memfd[i];
		fds[3 * i + 1] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		fds[3 * i + 2] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		assert_true(fds[3 * i + 1] >= 0 && fds[3 * i + 2] >= 0);
	}
	memcpy(st->info, info, sizeof(info));
}

/* send st with nfds of fds; the client must refuse it with -EPROTO and say why */
static void refused(struct sfx *f, const struct bh_session_setup *st, size_t len, int *fds,
		    unsigned int nfds, const char *reason)
{
	char why[128] = "";
	int fds_sent = test_count_fds(), maps_sent = count_maps();

	assert_int_equal(bh_dgram_send(f->sv[0], st, len, fds, nfds), 0);
	assert_int_equal(bh_session_accept_setup(f->sv[1], "nic", &f->client, why, sizeof(why)),
			 -EPROTO);
	print_message("# refused: %s\n", why);
	assert_non_null(strstr(why, reason));
	/* nothing received is kept: no fds, no maps, no streams */
	assert_int_equal(test_count_fds(), fds_sent);
	assert_int_equal(count_maps(), maps_sent);
	assert_int_equal(f->client.nstreams, 0);
	/* the socket is still the caller's, and still open */
	assert_int_equal(f->client.fd, f->sv[1]);
	assert_true(fcntl(f->sv[1], F_GETFD) >= 0);
	/* our copies of the eventfds */
	for (int i = 0; i < 2; i++) {
		close(fds[3 * i + 1]);
		close(fds[3 * i + 2]);
	}
}

static void test_refuse_bad_magic(void **state)
{
	struct sfx *f = *state;
	struct bh_session_setup st;
	int fds[6];

	good_setup(f, &st, fds);
	st.magic = BH_PROTO_MAGIC;
	refused(f, &st, sizeof(st), fds, 6, "magic");
	good_setup(f, &st, fds);
	st.version = 2;
	refused(f, &st, sizeof(st), fds, 6, "version");
}

static void test_refuse_wrong_service(void **state)
{
	struct sfx *f = *state;
	struct bh_session_setup st;
	int fds[6];

	good_setup(f, &st, fds);
	snprintf(st.service, sizeof(st.service), "block");
	refused(f, &st, sizeof(st), fds, 6, "service 'block', expected 'nic'");
	/* a prefix is not the service */
	good_setup(f, &st, fds);
	snprintf(st.service, sizeof(st.service), "nicx");
	refused(f, &st, sizeof(st), fds, 6, "service");
	/* nor a name without its terminator */
	good_setup(f, &st, fds);
	memset(st.service, 'n', sizeof(st.service));
	refused(f, &st, sizeof(st), fds, 6, "service");
}

static void test_refuse_wrong_fds(void **state)
{
	struct sfx *f = *state;
	struct bh_session_setup st;
	int fds[6];

	good_setup(f, &st, fds);
	refused(f, &st, sizeof(st), fds, 5, "2 streams with 5 fds");
	good_setup(f, &st, fds);
	refused(f, &st, sizeof(st), fds, 0, "2 streams with 0 fds");
	good_setup(f, &st, fds);
	st.nstreams = 1;
	refused(f, &st, sizeof(st), fds, 6, "1 streams with 6 fds");
	good_setup(f, &st, fds);
	st.nstreams = 3;
	refused(f, &st, sizeof(st), fds, 6, "3 streams");
	/* and a setup cut short */
	good_setup(f, &st, fds);
	refused(f, &st, sizeof(st) - 1, fds, 6, "datagram");
}

static void test_refuse_region_size(void **state)
{
	struct sfx *f = *state;
	struct bh_session_setup st;
	int fds[6];

	good_setup(f, &st, fds);
	st.stream[0].region_size += 4096;
	refused(f, &st, sizeof(st), fds, 6, "stream 0 has an impossible geometry");
	good_setup(f, &st, fds);
	st.stream[1].region_size -= 4096;
	refused(f, &st, sizeof(st), fds, 6, "stream 1 has an impossible geometry");
}

static void test_refuse_small_memfd(void **state)
{
	struct sfx *f = *state;
	struct bh_session_setup st;
	int fds[6];

	/* stream 0 is fine and mapped before stream 1 fails: it is unmapped again */
	assert_int_equal(ftruncate(f->memfd[1], (off_t)f->size[1] - 1), 0);
	good_setup(f, &st, fds);
	refused(f, &st, sizeof(st), fds, 6, "stream 1 has an impossible geometry");
}

static void test_refuse_bad_geometry(void **state)
{
	struct sfx *f = *state;
	struct bh_session_setup st;
	int fds[6];
	static const struct {
		uint32_t capacity, slot_size, server_role;
		uint64_t bulk_size;
	} bad[] = {
		{ 48, 2048, BH_PS_SOURCE, 64 * 2048 },	/* not a power of two */
		{ 0, 2048, BH_PS_SOURCE, 64 * 2048 },
		{ 1u << 21, 2048, BH_PS_SOURCE, 64 * 2048 },
		{ 64, 0, BH_PS_SOURCE, 64 * 2048 },	/* no slots */
		{ 64, 64 * 2048 + 1, BH_PS_SOURCE, 64 * 2048 },
		{ 64, 2048, 2, 64 * 2048 },		/* no such role */
		{ 64, 2048, BH_PS_SOURCE, 0 },
		{ 64, 2048, BH_PS_SOURCE, (1ull << 34) + 4096 },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		good_setup(f, &st, fds);
		st.stream[0].capacity = bad[i].capacity;
		st.stream[0].slot_size = bad[i].slot_size;
		st.stream[0].server_role = bad[i].server_role;
		st.stream[0].bulk_size = bad[i].bulk_size;
		/* a region size that matches, so only the field itself is wrong */
		if (bad[i].capacity && bad[i].capacity <= (1u << 21))
			st.stream[0].region_size =
				bh_ps_region_size(bad[i].capacity, bad[i].bulk_size);
		refused(f, &st, sizeof(st), fds, 6, "stream 0 has an impossible geometry");
	}
}

static void test_refuse_hang_up(void **state)
{
	struct sfx *f = *state;
	char why[128] = "";

	close(f->sv[0]);
	f->sv[0] = -1;
	assert_int_equal(bh_session_accept_setup(f->sv[1], "nic", &f->client, why, sizeof(why)),
			 -ECONNRESET);
	assert_non_null(strstr(why, "hung up"));
	assert_true(fcntl(f->sv[1], F_GETFD) >= 0);
	f->sv[0] = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0); /* for teardown */
}

/* a good setup after refused ones still works on the same socket */
static void test_accept_after_refusal(void **state)
{
	struct sfx *f = *state;
	struct bh_session_setup st;
	int fds[6];

	good_setup(f, &st, fds);
	st.magic = 0;
	refused(f, &st, sizeof(st), fds, 6, "magic");
	offer(f);
	accept_ok(f);
	flow(&f->client.ps[1], &f->server.ps[1], 4, 100);
}

/*
 * The client runs out of memory attaching the stream it sources (a
 * hostile server asks for one-byte slots): refused, every received fd
 * closed once, and fds it never owned (0 here) left open. In a child,
 * with a small address space.
 */
static int enomem_child(struct sfx *f)
{
	const uint64_t bulk = 64ull << 20;
	struct bh_session_setup st;
	struct bh_session s;
	struct rlimit rl;
	char why[128] = "";
	long pages;
	FILE *statm;
	int fds[6], rc, memfd, null;

	null = open("/dev/null", O_RDONLY);
	if (null < 0 || dup2(null, 0) < 0)
		return 2;
	close(null);
	memset(&st, 0, sizeof(st));
	st.magic = BH_SESSION_MAGIC;
	st.version = BH_SESSION_VERSION;
	st.nstreams = 1;
	snprintf(st.service, sizeof(st.service), "nic");
	st.stream[0] = (struct bh_stream_geometry){ .capacity = 64, .slot_size = 1,
						    .bulk_size = bulk,
						    .region_size = bh_ps_region_size(64, bulk),
						    .server_role = BH_PS_SINK };
	memfd = memfd_create("bh-unit-enomem", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, (off_t)st.stream[0].region_size) < 0)
		return 3;
	fds[0] = memfd;
	fds[1] = eventfd(0, EFD_CLOEXEC);
	fds[2] = eventfd(0, EFD_CLOEXEC);
	if (bh_dgram_send(f->sv[0], &st, sizeof(st), fds, 3))
		return 4;
	/* room for the 64 MiB map, not for 256 MiB of free slot list */
	statm = fopen("/proc/self/statm", "re");
	if (!statm || fscanf(statm, "%ld", &pages) != 1)
		return 5;
	fclose(statm);
	rl.rlim_cur = rl.rlim_max = (rlim_t)pages * 4096 + (160ull << 20);
	if (setrlimit(RLIMIT_AS, &rl))
		return 6;
	rc = bh_session_accept_setup(f->sv[1], "nic", &s, why, sizeof(why));
	if (rc != -ENOMEM)
		return 7;
	if (fcntl(0, F_GETFD) < 0)
		return 8; /* closed an fd it never owned */
	if (fcntl(f->sv[1], F_GETFD) < 0)
		return 9;
	if (closed_twice)
		return 10; /* the eventfds attach was given */
	return 0;
}

static void test_refuse_out_of_memory(void **state)
{
	struct sfx *f = *state;
	int status;
	pid_t pid;

	/* valgrind and ASan have their own idea of the address space; cmocka's skip fails TAP */
	if (RUNNING_ON_VALGRIND || ASAN) {
		print_message("# not under valgrind or ASan\n");
		return;
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(enomem_child(f));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_geometry_and_roles),
		T(test_data_flows_both_ways),
		T(test_events_both_ways),
		T(test_refuse_bad_magic),
		T(test_refuse_wrong_service),
		T(test_refuse_wrong_fds),
		T(test_refuse_region_size),
		T(test_refuse_small_memfd),
		T(test_refuse_bad_geometry),
		T(test_refuse_hang_up),
		T(test_accept_after_refusal),
		T(test_refuse_out_of_memory),
#undef T
	};

	return cmocka_run_group_tests_name("session", tests, NULL, NULL);
}
