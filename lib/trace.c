// SPDX-License-Identifier: MIT
/*
 * The flight recorder, the component's side (bulkhead/trace.h): the ring
 * core handed over with the hello reply, the accesses written into it, the
 * register names the driver declares, and a handler that writes where a
 * fatal signal struck before the component dies of it.
 */
#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <ucontext.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"
#include "bulkhead/trace.h"

static const uint32_t off_word;
/* core's switch once there is a ring; a word that stays 0 before */
const volatile uint32_t *bh_trace_on = &off_word;

static struct bh_trace_header *hdr;
static struct bh_trace_entry *ring;
static uint64_t head; /* our own count: nobody else moves it */
/*
 * The time entries carry: the coarse clock read at the component's last
 * wake-up (bh_trace_tick) or within the last BH_TRACE_TICK accesses. A
 * clock read for each access would cost more than the rest of recording.
 */
#define BH_TRACE_TICK 64
static uint64_t stamp;

void bh_trace_tick(void)
{
	if (ring)
		stamp = bh_coarse_ns();
}

void bh_trace_access(uint16_t region, size_t off, unsigned int width, unsigned int kind,
		     uint64_t value)
{
	struct bh_trace_entry *e;

	if (!ring)
		return;
	if (!(head & (BH_TRACE_TICK - 1)))
		stamp = bh_coarse_ns();
	e = &ring[head & (BH_TRACE_ENTRIES - 1)];
	e->ns = stamp;
	e->value = value;
	e->offset = (uint32_t)off;
	e->region = region;
	e->width = (uint8_t)width;
	e->kind = (uint8_t)kind;
	/* the entry first, then the head that makes it a reader's */
	__atomic_store_n(&hdr->head, ++head, __ATOMIC_RELEASE);
}

void bh_trace_session(unsigned int kind, uint32_t id, const char *name, uint64_t value)
{
	if (!*bh_trace_on)
		return;
	if (name) {
		value = 0;
		memcpy(&value, name, strnlen(name, sizeof(value)));
	}
	bh_trace_access(0, id, 8, kind, value);
}

/* a register BAR or port range: its region number, 0 if the table is full */
uint16_t bh_trace_region(enum bh_trace_space space, uint32_t device, uint32_t bar, uint64_t size)
{
	struct bh_trace_region *r;

	if (!hdr || hdr->nregions >= BH_TRACE_REGIONS - 1)
		return 0;
	/* region 0 stays "none declared" */
	r = &hdr->region[++hdr->nregions];
	r->space = (uint8_t)space;
	r->bar = (uint8_t)bar;
	r->device = device;
	r->size = size;
	return (uint16_t)hdr->nregions;
}

static int names(uint16_t region, const struct bh_reg_name *n, size_t count)
{
	if (!hdr)
		return 0;
	for (size_t i = 0; i < count; i++) {
		struct bh_trace_name *t;
		if (hdr->nnames >= BH_TRACE_NAMES)
			return -ENOSPC;
		t = &hdr->name[hdr->nnames++];
		t->region = region;
		t->width = n[i].width;
		t->offset = n[i].offset;
		strncpy(t->name, n[i].name, sizeof(t->name) - 1);
		t->name[sizeof(t->name) - 1] = 0;
	}
	return 0;
}

int bh_mmio_names(const struct bh_mmio *m, const struct bh_reg_name *n, size_t count)
{
	return names(m->trace, n, count);
}

int bh_ioport_names(const struct bh_ioport *port, const struct bh_reg_name *n, size_t count)
{
	return names(port->trace, n, count);
}

/* ---- the crash record ---- */

extern const char __ehdr_start[]; /* the linker's: our ELF header, where it is mapped */

static const int fatal[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP };

static void crashed(int sig, siginfo_t *si, void *context)
{
	const ucontext_t *uc = context;
	struct bh_trace_crash *c = &hdr->crash;
	void *frames[BH_TRACE_FRAMES];
	sigset_t one;
	int n;

	/* the first fatal signal is the cause: whatever follows it is its consequence */
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		signal(fatal[i], SIG_DFL);
	c->signal = (uint32_t)sig;
	c->code = si->si_code;
	c->addr = (uint64_t)(uintptr_t)si->si_addr;
#ifdef __x86_64__
	c->pc = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
	c->sp = (uint64_t)uc->uc_mcontext.gregs[REG_RSP];
	c->bp = (uint64_t)uc->uc_mcontext.gregs[REG_RBP];
#else
	(void)uc;
#endif
	c->ehdr = (uint64_t)(uintptr_t)__ehdr_start;
	n = backtrace(frames, BH_TRACE_FRAMES);
	for (int i = 0; i < n; i++)
		c->frame[i] = (uint64_t)(uintptr_t)frames[i];
	c->nframes = n > 0 ? (uint32_t)n : 0;
	__atomic_store_n(&hdr->crashed, 1, __ATOMIC_RELEASE);
	/*
	 * A fault: its instruction runs again and faults again, now without a
	 * handler, and the kernel delivers that even to the pid 1 of a
	 * namespace, which a component is.
	 */
	if (si->si_code > 0 && sig != SIGABRT && sig != SIGTRAP)
		return;
	/*
	 * A signal sent (abort's raise): dying of it works where we are not
	 * pid 1; pid 1 of a namespace ignores a signal it sends itself without
	 * a handler, so there the exit status says it (core reports the crash
	 * from the record either way)
	 */
	raise(sig);
	sigemptyset(&one);
	sigaddset(&one, sig);
	sigprocmask(SIG_UNBLOCK, &one, NULL);
	_exit(128 + sig);
}

static void crash_handler(void)
{
	static char altstack[64 << 10];
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) };
	struct sigaction sa;
	void *warm[2];

	/* backtrace() sets itself up on its first call: not in the handler */
	backtrace(warm, 2);
	sigaltstack(&ss, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = crashed;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigfillset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		sigaction(fatal[i], &sa, NULL);
}

/* the ring core sent with hello: map it and start recording as its switch says */
int bh_trace_attach(int fd)
{
	struct stat st;
	void *p;

	if (fstat(fd, &st) < 0 || (size_t)st.st_size != BH_TRACE_SIZE) {
		close(fd);
		return -EPROTO;
	}
	p = mmap(NULL, BH_TRACE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -errno;
	hdr = p;
	if (hdr->magic != BH_TRACE_MAGIC || hdr->version != BH_TRACE_VERSION) {
		munmap(p, BH_TRACE_SIZE);
		hdr = NULL;
		return -EPROTO;
	}
	ring = bh_trace_ring(p);
	head = 0;
	bh_trace_on = &hdr->on;
	crash_handler();
	return 0;
}
