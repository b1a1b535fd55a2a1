// SPDX-License-Identifier: MIT
/* The pure pieces of the bulkhead command: parsing core's lines, tables, JSON. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* the next space-separated word; a value may be "quoted" (core quotes texts) */
static char *word(char **p)
{
	char *s = *p, *w;

	while (*s == ' ' || *s == '\t')
		s++;
	if (!*s)
		return NULL;
	w = s;
	while (*s && *s != ' ' && *s != '\t') {
		if (*s == '"') {
			char *q = strchr(s + 1, '"');
			s = q ? q : s + strlen(s) - 1;
		}
		s++;
	}
	if (*s)
		*s++ = 0;
	*p = s;
	return w;
}

int bh_record_parse(char *line, struct bh_record *r)
{
	char *p = line, *w;

	line[strcspn(line, "\r\n")] = 0;
	memset(r, 0, sizeof(*r));
	r->kind = word(&p);
	r->name = word(&p);
	if (!r->kind || !r->name)
		return -1;
	while ((w = word(&p)) && r->nkv < BH_RECORD_MAX_KV) {
		char *eq = strchr(w, '=');
		size_t n;

		if (!eq || eq == w)
			continue;
		*eq = 0;
		r->key[r->nkv] = w;
		r->value[r->nkv] = eq + 1;
		n = strlen(eq + 1);
		if (n >= 2 && eq[1] == '"' && eq[n] == '"') {
			eq[n] = 0;
			r->value[r->nkv] = eq + 2;
		}
		r->nkv++;
	}
	return 0;
}

const char *bh_record_get(const struct bh_record *r, const char *key)
{
	for (int i = 0; i < r->nkv; i++)
		if (strcmp(r->key[i], key) == 0)
			return r->value[i];
	return NULL;
}

bool bh_is_integer(const char *s)
{
	if (*s == '-')
		s++;
	if (!*s || strlen(s) > 18)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char) *s))
			return false;
	return true;
}

/* "42" a number, "3/4" {"used": 3, "limit": 4}, anything else a string */
static struct json_object *value_json(const char *v)
{
	const char *slash = strchr(v, '/');

	if (bh_is_integer(v))
		return json_object_new_int64(strtoll(v, NULL, 10));
	if (slash && slash - v < 20) {
		char used[24];
		snprintf(used, sizeof(used), "%.*s", (int) (slash - v), v);
		if (bh_is_integer(used) && bh_is_integer(slash + 1)) {
			struct json_object *o = json_object_new_object();
			json_object_object_add(o, "used",
					       json_object_new_int64(strtoll(used, NULL, 10)));
			json_object_object_add(o, "limit",
					       json_object_new_int64(strtoll(slash + 1, NULL, 10)));
			return o;
		}
	}
	return json_object_new_string(v);
}

struct json_object *bh_record_json(const struct bh_record *r)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "kind", json_object_new_string(r->kind));
	json_object_object_add(o, "name", json_object_new_string(r->name));
	for (int i = 0; i < r->nkv; i++)
		json_object_object_add(o, r->key[i], value_json(r->value[i]));
	return o;
}

void bh_table_init(struct bh_table *t, int ncol, const char *const *head)
{
	memset(t, 0, sizeof(*t));
	t->ncol = ncol;
	for (int i = 0; i < ncol; i++)
		t->head[i] = head[i];
}

void bh_table_add(struct bh_table *t, const char *const *cells)
{
	if (t->nrow == t->cap) {
		int cap = t->cap ? t->cap * 2 : 16;
		char **grown = realloc(t->cell, sizeof(char *) * (size_t) (cap * t->ncol));
		if (!grown)
			return;
		t->cell = grown;
		t->cap = cap;
	}
	for (int i = 0; i < t->ncol; i++)
		t->cell[t->nrow * t->ncol + i] = strdup(cells[i] && cells[i][0] ? cells[i] : "-");
	t->nrow++;
}

void bh_table_print(const struct bh_table *t, FILE *f)
{
	int width[16];

	for (int c = 0; c < t->ncol; c++) {
		width[c] = (int) strlen(t->head[c]);
		for (int r = 0; r < t->nrow; r++) {
			int w = (int) strlen(t->cell[r * t->ncol + c]);
			if (w > width[c])
				width[c] = w;
		}
	}
	for (int r = -1; r < t->nrow; r++) {
		for (int c = 0; c < t->ncol; c++) {
			const char *s = r < 0 ? t->head[c] : t->cell[r * t->ncol + c];
			/* the last column is not padded: no trailing blanks */
			if (c == t->ncol - 1)
				fprintf(f, "%s\n", s);
			else
				fprintf(f, "%-*s  ", width[c], s);
		}
	}
}

void bh_table_free(struct bh_table *t)
{
	for (int i = 0; i < t->nrow * t->ncol; i++)
		free(t->cell[i]);
	free(t->cell);
	memset(t, 0, sizeof(*t));
}

const char *bh_human_bytes(unsigned long long n, char *buf, size_t len)
{
	static const char units[] = "KMGT";
	double v = (double) n;
	int u = -1;

	if (n < 1024) {
		snprintf(buf, len, "%llu", n);
		return buf;
	}
	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f%c", v, units[u]);
	return buf;
}

bool bh_group_member_ok(const char *driver, unsigned int class_code)
{
	if (!driver[0] || strcmp(driver, "vfio-pci") == 0 || strcmp(driver, "pci-stub") == 0)
		return true;
	return (class_code >> 16) == 0x06; /* bridges: the kernel lets them be */
}

unsigned long long bh_irq_count(const char *interrupts, const char *address)
{
	unsigned long long total = 0;
	char tag[32];
	const char *line = interrupts;

	/* vfio names its vectors "vfio-msix[0](0000:00:02.0)"; the kernel's drivers name theirs */
	snprintf(tag, sizeof(tag), "(%s)", address);
	while (line && *line) {
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t) (end - line) : strlen(line);
		const char *hit = memmem(line, n, tag, strlen(tag));
		const char *p = memchr(line, ':', n);

		if (hit && p) {
			/* the per-CPU counts follow "NN:" up to the first word that is not a number
			 */
			for (p++; p < line + n;) {
				char *next;
				unsigned long long v = strtoull(p, &next, 10);
				if (next == p || (*next != ' ' && *next != '\n' && next < line + n))
					break;
				total += v;
				p = next;
			}
		}
		line = end ? end + 1 : NULL;
	}
	return total;
}

int bh_log_line_parse(char *line, struct bh_log_line *l)
{
	char *p = line, *num, *end;

	line[strcspn(line, "\n")] = 0;
	memset(l, 0, sizeof(*l));
	l->component = word(&p);
	num = word(&p);
	l->source = word(&p);
	if (!l->component || !num || !l->source)
		return -1;
	l->seconds = strtod(num, &end);
	if (*end)
		return -1;
	l->text = p;
	return 0;
}
