/*
 * Whole-file reads with a size cap: every file esimkit reads (profiles,
 * certificates, DER dumps) is untrusted input and is bounded before use.
 * Files that hold a secret (the SM-DP+'s key-encryption key, the operator's
 * data key) are also checked for who else could read them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "esim/util.h"

esim_err esim_read_file(const char *path, size_t max, uint8_t **out, size_t *out_len)
{
	int use_stdin = strcmp(path, "-") == 0;
	FILE *f = use_stdin ? stdin : fopen(path, "rb");
	if (f == NULL)
		return ESIM_E_IO;
	esim_buf b = ESIM_BUF_INIT;
	esim_err err = ESIM_OK;
	uint8_t chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (b.len + n > max) {
			err = ESIM_E_TOO_LARGE;
			break;
		}
		if ((err = esim_buf_append(&b, chunk, n)) != ESIM_OK)
			break;
	}
	if (err == ESIM_OK && ferror(f))
		err = ESIM_E_IO;
	if (!use_stdin)
		fclose(f);
	if (err != ESIM_OK) {
		esim_buf_free(&b);
		return err;
	}
	if (b.data == NULL && (b.data = malloc(1)) == NULL)
		return ESIM_E_NOMEM;
	*out = b.data;
	*out_len = b.len;
	return ESIM_OK;
}

esim_err esim_read_secret_file(const char *path, size_t max, uint8_t **out, size_t *out_len,
			       char *why, size_t why_len)
{
	if (!path || !out || !out_len || !why || why_len == 0)
		return ESIM_E_ARG;
	why[0] = '\0';
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, why_len, "%s: %s", path, strerror(errno));
		return ESIM_E_IO;
	}
	struct stat st;
	esim_err err = ESIM_E_SECRET_FILE;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		snprintf(why, why_len, "%s is not a regular file", path);
	else if (st.st_uid != geteuid())
		snprintf(why, why_len,
			 "%s is owned by uid %u, not by this user (uid %u): chown it to the"
			 " user that runs this service",
			 path, (unsigned)st.st_uid, (unsigned)geteuid());
	else if (st.st_mode & (S_IRWXG | S_IRWXO))
		snprintf(why, why_len,
			 "%s has mode %04o, open to group or others: run chmod 600 %s", path,
			 (unsigned)(st.st_mode & 07777), path);
	else
		err = ESIM_OK;
	esim_buf b = ESIM_BUF_INIT;
	if (err == ESIM_OK && (size_t)st.st_size > max) {
		snprintf(why, why_len, "%s is larger than %zu bytes", path, max);
		err = ESIM_E_TOO_LARGE;
	}
	if (err == ESIM_OK)
		err = esim_buf_reserve(&b, (size_t)st.st_size + 1);
	while (err == ESIM_OK) {
		ssize_t n = read(fd, b.data + b.len, b.cap - b.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(why, why_len, "%s: %s", path, strerror(errno));
			err = ESIM_E_IO;
		} else if (n == 0) {
			break;
		} else if ((b.len += (size_t)n) > max) {
			snprintf(why, why_len, "%s is larger than %zu bytes", path, max);
			err = ESIM_E_TOO_LARGE;
		} else if (b.len == b.cap) {
			err = esim_buf_reserve(&b, 64);
		}
	}
	close(fd);
	if (err != ESIM_OK) {
		esim_buf_wipe_free(&b);
		return err;
	}
	*out = b.data;
	*out_len = b.len;
	return ESIM_OK;
}
