// SPDX-License-Identifier: MIT
/*
 * Addresses in a component's program to function, file and line, with
 * elfutils' libdwfl and libdw: the components are built with debug info.
 * A function the compiler inlined is named as itself, not as its caller.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <gelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "symbolize.h"

static const Dwfl_Callbacks callbacks = {
	.find_elf = dwfl_build_id_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.section_address = dwfl_offline_section_address,
};

int bh_symbolizer_open(struct bh_symbolizer *s, const char *exec, uint64_t ehdr, char *why,
		       size_t why_len)
{
	Dwfl_Module *mod = NULL;
	Dwfl *d = dwfl_begin(&callbacks);

	s->dwfl = d;
	s->bias = 0;
	if (!d) {
		snprintf(why, why_len, "libdwfl: %s", dwfl_errmsg(-1));
		return -1;
	}
	mod = dwfl_report_offline(d, "", exec, -1);
	if (mod) {
		/* a PIE: where its ELF header was mapped against where the file puts it */
		GElf_Addr bias;
		Elf *elf = dwfl_module_getelf(mod, &bias);
		GElf_Ehdr eh;
		if (elf && gelf_getehdr(elf, &eh) && eh.e_type == ET_DYN && ehdr)
			s->bias = ehdr;
	}
	if (!mod || dwfl_report_end(d, NULL, NULL) != 0) {
		snprintf(why, why_len, "%s: %s", exec, dwfl_errmsg(-1));
		dwfl_end(d);
		s->dwfl = NULL;
		return -1;
	}
	s->mod = mod;
	return 0;
}

void bh_symbolizer_close(struct bh_symbolizer *s)
{
	if (s->dwfl)
		dwfl_end(s->dwfl);
	s->dwfl = NULL;
}

/* the innermost function (inlined or not) around a module-relative address */
static const char *innermost(Dwfl_Module *mod, Dwarf_Addr addr)
{
	Dwarf_Addr bias = 0;
	Dwarf_Die *cu = dwfl_module_addrdie(mod, addr, &bias);
	Dwarf_Die *scopes = NULL;
	const char *name = NULL;
	int n;

	if (!cu)
		return NULL;
	n = dwarf_getscopes(cu, addr - bias, &scopes);
	for (int i = 0; i < n && !name; i++) {
		int tag = dwarf_tag(&scopes[i]);
		if (tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine) {
			Dwarf_Attribute at;
			Dwarf_Die origin;
			name = dwarf_diename(&scopes[i]);
			/* an inlined instance names its function through its origin */
			if (!name && dwarf_attr_integrate(&scopes[i], DW_AT_abstract_origin, &at) &&
			    dwarf_formref_die(&at, &origin))
				name = dwarf_diename(&origin);
		}
	}
	free(scopes);
	return name;
}

int bh_symbolize(struct bh_symbolizer *s, uint64_t addr, struct bh_symbol *out)
{
	Dwarf_Addr a = addr - s->bias;
	const char *fn, *file;
	Dwfl_Line *line;
	int lineno = 0;

	memset(out, 0, sizeof(*out));
	if (!s->dwfl)
		return -1;
	fn = innermost(s->mod, a);
	/* a line only from the debug info of the code at addr (libc's has none) */
	line = fn ? dwfl_module_getsrc(s->mod, a) : NULL;
	file = line ? dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL) : NULL;
	if (!fn)
		fn = dwfl_module_addrname(s->mod, a);
	if (!fn && !file)
		return -1;
	snprintf(out->function, sizeof(out->function), "%s", fn ? fn : "?");
	snprintf(out->file, sizeof(out->file), "%s", file ? file : "?");
	/* "../drivers/edu/edu.c" from the build directory: the source's own path */
	const char *dir = file && file[0] != '/' ? dwfl_line_comp_dir(line) : NULL;
	char joined[PATH_MAX + 260], real[PATH_MAX];
	if (dir) {
		snprintf(joined, sizeof(joined), "%s/%s", dir, file);
		snprintf(out->file, sizeof(out->file), "%s", realpath(joined, real) ? real : joined);
	}
	out->line = lineno;
	return 0;
}
