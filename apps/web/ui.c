/*
 * The page: apps/web/ui/, compiled in by cmake/embed_ui.cmake (the table
 * of assets.h), served from memory. Nothing here touches the filesystem:
 * a path is only ever compared with the table's.
 *
 *   GET /                       index.html, Cache-Control: no-cache
 *   GET /ui/<build>/<path>      any asset, immutable (a new build has new URLs)
 *   GET /favicon.ico            favicon.ico if the page has one, else 204
 *
 * Each carries the ETag of its content hash and answers a matching
 * If-None-Match with 304; HEAD is answered by server.c without the body.
 */
#include "assets.h"
#include "web.h"

#include <stdio.h>
#include <string.h>

/* The page's policy: nothing inline, nothing from elsewhere (docs/web.md).
 * Sent with every asset too, so an SVG opened on its own runs no script. */
#define UI_CSP                                                                                              \
	"Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' " \
	"data:; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; "             \
	"frame-ancestors 'none'\r\n"

#define UI_IMMUTABLE "Cache-Control: public, max-age=31536000, immutable\r\n"
#define UI_NO_CACHE  "Cache-Control: no-cache\r\n"
#define UI_FAVICON   "Cache-Control: public, max-age=86400\r\n"

const web_asset *web_asset_find(const char *path)
{
	size_t i;

	for (i = 0; i < web_assets_count; i++)
		if (strcmp(web_assets[i].path, path) == 0)
			return &web_assets[i];
	return NULL;
}

/* Does If-None-Match (a list of entity tags, or *) name `hash`? */
static int etag_matches(const char *inm, const char *hash)
{
	size_t hl = strlen(hash);
	const char *p = inm;

	while (p && *p) {
		size_t n;
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return 1;
		if (strncmp(p, "W/", 2) == 0)
			p += 2; /* weak comparison, as RFC 9110 wants for If-None-Match */
		n = strcspn(p, ",");
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == hl + 2 && p[0] == '"' && p[n - 1] == '"' && strncmp(p + 1, hash, hl) == 0)
			return 1;
		p += n;
	}
	return 0;
}

static int serve(web_req *r, const web_asset *a, const char *cache)
{
	char headers[1024];

	snprintf(headers, sizeof(headers), "%sETag: \"%s\"\r\n%s", cache, a->hash, UI_CSP);
	if (etag_matches(web_header(r, "If-None-Match"), a->hash))
		return web_reply(r, 304, NULL, NULL, 0, headers);
	return web_reply(r, 200, a->type, (const char *)a->data, a->size, headers);
}

int web_ui_page(web_req *r)
{
	const web_asset *a = web_asset_find("index.html");

	if (!a) /* embed_ui.cmake refuses to build without it */
		return web_reply_error(r, 500, "the page is missing from this build", NULL);
	return serve(r, a, UI_NO_CACHE);
}

int web_ui_asset(web_req *r)
{
	static const char prefix[] = "/ui/";
	const char *build = r->path + sizeof(prefix) - 1;
	size_t n = strlen(web_assets_build);
	const web_asset *a;

	/* The route matched /ui/{build}/{path}; only this build's URLs exist. */
	if (strncmp(r->path, prefix, sizeof(prefix) - 1) != 0 || strncmp(build, web_assets_build, n) != 0 ||
	    build[n] != '/')
		return web_reply_error(r, 404, "no such asset in this build (reload the page)", NULL);
	if (!(a = web_asset_find(build + n + 1)))
		return web_reply_error(r, 404, "no such asset", NULL);
	return serve(r, a, UI_IMMUTABLE);
}

int web_ui_favicon(web_req *r)
{
	const web_asset *a = web_asset_find("favicon.ico");

	if (!a)
		return web_reply(r, 204, NULL, NULL, 0, UI_FAVICON);
	return serve(r, a, UI_FAVICON);
}

void web_ui_print_assets(FILE *f)
{
	size_t i;

	for (i = 0; i < web_assets_count; i++)
		fprintf(f, "%s\t%s\t%zu\t%s\n", web_assets[i].path, web_assets[i].type, web_assets[i].size,
			web_assets[i].hash);
	fprintf(f, "# %zu files, %zu bytes, served under /ui/%s/\n", web_assets_count, web_assets_total,
		web_assets_build);
}
