/*
 * Fuzz a session log as the store reloads it after a crash or a tampered
 * disk: load the bytes as `<id>.jsonl`, rebuild the model's conversation
 * from whatever events survived, and let the offline playbook decide on
 * it. Nothing may crash, and what loads must read back.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent_internal.h"
#include "llm/provider.h"
#include "session/session_internal.h"

#define FUZZ_ID "0123456789abcdef0123456789abcdef"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count(long long id, bg_event_kind kind, const char *json, size_t len, void *payload)
{
	(void)id;
	(void)kind;
	(void)json;
	(void)len;
	(*(size_t *)payload)++;
	return 0;
}

static void decide(json_object *messages)
{
	bg_llm *llm = NULL;
	bg_llm_request req = {"offline", 1024, "", NULL, messages, BG_DEADLINE_NONE};
	bg_llm_response resp;

	if (bg_llm_offline_new(&llm, NULL) != BG_OK)
		return;
	if (llm->vt->complete(llm, &req, NULL, &resp) == BG_OK)
		json_object_put(resp.message);
	llm->vt->destroy(llm);
}

static int write_file(const char *path, const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ssize_t w = fd >= 0 ? write(fd, data, size) : -1;

	if (fd >= 0)
		close(fd);
	return w == (ssize_t)size ? 0 : -1;
}

static char dir[64];

/* The store's directory goes at exit: a replay in every CI run left one
 * in /tmp. It holds only the files the store wrote (no subdirectories). */
static void remove_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[128];

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) < (int)sizeof(path))
			(void)unlink(path);
	}
	closedir(d);
	(void)rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[128];
	bg_session_store *st = NULL;
	bg_session *s = NULL;
	json_object *messages;
	size_t n = 0;

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/bg-session-fuzz-XXXXXX");
		if (!mkdtemp(dir))
			abort();
		atexit(remove_dir);
	}
	snprintf(path, sizeof(path), "%s/%s.jsonl", dir, FUZZ_ID);
	if (write_file(path, data, size) != 0)
		abort();
	if (bg_session_store_open(&st, dir, 4) == BG_OK && bg_session_open(&s, st, FUZZ_ID) == BG_OK) {
		if (bg_session_read(s, -1, 0, count, &n) != (int)n || (long long)n != bg_session_last_id(s) + 1)
			abort();
		if (bg_agent_messages_from_session(&messages, s, 4096) == BG_OK)
			decide(messages);
		json_object_put(messages);
		bg_session_release(s);
	}
	bg_session_store_free(st);
	unlink(path);
	return 0;
}
