/* Unit tests of the SSH layer's pure helpers, argument checks and key
 * reading (checked against ssh-keygen). No network: tests/integration/ssh
 * covers the real sshd. */
#include "bg_test.h"

#include "core/buf.h"
#include "ssh/ssh_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

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
	assert_int_equal(bg_ssh_exec(&r, NULL, "true", NULL), BG_EINVAL);
	assert_int_equal(r.exit_code, -1);
}

/* ---- bg_ssh_key_public / bg_ssh_key_describe against ssh-keygen ---- */

static char keydir[] = "/tmp/bg_test_ssh_XXXXXX";

/* Run argv and keep its stdout, without the trailing newline, in out. The
 * exit status, or -1 when it could not run. */
static int run_capture(const char *const argv[], char *out, size_t cap)
{
	int fd[2], status;
	size_t n = 0;
	ssize_t r;
	pid_t pid;

	if (pipe(fd) != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(fd[1], STDOUT_FILENO);
		close(fd[0]);
		close(fd[1]);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(fd[1]);
	while (pid > 0 && n + 1 < cap && (r = read(fd[0], out + n, cap - 1 - n)) > 0)
		n += (size_t)r;
	close(fd[0]);
	out[n] = '\0';
	while (n > 0 && out[n - 1] == '\n')
		out[--n] = '\0';
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void make_key(const char *path, const char *type, const char *bits, const char *pass, const char *comment)
{
	const char *argv[] = {"ssh-keygen", "-q", "-t", type, "-b", bits, "-N", pass, "-C", comment, "-f", path, NULL};
	char out[256];

	unlink(path);
	assert_int_equal(run_capture(argv, out, sizeof(out)), 0);
}

/* `ssh-keygen -y` (with the passphrase if any): the line to match. */
static void keygen_public(const char *path, const char *pass, char *out, size_t cap)
{
	const char *argv[] = {"ssh-keygen", "-y", "-P", pass, "-f", path, NULL};

	assert_int_equal(run_capture(argv, out, cap), 0);
}

/* The second field of `ssh-keygen -l -E sha256 -f KEY.pub`. */
static void keygen_fingerprint(const char *path, char *out, size_t cap)
{
	char pub[160], line[512], *sp, *end;
	const char *argv[] = {"ssh-keygen", "-l", "-E", "sha256", "-f", pub, NULL};

	snprintf(pub, sizeof(pub), "%s.pub", path);
	assert_int_equal(run_capture(argv, line, sizeof(line)), 0);
	sp = strchr(line, ' ');
	assert_non_null(sp);
	end = strchr(sp + 1, ' ');
	assert_non_null(end);
	snprintf(out, cap, "%.*s", (int)(end - sp - 1), sp + 1);
}

static bg_secret *load_key(const char *path)
{
	bg_secret *key = NULL;

	assert_int_equal(bg_secret_from_file(&key, path), BG_OK);
	return key;
}

/* Generate a key, then check both calls against ssh-keygen. */
static void check_against_keygen(const char *type, const char *bits, const char *pass, const char *comment)
{
	char path[128], want[4096], fpr[128], typed[64];
	bg_ssh_key_desc desc;
	bg_secret *key;
	char *line = NULL;
	size_t tlen;

	snprintf(path, sizeof(path), "%s/k_%s_%s%s", keydir, type, bits, *pass ? "_enc" : "");
	make_key(path, type, bits, pass, comment);
	keygen_public(path, pass, want, sizeof(want));
	keygen_fingerprint(path, fpr, sizeof(fpr));
	key = load_key(path);

	assert_int_equal(bg_ssh_key_describe(&desc, key), BG_OK);
	tlen = strcspn(want, " ");
	snprintf(typed, sizeof(typed), "%.*s", (int)tlen, want);
	assert_string_equal(desc.type, typed);
	assert_string_equal(desc.fingerprint, fpr);
	assert_int_equal(desc.encrypted, *pass != '\0');
	assert_string_equal(desc.comment, *pass ? "" : comment);
	/* The one rule: ed25519 or ECDSA, without a passphrase. */
	assert_int_equal(desc.usable, strcmp(type, "rsa") != 0 && !*pass);
	if (strcmp(type, "rsa") == 0)
		assert_non_null(strstr(desc.reason, "is an RSA key"));
	else if (*pass)
		assert_non_null(strstr(desc.reason, "passphrase"));
	else
		assert_string_equal(desc.reason, "");

	if (!*pass) {
		/* The key's own comment, read from the private section. */
		assert_int_equal(bg_ssh_key_public(&line, key, NULL), BG_OK);
		assert_string_equal(line, want);
		bg_free(line);
	} else {
		/* Encrypted: the comment is out of reach, the key is not. */
		assert_int_equal(bg_ssh_key_public(&line, key, NULL), BG_OK);
		assert_int_equal(strncmp(want, line, strlen(line)), 0);
		assert_int_equal(strlen(line), strcspn(want + tlen + 1, " ") + tlen + 1);
		bg_free(line);
	}
	assert_int_equal(bg_ssh_key_public(&line, key, comment), BG_OK);
	assert_string_equal(line, want);
	bg_free(line);
	bg_secret_free(key);
}

static void test_key_public_ed25519(void **state)
{
	(void)state;
	check_against_keygen("ed25519", "256", "", "who@where");
	check_against_keygen("ed25519", "256", "secret-pass", "who@where");
}

static void test_key_public_ecdsa(void **state)
{
	(void)state;
	check_against_keygen("ecdsa", "256", "", "breakglass pod key");
	check_against_keygen("ecdsa", "384", "", "who@where");
	check_against_keygen("ecdsa", "521", "secret-pass", "who@where");
	check_against_keygen("ecdsa", "256", "secret-pass", "who@where");
}

/* RSA is described and printed too: refusing it is bg_ssh_new()'s job. */
static void test_key_public_rsa(void **state)
{
	(void)state;
	check_against_keygen("rsa", "2048", "", "rsa@where");
}

/* Without a comment, the line ends with the key. */
static void test_key_public_no_comment(void **state)
{
	char path[128], want[512];
	bg_secret *key;
	char *line = NULL;
	(void)state;

	snprintf(path, sizeof(path), "%s/k_nocomment", keydir);
	make_key(path, "ed25519", "256", "", "");
	keygen_public(path, "", want, sizeof(want));
	key = load_key(path);
	assert_int_equal(bg_ssh_key_public(&line, key, NULL), BG_OK);
	assert_string_equal(line, want);
	assert_null(strchr(line + strlen("ssh-ed25519 "), ' '));
	bg_free(line);
	bg_secret_free(key);
}

static int public_of_text(char **line, const char *text, size_t len)
{
	bg_secret *key;
	int rc;

	assert_int_equal(bg_secret_new(&key, text, len), BG_OK);
	*line = (char *)"untouched";
	rc = bg_ssh_key_public(line, key, NULL);
	bg_secret_free(key);
	return rc;
}

static void test_key_public_garbage(void **state)
{
	static const struct {
		const char *text;
		int rc;
		const char *says;
	} cases[] = {
		{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA user@host\n", BG_EINVAL, "not the .pub"},
		{"-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n", BG_EUNSUPPORTED,
		 "ssh-keygen -p"},
		{"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n", BG_EINVAL, "no end line"},
		{"-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl*bnNz\n-----END OPENSSH PRIVATE KEY-----\n", BG_EINVAL,
		 "not valid base64"},
		{"-----BEGIN OPENSSH PRIVATE KEY-----\nbm90LWEta2V5\n-----END OPENSSH PRIVATE KEY-----\n", BG_EINVAL,
		 "not an openssh-key-v1 key"},
		{"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUA\n"
		 "-----END OPENSSH PRIVATE KEY-----\n",
		 BG_EINVAL, "truncated"},
	};
	const char *pub = cases[0].text;
	unsigned char noise[512];
	bg_ssh_key_desc desc;
	bg_secret *key;
	char *line;
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(noise); i++)
		noise[i] = (unsigned char)(i * 151 + 7);
	assert_int_equal(public_of_text(&line, (const char *)noise, sizeof(noise)), BG_EINVAL);
	assert_null(line);
	assert_error_contains("not an OpenSSH private key");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(public_of_text(&line, cases[i].text, strlen(cases[i].text)), cases[i].rc);
		assert_error_contains(cases[i].says);
		assert_null(line);
	}

	assert_int_equal(bg_secret_new(&key, pub, strlen(pub)), BG_OK);
	memset(&desc, 'x', sizeof(desc));
	assert_int_equal(bg_ssh_key_describe(&desc, key), BG_EINVAL);
	assert_string_equal(desc.type, "");
	bg_secret_free(key);
	assert_int_equal(bg_ssh_key_describe(&desc, NULL), BG_EINVAL);
	assert_error_contains("key is NULL");
	assert_int_equal(bg_ssh_key_describe(NULL, NULL), BG_EINVAL);
	assert_int_equal(bg_ssh_key_public(&line, NULL, NULL), BG_EINVAL);
	assert_null(line);
	assert_int_equal(bg_ssh_key_public(NULL, NULL, NULL), BG_EINVAL);
}

/* A comment must not split the authorized_keys line. */
static void test_key_public_comment_checks(void **state)
{
	char *k = openssh_key_of_type("none", "ssh-ed25519"), *line = NULL;
	bg_secret *key;
	(void)state;

	assert_int_equal(bg_secret_new(&key, k, strlen(k)), BG_OK);
	free(k);
	assert_int_equal(bg_ssh_key_public(&line, key, "two\nlines"), BG_EINVAL);
	assert_error_contains("line break");
	assert_null(line);
	assert_int_equal(bg_ssh_key_public(&line, key, ""), BG_OK);
	assert_string_equal(line, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAACEtFWUJZVEVT");
	bg_free(line);
	bg_secret_free(key);
}

/* The authorized_keys lines, built by the library for every front end. */
static void test_authorized_key_line(void **state)
{
	bg_ssh_authorized_options o = BG_SSH_AUTHORIZED_OPTIONS_INIT;
	char path[128], pub[512], want[1024];
	bg_secret *key;
	char *line = NULL;
	(void)state;

	snprintf(path, sizeof(path), "%s/k_ak", keydir);
	make_key(path, "ed25519", "256", "", "pod@ns");
	keygen_public(path, "", pub, sizeof(pub));
	key = load_key(path);

	o.target = "devvm";
	o.from = "10.0.10.0/24,!10.0.10.9";
	assert_int_equal(bg_ssh_authorized_key_line(&line, key, &o), BG_OK);
	snprintf(want, sizeof(want), "from=\"%s\",no-port-forwarding,no-agent-forwarding,no-X11-forwarding %s", o.from,
		 pub);
	assert_string_equal(line, want);
	bg_free(line);

	o.target = "pve";
	assert_int_equal(bg_ssh_authorized_key_line(&line, key, &o), BG_OK);
	snprintf(want, sizeof(want), "command=\"%s\",restrict,from=\"%s\" %s", BG_PVE_COMMAND_DEFAULT, o.from, pub);
	assert_string_equal(line, want);
	assert_non_null(strstr(line, "command=\"/usr/sbin/breakglass-pve --config /etc/breakglass/pve.conf\""));
	bg_free(line);

	o.command = "/opt/bg/sbin/breakglass-pve --config /opt/bg/etc/pve.conf";
	o.comment = "";
	assert_int_equal(bg_ssh_authorized_key_line(&line, key, &o), BG_OK);
	assert_int_equal(strncmp(line, "command=\"/opt/bg/sbin/breakglass-pve --config /opt/bg/etc/pve.conf\",", 67),
			 0);
	assert_null(strstr(line, "pod@ns"));
	bg_free(line);

	/* What could escape the quotes, or the line, is refused. */
	o.command = "/usr/sbin/breakglass-pve\",no-restrict";
	assert_int_equal(bg_ssh_authorized_key_line(&line, key, &o), BG_EINVAL);
	assert_null(line);
	assert_error_contains("forced command");
	o.command = NULL;
	o.from = "1.2.3.4\" evil";
	assert_int_equal(bg_ssh_authorized_key_line(&line, key, &o), BG_EINVAL);
	assert_error_contains("want addresses, CIDRs");
	o.from = NULL;
	assert_int_equal(bg_ssh_authorized_key_line(&line, key, &o), BG_EINVAL);
	o.from = "10.0.0.1";
	o.target = "web";
	assert_int_equal(bg_ssh_authorized_key_line(&line, key, &o), BG_EINVAL);
	assert_error_contains("devvm or pve");
	o.target = "pve";
	o.version = 99;
	assert_int_equal(bg_ssh_authorized_key_line(&line, key, &o), BG_EINVAL);
	assert_int_equal(bg_ssh_authorized_options_init(&o, 99), BG_EINVAL);
	assert_int_equal(bg_ssh_authorized_options_init(&o, BG_SSH_AUTHORIZED_OPTIONS_VERSION), BG_OK);
	assert_null(o.target);
	bg_secret_free(key);

	/* An RSA key cannot log in: no line for it; a passphrase is fine. */
	snprintf(path, sizeof(path), "%s/k_ak_rsa", keydir);
	make_key(path, "rsa", "2048", "", "rsa");
	key = load_key(path);
	o.target = "pve";
	o.from = "10.0.0.1";
	assert_int_equal(bg_ssh_authorized_key_line(&line, key, &o), BG_EUNSUPPORTED);
	assert_null(line);
	assert_error_contains("ssh-rsa");
	assert_error_contains("ed25519");
	bg_secret_free(key);
	snprintf(path, sizeof(path), "%s/k_ak_enc", keydir);
	make_key(path, "ecdsa", "256", "secret-pass", "x");
	key = load_key(path);
	assert_int_equal(bg_ssh_authorized_key_line(&line, key, &o), BG_OK);
	assert_non_null(strstr(line, "restrict,from=\"10.0.0.1\" ecdsa-sha2-nistp256 AAAA"));
	bg_free(line);
	bg_secret_free(key);
}

static int keys_setup(void **state)
{
	(void)state;
	return mkdtemp(keydir) ? 0 : -1;
}

static int keys_teardown(void **state)
{
	const char *argv[] = {"rm", "-rf", keydir, NULL};
	char out[16];

	(void)state;
	return run_capture(argv, out, sizeof(out)) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_vectors),      cmocka_unit_test(test_base64),
		cmocka_unit_test(test_fingerprint),         cmocka_unit_test(test_key_detect_openssh),
		cmocka_unit_test(test_key_detect_pem),      cmocka_unit_test(test_quote),
		cmocka_unit_test(test_hostkey_names),       cmocka_unit_test(test_new_checks),
		cmocka_unit_test(test_key_public_ed25519),  cmocka_unit_test(test_key_public_ecdsa),
		cmocka_unit_test(test_key_public_rsa),      cmocka_unit_test(test_key_public_no_comment),
		cmocka_unit_test(test_key_public_garbage),  cmocka_unit_test(test_key_public_comment_checks),
		cmocka_unit_test(test_authorized_key_line),
	};

	return cmocka_run_group_tests(tests, keys_setup, keys_teardown);
}
