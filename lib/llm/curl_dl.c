/*
 * libcurl, loaded when the first remote provider needs it.
 *
 * Linking libcurl made every program that loads libbreakglass map it and
 * its 26 dependencies (OpenSSL's libssl, GnuTLS, Kerberos, LDAP, SASL,
 * nghttp2, brotli, ...) at exec, whether it ever talks to an LLM or not:
 * measured on breakglass-web, 4.1 MiB of its 13.3 MiB idle RSS and about
 * 6 ms of CPU before main(). So libcurl is not a DT_NEEDED of the library:
 * these are the few libcurl functions lib/llm calls, defined here with
 * hidden visibility (so they are the library's own and never interpose
 * the real ones for anyone else), each forwarding to the function of the
 * same name in libcurl.so.4, which is dlopen()ed once, on the first call,
 * by whichever thread gets there first. The call sites stay the plain
 * libcurl API, type checks of <curl/curl.h> included.
 *
 * If libcurl.so.4 cannot be loaded, curl_global_init() fails and the
 * provider reports why (bg_curl_error()).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/dl.h"
#include "llm/curl_dl.h"

#define CURL_SONAME "libcurl.so.4"

/* X(name, return type, parameters) of each function lib/llm calls, but
 * the two variadic ones. */
#define CURL_FUNCS(X)                                                                                         \
	X(curl_global_init, CURLcode, (long flags))                                                           \
	X(curl_easy_init, CURL *, (void))                                                                     \
	X(curl_easy_cleanup, void, (CURL * e))                                                                \
	X(curl_easy_reset, void, (CURL * e))                                                                  \
	X(curl_easy_perform, CURLcode, (CURL * e))                                                            \
	X(curl_easy_strerror, const char *, (CURLcode c))                                                     \
	X(curl_getdate, time_t, (const char *p, const time_t *unused))                                        \
	X(curl_slist_append, struct curl_slist *, (struct curl_slist * l, const char *s))                     \
	X(curl_slist_free_all, void, (struct curl_slist * l))                                                 \
	X(curl_multi_init, CURLM *, (void))                                                                   \
	X(curl_multi_cleanup, CURLMcode, (CURLM * m))                                                         \
	X(curl_multi_add_handle, CURLMcode, (CURLM * m, CURL * e))                                            \
	X(curl_multi_remove_handle, CURLMcode, (CURLM * m, CURL * e))                                         \
	X(curl_multi_perform, CURLMcode, (CURLM * m, int *running))                                           \
	X(curl_multi_poll, CURLMcode, (CURLM * m, struct curl_waitfd * fds, unsigned n, int ms, int *numfds)) \
	X(curl_multi_info_read, CURLMsg *, (CURLM * m, int *left))

static struct {
#define CURL_FN_PTR(name, ret, params) ret(*name##_fn) params;
	CURL_FUNCS(CURL_FN_PTR)
#undef CURL_FN_PTR
	CURLcode (*curl_easy_setopt_fn)(CURL *, CURLoption, ...);
	CURLcode (*curl_easy_getinfo_fn)(CURL *, CURLINFO, ...);
} fn;

/* Each function's name and slot; the two variadic ones last. */
#define CURL_FN_SYM(name, ret, params) {#name, (void **)&fn.name##_fn},
static const bg_dl_symbol symbols[] = {CURL_FUNCS(CURL_FN_SYM){"curl_easy_setopt", (void **)&fn.curl_easy_setopt_fn},
				       {"curl_easy_getinfo", (void **)&fn.curl_easy_getinfo_fn}};
#undef CURL_FN_SYM

static bg_dl_library libcurl = BG_DL_LIBRARY_INIT(CURL_SONAME, "libcurl4", symbols);

int bg_curl_load(void)
{
	return bg_dl_load(&libcurl);
}

const char *bg_curl_error(void)
{
	return bg_dl_error(&libcurl);
}

/* Each forwards to libcurl's; not loaded, it returns its own failure
 * value (never reached: curl_global_init() failed first). */
CURLcode(curl_global_init)(long flags)
{
	return bg_curl_load() == 0 ? fn.curl_global_init_fn(flags) : CURLE_FAILED_INIT;
}

CURL *(curl_easy_init)(void)
{
	return bg_curl_load() == 0 ? fn.curl_easy_init_fn() : NULL;
}

void(curl_easy_cleanup)(CURL *e)
{
	if (bg_curl_load() == 0)
		fn.curl_easy_cleanup_fn(e);
}

void(curl_easy_reset)(CURL *e)
{
	if (bg_curl_load() == 0)
		fn.curl_easy_reset_fn(e);
}

CURLcode(curl_easy_perform)(CURL *e)
{
	return bg_curl_load() == 0 ? fn.curl_easy_perform_fn(e) : CURLE_FAILED_INIT;
}

const char *(curl_easy_strerror)(CURLcode c)
{
	return bg_curl_load() == 0 ? fn.curl_easy_strerror_fn(c) : "libcurl is not loaded";
}

time_t(curl_getdate)(const char *p, const time_t *unused)
{
	return bg_curl_load() == 0 ? fn.curl_getdate_fn(p, unused) : (time_t)-1;
}

struct curl_slist *(curl_slist_append)(struct curl_slist *l, const char *s)
{
	return bg_curl_load() == 0 ? fn.curl_slist_append_fn(l, s) : NULL;
}

void(curl_slist_free_all)(struct curl_slist *l)
{
	if (bg_curl_load() == 0)
		fn.curl_slist_free_all_fn(l);
}

CURLM *(curl_multi_init)(void)
{
	return bg_curl_load() == 0 ? fn.curl_multi_init_fn() : NULL;
}

CURLMcode(curl_multi_cleanup)(CURLM *m)
{
	return bg_curl_load() == 0 ? fn.curl_multi_cleanup_fn(m) : CURLM_INTERNAL_ERROR;
}

CURLMcode(curl_multi_add_handle)(CURLM *m, CURL *e)
{
	return bg_curl_load() == 0 ? fn.curl_multi_add_handle_fn(m, e) : CURLM_INTERNAL_ERROR;
}

CURLMcode(curl_multi_remove_handle)(CURLM *m, CURL *e)
{
	return bg_curl_load() == 0 ? fn.curl_multi_remove_handle_fn(m, e) : CURLM_INTERNAL_ERROR;
}

CURLMcode(curl_multi_perform)(CURLM *m, int *running)
{
	return bg_curl_load() == 0 ? fn.curl_multi_perform_fn(m, running) : CURLM_INTERNAL_ERROR;
}

CURLMcode(curl_multi_poll)(CURLM *m, struct curl_waitfd *fds, unsigned n, int ms, int *numfds)
{
	return bg_curl_load() == 0 ? fn.curl_multi_poll_fn(m, fds, n, ms, numfds) : CURLM_INTERNAL_ERROR;
}

CURLMsg *(curl_multi_info_read)(CURLM *m, int *left)
{
	return bg_curl_load() == 0 ? fn.curl_multi_info_read_fn(m, left) : NULL;
}

/* The variadic two: the argument's type follows from the option's number
 * (<curl/curl.h>: long below CURLOPTTYPE_OBJECTPOINT, a pointer (data or
 * function) up to CURLOPTTYPE_OFF_T, curl_off_t, then a pointer to a
 * struct curl_blob; getinfo always takes a pointer). */
CURLcode(curl_easy_setopt)(CURL *e, CURLoption opt, ...)
{
	va_list ap;
	CURLcode rc;

	if (bg_curl_load() != 0)
		return CURLE_FAILED_INIT;
	va_start(ap, opt);
	if (opt < CURLOPTTYPE_OBJECTPOINT)
		rc = fn.curl_easy_setopt_fn(e, opt, va_arg(ap, long));
	else if (opt < CURLOPTTYPE_FUNCTIONPOINT)
		rc = fn.curl_easy_setopt_fn(e, opt, va_arg(ap, void *));
	else if (opt < CURLOPTTYPE_OFF_T)
		rc = fn.curl_easy_setopt_fn(e, opt, va_arg(ap, void (*)(void)));
	else if (opt < CURLOPTTYPE_BLOB)
		rc = fn.curl_easy_setopt_fn(e, opt, va_arg(ap, curl_off_t));
	else
		rc = fn.curl_easy_setopt_fn(e, opt, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

CURLcode(curl_easy_getinfo)(CURL *e, CURLINFO info, ...)
{
	va_list ap;
	CURLcode rc;

	if (bg_curl_load() != 0)
		return CURLE_FAILED_INIT;
	va_start(ap, info);
	rc = fn.curl_easy_getinfo_fn(e, info, va_arg(ap, void *));
	va_end(ap);
	return rc;
}
