// SPDX-License-Identifier: MIT
/*
 * Maps an x86-64 ELF shared object held in memory (see elf_load.h).
 * ELF-64 Object File Format 1.5 and the System V AMD64 psABI 1.0, section
 * 4.4 (relocation types); every offset read from the image is checked
 * against it first.
 */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "elf_load.h"

#define PAGE 4096ul

static int fail(char *why, size_t len, const char *what)
{
	snprintf(why, len, "%s", what);
	return -ENOEXEC;
}

static int inside(size_t off, size_t n, size_t size)
{
	return off <= size && n <= size - off;
}

static void *import_of(const struct elf_import *imports, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(imports[i].name, name) == 0)
			return imports[i].addr;
	return NULL;
}

/* apply count relocations at rela (in the loaded image) */
static int relocate(struct elf_object *o, const Elf64_Rela *rela, size_t count,
		    const struct elf_import *imports, size_t n, char *why, size_t len)
{
	const Elf64_Sym *sym = o->dynsym;

	for (size_t i = 0; i < count; i++) {
		uint32_t type = ELF64_R_TYPE(rela[i].r_info), s = ELF64_R_SYM(rela[i].r_info);
		uint64_t value = 0;

		if (!inside(rela[i].r_offset, 8, o->span))
			return fail(why, len, "a relocation outside the image");
		if (s) {
			if (s >= o->nsyms)
				return fail(why, len, "a relocation names no symbol");
			if (sym[s].st_shndx != SHN_UNDEF) {
				value = (uint64_t) o->base + sym[s].st_value;
			} else {
				const char *name = o->dynstr + sym[s].st_name;
				void *addr = import_of(imports, n, name);
				if (!addr && ELF64_ST_BIND(sym[s].st_info) != STB_WEAK) {
					snprintf(why, len, "it needs %s, which this program does not "
							   "give it",
						 name);
					return -ENOEXEC;
				}
				value = (uint64_t) addr;
			}
		}
		uint64_t *at = (uint64_t *) (o->base + rela[i].r_offset);
		switch (type) {
		case R_X86_64_RELATIVE:
			*at = (uint64_t) o->base + (uint64_t) rela[i].r_addend;
			break;
		case R_X86_64_64:
			*at = value + (uint64_t) rela[i].r_addend;
			break;
		case R_X86_64_GLOB_DAT:
		case R_X86_64_JUMP_SLOT:
			*at = value;
			break;
		case R_X86_64_NONE:
			break;
		default:
			snprintf(why, len, "relocation type %u is not handled", type);
			return -ENOEXEC;
		}
	}
	return 0;
}

int elf_load(const uint8_t *image, size_t size, const struct elf_import *imports, size_t n,
	     struct elf_object *o, char *why, size_t len)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *) image;
	const Elf64_Phdr *ph;
	const Elf64_Shdr *sh;
	const Elf64_Dyn *dyn = NULL;
	uint64_t rela = 0, relasz = 0, jmprel = 0, pltrelsz = 0;
	size_t span = 0;
	int rc;

	memset(o, 0, sizeof(*o));
	if (size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_type != ET_DYN ||
	    eh->e_machine != EM_X86_64 || eh->e_phentsize != sizeof(*ph) ||
	    !inside(eh->e_phoff, (size_t) eh->e_phnum * sizeof(*ph), size) ||
	    eh->e_shentsize != sizeof(*sh) ||
	    !inside(eh->e_shoff, (size_t) eh->e_shnum * sizeof(*sh), size))
		return fail(why, len, "not an x86-64 ELF shared object");
	ph = (const Elf64_Phdr *) (image + eh->e_phoff);
	sh = (const Elf64_Shdr *) (image + eh->e_shoff);
	for (int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type == PT_TLS)
			return fail(why, len, "it has thread-local storage");
		if (ph[i].p_type != PT_LOAD)
			continue;
		if (!inside(ph[i].p_offset, ph[i].p_filesz, size) || ph[i].p_filesz > ph[i].p_memsz ||
		    ph[i].p_vaddr + ph[i].p_memsz > (64u << 20))
			return fail(why, len, "a segment outside the file or over 64 MiB");
		if (ph[i].p_vaddr + ph[i].p_memsz > span)
			span = ph[i].p_vaddr + ph[i].p_memsz;
	}
	span = (span + PAGE - 1) & ~(PAGE - 1);
	if (!span)
		return fail(why, len, "nothing to load");
	o->base = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (o->base == MAP_FAILED) {
		o->base = NULL;
		snprintf(why, len, "%zu bytes: %s", span, strerror(errno));
		return -ENOMEM;
	}
	o->span = span;
	for (int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type == PT_LOAD)
			memcpy(o->base + ph[i].p_vaddr, image + ph[i].p_offset, ph[i].p_filesz);
		if (ph[i].p_type == PT_DYNAMIC && inside(ph[i].p_vaddr, ph[i].p_memsz, span))
			dyn = (const Elf64_Dyn *) (o->base + ph[i].p_vaddr);
	}
	/* the symbol table's length is in its section header */
	for (int i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_type != SHT_DYNSYM || sh[i].sh_entsize != sizeof(Elf64_Sym) ||
		    !inside(sh[i].sh_addr, sh[i].sh_size, span) || sh[i].sh_link >= eh->e_shnum ||
		    !inside(sh[sh[i].sh_link].sh_addr, sh[sh[i].sh_link].sh_size, span))
			continue;
		o->dynsym = o->base + sh[i].sh_addr;
		o->nsyms = sh[i].sh_size / sizeof(Elf64_Sym);
		o->dynstr = (const char *) o->base + sh[sh[i].sh_link].sh_addr;
	}
	if (!dyn || !o->dynsym)
		return fail(why, len, "no dynamic section or symbol table");
	for (; dyn->d_tag != DT_NULL && inside((uint8_t *) dyn - o->base, sizeof(*dyn), span);
	     dyn++) {
		if (dyn->d_tag == DT_RELA)
			rela = dyn->d_un.d_ptr;
		else if (dyn->d_tag == DT_RELASZ)
			relasz = dyn->d_un.d_val;
		else if (dyn->d_tag == DT_JMPREL)
			jmprel = dyn->d_un.d_ptr;
		else if (dyn->d_tag == DT_PLTRELSZ)
			pltrelsz = dyn->d_un.d_val;
		else if (dyn->d_tag == DT_NEEDED &&
			 strcmp(o->dynstr + dyn->d_un.d_val, "libc.so.6") != 0)
			return fail(why, len, "it needs a library other than libc");
	}
	if (!inside(rela, relasz, span) || !inside(jmprel, pltrelsz, span))
		return fail(why, len, "relocations outside the image");
	rc = relocate(o, (const Elf64_Rela *) (o->base + rela), relasz / sizeof(Elf64_Rela),
		      imports, n, why, len);
	if (!rc)
		rc = relocate(o, (const Elf64_Rela *) (o->base + jmprel),
			      pltrelsz / sizeof(Elf64_Rela), imports, n, why, len);
	/* each segment as its flags say: code executable, nothing both writable and executable */
	for (int i = 0; !rc && i < eh->e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD)
			continue;
		uintptr_t lo = ph[i].p_vaddr & ~(PAGE - 1);
		uintptr_t hi = (ph[i].p_vaddr + ph[i].p_memsz + PAGE - 1) & ~(PAGE - 1);
		int prot = (ph[i].p_flags & PF_R ? PROT_READ : 0) |
			   (ph[i].p_flags & PF_W ? PROT_WRITE : 0) |
			   (ph[i].p_flags & PF_X ? PROT_EXEC : 0);
		if (mprotect(o->base + lo, hi - lo, prot) < 0) {
			snprintf(why, len, "mprotect: %s", strerror(errno));
			rc = -errno;
		}
	}
	if (rc) {
		munmap(o->base, span);
		o->base = NULL;
	}
	return rc;
}

void *elf_symbol(const struct elf_object *o, const char *name)
{
	const Elf64_Sym *sym = o->dynsym;

	for (size_t i = 1; i < o->nsyms; i++)
		if (sym[i].st_shndx != SHN_UNDEF && ELF64_ST_TYPE(sym[i].st_info) == STT_FUNC &&
		    strcmp(o->dynstr + sym[i].st_name, name) == 0)
			return o->base + sym[i].st_value;
	return NULL;
}
