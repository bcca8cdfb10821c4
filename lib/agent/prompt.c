/*
 * What the model is told: the system prompt and the four tools. Written
 * for this job only — a wedged devvm inside a healthy cluster — after the
 * original's prompt (diagnose first, repair in place, power verbs last).
 */
#include <pthread.h>
#include <string.h>

#include "agent/agent_internal.h"
#include "breakglass/pve.h"
#include "core/json.h"

static const char *const tool_names[] = {BG_AGENT_TOOL_DEVVM_EXEC, BG_AGENT_TOOL_DEVVM_TRIAGE,
					 BG_AGENT_TOOL_DEVVM_REMEDY, BG_AGENT_TOOL_PVE};

const char *const *bg_agent_tool_names(size_t *count)
{
	*count = sizeof(tool_names) / sizeof(tool_names[0]);
	return tool_names;
}

/* In two parts (C99 promises string literals of 4095 bytes), joined once. */
static const char prompt_tools[] =
	"You are breakglass, the recovery agent for one developer VM (\"the devvm\", a Proxmox guest) that is "
	"wedged while everything around it is healthy. An operator is waiting, maybe on a phone, in the middle "
	"of an incident.\n"
	"\n"
	"Your tools:\n"
	"- devvm_exec: a shell command on the devvm over SSH, as a user with passwordless sudo. Use `sudo` "
	"where needed. Keep commands bounded (no interactive programs, no `-f` follows; `head`, `tail`, "
	"`timeout`).\n"
	"- devvm_triage: one bounded sweep of the devvm (load, memory and swap, PSI, disk and inodes, failed "
	"units, top processes, state D, OOM kills and kernel errors) with findings; a finding may name its "
	"culprit (`culprit: unit:NAME`, `pid:PID:COMM`, `file:PATH`, `mount:PATH`).\n"
	"- devvm_remedy: one fixed repair on the devvm, its target checked by breakglass: restart-unit "
	"(a unit name), kill-process (target `PID:COMM`, the comm the finding named: the kill happens only if "
	"the pid still has that comm), remove-file (an absolute path; `recursive: true` for a directory; a human "
	"always confirms it), remount (a mount point, remounted read-write). Policy may ask a human first or "
	"refuse: if refused, say what you would have done and why.\n"
	"- pve: a verb on the Proxmox host through a forced command: status, forensics (read-only), start, "
	"stop, reset, cycle (mutating; forensics is captured first automatically). A human may have to approve "
	"a mutating verb, or policy may refuse it: if so, say what you would run and why, and stop.\n"
	"\n";

static const char prompt_work[] =
	"How to work:\n"
	"1. Diagnose first. If the devvm answers, start with devvm_triage (or uptime, free -m, df -h, "
	"df -i, dmesg -T | tail, systemctl --failed). If it does not answer, ask `pve status` and then "
	"`pve forensics` and read the verdict.\n"
	"2. Repair in place when you can, with devvm_remedy and the culprit the triage named, one remedy per "
	"finding, before any power verb:\n"
	"   - a failed or hung unit, or a unit at its pids limit (failed_units, hung_unit, process_storm, culprit "
	"unit:NAME): restart-unit NAME (a restart ends every process of its cgroup; a .scope cannot be "
	"restarted);\n"
	"   - a runaway process hogging CPU or memory, thrashing swap, or forking a storm (cpu_runaway, "
	"memory_low, memory_pressure, swap_thrash, process_storm, culprit pid:PID:COMM): kill-process PID:COMM;\n"
	"   - a disk, inodes or a tmpfs filled by a named file (disk_full, inodes_full, tmpfs_ram, culprit "
	"file:PATH): remove-file PATH (recursive for a directory of many small files), and say what it is "
	"first: a human confirms each deletion;\n"
	"   - a filesystem gone read-only (fs_readonly, culprit mount:PATH): remount PATH;\n"
	"   - processes in state D, hung tasks and I/O errors are storage problems: no remedy inside the guest "
	"(see 3); an OOM kill already happened: find what grows (top_mem) before killing anything.\n"
	"   Never remove a file you have not seen named by a finding or by a command's output. Check that the "
	"repair worked (run devvm_triage again).\n"
	"3. Power verbs are the last resort. Prefer `cycle` for a QEMU stall (QMP answers but the block "
	"counters are frozen and the guest agent is silent, or processes pile up in state D behind a dead "
	"disk): only a fresh QEMU process clears it, and it applies staged config. Use `reset` only for a "
	"plain guest hang (QEMU healthy, guest kernel stuck); it reuses the QEMU process and fixes nothing "
	"inside QEMU. `start` a stopped VM. A power verb only when the devvm does not answer (SSH fails or "
	"times out); never on a devvm that answers and can be repaired.\n"
	"4. Do not guess; show the evidence. Do not loop: if a step fails twice the same way, report it.\n"
	"5. A Proxmox config lock (backup, migrate, snapshot, suspended, …) guards something a kill or an "
	"unlock can destroy. When a verb ends with `config-locked:` (exit 4), `cycle` killed the hung QEMU and "
	"left the VM stopped on purpose: never retry it or `start`; report the lock, what it means and what a "
	"human must check on the host. `ha-busy:` means the HA stack is recovering the VM itself: do not race "
	"it. On an HA-managed VM `start` and `cycle` wait for the HA stack; that is not a failure.\n"
	"\n"
	"When done, report tersely, in this order: what you found (the evidence), what you did, and the state "
	"now. Plain text, short lines, no preamble.\n";

static char system_prompt[sizeof(prompt_tools) + sizeof(prompt_work)];
static pthread_once_t prompt_once = PTHREAD_ONCE_INIT;

static void join_prompt(void)
{
	memcpy(system_prompt, prompt_tools, sizeof(prompt_tools) - 1);
	memcpy(system_prompt + sizeof(prompt_tools) - 1, prompt_work, sizeof(prompt_work));
}

const char *bg_agent_default_system_prompt(void)
{
	pthread_once(&prompt_once, join_prompt);
	return system_prompt;
}

static json_object *schema(json_object *props, const char *required)
{
	json_object *s = json_object_new_object();
	json_object *req = json_object_new_array();

	bg_json_add_str(s, "type", "object");
	json_object_object_add(s, "properties", props);
	if (required)
		json_object_array_add(req, json_object_new_string(required));
	json_object_object_add(s, "required", req);
	return s;
}

static json_object *schema2(json_object *props, const char *required1, const char *required2)
{
	json_object *s = schema(props, required1);

	json_object_array_add(json_object_object_get(s, "required"), json_object_new_string(required2));
	return s;
}

static json_object *prop(const char *type, const char *description)
{
	json_object *p = json_object_new_object();

	bg_json_add_str(p, "type", type);
	bg_json_add_str(p, "description", description);
	return p;
}

static json_object *tool(const char *name, const char *description, json_object *input_schema)
{
	json_object *t = json_object_new_object();

	bg_json_add_str(t, "name", name);
	bg_json_add_str(t, "description", description);
	json_object_object_add(t, "input_schema", input_schema);
	return t;
}

static json_object *verb_prop(void)
{
	json_object *p = prop("string", "status and forensics are read-only; start, stop, reset and cycle change the "
					"VM and may need a human's approval.");
	json_object *e = json_object_new_array();
	size_t i, n;
	const bg_pve_verb *verbs = bg_pve_verbs(&n);

	for (i = 0; i < n; i++)
		json_object_array_add(e, json_object_new_string(verbs[i].name));
	json_object_object_add(p, "enum", e);
	return p;
}

json_object *bg_agent_tool_defs(void)
{
	json_object *tools = json_object_new_array();
	json_object *exec_props = json_object_new_object();
	json_object *pve_props = json_object_new_object();
	json_object *remedy_props = json_object_new_object();
	json_object *actions = json_object_new_array();
	json_object *action;

	json_object_object_add(exec_props, "command", prop("string", "the shell command (run by sh -c)"));
	json_object_object_add(exec_props, "timeout_s",
			       prop("integer", "seconds before the command is killed (default: the configured one)"));
	json_object_object_add(pve_props, "verb", verb_prop());
	action = prop("string", "restart-unit: systemctl restart; kill-process: SIGTERM then SIGKILL; remove-file: "
				"rm (a human always confirms); remount: mount -o remount,rw");
	json_object_array_add(actions, json_object_new_string(BG_REMEDY_RESTART_UNIT));
	json_object_array_add(actions, json_object_new_string(BG_REMEDY_KILL_PROCESS));
	json_object_array_add(actions, json_object_new_string(BG_REMEDY_REMOVE_FILE));
	json_object_array_add(actions, json_object_new_string(BG_REMEDY_REMOUNT));
	json_object_object_add(action, "enum", actions);
	json_object_object_add(remedy_props, "action", action);
	json_object_object_add(remedy_props, "target",
			       prop("string",
				    "restart-unit: the unit (bg-demo.service); kill-process: PID:COMM as the "
				    "finding named it (1234:stress); remove-file: the absolute path; remount: the "
				    "mount point. A finding's culprit string is accepted as is."));
	json_object_object_add(
		remedy_props, "recursive",
		prop("boolean", "remove-file only: the target is a directory, remove it and all under it"));
	json_object_array_add(tools,
			      tool(BG_AGENT_TOOL_DEVVM_EXEC,
				   "Run a shell command on the devvm over SSH as the breakglass user (full "
				   "sudo). Returns the exit status, stdout and stderr (long output is cut in the "
				   "middle).",
				   schema(exec_props, "command")));
	json_object_array_add(tools, tool(BG_AGENT_TOOL_DEVVM_TRIAGE,
					  "A bounded health sweep of the devvm with rule-based findings: load, memory, "
					  "swap, PSI, disk, inodes, failed units, top processes, state D, OOM kills, "
					  "kernel errors.",
					  schema(json_object_new_object(), NULL)));
	json_object_array_add(tools, tool(BG_AGENT_TOOL_DEVVM_REMEDY,
					  "A fixed repair on the devvm for a triage finding's culprit: restart a unit, "
					  "kill a process, remove a file, remount read-write. The target is validated; "
					  "policy may ask a human first. Returns what ran and the state after.",
					  schema2(remedy_props, "action", "target")));
	json_object_array_add(tools, tool(BG_AGENT_TOOL_PVE,
					  "Run a verb for the devvm on the Proxmox host (forced command, no other "
					  "access). forensics returns a verdict with the verb it recommends.",
					  schema(pve_props, "verb")));
	return tools;
}
