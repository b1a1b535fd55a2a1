/* SPDX-License-Identifier: MIT */
/*
 * Intel 82574L (e1000e) registers and descriptors this driver uses, from
 * the 82574 GbE Controller Family Datasheet: chapter 10 (registers), 7.1
 * (receive), 7.2 (transmit), 7.4 (interrupts).
 */
#ifndef E1000E_REGS_H
#define E1000E_REGS_H

#include <stdint.h>

#define E1000E_VENDOR 0x8086
#define E1000E_DEVICE 0x10d3 /* 82574L */

/* general (10.2) */
#define REG_CTRL 0x00000
#define CTRL_GIO_MASTER_DISABLE (1u << 2)
#define CTRL_ASDE (1u << 5)
#define CTRL_SLU (1u << 6)
#define CTRL_RST (1u << 26)
#define REG_STATUS 0x00008
#define STATUS_LU (1u << 1)
#define STATUS_SPEED_SHIFT 6
#define STATUS_GIO_MASTER_ENABLE (1u << 19)

/* interrupts (10.2) */
#define REG_ICR 0x000c0
#define REG_ITR 0x000c4
#define REG_IMS 0x000d0
#define REG_IMC 0x000d8
#define REG_EIAC 0x000dc /* MSI-X: causes auto-cleared (and masked) on notify */
#define REG_IVAR 0x000e4
#define REG_EITR(n) (0x000e8 + 4 * (n))
#define ICR_TXDW (1u << 0)
#define ICR_LSC (1u << 2)
#define ICR_RXDMT0 (1u << 4)
#define ICR_RXO (1u << 6)
#define ICR_RXT0 (1u << 7)
#define ICR_RXQ0 (1u << 20)
#define ICR_TXQ0 (1u << 22)
#define ICR_OTHER (1u << 24)
/* IVAR: 4 bits per cause, vector number + valid bit 3 */
#define IVAR_VALID 0x8u
#define IVAR_RXQ0_SHIFT 0
#define IVAR_TXQ0_SHIFT 8
#define IVAR_OTHER_SHIFT 16

/* receive (10.2) */
#define REG_RCTL 0x00100
#define RCTL_EN (1u << 1)
#define RCTL_UPE (1u << 3)  /* every unicast: a bridge port behind another MAC */
#define RCTL_BAM (1u << 15) /* broadcasts */
#define RCTL_MPE (1u << 4)  /* all multicasts: IPv6 neighbour discovery needs them */
#define RCTL_BSIZE_2048 0u
#define RCTL_SECRC (1u << 26) /* strip the FCS */
#define REG_RDBAL 0x02800
#define REG_RDBAH 0x02804
#define REG_RDLEN 0x02808
#define REG_RDH 0x02810
#define REG_RDT 0x02818
#define REG_RDTR 0x02820
#define REG_RADV 0x0282c
#define REG_RFCTL 0x05008
#define REG_RXCSUM 0x05000
#define RXCSUM_IPOFLD (1u << 8) /* IPv4 header checksum */
#define RXCSUM_TUOFLD (1u << 9) /* TCP/UDP checksum */
#define REG_MTA 0x05200		/* 128 entries */
#define REG_RAL0 0x05400
#define REG_RAH0 0x05404
#define RAH_AV (1u << 31)

/* transmit (10.2) */
#define REG_TCTL 0x00400
#define TCTL_EN (1u << 1)
#define TCTL_PSP (1u << 3)
#define TCTL_CT(x) ((uint32_t) (x) << 4)
#define TCTL_COLD(x) ((uint32_t) (x) << 12)
#define TCTL_RTLC (1u << 24)
#define REG_TIPG 0x00410
#define TIPG_COPPER (8u | (8u << 10) | (6u << 20))
#define REG_TDBAL 0x03800
#define REG_TDBAH 0x03804
#define REG_TDLEN 0x03808
#define REG_TDH 0x03810
#define REG_TDT 0x03818
#define REG_TIDV 0x03820
#define REG_TARC0 0x03840
#define TARC_ENABLE (1u << 10)

/* legacy receive descriptor (7.1) */
struct e1000e_rx_desc {
	uint64_t addr;
	uint16_t length;
	uint16_t csum;
	uint8_t status;
	uint8_t errors;
	uint16_t special;
};
#define RXD_DD (1u << 0)
#define RXD_EOP (1u << 1)
#define RXD_IXSM (1u << 2) /* ignore the checksum indications */
#define RXD_UDPCS (1u << 4)
#define RXD_TCPCS (1u << 5)
#define RXD_IPCS (1u << 6)
#define RXE_TCPE (1u << 5) /* errors: TCP/UDP checksum */
#define RXE_IPE (1u << 6)  /* errors: IPv4 header checksum */

/* legacy transmit descriptor (7.2) */
struct e1000e_tx_desc {
	uint64_t addr;
	uint16_t length;
	uint8_t cso;
	uint8_t cmd;
	uint8_t status;
	uint8_t css;
	uint16_t special;
};
#define TXD_EOP (1u << 0)
#define TXD_IFCS (1u << 1)
#define TXD_RS (1u << 3)
#define TXD_DD (1u << 0)

/* TCP/IP context descriptor (7.3.6): offload parameters for the data descriptors after it */
struct e1000e_ctx_desc {
	uint8_t ipcss, ipcso;
	uint16_t ipcse;
	uint8_t tucss, tucso;
	uint16_t tucse;
	uint32_t cmd_len; /* PAYLEN 19:0, DTYP 23:20 (0), TUCMD 31:24 */
	uint8_t status;
	uint8_t hdr_len;
	uint16_t mss;
};
/* TUCMD (context) and DCMD (data) bits, in cmd_len */
#define TXC_TCP (1u << 24) /* context: TCP (else UDP) */
#define TXC_IP (1u << 25)  /* context: IPv4 (else IPv6) */
#define TXC_TSE (1u << 26) /* segmentation */
#define TXC_RS (1u << 27)
#define TXC_DEXT (1u << 29)
#define TXC_DTYP_D (1u << 20) /* data descriptor (else context) */
#define TXC_EOP (1u << 24)    /* data: end of packet */
#define TXC_IFCS (1u << 25)   /* data: insert FCS */
/* TCP/IP data descriptor (7.3.7): addr, cmd_len (DTALEN 19:0), status, popts, special */
struct e1000e_data_desc {
	uint64_t addr;
	uint32_t cmd_len;
	uint8_t status;
	uint8_t popts;
	uint16_t special;
};
#define POPTS_IXSM (1u << 0) /* insert the IPv4 header checksum */
#define POPTS_TXSM (1u << 1) /* insert the TCP/UDP checksum */

_Static_assert(sizeof(struct e1000e_ctx_desc) == 16, "context descriptor is 16 bytes");
_Static_assert(sizeof(struct e1000e_data_desc) == 16, "data descriptor is 16 bytes");
_Static_assert(sizeof(struct e1000e_rx_desc) == 16, "rx descriptor is 16 bytes");
_Static_assert(sizeof(struct e1000e_tx_desc) == 16, "tx descriptor is 16 bytes");

#endif
