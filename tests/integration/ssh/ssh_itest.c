/*
 * Integration tests of bg_ssh against a real OpenSSH sshd on loopback
 * (tests/lab/sshd-fixture, started by run.sh, whose assignments arrive in
 * the environment: SSHD_PORT, SSHD_USER, SSHD_DIR, SSHD_HOST_KEY_FPR, …).
 *
 *   ssh_itest [CASE…]   runs every case, or the named ones.
 */
#include "breakglass.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;
static const char *g_case;

#define CHECK(cond)                                                                                                  \
	do {                                                                                                         \
		if (!(cond)) {                                                                                       \
			fprintf(stderr, "FAIL [%s] %s:%d: %s (last error: %s)\n", g_case, __FILE__, __LINE__, #cond, \
				bg_error_last()->message);                                                           \
			failures++;                                                                                  \
		}                                                                                                    \
	} while (0)

#define CHECK_CONTAINS(hay, needle)                                                                            \
	do {                                                                                                   \
		const char *h_ = (hay);                                                                        \
		if (!h_ || !strstr(h_, (needle))) {                                                            \
			fprintf(stderr, "FAIL [%s] %s:%d: \"%s\" does not contain \"%s\"\n", g_case, __FILE__, \
				__LINE__, h_ ? h_ : "(null)", (needle));                                       \
			failures++;                                                                            \
		}                                                                                              \
	} while (0)

static const char *env(const char *name)
{
	const char *v = getenv(name);

	if (!v || !*v) {
		fprintf(stderr, "ssh_itest: $%s is not set (run through run.sh)\n", name);
		exit(2);
	}
	return v;
}

static int sshd_port(void)
{
	return (int)strtol(env("SSHD_PORT"), NULL, 10);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static char *path_in_dir(const char *file)
{
	static char buf[8][512];
	static int i;

	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", env("SSHD_DIR"), file);
	return buf[i];
}

/* A handle on the fixture with key file `key` (NULL: the ed25519 key). */
static bg_ssh *open_handle(const char *key, const char *pin, const char *source)
{
	bg_ssh_options o = BG_SSH_OPTIONS_INIT;
	bg_ssh *s = NULL;

	o.name = "fixture";
	o.host = "127.0.0.1";
	o.port = sshd_port();
	o.user = env("SSHD_USER");
	o.key_file = key ? key : env("SSHD_CLIENT_KEY");
	o.host_key = pin;
	o.source_address = source;
	o.connect_timeout_s = 5;
	if (bg_ssh_new(&s, &o) != BG_OK) {
		fprintf(stderr, "bg_ssh_new: %s\n", bg_error_last()->message);
		return NULL;
	}
	return s;
}

static int run(bg_ssh *s, const char *cmd, int timeout_s, bg_ssh_result *r)
{
	bg_ssh_exec_options o = BG_SSH_EXEC_OPTIONS_INIT;

	o.timeout_s = timeout_s;
	return bg_ssh_exec(r, s, cmd, &o);
}

/* fork/exec a program and wait for it; its exit status, or -1. */
static int spawn_wait(char *const argv[], char *const envp[])
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		if (envp)
			execve(argv[0], argv, envp);
		else
			execv(argv[0], argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- cases ---- */

static void case_exec(void)
{
	bg_ssh *s = open_handle(NULL, NULL, NULL);
	bg_ssh_result r, r2;

	CHECK(s);
	if (!s)
		return;
	CHECK(run(s, "echo hello; echo oops >&2; exit 3", 10, &r) == BG_OK);
	CHECK(r.exit_code == 3);
	CHECK(r.out && strcmp(r.out, "hello\n") == 0);
	CHECK(r.err && strcmp(r.err, "oops\n") == 0);
	CHECK(r.out_len == 6 && r.err_len == 5 && !r.timed_out && !r.exit_signal);
	bg_ssh_result_clear(&r);

	/* Quoting survives the far side's sh -c. */
	CHECK(run(s, "printf '%s|' \"it's\" 'a \"b\"' '$HOME'", 10, &r) == BG_OK);
	CHECK(r.exit_code == 0);
	CHECK(r.out && strcmp(r.out, "it's|a \"b\"|$HOME|") == 0);
	bg_ssh_result_clear(&r);

	/* The same TCP connection is reused: the client port does not change. */
	CHECK(run(s, "echo $SSH_CONNECTION", 10, &r) == BG_OK);
	CHECK(run(s, "echo $SSH_CONNECTION", 10, &r2) == BG_OK);
	CHECK(r.out && r2.out && strcmp(r.out, r2.out) == 0);
	bg_ssh_result_clear(&r);
	bg_ssh_result_clear(&r2);

	/* Death by signal: the far side's timeout passes the signal on. */
	CHECK(run(s, "kill -KILL $$", 10, &r) == BG_OK);
	CHECK(r.exit_signal && strcmp(r.exit_signal, "KILL") == 0);
	CHECK(r.exit_code == -1 && !r.timed_out);
	bg_ssh_result_clear(&r);

	/* remote_timeout = 0 sends the command as is. */
	{
		bg_ssh_exec_options o = BG_SSH_EXEC_OPTIONS_INIT;
		o.remote_timeout = 0;
		CHECK(bg_ssh_exec(&r, s, "exit 7", &o) == BG_OK);
		CHECK(r.exit_code == 7);
		bg_ssh_result_clear(&r);
	}
	CHECK(bg_ssh_host_key_fingerprint(s) && strcmp(bg_ssh_host_key_fingerprint(s), env("SSHD_HOST_KEY_FPR")) == 0);
	CHECK(bg_ssh_host_key_type(s) && strcmp(bg_ssh_host_key_type(s), "ssh-ed25519") == 0);
	bg_ssh_free(s);
}

static void case_big_output(void)
{
	bg_ssh *s = open_handle(NULL, NULL, NULL);
	bg_ssh_exec_options o = BG_SSH_EXEC_OPTIONS_INIT;
	bg_ssh_result r;
	size_t i;
	int ok = 1;

	CHECK(s);
	if (!s)
		return;
	/* 3 000 000 bytes of 'x' on stdout, 200 000 on stderr. */
	CHECK(run(s, "head -c 3000000 /dev/zero | tr '\\0' x; head -c 200000 /dev/zero | tr '\\0' y >&2", 30, &r) ==
	      BG_OK);
	CHECK(r.exit_code == 0);
	CHECK(r.out_len == 1024 * 1024);
	CHECK(r.out_dropped == 3000000 - 1024 * 1024);
	CHECK(r.err_len == 200000 && r.err_dropped == 0);
	for (i = 0; r.out && i < r.out_len; i++)
		ok &= r.out[i] == 'x';
	CHECK(ok);
	CHECK(r.out && r.out[r.out_len] == '\0');
	bg_ssh_result_clear(&r);

	o.output_cap = 1000;
	CHECK(bg_ssh_exec(&r, s, "seq 1 100000", &o) == BG_OK);
	CHECK(r.out_len == 1000 && r.out_dropped > 500000);
	CHECK(r.out && strncmp(r.out, "1\n2\n3\n", 6) == 0);
	bg_ssh_result_clear(&r);
	bg_ssh_free(s);
}

typedef struct stream_log {
	int calls;
	long long first_ms;
	char seen[256];
} stream_log;

static int on_output(bg_ssh_stream stream, const char *data, size_t len, void *payload)
{
	stream_log *l = payload;
	size_t have = strlen(l->seen);

	if (stream == BG_SSH_STDOUT && l->calls++ == 0)
		l->first_ms = now_ms();
	if (have + len < sizeof(l->seen))
		memcpy(l->seen + have, data, len), l->seen[have + len] = '\0';
	return 0;
}

static int abort_output(bg_ssh_stream stream, const char *data, size_t len, void *payload)
{
	(void)stream, (void)data, (void)len, (void)payload;
	return -42;
}

static void case_streaming(void)
{
	bg_ssh *s = open_handle(NULL, NULL, NULL);
	bg_ssh_exec_options o = BG_SSH_EXEC_OPTIONS_INIT;
	stream_log l;
	bg_ssh_result r;
	long long t0, t1;

	CHECK(s);
	if (!s)
		return;
	memset(&l, 0, sizeof(l));
	o.on_output = on_output;
	o.payload = &l;
	o.timeout_s = 10;
	t0 = now_ms();
	CHECK(bg_ssh_exec(&r, s, "for i in 1 2 3 4; do echo line$i; sleep 0.3; done", &o) == BG_OK);
	t1 = now_ms();
	CHECK(l.calls >= 3);
	/* The first line came long before the end (~1.2 s). */
	CHECK(l.first_ms - t0 < 600 && t1 - l.first_ms > 700);
	CHECK(strcmp(l.seen, "line1\nline2\nline3\nline4\n") == 0);
	CHECK(r.out && strcmp(r.out, l.seen) == 0);
	bg_ssh_result_clear(&r);

	/* A callback's negative value aborts and is returned. */
	o.on_output = abort_output;
	CHECK(bg_ssh_exec(&r, s, "echo a; sleep 5", &o) == -42);
	bg_ssh_result_clear(&r);
	CHECK(run(s, "echo after", 10, &r) == BG_OK && r.out && strcmp(r.out, "after\n") == 0);
	bg_ssh_result_clear(&r);
	bg_ssh_free(s);
}

/* The sleeps these cases start on the far side are found and killed by
 * their command line (pgrep/pkill -f). The fixture's sshd runs on this
 * machine, so two runs of this test at once (a clean-clone CI and a
 * fresh-debian root side by side: one kernel, one pid space) killed each
 * other's sleeps: a case saw its sleep die of TERM after 1.9 s. Each run's
 * sleeps carry its pid: `sleep 4245.PID`, still a plain duration. */
static int run_tag(void)
{
	return (int)getpid();
}

static int process_gone(bg_ssh *s, const char *pattern)
{
	char cmd[256];
	bg_ssh_result r;
	int gone;

	/* The [x] trick keeps pgrep from matching its own command line. */
	snprintf(cmd, sizeof(cmd), "pgrep -f '%s' >/dev/null && echo running || echo gone", pattern);
	if (run(s, cmd, 10, &r) != BG_OK)
		return 0;
	gone = r.out && strcmp(r.out, "gone\n") == 0;
	bg_ssh_result_clear(&r);
	return gone;
}

static void case_timeout(void)
{
	bg_ssh *s = open_handle(NULL, NULL, NULL);
	bg_ssh_exec_options o = BG_SSH_EXEC_OPTIONS_INIT;
	bg_ssh_result r;
	char cmd[200], pattern[64];
	long long t0;
	int rc;

	CHECK(s);
	if (!s)
		return;
	/* Positive control: the pattern is seen while the command runs. */
	snprintf(cmd, sizeof(cmd),
		 "(sleep 4241.%d >/dev/null 2>&1 &) ; pgrep -f '[s]leep 4241.%d' >/dev/null && echo running", run_tag(),
		 run_tag());
	CHECK(run(s, cmd, 10, &r) == BG_OK);
	CHECK(r.out && strcmp(r.out, "running\n") == 0);
	bg_ssh_result_clear(&r);
	snprintf(cmd, sizeof(cmd), "pkill -f '[s]leep 4241.%d'; true", run_tag());
	CHECK(run(s, cmd, 10, &r) == BG_OK);
	bg_ssh_result_clear(&r);

	t0 = now_ms();
	snprintf(cmd, sizeof(cmd), "echo started; sleep 4242.%d", run_tag());
	CHECK(run(s, cmd, 1, &r) == BG_ETIMEOUT);
	CHECK(r.timed_out == 1 && r.exit_code == -1);
	CHECK(r.out && strcmp(r.out, "started\n") == 0);
	CHECK(now_ms() - t0 < 4000);
	CHECK_CONTAINS(bg_error_last()->message, "killed on the far side");
	bg_ssh_result_clear(&r);
	snprintf(pattern, sizeof(pattern), "[s]leep 4242.%d", run_tag());
	CHECK(process_gone(s, pattern));

	/* A command that ignores TERM is KILLed 5 s later. */
	t0 = now_ms();
	snprintf(cmd, sizeof(cmd), "trap '' TERM; sleep 4243.%d", run_tag());
	CHECK(run(s, cmd, 1, &r) == BG_ETIMEOUT);
	CHECK(r.timed_out == 1);
	CHECK(now_ms() - t0 >= 5000 && now_ms() - t0 < 9500);
	bg_ssh_result_clear(&r);
	snprintf(pattern, sizeof(pattern), "[s]leep 4243.%d", run_tag());
	CHECK(process_gone(s, pattern));

	/* Without remote_timeout the local deadline (timeout + 5 s) fires. */
	o.remote_timeout = 0;
	o.timeout_s = 1;
	t0 = now_ms();
	snprintf(cmd, sizeof(cmd), "echo early; sleep 4245.%d; echo late", run_tag());
	rc = bg_ssh_exec(&r, s, cmd, &o);
	if (rc != BG_ETIMEOUT) /* seen once under a double CI load: say what came back instead */
		fprintf(stderr, "     rc=%d exit=%d signal=%s timed_out=%d out=%s err=%s after %lld ms\n", rc,
			r.exit_code, r.exit_signal ? r.exit_signal : "-", r.timed_out, r.out ? r.out : "-",
			r.err ? r.err : "-", (long long)(now_ms() - t0));
	CHECK(rc == BG_ETIMEOUT);
	CHECK(r.timed_out == 1 && r.exit_code == -1);
	CHECK(r.out && strcmp(r.out, "early\n") == 0);
	CHECK(now_ms() - t0 >= 5900 && now_ms() - t0 < 7500);
	CHECK_CONTAINS(bg_error_last()->message, "may still run on the far side");
	bg_ssh_result_clear(&r);
	/* The handle reconnects for the next one. */
	CHECK(run(s, "echo next", 10, &r) == BG_OK && r.out && strcmp(r.out, "next\n") == 0);
	bg_ssh_result_clear(&r);
	snprintf(cmd, sizeof(cmd), "pkill -f '[s]leep 4245.%d'; true", run_tag());
	CHECK(run(s, cmd, 10, &r) == BG_OK);
	bg_ssh_result_clear(&r);
	bg_ssh_free(s);
}

static void case_hostkey(void)
{
	char marker[128], cmd[256];
	bg_ssh_result r;
	struct stat st;
	bg_ssh *s;

	snprintf(marker, sizeof(marker), "/tmp/bg-ssh-itest-marker-%d", (int)getpid());
	snprintf(cmd, sizeof(cmd), "touch %s", marker);
	unlink(marker);

	/* Pinned to another key (a valid fingerprint, not the server's). */
	s = open_handle(NULL, "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL);
	CHECK(s);
	if (s) {
		CHECK(run(s, cmd, 10, &r) == BG_EHOSTKEY);
		CHECK_CONTAINS(bg_error_last()->message, env("SSHD_HOST_KEY_FPR"));
		CHECK_CONTAINS(bg_error_last()->message, "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
		CHECK_CONTAINS(bg_error_last()->message, "fixture (127.0.0.1:");
		CHECK(stat(marker, &st) != 0);
		CHECK(bg_ssh_host_key_fingerprint(s) &&
		      strcmp(bg_ssh_host_key_fingerprint(s), env("SSHD_HOST_KEY_FPR")) == 0);
		bg_ssh_result_clear(&r);
		CHECK(bg_ssh_connect(s) == BG_EHOSTKEY);
		bg_ssh_free(s);
	}
	/* Control: pinned to the right key, the same command creates it. */
	s = open_handle(NULL, env("SSHD_HOST_KEY_FPR"), NULL);
	CHECK(s);
	if (s) {
		CHECK(run(s, cmd, 10, &r) == BG_OK && r.exit_code == 0);
		CHECK(stat(marker, &st) == 0);
		bg_ssh_result_clear(&r);
		bg_ssh_free(s);
	}
	unlink(marker);
}

static int listen_socket(int *port)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 8) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &alen) != 0)
		return -1;
	*port = ntohs(a.sin_port);
	return fd;
}

static bg_ssh *handle_on_port(int port, int timeout_s)
{
	bg_ssh_options o = BG_SSH_OPTIONS_INIT;
	bg_ssh *s = NULL;

	o.name = "devvm";
	o.host = "127.0.0.1";
	o.port = port;
	o.user = "breakglass";
	o.key_file = env("SSHD_CLIENT_KEY");
	o.connect_timeout_s = timeout_s;
	return bg_ssh_new(&s, &o) == BG_OK ? s : NULL;
}

static void *cancel_later(void *arg)
{
	sleep_ms(400);
	bg_ssh_cancel(arg);
	return NULL;
}

static void case_silent_port(void)
{
	int port = 0, fd = listen_socket(&port);
	bg_ssh_result r;
	long long t0;
	bg_ssh *s;

	CHECK(fd >= 0);
	s = handle_on_port(port, 1);
	CHECK(s);
	if (s) {
		t0 = now_ms();
		CHECK(run(s, "true", 10, &r) == BG_ETIMEOUT);
		CHECK(now_ms() - t0 >= 900 && now_ms() - t0 < 2500);
		CHECK_CONTAINS(bg_error_last()->message, "no SSH banner within 1 s");
		CHECK_CONTAINS(bg_error_last()->message, "devvm (127.0.0.1:");
		bg_ssh_result_clear(&r);
		bg_ssh_free(s);
	}
	/* A cancel ends the wait for the banner at once, not at the deadline. */
	s = handle_on_port(port, 20);
	CHECK(s);
	if (s) {
		pthread_t t;

		pthread_create(&t, NULL, cancel_later, s);
		t0 = now_ms();
		CHECK(bg_ssh_connect(s) == BG_ECANCELLED);
		CHECK(now_ms() - t0 < 1500);
		pthread_join(t, NULL);
		bg_ssh_free(s);
	}
	close(fd);
}

static void case_refused(void)
{
	int port = 0, fd = listen_socket(&port);
	bg_ssh_result r;
	bg_ssh *s;

	close(fd); /* nothing listens there now */
	s = handle_on_port(port, 2);
	CHECK(s);
	if (s) {
		CHECK(run(s, "true", 10, &r) == BG_ECONNECT);
		CHECK_CONTAINS(bg_error_last()->message, "connection refused");
		bg_ssh_result_clear(&r);
		CHECK(bg_ssh_host_key_fingerprint(s) == NULL);
		bg_ssh_free(s);
	}
}

/* Kill the fixture's sshd and every process under it (all started by
 * this test run), as if the host went away. */
static void kill_tree(pid_t root)
{
	pid_t kids[256];
	int n = 0;
	FILE *p;

	if (root <= 1)
		return;
	/* pgrep -P lists the children: collect them, then kill top-down. */
	{
		int pipefd[2];
		pid_t pid;
		if (pipe(pipefd) != 0)
			return;
		pid = fork();
		if (pid == 0) {
			char arg[16];
			snprintf(arg, sizeof(arg), "%d", (int)root);
			dup2(pipefd[1], 1);
			close(pipefd[0]);
			execl("/usr/bin/pgrep", "pgrep", "-P", arg, (char *)NULL);
			_exit(127);
		}
		close(pipefd[1]);
		p = fdopen(pipefd[0], "r");
		while (p && n < 256 && fscanf(p, "%d", &kids[n]) == 1)
			n++;
		if (p)
			fclose(p);
		waitpid(pid, NULL, 0);
	}
	kill(root, SIGKILL);
	while (n-- > 0)
		kill_tree(kids[n]);
}

static pid_t sshd_pid(void)
{
	FILE *f = fopen(path_in_dir("sshd.pid"), "r");
	int pid = -1;

	if (f) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = -1;
		fclose(f);
	}
	return pid;
}

static int restart_sshd(void)
{
	char *argv[] = {(char *)"/usr/sbin/sshd", (char *)"-f", path_in_dir("sshd_config"), (char *)"-E",
			path_in_dir("sshd.log"),  NULL};
	int i;

	unlink(path_in_dir("sshd.pid"));
	if (spawn_wait(argv, NULL) != 0)
		return -1;
	for (i = 0; i < 100 && sshd_pid() <= 0; i++)
		sleep_ms(50);
	return sshd_pid() > 0 ? 0 : -1;
}

static void *killer(void *arg)
{
	(void)arg;
	sleep_ms(700);
	kill_tree(sshd_pid());
	return NULL;
}

static void case_sshd_restart(void)
{
	bg_ssh *s = open_handle(NULL, NULL, NULL);
	bg_ssh_result r;
	pthread_t t;
	long long t0;

	CHECK(s);
	if (!s)
		return;
	CHECK(run(s, "echo before", 10, &r) == BG_OK);
	bg_ssh_result_clear(&r);

	/* Killed in the middle of an exec: an error, promptly. */
	pthread_create(&t, NULL, killer, NULL);
	t0 = now_ms();
	CHECK(run(s, "echo running; sleep 5; echo never", 10, &r) == BG_ECONNECT);
	CHECK(now_ms() - t0 < 3000);
	CHECK_CONTAINS(bg_error_last()->message, "connection lost during the command");
	CHECK(r.out && strcmp(r.out, "running\n") == 0);
	bg_ssh_result_clear(&r);
	pthread_join(t, NULL);

	/* While it is down: refused. */
	CHECK(run(s, "true", 10, &r) == BG_ECONNECT);
	bg_ssh_result_clear(&r);

	/* Back on the same port: the next exec reconnects. */
	CHECK(restart_sshd() == 0);
	CHECK(run(s, "echo again", 10, &r) == BG_OK && r.out && strcmp(r.out, "again\n") == 0);
	bg_ssh_result_clear(&r);

	/* Restarted while idle: the stale session is replaced once. */
	kill_tree(sshd_pid());
	CHECK(restart_sshd() == 0);
	CHECK(run(s, "echo third", 10, &r) == BG_OK && r.out && strcmp(r.out, "third\n") == 0);
	bg_ssh_result_clear(&r);
	bg_ssh_free(s);
}

/* ---- host keys the OpenSSH way: known_hosts ---- */

static char *read_file(const char *path);

/* A handle with a policy and a known_hosts file (NULL pin). */
static bg_ssh *kh_handle(bg_ssh_host_key_policy policy, const char *known_hosts, const char *pin)
{
	bg_ssh_options o = BG_SSH_OPTIONS_INIT;
	bg_ssh *s = NULL;

	o.name = "fixture";
	o.host = "127.0.0.1";
	o.port = sshd_port();
	o.user = env("SSHD_USER");
	o.key_file = env("SSHD_CLIENT_KEY");
	o.host_key = pin;
	o.host_key_policy = policy;
	o.known_hosts = known_hosts;
	o.connect_timeout_s = 5;
	if (bg_ssh_new(&s, &o) != BG_OK) {
		fprintf(stderr, "bg_ssh_new: %s\n", bg_error_last()->message);
		return NULL;
	}
	return s;
}

/* Connect and run `touch MARKER`: BG_OK only when the marker appeared. */
static int kh_try(bg_ssh_host_key_policy policy, const char *known_hosts, const char *pin, char *check, size_t n)
{
	char marker[128], cmd[200];
	bg_ssh_result r;
	struct stat st;
	bg_ssh *s = kh_handle(policy, known_hosts, pin);
	int rc;

	if (!s)
		return BG_ERROR;
	snprintf(marker, sizeof(marker), "/tmp/bg-ssh-itest-kh-%d", (int)getpid());
	snprintf(cmd, sizeof(cmd), "touch %s", marker);
	unlink(marker);
	rc = run(s, cmd, 10, &r);
	if (rc == BG_OK && (r.exit_code != 0 || stat(marker, &st) != 0))
		rc = BG_EFAILED;
	if (rc != BG_OK)
		CHECK(stat(marker, &st) != 0); /* refused: nothing ran */
	snprintf(check, n, "%s", bg_ssh_host_key_check(s) ? bg_ssh_host_key_check(s) : "(none)");
	bg_ssh_result_clear(&r);
	bg_ssh_free(s);
	unlink(marker);
	return rc;
}

static int count_lines(const char *path)
{
	char *text = read_file(path);
	int n = 0;

	for (const char *p = text; p && *p; p++)
		n += *p == '\n';
	return text ? n : -1;
}

static int keygen(const char *path, const char *type)
{
	char *argv[] = {(char *)"/usr/bin/ssh-keygen",
			(char *)"-q",
			(char *)"-t",
			(char *)type,
			(char *)"-N",
			(char *)"",
			(char *)"-f",
			(char *)path,
			NULL};

	unlink(path);
	return spawn_wait(argv, NULL);
}

/* sshd_config with its HostKey replaced, for "the server's key changed". */
static int write_config_with_hostkey(const char *out, const char *hostkey)
{
	char *conf = read_file(path_in_dir("sshd_config")), *line, *save = NULL;
	FILE *f = fopen(out, "w");
	int found = 0;

	if (!conf || !f) {
		if (f)
			fclose(f);
		return -1;
	}
	for (line = strtok_r(conf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "HostKey ", 8) == 0) {
			fprintf(f, "HostKey %s\n", hostkey);
			found = 1;
		} else {
			fprintf(f, "%s\n", line);
		}
	}
	fclose(f);
	return found ? 0 : -1;
}

static int start_sshd_with(const char *config)
{
	char *argv[] = {(char *)"/usr/sbin/sshd", (char *)config, NULL, NULL, NULL, NULL};
	int i;

	argv[1] = (char *)"-f";
	argv[2] = (char *)config;
	argv[3] = (char *)"-E";
	argv[4] = path_in_dir("sshd.log");
	unlink(path_in_dir("sshd.pid"));
	if (spawn_wait(argv, NULL) != 0)
		return -1;
	for (i = 0; i < 100 && sshd_pid() <= 0; i++)
		sleep_ms(50);
	return sshd_pid() > 0 ? 0 : -1;
}

static void case_known_hosts(void)
{
	char kh[512], empty[512], other_type[512], name[64], check[800], line[1024], *text;
	const char *fpr = env("SSHD_HOST_KEY_FPR");
	char *ssh_keygen_F[] = {(char *)"/usr/bin/ssh-keygen", (char *)"-F", name, (char *)"-f", kh, NULL};
	char *ssh_keygen_H[] = {(char *)"/usr/bin/ssh-keygen", (char *)"-H", (char *)"-f", kh, NULL};
	bg_ssh *s;
	FILE *f;

	snprintf(kh, sizeof(kh), "%s", path_in_dir("kh_accept_new"));
	snprintf(empty, sizeof(empty), "%s", path_in_dir("kh_empty"));
	snprintf(name, sizeof(name), "[127.0.0.1]:%d", sshd_port());
	unlink(kh);

	/* accept-new, first connect: the key is stored, in OpenSSH's format. */
	CHECK(kh_try(BG_SSH_HOST_KEY_ACCEPT_NEW, kh, NULL, check, sizeof(check)) == BG_OK);
	CHECK_CONTAINS(check, "new, stored in");
	CHECK_CONTAINS(check, "line 1");
	CHECK(count_lines(kh) == 1);
	text = read_file(kh);
	snprintf(line, sizeof(line), "%s ssh-ed25519 AAAA", name);
	CHECK(text && strncmp(text, line, strlen(line)) == 0);
	CHECK(spawn_wait(ssh_keygen_F, NULL) == 0); /* ssh-keygen finds the host in it */
	{
		struct stat st;
		CHECK(stat(kh, &st) == 0 && (st.st_mode & 0777) == 0600);
	}

	/* Second connect: known, nothing added. */
	CHECK(kh_try(BG_SSH_HOST_KEY_ACCEPT_NEW, kh, NULL, check, sizeof(check)) == BG_OK);
	CHECK_CONTAINS(check, "known (");
	CHECK_CONTAINS(check, "line 1");
	CHECK(count_lines(kh) == 1);
	/* strict accepts what is known... */
	CHECK(kh_try(BG_SSH_HOST_KEY_STRICT, kh, NULL, check, sizeof(check)) == BG_OK);
	/* ...and refuses what is not, without storing it. */
	f = fopen(empty, "w");
	CHECK(f != NULL);
	if (f) {
		fputs("# nothing known yet\n", f);
		fclose(f);
	}
	chmod(empty, 0600);
	CHECK(kh_try(BG_SSH_HOST_KEY_STRICT, empty, NULL, check, sizeof(check)) == BG_EHOSTKEY);
	CHECK_CONTAINS(bg_error_last()->message, "is not in");
	CHECK_CONTAINS(bg_error_last()->message, "strict");
	CHECK_CONTAINS(bg_error_last()->message, fpr);
	CHECK(count_lines(empty) == 1);
	CHECK(kh_try(BG_SSH_HOST_KEY_STRICT, NULL, NULL, check, sizeof(check)) == BG_EHOSTKEY);

	/* pin: host_key must be set, and match. */
	CHECK(kh_handle(BG_SSH_HOST_KEY_PIN, kh, NULL) == NULL);
	CHECK_CONTAINS(bg_error_last()->message, "host_key is not set");
	CHECK(kh_try(BG_SSH_HOST_KEY_PIN, kh, "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", check,
		     sizeof(check)) == BG_EHOSTKEY);
	CHECK_CONTAINS(bg_error_last()->message, "host_key pins");
	CHECK(kh_try(BG_SSH_HOST_KEY_PIN, kh, fpr, check, sizeof(check)) == BG_OK);
	CHECK_CONTAINS(check, "pinned by host_key");

	/* The same name with a key of another type is a change too. */
	snprintf(other_type, sizeof(other_type), "%s", path_in_dir("kh_other_type"));
	text = read_file(path_in_dir("id_ecdsa.pub"));
	f = fopen(other_type, "w");
	CHECK(text && f);
	if (text && f)
		fprintf(f, "%s %s", name, text);
	if (f)
		fclose(f);
	chmod(other_type, 0600);
	CHECK(kh_try(BG_SSH_HOST_KEY_ACCEPT_NEW, other_type, NULL, check, sizeof(check)) == BG_EHOSTKEY);
	CHECK_CONTAINS(bg_error_last()->message, "HOST KEY CHANGED");
	CHECK_CONTAINS(bg_error_last()->message, "ecdsa-sha2-nistp256");
	CHECK(count_lines(other_type) == 1);

	/* A file anyone else can write is no trust anchor. */
	chmod(kh, 0666);
	CHECK(kh_try(BG_SSH_HOST_KEY_ACCEPT_NEW, kh, NULL, check, sizeof(check)) == BG_EHOSTKEY);
	CHECK_CONTAINS(bg_error_last()->message, "chmod 600");
	chmod(kh, 0600);
	unlink(path_in_dir("kh_link"));
	CHECK(symlink(kh, path_in_dir("kh_link")) == 0);
	CHECK(kh_try(BG_SSH_HOST_KEY_ACCEPT_NEW, path_in_dir("kh_link"), NULL, check, sizeof(check)) == BG_EHOSTKEY);
	CHECK_CONTAINS(bg_error_last()->message, "symbolic link");

	/* The server's key changes (sshd restarted with another host key):
	 * refused loudly under accept-new and strict, the file untouched. */
	CHECK(keygen(path_in_dir("host_other"), "ed25519") == 0);
	CHECK(write_config_with_hostkey(path_in_dir("sshd_config_other"), path_in_dir("host_other")) == 0);
	kill_tree(sshd_pid());
	CHECK(start_sshd_with(path_in_dir("sshd_config_other")) == 0);
	s = kh_handle(BG_SSH_HOST_KEY_ACCEPT_NEW, kh, NULL);
	CHECK(s);
	if (s) {
		const char *msg;

		CHECK(bg_ssh_connect(s) == BG_EHOSTKEY);
		msg = bg_error_last()->message;
		CHECK_CONTAINS(msg, "HOST KEY CHANGED");
		CHECK_CONTAINS(msg, kh);
		CHECK_CONTAINS(msg, "line 1");
		CHECK_CONTAINS(msg, fpr); /* the stored one */
		CHECK(bg_ssh_host_key_fingerprint(s) && strcmp(bg_ssh_host_key_fingerprint(s), fpr) != 0);
		CHECK_CONTAINS(msg, bg_ssh_host_key_fingerprint(s) ? bg_ssh_host_key_fingerprint(s) : "?");
		CHECK_CONTAINS(msg, "ssh-keygen -R");
		if (getenv("BG_ITEST_SHOW"))
			fprintf(stderr, "%s\n", msg);
		bg_ssh_free(s);
	}
	CHECK(kh_try(BG_SSH_HOST_KEY_ACCEPT_NEW, kh, NULL, check, sizeof(check)) == BG_EHOSTKEY);
	CHECK(kh_try(BG_SSH_HOST_KEY_STRICT, kh, NULL, check, sizeof(check)) == BG_EHOSTKEY);
	CHECK(count_lines(kh) == 1);
	kill_tree(sshd_pid());
	CHECK(restart_sshd() == 0);

	/* Hashed names (ssh-keygen -H, HashKnownHosts) are read too. */
	CHECK(spawn_wait(ssh_keygen_H, NULL) == 0);
	text = read_file(kh);
	CHECK(text && strncmp(text, "|1|", 3) == 0);
	chmod(kh, 0600);
	CHECK(kh_try(BG_SSH_HOST_KEY_STRICT, kh, NULL, check, sizeof(check)) == BG_OK);
	CHECK_CONTAINS(check, "known (");
}

static void case_rsa(void)
{
	bg_ssh_options o = BG_SSH_OPTIONS_INIT;
	bg_secret *key = NULL;
	bg_ssh *s = NULL;

	o.host = "127.0.0.1";
	o.port = sshd_port();
	o.user = env("SSHD_USER");
	o.key_file = path_in_dir("id_rsa");
	CHECK(bg_ssh_new(&s, &o) == BG_EUNSUPPORTED);
	CHECK(s == NULL);
	CHECK_CONTAINS(bg_error_last()->message, "RSA");
	CHECK_CONTAINS(bg_error_last()->message, "ssh-keygen -t ed25519");
	CHECK(bg_secret_from_file(&key, path_in_dir("id_rsa")) == BG_OK);
	o.key_file = NULL;
	o.key = key;
	CHECK(bg_ssh_new(&s, &o) == BG_EUNSUPPORTED);
	CHECK_CONTAINS(bg_error_last()->message, "ed25519 or ECDSA");
	bg_secret_free(key);
}

static bg_config *fixture_config(const char *extra)
{
	char text[1024];
	bg_config *cfg = NULL;

	/* Our own known_hosts: a test never writes the system's. */
	snprintf(text, sizeof(text), "[devvm]\nhost = 127.0.0.1\nport = %d\nuser = %s\n%s\n[ssh]\nknown_hosts = %s\n",
		 sshd_port(), env("SSHD_USER"), extra, path_in_dir("known_hosts_config"));
	if (bg_config_new(&cfg, BG_CONFIG_CLIENT) != BG_OK ||
	    bg_config_load_string(cfg, "itest.conf", text, strlen(text)) != BG_OK) {
		fprintf(stderr, "config: %s\n", bg_error_last()->message);
		bg_config_free(cfg);
		return NULL;
	}
	return cfg;
}

static char *read_file(const char *path)
{
	static char buf[16384];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static void case_env_key(void)
{
	bg_config *cfg = fixture_config("");
	bg_secret *key = NULL;
	char *source = NULL;
	bg_ssh_result r;
	bg_ssh *s = NULL;

	CHECK(cfg);
	if (!cfg)
		return;
	unsetenv("BREAKGLASS_SSH_KEY");
	CHECK(bg_ssh_key_load(&key, &source, cfg, NULL, 0) == BG_ENOTFOUND && source == NULL);
	setenv("BREAKGLASS_SSH_KEY", read_file(env("SSHD_CLIENT_KEY")), 1);
	CHECK(bg_ssh_key_load(&key, &source, cfg, NULL, 0) == BG_OK);
	CHECK(source && strcmp(source, "environment BREAKGLASS_SSH_KEY") == 0);
	bg_free(source);
	source = NULL;
	CHECK(getenv("BREAKGLASS_SSH_KEY") == NULL);
	CHECK(bg_ssh_new_from_config(&s, cfg, "devvm", key) == BG_OK);
	if (s) {
		CHECK(run(s, "echo $USER", 10, &r) == BG_OK);
		CHECK(r.out && strncmp(r.out, env("SSHD_USER"), strlen(env("SSHD_USER"))) == 0);
		bg_ssh_result_clear(&r);
		/* The child on the far side never sees the variable either. */
		CHECK(run(s, "env | grep -c BREAKGLASS_SSH_KEY", 10, &r) == BG_OK);
		CHECK(r.out && strcmp(r.out, "0\n") == 0);
		bg_ssh_result_clear(&r);
		bg_ssh_free(s);
	}
	bg_secret_free(key);
	bg_config_free(cfg);

	/* An RSA key in the environment: refused at load. */
	cfg = fixture_config("");
	setenv("BREAKGLASS_SSH_KEY", read_file(path_in_dir("id_rsa")), 1);
	CHECK(bg_ssh_key_load(&key, NULL, cfg, NULL, 0) == BG_EUNSUPPORTED && key == NULL);
	CHECK_CONTAINS(bg_error_last()->message, "RSA");
	CHECK_CONTAINS(bg_error_last()->message, "environment BREAKGLASS_SSH_KEY");
	/* ... unless asked for any key (to describe it): then it says why. */
	CHECK(bg_ssh_key_load(&key, &source, cfg, path_in_dir("id_rsa"), BG_SSH_KEY_LOAD_ANY) == BG_OK && key);
	CHECK(source && strncmp(source, "file /", 6) == 0 && strstr(source, "id_rsa"));
	if (key) {
		bg_ssh_key_desc d;

		CHECK(bg_ssh_key_describe(&d, key) == BG_OK);
		CHECK(!d.usable && strstr(d.reason, "RSA") && strstr(d.reason, "ed25519"));
	}
	bg_free(source);
	source = NULL;
	bg_secret_free(key);
	key = NULL;
	bg_config_free(cfg);

	/* [ssh] key_file wins. */
	{
		char extra[600];
		snprintf(extra, sizeof(extra), "[ssh]\nkey_file = %s\n", path_in_dir("id_ecdsa"));
		cfg = fixture_config(extra);
		CHECK(cfg);
		if (cfg) {
			CHECK(bg_ssh_key_load(&key, &source, cfg, NULL, 0) == BG_OK);
			CHECK(key && strstr(bg_secret_data(key), "OPENSSH PRIVATE KEY"));
			CHECK(source && strstr(source, "id_ecdsa"));
			bg_free(source);
			bg_secret_free(key);
			/* An explicit file (a --key option) wins over [ssh] key_file. */
			CHECK(bg_ssh_key_load(&key, &source, cfg, path_in_dir("id_rsa"), 0) == BG_EUNSUPPORTED);
			CHECK(key == NULL && source && strstr(source, "id_rsa"));
			bg_free(source);
			bg_config_free(cfg);
		}
	}
}

static void case_agent(void)
{
	char sock[256], envsock[300];
	char *agent_argv[] = {(char *)"/usr/bin/ssh-agent", (char *)"-D", (char *)"-a", sock, NULL};
	char *add_argv[] = {(char *)"/usr/bin/ssh-add", (char *)"-q", (char *)env("SSHD_CLIENT_KEY"), NULL};
	char *add_env[] = {envsock, NULL};
	bg_ssh_options o = BG_SSH_OPTIONS_INIT;
	bg_ssh_result r;
	struct stat st;
	bg_ssh *s = NULL;
	pid_t agent;
	int i, devnull;

	snprintf(sock, sizeof(sock), "%s/agent.sock", env("SSHD_DIR"));
	snprintf(envsock, sizeof(envsock), "SSH_AUTH_SOCK=%s", sock);
	unlink(sock);
	agent = fork();
	if (agent == 0) {
		devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 1);
		execv(agent_argv[0], agent_argv);
		_exit(127);
	}
	for (i = 0; i < 100 && stat(sock, &st) != 0; i++)
		sleep_ms(50);
	CHECK(stat(sock, &st) == 0);
	setenv("SSH_AUTH_SOCK", sock, 1);

	o.name = "agent";
	o.host = "127.0.0.1";
	o.port = sshd_port();
	o.user = env("SSHD_USER");
	o.use_agent = 1;
	CHECK(bg_ssh_new(&s, &o) == BG_OK);
	/* An empty agent: a clear refusal. */
	CHECK(bg_ssh_connect(s) == BG_EAUTH);
	CHECK_CONTAINS(bg_error_last()->message, "holds no keys");
	CHECK(spawn_wait(add_argv, add_env) == 0);
	CHECK(run(s, "echo via-agent", 10, &r) == BG_OK && r.out && strcmp(r.out, "via-agent\n") == 0);
	bg_ssh_result_clear(&r);
	bg_ssh_free(s);
	kill(agent, SIGTERM);
	waitpid(agent, NULL, 0);
	unsetenv("SSH_AUTH_SOCK");
}

static void case_ecdsa(void)
{
	bg_ssh *s = open_handle(path_in_dir("id_ecdsa"), NULL, NULL);
	bg_ssh_result r;

	CHECK(s);
	if (!s)
		return;
	CHECK(run(s, "echo ecdsa", 10, &r) == BG_OK && r.out && strcmp(r.out, "ecdsa\n") == 0);
	bg_ssh_result_clear(&r);
	bg_ssh_free(s);
}

static void case_auth_failure(void)
{
	char key[600], pub[620], cmdfpr[256];
	char *argv[] = {(char *)"/usr/bin/ssh-keygen",
			(char *)"-q",
			(char *)"-t",
			(char *)"ed25519",
			(char *)"-N",
			(char *)"",
			(char *)"-f",
			key,
			NULL};
	bg_ssh_result r;
	bg_ssh *s;
	char *text;

	snprintf(key, sizeof(key), "%s", path_in_dir("id_stranger"));
	snprintf(pub, sizeof(pub), "%s.pub", key);
	unlink(key);
	unlink(pub);
	CHECK(spawn_wait(argv, NULL) == 0);
	s = open_handle(key, NULL, NULL);
	CHECK(s);
	if (!s)
		return;
	CHECK(run(s, "true", 10, &r) == BG_EAUTH);
	CHECK_CONTAINS(bg_error_last()->message, "authentication failed for user");
	CHECK_CONTAINS(bg_error_last()->message, env("SSHD_USER"));
	/* The fingerprint is the one ssh-keygen -l prints for the key. */
	{
		int pipefd[2];
		pid_t pid;
		ssize_t n;
		char *sp;
		if (pipe(pipefd) == 0) {
			pid = fork();
			if (pid == 0) {
				dup2(pipefd[1], 1);
				execl("/usr/bin/ssh-keygen", "ssh-keygen", "-lf", pub, (char *)NULL);
				_exit(127);
			}
			close(pipefd[1]);
			n = read(pipefd[0], cmdfpr, sizeof(cmdfpr) - 1);
			cmdfpr[n > 0 ? n : 0] = '\0';
			close(pipefd[0]);
			waitpid(pid, NULL, 0);
			text = strchr(cmdfpr, ' ');
			sp = text ? strchr(text + 1, ' ') : NULL;
			if (sp)
				*sp = '\0';
			CHECK(text && strncmp(text + 1, "SHA256:", 7) == 0);
			if (text)
				CHECK_CONTAINS(bg_error_last()->message, text + 1);
		}
	}
	bg_ssh_result_clear(&r);
	bg_ssh_free(s);
}

static void case_cancel(void)
{
	bg_ssh *s = open_handle(NULL, NULL, NULL);
	bg_ssh_result r;
	char cmd[200];
	pthread_t t;
	long long t0;

	CHECK(s);
	if (!s)
		return;
	CHECK(bg_ssh_connect(s) == BG_OK);
	pthread_create(&t, NULL, cancel_later, s);
	t0 = now_ms();
	snprintf(cmd, sizeof(cmd), "sleep 4244.%d", run_tag());
	CHECK(run(s, cmd, 20, &r) == BG_ECANCELLED);
	CHECK(now_ms() - t0 < 1200);
	bg_ssh_result_clear(&r);
	pthread_join(t, NULL);
	/* A cancel that came before an exec does not stick to the next one. */
	CHECK(run(s, "echo fine", 10, &r) == BG_OK && r.out && strcmp(r.out, "fine\n") == 0);
	bg_ssh_result_clear(&r);
	snprintf(cmd, sizeof(cmd), "pkill -f '[s]leep 4244.%d'; true", run_tag());
	CHECK(run(s, cmd, 10, &r) == BG_OK);
	bg_ssh_result_clear(&r);
	bg_ssh_free(s);
}

static void case_source_address(void)
{
	bg_ssh *s = open_handle(NULL, NULL, "127.0.0.2");
	bg_ssh_result r;

	CHECK(s);
	if (!s)
		return;
	CHECK(run(s, "echo $SSH_CONNECTION", 10, &r) == BG_OK);
	CHECK(r.out && strncmp(r.out, "127.0.0.2 ", 10) == 0);
	bg_ssh_result_clear(&r);
	bg_ssh_free(s);
}

typedef struct thread_arg {
	bg_ssh *s;
	int id, ok;
} thread_arg;

static void *exec_many(void *p)
{
	thread_arg *a = p;
	char cmd[64], want[64];
	bg_ssh_result r;
	int i;

	for (i = 0; i < 5; i++) {
		snprintf(cmd, sizeof(cmd), "echo t%d-%d", a->id, i);
		snprintf(want, sizeof(want), "t%d-%d\n", a->id, i);
		if (run(a->s, cmd, 10, &r) == BG_OK && r.out && strcmp(r.out, want) == 0)
			a->ok++;
		bg_ssh_result_clear(&r);
	}
	return NULL;
}

static void case_threads(void)
{
	bg_ssh *s = open_handle(NULL, NULL, NULL);
	thread_arg a[4];
	pthread_t t[4];
	int i;

	CHECK(s);
	if (!s)
		return;
	for (i = 0; i < 4; i++) {
		a[i].s = s, a[i].id = i, a[i].ok = 0;
		pthread_create(&t[i], NULL, exec_many, &a[i]);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK(a[i].ok == 5);
	}
	bg_ssh_free(s);
}

static const struct {
	const char *name;
	void (*fn)(void);
} cases[] = {
	{"exec", case_exec},
	{"big_output", case_big_output},
	{"streaming", case_streaming},
	{"hostkey", case_hostkey},
	{"silent_port", case_silent_port},
	{"refused", case_refused},
	{"rsa", case_rsa},
	{"env_key", case_env_key},
	{"agent", case_agent},
	{"ecdsa", case_ecdsa},
	{"auth_failure", case_auth_failure},
	{"cancel", case_cancel},
	{"source_address", case_source_address},
	{"threads", case_threads},
	{"timeout", case_timeout},
	{"sshd_restart", case_sshd_restart},
	{"known_hosts", case_known_hosts},
};

int main(int argc, char **argv)
{
	size_t i;
	int j, want;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		want = argc < 2;
		for (j = 1; j < argc; j++)
			want |= strcmp(argv[j], cases[i].name) == 0;
		if (!want)
			continue;
		g_case = cases[i].name;
		{
			long long t0 = now_ms();
			int before = failures;
			cases[i].fn();
			printf("%s %s (%lld ms)\n", failures == before ? "ok  " : "FAIL", cases[i].name, now_ms() - t0);
			fflush(stdout);
		}
	}
	printf("%d failure(s)\n", failures);
	return failures ? 1 : 0;
}
