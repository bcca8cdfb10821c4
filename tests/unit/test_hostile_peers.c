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
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
