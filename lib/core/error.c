#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BG_ERROR_MESSAGE_MAX 1024

/* One record per thread: no locking, and a message from one thread's
 * failure can never be read by another thread. */
static _Thread_local char error_message[BG_ERROR_MESSAGE_MAX];
static _Thread_local bg_error error_last = {BG_OK, ""};

const char *bg_strerror(int code)
{
	switch (code) {
	case BG_OK: return "success";
	case BG_ERROR: return "failure";
	case BG_ENOMEM: return "out of memory";
	case BG_EINVAL: return "invalid argument";
	case BG_ECONFIG: return "configuration error";
	case BG_ETIMEOUT: return "timed out";
	case BG_ECONNECT: return "could not connect";
	case BG_EAUTH: return "authentication failed";
	case BG_EHOSTKEY: return "host key mismatch";
	case BG_EPROTO: return "protocol error";
	case BG_EREJECTED: return "request rejected";
	case BG_EBUSY: return "busy";
	case BG_EFAILED: return "operation failed";
	case BG_ECANCELLED: return "cancelled";
	case BG_EIO: return "I/O error";
	case BG_ENOTFOUND: return "not found";
	case BG_EUNSUPPORTED: return "not supported";
	case BG_ETOOBIG: return "too big";
	case BG_EUNAVAILABLE: return "service unavailable";
	case BG_EDENIED: return "denied";
	case BG_ESTATE: return "wrong state";
	default: return "unknown error";
	}
}

void bg_free(void *p)
{
	free(p);
}

const bg_error *bg_error_last(void)
{
	error_last.message = error_message;
	return &error_last;
}

void bg_error_clear(void)
{
	error_last.code = BG_OK;
	error_message[0] = '\0';
}

int bg_error_set(int code, const char *fmt, ...)
{
	char msg[BG_ERROR_MESSAGE_MAX];
	va_list ap;

	/* Formatted aside, then copied: the arguments may hold the current
	 * message ("… (%s)", bg_error_last()->message), and vsnprintf into the
	 * buffer it reads from is undefined (it overwrote the message with
	 * its own prefix). */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memcpy(error_message, msg, sizeof(error_message));
	error_last.code = code;
	return code;
}

int bg_error_prefix(const char *fmt, ...)
{
	char old[BG_ERROR_MESSAGE_MAX];
	size_t used, rest;
	va_list ap;

	memcpy(old, error_message, sizeof(old));
	va_start(ap, fmt);
	vsnprintf(error_message, sizeof(error_message), fmt, ap);
	va_end(ap);
	used = strlen(error_message);
	rest = strlen(old);
	if (rest > sizeof(error_message) - 1 - used)
		rest = sizeof(error_message) - 1 - used;
	memcpy(error_message + used, old, rest);
	error_message[used + rest] = '\0';
	return error_last.code;
}

int bg_error_oom(void)
{
	return bg_error_set(BG_ENOMEM, "out of memory");
}
