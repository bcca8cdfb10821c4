/*
 * libbreakglass — devvm triage (docs/forensics.md, guest side): uptime and load,
 * memory and swap, PSI, disk and inodes, failed units, top processes by
 * memory and CPU, processes in state D, OOM kills and errors from the
 * kernel log, tmpfs, read-only mounts, process counts, stuck units — each
 * a section — and rule-based findings that name their culprit, no LLM.
 */
#ifndef BREAKGLASS_TRIAGE_H
#define BREAKGLASS_TRIAGE_H

#include "common.h"
#include "ssh.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum bg_severity { BG_SEVERITY_INFO = 0, BG_SEVERITY_WARN = 1, BG_SEVERITY_CRITICAL = 2 } bg_severity;

/** "info", "warn", "critical" (static strings). */
BG_EXTERN const char *bg_severity_name(bg_severity s);

typedef struct bg_triage_section {
	const char *name;   /**< "uptime", "memory", "psi", "disk", "inodes", "failed_units",
				 "top_mem", "top_cpu", "dstate", "kernel_log", "tmpfs", "mounts",
				 "procs", "units" */
	int ok;             /**< the section's command worked */
	const char *output; /**< raw text as the devvm printed it */
	const char *error;  /**< why not, when !ok */
} bg_triage_section;

typedef struct bg_triage_finding {
	const char *rule; /**< "disk_full", "inodes_full", "oom_kill", "swap_thrash", "memory_pressure",
			       "failed_units", "hung_unit", "dstate", "cpu_runaway", "tmpfs_ram",
			       "fs_readonly", "process_storm", "load_high", … */
	bg_severity severity;
	const char *summary;  /**< one line for the operator */
	const char *evidence; /**< the lines it rests on */
	/** What to look at and act on, or NULL: "unit:NAME" (a systemd unit),
	 *  "pid:PID:COMM" (a process, with its comm so that a remedy can check
	 *  it is still the same one), "mount:PATH" (a filesystem) or
	 *  "file:PATH" (a file or directory holding the space). Always the
	 *  last member. */
	const char *culprit;
} bg_triage_finding;

typedef struct bg_triage bg_triage;

/**
 * Run the triage on the devvm over `ssh`, in as few round trips as
 * possible, each section bounded; `timeout_s` bounds the whole. A section
 * that fails is recorded with its error; the triage as a whole fails only
 * when the devvm cannot be reached (the transport error is returned).
 */
BG_EXTERN int bg_triage_run(bg_triage **out, bg_ssh *ssh, int timeout_s);

/**
 * Build a triage from recorded section outputs (name/output pairs), as a
 * run would: for tests, and for replaying a saved bundle.
 */
BG_EXTERN int bg_triage_from_sections(bg_triage **out, const char *const *names, const char *const *outputs,
				      size_t count);

/* The sections and findings, by index; owned by the triage (valid until
 * bg_triage_free()); NULL past the end. */
BG_EXTERN size_t bg_triage_section_count(const bg_triage *t);
BG_EXTERN const bg_triage_section *bg_triage_section_at(const bg_triage *t, size_t i);
BG_EXTERN size_t bg_triage_finding_count(const bg_triage *t);
BG_EXTERN const bg_triage_finding *bg_triage_finding_at(const bg_triage *t, size_t i);

/** The whole triage as JSON {"sections":[…],"findings":[…],"elapsed_ms"};
 *  a string the caller frees with bg_free(). */
BG_EXTERN int bg_triage_to_json(char **json_out, const bg_triage *t);

/** A compact text rendering (findings first, then sections); a string
 *  the caller frees with bg_free(). */
BG_EXTERN int bg_triage_to_text(char **text_out, const bg_triage *t);

BG_EXTERN void bg_triage_free(bg_triage *t);

#ifdef __cplusplus
}
#endif
#endif
