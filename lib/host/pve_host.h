/*
 * libbreakglass — the Proxmox host side: the engine behind the forced
 * command `breakglass-pve` (docs/forced-command.md).
 *
 * The program parses its input with bg_pve_parse_request() (breakglass/pve.h)
 * against the `[verbs] allow` list of pve.conf, then hands the request to
 * this engine, which runs the verb (forensics first for every mutating
 * verb, under the per-VMID lock), writes the event log and returns a report
 * the program prints. The engine never prints and never exits; it ignores
 * the environment (under sshd it is the client's business).
 */
#ifndef BREAKGLASS_PVE_HOST_H
#define BREAKGLASS_PVE_HOST_H

#include "breakglass/common.h"
#include "breakglass/config.h"
#include "breakglass/pve.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Exit statuses of breakglass-pve, and of a report. */
#define BG_PVE_EXIT_OK       0 /**< done */
#define BG_PVE_EXIT_ERROR    1 /**< internal or configuration error */
#define BG_PVE_EXIT_REJECTED 2 /**< the request is not in the grammar */
#define BG_PVE_EXIT_BUSY     3 /**< another mutating verb holds the VM lock */
#define BG_PVE_EXIT_FAILED   4 /**< the VM is not in the state the verb promises */

typedef struct bg_pve_host bg_pve_host;
typedef struct bg_pve_host_report bg_pve_host_report;

/**
 * Progress, as the verb runs: one line of human text without a newline
 * (a step starting or ending). Return 0; the value is otherwise ignored,
 * since a verb must finish even when nobody reads its progress.
 */
typedef int (*bg_pve_host_progress_fn)(const char *line, void *payload);

typedef struct bg_pve_host_options {
	unsigned int version;
	const bg_config *config;          /**< a BG_CONFIG_PVE config, borrowed for the host's life */
	const char *client;               /**< client address for log lines ("192.168.1.2"); NULL = "local" */
	int use_syslog;                   /**< also send each log line to syslog (LOG_AUTHPRIV) */
	bg_pve_host_progress_fn progress; /**< may be NULL */
	void *payload;
	int deadline_ms; /**< each verb's overall deadline; 0 (the default): the sum of the limits in [timeouts] */
	/**
	 * 1: the forensics verb of a QEMU whose QMP is silent returns its
	 * report (the verdict, and every section that does not wait) without
	 * waiting for `qm status` (which waits out qm's own QMP timeout, 3 s
	 * on Proxmox), `qm pending`, `qm config` and the agent ping. Then
	 * bg_pve_host_report_pending() is 1, the VM lock is still held, and
	 * the caller, once it has answered, calls
	 * bg_pve_host_report_complete() to end those sections into the
	 * bundle and release the lock. 0 (the default): every verb returns
	 * with its bundle complete.
	 */
	int background_completion;
} bg_pve_host_options;

#define BG_PVE_HOST_OPTIONS_VERSION 1
#define BG_PVE_HOST_OPTIONS_INIT                                             \
	{                                                                    \
		BG_PVE_HOST_OPTIONS_VERSION, NULL, NULL, 0, NULL, NULL, 0, 0 \
	}

/** Fill `opts` with the defaults of `version` (for bindings that cannot
 *  use the macro). */
int bg_pve_host_options_init(bg_pve_host_options *opts, unsigned int version);

/**
 * A host engine for the VM of `opts->config`. Opens nothing yet: a
 * rejected request must leave no trace but its log line (and the rate
 * limit's bucket). The caller frees
 * it with bg_pve_host_free(); `opts->config` must outlive it.
 */
int bg_pve_host_new(bg_pve_host **out, const bg_pve_host_options *opts);

/**
 * Whether `path` (pve.conf) may be trusted, before it is read: a regular
 * file owned by root (or the effective uid), not writable by group or
 * others, in directories that are the same up to / (sshd's StrictModes).
 * BG_OK, or BG_EDENIED / BG_ENOTFOUND with a message naming the path and
 * the fix. bg_pve_host_new() checks the directories of pve.conf the same
 * way and fails when one that exists is not safe.
 */
int bg_pve_host_check_config(const char *path);

/** Free the engine. NULL is a no-op. */
void bg_pve_host_free(bg_pve_host *h);

/**
 * Record a rejected request: at most one log line (`event=rejected`) with
 * the input escaped (no raw control byte reaches the log) and cut to its
 * first 256 bytes (`len=` gives the whole, `input_cut=` what was left
 * out), the reason and the client address. Lines are rate-limited by a
 * token bucket shared by all processes, in lock_dir/
 * breakglass-pve-rejected.bucket: a burst of 60, then one a second; the
 * next line logged says `suppressed=N`. Nothing else happens. `input` may
 * hold NUL bytes.
 */
void bg_pve_host_log_rejected(bg_pve_host *h, const char *input, size_t len, const char *reason);

/**
 * Run a parsed request. Always fills `*out` with a report (free with
 * bg_pve_host_report_free()) unless out of memory, and returns its exit
 * status as a bg_status: BG_OK (exit 0), BG_EBUSY (3), BG_EFAILED (4),
 * BG_ERROR or another code (1).
 */
int bg_pve_host_run(bg_pve_host_report **out, bg_pve_host *h, const bg_pve_request *req);

/** The exit status for breakglass-pve: one of BG_PVE_EXIT_*. */
int bg_pve_host_report_exit_code(const bg_pve_host_report *r);

/** The text output (what the verb prints without --json). Owned by the
 *  report. Never NULL. */
const char *bg_pve_host_report_text(const bg_pve_host_report *r);

/**
 * The --json document: one object with `verb`, `vmid` (a string), `ok`,
 * `status` (the VM's final state), `steps` (each `name`, `ok`,
 * `elapsed_ms`, `detail`), `forensics` (`id`, `verdict`,
 * `recommended_verb`, `evidence`, `path`; null when none was taken),
 * `elapsed_ms`, `exit_code` and `error` (null when none). Owned by the
 * report; never NULL.
 */
const char *bg_pve_host_report_json(const bg_pve_host_report *r);

/** Why the verb did not succeed, one line, or NULL when it did. Owned by
 *  the report. */
const char *bg_pve_host_report_error(const bg_pve_host_report *r);

/** 1 while the report's bundle is still completing (options'
 *  background_completion): the VM lock is held until
 *  bg_pve_host_report_complete(). */
int bg_pve_host_report_pending(const bg_pve_host_report *r);
/** Wait for the bundle's deferred sections, write them into it, log
 *  `event=forensics-end` and release the VM lock. A no-op when nothing is
 *  pending; bg_pve_host_report_free() does it too. */
void bg_pve_host_report_complete(bg_pve_host_report *r);
/** Free a report (completing it first). NULL is a no-op. */
void bg_pve_host_report_free(bg_pve_host_report *r);

#ifdef __cplusplus
}
#endif
#endif
