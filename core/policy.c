// SPDX-License-Identifier: MIT
#include <stdio.h>
#include <string.h>

#include "policy.h"

bool bh_policy_matches(const struct bh_match *m, const struct bh_pci_dev *dev)
{
	switch (m->kind) {
	case BH_MATCH_CLASS:
		return (dev->class_code & m->class_mask) == m->class_code;
	case BH_MATCH_ID:
		return dev->vendor == m->vendor && dev->device == m->device;
	case BH_MATCH_ADDRESS:
		return strcmp(dev->address, m->address) == 0;
	}
	return false;
}

bool bh_policy_isa_allows(const struct bh_component_config *c, uint32_t base, uint32_t count)
{
	if (!count || (uint64_t)base + count > 0x10000)
		return false;
	for (int i = 0; i < c->nisa; i++)
		if (base >= c->isa[i].base &&
		    base + count <= (uint32_t)c->isa[i].base + c->isa[i].count)
			return true;
	return false;
}

void bh_policy_isa_describe(const struct bh_component_config *c, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = 0;
	if (!c->nisa) {
		snprintf(buf, len, "none");
		return;
	}
	for (int i = 0; i < c->nisa && off < len; i++)
		off += snprintf(buf + off, len - off, "%s0x%x-0x%x", i ? ", " : "", c->isa[i].base,
				c->isa[i].base + c->isa[i].count - 1);
}
