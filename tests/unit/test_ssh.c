/* Unit tests of the SSH layer's pure helpers and argument checks (no
 * network: tests/integration/ssh covers the real sshd). */
#include "bg_test.h"

#include "core/buf.h"
#include "ssh/ssh_util.h"

#include <stdio.h>
#include <stdlib.h>

static void hex(char *out, const unsigned char *d, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void test_sha256_vectors(void **state)
{
	unsigned char d[32];
	char h[65];
	char million[1000];
	(void)state;

	bg_ssh_sha256("", 0, d);
	hex(h, d, 32);
	assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	bg_ssh_sha256("abc", 3, d);
	hex(h, d, 32);
	assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	/* 56 bytes: the padding spills into a second block. */
	bg_ssh_sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, d);
	hex(h, d, 32);
	assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	memset(million, 'a', sizeof(million));
	bg_ssh_sha256(million, sizeof(million), d);
	hex(h, d, 32);
	assert_string_equal(h, "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
}

static void test_base64(void **state)
{
	bg_buf b = BG_BUF_INIT;
	unsigned char out[16];
	long n;
	(void)state;

	assert_int_equal(bg_ssh_base64_encode(&b, (const unsigned char *)"foob", 4, 1), BG_OK);
	assert_string_equal(b.data, "Zm9vYg==");
	bg_buf_clear(&b);
	assert_int_equal(bg_ssh_base64_encode(&b, (const unsigned char *)"foob", 4, 0), BG_OK);
	assert_string_equal(b.data, "Zm9vYg");
	bg_buf_clear(&b);
	assert_int_equal(bg_ssh_base64_encode(&b, (const unsigned char *)"fooba", 5, 0), BG_OK);
	assert_string_equal(b.data, "Zm9vYmE");
	bg_buf_free(&b);

	n = bg_ssh_base64_decode(out, sizeof(out), "Zm9v\nYmFy", 9);
	assert_int_equal(n, 6);
	assert_memory_equal(out, "foobar", 6);
	n = bg_ssh_base64_decode(out, sizeof(out), "Zm9vYg==", 8);
	assert_int_equal(n, 4);
	assert_int_equal(bg_ssh_base64_decode(out, sizeof(out), "Zm9v*", 5), -1);
	assert_int_equal(bg_ssh_base64_decode(out, 2, "Zm9vYmFy", 8), -1);
}

/* A public key and the fingerprint `ssh-keygen -lf` printed for it. */
#define ECDSA_PUB                                                                                      \
	"AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPfXjG/ewsnkgc+Rpt054uRVOQkToOO7XtmEtt4T" \
	"tTRoRGJbP26Rq+/xtTqn0Hb14LWfa37muKz4ySYaog/65zU="
#define ECDSA_FPR "SHA256:aqDqDWyLCeaNiHu66Wshw8X6SFP/nrW+5zjcQhug+U4"

static void test_fingerprint(void **state)
{
	unsigned char blob[256], d[32];
	char fpr[BG_SSH_FPR_LEN];
	long n;
	(void)state;

	n = bg_ssh_base64_decode(blob, sizeof(blob), ECDSA_PUB, strlen(ECDSA_PUB));
	assert_true(n > 0);
	bg_ssh_sha256(blob, (size_t)n, d);
	bg_ssh_fingerprint_format(fpr, d);
	assert_string_equal(fpr, ECDSA_FPR);
	assert_int_equal(strlen(fpr), 50);
	assert_true(bg_ssh_fingerprint_valid(ECDSA_FPR));
	assert_false(bg_ssh_fingerprint_valid("SHA256:short"));
	assert_false(bg_ssh_fingerprint_valid("MD5:aqDqDWyLCeaNiHu66Wshw8X6SFP/nrW+5zjcQhug+U4xx"));
	assert_false(bg_ssh_fingerprint_valid("SHA256:aqDqDWyLCeaNiHu66Wshw8X6SFP/nrW+5zjcQhug+U="));
	assert_false(bg_ssh_fingerprint_valid(NULL));
}

/* An "openssh-key-v1" file around a public key blob, as ssh-keygen
 * writes it (the private part does not matter to the detection). */
static char *openssh_key(const char *cipher, const unsigned char *pub, size_t publen)
{
	bg_buf raw = BG_BUF_INIT, text = BG_BUF_INIT;
	unsigned char be[4];
	const char *strs[3] = {cipher, "none", ""};
	int i;

	bg_buf_append(&raw, "openssh-key-v1", 15);
	for (i = 0; i < 3; i++) {
		size_t l = strlen(strs[i]);
		be[0] = 0, be[1] = 0, be[2] = 0, be[3] = (unsigned char)l;
		bg_buf_append(&raw, be, 4);
		bg_buf_append(&raw, strs[i], l);
	}
	be[3] = 1;
	bg_buf_append(&raw, be, 4);
	be[2] = (unsigned char)(publen >> 8), be[3] = (unsigned char)publen;
	bg_buf_append(&raw, be, 4);
	bg_buf_append(&raw, pub, publen);
	bg_buf_append(&raw, "\0\0\0\x10private-part-xx", 20);
	bg_buf_puts(&text, "-----BEGIN OPENSSH PRIVATE KEY-----\n");
	bg_ssh_base64_encode(&text, (const unsigned char *)raw.data, raw.len, 1);
	bg_buf_puts(&text, "\n-----END OPENSSH PRIVATE KEY-----\n");
	bg_buf_free(&raw);
	return bg_buf_detach(&text);
}

static char *openssh_key_of_type(const char *cipher, const char *type)
{
	unsigned char pub[64];
	size_t l = strlen(type);

	memset(pub, 0, sizeof(pub));
	pub[3] = (unsigned char)l;
	memcpy(pub + 4, type, l);
	pub[4 + l + 3] = 8;
	memcpy(pub + 4 + l + 4, "KEYBYTES", 8);
	return openssh_key(cipher, pub, 4 + l + 4 + 8);
}

static void test_key_detect_openssh(void **state)
{
	unsigned char blob[256];
	bg_ssh_key_info info;
	char *k;
	long n;
	(void)state;

	k = openssh_key_of_type("none", "ssh-ed25519");
	bg_ssh_key_detect(&info, k, strlen(k));
	assert_int_equal(info.type, BG_SSH_KEY_ED25519);
	assert_string_equal(info.type_name, "ssh-ed25519");
	assert_false(info.encrypted);
	assert_true(info.has_fingerprint);
	free(k);

	k = openssh_key_of_type("none", "ssh-rsa");
	bg_ssh_key_detect(&info, k, strlen(k));
	assert_int_equal(info.type, BG_SSH_KEY_RSA);
	free(k);

	k = openssh_key_of_type("aes256-ctr", "ssh-ed25519");
	bg_ssh_key_detect(&info, k, strlen(k));
	assert_int_equal(info.type, BG_SSH_KEY_ED25519);
	assert_true(info.encrypted);
	free(k);

	/* The fingerprint is the public key's, as ssh-keygen prints it. */
	n = bg_ssh_base64_decode(blob, sizeof(blob), ECDSA_PUB, strlen(ECDSA_PUB));
	k = openssh_key("none", blob, (size_t)n);
	bg_ssh_key_detect(&info, k, strlen(k));
	assert_int_equal(info.type, BG_SSH_KEY_ECDSA);
	assert_string_equal(info.type_name, "ecdsa-sha2-nistp256");
	assert_string_equal(info.fpr, ECDSA_FPR);
	free(k);

	/* Truncated: recognised as OpenSSH, type unknown, no crash. */
	bg_ssh_key_detect(&info, "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n", 42);
	assert_int_equal(info.type, BG_SSH_KEY_UNKNOWN);
}

static void test_key_detect_pem(void **state)
{
	bg_ssh_key_info info;
	const char *rsa = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n";
	const char *ec = "-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n";
	const char *enc = "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nMHcC\n"
			  "-----END EC PRIVATE KEY-----\n";
	const char *p8 = "-----BEGIN PRIVATE KEY-----\nMC4C\n-----END PRIVATE KEY-----\n";
	const char *pub = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA user@host\n";
	(void)state;

	bg_ssh_key_detect(&info, rsa, strlen(rsa));
	assert_int_equal(info.type, BG_SSH_KEY_RSA);
	bg_ssh_key_detect(&info, ec, strlen(ec));
	assert_int_equal(info.type, BG_SSH_KEY_ECDSA);
	assert_false(info.encrypted);
	bg_ssh_key_detect(&info, enc, strlen(enc));
	assert_int_equal(info.type, BG_SSH_KEY_ECDSA);
	assert_true(info.encrypted);
	bg_ssh_key_detect(&info, p8, strlen(p8));
	assert_int_equal(info.type, BG_SSH_KEY_UNKNOWN);
	bg_ssh_key_detect(&info, pub, strlen(pub));
	assert_int_equal(info.type, BG_SSH_KEY_NOT_A_KEY);
	bg_ssh_key_detect(&info, NULL, 0);
	assert_int_equal(info.type, BG_SSH_KEY_NOT_A_KEY);
}

static void test_quote(void **state)
{
	bg_buf b = BG_BUF_INIT;
	(void)state;

	assert_int_equal(bg_ssh_shell_quote(&b, "it's $HOME"), BG_OK);
	assert_string_equal(b.data, "'it'\\''s $HOME'");
	bg_buf_clear(&b);
	assert_int_equal(bg_ssh_shell_quote(&b, ""), BG_OK);
	assert_string_equal(b.data, "''");
	bg_buf_clear(&b);
	assert_int_equal(bg_ssh_shell_quote(&b, "''"), BG_OK);
	assert_string_equal(b.data, "''\\'''\\'''");
	bg_buf_clear(&b);
	assert_int_equal(bg_ssh_wrap_command(&b, "echo 'a b'; uptime", 30, 1), BG_OK);
	assert_string_equal(b.data, "exec timeout -k 5 30 sh -c 'echo '\\''a b'\\''; uptime'");
	bg_buf_clear(&b);
	assert_int_equal(bg_ssh_wrap_command(&b, "status", 30, 0), BG_OK);
	assert_string_equal(b.data, "status");
	bg_buf_free(&b);
}

static void test_hostkey_names(void **state)
{
	(void)state;
	assert_string_equal(bg_ssh_hostkey_type_name(6), "ssh-ed25519");
	assert_string_equal(bg_ssh_hostkey_type_name(3), "ecdsa-sha2-nistp256");
	assert_string_equal(bg_ssh_hostkey_type_name(99), "unknown");
}

static void test_new_checks(void **state)
{
	bg_ssh_options o = BG_SSH_OPTIONS_INIT;
	bg_ssh_exec_options eo;
	bg_ssh_result r;
	bg_secret *key;
	bg_ssh *s = NULL;
	char *k;
	(void)state;

	assert_int_equal(bg_ssh_options_init(&o, 99), BG_EINVAL);
	assert_int_equal(bg_ssh_options_init(&o, BG_SSH_OPTIONS_VERSION), BG_OK);
	assert_int_equal(o.port, 22);
	assert_int_equal(o.connect_timeout_s, 10);
	assert_int_equal(bg_ssh_exec_options_init(&eo, BG_SSH_EXEC_OPTIONS_VERSION), BG_OK);
	assert_int_equal(eo.timeout_s, 60);
	assert_int_equal(eo.remote_timeout, 1);

	o.name = "devvm";
	o.host = "127.0.0.1";
	o.user = "breakglass";
	assert_int_equal(bg_ssh_new(&s, &o), BG_EINVAL);
	assert_error_contains("no SSH key");

	k = openssh_key_of_type("none", "ssh-rsa");
	assert_int_equal(bg_secret_new(&key, k, strlen(k)), BG_OK);
	free(k);
	o.key = key;
	assert_int_equal(bg_ssh_new(&s, &o), BG_EUNSUPPORTED);
	assert_null(s);
	assert_error_contains("RSA");
	assert_error_contains("ssh-keygen -t ed25519");
	bg_secret_free(key);

	k = openssh_key_of_type("none", "ssh-ed25519");
	assert_int_equal(bg_secret_new(&key, k, strlen(k)), BG_OK);
	free(k);
	o.key = key;
	o.host_key = "SHA256:nope";
	assert_int_equal(bg_ssh_new(&s, &o), BG_EINVAL);
	assert_error_contains("host_key");
	o.host_key = ECDSA_FPR;
	assert_int_equal(bg_ssh_new(&s, &o), BG_OK);
	assert_non_null(s);
	assert_null(bg_ssh_host_key_fingerprint(s));
	bg_ssh_cancel(s); /* nothing running: harmless */
	bg_ssh_free(s);
	bg_secret_free(key);

	o.key = NULL;
	o.key_file = "/nonexistent/id_ed25519";
	assert_true(bg_ssh_new(&s, &o) < 0);
	assert_error_contains("/nonexistent/id_ed25519");

	bg_ssh_free(NULL);
	bg_ssh_cancel(NULL);
	bg_ssh_result_clear(NULL);
	memset(&r, 0, sizeof(r));
	assert_int_equal(bg_ssh_exec(NULL, "true", NULL, &r), BG_EINVAL);
	assert_int_equal(r.exit_code, -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_vectors), cmocka_unit_test(test_base64),
		cmocka_unit_test(test_fingerprint),    cmocka_unit_test(test_key_detect_openssh),
		cmocka_unit_test(test_key_detect_pem), cmocka_unit_test(test_quote),
		cmocka_unit_test(test_hostkey_names),  cmocka_unit_test(test_new_checks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
