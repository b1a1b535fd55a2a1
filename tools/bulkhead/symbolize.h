/* SPDX-License-Identifier: MIT */
/* A component's addresses to function, file and line (libdw). */
#ifndef BH_SYMBOLIZE_H
#define BH_SYMBOLIZE_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

struct bh_symbolizer {
	void *dwfl; /* Dwfl * */
	void *mod;  /* Dwfl_Module * */
	uint64_t bias;
};

struct bh_symbol {
	char function[128];
	char file[256];
	int line; /* 0: not known */
};

/* the program a report names; ehdr: where the crashed process had its ELF header */
int bh_symbolizer_open(struct bh_symbolizer *s, const char *exec, uint64_t ehdr, char *why,
		       size_t why_len);
void bh_symbolizer_close(struct bh_symbolizer *s);
/* 0 with out filled, or -1 if addr is in no function the program's debug info knows */
int bh_symbolize(struct bh_symbolizer *s, uint64_t addr, struct bh_symbol *out);

#endif
