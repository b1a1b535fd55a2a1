// SPDX-License-Identifier: MIT
/*
 * hostile: a neighbour that attacks, for tests/vm/hostile.sh and
 * tests/vm/restarts.sh. It waits for SIGUSR1, attacks as its argument says
 * until SIGUSR2, says what core and the server answered, and waits for the
 * next SIGUSR1. A component is pid 1 of its own pid namespace: the test's
 * signals reach it only because handlers are installed.
 *
 *   session-flood SERVICE   open a session and drop it, as fast as it can
 *   session-hold SERVICE    open sessions without closing until refused
 *   idle-sessions SERVICE [N]  open N sessions (default 3), never read them
 *   malformed SERVICE       garbage on fresh session sockets, and set-ups
 *                           never completed
 *   core-flood              requests to core in a tight loop, answered
 *                           and refused ones, some of them pipelined
 *   dma-exhaust             DMA buffers of device 0 until refused (touched)
 *   fd-exhaust [SERVICE]    fds from core (DMA, irq, sessions) until refused
 *   spin                    one CPU, busy
 *   exit [N...]             exit 0 at once; at restart count N (after a
 *                           hello) wait for SIGUSR1 first
 *
 * Every line starts with "hostile: MODE:"; a round ends with one "done"
 * line of counts, and each distinct refusal is printed once with its count.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/msg.h"
#include "bulkhead/session.h"

#define MAX_HELD 1024
#define MAX_NOTES 8

static volatile sig_atomic_t go, stop;
static const char *mode = "?";
static struct bh_core core;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		go = 1;
	else
		stop = 1;
}

/* sleep until *flag is set; the signals stay blocked except inside ppoll */
static void wait_flag(volatile sig_atomic_t *flag)
{
	sigset_t usr, old;

	sigemptyset(&usr);
	sigaddset(&usr, SIGUSR1);
	sigaddset(&usr, SIGUSR2);
	sigprocmask(SIG_BLOCK, &usr, &old);
	while (!*flag)
		ppoll(NULL, 0, NULL, &old);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

static double now_s(void)
{
	return (double) bh_now_ns() / 1e9;
}

/* distinct refusal texts, each counted and printed the first time */
struct notes {
	char text[MAX_NOTES][BH_ERROR_MAX + 64];
	unsigned long count[MAX_NOTES];
	int n;
	unsigned long other;
};

static void note(struct notes *nt, const char *what)
{
	for (int i = 0; i < nt->n; i++) {
		if (strcmp(nt->text[i], what) == 0) {
			nt->count[i]++;
			return;
		}
	}
	if (nt->n == MAX_NOTES) {
		nt->other++;
		return;
	}
	snprintf(nt->text[nt->n], sizeof(nt->text[0]), "%s", what);
	nt->count[nt->n++] = 1;
	printf("hostile: %s: refused: %s\n", mode, what);
}

static void notes_print(struct notes *nt)
{
	for (int i = 0; i < nt->n; i++)
		printf("hostile: %s: %lu x \"%s\"\n", mode, nt->count[i], nt->text[i]);
	if (nt->other)
		printf("hostile: %s: %lu other refusals\n", mode, nt->other);
	memset(nt, 0, sizeof(*nt));
}

/* the peer closed this socket (or it is broken) */
static int hung_up(int fd, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char buf[16];

	if (poll(&p, 1, timeout_ms) <= 0)
		return 0;
	if (p.revents & (POLLHUP | POLLERR))
		return 1;
	/* readable: the server's set-up, or its end of file */
	return recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_PEEK) == 0;
}

static void close_all(int *fds, int *n)
{
	for (int i = 0; i < *n; i++)
		close(fds[i]);
	*n = 0;
}

static void session_flood(const char *service)
{
	unsigned long opened = 0, refused = 0;
	struct notes nt = {0};
	double t0 = now_s();
	int fd;

	while (!stop) {
		if (bh_session_open(&core, service, &fd) == 0) {
			opened++;
			close(fd);
		} else {
			refused++;
			note(&nt, bh_error(&core));
		}
	}
	notes_print(&nt);
	printf("hostile: %s: done: %lu sessions opened and dropped, %lu refused in %.1f s\n", mode,
	       opened, refused, now_s() - t0);
}

static void session_hold(const char *service)
{
	static int held[MAX_HELD];
	int n = 0, fd, dropped = 0;
	struct notes nt = {0};
	double t0 = now_s();

	while (!stop && n < MAX_HELD) {
		if (bh_session_open(&core, service, &fd) < 0) {
			note(&nt, bh_error(&core));
			break;
		}
		held[n++] = fd;
	}
	printf("hostile: %s: %d sessions open after %.2f s, holding them\n", mode, n, now_s() - t0);
	wait_flag(&stop);
	for (int i = 0; i < n; i++)
		dropped += hung_up(held[i], 0);
	close_all(held, &n);
	notes_print(&nt);
	printf("hostile: %s: done: %d of the sessions held were closed by the server\n", mode,
	       dropped);
}

static void idle_sessions(const char *service, int want)
{
	static int held[MAX_HELD];
	int n = 0, fd;
	struct notes nt = {0};

	if (want > MAX_HELD)
		want = MAX_HELD;
	while (!stop && n < want) {
		if (bh_session_open(&core, service, &fd) < 0) {
			note(&nt, bh_error(&core));
			break;
		}
		held[n++] = fd;
	}
	printf("hostile: %s: %d sessions open, never reading them\n", mode, n);
	wait_flag(&stop);
	int dropped = 0;
	for (int i = 0; i < n; i++)
		dropped += hung_up(held[i], 0);
	close_all(held, &n);
	notes_print(&nt);
	printf("hostile: %s: done: %d of %d idle sessions were closed by the server\n", mode,
	       dropped, want);
}

/* one kind of garbage on a fresh session socket; returns what was sent */
static const char *garbage(int fd, unsigned int kind, ssize_t *sent)
{
	struct bh_session_event ev;
	static char big[65536];
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = &ev, .iov_len = sizeof(ev)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *c;
	int efd;

	memset(&ev, 0xa5, sizeof(ev));
	switch (kind) {
	case 0:
		*sent = send(fd, "bad", 3, MSG_NOSIGNAL);
		return "3 bytes";
	case 1:
		memset(big, 0x5a, sizeof(ev) + 1);
		*sent = send(fd, big, sizeof(ev) + 1, MSG_NOSIGNAL);
		return "an event one byte too long";
	case 2:
		ev.magic = 0xdeadbeef;
		*sent = send(fd, &ev, sizeof(ev), MSG_NOSIGNAL);
		return "an event with a bad magic";
	case 3:
		ev.magic = BH_SESSION_MAGIC;
		efd = eventfd(0, EFD_CLOEXEC);
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &efd, sizeof(int));
		*sent = sendmsg(fd, &mh, MSG_NOSIGNAL);
		close(efd);
		return "an event with an fd attached";
	case 4:
		memset(big, 0x5a, sizeof(big));
		*sent = send(fd, big, sizeof(big), MSG_NOSIGNAL);
		if (*sent < 0)
			*sent = send(fd, big, 4096, MSG_NOSIGNAL);
		return "a 64 KiB (or 4 KiB) datagram";
	default:
		*sent = 0;
		return "nothing: a set-up never read";
	}
}

#define GARBAGE_KINDS 6

static void malformed(const char *service)
{
	unsigned long tried[GARBAGE_KINDS] = {0}, dropped[GARBAGE_KINDS] = {0};
	const char *what[GARBAGE_KINDS] = {0};
	static int unread[8];
	int nunread = 0, fd;
	unsigned long refused = 0;
	struct notes nt = {0};

	for (unsigned int i = 0; !stop; i++) {
		unsigned int kind = i % GARBAGE_KINDS;
		ssize_t sent;

		if (bh_session_open(&core, service, &fd) < 0) {
			refused++;
			note(&nt, bh_error(&core));
			poll(NULL, 0, 10);
			continue;
		}
		what[kind] = garbage(fd, kind, &sent);
		tried[kind]++;
		if (kind == GARBAGE_KINDS - 1) {
			/* keep up to 8 set-ups unread at a time, the oldest goes */
			if (nunread == 8) {
				close(unread[0]);
				memmove(unread, unread + 1, 7 * sizeof(int));
				nunread--;
			}
			unread[nunread++] = fd;
			continue;
		}
		/* did the server drop it? 200 ms is plenty for a server that is awake */
		dropped[kind] += hung_up(fd, 200);
		close(fd);
	}
	close_all(unread, &nunread);
	notes_print(&nt);
	for (int k = 0; k < GARBAGE_KINDS; k++)
		if (what[k])
			printf("hostile: %s: %s: %lu sent, %lu sessions closed by the server\n",
			       mode, what[k], tried[k], dropped[k]);
	printf("hostile: %s: done: %lu session opens refused\n", mode, refused);
}

/* heartbeats sent back to back, then their replies read */
static int pipelined(int n)
{
	struct bh_msg m, r;
	unsigned int nfds;
	char why[128];
	int fds[BH_MAX_FDS], sent = 0, ok = 0;

	for (; sent < n; sent++) {
		bh_msg_init(&m, BH_OP_HEARTBEAT, ++core.seq);
		if (bh_msg_send(core.fd, &m, NULL, 0) < 0)
			break;
	}
	for (int i = 0; i < sent; i++) {
		if (bh_msg_recv(core.fd, &r, fds, BH_MAX_FDS, &nfds, why, sizeof(why)) != 1)
			return -1;
		for (unsigned int k = 0; k < nfds; k++)
			close(fds[k]);
		ok += r.status == 0;
	}
	return ok;
}

static void core_flood(void)
{
	unsigned long answered = 0, refused = 0, rounds = 0;
	struct bh_device_info info;
	struct notes nt = {0};
	struct bh_dma dma;
	double t0 = now_s();
	int fd, k;

#define TRY(call)                                                                                  \
	do {                                                                                       \
		if ((call) == 0) {                                                                 \
			answered++;                                                                \
		} else {                                                                           \
			refused++;                                                                 \
			note(&nt, bh_error(&core));                                                \
		}                                                                                  \
	} while (0)
	while (!stop) {
		struct bh_core again;

		TRY(bh_core_open(&again)); /* a hello; the same socket */
		TRY(bh_heartbeat(&core));
		TRY(bh_device_info(&core, 0, &info));
		TRY(bh_device_info(&core, 99, &info));
		TRY(bh_acquire(&core, 99));
		TRY(bh_dma_alloc(&core, 99, 4096, 0, &dma));
		if (bh_session_open(&core, "nosuch", &fd) == 0) {
			answered++;
			close(fd);
		} else {
			refused++;
			note(&nt, bh_error(&core));
		}
		k = pipelined(32);
		if (k < 0) {
			printf("hostile: %s: lost the connection to core\n", mode);
			break;
		}
		answered += (unsigned long) k;
		rounds++;
	}
#undef TRY
	notes_print(&nt);
	printf("hostile: %s: done: %lu requests answered, %lu refused in %lu rounds, %.1f s\n",
	       mode, answered, refused, rounds, now_s() - t0);
}

static void dma_exhaust(void)
{
	static struct bh_dma held[MAX_HELD];
	static const size_t sizes[] = {1u << 20, 4096};
	struct notes nt = {0};
	unsigned long long bytes = 0;
	int n = 0, per[2] = {0};

	if (bh_acquire(&core, 0) < 0) {
		note(&nt, bh_error(&core));
		notes_print(&nt);
		printf("hostile: %s: done: no device to allocate for\n", mode);
		wait_flag(&stop);
		return;
	}
	for (int s = 0; s < 2; s++) {
		while (!stop && n < MAX_HELD) {
			if (bh_dma_alloc(&core, 0, sizes[s], 0, &held[n]) < 0) {
				note(&nt, bh_error(&core));
				break;
			}
			memset(held[n].virt, 0x5a, held[n].size); /* real memory, not a promise */
			bytes += held[n].size;
			per[s]++;
			n++;
		}
	}
	printf("hostile: %s: holding %d DMA buffers (%d of 1 MiB, %d of 4 KiB), %llu bytes\n", mode,
	       n, per[0], per[1], bytes);
	wait_flag(&stop);
	for (int i = 0; i < n; i++)
		if (bh_dma_free(&core, &held[i]) < 0)
			note(&nt, bh_error(&core));
	bh_release(&core, 0);
	notes_print(&nt);
	printf("hostile: %s: done: %d buffers freed\n", mode, n);
}

static void fd_exhaust(const char *service)
{
	static struct bh_dma dma[MAX_HELD];
	static struct bh_irq irq[MAX_HELD];
	static int sess[MAX_HELD];
	int ndma = 0, nirq = 0, nsess = 0;
	struct notes nt = {0};

	if (bh_acquire(&core, 0) == 0) {
		while (!stop && ndma < MAX_HELD) {
			if (bh_dma_alloc(&core, 0, 4096, 0, &dma[ndma]) < 0) {
				note(&nt, bh_error(&core));
				break;
			}
			ndma++;
		}
		while (!stop && nirq < MAX_HELD) {
			if (bh_irq_open(&core, 0, BH_IRQ_MSI, 1, &irq[nirq]) < 0 &&
			    bh_irq_open(&core, 0, BH_IRQ_INTX, 1, &irq[nirq]) < 0) {
				note(&nt, bh_error(&core));
				break;
			}
			nirq++;
		}
	} else {
		note(&nt, bh_error(&core));
	}
	while (service && !stop && nsess < MAX_HELD) {
		if (bh_session_open(&core, service, &sess[nsess]) < 0) {
			note(&nt, bh_error(&core));
			break;
		}
		nsess++;
	}
	/* and once the table is full: what does core say to one more? */
	if (bh_heartbeat(&core) < 0)
		note(&nt, bh_error(&core));
	printf("hostile: %s: holding %d DMA memfds, %d irq eventfds, %d session sockets\n", mode,
	       ndma, nirq, nsess);
	wait_flag(&stop);
	for (int i = 0; i < ndma; i++)
		bh_dma_free(&core, &dma[i]);
	for (int i = 0; i < nirq; i++)
		bh_irq_close(&irq[i]);
	close_all(sess, &nsess);
	bh_release(&core, 0);
	notes_print(&nt);
	printf("hostile: %s: done: everything given back\n", mode);
}

static void spin(void)
{
	unsigned long long loops = 0;
	double t0 = now_s();

	while (!stop)
		loops++;
	printf("hostile: %s: done: %llu loops in %.1f s\n", mode, loops, now_s() - t0);
}

/* exit 0 at once; at the restart counts named, hold until SIGUSR1 */
static int exit_mode(int argc, char **argv)
{
	if (argc < 3)
		return 0;
	if (bh_core_open(&core) < 0) {
		printf("hostile: exit: %s\n", bh_error(&core));
		return 1;
	}
	for (int i = 2; i < argc; i++) {
		if (strtoul(argv[i], NULL, 10) == core.hello.restarts) {
			printf("hostile: exit: holding at restart %u\n", core.hello.restarts);
			wait_flag(&go);
			break;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
	const char *arg = argc > 2 ? argv[2] : NULL;

	setvbuf(stdout, NULL, _IOLBF, 0);
	mode = argc > 1 ? argv[1] : "?";
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	if (strcmp(mode, "exit") == 0)
		return exit_mode(argc, argv);
	if (bh_core_open(&core) < 0) {
		printf("hostile: %s: %s\n", mode, bh_error(&core));
		return 1;
	}
	for (;;) {
		printf("hostile: %s: ready, waiting for SIGUSR1\n", mode);
		wait_flag(&go);
		go = 0;
		stop = 0;
		printf("hostile: %s: attacking\n", mode);
		if (strcmp(mode, "session-flood") == 0 && arg)
			session_flood(arg);
		else if (strcmp(mode, "session-hold") == 0 && arg)
			session_hold(arg);
		else if (strcmp(mode, "idle-sessions") == 0 && arg)
			idle_sessions(arg, argc > 3 ? atoi(argv[3]) : 3);
		else if (strcmp(mode, "malformed") == 0 && arg)
			malformed(arg);
		else if (strcmp(mode, "core-flood") == 0)
			core_flood();
		else if (strcmp(mode, "dma-exhaust") == 0)
			dma_exhaust();
		else if (strcmp(mode, "fd-exhaust") == 0)
			fd_exhaust(arg);
		else if (strcmp(mode, "spin") == 0)
			spin();
		else {
			printf("hostile: unknown mode '%s' (see tests/tools/hostile.c)\n", mode);
			return 2;
		}
	}
}
