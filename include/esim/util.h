/*
 * util: small helpers every layer uses — a growable byte buffer, hex text,
 * whole-file reads with a size cap, constant-time compare and wiping.
 *
 * Ownership: esim_buf owns its data; free it with esim_buf_free() (or
 * esim_buf_wipe_free() when it held a secret). Functions that return a
 * malloc'd pointer say so; the caller frees it with free().
 */
#ifndef ESIM_UTIL_H
#define ESIM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esim/err.h"

typedef struct esim_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
} esim_buf;

#define ESIM_BUF_INIT                                                                              \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

/* Make room for at least extra more bytes after len. Growing moves the
 * bytes to a new block and wipes the old one, so a secret never leaves a
 * copy behind in freed memory. */
esim_err esim_buf_reserve(esim_buf *b, size_t extra);
/* Append n bytes (n may be 0; p may be NULL when n is 0). */
esim_err esim_buf_append(esim_buf *b, const void *p, size_t n);
esim_err esim_buf_append_byte(esim_buf *b, uint8_t v);
/* Release the storage and reset to empty. */
void esim_buf_free(esim_buf *b);
/* Wipe the whole allocation, then release it. Use for secrets. */
void esim_buf_wipe_free(esim_buf *b);

/* Overwrite n bytes with zeros in a way the compiler cannot elide. */
void esim_wipe(void *p, size_t n);
/* 1 when the n bytes at a and b are equal, in time independent of content. */
int esim_ct_equal(const void *a, const void *b, size_t n);

/* Decode hex text (upper or lower case, even length, no separators).
 * On success *out is malloc'd (caller frees) and *out_len set. */
esim_err esim_hex_decode(const char *hex, uint8_t **out, size_t *out_len);
/* Decode hex text of exactly out_len bytes into out. */
esim_err esim_hex_decode_fixed(const char *hex, uint8_t *out, size_t out_len);
/* Encode n bytes as hex into a malloc'd NUL-terminated string (caller
 * frees); NULL on allocation failure. */
char *esim_hex_encode(const uint8_t *p, size_t n, bool upper);

/* Read a whole file ("-" reads stdin) of at most max bytes.
 * *out is malloc'd (caller frees). ESIM_E_TOO_LARGE past max. */
esim_err esim_read_file(const char *path, size_t max, uint8_t **out, size_t *out_len);
/* The same for a file that holds a secret (a key-encryption or data key):
 * it must be a regular file (no symbolic link followed) owned by this user
 * with no permission for group or others. ESIM_E_SECRET_FILE otherwise,
 * and ESIM_E_IO when it cannot be opened; in both cases why (why_len
 * bytes) says what is wrong and how to fix it, naming the path. The caller
 * wipes and frees *out (esim_wipe, free). */
esim_err esim_read_secret_file(const char *path, size_t max, uint8_t **out, size_t *out_len,
			       char *why, size_t why_len);

/* Base64 (RFC 4648 section 4, standard alphabet, with padding), as SGP.22's
 * JSON bindings carry DER. Encoding emits no line breaks: *out is a malloc'd
 * NUL-terminated string (caller frees). Decoding skips ASCII whitespace
 * (lpac and others wrap lines) and rejects every other character outside the
 * alphabet, misplaced or missing padding, and non-zero trailing bits, so that
 * one text decodes to exactly one byte string. *out is malloc'd (caller
 * frees; never NULL on success, even for empty input). ESIM_E_BASE64 on bad
 * text. */
esim_err esim_base64_encode(const uint8_t *p, size_t n, char **out);
esim_err esim_base64_decode(const char *text, size_t len, uint8_t **out, size_t *out_len);

/* The libesim release ("MAJOR.MINOR.PATCH", static storage), and the one
 * line every program's --version prints on stdout: "PROGRAM VERSION". */
const char *esim_version(void);
void esim_print_version(const char *program);

#endif
