/* Internal: the devvm triage's pieces, for triage.c, triage_rules.c and
 * the unit tests. */
#ifndef BG_FORENSICS_TRIAGE_INT_H
#define BG_FORENSICS_TRIAGE_INT_H

#include "breakglass/triage.h"

struct bg_triage {
	bg_triage_section *sections; /* strings owned (malloc'd) */
	size_t nsections;
	bg_triage_finding *findings; /* strings owned (malloc'd) */
	size_t nfindings;
	long long elapsed_ms;
};

/* The section names in run order, NULL-terminated. */
extern const char *const bg_triage_section_names[];

/* The remote script, with `nonce` in its section markers (so that output
 * of a section cannot fake a marker). A string the caller frees. */
char *bg_triage_script(const char *nonce);

/* Split the script's output into sections. A section whose end marker
 * never came (the run was cut short) is kept, not ok; a section that was
 * not reached is recorded as not run. Applies the rules. */
int bg_triage_parse_output(bg_triage **out, const char *text, size_t len, const char *nonce);

int bg_triage_new_empty(bg_triage **out);
int bg_triage_add_section(bg_triage *t, const char *name, int ok, const char *output, size_t len, const char *error);
/* `culprit` may be NULL (nothing to name); see bg_triage_finding. */
int bg_triage_add_finding(bg_triage *t, const char *rule, bg_severity sev, const char *summary, const char *evidence,
			  const char *culprit);

/* A section's output when it ran (also one that failed or was cut short
 * after printing something), else NULL. */
const char *bg_triage_output(const bg_triage *t, const char *name);

/* Run every rule over the sections, appending findings (most severe
 * first). */
int bg_triage_apply_rules(bg_triage *t);

#endif
