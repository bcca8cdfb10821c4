/*
 * The remedies' target validation (every refusal: injection attempts,
 * pid 1, system paths, `..`, …), their descriptions, and the commands sent
 * to the devvm: a fixed script with the target as a quoted parameter. The
 * scripts themselves are run on a loopback devvm by
 * tests/integration/agent (agent_remedy).
 */
#include "bg_test.h"

#include "agent/remedy.h"
#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>

static void refused(const char *action, const char *target, int recursive, const char *why)
{
	bg_remedy r;
	int rc = bg_remedy_parse(&r, action, target, recursive);

	if (rc != BG_EINVAL)
		fail_msg("%s %s: accepted (rc %d), want refused", action, target ? target : "(null)", rc);
	assert_non_null(strstr(bg_error_last()->message, "refused"));
	assert_non_null(strstr(bg_error_last()->message, "nothing was run"));
	if (why && !strstr(bg_error_last()->message, why))
		fail_msg("%s %s: \"%s\" does not say \"%s\"", action, target, bg_error_last()->message, why);
}

static void accepted(const char *action, const char *target, int recursive, const char *want_target)
{
	bg_remedy r;

	if (bg_remedy_parse(&r, action, target, recursive) != BG_OK)
		fail_msg("%s %s: refused: %s", action, target, bg_error_last()->message);
	assert_string_equal(bg_remedy_action_name(r.action), action);
	assert_string_equal(r.target, want_target);
}

static void test_actions(void **state)
{
	(void)state;
	refused("restart", "a.service", 0, "the action must be one of");
	refused("", "a.service", 0, "the action must be one of");
	refused(NULL, "a.service", 0, "the action must be one of");
	refused("rm -rf", "/", 0, "the action must be one of");
	refused("restart-unit", "", 0, "a target is needed");
	refused("restart-unit", NULL, 0, "a target is needed");
	refused("restart-unit", "a.service", 1, "\"recursive\" is for remove-file only");
}

static void test_units(void **state)
{
	static const char *const bad[] = {
		"a.service;reboot",
		"a.service && reboot",
		"$(reboot).service",
		"`reboot`.service",
		"a'b.service",
		"a\"b.service",
		"a b.service",
		"a\tb.service",
		"a\nb.service",
		"-a.service",
		".service",
		"@x.service",
		"a@b@c.service",
		"a.service/..",
		"a",
		"a.slice",
		"a.scope",
		"a.device",
		"../a.service",
		"a|b.service",
	};
	size_t i;
	char big[300];

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused("restart-unit", bad[i], 0, NULL);
	refused("restart-unit", "a\x1b[2J.service", 0, "control");
	refused("restart-unit", "caf\xc3\xa9.service", 0, "non-ASCII");
	memset(big, 'a', sizeof(big));
	snprintf(big + 250, sizeof(big) - 250, ".service");
	refused("restart-unit", big, 0, "1 to 255");
	accepted("restart-unit", "bg-demo.service", 0, "bg-demo.service");
	accepted("restart-unit", "unit:bg-demo.service", 0, "bg-demo.service"); /* a culprit as is */
	accepted("restart-unit", "getty@tty1.service", 0, "getty@tty1.service");
	accepted("restart-unit", "data\\x2dvol.mount", 0, "data\\x2dvol.mount");
	accepted("restart-unit", "nginx.socket", 0, "nginx.socket");
	/* a culprit of another kind is not stripped, and then fails the check */
	refused("restart-unit", "pid:12:x", 0, NULL);
}

static void test_processes(void **state)
{
	bg_remedy r;

	(void)state;
	refused("kill-process", "1:init", 0, "pid 1");
	refused("kill-process", "1:bash", 0, "pid 1");
	refused("kill-process", "4242", 0, "PID:COMM");
	refused("kill-process", "0:x", 0, "decimal");
	refused("kill-process", "-1:x", 0, "decimal");
	refused("kill-process", "+5:x", 0, "decimal");
	refused("kill-process", "042:x", 0, "decimal");
	refused("kill-process", "12a:x", 0, "decimal");
	refused("kill-process", "4242;reboot:x", 0, "decimal");
	refused("kill-process", "$(id):x", 0, "decimal");
	refused("kill-process", "99999999:x", 0, "decimal");
	refused("kill-process", "4194305:x", 0, "limit");
	refused("kill-process", "4242:", 0, "1 to 15");
	refused("kill-process", "4242:a-very-long-command-name", 0, "1 to 15");
	refused("kill-process", "4242:x\ny", 0, "control");
	refused("kill-process", "4242:systemd", 0, "never killed");
	refused("kill-process", "4242:sshd", 0, "never killed");
	refused("kill-process", "2:kthreadd", 0, "never killed");
	assert_int_equal(bg_remedy_parse(&r, "kill-process", "pid:4242:stress-ng", 0), BG_OK);
	assert_int_equal(r.pid, 4242);
	assert_string_equal(r.comm, "stress-ng");
	/* a comm may hold anything printable: it is quoted, never spliced */
	assert_int_equal(bg_remedy_parse(&r, "kill-process", "77:a'b;$(c) d:e", 0), BG_OK);
	assert_int_equal(r.pid, 77);
	assert_string_equal(r.comm, "a'b;$(c) d:e");
}

static void test_files(void **state)
{
	static const char *const bad[] = {
		"/",
		"relative/path",
		"data/fill",
		"/data/../etc/passwd",
		"/data/./fill",
		"/data//fill",
		"/data/fill/",
		"/data/..",
		"/tmp",
		"/data",
		"/home",
		"/etc/passwd",
		"/etc",
		"/usr/bin/ls",
		"/boot/vmlinuz",
		"/bin/sh",
		"/sbin/init",
		"/lib/x86_64-linux-gnu/libc.so.6",
		"/lib64/ld-linux-x86-64.so.2",
		"/proc/1/mem",
		"/sys/kernel",
		"/dev/sda",
		"/dev/shm",
		"/run/systemd/x",
		"/var/lib/dpkg/status",
		"/var/lib/apt/lists",
		"/var/lib/systemd/x",
		"/var/log",
		"/var/lib",
		"/home/alice",
		"/srv/www",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused("remove-file", bad[i], 0, NULL);
	refused("remove-file", "/data/fill\n/etc/passwd", 0, "control");
	refused("remove-file", "/data/fill\r", 0, "control");
	refused("remove-file", "/etc/passwd", 0, "never removed");
	refused("remove-file", "/data/../etc/passwd", 0, "canonical");
	accepted("remove-file", "/data/fill", 0, "/data/fill");
	accepted("remove-file", "file:/dev/shm/fill", 0, "/dev/shm/fill");
	accepted("remove-file", "/var/log/huge.log", 0, "/var/log/huge.log");
	accepted("remove-file", "/home/alice/core.1234", 0, "/home/alice/core.1234");
	accepted("remove-file", "/data/many", 1, "/data/many");
	/* quotes and $ are odd but harmless once quoted */
	accepted("remove-file", "/data/it's $(here)", 0, "/data/it's $(here)");
}

static void test_mounts(void **state)
{
	(void)state;
	refused("remount", "data", 0, "canonical");
	refused("remount", "/data/", 0, "canonical");
	refused("remount", "/data/../etc", 0, "canonical");
	refused("remount", "/my data", 0, "letters");
	refused("remount", "/data;reboot", 0, "letters");
	refused("remount", "/data\\040x", 0, "letters");
	refused("remount", "/proc", 0, "not remounted");
	refused("remount", "/sys/fs/cgroup", 0, "not remounted");
	refused("remount", "/dev/shm", 0, "not remounted");
	refused("remount", "/run", 0, "not remounted");
	accepted("remount", "/data", 0, "/data");
	accepted("remount", "mount:/srv/data-1", 0, "/srv/data-1");
	accepted("remount", "/", 0, "/");
}

/* The command is `SUDO sh -c 'SCRIPT' bg-remedy 'ARG'…`: whatever the
 * target holds, it stays one single-quoted word. */
static void test_command_quotes_the_target(void **state)
{
	bg_remedy r;
	char *cmd;

	(void)state;
	assert_int_equal(bg_remedy_parse(&r, "remove-file", "/data/it's $(reboot)", 0), BG_OK);
	cmd = bg_remedy_command(&r, "sudo -n");
	assert_non_null(cmd);
	assert_true(strncmp(cmd, "sudo -n sh -c '", 15) == 0);
	assert_non_null(strstr(cmd, "' bg-remedy '/data/it'\\''s $(reboot)' 'file'"));
	free(cmd);

	assert_int_equal(bg_remedy_parse(&r, "kill-process", "4242:burn", 0), BG_OK);
	cmd = bg_remedy_command(&r, "");
	assert_true(strncmp(cmd, "sh -c '", 7) == 0);
	assert_non_null(strstr(cmd, "' bg-remedy '4242' 'burn'"));
	assert_non_null(strstr(cmd, "env kill -TERM"));
	free(cmd);

	assert_int_equal(bg_remedy_parse(&r, "remove-file", "/data/many", 1), BG_OK);
	cmd = bg_remedy_command(&r, NULL);
	assert_non_null(strstr(cmd, "' bg-remedy '/data/many' 'recursive'"));
	free(cmd);

	assert_int_equal(bg_remedy_parse(&r, "restart-unit", "bg-demo.service", 0), BG_OK);
	cmd = bg_remedy_command(&r, "doas");
	assert_true(strncmp(cmd, "doas sh -c '", 12) == 0);
	assert_non_null(strstr(cmd, "systemctl restart -- \"$u\""));
	assert_non_null(strstr(cmd, "' bg-remedy 'bg-demo.service'"));
	free(cmd);

	assert_int_equal(bg_remedy_parse(&r, "remount", "/data", 0), BG_OK);
	cmd = bg_remedy_command(&r, "sudo -n");
	assert_non_null(strstr(cmd, "mount -o remount,rw -- \"$m\""));
	assert_non_null(strstr(cmd, "' bg-remedy '/data'"));
	free(cmd);
}

static void test_descriptions(void **state)
{
	static const struct {
		const char *action, *target;
		int recursive;
		const char *want;
	} cases[] = {
		{"restart-unit", "bg-demo.service", 0, "restart the systemd unit bg-demo.service"},
		{"kill-process", "4242:burn", 0, "kill process 4242 (burn)"},
		{"remove-file", "/data/fill", 0, "DELETE the file /data/fill"},
		{"remove-file", "/data/many", 1,
		 "DELETE the directory /data/many on the devvm and everything under it"},
		{"remount", "/data", 0, "remount /data read-write"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bg_remedy r;
		char *d;

		assert_int_equal(bg_remedy_parse(&r, cases[i].action, cases[i].target, cases[i].recursive), BG_OK);
		d = bg_remedy_describe(&r);
		assert_non_null(d);
		if (!strstr(d, cases[i].want))
			fail_msg("\"%s\" does not say \"%s\"", d, cases[i].want);
		free(d);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_actions),      cmocka_unit_test(test_units),
		cmocka_unit_test(test_processes),    cmocka_unit_test(test_files),
		cmocka_unit_test(test_mounts),       cmocka_unit_test(test_command_quotes_the_target),
		cmocka_unit_test(test_descriptions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
