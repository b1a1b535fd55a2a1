/* SPDX-License-Identifier: MIT */
/* vhci-hcd ports for the usb-usbip bridge (core/usbip.c). */
#ifndef BH_CORE_USBIP_H
#define BH_CORE_USBIP_H

#include "core.h"

#define BH_VHCI_DIR "/sys/devices/platform/vhci_hcd.0"

/*
 * BH_OP_USBIP: attach a free vhci-hcd port of the speed the bridge asks
 * (in->block_size: the kernel's enum usb_device_speed, 1 low, 2 full,
 * 3 high, 5 super) to one end of a new socket pair; *fd is the other end,
 * reply->u.session.name says which port.
 */
void bh_usbip_request(struct bh_core_state *core, struct bh_component *c,
		      const struct bh_session_info *in, struct bh_msg *reply, int *fd);

/* the component's vhci port, if it has one: detached now (it is gone, or will ask again) */
void bh_usbip_detach(const struct bh_component *c);

#endif
