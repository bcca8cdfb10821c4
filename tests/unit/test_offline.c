/* The offline playbook: its decisions from recorded tool results. */
#include "bg_test.h"

#include "core/buf.h"
#include "core/json.h"
#include "llm/provider.h"

#include <stdio.h>
#include <stdlib.h>

/* Tool results as lib/agent/tools.c renders them. */
static const char STATUS_RUNNING[] = "verb: status\nexit status: 0\nstatus: running\n\nstatus: running\npid: 4242\n"
				     "qmp: ok\nuptime: 86400\n";
/* what breakglass-pve's status says of a SIGSTOPped QEMU (the text and the
 * JSON carry its qmp step) */
static const char STATUS_FROZEN[] =
	"verb: status\nexit status: 0\nstatus: running\n\nstatus: running\npid: 4242\n"
	"qmp: not answering (QMP: /run/qemu-server/102.qmp accepted the connection but sent "
	"no greeting within 250 ms: the QEMU main loop is not answering (hung or stopped) "
	"(QEMU is stopped: state T))\nuptime: 86400\n";
static const char FORENSICS_FROZEN[] = "verb: forensics\nexit status: 0\nstatus: running\nverdict: qmp-unresponsive\n"
				       "recommended_verb: cycle\nforensics: 20260611T164742Z-forensics\n";
static const char STATUS_STOPPED[] = "verb: status\nexit status: 0\nstatus: stopped\n\nstatus: stopped\n";
static const char UPTIME_OK[] = "exit status: 0\n 16:47:42 up 3 days,  2:01,  0 users,  load average: 0.5, 0.4, 0.3\n";
static const char SSH_DEAD[] = "devvm: no SSH banner within 10 s (connection timed out)";
static const char TRIAGE_DISK[] = "findings:\n- critical disk_full: / is 100% full (0 B free)\n"
				  "- warn failed_units: 1 failed unit: postgresql.service\n\n"
				  "disk:\n/dev/vda1 50G 50G 0 100% /\n";
static const char FORENSICS_STALL[] = "verb: forensics\nexit status: 0\nstatus: running\nverdict: block-io-stalled\n"
				      "recommended_verb: cycle\nforensics: 20260611T164742Z-forensics\n\n"
				      "verdict: block-io-stalled (blockstats frozen 2 samples; guest agent silent)\n";
static const char FORENSICS_HEALTHY[] = "verb: forensics\nexit status: 0\nstatus: running\nverdict: healthy\n";
static const char CYCLE_OK[] = "verb: cycle\nexit status: 0\nstatus: running\nforensics: 20260611T164800Z-cycle\n";
static const char CYCLE_REUSED[] =
	"verb: cycle\nexit status: 0\nstatus: running\nforensics: 20260611T164742Z-forensics\n\n"
	"{\"verb\":\"cycle\",\"forensics\":{\"id\":\"20260611T164742Z-forensics\",\"reused\":true}}\n";
static const char CYCLE_DENIED[] = "refused: mutating verbs are disabled for the agent ([agent] pve_mutations = deny).";
static const char START_OK[] = "verb: start\nexit status: 0\nstatus: running\n";

typedef struct script {
	const char *status, *reach, *triage, *forensics, *action;
	int reach_error, action_error;
	const char *remedy;       /* a remedy's result; NULL: it ran fine */
	int remedy_error;         /* and is_error */
	const char *triage_after; /* the triage after a remedy; NULL: the same */
} script;

typedef struct seen {
	char calls[16][128];
	int n;
	bg_buf text;
	int triages;
} seen;

static int on_text(const char *d, size_t len, void *payload)
{
	seen *s = payload;

	return bg_buf_append(&s->text, d, len) == BG_OK ? 0 : -1;
}

static int on_tool(const char *id, const char *name, json_object *input, void *payload)
{
	seen *s = payload;

	(void)id;
	if (strcmp(name, "devvm_remedy") == 0)
		snprintf(s->calls[s->n++], sizeof(s->calls[0]), "devvm_remedy %s %s%s",
			 bg_json_str(input, "action", "?"), bg_json_str(input, "target", "?"),
			 bg_json_bool(input, "recursive", 0) ? " recursive" : "");
	else
		snprintf(s->calls[s->n++], sizeof(s->calls[0]), "%s%s%s", name,
			 bg_json_str(input, "verb", NULL) ? " " : "", bg_json_str(input, "verb", ""));
	return 0;
}

static const char *recorded(const script *sc, seen *s, json_object *use, int *is_error, char *buf, size_t n)
{
	const char *name = bg_json_str(use, "name", "");
	json_object *in = bg_json_obj(use, "input");
	const char *verb = bg_json_str(in, "verb", "");

	*is_error = 0;
	if (strcmp(name, "devvm_exec") == 0) {
		*is_error = sc->reach_error;
		return sc->reach;
	}
	if (strcmp(name, "devvm_triage") == 0)
		return s->triages++ && sc->triage_after ? sc->triage_after : sc->triage;
	if (strcmp(name, "devvm_remedy") == 0) {
		*is_error = sc->remedy_error;
		if (sc->remedy)
			return sc->remedy;
		/* as lib/agent/tools.c renders a remedy that ran */
		snprintf(buf, n, "remedy: %s %s\nexit status: 0\nran: the fixed command\nafter: all well\n",
			 bg_json_str(in, "action", ""), bg_json_str(in, "target", ""));
		return buf;
	}
	if (strcmp(verb, "status") == 0)
		return sc->status;
	if (strcmp(verb, "forensics") == 0)
		return sc->forensics;
	*is_error = sc->action_error;
	return sc->action;
}

static void add_result(json_object *messages, json_object *assistant, const script *sc, seen *s)
{
	json_object *content = bg_json_arr(assistant, "content");
	json_object *user = json_object_new_object(), *results = json_object_new_array();
	size_t i;

	for (i = 0; i < json_object_array_length(content); i++) {
		json_object *b = json_object_array_get_idx(content, i), *r;
		int is_error;
		const char *out;
		char buf[512];

		if (strcmp(bg_json_str(b, "type", ""), "tool_use") != 0)
			continue;
		out = recorded(sc, s, b, &is_error, buf, sizeof(buf));
		assert_non_null(out);
		r = json_object_new_object();
		bg_json_add_str(r, "type", "tool_result");
		bg_json_add_str(r, "tool_use_id", bg_json_str(b, "id", ""));
		bg_json_add_str(r, "content", out);
		bg_json_add_bool(r, "is_error", is_error);
		json_object_array_add(results, r);
	}
	bg_json_add_str(user, "role", "user");
	json_object_object_add(user, "content", results);
	json_object_array_add(messages, user);
}

/* Play the playbook to its end against the script; returns the turns. */
static int play(const script *sc, seen *s)
{
	bg_llm *llm;
	json_object *messages = json_object_new_array();
	bg_llm_callbacks cb = {on_text, on_tool, NULL, s};
	int turns = 0;
	const char *prompt = "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"help\"}]}";

	assert_int_equal(bg_llm_offline_new(&llm, NULL), BG_OK);
	json_object_array_add(messages, bg_json_parse(prompt, strlen(prompt), "prompt"));
	for (;;) {
		bg_llm_request req = {"offline", 1024, "", NULL, messages, BG_DEADLINE_NONE};
		bg_llm_response resp;
		int done;

		assert_int_equal(bg_llm_complete(llm, &req, &cb, &resp), BG_OK);
		turns++;
		done = strcmp(resp.stop_reason, "end_turn") == 0;
		json_object_array_add(messages, json_object_get(resp.message));
		if (!done)
			add_result(messages, resp.message, sc, s);
		bg_llm_response_clear(&resp);
		if (done || turns > 14)
			break;
	}
	json_object_put(messages);
	bg_llm_free(llm);
	return turns;
}

static void test_reachable_disk_full(void **state)
{
	script sc = {STATUS_RUNNING, UPTIME_OK, TRIAGE_DISK, NULL, NULL, 0, 0, NULL, 0, NULL};
	seen s = {.n = 0, .text = BG_BUF_INIT};

	(void)state;
	assert_int_equal(play(&sc, &s), 4);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.calls[0], "pve status");
	assert_string_equal(s.calls[1], "devvm_exec");
	assert_string_equal(s.calls[2], "devvm_triage");
	assert_non_null(strstr(s.text.data, "disk_full (critical)"));
	assert_non_null(strstr(s.text.data, "journalctl --vacuum-size"));
	assert_non_null(strstr(s.text.data, "failed_units (warn)"));
	assert_non_null(strstr(s.text.data, "no power action is needed"));
	bg_buf_free(&s.text);
}

/* A command that ran and failed still shows the devvm answers. */
static void test_failed_command_is_an_answer(void **state)
{
	script sc = {STATUS_RUNNING,
		     "exit status: 1\nsystemctl: 2 units failed\n",
		     TRIAGE_DISK,
		     NULL,
		     NULL,
		     1,
		     0,
		     NULL,
		     0,
		     NULL};
	seen s = {.n = 0, .text = BG_BUF_INIT};

	(void)state;
	assert_int_equal(play(&sc, &s), 4);
	assert_string_equal(s.calls[2], "devvm_triage");
	assert_null(strstr(s.text.data, "forensics"));
	bg_buf_free(&s.text);
}

/* Commands that hang are no answer: the host's forensics decide. */
static void test_timeout_is_no_answer(void **state)
{
	script sc = {STATUS_RUNNING,
		     "timed out after 15 s (the command was killed)\n",
		     NULL,
		     FORENSICS_STALL,
		     CYCLE_OK,
		     1,
		     0,
		     NULL,
		     0,
		     NULL};
	seen s = {.n = 0, .text = BG_BUF_INIT};

	(void)state;
	assert_int_equal(play(&sc, &s), 5);
	assert_string_equal(s.calls[2], "pve forensics");
	assert_string_equal(s.calls[3], "pve cycle");
	bg_buf_free(&s.text);
}

/* "exit status: -1" means no status came back (the command never ran
 * there): the lab's frozen guest produced exactly that once. */
static void test_no_status_is_no_answer(void **state)
{
	script sc = {STATUS_RUNNING, "exit status: -1\n", NULL, FORENSICS_STALL, CYCLE_OK, 1, 0, NULL, 0, NULL};
	seen s = {.n = 0, .text = BG_BUF_INIT};

	(void)state;
	assert_int_equal(play(&sc, &s), 5);
	assert_string_equal(s.calls[2], "pve forensics");
	assert_string_equal(s.calls[3], "pve cycle");
	bg_buf_free(&s.text);
}

static void test_unreachable_stall_cycles(void **state)
{
	script sc = {STATUS_RUNNING, SSH_DEAD, NULL, FORENSICS_STALL, CYCLE_OK, 1, 0, NULL, 0, NULL};
	seen s = {.n = 0, .text = BG_BUF_INIT};

	(void)state;
	assert_int_equal(play(&sc, &s), 5);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.calls[0], "pve status");
	assert_string_equal(s.calls[1], "devvm_exec");
	assert_string_equal(s.calls[2], "pve forensics");
	assert_string_equal(s.calls[3], "pve cycle");
	assert_non_null(strstr(s.text.data, "block-io-stalled"));
	assert_non_null(strstr(s.text.data, "`cycle` ran"));
	assert_non_null(strstr(s.text.data, "**State now:** running"));
	assert_null(strstr(s.text.data, "reused")); /* the cycle took its own bundle */
	bg_buf_free(&s.text);
}

/* A QEMU the host sees stopped (state T): the guest cannot answer SSH, so
 * no probe (it would wait out the banner timeout): straight to forensics
 * and the verb it recommends. */
static void test_frozen_qemu_skips_the_ssh_probe(void **state)
{
	script sc = {STATUS_FROZEN, SSH_DEAD, NULL, FORENSICS_FROZEN, CYCLE_REUSED, 1, 0, NULL, 0, NULL};
	seen s = {.n = 0, .text = BG_BUF_INIT};

	(void)state;
	assert_int_equal(play(&sc, &s), 4);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.calls[0], "pve status");
	assert_string_equal(s.calls[1], "pve forensics");
	assert_string_equal(s.calls[2], "pve cycle");
	assert_non_null(strstr(s.text.data, "stopped (state T)"));
	assert_non_null(strstr(s.text.data, "the host reused that bundle"));
	assert_non_null(strstr(s.text.data, "`cycle` ran"));
	bg_buf_free(&s.text);
}

static void test_refused_verb_is_reported(void **state)
{
	script sc = {STATUS_RUNNING, SSH_DEAD, NULL, FORENSICS_STALL, CYCLE_DENIED, 1, 1, NULL, 0, NULL};
	seen s = {.n = 0, .text = BG_BUF_INIT};

	(void)state;
	assert_int_equal(play(&sc, &s), 5);
	assert_string_equal(s.calls[3], "pve cycle");
	assert_non_null(strstr(s.text.data, "`cycle` did not run or failed: refused"));
	assert_non_null(strstr(s.text.data, "**Recommendation:** `cycle`"));
	bg_buf_free(&s.text);
}

static const char CYCLE_LOCKED[] =
	"verb: cycle\nexit status: 4\nstatus: stopped\nverdict: "
	"qemu-hung\n\n{\"verb\":\"cycle\",\"status\":\"stopped\","
	"\"error\":\"config-locked: cycle left the VM stopped, neither unlocked nor started: the VM config is locked "
	"(migrate): two QEMUs on one disk. A human must check the target node\",\"exit_code\":4}\n";

static void test_config_locked_cycle_is_not_retried(void **state)
{
	script sc = {STATUS_RUNNING, SSH_DEAD, NULL, FORENSICS_STALL, CYCLE_LOCKED, 1, 1, NULL, 0, NULL};
	seen s = {.n = 0, .text = BG_BUF_INIT};

	(void)state;
	assert_int_equal(play(&sc, &s), 5);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.calls[3], "pve cycle");
	assert_non_null(strstr(s.text.data, "stopped at the VM's config lock: config-locked: cycle left the VM"));
	assert_non_null(strstr(s.text.data, "locked (migrate)"));
	assert_non_null(strstr(s.text.data, "**State now:** stopped (left so on purpose)"));
	assert_non_null(strstr(s.text.data, "do not retry `cycle` or `start`"));
	assert_null(strstr(s.text.data, "**Recommendation:** `cycle`"));
	bg_buf_free(&s.text);
}

static void test_stopped_vm_is_started(void **state)
{
	script sc = {STATUS_STOPPED, NULL, NULL, NULL, START_OK, 0, 0, NULL, 0, NULL};
	seen s = {.n = 0, .text = BG_BUF_INIT};

	(void)state;
	assert_int_equal(play(&sc, &s), 3);
	assert_string_equal(s.calls[0], "pve status");
	assert_string_equal(s.calls[1], "pve start");
	assert_non_null(strstr(s.text.data, "`start` ran"));
	bg_buf_free(&s.text);
}

static void test_no_verb_without_recommendation(void **state)
{
	script sc = {STATUS_RUNNING, SSH_DEAD, NULL, FORENSICS_HEALTHY, NULL, 1, 0, NULL, 0, NULL};
	seen s = {.n = 0, .text = BG_BUF_INIT};

	(void)state;
	assert_int_equal(play(&sc, &s), 4);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.calls[2], "pve forensics");
	assert_non_null(strstr(s.text.data, "no power action recommended"));
	bg_buf_free(&s.text);
}

/* A second prompt in the same conversation starts the playbook over. */
static void test_new_prompt_starts_over(void **state)
{
	bg_llm *llm;
	seen s = {.n = 0, .text = BG_BUF_INIT};
	bg_llm_callbacks cb = {on_text, on_tool, NULL, &s};
	const char *conv =
		"[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"}]},"
		"{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_offline_1\",\"name\":"
		"\"pve\","
		"\"input\":{\"verb\":\"status\"}}]},"
		"{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_offline_1\","
		"\"content\":\"status: running\"},{\"type\":\"text\",\"text\":\"again\"}]}]";
	json_object *messages = bg_json_parse(conv, strlen(conv), "conv");
	bg_llm_request req = {"offline", 1024, "", NULL, messages, BG_DEADLINE_NONE};
	bg_llm_response resp;

	(void)state;
	assert_int_equal(bg_llm_offline_new(&llm, NULL), BG_OK);
	assert_int_equal(bg_llm_complete(llm, &req, &cb, &resp), BG_OK);
	assert_string_equal(s.calls[0], "pve status");
	/* Fresh id: never the same as an earlier call's. */
	assert_non_null(strstr(json_object_to_json_string(resp.message), "toolu_offline_2"));
	bg_llm_response_clear(&resp);
	bg_llm_cancel(llm);
	assert_int_equal(bg_llm_complete(llm, &req, &cb, &resp), BG_ECANCELLED);
	bg_llm_free(llm);
	json_object_put(messages);
	bg_buf_free(&s.text);
}

/* ---- remedies ------------------------------------------------------------ */

/* Every finding of the catalogue, with its culprit, gets its remedy, then a
 * second triage checks it, and no power verb runs while the devvm answers. */
static void test_catalogue_each_finding_its_remedy(void **state)
{
	static const struct {
		const char *finding, *culprit, *call;
	} cases[] = {
		{"- warn failed_units: 1 failed systemd unit: bg-demo.service", "unit:bg-demo.service",
		 "devvm_remedy restart-unit bg-demo.service"},
		{"- warn hung_unit: bg-demo.service stuck activating for 300 s", "unit:bg-demo.service",
		 "devvm_remedy restart-unit bg-demo.service"},
		{"- critical cpu_runaway: pid 4242 (burn) at 99% CPU", "pid:4242:burn",
		 "devvm_remedy kill-process 4242:burn"},
		{"- critical memory_low: 40 MiB available; top: 777 (leak) 3 GiB", "pid:777:leak",
		 "devvm_remedy kill-process 777:leak"},
		{"- warn memory_pressure: stalled 35% (top: 777 leak)", "pid:777:leak",
		 "devvm_remedy kill-process 777:leak"},
		{"- critical swap_thrash: 900 pages/s swapped in (top swapper 777 leak)", "pid:777:leak",
		 "devvm_remedy kill-process 777:leak"},
		{"- critical process_storm: 31000 of 32768 pids; parent 555 (forker)", "pid:555:forker",
		 "devvm_remedy kill-process 555:forker"},
		{"- critical process_storm: cgroup /system.slice/bg-demo.service at 4096 of 4096 pids",
		 "unit:bg-demo.service", "devvm_remedy restart-unit bg-demo.service"},
		{"- critical disk_full: /data 100%: disk space nearly exhausted (largest: /data/fill)",
		 "file:/data/fill", "devvm_remedy remove-file /data/fill"},
		{"- warn tmpfs_ram: /dev/shm holds 1.5 GiB of RAM (largest: /dev/shm/fill)", "file:/dev/shm/fill",
		 "devvm_remedy remove-file /dev/shm/fill"},
		{"- critical inodes_full: /data 100%: inodes (most entries: /data/many)", "file:/data/many",
		 "devvm_remedy remove-file /data/many recursive"},
		{"- critical fs_readonly: /data is mounted read-only after errors", "mount:/data",
		 "devvm_remedy remount /data"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char triage[512];
		script sc = {STATUS_RUNNING, UPTIME_OK, triage, NULL, NULL, 0, 0, NULL, 0, "findings: none\n"};
		seen s = {.n = 0, .text = BG_BUF_INIT};
		int k;

		snprintf(triage, sizeof(triage), "findings:\n%s\n  culprit: %s\n\nuptime:\n...\n", cases[i].finding,
			 cases[i].culprit);
		assert_int_equal(play(&sc, &s), 6);
		assert_int_equal(s.n, 5);
		assert_string_equal(s.calls[2], "devvm_triage");
		assert_string_equal(s.calls[3], cases[i].call);
		assert_string_equal(s.calls[4], "devvm_triage");
		for (k = 0; k < s.n; k++)
			assert_true(strncmp(s.calls[k], "pve ", 4) != 0 || strcmp(s.calls[k], "pve status") == 0);
		assert_non_null(strstr(s.text.data, "**Done:**"));
		assert_non_null(strstr(s.text.data, "all well"));
		assert_non_null(strstr(s.text.data, "nothing wrong any more"));
		bg_buf_free(&s.text);
	}
}

/* No remedy where the catalogue has none: state D and hung tasks wait on
 * storage, an OOM kill is over, a high load has no one culprit, and a
 * culprit of the wrong kind or an unknown rule is not guessed at. */
static void test_no_remedy_outside_the_catalogue(void **state)
{
	static const char triage[] = "findings:\n"
				     "- critical oom_kill: the OOM killer killed 1 process (last: 777 (leak))\n"
				     "  culprit: pid:777:leak\n"
				     "- warn dstate: 3 processes in state D\n"
				     "  culprit: pid:88:jbd2/vda1-8\n"
				     "- warn load_high: load 9 on 2 CPUs\n"
				     "  culprit: pid:4242:burn\n"
				     "- critical disk_full: /data 100%\n"
				     "  culprit: mount:/data\n"
				     "- warn brand_new_rule: something\n"
				     "  culprit: unit:x.service\n"
				     "- warn failed_units: 1 failed unit (no culprit line)\n"
				     "- warn failed_units: 1 failed systemd unit: bg-fault-oom.scope\n"
				     "  culprit: unit:bg-fault-oom.scope\n";
	script sc = {STATUS_RUNNING, UPTIME_OK, triage, NULL, NULL, 0, 0, NULL, 0, NULL};
	seen s = {.n = 0, .text = BG_BUF_INIT};

	(void)state;
	assert_int_equal(play(&sc, &s), 4);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.calls[2], "devvm_triage");
	assert_non_null(strstr(s.text.data, "nothing was changed"));
	assert_non_null(strstr(s.text.data, "culprit: pid:88:jbd2/vda1-8"));
	assert_non_null(strstr(s.text.data, "wait on storage"));
	/* a failed scope (its process OOM-killed, as in the lab) cannot be
	 * restarted: advice, no restart-unit the target check would refuse */
	assert_non_null(strstr(s.text.data, "culprit: unit:bg-fault-oom.scope"));
	assert_non_null(strstr(s.text.data, "reset-failed"));
	bg_buf_free(&s.text);
}

/* Several culprits: one remedy each, in the triage's order (most severe
 * first), at most four per turn, each target once. */
static void test_remedies_in_order_and_capped(void **state)
{
	static const char triage[] = "findings:\n"
				     "- critical fs_readonly: /data read-only\n  culprit: mount:/data\n"
				     "- critical cpu_runaway: 4242 burn\n  culprit: pid:4242:burn\n"
				     "- critical memory_low: 4242 burn\n  culprit: pid:4242:burn\n"
				     "- warn failed_units: a.service\n  culprit: unit:a.service\n"
				     "- warn tmpfs_ram: /dev/shm/fill\n  culprit: file:/dev/shm/fill\n"
				     "- warn hung_unit: b.service\n  culprit: unit:b.service\n";
	script sc = {STATUS_RUNNING, UPTIME_OK, triage, NULL, NULL, 0, 0, NULL, 0, NULL};
	seen s = {.n = 0, .text = BG_BUF_INIT};

	(void)state;
	play(&sc, &s);
	assert_int_equal(s.n, 8);
	assert_string_equal(s.calls[3], "devvm_remedy remount /data");
	assert_string_equal(s.calls[4], "devvm_remedy kill-process 4242:burn");
	assert_string_equal(s.calls[5], "devvm_remedy restart-unit a.service");
	assert_string_equal(s.calls[6], "devvm_remedy remove-file /dev/shm/fill");
	assert_string_equal(s.calls[7], "devvm_triage");
	/* the second triage still lists them (the fake's devvm did not change) */
	assert_non_null(strstr(s.text.data, "State now"));
	bg_buf_free(&s.text);
}

/* A remedy that policy refused: reported with what it would have done,
 * no second triage, nothing claimed as changed. */
static void test_refused_remedy_is_reported(void **state)
{
	static const char triage[] = "findings:\n- warn failed_units: 1 failed unit: bg-demo.service\n"
				     "  culprit: unit:bg-demo.service\n";
	script sc = {STATUS_RUNNING,
		     UPTIME_OK,
		     triage,
		     NULL,
		     NULL,
		     0,
		     0,
		     "refused: changes on the devvm are disabled for the agent ([agent] devvm_mutations = deny). "
		     "It would have: restart the systemd unit bg-demo.service on the devvm (systemctl restart).",
		     1,
		     NULL};
	seen s = {.n = 0, .text = BG_BUF_INIT};

	(void)state;
	assert_int_equal(play(&sc, &s), 5);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.calls[3], "devvm_remedy restart-unit bg-demo.service");
	assert_non_null(strstr(s.text.data, "not run: refused"));
	assert_non_null(strstr(s.text.data, "It would have: restart the systemd unit bg-demo.service"));
	assert_non_null(strstr(s.text.data, "Nothing was changed on the devvm"));
	bg_buf_free(&s.text);
}

/* A remedy that ran and failed is said to have failed, with its lines. */
static void test_failed_remedy_is_reported(void **state)
{
	static const char triage[] = "findings:\n- critical cpu_runaway: 4242 burn\n  culprit: pid:4242:burn\n";
	script sc = {STATUS_RUNNING,
		     UPTIME_OK,
		     triage,
		     NULL,
		     NULL,
		     0,
		     0,
		     "remedy: kill-process 4242:burn\nexit status: 3\nkill-process: pid 4242 is now bash, not burn "
		     "(the pid was reused): nothing killed\n",
		     1,
		     NULL};
	seen s = {.n = 0, .text = BG_BUF_INIT};

	(void)state;
	assert_int_equal(play(&sc, &s), 6);
	assert_non_null(strstr(s.text.data, "ran and FAILED"));
	assert_non_null(strstr(s.text.data, "exit status: 3"));
	assert_non_null(strstr(s.text.data, "the pid was reused"));
	bg_buf_free(&s.text);
}

/* The devvm does not answer: culprits of an older triage are no reason to
 * touch it; forensics and the power verb decide (the existing path). */
static void test_unreachable_means_power_not_remedy(void **state)
{
	script sc = {STATUS_RUNNING, SSH_DEAD, NULL, FORENSICS_STALL, CYCLE_OK, 1, 0, NULL, 0, NULL};
	seen s = {.n = 0, .text = BG_BUF_INIT};
	int k;

	(void)state;
	play(&sc, &s);
	for (k = 0; k < s.n; k++)
		assert_null(strstr(s.calls[k], "devvm_remedy"));
	assert_string_equal(s.calls[3], "pve cycle");
	bg_buf_free(&s.text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reachable_disk_full),
		cmocka_unit_test(test_unreachable_stall_cycles),
		cmocka_unit_test(test_frozen_qemu_skips_the_ssh_probe),
		cmocka_unit_test(test_failed_command_is_an_answer),
		cmocka_unit_test(test_timeout_is_no_answer),
		cmocka_unit_test(test_no_status_is_no_answer),
		cmocka_unit_test(test_refused_verb_is_reported),
		cmocka_unit_test(test_config_locked_cycle_is_not_retried),
		cmocka_unit_test(test_stopped_vm_is_started),
		cmocka_unit_test(test_no_verb_without_recommendation),
		cmocka_unit_test(test_new_prompt_starts_over),
		cmocka_unit_test(test_catalogue_each_finding_its_remedy),
		cmocka_unit_test(test_no_remedy_outside_the_catalogue),
		cmocka_unit_test(test_remedies_in_order_and_capped),
		cmocka_unit_test(test_refused_remedy_is_reported),
		cmocka_unit_test(test_failed_remedy_is_reported),
		cmocka_unit_test(test_unreachable_means_power_not_remedy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
