/* The verdict of a forensics bundle, from rules on recorded facts, never an
 * LLM. The order is the order of certainty: a process that is gone or in
 * state D tells more than any answer QMP could give, and a QMP that does
 * not answer makes every later fact unknowable. */
#include "host/bundle.h"

#include "core/buf.h"

#include <stdio.h>
#include <string.h>

static void say(bg_buf *b, const char *line)
{
	bg_buf_puts(b, line);
	bg_buf_putc(b, '\n');
}

/* One line on the vCPUs, or why there is none. */
static void say_vcpus(const bg_forensics_facts *f, bg_buf *b)
{
	char line[200];

	if (!f->vcpus) {
		say(b, "no vCPU thread was sampled (QEMU not started with -name ...,debug-threads=on, which names "
		       "them \"CPU n/KVM\"): whether the guest spins is unknown");
		return;
	}
	snprintf(line, sizeof(line),
		 "vCPUs (%d): the busiest wanted a CPU %d%% of the interval (on a CPU %d%%, the rest waiting for one): "
		 "%s",
		 f->vcpus, f->vcpu_busy_pct, f->vcpu_oncpu_pct,
		 f->vcpu_busy_pct >= BG_VCPU_BUSY_PCT ? "the guest spins" : "the guest is idle");
	say(b, line);
}

/* The counters did not move and the agent (if any) is silent: tell a dead
 * block path (requests in flight that never complete) from a guest that
 * asks nothing of its disk (busy on its vCPUs, or idle), and say so when
 * the evidence cannot decide (issue 14: a guest out of memory was called
 * block-io-stalled). */
static bg_verdict frozen_rules(const bg_forensics_facts *f, bg_buf *b)
{
	char line[200];

	say(b, "block counters (rd/wr bytes and operations) frozen between the two samples");
	if (f->failed_ops_moved) {
		say(b, "failed block operations were counted between the samples: the storage returns errors");
		return BG_VERDICT_IO_ERROR;
	}
	if (f->inflight_known && f->inflight > 0) {
		snprintf(line, sizeof(line),
			 "%d request(s) taken from the guest's virtio queues were still not completed at both samples",
			 f->inflight);
		say(b, line);
	}
	if (f->qemu_dthreads > 0) {
		snprintf(line, sizeof(line), "%d QEMU thread(s) in state D: the host's storage holds them",
			 f->qemu_dthreads);
		say(b, line);
	}
	if ((f->inflight_known && f->inflight > 0) || f->qemu_dthreads > 0) {
		if (f->block_io_pending)
			say(b, "the QEMU process is busy on CPU meanwhile: the guest wants I/O it does not get");
		if (f->vcpus && f->vcpu_busy_pct >= BG_VCPU_BUSY_PCT)
			say_vcpus(f, b);
		say(b, "this is the 2026-06-11 signature: QEMU alive, its block path dead");
		return BG_VERDICT_BLOCK_IO_STALLED;
	}
	if (!f->inflight_known) {
		snprintf(line, sizeof(line), "requests in flight unknown: %.150s",
			 f->inflight_why ? f->inflight_why : "not read");
		say(b, line);
		say_vcpus(f, b);
		say(b, "undetermined: frozen counters alone cannot tell a dead block path from a guest that asks "
		       "nothing of its disk");
		return BG_VERDICT_UNDETERMINED;
	}
	say(b, "no request is waiting in the guest's virtio queues: the block path is idle, not stalled");
	say_vcpus(f, b);
	if (!f->vcpus) {
		say(b, "undetermined: the guest asks nothing of its disk, and whether it is busy or hung is unknown");
		return BG_VERDICT_UNDETERMINED;
	}
	if (f->vcpu_busy_pct >= BG_VCPU_BUSY_PCT) {
		say(b, "the guest's kernel spins without I/O (out of memory, a process storm, a runaway loop): QEMU is "
		       "fine, the guest needs a reset (if it still answers SSH, triage names the culprit first)");
		return BG_VERDICT_GUEST_BUSY;
	}
	if (f->agent_unconfigured) {
		say(b, "undetermined: vCPUs idle, no disk request, no guest agent to ask: a quiet guest and a hung one "
		       "look alike from the host; if it does not answer SSH either, reset it (QEMU shows no fault)");
		return BG_VERDICT_UNDETERMINED;
	}
	say(b, "the guest neither runs nor answers its agent, and its disk path is idle: the guest is hung, not QEMU");
	return BG_VERDICT_GUEST_UNRESPONSIVE;
}

static bg_verdict running_rules(const bg_forensics_facts *f, bg_buf *b)
{
	if (!f->blockstats_sampled) {
		if (f->agent_answered) {
			say(b, "guest agent answered guest-ping");
			return BG_VERDICT_HEALTHY;
		}
		say(b, "guest agent did not answer guest-ping");
		say(b, "block counters were not sampled twice: cannot tell whether disk I/O moves");
		return BG_VERDICT_UNKNOWN;
	}
	if (f->agent_answered) {
		say(b, "guest agent answered guest-ping");
		/* The agent runs from the guest's memory and needs no disk:
		 * requests stuck in flight behind frozen counters are a dead
		 * block path whatever it says (the lab's Debian devvm under
		 * `wedge --io` was called healthy). */
		if (!f->block_io_moved && ((f->inflight_known && f->inflight > 0) || f->qemu_dthreads > 0)) {
			say(b, "the agent needs no disk to answer: the stuck requests decide");
			return frozen_rules(f, b);
		}
		/* Nor does it fork to answer: a guest out of pids or memory
		 * (SSH cannot start a session) still answers the ping. */
		if (f->agent_exec_failed) {
			char line[300];
			snprintf(line, sizeof(line), "but it could not start a program: %.240s",
				 f->agent_exec_why ? f->agent_exec_why : "(no reason given)");
			say(b, line);
			say(b, "the guest cannot fork (processes, threads or memory exhausted): SSH cannot start a "
			       "session either; QEMU is fine, the guest needs a reset (if SSH still answers, triage "
			       "names the culprit first)");
			return BG_VERDICT_GUEST_BUSY;
		}
		say(b, f->block_io_moved ? "block counters moved between the two samples"
					 : "block counters did not move between the two samples (an idle guest)");
		return BG_VERDICT_HEALTHY;
	}
	if (f->agent_unconfigured) {
		/* No agent to ask: a quiet guest and a hung one look alike from
		 * here, so never call the guest unresponsive on this alone. */
		say(b, "no guest agent is configured for this VM: the guest's own state is not visible from the host");
		if (f->block_io_moved) {
			say(b, "block counters moved between the two samples: QEMU's disk path works");
			return BG_VERDICT_HEALTHY;
		}
	} else {
		say(b, "guest agent did not answer guest-ping");
		if (f->block_io_moved) {
			say(b, "block counters moved between the two samples: QEMU's disk path works");
			return BG_VERDICT_GUEST_UNRESPONSIVE;
		}
	}
	return frozen_rules(f, b);
}

static bg_verdict rules(const bg_forensics_facts *f, bg_buf *b)
{
	char line[160];

	if (!f->qemu_running) {
		say(b, "no QEMU process for the VM (no pidfile, or it names no live QEMU of this VM)");
		return BG_VERDICT_STOPPED;
	}
	if (f->qemu_state == 'D') {
		say(b, "the QEMU process is in state D (uninterruptible sleep, stuck in the kernel)");
		say(b, "SIGKILL will not end it: only the storage coming back, or a host reboot, will");
		return BG_VERDICT_QEMU_UNINTERRUPTIBLE;
	}
	if (!f->qmp_answered) {
		if (f->qemu_state == 'T' || f->qemu_state == 't') {
			snprintf(line, sizeof(line), "the QEMU process is stopped (state %c)", f->qemu_state);
			say(b, line);
		}
		say(b, "QMP did not greet or did not answer query-status in time: the QEMU main loop is hung");
		say(b, "a clean stop goes through QMP and cannot work: kill the checked QEMU pid");
		return BG_VERDICT_QMP_UNRESPONSIVE;
	}
	snprintf(line, sizeof(line), "QMP answers: status %s", f->qmp_status ? f->qmp_status : "(none)");
	say(b, line);
	if ((f->qmp_status && strcmp(f->qmp_status, "io-error") == 0) || f->io_status) {
		if (f->io_status) {
			snprintf(line, sizeof(line), "query-block io-status: %.120s", f->io_status);
			say(b, line);
		}
		say(b, "a block device reported an I/O error and QEMU paused the guest");
		return BG_VERDICT_IO_ERROR;
	}
	if (!f->qmp_status)
		return BG_VERDICT_UNKNOWN;
	if (strcmp(f->qmp_status, "paused") == 0 || strcmp(f->qmp_status, "suspended") == 0 ||
	    strcmp(f->qmp_status, "prelaunch") == 0) {
		say(b, "the guest's vCPUs are not running");
		return BG_VERDICT_PAUSED;
	}
	if (strcmp(f->qmp_status, "guest-panicked") == 0) {
		say(b, "the guest kernel panicked");
		return BG_VERDICT_GUEST_UNRESPONSIVE;
	}
	if (strcmp(f->qmp_status, "running") != 0) {
		say(b, "a QMP status the rules have no verdict for");
		return BG_VERDICT_UNKNOWN;
	}
	return running_rules(f, b);
}

bg_verdict bg_forensics_rules(const bg_forensics_facts *facts, char *evidence, size_t evidence_len)
{
	bg_buf b = BG_BUF_INIT;
	bg_verdict v;

	if (!facts) {
		if (evidence && evidence_len)
			evidence[0] = '\0';
		return BG_VERDICT_UNKNOWN;
	}
	v = rules(facts, &b);
	if (evidence && evidence_len)
		snprintf(evidence, evidence_len, "%s", b.data ? b.data : "");
	bg_buf_free(&b);
	return v;
}
