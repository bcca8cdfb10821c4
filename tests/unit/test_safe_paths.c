/* A local user on the Proxmox host cannot block or forge: breakglass-pve
 * refuses, naming the path and the fix, a pve.conf or a directory of it
 * that is not root-owned or is group/other-writable (and the parents up to
 * /), a lock file somebody else made or a directory in its place, and a
 * log that is a hard link. The tests run as root: "somebody else" is
 * nobody (uid 65534), by chown. */
#include "bg_test.h"

#include "host/lock.h"
#include "host/pve_host.h"
#include "host/safe_path.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOBODY 65534

static char dir[] = "/tmp/bg-safe-XXXXXX";
static char conf[128], state[128], lockd[128], run[128], logd[128], logp[160];

static void path_of(char *out, size_t n, const char *a, const char *b)
{
	snprintf(out, n, "%s/%s", a, b);
}

static bg_config *config(void)
{
	bg_config *cfg = NULL;
	char text[2048];
	int n = snprintf(text, sizeof(text),
			 "[vm]\nvmid = 102\n[paths]\nqm = /nonexistent/qm\nrun_dir = %s\nlog = %s\nstate_dir = %s\n"
			 "lock_dir = %s\n[timeouts]\nqm = 2\nlock_wait = 0\n",
			 run, logp, state, lockd);
	assert_int_equal(bg_config_new(&cfg, BG_CONFIG_PVE), BG_OK);
	assert_int_equal(bg_config_load_string(cfg, "test.conf", text, (size_t)n), BG_OK);
	assert_int_equal(bg_config_validate(cfg), BG_OK);
	return cfg;
}

/* bg_pve_host_new with the test's config: its status (the host freed). */
static int host_new(void)
{
	bg_pve_host_options o = BG_PVE_HOST_OPTIONS_INIT;
	bg_pve_host *h = NULL;
	bg_config *cfg = config();
	int rc;

	o.config = cfg;
	rc = bg_pve_host_new(&h, &o);
	bg_pve_host_free(h);
	bg_config_free(cfg);
	return rc;
}

static void refused(int rc, const char *path, const char *fix)
{
	assert_int_equal(rc, BG_EDENIED);
	assert_error_contains(path);
	assert_error_contains(fix);
}

static void the_config_file_must_be_roots_and_not_writable(void **state_)
{
	(void)state_;
	assert_int_equal(bg_pve_host_check_config(conf), BG_OK);
	assert_int_equal(chown(conf, NOBODY, 0), 0);
	refused(bg_pve_host_check_config(conf), conf, "chown root");
	assert_int_equal(chown(conf, 0, 0), 0);
	assert_int_equal(chmod(conf, 0664), 0);
	refused(bg_pve_host_check_config(conf), conf, "chmod go-w");
	assert_int_equal(chmod(conf, 0644), 0);
	assert_int_equal(bg_pve_host_check_config(conf), BG_OK);
}

static void each_directory_must_be_roots_and_not_writable(void **state_)
{
	const char *dirs[] = {state, lockd, run, logd};
	const char *keys[] = {"[paths] state_dir", "[paths] lock_dir", "[paths] run_dir", "[paths] log"};
	size_t i;
	(void)state_;

	assert_int_equal(host_new(), BG_OK);
	for (i = 0; i < 4; i++) {
		assert_int_equal(chown(dirs[i], NOBODY, 0), 0);
		refused(host_new(), dirs[i], "chown root");
		assert_error_contains(keys[i]);
		assert_int_equal(chown(dirs[i], 0, 0), 0);
		assert_int_equal(chmod(dirs[i], 0770), 0);
		refused(host_new(), dirs[i], "chmod go-w");
		assert_int_equal(chmod(dirs[i], 0707), 0);
		refused(host_new(), dirs[i], "writable by group or others");
		assert_int_equal(chmod(dirs[i], 0755), 0);
	}
	assert_int_equal(host_new(), BG_OK);
}

static void a_writable_parent_is_refused_a_sticky_root_one_is_not(void **state_)
{
	(void)state_;
	/* dir (the parent of them all) is under /tmp: root-owned, sticky */
	assert_int_equal(chmod(dir, 0777), 0);
	refused(host_new(), dir, "writable by group or others");
	assert_int_equal(chmod(dir, 01777), 0);
	assert_int_equal(host_new(), BG_OK);
	assert_int_equal(chmod(dir, 0700), 0);
}

static void the_lock_dir_is_created_0700(void **state_)
{
	char made[200];
	struct stat st;
	(void)state_;

	path_of(made, sizeof(made), dir, "new-lock-dir");
	assert_int_equal(bg_host_ensure_dir(made, "[paths] lock_dir"), BG_OK);
	assert_int_equal(stat(made, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(rmdir(made), 0);
}

static int run_cycle(char **error)
{
	bg_pve_host_options o = BG_PVE_HOST_OPTIONS_INIT;
	bg_pve_request req = {bg_pve_verb_find("cycle"), 0};
	bg_pve_host_report *r = NULL;
	bg_pve_host *h = NULL;
	bg_config *cfg = config();
	int code;

	o.config = cfg;
	assert_int_equal(bg_pve_host_new(&h, &o), BG_OK);
	(void)bg_pve_host_run(&r, h, &req);
	assert_non_null(r);
	code = bg_pve_host_report_exit_code(r);
	*error = strdup(bg_pve_host_report_error(r) ? bg_pve_host_report_error(r) : "");
	bg_pve_host_report_free(r);
	bg_pve_host_free(h);
	bg_config_free(cfg);
	return code;
}

static void a_forged_lock_file_is_refused(void **state_)
{
	char lockf[200], *err = NULL;
	int fd;
	(void)state_;

	/* somebody else's lock file, with a forged holder in it */
	path_of(lockf, sizeof(lockf), lockd, "breakglass-pve-102.lock");
	fd = open(lockf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "cycle 1999-01-01T00:00:00Z 6.6.6.6 1\n", 37), 37);
	close(fd);
	assert_int_equal(chown(lockf, NOBODY, 0), 0);
	assert_int_equal(run_cycle(&err), BG_PVE_EXIT_ERROR);
	assert_non_null(strstr(err, lockf));
	assert_non_null(strstr(err, "remove it"));
	assert_null(strstr(err, "6.6.6.6")); /* the forgery is never reported */
	free(err);

	/* a hard link to a file of ours is not a lock file either */
	assert_int_equal(chown(lockf, 0, 0), 0);
	{
		char other[200];
		path_of(other, sizeof(other), lockd, "other");
		assert_int_equal(link(lockf, other), 0);
		assert_int_equal(run_cycle(&err), BG_PVE_EXIT_ERROR);
		assert_non_null(strstr(err, "2 links"));
		free(err);
		unlink(other);
	}
	assert_int_equal(unlink(lockf), 0);

	/* a directory in its place */
	assert_int_equal(mkdir(lockf, 0700), 0);
	assert_int_equal(run_cycle(&err), BG_PVE_EXIT_ERROR);
	assert_non_null(strstr(err, lockf));
	free(err);
	assert_int_equal(rmdir(lockf), 0);
}

static void a_log_that_is_a_hard_link_is_never_written(void **state_)
{
	char target[200], buf[64];
	bg_pve_host_options o = BG_PVE_HOST_OPTIONS_INIT;
	bg_pve_host *h = NULL;
	bg_config *cfg = config();
	int fd;
	(void)state_;

	path_of(target, sizeof(target), dir, "shadow");
	fd = open(target, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	close(fd);
	unlink(logp);
	assert_int_equal(link(target, logp), 0);
	o.config = cfg;
	assert_int_equal(bg_pve_host_new(&h, &o), BG_OK);
	bg_pve_host_log_rejected(h, "x", 1, "test");
	fd = open(target, O_RDONLY);
	assert_int_equal(read(fd, buf, sizeof(buf)), 0); /* nothing written through the link */
	close(fd);
	unlink(logp);
	bg_pve_host_log_rejected(h, "x", 1, "test");
	fd = open(logp, O_RDONLY);
	assert_true(fd >= 0 && read(fd, buf, sizeof(buf)) > 0); /* a file of its own: written */
	close(fd);
	unlink(target);
	unlink(logp);
	bg_pve_host_free(h);
	bg_config_free(cfg);
}

static int setup(void **state_)
{
	int fd;
	(void)state_;
	if (!mkdtemp(dir))
		return -1;
	path_of(conf, sizeof(conf), dir, "pve.conf");
	path_of(state, sizeof(state), dir, "state");
	path_of(lockd, sizeof(lockd), dir, "lock");
	path_of(run, sizeof(run), dir, "run");
	path_of(logd, sizeof(logd), dir, "log");
	path_of(logp, sizeof(logp), logd, "pve.log");
	if (mkdir(state, 0755) || mkdir(lockd, 0700) || mkdir(run, 0755) || mkdir(logd, 0755))
		return -1;
	fd = open(conf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state_)
{
	const char *argv[] = {"/bin/rm", "-rf", "--one-file-system", dir, NULL};
	pid_t pid;
	(void)state_;
	pid = fork();
	if (pid == 0) {
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_config_file_must_be_roots_and_not_writable),
		cmocka_unit_test(each_directory_must_be_roots_and_not_writable),
		cmocka_unit_test(a_writable_parent_is_refused_a_sticky_root_one_is_not),
		cmocka_unit_test(the_lock_dir_is_created_0700),
		cmocka_unit_test(a_forged_lock_file_is_refused),
		cmocka_unit_test(a_log_that_is_a_hard_link_is_never_written),
	};
	if (geteuid() != 0) {
		fprintf(stderr, "test_safe_paths: needs root (chown to another user)\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
