// SPDX-License-Identifier: MIT
/*
 * bulkhead-apdu: a Smartcard session client (bulkhead/smartcard.h). It
 * prints the reader's card and ATR, and exchanges APDUs with the card.
 *
 *   bulkhead-apdu [--count N] [--loop MS] [APDU-HEX ...]
 *
 * Without APDUs it sends SELECT of the master file (ISO 7816-4 11.1.1:
 * 00 A4 00 00 02 3F 00). --count N exchanges each one N times and prints
 * the round trip; --loop MS does it all again every MS milliseconds and
 * follows card changes and hang-ups (a restarted driver) for tests.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/msg.h"
#include "bulkhead/session.h"
#include "bulkhead/smartcard.h"

#define MAX_APDUS 8

struct apdu {
	uint8_t b[BH_SC_APDU_MAX];
	unsigned int len;
};

static struct bh_core core;
static struct bh_session s;
static bool present;
static uint64_t last_beat;

static void beat(void)
{
	if (bh_coarse_ns() - last_beat < 200000000ull)
		return;
	last_beat = bh_coarse_ns();
	if (bh_heartbeat(&core) < 0)
		exit(0);
}

static void hex(char *out, size_t size, const uint8_t *b, unsigned int n)
{
	size_t len = 0;

	out[0] = 0;
	for (unsigned int i = 0; i < n && len + 3 < size; i++)
		len += (size_t)snprintf(out + len, size - len, "%02x", b[i]);
}

static int parse(const char *h, struct apdu *a)
{
	size_t n = strlen(h);

	if (n % 2 || n / 2 > BH_SC_APDU_MAX || n < 8)
		return -EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned int v;
		if (sscanf(h + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		a->b[i] = (uint8_t)v;
	}
	a->len = (unsigned int)(n / 2);
	return 0;
}

static void show_status(const char *what, bool p, const uint8_t *atr, unsigned int len)
{
	char h[2 * BH_SC_ATR_MAX + 1];

	hex(h, sizeof(h), atr, len);
	present = p && len;
	printf("apdu: %s: card %s, ATR %s\n", what, p ? "present" : "absent", len ? h : "none");
}

/* one message from the server, waited for up to ms; 1, 0 timeout, -ECONNRESET hang-up */
static int recv_msg(struct bh_smartcard_msg *m, int ms)
{
	for (int waited = 0; waited <= ms; waited += 200) {
		struct pollfd p = { .fd = s.fd, .events = POLLIN };
		unsigned int nfds;
		char why[128];
		int fds[1], rc;

		beat();
		rc = poll(&p, 1, 200);
		if (rc <= 0)
			continue;
		rc = bh_dgram_recv(s.fd, m, sizeof(*m), fds, 0, &nfds, why, sizeof(why));
		if (rc == 0)
			return -ECONNRESET;
		if (rc < 0 || bh_smartcard_check(m)) {
			printf("apdu: the server sent nonsense (%s)\n", rc < 0 ? why : "bad message");
			return -ECONNRESET;
		}
		if (m->type == BH_SC_STATUS) {
			show_status("status", m->present, m->data, m->len);
			continue;
		}
		return 1;
	}
	return 0;
}

static int connect_card(void)
{
	const struct bh_smartcard_info *info;
	char why[256];
	int fd, rc;

	rc = bh_session_open_wait(&core, BH_SMARTCARD_SERVICE, 30000, &fd);
	if (rc) {
		printf("apdu: no session: %s\n", bh_error(&core));
		return rc;
	}
	rc = bh_session_accept_setup(fd, BH_SMARTCARD_SERVICE, &s, why, sizeof(why));
	if (rc) {
		printf("apdu: setup: %s\n", why);
		close(fd);
		return rc;
	}
	info = (const struct bh_smartcard_info *)s.info;
	if (info->version != BH_SMARTCARD_VERSION || info->atr_len > BH_SC_ATR_MAX ||
	    info->present > 1) {
		printf("apdu: the server offered nonsense\n");
		bh_session_close(NULL, &s);
		return -EPROTO;
	}
	printf("apdu: session to reader \"%.47s\"\n", info->reader);
	show_status("setup", info->present, info->atr, info->atr_len);
	return 0;
}

/* one exchange; its round trip in us, or -errno */
static long exchange(const struct apdu *a, uint32_t tag, bool quiet)
{
	struct bh_smartcard_msg m = { .magic = BH_SC_MAGIC, .type = BH_SC_APDU, .tag = tag,
				      .len = (uint16_t)a->len };
	char in[2 * BH_SC_APDU_MAX + 1], out[2 * BH_SC_RESPONSE_MAX + 1];
	uint64_t t0 = bh_now_ns();
	long us;
	int rc;

	memcpy(m.data, a->b, a->len);
	if (bh_dgram_send(s.fd, &m, sizeof(m), NULL, 0))
		return -ECONNRESET;
	do
		rc = recv_msg(&m, 10000);
	while (rc == 1 && (m.type != BH_SC_RESPONSE || m.tag != tag));
	if (rc <= 0) {
		printf("apdu: no response: %s\n", rc ? "hang-up" : "timed out");
		return rc ? rc : -ETIMEDOUT;
	}
	us = (long)((bh_now_ns() - t0) / 1000);
	hex(in, sizeof(in), a->b, a->len);
	hex(out, sizeof(out), m.data, m.len);
	if (m.status)
		printf("apdu: > %s < error: %s\n", in, strerror(-m.status));
	else if (!quiet)
		printf("apdu: > %s < %s (SW %02x%02x) in %ld us\n", in, out, m.data[m.len - 2],
		       m.data[m.len - 1], us);
	return m.status ? m.status : us;
}

int main(int argc, char **argv)
{
	struct apdu apdus[MAX_APDUS];
	unsigned int n = 0, count = 1, loop_ms = 0, rounds = 0;
	uint32_t tag = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
			count = (unsigned int)atoi(argv[++i]);
		} else if (strcmp(argv[i], "--loop") == 0 && i + 1 < argc) {
			loop_ms = (unsigned int)atoi(argv[++i]);
		} else if (n < MAX_APDUS && parse(argv[i], &apdus[n]) == 0) {
			n++;
		} else {
			fprintf(stderr, "usage: bulkhead-apdu [--count N] [--loop MS] [APDU-HEX ...]\n");
			return 2;
		}
	}
	if (!n) {
		parse("00a40000023f00", &apdus[0]);
		n = 1;
	}
	if (!count)
		count = 1;
	if (bh_core_open(&core) < 0) {
		fprintf(stderr, "apdu: %s\n", bh_error(&core));
		return 1;
	}
	s.fd = -1;
	for (;;) {
		struct bh_smartcard_msg m;
		bool lost = false;

		if (s.fd < 0 && connect_card())
			return 1;
		/* a card to talk to: the setup or a status message says */
		for (int w = 0; !present && w < 30 && !lost; w++)
			lost = recv_msg(&m, 1000) < 0;
		if (!present && !lost) {
			printf("apdu: no card in 30 s\n");
			if (!loop_ms)
				return 1;
		}
		for (unsigned int k = 0; k < n && present && !lost; k++) {
			long best = -1, sum = 0, us = 0;
			unsigned int ok = 0;
			for (unsigned int j = 0; j < count; j++) {
				us = exchange(&apdus[k], ++tag, j > 0);
				if (us < 0) {
					lost = us == -ECONNRESET;
					break;
				}
				ok++;
				sum += us;
				if (best < 0 || us < best)
					best = us;
			}
			if (count > 1 && ok)
				printf("apdu: %u exchanges: mean %ld us, best %ld us\n", ok, sum / ok, best);
		}
		if (!loop_ms)
			return 0;
		rounds++;
		/* wait for the next round; status changes and hang-ups show meanwhile */
		for (unsigned int w = 0; w < loop_ms && !lost; w += 200) {
			int rc = recv_msg(&m, 200);
			lost = rc < 0;
		}
		if (lost) {
			printf("apdu: hang-up from the smartcard server; reconnecting\n");
			bh_session_close(NULL, &s);
			s.fd = -1;
			present = false;
		}
	}
}
