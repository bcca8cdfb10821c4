/* Fuzz the forced command's request grammar. Beyond "no crash", every
 * accepted input must be exactly a verb, or a verb and " --json": the
 * grammar must never let anything else through. */
#include <breakglass.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_accepted(const bg_pve_request *req, const char *in, size_t len)
{
	size_t n = strlen(req->verb->name);

	if (len != n + (req->json ? 7 : 0) || memcmp(in, req->verb->name, n) != 0)
		abort();
	if (req->json && memcmp(in + n, " --json", 7) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *allows[] = {NULL, "status forensics", "cycle"};
	size_t i;

	for (i = 0; i < sizeof(allows) / sizeof(allows[0]); i++) {
		bg_pve_request req;
		if (bg_pve_parse_request(&req, (const char *)data, size, allows[i]) == BG_OK)
			check_accepted(&req, (const char *)data, size);
		else if (req.verb != NULL)
			abort();
	}
	(void)bg_pve_check_allow(size && data[size - 1] == 0 ? (const char *)data : "status");
	return 0;
}
