/* SPDX-License-Identifier: MIT */
/*
 * NVMe 1.4 registers, commands and data structures the driver uses.
 * Section numbers are those of the NVM Express Base Specification 1.4.
 */
#ifndef BH_NVME_REGS_H
#define BH_NVME_REGS_H

#include <stdint.h>

/* 3.1 controller registers (BAR0) */
#define NVME_CAP 0x00  /* 64-bit capabilities */
#define NVME_VS 0x08   /* version */
#define NVME_INTMS 0x0c
#define NVME_INTMC 0x10
#define NVME_CC 0x14   /* controller configuration */
#define NVME_CSTS 0x1c /* controller status */
#define NVME_AQA 0x24  /* admin queue attributes */
#define NVME_ASQ 0x28  /* admin submission queue base (64-bit) */
#define NVME_ACQ 0x30  /* admin completion queue base (64-bit) */
#define NVME_DOORBELLS 0x1000

/* 3.1.1 CAP */
#define NVME_CAP_MQES(cap) ((uint32_t)((cap)&0xffff) + 1) /* max queue entries */
#define NVME_CAP_TO(cap) ((uint32_t)(((cap) >> 24) & 0xff))  /* 500 ms units */
#define NVME_CAP_DSTRD(cap) ((uint32_t)(((cap) >> 32) & 0xf))
#define NVME_CAP_CSS_NVM(cap) (((cap) >> 37) & 1)
#define NVME_CAP_MPSMIN(cap) ((uint32_t)(((cap) >> 48) & 0xf))

/* 3.1.5 CC */
#define NVME_CC_EN (1u << 0)
#define NVME_CC_CSS_NVM (0u << 4)
#define NVME_CC_MPS(shift) (((shift)-12) << 7) /* host page size 2^(12 + MPS) */
#define NVME_CC_AMS_RR (0u << 11)
#define NVME_CC_SHN_MASK (3u << 14)
#define NVME_CC_SHN_NORMAL (1u << 14)
#define NVME_CC_IOSQES(shift) ((shift) << 16) /* 64-byte SQEs: 6 */
#define NVME_CC_IOCQES(shift) ((shift) << 20) /* 16-byte CQEs: 4 */

/* 3.1.6 CSTS */
#define NVME_CSTS_RDY (1u << 0)
#define NVME_CSTS_CFS (1u << 1) /* controller fatal status */
#define NVME_CSTS_SHST_MASK (3u << 2)
#define NVME_CSTS_SHST_DONE (2u << 2)

/* 3.1.8 AQA: sizes are 0-based */
#define NVME_AQA_SIZES(sq, cq) ((((cq)-1u) << 16) | ((sq)-1u))

/* 5 admin commands */
#define NVME_ADMIN_DELETE_SQ 0x00
#define NVME_ADMIN_CREATE_SQ 0x01
#define NVME_ADMIN_DELETE_CQ 0x04
#define NVME_ADMIN_CREATE_CQ 0x05
#define NVME_ADMIN_IDENTIFY 0x06
#define NVME_ADMIN_SET_FEATURES 0x09

/* 5.15 identify: CNS */
#define NVME_CNS_NAMESPACE 0x00
#define NVME_CNS_CONTROLLER 0x01

/* 5.21.1.7 number of queues */
#define NVME_FEAT_NUM_QUEUES 0x07

/* 5.3 / 5.4 create I/O queue, CDW11 */
#define NVME_QUEUE_PHYS_CONTIG (1u << 0)
#define NVME_CQ_IRQ_ENABLED (1u << 1)

/* 6 NVM command set */
#define NVME_CMD_FLUSH 0x00
#define NVME_CMD_WRITE 0x01
#define NVME_CMD_READ 0x02
#define NVME_CMD_DSM 0x09 /* dataset management: deallocate = trim */
#define NVME_DSM_DEALLOCATE (1u << 2)

/* 4.2 submission queue entry: 64 bytes */
struct nvme_sqe {
	uint8_t opcode;
	uint8_t flags; /* fused operation, PSDT = 0: PRPs */
	uint16_t cid;
	uint32_t nsid;
	uint64_t reserved;
	uint64_t mptr;
	uint64_t prp1;
	uint64_t prp2;
	uint32_t cdw10;
	uint32_t cdw11;
	uint32_t cdw12;
	uint32_t cdw13;
	uint32_t cdw14;
	uint32_t cdw15;
};

/* 4.6 completion queue entry: 16 bytes */
struct nvme_cqe {
	uint32_t result;
	uint32_t reserved;
	uint16_t sq_head;
	uint16_t sq_id;
	uint16_t cid;
	uint16_t status; /* bit 0: phase tag; 15:1 status field */
};

_Static_assert(sizeof(struct nvme_sqe) == 64, "SQE is 64 bytes");
_Static_assert(sizeof(struct nvme_cqe) == 16, "CQE is 16 bytes");

/* 4.6.1.2 status field (status >> 1): SCT in 10:8, SC in 7:0 */
#define NVME_SF_SCT(sf) (((sf) >> 8) & 7)
#define NVME_SF_SC(sf) ((sf)&0xff)
#define NVME_SC_INVALID_FIELD 0x02
#define NVME_SC_LBA_RANGE 0x80 /* generic: LBA out of range */

/* 6.7 dataset management range */
struct nvme_dsm_range {
	uint32_t attributes;
	uint32_t nlb; /* 1-based here */
	uint64_t slba;
};

/* 5.15.2.2 identify controller data: byte offsets */
#define NVME_ID_SN 4	 /* 20 bytes, ASCII */
#define NVME_ID_MN 24	 /* 40 bytes */
#define NVME_ID_FR 64	 /* 8 bytes */
#define NVME_ID_MDTS 77	 /* max data transfer: 2^n min pages, 0 = none */
#define NVME_ID_NN 516	 /* number of namespaces */
#define NVME_ID_ONCS 520 /* optional NVM commands: bit 2 DSM */
#define NVME_ID_VWC 525	 /* bit 0: volatile write cache */
#define NVME_ONCS_DSM (1u << 2)

/* 5.15.2.1 identify namespace data */
#define NVME_NS_NSZE 0	 /* size in blocks */
#define NVME_NS_FLBAS 26 /* 3:0 the LBA format in use */
#define NVME_NS_LBAF 128 /* 4 bytes each: MS 15:0, LBADS 23:16 */

#endif
