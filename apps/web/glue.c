/* The thin layer over the library calls whose shape the API rework
 * (output parameter first, bg_free, opaque settings) changes: adapt here,
 * and nowhere else in apps/web. */
#include "web.h"

#include <stdlib.h>

int glue_session_create(bg_session_store *st, bg_session **out)
{
	return bg_session_create(st, out);
}

int glue_session_open(bg_session_store *st, const char *id, bg_session **out)
{
	return bg_session_open(st, id, out);
}

int glue_session_list(bg_session_store *st, char **json)
{
	return bg_session_list(st, json);
}

int glue_audit_recent(bg_audit *a, size_t max, char **json)
{
	return bg_audit_recent(a, max, json);
}

int glue_pve_result_json(const bg_pve_result *res, char **json)
{
	return bg_pve_result_to_json(res, json);
}

int glue_triage_json(const bg_triage *t, char **json)
{
	return bg_triage_to_json(t, json);
}

int glue_triage_text(const bg_triage *t, char **text)
{
	return bg_triage_to_text(t, text);
}

int glue_event_field(const char *json, size_t len, const char *path, char **out)
{
	return bg_event_field(json, len, path, out);
}

void glue_free(void *p)
{
	free(p);
}

const bg_client_settings *glue_client(const bg_config *cfg)
{
	return bg_config_client(cfg);
}
