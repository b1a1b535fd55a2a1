/* SPDX-License-Identifier: MIT */
/*
 * xHCI registers, TRBs and contexts the driver uses. Section numbers are
 * those of the eXtensible Host Controller Interface for Universal Serial
 * Bus (xHCI) Requirements Specification, revision 1.2.
 */
#ifndef BH_XHCI_REGS_H
#define BH_XHCI_REGS_H

#include <stdint.h>

/* 5.3 capability registers (BAR0 + 0); read as dwords */
#define XHCI_CAPLENGTH 0x00 /* 7:0 length, 31:16 HCIVERSION */
#define XHCI_HCSPARAMS1 0x04
#define XHCI_HCSPARAMS2 0x08
#define XHCI_HCSPARAMS3 0x0c
#define XHCI_HCCPARAMS1 0x10
#define XHCI_DBOFF 0x14
#define XHCI_RTSOFF 0x18
#define XHCI_HCCPARAMS2 0x1c

#define XHCI_CAP_LENGTH(v) ((v) &0xff)
#define XHCI_CAP_VERSION(v) ((v) >> 16)
/* 5.3.3 */
#define XHCI_HCS1_MAX_SLOTS(v) ((v) &0xff)
#define XHCI_HCS1_MAX_INTRS(v) (((v) >> 8) & 0x7ff)
#define XHCI_HCS1_MAX_PORTS(v) ((v) >> 24)
/* 5.3.4: the scratchpad count is split in two fields */
#define XHCI_HCS2_ERST_MAX(v) (((v) >> 4) & 0xf)
#define XHCI_HCS2_SCRATCHPADS(v) ((((v) >> 21) & 0x1f) << 5 | ((v) >> 27))
/* 5.3.6 */
#define XHCI_HCC1_AC64 (1u << 0)
#define XHCI_HCC1_CSZ (1u << 2)	      /* 64-byte contexts */
#define XHCI_HCC1_PPC (1u << 3)	      /* port power control */
#define XHCI_HCC1_XECP(v) ((v) >> 16) /* dwords from BAR0 */
/* 5.3.7, 5.3.8: both keep their low bits reserved */
#define XHCI_DBOFF_MASK 0xfffffffcu
#define XHCI_RTSOFF_MASK 0xffffffe0u

/* 5.4 operational registers (BAR0 + CAPLENGTH) */
#define XHCI_USBCMD 0x00
#define XHCI_USBSTS 0x04
#define XHCI_PAGESIZE 0x08
#define XHCI_DNCTRL 0x14
#define XHCI_CRCR_LO 0x18
#define XHCI_CRCR_HI 0x1c
#define XHCI_DCBAAP_LO 0x30
#define XHCI_DCBAAP_HI 0x34
#define XHCI_CONFIG 0x38
#define XHCI_PORTSC(port) (0x400 + 0x10 * ((port) -1)) /* ports count from 1 */

/* 5.4.1 USBCMD */
#define XHCI_CMD_RUN (1u << 0)
#define XHCI_CMD_HCRST (1u << 1)
#define XHCI_CMD_INTE (1u << 2)
#define XHCI_CMD_HSEE (1u << 3)

/* 5.4.2 USBSTS; the change bits are write-1-to-clear */
#define XHCI_STS_HCH (1u << 0)
#define XHCI_STS_HSE (1u << 2)
#define XHCI_STS_EINT (1u << 3)
#define XHCI_STS_PCD (1u << 4)
#define XHCI_STS_CNR (1u << 11)
#define XHCI_STS_HCE (1u << 12)

/* 5.4.5 CRCR */
#define XHCI_CRCR_RCS (1u << 0)
#define XHCI_CRCR_CRR (1u << 3)

/* 5.4.8 PORTSC */
#define XHCI_PORT_CCS (1u << 0)
#define XHCI_PORT_PED (1u << 1) /* write 1 disables the port */
#define XHCI_PORT_OCA (1u << 3)
#define XHCI_PORT_PR (1u << 4)
#define XHCI_PORT_PLS(v) (((v) >> 5) & 0xf)
#define XHCI_PORT_PLS_MASK (0xfu << 5)
#define XHCI_PORT_PP (1u << 9)
#define XHCI_PORT_SPEED(v) (((v) >> 10) & 0xf)
#define XHCI_PORT_SPEED_MASK (0xfu << 10)
#define XHCI_PORT_PIC_MASK (3u << 14)
#define XHCI_PORT_CSC (1u << 17)
#define XHCI_PORT_PEC (1u << 18)
#define XHCI_PORT_WRC (1u << 19)
#define XHCI_PORT_OCC (1u << 20)
#define XHCI_PORT_PRC (1u << 21)
#define XHCI_PORT_PLC (1u << 22)
#define XHCI_PORT_CEC (1u << 23)
#define XHCI_PORT_WAKE_MASK (7u << 25) /* WCE, WDE, WOE */
#define XHCI_PORT_DR (1u << 30)
#define XHCI_PORT_WPR (1u << 31)
#define XHCI_PORT_CHANGES                                                                          \
	(XHCI_PORT_CSC | XHCI_PORT_PEC | XHCI_PORT_WRC | XHCI_PORT_OCC | XHCI_PORT_PRC |           \
	 XHCI_PORT_PLC | XHCI_PORT_CEC)
/* 4.19.1.1: what a write must carry back so that nothing changes by accident */
#define XHCI_PORT_KEEP (XHCI_PORT_PP | XHCI_PORT_PIC_MASK | XHCI_PORT_WAKE_MASK)

/* 7.2.2.1.1 default protocol speed IDs (PORTSC.Port Speed, slot context) */
#define XHCI_SPEED_FULL 1
#define XHCI_SPEED_LOW 2
#define XHCI_SPEED_HIGH 3
#define XHCI_SPEED_SUPER 4

/* 5.5 runtime registers (BAR0 + RTSOFF); 5.5.2 interrupter n at 0x20 + 32 n */
#define XHCI_IR(n) (0x20 + 0x20 * (n))
#define XHCI_IMAN 0x00
#define XHCI_IMOD 0x04
#define XHCI_ERSTSZ 0x08
#define XHCI_ERSTBA_LO 0x10
#define XHCI_ERSTBA_HI 0x14
#define XHCI_ERDP_LO 0x18
#define XHCI_ERDP_HI 0x1c
#define XHCI_IMAN_IP (1u << 0) /* write 1 to clear */
#define XHCI_IMAN_IE (1u << 1)
#define XHCI_ERDP_EHB (1u << 3) /* event handler busy, write 1 to clear */

/* 5.6 doorbells (BAR0 + DBOFF): dword n for slot n, 0 for the controller */
#define XHCI_DB(slot) (4 * (slot))
#define XHCI_DB_COMMAND 0

/* 7 extended capabilities: ID 7:0, next 15:8 in dwords */
#define XHCI_XCAP_ID(v) ((v) &0xff)
#define XHCI_XCAP_NEXT(v) (((v) >> 8) & 0xff)
#define XHCI_XCAP_LEGACY 1
#define XHCI_XCAP_PROTOCOL 2
/* 7.1.1 USB legacy support */
#define XHCI_LEGACY_BIOS_OWNED (1u << 16)
#define XHCI_LEGACY_OS_OWNED (1u << 24)
/* 7.2 supported protocol: dword 0 major 31:24, dword 2 offset 7:0, count 15:8 */
#define XHCI_PROTO_MAJOR(v) ((v) >> 24)
#define XHCI_PROTO_MINOR(v) (((v) >> 16) & 0xff)
#define XHCI_PROTO_PORT_OFF(v) ((v) &0xff)
#define XHCI_PROTO_PORT_COUNT(v) (((v) >> 8) & 0xff)
#define XHCI_PROTO_SLOT_TYPE(v) ((v) &0x1f)

/* 6.4 a transfer request block: 16 bytes */
struct xhci_trb {
	uint64_t param;
	uint32_t status;
	uint32_t control;
};

_Static_assert(sizeof(struct xhci_trb) == 16, "a TRB is 16 bytes");

/* 6.4.6 TRB types, control bits 15:10 */
#define XHCI_TRB_TYPE(t) ((uint32_t) (t) << 10)
#define XHCI_TRB_TYPE_OF(c) (((c) >> 10) & 0x3f)
enum xhci_trb_type {
	XHCI_TRB_NORMAL = 1,
	XHCI_TRB_SETUP = 2,
	XHCI_TRB_DATA = 3,
	XHCI_TRB_STATUS = 4,
	XHCI_TRB_LINK = 6,
	XHCI_TRB_NOOP = 8,
	XHCI_TRB_ENABLE_SLOT = 9,
	XHCI_TRB_DISABLE_SLOT = 10,
	XHCI_TRB_ADDRESS_DEVICE = 11,
	XHCI_TRB_CONFIGURE_EP = 12,
	XHCI_TRB_EVALUATE_CTX = 13,
	XHCI_TRB_RESET_EP = 14,
	XHCI_TRB_STOP_EP = 15,
	XHCI_TRB_SET_TR_DEQ = 16,
	XHCI_TRB_RESET_DEVICE = 17,
	XHCI_TRB_NOOP_CMD = 23,
	XHCI_TRB_TRANSFER_EVENT = 32,
	XHCI_TRB_COMMAND_COMPLETION = 33,
	XHCI_TRB_PORT_STATUS_CHANGE = 34,
	XHCI_TRB_HOST_CONTROLLER = 37,
	XHCI_TRB_MFINDEX_WRAP = 39,
};

/* 6.4.1, 6.4.4.1: control dword bits */
#define XHCI_TRB_CYCLE (1u << 0)
#define XHCI_TRB_TC (1u << 1)  /* link: toggle cycle */
#define XHCI_TRB_ED (1u << 2)  /* transfer event: param is event data */
#define XHCI_TRB_ISP (1u << 2) /* interrupt on short packet */
#define XHCI_TRB_CH (1u << 4)  /* chain */
#define XHCI_TRB_IOC (1u << 5)
#define XHCI_TRB_IDT (1u << 6)	   /* immediate data (setup stage) */
#define XHCI_TRB_DIR_IN (1u << 16) /* data and status stages */
/* 6.4.1.2.1 setup stage: transfer type 17:16 */
#define XHCI_TRB_TRT_NONE (0u << 16)
#define XHCI_TRB_TRT_OUT (2u << 16)
#define XHCI_TRB_TRT_IN (3u << 16)
/* 6.4.1.1 normal TRB status: length 16:0, TD size 21:17, interrupter 31:22 */
#define XHCI_TRB_LEN(n) ((uint32_t) (n) &0x1ffff)
#define XHCI_TRB_TD_SIZE(n) (((uint32_t) (n) > 31 ? 31u : (uint32_t) (n)) << 17)
/* commands: slot id 31:24, endpoint id 20:16 */
#define XHCI_TRB_SLOT(s) ((uint32_t) (s) << 24)
#define XHCI_TRB_EP(dci) ((uint32_t) (dci) << 16)
#define XHCI_TRB_BSR (1u << 9) /* address device: block SET_ADDRESS */
#define XHCI_TRB_TSP (1u << 9) /* reset endpoint: transfer state preserve */
#define XHCI_TRB_DCS (1u << 0) /* set TR dequeue: dequeue cycle state, in param */

/* 6.4.2 events: completion code 31:24 of status, slot 31:24 and EP 20:16 of control */
#define XHCI_EV_CODE(s) ((s) >> 24)
#define XHCI_EV_LEN(s) ((s) &0xffffff)
#define XHCI_EV_SLOT(c) ((c) >> 24)
#define XHCI_EV_EP(c) (((c) >> 16) & 0x1f)
#define XHCI_EV_PORT(p) ((uint32_t) ((p) >> 24) & 0xff) /* port status change: in param */

/* 6.4.5 completion codes */
enum xhci_cc {
	XHCI_CC_SUCCESS = 1,
	XHCI_CC_DATA_BUFFER = 2,
	XHCI_CC_BABBLE = 3,
	XHCI_CC_TRANSACTION = 4,
	XHCI_CC_TRB = 5,
	XHCI_CC_STALL = 6,
	XHCI_CC_RESOURCE = 7,
	XHCI_CC_BANDWIDTH = 8,
	XHCI_CC_NO_SLOTS = 9,
	XHCI_CC_SLOT_NOT_ENABLED = 11,
	XHCI_CC_EP_NOT_ENABLED = 12,
	XHCI_CC_SHORT_PACKET = 13,
	XHCI_CC_RING_UNDERRUN = 14,
	XHCI_CC_RING_OVERRUN = 15,
	XHCI_CC_PARAMETER = 17,
	XHCI_CC_CONTEXT_STATE = 19,
	XHCI_CC_EVENT_RING_FULL = 21,
	XHCI_CC_COMMAND_ABORTED = 25,
	XHCI_CC_STOPPED = 26,
	XHCI_CC_STOPPED_LENGTH_INVALID = 27,
	XHCI_CC_STOPPED_SHORT_PACKET = 28,
};

/* 6.5 event ring segment table entry */
struct xhci_erst_entry {
	uint64_t base;
	uint32_t size; /* TRBs, 16-4096 */
	uint32_t reserved;
};

/*
 * 6.2 contexts, 32 bytes each (HCCPARAMS1.CSZ = 0): a device context is
 * the slot context and 31 endpoint contexts, indexed by device context
 * index (DCI: 1 for EP0, then 2 * endpoint number + 1 for IN); an input
 * context puts the input control context in front of those.
 */
#define XHCI_CTX_SIZE 32
#define XHCI_DEV_CTX_SIZE (32 * XHCI_CTX_SIZE)
#define XHCI_IN_CTX_SIZE (33 * XHCI_CTX_SIZE)

/* 6.2.5.1 input control context: dword 0 drop flags, dword 1 add flags */
#define XHCI_ICC_DROP 0
#define XHCI_ICC_ADD 1

/* 6.2.2 slot context */
#define XHCI_SLOT_ROUTE(r) ((uint32_t) (r) &0xfffff) /* dword 0 */
#define XHCI_SLOT_SPEED(s) ((uint32_t) (s) << 20)    /* dword 0 */
#define XHCI_SLOT_ENTRIES(n) ((uint32_t) (n) << 27)  /* dword 0: last valid DCI */
#define XHCI_SLOT_ENTRIES_MASK (0x1fu << 27)
#define XHCI_SLOT_PORT(p) ((uint32_t) (p) << 16) /* dword 1: root hub port */
#define XHCI_SLOT_STATE(v) ((v) >> 27)		 /* dword 3 */
#define XHCI_SLOT_ADDRESS(v) ((v) &0xff)	 /* dword 3 */

/* 6.2.3 endpoint context */
#define XHCI_EP_STATE(v) ((v) &7)		     /* dword 0 */
#define XHCI_EP_INTERVAL(i) ((uint32_t) (i) << 16)   /* dword 0 */
#define XHCI_EP_CERR(n) ((uint32_t) (n) << 1)	     /* dword 1 */
#define XHCI_EP_TYPE(t) ((uint32_t) (t) << 3)	     /* dword 1 */
#define XHCI_EP_MAX_BURST(b) ((uint32_t) (b) << 8)   /* dword 1 */
#define XHCI_EP_MAX_PACKET(p) ((uint32_t) (p) << 16) /* dword 1 */
#define XHCI_EP_MAX_PACKET_OF(v) ((v) >> 16)
#define XHCI_EP_AVG_TRB_LEN(n) ((uint32_t) (n))	      /* dword 4 */
#define XHCI_EP_MAX_ESIT_LO(n) ((uint32_t) (n) << 16) /* dword 4 */
/* 6.2.3 table 6-8: endpoint types */
enum xhci_ep_type {
	XHCI_EP_ISOCH_OUT = 1,
	XHCI_EP_BULK_OUT = 2,
	XHCI_EP_INTR_OUT = 3,
	XHCI_EP_CONTROL = 4,
	XHCI_EP_ISOCH_IN = 5,
	XHCI_EP_BULK_IN = 6,
	XHCI_EP_INTR_IN = 7,
};
/* 6.2.3 table 6-7: endpoint states */
enum xhci_ep_state {
	XHCI_EPS_DISABLED = 0,
	XHCI_EPS_RUNNING = 1,
	XHCI_EPS_HALTED = 2,
	XHCI_EPS_STOPPED = 3,
	XHCI_EPS_ERROR = 4,
};

/* USB 2.0 chapter 9: standard requests and descriptors (the setup packet: bulkhead/usb.h) */

#define USB_DIR_IN 0x80
#define USB_TYPE_STANDARD (0u << 5)
#define USB_TYPE_CLASS (1u << 5)
#define USB_RECIP_DEVICE 0
#define USB_RECIP_INTERFACE 1
#define USB_RECIP_ENDPOINT 2

#define USB_REQ_CLEAR_FEATURE 1
#define USB_REQ_GET_DESCRIPTOR 6
#define USB_REQ_SET_CONFIGURATION 9
#define USB_FEATURE_ENDPOINT_HALT 0

#define USB_DT_DEVICE 1
#define USB_DT_CONFIG 2
#define USB_DT_STRING 3
#define USB_DT_INTERFACE 4
#define USB_DT_ENDPOINT 5
#define USB_DT_SS_EP_COMP 0x30

/* 9.6.1 device descriptor: byte offsets */
#define USB_DEV_BCD_USB 2
#define USB_DEV_CLASS 4
#define USB_DEV_MAX_PACKET0 7
#define USB_DEV_VENDOR 8
#define USB_DEV_PRODUCT 10
#define USB_DEV_BCD_DEVICE 12
#define USB_DEV_MANUFACTURER 14
#define USB_DEV_PRODUCT_STR 15
#define USB_DEV_NUM_CONFIGS 17
#define USB_DEV_LEN 18
/* 9.6.3 configuration descriptor */
#define USB_CFG_TOTAL_LEN 2
#define USB_CFG_NUM_IFACES 4
#define USB_CFG_VALUE 5
#define USB_CFG_LEN 9
/* 9.6.5 interface descriptor */
#define USB_IF_NUMBER 2
#define USB_IF_ALT 3
#define USB_IF_NUM_EPS 4
#define USB_IF_CLASS 5
/* 9.6.6 endpoint descriptor */
#define USB_EP_ADDRESS 2
#define USB_EP_ATTRIBUTES 3
#define USB_EP_MAX_PACKET 4
#define USB_EP_INTERVAL 6
#define USB_EP_XFER_ISOC 1
#define USB_EP_XFER_BULK 2
#define USB_EP_XFER_INT 3

#endif
