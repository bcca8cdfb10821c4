/*
 * Internal (host side): the forensics bundle of docs/forensics.md. Every section
 * runs with its own deadline and its own error, never failing the whole;
 * the bundle is stored under state_dir/forensics/<UTC time>-<verb>/ (one
 * file per section plus summary.json), the newest `keep` are kept, and a
 * verdict is drawn by rules (verdict.c), no LLM.
 * Owned by the pve-forensics room; used by the verb engine (pve-host).
 */
#ifndef BG_FORENSICS_BUNDLE_H
#define BG_FORENSICS_BUNDLE_H

#include <json-c/json.h>

#include "breakglass/forensics.h"

typedef struct bg_forensics_options {
	int vmid;
	const char *qm;        /* path of qm */
	const char *run_dir;   /* <vmid>.pid, .qmp, .qga */
	const char *state_dir; /* bundles go to state_dir/forensics/ */
	const char *verb;      /* the verb this bundle precedes ("forensics", "cycle", …) */
	int keep;
	int qm_timeout_ms;
	int qmp_timeout_ms;
	int blockstats_interval_ms;
	int gdb;
	/* 1: after the agent answers guest-ping, ask it to start /bin/true
	 * once (bg_qga_exec_probe): a guest out of pids or memory answers the
	 * ping but cannot fork. [forensics] agent_exec. */
	int agent_exec;
	const char *proxmox_facts; /* lines on the config lock and HA (pvestate.h), or NULL */
	const char *config_lock;   /* the lock ("" none), NULL when unknown: summary.json "config_lock" */
	/* 1: when QMP does not answer (a frozen or hung QEMU), do not wait for
	 * `qm status` (which waits out qm's own QMP timeout), `qm pending`,
	 * `qm config` and the agent ping: with QMP silent, none of them feeds
	 * the verdict. collect returns with them still running, marked
	 * "deferred" in summary.json, and bg_forensics_finish completes the
	 * bundle. A mutating verb sets it, so that they never gate the kill,
	 * and finishes before it starts a QEMU again. */
	int defer_qm;
} bg_forensics_options;

typedef struct bg_forensics bg_forensics;

/* Collect every section, draw the verdict, store the bundle. Returns BG_OK
 * even when sections failed (each carries its error); an error only when
 * nothing could be done at all (e.g. out of memory). A failure to store is
 * recorded in the bundle, not fatal. */
int bg_forensics_collect(bg_forensics **out, const bg_forensics_options *opts);

bg_verdict bg_forensics_verdict(const bg_forensics *f);
const char *bg_forensics_id(const bg_forensics *f);       /* "20260611T164742Z-cycle" */
const char *bg_forensics_evidence(const bg_forensics *f); /* one line per fact the verdict rests on */
const char *bg_forensics_path(const bg_forensics *f);     /* where it was stored, or NULL */
int bg_forensics_qmp_answered(const bg_forensics *f);     /* QMP greeted and answered query-status */
int bg_forensics_qemu_pid(const bg_forensics *f);         /* 0 when none */

/* The human text (printed by the forensics verb) and summary.json. */
const char *bg_forensics_text(const bg_forensics *f);
json_object *bg_forensics_summary(const bg_forensics *f); /* borrowed */

/* 1 while deferred sections (options' defer_qm) still run. */
int bg_forensics_pending(const bg_forensics *f);

/* Wait for the deferred sections, rewrite summary.json with them, prune.
 * Idempotent; bg_forensics_free calls it. */
void bg_forensics_finish(bg_forensics *f);

void bg_forensics_free(bg_forensics *f);

/*
 * The newest stored bundle, when it is of the VM's current QEMU process
 * (the same pid and start time, in the same state) and at most max_age_s
 * old: a mutating verb right after a `forensics` uses it rather than take
 * the same evidence again (the offline playbook runs forensics, then
 * cycle, seconds apart). BG_OK with *out (free with bg_forensics_free),
 * BG_ENOTFOUND when there is none to reuse. The QEMU's state is read now:
 * a process that changed state gets a fresh bundle.
 */
int bg_forensics_reuse(bg_forensics **out, const bg_forensics_options *opts, int max_age_s);
int bg_forensics_reused(const bg_forensics *f); /* 1 for a bundle from bg_forensics_reuse */

/* The verdict rules, on the recorded facts (for unit tests with recorded
 * section data). */
typedef struct bg_forensics_facts {
	int qemu_running;           /* a QEMU process exists for the VM */
	char qemu_state;            /* its state letter, or 0 */
	int qmp_answered;           /* greeting and query-status answered */
	const char *qmp_status;     /* query-status "status": running, paused, io-error, … */
	int blockstats_sampled;     /* two samples taken */
	int block_io_moved;         /* any rd/wr counter changed between the samples */
	int block_io_pending;       /* evidence that I/O is wanted (e.g. guest CPU busy) — optional */
	int agent_answered;         /* guest agent ping answered */
	int agent_unconfigured;     /* the VM config has no guest agent: its silence says nothing */
	int agent_exec_failed;      /* the agent answered but the guest could not start a process (no fork) */
	const char *agent_exec_why; /* the agent's words on it, or NULL */
	const char *io_status;      /* query-block io-status of any device not "ok", or NULL */
	/* What tells a dead block path from a guest that asks nothing of it
	 * (issue 14), sampled with the block counters: */
	int inflight_known;       /* every virtio block device's queues were read, at both samples */
	int inflight;             /* requests taken from the guest and not completed (at both samples) */
	const char *inflight_why; /* why not known, or NULL */
	int vcpus;                /* vCPU threads ("CPU n/KVM", "CPU n/TCG") sampled twice; 0: none found */
	int vcpu_busy_pct;        /* the busiest vCPU: its time on a CPU plus waiting for one, % of the interval */
	int vcpu_oncpu_pct;       /* the same vCPU's time on a CPU alone, % */
	int qemu_dthreads;        /* QEMU threads in state D (the host's storage holding them) */
	int failed_ops_moved;     /* failed_* block operations counted between the samples */
} bg_forensics_facts;

/* A vCPU that wants a CPU at least this share of the time spins. */
#define BG_VCPU_BUSY_PCT 80

bg_verdict bg_forensics_rules(const bg_forensics_facts *facts, char *evidence, size_t evidence_len);

/* Facts from recorded section data (the bundle uses these; unit tests feed
 * them captured QMP replies). */

/* Two query-blockstats replies: 1 when any device's rd/wr/flush bytes or
 * operations changed, 0 when all are frozen; *devices counts the devices
 * found in both (0: nothing to compare). Unparsable input counts as no
 * device. */
int bg_forensics_blockstats_moved(json_object *first, json_object *second, int *devices);

/* The block operations (read, write, flush, unmap) completed between the
 * two replies, over every device found in both; never negative. */
long long bg_forensics_blockstats_ops_done(json_object *first, json_object *second);

/* The requests in flight on one virtio queue: the "inuse" of an
 * x-query-virtio-queue-status reply (elements taken from the guest's ring
 * and not yet returned), or -1 when the reply has none. */
int bg_forensics_virtio_inuse(json_object *queue_status);

/* A query-block reply: 1 and "device: io-status" in out when a device's
 * io-status is not "ok", else 0. */
int bg_forensics_block_io_status(json_object *query_block, char *out, size_t out_len);

#endif
