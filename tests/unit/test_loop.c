// SPDX-License-Identifier: MIT
/* The component epoll loop, driven by eventfds. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "bulkhead/bulkhead.h"

#define NFD 4

struct fixture {
	struct bh_loop loop;
	int efd[NFD];
	int calls[NFD];
	int order[8]; /* which watch ran, in order */
	int ncalls;
	int action; /* what a callback does besides counting */
};

enum action {
	JUST_COUNT,
	DRAIN,	    /* read the eventfd so it is not ready any more */
	DEL_OTHERS, /* delete every other watch, then drain */
	DEL_SELF,   /* delete its own watch without draining */
	STOP,	    /* bh_loop_stop without draining */
};

static struct fixture *fixture_of;

static int loop_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || bh_loop_init(&f->loop) < 0) {
		free(f);
		return -1;
	}
	for (int i = 0; i < NFD; i++) {
		f->efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (f->efd[i] < 0)
			return -1;
	}
	fixture_of = f;
	*state = f;
	return 0;
}

static int loop_teardown(void **state)
{
	struct fixture *f = *state;

	bh_loop_fini(&f->loop);
	for (int i = 0; i < NFD; i++)
		close(f->efd[i]);
	free(f);
	fixture_of = NULL;
	return 0;
}

static void signal_fd(int fd)
{
	uint64_t one = 1;

	assert_int_equal(write(fd, &one, sizeof(one)), sizeof(one));
}

static void drain(int fd)
{
	uint64_t v;

	assert_int_equal(read(fd, &v, sizeof(v)), sizeof(v));
}

static void on_ready(void *arg, int fd, uint32_t events)
{
	struct fixture *f = fixture_of;
	int i = (int)(intptr_t)arg;

	assert_int_equal(fd, f->efd[i]);
	assert_true(events & EPOLLIN);
	f->calls[i]++;
	if (f->ncalls < 8)
		f->order[f->ncalls] = i;
	f->ncalls++;
	switch (f->action) {
	case JUST_COUNT:
		break;
	case DRAIN:
		drain(fd);
		break;
	case DEL_OTHERS:
		for (int k = 0; k < NFD; k++)
			if (k != i)
				assert_int_equal(bh_loop_del(&f->loop, f->efd[k]), 0);
		drain(fd);
		break;
	case DEL_SELF:
		assert_int_equal(bh_loop_del(&f->loop, fd), 0);
		break;
	case STOP:
		bh_loop_stop(&f->loop);
		break;
	}
}

static void add_all(struct fixture *f)
{
	for (int i = 0; i < NFD; i++)
		assert_int_equal(bh_loop_add(&f->loop, f->efd[i], on_ready, (void *)(intptr_t)i),
				 0);
}

static uint64_t now_ms(void)
{
	return bh_now_ns() / 1000000;
}

static void test_callbacks_run(void **state)
{
	struct fixture *f = *state;

	add_all(f);
	f->action = DRAIN;
	signal_fd(f->efd[1]);
	signal_fd(f->efd[3]);
	assert_int_equal(bh_loop_run(&f->loop, 50), 0);
	assert_int_equal(f->calls[0], 0);
	assert_int_equal(f->calls[1], 1);
	assert_int_equal(f->calls[2], 0);
	assert_int_equal(f->calls[3], 1);

	/* a second round on the same loop */
	signal_fd(f->efd[0]);
	assert_int_equal(bh_loop_run(&f->loop, 50), 0);
	assert_int_equal(f->calls[0], 1);
	assert_int_equal(f->ncalls, 3);
}

static void test_timeout(void **state)
{
	struct fixture *f = *state;
	uint64_t t0;

	add_all(f);
	t0 = now_ms();
	assert_int_equal(bh_loop_run(&f->loop, 30), 0);
	assert_true(now_ms() - t0 >= 25);
	assert_int_equal(f->ncalls, 0);

	/* an empty loop times out too */
	bh_loop_fini(&f->loop);
	assert_int_equal(bh_loop_init(&f->loop), 0);
	assert_int_equal(bh_loop_run(&f->loop, 0), 0);
}

static void test_del_others_in_same_batch(void **state)
{
	struct fixture *f = *state;

	add_all(f);
	f->action = DEL_OTHERS;
	/* all ready at once: one epoll_wait returns every event in one batch */
	for (int i = 0; i < NFD; i++)
		signal_fd(f->efd[i]);
	assert_int_equal(bh_loop_run(&f->loop, 30), 0);
	/* whichever ran first removed the others; their pending events are skipped */
	assert_int_equal(f->ncalls, 1);
	/* the deleted ones are gone for good, the survivor is still watched */
	for (int i = 0; i < NFD; i++)
		if (i != f->order[0])
			assert_int_equal(bh_loop_del(&f->loop, f->efd[i]), -ENOENT);
	assert_int_equal(bh_loop_del(&f->loop, f->efd[f->order[0]]), 0);
}

static void test_del_self(void **state)
{
	struct fixture *f = *state;

	add_all(f);
	f->action = DEL_SELF;
	signal_fd(f->efd[2]);
	/* still readable, but no longer watched: runs once, then times out */
	assert_int_equal(bh_loop_run(&f->loop, 30), 0);
	assert_int_equal(f->calls[2], 1);
	assert_int_equal(f->ncalls, 1);
	assert_int_equal(bh_loop_del(&f->loop, f->efd[2]), -ENOENT);
}

static void test_del_then_add_same_fd(void **state)
{
	struct fixture *f = *state;

	add_all(f);
	assert_int_equal(bh_loop_del(&f->loop, f->efd[0]), 0);
	assert_int_equal(bh_loop_del(&f->loop, f->efd[0]), -ENOENT);
	assert_int_equal(bh_loop_add(&f->loop, f->efd[0], on_ready, (void *)(intptr_t)0), 0);
	f->action = DRAIN;
	signal_fd(f->efd[0]);
	assert_int_equal(bh_loop_run(&f->loop, 30), 0);
	assert_int_equal(f->calls[0], 1);
}

static void test_stop(void **state)
{
	struct fixture *f = *state;

	add_all(f);
	f->action = STOP;
	/* never drained: without the stop this would run forever */
	for (int i = 0; i < NFD; i++)
		signal_fd(f->efd[i]);
	assert_int_equal(bh_loop_run(&f->loop, -1), 0);
	/* the rest of the batch is not dispatched after a stop */
	assert_int_equal(f->ncalls, 1);
	/* run again: stop is reset, and stops again after one callback */
	assert_int_equal(bh_loop_run(&f->loop, -1), 0);
	assert_int_equal(f->ncalls, 2);
}

static void test_errors(void **state)
{
	struct fixture *f = *state;
	int fd;

	assert_int_equal(bh_loop_del(&f->loop, f->efd[0]), -ENOENT);
	assert_int_equal(bh_loop_add(&f->loop, -1, on_ready, NULL), -EBADF);
	fd = dup(f->efd[0]);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(bh_loop_add(&f->loop, fd, on_ready, NULL), -EBADF);
	assert_int_equal(bh_loop_add(&f->loop, f->efd[0], on_ready, NULL), 0);
	assert_int_equal(bh_loop_add(&f->loop, f->efd[0], on_ready, NULL), -EEXIST);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, loop_setup, loop_teardown)
		T(test_callbacks_run),	       T(test_timeout),	 T(test_del_others_in_same_batch),
		T(test_del_self),	       T(test_del_then_add_same_fd), T(test_stop),
		T(test_errors),
#undef T
	};

	return cmocka_run_group_tests_name("loop", tests, NULL, NULL);
}
