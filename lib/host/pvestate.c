/* What Proxmox says about the VM: config lock, HA, vzdump (pvestate.h). */
#include "host/pvestate.h"

#include "core/error.h"
#include "core/futil.h"
#include "host/qm.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STATE_FILE_CAP (256 * 1024)

static const struct {
	const char *kind, *meaning, *check;
} locks[] = {
	{"backup", "a vzdump backup set it; while that vzdump runs, killing QEMU or clearing the lock fails the backup",
	 "that no vzdump of this VM runs any more (Datacenter > Tasks, or `ps aux | grep vzdump`), then `qm unlock`"},
	{"clone", "a clone of this VM is running or was interrupted",
	 "that the clone task ended (Tasks) and whether its target VM is complete, then `qm unlock`"},
	{"create", "the VM is being created or restored; its disks may be incomplete",
	 "the create/restore task and that the disks are complete; restore again if not"},
	{"migrate",
	 "a migration is running or was interrupted: the target node may already run this VM on the same disks, and "
	 "two QEMUs on one disk corrupt it",
	 "on the migration's target node that no QEMU runs this VM (`qm status VMID` there) and which node owns the "
	 "config, before `qm unlock` on this one"},
	{"rollback", "a snapshot rollback is running or was interrupted; the disks may be half rolled back",
	 "the rollback task; repeat the rollback before starting the VM"},
	{"snapshot", "a snapshot is being taken or failed midway", "the snapshot task and `qm listsnapshot VMID`"},
	{"snapshot-delete", "a snapshot is being deleted or its deletion failed",
	 "the task, then `qm delsnapshot VMID NAME --force` if it failed"},
	{"suspending", "the VM is being suspended to disk: its RAM is being saved",
	 "whether the suspend task finished; a kill now loses the saved state"},
	{"suspended",
	 "the VM is suspended to disk: its RAM state is saved, and `qm unlock` would drop it (the next start boots "
	 "afresh)",
	 "whether the saved state is wanted: `qm resume VMID` (or start) restores it; unlock only to discard it"},
};

static int find_lock(const char *kind)
{
	size_t i;

	for (i = 0; kind && i < sizeof(locks) / sizeof(locks[0]); i++)
		if (strcmp(kind, locks[i].kind) == 0)
			return (int)i;
	return -1;
}

int bg_pve_lock_known(const char *kind)
{
	return find_lock(kind) >= 0;
}

const char *bg_pve_lock_meaning(const char *kind)
{
	int i = find_lock(kind);

	return i >= 0 ? locks[i].meaning : "a lock kind this program does not know; some Proxmox task set it";
}

const char *bg_pve_lock_check(const char *kind)
{
	int i = find_lock(kind);

	return i >= 0 ? locks[i].check : "which task set the lock (Datacenter > Tasks), and that it ended";
}

/* The next line of `text` into `line` (cut at n-1), trailing CR and
 * blanks removed; returns the text after it, or NULL at the end. */
static const char *next_line(const char *text, char *line, size_t n)
{
	size_t len, k;

	if (!text || !*text)
		return NULL;
	len = strcspn(text, "\n");
	k = len < n ? len : n - 1;
	memcpy(line, text, k);
	line[k] = '\0';
	while (k && isspace((unsigned char)line[k - 1]))
		line[--k] = '\0';
	return text[len] ? text + len + 1 : text + len;
}

/* Words from Proxmox's files and tools reach a terminal and a log: only
 * [A-Za-z0-9:@._-] pass, anything else becomes '?'. */
static void sanitize(char *s)
{
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr(":@._-", *s))
			*s = '?';
}

static void copy_word(char *out, size_t n, const char *v)
{
	size_t k = 0;

	while (*v == ' ' || *v == '\t')
		v++;
	while (v[k] && !isspace((unsigned char)v[k]) && k + 1 < n) {
		out[k] = v[k];
		k++;
	}
	out[k] = '\0';
	sanitize(out);
}

/* Whether the decimal word `s` is exactly `vmid`. */
static int id_is(const char *s, int vmid)
{
	char want[16];

	snprintf(want, sizeof(want), "%d", vmid);
	return strcmp(s, want) == 0;
}

int bg_pve_config_lock(const char *config, char *out, size_t n)
{
	char line[512];
	const char *p = config;

	out[0] = '\0';
	while ((p = next_line(p, line, sizeof(line))) != NULL) {
		if (line[0] == '[')
			break; /* [PENDING] or a snapshot: not the current config */
		if (strncmp(line, "lock:", 5) == 0) {
			copy_word(out, n, line + 5);
			return out[0] != '\0';
		}
	}
	return 0;
}

int bg_pve_ha_status_find(const char *text, int vmid, char *state, size_t n)
{
	char line[512], want[32];
	const char *p = text;

	state[0] = '\0';
	snprintf(want, sizeof(want), "service vm:%d ", vmid);
	while ((p = next_line(p, line, sizeof(line))) != NULL) {
		const char *open_p, *comma, *close_p;

		if (strncmp(line, want, strlen(want)) != 0)
			continue;
		/* service vm:102 (node1, started) */
		open_p = strchr(line, '(');
		close_p = open_p ? strchr(open_p, ')') : NULL;
		comma = open_p ? strchr(open_p, ',') : NULL;
		if (close_p && comma && comma < close_p) {
			*(char *)close_p = '\0';
			copy_word(state, n, comma + 1);
		}
		if (!state[0])
			snprintf(state, n, "unknown");
		return 1;
	}
	return 0;
}

int bg_pve_ha_resources_find(const char *text, int vmid, char *state, size_t n)
{
	char line[512], id[32];
	const char *p = text;
	int in_ours = 0;

	state[0] = '\0';
	while ((p = next_line(p, line, sizeof(line))) != NULL) {
		if (line[0] && line[0] != ' ' && line[0] != '\t' && line[0] != '#') {
			/* a section header: `vm: 102` (also `ct: 103`) */
			if (in_ours)
				break;
			if (strncmp(line, "vm:", 3) == 0) {
				copy_word(id, sizeof(id), line + 3);
				in_ours = id_is(id, vmid);
			}
			continue;
		}
		if (in_ours) {
			const char *v = line + strspn(line, " \t");
			if (strncmp(v, "state", 5) == 0 && (v[5] == ' ' || v[5] == '\t'))
				copy_word(state, n, v + 5);
		}
	}
	if (in_ours && !state[0])
		snprintf(state, n, "started"); /* ha-manager's default */
	return in_ours;
}

int bg_pve_ha_busy(const char *state)
{
	static const char *const busy[] = {"fence", "recovery", "migrate", "relocate", "freeze", NULL};
	size_t i;

	for (i = 0; state && busy[i]; i++)
		if (strcmp(state, busy[i]) == 0)
			return 1;
	return 0;
}

int bg_pve_ha_wants_running(const char *state)
{
	return state &&
	       (strcmp(state, "started") == 0 || strcmp(state, "starting") == 0 || strcmp(state, "request_start") == 0);
}

/* One hex field of a UPID, ended by ':'. */
static const char *hex_field(const char *p, unsigned long long *v)
{
	char *end;

	errno = 0;
	*v = strtoull(p, &end, 16);
	if (errno || end == p || *end != ':')
		return NULL;
	return end + 1;
}

/* `UPID:node:pid:pstart:start:type:id:user:` [endtime status]. Fills the
 * pid, pstart, type and id; returns 1 when the line is a UPID whose task
 * has not ended. */
static int parse_upid(const char *line, int *pid, unsigned long long *pstart, char *type, size_t tn, char *id,
		      size_t in)
{
	unsigned long long v, start;
	const char *p, *q;
	size_t k;

	if (strncmp(line, "UPID:", 5) != 0)
		return 0;
	p = strchr(line + 5, ':'); /* after the node */
	if (!p || !(p = hex_field(p + 1, &v)) || v == 0 || v > 0x7fffffffULL)
		return 0;
	*pid = (int)v;
	if (!(p = hex_field(p, pstart)) || !(p = hex_field(p, &start)))
		return 0;
	q = strchr(p, ':');
	if (!q)
		return 0;
	k = (size_t)(q - p) < tn ? (size_t)(q - p) : tn - 1;
	memcpy(type, p, k);
	type[k] = '\0';
	p = q + 1;
	q = strchr(p, ':');
	if (!q)
		return 0;
	k = (size_t)(q - p) < in ? (size_t)(q - p) : in - 1;
	memcpy(id, p, k);
	id[k] = '\0';
	/* the user, then the end: a finished task has "<endtime> <status>"
	 * after a space */
	q = strchr(q + 1, ':');
	if (!q)
		return 0;
	q++;
	q += strspn(q, " \t");
	/* Proxmox writes "UPID 1" for a task it knows to be running: the
	 * pid check decides; an end time (8 hex digits) means it ended. */
	return !(strlen(q) >= 8 && isxdigit((unsigned char)q[0]) && strchr(q, ' ') != NULL);
}

int bg_pve_vzdump_find(const char *text, int vmid, bg_pve_task_alive_fn alive, char *upid, size_t n)
{
	char line[512], type[32], id[32];
	const char *p = text;
	unsigned long long pstart;
	int pid;

	upid[0] = '\0';
	while ((p = next_line(p, line, sizeof(line))) != NULL) {
		if (!parse_upid(line, &pid, &pstart, type, sizeof(type), id, sizeof(id)))
			continue;
		if (strcmp(type, "vzdump") != 0)
			continue;
		/* a job over several VMs has no id: it may be backing up ours */
		if (id[0] && !id_is(id, vmid))
			continue;
		if (!alive(pid, pstart))
			continue;
		snprintf(upid, n, "%.*s", (int)strcspn(line, " "), line);
		sanitize(upid);
		return 1;
	}
	return 0;
}

int bg_pve_task_alive(int pid, unsigned long long pstart)
{
	bg_proc_stat st;

	/* the UPID's pstart is the task's start time: a reused pid differs */
	if (bg_proc_stat_read(&st, pid, 0) != BG_OK || st.state == 'Z' || st.state == 'X')
		return 0;
	return st.starttime == pstart;
}

/* A small file into a NUL-terminated string; BG_ENOTFOUND when absent. */
static int read_small(const char *path, char **out)
{
	char *buf = malloc(STATE_FILE_CAP + 1);
	size_t len = 0;
	int fd;

	*out = NULL;
	if (!buf)
		return bg_error_oom();
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		free(buf);
		return bg_error_set(e == ENOENT ? BG_ENOTFOUND : BG_EIO, "cannot read %s: %s", path, strerror(e));
	}
	while (len < STATE_FILE_CAP) {
		ssize_t r = read(fd, buf + len, STATE_FILE_CAP - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	return BG_OK;
}

static void add_why(bg_pve_state *st, const char *what, const char *detail)
{
	size_t used = strlen(st->why);

	if (used + 2 < sizeof(st->why))
		snprintf(st->why + used, sizeof(st->why) - used, "%s%s%s", used ? "; " : "", what, detail);
}

/* `prog ARGS` with its output; BG_OK only when it ran and exited 0. */
static int run_out(const char *const *argv, int timeout_ms, char **out)
{
	bg_run_result r;
	int rc = bg_run(&r, argv, timeout_ms);

	*out = NULL;
	if (rc == BG_OK && r.exit_code != 0)
		rc = bg_error_set(BG_EFAILED, "%s exited %d", argv[0], r.exit_code);
	if (rc == BG_OK) {
		*out = r.out;
		r.out = NULL;
		if (!*out)
			*out = strdup("");
	}
	bg_run_result_clear(&r);
	return rc;
}

static void read_vzdump(bg_pve_state *st, const bg_pve_state_paths *p, int vmid)
{
	char *text = NULL;
	int rc = read_small(p->tasks_active, &text);

	if (rc == BG_ENOTFOUND) {
		/* no task has run on this host yet: none is alive */
		st->vzdump_alive = 0;
		st->vzdump_task[0] = '\0';
		return;
	}
	if (rc != BG_OK) {
		st->vzdump_alive = -1;
		snprintf(st->vzdump_task, sizeof(st->vzdump_task), "unknown");
		add_why(st, "", bg_error_last()->message);
		return;
	}
	st->vzdump_alive = bg_pve_vzdump_find(text, vmid, bg_pve_task_alive, st->vzdump_task, sizeof(st->vzdump_task));
	free(text);
}

void bg_pve_state_read_lock(bg_pve_state *st, const bg_pve_state_paths *p, int vmid)
{
	static const char *const args[] = {"config", "{vmid}", NULL};
	bg_run_result r;
	int rc = bg_qm(&r, p->qm, p->timeout_ms, args, vmid);

	st->config_read = rc == BG_OK && r.exit_code == 0 && r.out;
	st->lock[0] = '\0';
	if (st->config_read)
		bg_pve_config_lock(r.out, st->lock, sizeof(st->lock));
	else
		add_why(st,
			"qm config: ", rc != BG_OK ? bg_error_last()->message : (r.out && *r.out ? r.out : "failed"));
	bg_run_result_clear(&r);
	st->vzdump_alive = 0;
	st->vzdump_task[0] = '\0';
	if (strcmp(st->lock, "backup") == 0)
		read_vzdump(st, p, vmid);
}

/* The HA stack manages the VM when the resources file has it; ha-manager
 * (slow on a real host: Perl) is asked only then, for the live service
 * state (fence, recovery, … are not in the file), or when the file cannot
 * be read at all. */
static void read_ha(bg_pve_state *st, const bg_pve_state_paths *p, int vmid)
{
	char *text = NULL;
	int rc = read_small(p->ha_resources, &text);

	st->ha_managed = -1;
	if (rc == BG_ENOTFOUND) {
		st->ha_managed = 0; /* no HA resource is configured at all */
		snprintf(st->ha_source, sizeof(st->ha_source), "no resources file");
		return;
	}
	if (rc == BG_OK) {
		st->ha_managed = bg_pve_ha_resources_find(text, vmid, st->ha_state, sizeof(st->ha_state));
		snprintf(st->ha_source, sizeof(st->ha_source), "resources file");
		free(text);
		text = NULL;
		if (st->ha_managed == 0)
			return;
	} else {
		add_why(st, "", bg_error_last()->message);
	}
	if (p->ha_manager && *p->ha_manager && access(p->ha_manager, X_OK) == 0) {
		const char *argv[] = {p->ha_manager, "status", NULL};
		char state[sizeof(st->ha_state)];
		if (run_out(argv, p->timeout_ms, &text) == BG_OK) {
			if (bg_pve_ha_status_find(text, vmid, state, sizeof(state))) {
				st->ha_managed = 1;
				snprintf(st->ha_state, sizeof(st->ha_state), "%s", state);
				snprintf(st->ha_source, sizeof(st->ha_source), "ha-manager status");
			} else if (st->ha_managed < 0) {
				st->ha_managed = 0;
				snprintf(st->ha_source, sizeof(st->ha_source), "ha-manager status");
			}
			free(text);
			return;
		}
		add_why(st, "ha-manager status: ", bg_error_last()->message);
	}
}

void bg_pve_state_read(bg_pve_state *st, const bg_pve_state_paths *p, int vmid)
{
	memset(st, 0, sizeof(*st));
	bg_pve_state_read_lock(st, p, vmid);
	read_ha(st, p, vmid);
	if (st->ha_managed == 1 && strcmp(st->ha_state, "ignored") == 0)
		st->ha_managed = 0; /* listed, but the HA stack leaves it alone: qm acts directly */
	bg_error_clear();
}

int bg_pve_lock_clearable(const bg_pve_state *st)
{
	if (!st->config_read)
		return 0; /* unknown is not safe */
	if (!st->lock[0])
		return 1;
	return strcmp(st->lock, "backup") == 0 && st->vzdump_alive == 0;
}

void bg_pve_state_describe(const bg_pve_state *st, char *out, size_t n)
{
	int k;

	if (!st->config_read)
		k = snprintf(out, n, "config lock: unknown (qm config did not answer)\n");
	else if (!st->lock[0])
		k = snprintf(out, n, "config lock: none\n");
	else
		k = snprintf(out, n, "config lock: %s (%s)%s%s%s\n", st->lock, bg_pve_lock_meaning(st->lock),
			     strcmp(st->lock, "backup") != 0 ? ""
			     : st->vzdump_alive == 1         ? "; vzdump task alive: "
			     : st->vzdump_alive == 0         ? "; no vzdump task of this VM is alive"
							     : "; whether a vzdump runs is unknown",
			     st->vzdump_alive == 1 ? st->vzdump_task : "", "");
	if (k < 0 || (size_t)k >= n)
		return;
	if (st->ha_managed == 1)
		snprintf(out + k, n - (size_t)k, "HA: managed, state %s (from %s)\n", st->ha_state, st->ha_source);
	else if (st->ha_managed == 0)
		snprintf(out + k, n - (size_t)k, "HA: not managed\n");
	else
		snprintf(out + k, n - (size_t)k, "HA: unknown\n");
}
