/*
 * The remedies end to end through the agent's real tools: the devvm is a
 * loopback sshd (tests/lab/sshd-fixture, run by run.sh), the model a
 * script, the decisions taken the way breakglassctl and the web take them
 * (bg_agent_decide() from a thread that follows the session's events).
 *
 * Nothing of this machine is restarted, killed, removed or remounted:
 * `[devvm] sudo` is `env PATH=WORLD/bin:…`, so the fixed scripts find the
 * fake `systemctl`, `kill`, `mount` and `rm` of WORLD/bin first; each
 * records its arguments in WORLD/calls.log, and the fake `kill` signals
 * only the test's own victim process (a copy of sleep named bg-runaway,
 * run as the devvm's user). Each case asserts that exactly the approved
 * command ran, and nothing at all when it was denied, timed out, refused
 * by policy or refused as a bad target.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent_internal.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/futil.h"
#include "core/json.h"
#include "session/session_internal.h"

#define CHECK(cond)                                                                                  \
	do {                                                                                         \
		if (!(cond)) {                                                                       \
			fprintf(stderr, "%s:%d: check failed: %s (%s)\n", __FILE__, __LINE__, #cond, \
				bg_error_last()->message);                                           \
			exit(1);                                                                     \
		}                                                                                    \
	} while (0)

static char world[64];   /* the test's directory, readable by the devvm user */
static char calls[128];  /* WORLD/calls.log: what the fakes were asked */
static char runaway[96]; /* WORLD/bg-runaway: a copy of sleep */

static const char *env(const char *name)
{
	const char *v = getenv(name);

	if (!v || !*v) {
		fprintf(stderr, "remedy_itest: $%s is not set (run through run.sh)\n", name);
		exit(2);
	}
	return v;
}

/* ---- the world ------------------------------------------------------------ */

static void write_script(const char *name, const char *body)
{
	char path[160];
	bg_buf b = BG_BUF_INIT;

	snprintf(path, sizeof(path), "%s/bin/%s", world, name);
	bg_buf_printf(&b, "#!/bin/sh\necho \"%s $*\" >>%s\n%s", name, calls, body);
	unlink(path);
	CHECK(bg_write_file(path, b.data, b.len, 0755) == BG_OK);
	CHECK(chmod(path, 0755) == 0);
	bg_buf_free(&b);
}

static void run(const char *const argv[])
{
	pid_t pid = fork();
	int st;

	CHECK(pid >= 0);
	if (pid == 0) {
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void make_world(void)
{
	char bin[96];
	const char *cp[] = {"/bin/cp", "/bin/sleep", runaway, NULL};

	snprintf(world, sizeof(world), "/tmp/bg-remedy-itest.XXXXXX");
	CHECK(mkdtemp(world) != NULL);
	CHECK(chmod(world, 0755) == 0);
	snprintf(bin, sizeof(bin), "%s/bin", world);
	CHECK(mkdir(bin, 0755) == 0);
	snprintf(calls, sizeof(calls), "%s/calls.log", world);
	snprintf(runaway, sizeof(runaway), "%s/bg-runaway", world);
	run(cp);
	CHECK(chmod(runaway, 0755) == 0);
	write_script("systemctl", "[ \"$1\" = is-active ] && echo active\nexit 0\n");
	write_script("mount", "exit 0\n");
	write_script("rm", "exit 0\n");
	write_script("kill", "exit 0\n"); /* until a victim runs */
}

static void reset_calls(void)
{
	CHECK(bg_write_file(calls, "", 0, 0666) == BG_OK);
	CHECK(chmod(calls, 0666) == 0);
}

static char *read_calls(void)
{
	char *text = NULL;
	size_t len;

	CHECK(bg_read_file(&text, &len, calls, 1 << 20) == BG_OK);
	return text;
}

static void expect_calls(const char *want)
{
	char *got = read_calls();

	if (strcmp(got, want) != 0) {
		fprintf(stderr, "remedy_itest: the fakes were asked:\n%s---\nwanted:\n%s---\n", got, want);
		exit(1);
	}
	free(got);
}

/* The victims still running, ended when the test exits however it exits
 * (a failed CHECK included): a leftover would hold nothing, but it would
 * outlive the test for minutes. */
static pid_t victims[8];
static size_t nvictims;

static void end_victims(void)
{
	size_t i;

	for (i = 0; i < nvictims; i++)
		if (victims[i] > 0 && kill(victims[i], SIGKILL) == 0)
			waitpid(victims[i], NULL, 0);
}

/* A copy of sleep named bg-runaway, run as the devvm's user, so that the
 * fake kill (run as that user) can signal it and nothing else. Its output
 * goes nowhere: it must not hold the test's pipes open. */
static pid_t spawn_victim(void)
{
	struct passwd *pw = getpwnam(env("SSHD_USER"));
	char comm_path[64], *comm = NULL;
	pid_t pid;
	int i;

	CHECK(pw != NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
			_exit(125);
		if (setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
			_exit(126);
		execl(runaway, "bg-runaway", "300", (char *)NULL);
		_exit(127);
	}
	if (nvictims < sizeof(victims) / sizeof(victims[0]))
		victims[nvictims++] = pid;
	snprintf(comm_path, sizeof(comm_path), "/proc/%d/comm", (int)pid);
	for (i = 0; i < 200; i++) {
		size_t len;

		free(comm);
		comm = NULL;
		if (bg_read_file(&comm, &len, comm_path, 64) == BG_OK && strcmp(comm, "bg-runaway\n") == 0)
			break;
		usleep(10000);
	}
	CHECK(comm && strcmp(comm, "bg-runaway\n") == 0);
	free(comm);
	return pid;
}

/* Whether the victim ended within `ms` (reaped if so). */
static int victim_gone(pid_t pid, int ms)
{
	int64_t until = bg_now_ms() + ms;
	int st;

	do {
		pid_t r = waitpid(pid, &st, WNOHANG);
		size_t i;

		if (r == pid) {
			for (i = 0; i < nvictims; i++)
				if (victims[i] == pid)
					victims[i] = 0;
			return 1;
		}
		CHECK(r == 0);
		usleep(20000);
	} while (bg_now_ms() < until);
	return 0;
}

static void end_victim(pid_t pid)
{
	size_t i;

	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	for (i = 0; i < nvictims; i++)
		if (victims[i] == pid)
			victims[i] = 0;
}

/* ---- the model and the human ---------------------------------------------- */

typedef struct script_llm {
	bg_llm base;
	const char *tool, *input; /* one call, then "done" */
	int calls;
} script_llm;

static int script_complete(bg_llm *llm, const bg_llm_request *req, const bg_llm_callbacks *cb, bg_llm_response *resp)
{
	script_llm *m = (script_llm *)llm;
	json_object *msg = json_object_new_object(), *content = json_object_new_array(), *b = json_object_new_object();

	(void)req;
	memset(resp, 0, sizeof(*resp));
	bg_json_add_str(msg, "role", "assistant");
	json_object_object_add(msg, "content", content);
	resp->message = msg;
	if (m->calls++ == 0) {
		bg_json_add_str(b, "type", "tool_use");
		bg_json_add_str(b, "id", "toolu_remedy_1");
		bg_json_add_str(b, "name", m->tool);
		json_object_object_add(b, "input", bg_json_parse(m->input, strlen(m->input), "input"));
		json_object_array_add(content, b);
		snprintf(resp->stop_reason, sizeof(resp->stop_reason), "tool_use");
		return BG_OK;
	}
	bg_json_add_str(b, "type", "text");
	bg_json_add_str(b, "text", "done");
	json_object_array_add(content, b);
	cb->on_text("done", 4, cb->payload);
	snprintf(resp->stop_reason, sizeof(resp->stop_reason), "end_turn");
	return BG_OK;
}

static void script_destroy(bg_llm *llm)
{
	(void)llm; /* owned by the case */
}

static const bg_llm_vtable script_vt = {"script", script_complete, script_destroy};

/* The human, as breakglassctl is one: follows the events and answers the
 * request shown, by its nonce and verb. 'y', 'n', or 't' (never answers). */
typedef struct human {
	bg_agent *a;
	bg_session *s;
	char answer;
	long long seen;
	int asked;
	char verb[32], description[512];
	char *results; /* the tool_result events */
} human;

static int on_event(long long id, bg_event_kind kind, const char *json, size_t len, void *payload)
{
	human *h = payload;
	json_object *ev;

	h->seen = id;
	if (kind == BG_EVENT_TOOL_RESULT) {
		bg_buf b = BG_BUF_INIT;

		bg_buf_puts(&b, h->results ? h->results : "");
		bg_buf_append(&b, json, len);
		free(h->results);
		h->results = bg_buf_detach(&b);
	}
	if (kind != BG_EVENT_APPROVAL_REQUIRED)
		return kind == BG_EVENT_TURN_END ? -1 : 0;
	ev = bg_json_parse(json, len, "ev");
	h->asked++;
	snprintf(h->verb, sizeof(h->verb), "%s", bg_json_str(ev, "verb", ""));
	snprintf(h->description, sizeof(h->description), "%s", bg_json_str(ev, "description", ""));
	if (h->answer != 't')
		CHECK(bg_agent_decide(h->a, bg_json_str(ev, "nonce", ""), h->verb, h->answer == 'y', "itest:human") ==
		      BG_OK);
	json_object_put(ev);
	return 0;
}

static void *human_thread(void *arg)
{
	human *h = arg;

	h->seen = -1;
	while (bg_session_read(h->s, h->seen, 10000, on_event, h) >= 0)
		;
	return NULL;
}

/* ---- one case --------------------------------------------------------------- */

static bg_config *devvm_config(void)
{
	bg_config *cfg;
	bg_buf ini = BG_BUF_INIT;

	bg_buf_printf(&ini,
		      "[devvm]\nhost = 127.0.0.1\nport = %s\nuser = %s\ncommand_timeout = 30\n"
		      "sudo = env PATH=%s/bin:/usr/bin:/bin\n"
		      "[pve]\nhost = 127.0.0.1\nport = %s\n"
		      "[ssh]\nkey_file = %s\nconnect_timeout = 5\nknown_hosts = %s/known_hosts_remedy\n",
		      env("SSHD_PORT"), env("SSHD_USER"), world, env("SSHD_PORT"), env("SSHD_CLIENT_KEY"),
		      env("SSHD_DIR"));
	CHECK(bg_config_new(&cfg, BG_CONFIG_CLIENT) == BG_OK);
	CHECK(bg_config_load_string(cfg, "itest.conf", ini.data, ini.len) == BG_OK);
	CHECK(bg_config_validate(cfg) == BG_OK);
	bg_buf_free(&ini);
	return cfg;
}

typedef struct outcome {
	int asked;
	char verb[32], description[512];
	char *results;
} outcome;

static void run_case(outcome *out, bg_mutations policy, char answer, int approval_ms, const char *input)
{
	bg_config *cfg = devvm_config();
	bg_session_store *store;
	bg_session *s;
	bg_agent *a;
	bg_agent_settings set;
	const bg_agent_tools *tools;
	void *impl;
	script_llm llm;
	human h;
	pthread_t t;

	memset(&set, 0, sizeof(set));
	memset(&llm, 0, sizeof(llm));
	memset(&h, 0, sizeof(h));
	llm.base.vt = &script_vt;
	llm.tool = "devvm_remedy";
	llm.input = input;
	set.model = "script";
	set.max_steps = 5;
	set.turn_timeout_s = 90;
	set.devvm_timeout_s = 30;
	set.mutations = BG_MUTATIONS_DENY; /* no power verb here */
	set.devvm_mutations = policy;
	set.approval_timeout_ms = approval_ms;
	reset_calls();
	CHECK(bg_session_store_open(&store, NULL, 0) == BG_OK);
	CHECK(bg_session_create(&s, store) == BG_OK);
	CHECK(bg_agent_tools_real(&tools, &impl, cfg, NULL) == BG_OK);
	CHECK(bg_agent_new_with(&a, &set, s, &llm.base, NULL, tools, impl) == BG_OK);
	h.a = a;
	h.s = s;
	h.answer = answer;
	CHECK(pthread_create(&t, NULL, human_thread, &h) == 0);
	CHECK(bg_agent_run(a, "repair it", "itest") == BG_OK);
	pthread_join(t, NULL);
	CHECK(llm.calls == 2);
	out->asked = h.asked;
	snprintf(out->verb, sizeof(out->verb), "%s", h.verb);
	snprintf(out->description, sizeof(out->description), "%s", h.description);
	out->results = h.results ? h.results : strdup("");
	bg_agent_free(a);
	bg_session_release(s);
	bg_session_store_free(store);
	bg_config_free(cfg);
}

static void has(const char *text, const char *needle)
{
	if (!strstr(text, needle)) {
		fprintf(stderr, "remedy_itest: \"%s\" not in:\n%s\n", needle, text);
		exit(1);
	}
}

/* ---- the cases ------------------------------------------------------------ */

/* confirm + yes: the request names action, target and effect; exactly the
 * fixed command ran, and its "after:" line came back. */
static void case_confirm_approved(void)
{
	outcome o;

	run_case(&o, BG_MUTATIONS_CONFIRM, 'y', 0, "{\"action\":\"restart-unit\",\"target\":\"unit:bg-demo.service\"}");
	CHECK(o.asked == 1);
	CHECK(strcmp(o.verb, "restart-unit") == 0);
	has(o.description, "restart the systemd unit bg-demo.service");
	expect_calls("systemctl restart -- bg-demo.service\nsystemctl is-active -- bg-demo.service\n");
	has(o.results, "\"ok\":true");
	has(o.results, "after: bg-demo.service is active");
	free(o.results);
	printf("ok confirm_approved\n");
}

static void case_confirm_denied(void)
{
	outcome o;

	run_case(&o, BG_MUTATIONS_CONFIRM, 'n', 0, "{\"action\":\"remount\",\"target\":\"/\"}");
	CHECK(o.asked == 1);
	has(o.description, "remount / read-write");
	expect_calls("");
	has(o.results, "denied by itest:human");
	free(o.results);
	printf("ok confirm_denied\n");
}

static void case_confirm_timeout(void)
{
	outcome o;
	int64_t t0 = bg_now_ms();

	run_case(&o, BG_MUTATIONS_CONFIRM, 't', 800, "{\"action\":\"restart-unit\",\"target\":\"bg-demo.service\"}");
	CHECK(o.asked == 1);
	CHECK(bg_now_ms() - t0 >= 800);
	expect_calls("");
	has(o.results, "no decision within");
	free(o.results);
	printf("ok confirm_timeout\n");
}

/* auto: the kill runs unasked, re-checks the comm, and the victim dies. */
static void case_auto_kill(void)
{
	outcome o;
	pid_t victim = spawn_victim();
	char input[160], want[64], body[128];

	snprintf(body, sizeof(body), "[ \"$2\" = %d ] && exec /bin/kill \"$@\"\nexit 0\n", (int)victim);
	write_script("kill", body);
	snprintf(input, sizeof(input), "{\"action\":\"kill-process\",\"target\":\"pid:%d:bg-runaway\"}", (int)victim);
	run_case(&o, BG_MUTATIONS_AUTO, 'n', 0, input);
	CHECK(o.asked == 0);
	snprintf(want, sizeof(want), "kill -TERM %d\n", (int)victim);
	expect_calls(want);
	CHECK(victim_gone(victim, 10000));
	has(o.results, "is gone");
	free(o.results);
	printf("ok auto_kill\n");
}

/* The pid now runs something else than the finding named: nothing is
 * signalled, and the result says why. */
static void case_pid_reused(void)
{
	outcome o;
	pid_t victim = spawn_victim();
	char input[160];

	snprintf(input, sizeof(input), "{\"action\":\"kill-process\",\"target\":\"%d:stress-ng\"}", (int)victim);
	run_case(&o, BG_MUTATIONS_AUTO, 'n', 0, input);
	expect_calls("");
	has(o.results, "is now bg-runaway, not stress-ng (the pid was reused): nothing killed");
	has(o.results, "\"ok\":false");
	CHECK(!victim_gone(victim, 200));
	end_victim(victim);
	free(o.results);
	printf("ok pid_reused\n");
}

/* remove-file asks even under auto; yes removes exactly that path. */
static void case_auto_remove_asks(void)
{
	outcome o;
	char path[128], input[256], want[160];

	snprintf(path, sizeof(path), "%s/fill", world);
	CHECK(bg_write_file(path, "x", 1, 0644) == BG_OK);
	snprintf(input, sizeof(input), "{\"action\":\"remove-file\",\"target\":\"file:%s\"}", path);
	run_case(&o, BG_MUTATIONS_AUTO, 'y', 0, input);
	CHECK(o.asked == 1);
	CHECK(strcmp(o.verb, "remove-file") == 0);
	has(o.description, "DELETE the file ");
	has(o.description, path);
	snprintf(want, sizeof(want), "rm -f -- %s\n", path);
	expect_calls(want);
	free(o.results);

	run_case(&o, BG_MUTATIONS_AUTO, 'n', 0, input);
	CHECK(o.asked == 1);
	expect_calls("");
	free(o.results);
	printf("ok auto_remove_asks\n");
}

/* auto: a remount runs unasked, on a mount point /proc/mounts has. */
static void case_auto_remount(void)
{
	outcome o;

	run_case(&o, BG_MUTATIONS_AUTO, 'n', 0, "{\"action\":\"remount\",\"target\":\"mount:/\"}");
	CHECK(o.asked == 0);
	expect_calls("mount -o remount,rw -- /\n");
	has(o.results, "before: / is mounted ");
	has(o.results, "after: / is mounted ");
	free(o.results);
	run_case(&o, BG_MUTATIONS_AUTO, 'n', 0, "{\"action\":\"remount\",\"target\":\"/no/such/mount\"}");
	expect_calls("");
	has(o.results, "not a mount point");
	free(o.results);
	printf("ok auto_remount\n");
}

/* A symlink on the way (WORLD/etc-link -> /etc) is found on the devvm,
 * even when a human said yes: nothing removed. */
static void case_symlink_refused(void)
{
	outcome o;
	char link[128], input[256];

	snprintf(link, sizeof(link), "%s/etc-link", world);
	CHECK(symlink("/etc", link) == 0);
	snprintf(input, sizeof(input), "{\"action\":\"remove-file\",\"target\":\"%s/passwd\"}", link);
	run_case(&o, BG_MUTATIONS_CONFIRM, 'y', 0, input);
	CHECK(o.asked == 1);
	expect_calls("");
	has(o.results, "resolves to /etc/passwd (a symlink on the way");
	free(o.results);
	printf("ok symlink_refused\n");
}

static void case_policy_deny(void)
{
	outcome o;

	run_case(&o, BG_MUTATIONS_DENY, 'y', 0, "{\"action\":\"restart-unit\",\"target\":\"bg-demo.service\"}");
	CHECK(o.asked == 0);
	expect_calls("");
	has(o.results, "devvm_mutations = deny");
	has(o.results, "It would have: restart the systemd unit bg-demo.service");
	free(o.results);
	printf("ok policy_deny\n");
}

/* An injection in the target never reaches a shell, even under auto. */
static void case_injection_refused(void)
{
	outcome o;
	char input[256], pwned[128];
	struct stat st;

	snprintf(pwned, sizeof(pwned), "%s/pwned", world);
	snprintf(input, sizeof(input), "{\"action\":\"restart-unit\",\"target\":\"x.service;touch %s\"}", pwned);
	run_case(&o, BG_MUTATIONS_AUTO, 'y', 0, input);
	CHECK(o.asked == 0);
	expect_calls("");
	CHECK(stat(pwned, &st) != 0 && errno == ENOENT);
	has(o.results, "refused");
	free(o.results);
	printf("ok injection_refused\n");
}

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	make_world();
	atexit(end_victims);
	case_confirm_approved();
	case_confirm_denied();
	case_confirm_timeout();
	case_auto_kill();
	case_pid_reused();
	case_auto_remove_asks();
	case_auto_remount();
	case_symlink_refused();
	case_policy_deny();
	case_injection_refused();
	{
		const char *rm[] = {"/bin/rm", "-rf", world, NULL};

		run(rm);
	}
	return 0;
}
