/* The /proc reader on the test process itself, on a sleeping process, and
 * on a real QEMU: only a QEMU started for this VM passes the check. */
#include "bg_test.h"

#include "bg_qemu.h"
#include "core/clock.h"
#include "host/proc.h"
#include "core/futil.h"
#include "host/wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[64];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* The parsers alone (host/wire.h), on text a process can shape. */
static void test_parsers(void **state)
{
	static const char args[] = "/usr/bin/kvm\0-id\0"
				   "102\0-pidfile\0/run/qemu-server/102.pid\0"; /* "\0" "1…": not octal */
	static const char eq[] = "qemu-system-x86_64\0--pidfile=/p/7.pid\0-id";
	char wchan[8];
	int pid = 0;

	(void)state;
	/* /proc/PID/stat is parsed once, in lib/core (bg_proc_stat_parse); its
	 * comm ends at the LAST ')': a process may call itself "a) R (b" */
	{
		static const char stat[] = "42 (a) R (b) D 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 777 9";
		bg_proc_stat st;

		assert_int_equal(bg_proc_stat_parse(&st, stat, sizeof(stat) - 1), BG_OK);
		assert_int_equal(st.state, 'D');
		assert_string_equal(st.comm, "a) R (b");
		assert_int_equal(st.starttime, 777);
		assert_int_equal(bg_proc_stat_parse(&st, "42 (x)", 6), BG_EPROTO);
		assert_int_equal(bg_proc_stat_parse(&st, "42 )x( S", 8), BG_EPROTO);
		assert_int_equal(bg_proc_stat_parse(&st, "", 0), BG_EPROTO);
	}
	/* pidfiles */
	assert_int_equal(bg_proc_parse_pid("4242\n", &pid), BG_OK);
	assert_int_equal(pid, 4242);
	assert_int_equal(bg_proc_parse_pid("0\n", &pid), BG_EPROTO);
	assert_int_equal(bg_proc_parse_pid("-5", &pid), BG_EPROTO);
	assert_int_equal(bg_proc_parse_pid("12 34", &pid), BG_EPROTO);
	assert_int_equal(bg_proc_parse_pid("99999999999", &pid), BG_EPROTO);
	assert_int_equal(bg_proc_parse_pid("", &pid), BG_EPROTO);
	assert_int_equal(pid, 4242); /* untouched by the failures */
	/* command lines: -id VMID or -pidfile PIDFILE, in every spelling */
	assert_int_equal(bg_proc_args_name_vm(args, sizeof(args) - 1, 102, NULL), 1);
	assert_int_equal(bg_proc_args_name_vm(args, sizeof(args) - 1, 103, NULL), 0);
	assert_int_equal(bg_proc_args_name_vm(args, sizeof(args) - 1, 103, "/run/qemu-server/102.pid"), 1);
	assert_int_equal(bg_proc_args_name_vm(eq, sizeof(eq) - 1, 7, "/p/7.pid"), 1);
	assert_int_equal(bg_proc_args_name_vm(eq, sizeof(eq) - 1, 7, NULL), 0); /* -id without a value */
	assert_int_equal(bg_proc_exe_is_qemu("/usr/bin/qemu-system-x86_64"), 1);
	assert_int_equal(bg_proc_exe_is_qemu("/usr/bin/kvm (deleted)"), 1);
	assert_int_equal(bg_proc_exe_is_qemu("/usr/bin/kvmx"), 0);
	assert_int_equal(bg_proc_exe_is_qemu("/tmp/qemu-system-x86_64/sleep"), 0);
	bg_proc_wchan(wchan, sizeof(wchan), "do_sys_poll\n");
	assert_string_equal(wchan, "do_sys_");
	bg_proc_wchan(wchan, sizeof(wchan), "0 \n");
	assert_string_equal(wchan, "0");
}

static void test_pidfile(void **state)
{
	char path[128];
	int pid = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/100.pid", tmpdir);
	write_file(path, "4242\n");
	assert_int_equal(bg_pidfile_read(path, &pid), BG_OK);
	assert_int_equal(pid, 4242);
	write_file(path, "12x\n");
	assert_int_equal(bg_pidfile_read(path, &pid), BG_EPROTO);
	assert_error_contains("does not hold a pid");
	write_file(path, "");
	assert_int_equal(bg_pidfile_read(path, &pid), BG_EPROTO);
	write_file(path, "-5");
	assert_int_equal(bg_pidfile_read(path, &pid), BG_EPROTO);
	unlink(path);
	assert_int_equal(bg_pidfile_read(path, &pid), BG_ENOTFOUND);
	assert_error_contains("no pidfile");
}

static void test_self(void **state)
{
	bg_proc_info p;
	char st = 0;
	size_t i;
	int found_self = 0;

	(void)state;
	assert_int_equal(bg_proc_state(getpid(), &st), BG_OK);
	assert_int_equal(st, 'R');
	assert_int_equal(bg_proc_read(&p, getpid()), BG_OK);
	assert_int_equal(p.pid, getpid());
	assert_int_equal(p.state, 'R');
	assert_string_equal(p.comm, "test_proc");
	assert_non_null(p.exe);
	assert_non_null(strstr(p.exe, "/test_proc"));
	assert_non_null(strstr(p.cmdline, "test_proc"));
	assert_non_null(strstr(p.status, "Name:\ttest_proc"));
	assert_true(p.start_time_ticks > 0);
	assert_true(p.nthreads >= 1);
	for (i = 0; i < p.nthreads; i++)
		if (p.threads[i].tid == getpid()) {
			found_self = 1;
			assert_int_equal(p.threads[i].state, 'R');
			assert_string_equal(p.threads[i].comm, "test_proc");
			if (geteuid() == 0) {
				assert_non_null(p.threads[i].stack);
				assert_non_null(strstr(p.threads[i].stack, "proc_pid_stack"));
			}
		}
	assert_true(found_self);
	if (geteuid() == 0)
		assert_non_null(strstr(p.io, "rchar:"));
	bg_proc_info_clear(&p);
	assert_null(p.threads);
}

static pid_t spawn(const char *const *argv)
{
	pid_t pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	bg_sleep_ms(100); /* let it reach its sleep */
	return pid;
}

static void test_sleeping_process(void **state)
{
	const char *argv[] = {"/bin/sleep", "100", NULL};
	bg_proc_info p;
	pid_t pid = spawn(argv);
	char st;

	(void)state;
	assert_int_equal(bg_proc_state(pid, &st), BG_OK);
	assert_int_equal(st, 'S');
	assert_int_equal(bg_proc_read(&p, pid), BG_OK);
	assert_string_equal(p.comm, "sleep");
	assert_int_equal(p.nthreads, 1);
	assert_int_equal(p.threads[0].state, 'S');
	assert_string_equal(p.threads[0].wchan, "hrtimer_nanosleep");
	if (geteuid() == 0)
		assert_non_null(strstr(p.threads[0].stack, "nanosleep"));
	bg_proc_info_clear(&p);
	kill(-pid, SIGKILL); /* sh and its sleep */
	waitpid(pid, NULL, 0);
	/* reaped: gone */
	assert_int_equal(bg_proc_state(pid, &st), BG_ENOTFOUND);
	assert_int_equal(bg_proc_read(&p, pid), BG_ENOTFOUND);
	assert_int_equal(bg_proc_is_qemu_for_vm(pid, 100, "/x.pid"), BG_ENOTFOUND);
}

static void test_zombie_is_not_qemu(void **state)
{
	const char *argv[] = {"/bin/true", NULL};
	pid_t pid = spawn(argv);
	char st;

	(void)state;
	assert_int_equal(bg_proc_state(pid, &st), BG_OK);
	assert_int_equal(st, 'Z');
	assert_int_equal(bg_proc_is_qemu_for_vm(pid, 100, "/x.pid"), 0);
	assert_error_contains("zombie");
	waitpid(pid, NULL, 0);
}

static void test_real_qemu(void **state)
{
	bg_test_qemu q;
	bg_proc_info p;
	char other[160];
	int pid = 0, names_main = 0;
	size_t i;

	(void)state;
	assert_int_equal(bg_test_qemu_start(&q), 0);
	assert_int_equal(bg_pidfile_read(q.pidfile, &pid), BG_OK);
	assert_int_equal(pid, q.pid);
	assert_int_equal(bg_proc_is_qemu_for_vm(pid, 100, q.pidfile), 1);
	/* QEMU, but the command line names another pidfile and no -id */
	snprintf(other, sizeof(other), "%s/101.pid", q.dir);
	assert_int_equal(bg_proc_is_qemu_for_vm(pid, 101, other), 0);
	assert_error_contains("not for VM 101");

	assert_int_equal(bg_proc_read(&p, pid), BG_OK);
	assert_non_null(strstr(p.exe, "qemu-system-x86_64"));
	assert_non_null(strstr(p.cmdline, "-pidfile"));
	assert_true(p.nthreads >= 2);
	for (i = 0; i < p.nthreads; i++) {
		assert_true(strchr("RSD", p.threads[i].state) != NULL);
		if (strcmp(p.threads[i].comm, "kvm") == 0) /* reached as kvm, as on Proxmox */
			names_main = 1;
		if (geteuid() == 0)
			assert_non_null(p.threads[i].stack);
	}
	assert_true(names_main);
	bg_proc_info_clear(&p);

	/* Stopped: state T, still our QEMU (the kill path must find it). */
	kill(pid, SIGSTOP);
	{
		char st = 0; /* the stop is asynchronous */
		for (int n = 0; n < 100 && bg_proc_state(pid, &st) == BG_OK && st != 'T'; n++)
			bg_sleep_ms(10);
		assert_int_equal(st, 'T');
	}
	assert_int_equal(bg_proc_is_qemu_for_vm(pid, 100, q.pidfile), 1);
	bg_test_qemu_stop(&q);
}

/* Proxmox starts QEMU with `-id VMID`: a stale pidfile of VM 102 that
 * names VM 103's QEMU (-id 103, -pidfile …/103.pid) is not VM 102's QEMU,
 * and VM 103's QEMU is recognised by its -id alone. */
static void test_stale_pidfile_names_another_vms_qemu(void **state)
{
	bg_test_qemu q;
	char ours[160], elsewhere[160], num[32];
	int pid = 0;

	(void)state;
	assert_int_equal(bg_test_qemu_start_vm(&q, tmpdir, 103), 0);
	snprintf(ours, sizeof(ours), "%s/102.pid", tmpdir);
	snprintf(num, sizeof(num), "%d\n", q.pid);
	write_file(ours, num);
	assert_int_equal(bg_pidfile_read(ours, &pid), BG_OK);
	assert_int_equal(pid, q.pid);
	assert_int_equal(bg_proc_is_qemu_for_vm(pid, 102, ours), 0);
	assert_error_contains("not for VM 102");
	assert_error_contains("nor -id 102");
	/* VM 103's own QEMU: by its pidfile, and by -id alone */
	assert_int_equal(bg_proc_is_qemu_for_vm(pid, 103, q.pidfile), 1);
	snprintf(elsewhere, sizeof(elsewhere), "%s/moved/103.pid", tmpdir);
	assert_int_equal(bg_proc_is_qemu_for_vm(pid, 103, elsewhere), 1);
	assert_int_equal(bg_proc_is_qemu_for_vm(pid, 1030, elsewhere), 0);
	unlink(ours);
	bg_test_qemu_stop(&q);
	unlink(q.kvm);
}

static void test_not_qemu_same_pidfile(void **state)
{
	char path[128], num[32];
	pid_t pid;

	(void)state;
	snprintf(path, sizeof(path), "%s/100.pid", tmpdir);
	/* sh's own command line even says `-pidfile PATH -id 100`: the program
	 * is still not QEMU. */
	const char *argv[] = {"/bin/sh", "-c", "sleep 100; exit 0", "-pidfile", path, "-id", "100", NULL};
	const char *plain[] = {"/bin/sleep", "100", NULL};
	pid = spawn(argv);
	snprintf(num, sizeof(num), "%d\n", (int)pid);
	write_file(path, num);
	assert_int_equal(bg_proc_is_qemu_for_vm(pid, 100, path), 0);
	assert_error_contains("not QEMU");
	kill(-pid, SIGKILL); /* sh and its sleep */
	waitpid(pid, NULL, 0);

	pid = spawn(plain);
	snprintf(num, sizeof(num), "%d\n", (int)pid);
	write_file(path, num);
	{
		int from_file = 0;
		assert_int_equal(bg_pidfile_read(path, &from_file), BG_OK);
		assert_int_equal(bg_proc_is_qemu_for_vm(from_file, 100, path), 0);
	}
	assert_error_contains("/sleep, not QEMU");
	kill(-pid, SIGKILL); /* sh and its sleep */
	waitpid(pid, NULL, 0);
	unlink(path);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/bg-proc-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	rmdir(tmpdir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parsers),
		cmocka_unit_test(test_pidfile),
		cmocka_unit_test(test_self),
		cmocka_unit_test(test_sleeping_process),
		cmocka_unit_test(test_zombie_is_not_qemu),
		cmocka_unit_test(test_not_qemu_same_pidfile),
		cmocka_unit_test(test_real_qemu),
		cmocka_unit_test(test_stale_pidfile_names_another_vms_qemu),
	};
	if (!bg_test_qemu_available()) {
		fprintf(stderr,
			"test_proc: %s or the qemu-id shim (%s) is missing (scripts/bootstrap installs "
			"qemu-system-x86)\n",
			BG_TEST_QEMU, BG_TEST_QEMU_ID_SHIM);
		return 77;
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
