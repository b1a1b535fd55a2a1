// SPDX-License-Identifier: MIT
/* core/listen.c: the 'listen' key, and the socket core makes for a bridge. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bulkhead/msg.h"
#include "config.h"
#include "core.h"
#include "listen.h"

static void config_key(void **state)
{
	static struct bh_config cfg;
	char err[256];

	(void) state;
	assert_int_equal(bh_config_parse_string("[component \"vnc\"]\nexec = /bin/true\n"
						"listen = 127.0.0.1:5900\n",
						"test.conf", &cfg, err, sizeof(err)),
			 0);
	assert_string_equal(cfg.comp[0].listen, "127.0.0.1:5900");
	static const char *bad[] = {"5900", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
				    "localhost:5900", "127.0.0.1:59x", ":5900"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char conf[128];
		snprintf(conf, sizeof(conf), "[component \"vnc\"]\nexec = /bin/true\nlisten = %s\n",
			 bad[i]);
		assert_int_equal(bh_config_parse_string(conf, "test.conf", &cfg, err, sizeof(err)),
				 -EINVAL);
		assert_non_null(strstr(err, "an IPv4 address and a port"));
	}
}

static void grant(void **state)
{
	static struct bh_component_config cc = {.name = "vnc"};
	static struct bh_component c = {.cfg = &cc};
	struct bh_msg reply;
	int fd = -1, fd2 = -1, type = 0;
	socklen_t len = sizeof(type);

	(void) state;
	/* no key: refused, with the key to add */
	bh_msg_init(&reply, BH_OP_LISTEN, 1);
	bh_listen_request(&c, &reply, &fd);
	assert_int_equal(fd, -1);
	snprintf(cc.listen, sizeof(cc.listen), "127.0.0.1:0");
	/* port 0 never passes the config; the request checks again */
	bh_listen_request(&c, &reply, &fd);
	assert_int_equal(fd, -1);
	snprintf(cc.listen, sizeof(cc.listen), "127.0.0.1:47123");
	bh_msg_init(&reply, BH_OP_LISTEN, 2);
	bh_listen_request(&c, &reply, &fd);
	assert_true(fd >= 0);
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &type, &len), 0);
	assert_int_equal(type, 1);
	assert_string_equal(reply.u.session.name, "127.0.0.1:47123");
	/* a second request (a restarted bridge): the same socket again */
	bh_listen_request(&c, &reply, &fd2);
	assert_true(fd2 >= 0 && fd2 != fd);
	close(fd);
	close(fd2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(config_key),
	    cmocka_unit_test(grant),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
