/* One turn of the recovery agent, with a custom approval callback that
 * asks on stdin before any mutating verb runs.
 *
 *   agent_turn CONFIG 'PROMPT'
 *
 * The turn runs in its own thread (bg_agent_start); this thread follows
 * the session's events and prints them. The approval callback runs in the
 * turn's thread and reads one line from stdin: "y" approves, anything
 * else (or end of input) denies. */
#include <breakglass.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ask_on_stdin(const char *tool_use_id, const char *name, const char *input_json, const char **by,
			void *payload)
{
	char line[64];

	(void)tool_use_id;
	(void)payload;
	printf("approve %s %s? [y/N] ", name, input_json);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 0;
	*by = "stdin";
	return line[0] == 'y' || line[0] == 'Y';
}

/* Print one field of an event (NULL when absent). */
static void field(const char *json, size_t len, const char *path, const char *fmt)
{
	char *v = NULL;

	if (bg_event_field(&v, json, len, path) == BG_OK)
		printf(fmt, v);
	bg_free(v);
}

typedef struct follow {
	long long last; /* the id of the last event printed */
	int done;       /* turn_end seen */
} follow;

static int on_event(long long id, bg_event_kind kind, const char *json, size_t len, void *payload)
{
	follow *f = payload;

	f->last = id;
	switch (kind) {
	case BG_EVENT_TEXT: field(json, len, "text", "%s"); break;
	case BG_EVENT_TOOL: field(json, len, "input", "\n> tool %s\n"); break;
	case BG_EVENT_TOOL_RESULT: field(json, len, "exit_code", "< exit %s\n"); break;
	case BG_EVENT_APPROVAL: field(json, len, "approved", "approved: %s\n"); break;
	case BG_EVENT_ERROR: field(json, len, "error", "error: %s\n"); break;
	case BG_EVENT_TURN_END:
		field(json, len, "stop_reason", "\n[turn ended: %s]\n");
		f->done = 1;
		break;
	default: break;
	}
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	bg_config *cfg = NULL;
	bg_secret *key = NULL;
	bg_session_store *store = NULL;
	bg_session *session = NULL;
	bg_agent *agent = NULL;
	bg_agent_options opts;
	follow f = {-1, 0};
	int rc = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: agent_turn CONFIG 'PROMPT'\n");
		return 2;
	}
	if (bg_config_load(&cfg, BG_CONFIG_CLIENT, argv[1]) < 0)
		goto fail;
	if (bg_ssh_key_load(&key, NULL, cfg, NULL, 0) < 0 && bg_error_last()->code != BG_ENOTFOUND)
		goto fail;
	if (bg_session_store_open(&store, NULL, 1) < 0 || bg_session_create(&session, store) < 0)
		goto fail;
	bg_agent_options_init(&opts, BG_AGENT_OPTIONS_VERSION);
	opts.ssh_key = key;
	opts.approve = ask_on_stdin;
	if (bg_agent_new(&agent, cfg, session, &opts) < 0 || bg_agent_start(agent, argv[2], "example") < 0)
		goto fail;
	/* Follow the session: each read returns the events after `last`. */
	while (!f.done)
		if (bg_session_read(session, f.last, 1000, on_event, &f) < 0)
			break;
	rc = bg_agent_wait(agent) < 0 ? 1 : 0;
	if (rc)
		fprintf(stderr, "agent_turn: %s\n", bg_error_last()->message);
	goto out;
fail:
	fprintf(stderr, "agent_turn: %s\n", bg_error_last()->message);
out:
	bg_agent_free(agent);
	bg_session_release(session);
	bg_session_store_free(store);
	bg_secret_free(key);
	bg_config_free(cfg);
	return rc;
}
