/* The qm runner against real programs: exit codes, output, cap, the
 * cleaned environment, descriptors, process groups, the deadline. */
#include "bg_test.h"

#include "core/clock.h"
#include "host/qm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static int sh(bg_run_result *r, const char *script, int timeout_ms)
{
	const char *argv[] = {"/bin/sh", "-c", script, NULL};
	return bg_run(r, argv, timeout_ms);
}

static void assert_no_children(void)
{
	errno = 0;
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

static void test_exit_codes(void **state)
{
	bg_run_result r;

	(void)state;
	assert_int_equal(sh(&r, "exit 0", 5000), BG_OK);
	assert_int_equal(r.exit_code, 0);
	assert_int_equal(r.signal, 0);
	assert_int_equal(r.timed_out, 0);
	bg_run_result_clear(&r);

	assert_int_equal(sh(&r, "exit 3", 5000), BG_OK);
	assert_int_equal(r.exit_code, 3);
	bg_run_result_clear(&r);

	assert_int_equal(sh(&r, "kill -TERM $$", 5000), BG_OK);
	assert_int_equal(r.exit_code, -1);
	assert_int_equal(r.signal, SIGTERM);
	bg_run_result_clear(&r);
	assert_no_children();
}

static void test_output_interleaved(void **state)
{
	bg_run_result r;

	(void)state;
	assert_int_equal(sh(&r, "echo one; echo two >&2; echo three", 5000), BG_OK);
	assert_string_equal(r.out, "one\ntwo\nthree\n");
	assert_int_equal(r.out_len, 14);
	assert_int_equal(r.out_dropped, 0);
	bg_run_result_clear(&r);
}

static void test_output_cap(void **state)
{
	bg_run_result r;

	(void)state;
	assert_int_equal(sh(&r, "head -c 300000 /dev/zero | tr '\\000' a", 10000), BG_OK);
	assert_int_equal(r.exit_code, 0);
	assert_int_equal(r.out_len, BG_RUN_OUTPUT_CAP);
	assert_int_equal(r.out_dropped, 300000 - BG_RUN_OUTPUT_CAP);
	assert_int_equal(strlen(r.out), BG_RUN_OUTPUT_CAP);
	assert_int_equal(r.out[0], 'a');
	bg_run_result_clear(&r);
}

static void test_environment_cleaned(void **state)
{
	bg_run_result r;
	const char *argv[] = {"/usr/bin/env", NULL};

	(void)state;
	setenv("BG_TEST_SECRET", "hunter2", 1);
	setenv("LD_PRELOAD", "/nonexistent.so", 1);
	assert_int_equal(bg_run(&r, argv, 5000), BG_OK);
	unsetenv("LD_PRELOAD");
	assert_string_equal(r.out, "PATH=/usr/sbin:/usr/bin:/sbin:/bin\nLANG=C\n");
	bg_run_result_clear(&r);
}

static void test_stdin_fds_and_group(void **state)
{
	bg_run_result r;
	char expect[64];
	int fd = open("/dev/null", O_RDONLY); /* deliberately not close-on-exec */

	(void)state;
	assert_true(fd >= 0);
	assert_true(dup2(fd, 57) == 57);
	/* cat would hang on an inherited terminal or pipe: stdin is /dev/null.
	 * No pipeline after it: while the shell builds one it holds a pipe
	 * end of its own, which ls would see as fd 3 (a race, not a leak). */
	assert_int_equal(sh(&r, "cat; ls /proc/$$/fd", 5000), BG_OK);
	assert_string_equal(r.out, "0\n1\n2\n");
	bg_run_result_clear(&r);
	close(57);
	close(fd);

	/* its own process group: pgid (field 5 of stat) equals its pid */
	assert_int_equal(sh(&r, "echo $$ $(cut -d' ' -f5 /proc/$$/stat)", 5000), BG_OK);
	{
		long pid = strtol(r.out, NULL, 10);
		snprintf(expect, sizeof(expect), "%ld %ld\n", pid, pid);
	}
	assert_string_equal(r.out, expect);
	assert_true(strtol(r.out, NULL, 10) != (long)getpgrp());
	bg_run_result_clear(&r);
}

/* Dead or a zombie waiting for its new parent to reap it. */
static int gone(long pid)
{
	char path[64], buf[256];
	FILE *f;
	char *p;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	for (int i = 0; i < 200; i++) {
		f = fopen(path, "r");
		if (!f)
			return 1;
		p = fgets(buf, sizeof(buf), f);
		fclose(f);
		if (p && (p = strrchr(buf, ')')) && (p[2] == 'Z' || p[2] == 'X'))
			return 1;
		bg_sleep_ms(10);
	}
	return 0;
}

static void test_hang_killed_with_group(void **state)
{
	bg_run_result r;
	long grandchild;

	(void)state;
	assert_int_equal(sh(&r, "sleep 100 & echo $!; exec sleep 100", 300), BG_ETIMEOUT);
	assert_true(r.timed_out);
	assert_int_equal(r.exit_code, -1);
	assert_int_equal(r.signal, SIGKILL);
	assert_true(r.elapsed_ms >= 300);
	assert_true(r.elapsed_ms < 2000);
	grandchild = strtol(r.out, NULL, 10);
	assert_true(grandchild > 1);
	assert_true(gone(grandchild));
	assert_error_contains("did not finish within 300 ms");
	bg_run_result_clear(&r);
	assert_no_children();
}

static void test_leftover_holding_pipe(void **state)
{
	bg_run_result r;

	(void)state;
	/* The program exits at once but a background child keeps the pipe. */
	assert_int_equal(sh(&r, "sleep 100 & echo $!", 5000), BG_OK);
	assert_int_equal(r.exit_code, 0);
	assert_false(r.timed_out);
	assert_true(r.elapsed_ms < 1500);
	assert_true(gone(strtol(r.out, NULL, 10)));
	bg_run_result_clear(&r);
	assert_no_children();
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

/* A signal every millisecond, without SA_RESTART: every poll, read and
 * waitpid of the runner gets EINTR again and again. */
static void test_eintr_storm(void **state)
{
	struct sigaction sa, old;
	struct itimerval every_ms = {{0, 1000}, {0, 1000}}, off = {{0, 0}, {0, 0}};
	bg_run_result r;

	(void)state;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, &old);
	alarms = 0;
	setitimer(ITIMER_REAL, &every_ms, NULL);
	assert_int_equal(sh(&r, "sleep 0.3; echo done", 5000), BG_OK);
	setitimer(ITIMER_REAL, &off, NULL);
	sigaction(SIGALRM, &old, NULL);
	assert_true(alarms > 20);
	assert_int_equal(r.exit_code, 0);
	assert_string_equal(r.out, "done\n");
	assert_true(r.elapsed_ms >= 300 && r.elapsed_ms < 3000);
	bg_run_result_clear(&r);
	assert_no_children();
}

/* breakglass-pve runs under umask 027; qm, and the QEMU it leaves behind
 * (its sockets, pidfile, logs), must see Proxmox's usual 022. */
static void test_child_umask_022(void **state)
{
	bg_run_result r;
	mode_t old = umask(027);

	(void)state;
	assert_int_equal(sh(&r, "umask", 5000), BG_OK);
	umask(old);
	assert_int_equal(r.exit_code, 0);
	assert_string_equal(r.out, "0022\n");
	bg_run_result_clear(&r);
}

static void test_not_found(void **state)
{
	bg_run_result r;
	const char *missing[] = {"/nonexistent/qm", "status", NULL};
	const char *relative[] = {"qm", NULL};
	const char *notexec[] = {"/etc/passwd", NULL};

	(void)state;
	assert_int_equal(bg_run(&r, missing, 1000), BG_ENOTFOUND);
	assert_error_contains("/nonexistent/qm");
	assert_null(r.out);
	assert_int_equal(bg_run(&r, relative, 1000), BG_EINVAL);
	assert_error_contains("absolute path");
	assert_int_equal(bg_run(&r, notexec, 1000), BG_EIO);
	assert_no_children();
}

static void test_qm_vmid_substituted(void **state)
{
	bg_run_result r;
	const char *args[] = {"stop", "{vmid}", "--timeout", "5", NULL};

	(void)state;
	assert_int_equal(bg_qm(&r, "/bin/echo", 5000, args, 104), BG_OK);
	assert_string_equal(r.out, "stop 104 --timeout 5\n");
	bg_run_result_clear(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exit_codes),
		cmocka_unit_test(test_output_interleaved),
		cmocka_unit_test(test_output_cap),
		cmocka_unit_test(test_environment_cleaned),
		cmocka_unit_test(test_stdin_fds_and_group),
		cmocka_unit_test(test_hang_killed_with_group),
		cmocka_unit_test(test_leftover_holding_pipe),
		cmocka_unit_test(test_eintr_storm),
		cmocka_unit_test(test_child_umask_022),
		cmocka_unit_test(test_not_found),
		cmocka_unit_test(test_qm_vmid_substituted),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
