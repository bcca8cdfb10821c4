/* Shared helpers for the cmocka unit tests. */
#ifndef BG_TEST_H
#define BG_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "breakglass.h"

/* Assert that the last error message contains `needle`. */
#define assert_error_contains(needle)                                                           \
	do {                                                                                    \
		const char *m_ = bg_error_last()->message;                                      \
		if (!strstr(m_, (needle)))                                                      \
			fail_msg("error message \"%s\" does not contain \"%s\"", m_, (needle)); \
	} while (0)

#endif
