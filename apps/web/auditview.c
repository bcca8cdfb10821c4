/*
 * GET /api/audit[?limit=N][&kind=K[,K...]]: the newest audit records the
 * server holds, newest first, optionally only those of some kinds. A kind
 * is an action ("pve.mutate") or the part before its dot ("pve": every
 * pve.* action): pve, tool, agent, approval, auth, csrf, devvm, session.
 */
#include "web.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_LIMIT_DEFAULT 100
#define AUDIT_LIMIT_MAX     1000
#define AUDIT_KINDS_MAX     8
#define AUDIT_KIND_LEN      32
#define AUDIT_SCAN_MAX      100000 /* every record the server holds */

typedef struct audit_query {
	long limit;
	int nkinds;
	char kinds[AUDIT_KINDS_MAX][AUDIT_KIND_LEN + 1];
} audit_query;

/* Percent-decode `n` bytes of `s` into `out` (NUL-terminated): 0, or -1
 * when it does not fit or holds a bad escape or a NUL. */
static int url_decode(char *out, size_t outlen, const char *s, size_t n)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		int c = (unsigned char)s[i];
		if (c == '%') {
			int hi, lo;
			if (i + 2 >= n)
				return -1;
			hi = web_hexval(s[i + 1]);
			lo = web_hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = hi * 16 + lo;
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (c == 0 || o + 1 >= outlen)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

static int kind_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* 0, or answered 400 naming the parameter. */
static int parse_query(web_req *r, audit_query *q)
{
	const char *p = r->query;

	memset(q, 0, sizeof(*q));
	q->limit = AUDIT_LIMIT_DEFAULT;
	while (p && *p) {
		size_t n = strcspn(p, "&"), klen = strcspn(p, "=");
		char val[AUDIT_KINDS_MAX * (AUDIT_KIND_LEN + 1) + 1];
		const char *v = p + klen + 1;

		if (klen >= n) {
			web_reply_error(r, 400, "a query parameter without a value", "query");
			return -1;
		}
		if (url_decode(val, sizeof(val), v, n - klen - 1) != 0) {
			web_reply_error(r, 400, "a query value is too long or badly encoded", "query");
			return -1;
		}
		if (klen == 5 && strncmp(p, "limit", 5) == 0) {
			char *end;
			q->limit = strtol(val, &end, 10);
			if (*end || !val[0] || q->limit < 1 || q->limit > AUDIT_LIMIT_MAX) {
				web_reply_error(r, 400, "limit must be a number 1..1000", "limit");
				return -1;
			}
		} else if (klen == 4 && strncmp(p, "kind", 4) == 0) {
			const char *k = val;
			while (*k) {
				size_t kl = strcspn(k, ","), i;
				if (kl == 0 || kl > AUDIT_KIND_LEN || q->nkinds == AUDIT_KINDS_MAX) {
					web_reply_error(r, 400,
							"kind is a comma-separated list of at most 8 audit kinds "
							"(pve, tool, agent, approval, auth, csrf, devvm, session, or "
							"an action)",
							"kind");
					return -1;
				}
				for (i = 0; i < kl; i++)
					if (!kind_char(k[i])) {
						web_reply_error(r, 400, "a kind is lower-case letters, digits and ._-",
								"kind");
						return -1;
					}
				memcpy(q->kinds[q->nkinds], k, kl);
				q->kinds[q->nkinds++][kl] = '\0';
				k += kl;
				if (*k == ',')
					k++;
			}
			if (q->nkinds == 0) {
				web_reply_error(r, 400, "kind is empty", "kind");
				return -1;
			}
		} else {
			web_reply_error(r, 400, "unknown query parameter (limit and kind are known)", "query");
			return -1;
		}
		p += n;
		if (*p == '&')
			p++;
	}
	return 0;
}

static int kind_matches(const audit_query *q, const char *action)
{
	int i;

	if (q->nkinds == 0)
		return 1;
	for (i = 0; i < q->nkinds; i++) {
		size_t kl = strlen(q->kinds[i]);
		if (strncmp(action, q->kinds[i], kl) == 0 && (action[kl] == '\0' || action[kl] == '.'))
			return 1;
	}
	return 0;
}

/* The end of the JSON value starting at `p` (an object in the array the
 * library wrote): strings and nesting followed, nothing else checked. */
static const char *value_end(const char *p, const char *end)
{
	int depth = 0, in_str = 0;

	for (; p < end; p++) {
		if (in_str) {
			if (*p == '\\')
				p++;
			else if (*p == '"')
				in_str = 0;
			continue;
		}
		if (*p == '"')
			in_str = 1;
		else if (*p == '{' || *p == '[')
			depth++;
		else if ((*p == '}' || *p == ']') && --depth == 0)
			return p + 1;
	}
	return NULL;
}

int web_audit_view(web_req *r)
{
	audit_query q;
	char *json = NULL;
	const char *p, *end;
	wbuf b = {0};
	long n = 0;
	int rc;

	if (parse_query(r, &q) != 0)
		return r->status;
	if (bg_audit_recent(&json, r->srv->audit, q.nkinds ? AUDIT_SCAN_MAX : (size_t)q.limit) != BG_OK)
		return web_reply_error(r, 500, bg_error_last()->message, NULL);
	if (q.nkinds == 0) { /* the library's array as it is */
		rc = web_reply(r, 200, "application/json", json, strlen(json), NULL);
		bg_free(json);
		return rc;
	}
	wbuf_puts(&b, "[");
	p = json;
	end = json + strlen(json);
	while (p < end && *p != '{')
		p++;
	while (p < end && n < q.limit) {
		const char *e = value_end(p, end);
		wjson_obj o;
		char err[80];
		wjson_type t;
		const char *action;

		if (!e)
			break;
		if (wjson_parse(&o, p, (size_t)(e - p), err, sizeof(err)) == 0) {
			action = wjson_string(&o, "action", &t);
			if (t == WJ_STRING && kind_matches(&q, action)) {
				wbuf_puts(&b, n ? "," : "");
				wbuf_put(&b, p, (size_t)(e - p));
				n++;
			}
			wjson_free(&o);
		}
		p = e;
		while (p < end && *p != '{')
			p++;
	}
	wbuf_puts(&b, "]");
	bg_free(json);
	rc = web_reply_json(r, 200, &b);
	wbuf_free(&b);
	return rc;
}
