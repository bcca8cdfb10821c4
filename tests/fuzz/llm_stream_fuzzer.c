/* Fuzz the providers' stream parsers (anthropic events, openai chunks) on
 * top of the SSE reader: any bytes, fed in chunks the input chooses. */
#include <stdint.h>

#include "llm/provider.h"
#include "llm/remote.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_text(const char *d, size_t n, void *p)
{
	(void)d;
	(void)n;
	(void)p;
	return 0;
}

static int on_tool(const char *id, const char *name, json_object *input, void *p)
{
	(void)p;
	/* touch everything the callback is given */
	return id && name && input && json_object_to_json_string(input) ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *providers[] = {"anthropic", "openai"};
	bg_llm_callbacks cb = {on_text, on_tool, NULL, NULL};
	size_t chunk = size ? (size_t)(data[0] % 17) : 0;
	int i;

	for (i = 0; i < 2; i++) {
		bg_llm_response resp;
		if (bg_llm_replay(providers[i], (const char *)data, size, chunk, &cb, &resp) == BG_OK)
			bg_llm_response_clear(&resp);
	}
	return 0;
}
