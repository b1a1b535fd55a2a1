// SPDX-License-Identifier: MIT
/*
 * /dev/nbdN endpoints, through the nbd driver's generic-netlink interface
 * (linux/nbd-netlink.h). Unlike the old ioctl interface (NBD_DO_IT blocks
 * the caller for the connection's whole life) a netlink connect returns at
 * once: the kernel keeps its end of the socket and serves the device from
 * its own workers, so core stays single-threaded and never blocks.
 *
 * The device is connected with a dead-connection timeout: if the bridge
 * dies, the kernel holds requests that long instead of failing them, and a
 * restarted bridge plugs its new socket into the same device (RECONFIGURE)
 * so mounted filesystems above it never notice; the requests the dead
 * bridge held time out (NBD_REQUEST_TIMEOUT_S) and are requeued to it.
 */
#include <errno.h>
#include <linux/nbd-netlink.h>
#include <linux/nbd.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "nbd.h"
#include "pci.h"

/* how long the kernel waits for a restarted bridge before failing I/O */
#define NBD_DEAD_CONN_TIMEOUT_S 120
/*
 * A request unanswered this long is requeued by the kernel (to the next
 * socket plugged in); that is how the requests a dead bridge held get
 * issued again. A live bridge whose request is this slow sees its socket
 * shut down, exits, and is restarted like a dead one: a driver restart
 * holds the bridge's requests 2.5 s (kill to new session, load average 8
 * under TCG), so 15 s leaves room for a host several times as loaded,
 * and each bridge death stalls its requests at most that long.
 */
#define NBD_REQUEST_TIMEOUT_S 15
/* what the kernel may send: the bridge answers trim even if the disk cannot */
#define NBD_SERVER_FLAGS (NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_TRIM)

static struct nl_sock *genl_open(int *family, char *err, size_t err_len)
{
	struct nl_sock *nl = nl_socket_alloc();
	int rc;

	if (!nl) {
		snprintf(err, err_len, "nbd: out of memory for a netlink socket");
		return NULL;
	}
	rc = genl_connect(nl);
	if (rc < 0) {
		snprintf(err, err_len, "nbd: generic netlink: %s", nl_geterror(rc));
		nl_socket_free(nl);
		return NULL;
	}
	*family = genl_ctrl_resolve(nl, NBD_GENL_FAMILY_NAME);
	if (*family < 0) {
		/* the family appears when the module is loaded */
		bh_modprobe("nbd");
		*family = genl_ctrl_resolve(nl, NBD_GENL_FAMILY_NAME);
	}
	if (*family < 0) {
		snprintf(err, err_len, "nbd: the kernel has no nbd netlink interface (%s): "
				       "modprobe nbd, or build the kernel with CONFIG_BLK_DEV_NBD",
			 nl_geterror(*family));
		nl_socket_free(nl);
		return NULL;
	}
	return nl;
}

/* one request: index, the socket, and for a connect the geometry */
static int nbd_request(struct nl_sock *nl, int family, uint8_t cmd, int index, uint64_t size,
		       uint32_t block_size, int sock)
{
	struct nl_msg *msg = nlmsg_alloc();
	struct nlattr *socks, *item;
	int rc = -NLE_NOMEM;

	if (!msg)
		return rc;
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, 0, cmd, 0))
		goto out;
	if (nla_put_u32(msg, NBD_ATTR_INDEX, (uint32_t)index) < 0)
		goto out;
	if (cmd == NBD_CMD_CONNECT &&
	    (nla_put_u64(msg, NBD_ATTR_SIZE_BYTES, size) < 0 ||
	     nla_put_u64(msg, NBD_ATTR_BLOCK_SIZE_BYTES, block_size) < 0 ||
	     nla_put_u64(msg, NBD_ATTR_SERVER_FLAGS, NBD_SERVER_FLAGS) < 0 ||
	     nla_put_u64(msg, NBD_ATTR_DEAD_CONN_TIMEOUT, NBD_DEAD_CONN_TIMEOUT_S) < 0 ||
	     nla_put_u64(msg, NBD_ATTR_TIMEOUT, NBD_REQUEST_TIMEOUT_S) < 0))
		goto out;
	if (sock < 0)
		goto send; /* a disconnect names only the device */
	socks = nla_nest_start(msg, NBD_ATTR_SOCKETS);
	if (!socks)
		goto out;
	item = nla_nest_start(msg, NBD_SOCK_ITEM);
	if (!item || nla_put_u32(msg, NBD_SOCK_FD, (uint32_t)sock) < 0)
		goto out;
	nla_nest_end(msg, item);
	nla_nest_end(msg, socks);
send:
	rc = nl_send_auto(nl, msg);
	if (rc >= 0)
		rc = nl_wait_for_ack(nl);
out:
	nlmsg_free(msg);
	return rc;
}

int bh_nbd_connect(int index, uint64_t size, uint32_t block_size, int sock, char *err,
		   size_t err_len)
{
	struct nl_sock *nl;
	int family, rc;

	if (index < 0 || index > 255) {
		snprintf(err, err_len, "nbd: device index %d out of range 0-255", index);
		return -EINVAL;
	}
	nl = genl_open(&family, err, err_len);
	if (!nl)
		return -ENOTSUP;
	rc = nbd_request(nl, family, NBD_CMD_CONNECT, index, size, block_size, sock);
	if (rc == -NLE_BUSY) {
		/* still connected to a bridge that died: plug the new socket in its place */
		rc = nbd_request(nl, family, NBD_CMD_RECONFIGURE, index, 0, 0, sock);
		if (rc < 0) {
			snprintf(err, err_len, "/dev/nbd%d is in use by someone else (%s): "
					       "disconnect it (nbd-client -d /dev/nbd%d) or "
					       "pick another 'nbd = N'",
				 index, nl_geterror(rc), index);
			nl_socket_free(nl);
			return -EBUSY;
		}
		nl_socket_free(nl);
		return 0;
	}
	if (rc < 0) {
		snprintf(err, err_len, "/dev/nbd%d: connect refused by the kernel: %s", index,
			 nl_geterror(rc));
		nl_socket_free(nl);
		return -EIO;
	}
	nl_socket_free(nl);
	return 0;
}

void bh_nbd_disconnect(int index)
{
	char err[128];
	int family;
	struct nl_sock *nl = genl_open(&family, err, sizeof(err));

	if (!nl)
		return;
	nbd_request(nl, family, NBD_CMD_DISCONNECT, index, 0, 0, -1);
	nl_socket_free(nl);
}
