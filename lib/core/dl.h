/*
 * Internal: a shared library loaded on first use, with dlopen().
 *
 * lib/llm (libcurl) and lib/ssh (libssh2) do not link their library: every
 * program that loads libbreakglass would map it, and what it pulls in, at
 * exec, whether it ever talks to an LLM or opens an SSH connection or not
 * (measured on an idle breakglass-web: 5.6 MiB of RSS and ~7 ms before
 * main()). Each defines the functions it calls with hidden visibility,
 * forwarding to pointers that bg_dl_load() fills, once, on the first call
 * from whichever thread gets there first.
 */
#ifndef BG_CORE_DL_H
#define BG_CORE_DL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

/* One function: its name and where its address goes (a function pointer,
 * seen as a void pointer: what dlsym() returns, as POSIX allows). */
typedef struct bg_dl_symbol {
	const char *name;
	void **slot;
} bg_dl_symbol;

typedef struct bg_dl_library {
	const char *soname;  /* "libcurl.so.4" */
	const char *package; /* the Debian package that has it, for the error */
	const bg_dl_symbol *symbols;
	size_t nsymbols;
	/* state */
	pthread_mutex_t mu;
	atomic_int state; /* 0 not tried, 1 loaded, -1 failed */
	char error[256];
} bg_dl_library;

#define BG_DL_LIBRARY_INIT(soname, package, symbols)                                                                  \
	{                                                                                                             \
		(soname), (package), (symbols), sizeof(symbols) / sizeof((symbols)[0]), PTHREAD_MUTEX_INITIALIZER, 0, \
		{                                                                                                     \
			0                                                                                             \
		}                                                                                                     \
	}

/* Load the library and every symbol, the first time: 0, or -1 (then
 * bg_dl_error() says why, naming the package to install). A failure is
 * not retried. The handle stays open for the life of the process. */
int bg_dl_load(bg_dl_library *lib);
/* "" when loaded, else why not (loads first). */
const char *bg_dl_error(bg_dl_library *lib);

#endif
