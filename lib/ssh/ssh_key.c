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
	free(info);
	return BG_OK;
}

int bg_ssh_key_public(char **line_out, const bg_secret *key, const char *comment)
{
	bg_ssh_key_info *info;
	bg_buf b = BG_BUF_INIT;
	int rc;

	if (!line_out)
		return bg_error_set(BG_EINVAL, "bg_ssh_key_public: line_out is NULL");
	*line_out = NULL;
	if (comment && strpbrk(comment, "\r\n"))
		return bg_error_set(BG_EINVAL, "bg_ssh_key_public: the comment has a line break: give one line");
	if ((rc = detect(&info, key, "bg_ssh_key_public")) != BG_OK)
		return rc;
	if (!comment)
		comment = info->comment;
	rc = bg_buf_printf(&b, "%s ", info->type_name);
	if (rc == BG_OK)
		rc = bg_ssh_base64_encode(&b, info->pub, info->pub_len, 1);
	if (rc == BG_OK && *comment)
		rc = bg_buf_printf(&b, " %s", comment);
	free(info);
	if (rc != BG_OK) {
		bg_buf_free(&b);
		return rc;
	}
	*line_out = bg_buf_detach(&b);
	return *line_out ? BG_OK : bg_error_oom();
}
