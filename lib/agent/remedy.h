/*
 * Internal: the remedies on the devvm (devvm_remedy {action, target,
 * recursive?}). Each action is one fixed shell script; the target is
 * validated here, whoever asked for it (the model's output is untrusted,
 * and so is the triage's culprit, which comes from the guest), and passed
 * to the script as a quoted positional parameter, never spliced into it.
 * The script re-checks on the devvm what only the devvm can tell (the
 * pid's comm right before the kill, a mount point in /proc/mounts, a path
 * without symlinks) and prints what it did.
 */
#ifndef BG_AGENT_REMEDY_H
#define BG_AGENT_REMEDY_H

#include "breakglass/common.h"

typedef enum bg_remedy_action {
	BG_REMEDY_ACTION_RESTART_UNIT,
	BG_REMEDY_ACTION_KILL_PROCESS,
	BG_REMEDY_ACTION_REMOVE_FILE,
	BG_REMEDY_ACTION_REMOUNT,
} bg_remedy_action;

#define BG_REMEDY_TARGET_MAX 1024
#define BG_REMEDY_COMM_MAX   16 /* the kernel's TASK_COMM_LEN: 15 bytes and the NUL */

typedef struct bg_remedy {
	bg_remedy_action action;
	char target[BG_REMEDY_TARGET_MAX]; /* unit name, path or mount point; for kill-process "PID:COMM" */
	long pid;                          /* kill-process */
	char comm[BG_REMEDY_COMM_MAX];     /* kill-process: the comm the finding named */
	int recursive;                     /* remove-file: a directory and all under it */
} bg_remedy;

/* "restart-unit", … (static). */
const char *bg_remedy_action_name(bg_remedy_action a);

/*
 * Validate a request: `action` one of the four names, `target` in the
 * form that action takes (a culprit string "unit:…", "pid:PID:COMM",
 * "file:…", "mount:…" of the matching kind is accepted as well). BG_EINVAL
 * with a message that says what was refused and why (bytes from the
 * request are never echoed raw: control bytes are refused first).
 */
int bg_remedy_parse(bg_remedy *out, const char *action, const char *target, int recursive);

/* What it will do, for the approval request and the refusal (one line,
 * printable ASCII: the target passed validation). A new string. */
char *bg_remedy_describe(const bg_remedy *r);

/* The command sent to the devvm: `SUDO sh -c 'SCRIPT' bg-remedy 'ARG'…`,
 * `sudo` being [devvm] sudo ("" when the SSH user is root). A new string. */
char *bg_remedy_command(const bg_remedy *r, const char *sudo);

#endif
