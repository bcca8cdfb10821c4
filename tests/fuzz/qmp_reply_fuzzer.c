/* Fuzz the QMP reply reader (lib/host/qmp.c): whatever a QEMU — or a
 * process that took its socket — sends is split into lines, each parsed
 * and matched against the reply the client waits for, and a reply's
 * "return" goes where forensics uses it (query-status, query-block,
 * query-blockstats). */
#include "core/buf.h"
#include "core/json.h"
#include "host/bundle.h"
#include "host/wire.h"

#include <breakglass/common.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void use_return(json_object *ret, json_object **prev)
{
	char io[160];
	int devices = 0;

	(void)bg_json_str(ret, "status", "unknown");
	bg_forensics_block_io_status(ret, io, sizeof(io));
	if (*prev)
		bg_forensics_blockstats_moved(*prev, ret, &devices);
	json_object_put(*prev);
	*prev = json_object_get(ret);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bg_buf in = BG_BUF_INIT;
	json_object *msg, *ret, *prev = NULL;
	int rc;

	if (bg_buf_append(&in, data, size) != BG_OK)
		return 0;
	for (;;) {
		rc = bg_qmp_take_message(&in, &msg);
		if (rc == BG_OK && !msg)
			break; /* no complete line left: the reader would recv() */
		if (rc != BG_OK)
			continue; /* a line that does not parse: the reader fails the command */
		ret = NULL;
		/* The greeting, then the replies to the ids the client sends. */
		(void)json_object_object_get_ex(msg, "QMP", NULL);
		rc = bg_qmp_reply(msg, "bg-1", "qmp_capabilities", NULL);
		if (rc == BG_ENOTFOUND && bg_qmp_reply(msg, "bg-2", "query-status", &ret) == BG_OK) {
			use_return(ret, &prev);
			json_object_put(ret);
		}
		json_object_put(msg);
	}
	json_object_put(prev);
	bg_buf_free(&in);
	return 0;
}
