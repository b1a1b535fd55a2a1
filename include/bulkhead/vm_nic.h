/* SPDX-License-Identifier: MIT */
/*
 * The channel between a driver VM's agent and the host's vm-nic server.
 *
 * Core creates the memory (a memfd per VM, BH_VMNIC_SIZE bytes) and gives
 * it to QEMU as an ivshmem-doorbell device's BAR 2 and to the vm-nic server
 * as an fd (BH_OP_VM_NIC; core/vm_nic.c). The agent in the guest maps the BAR (sysfs
 * resource2) and moves frames between it and the guest's network interface
 * (AF_PACKET); vm-nic moves them between it and a NIC session
 * (bulkhead/nic.h), so nic-tap on top cannot tell the VM from a native
 * driver.
 *
 *   [ guest page | host page | to-guest stream | from-guest stream ]
 *
 * Each stream is a packet stream (bulkhead/packet_stream.h) with the
 * geometry below, which both sides know without reading it from the
 * memory: the host is the source of the to-guest stream and the sink of
 * the from-guest one. Neither side trusts the other: packet streams check
 * every index and descriptor, and the pages' fields are copied and checked.
 *
 * Notifications: core is the ivshmem server of QEMU's ivshmem-doorbell
 * device (docs/specs/ivshmem-spec.rst in QEMU): the guest is peer 1, the
 * host peer 0 with one vector, an eventfd vm-nic sleeps on. A side about
 * to sleep sets "sleeping" in its page, fences, and looks at its rings
 * once more; a side that has just published fences and, if the other
 * sleeps, wakes it: the guest by writing the doorbell register (QEMU
 * writes the host's eventfd), the host by a byte on the VM's second serial
 * line (the device's interrupts are MSI-X, which Debian's guest kernel
 * gives no user-space driver). Without the line both sides poll.
 *
 * Offloads: the agent says in its page which of nic.h's offloads it takes
 * (BH_NIC_OFF_*: its AF_PACKET socket carries a virtio_net_hdr, so the
 * guest's Linux finishes checksums and cuts TCP segments, in its NIC or in
 * software). A to-guest descriptor's op and arg are then those of a NIC
 * session's tx descriptor (BH_NIC_TX_*, bh_nic_tx_arg); a segmentation
 * request of up to BH_NIC_GSO_MAX bytes lies in consecutive slots. A
 * from-guest descriptor's op may carry BH_NIC_RX_CSUM_OK. Without offloads
 * both ops are 0 and every frame fits one slot.
 *
 * Start-up and restarts: the agent writes a new epoch (any value but the
 * host page's) and waits. The host, seeing guest epoch != host epoch,
 * zeroes both streams, attaches its ends and then writes the epoch to its
 * page; the agent attaches once it reads its own epoch back. A rebooted
 * guest thus starts from empty rings, and the host never reads a ring the
 * guest is rewriting.
 */
#ifndef BULKHEAD_VM_NIC_H
#define BULKHEAD_VM_NIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bulkhead/packet_stream.h"

#define BH_VMNIC_MAGIC 0x4e4d5642u /* "BVMN" */
#define BH_VMNIC_VERSION 1
/* the memory core creates; ivshmem wants a power of two */
#define BH_VMNIC_SIZE (2u << 20)
#define BH_VMNIC_RING 256
#define BH_VMNIC_SLOT 2048
#define BH_VMNIC_BULK ((uint64_t)BH_VMNIC_RING * BH_VMNIC_SLOT)
/* the pages' offsets, and the streams' (bh_vmnic_stream_offset) */
#define BH_VMNIC_GUEST_PAGE 0
#define BH_VMNIC_HOST_PAGE 4096
#define BH_VMNIC_STREAMS_AT 8192
/* QEMU's ivshmem: Red Hat's vendor id; registers in BAR 0, the memory in BAR 2 */
#define BH_IVSHMEM_VENDOR 0x1af4
#define BH_IVSHMEM_DEVICE 0x1110
#define BH_IVSHMEM_DOORBELL 0xc  /* peer << 16 | vector */
#define BH_VMNIC_HOST_PEER 0
#define BH_VMNIC_GUEST_PEER 1

enum { BH_VMNIC_TO_GUEST = 0, BH_VMNIC_FROM_GUEST = 1 };

/* written by the agent only */
struct bh_vmnic_guest {
	uint32_t magic; /* BH_VMNIC_MAGIC once the rest is written */
	uint32_t version;
	uint32_t epoch;
	uint32_t link_up; /* 0 or 1 */
	uint32_t speed_mbps;
	uint16_t mtu;
	uint8_t mac[6];
	char driver[16]; /* the guest's driver of the interface: "e1000e" */
	char ifname[16];
	uint64_t beat; /* advances while the agent runs */
	uint64_t dropped; /* frames the agent could not send or pass on */
	uint32_t sleeping; /* the agent sleeps: wake it */
	uint32_t doorbell; /* 1: the agent sleeps on its wake-up line and rings ours */
	uint32_t offloads; /* BH_NIC_OFF_* the agent takes: see "Offloads" above */
};

/* written by vm-nic only */
struct bh_vmnic_host {
	uint32_t epoch; /* the guest's epoch once the streams are fresh for it */
	uint32_t sleeping; /* vm-nic waits for the doorbell: ring it */
	uint64_t beat;
};

/* where stream which (BH_VMNIC_TO_GUEST, _FROM_GUEST) lies in the memory */
uint64_t bh_vmnic_stream_offset(unsigned int which);

/*
 * Attach both streams of the memory at base (size bytes), as the host
 * (source of to-guest, sink of from-guest) or the guest; 0, or -errno
 * (-EMSGSIZE: the memory is too small for the geometry).
 */
int bh_vmnic_attach(struct bh_packet_stream ps[2], void *base, size_t size, bool host);
void bh_vmnic_detach(struct bh_packet_stream ps[2]);

/* the host, before attaching for a new guest epoch: both streams emptied */
void bh_vmnic_clear(void *base);

/*
 * A copy of the guest page, checked: 0, or -EAGAIN while the agent has
 * not written it, -EPROTO if it holds nonsense (strings are terminated).
 */
int bh_vmnic_guest_read(const void *base, struct bh_vmnic_guest *g);

/*
 * A to-guest frame d is one the guest can take with its offloads
 * (BH_NIC_OFF_*): a plain frame, or a checksum or segmentation request
 * (nic.h) whose numbers lie inside the frame. Both sides check: the guest's
 * Linux checks the rest.
 */
bool bh_vmnic_tx_ok(const struct bh_ps_desc *d, uint32_t offloads);

static inline struct bh_vmnic_guest *bh_vmnic_guest_page(void *base)
{
	return (struct bh_vmnic_guest *)((uint8_t *)base + BH_VMNIC_GUEST_PAGE);
}

static inline struct bh_vmnic_host *bh_vmnic_host_page(void *base)
{
	return (struct bh_vmnic_host *)((uint8_t *)base + BH_VMNIC_HOST_PAGE);
}

#endif
