/* The host's readers against hostile peers on the other end of a unix
 * socket: a guest agent or a QMP monitor that floods, trickles, never
 * answers, or answers with terminal escapes. Each must come back within
 * its deadline with a clear error, and no raw control byte may reach the
 * error text (which ends up on an admin's terminal). */
#include "bg_test.h"

#include "core/clock.h"
#include "host/qga.h"
#include "host/qmp.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/bg-hostile-XXXXXX";
static char path[200];

typedef void (*peer_fn)(int fd);

/* A peer in a child process: listens on `path`, runs fn on the first
 * connection. Returns its pid; the caller kills it. */
static pid_t peer(peer_fn fn)
{
	struct sockaddr_un a;
	int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	pid_t pid;

	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	memcpy(a.sun_path, path, strlen(path));
	unlink(path);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int c;
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
		signal(SIGPIPE, SIG_DFL);               /* the reader going away ends us */
		c = accept(lfd, NULL, NULL);
		if (c >= 0)
			fn(c);
		_exit(0);
	}
	close(lfd);
	return pid;
}

static void end_peer(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	unlink(path);
}

static void put(int fd, const char *s)
{
	size_t n = strlen(s);
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w <= 0)
			_exit(0);
		s += w;
		n -= (size_t)w;
	}
}

/* One request line (up to '\n'), discarded. */
static void skip_line(int fd)
{
	char c;
	while (read(fd, &c, 1) == 1 && c != '\n')
		;
}

/* Lines as fast as the socket takes them, in big writes, so that the
 * reader always finds more waiting (as a busy guest's flood would). */
static void flood_forever(int fd, const char *line)
{
	static char block[256 * 1024];
	size_t len = strlen(line), n = 0;
	int size = 1 << 20;

	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	while (n + len < sizeof(block)) {
		memcpy(block + n, line, len);
		n += len;
	}
	block[n] = '\0';
	for (;;)
		put(fd, block);
}

/* --- QMP ------------------------------------------------------------------ */

static void qmp_greets_then_floods_events(int fd)
{
	put(fd, "{\"QMP\":{\"version\":{},\"capabilities\":[]}}\n");
	skip_line(fd);
	flood_forever(fd, "{\"event\":\"RTC_CHANGE\",\"data\":{\"offset\":1}}\n");
}

static void qmp_floods_stray_replies_to_a_command(int fd)
{
	put(fd, "{\"QMP\":{\"version\":{},\"capabilities\":[]}}\n");
	skip_line(fd);
	put(fd, "{\"return\":{},\"id\":\"bg-1\"}\n");
	skip_line(fd);
	flood_forever(fd, "{\"return\":{\"status\":\"running\"},\"id\":\"not-yours\"}\n");
}

static void qmp_trickles(int fd)
{
	const char *g = "{\"QMP\":{\"version\":{},\"capabilities\":[]}}\n";
	for (; *g; g++) {
		if (write(fd, g, 1) != 1)
			_exit(0);
		bg_sleep_ms(250);
	}
	pause();
}

static void qmp_error_with_escapes(int fd)
{
	put(fd, "{\"QMP\":{\"version\":{},\"capabilities\":[]}}\n");
	skip_line(fd);
	put(fd, "{\"return\":{},\"id\":\"bg-1\"}\n");
	skip_line(fd);
	put(fd, "{\"error\":{\"class\":\"Generic\\u001b[2J\",\"desc\":\"disk gone\\u001b]0;pwned\\u0007\\n"
		"forged: verdict ok\"},\"id\":\"bg-2\"}\n");
	pause();
}

static void assert_no_control_bytes(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			fail_msg("a raw control byte 0x%02x in \"%s\"", (unsigned char)*s, s);
}

static void qmp_timed(peer_fn fn, int timeout_ms, int64_t limit_ms, const char *what)
{
	json_object *ret = NULL;
	pid_t pid = peer(fn);
	int64_t t0 = bg_now_ms();

	assert_int_equal(bg_qmp_command(path, "query-status", NULL, timeout_ms, &ret), BG_ETIMEOUT);
	if (bg_now_ms() - t0 > limit_ms)
		fail_msg("%s: took %lld ms for a %d ms deadline", what, (long long)(bg_now_ms() - t0), timeout_ms);
	assert_null(ret);
	end_peer(pid);
}

static void a_qmp_flood_of_events_times_out(void **state)
{
	(void)state;
	qmp_timed(qmp_greets_then_floods_events, 500, 3000, "event flood");
	assert_error_contains("qmp_capabilities");
}

static void a_qmp_flood_of_stray_replies_times_out(void **state)
{
	(void)state;
	qmp_timed(qmp_floods_stray_replies_to_a_command, 500, 3000, "stray replies");
}

static void a_trickling_qmp_times_out(void **state)
{
	(void)state;
	qmp_timed(qmp_trickles, 1000, 3500, "a byte every 250 ms");
	assert_error_contains("no greeting");
}

static void qmp_error_text_is_escaped(void **state)
{
	json_object *ret = NULL;
	pid_t pid;

	(void)state;
	pid = peer(qmp_error_with_escapes);
	assert_int_equal(bg_qmp_command(path, "query-status", NULL, 3000, &ret), BG_EPROTO);
	assert_no_control_bytes(bg_error_last()->message);
	assert_error_contains("disk gone\\x1b]0;pwned\\x07\\nforged: verdict ok");
	end_peer(pid);
}

/* --- the guest agent ------------------------------------------------------ */

static void agent_floods(int fd)
{
	skip_line(fd); /* guest-sync */
	flood_forever(fd, "{\"return\":{}}\n");
}

static void agent_floods_garbage(int fd)
{
	skip_line(fd);
	flood_forever(fd, "\xff\xff not json at all\n");
}

static void agent_never_answers(int fd)
{
	(void)fd;
	pause();
}

/* Answers guest-sync properly (echoing its id), then fails guest-ping
 * with an escape sequence and a forged line in its text. */
static void agent_error_with_escapes(int fd)
{
	char req[256], reply[300];
	long long id = -1;
	ssize_t n = 0;
	char c;

	while (n + 1 < (ssize_t)sizeof(req) && read(fd, &c, 1) == 1 && c != '\n')
		req[n++] = c;
	req[n] = '\0';
	if (strstr(req, "\"id\":"))
		sscanf(strstr(req, "\"id\":") + 5, "%lld", &id);
	snprintf(reply, sizeof(reply), "{\"return\":%lld}\n", id);
	put(fd, reply);
	skip_line(fd);
	put(fd, "{\"error\":{\"class\":\"GenericError\",\"desc\":\"\\u001b]0;owned\\u0007\\r\\n"
		"verdict: healthy\\u001b[31m\"}}\n");
	pause();
}

static void agent_timed(peer_fn fn, int timeout_ms, int64_t limit_ms, const char *what)
{
	pid_t pid = peer(fn);
	int64_t t0 = bg_now_ms();

	assert_int_equal(bg_qga_ping(path, timeout_ms), BG_ETIMEOUT);
	if (bg_now_ms() - t0 > limit_ms)
		fail_msg("%s: took %lld ms for a %d ms deadline", what, (long long)(bg_now_ms() - t0), timeout_ms);
	assert_error_contains("did not answer guest-ping within");
	end_peer(pid);
}

static void an_agent_flood_times_out(void **state)
{
	(void)state;
	agent_timed(agent_floods, 500, 3000, "agent flood");
}

static void an_agent_flood_of_garbage_times_out(void **state)
{
	(void)state;
	agent_timed(agent_floods_garbage, 500, 3000, "agent garbage");
}

static void an_agent_that_never_answers_times_out(void **state)
{
	(void)state;
	agent_timed(agent_never_answers, 500, 3000, "silent agent");
}

static void agent_error_text_is_escaped(void **state)
{
	pid_t pid;

	(void)state;
	pid = peer(agent_error_with_escapes);
	assert_int_equal(bg_qga_ping(path, 3000), BG_EPROTO);
	assert_no_control_bytes(bg_error_last()->message);
	assert_error_contains("guest-ping failed: \\x1b]0;owned\\x07\\r\\nverdict: healthy\\x1b[31m");
	end_peer(pid);
}

/* --- the guest agent's exec probe ------------------------------------------ */

/* One request line into buf (NUL-terminated, cut at its size). */
static void read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	char c;

	while (read(fd, &c, 1) == 1 && c != '\n')
		if (n + 1 < size)
			buf[n++] = c;
	buf[n] = '\0';
}

/* Answers guest-sync with its id, as a real agent does. */
static void agent_sync(int fd)
{
	char req[256], reply[64];
	long long id = -1;

	read_line(fd, req, sizeof(req));
	if (strstr(req, "\"id\":"))
		sscanf(strstr(req, "\"id\":") + 5, "%lld", &id);
	snprintf(reply, sizeof(reply), "{\"return\":%lld}\n", id);
	put(fd, reply);
}

/* The probe's request must be exactly the fixed program, no arguments, no
 * output: anything else gets an answer that fails the test's expectation. */
static int is_the_probe(const char *req)
{
	return strcmp(req,
		      "{\"execute\":\"guest-exec\",\"arguments\":{\"path\":\"/bin/true\",\"capture-output\":false}}") ==
	       0;
}

/* qemu-ga in a guest out of pids: g_spawn's "Failed to fork", with an
 * escape sequence a hostile guest adds. */
static void agent_exec_cannot_fork(int fd)
{
	char req[512];

	agent_sync(fd);
	read_line(fd, req, sizeof(req));
	if (!is_the_probe(req))
		put(fd, "{\"error\":{\"class\":\"GenericError\",\"desc\":\"unexpected request\"}}\n");
	else
		put(fd, "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Guest agent command failed, error was "
			"'Failed to fork (Resource temporarily unavailable)'\\u001b[31m\"}}\n");
	pause();
}

/* qemu-ga started with --block-rpcs=guest-exec (or an old one without it) */
static void agent_exec_disabled(int fd)
{
	agent_sync(fd);
	skip_line(fd);
	put(fd, "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"The command guest-exec has been disabled for "
		"this instance\"}}\n");
	pause();
}

/* A guest without /bin/true (Windows): an error that is no sign of want */
static void agent_exec_no_such_program(int fd)
{
	agent_sync(fd);
	skip_line(fd);
	put(fd, "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Guest agent command failed, error was 'Failed to "
		"execute child process \\u201c/bin/true\\u201d (No such file or directory)'\"}}\n");
	pause();
}

/* Starts it; guest-exec-status says running once, then exited 0. An event
 * line comes between, as the agent's channel may carry. */
static void agent_exec_starts(int fd)
{
	char req[512];
	int asked = 0;

	agent_sync(fd);
	read_line(fd, req, sizeof(req));
	if (!is_the_probe(req)) {
		put(fd, "{\"error\":{\"class\":\"GenericError\",\"desc\":\"unexpected request\"}}\n");
		pause();
	}
	put(fd, "{\"return\":{\"pid\":4242}}\n");
	for (;;) {
		read_line(fd, req, sizeof(req));
		if (!strstr(req, "\"guest-exec-status\"") || !strstr(req, "\"pid\":4242"))
			_exit(0);
		put(fd, "{\"event\":\"noise\"}\n");
		put(fd,
		    asked++ ? "{\"return\":{\"exited\":true,\"exitcode\":0}}\n" : "{\"return\":{\"exited\":false}}\n");
	}
}

/* Starts it, then floods the channel with lines that are no answer. */
static void agent_exec_then_floods(int fd)
{
	agent_sync(fd);
	skip_line(fd);
	put(fd, "{\"return\":{\"pid\":7}}\n");
	flood_forever(fd, "{\"event\":\"noise\"}\n");
}

/* Starts it, and it never exits. */
static void agent_exec_never_exits(int fd)
{
	agent_sync(fd);
	skip_line(fd);
	put(fd, "{\"return\":{\"pid\":7}}\n");
	for (;;) {
		skip_line(fd);
		put(fd, "{\"return\":{\"exited\":false}}\n");
	}
}

/* The probe against one peer: its status, within the deadline (plus
 * slack), and a why with no raw control byte containing `part`. */
static void exec_probe_against(peer_fn fn, int timeout_ms, int want, const char *part)
{
	pid_t pid = peer(fn);
	bg_buf why = BG_BUF_INIT;
	int64_t t0 = bg_now_ms();
	int rc = bg_qga_exec_probe(path, timeout_ms, &why);
	int64_t took = bg_now_ms() - t0;

	end_peer(pid);
	if (rc != want || !why.data || !strstr(why.data, part) || took > timeout_ms + 1500)
		fail_msg("exec probe: rc %d (want %d) in %lld ms (deadline %d): %s", rc, want, (long long)took,
			 timeout_ms, why.data ? why.data : "(nothing)");
	assert_no_control_bytes(why.data);
	bg_buf_free(&why);
}

static void exec_probe_names_a_fork_failure(void **state)
{
	(void)state;
	exec_probe_against(agent_exec_cannot_fork, 2000, BG_EFAILED,
			   "the guest could not start /bin/true: Guest agent command failed, error was 'Failed to fork "
			   "(Resource temporarily unavailable)'\\x1b[31m");
}

static void exec_probe_disabled_or_unknown_tells_nothing(void **state)
{
	(void)state;
	exec_probe_against(agent_exec_disabled, 2000, BG_EUNSUPPORTED, "refused (CommandNotFound)");
	exec_probe_against(agent_exec_no_such_program, 2000, BG_EUNSUPPORTED, "No such file or directory");
	exec_probe_against(agent_never_answers, 300, BG_ETIMEOUT, "no answer");
}

static void exec_probe_started_and_reaped(void **state)
{
	(void)state;
	exec_probe_against(agent_exec_starts, 2000, BG_OK, "started and exited 0 (pid 4242)");
}

static void exec_probe_deadline_holds_after_the_start(void **state)
{
	(void)state;
	exec_probe_against(agent_exec_then_floods, 500, BG_OK, "started (pid 7); its status unread");
	exec_probe_against(agent_exec_never_exits, 500, BG_OK, "still running at the deadline");
}

static void exec_error_texts_that_mean_want(void **state)
{
	(void)state;
	assert_true(bg_qga_exec_error_is_resource("Guest agent command failed, error was 'Failed to fork (Resource "
						  "temporarily unavailable)'"));
	assert_true(bg_qga_exec_error_is_resource("Failed to fork child process (Cannot allocate memory)"));
	assert_true(bg_qga_exec_error_is_resource("failed to FORK"));
	assert_false(bg_qga_exec_error_is_resource("Failed to execute child process \"/bin/true\" (No such file)"));
	assert_false(bg_qga_exec_error_is_resource("The command guest-exec has been disabled for this instance"));
	assert_false(bg_qga_exec_error_is_resource(""));
	assert_false(bg_qga_exec_error_is_resource(NULL));
}

/* A reader that hangs must fail the test, not the test run. */
static void watchdog(int sig)
{
	static const char msg[] = "test_hostile_peers: a reader did not return: its deadline is not honoured\n";
	(void)sig;
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(1);
}

static int setup_each(void **state)
{
	(void)state;
	alarm(20);
	return 0;
}

static int teardown_each(void **state)
{
	(void)state;
	alarm(0);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/peer.sock", dir);
	signal(SIGALRM, watchdog);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(a_qmp_flood_of_events_times_out, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(a_qmp_flood_of_stray_replies_times_out, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(a_trickling_qmp_times_out, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(qmp_error_text_is_escaped, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(an_agent_flood_times_out, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(an_agent_flood_of_garbage_times_out, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(an_agent_that_never_answers_times_out, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(agent_error_text_is_escaped, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(exec_probe_names_a_fork_failure, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(exec_probe_disabled_or_unknown_tells_nothing, setup_each,
						teardown_each),
		cmocka_unit_test_setup_teardown(exec_probe_started_and_reaped, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(exec_probe_deadline_holds_after_the_start, setup_each, teardown_each),
		cmocka_unit_test(exec_error_texts_that_mean_want),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
