// SPDX-License-Identifier: MIT
/*
 * A dynamic component's libraries (core/libs.h), read with elfutils' libelf.
 *
 * The component's root is empty but for what this lists, and holds no
 * /etc/ld.so.cache, so its loader searches only DT_RPATH or DT_RUNPATH and
 * then its built-in system directories (ld.so(8), "search order"); the
 * closure is resolved here the same way, on the host, so that each library
 * lands at the path where the loader will look for it first. A library of
 * another ELF class or machine is skipped, as the loader skips it.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "libs.h"

/* glibc's x86-64 system directories (its SYSTEM_DIRS on a multiarch Debian) */
const char *const bh_libs_default_dirs[] = { "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
					     "/lib", "/usr/lib", NULL };

/* what one ELF object asks of the loader */
struct object {
	int class, machine;
	bool dynamic;
	char interp[PATH_MAX];
	char needed[BH_LIBS_MAX][NAME_MAX + 1];
	int nneeded;
	char runpath[PATH_MAX]; /* DT_RUNPATH, else DT_RPATH: a colon-separated list */
};

/* read path's ELF headers and dynamic section; <0 (err set) if it is no ELF object we can use */
static int read_object(const char *path, struct object *o, char *err, size_t err_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	Elf *e;
	GElf_Ehdr eh;
	size_t nph;
	int rc = 0;
	bool rpath_only = true;

	memset(o, 0, sizeof(*o));
	if (fd < 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return -errno;
	}
	e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!e || elf_kind(e) != ELF_K_ELF || !gelf_getehdr(e, &eh) || elf_getphdrnum(e, &nph)) {
		snprintf(err, err_len, "%s: not an ELF file (%s)", path, elf_errmsg(-1));
		rc = -ENOEXEC;
		goto out;
	}
	o->class = gelf_getclass(e);
	o->machine = eh.e_machine;
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;
		size_t size;
		const char *raw = elf_rawfile(e, &size);
		if (!gelf_getphdr(e, (int)i, &ph))
			continue;
		o->dynamic |= ph.p_type == PT_DYNAMIC;
		if (ph.p_type != PT_INTERP)
			continue;
		if (!raw || ph.p_offset >= size || ph.p_filesz > size - ph.p_offset ||
		    ph.p_filesz < 2 || ph.p_filesz > sizeof(o->interp) ||
		    raw[ph.p_offset + ph.p_filesz - 1]) {
			snprintf(err, err_len, "%s: its PT_INTERP is malformed", path);
			rc = -ENOEXEC;
			goto out;
		}
		memcpy(o->interp, raw + ph.p_offset, ph.p_filesz);
	}
	/* the dynamic section's strings, through the section headers (DT_STRTAB is an address) */
	for (Elf_Scn *s = elf_nextscn(e, NULL); s; s = elf_nextscn(e, s)) {
		GElf_Shdr sh;
		Elf_Data *d;
		if (!gelf_getshdr(s, &sh) || sh.sh_type != SHT_DYNAMIC || !(d = elf_getdata(s, NULL)))
			continue;
		for (int k = 0; sh.sh_entsize && k < (int)(sh.sh_size / sh.sh_entsize); k++) {
			GElf_Dyn dyn;
			const char *str;
			if (!gelf_getdyn(d, k, &dyn))
				break;
			if (dyn.d_tag != DT_NEEDED && dyn.d_tag != DT_RUNPATH && dyn.d_tag != DT_RPATH)
				continue;
			str = elf_strptr(e, sh.sh_link, dyn.d_un.d_val);
			if (!str)
				continue;
			if (dyn.d_tag == DT_NEEDED) {
				if (o->nneeded == BH_LIBS_MAX || strlen(str) > NAME_MAX) {
					snprintf(err, err_len, "%s: more than %d DT_NEEDED, or one too long",
						 path, BH_LIBS_MAX);
					rc = -E2BIG;
					goto out;
				}
				strcpy(o->needed[o->nneeded++], str);
			} else if (dyn.d_tag == DT_RUNPATH || rpath_only) {
				/* DT_RUNPATH, where there is one, makes the loader ignore DT_RPATH */
				snprintf(o->runpath, sizeof(o->runpath), "%s", str);
				rpath_only = dyn.d_tag == DT_RPATH;
			}
		}
	}
	if (strstr(o->runpath, "$ORIGIN") || strstr(o->runpath, "${ORIGIN}")) {
		/* a component runs from an fd, with no path of its own to expand */
		snprintf(err, err_len, "%s: its run path '%s' uses $ORIGIN, which a component "
				       "cannot: link it with an absolute run path",
			 path, o->runpath);
		rc = -ENOEXEC;
	}
out:
	if (e)
		elf_end(e);
	close(fd);
	return rc;
}

int bh_libs_dynamic(const char *program, char *err, size_t err_len)
{
	static char head[4096];
	int fd = open(program, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : pread(fd, head, sizeof(head), 0);
	size_t nph;
	Elf *e;
	int rc = 0;

	if (fd >= 0)
		close(fd);
	if (n < 0) {
		snprintf(err, err_len, "%s: %s", program, strerror(errno));
		return -errno;
	}
	e = elf_version(EV_CURRENT) == EV_NONE ? NULL : elf_memory(head, (size_t)n);
	if (!e || elf_kind(e) != ELF_K_ELF || elf_getphdrnum(e, &nph)) {
		snprintf(err, err_len, "%s: not an ELF program", program);
		elf_end(e);
		return -ENOEXEC;
	}
	/* the program headers follow the ELF header: a linker puts them there */
	for (size_t i = 0; i < nph && !rc; i++) {
		GElf_Phdr ph;
		rc = gelf_getphdr(e, (int)i, &ph) && ph.p_type == PT_INTERP;
	}
	elf_end(e);
	return rc;
}

static bool listed(const struct bh_libs *l, const char *path)
{
	for (int i = 0; i < l->n; i++)
		if (!strcmp(l->path[i], path))
			return true;
	return false;
}

/* where the loader finds name for an object with run path runpath; 0 with out set */
static int find(const char *name, const char *runpath, const struct object *prog, char *out,
		size_t out_len)
{
	char dirs[PATH_MAX + 128], *save = NULL;
	struct object o;
	char ignore[64];
	size_t k = 0;

	if (strchr(name, '/')) {
		snprintf(out, out_len, "%s", name);
		return access(out, R_OK) ? -ENOENT : 0;
	}
	k = (size_t)snprintf(dirs, sizeof(dirs), "%s", runpath);
	for (int i = 0; bh_libs_default_dirs[i] && k < sizeof(dirs); i++)
		k += (size_t)snprintf(dirs + k, sizeof(dirs) - k, "%s%s", k ? ":" : "",
				      bh_libs_default_dirs[i]);
	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		if ((size_t)snprintf(out, out_len, "%s/%s", d, name) >= out_len)
			continue;
		if (read_object(out, &o, ignore, sizeof(ignore)) == 0 && o.class == prog->class &&
		    o.machine == prog->machine)
			return 0;
	}
	return -ENOENT;
}

int bh_libs_closure(const char *program, struct bh_libs *out, char *err, size_t err_len)
{
	static struct object prog, o; /* large: not on core's stack */
	const char *loader_name;
	int rc;

	out->n = 0;
	if (elf_version(EV_CURRENT) == EV_NONE) {
		snprintf(err, err_len, "libelf: %s", elf_errmsg(-1));
		return -EINVAL;
	}
	rc = read_object(program, &prog, err, err_len);
	if (rc)
		return rc;
	if (!prog.interp[0])
		return 0; /* static: it gets what every component gets */
	if (prog.interp[0] != '/' || access(prog.interp, R_OK)) {
		snprintf(err, err_len, "%s: its loader %s is not on this machine", program,
			 prog.interp);
		return -ENOENT;
	}
	snprintf(out->path[out->n++], PATH_MAX, "%s", prog.interp);
	loader_name = strrchr(prog.interp, '/') + 1;
	/* breadth first, as the loader loads them: the program's, then each library's */
	for (int i = 0; i < out->n; i++) {
		const struct object *cur = &prog;
		const char *who = program;
		if (i > 0) {
			who = out->path[i];
			if (read_object(who, &o, err, err_len))
				return -ENOEXEC;
			cur = &o;
		}
		for (int k = 0; k < cur->nneeded; k++) {
			char path[PATH_MAX];
			/* libc needs the loader by its name: the loader is already there */
			if (!strcmp(cur->needed[k], loader_name))
				continue;
			if (find(cur->needed[k], cur->runpath, &prog, path, sizeof(path))) {
				snprintf(err, err_len, "%s needs %s, which is in none of %s%s"
						       "/lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, "
						       "/lib, /usr/lib: install the package that has it",
					 who, cur->needed[k], cur->runpath,
					 cur->runpath[0] ? ", " : "");
				return -ENOENT;
			}
			if (listed(out, path))
				continue;
			if (out->n == BH_LIBS_MAX) {
				snprintf(err, err_len, "%s: more than %d libraries", program,
					 BH_LIBS_MAX);
				return -E2BIG;
			}
			snprintf(out->path[out->n++], PATH_MAX, "%s", path);
		}
	}
	return 0;
}
