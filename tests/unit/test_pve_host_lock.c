/* The per-VMID lock: bounded wait, and a "busy" that names the holder. */
#include "bg_test.h"

#include "host/lock.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/bg-lock-XXXXXX";

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char path[256];
	(void)state;
	snprintf(path, sizeof(path), "%s/breakglass-pve-102.lock", dir);
	unlink(path);
	return rmdir(dir);
}

/* A child that takes the lock as `cycle` from 192.0.2.7 (relabelled as
 * `relabel` when not NULL), signals through the pipe, then holds it for
 * hold_ms. */
static pid_t holder_as(int hold_ms, const char *relabel)
{
	int p[2];
	char c;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		bg_vm_lock l;
		if (bg_vm_lock_acquire(&l, dir, 102, "cycle", "192.0.2.7", 1000) != BG_OK)
			_exit(1);
		if (relabel)
			bg_vm_lock_relabel(&l, relabel, "192.0.2.7");
		(void)!write(p[1], "x", 1);
		usleep((useconds_t)hold_ms * 1000);
		_exit(0);
	}
	close(p[1]);
	assert_int_equal(read(p[0], &c, 1), 1);
	close(p[0]);
	return pid;
}

static pid_t holder(int hold_ms)
{
	return holder_as(hold_ms, NULL);
}

static long long ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void busy_names_the_holder_after_the_wait(void **state)
{
	bg_vm_lock l;
	long long t0;
	int st;
	pid_t pid = holder(3000);
	(void)state;

	t0 = ms_now();
	assert_int_equal(bg_vm_lock_acquire(&l, dir, 102, "stop", "198.51.100.1", 400), BG_EBUSY);
	assert_true(ms_now() - t0 >= 380);
	assert_true(ms_now() - t0 < 1500);
	assert_error_contains("busy: cycle running since 20");
	assert_error_contains("from 192.0.2.7");
	assert_int_equal(l.fd, -1);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	/* the kernel dropped the dead holder's lock */
	assert_int_equal(bg_vm_lock_acquire(&l, dir, 102, "stop", "198.51.100.1", 0), BG_OK);
	bg_vm_lock_release(&l);
}

/* A forensics that has answered and only completes its bundle gets the
 * extra wait; any other holder does not. */
static void a_completing_holder_gets_the_extra_wait(void **state)
{
	bg_vm_lock l;
	long long t0;
	int st;
	pid_t pid = holder_as(900, BG_VM_LOCK_COMPLETING);
	(void)state;

	t0 = ms_now();
	assert_int_equal(bg_vm_lock_acquire_ex(&l, dir, 102, "cycle", NULL, 200, 5000), BG_OK);
	assert_true(ms_now() - t0 >= 500); /* it waited past its 200 ms for the completion */
	bg_vm_lock_release(&l);
	waitpid(pid, &st, 0);

	pid = holder_as(3000, NULL); /* a cycle holds it: busy after the 200 ms alone */
	t0 = ms_now();
	assert_int_equal(bg_vm_lock_acquire_ex(&l, dir, 102, "stop", NULL, 200, 5000), BG_EBUSY);
	assert_true(ms_now() - t0 < 1500);
	assert_error_contains("busy: cycle running since 20");
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);

	pid = holder_as(3000, BG_VM_LOCK_COMPLETING); /* and the extra wait has its end */
	t0 = ms_now();
	assert_int_equal(bg_vm_lock_acquire_ex(&l, dir, 102, "stop", NULL, 100, 300), BG_EBUSY);
	assert_true(ms_now() - t0 >= 380 && ms_now() - t0 < 2000);
	assert_error_contains("busy: " BG_VM_LOCK_COMPLETING " running since 20");
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
}

static void a_waiter_gets_the_lock_when_it_is_released(void **state)
{
	bg_vm_lock l;
	int st;
	pid_t pid = holder(300);
	(void)state;

	assert_int_equal(bg_vm_lock_acquire(&l, dir, 102, "start", NULL, 5000), BG_OK);
	/* close-on-exec: a QEMU started under the lock must never hold it */
	assert_true(fcntl(l.fd, F_GETFD) & FD_CLOEXEC);
	bg_vm_lock_release(&l);
	bg_vm_lock_release(&l); /* twice is harmless */
	waitpid(pid, &st, 0);
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void another_vmid_is_another_lock(void **state)
{
	bg_vm_lock a, b;
	(void)state;

	assert_int_equal(bg_vm_lock_acquire(&a, dir, 102, "cycle", NULL, 0), BG_OK);
	assert_int_equal(bg_vm_lock_acquire(&b, dir, 103, "cycle", NULL, 0), BG_OK);
	bg_vm_lock_release(&b);
	bg_vm_lock_release(&a);
	unlink(b.path);
}

static void an_unusable_lock_dir_is_an_io_error(void **state)
{
	bg_vm_lock l;
	(void)state;
	assert_int_equal(bg_vm_lock_acquire(&l, "/nonexistent/bg", 102, "cycle", NULL, 0), BG_EIO);
	assert_error_contains("lock_dir");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(busy_names_the_holder_after_the_wait),
		cmocka_unit_test(a_waiter_gets_the_lock_when_it_is_released),
		cmocka_unit_test(a_completing_holder_gets_the_extra_wait),
		cmocka_unit_test(another_vmid_is_another_lock),
		cmocka_unit_test(an_unusable_lock_dir_is_an_io_error),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
