/*
 * Growable byte buffer and the memory helpers that go with it: wiping
 * secrets and comparing MACs in constant time.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "esim/util.h"

esim_err esim_buf_reserve(esim_buf *b, size_t extra)
{
	if (extra > SIZE_MAX - b->len)
		return ESIM_E_TOO_LARGE;
	size_t need = b->len + extra;
	if (need <= b->cap)
		return ESIM_OK;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need) {
		if (cap > SIZE_MAX / 2) {
			cap = need;
			break;
		}
		cap *= 2;
	}
	/* Not realloc: it may move the bytes and leave the old copy in freed
	 * memory, and a buffer may hold secrets (a profile package's keys,
	 * session keys in a bound package being built). The old block is
	 * wiped before it is freed, so esim_buf_wipe_free leaves no copy. */
	uint8_t *p = malloc(cap);
	if (p == NULL)
		return ESIM_E_NOMEM;
	if (b->data != NULL) {
		memcpy(p, b->data, b->len);
		OPENSSL_cleanse(b->data, b->cap);
		free(b->data);
	}
	b->data = p;
	b->cap = cap;
	return ESIM_OK;
}

esim_err esim_buf_append(esim_buf *b, const void *p, size_t n)
{
	if (n == 0)
		return ESIM_OK;
	esim_err err = esim_buf_reserve(b, n);
	if (err != ESIM_OK)
		return err;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return ESIM_OK;
}

esim_err esim_buf_append_byte(esim_buf *b, uint8_t v)
{
	return esim_buf_append(b, &v, 1);
}

void esim_buf_free(esim_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void esim_buf_wipe_free(esim_buf *b)
{
	if (b->data != NULL)
		esim_wipe(b->data, b->cap);
	esim_buf_free(b);
}

void esim_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		OPENSSL_cleanse(p, n);
}

int esim_ct_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}
