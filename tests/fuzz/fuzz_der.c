/*
 * Fuzz target for the der layer, the first code every untrusted SGP.22 byte
 * meets. Beyond "no crash": every element that parses is decoded with every
 * typed getter, and what parsed is re-encoded with the builder; for valid
 * DER the re-encoding must be the input byte for byte (abort() otherwise),
 * which is the property signature verification over received bytes and our
 * own encoders both rely on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esim/der.h"

static FILE *devnull;

static void must(int cond)
{
	if (!cond)
		abort();
}

/* b's bytes must equal want; b is freed. Builder errors are allowed only
 * when tolerated (e.g. deeper nesting than the builder supports). */
static void expect_bytes(der_builder *b, der_span want)
{
	uint8_t *out = NULL;
	size_t len = 0;
	esim_err err = der_builder_finish(b, &out, &len);
	must(err == ESIM_OK);
	must(len == want.len && (len == 0 || memcmp(out, want.p, len) == 0));
	free(out);
}

/* Decode a primitive with each typed getter; whatever decodes must encode
 * back to the same element. The getter on a cursor must agree with the
 * value decoder and leave the cursor alone on failure. */
static void check_typed(const der_element *e)
{
	der_span v = e->value;
	uint32_t tag = e->tag;
	der_builder b;
	der_cursor c, before;
	int64_t i64, i64b;
	uint64_t u64;
	der_span span;
	bool flag;

	/* tag 0 cannot be asked for by the typed helpers (it means "default") */
	if (tag == DER_TAG_DEFAULT)
		return;

	esim_err err = der_value_int64(v, &i64);
	c = before = der_cursor_of(e->tlv);
	must(der_get_int64(&c, tag, &i64b) == err);
	if (err == ESIM_OK) {
		must(i64 == i64b && der_cursor_empty(&c));
		der_builder_init(&b);
		der_add_int64(&b, tag, i64);
		expect_bytes(&b, e->tlv);
		der_builder_init(&b);
		der_add_enumerated(&b, tag, i64);
		expect_bytes(&b, e->tlv);
	} else {
		must(c.p == before.p && c.len == before.len);
	}
	must((der_value_enumerated(v, &i64b) == ESIM_OK) == (err == ESIM_OK));

	if (der_value_uint64(v, &u64) == ESIM_OK) {
		der_builder_init(&b);
		der_add_uint64(&b, tag, u64);
		expect_bytes(&b, e->tlv);
	}
	if (der_value_big_unsigned(v, &span) == ESIM_OK) {
		der_builder_init(&b);
		der_add_big_unsigned(&b, tag, span.p, span.len);
		expect_bytes(&b, e->tlv);
		uint8_t fixed[32];
		c = der_cursor_of(e->tlv);
		err = der_get_big_unsigned_fixed(&c, tag, fixed, sizeof fixed);
		must(err == (span.len <= 32 ? ESIM_OK : ESIM_E_DER_INTEGER_OVERFLOW));
	}

	if (der_value_bool(v, true, &flag) == ESIM_OK) {
		der_builder_init(&b);
		der_add_bool(&b, tag, flag);
		expect_bytes(&b, e->tlv);
	}
	c = der_cursor_of(e->tlv);
	must((der_get_bool(&c, tag, &flag) == ESIM_OK) == (v.len == 1));

	c = der_cursor_of(e->tlv);
	if (der_get_null(&c, tag) == ESIM_OK) {
		must(v.len == 0);
		der_builder_init(&b);
		der_add_null(&b, tag);
		expect_bytes(&b, e->tlv);
	}

	c = der_cursor_of(e->tlv);
	must(der_get_octet_string(&c, tag, &span) == ESIM_OK);
	must(span.p == v.p && span.len == v.len);

	der_bits bits;
	if (der_value_bit_string(v, &bits) == ESIM_OK) {
		must(bits.unused <= 7);
		der_builder_init(&b);
		der_add_bit_string(&b, tag, bits.bytes.p, bits.bytes.len, bits.unused);
		expect_bytes(&b, e->tlv);
		size_t count = der_bits_count(&bits);
		uint64_t mask;
		/* the named-bit form strips trailing zeros, so it reproduces
		 * only encodings that are already stripped */
		if (der_bits_to_mask(&bits, &mask) == ESIM_OK &&
		    (count == 0 || der_bits_test(&bits, count - 1))) {
			der_builder_init(&b);
			der_add_bit_string_mask(&b, tag, mask);
			expect_bytes(&b, e->tlv);
		}
	}

	c = der_cursor_of(e->tlv);
	if (der_get_utf8(&c, tag, &span) == ESIM_OK) {
		der_builder_init(&b);
		der_add_utf8(&b, tag, (const char *)span.p, span.len);
		expect_bytes(&b, e->tlv);
	}

	c = der_cursor_of(e->tlv);
	if (der_get_oid(&c, tag, &span) == ESIM_OK) {
		char text[512];
		err = der_oid_to_text(span, text, sizeof text);
		must(err == ESIM_OK || err == ESIM_E_BUF_SMALL || err == ESIM_E_UNSUPPORTED);
		if (err == ESIM_OK) {
			der_builder_init(&b);
			der_add_oid(&b, tag, text);
			expect_bytes(&b, e->tlv);
		}
	}
}

static esim_err visit(void *ctx, const der_element *e, unsigned depth, size_t offset)
{
	(void)ctx;
	(void)depth;
	(void)offset;
	must(e->tlv.len == e->header_len + e->value.len);
	must(e->value.p == e->tlv.p + e->header_len);
	if (!der_tag_is_constructed(e->tag))
		check_typed(e);
	return ESIM_OK;
}

/* Re-encode what the cursor holds; ESIM_E_DER_TOO_DEEP when it nests deeper
 * than the builder allows. */
static esim_err rebuild(der_cursor c, der_builder *b)
{
	while (!der_cursor_empty(&c)) {
		der_element e;
		esim_err err = der_get_any(&c, &e);
		must(err == ESIM_OK); /* the walk already accepted these bytes */
		if (der_tag_is_constructed(e.tag)) {
			if ((err = der_builder_open(b, e.tag)) != ESIM_OK)
				return err;
			if ((err = rebuild(der_cursor_of(e.value), b)) != ESIM_OK)
				return err;
			if ((err = der_builder_close(b)) != ESIM_OK)
				return err;
		} else if ((err = der_add_tlv(b, e.tag, e.value.p, e.value.len)) != ESIM_OK) {
			return err;
		}
	}
	return ESIM_OK;
}

/* Treat the input as dotted text too: what encodes must decode to itself. */
static void check_oid_text(const uint8_t *data, size_t size)
{
	if (size > 256)
		return;
	char text[257], back[1100];
	memcpy(text, data, size);
	text[size] = '\0';
	esim_buf enc = ESIM_BUF_INIT;
	if (der_oid_from_text(text, &enc) == ESIM_OK) {
		der_span s = {enc.data, enc.len};
		must(der_value_oid(s) == ESIM_OK);
		must(der_oid_to_text(s, back, sizeof back) == ESIM_OK);
		must(strcmp(back, text) == 0);
	}
	esim_buf_free(&enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (devnull == NULL && (devnull = fopen("/dev/null", "w")) == NULL)
		abort();

	size_t off = 0;
	esim_err walked = der_walk(data, size, 0, visit, NULL, &off);
	must(walked != ESIM_OK || off == 0);
	if (walked != ESIM_OK)
		must(off < size || size == 0);

	/* one dump per input (two were half the target's time): the SGP.22
	 * names, or the full SAIP form, chosen by the input's length */
	der_dump_opts o = {.names = DER_NAMES_SGP22};
	size_t dump_off = 0;
	if (size & 1) {
		o.full = true;
		o.names = DER_NAMES_SAIP;
		der_dump(devnull, data, size, &o, NULL);
	} else {
		must(der_dump(devnull, data, size, &o, &dump_off) == walked);
		if (walked != ESIM_OK)
			must(dump_off == off);
	}

	der_element e;
	der_cursor c, before;
	der_cursor_init(&c, data, size);
	before = c;
	if (der_get_any(&c, &e) != ESIM_OK)
		must(c.p == before.p && c.len == before.len);
	esim_err single = der_parse_single(data, size, &e);
	if (single == ESIM_OK)
		must(e.tlv.p == data && e.tlv.len == size);

	if (walked == ESIM_OK) {
		der_builder b;
		der_builder_init(&b);
		der_cursor all;
		der_cursor_init(&all, data, size);
		esim_err err = rebuild(all, &b);
		if (err == ESIM_OK) {
			der_span want = {data, size};
			expect_bytes(&b, want);
		} else {
			must(err == ESIM_E_DER_TOO_DEEP);
			der_builder_free(&b);
		}
	}

	check_oid_text(data, size);
	return 0;
}
