/*
 * libssh2, loaded when the first SSH connection is made.
 *
 * Like libcurl (lib/llm/curl_dl.c): linking libssh2 made every program
 * that loads libbreakglass map it and OpenSSL's libcrypto at exec, whether
 * it ever opens an SSH connection or not: measured on an idle
 * breakglass-web, 1.6 MiB of its RSS and ~1 ms of CPU before main(). So
 * libssh2 is not a DT_NEEDED of the library: these are the libssh2
 * functions lib/ssh calls, defined here with hidden visibility (they are
 * the library's own and never interpose the real ones for anyone else),
 * each forwarding to the function of the same name in libssh2.so.1,
 * which is dlopen()ed once, on the first call, by whichever thread gets
 * there first. The call sites stay the plain libssh2 API.
 *
 * If libssh2.so.1 cannot be loaded, libssh2_init() fails and bg_ssh_new()
 * reports why (bg_ssh2_error()). libssh2_exit() is here for the tests.
 */
#include <stdio.h>
#include <string.h>

#include "core/dl.h"
#include "ssh/ssh2_dl.h"

#define SSH2_SONAME "libssh2.so.1"

/* X(name, return type, parameters) of each function. */
#define SSH2_FUNCS(X)                                                                                                 \
	X(libssh2_agent_connect, int, (LIBSSH2_AGENT * agent))                                                        \
	X(libssh2_agent_disconnect, int, (LIBSSH2_AGENT * agent))                                                     \
	X(libssh2_agent_free, void, (LIBSSH2_AGENT * agent))                                                          \
	X(libssh2_agent_get_identity, int,                                                                            \
	  (LIBSSH2_AGENT * agent, struct libssh2_agent_publickey * *store, struct libssh2_agent_publickey * prev))    \
	X(libssh2_agent_init, LIBSSH2_AGENT *, (LIBSSH2_SESSION * session))                                           \
	X(libssh2_agent_list_identities, int, (LIBSSH2_AGENT * agent))                                                \
	X(libssh2_agent_userauth, int,                                                                                \
	  (LIBSSH2_AGENT * agent, const char *username, struct libssh2_agent_publickey *identity))                    \
	X(libssh2_channel_close, int, (LIBSSH2_CHANNEL * channel))                                                    \
	X(libssh2_channel_eof, int, (LIBSSH2_CHANNEL * channel))                                                      \
	X(libssh2_channel_free, int, (LIBSSH2_CHANNEL * channel))                                                     \
	X(libssh2_channel_get_exit_signal, int,                                                                       \
	  (LIBSSH2_CHANNEL * channel, char **exitsignal, size_t *exitsignal_len, char **errmsg, size_t *errmsg_len,   \
	   char **langtag, size_t *langtag_len))                                                                      \
	X(libssh2_channel_get_exit_status, int, (LIBSSH2_CHANNEL * channel))                                          \
	X(libssh2_channel_open_ex, LIBSSH2_CHANNEL *,                                                                 \
	  (LIBSSH2_SESSION * session, const char *channel_type, unsigned int channel_type_len,                        \
	   unsigned int window_size, unsigned int packet_size, const char *message, unsigned int message_len))        \
	X(libssh2_channel_process_startup, int,                                                                       \
	  (LIBSSH2_CHANNEL * channel, const char *request, unsigned int request_len, const char *message,             \
	   unsigned int message_len))                                                                                 \
	X(libssh2_channel_read_ex, ssize_t, (LIBSSH2_CHANNEL * channel, int stream_id, char *buf, size_t buflen))     \
	X(libssh2_channel_wait_closed, int, (LIBSSH2_CHANNEL * channel))                                              \
	X(libssh2_exit, void, (void))                                                                                 \
	X(libssh2_free, void, (LIBSSH2_SESSION * session, void *ptr))                                                 \
	X(libssh2_hostkey_hash, const char *, (LIBSSH2_SESSION * session, int hash_type))                             \
	X(libssh2_init, int, (int flags))                                                                             \
	X(libssh2_keepalive_config, void, (LIBSSH2_SESSION * session, int want_reply, unsigned interval))             \
	X(libssh2_keepalive_send, int, (LIBSSH2_SESSION * session, int *seconds_to_next))                             \
	X(libssh2_knownhost_check, int,                                                                               \
	  (LIBSSH2_KNOWNHOSTS * hosts, const char *host, const char *key, size_t keylen, int typemask,                \
	   struct libssh2_knownhost **knownhost))                                                                     \
	X(libssh2_knownhost_free, void, (LIBSSH2_KNOWNHOSTS * hosts))                                                 \
	X(libssh2_knownhost_get, int,                                                                                 \
	  (LIBSSH2_KNOWNHOSTS * hosts, struct libssh2_knownhost * *store, struct libssh2_knownhost * prev))           \
	X(libssh2_knownhost_init, LIBSSH2_KNOWNHOSTS *, (LIBSSH2_SESSION * session))                                  \
	X(libssh2_knownhost_readline, int, (LIBSSH2_KNOWNHOSTS * hosts, const char *line, size_t len, int type))      \
	X(libssh2_session_block_directions, int, (LIBSSH2_SESSION * session))                                         \
	X(libssh2_session_callback_set, void *, (LIBSSH2_SESSION * session, int cbtype, void *callback))              \
	X(libssh2_session_disconnect_ex, int,                                                                         \
	  (LIBSSH2_SESSION * session, int reason, const char *description, const char *lang))                         \
	X(libssh2_session_free, int, (LIBSSH2_SESSION * session))                                                     \
	X(libssh2_session_handshake, int, (LIBSSH2_SESSION * session, libssh2_socket_t sock))                         \
	X(libssh2_session_hostkey, const char *, (LIBSSH2_SESSION * session, size_t * len, int *type))                \
	X(libssh2_session_init_ex, LIBSSH2_SESSION *,                                                                 \
	  (LIBSSH2_ALLOC_FUNC((*my_alloc)), LIBSSH2_FREE_FUNC((*my_free)), LIBSSH2_REALLOC_FUNC((*my_realloc)),       \
	   void *abstract))                                                                                           \
	X(libssh2_session_last_errno, int, (LIBSSH2_SESSION * session))                                               \
	X(libssh2_session_last_error, int, (LIBSSH2_SESSION * session, char **errmsg, int *errmsg_len, int want_buf)) \
	X(libssh2_session_set_blocking, void, (LIBSSH2_SESSION * session, int blocking))                              \
	X(libssh2_userauth_publickey_frommemory, int,                                                                 \
	  (LIBSSH2_SESSION * session, const char *username, size_t username_len, const char *publickeyfiledata,       \
	   size_t publickeyfiledata_len, const char *privatekeyfiledata, size_t privatekeyfiledata_len,               \
	   const char *passphrase))

static struct {
#define SSH2_FN_PTR(name, ret, params) ret(*name##_fn) params;
	SSH2_FUNCS(SSH2_FN_PTR)
#undef SSH2_FN_PTR
} fn;

#define SSH2_FN_SYM(name, ret, params) {#name, (void **)&fn.name##_fn},
static const bg_dl_symbol symbols[] = {SSH2_FUNCS(SSH2_FN_SYM)};
#undef SSH2_FN_SYM

static bg_dl_library libssh2 = BG_DL_LIBRARY_INIT(SSH2_SONAME, "libssh2-1", symbols);

int bg_ssh2_load(void)
{
	return bg_dl_load(&libssh2);
}

const char *bg_ssh2_error(void)
{
	return bg_dl_error(&libssh2);
}

/* Each forwards to libssh2's; not loaded, it returns its own failure value
 * (never reached: libssh2_init() failed first). (name) in parentheses:
 * <libssh2.h> defines some names as macros too. */

int(libssh2_agent_connect)(LIBSSH2_AGENT *agent)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_agent_connect_fn(agent) : -1;
}

int(libssh2_agent_disconnect)(LIBSSH2_AGENT *agent)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_agent_disconnect_fn(agent) : -1;
}

void(libssh2_agent_free)(LIBSSH2_AGENT *agent)
{
	if (bg_ssh2_load() == 0)
		fn.libssh2_agent_free_fn(agent);
}

int(libssh2_agent_get_identity)(LIBSSH2_AGENT *agent, struct libssh2_agent_publickey **store,
				struct libssh2_agent_publickey *prev)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_agent_get_identity_fn(agent, store, prev) : -1;
}

LIBSSH2_AGENT *(libssh2_agent_init)(LIBSSH2_SESSION *session)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_agent_init_fn(session) : NULL;
}

int(libssh2_agent_list_identities)(LIBSSH2_AGENT *agent)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_agent_list_identities_fn(agent) : -1;
}

int(libssh2_agent_userauth)(LIBSSH2_AGENT *agent, const char *username, struct libssh2_agent_publickey *identity)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_agent_userauth_fn(agent, username, identity) : -1;
}

int(libssh2_channel_close)(LIBSSH2_CHANNEL *channel)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_channel_close_fn(channel) : -1;
}

int(libssh2_channel_eof)(LIBSSH2_CHANNEL *channel)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_channel_eof_fn(channel) : -1;
}

int(libssh2_channel_free)(LIBSSH2_CHANNEL *channel)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_channel_free_fn(channel) : -1;
}

int(libssh2_channel_get_exit_signal)(LIBSSH2_CHANNEL *channel, char **exitsignal, size_t *exitsignal_len, char **errmsg,
				     size_t *errmsg_len, char **langtag, size_t *langtag_len)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_channel_get_exit_signal_fn(channel, exitsignal, exitsignal_len, errmsg,
									   errmsg_len, langtag, langtag_len)
				   : -1;
}

int(libssh2_channel_get_exit_status)(LIBSSH2_CHANNEL *channel)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_channel_get_exit_status_fn(channel) : -1;
}

LIBSSH2_CHANNEL *(libssh2_channel_open_ex)(LIBSSH2_SESSION *session, const char *channel_type,
					   unsigned int channel_type_len, unsigned int window_size,
					   unsigned int packet_size, const char *message, unsigned int message_len)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_channel_open_ex_fn(session, channel_type, channel_type_len, window_size,
								   packet_size, message, message_len)
				   : NULL;
}

int(libssh2_channel_process_startup)(LIBSSH2_CHANNEL *channel, const char *request, unsigned int request_len,
				     const char *message, unsigned int message_len)
{
	return bg_ssh2_load() == 0
		       ? fn.libssh2_channel_process_startup_fn(channel, request, request_len, message, message_len)
		       : -1;
}

ssize_t(libssh2_channel_read_ex)(LIBSSH2_CHANNEL *channel, int stream_id, char *buf, size_t buflen)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_channel_read_ex_fn(channel, stream_id, buf, buflen) : -1;
}

int(libssh2_channel_wait_closed)(LIBSSH2_CHANNEL *channel)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_channel_wait_closed_fn(channel) : -1;
}

void(libssh2_exit)(void)
{
	if (bg_ssh2_load() == 0)
		fn.libssh2_exit_fn();
}

void(libssh2_free)(LIBSSH2_SESSION *session, void *ptr)
{
	if (bg_ssh2_load() == 0)
		fn.libssh2_free_fn(session, ptr);
}

const char *(libssh2_hostkey_hash)(LIBSSH2_SESSION *session, int hash_type)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_hostkey_hash_fn(session, hash_type) : NULL;
}

int(libssh2_init)(int flags)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_init_fn(flags) : -1;
}

void(libssh2_keepalive_config)(LIBSSH2_SESSION *session, int want_reply, unsigned interval)
{
	if (bg_ssh2_load() == 0)
		fn.libssh2_keepalive_config_fn(session, want_reply, interval);
}

int(libssh2_keepalive_send)(LIBSSH2_SESSION *session, int *seconds_to_next)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_keepalive_send_fn(session, seconds_to_next) : -1;
}

int(libssh2_knownhost_check)(LIBSSH2_KNOWNHOSTS *hosts, const char *host, const char *key, size_t keylen, int typemask,
			     struct libssh2_knownhost **knownhost)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_knownhost_check_fn(hosts, host, key, keylen, typemask, knownhost) : -1;
}

void(libssh2_knownhost_free)(LIBSSH2_KNOWNHOSTS *hosts)
{
	if (bg_ssh2_load() == 0)
		fn.libssh2_knownhost_free_fn(hosts);
}

int(libssh2_knownhost_get)(LIBSSH2_KNOWNHOSTS *hosts, struct libssh2_knownhost **store, struct libssh2_knownhost *prev)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_knownhost_get_fn(hosts, store, prev) : -1;
}

LIBSSH2_KNOWNHOSTS *(libssh2_knownhost_init)(LIBSSH2_SESSION *session)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_knownhost_init_fn(session) : NULL;
}

int(libssh2_knownhost_readline)(LIBSSH2_KNOWNHOSTS *hosts, const char *line, size_t len, int type)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_knownhost_readline_fn(hosts, line, len, type) : -1;
}

int(libssh2_session_block_directions)(LIBSSH2_SESSION *session)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_session_block_directions_fn(session) : -1;
}

void *(libssh2_session_callback_set)(LIBSSH2_SESSION *session, int cbtype, void *callback)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_session_callback_set_fn(session, cbtype, callback) : NULL;
}

int(libssh2_session_disconnect_ex)(LIBSSH2_SESSION *session, int reason, const char *description, const char *lang)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_session_disconnect_ex_fn(session, reason, description, lang) : -1;
}

int(libssh2_session_free)(LIBSSH2_SESSION *session)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_session_free_fn(session) : -1;
}

int(libssh2_session_handshake)(LIBSSH2_SESSION *session, libssh2_socket_t sock)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_session_handshake_fn(session, sock) : -1;
}

const char *(libssh2_session_hostkey)(LIBSSH2_SESSION *session, size_t *len, int *type)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_session_hostkey_fn(session, len, type) : NULL;
}

LIBSSH2_SESSION *(libssh2_session_init_ex)(LIBSSH2_ALLOC_FUNC((*my_alloc)), LIBSSH2_FREE_FUNC((*my_free)),
					   LIBSSH2_REALLOC_FUNC((*my_realloc)), void *abstract)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_session_init_ex_fn(my_alloc, my_free, my_realloc, abstract) : NULL;
}

int(libssh2_session_last_errno)(LIBSSH2_SESSION *session)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_session_last_errno_fn(session) : -1;
}

int(libssh2_session_last_error)(LIBSSH2_SESSION *session, char **errmsg, int *errmsg_len, int want_buf)
{
	return bg_ssh2_load() == 0 ? fn.libssh2_session_last_error_fn(session, errmsg, errmsg_len, want_buf) : -1;
}

void(libssh2_session_set_blocking)(LIBSSH2_SESSION *session, int blocking)
{
	if (bg_ssh2_load() == 0)
		fn.libssh2_session_set_blocking_fn(session, blocking);
}

int(libssh2_userauth_publickey_frommemory)(LIBSSH2_SESSION *session, const char *username, size_t username_len,
					   const char *publickeyfiledata, size_t publickeyfiledata_len,
					   const char *privatekeyfiledata, size_t privatekeyfiledata_len,
					   const char *passphrase)
{
	return bg_ssh2_load() == 0
		       ? fn.libssh2_userauth_publickey_frommemory_fn(session, username, username_len, publickeyfiledata,
								     publickeyfiledata_len, privatekeyfiledata,
								     privatekeyfiledata_len, passphrase)
		       : -1;
}
