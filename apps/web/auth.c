/*
 * Who is asking. Methods (any combination, [web] auth):
 *  proxy   the auth proxy's header ([web] proxy_header), believed only from
 *          [web] trusted_proxies when that is set;
 *  bearer  Authorization: Bearer, compared in constant time with the token
 *          from bearer_token_file or $API_BEARER_TOKEN;
 *  basic   Authorization: Basic against an htpasswd file of crypt(3)
 *          hashes, verified with libcrypt's crypt_r: yescrypt ($y$),
 *          bcrypt ($2b$, $2y$) and sha512-crypt ($6$); any other hash is
 *          refused at startup;
 *  none    only on a loopback listen address.
 * Failures are counted per client address in a small token bucket: once it
 * is empty, each further failure is answered only after a pause, so a
 * guesser is slowed down, while the operator's right credentials are never
 * refused.
 */
#include "web.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define HTPASSWD_MAX          64
#define THROTTLE_SLOTS        64
#define THROTTLE_BURST        5
#define THROTTLE_REFILL       2 /* seconds per token */
#define THROTTLE_PAUSE_MS     1000
#define THROTTLE_MAX_SLEEPERS 4

typedef struct htuser {
	char name[64];
	char hash[160];
} htuser;

struct web_auth {
	int methods;
	char proxy_header[128];
	char trusted[512];
	bg_secret *token;
	htuser users[HTPASSWD_MAX];
	size_t nusers;
	pthread_mutex_t lock;
	struct {
		char addr[48];
		double tokens;
		time_t last;
	} slots[THROTTLE_SLOTS];
	atomic_int sleepers;
};

static int hash_supported(const char *h)
{
	return strncmp(h, "$y$", 3) == 0 || strncmp(h, "$2b$", 4) == 0 || strncmp(h, "$2y$", 4) == 0 ||
	       strncmp(h, "$6$", 3) == 0;
}

int web_crypt_verify(const char *password, const char *hash)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	const char *out;
	int ok;

	if (!cd)
		return 0;
	out = crypt_r(password, hash, cd);
	ok = out && out[0] != '*' && bg_secret_equal(out, strlen(out), hash, strlen(hash));
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}

static int load_htpasswd(web_auth *a, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char line[512];
	int lineno = 0;

	if (!f) {
		snprintf(err, errlen, "[web] htpasswd_file %s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *colon, *end;
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		colon = strchr(line, ':');
		if (!colon || colon == line || (size_t)(colon - line) >= sizeof(a->users[0].name)) {
			snprintf(err, errlen, "%s:%d: want USER:HASH", path, lineno);
			goto fail;
		}
		*colon = '\0';
		end = strchr(colon + 1, ':'); /* tolerate trailing fields */
		if (end)
			*end = '\0';
		if (!hash_supported(colon + 1) || strlen(colon + 1) >= sizeof(a->users[0].hash)) {
			snprintf(
				err, errlen,
				"%s:%d: user %s: unsupported hash (want yescrypt $y$, bcrypt $2b$/$2y$ or sha512-crypt "
				"$6$; e.g. `htpasswd -B` or `mkpasswd -m yescrypt`)",
				path, lineno, line);
			goto fail;
		}
		if (a->nusers == HTPASSWD_MAX) {
			snprintf(err, errlen, "%s: more than %d users", path, HTPASSWD_MAX);
			goto fail;
		}
		memcpy(a->users[a->nusers].name, line, (size_t)(colon - line) + 1);
		memcpy(a->users[a->nusers].hash, colon + 1, strlen(colon + 1) + 1);
		a->nusers++;
	}
	fclose(f);
	if (a->nusers == 0) {
		snprintf(err, errlen, "%s: no users", path);
		return -1;
	}
	return 0;
fail:
	fclose(f);
	return -1;
}

/* Every word of `list` must be an IPv4 address or CIDR. */
static int check_cidrs(const char *list, char *err, size_t errlen)
{
	const char *p = list;
	char word[64];
	size_t n;

	while (*p) {
		p += strspn(p, " ,\t");
		n = strcspn(p, " ,\t");
		if (n == 0)
			break;
		snprintf(word, sizeof(word), "%.*s", (int)(n < 63 ? n : 63), p);
		if (web_cidr_match(word, NULL) < 0) {
			snprintf(err, errlen, "[web] trusted_proxies: '%s' is not an IPv4 address or CIDR", word);
			return -1;
		}
		p += n;
	}
	return 0;
}

static int cidr_one(const char *word, const struct in_addr *addr)
{
	char host[32];
	const char *slash = strchr(word, '/');
	struct in_addr net;
	long bits = 32;
	char *end;
	unsigned int mask;

	snprintf(host, sizeof(host), "%.*s", (int)(slash ? (size_t)(slash - word) : strlen(word)), word);
	if (inet_pton(AF_INET, host, &net) != 1)
		return -1;
	if (slash) {
		bits = strtol(slash + 1, &end, 10);
		if (*end || slash[1] == '\0' || bits < 0 || bits > 32)
			return -1;
	}
	if (!addr)
		return 0;
	mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
	return (ntohl(net.s_addr) & mask) == (ntohl(addr->s_addr) & mask);
}

/* 1 when addr is in one of the CIDRs of `list`, 0 when not; with addr
 * NULL, checks that `list` is one well-formed CIDR (-1 when not). */
int web_cidr_match(const char *list, const char *addr)
{
	struct in_addr in;
	const char *p = list;
	char word[64];
	size_t n;

	if (!addr)
		return cidr_one(list, NULL);
	if (inet_pton(AF_INET, addr, &in) != 1)
		return 0;
	while (*p) {
		p += strspn(p, " ,\t");
		n = strcspn(p, " ,\t");
		if (n == 0)
			break;
		snprintf(word, sizeof(word), "%.*s", (int)(n < 63 ? n : 63), p);
		if (cidr_one(word, &in) == 1)
			return 1;
		p += n;
	}
	return 0;
}

int web_auth_new(web_auth **out, const web_settings *set, char *err, size_t errlen)
{
	web_auth *a = calloc(1, sizeof(*a));
	int rc;

	*out = NULL;
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	pthread_mutex_init(&a->lock, NULL);
	a->methods = set->auth_methods;
	snprintf(a->proxy_header, sizeof(a->proxy_header), "%s", set->proxy_header);
	snprintf(a->trusted, sizeof(a->trusted), "%s", set->trusted_proxies);
	if (check_cidrs(a->trusted, err, errlen) != 0)
		goto fail;
	if ((a->methods & WEB_AUTH_PROXY) && !a->proxy_header[0]) {
		snprintf(err, errlen, "[web] auth has proxy but proxy_header is empty");
		goto fail;
	}
	if (a->methods & WEB_AUTH_BEARER) {
		if (set->bearer_token_file[0])
			rc = bg_secret_from_file(&a->token, set->bearer_token_file);
		else
			rc = bg_secret_from_env(&a->token, "API_BEARER_TOKEN");
		if (rc == BG_OK && a->token && bg_secret_len(a->token) > 0 &&
		    bg_secret_data(a->token)[bg_secret_len(a->token) - 1] == '\n') {
			/* a token file ends with a newline: the token does not */
			bg_secret *t = NULL;
			size_t len = bg_secret_len(a->token);
			const char *d = bg_secret_data(a->token);
			while (len > 0 && (d[len - 1] == '\n' || d[len - 1] == '\r'))
				len--;
			rc = bg_secret_new(&t, d, len);
			bg_secret_free(a->token);
			a->token = t;
		}
		if (rc != BG_OK || !a->token || bg_secret_len(a->token) < 16) {
			snprintf(err, errlen,
				 "[web] auth has bearer but no token of at least 16 bytes: set bearer_token_file or "
				 "$API_BEARER_TOKEN, or take bearer out of [web] auth%s%s",
				 rc != BG_OK ? ": " : "", rc != BG_OK ? bg_error_last()->message : "");
			goto fail;
		}
	}
	if ((a->methods & WEB_AUTH_BASIC) && load_htpasswd(a, set->htpasswd_file, err, errlen) != 0)
		goto fail;
	*out = a;
	return 0;
fail:
	web_auth_free(a);
	return -1;
}

void web_auth_free(web_auth *a)
{
	if (!a)
		return;
	bg_secret_free(a->token);
	explicit_bzero(a->users, sizeof(a->users));
	pthread_mutex_destroy(&a->lock);
	free(a);
}

int web_auth_basic_enabled(const web_auth *a)
{
	return a && (a->methods & WEB_AUTH_BASIC);
}

static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static int b64decode(const char *in, char *out, size_t outlen)
{
	size_t o = 0;
	unsigned int acc = 0;
	int bits = 0, v;

	for (; *in && *in != '='; in++) {
		if ((v = b64val(*in)) < 0)
			return -1;
		acc = (acc << 6) | (unsigned int)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o + 1 >= outlen)
				return -1;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[o] = '\0';
	return (int)o;
}

static int check_basic(web_auth *a, const char *cred, char *who, size_t wholen)
{
	char plain[512];
	char *colon;
	size_t i;
	int n, ok = 0, found = 0;

	if ((n = b64decode(cred, plain, sizeof(plain))) < 0 || memchr(plain, '\0', (size_t)n) ||
	    !(colon = strchr(plain, ':'))) {
		explicit_bzero(plain, sizeof(plain));
		return 0;
	}
	*colon = '\0';
	for (i = 0; i < a->nusers; i++) {
		if (strcmp(a->users[i].name, plain) == 0) {
			found = 1;
			ok = web_crypt_verify(colon + 1, a->users[i].hash);
			break;
		}
	}
	if (!found && a->nusers > 0) /* the same work for an unknown user: no enumeration by timing */
		(void)web_crypt_verify(colon + 1, a->users[0].hash);
	if (ok)
		snprintf(who, wholen, "%s", plain);
	explicit_bzero(plain, sizeof(plain));
	return ok;
}

/* Take one token for a failure from `addr`; 0 when the bucket was empty. */
static int throttle_take(web_auth *a, const char *addr)
{
	time_t now = time(NULL);
	int i, slot = -1, oldest = 0, ok;

	pthread_mutex_lock(&a->lock);
	for (i = 0; i < THROTTLE_SLOTS; i++) {
		if (strcmp(a->slots[i].addr, addr) == 0) {
			slot = i;
			break;
		}
		if (a->slots[i].last < a->slots[oldest].last)
			oldest = i;
	}
	if (slot < 0) {
		slot = oldest;
		snprintf(a->slots[slot].addr, sizeof(a->slots[slot].addr), "%s", addr);
		a->slots[slot].tokens = THROTTLE_BURST;
		a->slots[slot].last = now;
	}
	a->slots[slot].tokens += (double)(now - a->slots[slot].last) / THROTTLE_REFILL;
	if (a->slots[slot].tokens > THROTTLE_BURST)
		a->slots[slot].tokens = THROTTLE_BURST;
	a->slots[slot].last = now;
	ok = a->slots[slot].tokens >= 1.0;
	if (ok)
		a->slots[slot].tokens -= 1.0;
	pthread_mutex_unlock(&a->lock);
	return ok;
}

static int fail(web_auth *a, web_req *r, const char *why)
{
	atomic_fetch_add(&r->srv->metrics->auth_failures, 1);
	r->who[0] = '\0';
	web_audit(r, "auth.failure", r->path, "denied", why);
	if (throttle_take(a, r->from))
		return 401;
	/* Out of tokens: pause before answering (a few sleepers at most, so
	 * that a flood cannot take the workers; beyond that, 429 at once). */
	if (atomic_fetch_add(&a->sleepers, 1) < THROTTLE_MAX_SLEEPERS) {
		usleep(THROTTLE_PAUSE_MS * 1000);
		atomic_fetch_sub(&a->sleepers, 1);
		return 401;
	}
	atomic_fetch_sub(&a->sleepers, 1);
	return 429;
}

int web_auth_check(web_auth *a, web_req *r)
{
	const char *authz = web_header(r, "Authorization");
	const char *hv;
	int tried = 0;

	if (a->methods & WEB_AUTH_NONE) {
		snprintf(r->who, sizeof(r->who), "anonymous");
		r->auth_method = "none";
		return 0;
	}
	if ((a->methods & WEB_AUTH_BEARER) && authz && strncasecmp(authz, "Bearer ", 7) == 0) {
		const char *tok = authz + 7;
		tried = 1;
		if (bg_secret_equal(tok, strlen(tok), bg_secret_data(a->token), bg_secret_len(a->token))) {
			snprintf(r->who, sizeof(r->who), "bearer");
			r->auth_method = "bearer";
			return 0;
		}
	}
	if ((a->methods & WEB_AUTH_BASIC) && authz && strncasecmp(authz, "Basic ", 6) == 0) {
		tried = 1;
		if (check_basic(a, authz + 6, r->who, sizeof(r->who))) {
			r->auth_method = "basic";
			return 0;
		}
	}
	if ((a->methods & WEB_AUTH_PROXY) && (hv = web_header(r, a->proxy_header)) != NULL && hv[0]) {
		size_t i;
		tried = 1;
		if (a->trusted[0] && !web_cidr_match(a->trusted, r->from))
			return fail(a, r, "proxy header from an untrusted address");
		for (i = 0; hv[i]; i++)
			if ((unsigned char)hv[i] < 0x20 || hv[i] == 0x7f || i >= 128)
				return fail(a, r, "malformed proxy header");
		snprintf(r->who, sizeof(r->who), "%s", hv);
		r->auth_method = "proxy";
		return 0;
	}
	return fail(a, r, tried ? "wrong credentials" : "no credentials");
}
