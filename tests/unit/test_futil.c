/* core/futil: mkdir -p, read-file, write-all, append-line, /proc stat. */
#include "bg_test.h"

#include "core/error.h"
#include "core/futil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[64];

static int setup(void **state)
{
	(void)state;
	umask(022);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/bg-futil-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	pid_t pid;

	(void)state;
	snprintf(cmd, sizeof(cmd), "%s", tmpdir);
	pid = fork();
	if (pid == 0) {
		execlp("rm", "rm", "-rf", cmd, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
	return 0;
}

static void path_in(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmpdir, name);
}

static void test_mkdir_p(void **state)
{
	char path[256], file[256];
	struct stat st;

	(void)state;
	path_in(path, sizeof(path), "a/b//c/");
	assert_int_equal(bg_mkdir_p(path, 0700), BG_OK);
	path_in(path, sizeof(path), "a/b/c");
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	/* an existing directory is fine */
	assert_int_equal(bg_mkdir_p(path, 0700), BG_OK);
	/* a regular file in the way is not */
	path_in(file, sizeof(file), "a/file");
	assert_int_equal(bg_write_file(file, "x", 1, 0600), BG_OK);
	assert_int_equal(bg_mkdir_p(file, 0700), BG_EIO);
	assert_error_contains("a/file");
	path_in(path, sizeof(path), "a/file/below");
	assert_int_equal(bg_mkdir_p(path, 0700), BG_EIO);
	assert_int_equal(errno, ENOTDIR);
	assert_int_equal(bg_mkdir_p("", 0700), BG_EINVAL);
}

static void test_read_file(void **state)
{
	char path[256], *text;
	size_t len;

	(void)state;
	path_in(path, sizeof(path), "missing");
	assert_int_equal(bg_read_file(&text, &len, path, 100), BG_ENOTFOUND);
	assert_null(text);
	assert_int_equal(errno, ENOENT);
	assert_error_contains("missing");

	path_in(path, sizeof(path), "data");
	assert_int_equal(bg_write_file(path, "ab\0cd", 5, 0600), BG_OK);
	assert_int_equal(bg_read_file(&text, &len, path, 5), BG_OK);
	assert_int_equal(len, 5);
	assert_memory_equal(text, "ab\0cd", 6); /* NUL-terminated too */
	free(text);
	/* one byte over the cap */
	assert_int_equal(bg_read_file(&text, NULL, path, 4), BG_ETOOBIG);
	assert_null(text);
	assert_error_contains("more than 4 bytes");

	/* an empty file is the empty string (it once came back unterminated) */
	path_in(path, sizeof(path), "empty");
	assert_int_equal(bg_write_file(path, "", 0, 0600), BG_OK);
	assert_int_equal(bg_read_file(&text, &len, path, 5), BG_OK);
	assert_int_equal(len, 0);
	assert_string_equal(text, "");
	free(text);

	/* a /proc file has st_size 0 and is read whole all the same */
	assert_int_equal(bg_read_file(&text, &len, "/proc/self/status", 1 << 20), BG_OK);
	assert_true(len > 100);
	assert_non_null(strstr(text, "Pid:"));
	free(text);

	/* a directory cannot be read */
	assert_int_equal(bg_read_file(&text, NULL, tmpdir, 100), BG_EIO);
	assert_int_equal(errno, EISDIR);
}

static void test_write_file(void **state)
{
	char path[256], link[256], *text;
	struct stat st;

	(void)state;
	path_in(path, sizeof(path), "w");
	assert_int_equal(bg_write_file(path, "long content", 12, 0640), BG_OK);
	assert_int_equal(bg_write_file(path, "short", 5, 0640), BG_OK); /* truncates */
	assert_int_equal(bg_read_file(&text, NULL, path, 100), BG_OK);
	assert_string_equal(text, "short");
	free(text);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);

	/* a planted symlink is refused and its target left alone */
	path_in(link, sizeof(link), "link");
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(bg_write_file(link, "evil", 4, 0600), BG_EIO);
	assert_error_contains("link");
	assert_int_equal(bg_read_file(&text, NULL, path, 100), BG_OK);
	assert_string_equal(text, "short");
	free(text);

	/* a missing directory */
	path_in(path, sizeof(path), "nodir/x");
	assert_int_equal(bg_write_file(path, "x", 1, 0600), BG_EIO);
	assert_int_equal(errno, ENOENT);
}

/* ---- write-all under signals -------------------------------------------- */

static atomic_int alarms;

static void on_alarm(int sig)
{
	(void)sig;
	atomic_fetch_add(&alarms, 1);
}

typedef struct reader {
	int fd;
	size_t got;
	int ok;
} reader;

static void *slow_reader(void *arg)
{
	reader *r = arg;
	char buf[4096];
	ssize_t n;

	r->ok = 1;
	for (;;) {
		n = read(r->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			if ((unsigned char)buf[i] != (unsigned char)((r->got + (size_t)i) % 251))
				r->ok = 0;
		r->got += (size_t)n;
		usleep(200);
	}
	return NULL;
}

/* A write to a full pipe interrupted by a signal without SA_RESTART comes
 * back short or with EINTR; every byte must still arrive, in order. */
static void test_write_all_eintr(void **state)
{
	const size_t total = 4u << 20;
	struct sigaction sa = {0}, old;
	struct itimerval it = {{0, 500}, {0, 500}}, off = {{0, 0}, {0, 0}};
	sigset_t block, prev;
	unsigned char *data = malloc(total);
	reader r = {0};
	pthread_t th;
	int p[2];

	(void)state;
	assert_non_null(data);
	for (size_t i = 0; i < total; i++)
		data[i] = (unsigned char)(i % 251);
	assert_int_equal(pipe(p), 0);
	r.fd = p[0];
	/* the signal goes to this thread, the one writing */
	sigemptyset(&block);
	sigaddset(&block, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &block, &prev);
	assert_int_equal(pthread_create(&th, NULL, slow_reader, &r), 0);
	pthread_sigmask(SIG_SETMASK, &prev, NULL);
	sa.sa_handler = on_alarm; /* no SA_RESTART */
	sigaction(SIGALRM, &sa, &old);
	setitimer(ITIMER_REAL, &it, NULL);
	assert_int_equal(bg_write_all(p[1], data, total), BG_OK);
	setitimer(ITIMER_REAL, &off, NULL);
	sigaction(SIGALRM, &old, NULL);
	close(p[1]);
	pthread_join(th, NULL);
	close(p[0]);
	assert_int_equal(r.got, total);
	assert_true(r.ok);
	assert_true(atomic_load(&alarms) > 0);
	free(data);

	/* a write that cannot happen fails with the reason */
	assert_int_equal(pipe(p), 0);
	close(p[0]);
	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(bg_write_all(p[1], "x", 1), BG_EIO);
	assert_int_equal(errno, EPIPE);
	close(p[1]);
}

/* ---- append-line -------------------------------------------------------- */

#define WRITERS   4
#define LINES     300
#define LINE_SIZE 6000

static void test_append_line(void **state)
{
	char path[256], *text, *line, *p;
	size_t len, counts[WRITERS] = {0};
	int fd, w, ro;

	(void)state;
	path_in(path, sizeof(path), "log");
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(bg_append_line(fd, "one", 3), BG_OK);
	assert_int_equal(bg_append_line(fd, "two", 3), BG_OK);
	assert_int_equal(bg_read_file(&text, NULL, path, 100), BG_OK);
	assert_string_equal(text, "one\ntwo\n");
	free(text);

	/* several processes appending at once: no line is torn or mixed,
	 * which holds only when each line is one write(2) */
	assert_int_equal(ftruncate(fd, 0), 0);
	for (w = 0; w < WRITERS; w++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			line = malloc(LINE_SIZE);
			memset(line, 'a' + w, LINE_SIZE);
			for (int i = 0; i < LINES; i++)
				if (bg_append_line(fd, line, LINE_SIZE) != BG_OK)
					_exit(1);
			_exit(0);
		}
	}
	for (w = 0; w < WRITERS; w++) {
		int st;
		assert_true(wait(&st) > 0);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	close(fd);
	assert_int_equal(bg_read_file(&text, &len, path, 64u << 20), BG_OK);
	assert_int_equal(len, (size_t)WRITERS * LINES * (LINE_SIZE + 1));
	for (p = text; p < text + len; p += LINE_SIZE + 1) {
		int c = p[0] - 'a';
		assert_true(c >= 0 && c < WRITERS);
		for (size_t i = 0; i < LINE_SIZE; i++)
			if (p[i] != p[0])
				fail_msg("line at offset %zu is mixed", (size_t)(p - text));
		assert_int_equal(p[LINE_SIZE], '\n');
		counts[c]++;
	}
	for (w = 0; w < WRITERS; w++)
		assert_int_equal(counts[w], LINES);
	free(text);

	/* a descriptor that cannot be written */
	ro = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(ro >= 0);
	assert_int_equal(bg_append_line(ro, "x", 1), BG_EIO);
	assert_error_contains("cannot append");
	close(ro);
}

/* ---- /proc/PID/stat ----------------------------------------------------- */

static void test_proc_stat_parse(void **state)
{
	/* a comm with spaces and parentheses ends at the last ')'; negative
	 * fields (priority, nice) are skipped */
	const char *good = "4242 (a) b (c)) S 7 8 9 0 -1 4194560 10 0 0 0 100 200 0 0 -2 -5 3 0 999 1000 20 "
			   "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
	const char *bad[] = {"",
			     "4242 a S 1",
			     "4242 (x",
			     "4242 (x) S",
			     "(x) S 1 2 3",
			     "4242 (x) S 1 2 3",
			     "4242 (x) S 1 2 3 4 5 6 7 8 9 1x 2 3"};
	bg_proc_stat st;
	size_t i;

	(void)state;
	assert_int_equal(bg_proc_stat_parse(&st, good, strlen(good)), BG_OK);
	assert_int_equal(st.pid, 4242);
	assert_string_equal(st.comm, "a) b (c)");
	assert_int_equal(st.state, 'S');
	assert_int_equal(st.ppid, 7);
	assert_int_equal(st.utime, 100);
	assert_int_equal(st.stime, 200);
	assert_int_equal(st.starttime, 999);
	/* not NUL-terminated: only len bytes are read */
	assert_int_equal(bg_proc_stat_parse(&st, good, 20), BG_EPROTO);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (bg_proc_stat_parse(&st, bad[i], strlen(bad[i])) != BG_EPROTO)
			fail_msg("\"%s\" was accepted", bad[i]);
}

static void test_proc_stat_read(void **state)
{
	bg_proc_stat st;
	pid_t child;

	(void)state;
	assert_int_equal(bg_proc_stat_read(&st, getpid(), 0), BG_OK);
	assert_int_equal(st.pid, getpid());
	assert_int_equal(st.ppid, getppid());
	assert_int_equal(st.state, 'R');
	assert_string_equal(st.comm, "test_futil");
	assert_true(st.starttime > 0);
	assert_int_equal(bg_proc_stat_read(&st, getpid(), getpid()), BG_OK);
	assert_int_equal(st.pid, getpid());

	/* a process that is gone */
	child = fork();
	if (child == 0)
		_exit(0);
	assert_true(child > 0);
	waitpid(child, NULL, 0);
	assert_int_equal(bg_proc_stat_read(&st, child, 0), BG_ENOTFOUND);
	assert_int_equal(st.pid, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mkdir_p),        cmocka_unit_test(test_read_file),
		cmocka_unit_test(test_write_file),     cmocka_unit_test(test_write_all_eintr),
		cmocka_unit_test(test_append_line),    cmocka_unit_test(test_proc_stat_parse),
		cmocka_unit_test(test_proc_stat_read),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
