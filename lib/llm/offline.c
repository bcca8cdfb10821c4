/*
 * The offline provider: the playbook an experienced operator would follow,
 * as rules, for when no LLM can be reached (or none is wanted).
 *
 * It is stateless: each call reads the conversation since the last prompt
 * (the tool calls made and their results, in the shapes lib/agent renders
 * them) and decides the next step, so it can take over in the middle of a
 * turn when the real model becomes unreachable, and a reloaded session
 * continues where it was. The steps:
 *
 *   1. `pve status`                 is the VM running at all?
 *   2. `devvm_exec uptime`          does the devvm answer over SSH?
 *   3a. it answers: `devvm_triage`; for each finding whose culprit the
 *       catalogue below has a remedy for, a `devvm_remedy` call (the
 *       agent's devvm_mutations policy decides whether it runs, asks, or
 *       is refused); when one ran, `devvm_triage` again to check; then
 *       report the findings, what was done and what the triage says now
 *       (no power action while the devvm answers);
 *   3b. it does not: `pve forensics`, then ask for the verb its verdict
 *       recommends as a `pve` tool call — the agent's pve_mutations policy
 *       (auto / confirm / deny) decides whether it runs — then report.
 *   A stopped VM skips to `pve start`.
 *   A verb that stopped at the VM's config lock (breakglass-pve's error
 *   "config-locked: …", exit 4: the VM is left stopped for a human) or
 *   at the HA stack's own recovery ("ha-busy: …") is never retried: the
 *   report says what a human must check.
 *
 * The final text says what was found, what was done and the state now.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "breakglass/llm.h"
#include "breakglass/pve.h"

#include "core/buf.h"
#include "core/error.h"
#include "core/json.h"
#include "llm/provider.h"
#include "llm/remedy_units.h"

#define OFFLINE_FIELD_MAX 64

typedef struct call {
	const char *name;
	const char *verb;   /* pve only */
	const char *action; /* devvm_remedy only */
	const char *target; /* devvm_remedy only */
	const char *output; /* the tool_result content, NULL if none yet */
	int is_error;
} call;

typedef struct facts {
	call calls[64];
	size_t ncalls;
	int total_tool_uses; /* in the whole conversation, for fresh ids */
} facts;

typedef struct plan {
	bg_buf text;
	const char *tool; /* NULL: the final answer */
	json_object *input;
} plan;

/* ---- reading the conversation ------------------------------------------ */

static const char *block_type(json_object *b)
{
	return bg_json_str(b, "type", "");
}

static int is_prompt(json_object *msg)
{
	json_object *content = bg_json_arr(msg, "content");
	size_t i;

	if (strcmp(bg_json_str(msg, "role", ""), "user") != 0)
		return 0;
	if (!content)
		return json_object_is_type(json_object_object_get(msg, "content"), json_type_string);
	for (i = 0; i < json_object_array_length(content); i++)
		if (strcmp(block_type(json_object_array_get_idx(content, i)), "text") == 0)
			return 1;
	return 0;
}

static const char *result_text(json_object *b)
{
	json_object *c = json_object_object_get(b, "content");

	if (json_object_is_type(c, json_type_string))
		return json_object_get_string(c);
	if (json_object_is_type(c, json_type_array) && json_object_array_length(c) > 0)
		return bg_json_str(json_object_array_get_idx(c, 0), "text", "");
	return "";
}

static void note_result(facts *f, json_object *b, json_object *uses)
{
	const char *id = bg_json_str(b, "tool_use_id", "");
	size_t i;

	for (i = 0; i < f->ncalls; i++) {
		json_object *u = json_object_array_get_idx(uses, i);

		if (strcmp(bg_json_str(u, "id", ""), id) == 0) {
			f->calls[i].output = result_text(b);
			f->calls[i].is_error = bg_json_bool(b, "is_error", 0);
		}
	}
}

static void note_use(facts *f, json_object *b, json_object *uses)
{
	call *c;

	if (f->ncalls == sizeof(f->calls) / sizeof(f->calls[0]))
		return;
	c = &f->calls[f->ncalls++];
	c->name = bg_json_str(b, "name", "");
	c->verb = bg_json_str(bg_json_obj(b, "input"), "verb", "");
	c->action = bg_json_str(bg_json_obj(b, "input"), "action", "");
	c->target = bg_json_str(bg_json_obj(b, "input"), "target", "");
	c->output = NULL;
	c->is_error = 0;
	json_object_array_add(uses, json_object_get(b));
}

static void read_message(facts *f, json_object *msg, json_object *uses, int counting_only)
{
	json_object *content = bg_json_arr(msg, "content");
	size_t i;

	for (i = 0; content && i < json_object_array_length(content); i++) {
		json_object *b = json_object_array_get_idx(content, i);

		if (strcmp(block_type(b), "tool_use") == 0) {
			f->total_tool_uses++;
			if (!counting_only)
				note_use(f, b, uses);
		} else if (!counting_only && strcmp(block_type(b), "tool_result") == 0) {
			note_result(f, b, uses);
		}
	}
}

/* The calls since the last prompt, with their results. */
static void read_facts(facts *f, json_object *messages)
{
	size_t i, n = messages ? json_object_array_length(messages) : 0, start = 0;
	json_object *uses = json_object_new_array();

	memset(f, 0, sizeof(*f));
	for (i = 0; i < n; i++)
		if (is_prompt(json_object_array_get_idx(messages, i)))
			start = i;
	for (i = 0; i < n; i++)
		read_message(f, json_object_array_get_idx(messages, i), uses, i < start);
	json_object_put(uses);
}

static const call *find_call(const facts *f, const char *name, const char *verb)
{
	size_t i;

	for (i = f->ncalls; i-- > 0;) {
		const call *c = &f->calls[i];

		if (strcmp(c->name, name) == 0 && (!verb || strcmp(c->verb, verb) == 0))
			return c;
	}
	return NULL;
}

/* The one verb table (lib/pve/verbs.c) says which verbs mutate. */
static int is_mutating_verb(const char *verb)
{
	const bg_pve_verb *v = bg_pve_verb_find(verb);

	return v && v->mutating;
}

/* The devvm answered if the command ran at all, whatever its exit status
 * (a model before us may have run a command that fails): tools.c starts
 * such a result with "exit status:" or "killed by signal". A timeout is
 * not an answer: a devvm whose commands hang is as good as gone. */
static int answered(const call *c)
{
	char *end;
	long status;

	if (!c || !c->output)
		return 0;
	if (strncmp(c->output, "killed by signal", 16) == 0)
		return 1;
	if (strncmp(c->output, "exit status:", 12) != 0)
		return 0;
	/* -1 means no status came back: the command never ran there. */
	status = strtol(c->output + 12, &end, 10);
	return end != c->output + 12 && status >= 0;
}

static const call *find_action(const facts *f)
{
	size_t i;

	for (i = 0; i < f->ncalls; i++)
		if (strcmp(f->calls[i].name, BG_AGENT_TOOL_PVE) == 0 && is_mutating_verb(f->calls[i].verb))
			return &f->calls[i];
	return NULL;
}

/* The value of a "key: value" line of a tool result, into `out`. */
static const char *field(const char *text, const char *key, char *out, size_t n)
{
	size_t klen = strlen(key);
	const char *p = text;

	out[0] = '\0';
	while (p && *p) {
		if (strncmp(p, key, klen) == 0 && p[klen] == ':') {
			const char *v = p + klen + 1;
			size_t len;

			v += strspn(v, " ");
			len = strcspn(v, "\r\n");
			if (len >= n)
				len = n - 1;
			memcpy(out, v, len);
			out[len] = '\0';
			return out;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

static void first_line(const char *text, char *out, size_t n)
{
	size_t len = strcspn(text ? text : "", "\n");

	if (len >= n)
		len = n - 1;
	memcpy(out, text ? text : "", len);
	out[len] = '\0';
}

/* ---- deciding ----------------------------------------------------------- */

static void ask_tool(plan *p, const char *tool, const char *key, const char *value, const char *why)
{
	p->tool = tool;
	p->input = json_object_new_object();
	if (key)
		bg_json_add_str(p->input, key, value);
	if (strcmp(tool, BG_AGENT_TOOL_DEVVM_EXEC) == 0)
		bg_json_add_int(p->input, "timeout_s", 15);
	bg_buf_printf(&p->text, "%s\n", why);
}

/* ---- findings and their remedies ---------------------------------------- */

#define MAX_FINDINGS 16
#define MAX_REMEDIES 4 /* per turn: past that, a human should look */

typedef struct finding {
	char sev[16];
	char rule[OFFLINE_FIELD_MAX];
	char summary[512];
	char culprit[1200];
} finding;

/* Findings are rendered by lib/agent as "- SEVERITY RULE: summary" lines
 * under "findings:", each followed by "  culprit: KIND:WHAT" when the
 * finding names one. */
static size_t parse_findings(const char *triage, finding *out, size_t max)
{
	const char *p = strstr(triage ? triage : "", "findings:");
	size_t n = 0;

	while (p && (p = strchr(p, '\n')) != NULL) {
		char line[1200];
		const char *colon;

		p++;
		first_line(p, line, sizeof(line));
		if (strncmp(line, "  culprit: ", 11) == 0) {
			if (n > 0)
				snprintf(out[n - 1].culprit, sizeof(out[n - 1].culprit), "%s", line + 11);
			continue;
		}
		if (line[0] != '-' || line[1] != ' ')
			break;
		if (n == max)
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		colon = strchr(line, ':');
		if (sscanf(line + 2, "%15s %63[^:]", out[n].sev, out[n].rule) == 2 && colon) {
			snprintf(out[n].summary, sizeof(out[n].summary), "%s", colon + 1);
			n++;
		}
	}
	return n;
}

/* The catalogue: which finding, with which kind of culprit, calls for which
 * remedy (docs/agent.md; the system prompt says the same to a model). A
 * finding not in it, or without a culprit of its kind, gets advice only:
 * processes in state D and hung tasks wait on storage, which no remedy in
 * the guest fixes; an OOM kill already happened; a high load has no single
 * culprit. */
static const struct remedy_rule {
	const char *rule, *kind, *action;
	int recursive;
} catalogue[] = {
	{"failed_units", "unit:", BG_REMEDY_RESTART_UNIT, 0},   {"hung_unit", "unit:", BG_REMEDY_RESTART_UNIT, 0},
	{"cpu_runaway", "pid:", BG_REMEDY_KILL_PROCESS, 0},     {"memory_low", "pid:", BG_REMEDY_KILL_PROCESS, 0},
	{"memory_pressure", "pid:", BG_REMEDY_KILL_PROCESS, 0}, {"swap_thrash", "pid:", BG_REMEDY_KILL_PROCESS, 0},
	{"process_storm", "pid:", BG_REMEDY_KILL_PROCESS, 0},   {"process_storm", "unit:", BG_REMEDY_RESTART_UNIT, 0},
	{"disk_full", "file:", BG_REMEDY_REMOVE_FILE, 0},       {"tmpfs_ram", "file:", BG_REMEDY_REMOVE_FILE, 0},
	{"inodes_full", "file:", BG_REMEDY_REMOVE_FILE, 1},     {"fs_readonly", "mount:", BG_REMEDY_REMOUNT, 0},
};

static const struct remedy_rule *remedy_for(const finding *f)
{
	size_t i;

	for (i = 0; i < sizeof(catalogue) / sizeof(catalogue[0]); i++) {
		const char *target = f->culprit + strlen(catalogue[i].kind);
		if (strcmp(f->rule, catalogue[i].rule) != 0 ||
		    strncmp(f->culprit, catalogue[i].kind, strlen(catalogue[i].kind)) != 0 || *target == '\0')
			continue;
		/* a failed .scope (its process gone, as after an OOM kill in
		 * one) gets advice, not a restart the target check refuses */
		if (strcmp(catalogue[i].action, BG_REMEDY_RESTART_UNIT) == 0 && !bg_remedy_unit_restartable(target))
			continue;
		return &catalogue[i];
	}
	return NULL;
}

/* The remedy's target: the culprit without its kind. */
static const char *culprit_target(const finding *f, const struct remedy_rule *r)
{
	return f->culprit + strlen(r->kind);
}

static const char *advice_for(const char *rule)
{
	static const struct {
		const char *rule, *advice;
	} table[] = {
		{"disk_full", "free space in place: `journalctl --vacuum-size=200M`, clear package caches, find the "
			      "largest files with `du -xh / | sort -h | tail`"},
		{"inodes_full", "remove the directories full of small files (`du --inodes -x / | sort -n | tail`)"},
		{"oom_kill", "find the process that eats memory (top_mem) and restart or limit it"},
		{"swap_thrash", "stop the processes piling up (top_mem) before the guest stalls completely"},
		{"memory_pressure", "stop or restart the largest processes (top_mem)"},
		{"memory_low", "stop or restart the largest processes (top_mem)"},
		{"failed_units",
		 "read `journalctl -u UNIT` of each failed unit, then `systemctl restart` it (a "
		 "failed .scope cannot be restarted: `systemctl reset-failed` it once its cause is known)"},
		{"hung_unit", "read `journalctl -u UNIT`, then `systemctl restart` it"},
		{"dstate", "processes stuck in state D wait on storage; if the disk path is dead only a `cycle` from "
			   "the host helps"},
		{"load_high", "see what keeps the CPUs busy (top_cpu)"},
		{"io_error", "the storage under the guest fails: read the kernel log lines; if the disk path is dead, "
			     "only the host helps (`pve forensics`, then `cycle`)"},
		{"io_pressure", "every task waits on a slow or stalled disk: if it does not clear, `pve forensics`"},
		{"hung_task",
		 "tasks blocked on I/O for minutes: if the disk path is dead, only a `cycle` from the host "
		 "helps"},
		{"cpu_runaway", "stop the process that spins (top_cpu)"},
		{"process_storm", "stop the parent that forks (ps --ppid), then its children"},
		{"tmpfs_ram", "remove what fills the tmpfs (`du -xh /dev/shm /run /tmp | sort -h | tail`)"},
		{"fs_readonly", "read the kernel log for the error, fsck if needed, then `mount -o remount,rw`"},
	};
	size_t i;

	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(rule, table[i].rule) == 0)
			return table[i].advice;
	return "look at the evidence above";
}

static int remedy_requested(const facts *f, const char *action, const char *target)
{
	size_t i;

	for (i = 0; i < f->ncalls; i++)
		if (strcmp(f->calls[i].name, BG_AGENT_TOOL_DEVVM_REMEDY) == 0 &&
		    strcmp(f->calls[i].action, action) == 0 && strcmp(f->calls[i].target, target) == 0)
			return 1;
	return 0;
}

static size_t count_calls(const facts *f, const char *name)
{
	size_t i, n = 0;

	for (i = 0; i < f->ncalls; i++)
		n += strcmp(f->calls[i].name, name) == 0;
	return n;
}

static const call *first_call(const facts *f, const char *name)
{
	size_t i;

	for (i = 0; i < f->ncalls; i++)
		if (strcmp(f->calls[i].name, name) == 0)
			return &f->calls[i];
	return NULL;
}

/* A remedy ran on the devvm (approved or allowed, whatever its outcome):
 * tools.c starts its result with "remedy: ". */
static int remedy_ran(const call *c)
{
	return c->output && strncmp(c->output, "remedy: ", 8) == 0;
}

/* The next remedy the first triage's findings call for; 1 when one was
 * asked for. */
static int next_remedy(plan *p, const facts *f, const call *tri)
{
	finding *fs;
	size_t i, n;
	int asked = 0;

	if (!tri->output || tri->is_error || count_calls(f, BG_AGENT_TOOL_DEVVM_REMEDY) >= MAX_REMEDIES)
		return 0;
	fs = calloc(MAX_FINDINGS, sizeof(*fs));
	if (!fs)
		return 0;
	n = parse_findings(tri->output, fs, MAX_FINDINGS);
	for (i = 0; i < n && !asked; i++) {
		const struct remedy_rule *r = remedy_for(&fs[i]);

		if (!r || remedy_requested(f, r->action, culprit_target(&fs[i], r)))
			continue;
		p->tool = BG_AGENT_TOOL_DEVVM_REMEDY;
		p->input = json_object_new_object();
		bg_json_add_str(p->input, "action", r->action);
		bg_json_add_str(p->input, "target", culprit_target(&fs[i], r));
		if (r->recursive)
			bg_json_add_bool(p->input, "recursive", 1);
		bg_buf_printf(&p->text,
			      "Finding `%s`:%s\nIts culprit is `%s`: asking for `%s %s` before anything else.\n",
			      fs[i].rule, fs[i].summary, fs[i].culprit, r->action, culprit_target(&fs[i], r));
		asked = 1;
	}
	free(fs);
	return asked;
}

static void report_findings(bg_buf *b, const char *triage, int *count)
{
	finding *fs = calloc(MAX_FINDINGS, sizeof(*fs));
	size_t i, n;

	*count = 0;
	if (!fs)
		return;
	n = parse_findings(triage, fs, MAX_FINDINGS);
	for (i = 0; i < n; i++) {
		const struct remedy_rule *r = remedy_for(&fs[i]);

		bg_buf_printf(b, "- %s (%s):%s\n", fs[i].rule, fs[i].sev, fs[i].summary);
		if (fs[i].culprit[0])
			bg_buf_printf(b, "  culprit: %s\n", fs[i].culprit);
		if (r)
			bg_buf_printf(b, "  → remedy: `%s %s`\n", r->action, culprit_target(&fs[i], r));
		else
			bg_buf_printf(b, "  → %s\n", advice_for(fs[i].rule));
	}
	*count = (int)n;
	free(fs);
}

/* What each remedy did: its outcome lines ("exit status", "ran:",
 * "after:", the script's refusals) or why it did not run. */
static void report_remedies(bg_buf *b, const facts *f, int *ran)
{
	size_t i;

	*ran = 0;
	for (i = 0; i < f->ncalls; i++) {
		const call *c = &f->calls[i];
		const char *p = c->output ? c->output : "";
		char line[512];

		if (strcmp(c->name, BG_AGENT_TOOL_DEVVM_REMEDY) != 0)
			continue;
		bg_buf_printf(b, "- `%s %s`: ", c->action, c->target);
		if (!remedy_ran(c)) {
			first_line(p, line, sizeof(line));
			bg_buf_printf(b, "not run: %s\n", line[0] ? line : "no result");
			continue;
		}
		(*ran)++;
		bg_buf_puts(b, c->is_error ? "ran and FAILED\n" : "done\n");
		while ((p = strchr(p, '\n')) != NULL) {
			p++;
			first_line(p, line, sizeof(line));
			if (strncmp(line, "exit status:", 12) == 0 || strncmp(line, "timed out", 9) == 0 ||
			    strncmp(line, "killed by", 9) == 0 || strncmp(line, "ran: ", 5) == 0 ||
			    strncmp(line, "after: ", 7) == 0 || strncmp(line, c->action, strlen(c->action)) == 0 ||
			    strncmp(line, "sudo:", 5) == 0)
				bg_buf_printf(b, "  %s\n", line);
		}
	}
}

static void final_reachable(plan *p, const facts *f, const char *vm_status)
{
	const call *tri = first_call(f, BG_AGENT_TOOL_DEVVM_TRIAGE);
	const call *after = find_call(f, BG_AGENT_TOOL_DEVVM_TRIAGE, NULL);
	int n = 0, nrem = (int)count_calls(f, BG_AGENT_TOOL_DEVVM_REMEDY), ran = 0;

	bg_buf_printf(&p->text, "\n**Found:** the VM is %s and the devvm answers over SSH.\n", vm_status);
	if (!tri || !tri->output) {
		bg_buf_puts(&p->text, "The triage gave no result.\n");
	} else if (tri->is_error) {
		char line[256];

		first_line(tri->output, line, sizeof(line));
		bg_buf_printf(&p->text, "The triage failed: %s\n", line);
	} else {
		report_findings(&p->text, tri->output, &n);
		if (n == 0)
			bg_buf_puts(&p->text, "The triage found nothing wrong.\n");
	}
	if (nrem == 0) {
		bg_buf_puts(&p->text, "\n**Done:** diagnosis only; nothing was changed.\n"
				      "\n**Recommendation:** repair in place as above; no power action is needed while "
				      "the devvm answers.\n");
		return;
	}
	bg_buf_puts(&p->text, "\n**Done:**\n");
	report_remedies(&p->text, f, &ran);
	if (after && after != tri && after->output && !after->is_error) {
		bg_buf_puts(&p->text, "\n**State now** (triage again):\n");
		report_findings(&p->text, after->output, &n);
		if (n == 0)
			bg_buf_puts(&p->text, "The triage finds nothing wrong any more.\n");
	} else if (!ran) {
		bg_buf_puts(&p->text, "\nNothing was changed on the devvm.\n");
	}
	bg_buf_puts(&p->text, "\n**Recommendation:** "
			      "what is still listed needs a human, in place; no power action is needed while the devvm "
			      "answers.\n");
}

/* The devvm answered: triage, the remedies its findings call for, a
 * second triage when one ran, then the report. */
static void decide_reachable(plan *p, const facts *f, const char *vm_status)
{
	const call *tri = first_call(f, BG_AGENT_TOOL_DEVVM_TRIAGE);
	const call *last_remedy = NULL;
	size_t i;
	int any_ran = 0, triaged_after = 0;

	if (!tri) {
		ask_tool(p, BG_AGENT_TOOL_DEVVM_TRIAGE, NULL, NULL, "The devvm answers. Running the triage.");
		return;
	}
	if (next_remedy(p, f, tri))
		return;
	for (i = 0; i < f->ncalls; i++) {
		const call *c = &f->calls[i];

		if (strcmp(c->name, BG_AGENT_TOOL_DEVVM_REMEDY) == 0) {
			last_remedy = c;
			triaged_after = 0;
			any_ran |= remedy_ran(c);
		} else if (last_remedy && strcmp(c->name, BG_AGENT_TOOL_DEVVM_TRIAGE) == 0) {
			triaged_after = 1;
		}
	}
	if (any_ran && !triaged_after) {
		ask_tool(p, BG_AGENT_TOOL_DEVVM_TRIAGE, NULL, NULL, "Checking the repair: the triage again.");
		return;
	}
	final_reachable(p, f, vm_status);
}

/* breakglass-pve's error with `prefix` ("config-locked: …") in a verb's
 * output (inside its --json document), into `out`; NULL when absent. */
static const char *host_error(const char *output, const char *prefix, char *out, size_t n)
{
	const char *p = strstr(output ? output : "", prefix);
	size_t len;

	if (!p)
		return NULL;
	len = strcspn(p, "\"\n");
	if (len >= n)
		len = n - 1;
	memcpy(out, p, len);
	out[len] = '\0';
	return out;
}

/* The verb stopped at something only a human may settle: say so, and
 * recommend no power verb. Returns 1 when it did. */
static int final_for_a_human(plan *p, const call *act)
{
	char why[1024], status[OFFLINE_FIELD_MAX];

	if (host_error(act->output, "config-locked: ", why, sizeof(why))) {
		bg_buf_printf(&p->text, "\n**Done:** `%s` stopped at the VM's config lock: %s\n", act->verb, why);
		bg_buf_puts(&p->text, "\nA Proxmox config lock guards a backup, migration, snapshot or saved state; "
				      "breakglass never clears one that is not known to be safe.\n");
		if (field(act->output, "status", status, sizeof(status)))
			bg_buf_printf(&p->text, "\n**State now:** %s (left so on purpose).\n", status);
		bg_buf_puts(&p->text,
			    "\n**Recommendation:** a human must check the lock as said above, on the "
			    "Proxmox host, before anything starts the VM; do not retry `cycle` or `start`.\n");
		return 1;
	}
	if (host_error(act->output, "ha-busy: ", why, sizeof(why))) {
		bg_buf_printf(&p->text, "\n**Done:** nothing: %s\n", why);
		bg_buf_puts(&p->text, "\n**Recommendation:** let the HA stack finish (`ha-manager status` on the "
				      "host); ask again once its service state is started or stopped.\n");
		return 1;
	}
	return 0;
}

static void final_after_action(plan *p, const facts *f, const call *act)
{
	char verdict[OFFLINE_FIELD_MAX], status[OFFLINE_FIELD_MAX], line[256];
	const call *fx = find_call(f, BG_AGENT_TOOL_PVE, "forensics");

	first_line(act->output, line, sizeof(line));
	bg_buf_puts(&p->text, find_call(f, BG_AGENT_TOOL_DEVVM_EXEC, NULL)
				      ? "\n**Found:** the devvm does not answer over SSH"
				      : "\n**Found:** the VM's QEMU process is stopped (state T), the devvm with it");
	if (fx && field(fx->output, "verdict", verdict, sizeof(verdict)))
		bg_buf_printf(&p->text, "; forensics verdict `%s`", verdict);
	bg_buf_puts(&p->text, ".\n");
	if (final_for_a_human(p, act))
		return;
	if (act->is_error) {
		bg_buf_printf(&p->text, "\n**Done:** `%s` did not run or failed: %s\n", act->verb, line);
		bg_buf_printf(&p->text, "\n**Recommendation:** `%s` (from the host's verdict), once allowed.\n",
			      act->verb);
	} else {
		bg_buf_printf(&p->text, "\n**Done:** `%s` ran: %s\n", act->verb, line);
		/* breakglass-pve's JSON says when the verb used the bundle just
		 * taken rather than take the same evidence twice */
		if (act->output && strstr(act->output, "\"reused\":true"))
			bg_buf_printf(&p->text, "(on the forensics just taken: the host reused that bundle, of the "
						"same QEMU process, rather than take it twice)\n");
	}
	if (field(act->output ? act->output : "", "status", status, sizeof(status)))
		bg_buf_printf(&p->text, "\n**State now:** %s.\n", status);
}

/* breakglass-pve's status says so (its qmp step) when the QEMU process is
 * stopped (state T): the guest is frozen with it and cannot answer SSH, so
 * probing it would only wait out the SSH banner timeout (10 s). */
#define QEMU_STOPPED_MARK "QEMU is stopped: state T"

static int qemu_stopped(const call *status)
{
	return status && status->output && strstr(status->output, QEMU_STOPPED_MARK) != NULL;
}

static void decide_unreachable(plan *p, const facts *f)
{
	const call *fx = find_call(f, BG_AGENT_TOOL_PVE, "forensics");
	char verdict[OFFLINE_FIELD_MAX] = "unknown", verb[OFFLINE_FIELD_MAX] = "";

	if (!fx) {
		ask_tool(p, BG_AGENT_TOOL_PVE, "verb", "forensics",
			 find_call(f, BG_AGENT_TOOL_DEVVM_EXEC, NULL)
				 ? "The devvm does not answer over SSH. Taking forensics on the host before any power "
				   "action."
				 : "The host sees the VM's QEMU process stopped (state T): the devvm cannot answer, so "
				   "no SSH probe. Taking forensics on the host before any power action.");
		return;
	}
	if (fx->output)
		field(fx->output, "verdict", verdict, sizeof(verdict));
	if (fx->output && field(fx->output, "recommended_verb", verb, sizeof(verb)) && is_mutating_verb(verb)) {
		bg_buf_printf(&p->text, "Forensics verdict: `%s`; it recommends `%s`.\n", verdict, verb);
		ask_tool(p, BG_AGENT_TOOL_PVE, "verb", verb,
			 strcmp(verb, "cycle") == 0
				 ? "A fresh QEMU process is what clears a stall inside QEMU: asking for `cycle`."
				 : "Asking for the recommended verb.");
		return;
	}
	bg_buf_printf(&p->text,
		      "\n**Found:** the devvm does not answer over SSH; forensics verdict `%s`, no power action "
		      "recommended.\n\n**Done:** diagnosis only.\n\n**Recommendation:** check the devvm's network "
		      "and sshd from its console; if the guest is hung, `reset`; if QEMU itself is stuck, "
		      "`cycle`.\n",
		      verdict);
}

static void decide(plan *p, const facts *f)
{
	const call *st = find_call(f, BG_AGENT_TOOL_PVE, "status");
	const call *reach = find_call(f, BG_AGENT_TOOL_DEVVM_EXEC, NULL);
	const call *act = find_action(f);
	char vm_status[OFFLINE_FIELD_MAX] = "in an unknown state";

	if (act && act->output)
		final_after_action(p, f, act);
	else if (!st)
		ask_tool(p, BG_AGENT_TOOL_PVE, "verb", "status",
			 "Offline playbook: first, the VM's state on the Proxmox host.");
	else if (st->output && field(st->output, "status", vm_status, sizeof(vm_status)) &&
		 strcmp(vm_status, "stopped") == 0)
		ask_tool(p, BG_AGENT_TOOL_PVE, "verb", "start", "The VM is stopped: starting it is the repair.");
	else if (!reach && qemu_stopped(st))
		decide_unreachable(p, f);
	else if (!reach)
		ask_tool(p, BG_AGENT_TOOL_DEVVM_EXEC, "command", "uptime", "Is the devvm reachable over SSH?");
	else if (answered(reach))
		decide_reachable(p, f, vm_status);
	else
		decide_unreachable(p, f);
}

/* ---- the provider -------------------------------------------------------- */

static int emit(const plan *p, const facts *f, const bg_llm_callbacks *cb, bg_llm_response *resp)
{
	json_object *msg = json_object_new_object(), *content = json_object_new_array(), *b;
	char id[48];
	int rc = 0;

	bg_json_add_str(msg, "role", "assistant");
	json_object_object_add(msg, "content", content);
	if (p->text.len) {
		b = json_object_new_object();
		bg_json_add_str(b, "type", "text");
		bg_json_add_str(b, "text", p->text.data);
		json_object_array_add(content, b);
		if (cb && cb->on_text)
			rc = cb->on_text(p->text.data, p->text.len, cb->payload);
	}
	if (rc >= 0 && p->tool) {
		snprintf(id, sizeof(id), "toolu_offline_%d", f->total_tool_uses + 1);
		b = json_object_new_object();
		bg_json_add_str(b, "type", "tool_use");
		bg_json_add_str(b, "id", id);
		bg_json_add_str(b, "name", p->tool);
		json_object_object_add(b, "input", json_object_get(p->input));
		json_object_array_add(content, b);
		if (cb && cb->on_tool_use)
			rc = cb->on_tool_use(id, p->tool, p->input, cb->payload);
	}
	resp->message = msg;
	snprintf(resp->stop_reason, sizeof(resp->stop_reason), "%s", p->tool ? "tool_use" : "end_turn");
	resp->attempts = 1;
	return rc;
}

static int offline_complete(bg_llm *llm, const bg_llm_request *req, const bg_llm_callbacks *cb, bg_llm_response *resp)
{
	facts *f;
	plan p = {BG_BUF_INIT, NULL, NULL};
	int rc;

	memset(resp, 0, sizeof(*resp));
	if (bg_llm_cancelled(llm))
		return bg_error_set(BG_ECANCELLED, "offline playbook: cancelled");
	f = calloc(1, sizeof(*f));
	if (!f)
		return bg_error_oom();
	read_facts(f, req->messages);
	decide(&p, f);
	rc = emit(&p, f, cb, resp);
	json_object_put(p.input);
	bg_buf_free(&p.text);
	free(f);
	return rc;
}

static void offline_destroy(bg_llm *llm)
{
	free(llm);
}

static const bg_llm_vtable offline_vtable = {"offline", offline_complete, offline_destroy};

int bg_llm_offline_new(bg_llm **out, const bg_llm_settings *s)
{
	bg_llm *llm = calloc(1, sizeof(*llm));

	(void)s;
	*out = NULL;
	if (!llm)
		return bg_error_oom();
	llm->vt = &offline_vtable;
	*out = llm;
	return BG_OK;
}
