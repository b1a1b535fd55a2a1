// SPDX-License-Identifier: MIT
/* core/output.c: the 'output' key, and the file core opens for a bridge. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bulkhead/msg.h"
#include "config.h"
#include "core.h"
#include "output.h"

static void config_key(void **state)
{
	static struct bh_config cfg;
	char err[256];

	(void) state;
	assert_int_equal(bh_config_parse_string("[component \"png\"]\nexec = /bin/true\n"
						"output = /tmp/screen.png\n",
						"test.conf", &cfg, err, sizeof(err)),
			 0);
	assert_string_equal(cfg.comp[0].output, "/tmp/screen.png");
	assert_int_equal(bh_config_parse_string("[component \"png\"]\nexec = /bin/true\n"
						"output = screen.png\n",
						"test.conf", &cfg, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "test.conf:3: output = 'screen.png': an absolute path"));
}

static void grant(void **state)
{
	static struct bh_component_config cc = {.name = "png"};
	static struct bh_component c = {.cfg = &cc};
	char dir[] = "/tmp/bh-output-XXXXXX", path[64], link[80];
	struct bh_msg reply;
	struct stat st;
	int fd = -1;

	(void) state;
	assert_non_null(mkdtemp(dir));
	/* no key: refused, with the key to add */
	bh_msg_init(&reply, BH_OP_OUTPUT, 1);
	bh_output_grant(&c, &reply, &fd);
	assert_int_equal(reply.status, -EACCES);
	assert_int_equal(fd, -1);
	assert_non_null(strstr(reply.error, "output = PATH"));
	/* the file, write-only, emptied on each request */
	snprintf(path, sizeof(path), "%s/screen.png", dir);
	snprintf(cc.output, sizeof(cc.output), "%s", path);
	bh_msg_init(&reply, BH_OP_OUTPUT, 2);
	bh_output_grant(&c, &reply, &fd);
	assert_true(fd >= 0);
	assert_int_equal(reply.status, 0);
	assert_int_equal(write(fd, "0123456789", 10), 10);
	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_WRONLY);
	close(fd);
	bh_output_grant(&c, &reply, &fd);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 0);
	close(fd);
	/* a symlink in its place is not followed */
	unlink(path);
	snprintf(link, sizeof(link), "%s/elsewhere", dir);
	assert_int_equal(symlink(link, path), 0);
	fd = -1;
	bh_msg_init(&reply, BH_OP_OUTPUT, 3);
	bh_output_grant(&c, &reply, &fd);
	assert_int_equal(fd, -1);
	assert_int_equal(reply.status, -ELOOP);
	assert_int_equal(access(link, F_OK), -1);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(config_key),
	    cmocka_unit_test(grant),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
