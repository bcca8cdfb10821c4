/*
 * libbreakglass — the audit log.
 *
 * One JSON line per action (a prompt, a tool call, a verb, an approval, an
 * auth failure): {"time","who","action","target","result","detail"}.
 * Appended with O_APPEND and flushed per record, so concurrent writers
 * never interleave within a line. The newest records are also kept in
 * memory for GET /api/audit.
 */
#ifndef BREAKGLASS_AUDIT_H
#define BREAKGLASS_AUDIT_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bg_audit bg_audit;

/**
 * Open (create) the audit log at `path`, or a memory-only log when path is
 * NULL. `keep` newest records are held in memory (0: 200); when the file
 * exists, its last `keep` records are loaded. The caller frees the handle.
 */
BG_EXTERN int bg_audit_open(bg_audit **out, const char *path, size_t keep);

/**
 * Append one record. `who` is the authenticated principal ("alice",
 * "bearer", "cli:root"); `action` what was asked ("pve.cycle",
 * "agent.prompt", "tool.devvm_exec", "approval", "auth.failure");
 * `target` what it acted on; `result` ("ok", "error", "denied", …);
 * `detail` free text (may be NULL). Strings are escaped as JSON.
 * Thread-safe. A write failure is returned (BG_EIO) but the record is
 * still kept in memory.
 */
BG_EXTERN int bg_audit_record(bg_audit *a, const char *who, const char *action, const char *target, const char *result,
			      const char *detail);

/**
 * The newest `max` records (newest first) as a JSON array, in a string the
 * caller frees with bg_free().
 */
BG_EXTERN int bg_audit_recent(char **json_out, bg_audit *a, size_t max);

/** Close the file and free. NULL is a no-op. */
BG_EXTERN void bg_audit_free(bg_audit *a);

#ifdef __cplusplus
}
#endif
#endif
