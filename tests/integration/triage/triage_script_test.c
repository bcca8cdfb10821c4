/* The triage script that the library sends (lib/forensics/triage.sh,
 * embedded at build time) run for real, as the devvm's shell would run it
 * (`SHELL -c SCRIPT`): under bash with this machine's Debian tools, and
 * under busybox sh with nothing but busybox's applets on PATH (the lab
 * guest). Every section of bg_triage_section_names must come back, in
 * order, between markers with the run's nonce; and the file's `sec NAME`
 * lines must name exactly those sections. */
#include "bg_test.h"
#include "forensics/triage_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NONCE          "BGTEST-5150"
#define RUN_DEADLINE_S 160 /* the sections' own timeouts add up to 131 s */

static const char *script_file;

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *s;
	long n;

	if (!f)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	s = calloc(1, (size_t)n + 1);
	assert_non_null(s);
	assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return s;
}

/* argv run with envp, stdin /dev/null, stdout and stderr collected until
 * EOF or RUN_DEADLINE_S (then the group is killed and the test fails). */
static char *run(char *const argv[], char *const envp[], size_t *len)
{
	int fds[2], status;
	size_t cap = 1 << 16, n = 0;
	char *out = malloc(cap);
	time_t end = time(NULL) + RUN_DEADLINE_S;
	pid_t pid;

	assert_non_null(out);
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		setpgid(0, 0);
		dup2(null, 0);
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		close(fds[1]);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		struct pollfd p = {.fd = fds[0], .events = POLLIN};
		ssize_t r;

		if (time(NULL) >= end) {
			kill(-pid, SIGKILL);
			fail_msg("%s did not finish the triage script within %d s", argv[0], RUN_DEADLINE_S);
		}
		if (poll(&p, 1, 1000) <= 0)
			continue;
		if (n + 4096 > cap) {
			cap *= 2;
			out = realloc(out, cap);
			assert_non_null(out);
		}
		r = read(fds[0], out + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	out[n] = '\0';
	*len = n;
	return out;
}

/* The parsed run has exactly bg_triage_section_names, in order; the
 * sections every box can answer answered. */
static void check_sections(const char *shell, const char *text, size_t len)
{
	bg_triage *t = NULL;
	size_t i, count = 0;

	assert_int_equal(bg_triage_parse_output(&t, text, len, NONCE), BG_OK);
	while (bg_triage_section_names[count])
		count++;
	if (bg_triage_section_count(t) != count)
		fail_msg("%s: %zu sections, expected %zu; output:\n%s", shell, bg_triage_section_count(t), count, text);
	for (i = 0; i < count; i++) {
		const bg_triage_section *s = bg_triage_section_at(t, i);

		assert_string_equal(s->name, bg_triage_section_names[i]);
		/* parse_output records a section whose markers never came as
		 * "not run": every one must have run */
		if (s->error && strstr(s->error, "not run"))
			fail_msg("%s: section %s never ran:\n%s", shell, s->name, text);
	}
	for (i = 0; i < count; i++) {
		const bg_triage_section *s = bg_triage_section_at(t, i);

		if (strcmp(s->name, "uptime") == 0 || strcmp(s->name, "memory") == 0 || strcmp(s->name, "disk") == 0 ||
		    strcmp(s->name, "inodes") == 0 || strcmp(s->name, "dstate") == 0) {
			if (!s->ok)
				fail_msg("%s: section %s failed (%s):\n%s", shell, s->name, s->error ? s->error : "",
					 s->output);
		}
	}
	assert_non_null(strstr(bg_triage_output(t, "uptime"), "loadavg: "));
	assert_non_null(strstr(bg_triage_output(t, "memory"), "MemTotal:"));
	assert_non_null(strstr(bg_triage_output(t, "disk"), "Mounted on"));
	bg_triage_free(t);
}

static void test_file_names_the_sections(void **state)
{
	char *text = read_file(script_file), *line, *save = NULL;
	size_t i = 0;

	(void)state;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[64];

		if (strncmp(line, "sec ", 4) != 0)
			continue;
		assert_int_equal(sscanf(line + 4, "%63s", name), 1);
		if (!bg_triage_section_names[i])
			fail_msg("%s: section %s is not in bg_triage_section_names", script_file, name);
		if (strcmp(name, bg_triage_section_names[i]) != 0)
			fail_msg("%s: section %zu is %s, bg_triage_section_names says %s", script_file, i, name,
				 bg_triage_section_names[i]);
		i++;
	}
	if (bg_triage_section_names[i])
		fail_msg("%s: no section %s", script_file, bg_triage_section_names[i]);
	free(text);
}

static void test_embedded_script_is_the_file(void **state)
{
	char *file = read_file(script_file), *script = bg_triage_script(NONCE);

	(void)state;
	assert_non_null(script);
	assert_int_equal(strncmp(script, "N=" NONCE "\n", strlen("N=" NONCE "\n")), 0);
	{
		/* the file's lines, less comment lines, blank lines and
		 * indentation (not sent: dropbear limits a command to 9000 bytes) */
		size_t cap = strlen(file) + 1, o = 0;
		char *want = malloc(cap);
		const char *p = file;
		assert_non_null(want);
		while (*p) {
			size_t n = strcspn(p, "\n"), lead = strspn(p, " \t");
			if (lead < n && p[lead] != '#') {
				memcpy(want + o, p + lead, n - lead);
				o += n - lead;
				want[o++] = '\n';
			}
			p += n + (p[n] == '\n');
		}
		want[o] = '\0';
		assert_string_equal(script + strlen("N=" NONCE "\n"), want);
		free(want);
	}
	free(script);
	free(file);
}

static void test_bash(void **state)
{
	char *script = bg_triage_script(NONCE), *out;
	static char bash[] = "/bin/bash", c[] = "-c", path[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin", lang[] = "LANG=C";
	char *argv[] = {bash, c, script, NULL};
	char *envp[] = {path, lang, NULL};
	size_t len;

	(void)state;
	assert_non_null(script);
	if (access(argv[0], X_OK) != 0)
		fail_msg("no /bin/bash");
	out = run(argv, envp, &len);
	check_sections("bash", out, len);
	/* Debian's procps: the --sort branch ran */
	assert_non_null(strstr(out, "RSS"));
	free(out);
	free(script);
}

/* argv run for its effect; its output is dropped. */
static void run_quietly(char *const argv[])
{
	char *envp[] = {NULL}, *out;
	size_t len;

	out = run(argv, envp, &len);
	free(out);
}

static void test_busybox(void **state)
{
	static char busybox[] = "/bin/busybox", shc[] = "sh", c[] = "-c", lang[] = "LANG=C", inst[] = "--install",
		    sym[] = "-s", rmbin[] = "/bin/rm", rf[] = "-rf", dashes[] = "--";
	char dir[] = "/tmp/bg-busybox-XXXXXX", path[64], sh[64];
	char *script = bg_triage_script(NONCE), *out;
	char *argv[] = {busybox, shc, c, script, NULL};
	char *envp[] = {path, lang, NULL};
	char *install[] = {busybox, inst, sym, dir, NULL};
	char *rm[] = {rmbin, rf, dashes, dir, NULL};
	size_t len;

	(void)state;
	assert_non_null(script);
	assert_non_null(mkdtemp(dir));
	/* busybox's applets alone on PATH: no bash, no procps, no systemd */
	run_quietly(install);
	snprintf(path, sizeof(path), "PATH=%s", dir);
	snprintf(sh, sizeof(sh), "%s/sh", dir);
	if (access(sh, X_OK) != 0)
		fail_msg("busybox --install -s %s made no sh", dir);
	out = run(argv, envp, &len);
	run_quietly(rm);
	check_sections("busybox sh", out, len);
	/* busybox's ps has no --sort: the /proc fallback ran */
	assert_non_null(strstr(out, "RSS_KB"));
	free(out);
	free(script);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_names_the_sections),
		cmocka_unit_test(test_embedded_script_is_the_file),
		cmocka_unit_test(test_bash),
		cmocka_unit_test(test_busybox),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: triage_script_test lib/forensics/triage.sh\n");
		return 2;
	}
	script_file = argv[1];
	if (access("/bin/busybox", X_OK) != 0) {
		fprintf(stderr, "triage_script_test: /bin/busybox missing (scripts/bootstrap: busybox-static)\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
