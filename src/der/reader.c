/*
 * The TLV reader: a bounds-checked cursor over untrusted bytes (digest 2.1).
 *
 * Every ES10 response, ES9+ payload and bound profile package enters
 * libesim through these functions, so they are strict DER: minimal tags
 * and lengths, no indefinite form. Each getter parses into locals and only
 * moves the caller's cursor once everything checked out, which is what lets
 * message code try "is the next thing an A0 or an 81?" without bookkeeping.
 * Elements are spans into the input because SGP.22 signs the received bytes.
 */
#include <string.h>

#include "esim/der.h"

size_t der_tag_len(uint32_t tag)
{
	if (tag > 0xFFFFFFu)
		return 4;
	if (tag > 0xFFFFu)
		return 3;
	if (tag > 0xFFu)
		return 2;
	return 1;
}

uint8_t der_tag_first_byte(uint32_t tag)
{
	return (uint8_t)(tag >> (8 * (der_tag_len(tag) - 1)));
}

enum der_class der_tag_class(uint32_t tag)
{
	return (enum der_class)(der_tag_first_byte(tag) >> 6);
}

bool der_tag_is_constructed(uint32_t tag)
{
	return (der_tag_first_byte(tag) & 0x20) != 0;
}

uint32_t der_tag_number(uint32_t tag)
{
	size_t n = der_tag_len(tag);
	if (n == 1)
		return tag & 0x1F;
	uint32_t num = 0;
	for (size_t i = n - 1; i-- > 0;)
		num = num << 7 | ((tag >> (8 * i)) & 0x7F);
	return num;
}

/* Parse a tag from p[0..avail). The tag-specific errors come before the
 * truncation check of a later byte only where the bytes seen already prove
 * the tag bad. */
static esim_err parse_tag(const uint8_t *p, size_t avail, uint32_t *tag, size_t *used)
{
	if (avail == 0)
		return ESIM_E_DER_TRUNCATED_TAG;
	uint32_t t = p[0];
	if ((p[0] & 0x1F) != 0x1F) {
		*tag = t;
		*used = 1;
		return ESIM_OK;
	}
	size_t i = 1;
	for (;;) {
		if (i >= avail)
			return ESIM_E_DER_TRUNCATED_TAG;
		if (i >= DER_MAX_TAG_BYTES)
			return ESIM_E_DER_TAG_TOO_LONG;
		uint8_t b = p[i];
		/* A leading 0x80 would be a zero-valued base-128 digit. */
		if (i == 1 && b == 0x80)
			return ESIM_E_DER_NONMINIMAL_TAG;
		t = t << 8 | b;
		i++;
		if ((b & 0x80) == 0)
			break;
	}
	/* Numbers below 31 fit the one-byte form. */
	if (i == 2 && p[1] < 0x1F)
		return ESIM_E_DER_NONMINIMAL_TAG;
	*tag = t;
	*used = i;
	return ESIM_OK;
}

bool der_tag_valid(uint32_t tag)
{
	uint8_t enc[4];
	size_t n = der_tag_len(tag), used = 0;
	uint32_t back = 0;
	for (size_t i = 0; i < n; i++)
		enc[i] = (uint8_t)(tag >> (8 * (n - 1 - i)));
	return parse_tag(enc, n, &back, &used) == ESIM_OK && used == n && back == tag;
}

static esim_err parse_length(const uint8_t *p, size_t avail, size_t *len, size_t *used)
{
	if (avail == 0)
		return ESIM_E_DER_TRUNCATED_LENGTH;
	uint8_t b = p[0];
	if (b < 0x80) {
		*len = b;
		*used = 1;
		return ESIM_OK;
	}
	if (b == 0x80)
		return ESIM_E_DER_INDEFINITE_LENGTH;
	if (b == 0xFF)
		return ESIM_E_DER_RESERVED_LENGTH;
	size_t n = b & 0x7F;
	if (n > DER_MAX_LENGTH_BYTES)
		return ESIM_E_DER_LENGTH_TOO_LONG;
	if (avail < 1 + n)
		return ESIM_E_DER_TRUNCATED_LENGTH;
	if (p[1] == 0)
		return ESIM_E_DER_NONMINIMAL_LENGTH;
	size_t v = 0;
	for (size_t i = 1; i <= n; i++)
		v = v << 8 | p[i];
	if (v < 0x80)
		return ESIM_E_DER_NONMINIMAL_LENGTH;
	*len = v;
	*used = 1 + n;
	return ESIM_OK;
}

void der_cursor_init(der_cursor *c, const void *p, size_t len)
{
	c->p = p;
	c->len = p ? len : 0;
}

der_cursor der_cursor_of(der_span s)
{
	der_cursor c;
	der_cursor_init(&c, s.p, s.len);
	return c;
}

bool der_cursor_empty(const der_cursor *c)
{
	return c->len == 0;
}

esim_err der_expect_end(const der_cursor *c)
{
	return c->len == 0 ? ESIM_OK : ESIM_E_DER_TRAILING_DATA;
}

esim_err der_peek_tag(const der_cursor *c, uint32_t *tag)
{
	size_t used;
	return parse_tag(c->p, c->len, tag, &used);
}

/* Parse the element at the start of c without moving c. */
static esim_err peek_element(const der_cursor *c, der_element *e)
{
	uint32_t tag;
	size_t tlen, llen, vlen;
	esim_err err = parse_tag(c->p, c->len, &tag, &tlen);
	if (err != ESIM_OK)
		return err;
	err = parse_length(c->p + tlen, c->len - tlen, &vlen, &llen);
	if (err != ESIM_OK)
		return err;
	size_t hdr = tlen + llen;
	if (vlen > c->len - hdr)
		return ESIM_E_DER_OVERRUN;
	e->tag = tag;
	e->header_len = hdr;
	e->tlv.p = c->p;
	e->tlv.len = hdr + vlen;
	e->value.p = c->p + hdr;
	e->value.len = vlen;
	return ESIM_OK;
}

static void advance(der_cursor *c, const der_element *e)
{
	c->p += e->tlv.len;
	c->len -= e->tlv.len;
}

esim_err der_get_any(der_cursor *c, der_element *out)
{
	der_element e;
	esim_err err = peek_element(c, &e);
	if (err != ESIM_OK)
		return err;
	advance(c, &e);
	if (out)
		*out = e;
	return ESIM_OK;
}

/* The tag the caller wants with its constructed bit flipped. */
static uint32_t flip_constructed(uint32_t tag)
{
	return tag ^ ((uint32_t)0x20 << (8 * (der_tag_len(tag) - 1)));
}

static esim_err check_tag(uint32_t found, uint32_t want)
{
	if (found == want)
		return ESIM_OK;
	if (found == flip_constructed(want))
		return der_tag_is_constructed(want) ? ESIM_E_DER_CONSTRUCTED_EXPECTED
						    : ESIM_E_DER_PRIMITIVE_EXPECTED;
	return ESIM_E_DER_UNEXPECTED_TAG;
}

esim_err der_get_tlv(der_cursor *c, uint32_t tag, der_element *out)
{
	der_element e;
	esim_err err = peek_element(c, &e);
	if (err == ESIM_OK)
		err = check_tag(e.tag, tag);
	if (err != ESIM_OK)
		return err;
	advance(c, &e);
	if (out)
		*out = e;
	return ESIM_OK;
}

esim_err der_get_element(der_cursor *c, uint32_t tag, der_cursor *value)
{
	der_element e;
	esim_err err = der_get_tlv(c, tag, &e);
	if (err == ESIM_OK && value)
		*value = der_cursor_of(e.value);
	return err;
}

esim_err der_get_optional(der_cursor *c, uint32_t tag, bool *present, der_cursor *value)
{
	*present = false;
	if (c->len == 0)
		return ESIM_OK;
	der_element e;
	esim_err err = peek_element(c, &e);
	if (err != ESIM_OK)
		return err;
	if (e.tag != tag)
		return ESIM_OK;
	advance(c, &e);
	*present = true;
	if (value)
		*value = der_cursor_of(e.value);
	return ESIM_OK;
}

esim_err der_get_sequence(der_cursor *c, uint32_t tag, der_cursor *children)
{
	if (tag == DER_TAG_DEFAULT)
		tag = DER_TAG_SEQUENCE;
	if (!der_tag_is_constructed(tag))
		return ESIM_E_ARG;
	return der_get_element(c, tag, children);
}

bool der_next_child(der_cursor *children, der_element *out, esim_err *err)
{
	*err = ESIM_OK;
	if (children->len == 0)
		return false;
	*err = der_get_any(children, out);
	return *err == ESIM_OK;
}

esim_err der_parse_single(const void *p, size_t len, der_element *out)
{
	der_cursor c;
	der_element e;
	der_cursor_init(&c, p, len);
	esim_err err = der_get_any(&c, &e);
	if (err == ESIM_OK)
		err = der_expect_end(&c);
	if (err == ESIM_OK && out)
		*out = e;
	return err;
}

/* --- walking ------------------------------------------------------------------ */

struct walk {
	const uint8_t *base;
	unsigned max_depth;
	der_walk_fn fn;
	void *ctx;
	size_t err_offset;
};

static esim_err walk_level(struct walk *w, der_cursor c, unsigned depth)
{
	while (c.len > 0) {
		der_element e;
		size_t off = (size_t)(c.p - w->base);
		esim_err err = der_get_any(&c, &e);
		bool descend = err == ESIM_OK && der_tag_is_constructed(e.tag) && e.value.len > 0;
		if (err == ESIM_OK && w->fn)
			err = w->fn(w->ctx, &e, depth, off);
		if (err == ESIM_OK && descend && depth + 1 >= w->max_depth)
			err = ESIM_E_DER_TOO_DEEP;
		if (err != ESIM_OK) {
			w->err_offset = off;
			return err;
		}
		/* Recursion is bounded by max_depth <= DER_MAX_DEPTH_LIMIT. */
		if (descend && (err = walk_level(w, der_cursor_of(e.value), depth + 1)) != ESIM_OK)
			return err;
	}
	return ESIM_OK;
}

esim_err der_walk(const uint8_t *p, size_t len, unsigned max_depth, der_walk_fn fn, void *ctx,
		  size_t *err_offset)
{
	if (max_depth == 0)
		max_depth = DER_DEFAULT_MAX_DEPTH;
	if (max_depth > DER_MAX_DEPTH_LIMIT || (p == NULL && len > 0))
		return ESIM_E_ARG;
	struct walk w = {p, max_depth, fn, ctx, 0};
	der_cursor c;
	der_cursor_init(&c, p, len);
	esim_err err = walk_level(&w, c, 0);
	if (err != ESIM_OK && err_offset)
		*err_offset = w.err_offset;
	return err;
}
