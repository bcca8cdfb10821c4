/* A real forensics bundle: a real QEMU started by the qm stand-in (the
 * runner cleans the environment, so the stand-in reads qm.env next to its
 * symlink), collected while running, while SIGSTOPped and when stopped;
 * the files on disk, summary.json and pruning checked. */
#include "bg_test.h"

#include "core/clock.h"
#include "core/json.h"
#include "host/bundle.h"
#include "host/proc.h"
#include "host/qm.h"
#include "host/qmp.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *standin;
static char tmp[64], bindir[128], qm[160], run_dir[128], state_dir[128];

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static char *read_text(const char *dir, const char *name)
{
	char path[512], *buf;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f)
		fail_msg("missing bundle file %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

static void contains(const char *dir, const char *file, const char *needle)
{
	char *t = read_text(dir, file);
	if (!strstr(t, needle))
		fail_msg("%s/%s lacks \"%s\":\n%.2000s", dir, file, needle, t);
	free(t);
}

static void qm_ok(const char *verb)
{
	const char *args[] = {verb, "{vmid}", NULL};
	bg_run_result r;

	assert_int_equal(bg_qm(&r, qm, 20000, args, 100), BG_OK);
	if (r.exit_code != 0)
		fail_msg("qm %s: %s", verb, r.out);
	bg_run_result_clear(&r);
}

static bg_forensics_options options(const char *verb)
{
	bg_forensics_options o;

	memset(&o, 0, sizeof(o));
	o.vmid = 100;
	o.qm = qm;
	o.run_dir = run_dir;
	o.state_dir = state_dir;
	o.verb = verb;
	o.keep = 3;
	o.qm_timeout_ms = 15000; /* gdb attaching to QEMU takes 4 s on a loaded machine */
	o.qmp_timeout_ms = 1000;
	o.blockstats_interval_ms = 200;
	o.gdb = 1;
	o.agent_exec = 1; /* the default of [forensics] agent_exec */
	return o;
}

static json_object *section(json_object *summary, const char *name)
{
	json_object *secs = bg_json_arr(summary, "sections");
	size_t i;

	for (i = 0; secs && i < json_object_array_length(secs); i++)
		if (strcmp(bg_json_str(json_object_array_get_idx(secs, i), "name", ""), name) == 0)
			return json_object_array_get_idx(secs, i);
	fail_msg("no section %s", name);
	return NULL;
}

static void check_summary_file(const bg_forensics *f, const char *verdict)
{
	char *text = read_text(bg_forensics_path(f), "summary.json");
	json_object *s = bg_json_parse(text, strlen(text), "summary.json");

	assert_non_null(s);
	assert_string_equal(bg_json_str(s, "id", ""), bg_forensics_id(f));
	assert_string_equal(bg_json_str(s, "verdict", ""), verdict);
	assert_int_equal(bg_json_int(s, "vmid", 0), 100);
	assert_non_null(bg_json_arr(s, "evidence"));
	assert_true(json_object_array_length(bg_json_arr(s, "evidence")) > 0);
	assert_true(json_object_array_length(bg_json_arr(s, "sections")) >= 11);
	json_object_put(s);
	free(text);
}

static int qemu_pid_from_file(void)
{
	char path[256];
	int pid = 0;

	snprintf(path, sizeof(path), "%s/100.pid", run_dir);
	assert_int_equal(bg_pidfile_read(path, &pid), BG_OK);
	return pid;
}

static void test_running(void **state)
{
	bg_forensics_options o = options("forensics");
	bg_forensics *f = NULL;
	const char *dir;
	json_object *s;

	(void)state;
	qm_ok("start");
	assert_int_equal(bg_forensics_collect(&f, &o), BG_OK);
	/* No guest behind -machine none: QMP answers "running", the null-co
	 * drive's counters stay frozen and no agent answers. Frozen counters
	 * alone once read as the 2026-06-11 signature; with no virtio queue
	 * to show a request in flight and no vCPU to sample, the rules now
	 * say they cannot decide, and why. */
	assert_string_equal(bg_verdict_name(bg_forensics_verdict(f)), "undetermined");
	assert_true(bg_forensics_qmp_answered(f));
	assert_int_equal(bg_forensics_qemu_pid(f), qemu_pid_from_file());
	dir = bg_forensics_path(f);
	assert_non_null(dir);
	assert_non_null(strstr(dir, "/forensics/"));
	assert_non_null(strstr(bg_forensics_id(f), "Z-forensics"));
	assert_non_null(strstr(bg_forensics_text(f), "verdict: undetermined"));
	assert_non_null(strstr(bg_forensics_evidence(f), "frozen"));
	assert_non_null(strstr(bg_forensics_evidence(f), "requests in flight unknown: x-query-virtio lists no virtio"));

	contains(dir, "qmp-query-status.json", "\"running\"");
	contains(dir, "qmp-query-block.json", "drive-scsi0");
	contains(dir, "qmp-query-blockstats.json", "\"second\"");
	contains(dir, "qmp-query-blockstats.json", "\"moved\": false");
	contains(dir, "qmp-query-jobs.json", "[");
	contains(dir, "process.txt", "QEMU for VM 100: yes");
	contains(dir, "process.txt", "wchan");
	contains(dir, "process.txt", "rchar:");
	contains(dir, "qm-status.txt", "status: running");
	contains(dir, "qm-config.txt", "name: devvm");
	contains(dir, "qm-pending.txt", "cur name: devvm");
	contains(dir, "agent-ping.txt", "error: guest agent");
	contains(dir, "host.txt", "/proc/loadavg");
	contains(dir, "host.txt", "MemTotal:");
	contains(dir, "gdb.txt", "Thread");
	/* readable or not (containers), the section is there with its text */
	contains(dir, "kernel-log.txt", "");
	check_summary_file(f, "undetermined");
	contains(dir, "qmp-query-blockstats.json", "\"inflight_unknown\"");
	contains(dir, "qmp-query-blockstats.json", "\"vcpus_wall_ms\"");
	assert_non_null(strstr(bg_forensics_evidence(f), "no vCPU thread was sampled"));

	s = bg_forensics_summary(f);
	assert_true(bg_json_bool(section(s, "query-status"), "ok", 0));
	assert_true(bg_json_bool(section(s, "gdb"), "ok", 0));
	assert_false(bg_json_bool(section(s, "agent-ping"), "ok", 1));
	assert_non_null(bg_json_str(section(s, "agent-ping"), "error", NULL));
	assert_null(bg_json_str(s, "recommended_verb", NULL)); /* undetermined: no verb claimed */
	bg_forensics_free(f);
}

static void test_sigstopped_is_qmp_unresponsive(void **state)
{
	bg_forensics_options o = options("cycle");
	bg_forensics *f = NULL;
	int pid = qemu_pid_from_file();
	int64_t t0;
	json_object *s;

	(void)state;
	o.gdb = 0;
	assert_int_equal(kill(pid, SIGSTOP), 0);
	{
		char st = 0; /* the stop is asynchronous */
		for (int i = 0; i < 100 && bg_proc_state(pid, &st) == BG_OK && st != 'T'; i++)
			bg_sleep_ms(10);
		assert_int_equal(st, 'T');
	}
	t0 = bg_now_ms();
	assert_int_equal(bg_forensics_collect(&f, &o), BG_OK);
	/* one QMP timeout (1 s), the rest of QMP and the agent skipped */
	assert_true(bg_now_ms() - t0 < 6000);
	assert_int_equal(kill(pid, SIGCONT), 0);
	assert_string_equal(bg_verdict_name(bg_forensics_verdict(f)), "qmp-unresponsive");
	assert_false(bg_forensics_qmp_answered(f));
	assert_int_equal(bg_forensics_qemu_pid(f), pid);
	if (!strstr(bg_forensics_evidence(f), "state T"))
		fail_msg("evidence lacks state T:\n%s", bg_forensics_evidence(f));
	assert_non_null(strstr(bg_forensics_id(f), "Z-cycle"));
	s = bg_forensics_summary(f);
	assert_false(bg_json_bool(section(s, "query-status"), "ok", 1));
	assert_non_null(strstr(bg_json_str(section(s, "query-status"), "error", ""), "no greeting"));
	assert_true(bg_json_bool(section(s, "query-blockstats"), "skipped", 0));
	assert_true(bg_json_bool(section(s, "agent-ping"), "skipped", 0));
	contains(bg_forensics_path(f), "process.txt", "state T");
	contains(bg_forensics_path(f), "qmp-query-status.json", "error: QMP");
	check_summary_file(f, "qmp-unresponsive");
	bg_forensics_free(f);
}

static void set_status_timeout(const char *seconds)
{
	char path[256], env[512];

	snprintf(path, sizeof(path), "%s/qm.env", bindir);
	snprintf(env, sizeof(env),
		 "BG_QM_RUN_DIR=%s\nBG_QM_QMP_TIMEOUT=1\nBG_QM_STATUS_TIMEOUT=%s\nBG_QM_TERM_WAIT=0.5\n"
		 "BG_QM_LOCK_TIMEOUT=1\n",
		 run_dir, seconds);
	write_text(path, env);
}

/* A mutating verb's bundle of a frozen QEMU (defer_qm): `qm status`, which
 * waits out qm's own QMP timeout (Proxmox's 3 s; 5 s here), does not gate
 * the verdict; the kill ends its wait, and bg_forensics_finish puts it in
 * the bundle: no section lost, none waited for. */
static void test_deferred_qm_does_not_gate(void **state)
{
	bg_forensics_options o = options("cycle");
	bg_forensics *f = NULL;
	int pid = qemu_pid_from_file();
	int64_t t0, took;
	char *text;
	json_object *s, *sec;

	(void)state;
	o.gdb = 0;
	o.defer_qm = 1;
	set_status_timeout("5");
	assert_int_equal(kill(pid, SIGSTOP), 0);
	{
		char st = 0;
		for (int i = 0; i < 100 && bg_proc_state(pid, &st) == BG_OK && st != 'T'; i++)
			bg_sleep_ms(10);
		assert_int_equal(st, 'T');
	}
	t0 = bg_now_ms();
	assert_int_equal(bg_forensics_collect(&f, &o), BG_OK);
	took = bg_now_ms() - t0;
	assert_string_equal(bg_verdict_name(bg_forensics_verdict(f)), "qmp-unresponsive");
	/* qm status is still waiting on QMP: the verdict did not wait for it
	 * (or, on a machine so loaded that it took 5 s anyway, it ended) */
	if (took < 4000)
		assert_true(bg_forensics_pending(f));
	/* the verb kills the QEMU (here a second on, so that even a slow
	 * machine's qm status has read the pid and waits on QMP): the socket
	 * it waits on closes */
	bg_sleep_ms(1000);
	assert_int_equal(kill(pid, SIGKILL), 0);
	t0 = bg_now_ms();
	bg_forensics_finish(f);
	if (took < 4000)
		assert_true(bg_now_ms() - t0 < 3000); /* not the rest of the 5 s */
	assert_false(bg_forensics_pending(f));
	text = read_text(bg_forensics_path(f), "summary.json");
	s = bg_json_parse(text, strlen(text), "summary.json");
	assert_non_null(s);
	sec = section(s, "qm-status");
	if (took < 4000)
		assert_true(bg_json_bool(sec, "deferred", 0));
	assert_non_null(section(s, "qm-pending"));
	assert_true(json_object_array_length(bg_json_arr(s, "sections")) >= 11); /* every one, gdb off */
	contains(bg_forensics_path(f), "qm-status.txt", "status: running");
	json_object_put(s);
	free(text);
	bg_forensics_free(f);
	set_status_timeout("0.5");
	qm_ok("start"); /* the next tests want a running VM */
}

/* A guest agent stand-in on <vmid>.qga (QEMU's own socket file is
 * unlinked first): answers guest-sync with its id and guest-ping, with a
 * stale reply first as a real agent may leave one behind; guest-exec
 * starts pid 4242, which has exited at the first guest-exec-status, or,
 * `cannot_fork`, fails as qemu-ga does in a guest out of pids. */
static pid_t fake_agent_ex(int cannot_fork)
{
	struct sockaddr_un a;
	char path[256];
	int lfd;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/100.qga", run_dir);
	unlink(path);
	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	memcpy(a.sun_path, path, strlen(path));
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	pid = fork();
	if (pid == 0) {
		for (;;) {
			int c = accept(lfd, NULL, NULL);
			char req[512], reply[256];
			ssize_t n;
			long long id;
			if (c < 0)
				_exit(0);
			if (write(c, "{\"return\": 1}\n", 14) < 0)
				_exit(1);
			while ((n = read(c, req, sizeof(req) - 1)) > 0) {
				req[n] = '\0';
				char *p = strstr(req, "\"id\":");
				if (strstr(req, "guest-sync") && p && sscanf(p + 5, "%lld", &id) == 1)
					snprintf(reply, sizeof(reply), "{\"return\": %lld}\n", id);
				else if (strstr(req, "\"guest-exec\"") && cannot_fork)
					snprintf(reply, sizeof(reply),
						 "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Guest agent "
						 "command failed, error was 'Failed to fork (Resource temporarily "
						 "unavailable)'\"}}\n");
				else if (strstr(req, "\"guest-exec\""))
					snprintf(reply, sizeof(reply), "{\"return\": {\"pid\": 4242}}\n");
				else if (strstr(req, "\"guest-exec-status\""))
					snprintf(reply, sizeof(reply),
						 "{\"return\": {\"exited\": true, \"exitcode\": 0}}\n");
				else
					snprintf(reply, sizeof(reply), "{\"return\": {}}\n");
				if (write(c, reply, strlen(reply)) < 0)
					break;
			}
			close(c);
		}
	}
	close(lfd);
	return pid;
}

static pid_t fake_agent(void)
{
	return fake_agent_ex(0);
}

static void test_agent_answers_is_healthy(void **state)
{
	bg_forensics_options o = options("forensics");
	bg_forensics *f = NULL;
	pid_t agent = fake_agent();

	(void)state;
	o.gdb = 0;
	assert_int_equal(bg_forensics_collect(&f, &o), BG_OK);
	kill(agent, SIGKILL);
	waitpid(agent, NULL, 0);
	if (bg_forensics_verdict(f) != BG_VERDICT_HEALTHY)
		fail_msg("verdict %s:\n%s", bg_verdict_name(bg_forensics_verdict(f)), bg_forensics_text(f));
	contains(bg_forensics_path(f), "agent-ping.txt", "guest-ping answered");
	contains(bg_forensics_path(f), "agent-ping.txt",
		 "exec probe (guest-exec /bin/true): started and exited 0 (pid 4242)");
	assert_true(bg_json_bool(bg_forensics_summary(f), "agent_answered", 0));
	assert_non_null(strstr(bg_json_str(bg_forensics_summary(f), "agent_exec", ""), "started and exited 0"));
	assert_null(bg_json_str(bg_forensics_summary(f), "recommended_verb", NULL));
	bg_forensics_free(f);
}

/* A guest out of pids: its agent answers guest-ping but cannot fork, which
 * the ping alone took for a live guest (the lab's wedge-storm on the
 * Debian devvm). With the probe switched off the old reading comes back. */
static void test_agent_answers_but_cannot_fork_is_guest_busy(void **state)
{
	bg_forensics_options o = options("forensics");
	bg_forensics *f = NULL;
	pid_t agent = fake_agent_ex(1);

	(void)state;
	o.gdb = 0;
	assert_int_equal(bg_forensics_collect(&f, &o), BG_OK);
	if (bg_forensics_verdict(f) != BG_VERDICT_GUEST_BUSY)
		fail_msg("verdict %s:\n%s", bg_verdict_name(bg_forensics_verdict(f)), bg_forensics_text(f));
	assert_non_null(strstr(bg_forensics_evidence(f), "could not start a program"));
	assert_non_null(strstr(bg_forensics_evidence(f), "Failed to fork"));
	contains(bg_forensics_path(f), "agent-ping.txt", "the guest could not start /bin/true");
	assert_string_equal(bg_json_str(bg_forensics_summary(f), "recommended_verb", ""), "reset");
	bg_forensics_free(f);
	f = NULL;
	o.agent_exec = 0;
	assert_int_equal(bg_forensics_collect(&f, &o), BG_OK);
	kill(agent, SIGKILL);
	waitpid(agent, NULL, 0);
	if (bg_forensics_verdict(f) != BG_VERDICT_HEALTHY)
		fail_msg("probe off: verdict %s:\n%s", bg_verdict_name(bg_forensics_verdict(f)), bg_forensics_text(f));
	assert_null(bg_json_str(bg_forensics_summary(f), "agent_exec", NULL));
	bg_forensics_free(f);
}

static int count_bundles(char newest[256])
{
	char base[256];
	struct dirent **names;
	int n, i, count = 0;

	snprintf(base, sizeof(base), "%s/forensics", state_dir);
	n = scandir(base, &names, NULL, alphasort);
	for (i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.' && strcmp(names[i]->d_name, "notes") != 0) {
			count++;
			snprintf(newest, 256, "%s", names[i]->d_name);
		}
		free(names[i]);
	}
	free(names);
	return count;
}

static void test_stopped_and_pruning(void **state)
{
	bg_forensics_options o = options("forensics");
	bg_forensics *f = NULL;
	char path[512], newest[256];
	json_object *s;

	(void)state;
	qm_ok("stop");
	/* an old bundle and something that is not a bundle */
	snprintf(path, sizeof(path), "%s/forensics/20200101T000000Z-forensics", state_dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/forensics/20200101T000000Z-forensics/summary.json", state_dir);
	write_text(path, "{}");
	snprintf(path, sizeof(path), "%s/forensics/notes", state_dir);
	assert_int_equal(mkdir(path, 0700), 0);

	assert_int_equal(bg_forensics_collect(&f, &o), BG_OK);
	assert_string_equal(bg_verdict_name(bg_forensics_verdict(f)), "stopped");
	assert_int_equal(bg_forensics_qemu_pid(f), 0);
	s = bg_forensics_summary(f);
	assert_true(bg_json_bool(section(s, "query-status"), "skipped", 0));
	assert_true(bg_json_bool(section(s, "agent-ping"), "skipped", 0));
	assert_true(bg_json_bool(section(s, "qm-status"), "ok", 0));
	assert_string_equal(bg_json_str(s, "recommended_verb", ""), "start");
	contains(bg_forensics_path(f), "qm-status.txt", "status: stopped");
	contains(bg_forensics_path(f), "process.txt", "no QEMU process");
	check_summary_file(f, "stopped");

	/* keep = 3: the 2020 bundle and the oldest of this run went */
	assert_int_equal(count_bundles(newest), 3);
	snprintf(path, sizeof(path), "%s/forensics/20200101T000000Z-forensics", state_dir);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/forensics/notes", state_dir);
	assert_int_equal(access(path, F_OK), 0);
	bg_forensics_free(f);

	/* one more (same second: a suffixed id); still 3, the newest kept */
	assert_int_equal(bg_forensics_collect(&f, &o), BG_OK);
	assert_int_equal(count_bundles(newest), 3);
	snprintf(path, sizeof(path), "%s/forensics/%s", state_dir, bg_forensics_id(f));
	assert_string_equal(bg_forensics_path(f), path);
	assert_int_equal(access(path, F_OK), 0);
	bg_forensics_free(f);
}

static void test_store_failure_is_not_fatal(void **state)
{
	bg_forensics_options o = options("forensics");
	bg_forensics *f = NULL;

	(void)state;
	o.state_dir = "/dev/null/nowhere";
	o.gdb = 0;
	assert_int_equal(bg_forensics_collect(&f, &o), BG_OK);
	assert_null(bg_forensics_path(f));
	assert_string_equal(bg_verdict_name(bg_forensics_verdict(f)), "stopped");
	assert_non_null(strstr(bg_forensics_text(f), "not stored: cannot create /dev/null"));
	assert_non_null(bg_json_str(bg_forensics_summary(f), "store_error", NULL));
	bg_forensics_free(f);
	assert_int_equal(bg_forensics_collect(&f, NULL), BG_EINVAL);
	assert_null(f);
}

static int setup(void **state)
{
	char path[256], env[512];

	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/bg-forensics-XXXXXX");
	if (!mkdtemp(tmp))
		return -1;
	snprintf(bindir, sizeof(bindir), "%s/bin", tmp);
	snprintf(run_dir, sizeof(run_dir), "%s/run", tmp);
	snprintf(state_dir, sizeof(state_dir), "%s/state", tmp);
	snprintf(qm, sizeof(qm), "%s/qm", bindir);
	if (mkdir(bindir, 0700) || mkdir(run_dir, 0700) || symlink(standin, qm))
		return -1;
	snprintf(path, sizeof(path), "%s/qm.env", bindir);
	snprintf(env, sizeof(env),
		 "BG_QM_RUN_DIR=%s\nBG_QM_QMP_TIMEOUT=1\nBG_QM_STATUS_TIMEOUT=0.5\nBG_QM_TERM_WAIT=0.5\n"
		 "BG_QM_LOCK_TIMEOUT=1\n",
		 run_dir);
	write_text(path, env);
	snprintf(path, sizeof(path), "%s/100.conf", run_dir);
	write_text(path, "name: devvm\nmemory: 256\n");
	return 0;
}

static int teardown(void **state)
{
	char path[256];
	int pid = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/100.pid", run_dir);
	if (bg_pidfile_read(path, &pid) == BG_OK && bg_proc_is_qemu_for_vm(pid, 100, path) == 1) {
		kill(pid, SIGCONT);
		kill(pid, SIGKILL);
	}
	{
		const char *argv[] = {"/bin/rm", "-rf", "--", tmp, NULL};
		bg_run_result r;
		bg_run(&r, argv, 10000);
		bg_run_result_clear(&r);
	}
	return 0;
}

/* --- a real vCPU and a real virtio disk, without a guest OS ------------------
 *
 * What tells a dead block path from a guest that asks nothing of its disk
 * (issue 14), tried on QEMU with SeaBIOS booting a one-sector program from
 * a virtio-blk disk (the stand-in's `args:`): a program that spins (a guest
 * busy without I/O), one that halts (an idle guest), and any program on a
 * disk throttled to 1 byte/s (SeaBIOS's read of the boot sector waits in
 * QEMU, in flight, while its driver polls). */

static const unsigned char spin[] = {0xEB, 0xFE};             /* jmp $ */
static const unsigned char halt[] = {0xFB, 0xF4, 0xEB, 0xFD}; /* sti; hlt; jmp back */

static void boot_vm(const unsigned char *code, size_t len, const char *drive_extra, int agent)
{
	char img[256], conf[1024], path[256];
	unsigned char sector[512];
	FILE *f;

	snprintf(img, sizeof(img), "%s/boot.img", tmp);
	memset(sector, 0, sizeof(sector));
	memcpy(sector, code, len);
	sector[510] = 0x55;
	sector[511] = 0xAA;
	f = fopen(img, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(sector, 1, sizeof(sector), f), sizeof(sector));
	assert_int_equal(ftruncate(fileno(f), 1024 * 1024), 0); /* SeaBIOS skips a tiny disk */
	fclose(f);
	snprintf(conf, sizeof(conf),
		 "name: devvm\n%sargs: -machine q35 -m 64 -drive file=%s,format=raw,if=none,id=drive-virtio0%s "
		 "-device virtio-blk-pci,drive=drive-virtio0,id=virtio0,bootindex=1\n",
		 agent ? "agent: 1\n" : "", img, drive_extra);
	snprintf(path, sizeof(path), "%s/100.conf", run_dir);
	write_text(path, conf);
	qm_ok("start");
}

static void end_vm(void)
{
	char path[256];

	qm_ok("stop");
	snprintf(path, sizeof(path), "%s/100.conf", run_dir);
	write_text(path, "name: devvm\nmemory: 256\n");
}

/* A QMP query's number at `key` (of the first element of an array reply),
 * or -1. */
static long long qmp_number(const char *command, json_object *args, const char *key)
{
	char qmp[256];
	json_object *ret = NULL, *o;
	long long v = -1;

	snprintf(qmp, sizeof(qmp), "%s/100.qmp", run_dir);
	if (bg_qmp_command(qmp, command, args, 3000, &ret) != BG_OK)
		return -1;
	o = json_object_is_type(ret, json_type_array) ? json_object_array_get_idx(ret, 0) : ret;
	if (json_object_object_get_ex(o, "stats", NULL))
		o = bg_json_obj(o, "stats");
	v = (long long)bg_json_int(o, key, -1);
	json_object_put(ret);
	return v;
}

/* Until SeaBIOS has read the boot sector (and run it), 60 s at most. */
static void wait_booted(void)
{
	int i;

	for (i = 0; i < 600 && qmp_number("query-blockstats", NULL, "rd_operations") < 1; i++)
		bg_sleep_ms(100);
	assert_true(qmp_number("query-blockstats", NULL, "rd_operations") >= 1);
	bg_sleep_ms(300);
}

static bg_forensics *collect_of(void)
{
	bg_forensics_options o = options("forensics");
	bg_forensics *f = NULL;

	o.gdb = 0;
	o.blockstats_interval_ms = 500;
	assert_int_equal(bg_forensics_collect(&f, &o), BG_OK);
	return f;
}

static void expect_verdict(bg_forensics *f, const char *verdict, const char *evidence_part)
{
	if (strcmp(bg_verdict_name(bg_forensics_verdict(f)), verdict) != 0 ||
	    !strstr(bg_forensics_evidence(f), evidence_part))
		fail_msg("verdict %s (expected %s, with \"%s\"):\n%s", bg_verdict_name(bg_forensics_verdict(f)),
			 verdict, evidence_part, bg_forensics_evidence(f));
}

static void test_spinning_guest_is_busy_not_stalled(void **state)
{
	bg_forensics *f;

	(void)state;
	boot_vm(spin, sizeof(spin), "", 0);
	wait_booted();
	f = collect_of();
	expect_verdict(f, "guest-busy", "the block path is idle, not stalled");
	assert_non_null(strstr(bg_forensics_evidence(f), "the guest spins"));
	contains(bg_forensics_path(f), "qmp-query-blockstats.json", "\"inflight\": 0");
	contains(bg_forensics_path(f), "qmp-query-blockstats.json", "CPU 0/TCG");
	assert_string_equal(bg_json_str(bg_forensics_summary(f), "recommended_verb", ""), "reset");
	bg_forensics_free(f);
	end_vm();
}

static void test_request_in_flight_is_block_io_stalled(void **state)
{
	json_object *args = json_object_new_object();
	bg_forensics *f;
	int i;

	(void)state;
	boot_vm(spin, sizeof(spin), ",throttling.bps-total=1", 0);
	bg_json_add_str(args, "path", "/machine/peripheral/virtio0/virtio-backend");
	bg_json_add_int(args, "queue", 0);
	for (i = 0; i < 600 && qmp_number("x-query-virtio-queue-status", args, "inuse") < 1; i++)
		bg_sleep_ms(100);
	json_object_put(args);
	f = collect_of();
	expect_verdict(f, "block-io-stalled", "1 request(s) taken from the guest's virtio queues");
	assert_non_null(strstr(bg_forensics_evidence(f), "2026-06-11 signature"));
	contains(bg_forensics_path(f), "qmp-query-blockstats.json", "\"inflight\": 1");
	bg_forensics_free(f);
	end_vm();
}

static void test_idle_guest_with_and_without_agent(void **state)
{
	char path[256], conf[1024];
	bg_forensics *f;
	char *text;

	(void)state;
	boot_vm(halt, sizeof(halt), "", 0);
	wait_booted();
	f = collect_of();
	/* no agent to ask: an idle guest and a hung one look alike */
	expect_verdict(f, "undetermined", "no guest agent to ask");
	assert_non_null(strstr(bg_forensics_evidence(f), "the guest is idle"));
	bg_forensics_free(f);
	/* the config now names an agent (nothing answers on its channel) */
	snprintf(path, sizeof(path), "%s/100.conf", run_dir);
	text = read_text(run_dir, "100.conf");
	snprintf(conf, sizeof(conf), "agent: 1\n%s", text);
	free(text);
	write_text(path, conf);
	f = collect_of();
	expect_verdict(f, "guest-unresponsive", "the guest is hung, not QEMU");
	bg_forensics_free(f);
	/* the same idle guest whose agent answers is healthy */
	{
		pid_t agent = fake_agent();
		f = collect_of();
		kill(agent, SIGKILL);
		waitpid(agent, NULL, 0);
		expect_verdict(f, "healthy", "guest agent answered guest-ping");
		bg_forensics_free(f);
	}
	end_vm();
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_running),
		cmocka_unit_test(test_agent_answers_is_healthy),
		cmocka_unit_test(test_agent_answers_but_cannot_fork_is_guest_busy),
		cmocka_unit_test(test_sigstopped_is_qmp_unresponsive),
		cmocka_unit_test(test_deferred_qm_does_not_gate),
		cmocka_unit_test(test_stopped_and_pruning),
		cmocka_unit_test(test_store_failure_is_not_fatal),
		cmocka_unit_test(test_spinning_guest_is_busy_not_stalled),
		cmocka_unit_test(test_request_in_flight_is_block_io_stalled),
		cmocka_unit_test(test_idle_guest_with_and_without_agent),
	};
	if (argc != 2) {
		fprintf(stderr, "usage: %s PATH-OF-qm-standin\n", argv[0]);
		return 2;
	}
	standin = argv[1];
	if (access("/usr/bin/qemu-system-x86_64", X_OK) != 0 || access("/usr/bin/gdb", X_OK) != 0) {
		fprintf(stderr,
			"forensics_bundle: qemu-system-x86_64 or gdb missing (scripts/bootstrap installs them)\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
