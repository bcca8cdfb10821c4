/* The units a restart-unit remedy may name (see remedy_units.h). */
#include "llm/remedy_units.h"

#include <string.h>

int bg_remedy_unit_restartable(const char *unit)
{
	static const char *const suffixes[] = {".service", ".socket", ".timer", ".mount", ".path", ".swap", ".target"};
	size_t i, n = unit ? strlen(unit) : 0;

	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		size_t k = strlen(suffixes[i]);

		if (n > k && strcmp(unit + n - k, suffixes[i]) == 0)
			return 1;
	}
	return 0;
}
