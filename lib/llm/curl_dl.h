/*
 * Internal to lib/llm: libcurl is loaded on first use (curl_dl.c), not at
 * exec. The libcurl API is called as usual; these two say whether the
 * library could be loaded.
 */
#ifndef BG_LLM_CURL_DL_H
#define BG_LLM_CURL_DL_H

#include <curl/curl.h>

/* Load libcurl.so.4 once (thread-safe): 0, or -1 when it cannot be. */
int bg_curl_load(void);
/* Why it could not be loaded ("" when it was). */
const char *bg_curl_error(void);

#endif
