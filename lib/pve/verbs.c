/* The verb table and the request grammar of docs/forced-command.md. This is the only list
 * of verbs in the project; the forced command, the client, the CLI and the
 * web UI all read it. */
#include "breakglass/pve.h"
#include "core/error.h"
#include "pve/steps.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const bg_pve_verb verb_table[] = {
	{"status", 0, "state of the VM: running or stopped, pid, QMP, uptime"},
	{"forensics", 0, "capture the forensics bundle (QMP, threads, host) and its verdict"},
	{"reset", 1, "forensics, then a warm reset (same QEMU process)"},
	{"stop", 1, "forensics, then stop the VM"},
	{"start", 1, "forensics, then start the VM"},
	{"cycle", 1, "forensics, stop (kill a hung QEMU), start: the recovery action for a frozen VM"},
};

#define NVERBS    (sizeof(verb_table) / sizeof(verb_table[0]))
#define JSON_FLAG " --json"

const bg_pve_verb *bg_pve_verbs(size_t *count)
{
	if (count)
		*count = NVERBS;
	return verb_table;
}

static const bg_pve_verb *find_n(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < NVERBS; i++)
		if (strlen(verb_table[i].name) == len && memcmp(verb_table[i].name, name, len) == 0)
			return &verb_table[i];
	return NULL;
}

const bg_pve_verb *bg_pve_verb_find(const char *name)
{
	return name ? find_n(name, strlen(name)) : NULL;
}

/* Whether `verb` is a word of the space-separated `allow` list. */
static int allowed(const char *allow, const char *verb)
{
	size_t n = strlen(verb);
	const char *p = allow;

	if (!allow)
		return 1;
	while ((p = strstr(p, verb)) != NULL) {
		int starts = p == allow || p[-1] == ' ' || p[-1] == '\t' || p[-1] == ',';
		int ends = p[n] == '\0' || p[n] == ' ' || p[n] == '\t' || p[n] == ',';
		if (starts && ends)
			return 1;
		p += n;
	}
	return 0;
}

int bg_pve_parse_request(bg_pve_request *out, const char *input, size_t len, const char *allow)
{
	size_t i, verb_len;
	const bg_pve_verb *verb;

	out->verb = NULL;
	out->json = 0;
	if (!input || len == 0)
		return bg_error_set(BG_EREJECTED, "empty request");
	if (len > BG_PVE_REQUEST_MAX)
		return bg_error_set(BG_EREJECTED, "request longer than %d bytes", BG_PVE_REQUEST_MAX);
	/* Only lower-case ASCII letters, one optional " --json": check every
	 * byte before interpreting any, so NUL, control bytes and non-ASCII are
	 * refused whatever else the request says. */
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)input[i];
		if (!((c >= 'a' && c <= 'z') || c == ' ' || c == '-'))
			return bg_error_set(BG_EREJECTED, "byte %zu is not allowed (only a verb and --json)", i + 1);
	}
	for (verb_len = 0; verb_len < len && input[verb_len] != ' '; verb_len++)
		;
	if (verb_len < len) {
		if (len - verb_len != strlen(JSON_FLAG) || memcmp(input + verb_len, JSON_FLAG, len - verb_len) != 0)
			return bg_error_set(BG_EREJECTED, "only `VERB` or `VERB --json` is accepted");
		out->json = 1;
	}
	verb = find_n(input, verb_len);
	if (!verb || !allowed(allow, verb->name)) {
		out->json = 0;
		return bg_error_set(BG_EREJECTED, "not an allowed verb");
	}
	out->verb = verb;
	return BG_OK;
}

int bg_pve_check_allow(const char *allow)
{
	const char *p = allow, *start;
	char word[32];
	size_t n, count = 0;

	while (p && *p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		start = p;
		while (*p && *p != ' ' && *p != '\t' && *p != ',')
			p++;
		n = (size_t)(p - start);
		if (n == 0)
			break;
		if (n >= sizeof(word) || !find_n(start, n)) {
			snprintf(word, sizeof(word), "%.*s", (int)(n < sizeof(word) ? n : sizeof(word) - 1), start);
			return bg_error_set(BG_ECONFIG, "[verbs] allow: '%s' is not a verb", word);
		}
		count++;
	}
	if (count == 0)
		return bg_error_set(BG_ECONFIG, "[verbs] allow: no verb allowed");
	return BG_OK;
}

void bg_pve_steps_free(bg_pve_step *steps, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(steps[i].name);
		free(steps[i].detail);
	}
	free(steps);
}
