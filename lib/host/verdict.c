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
	say(b, "block counters (rd/wr bytes and operations) frozen between the two samples");
	if (f->agent_unconfigured)
		say(b, "an idle guest without an agent looks the same: make sure the guest does not answer (SSH) "
		       "before cycling");
	if (f->block_io_pending)
		say(b, "the QEMU process is busy on CPU meanwhile: the guest wants I/O it does not get");
	say(b, "this is the 2026-06-11 signature: QEMU alive, its block path dead");
	return BG_VERDICT_BLOCK_IO_STALLED;
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
