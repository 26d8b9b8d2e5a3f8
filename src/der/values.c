/*
 * Typed values on top of the reader: INTEGER, BOOLEAN, ENUMERATED, NULL,
 * OCTET STRING, BIT STRING, UTF8String (digest 2.1).
 *
 * SGP.22 is AUTOMATIC TAGS, so most of its values arrive under implicit
 * context tags (80, 81, ...): every getter takes the tag to expect and only
 * the value rules come from the type. Each rule that DER makes strict is
 * checked with its own error, so that a peer's encoding bug is named
 * precisely; the one leniency (any non-zero BOOLEAN is true) is the one the
 * digest requires.
 */
#include <string.h>

#include "esim/der.h"

/* Fetch the next element with tag (default dflt) as a primitive, without
 * moving c: the caller commits only after decoding the value. */
static esim_err peek_primitive(const der_cursor *c, uint32_t tag, uint32_t dflt, der_element *e)
{
	der_cursor tmp = *c;
	if (tag == DER_TAG_DEFAULT)
		tag = dflt;
	if (der_tag_is_constructed(tag))
		return ESIM_E_ARG;
	return der_get_tlv(&tmp, tag, e);
}

static void commit(der_cursor *c, const der_element *e)
{
	c->p += e->tlv.len;
	c->len -= e->tlv.len;
}

/* --- INTEGER ------------------------------------------------------------------ */

static esim_err check_integer(der_span v)
{
	if (v.len == 0)
		return ESIM_E_DER_EMPTY_INTEGER;
	if (v.len >= 2 &&
	    ((v.p[0] == 0x00 && (v.p[1] & 0x80) == 0) || (v.p[0] == 0xFF && (v.p[1] & 0x80) != 0)))
		return ESIM_E_DER_NONMINIMAL_INTEGER;
	return ESIM_OK;
}

esim_err der_value_int64(der_span v, int64_t *out)
{
	esim_err err = check_integer(v);
	if (err != ESIM_OK)
		return err;
	if (v.len > 8)
		return ESIM_E_DER_INTEGER_OVERFLOW;
	/* Sign-extend through uint64_t so no signed shift is ever negative. */
	uint64_t u = (v.p[0] & 0x80) ? UINT64_MAX : 0;
	for (size_t i = 0; i < v.len; i++)
		u = u << 8 | v.p[i];
	*out = (u > (uint64_t)INT64_MAX) ? -(int64_t)(~u) - 1 : (int64_t)u;
	return ESIM_OK;
}

esim_err der_value_uint64(der_span v, uint64_t *out)
{
	esim_err err = check_integer(v);
	if (err != ESIM_OK)
		return err;
	if (v.p[0] & 0x80)
		return ESIM_E_DER_NEGATIVE_INTEGER;
	size_t skip = v.p[0] == 0 ? 1 : 0;
	if (v.len - skip > 8)
		return ESIM_E_DER_INTEGER_OVERFLOW;
	uint64_t u = 0;
	for (size_t i = skip; i < v.len; i++)
		u = u << 8 | v.p[i];
	*out = u;
	return ESIM_OK;
}

esim_err der_value_big_unsigned(der_span v, der_span *magnitude)
{
	esim_err err = check_integer(v);
	if (err != ESIM_OK)
		return err;
	if (v.p[0] & 0x80)
		return ESIM_E_DER_NEGATIVE_INTEGER;
	size_t skip = v.p[0] == 0 ? 1 : 0;
	magnitude->p = v.p + skip;
	magnitude->len = v.len - skip;
	return ESIM_OK;
}

esim_err der_get_int64(der_cursor *c, uint32_t tag, int64_t *out)
{
	der_element e;
	int64_t v;
	esim_err err = peek_primitive(c, tag, DER_TAG_INTEGER, &e);
	if (err == ESIM_OK)
		err = der_value_int64(e.value, &v);
	if (err != ESIM_OK)
		return err;
	commit(c, &e);
	*out = v;
	return ESIM_OK;
}

esim_err der_get_uint64(der_cursor *c, uint32_t tag, uint64_t *out)
{
	der_element e;
	uint64_t v;
	esim_err err = peek_primitive(c, tag, DER_TAG_INTEGER, &e);
	if (err == ESIM_OK)
		err = der_value_uint64(e.value, &v);
	if (err != ESIM_OK)
		return err;
	commit(c, &e);
	*out = v;
	return ESIM_OK;
}

esim_err der_get_big_unsigned(der_cursor *c, uint32_t tag, der_span *magnitude)
{
	der_element e;
	der_span m;
	esim_err err = peek_primitive(c, tag, DER_TAG_INTEGER, &e);
	if (err == ESIM_OK)
		err = der_value_big_unsigned(e.value, &m);
	if (err != ESIM_OK)
		return err;
	commit(c, &e);
	*magnitude = m;
	return ESIM_OK;
}

esim_err der_get_big_unsigned_fixed(der_cursor *c, uint32_t tag, uint8_t *out, size_t out_len)
{
	der_element e;
	der_span m;
	esim_err err = peek_primitive(c, tag, DER_TAG_INTEGER, &e);
	if (err == ESIM_OK)
		err = der_value_big_unsigned(e.value, &m);
	if (err == ESIM_OK && m.len > out_len)
		err = ESIM_E_DER_INTEGER_OVERFLOW;
	if (err != ESIM_OK)
		return err;
	commit(c, &e);
	memset(out, 0, out_len - m.len);
	if (m.len)
		memcpy(out + (out_len - m.len), m.p, m.len);
	return ESIM_OK;
}

/* --- BOOLEAN, ENUMERATED, NULL, OCTET STRING ------------------------------------ */

esim_err der_value_bool(der_span v, bool strict, bool *out)
{
	if (v.len != 1)
		return ESIM_E_DER_BAD_BOOLEAN;
	if (strict && v.p[0] != 0x00 && v.p[0] != 0xFF)
		return ESIM_E_DER_BAD_BOOLEAN;
	*out = v.p[0] != 0;
	return ESIM_OK;
}

static esim_err get_bool(der_cursor *c, uint32_t tag, bool strict, bool *out)
{
	der_element e;
	bool v;
	esim_err err = peek_primitive(c, tag, DER_TAG_BOOLEAN, &e);
	if (err == ESIM_OK)
		err = der_value_bool(e.value, strict, &v);
	if (err != ESIM_OK)
		return err;
	commit(c, &e);
	*out = v;
	return ESIM_OK;
}

esim_err der_get_bool(der_cursor *c, uint32_t tag, bool *out)
{
	return get_bool(c, tag, false, out);
}

esim_err der_get_bool_strict(der_cursor *c, uint32_t tag, bool *out)
{
	return get_bool(c, tag, true, out);
}

esim_err der_value_enumerated(der_span v, int64_t *out)
{
	return der_value_int64(v, out) == ESIM_OK ? ESIM_OK : ESIM_E_DER_BAD_ENUMERATED;
}

esim_err der_get_enumerated(der_cursor *c, uint32_t tag, int64_t *out)
{
	der_element e;
	int64_t v;
	esim_err err = peek_primitive(c, tag, DER_TAG_ENUMERATED, &e);
	if (err == ESIM_OK)
		err = der_value_enumerated(e.value, &v);
	if (err != ESIM_OK)
		return err;
	commit(c, &e);
	*out = v;
	return ESIM_OK;
}

esim_err der_get_null(der_cursor *c, uint32_t tag)
{
	der_element e;
	esim_err err = peek_primitive(c, tag, DER_TAG_NULL, &e);
	if (err == ESIM_OK && e.value.len != 0)
		err = ESIM_E_DER_BAD_NULL;
	if (err != ESIM_OK)
		return err;
	commit(c, &e);
	return ESIM_OK;
}

esim_err der_get_octet_string(der_cursor *c, uint32_t tag, der_span *out)
{
	der_element e;
	esim_err err = peek_primitive(c, tag, DER_TAG_OCTET_STRING, &e);
	if (err != ESIM_OK)
		return err;
	commit(c, &e);
	*out = e.value;
	return ESIM_OK;
}

/* --- BIT STRING ------------------------------------------------------------------- */

esim_err der_value_bit_string(der_span v, der_bits *out)
{
	if (v.len == 0)
		return ESIM_E_DER_EMPTY_BITSTRING;
	unsigned unused = v.p[0];
	if (unused > 7 || (unused > 0 && v.len == 1))
		return ESIM_E_DER_BAD_UNUSED_BITS;
	if (unused > 0 && (v.p[v.len - 1] & ((1u << unused) - 1)) != 0)
		return ESIM_E_DER_NONZERO_PADDING;
	out->bytes.p = v.p + 1;
	out->bytes.len = v.len - 1;
	out->unused = unused;
	return ESIM_OK;
}

esim_err der_get_bit_string(der_cursor *c, uint32_t tag, der_bits *out)
{
	der_element e;
	der_bits bits;
	esim_err err = peek_primitive(c, tag, DER_TAG_BIT_STRING, &e);
	if (err == ESIM_OK)
		err = der_value_bit_string(e.value, &bits);
	if (err != ESIM_OK)
		return err;
	commit(c, &e);
	*out = bits;
	return ESIM_OK;
}

size_t der_bits_count(const der_bits *b)
{
	return b->bytes.len == 0 ? 0 : b->bytes.len * 8 - b->unused;
}

bool der_bits_test(const der_bits *b, size_t n)
{
	if (n >= der_bits_count(b))
		return false;
	return (b->bytes.p[n / 8] >> (7 - n % 8)) & 1;
}

esim_err der_bits_to_mask(const der_bits *b, uint64_t *mask)
{
	uint64_t m = 0;
	size_t count = der_bits_count(b);
	for (size_t n = 0; n < count; n++) {
		if (!der_bits_test(b, n))
			continue;
		if (n >= 64)
			return ESIM_E_TOO_LARGE;
		m |= (uint64_t)1 << n;
	}
	*mask = m;
	return ESIM_OK;
}

/* --- UTF8String --------------------------------------------------------------------- */

bool der_utf8_valid(const uint8_t *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t b = p[i];
		size_t more;
		/* Bounds of the first continuation byte rule out overlong forms,
		 * surrogates (ED A0..BF) and code points past U+10FFFF (F4 90..). */
		uint8_t lo = 0x80, hi = 0xBF;
		if (b < 0x80) {
			i++;
			continue;
		} else if (b >= 0xC2 && b <= 0xDF) {
			more = 1;
		} else if (b >= 0xE0 && b <= 0xEF) {
			more = 2;
			if (b == 0xE0)
				lo = 0xA0;
			else if (b == 0xED)
				hi = 0x9F;
		} else if (b >= 0xF0 && b <= 0xF4) {
			more = 3;
			if (b == 0xF0)
				lo = 0x90;
			else if (b == 0xF4)
				hi = 0x8F;
		} else {
			return false;
		}
		if (n - i - 1 < more)
			return false;
		if (p[i + 1] < lo || p[i + 1] > hi)
			return false;
		for (size_t k = 2; k <= more; k++)
			if ((p[i + k] & 0xC0) != 0x80)
				return false;
		i += 1 + more;
	}
	return true;
}

esim_err der_get_utf8(der_cursor *c, uint32_t tag, der_span *out)
{
	der_element e;
	esim_err err = peek_primitive(c, tag, DER_TAG_UTF8_STRING, &e);
	if (err == ESIM_OK && !der_utf8_valid(e.value.p, e.value.len))
		err = ESIM_E_DER_BAD_UTF8;
	if (err != ESIM_OK)
		return err;
	commit(c, &e);
	*out = e.value;
	return ESIM_OK;
}
