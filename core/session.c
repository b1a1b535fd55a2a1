// SPDX-License-Identifier: MIT
/*
 * Sessions between components. A server announces a service it provides
 * and gets a channel; a client asks for a session to a service, core finds
 * the server its config routes that service to, makes a socket pair, and
 * hands one end to each: the client in the reply, the server over its
 * channel. From then on the two talk directly; core is not on the data path.
 *
 * Host endpoints for bridges are capabilities too: core creates the TAP
 * interface the config names and hands over its fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bulkhead/msg.h"
#include "core.h"
#include "nbd.h"

static int provided(const struct bh_component_config *cc, const char *service)
{
	for (int k = 0; k < cc->nprovides; k++)
		if (strncmp(cc->provides[k], service, BH_SERVICE_MAX) == 0)
			return k;
	return -1;
}

void bh_session_announce(struct bh_core_state *core, struct bh_component *c,
			 const struct bh_session_info *in, struct bh_msg *reply, int *fd)
{
	char service[BH_SERVICE_MAX];
	int sv[2], k;

	snprintf(service, sizeof(service), "%.*s", BH_SERVICE_MAX - 1, in->service);
	k = provided(c->cfg, service);
	if (k < 0) {
		bh_refuse(c, reply, EACCES, "\"%s\" may not announce '%s': add 'provides = %s' to "
					    "its [component] section",
			  c->cfg->name, service, service);
		return;
	}
	if (!in->max_sessions || in->max_sessions > BH_MAX_SESSIONS || in->cost > BH_SESSION_COST_MAX) {
		bh_refuse(c, reply, EINVAL, "announce '%s': %u sessions at once costing %llu bytes "
					    "each; give 1 to %d sessions of at most %llu GiB",
			  service, in->max_sessions, (unsigned long long)in->cost, BH_MAX_SESSIONS,
			  BH_SESSION_COST_MAX >> 30);
		return;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		bh_refuse(c, reply, errno, "socketpair: %s", strerror(errno));
		return;
	}
	/* both ends: core never blocks, and the server polls its channel */
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	if (c->channel[k] >= 0) {
		/* what waited on the old channel went with it */
		close(c->channel[k]);
		bh_account_service_reset(core, c, k);
	}
	c->channel[k] = sv[0];
	c->session_cost[k] = in->cost;
	c->session_max[k] = in->max_sessions;
	*fd = sv[1];
	bh_log("\"%s\" announced '%s': up to %u session(s), each costing its client %llu KiB",
	       c->cfg->name, service, in->max_sessions, (unsigned long long)(in->cost + 1023) >> 10);
}

void bh_session_open(struct bh_core_state *core, struct bh_component *c,
		     const struct bh_session_info *in, struct bh_msg *reply, int *fd)
{
	const struct bh_route *route = NULL;
	struct bh_component *server = NULL;
	struct bh_session_rec *rec;
	char service[BH_SERVICE_MAX];
	struct bh_msg m;
	int sv[2], k, rc;

	snprintf(service, sizeof(service), "%.*s", BH_SERVICE_MAX - 1, in->service);
	for (int i = 0; i < c->cfg->nroutes; i++)
		if (strcmp(c->cfg->routes[i].service, service) == 0)
			route = &c->cfg->routes[i];
	if (!route) {
		bh_refuse(c, reply, EACCES, "\"%s\" has no route for '%s': add 'session = %s "
					    "SERVER' to its [component] section",
			  c->cfg->name, service, service);
		return;
	}
	for (int i = 0; i < core->ncomp; i++)
		if (strcmp(core->comp[i].cfg->name, route->server) == 0)
			server = &core->comp[i];
	k = server ? provided(server->cfg, service) : -1;
	if (!server || k < 0 || server->state != BH_RUNNING || server->channel[k] < 0) {
		bh_refuse(c, reply, EAGAIN, "\"%s\" has not announced '%s' (yet): try again",
			  route->server, service);
		return;
	}
	/*
	 * a server that died and is not reaped yet: its channel hangs up. Say
	 * "try again" now, rather than route to it or count its old sessions
	 */
	struct pollfd hup = { .fd = server->channel[k], .events = 0 };
	if (poll(&hup, 1, 0) == 1 && (hup.revents & (POLLHUP | POLLERR))) {
		bh_refuse(c, reply, EAGAIN, "\"%s\" is restarting: try again", route->server);
		return;
	}
	rec = bh_account_open(core, c, server, k, reply);
	if (!rec)
		return;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		bh_account_cancel(core, rec);
		bh_refuse(c, reply, errno, "socketpair: %s", strerror(errno));
		return;
	}
	bh_msg_init(&m, BH_OP_SESSION, ++server->sessions);
	snprintf(m.u.session.service, sizeof(m.u.session.service), "%s", service);
	snprintf(m.u.session.client, sizeof(m.u.session.client), "%s", c->cfg->name);
	/* from the config, not from the client: the server may trust it */
	snprintf(m.u.session.name, sizeof(m.u.session.name), "%s", route->arg);
	m.u.session.id = rec->id;
	rc = bh_msg_send(server->channel[k], &m, &sv[0], 1);
	close(sv[0]);
	if (rc < 0) {
		close(sv[1]);
		bh_account_cancel(core, rec);
		bh_refuse(c, reply, EAGAIN, "\"%s\" is not taking '%s' sessions (%s): try again",
			  route->server, service, strerror(-rc));
		return;
	}
	*fd = sv[1];
	c->sessions++;
	/* a client that opens sessions in a loop is logged like a refusal: once, with a count */
	if (c->session_failures < 2)
		bh_log("session '%s': \"%s\" -> \"%s\" (session %u)", service, c->cfg->name,
		       route->server, rec->id);
}

static int tap_create(const char *name, char *err, size_t err_len)
{
	struct ifreq ifr;
	int fd, s;

	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, err_len, "/dev/net/tun: %s (modprobe tun)", strerror(errno));
		return -errno;
	}
	memset(&ifr, 0, sizeof(ifr));
	/*
	 * Every frame carries a struct virtio_net_hdr (10 bytes) in front, so
	 * Linux may hand the bridge 64 KiB TCP segments and partial checksums
	 * for the NIC to finish (nic.h: TSO), and take verified rx checksums
	 */
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		snprintf(err, err_len, "TAP %s: %s", name, strerror(errno));
		close(fd);
		return -EIO;
	}
	int hdr = 10; /* sizeof(struct virtio_net_hdr) */
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0 ||
	    ioctl(fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)) < 0) {
		snprintf(err, err_len, "TAP %s: offloads: %s", name, strerror(errno));
		close(fd);
		return -EIO;
	}
	/* up, so Linux can use it the moment the bridge serves it */
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	if (s >= 0)
		close(s);
	return fd;
}

void bh_session_tap(struct bh_core_state *core, struct bh_component *c, struct bh_msg *reply,
		    int *fd)
{
	char err[160];

	(void)core;
	if (!c->cfg->tap[0]) {
		bh_refuse(c, reply, EACCES, "\"%s\" has no TAP interface: add 'tap = NAME' to its "
					    "[component] section",
			  c->cfg->name);
		return;
	}
	if (c->tap_fd < 0) {
		c->tap_fd = tap_create(c->cfg->tap, err, sizeof(err));
		if (c->tap_fd < 0) {
			bh_refuse(c, reply, -c->tap_fd, "%s", err);
			c->tap_fd = -1;
			return;
		}
		bh_log("TAP interface %s created for \"%s\"", c->cfg->tap, c->cfg->name);
	}
	*fd = fcntl(c->tap_fd, F_DUPFD_CLOEXEC, 0);
	if (*fd < 0)
		bh_refuse(c, reply, errno, "dup: %s", strerror(errno));
	snprintf(reply->u.session.name, sizeof(reply->u.session.name), "%s", c->cfg->tap);
}

void bh_session_nbd(struct bh_core_state *core, struct bh_component *c,
		    const struct bh_session_info *in, struct bh_msg *reply, int *fd)
{
	char err[200];
	int sv[2], rc;

	(void)core;
	if (c->cfg->nbd < 0) {
		bh_refuse(c, reply, EACCES, "\"%s\" has no NBD device: add 'nbd = N' to its "
					    "[component] section",
			  c->cfg->name);
		return;
	}
	if (!in->size || !in->block_size || in->block_size > 65536 ||
	    in->block_size & (in->block_size - 1) || in->size % in->block_size) {
		bh_refuse(c, reply, EINVAL, "nbd: size %llu and block size %u: the block size is a "
					    "power of two up to 64 KiB and divides the size",
			  (unsigned long long)in->size, in->block_size);
		return;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		bh_refuse(c, reply, errno, "socketpair: %s", strerror(errno));
		return;
	}
	rc = bh_nbd_connect(c->cfg->nbd, in->size, in->block_size, sv[0], err, sizeof(err));
	close(sv[0]); /* the kernel holds its end now */
	if (rc < 0) {
		close(sv[1]);
		bh_refuse(c, reply, -rc, "%s", err);
		return;
	}
	*fd = sv[1];
	snprintf(reply->u.session.name, sizeof(reply->u.session.name), "nbd%d", c->cfg->nbd);
	bh_log("/dev/nbd%d connected for \"%s\": %llu bytes", c->cfg->nbd, c->cfg->name,
	       (unsigned long long)in->size);
}

void bh_session_revoke(struct bh_core_state *core, struct bh_component *c)
{
	bh_account_ended(core, c);
	for (int k = 0; k < BH_MAX_SERVICES; k++) {
		if (c->channel[k] >= 0)
			close(c->channel[k]);
		c->channel[k] = -1;
	}
}
