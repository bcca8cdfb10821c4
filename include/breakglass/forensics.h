/*
 * libbreakglass — forensics verdicts (docs/forensics.md).
 *
 * The verdict names are shared by the host bundle (breakglass-pve), the
 * client (which reads them back from --json), the offline playbook and
 * the UI. The bundle itself (collection, storage, rules) belongs to the
 * host side, which is not part of this library (breakglass-pve's own).
 */
#ifndef BREAKGLASS_FORENSICS_H
#define BREAKGLASS_FORENSICS_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum bg_verdict {
	BG_VERDICT_UNKNOWN = 0,
	BG_VERDICT_STOPPED,
	BG_VERDICT_HEALTHY,
	BG_VERDICT_QMP_UNRESPONSIVE,     /**< QEMU main loop hung */
	BG_VERDICT_BLOCK_IO_STALLED,     /**< counters frozen with requests in flight: the block path is dead */
	BG_VERDICT_GUEST_UNRESPONSIVE,   /**< QEMU fine, guest agent silent (I/O moving, or vCPUs idle) */
	BG_VERDICT_QEMU_UNINTERRUPTIBLE, /**< QEMU in state D */
	BG_VERDICT_PAUSED,
	BG_VERDICT_IO_ERROR,
	BG_VERDICT_GUEST_BUSY,   /**< vCPUs spinning, no I/O asked for: the guest, not QEMU */
	BG_VERDICT_UNDETERMINED, /**< the evidence cannot decide; the evidence says what is missing */
} bg_verdict;

/** "stopped", "healthy", "qmp-unresponsive", "block-io-stalled",
 *  "guest-unresponsive", "qemu-uninterruptible", "paused", "io-error",
 *  "guest-busy", "undetermined", "unknown". Never NULL; static. */
BG_EXTERN const char *bg_verdict_name(bg_verdict v);

/** The verdict called `name`, or BG_VERDICT_UNKNOWN. */
BG_EXTERN bg_verdict bg_verdict_from_name(const char *name);

/** The verb each verdict recommends ("cycle", "start", …), or NULL when
 *  none applies (healthy: diagnose inside the guest instead). Static. */
BG_EXTERN const char *bg_verdict_recommended_verb(bg_verdict v);

#ifdef __cplusplus
}
#endif
#endif
