// SPDX-License-Identifier: MIT
/* Reading a flight recorder's ring (see tracefmt.h). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tracefmt.h"

#define MASK (BH_TRACE_ENTRIES - 1)

int bh_trace_check(const void *img, size_t len, char *why, size_t why_len)
{
	const struct bh_trace_header *h = img;

	if (len != BH_TRACE_SIZE) {
		snprintf(why, why_len, "a ring is %zu bytes, not %zu", (size_t)BH_TRACE_SIZE, len);
		return -1;
	}
	if (h->magic != BH_TRACE_MAGIC) {
		snprintf(why, why_len, "not a flight recorder's ring (magic 0x%08x)", h->magic);
		return -1;
	}
	if (h->version != BH_TRACE_VERSION) {
		snprintf(why, why_len, "ring version %u; this bulkhead reads version %u",
			 h->version, BH_TRACE_VERSION);
		return -1;
	}
	return 0;
}

uint64_t bh_trace_head(const void *img)
{
	return __atomic_load_n(&((const struct bh_trace_header *)img)->head, __ATOMIC_ACQUIRE);
}

size_t bh_trace_collect(const void *img, uint64_t from, struct bh_trace_entry *out, uint64_t *seq,
			size_t max, uint64_t *next, uint64_t *lost)
{
	const struct bh_trace_entry *ring = bh_trace_ring(img);
	uint64_t head = bh_trace_head(img), start = from, after;
	size_t n = 0, skip = 0;

	*lost = 0;
	*next = head;
	if (from > head || max == 0)
		return 0;
	if (head - start > BH_TRACE_ENTRIES) {
		*lost = head - BH_TRACE_ENTRIES - start;
		start = head - BH_TRACE_ENTRIES;
	}
	if (head - start > max)
		start = head - max;
	for (uint64_t i = start; i < head; i++, n++) {
		out[n] = ring[i & MASK];
		seq[n] = i;
	}
	/*
	 * the writer at index after overwrites entry after - entries: what we
	 * copied from there on may be torn
	 */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	after = bh_trace_head(img);
	while (skip < n && after >= BH_TRACE_ENTRIES && seq[skip] <= after - BH_TRACE_ENTRIES)
		skip++;
	if (skip) {
		memmove(out, out + skip, (n - skip) * sizeof(*out));
		memmove(seq, seq + skip, (n - skip) * sizeof(*seq));
		n -= skip;
		*lost += skip;
	}
	return n;
}

/* a name as the component wrote it: up to its NUL, printable characters only */
static void clean(const char *in, size_t in_len, char *buf, size_t len)
{
	size_t k = 0;

	for (size_t i = 0; i < in_len && in[i] && k + 1 < len; i++)
		buf[k++] = (in[i] > 0x20 && in[i] < 0x7f) ? in[i] : '?';
	buf[k] = 0;
}

const char *bh_trace_name(const void *img, uint16_t region, uint32_t offset, char *buf,
			  size_t len)
{
	const struct bh_trace_header *h = img;
	uint32_t n = h->nnames < BH_TRACE_NAMES ? h->nnames : BH_TRACE_NAMES;
	const struct bh_trace_name *within = NULL;

	for (uint32_t i = 0; i < n; i++) {
		const struct bh_trace_name *t = &h->name[i];
		if (t->region != region)
			continue;
		if (t->offset == offset) {
			clean(t->name, sizeof(t->name), buf, len);
			return buf[0] ? buf : NULL;
		}
		if (!within && offset > t->offset && offset - t->offset < t->width)
			within = t;
	}
	if (!within)
		return NULL;
	/* the upper half of a 64-bit register, written as two 32-bit ones */
	clean(within->name, sizeof(within->name), buf, len);
	if (!buf[0])
		return NULL;
	snprintf(buf + strlen(buf), len - strlen(buf), "+%u", offset - within->offset);
	return buf;
}

const char *bh_trace_region_name(const void *img, uint16_t region, char *buf, size_t len)
{
	const struct bh_trace_header *h = img;
	const struct bh_trace_region *r;

	if (region == 0 || region >= BH_TRACE_REGIONS || region > h->nregions) {
		snprintf(buf, len, "-");
		return buf;
	}
	r = &h->region[region];
	if (r->space == BH_TRACE_MMIO)
		snprintf(buf, len, "mmio %u:BAR%u", r->device, r->bar);
	else if (r->space == BH_TRACE_PORT)
		snprintf(buf, len, "port %u:BAR%u", r->device, r->bar);
	else if (r->space == BH_TRACE_ISA)
		snprintf(buf, len, "isa 0x%x", r->device);
	else
		snprintf(buf, len, "-");
	return buf;
}

const char *bh_trace_kind_name(unsigned int kind)
{
	switch (kind) {
	case BH_TRACE_READ:
		return "read";
	case BH_TRACE_WRITE:
		return "write";
	case BH_TRACE_IRQ:
		return "irq";
	case BH_TRACE_DMA_MAP:
		return "dma-map";
	case BH_TRACE_DMA_UNMAP:
		return "dma-unmap";
	case BH_TRACE_SESSION_OPEN:
		return "session-open";
	case BH_TRACE_SESSION_ACCEPT:
		return "session-accept";
	case BH_TRACE_SESSION_END:
		return "session-end";
	default:
		return "?";
	}
}

static unsigned int width_of(const struct bh_trace_entry *e)
{
	return e->width == 1 || e->width == 2 || e->width == 4 || e->width == 8 ? e->width : 8;
}

void bh_trace_format(const void *img, const struct bh_trace_entry *e, uint64_t seq, char *buf,
		     size_t len)
{
	char name[BH_TRACE_NAME_MAX + 8], where[32], kind[16];
	unsigned int w = width_of(e);

	if (e->kind == BH_TRACE_IRQ) {
		snprintf(buf, len, "#%-6" PRIu64 " %10.3f irq      vector %u (%" PRIu64 " event%s)",
			 seq, (double)e->ns / 1e9, e->offset, e->value, e->value == 1 ? "" : "s");
		return;
	}
	if (e->kind == BH_TRACE_DMA_MAP || e->kind == BH_TRACE_DMA_UNMAP) {
		snprintf(buf, len, "#%-6" PRIu64 " %10.3f %-9s device address 0x%" PRIx64 ", %u KiB",
			 seq, (double)e->ns / 1e9, bh_trace_kind_name(e->kind), e->value, e->offset);
		return;
	}
	if (e->kind == BH_TRACE_SESSION_OPEN || e->kind == BH_TRACE_SESSION_ACCEPT) {
		char who[9];
		clean((const char *)&e->value, sizeof(e->value), who, sizeof(who));
		if (e->kind == BH_TRACE_SESSION_OPEN)
			snprintf(buf, len, "#%-6" PRIu64 " %10.3f session-open   service %s", seq,
				 (double)e->ns / 1e9, who);
		else
			snprintf(buf, len, "#%-6" PRIu64 " %10.3f session-accept #%u from %s", seq,
				 (double)e->ns / 1e9, e->offset, who);
		return;
	}
	if (e->kind == BH_TRACE_SESSION_END) {
		snprintf(buf, len, "#%-6" PRIu64 " %10.3f session-end    #%u (flags 0x%" PRIx64 ")",
			 seq, (double)e->ns / 1e9, e->offset, e->value);
		return;
	}
	snprintf(kind, sizeof(kind), "%s%u", bh_trace_kind_name(e->kind), w * 8);
	snprintf(buf, len, "#%-6" PRIu64 " %10.3f %-8s %-12s +0x%04x %-16s %s 0x%0*" PRIx64, seq,
		 (double)e->ns / 1e9, kind, bh_trace_region_name(img, e->region, where, sizeof(where)),
		 e->offset, bh_trace_name(img, e->region, e->offset, name, sizeof(name)) ?: "?",
		 e->kind == BH_TRACE_WRITE ? "<-" : "->", (int)w * 2,
		 (uint64_t)(w == 8 ? e->value : e->value & ((1ull << (w * 8)) - 1)));
}

struct json_object *bh_trace_entry_json(const void *img, const struct bh_trace_entry *e,
					uint64_t seq)
{
	struct json_object *o = json_object_new_object();
	char name[BH_TRACE_NAME_MAX + 8], where[32];
	const char *n = bh_trace_name(img, e->region, e->offset, name, sizeof(name));

	json_object_object_add(o, "seq", json_object_new_int64((int64_t)seq));
	json_object_object_add(o, "ns", json_object_new_int64((int64_t)e->ns));
	json_object_object_add(o, "kind", json_object_new_string(bh_trace_kind_name(e->kind)));
	json_object_object_add(o, "width", json_object_new_int(e->width));
	json_object_object_add(
	    o, "region",
	    json_object_new_string(bh_trace_region_name(img, e->region, where, sizeof(where))));
	json_object_object_add(o, "offset", json_object_new_int64(e->offset));
	json_object_object_add(o, "name", n ? json_object_new_string(n) : NULL);
	json_object_object_add(o, "value", json_object_new_int64((int64_t)e->value));
	if (e->kind == BH_TRACE_SESSION_OPEN || e->kind == BH_TRACE_SESSION_ACCEPT) {
		char who[9];
		clean((const char *)&e->value, sizeof(e->value), who, sizeof(who));
		json_object_object_add(o, "peer", json_object_new_string(who));
	}
	return o;
}

int bh_crash_check(const void *file, size_t len, char *why, size_t why_len)
{
	const struct bh_crash_file *f = file;

	if (len < sizeof(*f) || f->magic != BH_CRASH_MAGIC) {
		snprintf(why, why_len, "not a bulkhead crash report");
		return -1;
	}
	if (f->version != BH_CRASH_VERSION) {
		snprintf(why, why_len, "crash report version %u; this bulkhead reads version %u",
			 f->version, BH_CRASH_VERSION);
		return -1;
	}
	if (f->ring_size != len - sizeof(*f)) {
		snprintf(why, why_len, "cut short: %zu bytes of a %llu-byte ring", len - sizeof(*f),
			 (unsigned long long)f->ring_size);
		return -1;
	}
	if (!memchr(f->component, 0, sizeof(f->component)) || !memchr(f->exec, 0, sizeof(f->exec)) ||
	    !memchr(f->how, 0, sizeof(f->how))) {
		snprintf(why, why_len, "a name in it is not terminated");
		return -1;
	}
	return bh_trace_check(bh_crash_ring(file), len - sizeof(*f), why, why_len);
}
