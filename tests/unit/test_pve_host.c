/* The host verb engine without a VM: its log lines, its escaping, its
 * exit statuses and its JSON when qm is missing or the lock is held. The
 * verbs against a real QEMU are in tests/integration/pve. */
#include "bg_test.h"

#include "core/clock.h"
#include "host/lock.h"
#include "host/pve_host.h"

#include <json-c/json.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/bg-pvehost-XXXXXX";
static char logpath[256];

static bg_config *config(const char *qm, const char *log, int lock_wait)
{
	bg_config *cfg = NULL;
	char text[2048];
	int n = snprintf(text, sizeof(text),
			 "[vm]\nvmid = 102\n[paths]\nqm = %s\nrun_dir = %s\nlog = %s\nstate_dir = %s\n"
			 "lock_dir = %s\n[timeouts]\nqm = 2\nlock_wait = %d\n",
			 qm, dir, log, dir, dir, lock_wait);
	assert_int_equal(bg_config_new(&cfg, BG_CONFIG_PVE), BG_OK);
	assert_int_equal(bg_config_load_string(cfg, "test.conf", text, (size_t)n), BG_OK);
	assert_int_equal(bg_config_validate(cfg), BG_OK);
	return cfg;
}

static bg_pve_host *host(bg_config *cfg, const char *client)
{
	bg_pve_host_options o;
	bg_pve_host *h = NULL;

	assert_int_equal(bg_pve_host_options_init(&o, BG_PVE_HOST_OPTIONS_VERSION), BG_OK);
	o.config = cfg;
	o.client = client;
	assert_int_equal(bg_pve_host_new(&h, &o), BG_OK);
	return h;
}

/* The whole log file; the caller frees. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = calloc(1, 65536);
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(logpath, sizeof(logpath), "%s/pve.log", dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];
	(void)state;
	snprintf(cmd, sizeof(cmd), "%s/breakglass-pve-102.lock", dir);
	unlink(cmd);
	snprintf(cmd, sizeof(cmd), "%s/breakglass-pve-rejected.bucket", dir);
	unlink(cmd);
	unlink(logpath);
	{
		/* and the bundles the verbs stored (state_dir is dir) */
		const char *argv[] = {"/bin/rm", "-rf", "--one-file-system", NULL, NULL};
		char forensics[300];
		pid_t pid;
		snprintf(forensics, sizeof(forensics), "%s/forensics", dir);
		argv[3] = forensics;
		pid = fork();
		if (pid == 0) {
			execv(argv[0], (char *const *)argv);
			_exit(127);
		}
		waitpid(pid, NULL, 0);
	}
	return rmdir(dir);
}

static void a_rejected_request_is_one_escaped_log_line(void **state)
{
	static const char input[] = "status\0;\x1b[2J\n\"x\\\xd0\xb0";
	bg_config *cfg = config("/usr/sbin/qm", logpath, 0);
	bg_pve_host *h = host(cfg, "192.0.2.1\nevil");
	regex_t re;
	char *log;
	(void)state;

	unlink(logpath);
	bg_pve_host_log_rejected(h, input, sizeof(input) - 1, "byte 7 is not allowed");
	log = slurp(logpath);
	assert_int_equal(regcomp(&re,
				 "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z breakglass-pve\\[[0-9]+\\]: "
				 "event=rejected verb=- from=192\\.0\\.2\\.1\\?e\\?\\?\\? len=18 input=\"",
				 REG_EXTENDED),
			 0);
	assert_int_equal(regexec(&re, log, 0, NULL, 0), 0);
	regfree(&re);
	assert_non_null(strstr(log, "input=\"status\\x00;\\x1b[2J\\n\\\"x\\\\\\xd0\\xb0\""));
	assert_non_null(strstr(log, "reason=\"byte 7 is not allowed\"\n"));
	assert_ptr_equal(strchr(log, '\n'), log + strlen(log) - 1); /* one line */
	free(log);
	bg_pve_host_free(h);
	bg_config_free(cfg);
}

static void a_missing_qm_is_exit_4_with_the_reason(void **state)
{
	bg_config *cfg = config("/nonexistent/qm", logpath, 0);
	bg_pve_host *h = host(cfg, NULL);
	bg_pve_host_report *r = NULL;
	bg_pve_request req = {bg_pve_verb_find("status"), 1};
	json_object *doc, *v;
	char *log;
	(void)state;

	unlink(logpath);
	assert_int_equal(bg_pve_host_run(&r, h, &req), BG_EFAILED);
	assert_int_equal(bg_pve_host_report_exit_code(r), BG_PVE_EXIT_FAILED);
	assert_non_null(strstr(bg_pve_host_report_text(r), "status: unknown"));
	doc = json_tokener_parse(bg_pve_host_report_json(r));
	assert_non_null(doc);
	assert_true(json_object_object_get_ex(doc, "ok", &v) && !json_object_get_boolean(v));
	assert_true(json_object_object_get_ex(doc, "vmid", &v));
	assert_string_equal(json_object_get_string(v), "102");
	assert_true(json_object_object_get_ex(doc, "error", &v));
	assert_non_null(strstr(json_object_get_string(v), "qm status could not run"));
	assert_true(json_object_object_get_ex(doc, "steps", &v) && json_object_array_length(v) == 1);
	json_object_put(doc);
	log = slurp(logpath);
	assert_non_null(strstr(log, "event=request verb=status from=local json=1\n"));
	assert_non_null(strstr(log, "event=step verb=status from=local step=qm-status ok=0"));
	assert_non_null(strstr(log, "event=complete verb=status from=local ok=0 exit=4"));
	free(log);
	bg_pve_host_report_free(r);
	bg_pve_host_free(h);
	bg_config_free(cfg);
}

static void a_held_lock_is_busy_naming_the_holder(void **state)
{
	bg_config *cfg = config("/nonexistent/qm", logpath, 0);
	bg_pve_host *h = host(cfg, "198.51.100.4");
	bg_pve_host_report *r = NULL;
	bg_pve_request req = {bg_pve_verb_find("cycle"), 0};
	bg_vm_lock held;
	pid_t pid;
	int st, p[2];
	char c;
	(void)state;

	/* flock locks belong to the open file: hold it from another process */
	assert_int_equal(pipe(p), 0);
	pid = fork();
	if (pid == 0) {
		if (bg_vm_lock_acquire(&held, dir, 102, "cycle", "192.0.2.9", 0) != BG_OK)
			_exit(1);
		(void)!write(p[1], "x", 1);
		sleep(5);
		_exit(0);
	}
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(bg_pve_host_run(&r, h, &req), BG_EBUSY);
	assert_int_equal(bg_pve_host_report_exit_code(r), BG_PVE_EXIT_BUSY);
	assert_non_null(strstr(bg_pve_host_report_error(r), "busy: cycle running since 20"));
	assert_non_null(strstr(bg_pve_host_report_error(r), "from 192.0.2.9"));
	/* nothing but the lock step: no forensics, no qm */
	assert_null(strstr(bg_pve_host_report_json(r), "\"forensics\":{"));
	assert_non_null(strstr(bg_pve_host_report_json(r), "\"forensics\":null"));
	bg_pve_host_report_free(r);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	close(p[0]);
	close(p[1]);
	bg_pve_host_free(h);
	bg_config_free(cfg);
}

static void a_forensics_while_another_runs_is_busy(void **state)
{
	bg_config *cfg = config("/nonexistent/qm", logpath, 0);
	bg_pve_host *h = host(cfg, "198.51.100.4");
	bg_pve_host_report *r = NULL;
	bg_pve_request req = {bg_pve_verb_find("forensics"), 0};
	bg_vm_lock held;
	pid_t pid;
	int st, p[2];
	char c;
	(void)state;

	/* another forensics (or a cycle taking its own) holds the VM */
	assert_int_equal(pipe(p), 0);
	pid = fork();
	if (pid == 0) {
		if (bg_vm_lock_acquire(&held, dir, 102, "forensics", "192.0.2.9", 0) != BG_OK)
			_exit(1);
		(void)!write(p[1], "x", 1);
		sleep(5);
		_exit(0);
	}
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(bg_pve_host_run(&r, h, &req), BG_EBUSY);
	assert_int_equal(bg_pve_host_report_exit_code(r), BG_PVE_EXIT_BUSY);
	assert_non_null(strstr(bg_pve_host_report_error(r), "busy: forensics running since 20"));
	assert_non_null(strstr(bg_pve_host_report_text(r), "busy: forensics running"));
	assert_non_null(strstr(bg_pve_host_report_json(r), "\"forensics\":null")); /* no second bundle */
	bg_pve_host_report_free(r);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	close(p[0]);
	close(p[1]);
	bg_pve_host_free(h);
	bg_config_free(cfg);
}

static size_t count_lines(const char *s, const char *needle)
{
	size_t n = 0;
	for (; (s = strstr(s, needle)); s++)
		n++;
	return n;
}

static void rejected_requests_are_capped_and_rate_limited(void **state)
{
	bg_config *cfg = config("/usr/sbin/qm", logpath, 0);
	bg_pve_host *h = host(cfg, "203.0.113.5");
	char big[4096], bucket[300], *log, *line, *save = NULL;
	FILE *f;
	int i;
	(void)state;

	memset(big, 'A', sizeof(big));
	snprintf(bucket, sizeof(bucket), "%s/breakglass-pve-rejected.bucket", dir);
	unlink(bucket); /* a full bucket: earlier tests took tokens */
	unlink(logpath);
	for (i = 0; i < 100; i++)
		bg_pve_host_log_rejected(h, big, sizeof(big), "request too long");
	log = slurp(logpath);
	/* a burst of BG_REJECT_BURST lines, then nothing until the bucket
	 * refills (one a second): a few may refill while the test runs */
	assert_true(count_lines(log, "event=rejected") >= 60);
	assert_true(count_lines(log, "event=rejected") <= 63);
	for (line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		assert_true(strlen(line) < 600); /* not 4 KB each */
		assert_non_null(strstr(line, "len=4096 input=\"AAAA"));
		assert_non_null(strstr(line, "input_cut=3840"));
	}
	free(log);

	/* a minute later (the bucket's clock moved back): logged again,
	 * saying how many were dropped */
	f = fopen(bucket, "w");
	assert_non_null(f);
	fprintf(f, "0 %lld 40\n", (long long)time(NULL) * 1000 - 60000);
	fclose(f);
	unlink(logpath);
	bg_pve_host_log_rejected(h, "x", 1, "not a verb");
	log = slurp(logpath);
	assert_int_equal(count_lines(log, "event=rejected"), 1);
	assert_non_null(strstr(log, "suppressed=40"));
	free(log);
	bg_pve_host_free(h);
	bg_config_free(cfg);
}

/* A qm that never returns (each call is killed at [timeouts] qm = 2 s):
 * the verb's one overall deadline ends cycle early, with a clear status,
 * and the VM lock is released. */
static void a_verb_ends_at_its_overall_deadline(void **state)
{
	char qm[300];
	bg_config *cfg;
	bg_pve_host_options o;
	bg_pve_host *h = NULL;
	bg_pve_host_report *r = NULL;
	bg_pve_request req = {bg_pve_verb_find("cycle"), 1};
	bg_vm_lock again;
	int64_t t0;
	FILE *f;
	(void)state;

	snprintf(qm, sizeof(qm), "%s/qm-hangs", dir);
	f = fopen(qm, "w");
	assert_non_null(f);
	fputs("#!/bin/sh\nexec sleep 100\n", f);
	fclose(f);
	assert_int_equal(chmod(qm, 0755), 0);
	cfg = config(qm, logpath, 0);
	assert_int_equal(bg_pve_host_options_init(&o, BG_PVE_HOST_OPTIONS_VERSION), BG_OK);
	o.config = cfg;
	o.deadline_ms = 1500;
	assert_int_equal(bg_pve_host_new(&h, &o), BG_OK);
	t0 = bg_now_ms();
	assert_int_equal(bg_pve_host_run(&r, h, &req), BG_EFAILED);
	/* without the deadline: forensics 2 s, unlock 2 s, start 2 s, verify 2 s */
	if (bg_now_ms() - t0 > 4000)
		fail_msg("cycle took %lld ms past a 1500 ms deadline", (long long)(bg_now_ms() - t0));
	assert_int_equal(bg_pve_host_report_exit_code(r), BG_PVE_EXIT_FAILED);
	assert_non_null(strstr(bg_pve_host_report_error(r), "overall deadline"));
	assert_non_null(strstr(bg_pve_host_report_json(r), "\"name\":\"deadline\",\"ok\":false"));
	assert_null(strstr(bg_pve_host_report_json(r), "\"name\":\"qm-start\""));
	bg_pve_host_report_free(r);
	/* the lock is free again at once */
	assert_int_equal(bg_vm_lock_acquire(&again, dir, 102, "cycle", NULL, 0), BG_OK);
	bg_vm_lock_release(&again);
	bg_pve_host_free(h);
	bg_config_free(cfg);
	unlink(qm);
}

static void an_unwritable_log_is_not_fatal(void **state)
{
	bg_config *cfg = config("/nonexistent/qm", "/nonexistent/dir/pve.log", 0);
	bg_pve_host *h = host(cfg, NULL);
	bg_pve_host_report *r = NULL;
	bg_pve_request req = {bg_pve_verb_find("status"), 0};
	(void)state;

	bg_pve_host_log_rejected(h, "x", 1, "test");
	assert_int_equal(bg_pve_host_run(&r, h, &req), BG_EFAILED); /* qm missing, not the log */
	assert_non_null(r);
	assert_int_equal(bg_pve_host_report_exit_code(r), BG_PVE_EXIT_FAILED);
	assert_non_null(strstr(bg_pve_host_report_error(r), "qm status could not run"));
	assert_null(strstr(bg_pve_host_report_error(r), "pve.log"));
	bg_pve_host_report_free(r);
	bg_pve_host_free(h);
	bg_config_free(cfg);

	/* and with a qm that answers, the verb succeeds although nothing is logged */
	{
		char qm[300];
		FILE *f;

		snprintf(qm, sizeof(qm), "%s/qm-stopped", dir);
		f = fopen(qm, "w");
		assert_non_null(f);
		fputs("#!/bin/sh\necho 'status: stopped'\n", f);
		fclose(f);
		assert_int_equal(chmod(qm, 0755), 0);
		cfg = config(qm, "/nonexistent/dir/pve.log", 0);
		h = host(cfg, NULL);
		r = NULL;
		assert_int_equal(bg_pve_host_run(&r, h, &req), BG_OK);
		assert_int_equal(bg_pve_host_report_exit_code(r), BG_PVE_EXIT_OK);
		assert_non_null(strstr(bg_pve_host_report_text(r), "status: stopped"));
		bg_pve_host_report_free(r);
		bg_pve_host_free(h);
		bg_config_free(cfg);
		unlink(qm);
	}
}

static void options_and_nulls(void **state)
{
	bg_pve_host_options o;
	bg_pve_host *h = (bg_pve_host *)1;
	(void)state;

	assert_int_equal(bg_pve_host_options_init(&o, 99), BG_EINVAL);
	assert_int_equal(bg_pve_host_options_init(&o, BG_PVE_HOST_OPTIONS_VERSION), BG_OK);
	assert_int_equal(bg_pve_host_new(&h, &o), BG_EINVAL); /* no config */
	assert_null(h);
	bg_pve_host_free(NULL);
	bg_pve_host_report_free(NULL);
	assert_int_equal(bg_pve_host_report_exit_code(NULL), BG_PVE_EXIT_ERROR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_rejected_request_is_one_escaped_log_line),
		cmocka_unit_test(a_missing_qm_is_exit_4_with_the_reason),
		cmocka_unit_test(a_held_lock_is_busy_naming_the_holder),
		cmocka_unit_test(a_forensics_while_another_runs_is_busy),
		cmocka_unit_test(rejected_requests_are_capped_and_rate_limited),
		cmocka_unit_test(a_verb_ends_at_its_overall_deadline),
		cmocka_unit_test(an_unwritable_log_is_not_fatal),
		cmocka_unit_test(options_and_nulls),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
