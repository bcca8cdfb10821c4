/* Fuzz the guest-agent reader (lib/host/qga.c): the guest writes what
 * it likes into the agent's channel — sync sentinels (0xFF), garbage,
 * JSON lines — and the reader takes JSON lines out of it and looks for the
 * guest-sync echo, then the guest-ping and exec probe replies, as
 * lib/host/qga.c does. */
#include "core/buf.h"
#include "core/json.h"
#include "host/qga.h"
#include "host/wire.h"

#include <breakglass/common.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bg_buf in = BG_BUF_INIT;
	json_object *msg;
	int synced = 0;

	if (bg_buf_append(&in, data, size) != BG_OK)
		return 0;
	while (bg_qga_take_message(&in, &msg)) {
		if (!synced) {
			synced = bg_json_int(msg, "return", -1) == 123456789;
		} else {
			json_object *err = bg_json_obj(msg, "error");
			if (err) /* as the exec probe reads a guest-exec error */
				(void)bg_qga_exec_error_is_resource(bg_json_str(err, "desc", "?"));
			/* and a guest-exec / guest-exec-status reply */
			(void)bg_json_int(bg_json_obj(msg, "return"), "pid", -1);
			(void)bg_json_bool(bg_json_obj(msg, "return"), "exited", 0);
		}
		json_object_put(msg);
	}
	bg_buf_free(&in);
	return 0;
}
