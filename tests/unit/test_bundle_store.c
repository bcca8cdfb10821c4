/* Where the forensics bundle is stored and pruned: pruning never leaves
 * state_dir/forensics (a planted symlink is never followed) and never
 * deletes a bundle that a concurrent run is still writing. No VM: qm is
 * missing and run_dir is empty, so the bundle is quick and says so. */
#include "bg_test.h"

#include "host/bundle.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/bg-store-XXXXXX";
static char run[128], state[128], store[160], victim[128];

static void path_of(char *out, size_t n, const char *a, const char *b)
{
	snprintf(out, n, "%s/%s", a, b);
}

static void make_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x\n", 2), 2);
	close(fd);
}

static void make_bundle(const char *name)
{
	char p[512], f[600];

	path_of(p, sizeof(p), store, name);
	assert_int_equal(mkdir(p, 0700), 0);
	path_of(f, sizeof(f), p, "summary.json");
	make_file(f);
}

static int exists(const char *a, const char *b)
{
	char p[600];
	struct stat st;

	if (b)
		path_of(p, sizeof(p), a, b);
	else
		snprintf(p, sizeof(p), "%s", a);
	return lstat(p, &st) == 0;
}

static bg_forensics *collect(int keep)
{
	bg_forensics_options o;
	bg_forensics *f = NULL;

	memset(&o, 0, sizeof(o));
	o.vmid = 102;
	o.qm = "/nonexistent/qm";
	o.run_dir = run;
	o.state_dir = state;
	o.verb = "forensics";
	o.keep = keep;
	o.qm_timeout_ms = 1000;
	o.qmp_timeout_ms = 500;
	o.blockstats_interval_ms = 10;
	assert_int_equal(bg_forensics_collect(&f, &o), BG_OK);
	assert_non_null(bg_forensics_path(f));
	return f;
}

static void a_planted_symlink_is_never_followed(void **state_)
{
	char link[512], vfile[512];
	bg_forensics *f;
	(void)state_;

	/* the victim: files outside the store that a symlink named like an
	 * old bundle points at */
	path_of(vfile, sizeof(vfile), victim, "precious");
	make_file(vfile);
	path_of(link, sizeof(link), store, "20000101T000000Z-forensics");
	assert_int_equal(symlink(victim, link), 0);
	make_bundle("20000101T000001Z-cycle");

	f = collect(1);
	assert_true(exists(vfile, NULL));                          /* never followed */
	assert_false(exists(store, "20000101T000001Z-cycle"));     /* a real old bundle goes */
	assert_true(exists(bg_forensics_path(f), "summary.json")); /* ours stays */
	bg_forensics_free(f);
	unlink(link);
}

static void a_bundle_being_written_is_never_pruned(void **state_)
{
	char p[512];
	bg_forensics *f;
	int fd;
	(void)state_;

	make_bundle("20000101T000002Z-cycle");
	path_of(p, sizeof(p), store, "20000101T000002Z-cycle");
	/* a concurrent run holds its bundle directory while it writes */
	fd = open(p, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	make_bundle("20000101T000003Z-stop");

	f = collect(1);
	assert_true(exists(store, "20000101T000002Z-cycle")); /* still being written */
	assert_true(exists(p, "summary.json"));
	assert_false(exists(store, "20000101T000003Z-stop")); /* finished: pruned */
	bg_forensics_free(f);

	close(fd); /* that run ends: the next pruning may take it */
	f = collect(1);
	assert_false(exists(store, "20000101T000002Z-cycle"));
	bg_forensics_free(f);
}

static int setup(void **state_)
{
	(void)state_;
	if (!mkdtemp(dir))
		return -1;
	path_of(run, sizeof(run), dir, "run");
	path_of(state, sizeof(state), dir, "state");
	path_of(store, sizeof(store), state, "forensics");
	path_of(victim, sizeof(victim), dir, "victim");
	if (mkdir(run, 0700) || mkdir(state, 0700) || mkdir(store, 0700) || mkdir(victim, 0700))
		return -1;
	return 0;
}

static int teardown(void **state_)
{
	char cmd[600];
	(void)state_;
	snprintf(cmd, sizeof(cmd), "%s", dir);
	/* the tree is ours, made by setup: remove it with nftw-free calls */
	{
		const char *argv[] = {"/bin/rm", "-rf", "--one-file-system", cmd, NULL};
		pid_t pid = fork();
		if (pid == 0) {
			execv(argv[0], (char *const *)argv);
			_exit(127);
		}
		waitpid(pid, NULL, 0);
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_planted_symlink_is_never_followed),
		cmocka_unit_test(a_bundle_being_written_is_never_pruned),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
