/* SPDX-License-Identifier: MIT */
/*
 * A shared object linked into a static program. Components are static (the
 * sandbox's root is empty: no ld.so, no libraries), and Debian ships
 * libx86emu only as libx86emu.so.3, so the driver carries that file as data
 * and maps it itself: its PT_LOAD segments, its relocations (RELATIVE, and
 * its few libc imports bound to this program's own libc), its exports by
 * name. Enough for a self-contained library like libx86emu; not a dynamic
 * linker (no TLS, no constructors, no dependencies of its own).
 */
#ifndef VESA_ELF_LOAD_H
#define VESA_ELF_LOAD_H

#include <stddef.h>
#include <stdint.h>

struct elf_import {
	const char *name;
	void *addr;
};

struct elf_object {
	uint8_t *base;
	size_t span;
	const void *dynsym; /* Elf64_Sym[] */
	size_t nsyms;
	const char *dynstr;
};

/* load image (size bytes) with imports[n]: 0, or -errno with why */
int elf_load(const uint8_t *image, size_t size, const struct elf_import *imports, size_t n,
	     struct elf_object *o, char *why, size_t len);

/* the address of an exported symbol, or NULL */
void *elf_symbol(const struct elf_object *o, const char *name);

#endif
