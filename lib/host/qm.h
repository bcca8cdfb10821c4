/*
 * Internal (host side): running Proxmox's `qm` — or any helper program —
 * safely. No shell: fork/exec with an argv, a fixed PATH, a cleaned
 * environment, stdin from /dev/null, in its own process group, with a
 * deadline after which the whole group gets SIGKILL. Output is captured and
 * capped. Owned by the pve-forensics room; used by the verb engine.
 */
#ifndef BG_PVE_QM_H
#define BG_PVE_QM_H

#include <stddef.h>

#define BG_RUN_OUTPUT_CAP (256 * 1024)

typedef struct bg_run_result {
	int exit_code; /* exit status, or -1 when killed/signalled */
	int signal;    /* the signal that ended it, or 0 */
	int timed_out; /* the deadline fired and the group was killed */
	char *out;     /* stdout+stderr interleaved as they came, NUL-terminated */
	size_t out_len;
	size_t out_dropped; /* bytes over the cap */
	long long elapsed_ms;
} bg_run_result;

/*
 * Run argv[0] (an absolute path) with argv, limited to timeout_ms.
 * Returns BG_OK when the program ran to an exit (any status: see
 * result->exit_code), BG_ETIMEOUT when it was killed at the deadline
 * (result filled), or BG_EIO/BG_ENOTFOUND when it could not be started.
 */
int bg_run(bg_run_result *result, const char *const *argv, int timeout_ms);

/* `qm ARGS… ` for `vmid`: argv = {qm_path, args[0], …, (vmid inserted
 * where args has the string "{vmid}")}. */
int bg_qm(bg_run_result *result, const char *qm_path, int timeout_ms, const char *const *args, int vmid);

void bg_run_result_clear(bg_run_result *r);

#endif
