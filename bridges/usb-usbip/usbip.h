/* SPDX-License-Identifier: MIT */
/*
 * USB/IP's URB messages, as vhci-hcd speaks them once a port is attached
 * (Linux Documentation/usb/usbip_protocol.rst, drivers/usb/usbip/
 * usbip_common.h): a 48-byte header, every field big-endian except the
 * setup packet, which stays as on the USB wire (little-endian).
 *
 *   CMD_SUBMIT  the URB; an OUT transfer's transfer_buffer_length bytes
 *               follow, then number_of_packets isochronous descriptors
 *   RET_SUBMIT  status (0 or -errno), actual_length; an IN transfer's
 *               actual_length bytes follow, then the isochronous ones
 *   CMD_UNLINK  seqnum of the URB to give back
 *   RET_UNLINK  status: -ECONNRESET if it was unlinked, 0 if it had
 *               completed already (its RET_SUBMIT went first)
 */
#ifndef BH_USBIP_H
#define BH_USBIP_H

#include <stdint.h>

#define USBIP_CMD_SUBMIT 1
#define USBIP_CMD_UNLINK 2
#define USBIP_RET_SUBMIT 3
#define USBIP_RET_UNLINK 4

#define USBIP_DIR_OUT 0
#define USBIP_DIR_IN 1

/* transfer_flags (usbip_common.h's stable encoding) */
#define USBIP_URB_SHORT_NOT_OK 0x0001
#define USBIP_URB_ZERO_PACKET 0x0040

struct usbip_header_basic {
	uint32_t command;
	uint32_t seqnum;
	uint32_t devid;
	uint32_t direction;
	uint32_t ep;
} __attribute__((packed));

struct usbip_cmd_submit {
	uint32_t transfer_flags;
	int32_t transfer_buffer_length;
	int32_t start_frame;
	int32_t number_of_packets;
	int32_t interval;
	uint8_t setup[8];
} __attribute__((packed));

struct usbip_ret_submit {
	int32_t status;
	int32_t actual_length;
	int32_t start_frame;
	int32_t number_of_packets;
	int32_t error_count;
} __attribute__((packed));

struct usbip_cmd_unlink {
	uint32_t seqnum;
} __attribute__((packed));

struct usbip_ret_unlink {
	int32_t status;
} __attribute__((packed));

struct usbip_header {
	struct usbip_header_basic base;
	union {
		struct usbip_cmd_submit cmd_submit;
		struct usbip_ret_submit ret_submit;
		struct usbip_cmd_unlink cmd_unlink;
		struct usbip_ret_unlink ret_unlink;
	} u;
} __attribute__((packed));

/* one isochronous packet's descriptor, after the data */
struct usbip_iso_packet {
	uint32_t offset;
	uint32_t length;
	uint32_t actual_length;
	uint32_t status;
} __attribute__((packed));

_Static_assert(sizeof(struct usbip_header) == 48, "a USB/IP header is 48 bytes");
_Static_assert(sizeof(struct usbip_iso_packet) == 16, "an iso descriptor is 16 bytes");

#endif
