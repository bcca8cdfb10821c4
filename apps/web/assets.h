/*
 * The page's files, compiled in: the table cmake/embed_ui.cmake generates
 * from apps/web/ui/ at build time (see the comment at its top for how the
 * page is written), and the routes that serve it (ui.c).
 */
#ifndef WEB_ASSETS_H
#define WEB_ASSETS_H

#include <stddef.h>

typedef struct web_asset {
	const char *path; /* relative to apps/web/ui/, e.g. "app.js" */
	const char *type; /* the Content-Type */
	const unsigned char *data;
	size_t size;
	const char *hash; /* first 12 hex digits of the SHA-256 of data: the ETag */
} web_asset;

extern const web_asset web_assets[];
extern const size_t web_assets_count;
extern const size_t web_assets_total; /* the sum of the sizes */
/* The hash over all the files: the assets are served under /ui/<build>/. */
extern const char web_assets_build[];

/* The asset at `path` (relative, exact), or NULL. */
const web_asset *web_asset_find(const char *path);

#endif
