/*
 * The remedies on the devvm: validation of the target, the fixed script of
 * each action, and the one-line description an approval shows. Whoever
 * asked (the model, the offline playbook reading a culprit that the guest
 * printed), the same checks apply: nothing reaches the devvm's shell but
 * a fixed script and its quoted positional parameters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/remedy.h"
#include "breakglass/llm.h"
#include "core/buf.h"
#include "core/error.h"
#include "llm/remedy_units.h"       /* the unit types a restart means something for */
#include "remedy_kill_process_sh.h" /* bg_remedy_kill_process_sh[] */
#include "remedy_remount_sh.h"      /* bg_remedy_remount_sh[] */
#include "remedy_remove_file_sh.h"  /* bg_remedy_remove_file_sh[] */
#include "remedy_restart_unit_sh.h" /* bg_remedy_restart_unit_sh[] */

#define UNIT_NAME_MAX 255 /* systemd's UNIT_NAME_MAX - 1 */
#define MOUNT_MAX     256
#define PID_LIMIT     4194304L /* the kernel's PID_MAX_LIMIT */

static const char *const action_names[] = {BG_REMEDY_RESTART_UNIT, BG_REMEDY_KILL_PROCESS, BG_REMEDY_REMOVE_FILE,
					   BG_REMEDY_REMOUNT};

/* The culprit prefix each action also accepts on its target. */
static const char *const culprit_prefix[] = {"unit:", "pid:", "file:", "mount:"};

const char *bg_remedy_action_name(bg_remedy_action a)
{
	return (size_t)a < sizeof(action_names) / sizeof(action_names[0]) ? action_names[a] : "?";
}

/* ---- validation ---------------------------------------------------------- */

static int printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

static int refuse(const char *action, const char *why)
{
	return bg_error_set(BG_EINVAL, "refused: %s: %s; nothing was run", action, why);
}

/* systemd's unit name characters: letters, digits, ":-_.\" and one "@"
 * (a template's instance); no leading "-" or ".", a known suffix. */
static int check_unit(const char *u)
{
	const char *a = BG_REMEDY_RESTART_UNIT;
	size_t i, n = strlen(u);
	int ats = 0;

	if (n == 0 || n > UNIT_NAME_MAX)
		return refuse(a, "a unit name has 1 to 255 characters");
	if (u[0] == '-' || u[0] == '.' || u[0] == '@')
		return refuse(a, "a unit name starts with a letter or digit");
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)u[i];

		if (c == '@')
			ats++;
		else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' ||
			   c == '-' || c == '_' || c == '.' || c == '\\'))
			return refuse(a, "a unit name has only letters, digits and \":-_.\\@\" (systemd's characters)");
	}
	if (ats > 1)
		return refuse(a, "a unit name has at most one \"@\"");
	if (!bg_remedy_unit_restartable(u))
		return refuse(a, "the unit must be a " BG_REMEDY_UNIT_SUFFIXES);
	return BG_OK;
}

/* The comms that are never killed: the init process, the kernel's thread
 * parent, and the daemon the agent's own connection goes through. */
static int comm_protected(const char *comm)
{
	static const char *const never[] = {"systemd", "init", "kthreadd", "sshd"};
	size_t i;

	for (i = 0; i < sizeof(never) / sizeof(never[0]); i++)
		if (strcmp(comm, never[i]) == 0)
			return 1;
	return 0;
}

/* "PID:COMM": a decimal pid of 2 and up (no sign, no leading zero) and the
 * comm the finding named, which the script compares with /proc/PID/comm
 * right before each signal. */
static int check_process(bg_remedy *r, const char *t)
{
	const char *a = BG_REMEDY_KILL_PROCESS, *colon = strchr(t, ':');
	size_t digits = colon ? (size_t)(colon - t) : strlen(t), i;
	long pid = 0;

	if (!colon)
		return refuse(a, "the target is PID:COMM (the comm the finding named, re-checked before the kill)");
	if (digits == 0 || digits > 7 || t[0] == '0')
		return refuse(a, "the pid is a decimal number without sign or leading zero");
	for (i = 0; i < digits; i++) {
		if (t[i] < '0' || t[i] > '9')
			return refuse(a, "the pid is a decimal number without sign or leading zero");
		pid = pid * 10 + (t[i] - '0');
	}
	if (pid == 1)
		return refuse(a, "pid 1 (init) is never killed");
	if (pid > PID_LIMIT)
		return refuse(a, "the pid is beyond the kernel's limit");
	if (colon[1] == '\0' || strlen(colon + 1) >= BG_REMEDY_COMM_MAX)
		return refuse(a, "the comm has 1 to 15 characters (/proc/PID/comm)");
	if (comm_protected(colon + 1))
		return refuse(a, "that process (init, kthreadd, sshd) is never killed");
	r->pid = pid;
	snprintf(r->comm, sizeof(r->comm), "%s", colon + 1);
	return BG_OK;
}

/* An absolute path in canonical form: no empty, "." or ".." component, no
 * trailing "/". */
static int canonical(const char *p)
{
	const char *c = p;

	if (p[0] != '/')
		return 0;
	if (p[1] == '\0')
		return 1;
	while (*c == '/') {
		size_t n = strcspn(c + 1, "/");

		if (n == 0 || (n == 1 && c[1] == '.') || (n == 2 && c[1] == '.' && c[2] == '.'))
			return 0;
		c += 1 + n;
	}
	return 1;
}

static int under(const char *p, const char *dir)
{
	size_t n = strlen(dir);

	return strncmp(p, dir, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

static int depth(const char *p)
{
	int d = 0;

	for (; *p; p++)
		d += *p == '/';
	return d;
}

/* The system's own trees, never touched, and the directories that hold
 * everyone's files, never removed whole. */
static int check_file(const char *p)
{
	static const char *const system_trees[] = {
		"/etc",    "/usr",  "/boot", "/bin", "/sbin",         "/lib",         "/lib32",          "/lib64",
		"/libx32", "/proc", "/sys",  "/run", "/var/lib/dpkg", "/var/lib/apt", "/var/lib/systemd"};
	static const char *const parents[] = {"/var", "/home", "/srv", "/mnt", "/media"};
	const char *a = BG_REMEDY_REMOVE_FILE;
	size_t i;

	if (!canonical(p))
		return refuse(a,
			      "the path must be absolute and canonical (no \"..\", \".\", \"//\" or trailing \"/\")");
	if (strcmp(p, "/") == 0 || depth(p) < 2)
		return refuse(a, "a top-level directory (or /) is never removed");
	if (under(p, "/dev") && !(under(p, "/dev/shm") && depth(p) >= 3))
		return refuse(a, "under /dev only files in /dev/shm may be removed");
	for (i = 0; i < sizeof(system_trees) / sizeof(system_trees[0]); i++)
		if (under(p, system_trees[i]))
			return refuse(a,
				      "the system's own files (/etc, /usr, /boot, /bin, /lib, /proc, /sys, /run, the "
				      "package database) are never removed");
	for (i = 0; i < sizeof(parents) / sizeof(parents[0]); i++)
		if (under(p, parents[i]) && depth(p) == 2)
			return refuse(a,
				      "a directory directly under /var, /home, /srv, /mnt or /media is never removed "
				      "whole");
	return BG_OK;
}

/* A mount point as /proc/mounts spells it without escapes: no space, tab
 * or backslash. The pseudo filesystems are not remounted. */
static int check_mount(const char *m)
{
	const char *a = BG_REMEDY_REMOUNT;
	size_t i, n = strlen(m);

	if (n > MOUNT_MAX || !canonical(m))
		return refuse(a, "the mount point must be an absolute, canonical path");
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)m[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' ||
		      c == '.' || c == '_' || c == '-' || c == '+' || c == '@' || c == ':' || c == ','))
			return refuse(a, "the mount point has only letters, digits and \"/._-+@:,\"");
	}
	if (under(m, "/proc") || under(m, "/sys") || under(m, "/dev") || under(m, "/run"))
		return refuse(a, "/proc, /sys, /dev and /run are not remounted");
	return BG_OK;
}

static int action_of(const char *name, bg_remedy_action *out)
{
	size_t i;

	for (i = 0; i < sizeof(action_names) / sizeof(action_names[0]); i++)
		if (strcmp(name, action_names[i]) == 0) {
			*out = (bg_remedy_action)i;
			return 1;
		}
	return 0;
}

int bg_remedy_parse(bg_remedy *out, const char *action, const char *target, int recursive)
{
	const char *t = target;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!action || !action_of(action, &out->action))
		return bg_error_set(BG_EINVAL,
				    "refused: the action must be one of restart-unit, kill-process, remove-file, "
				    "remount; nothing was run");
	if (!t || !*t)
		return refuse(action, "a target is needed");
	if (!printable(t))
		return refuse(action, "the target has control or non-ASCII bytes");
	if (strncmp(t, culprit_prefix[out->action], strlen(culprit_prefix[out->action])) == 0)
		t += strlen(culprit_prefix[out->action]);
	if (strlen(t) >= sizeof(out->target))
		return refuse(action, "the target is too long");
	if (recursive && out->action != BG_REMEDY_ACTION_REMOVE_FILE)
		return refuse(action, "\"recursive\" is for remove-file only");
	switch (out->action) {
	case BG_REMEDY_ACTION_RESTART_UNIT: rc = check_unit(t); break;
	case BG_REMEDY_ACTION_KILL_PROCESS: rc = check_process(out, t); break;
	case BG_REMEDY_ACTION_REMOVE_FILE: rc = check_file(t); break;
	default: rc = check_mount(t); break;
	}
	if (rc != BG_OK)
		return rc;
	snprintf(out->target, sizeof(out->target), "%s", t);
	out->recursive = recursive ? 1 : 0;
	return BG_OK;
}

/* ---- what it does -------------------------------------------------------- */

char *bg_remedy_describe(const bg_remedy *r)
{
	bg_buf b = BG_BUF_INIT;

	switch (r->action) {
	case BG_REMEDY_ACTION_RESTART_UNIT:
		bg_buf_printf(&b, "restart the systemd unit %s on the devvm (systemctl restart)", r->target);
		break;
	case BG_REMEDY_ACTION_KILL_PROCESS:
		bg_buf_printf(&b,
			      "kill process %ld (%s) on the devvm: SIGTERM, SIGKILL after 5 s, each only if "
			      "/proc/%ld/comm is still \"%s\"",
			      r->pid, r->comm, r->pid, r->comm);
		break;
	case BG_REMEDY_ACTION_REMOVE_FILE:
		if (r->recursive)
			bg_buf_printf(&b, "DELETE the directory %s on the devvm and everything under it (rm -r)",
				      r->target);
		else
			bg_buf_printf(&b, "DELETE the file %s on the devvm (rm -f; a directory is refused)", r->target);
		break;
	default: bg_buf_printf(&b, "remount %s read-write on the devvm (mount -o remount,rw)", r->target); break;
	}
	return bg_buf_detach(&b);
}

/* The scripts are files, checked with shellcheck (remedy_scripts_check)
 * and embedded by the build: lib/agent/remedy_*.sh. */
/* 'text' for sh, a quote inside as '\'' */
static void quote(bg_buf *b, const char *s)
{
	bg_buf_putc(b, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			bg_buf_puts(b, "'\\''");
		else
			bg_buf_putc(b, *s);
	}
	bg_buf_putc(b, '\'');
}

char *bg_remedy_command(const bg_remedy *r, const char *sudo)
{
	bg_buf b = BG_BUF_INIT;
	char pid[24];

	if (sudo && *sudo)
		bg_buf_printf(&b, "%s ", sudo);
	bg_buf_puts(&b, "sh -c ");
	switch (r->action) {
	case BG_REMEDY_ACTION_RESTART_UNIT:
		quote(&b, bg_remedy_restart_unit_sh);
		bg_buf_puts(&b, " bg-remedy ");
		quote(&b, r->target);
		break;
	case BG_REMEDY_ACTION_KILL_PROCESS:
		snprintf(pid, sizeof(pid), "%ld", r->pid);
		quote(&b, bg_remedy_kill_process_sh);
		bg_buf_puts(&b, " bg-remedy ");
		quote(&b, pid);
		bg_buf_putc(&b, ' ');
		quote(&b, r->comm);
		break;
	case BG_REMEDY_ACTION_REMOVE_FILE:
		quote(&b, bg_remedy_remove_file_sh);
		bg_buf_puts(&b, " bg-remedy ");
		quote(&b, r->target);
		bg_buf_putc(&b, ' ');
		quote(&b, r->recursive ? "recursive" : "file");
		break;
	default:
		quote(&b, bg_remedy_remount_sh);
		bg_buf_puts(&b, " bg-remedy ");
		quote(&b, r->target);
		break;
	}
	return bg_buf_detach(&b);
}
