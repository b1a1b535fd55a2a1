// SPDX-License-Identifier: MIT
/*
 * The keys of a driver VM's [component] section:
 *
 *   [component "dvm"]
 *   kind = vm
 *   device = 0000:00:02.0
 *   kernel = /boot/vmlinuz-6.1.0-18-amd64
 *   initramfs = /var/lib/bulkhead/dvm-e1000e.cpio.gz   (tools/dvm/mkguest)
 *   modules = e1000e
 *   guest_memory = 128M
 *   vcpus = 1
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "vm.h"

static int path_key(char *dst, size_t len, const char *dir, const char *value, char *why,
		    size_t why_len, const char *name)
{
	int n;

	if (!value[0]) {
		snprintf(why, why_len, "%s is empty: name a file", name);
		return 0;
	}
	n = value[0] == '/' ? snprintf(dst, len, "%s", value)
			    : snprintf(dst, len, "%s/%s", dir, value);
	if (n < 0 || (size_t)n >= len) {
		snprintf(why, why_len, "%s: path too long", name);
		return 0;
	}
	return 1;
}

int bh_vm_config_key(struct bh_vm_config *vm, const char *dir, const char *name,
		     const char *value, char *why, size_t why_len)
{
	if (strcmp(name, "kind") == 0) {
		if (strcmp(value, "vm") != 0 && strcmp(value, "process") != 0) {
			snprintf(why, why_len, "kind = '%s': expected 'process' (the default: a "
					       "program of ours) or 'vm' (a driver VM: QEMU with KVM "
					       "booting kernel and initramfs)",
				 value);
			return 0;
		}
		vm->enabled = strcmp(value, "vm") == 0;
		return 1;
	}
	if (strcmp(name, "vm_nic") == 0 || strcmp(name, "vm_blk") == 0) {
		bool nic = strcmp(name, "vm_nic") == 0;
		char *of = nic ? vm->nic_of : vm->blk_of;
		size_t n = strlen(value);
		if (!n || n >= sizeof(vm->nic_of) || value[strspn(value, "abcdefghijklmnopqrstuvwxyz"
								    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
								    "0123456789-_.")]) {
			snprintf(why, why_len, "%s = '%s': the name of a [component] with kind = "
					       "vm, whose %s this component serves (e.g. '%s = "
					       "dvm')",
				 name, value, nic ? "NIC" : "disk", name);
			return 0;
		}
		if ((nic ? vm->blk_of : vm->nic_of)[0]) {
			snprintf(why, why_len, "%s = '%s': this component already serves a VM's %s; "
					       "one server serves one channel (give each its own "
					       "[component])",
				 name, value, nic ? "disk" : "NIC");
			return 0;
		}
		snprintf(of, sizeof(vm->nic_of), "%s", value);
		return 1;
	}
	if (strcmp(name, "kernel") == 0)
		return path_key(vm->kernel, sizeof(vm->kernel), dir, value, why, why_len, name);
	if (strcmp(name, "initramfs") == 0)
		return path_key(vm->initramfs, sizeof(vm->initramfs), dir, value, why, why_len,
				name);
	if (strcmp(name, "modules") == 0) {
		size_t n = strlen(value);
		if (!n || n >= sizeof(vm->modules) ||
		    value[strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789_-, ")]) {
			snprintf(why, why_len, "modules = '%s': kernel module names (letters, "
					       "digits, - and _) separated by commas or spaces, at "
					       "most %zu characters, e.g. 'modules = e1000e'",
				 value, sizeof(vm->modules) - 1);
			return 0;
		}
		/* the guest's command line takes one word: commas between the names */
		snprintf(vm->modules, sizeof(vm->modules), "%s", value);
		for (char *q = vm->modules; *q; q++)
			if (*q == ' ')
				*q = ',';
		return 1;
	}
	if (strcmp(name, "guest_append") == 0) {
		if (strlen(value) >= sizeof(vm->append)) {
			snprintf(why, why_len, "guest_append: longer than %zu characters",
				 sizeof(vm->append) - 1);
			return 0;
		}
		for (const char *q = value; *q; q++) {
			if (!isprint((unsigned char)*q) || *q == '"' || *q == '\\') {
				snprintf(why, why_len, "guest_append = '%s': printable words only, "
						       "without quotes or backslashes",
					 value);
				return 0;
			}
		}
		snprintf(vm->append, sizeof(vm->append), "%s", value);
		return 1;
	}
	if (strcmp(name, "guest_memory") == 0) {
		if (bh_config_size(value, &vm->memory) || vm->memory < (32ull << 20) ||
		    vm->memory > BH_VM_MEMORY_MAX || vm->memory % (1ull << 20)) {
			snprintf(why, why_len, "guest_memory = '%s': whole MiB from 32M to 64G, "
					       "e.g. 128M",
				 value);
			return 0;
		}
		return 1;
	}
	if (strcmp(name, "vcpus") == 0 || strcmp(name, "boot_ms") == 0) {
		uint64_t v;
		bool vcpus = name[0] == 'v';
		if (bh_config_size(value, &v) || v < 1 ||
		    v > (vcpus ? BH_VM_VCPUS_MAX : 3600000u)) {
			snprintf(why, why_len, "%s = '%s': a whole number from 1 to %u", name,
				 value, vcpus ? BH_VM_VCPUS_MAX : 3600000u);
			return 0;
		}
		*(vcpus ? &vm->vcpus : &vm->boot_ms) = (uint32_t)v;
		return 1;
	}
	return -1;
}

static bool readable_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int bh_vm_config_finish(struct bh_component_config *c, char *why, size_t why_len)
{
	struct bh_vm_config *vm = &c->vm;

	if (!vm->enabled) {
		if (vm->kernel[0] || vm->initramfs[0] || vm->modules[0] || vm->memory ||
		    vm->vcpus || vm->append[0]) {
			snprintf(why, why_len, "component \"%s\" has guest keys (kernel, initramfs, "
					       "modules, guest_memory, vcpus, guest_append) but no "
					       "'kind = vm'",
				 c->name);
			return -EINVAL;
		}
		return 0;
	}
	if (vm->nic_of[0]) {
		snprintf(why, why_len, "component \"%s\" is a VM and has 'vm_nic = %s': vm_nic "
				       "belongs in the section of the server (bulkhead-vm-nic) that "
				       "serves a VM's NIC",
			 c->name, vm->nic_of);
		return -EINVAL;
	}
	if (vm->blk_of[0]) {
		snprintf(why, why_len, "component \"%s\" is a VM and has 'vm_blk = %s': vm_blk "
				       "belongs in the section of the server (bulkhead-vm-blk) that "
				       "serves a VM's disk",
			 c->name, vm->blk_of);
		return -EINVAL;
	}
	if (!vm->kernel[0] || !vm->initramfs[0]) {
		snprintf(why, why_len, "component \"%s\" is a VM: give 'kernel = FILE' and "
				       "'initramfs = FILE' (tools/dvm/mkguest builds one)",
			 c->name);
		return -EINVAL;
	}
	if (!readable_file(vm->kernel) || !readable_file(vm->initramfs)) {
		snprintf(why, why_len, "component \"%s\": %s is not a readable file", c->name,
			 readable_file(vm->kernel) ? vm->initramfs : vm->kernel);
		return -ENOENT;
	}
	if (!c->exec[0])
		snprintf(c->exec, sizeof(c->exec), "%s", BH_VM_QEMU);
	if (!vm->memory)
		vm->memory = BH_VM_MEMORY_DEFAULT;
	if (!vm->vcpus)
		vm->vcpus = 1;
	if (!vm->boot_ms)
		vm->boot_ms = BH_VM_BOOT_MS_DEFAULT;
	/*
	 * QEMU, not a component of ours: its address space holds guest RAM, its
	 * threads count as processes, VFIO wants fds; unless the section says
	 */
	if (c->limit_memory == 512ull << 20)
		c->limit_memory = vm->memory + (3ull << 30);
	if (c->limit_procs == 1)
		c->limit_procs = 32;
	if (c->limit_fds == 64)
		c->limit_fds = 256;
	return 0;
}
