/* SPDX-License-Identifier: MIT */
/*
 * 16550A UART registers, from the National (now TI) PC16550D datasheet
 * (SNLS378): Table 2 (register summary) and section 8 (registers). All are
 * 8 bits wide, at offsets 0-7 of the I/O BAR; offsets 0 and 1 are the
 * divisor latch while LCR.DLAB is set.
 */
#ifndef SERIAL16550_REGS_H
#define SERIAL16550_REGS_H

#define UART_RBR 0 /* read: receiver buffer (8.4: LSR.DR says it holds a byte) */
#define UART_THR 0 /* write: transmitter holding register */
#define UART_DLL 0 /* DLAB = 1: divisor latch, low byte (8.3) */
#define UART_IER 1 /* interrupt enable (8.7) */
#define UART_DLM 1 /* DLAB = 1: divisor latch, high byte */
#define UART_IIR 2 /* read: interrupt identification (8.6) */
#define UART_FCR 2 /* write: FIFO control (8.5) */
#define UART_LCR 3 /* line control (8.1) */
#define UART_MCR 4 /* modem control (8.8) */
#define UART_LSR 5 /* line status (8.4) */
#define UART_MSR 6 /* modem status (8.9) */
#define UART_SCR 7 /* scratch (8.10): no function but to hold a byte */
#define UART_REGS 8

/* 8.7 IER */
#define IER_RDA 0x01  /* received data available, and the FIFO's character timeout */
#define IER_THRE 0x02 /* transmitter holding register empty */
#define IER_RLS 0x04  /* receiver line status: overrun, parity, framing, break */
#define IER_MS 0x08   /* modem status */

/* 8.6 IIR: bit 0 clear while an interrupt is pending; bits 1-3 say which */
#define IIR_NO_INT 0x01
#define IIR_ID_MASK 0x0e
#define IIR_RLS 0x06	   /* priority 1: read LSR */
#define IIR_RDA 0x04	   /* priority 2: read RBR down to the trigger level */
#define IIR_TIMEOUT 0x0c   /* priority 2: bytes sat in the FIFO for 4 character times */
#define IIR_THRE 0x02	   /* priority 3: read IIR or write THR */
#define IIR_MS 0x00	   /* priority 4: read MSR */
#define IIR_FIFO_MASK 0xc0 /* both set when FCR.0 is on */

/* 8.5 FCR */
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define FCR_CLEAR_TX 0x04
#define FCR_TRIGGER_1 0x00 /* receive trigger level, bits 6-7 */
#define FCR_TRIGGER_4 0x40
#define FCR_TRIGGER_8 0x80
#define FCR_TRIGGER_14 0xc0
#define UART_FIFO 16 /* bytes in each FIFO */

/* 8.1 LCR */
#define LCR_WLS_8 0x03 /* word length 8 bits */
#define LCR_STB 0x04   /* 2 stop bits (1.5 with 5-bit words) */
#define LCR_PEN 0x08   /* parity enable */
#define LCR_EPS 0x10   /* even parity */
#define LCR_BREAK 0x40
#define LCR_DLAB 0x80 /* divisor latch access */

/* 8.8 MCR */
#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT2 0x08 /* gates the interrupt line on PC-style boards */
#define MCR_LOOP 0x10

/* 8.4 LSR */
#define LSR_DR 0x01	  /* data ready */
#define LSR_OE 0x02	  /* overrun: a character was lost */
#define LSR_PE 0x04	  /* parity error (of the character at the FIFO's top) */
#define LSR_FE 0x08	  /* framing error */
#define LSR_BI 0x10	  /* break */
#define LSR_THRE 0x20	  /* the transmit FIFO is empty */
#define LSR_TEMT 0x40	  /* ... and so is the shift register */
#define LSR_FIFO_ERR 0x80 /* some character in the FIFO has an error */

/* 8.9 MSR */
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

#endif
