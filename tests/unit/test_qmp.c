/* The QMP client against a real QEMU (-machine none), and against a
 * scripted peer for the corners a real QEMU does not produce on demand. */
#include "bg_test.h"

#include "bg_qemu.h"
#include "core/clock.h"
#include "host/proc.h"
#include "host/qmp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static bg_test_qemu qemu;

static const char *status_of(const char *sock, int timeout_ms)
{
	static char status[32];
	json_object *ret = NULL;

	if (bg_qmp_command(sock, "query-status", NULL, timeout_ms, &ret) != BG_OK)
		return NULL;
	snprintf(status, sizeof(status), "%s", json_object_get_string(json_object_object_get(ret, "status")));
	json_object_put(ret);
	return status;
}

static void test_commands(void **state)
{
	bg_qmp *q = NULL;
	json_object *ret = NULL, *args;

	(void)state;
	assert_int_equal(bg_qmp_connect(&q, qemu.qmp, 2000), BG_OK);
	assert_int_equal(bg_qmp_execute(q, "query-status", NULL, 2000, &ret), BG_OK);
	assert_string_equal(json_object_get_string(json_object_object_get(ret, "status")), "running");
	json_object_put(ret);

	assert_int_equal(bg_qmp_execute(q, "query-blockstats", NULL, 2000, &ret), BG_OK);
	assert_true(json_object_is_type(ret, json_type_array));
	assert_string_equal(json_object_get_string(json_object_object_get(json_object_array_get_idx(ret, 0), "device")),
			    "drive0");
	json_object_put(ret);

	args = json_object_new_object();
	json_object_object_add(args, "command-line", json_object_new_string("info name"));
	assert_int_equal(bg_qmp_execute(q, "human-monitor-command", args, 2000, &ret), BG_OK);
	json_object_put(args);
	assert_string_equal(json_object_get_string(ret), "vm100\r\n");
	json_object_put(ret);

	assert_int_equal(bg_qmp_execute(q, "no-such-command", NULL, 2000, &ret), BG_EPROTO);
	assert_null(ret);
	assert_error_contains("CommandNotFound");
	/* still usable after an error */
	assert_int_equal(bg_qmp_execute(q, "query-jobs", NULL, 2000, &ret), BG_OK);
	assert_int_equal(json_object_array_length(ret), 0);
	json_object_put(ret);
	bg_qmp_close(q);
}

static void test_events_skipped(void **state)
{
	bg_qmp *q = NULL;
	json_object *ret = NULL;

	(void)state;
	/* `stop` emits a STOP event on this connection; the next reply must
	 * still be found. */
	assert_int_equal(bg_qmp_connect(&q, qemu.qmp, 2000), BG_OK);
	assert_int_equal(bg_qmp_execute(q, "stop", NULL, 2000, NULL), BG_OK);
	assert_int_equal(bg_qmp_execute(q, "query-status", NULL, 2000, &ret), BG_OK);
	assert_string_equal(json_object_get_string(json_object_object_get(ret, "status")), "paused");
	json_object_put(ret);
	assert_int_equal(bg_qmp_execute(q, "cont", NULL, 2000, NULL), BG_OK);
	bg_qmp_close(q);
	assert_string_equal(status_of(qemu.qmp, 2000), "running");
}

static void test_hung_qemu_times_out(void **state)
{
	int64_t t0;
	const char *st;

	(void)state;
	assert_int_equal(kill(qemu.pid, SIGSTOP), 0);
	{
		char ps = 0; /* the stop is asynchronous */
		for (int i = 0; i < 100 && bg_proc_state(qemu.pid, &ps) == BG_OK && ps != 'T'; i++)
			bg_sleep_ms(10);
		assert_int_equal(ps, 'T');
	}
	t0 = bg_now_ms();
	assert_null(status_of(qemu.qmp, 500));
	assert_int_equal(bg_error_last()->code, BG_ETIMEOUT);
	assert_error_contains("no greeting within 500 ms");
	assert_true(bg_now_ms() - t0 >= 450);
	assert_true(bg_now_ms() - t0 < 1500);

	assert_int_equal(kill(qemu.pid, SIGCONT), 0);
	t0 = bg_now_ms();
	st = status_of(qemu.qmp, 2000);
	assert_non_null(st);
	assert_string_equal(st, "running");
	assert_true(bg_now_ms() - t0 < 1500);
}

static void test_no_socket(void **state)
{
	char path[160];
	struct sockaddr_un a;
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/missing.qmp", qemu.dir);
	assert_null(status_of(path, 500));
	assert_int_equal(bg_error_last()->code, BG_ENOTFOUND);

	/* a socket file nobody listens on any more */
	snprintf(path, sizeof(path), "%s/stale.qmp", qemu.dir);
	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	memcpy(a.sun_path, path, strlen(path) < sizeof(a.sun_path) ? strlen(path) : sizeof(a.sun_path) - 1);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	close(fd);
	assert_null(status_of(path, 500));
	assert_int_equal(bg_error_last()->code, BG_ECONNECT);
	unlink(path);
}

/* A scripted peer: greets, then answers each request with what `replies`
 * says (lines separated by '|', "$ID" replaced by the request's id). */
static pid_t fake_peer(const char *path, const char *greeting, const char *const *replies)
{
	struct sockaddr_un a;
	int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	pid_t pid;

	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	memcpy(a.sun_path, path, strlen(path) < sizeof(a.sun_path) ? strlen(path) : sizeof(a.sun_path) - 1);
	unlink(path);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	pid = fork();
	if (pid == 0) {
		int c = accept(lfd, NULL, NULL);
		char req[4096];
		size_t i;
		if (greeting && write(c, greeting, strlen(greeting)) < 0)
			_exit(1);
		for (i = 0; replies[i]; i++) {
			ssize_t n = read(c, req, sizeof(req) - 1);
			if (n <= 0)
				_exit(0);
			req[n] = '\0';
			char *id = strstr(req, "\"id\":\"");
			char idv[32] = "";
			if (id)
				sscanf(id + 6, "%31[^\"]", idv);
			for (const char *p = replies[i]; *p; p++) {
				if (strncmp(p, "$ID", 3) == 0) {
					if (write(c, idv, strlen(idv)) < 0)
						_exit(1);
					p += 2;
				} else if (write(c, *p == '|' ? "\n" : p, 1) < 0) {
					_exit(1);
				}
			}
		}
		bg_sleep_ms(3000);
		_exit(0);
	}
	close(lfd);
	return pid;
}

static void test_scripted_events_and_ids(void **state)
{
	char path[160];
	const char *replies[] = {
		"{\"return\":{},\"id\":\"$ID\"}|",
		"{\"event\":\"BLOCK_IO_ERROR\",\"data\":{}}|{\"return\":{\"status\":\"old\"},\"id\":\"other\"}|"
		"{\"return\":{\"status\":\"io-error\",\"running\":false},\"id\":\"$ID\"}|",
		"{\"error\":{\"class\":\"GenericError\",\"desc\":\"it broke\"},\"id\":\"$ID\"}|", NULL};
	bg_qmp *q = NULL;
	json_object *ret = NULL;
	pid_t pid;

	(void)state;
	snprintf(path, sizeof(path), "%s/fake.qmp", qemu.dir);
	pid = fake_peer(path, "{\"QMP\":{\"version\":{},\"capabilities\":[]}}\n", replies);
	assert_int_equal(bg_qmp_connect(&q, path, 2000), BG_OK);
	assert_int_equal(bg_qmp_execute(q, "query-status", NULL, 2000, &ret), BG_OK);
	assert_string_equal(json_object_get_string(json_object_object_get(ret, "status")), "io-error");
	json_object_put(ret);
	assert_int_equal(bg_qmp_execute(q, "cont", NULL, 2000, &ret), BG_EPROTO);
	assert_error_contains("GenericError: it broke");
	bg_qmp_close(q);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);

	/* not a QMP peer */
	pid = fake_peer(path, "hello\n", replies);
	assert_int_equal(bg_qmp_connect(&q, path, 2000), BG_EPROTO);
	assert_null(q);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);

	/* a peer that greets and then never answers */
	{
		const char *none[] = {"", NULL};
		int64_t t0 = bg_now_ms();
		pid = fake_peer(path, "{\"QMP\":{}}\n", none);
		assert_int_equal(bg_qmp_connect(&q, path, 300), BG_ETIMEOUT);
		assert_true(bg_now_ms() - t0 < 1000);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	unlink(path);
}

static void test_quit(void **state)
{
	char st = 0;
	int i;

	(void)state;
	assert_int_equal(bg_qmp_command(qemu.qmp, "quit", NULL, 2000, NULL), BG_OK);
	for (i = 0; i < 200 && bg_proc_state(qemu.pid, &st) == BG_OK && st != 'Z'; i++)
		bg_sleep_ms(10);
	assert_true(bg_proc_state(qemu.pid, &st) == BG_ENOTFOUND || st == 'Z');
}

static int setup(void **state)
{
	(void)state;
	return bg_test_qemu_start(&qemu);
}

static int teardown(void **state)
{
	(void)state;
	bg_test_qemu_stop(&qemu);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_events_skipped),
		cmocka_unit_test(test_hung_qemu_times_out),
		cmocka_unit_test(test_no_socket),
		cmocka_unit_test(test_scripted_events_and_ids),
		cmocka_unit_test(test_quit),
	};
	if (!bg_test_qemu_available()) {
		fprintf(stderr, "test_qmp: %s is missing (scripts/bootstrap installs qemu-system-x86)\n", BG_TEST_QEMU);
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
