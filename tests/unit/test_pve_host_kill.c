/* The checked kill of `cycle` against a pid reused between the identity
 * check and the signal. The seam (host/host_test.h) runs in that window:
 * there the test kills VM 102's real QEMU (started as Proxmox starts it,
 * bg_qemu.h), reaps it, and makes a new process take the very same pid
 * (through /proc/sys/kernel/ns_last_pid, root only). The second identity
 * check must refuse to signal it. */
#include "bg_test.h"
#include "bg_qemu.h"

#include "host/host_test.h"
#include "host/pve_host.h"

#include <fcntl.h>
#include <ftw.h>
#include <json-c/json.h>
#include <sys/prctl.h>
#include <sys/wait.h>

static char dir[] = "/tmp/bg-pvekill-XXXXXX";

typedef struct swap {
	int reused; /* the new process, holding the checked pid; 0 if none */
	int tries;
} swap;

static int set_last_pid(int pid)
{
	char num[32];
	int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC), n, ok;

	if (fd < 0)
		return -1;
	n = snprintf(num, sizeof(num), "%d", pid);
	ok = write(fd, num, (size_t)n) == n;
	close(fd);
	return ok ? 0 : -1;
}

/* The QEMU dies and its pid goes to a process that is not QEMU. */
static void swap_process(int pid, void *arg)
{
	swap *sw = arg;
	pid_t child;

	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0); /* ours to reap: we are its subreaper */
	for (sw->tries = 0; sw->tries < 500; sw->tries++) {
		if (set_last_pid(pid - 1) != 0)
			return;
		child = fork();
		if (child == 0) {
			for (;;)
				pause();
		}
		if (child == pid) {
			sw->reused = child;
			return;
		}
		kill(child, SIGKILL); /* another fork took the number first: again */
		waitpid(child, NULL, 0);
	}
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void a_pid_reused_before_the_kill_is_never_signalled(void **state)
{
	bg_test_qemu q;
	bg_config *cfg = NULL;
	bg_pve_host_options o;
	bg_pve_host *h = NULL;
	bg_pve_host_report *r = NULL;
	bg_pve_request req = {bg_pve_verb_find("cycle"), 1};
	swap sw = {0, 0};
	char text[1024], st = 0;
	json_object *doc, *steps, *s, *v;
	size_t i;
	int n, saw_kill = 0;

	(void)state;
	if (geteuid() != 0 || set_last_pid(1) != 0) {
		/* ns_last_pid needs root; CI runs the tests as root, and there a
		 * skip would hide the test */
		if (getenv("CI") && strcmp(getenv("CI"), "true") == 0)
			fail_msg(
				"cannot write /proc/sys/kernel/ns_last_pid (not root?): the pid-reuse test cannot run");
		skip();
	}
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	assert_int_equal(bg_test_qemu_start_vm(&q, dir, 102), 0);
	/* qm itself is absent: the lock cannot be read, so cycle goes to the
	 * checked kill at once, never to qm unlock or qm start */
	n = snprintf(text, sizeof(text),
		     "[vm]\nvmid = 102\n[paths]\nqm = /nonexistent/qm\nrun_dir = %s\nlog = %s/pve.log\n"
		     "state_dir = %s\nlock_dir = %s\n[timeouts]\nqm = 2\nqmp = 1\nkill = 2\n"
		     "[forensics]\nblockstats_interval_ms = 10\n[proxmox]\nha_manager =\n"
		     "ha_resources = %s/resources.cfg\ntasks_active = %s/tasks\npveversion =\n",
		     dir, dir, dir, dir, dir, dir);
	assert_int_equal(bg_config_new(&cfg, BG_CONFIG_PVE), BG_OK);
	assert_int_equal(bg_config_load_string(cfg, "test.conf", text, (size_t)n), BG_OK);
	assert_int_equal(bg_config_validate(cfg), BG_OK);
	assert_int_equal(bg_pve_host_options_init(&o, BG_PVE_HOST_OPTIONS_VERSION), BG_OK);
	o.config = cfg;
	assert_int_equal(bg_pve_host_new(&h, &o), BG_OK);

	bg_pve_host_set_kill_hook(swap_process, &sw);
	assert_int_equal(bg_pve_host_run(&r, h, &req), BG_EFAILED);
	bg_pve_host_set_kill_hook(NULL, NULL);
	if (!sw.reused)
		fail_msg("could not make a process take pid %d (%d tries)", q.pid, sw.tries);

	/* the process now holding the pid was not signalled */
	assert_int_equal(bg_proc_state(sw.reused, &st), BG_OK);
	assert_true(st != 'Z' && st != 'X');
	assert_int_equal(waitpid(sw.reused, NULL, WNOHANG), 0);
	doc = json_tokener_parse(bg_pve_host_report_json(r));
	assert_non_null(doc);
	assert_true(json_object_object_get_ex(doc, "steps", &steps));
	for (i = 0; i < json_object_array_length(steps); i++) {
		s = json_object_array_get_idx(steps, i);
		if (!json_object_object_get_ex(s, "name", &v) || strcmp(json_object_get_string(v), "kill") != 0)
			continue;
		saw_kill = 1;
		assert_true(json_object_object_get_ex(s, "ok", &v) && !json_object_get_boolean(v));
		assert_true(json_object_object_get_ex(s, "detail", &v));
		assert_non_null(strstr(json_object_get_string(v), "changed between checks"));
	}
	assert_true(saw_kill);
	assert_int_equal(bg_pve_host_report_exit_code(r), BG_PVE_EXIT_FAILED);
	json_object_put(doc);

	kill(sw.reused, SIGKILL);
	waitpid(sw.reused, NULL, 0);
	q.pid = 0; /* already dead and reaped */
	bg_test_qemu_stop(&q);
	bg_pve_host_report_free(r);
	bg_pve_host_free(h);
	bg_config_free(cfg);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_pid_reused_before_the_kill_is_never_signalled),
	};
	if (!bg_test_qemu_available()) {
		fprintf(stderr, "test_pve_host_kill: %s or the qemu-id shim is missing (scripts/bootstrap)\n",
			BG_TEST_QEMU);
		return 77;
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
