/* SPDX-License-Identifier: MIT */
/*
 * What a dynamically linked component needs in its root: the dynamic loader
 * its program names (PT_INTERP) and the closure of the DT_NEEDED libraries,
 * found where the loader will look for them from an empty root.
 */
#ifndef BH_CORE_LIBS_H
#define BH_CORE_LIBS_H

#include <limits.h>
#include <stddef.h>

#define BH_LIBS_MAX 64

struct bh_libs {
	int n; /* 0: a static program, nothing to add */
	/* [0] the loader; each is a path on the host and the same path in the root */
	char path[BH_LIBS_MAX][PATH_MAX];
};

/*
 * the files program's start needs: 0 with out->n == 0 for a static program,
 * or <0 with err naming the library that is missing and who needs it
 */
int bh_libs_closure(const char *program, struct bh_libs *out, char *err, size_t err_len);

/*
 * 1 if program names a dynamic loader (PT_INTERP), 0 if it is static, <0
 * with err if it is no ELF program: one read of its first page, cheap
 * enough for core's loop (the closure is the child's to find, before exec)
 */
int bh_libs_dynamic(const char *program, char *err, size_t err_len);

/* the search path of the loader with no cache and no environment, as the loader has it */
extern const char *const bh_libs_default_dirs[];

#endif
