/*
 * libbreakglass — the Proxmox verbs: the one table (names, which mutate),
 * the exact-bytes request grammar of docs/forced-command.md, and the client that runs a
 * verb through the forced command over SSH.
 *
 * The table is the only list of verbs in the project: breakglass-pve,
 * breakglassctl, breakglass-web and its /api/pve/verbs all read it.
 */
#ifndef BREAKGLASS_PVE_H
#define BREAKGLASS_PVE_H

#include "common.h"
#include "ssh.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The longest request the forced command accepts, in bytes. */
#define BG_PVE_REQUEST_MAX 64

typedef struct bg_pve_verb {
	const char *name;    /**< "status", "cycle", … */
	int mutating;        /**< takes the VM lock and captures forensics first */
	const char *summary; /**< one line for help texts and the UI */
} bg_pve_verb;

/** The verb table, in display order; `*count` receives its length. */
BG_EXTERN const bg_pve_verb *bg_pve_verbs(size_t *count);

/** The verb called exactly `name` (case-sensitive), or NULL. */
BG_EXTERN const bg_pve_verb *bg_pve_verb_find(const char *name);

/** A parsed request: the verb and whether `--json` was asked for. */
typedef struct bg_pve_request {
	const bg_pve_verb *verb;
	int json;
} bg_pve_request;

/**
 * Parse a request byte for byte: `VERB` or `VERB --json`, VERB in the
 * `allow` list (space-separated names from pve.conf; NULL = every verb),
 * single ASCII spaces, at most BG_PVE_REQUEST_MAX bytes, nothing else.
 * `input` may contain NUL bytes (len counts them). Returns BG_OK, or
 * BG_EREJECTED with a message that says why (never echoing raw bytes).
 */
BG_EXTERN int bg_pve_parse_request(bg_pve_request *out, const char *input, size_t len, const char *allow);

/**
 * Check an `allow` list from pve.conf: every word must be a verb of the
 * table. BG_ECONFIG naming the unknown word otherwise.
 */
BG_EXTERN int bg_pve_check_allow(const char *allow);

/* ---- client: a verb through the forced command ------------------------ */

/** One step of a verb as breakglass-pve reported it (--json). */
typedef struct bg_pve_step {
	char *name;
	int ok;
	long long elapsed_ms;
	char *detail;
} bg_pve_step;

/** What a verb did. Strings are owned by the result; free with
 *  bg_pve_result_clear(). */
typedef struct bg_pve_result {
	char *verb;
	int exit_code; /**< breakglass-pve's exit status (0..4), -1 if none */
	int rejected;  /**< exit 2: the host refused the request */
	int ok;        /**< from the JSON document */
	char *status;  /**< final VM status ("running", "stopped", …) or NULL */
	char *vmid;
	char *forensics_id;     /**< bundle id, or NULL */
	char *verdict;          /**< forensics verdict name, or NULL */
	char *recommended_verb; /**< the verdict's recommendation, or NULL */
	bg_pve_step *steps;
	size_t nsteps;
	long long elapsed_ms;
	char *stdout_text; /**< what the host printed, as received */
	char *stderr_text;
	char *json; /**< the raw --json document, or NULL */
} bg_pve_result;

/**
 * Run `verb` on the Proxmox host through `ssh` (a session to the forced
 * command), asking for `--json`. The verb is checked against the table
 * first: an unknown verb never leaves the process (BG_EINVAL). The
 * command sent is exactly "VERB --json" (no `timeout` wrapper: the forced
 * command ignores what is sent but for that grammar). `timeout_s` bounds
 * the whole exchange; `on_output` (may be NULL) sees the raw output as it
 * arrives, for progress. Returns BG_OK when the verb succeeded (exit 0);
 * otherwise the code matching breakglass-pve's exit status — 2 BG_EREJECTED,
 * 3 BG_EBUSY, 4 BG_EFAILED, 1 BG_ERROR — with `out` filled as far as known;
 * or a transport error (BG_ECONNECT, BG_ETIMEOUT, …) from the SSH layer.
 */
BG_EXTERN int bg_pve_run(bg_pve_result *out, bg_ssh *ssh, const char *verb, int timeout_s, bg_ssh_output_fn on_output,
			 void *payload);

/** The result as one JSON object (the shape of POST /api/pve/{verb}'s
 *  `result`); a string the caller frees with bg_free(). */
BG_EXTERN int bg_pve_result_to_json(char **json_out, const bg_pve_result *r);

/** Free what a result holds and zero it. */
BG_EXTERN void bg_pve_result_clear(bg_pve_result *r);

/**
 * What a `status` result says about the VM's Proxmox side, for `doctor`:
 * one line into `out` (the config lock, HA state, Proxmox and QEMU
 * versions) with a warning for each thing to settle before an incident (a
 * config lock, which `cycle` stops at; an HA state other than started;
 * versions the host could not tell; a host too old to report them).
 * Returns the number of warnings (0: nothing to settle).
 */
BG_EXTERN int bg_pve_result_notes(char *out, size_t n, const bg_pve_result *r);

#ifdef __cplusplus
}
#endif
#endif
