/* SPDX-License-Identifier: MIT */
/*
 * ublk, the kernel's userspace block driver (Linux 6.0+,
 * Documentation/block/ublk.rst, include/uapi/linux/ublk_cmd.h): what core
 * (control commands on /dev/ublk-control) and bridges/block-ublk (I/O
 * commands on /dev/ublkcN) share.
 *
 * Debian 12's headers are 6.1's: the ioctl-encoded opcodes (6.4+; the only
 * ones a kernel without BLKDEV_UBLK_LEGACY_OPCODES accepts) are made here
 * from the command numbers, as the later header does.
 */
#ifndef BULKHEAD_UBLK_H
#define BULKHEAD_UBLK_H

#include <linux/ioctl.h>
#include <linux/ublk_cmd.h>
#include <stdint.h>

#ifndef UBLK_U_CMD_ADD_DEV
#define UBLK_U_CMD_GET_DEV_INFO _IOR('u', UBLK_CMD_GET_DEV_INFO, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_ADD_DEV _IOWR('u', UBLK_CMD_ADD_DEV, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_DEL_DEV _IOWR('u', UBLK_CMD_DEL_DEV, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_START_DEV _IOWR('u', UBLK_CMD_START_DEV, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_STOP_DEV _IOWR('u', UBLK_CMD_STOP_DEV, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_SET_PARAMS _IOWR('u', UBLK_CMD_SET_PARAMS, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_START_USER_RECOVERY                                                             \
	_IOWR('u', UBLK_CMD_START_USER_RECOVERY, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_END_USER_RECOVERY _IOWR('u', UBLK_CMD_END_USER_RECOVERY, struct ublksrv_ctrl_cmd)
#define UBLK_U_IO_FETCH_REQ _IOWR('u', UBLK_IO_FETCH_REQ, struct ublksrv_io_cmd)
#define UBLK_U_IO_COMMIT_AND_FETCH_REQ _IOWR('u', UBLK_IO_COMMIT_AND_FETCH_REQ, struct ublksrv_io_cmd)
#endif

/* the queue's I/O descriptors: /dev/ublkcN mmapped read-only at this offset per queue */
#define BH_UBLK_IOD_OFFSET(q)                                                                      \
	(UBLKSRV_CMD_BUF_OFFSET +                                                                  \
	 (uint64_t)(q) * UBLK_MAX_QUEUE_DEPTH * sizeof(struct ublksrv_io_desc))

/*
 * BH_OP_UBLK, bridge -> core, in a bh_session_info:
 *   flags = attrs << 8 (open; attrs: enum bh_ublk_attr): size = bytes,
 *     block_size, cost = bytes per request at most, max_sessions = queue
 *     depth, id = queues; core adds /dev/ublkbN (or starts its user recovery when
 *     it exists from the bridge's previous life) and answers with the fd of
 *     /dev/ublkcN, name = "ublkbN", flags = BH_UBLK_RECOVERING or 0.
 *     -EAGAIN: the previous server is not gone yet; ask again shortly.
 *   flags BH_UBLK_START: every queue has fetched its requests; core starts
 *     the device (or ends its recovery) without waiting for it.
 */
#define BH_UBLK_START 1u
#define BH_UBLK_RECOVERING 2u

enum bh_ublk_attr {
	BH_UBLK_WRITABLE = 1u << 0,
	BH_UBLK_CAN_TRIM = 1u << 1,
	BH_UBLK_CAN_FLUSH = 1u << 2,
};

#endif
