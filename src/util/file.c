/*
 * Whole-file reads with a size cap: every file esimkit reads (profiles,
 * certificates, DER dumps) is untrusted input and is bounded before use.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
