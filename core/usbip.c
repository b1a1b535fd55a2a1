// SPDX-License-Identifier: MIT
/*
 * vhci-hcd ports for the usb-usbip bridge. Attaching a USB/IP device to the
 * kernel is root's (the sysfs attach file), and a component cannot open
 * files or sockets (seccomp), so core does it, as it connects /dev/nbdN:
 * it makes an AF_UNIX stream socket pair, writes "PORT FD DEVID SPEED" to
 * vhci_hcd.0/attach (drivers/usb/usbip/vhci_sysfs.c: the kernel looks FD
 * up in the writer's fd table and keeps its own reference to the socket),
 * closes its end and hands the other to the bridge. From then on only
 * USB/IP URB messages flow (Documentation/usb/usbip_protocol.rst).
 *
 * The kernel lets the port go by itself when the bridge's end closes (its
 * receive thread sees the hang-up and disconnects the device). Core also
 * detaches the port when the bridge ends or asks for a new one, so a port
 * never stays taken by a bridge that is gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pci.h"
#include "usbip.h"

/* drivers/usb/usbip/vhci.h: a port nobody uses (VDEV_ST_NULL) */
#define VDEV_ST_NULL 4
#define USB_SPEED_SUPER 5

static int ports[BH_MAX_COMPONENTS]; /* the component's vhci port + 1, or 0 */

static int sysfs_write(const char *file, const char *text)
{
	char path[96];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", BH_VHCI_DIR, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* the first free port on the hub for speed: "hs" for low/full/high, "ss" for super */
static int free_port(int speed)
{
	const char *hub = speed == USB_SPEED_SUPER ? "ss" : "hs";
	char line[160], h[8];
	unsigned int port, sta;
	int found = -ENOSPC;
	FILE *f = fopen(BH_VHCI_DIR "/status", "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		/* "hs  0000 004 000 00000000 000000 0-0"; the first line is the header */
		if (sscanf(line, "%7s %u %u", h, &port, &sta) == 3 && !strcmp(h, hub) &&
		    sta == VDEV_ST_NULL) {
			found = (int) port;
			break;
		}
	}
	fclose(f);
	return found;
}

void bh_usbip_detach(const struct bh_component *c)
{
	char text[16];
	int rc;

	if (c->index < 0 || c->index >= BH_MAX_COMPONENTS || !ports[c->index])
		return;
	snprintf(text, sizeof(text), "%d", ports[c->index] - 1);
	rc = sysfs_write("detach", text);
	/* EINVAL: the kernel had let it go already (the bridge's socket closed) */
	if (rc == 0)
		bh_log("vhci port %d detached from \"%s\"", ports[c->index] - 1, c->cfg->name);
	ports[c->index] = 0;
}

static void usbip_attach(struct bh_component *c, const struct bh_session_info *in,
			 struct bh_msg *reply, int *fd);

void bh_usbip_request(struct bh_core_state *core, struct bh_component *c,
		      const struct bh_session_info *in, struct bh_msg *reply, int *fd)
{
	(void) core;
	usbip_attach(c, in, reply, fd);
	/*
	 * it could not heartbeat while it waited on us (loading vhci-hcd takes
	 * seconds on a slow machine)
	 */
	c->last_heartbeat_ns = bh_now_ns();
}

static void usbip_attach(struct bh_component *c, const struct bh_session_info *in,
			 struct bh_msg *reply, int *fd)
{
	unsigned int speed = in->block_size;
	char text[64];
	int sv[2], port, rc;

	if (!c->cfg->usbip) {
		bh_refuse(c, reply, EACCES,
			  "\"%s\" may not attach USB devices to the kernel: add "
			  "'usbip = yes' to its [component] section",
			  c->cfg->name);
		return;
	}
	if (c->index < 0 || c->index >= BH_MAX_COMPONENTS)
		return;
	if (speed < 1 || speed > USB_SPEED_SUPER || speed == 4) {
		bh_refuse(c, reply, EINVAL,
			  "usbip: speed %u: give 1 (low), 2 (full), 3 (high) "
			  "or 5 (super), as the kernel's enum usb_device_speed",
			  speed);
		return;
	}
	bh_usbip_detach(c);
	if (access(BH_VHCI_DIR "/attach", W_OK) != 0)
		bh_modprobe("vhci-hcd");
	port = free_port((int) speed);
	if (port < 0) {
		bh_refuse(c, reply, -port,
			  port == -ENOSPC
			      ? "usbip: every vhci-hcd port for this speed is taken "
				"(see " BH_VHCI_DIR "/status; usbip port, usbip detach)"
			      : "usbip: %s/status: %s (modprobe vhci-hcd; is sysfs mounted?)",
			  BH_VHCI_DIR, strerror(-port));
		return;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		bh_refuse(c, reply, errno, "socketpair: %s", strerror(errno));
		return;
	}
	/* devid: the kernel only echoes it in its messages; bus 1, the component's index */
	snprintf(text, sizeof(text), "%d %d %u %u", port, sv[0], 0x10000u | (unsigned) c->index,
		 speed);
	rc = sysfs_write("attach", text);
	close(sv[0]); /* the kernel holds its end now, or refused it */
	if (rc < 0) {
		close(sv[1]);
		bh_refuse(c, reply, -rc, "usbip: attach \"%s\" to %s/attach: %s", text, BH_VHCI_DIR,
			  strerror(-rc));
		return;
	}
	ports[c->index] = port + 1;
	*fd = sv[1];
	snprintf(reply->u.session.name, sizeof(reply->u.session.name), "vhci_hcd.0 port %d", port);
	bh_log("vhci port %d attached for \"%s\" (speed %u)", port, c->cfg->name, speed);
}
