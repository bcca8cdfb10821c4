/* The client side of the forced command: send "VERB --json" to
 * breakglass-pve over SSH and read back what it did. The host's document
 * is parsed tolerantly (an older or newer breakglass-pve may add or lack
 * members): what is missing stays NULL, the raw text is always kept. */
#include "pve/client.h"
#include "pve/steps.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/json.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_VERB_TIMEOUT_S 240

int bg_pve_status_for_exit(int exit_code)
{
	switch (exit_code) {
	case 0: return BG_OK;
	case 2: return BG_EREJECTED;
	case 3: return BG_EBUSY;
	case 4: return BG_EFAILED;
	default: return BG_ERROR;
	}
}

/* A copy of a member's text; numbers are accepted where text is expected
 * (a vmid may come as 102 or "102"). NULL when missing or null. */
static char *dup_member(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !v)
		return NULL;
	if (json_object_is_type(v, json_type_string) || json_object_is_type(v, json_type_int) ||
	    json_object_is_type(v, json_type_double))
		return strdup(json_object_get_string(v));
	return NULL;
}

static char *dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d) {
		if (n)
			memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

static int parse_steps(bg_pve_result *out, json_object *arr)
{
	size_t i, n = arr ? json_object_array_length(arr) : 0;

	if (n == 0)
		return BG_OK;
	out->steps = calloc(n, sizeof(*out->steps));
	if (!out->steps)
		return bg_error_oom();
	for (i = 0; i < n; i++) {
		json_object *s = json_object_array_get_idx(arr, i);
		bg_pve_step *st = &out->steps[out->nsteps];
		if (!json_object_is_type(s, json_type_object))
			continue;
		st->name = dup_member(s, "name");
		st->detail = dup_member(s, "detail");
		st->ok = bg_json_bool(s, "ok", 0);
		st->elapsed_ms = bg_json_int(s, "elapsed_ms", 0);
		out->nsteps++;
	}
	return BG_OK;
}

/* The document is the whole of stdout, or — if the host printed anything
 * around it — its last line that parses as an object. */
static json_object *find_document(const char *text, size_t len)
{
	json_object *doc = bg_json_parse(text, len, "breakglass-pve --json");
	size_t end = len;

	while (!doc && end > 0) {
		size_t start = end;
		while (start > 0 && text[start - 1] != '\n')
			start--;
		if (start < end && text[start] == '{')
			doc = bg_json_parse(text + start, end - start, "breakglass-pve --json");
		end = start > 0 ? start - 1 : 0;
	}
	if (doc && !json_object_is_type(doc, json_type_object)) {
		json_object_put(doc);
		doc = NULL;
	}
	return doc;
}

static int parse_document(bg_pve_result *out, json_object *doc)
{
	json_object *f = bg_json_obj(doc, "forensics");

	out->json = strdup(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN));
	out->ok = bg_json_bool(doc, "ok", 0);
	out->status = dup_member(doc, "status");
	out->vmid = dup_member(doc, "vmid");
	out->elapsed_ms = bg_json_int(doc, "elapsed_ms", 0);
	out->forensics_id = dup_member(f, "id");
	out->verdict = dup_member(f, "verdict");
	out->recommended_verb = dup_member(f, "recommended_verb");
	if (!out->json)
		return bg_error_oom();
	return parse_steps(out, bg_json_arr(doc, "steps"));
}

int bg_pve_result_fill(bg_pve_result *out, const char *verb, int exit_code, const char *out_text, size_t out_len,
		       const char *err_text, size_t err_len)
{
	json_object *doc;
	int rc = BG_OK;

	memset(out, 0, sizeof(*out));
	out->exit_code = exit_code;
	out->rejected = exit_code == 2;
	out->verb = strdup(verb ? verb : "");
	out->stdout_text = dup_n(out_text ? out_text : "", out_text ? out_len : 0);
	out->stderr_text = dup_n(err_text ? err_text : "", err_text ? err_len : 0);
	if (!out->verb || !out->stdout_text || !out->stderr_text)
		return bg_error_oom();
	doc = out_len ? find_document(out_text, out_len) : NULL;
	if (doc)
		rc = parse_document(out, doc);
	json_object_put(doc);
	bg_error_clear();
	return rc;
}

/* The first non-empty line of `s`, for an error message. */
static void first_line(const char *s, char *buf, size_t n)
{
	size_t len;

	buf[0] = '\0';
	if (!s)
		return;
	while (*s == '\n' || *s == '\r' || *s == ' ')
		s++;
	len = strcspn(s, "\r\n");
	snprintf(buf, n, "%.*s", (int)(len < n ? len : n - 1), s);
}

/* The document's own "error" member, if it has one. */
static int document_error(const bg_pve_result *r, char *buf, size_t n)
{
	json_object *doc = r->json ? json_tokener_parse(r->json) : NULL;
	const char *e = bg_json_str(doc, "error", NULL);
	int found = e && *e;

	if (found)
		snprintf(buf, n, "%s", e);
	json_object_put(doc); /* e pointed into it */
	return found;
}

/* The last failed step (the one that decided the outcome: an earlier one
 * may have been recovered from, as a timed-out stop by a kill), else the
 * document's error, else the host's stderr. */
static void failure_reason(const bg_pve_result *r, char *buf, size_t n)
{
	size_t i;

	for (i = r->nsteps; i-- > 0;)
		if (!r->steps[i].ok) {
			snprintf(buf, n, "step %s failed: %s", r->steps[i].name ? r->steps[i].name : "?",
				 r->steps[i].detail ? r->steps[i].detail : "(no detail)");
			return;
		}
	if (document_error(r, buf, n))
		return;
	first_line(r->stderr_text, buf, n);
	if (!buf[0])
		snprintf(buf, n, "no detail from the host");
}

static int outcome(const bg_pve_result *r, const char *verb)
{
	char why[512];
	int code = bg_pve_status_for_exit(r->exit_code);

	if (code == BG_OK)
		return BG_OK;
	failure_reason(r, why, sizeof(why));
	switch (code) {
	case BG_EREJECTED:
		return bg_error_set(code, "the Proxmox host rejected '%s' (%s): check [verbs] allow in its pve.conf",
				    verb, why);
	case BG_EBUSY: return bg_error_set(code, "the VM is busy with another verb (%s): wait and retry", why);
	case BG_EFAILED:
		return bg_error_set(code, "'%s' ran but the VM did not reach its state (%s): read the forensics", verb,
				    why);
	default:
		if (r->exit_code < 0)
			return bg_error_set(code, "breakglass-pve %s gave no exit status (%s)", verb, why);
		return bg_error_set(code, "breakglass-pve %s failed with exit status %d (%s)", verb, r->exit_code, why);
	}
}

int bg_pve_run(bg_pve_result *out, bg_ssh *ssh, const char *verb, int timeout_s, bg_ssh_output_fn on_output,
	       void *payload)
{
	bg_ssh_exec_options opts = BG_SSH_EXEC_OPTIONS_INIT;
	bg_ssh_result res;
	char command[BG_PVE_REQUEST_MAX + 1];
	int rc, fill;

	if (!out)
		return bg_error_set(BG_EINVAL, "bg_pve_run: no result to fill");
	memset(out, 0, sizeof(*out));
	out->exit_code = -1;
	if (!verb || !bg_pve_verb_find(verb))
		return bg_error_set(BG_EINVAL, "'%s' is not a Proxmox verb (status forensics reset stop start cycle)",
				    verb ? verb : "(null)");
	if (!ssh)
		return bg_error_set(BG_EINVAL, "bg_pve_run: no SSH session to the Proxmox host");
	snprintf(command, sizeof(command), "%s --json", verb);
	opts.timeout_s = timeout_s > 0 ? timeout_s : DEFAULT_VERB_TIMEOUT_S;
	opts.remote_timeout = 0; /* the forced command accepts only the grammar */
	opts.on_output = on_output;
	opts.payload = payload;
	memset(&res, 0, sizeof(res));
	bg_info("pve", "running verb %s on the Proxmox host", verb);
	rc = bg_ssh_exec(&res, ssh, command, &opts);
	/* a timeout before the handshake finished is a transport failure:
	 * nothing reached the host */
	if (rc != BG_OK && (rc != BG_ETIMEOUT || !bg_ssh_host_key_fingerprint(ssh))) {
		bg_ssh_result_clear(&res);
		out->verb = strdup(verb);
		return rc; /* transport error: the SSH layer's message stands */
	}
	fill = bg_pve_result_fill(out, verb, rc == BG_OK ? res.exit_code : -1, res.out, res.out_len, res.err,
				  res.err_len);
	bg_ssh_result_clear(&res);
	if (fill != BG_OK)
		return fill;
	if (rc == BG_ETIMEOUT)
		return bg_error_set(BG_ETIMEOUT,
				    "breakglass-pve %s did not finish within %d s: it keeps running on the host; "
				    "check `status` before retrying",
				    verb, opts.timeout_s);
	return outcome(out, verb);
}

static json_object *steps_json(const bg_pve_result *r)
{
	json_object *arr = json_object_new_array();
	size_t i;

	for (i = 0; arr && i < r->nsteps; i++) {
		json_object *s = json_object_new_object();
		if (!s)
			break;
		bg_json_add_str(s, "name", r->steps[i].name);
		bg_json_add_bool(s, "ok", r->steps[i].ok);
		bg_json_add_int(s, "elapsed_ms", r->steps[i].elapsed_ms);
		bg_json_add_str(s, "detail", r->steps[i].detail);
		json_object_array_add(arr, s);
	}
	return arr;
}

/* The host's forensics object as sent (it may carry evidence the struct
 * has no field for), else one built from the parsed fields, else null. */
static json_object *forensics_json(const bg_pve_result *r)
{
	json_object *doc, *f, *copy = NULL;

	if (r->json && (doc = json_tokener_parse(r->json)) != NULL) {
		if ((f = bg_json_obj(doc, "forensics")) != NULL)
			copy = json_object_get(f);
		json_object_put(doc);
		if (copy)
			return copy;
	}
	if (!r->forensics_id && !r->verdict)
		return NULL;
	copy = json_object_new_object();
	if (copy) {
		bg_json_add_str(copy, "id", r->forensics_id);
		bg_json_add_str(copy, "verdict", r->verdict);
		bg_json_add_str(copy, "recommended_verb", r->recommended_verb);
	}
	return copy;
}

int bg_pve_result_to_json(char **json_out, const bg_pve_result *r)
{
	json_object *o;

	if (!r || !json_out)
		return bg_error_set(BG_EINVAL, "bg_pve_result_to_json: NULL argument");
	*json_out = NULL;
	o = json_object_new_object();
	if (!o)
		return bg_error_oom();
	bg_json_add_str(o, "verb", r->verb);
	bg_json_add_str(o, "vmid", r->vmid);
	bg_json_add_int(o, "exit_code", r->exit_code);
	bg_json_add_bool(o, "rejected", r->rejected);
	bg_json_add_bool(o, "ok", r->ok);
	bg_json_add_str(o, "status", r->status);
	json_object_object_add(o, "steps", steps_json(r));
	json_object_object_add(o, "forensics", forensics_json(r));
	bg_json_add_int(o, "elapsed_ms", r->elapsed_ms);
	*json_out = bg_json_dump(o);
	json_object_put(o);
	return *json_out ? BG_OK : bg_error_oom();
}

void bg_pve_result_clear(bg_pve_result *r)
{
	if (!r)
		return;
	bg_pve_steps_free(r->steps, r->nsteps);
	free(r->verb);
	free(r->status);
	free(r->vmid);
	free(r->forensics_id);
	free(r->verdict);
	free(r->recommended_verb);
	free(r->stdout_text);
	free(r->stderr_text);
	free(r->json);
	memset(r, 0, sizeof(*r));
}

/* ---- doctor's reading of a status document ------------------------------ */

static void note_add(bg_buf *b, int *warnings, int warn, const char *text)
{
	if (b->len)
		bg_buf_puts(b, "; ");
	if (warn) {
		bg_buf_puts(b, "WARNING: ");
		(*warnings)++;
	}
	bg_buf_puts(b, text);
}

int bg_pve_result_notes(char *out, size_t n, const bg_pve_result *r)
{
	json_object *doc = r && r->json ? json_tokener_parse(r->json) : NULL;
	json_object *lock, *ha, *ver, *managed;
	const char *kind, *state, *pvev, *qemu;
	bg_buf b = BG_BUF_INIT;
	char line[512];
	int warnings = 0, major = 0, minor = 0;

	if (!out || n == 0)
		return bg_error_set(BG_EINVAL, "bg_pve_result_notes: no output buffer");
	out[0] = '\0';
	if (!doc || !json_object_object_get_ex(doc, "lock_read", NULL)) {
		note_add(&b, &warnings, 1,
			 "the host's breakglass-pve does not report the config lock, HA or versions: upgrade it");
		goto done;
	}
	lock = bg_json_obj(doc, "lock");
	kind = bg_json_str(lock, "kind", NULL);
	if (!bg_json_bool(doc, "lock_read", 0)) {
		note_add(&b, &warnings, 1, "config lock unknown (qm config failed on the host)");
	} else if (kind) {
		snprintf(line, sizeof(line), "config lock %.40s: %.200s; cycle stops at it: check %.200s", kind,
			 bg_json_str(lock, "meaning", "?"), bg_json_str(lock, "check", "?"));
		note_add(&b, &warnings, 1, line);
	} else {
		note_add(&b, &warnings, 0, "no config lock");
	}
	ha = bg_json_obj(doc, "ha");
	state = bg_json_str(ha, "state", NULL);
	if (!ha || !json_object_object_get_ex(ha, "managed", &managed) || !managed) {
		note_add(&b, &warnings, 1,
			 "HA state unknown (neither ha-manager nor the resources file could be read)");
	} else if (json_object_get_boolean(managed)) {
		snprintf(line, sizeof(line), "HA-managed, state %.40s: start and cycle wait for the HA stack",
			 state ? state : "?");
		note_add(&b, &warnings, !state || strcmp(state, "started") != 0, line);
	} else {
		note_add(&b, &warnings, 0, "not HA-managed");
	}
	ver = bg_json_obj(doc, "versions");
	pvev = bg_json_str(ver, "proxmox", NULL);
	qemu = bg_json_str(ver, "qemu", NULL);
	if (!pvev) {
		note_add(&b, &warnings, 1, "Proxmox version unknown (pveversion did not answer)");
	} else {
		snprintf(line, sizeof(line), "%.120s", pvev);
		line[strcspn(line, " ")] = '\0';
		note_add(&b, &warnings, 0, line);
		if (sscanf(pvev, "pve-manager/%d.%d", &major, &minor) == 2 && (major < 8 || (major == 8 && minor < 2)))
			note_add(&b, &warnings, 1,
				 "Proxmox before 8.2: `qm stop` cannot overrule a hung shutdown, so cycle's clean stop "
				 "waits for it");
	}
	if (qemu) {
		snprintf(line, sizeof(line), "QEMU %.40s", qemu);
		note_add(&b, &warnings, 0, line);
	} else if (r->status && strcmp(r->status, "running") == 0) {
		note_add(&b, &warnings, 1, "QEMU version unknown (QMP did not answer query-version)");
	}
done:
	snprintf(out, n, "%s", b.data ? b.data : "");
	bg_buf_free(&b);
	json_object_put(doc);
	return warnings;
}
