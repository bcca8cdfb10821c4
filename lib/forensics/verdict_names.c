/* The verdict names and their recommended verbs: one table, read by the
 * host bundle, the client, the offline playbook and the UI. */
#include "breakglass/forensics.h"

#include <string.h>

static const struct {
	bg_verdict verdict;
	const char *name;
	const char *verb; /* NULL: no power verb helps */
} verdicts[] = {
	{BG_VERDICT_UNKNOWN, "unknown", NULL},
	{BG_VERDICT_STOPPED, "stopped", "start"},
	{BG_VERDICT_HEALTHY, "healthy", NULL},
	{BG_VERDICT_QMP_UNRESPONSIVE, "qmp-unresponsive", "cycle"},
	{BG_VERDICT_BLOCK_IO_STALLED, "block-io-stalled", "cycle"},
	{BG_VERDICT_GUEST_UNRESPONSIVE, "guest-unresponsive", "reset"},
	/* SIGKILL cannot end a process in state D: only the storage coming
	 * back, or a host reboot, will. No verb of ours helps. */
	{BG_VERDICT_QEMU_UNINTERRUPTIBLE, "qemu-uninterruptible", NULL},
	{BG_VERDICT_PAUSED, "paused", "cycle"},
	{BG_VERDICT_IO_ERROR, "io-error", "cycle"},
	/* The guest's kernel spins (out of memory, a process storm, a runaway
	 * loop) and asks nothing of its disk: QEMU is fine, the guest needs
	 * rebooting. */
	{BG_VERDICT_GUEST_BUSY, "guest-busy", "reset"},
	/* Not enough evidence to pick a signature: no power verb is claimed. */
	{BG_VERDICT_UNDETERMINED, "undetermined", NULL},
};

#define NVERDICTS (sizeof(verdicts) / sizeof(verdicts[0]))

const char *bg_verdict_name(bg_verdict v)
{
	size_t i;

	for (i = 0; i < NVERDICTS; i++)
		if (verdicts[i].verdict == v)
			return verdicts[i].name;
	return "unknown";
}

bg_verdict bg_verdict_from_name(const char *name)
{
	size_t i;

	for (i = 0; name && i < NVERDICTS; i++)
		if (strcmp(verdicts[i].name, name) == 0)
			return verdicts[i].verdict;
	return BG_VERDICT_UNKNOWN;
}

const char *bg_verdict_recommended_verb(bg_verdict v)
{
	size_t i;

	for (i = 0; i < NVERDICTS; i++)
		if (verdicts[i].verdict == v)
			return verdicts[i].verb;
	return NULL;
}
