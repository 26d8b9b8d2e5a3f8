/*
 * The DER builder: how libesim writes every ES10 request, eUICC response,
 * signed structure and bound profile package.
 *
 * Nested elements are written in place. Opening one writes its tag and a
 * one-byte length placeholder; closing it fills in the length, and only
 * when the content reached 128 bytes or more does it shift the content by
 * the 1..4 extra length bytes (one memmove per level). Short elements, the
 * vast majority in SGP.22, therefore cost no move at all. Errors are sticky
 * so that a long sequence of adders can be checked once at finish.
 */
#include <stdlib.h>
#include <string.h>

#include "esim/der.h"

void der_builder_init(der_builder *b)
{
	memset(b, 0, sizeof *b);
}

void der_builder_free(der_builder *b)
{
	esim_buf_free(&b->buf);
	der_builder_init(b);
}

void der_builder_wipe_free(der_builder *b)
{
	esim_buf_wipe_free(&b->buf);
	der_builder_init(b);
}

const uint8_t *der_builder_data(const der_builder *b)
{
	return b->buf.data;
}

size_t der_builder_len(const der_builder *b)
{
	return b->buf.len;
}

static esim_err fail(der_builder *b, esim_err err)
{
	if (b->err == ESIM_OK)
		b->err = err;
	return b->err;
}

static esim_err append(der_builder *b, const void *p, size_t n)
{
	if (b->err != ESIM_OK)
		return b->err;
	esim_err err = esim_buf_append(&b->buf, p, n);
	return err == ESIM_OK ? ESIM_OK : fail(b, err);
}

static esim_err put_tag(der_builder *b, uint32_t tag)
{
	if (b->err != ESIM_OK)
		return b->err;
	if (!der_tag_valid(tag))
		return fail(b, ESIM_E_ARG);
	uint8_t enc[4];
	size_t n = der_tag_len(tag);
	for (size_t i = 0; i < n; i++)
		enc[i] = (uint8_t)(tag >> (8 * (n - 1 - i)));
	return append(b, enc, n);
}

/* Minimal length encoding into out (up to 5 bytes); returns its size. */
static size_t encode_length(size_t len, uint8_t out[5])
{
	if (len < 0x80) {
		out[0] = (uint8_t)len;
		return 1;
	}
	size_t n = 0;
	for (size_t v = len; v > 0; v >>= 8)
		n++;
	out[0] = (uint8_t)(0x80 | n);
	for (size_t i = 0; i < n; i++)
		out[1 + i] = (uint8_t)(len >> (8 * (n - 1 - i)));
	return 1 + n;
}

esim_err der_add_tlv(der_builder *b, uint32_t tag, const void *value, size_t len)
{
	uint8_t hdr[5];
	if (len > 0xFFFFFFFFu)
		return fail(b, ESIM_E_TOO_LARGE);
	if (value == NULL && len > 0)
		return fail(b, ESIM_E_ARG);
	put_tag(b, tag);
	append(b, hdr, encode_length(len, hdr));
	return append(b, value, len);
}

esim_err der_add_raw(der_builder *b, const void *bytes, size_t len)
{
	if (bytes == NULL && len > 0)
		return fail(b, ESIM_E_ARG);
	return append(b, bytes, len);
}

esim_err der_builder_open(der_builder *b, uint32_t tag)
{
	if (b->err != ESIM_OK)
		return b->err;
	if (b->depth >= DER_BUILDER_MAX_DEPTH)
		return fail(b, ESIM_E_DER_TOO_DEEP);
	uint8_t placeholder = 0;
	put_tag(b, tag);
	esim_err err = append(b, &placeholder, 1);
	if (err != ESIM_OK)
		return err;
	b->open[b->depth++] = b->buf.len;
	return ESIM_OK;
}

esim_err der_builder_close(der_builder *b)
{
	if (b->err != ESIM_OK)
		return b->err;
	if (b->depth == 0)
		return fail(b, ESIM_E_DER_BUILDER_STATE);
	size_t start = b->open[--b->depth];
	size_t clen = b->buf.len - start;
	if (clen > 0xFFFFFFFFu)
		return fail(b, ESIM_E_TOO_LARGE);
	uint8_t hdr[5];
	size_t n = encode_length(clen, hdr);
	if (n > 1) {
		esim_err err = esim_buf_reserve(&b->buf, n - 1);
		if (err != ESIM_OK)
			return fail(b, err);
		memmove(b->buf.data + start + n - 1, b->buf.data + start, clen);
		b->buf.len += n - 1;
	}
	memcpy(b->buf.data + start - 1, hdr, n);
	return ESIM_OK;
}

esim_err der_builder_finish(der_builder *b, uint8_t **out, size_t *out_len)
{
	if (b->err == ESIM_OK && b->depth != 0)
		fail(b, ESIM_E_DER_BUILDER_STATE);
	if (b->err == ESIM_OK && b->buf.data == NULL) {
		b->buf.data = malloc(1);
		if (b->buf.data == NULL)
			fail(b, ESIM_E_NOMEM);
		b->buf.cap = b->buf.data ? 1 : 0;
	}
	esim_err err = b->err;
	if (err != ESIM_OK) {
		der_builder_free(b);
		return err;
	}
	*out = b->buf.data;
	*out_len = b->buf.len;
	der_builder_init(b);
	return ESIM_OK;
}

/* --- typed adders -------------------------------------------------------------------- */

static uint32_t tag_or(uint32_t tag, uint32_t dflt)
{
	return tag == DER_TAG_DEFAULT ? dflt : tag;
}

/* Minimal two's complement of v; returns the byte count, bytes at the end of
 * out[9]. */
static size_t int64_bytes(int64_t v, uint8_t out[9])
{
	uint64_t u = (uint64_t)v;
	size_t n = 8;
	for (size_t i = 0; i < 8; i++)
		out[1 + i] = (uint8_t)(u >> (8 * (7 - i)));
	/* Drop a leading byte while it only repeats the sign of the next. */
	while (n > 1) {
		uint8_t lead = out[9 - n], next = out[10 - n];
		if ((lead == 0x00 && !(next & 0x80)) || (lead == 0xFF && (next & 0x80)))
			n--;
		else
			break;
	}
	return n;
}

esim_err der_add_int64(der_builder *b, uint32_t tag, int64_t v)
{
	uint8_t enc[9];
	size_t n = int64_bytes(v, enc);
	return der_add_tlv(b, tag_or(tag, DER_TAG_INTEGER), enc + 9 - n, n);
}

esim_err der_add_uint64(der_builder *b, uint32_t tag, uint64_t v)
{
	uint8_t mag[8];
	for (size_t i = 0; i < 8; i++)
		mag[i] = (uint8_t)(v >> (8 * (7 - i)));
	return der_add_big_unsigned(b, tag, mag, sizeof mag);
}

esim_err der_add_big_unsigned(der_builder *b, uint32_t tag, const uint8_t *mag, size_t len)
{
	if (mag == NULL && len > 0)
		return fail(b, ESIM_E_ARG);
	while (len > 0 && mag[0] == 0) {
		mag++;
		len--;
	}
	uint8_t hdr[6];
	uint8_t zero = 0;
	size_t content = len == 0 ? 1 : len + ((mag[0] & 0x80) ? 1 : 0);
	if (content > 0xFFFFFFFFu)
		return fail(b, ESIM_E_TOO_LARGE);
	put_tag(b, tag_or(tag, DER_TAG_INTEGER));
	append(b, hdr, encode_length(content, hdr));
	if (content > len)
		append(b, &zero, 1);
	return append(b, mag, len);
}

esim_err der_add_bool(der_builder *b, uint32_t tag, bool v)
{
	uint8_t byte = v ? 0xFF : 0x00;
	return der_add_tlv(b, tag_or(tag, DER_TAG_BOOLEAN), &byte, 1);
}

esim_err der_add_enumerated(der_builder *b, uint32_t tag, int64_t v)
{
	return der_add_int64(b, tag_or(tag, DER_TAG_ENUMERATED), v);
}

esim_err der_add_null(der_builder *b, uint32_t tag)
{
	return der_add_tlv(b, tag_or(tag, DER_TAG_NULL), NULL, 0);
}

esim_err der_add_octet_string(der_builder *b, uint32_t tag, const void *p, size_t len)
{
	return der_add_tlv(b, tag_or(tag, DER_TAG_OCTET_STRING), p, len);
}

esim_err der_add_bit_string(der_builder *b, uint32_t tag, const uint8_t *bytes, size_t len,
			    unsigned unused)
{
	if (bytes == NULL && len > 0)
		return fail(b, ESIM_E_ARG);
	if (unused > 7 || (unused > 0 && len == 0))
		return fail(b, ESIM_E_DER_BAD_UNUSED_BITS);
	if (unused > 0 && (bytes[len - 1] & ((1u << unused) - 1)) != 0)
		return fail(b, ESIM_E_DER_NONZERO_PADDING);
	if (len > 0xFFFFFFFEu)
		return fail(b, ESIM_E_TOO_LARGE);
	uint8_t hdr[5], u = (uint8_t)unused;
	put_tag(b, tag_or(tag, DER_TAG_BIT_STRING));
	append(b, hdr, encode_length(len + 1, hdr));
	append(b, &u, 1);
	return append(b, bytes, len);
}

esim_err der_add_bit_string_mask(der_builder *b, uint32_t tag, uint64_t mask)
{
	uint8_t bytes[8] = {0};
	size_t nbits = 0;
	for (size_t n = 0; n < 64; n++) {
		if (mask & ((uint64_t)1 << n)) {
			bytes[n / 8] |= (uint8_t)(0x80 >> (n % 8));
			nbits = n + 1;
		}
	}
	size_t len = (nbits + 7) / 8;
	return der_add_bit_string(b, tag, bytes, len, (unsigned)(len * 8 - nbits));
}

esim_err der_add_utf8(der_builder *b, uint32_t tag, const char *s, size_t len)
{
	if (s == NULL && len > 0)
		return fail(b, ESIM_E_ARG);
	if (!der_utf8_valid((const uint8_t *)s, len))
		return fail(b, ESIM_E_DER_BAD_UTF8);
	return der_add_tlv(b, tag_or(tag, DER_TAG_UTF8_STRING), s, len);
}

esim_err der_add_oid(der_builder *b, uint32_t tag, const char *dotted)
{
	if (b->err != ESIM_OK)
		return b->err;
	esim_buf content = ESIM_BUF_INIT;
	esim_err err = der_oid_from_text(dotted, &content);
	if (err == ESIM_OK)
		err = der_add_tlv(b, tag_or(tag, DER_TAG_OID), content.data, content.len);
	else
		fail(b, err);
	esim_buf_free(&content);
	return err;
}
