/* The [web] keys as the server uses them, checked once at startup (and by
 * --check): listen address, auth methods and their cross-rules. */
#include "web.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void copy(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

int web_parse_listen(const char *listen, char *addr, size_t addrlen, int *port, char *err, size_t errlen)
{
	const char *colon = strrchr(listen, ':');
	struct in_addr in;
	char host[64];
	char *end;
	long p;

	if (listen[0] == '[' || (colon && strchr(listen, ':') != colon)) {
		snprintf(err, errlen,
			 "[web] listen = %s: Debian's CivetWeb is built without IPv6; listen on an IPv4 address "
			 "(0.0.0.0:PORT for every interface)",
			 listen);
		return -1;
	}
	if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof(host)) {
		snprintf(err, errlen, "[web] listen = %s: want ADDRESS:PORT, e.g. 127.0.0.1:8080", listen);
		return -1;
	}
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	if (strcmp(host, "localhost") == 0) /* as the configuration check allows: not resolved */
		snprintf(host, sizeof(host), "127.0.0.1");
	p = strtol(colon + 1, &end, 10);
	if (*end || colon[1] == '\0' || p < 0 || p > 65535) {
		snprintf(err, errlen, "[web] listen = %s: the port must be a number 0..65535", listen);
		return -1;
	}
	if (inet_pton(AF_INET, host, &in) != 1) {
		snprintf(err, errlen, "[web] listen = %s: '%s' is not an IPv4 address (names are not resolved)", listen,
			 host);
		return -1;
	}
	copy(addr, addrlen, host);
	*port = (int)p;
	return 0;
}

int web_addr_is_loopback(const char *addr)
{
	struct in_addr in;

	return inet_pton(AF_INET, addr, &in) == 1 && (ntohl(in.s_addr) >> 24) == 127;
}

static int parse_auth(const char *list, int *methods, char *err, size_t errlen)
{
	char word[32];
	const char *p = list;
	size_t n;

	*methods = 0;
	while (*p) {
		p += strspn(p, " ,\t");
		n = strcspn(p, " ,\t");
		if (n == 0)
			break;
		if (n >= sizeof(word)) {
			snprintf(err, errlen, "[web] auth: unknown method '%.*s' (proxy bearer basic none)", (int)n, p);
			return -1;
		}
		memcpy(word, p, n);
		word[n] = '\0';
		p += n;
		if (strcmp(word, "proxy") == 0)
			*methods |= WEB_AUTH_PROXY;
		else if (strcmp(word, "bearer") == 0)
			*methods |= WEB_AUTH_BEARER;
		else if (strcmp(word, "basic") == 0)
			*methods |= WEB_AUTH_BASIC;
		else if (strcmp(word, "none") == 0)
			*methods |= WEB_AUTH_NONE;
		else {
			snprintf(err, errlen, "[web] auth: unknown method '%s' (proxy bearer basic none)", word);
			return -1;
		}
	}
	if (*methods == 0) {
		snprintf(err, errlen, "[web] auth is empty: name at least one of proxy bearer basic none");
		return -1;
	}
	if ((*methods & WEB_AUTH_NONE) && *methods != WEB_AUTH_NONE) {
		snprintf(err, errlen, "[web] auth: 'none' cannot be combined with other methods");
		return -1;
	}
	return 0;
}

int web_settings_load(web_settings *set, const bg_config *cfg, char *err, size_t errlen)
{
	const char *listen = bg_app_conf(cfg, "web", "listen");

	memset(set, 0, sizeof(*set));
	if (web_parse_listen(listen, set->listen_addr, sizeof(set->listen_addr), &set->listen_port, err, errlen) != 0)
		return -1;
	if (parse_auth(bg_app_conf(cfg, "web", "auth"), &set->auth_methods, err, errlen) != 0)
		return -1;
	if ((set->auth_methods & WEB_AUTH_NONE) && !web_addr_is_loopback(set->listen_addr)) {
		snprintf(err, errlen,
			 "[web] auth = none is refused unless listen is a loopback address (listen = %s): put an "
			 "auth proxy, a bearer token or basic auth in front",
			 listen);
		return -1;
	}
	if ((set->auth_methods & WEB_AUTH_BASIC) && !bg_app_conf(cfg, "web", "htpasswd_file")[0]) {
		snprintf(err, errlen, "[web] auth has basic but htpasswd_file is not set");
		return -1;
	}
	copy(set->proxy_header, sizeof(set->proxy_header), bg_app_conf(cfg, "web", "proxy_header"));
	copy(set->trusted_proxies, sizeof(set->trusted_proxies), bg_app_conf(cfg, "web", "trusted_proxies"));
	copy(set->bearer_token_file, sizeof(set->bearer_token_file), bg_app_conf(cfg, "web", "bearer_token_file"));
	copy(set->htpasswd_file, sizeof(set->htpasswd_file), bg_app_conf(cfg, "web", "htpasswd_file"));
	copy(set->sessions_dir, sizeof(set->sessions_dir), bg_app_conf(cfg, "web", "sessions_dir"));
	copy(set->audit_log, sizeof(set->audit_log), bg_app_conf(cfg, "web", "audit_log"));
	set->max_sessions = bg_app_conf_int(cfg, "web", "max_sessions");
	set->max_sessions = set->max_sessions > 0 ? set->max_sessions : 64;
	set->threads = bg_app_conf_int(cfg, "web", "threads");
	set->threads = set->threads > 0 ? set->threads : 64;
	set->max_streams = 8 * set->threads;
	set->keepalive_ms = WEB_STREAM_KEEPALIVE_MS;
	return 0;
}
