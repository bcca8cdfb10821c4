/*
 * Internal (host side): what Proxmox itself says about the VM before
 * breakglass-pve touches it — the config lock, the HA stack, a running
 * vzdump, the versions. Facts, in Proxmox's words (docs/proxmox.md):
 *
 * - A VM config may carry `lock: <kind>` (backup, clone, create, migrate,
 *   rollback, snapshot, snapshot-delete, suspending, suspended). `qm
 *   start/stop/reset` refuse a locked VM ("VM is locked (backup)") unless
 *   `--skiplock`; `qm unlock` just deletes the field, so it is cleared only
 *   when that is known to be safe: no lock, or `backup` with no vzdump task
 *   of this VM alive.
 * - The HA stack manages the VMs that `ha-manager status` lists as
 *   `service vm:<vmid> (<node>, <state>)`, i.e. those with a `vm: <vmid>`
 *   section in /etc/pve/ha/resources.cfg. For them `qm start` only
 *   requests a start and `qm stop` leaves the requested state at stopped.
 * - Running tasks are listed in /var/log/pve/tasks/active, one UPID a line:
 *   `UPID:<node>:<pid hex>:<pstart hex>:<start hex>:<type>:<id>:<user>:`;
 *   a task is alive while its pid exists with that start time (field 22 of
 *   /proc/PID/stat) and no end time follows the UPID.
 *
 * Owned by the pve-host room. The parsers are pure, for unit tests.
 */
#ifndef BG_HOST_PVESTATE_H
#define BG_HOST_PVESTATE_H

#include <stddef.h>

#define BG_PVE_LOCK_MAX 32

typedef struct bg_pve_state {
	int config_read;            /* `qm config` answered */
	char lock[BG_PVE_LOCK_MAX]; /* the config lock, "" when none */
	int ha_managed;             /* 1 managed, 0 not, -1 unknown */
	char ha_state[32];          /* the HA service state (started, stopped, …), "" when not managed */
	char ha_source[48];         /* "ha-manager status" or "resources file" */
	int vzdump_alive;           /* 1 a vzdump of this VM runs, 0 none, -1 unknown */
	char vzdump_task[160];      /* the live task's UPID, or why it is unknown */
	char why[512];              /* what could not be read, "" when all was */
} bg_pve_state;

/* The `lock:` value of a VM config text (its main section), into `out`
 * ("" when none). Returns 1 when a lock was found. */
int bg_pve_config_lock(const char *config, char *out, size_t n);

/* Whether `kind` is one of qemu-server's lock kinds. */
int bg_pve_lock_known(const char *kind);

/* What a lock of `kind` means, and what a human must check before clearing
 * it: one sentence each, never NULL. */
const char *bg_pve_lock_meaning(const char *kind);
const char *bg_pve_lock_check(const char *kind);

/* `ha-manager status` output: 1 and the state when `vm:<vmid>` is listed,
 * 0 when not. */
int bg_pve_ha_status_find(const char *text, int vmid, char *state, size_t n);

/* The HA resources file text: 1 and the requested state (default
 * "started") when it has a `vm: <vmid>` section, 0 when not. */
int bg_pve_ha_resources_find(const char *text, int vmid, char *state, size_t n);

/* Whether the HA stack is itself acting on the VM (fence, recovery,
 * migrate, relocate, freeze): a verb must not race it. */
int bg_pve_ha_busy(const char *state);

/* Whether the HA stack is asked to keep the VM running. */
int bg_pve_ha_wants_running(const char *state);

/* The tasks/active text: 1 when a vzdump task for `vmid` (or for all VMs)
 * is alive, its UPID in `upid`; 0 when none. `alive(pid, pstart)` says
 * whether the pid runs with that start time (tests pass their own). */
typedef int (*bg_pve_task_alive_fn)(int pid, unsigned long long pstart);
int bg_pve_vzdump_find(const char *text, int vmid, bg_pve_task_alive_fn alive, char *upid, size_t n);

/* The real check: /proc/PID/stat exists and its start time is pstart. */
int bg_pve_task_alive(int pid, unsigned long long pstart);

/* Everything above, read for `vmid`: `qm config` through qm_path (then
 * tasks_active when the lock is `backup`), then the HA resources file,
 * and ha-manager for the live service state only when the file lists the
 * VM or cannot be read (a VM listed as `ignored` counts as not managed). Never fails: what cannot be read is recorded
 * in st->why and leaves the unknown marked (-1). */
typedef struct bg_pve_state_paths {
	const char *qm;
	const char *ha_manager; /* "" or NULL: not asked */
	const char *ha_resources;
	const char *tasks_active;
	int timeout_ms;
} bg_pve_state_paths;

void bg_pve_state_read(bg_pve_state *st, const bg_pve_state_paths *p, int vmid);

/* Re-read only the lock (and the vzdump check for `backup`). */
void bg_pve_state_read_lock(bg_pve_state *st, const bg_pve_state_paths *p, int vmid);

/* Whether clearing the lock is known to be safe: no lock, or `backup`
 * with no vzdump task of this VM alive. */
int bg_pve_lock_clearable(const bg_pve_state *st);

/* One line per fact, for the forensics evidence and the text report. */
void bg_pve_state_describe(const bg_pve_state *st, char *out, size_t n);

#endif
