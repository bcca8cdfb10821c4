/* The public half of an OpenSSH private key, for the apps (authorized_keys
 * lines, `doctor`): read by ssh_util.c's detector, which the connection
 * code uses too, so that there is one reader of the format. */
#include "breakglass/ssh.h"

#include "core/buf.h"
#include "core/error.h"
#include "ssh_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* BG_OK when `info` holds a readable OpenSSH key with its public blob. */
static int readable(const bg_ssh_key_info *info)
{
	if (strcmp(info->format, "pem") == 0 || strcmp(info->format, "pkcs8") == 0)
		return bg_error_set(BG_EUNSUPPORTED, "the key is in the old PEM format: convert it with `ssh-keygen -p "
						     "-f FILE` (it writes the OpenSSH format)");
	if (strcmp(info->format, "openssh") != 0)
		return bg_error_set(BG_EINVAL, "not an OpenSSH private key (no '-----BEGIN OPENSSH PRIVATE KEY-----' "
					       "line): give the private key file, not the .pub");
	if (info->problem)
		return bg_error_set(BG_EINVAL, "%s: check the file with `ssh-keygen -y -f FILE`", info->problem);
	if (info->pub_len == 0)
		return bg_error_set(BG_ETOOBIG,
				    "the public key is over %d bytes: use an ed25519 key "
				    "(ssh-keygen -t ed25519)",
				    BG_SSH_PUB_MAX);
	return BG_OK;
}

/* Detect into a heap copy: the info holds the whole public blob. */
static int detect(bg_ssh_key_info **out, const bg_secret *key, const char *who)
{
	bg_ssh_key_info *info;
	int rc;

	*out = NULL;
	if (!key)
		return bg_error_set(BG_EINVAL, "%s: key is NULL", who);
	info = malloc(sizeof(*info));
	if (!info)
		return bg_error_oom();
	bg_ssh_key_detect(info, bg_secret_data(key), bg_secret_len(key));
	rc = readable(info);
	if (rc != BG_OK) {
		free(info);
		return rc;
	}
	*out = info;
	return BG_OK;
}

int bg_ssh_key_describe(bg_ssh_key_desc *out, const bg_secret *key)
{
	bg_ssh_key_info *info;
	int rc;

	if (!out)
		return bg_error_set(BG_EINVAL, "bg_ssh_key_describe: out is NULL");
	memset(out, 0, sizeof(*out));
	if ((rc = detect(&info, key, "bg_ssh_key_describe")) != BG_OK)
		return rc;
	snprintf(out->type, sizeof(out->type), "%s", info->type_name);
	snprintf(out->fingerprint, sizeof(out->fingerprint), "%s", info->fpr);
	snprintf(out->comment, sizeof(out->comment), "%s", info->comment);
	out->encrypted = info->encrypted;
	out->usable = bg_ssh_key_judge(info, out->reason, sizeof(out->reason)) == BG_OK;
	free(info);
	return BG_OK;
}

/* "TYPE BASE64[ COMMENT]" appended to b; `type_rule` refuses a key type
 * that cannot log in. */
static int public_line(bg_buf *b, const bg_secret *key, const char *comment, const char *who, int type_rule)
{
	bg_ssh_key_info *info;
	char reason[512];
	int rc;

	if (comment && strpbrk(comment, "\r\n"))
		return bg_error_set(BG_EINVAL, "%s: the comment has a line break: give one line", who);
	if ((rc = detect(&info, key, who)) != BG_OK)
		return rc;
	if (type_rule && (rc = bg_ssh_key_type_judge(info, reason, sizeof(reason))) != BG_OK) {
		rc = bg_error_set(rc, "the key (%s) %s", info->type_name[0] ? info->type_name : "?", reason);
		free(info);
		return rc;
	}
	if (!comment)
		comment = info->comment;
	rc = bg_buf_printf(b, "%s ", info->type_name);
	if (rc == BG_OK)
		rc = bg_ssh_base64_encode(b, info->pub, info->pub_len, 1);
	if (rc == BG_OK && *comment)
		rc = bg_buf_printf(b, " %s", comment);
	free(info);
	return rc;
}

static int detach(char **line_out, bg_buf *b, int rc)
{
	if (rc != BG_OK) {
		bg_buf_free(b);
		return rc;
	}
	*line_out = bg_buf_detach(b);
	return *line_out ? BG_OK : bg_error_oom();
}

int bg_ssh_key_public(char **line_out, const bg_secret *key, const char *comment)
{
	bg_buf b = BG_BUF_INIT;

	if (!line_out)
		return bg_error_set(BG_EINVAL, "bg_ssh_key_public: line_out is NULL");
	*line_out = NULL;
	return detach(line_out, &b, public_line(&b, key, comment, "bg_ssh_key_public", 0));
}

int bg_ssh_authorized_options_init(bg_ssh_authorized_options *opts, unsigned int version)
{
	static const bg_ssh_authorized_options def = BG_SSH_AUTHORIZED_OPTIONS_INIT;

	if (!opts)
		return bg_error_set(BG_EINVAL, "bg_ssh_authorized_options_init: opts is NULL");
	if (version != BG_SSH_AUTHORIZED_OPTIONS_VERSION)
		return bg_error_set(BG_EINVAL, "bg_ssh_authorized_options: unknown version %u (this library knows %d)",
				    version, BG_SSH_AUTHORIZED_OPTIONS_VERSION);
	*opts = def;
	return BG_OK;
}

/* The options part of the line: the restrictions sshd enforces. */
static int line_options(bg_buf *b, const bg_ssh_authorized_options *o)
{
	const char *cmd = o->command ? o->command : BG_PVE_COMMAND_DEFAULT;

	if (o->version != BG_SSH_AUTHORIZED_OPTIONS_VERSION)
		return bg_error_set(BG_EINVAL,
				    "bg_ssh_authorized_options: unknown version %u (initialise with "
				    "BG_SSH_AUTHORIZED_OPTIONS_INIT)",
				    o->version);
	if (!bg_ssh_from_valid(o->from))
		return bg_error_set(BG_EINVAL,
				    "from \"%.200s\": want addresses, CIDRs or patterns separated by commas (no "
				    "spaces or quotes): the address the connections come from",
				    o->from ? o->from : "");
	if (o->target && strcmp(o->target, "devvm") == 0)
		return bg_buf_printf(b, "from=\"%s\",no-port-forwarding,no-agent-forwarding,no-X11-forwarding ",
				     o->from);
	if (!o->target || strcmp(o->target, "pve") != 0)
		return bg_error_set(BG_EINVAL, "unknown target \"%.40s\" for an authorized_keys line (devvm or pve)",
				    o->target ? o->target : "(null)");
	if (!*cmd || strpbrk(cmd, "\"\\\r\n"))
		return bg_error_set(BG_EINVAL,
				    "the forced command \"%.200s\" is empty or has a quote, a backslash or a line "
				    "break: give the program and its options on one line",
				    cmd);
	return bg_buf_printf(b, "command=\"%s\",restrict,from=\"%s\" ", cmd, o->from);
}

int bg_ssh_authorized_key_line(char **line_out, const bg_secret *key, const bg_ssh_authorized_options *opts)
{
	bg_buf b = BG_BUF_INIT;
	int rc;

	if (!line_out || !opts)
		return bg_error_set(BG_EINVAL, "bg_ssh_authorized_key_line: line_out and opts are required");
	*line_out = NULL;
	rc = line_options(&b, opts);
	if (rc == BG_OK)
		rc = public_line(&b, key, opts->comment, "bg_ssh_authorized_key_line", 1);
	return detach(line_out, &b, rc);
}
