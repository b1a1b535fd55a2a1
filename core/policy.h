/* SPDX-License-Identifier: MIT */
/* Policy decisions, kept pure so they can be unit-tested. */
#ifndef BH_CORE_POLICY_H
#define BH_CORE_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "pci.h"

bool bh_policy_matches(const struct bh_match *m, const struct bh_pci_dev *dev);

/* are ports [base, base+count) inside one of the component's ISA grants? */
bool bh_policy_isa_allows(const struct bh_component_config *c, uint32_t base, uint32_t count);

/* "0x40-0x43, 0x3f8-0x3ff" or "none" */
void bh_policy_isa_describe(const struct bh_component_config *c, char *buf, size_t len);

#endif
