/* The public half of an OpenSSH private key ("openssh-key-v1", see
 * OpenSSH's PROTOCOL.key): the public key blob is stored in clear even
 * when the private part is encrypted, so `authorized-keys` can print the
 * lines from the one key the CLI is configured with, without ssh-keygen.
 * libssh2 offers no such call, hence this small reader. */
#include "ctl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BEGIN_MARK "-----BEGIN OPENSSH PRIVATE KEY-----"
#define END_MARK   "-----END OPENSSH PRIVATE KEY-----"
#define MAGIC      "openssh-key-v1"

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64value(char c)
{
	const char *p = c ? strchr(b64chars, c) : NULL;
	return p ? (int)(p - b64chars) : -1;
}

/* Decode base64, skipping whitespace; stops at '='. Returns the length or
 * -1 on a bad character. `out` must hold len * 3 / 4 bytes. */
static long b64decode(const char *in, size_t len, unsigned char *out)
{
	uint32_t acc = 0;
	int bits = 0, v;
	long n = 0;
	size_t i;

	for (i = 0; i < len && in[i] != '='; i++) {
		if (in[i] == '\n' || in[i] == '\r' || in[i] == ' ' || in[i] == '\t')
			continue;
		if ((v = b64value(in[i])) < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	return n;
}

static char *b64encode(const unsigned char *in, size_t len)
{
	char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
	size_t i;

	if (!out)
		return NULL;
	for (i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		*o++ = b64chars[(v >> 18) & 63];
		*o++ = b64chars[(v >> 12) & 63];
		*o++ = i + 1 < len ? b64chars[(v >> 6) & 63] : '=';
		*o++ = i + 2 < len ? b64chars[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

/* A cursor over the decoded key: SSH wire strings and integers. */
typedef struct rd {
	const unsigned char *p;
	size_t left;
} rd;

static int rd_u32(rd *r, uint32_t *v)
{
	if (r->left < 4)
		return -1;
	*v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
	r->p += 4;
	r->left -= 4;
	return 0;
}

static int rd_string(rd *r, const unsigned char **s, size_t *len)
{
	uint32_t n;

	if (rd_u32(r, &n) != 0 || n > r->left)
		return -1;
	*s = r->p;
	*len = n;
	r->p += n;
	r->left -= n;
	return 0;
}

static int rd_skip(rd *r, int count)
{
	const unsigned char *s;
	size_t n;

	while (count-- > 0)
		if (rd_string(r, &s, &n) != 0)
			return -1;
	return 0;
}

/* Fields of the private key that come between its type and its comment. */
static int private_fields(const char *type)
{
	if (strcmp(type, "ssh-ed25519") == 0)
		return 2; /* public, private */
	if (strncmp(type, "ecdsa-sha2-", 11) == 0)
		return 3; /* curve, Q, d */
	if (strcmp(type, "ssh-rsa") == 0)
		return 6; /* n e d iqmp p q */
	return -1;
}

/* The comment sits in the private section: readable when not encrypted. */
static void read_comment(ctl_pubkey *out, rd priv)
{
	const unsigned char *s;
	size_t n;
	uint32_t c1, c2;
	int fields = private_fields(out->type);

	if (fields < 0 || rd_u32(&priv, &c1) || rd_u32(&priv, &c2) || c1 != c2 || rd_skip(&priv, 1 + fields) ||
	    rd_string(&priv, &s, &n))
		return;
	snprintf(out->comment, sizeof(out->comment), "%.*s", (int)n, (const char *)s);
}

static int parse_blob(ctl_pubkey *out, const unsigned char *key, size_t klen, char *why, size_t why_n)
{
	rd r = {key, klen}, blob, priv;
	const unsigned char *cipher, *s, *pub, *pv;
	size_t cipher_len, n, pub_len, pv_len;
	uint32_t nkeys;

	if (klen < sizeof(MAGIC) || memcmp(key, MAGIC, sizeof(MAGIC)) != 0) {
		snprintf(why, why_n, "not an openssh-key-v1 key");
		return -1;
	}
	r.p += sizeof(MAGIC);
	r.left -= sizeof(MAGIC);
	if (rd_string(&r, &cipher, &cipher_len) || rd_skip(&r, 2) || rd_u32(&r, &nkeys) || nkeys != 1 ||
	    rd_string(&r, &pub, &pub_len) || rd_string(&r, &pv, &pv_len)) {
		snprintf(why, why_n, "the key file is truncated or holds more than one key");
		return -1;
	}
	blob.p = pub;
	blob.left = pub_len;
	if (rd_string(&blob, &s, &n) || n == 0 || n >= sizeof(out->type)) {
		snprintf(why, why_n, "the public key has no type");
		return -1;
	}
	snprintf(out->type, sizeof(out->type), "%.*s", (int)n, (const char *)s);
	out->encrypted = !(cipher_len == 4 && memcmp(cipher, "none", 4) == 0);
	out->base64 = b64encode(pub, pub_len);
	if (!out->base64) {
		snprintf(why, why_n, "out of memory");
		return -1;
	}
	priv.p = pv;
	priv.left = pv_len;
	if (!out->encrypted)
		read_comment(out, priv);
	return 0;
}

int ctl_pubkey_from_private(ctl_pubkey *out, const char *text, size_t len, char *why, size_t why_n)
{
	const char *begin, *end;
	unsigned char *key;
	long klen;
	int rc;

	memset(out, 0, sizeof(*out));
	begin = memmem(text, len, BEGIN_MARK, strlen(BEGIN_MARK));
	if (!begin) {
		if (memmem(text, len, "PRIVATE KEY-----", 16))
			snprintf(why, why_n,
				 "the key is in the old PEM format: convert it with `ssh-keygen -p -f FILE` "
				 "(it writes the OpenSSH format)");
		else
			snprintf(why, why_n, "not an OpenSSH private key (no '%s' line)", BEGIN_MARK);
		return -1;
	}
	begin += strlen(BEGIN_MARK);
	end = memmem(begin, len - (size_t)(begin - text), END_MARK, strlen(END_MARK));
	if (!end) {
		snprintf(why, why_n, "the private key has no end line: truncated?");
		return -1;
	}
	key = malloc((size_t)(end - begin) * 3 / 4 + 4);
	if (!key) {
		snprintf(why, why_n, "out of memory");
		return -1;
	}
	klen = b64decode(begin, (size_t)(end - begin), key);
	if (klen < 0) {
		snprintf(why, why_n, "the private key is not valid base64");
		rc = -1;
	} else {
		rc = parse_blob(out, key, (size_t)klen, why, why_n);
	}
	explicit_bzero(key, (size_t)(end - begin) * 3 / 4 + 4);
	free(key);
	if (rc != 0)
		ctl_pubkey_clear(out);
	return rc;
}

void ctl_pubkey_clear(ctl_pubkey *k)
{
	if (k) {
		free(k->base64);
		memset(k, 0, sizeof(*k));
	}
}
