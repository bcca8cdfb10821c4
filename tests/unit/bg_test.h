/* Shared helpers for the cmocka unit tests. */
#ifndef BG_TEST_H
#define BG_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include <stdio.h>
#include <stdlib.h>

#include "breakglass.h"

/* The whole of tests/fixtures/<subdir>/<name> (the directory comes from
 * $BG_FIXTURES, set by ctest), NUL-terminated; the caller frees it. */
static inline char *bg_test_read_fixture(const char *subdir, const char *name)
{
	char path[1024];
	const char *dir = getenv("BG_FIXTURES");
	FILE *f;
	long n;
	char *s;

	snprintf(path, sizeof(path), "%s/%s/%s", dir ? dir : "tests/fixtures", subdir, name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open fixture %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	s = calloc(1, (size_t)n + 1);
	assert_non_null(s);
	assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return s;
}

/* Assert that the last error message contains `needle`. */
#define assert_error_contains(needle)                                                           \
	do {                                                                                    \
		const char *m_ = bg_error_last()->message;                                      \
		if (!strstr(m_, (needle)))                                                      \
			fail_msg("error message \"%s\" does not contain \"%s\"", m_, (needle)); \
	} while (0)

#endif
