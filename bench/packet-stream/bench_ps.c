// SPDX-License-Identifier: MIT
/*
 * Packet-stream throughput between two processes, one core each, next to
 * DPDK's rte_ring (single producer, single consumer) carrying the same
 * payloads through an mbuf-like shared buffer pool.
 *
 *   bench-ps [-n packets] [-r repeats] [-o results.md]
 *
 * Every case copies the payload into the bulk buffer and out again, and
 * checks its sequence number. The three variants of a case take turns,
 * repeats times, so that a busy machine slows them alike; the best run of
 * each is reported (the least disturbed), with the median next to it. The
 * ratio is the median over the repeats of ours / rte_ring's run beside it
 * (the two go first in turn): this host changes speed by up to four times
 * within seconds, and best against best then compares two different hosts.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bulkhead/packet_stream.h"
#include "harness.h"

#define CAPACITY 256 /* ring entries: every slot fits in flight */

/* both ends attached before the fork: the source zeroes the rings once, first */
struct ps_pair {
	struct bh_packet_stream src, snk;
};

static uint8_t pattern[BENCH_SLOT_SIZE];

/* 0 if woken or no need to sleep, -1 if nothing came for 5 s */
static int idle(struct bh_packet_stream *ps, const struct bench_case *c)
{
	struct pollfd p = { .fd = bh_ps_wait_fd(ps), .events = POLLIN };

	if (!c->sleep || !bh_ps_prepare_wait(ps))
		return 0;
	if (poll(&p, 1, 5000) != 1)
		return -1;
	bh_ps_drain_signal(ps);
	return 0;
}

static int ps_producer(void *arg, const struct bench_case *c)
{
	struct bh_packet_stream *ps = &((struct ps_pair *)arg)->src;
	struct bh_ps_desc d[64];
	uint64_t sent = 0;

	while (sent < c->n) {
		int got = bh_ps_get(ps, d, 64);
		unsigned int k = 0;

		if (got < 0)
			return 2;
		for (int i = 0; i < got; i++)
			bh_ps_free(ps, &d[i]);
		while (k < c->batch && sent + k < c->n && !bh_ps_alloc(ps, c->size, &d[k])) {
			bench_fill(bh_ps_data(ps, &d[k]), pattern, c->size, sent + k);
			k++;
		}
		if (!k) {
			if (idle(ps, c))
				return 3;
			continue;
		}
		if (bh_ps_put(ps, d, k) != k)
			return 4;
		bh_ps_flush(ps);
		sent += k;
	}
	return 0;
}

static int ps_consumer(void *arg, const struct bench_case *c)
{
	struct bh_packet_stream *ps = &((struct ps_pair *)arg)->snk;
	struct bh_ps_desc d[64];
	uint8_t copy[BENCH_SLOT_SIZE];
	uint64_t seq = 0;

	while (seq < c->n) {
		int got = bh_ps_get(ps, d, c->batch);

		if (got < 0)
			return 2;
		if (!got) {
			if (idle(ps, c))
				return 3;
			continue;
		}
		for (int i = 0; i < got; i++)
			if (d[i].status || d[i].length != c->size ||
			    bench_check(copy, bh_ps_data(ps, &d[i]), c->size, seq++))
				return 5;
		if (bh_ps_put(ps, d, (unsigned int)got) != (unsigned int)got)
			return 4;
		bh_ps_flush(ps);
	}
	return 0;
}

static double ps_run(const struct bench_case *c)
{
	const uint64_t bulk = (uint64_t)BENCH_SLOTS * BENCH_SLOT_SIZE;
	size_t size = bh_ps_region_size(CAPACITY, bulk);
	int memfd = memfd_create("bench-ps", MFD_CLOEXEC);
	int submit_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int ack_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	void *region = MAP_FAILED;
	struct ps_pair pp;
	double pps = -1;

	if (memfd >= 0 && !ftruncate(memfd, (off_t)size))
		region = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (region != MAP_FAILED && submit_efd >= 0 && ack_efd >= 0 &&
	    !bh_ps_attach(&pp.src, BH_PS_SOURCE, region, size, CAPACITY, bulk, BENCH_SLOT_SIZE,
			  submit_efd, ack_efd)) {
		if (!bh_ps_attach(&pp.snk, BH_PS_SINK, region, size, CAPACITY, bulk, 0, submit_efd,
				  ack_efd))
			pps = bench_run(ps_producer, ps_consumer, &pp, c);
		bh_ps_detach(&pp.src);
	}
	if (region != MAP_FAILED)
		munmap(region, size);
	close(submit_efd);
	close(ack_efd);
	close(memfd);
	return pps;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

#define MAX_REPEATS 32

struct figure {
	double v[MAX_REPEATS];
	unsigned int n;
	double best, median;
};

static void settle(struct figure *f)
{
	qsort(f->v, f->n, sizeof(f->v[0]), cmp);
	f->best = f->v[f->n - 1];
	f->median = f->v[f->n / 2];
}

static void cpu_model(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[256];

	snprintf(buf, len, "unknown CPU");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
			snprintf(buf, len, "%s", strchr(line, ':') + 2);
			buf[strcspn(buf, "\n")] = 0;
			break;
		}
	if (f)
		fclose(f);
}

int main(int argc, char **argv)
{
	static const struct {
		uint32_t size, batch;
	} cases[] = { { 64, 1 }, { 64, 32 }, { 1500, 1 }, { 1500, 32 } };
	struct figure ours[4] = { 0 }, slept[4] = { 0 }, base[4] = { 0 }, paired[4] = { 0 };
	const char *out = NULL;
	uint64_t n = 1000000;
	unsigned int repeats = 7;
	char cpu[128], date[32];
	struct utsname un;
	time_t t = time(NULL);
	int opt;
	FILE *md;

	while ((opt = getopt(argc, argv, "n:r:o:")) != -1) {
		if (opt == 'n')
			n = strtoull(optarg, NULL, 0);
		else if (opt == 'r')
			repeats = (unsigned int)strtoul(optarg, NULL, 0);
		else if (opt == 'o')
			out = optarg;
		else {
			fprintf(stderr, "usage: %s [-n packets] [-r repeats] [-o results.md]\n",
				argv[0]);
			return 2;
		}
	}
	if (!n || !repeats || repeats > MAX_REPEATS)
		return 2;
	for (unsigned int i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)i;
	cpu_model(cpu, sizeof(cpu));
	uname(&un);
	strftime(date, sizeof(date), "%Y-%m-%d", gmtime(&t));
	printf("packet streams vs %s: %llu packets a run, best of %u, %ld CPUs (%s)\n",
	       baseline_name(), (unsigned long long)n, repeats, sysconf(_SC_NPROCESSORS_ONLN),
	       cpu);
	for (unsigned int i = 0; i < 4; i++) {
		struct bench_case c = { cases[i].size, cases[i].batch, n, false };

		for (unsigned int r = 0; r < repeats; r++) {
			double p, b;

			c.sleep = false;
			if (r % 2) {
				b = baseline_run(&c);
				p = ps_run(&c);
			} else {
				p = ps_run(&c);
				b = baseline_run(&c);
			}
			ours[i].v[ours[i].n++] = p;
			base[i].v[base[i].n++] = b;
			paired[i].v[paired[i].n++] = b > 0 ? p / b : 0;
			c.sleep = true;
			slept[i].v[slept[i].n++] = ps_run(&c);
		}
		c.sleep = false;
		settle(&ours[i]);
		settle(&slept[i]);
		settle(&base[i]);
		settle(&paired[i]);
		if (ours[i].v[0] < 0 || slept[i].v[0] < 0) {
			fprintf(stderr, "bench-ps: a packet-stream run of case %u failed\n", i);
			return 1;
		}
		printf("ps-%u-b%u: packet stream %.2f Mpps polling (median %.2f), %.2f sleeping "
		       "(median %.2f); ",
		       c.size, c.batch, ours[i].best / 1e6, ours[i].median / 1e6,
		       slept[i].best / 1e6, slept[i].median / 1e6);
		if (base[i].best > 0)
			printf("%s %.2f Mpps polling (median %.2f)\n", baseline_name(),
			       base[i].best / 1e6, base[i].median / 1e6);
		else
			printf("%s not built (bench/packet-stream/install-deps)\n", baseline_name());
		printf("RESULT ps-%u-b%u pps=%.0f baseline_pps=%.0f best_ratio=%.3f ratio=%.3f\n",
		       c.size, c.batch, ours[i].best, base[i].best > 0 ? base[i].best : 0,
		       base[i].best > 0 ? ours[i].best / base[i].best : 0, paired[i].median);
		fflush(stdout);
	}
	if (!out)
		return 0;
	md = fopen(out, "we");
	if (!md) {
		fprintf(stderr, "bench-ps: %s: %s\n", out, strerror(errno));
		return 1;
	}
	fprintf(md, "# Packet-stream throughput\n\n");
	fprintf(md, "Two processes on one core each, %llu packets a run, best of %u runs "
		    "(median in brackets); every payload copied in by the producer and out by "
		    "the consumer and its sequence number checked. Produced by `make bench-ps` "
		    "on %s, %s %s, %ld CPUs, %s.\n\n",
		(unsigned long long)n, repeats, date, un.sysname, un.release,
		sysconf(_SC_NPROCESSORS_ONLN), cpu);
	fprintf(md, "| case | packet stream, polling (pps) | packet stream, sleeping (pps) "
		    "| %s, polling (pps) | best / best | ratio: median of pairs (lowest-highest) |\n",
		baseline_name());
	fprintf(md, "|---|---:|---:|---:|---:|---:|\n");
	for (unsigned int i = 0; i < 4; i++) {
		fprintf(md, "| %u B, batch %u | %.0f (%.0f) | %.0f (%.0f) | ", cases[i].size,
			cases[i].batch, ours[i].best, ours[i].median, slept[i].best,
			slept[i].median);
		if (base[i].best > 0)
			fprintf(md, "%.0f (%.0f) | %.2f | **%.2f** (%.2f-%.2f) |\n", base[i].best,
				base[i].median, ours[i].best / base[i].best, paired[i].median,
				paired[i].v[0], paired[i].best);
		else
			fprintf(md, "not built | - | - |\n");
	}
	fprintf(md, "\nPolling: both sides spin when idle. Sleeping: an idle side sets its "
		    "waiting flag (bh_ps_prepare_wait) and polls its eventfd. "
		    "The baseline carries 8-byte buffer indexes on two rte_rings (submit and "
		    "return) over a pool of %u buffers of %u bytes with a 64-byte header, "
		    "like mbufs; the packet stream moves 32-byte descriptors over %u slots. "
		    "Spinning figures need two otherwise idle cores: on a shared machine "
		    "the spread between best and median shows the interference. The ratio "
		    "pairs each polling run of ours with the rte_ring run beside it in time "
		    "(they take turns going first) and gives the median of those ratios, "
		    "with the lowest and highest; best / best divides the best runs, which "
		    "may come from different moments of the host.\n",
		BENCH_SLOTS, BENCH_SLOT_SIZE, BENCH_SLOTS);
	fclose(md);
	printf("wrote %s\n", out);
	return 0;
}
