/* known_hosts, without a network: names, line numbers, another key for
 * the same name, the port rule, appending, and the files refused.
 * tests/integration/ssh covers it against a real sshd. */
#include "bg_test.h"

#include "core/buf.h"
#include "ssh/known_hosts.h"

#include <libssh2.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/bg_test_kh_XXXXXX";
static LIBSSH2_SESSION *session;

/* An ssh-ed25519 public key blob whose 32 key bytes are all `fill`. */
static size_t blob(unsigned char out[51], unsigned char fill)
{
	static const unsigned char head[] = {0,   0,   0,   11,  's', 's', 'h', '-', 'e', 'd',
					     '2', '5', '5', '1', '9', 0,   0,   0,   32};

	memcpy(out, head, sizeof(head));
	memset(out + sizeof(head), fill, 32);
	return sizeof(head) + 32;
}

static char *b64(unsigned char fill)
{
	unsigned char k[51];
	bg_buf b = BG_BUF_INIT;
	size_t n = blob(k, fill);

	assert_int_equal(bg_ssh_base64_encode(&b, k, n, 1), BG_OK);
	return bg_buf_detach(&b);
}

static void fpr_of(char out[BG_SSH_FPR_LEN], unsigned char fill)
{
	unsigned char k[51], d[32];
	size_t n = blob(k, fill);

	bg_ssh_sha256(k, n, d);
	bg_ssh_fingerprint_format(out, d);
}

static const char *write_file(const char *name, const char *text, mode_t mode)
{
	static char path[8][256];
	static int i;
	FILE *f;

	i = (i + 1) % 8;
	snprintf(path[i], sizeof(path[i]), "%s/%s", dir, name);
	unlink(path[i]);
	f = fopen(path[i], "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path[i], mode), 0);
	return path[i];
}

static void check(const char *file, const char *host, int port, unsigned char fill, bg_kh_result *r)
{
	unsigned char k[51];
	size_t n = blob(k, fill);

	assert_int_equal(bg_kh_check(r, session, file, host, port, k, n), BG_OK);
}

static void test_names(void **state)
{
	bg_buf b = BG_BUF_INIT;
	(void)state;

	assert_int_equal(bg_kh_name(&b, "pve.lan", 22), BG_OK);
	assert_string_equal(b.data, "pve.lan");
	bg_buf_free(&b);
	assert_int_equal(bg_kh_name(&b, "127.0.0.1", 2222), BG_OK);
	assert_string_equal(b.data, "[127.0.0.1]:2222");
	bg_buf_free(&b);
}

static void test_lookup(void **state)
{
	char *a = b64(0xaa), *bb = b64(0xbb), text[2048], want[BG_SSH_FPR_LEN];
	const char *file;
	bg_kh_result r;
	(void)state;

	snprintf(text, sizeof(text),
		 "# comment\n"
		 "\n"
		 "[other]:2222 ssh-ed25519 %s\n"
		 "@cert-authority * ssh-ed25519 %s\n"
		 "[pve.lan]:2222 ssh-ed25519 %s\n"
		 "pve.lan ssh-ed25519 %s\r\n",
		 a, a, bb, a);
	file = write_file("kh", text, 0600);

	/* Another key for [pve.lan]:2222 on line 5: a change, with its fingerprint. */
	check(file, "pve.lan", 2222, 0xaa, &r);
	assert_int_equal(r.status, BG_KH_MISMATCH);
	assert_int_equal(r.line, 5);
	fpr_of(want, 0xbb);
	assert_string_equal(r.stored_fpr, want);
	assert_string_equal(r.stored_type, "ssh-ed25519");
	/* Port 22 is the plain name, on line 6 (CRLF tolerated). */
	check(file, "pve.lan", 22, 0xaa, &r);
	assert_int_equal(r.status, BG_KH_MATCH);
	assert_int_equal(r.line, 6);
	check(file, "pve.lan", 2222, 0xbb, &r);
	assert_int_equal(r.status, BG_KH_MATCH);
	assert_int_equal(r.line, 5);
	/* A port's entry is not the plain name's (OpenSSH's rule). */
	check(file, "other", 22, 0xaa, &r);
	assert_int_equal(r.status, BG_KH_NOTFOUND);
	check(file, "nowhere", 22, 0xaa, &r);
	assert_int_equal(r.status, BG_KH_NOTFOUND);
	/* A missing file knows nothing. */
	snprintf(text, sizeof(text), "%s/missing", dir);
	check(text, "pve.lan", 22, 0xaa, &r);
	assert_int_equal(r.status, BG_KH_NOTFOUND);
	free(a);
	free(bb);
}

static void test_add(void **state)
{
	char *a = b64(0xaa), text[1024], got[2048];
	unsigned char k[51];
	size_t n = blob(k, 0xcc);
	const char *file;
	bg_kh_result r;
	struct stat st;
	FILE *f;
	int line = -1;
	(void)state;

	/* The last line lacks its newline: the new one still starts a line. */
	snprintf(text, sizeof(text), "x ssh-ed25519 %s", a);
	file = write_file("kh_add", text, 0600);
	assert_int_equal(bg_kh_add(&line, file, "pve.lan", 2200, "ssh-ed25519", k, n), BG_OK);
	assert_int_equal(line, 2);
	check(file, "pve.lan", 2200, 0xcc, &r);
	assert_int_equal(r.status, BG_KH_MATCH);
	assert_int_equal(r.line, 2);
	f = fopen(file, "r");
	assert_non_null(f);
	got[fread(got, 1, sizeof(got) - 1, f)] = '\0';
	fclose(f);
	assert_non_null(strstr(got, "\n[pve.lan]:2200 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"));
	assert_non_null(strstr(got, " breakglass accept-new "));
	assert_int_equal(got[strlen(got) - 1], '\n');

	/* Created 0600 when missing. */
	snprintf(text, sizeof(text), "%s/kh_new", dir);
	unlink(text);
	assert_int_equal(bg_kh_add(&line, text, "pve.lan", 22, "ssh-ed25519", k, n), BG_OK);
	assert_int_equal(line, 1);
	assert_int_equal(stat(text, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	/* A name libssh2 would ignore is not written (it would pile up). */
	assert_int_equal(bg_kh_add(&line, text, "pv", 22, "ssh-ed25519", k, n), BG_EINVAL);
	assert_error_contains("three characters");
	assert_int_equal(bg_kh_add(&line, text, "pv", 2222, "ssh-ed25519", k, n), BG_OK);
	assert_int_equal(line, 2);

	/* Refused: a symlink, a second hard link, a group-writable file. */
	snprintf(got, sizeof(got), "%s/kh_link", dir);
	unlink(got);
	assert_int_equal(symlink(text, got), 0);
	assert_int_equal(bg_kh_add(&line, got, "pve.lan", 22, "ssh-ed25519", k, n), BG_EHOSTKEY);
	assert_error_contains("symbolic link");
	check(text, "pve.lan", 22, 0xcc, &r); /* the target is untouched and still read */
	assert_int_equal(r.status, BG_KH_MATCH);
	assert_int_not_equal(bg_kh_check(&r, session, got, "pve.lan", 22, k, n), BG_OK);
	unlink(got);
	assert_int_equal(link(text, got), 0);
	assert_int_equal(bg_kh_add(&line, text, "pve.lan", 22, "ssh-ed25519", k, n), BG_EHOSTKEY);
	assert_error_contains("links");
	unlink(got);
	assert_int_equal(chmod(text, 0620), 0);
	assert_int_equal(bg_kh_add(&line, text, "pve.lan", 22, "ssh-ed25519", k, n), BG_EHOSTKEY);
	assert_int_equal(bg_kh_check(&r, session, text, "pve.lan", 22, k, n), BG_EHOSTKEY);
	assert_error_contains("chmod 600");
	free(a);
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir) || libssh2_init(0) != 0)
		return -1;
	session = libssh2_session_init();
	return session ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[300];
	(void)state;

	libssh2_session_free(session);
	libssh2_exit();
	snprintf(cmd, sizeof(cmd), "%s/kh", dir);
	unlink(cmd);
	snprintf(cmd, sizeof(cmd), "%s/kh_add", dir);
	unlink(cmd);
	snprintf(cmd, sizeof(cmd), "%s/kh_new", dir);
	unlink(cmd);
	snprintf(cmd, sizeof(cmd), "%s/kh_link", dir);
	unlink(cmd);
	return rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_add),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
