/*
 * The turn loop with the real tool executors: the devvm is a loopback
 * sshd (the environment from tests/lab/sshd-fixture), the model a script.
 * The command the model asks for must really run on the "devvm", and its
 * output must be in the next request the model gets; a cancel must stop
 * a running remote command promptly.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent_internal.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "session/session_internal.h"

#define CHECK(cond)                                                                                  \
	do {                                                                                         \
		if (!(cond)) {                                                                       \
			fprintf(stderr, "%s:%d: check failed: %s (%s)\n", __FILE__, __LINE__, #cond, \
				bg_error_last()->message);                                           \
			exit(1);                                                                     \
		}                                                                                    \
	} while (0)

/* A model that asks for one command, then answers. */
typedef struct script_llm {
	bg_llm base;
	const char *command;
	int calls;
	char *second_request;
} script_llm;

static int script_complete(bg_llm *llm, const bg_llm_request *req, const bg_llm_callbacks *cb, bg_llm_response *resp)
{
	script_llm *m = (script_llm *)llm;
	json_object *msg = json_object_new_object(), *content = json_object_new_array(), *b;

	memset(resp, 0, sizeof(*resp));
	bg_json_add_str(msg, "role", "assistant");
	json_object_object_add(msg, "content", content);
	resp->message = msg;
	if (m->calls++ == 0) {
		json_object *input = json_object_new_object();

		bg_json_add_str(input, "command", m->command);
		b = json_object_new_object();
		bg_json_add_str(b, "type", "tool_use");
		bg_json_add_str(b, "id", "toolu_itest_1");
		bg_json_add_str(b, "name", "devvm_exec");
		json_object_object_add(b, "input", input);
		json_object_array_add(content, b);
		snprintf(resp->stop_reason, sizeof(resp->stop_reason), "tool_use");
		return BG_OK;
	}
	m->second_request = bg_json_dump(req->messages);
	b = json_object_new_object();
	bg_json_add_str(b, "type", "text");
	bg_json_add_str(b, "text", "done");
	json_object_array_add(content, b);
	cb->on_text("done", 4, cb->payload);
	snprintf(resp->stop_reason, sizeof(resp->stop_reason), "end_turn");
	return BG_OK;
}

static void script_destroy(bg_llm *llm)
{
	(void)llm; /* owned by the test */
}

static const bg_llm_vtable script_vt = {"script", script_complete, script_destroy};

static const char *env(const char *name)
{
	const char *v = getenv(name);

	if (!v || !*v) {
		fprintf(stderr, "agent_itest: $%s is not set (run through run.sh)\n", name);
		exit(2);
	}
	return v;
}

static bg_config *devvm_config(void)
{
	bg_config *cfg;
	bg_buf ini = BG_BUF_INIT;

	bg_buf_printf(&ini,
		      "[devvm]\nhost = 127.0.0.1\nport = %s\nuser = %s\ncommand_timeout = 20\n"
		      "[pve]\nhost = 127.0.0.1\nport = %s\n"
		      "[ssh]\nkey_file = %s\nconnect_timeout = 5\nknown_hosts = %s/known_hosts_agent\n",
		      env("SSHD_PORT"), env("SSHD_USER"), env("SSHD_PORT"), env("SSHD_CLIENT_KEY"), env("SSHD_DIR"));
	CHECK(bg_config_new(&cfg, BG_CONFIG_CLIENT) == BG_OK);
	CHECK(bg_config_load_string(cfg, "itest.conf", ini.data, ini.len) == BG_OK);
	CHECK(bg_config_validate(cfg) == BG_OK);
	bg_buf_free(&ini);
	return cfg;
}

typedef struct fixture {
	bg_config *cfg;
	bg_session_store *store;
	bg_session *s;
	bg_agent *a;
	script_llm llm;
} fixture;

static void setup(fixture *f, const char *command)
{
	bg_agent_settings set;
	const bg_agent_tools *tools;
	void *impl;

	memset(f, 0, sizeof(*f));
	memset(&set, 0, sizeof(set));
	f->cfg = devvm_config();
	f->llm.base.vt = &script_vt;
	f->llm.command = command;
	set.model = "script";
	set.max_steps = 5;
	set.turn_timeout_s = 60;
	set.devvm_timeout_s = 20;
	set.mutations = BG_MUTATIONS_CONFIRM;
	CHECK(bg_session_store_open(&f->store, NULL, 0) == BG_OK);
	CHECK(bg_session_create(&f->s, f->store) == BG_OK);
	CHECK(bg_agent_tools_real(&tools, &impl, f->cfg, NULL) == BG_OK);
	CHECK(bg_agent_new_with(&f->a, &set, f->s, &f->llm.base, NULL, tools, impl) == BG_OK);
}

static void teardown(fixture *f)
{
	bg_agent_free(f->a);
	bg_session_release(f->s);
	bg_session_store_free(f->store);
	bg_config_free(f->cfg);
	free(f->llm.second_request);
}

/* The model's command runs on the devvm; its output reaches the model. */
static void case_exec_roundtrip(void)
{
	fixture f;
	char marker[64], path[128], command[256];
	struct stat st;

	snprintf(marker, sizeof(marker), "bg-agent-itest-%ld-%d", (long)time(NULL), (int)getpid());
	snprintf(path, sizeof(path), "/tmp/%s", marker);
	snprintf(command, sizeof(command), "touch %s && echo %s && id -un", path, marker);
	setup(&f, command);
	CHECK(bg_agent_run(f.a, "run it", "itest") == BG_OK);
	CHECK(stat(path, &st) == 0); /* it really ran (the sshd is this machine) */
	unlink(path);
	CHECK(f.llm.calls == 2);
	CHECK(f.llm.second_request != NULL);
	CHECK(strstr(f.llm.second_request, "\"tool_result\"") != NULL);
	CHECK(strstr(f.llm.second_request, "exit status: 0") != NULL);
	CHECK(strstr(f.llm.second_request, marker) != NULL);
	CHECK(strstr(f.llm.second_request, env("SSHD_USER")) != NULL);
	teardown(&f);
	printf("ok exec_roundtrip\n");
}

/* A failing command is an outcome the model reads, not a turn error. */
static void case_exec_failure(void)
{
	fixture f;

	setup(&f, "echo to-stderr >&2; exit 3");
	CHECK(bg_agent_run(f.a, "fail", "itest") == BG_OK);
	CHECK(strstr(f.llm.second_request, "exit status: 3") != NULL);
	CHECK(strstr(f.llm.second_request, "to-stderr") != NULL);
	CHECK(strstr(f.llm.second_request, "\"is_error\":true") != NULL);
	teardown(&f);
	printf("ok exec_failure\n");
}

typedef struct canceller {
	fixture *f;
	long long last;
	int64_t at;
} canceller;

static int cancel_on_tool(long long id, bg_event_kind kind, const char *json, size_t len, void *payload)
{
	canceller *c = payload;

	(void)json;
	(void)len;
	c->last = id;
	if (kind == BG_EVENT_TOOL && !c->at) {
		usleep(500000); /* let the remote command start */
		c->at = bg_now_ms();
		bg_agent_cancel(c->f->a);
	}
	return kind == BG_EVENT_TURN_END ? -1 : 0;
}

static void *cancel_thread(void *arg)
{
	canceller *c = arg;

	while (bg_session_read(c->f->s, c->last, 10000, cancel_on_tool, c) >= 0)
		;
	return NULL;
}

/* Cancel in the middle of a remote command: the turn ends promptly. */
static void case_cancel_mid_exec(void)
{
	fixture f;
	canceller c;
	pthread_t t;
	int rc;

	setup(&f, "sleep 30");
	c.f = &f;
	c.last = -1;
	c.at = 0;
	CHECK(pthread_create(&t, NULL, cancel_thread, &c) == 0);
	rc = bg_agent_run(f.a, "sleep", "itest");
	CHECK(rc == BG_ECANCELLED);
	CHECK(c.at && bg_now_ms() - c.at < 3000);
	pthread_join(t, NULL);
	CHECK(f.llm.calls == 1); /* the model was not asked again */
	teardown(&f);
	printf("ok cancel_mid_exec\n");
}

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	case_exec_roundtrip();
	case_exec_failure();
	case_cancel_mid_exec();
	return 0;
}
