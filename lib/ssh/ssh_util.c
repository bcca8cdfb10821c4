#include "ssh_util.h"

#include "breakglass/common.h"

#include <stdio.h>

#include <stdlib.h>
#include <string.h>

/* ---- SHA-256 (FIPS 180-4), for key fingerprints only ---- */

static const uint32_t sha256_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t ror32(uint32_t x, unsigned n)
{
	return (x >> n) | (x << (32 - n));
}

static void sha256_block(uint32_t h[8], const unsigned char *p)
{
	uint32_t w[64], a, b, c, d, e, f, g, hh;
	int i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
		       (uint32_t)p[4 * i + 3];
	for (i = 16; i < 64; i++) {
		uint32_t s0 = ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
	for (i = 0; i < 64; i++) {
		uint32_t t1 = hh + (ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25)) + ((e & f) ^ (~e & g)) + sha256_k[i] +
			      w[i];
		uint32_t t2 = (ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
		hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
	}
	h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

void bg_ssh_sha256(const void *data, size_t len, unsigned char out[32])
{
	uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
			 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
	const unsigned char *p = data;
	unsigned char tail[128];
	size_t n = len, tlen;
	uint64_t bits = (uint64_t)len * 8;
	int i;

	for (; n >= 64; n -= 64, p += 64)
		sha256_block(h, p);
	memset(tail, 0, sizeof(tail));
	memcpy(tail, p, n);
	tail[n] = 0x80;
	tlen = n + 1 + 8 <= 64 ? 64 : 128;
	for (i = 0; i < 8; i++)
		tail[tlen - 1 - i] = (unsigned char)(bits >> (8 * i));
	sha256_block(h, tail);
	if (tlen == 128)
		sha256_block(h, tail + 64);
	for (i = 0; i < 8; i++) {
		out[4 * i] = (unsigned char)(h[i] >> 24);
		out[4 * i + 1] = (unsigned char)(h[i] >> 16);
		out[4 * i + 2] = (unsigned char)(h[i] >> 8);
		out[4 * i + 3] = (unsigned char)h[i];
	}
}

/* ---- base64 ---- */

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int bg_ssh_base64_encode(bg_buf *b, const unsigned char *data, size_t len, int pad)
{
	size_t i;
	int rc = BG_OK;

	for (i = 0; i + 2 < len && rc == BG_OK; i += 3) {
		uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
		char q[4] = {b64_alphabet[v >> 18], b64_alphabet[(v >> 12) & 63], b64_alphabet[(v >> 6) & 63],
			     b64_alphabet[v & 63]};
		rc = bg_buf_append(b, q, 4);
	}
	if (rc == BG_OK && i < len) {
		uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < len ? (uint32_t)data[i + 1] << 8 : 0);
		char q[4] = {b64_alphabet[v >> 18], b64_alphabet[(v >> 12) & 63],
			     i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=', '='};
		size_t n = pad ? 4 : (i + 1 < len ? 3 : 2);
		rc = bg_buf_append(b, q, n);
	}
	return rc;
}

static int b64_value(char c)
{
	const char *p = c ? strchr(b64_alphabet, c) : NULL;

	return p ? (int)(p - b64_alphabet) : -1;
}

long bg_ssh_base64_decode(unsigned char *out, size_t cap, const char *in, size_t len)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t n = 0, i;

	for (i = 0; i < len && in[i] != '='; i++) {
		int v;

		if (in[i] == ' ' || in[i] == '\n' || in[i] == '\r' || in[i] == '\t')
			continue;
		v = b64_value(in[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n >= cap)
				return -1;
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	return (long)n;
}

/* ---- fingerprints ---- */

void bg_ssh_fingerprint_format(char out[BG_SSH_FPR_LEN], const unsigned char digest[32])
{
	bg_buf b = BG_BUF_INIT;

	out[0] = '\0';
	if (bg_buf_puts(&b, "SHA256:") == BG_OK && bg_ssh_base64_encode(&b, digest, 32, 0) == BG_OK &&
	    b.len < BG_SSH_FPR_LEN)
		memcpy(out, b.data, b.len + 1);
	bg_buf_free(&b);
}

int bg_ssh_fingerprint_valid(const char *s)
{
	size_t i;

	if (!s || strncmp(s, "SHA256:", 7) != 0 || strlen(s) != 7 + 43)
		return 0;
	for (i = 7; s[i]; i++)
		if (b64_value(s[i]) < 0)
			return 0;
	return 1;
}

/* ---- private key detection ---- */

#define OPENSSH_BEGIN "-----BEGIN OPENSSH PRIVATE KEY-----"
#define OPENSSH_END   "-----END OPENSSH PRIVATE KEY-----"
#define OPENSSH_MAGIC "openssh-key-v1"

typedef struct reader {
	const unsigned char *p;
	size_t left;
} reader;

static int read_u32(reader *r, uint32_t *v)
{
	if (r->left < 4)
		return -1;
	*v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
	r->p += 4, r->left -= 4;
	return 0;
}

static int read_string(reader *r, const unsigned char **s, uint32_t *len)
{
	if (read_u32(r, len) != 0 || *len > r->left)
		return -1;
	*s = r->p;
	r->p += *len, r->left -= *len;
	return 0;
}

static bg_ssh_key_type type_from_name(const char *name)
{
	if (strcmp(name, "ssh-ed25519") == 0)
		return BG_SSH_KEY_ED25519;
	if (strncmp(name, "ecdsa-sha2-", 11) == 0)
		return BG_SSH_KEY_ECDSA;
	if (strcmp(name, "ssh-rsa") == 0)
		return BG_SSH_KEY_RSA;
	if (strcmp(name, "ssh-dss") == 0)
		return BG_SSH_KEY_DSA;
	return BG_SSH_KEY_UNKNOWN;
}

static void copy_name(char *dst, size_t cap, const unsigned char *s, size_t len)
{
	size_t i;

	if (len >= cap)
		len = cap - 1;
	for (i = 0; i < len; i++)
		dst[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? (char)s[i] : '?';
	dst[len] = '\0';
}

/* How many strings of the private key lie between its type and its
 * comment (OpenSSH's PROTOCOL.key); -1 for a type not known here. */
static int private_fields(bg_ssh_key_type type)
{
	switch (type) {
	case BG_SSH_KEY_ED25519: return 2; /* public, private */
	case BG_SSH_KEY_ECDSA: return 3;   /* curve, Q, d */
	case BG_SSH_KEY_RSA: return 6;     /* n e d iqmp p q */
	default: return -1;
	}
}

/* The comment closes the (unencrypted) private section; a control
 * character in it would break an authorized_keys line. */
static void read_comment(bg_ssh_key_info *info, reader priv)
{
	const unsigned char *s = NULL;
	uint32_t c1, c2, n = 0;
	int i, fields = private_fields(info->type);
	size_t k;

	if (fields < 0 || read_u32(&priv, &c1) || read_u32(&priv, &c2) || c1 != c2)
		return;
	for (i = 0; i < 1 + fields; i++)
		if (read_string(&priv, &s, &n))
			return;
	if (read_string(&priv, &s, &n))
		return;
	for (k = 0; k < n && k + 1 < sizeof(info->comment) && s[k]; k++)
		info->comment[k] = (s[k] < 0x20 || s[k] == 0x7f) ? '?' : (char)s[k];
	info->comment[k] = '\0';
}

static void keep_public(bg_ssh_key_info *info, const unsigned char *pub, uint32_t plen)
{
	unsigned char digest[32];

	bg_ssh_sha256(pub, plen, digest);
	bg_ssh_fingerprint_format(info->fpr, digest);
	info->has_fingerprint = 1;
	if (plen <= sizeof(info->pub)) {
		memcpy(info->pub, pub, plen);
		info->pub_len = plen;
	}
}

/* The "openssh-key-v1" blob: magic, cipher, kdf, kdf options, key count,
 * the public key whose first string is the key type, then the private
 * section (encrypted unless the cipher is "none"). */
static void parse_openssh_blob(bg_ssh_key_info *info, const unsigned char *blob, size_t len)
{
	reader r = {blob, len};
	const unsigned char *cipher, *kdf, *kdfopt, *pub, *tname, *priv;
	uint32_t clen, klen, olen, nkeys, plen, tlen, vlen;
	reader pr;

	if (len < sizeof(OPENSSH_MAGIC) || memcmp(blob, OPENSSH_MAGIC, sizeof(OPENSSH_MAGIC)) != 0) {
		info->problem = "not an openssh-key-v1 key";
		return;
	}
	r.p += sizeof(OPENSSH_MAGIC), r.left -= sizeof(OPENSSH_MAGIC);
	if (read_string(&r, &cipher, &clen) || read_string(&r, &kdf, &klen) || read_string(&r, &kdfopt, &olen) ||
	    read_u32(&r, &nkeys) || nkeys < 1 || read_string(&r, &pub, &plen)) {
		info->problem = "the key is truncated or holds no key";
		return;
	}
	(void)kdf, (void)kdfopt;
	info->encrypted = !(clen == 4 && memcmp(cipher, "none", 4) == 0);
	pr.p = pub, pr.left = plen;
	if (read_string(&pr, &tname, &tlen) || tlen == 0) {
		info->problem = "the public key has no type";
		return;
	}
	copy_name(info->type_name, sizeof(info->type_name), tname, tlen);
	info->type = type_from_name(info->type_name);
	keep_public(info, pub, plen);
	if (!info->encrypted && read_string(&r, &priv, &vlen) == 0) {
		reader vr = {priv, vlen};
		read_comment(info, vr);
	}
}

static const char *find_mem(const char *hay, size_t hlen, const char *needle)
{
	size_t nlen = strlen(needle), i;

	for (i = 0; i + nlen <= hlen; i++)
		if (memcmp(hay + i, needle, nlen) == 0)
			return hay + i;
	return NULL;
}

static void detect_openssh(bg_ssh_key_info *info, const char *data, size_t len, const char *begin)
{
	const char *body = begin + strlen(OPENSSH_BEGIN);
	const char *end = find_mem(body, len - (size_t)(body - data), OPENSSH_END);
	unsigned char *blob;
	size_t blen, cap;
	long n;

	info->format = "openssh";
	if (!end) {
		info->problem = "the private key has no end line: truncated?";
		return;
	}
	/* All of it: the comment comes last, after the private key. */
	blen = (size_t)(end - body);
	cap = blen / 4 * 3 + 3;
	blob = malloc(cap);
	if (!blob) {
		info->problem = "out of memory";
		return;
	}
	n = bg_ssh_base64_decode(blob, cap, body, blen);
	if (n >= 0)
		parse_openssh_blob(info, blob, (size_t)n);
	else
		info->problem = "the private key is not valid base64";
	explicit_bzero(blob, cap);
	free(blob);
}

void bg_ssh_key_detect(bg_ssh_key_info *info, const char *data, size_t len)
{
	static const struct {
		const char *header;
		bg_ssh_key_type type;
		const char *name;
		const char *format;
	} pem[] = {
		{"-----BEGIN RSA PRIVATE KEY-----", BG_SSH_KEY_RSA, "rsa", "pem"},
		{"-----BEGIN EC PRIVATE KEY-----", BG_SSH_KEY_ECDSA, "ecdsa", "pem"},
		{"-----BEGIN DSA PRIVATE KEY-----", BG_SSH_KEY_DSA, "dsa", "pem"},
		{"-----BEGIN ENCRYPTED PRIVATE KEY-----", BG_SSH_KEY_UNKNOWN, "", "pkcs8"},
		{"-----BEGIN PRIVATE KEY-----", BG_SSH_KEY_UNKNOWN, "", "pkcs8"},
	};
	const char *begin;
	size_t i;

	memset(info, 0, sizeof(*info));
	info->format = "";
	if (!data) {
		info->type = BG_SSH_KEY_NOT_A_KEY;
		return;
	}
	begin = find_mem(data, len, OPENSSH_BEGIN);
	if (begin) {
		detect_openssh(info, data, len, begin);
		return;
	}
	for (i = 0; i < sizeof(pem) / sizeof(pem[0]); i++) {
		if (find_mem(data, len, pem[i].header)) {
			info->type = pem[i].type;
			copy_name(info->type_name, sizeof(info->type_name), (const unsigned char *)pem[i].name,
				  strlen(pem[i].name));
			info->format = pem[i].format;
			/* Legacy PEM marks a passphrase with a Proc-Type header. */
			info->encrypted = find_mem(data, len, "Proc-Type: 4,ENCRYPTED") != NULL ||
					  strstr(pem[i].header, "ENCRYPTED") != NULL;
			return;
		}
	}
	if (!find_mem(data, len, "-----BEGIN "))
		info->type = BG_SSH_KEY_NOT_A_KEY;
}

/* ---- the key rule ---- */

int bg_ssh_key_type_judge(const bg_ssh_key_info *info, char *reason, size_t n)
{
	switch (info->type) {
	case BG_SSH_KEY_ED25519:
	case BG_SSH_KEY_ECDSA: return BG_OK;
	case BG_SSH_KEY_RSA:
		snprintf(reason, n,
			 "is an RSA key: libssh2 1.10 can sign only with ssh-rsa (SHA-1), which OpenSSH >= 8.8 "
			 "refuses, so it cannot log in; use an ed25519 or ECDSA key instead (ssh-keygen -t ed25519) "
			 "and add its .pub to authorized_keys");
		return BG_EUNSUPPORTED;
	case BG_SSH_KEY_DSA:
		snprintf(reason, n,
			 "is a DSA key, which OpenSSH no longer accepts; use an ed25519 or ECDSA key "
			 "(ssh-keygen -t ed25519)");
		return BG_EUNSUPPORTED;
	case BG_SSH_KEY_NOT_A_KEY:
		snprintf(reason, n,
			 "is not a private key (no \"-----BEGIN … PRIVATE KEY-----\" line); give the private key "
			 "file, not the .pub");
		return BG_EINVAL;
	case BG_SSH_KEY_UNKNOWN: break;
	}
	if (strcmp(info->format, "openssh") != 0)
		return BG_OK; /* PKCS#8 or an unknown PEM: libssh2 decides */
	snprintf(reason, n,
		 "is a %s key, which breakglass cannot log in with (ed25519 or ECDSA only); make one with "
		 "ssh-keygen -t ed25519",
		 info->type_name[0] ? info->type_name : "unknown");
	return BG_EUNSUPPORTED;
}

int bg_ssh_key_judge(const bg_ssh_key_info *info, char *reason, size_t n)
{
	int rc = bg_ssh_key_type_judge(info, reason, n);

	if (rc != BG_OK)
		return rc;
	if (info->encrypted) {
		snprintf(reason, n,
			 "is protected by a passphrase, which breakglass cannot ask for; load it into ssh-agent "
			 "and set use_agent, or use a key without a passphrase readable only by the service");
		return BG_EUNSUPPORTED;
	}
	if (n)
		reason[0] = '\0';
	return BG_OK;
}

int bg_ssh_from_valid(const char *s)
{
	if (!s || !*s)
		return 0;
	for (; *s; s++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:*?/,!-_", *s))
			return 0;
	return 1;
}

/* ---- commands ---- */

int bg_ssh_shell_quote(bg_buf *b, const char *s)
{
	int rc = bg_buf_putc(b, '\'');

	for (; rc == BG_OK && *s; s++)
		rc = *s == '\'' ? bg_buf_puts(b, "'\\''") : bg_buf_putc(b, *s);
	return rc == BG_OK ? bg_buf_putc(b, '\'') : rc;
}

int bg_ssh_wrap_command(bg_buf *b, const char *cmd, int timeout_s, int remote_timeout)
{
	int rc;

	if (!remote_timeout)
		return bg_buf_puts(b, cmd);
	/* exec: the login shell steps aside, so a signal that kills the
	 * command reaches us as an exit signal, not as a shell's 128+N. */
	rc = bg_buf_printf(b, "exec timeout -k 5 %d sh -c ", timeout_s);
	return rc == BG_OK ? bg_ssh_shell_quote(b, cmd) : rc;
}

const char *bg_ssh_hostkey_type_name(int type)
{
	/* The LIBSSH2_HOSTKEY_TYPE_* values, without needing libssh2.h here. */
	switch (type) {
	case 1: return "ssh-rsa";
	case 2: return "ssh-dss";
	case 3: return "ecdsa-sha2-nistp256";
	case 4: return "ecdsa-sha2-nistp384";
	case 5: return "ecdsa-sha2-nistp521";
	case 6: return "ssh-ed25519";
	default: return "unknown";
	}
}
