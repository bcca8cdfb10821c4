/* What Proxmox says about a VM, parsed: the config lock, ha-manager's
 * status, the HA resources file, the running-task list (host/pvestate.h). */
#include "bg_test.h"

#include "host/pvestate.h"

#include <unistd.h>

static void the_lock_comes_from_the_current_config_only(void **state)
{
	char lock[BG_PVE_LOCK_MAX];
	(void)state;

	assert_int_equal(bg_pve_config_lock("name: devvm\nlock: migrate\nmemory: 512\n", lock, sizeof(lock)), 1);
	assert_string_equal(lock, "migrate");
	assert_int_equal(bg_pve_config_lock("lock:   snapshot-delete  \r\n", lock, sizeof(lock)), 1);
	assert_string_equal(lock, "snapshot-delete");
	/* a snapshot section or pending change is not the VM's lock */
	assert_int_equal(bg_pve_config_lock("name: a\n[PENDING]\nlock: backup\n", lock, sizeof(lock)), 0);
	assert_string_equal(lock, "");
	assert_int_equal(bg_pve_config_lock("name: a\n[snap1]\nlock: suspended\n", lock, sizeof(lock)), 0);
	assert_int_equal(bg_pve_config_lock("# lock: backup\nname: lockless\n", lock, sizeof(lock)), 0);
	assert_int_equal(bg_pve_config_lock("", lock, sizeof(lock)), 0);
	/* bytes that would reach a terminal raw are replaced */
	assert_int_equal(bg_pve_config_lock("lock: back\x1b]0;x\aup\n", lock, sizeof(lock)), 1);
	assert_string_equal(lock, "back??0?x?up");
}

static void every_lock_kind_has_a_meaning_and_a_check(void **state)
{
	static const char *const kinds[] = {"backup",   "clone",           "create",     "migrate",  "rollback",
					    "snapshot", "snapshot-delete", "suspending", "suspended"};
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		assert_true(bg_pve_lock_known(kinds[i]));
		assert_true(strlen(bg_pve_lock_meaning(kinds[i])) > 20);
		assert_true(strlen(bg_pve_lock_check(kinds[i])) > 20);
	}
	assert_non_null(strstr(bg_pve_lock_meaning("migrate"), "two QEMUs on one disk"));
	assert_non_null(strstr(bg_pve_lock_meaning("suspended"), "saved"));
	assert_false(bg_pve_lock_known("frobnicate"));
	assert_non_null(strstr(bg_pve_lock_meaning("frobnicate"), "does not know"));
}

static void only_no_lock_or_an_orphaned_backup_is_clearable(void **state)
{
	bg_pve_state st;
	(void)state;

	memset(&st, 0, sizeof(st));
	assert_false(bg_pve_lock_clearable(&st)); /* config unread: unknown is not safe */
	st.config_read = 1;
	assert_true(bg_pve_lock_clearable(&st));
	snprintf(st.lock, sizeof(st.lock), "backup");
	st.vzdump_alive = 0;
	assert_true(bg_pve_lock_clearable(&st));
	st.vzdump_alive = 1;
	assert_false(bg_pve_lock_clearable(&st));
	st.vzdump_alive = -1;
	assert_false(bg_pve_lock_clearable(&st));
	st.vzdump_alive = 0;
	snprintf(st.lock, sizeof(st.lock), "migrate");
	assert_false(bg_pve_lock_clearable(&st));
	snprintf(st.lock, sizeof(st.lock), "suspended");
	assert_false(bg_pve_lock_clearable(&st));
}

static void ha_manager_status_and_the_resources_file(void **state)
{
	char ha[32];
	const char *status = "quorum OK\n"
			     "master node1 (active, Mon Nov 30 10:00:00 2026)\n"
			     "lrm node1 (active, Mon Nov 30 10:00:00 2026)\n"
			     "service vm:1020 (node1, stopped)\n"
			     "service vm:102 (node1, started)\n"
			     "service ct:103 (node2, recovery)\n";
	const char *res = "ct: 102\n\tstate stopped\n\n"
			  "vm: 101\n\tstate disabled\n\n"
			  "vm: 102\n\tgroup prefer-node1\n\tmax_restart 1\n\n"
			  "vm: 104\n\tstate ignored\n";
	(void)state;

	assert_int_equal(bg_pve_ha_status_find(status, 102, ha, sizeof(ha)), 1);
	assert_string_equal(ha, "started");
	assert_int_equal(bg_pve_ha_status_find(status, 1020, ha, sizeof(ha)), 1);
	assert_string_equal(ha, "stopped");
	assert_int_equal(bg_pve_ha_status_find(status, 103, ha, sizeof(ha)), 0); /* a container */
	assert_int_equal(bg_pve_ha_status_find(status, 10, ha, sizeof(ha)), 0);

	assert_int_equal(bg_pve_ha_resources_find(res, 102, ha, sizeof(ha)), 1);
	assert_string_equal(ha, "started"); /* the default */
	assert_int_equal(bg_pve_ha_resources_find(res, 101, ha, sizeof(ha)), 1);
	assert_string_equal(ha, "disabled");
	assert_int_equal(bg_pve_ha_resources_find(res, 104, ha, sizeof(ha)), 1);
	assert_string_equal(ha, "ignored");
	assert_int_equal(bg_pve_ha_resources_find(res, 103, ha, sizeof(ha)), 0);
	assert_int_equal(bg_pve_ha_resources_find("", 102, ha, sizeof(ha)), 0);

	assert_true(bg_pve_ha_busy("recovery") && bg_pve_ha_busy("fence") && bg_pve_ha_busy("migrate"));
	assert_false(bg_pve_ha_busy("started") || bg_pve_ha_busy("stopped") || bg_pve_ha_busy(NULL));
	assert_true(bg_pve_ha_wants_running("started"));
	assert_false(bg_pve_ha_wants_running("stopped"));
}

/* pid 4660 (0x1234) runs with start time 0xABCD; nothing else does. */
static int fake_alive(int pid, unsigned long long pstart)
{
	return pid == 0x1234 && pstart == 0xABCD;
}

static void a_vzdump_of_this_vm_alive_by_pid_and_start_time(void **state)
{
	char upid[160];
	(void)state;

	/* alive, for our VM */
	assert_int_equal(bg_pve_vzdump_find("UPID:n1:00001234:0000ABCD:65000000:vzdump:102:root@pam: 1\n", 102,
					    fake_alive, upid, sizeof(upid)),
			 1);
	assert_string_equal(upid, "UPID:n1:00001234:0000ABCD:65000000:vzdump:102:root@pam:");
	/* another VM's vzdump; another task type; a reused pid (other start) */
	assert_int_equal(bg_pve_vzdump_find("UPID:n1:00001234:0000ABCD:65000000:vzdump:1020:root@pam: 1\n"
					    "UPID:n1:00001234:0000ABCD:65000000:qmstart:102:root@pam: 1\n"
					    "UPID:n1:00001234:0000ABCE:65000000:vzdump:102:root@pam: 1\n",
					    102, fake_alive, upid, sizeof(upid)),
			 0);
	/* an ended task, even with its pid alive */
	assert_int_equal(bg_pve_vzdump_find("UPID:n1:00001234:0000ABCD:65000000:vzdump:102:root@pam: 1 65000100 OK\n",
					    102, fake_alive, upid, sizeof(upid)),
			 0);
	/* a job over all VMs has no id: it may be backing up ours */
	assert_int_equal(bg_pve_vzdump_find("garbage\nUPID:n1:00001234:0000ABCD:65000000:vzdump::root@pam: 1\n", 102,
					    fake_alive, upid, sizeof(upid)),
			 1);
	assert_int_equal(bg_pve_vzdump_find("UPID:broken\nUPID:n1:zz:0000ABCD:65000000:vzdump:102:root@pam:\n", 102,
					    fake_alive, upid, sizeof(upid)),
			 0);
}

static void the_real_alive_check_reads_proc(void **state)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	FILE *f;
	int field;
	(void)state;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)getpid());
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	p = strrchr(buf, ')');
	for (field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	assert_non_null(p);
	assert_int_equal(sscanf(p + 1, "%llu", &start), 1);
	assert_true(bg_pve_task_alive((int)getpid(), start));
	assert_false(bg_pve_task_alive((int)getpid(), start + 1)); /* the pid reused by another process */
	assert_false(bg_pve_task_alive(0x7ffffff0, start));
}

static void the_whole_read_without_qm_or_ha_manager(void **state)
{
	char dir[] = "/tmp/bg-pvestate-XXXXXX", res[64], tasks[64];
	bg_pve_state st;
	bg_pve_state_paths p = {"/nonexistent/qm", "", res, tasks, 1000};
	FILE *f;
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(res, sizeof(res), "%s/resources.cfg", dir);
	snprintf(tasks, sizeof(tasks), "%s/active", dir);
	bg_pve_state_read(&st, &p, 102);
	assert_int_equal(st.config_read, 0); /* qm missing: the lock is unknown */
	assert_false(bg_pve_lock_clearable(&st));
	assert_int_equal(st.ha_managed, 0); /* no resources file: no HA at all */
	assert_non_null(strstr(st.why, "qm config"));

	f = fopen(res, "w");
	assert_non_null(f);
	fputs("vm: 102\n\tstate stopped\nvm: 103\n\tstate ignored\n", f);
	fclose(f);
	bg_pve_state_read(&st, &p, 102);
	assert_int_equal(st.ha_managed, 1);
	assert_string_equal(st.ha_state, "stopped");
	assert_string_equal(st.ha_source, "resources file");
	bg_pve_state_read(&st, &p, 103);
	assert_int_equal(st.ha_managed, 0); /* ignored: qm acts directly */
	bg_pve_state_read(&st, &p, 104);
	assert_int_equal(st.ha_managed, 0);
	unlink(res);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_lock_comes_from_the_current_config_only),
		cmocka_unit_test(every_lock_kind_has_a_meaning_and_a_check),
		cmocka_unit_test(only_no_lock_or_an_orphaned_backup_is_clearable),
		cmocka_unit_test(ha_manager_status_and_the_resources_file),
		cmocka_unit_test(a_vzdump_of_this_vm_alive_by_pid_and_start_time),
		cmocka_unit_test(the_real_alive_check_reads_proc),
		cmocka_unit_test(the_whole_read_without_qm_or_ha_manager),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
