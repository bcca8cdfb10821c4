/* Fuzz the guest-agent reader (lib/host/bundle.c): the guest writes what
 * it likes into the agent's channel — sync sentinels (0xFF), garbage,
 * JSON lines — and the reader takes JSON lines out of it and looks for the
 * guest-sync echo and the guest-ping reply, as agent_ping does. */
#include "core/buf.h"
#include "core/json.h"
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
			if (err)
				(void)bg_json_str(err, "desc", "?");
			(void)json_object_object_get_ex(msg, "return", NULL);
		}
		json_object_put(msg);
	}
	bg_buf_free(&in);
	return 0;
}
