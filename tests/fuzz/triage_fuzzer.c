/* Fuzz the devvm triage's reading of what the devvm printed: section
 * markers, then every rule over whatever came, then both renderings. */
#include "forensics/triage_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bg_triage *t = NULL;
	char *s, *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0'; /* the SSH layer NUL-terminates what it kept */
	if (bg_triage_parse_output(&t, text, size, "BGTRI-1234") == BG_OK) {
		if (bg_triage_to_json(&s, t) == BG_OK)
			free(s);
		if (bg_triage_to_text(&s, t) == BG_OK)
			free(s);
	}
	bg_triage_free(t);
	free(text);
	return 0;
}
