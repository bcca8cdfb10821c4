/* libcurl and libssh2 are loaded on first use, not at exec
 * (lib/llm/curl_dl.c, lib/ssh/ssh2_dl.c): not mapped before, mapped
 * after, and the arguments and results pass intact (the variadic
 * curl_easy_setopt()/curl_easy_getinfo() each kind of argument). */
#include "bg_test.h"

#include "llm/curl_dl.h"
#include "llm/provider.h"
#include "ssh/ssh2_dl.h"

static int mapped(const char *lib)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[1024];
	int found = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, lib))
			found = 1;
	fclose(f);
	return found;
}

static int curl_mapped(void)
{
	return mapped("/libcurl.so");
}

static void not_loaded_at_start(void **state)
{
	(void)state;
	assert_false(mapped("/libcurl.so"));
	assert_false(mapped("/libssh2.so"));
	assert_false(mapped("/libcrypto.so"));
}

static void libssh2_loaded_by_first_use(void **state)
{
	static const char line[] = "127.0.0.1 ssh-ed25519 "
				   "AAAAC3NzaC1lZDI1NTE5AAAAIGxhenktbG9hZGVkLWxpYnNzaDItZm9yLWEtdGVzdA==";
	LIBSSH2_SESSION *session;
	LIBSSH2_KNOWNHOSTS *kh;
	struct libssh2_knownhost *node = NULL;

	(void)state;
	assert_false(mapped("/libssh2.so"));
	assert_int_equal(libssh2_init(0), 0);
	assert_true(mapped("/libssh2.so"));
	assert_string_equal(bg_ssh2_error(), "");
	session = libssh2_session_init_ex(NULL, NULL, NULL, NULL);
	assert_non_null(session);
	kh = libssh2_knownhost_init(session);
	assert_non_null(kh);
	assert_int_equal(libssh2_knownhost_readline(kh, line, sizeof(line) - 1, LIBSSH2_KNOWNHOST_FILE_OPENSSH), 0);
	assert_int_equal(libssh2_knownhost_get(kh, &node, NULL), 0);
	assert_non_null(node);
	assert_string_equal(node->name, "127.0.0.1");
	assert_int_equal(libssh2_knownhost_get(kh, &node, node), 1); /* no more */
	libssh2_knownhost_free(kh);
	assert_int_equal(libssh2_session_free(session), 0);
	libssh2_exit();
}

static void loaded_by_the_first_provider(void **state)
{
	bg_llm_settings s = {.provider = "offline"};
	bg_llm *llm = NULL;

	(void)state;
	assert_false(curl_mapped());
	/* the offline provider needs no libcurl */
	assert_int_equal(bg_llm_new(&llm, &s), BG_OK);
	bg_llm_free(llm);
	assert_false(curl_mapped());

	s.provider = "anthropic";
	s.base_url = "http://127.0.0.1:9"; /* nothing is sent: the provider is only made */
	assert_int_equal(bg_llm_new(&llm, &s), BG_OK);
	assert_true(curl_mapped());
	assert_string_equal(bg_curl_error(), "");
	bg_llm_free(llm);
}

static void arguments_pass_intact(void **state)
{
	CURL *e;
	char *url = NULL;
	long code = -1;
	struct curl_slist *h;

	(void)state;
	assert_int_equal(bg_curl_load(), 0);
	e = curl_easy_init();
	assert_non_null(e);
	/* a pointer */
	assert_int_equal(curl_easy_setopt(e, CURLOPT_URL, "http://127.0.0.1:9/lazy"), CURLE_OK);
	assert_int_equal(curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &url), CURLE_OK);
	assert_non_null(url);
	assert_string_equal(url, "http://127.0.0.1:9/lazy");
	/* a long: all 64 bits of it (-2^32 cut to 32 bits would be 0, and
	 * accepted; whole, it is below -1 and refused) */
	assert_int_equal(curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L), CURLE_OK);
	assert_int_equal(curl_easy_setopt(e, CURLOPT_MAXREDIRS, -(1L << 32)), CURLE_BAD_FUNCTION_ARGUMENT);
	/* a curl_off_t, likewise */
	assert_int_equal(curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)1 << 40), CURLE_OK);
	assert_int_equal(curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, -((curl_off_t)1 << 32)),
			 CURLE_BAD_FUNCTION_ARGUMENT);
	/* a list */
	h = curl_slist_append(NULL, "X-Lazy: 1");
	assert_non_null(h);
	assert_string_equal(h->data, "X-Lazy: 1");
	assert_int_equal(curl_easy_setopt(e, CURLOPT_HTTPHEADER, h), CURLE_OK);
	/* nothing was sent yet: no response code */
	assert_int_equal(curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code), CURLE_OK);
	assert_int_equal(code, 0);
	assert_string_equal(curl_easy_strerror(CURLE_OK), "No error");
	curl_easy_cleanup(e);
	curl_slist_free_all(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(not_loaded_at_start),
		/* before libcurl, which needs libssh2 itself */
		cmocka_unit_test(libssh2_loaded_by_first_use),
		cmocka_unit_test(loaded_by_the_first_provider),
		cmocka_unit_test(arguments_pass_intact),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
