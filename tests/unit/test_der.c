/*
 * Tests of the der layer: known SGP.22 encodings (digest sections 2 and 4.2)
 * built and parsed, round trips of every type, a table of malformed inputs
 * each failing with its own error and leaving the cursor where it was, the
 * builder's nesting and misuse, the walker's depth limit, the dump, and the
 * `esim der dump` command's exit codes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "testutil.h"

#include "esim/der.h"

/* Hex with spaces allowed, for readability of the tables. Caller frees. */
static uint8_t *unhex(const char *spaced, size_t *len)
{
	char *clean = malloc(strlen(spaced) + 1);
	assert_non_null(clean);
	size_t n = 0;
	for (const char *p = spaced; *p; p++)
		if (*p != ' ')
			clean[n++] = *p;
	clean[n] = '\0';
	uint8_t *out = test_unhex(clean, len);
	free(clean);
	return out;
}

/* Finish b and compare the bytes with the expected hex. */
static void assert_built(der_builder *b, const char *hex)
{
	uint8_t *got = NULL;
	size_t got_len = 0, want_len = 0;
	assert_esim(ESIM_OK, der_builder_finish(b, &got, &got_len));
	uint8_t *want = unhex(hex, &want_len);
	if (got_len != want_len || memcmp(got, want, want_len) != 0) {
		char *g = esim_hex_encode(got, got_len, true);
		fail_msg("built %s, expected %s", g, hex);
	}
	free(got);
	free(want);
}

/* --- tags ------------------------------------------------------------------------- */

static void test_tag_helpers(void **state)
{
	(void)state;
	assert_int_equal(der_tag_len(0x30), 1);
	assert_int_equal(der_tag_len(0xBF2D), 2);
	assert_int_equal(der_tag_len(0x9F8122), 3);
	assert_int_equal(der_tag_first_byte(0xBF2D), 0xBF);
	assert_int_equal(der_tag_class(0x30), DER_CLASS_UNIVERSAL);
	assert_int_equal(der_tag_class(0x5A), DER_CLASS_APPLICATION);
	assert_int_equal(der_tag_class(0x7F21), DER_CLASS_APPLICATION);
	assert_int_equal(der_tag_class(0x80), DER_CLASS_CONTEXT);
	assert_int_equal(der_tag_class(0xE3), DER_CLASS_PRIVATE);
	assert_true(der_tag_is_constructed(0xBF2D));
	assert_true(der_tag_is_constructed(0x7F21));
	assert_false(der_tag_is_constructed(0x5F37));
	assert_false(der_tag_is_constructed(0x9F70));
	assert_int_equal(der_tag_number(0xBF2D), 45);
	assert_int_equal(der_tag_number(0x7F21), 33);
	assert_int_equal(der_tag_number(0x9F70), 112);
	assert_int_equal(der_tag_number(0x9F8122), 162);
	assert_int_equal(der_tag_number(0x30), 16);
	assert_true(der_tag_valid(0xBF3E));
	assert_true(der_tag_valid(0x1F1F));
	assert_false(der_tag_valid(0x1F1E));	 /* fits one byte */
	assert_false(der_tag_valid(0xBF802D));	 /* leading 0x80 */
	assert_false(der_tag_valid(0xBF81));	 /* ends with continuation */
	assert_false(der_tag_valid(0x3001));	 /* one-byte form then junk */
	assert_false(der_tag_valid(0xBF818181)); /* would need a fifth byte */
	assert_true(der_tag_valid(0xBF818101));
}

static void test_multibyte_tags_parse(void **state)
{
	(void)state;
	/* GetEID request and a 5F37/7F21/9F70 mix, digest 4.2 */
	size_t n;
	uint8_t *buf = unhex("BF3E 03 5C 01 5A  7F21 06 5F37 03 01 02 03  9F70 01 01", &n);
	der_cursor c, inner, sig;
	der_cursor_init(&c, buf, n);
	uint32_t tag;
	assert_esim(ESIM_OK, der_peek_tag(&c, &tag));
	assert_int_equal(tag, 0xBF3E);
	der_element e;
	assert_esim(ESIM_OK, der_get_tlv(&c, 0xBF3E, &e));
	assert_int_equal(e.header_len, 3);
	assert_int_equal(e.tlv.len, 6);
	assert_ptr_equal(e.tlv.p, buf);
	assert_ptr_equal(e.value.p, buf + 3);
	assert_esim(ESIM_OK, der_get_element(&c, 0x7F21, &inner));
	assert_esim(ESIM_OK, der_get_element(&inner, 0x5F37, &sig));
	assert_int_equal(sig.len, 3);
	assert_esim(ESIM_OK, der_expect_end(&inner));
	int64_t state_v;
	assert_esim(ESIM_OK, der_get_int64(&c, 0x9F70, &state_v));
	assert_int_equal(state_v, 1);
	assert_true(der_cursor_empty(&c));
	free(buf);

	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, 0xBF3E);
	uint8_t eid_tag = 0x5A;
	der_add_tlv(&b, 0x5C, &eid_tag, 1);
	der_builder_close(&b);
	der_builder_open(&b, 0x7F21);
	der_add_tlv(&b, 0x5F37, "\x01\x02\x03", 3);
	der_builder_close(&b);
	der_add_int64(&b, 0x9F70, 1);
	der_add_tlv(&b, 0xBF2D, NULL, 0);
	assert_built(&b, "BF3E 03 5C 01 5A  7F21 06 5F37 03 01 02 03  9F70 01 01  BF2D 00");
}

/* --- lengths ----------------------------------------------------------------------- */

static void test_lengths(void **state)
{
	(void)state;
	static const struct {
		size_t len;
		const char *hdr;
	} cases[] = {
	    {0, "04 00"},
	    {0x7F, "04 7F"},
	    {0x80, "04 81 80"},
	    {0xFF, "04 81 FF"},
	    {0x100, "04 82 01 00"},
	    {0xFFFF, "04 82 FF FF"},
	    {0x10000, "04 83 01 00 00"},
	    {0x1000000, "04 84 01 00 00 00"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t len = cases[i].len, hlen;
		uint8_t *value = malloc(len ? len : 1);
		assert_non_null(value);
		for (size_t k = 0; k < len; k++)
			value[k] = (uint8_t)(k * 7);
		uint8_t *hdr = unhex(cases[i].hdr, &hlen);

		/* direct adder and open/close must give the same bytes */
		der_builder b1, b2;
		der_builder_init(&b1);
		der_builder_init(&b2);
		assert_esim(ESIM_OK, der_add_octet_string(&b1, DER_TAG_DEFAULT, value, len));
		assert_esim(ESIM_OK, der_builder_open(&b2, 0x04));
		assert_esim(ESIM_OK, der_add_raw(&b2, value, len));
		assert_esim(ESIM_OK, der_builder_close(&b2));
		uint8_t *o1, *o2;
		size_t l1, l2;
		assert_esim(ESIM_OK, der_builder_finish(&b1, &o1, &l1));
		assert_esim(ESIM_OK, der_builder_finish(&b2, &o2, &l2));
		assert_int_equal(l1, hlen + len);
		assert_int_equal(l2, hlen + len);
		assert_memory_equal(o1, hdr, hlen);
		assert_memory_equal(o1, o2, l1);

		der_element e;
		assert_esim(ESIM_OK, der_parse_single(o1, l1, &e));
		assert_int_equal(e.tag, 0x04);
		assert_int_equal(e.header_len, hlen);
		assert_int_equal(e.value.len, len);
		if (len)
			assert_memory_equal(e.value.p, value, len);
		free(o1);
		free(o2);
		free(hdr);
		free(value);
	}
}

/* --- INTEGER ------------------------------------------------------------------------ */

static void test_integer_known(void **state)
{
	(void)state;
	static const struct {
		int64_t v;
		uint32_t tag;
		const char *hex;
	} cases[] = {
	    {0, 0, "02 01 00"},
	    {127, 0x80, "80 01 7F"},
	    {128, 0x80, "80 02 00 80"},
	    {255, 0, "02 02 00 FF"},
	    {256, 0, "02 02 01 00"},
	    {-1, 0, "02 01 FF"},
	    {-128, 0, "02 01 80"},
	    {-129, 0, "02 02 FF 7F"},
	    {32767, 0, "02 02 7F FF"},
	    {-32768, 0, "02 02 80 00"},
	    {INT64_MAX, 0, "02 08 7F FF FF FF FF FF FF FF"},
	    {INT64_MIN, 0, "02 08 80 00 00 00 00 00 00 00"},
	    {5, 0x9F70, "9F70 01 05"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		der_builder b;
		der_builder_init(&b);
		assert_esim(ESIM_OK, der_add_int64(&b, cases[i].tag, cases[i].v));
		assert_built(&b, cases[i].hex);

		size_t n;
		uint8_t *enc = unhex(cases[i].hex, &n);
		der_cursor c;
		int64_t v = 0;
		der_cursor_init(&c, enc, n);
		assert_esim(ESIM_OK, der_get_int64(&c, cases[i].tag, &v));
		assert_true(v == cases[i].v);
		assert_true(der_cursor_empty(&c));
		uint64_t u = 0;
		der_cursor_init(&c, enc, n);
		if (cases[i].v >= 0) {
			assert_esim(ESIM_OK, der_get_uint64(&c, cases[i].tag, &u));
			assert_true(u == (uint64_t)cases[i].v);
		} else {
			assert_esim(ESIM_E_DER_NEGATIVE_INTEGER,
				    der_get_uint64(&c, cases[i].tag, &u));
		}
		free(enc);
	}
}

static void test_integer_unsigned_and_big(void **state)
{
	(void)state;
	der_builder b;
	der_builder_init(&b);
	der_add_uint64(&b, 0, 0);
	der_add_uint64(&b, 0x80, 128);
	der_add_uint64(&b, 0, UINT64_MAX);
	der_add_uint64(&b, 0, (uint64_t)1 << 63);
	assert_built(&b, "02 01 00  80 02 00 80  02 09 00 FF FF FF FF FF FF FF FF"
			 "  02 09 00 80 00 00 00 00 00 00 00");

	size_t n;
	uint8_t *enc = unhex("02 09 00 FF FF FF FF FF FF FF FF", &n);
	der_cursor c;
	uint64_t u;
	int64_t s;
	der_cursor_init(&c, enc, n);
	assert_esim(ESIM_E_DER_INTEGER_OVERFLOW, der_get_int64(&c, 0, &s));
	assert_esim(ESIM_OK, der_get_uint64(&c, 0, &u));
	assert_true(u == UINT64_MAX);
	free(enc);

	/* ECDSA r with its sign byte, s short: both to 32 bytes */
	uint8_t r[32], s32[32];
	for (size_t i = 0; i < 32; i++)
		r[i] = (uint8_t)(0x80 + i);
	der_builder_init(&b);
	der_builder_open(&b, DER_TAG_SEQUENCE);
	der_add_big_unsigned(&b, 0, r, 32);
	uint8_t small[3] = {0x00, 0x00, 0x42};
	der_add_big_unsigned(&b, 0, small, 3);
	der_add_big_unsigned(&b, 0, NULL, 0);
	der_builder_close(&b);
	uint8_t *sig;
	size_t sig_len;
	assert_esim(ESIM_OK, der_builder_finish(&b, &sig, &sig_len));
	assert_int_equal(sig_len, 2 + 35 + 3 + 3);
	assert_int_equal(sig[2], 0x02);
	assert_int_equal(sig[3], 33);
	assert_int_equal(sig[4], 0x00);
	der_cursor_init(&c, sig, sig_len);
	der_cursor seq;
	assert_esim(ESIM_OK, der_get_sequence(&c, DER_TAG_DEFAULT, &seq));
	assert_esim(ESIM_OK, der_get_big_unsigned_fixed(&seq, 0, s32, 32));
	assert_memory_equal(s32, r, 32);
	der_span mag;
	der_cursor keep = seq;
	assert_esim(ESIM_OK, der_get_big_unsigned(&seq, 0, &mag));
	assert_int_equal(mag.len, 1);
	assert_int_equal(mag.p[0], 0x42);
	seq = keep;
	assert_esim(ESIM_OK, der_get_big_unsigned_fixed(&seq, 0, s32, 32));
	for (size_t i = 0; i < 31; i++)
		assert_int_equal(s32[i], 0);
	assert_int_equal(s32[31], 0x42);
	assert_esim(ESIM_OK, der_get_big_unsigned(&seq, 0, &mag));
	assert_int_equal(mag.len, 0); /* zero has an empty magnitude */
	assert_esim(ESIM_OK, der_expect_end(&seq));
	free(sig);
}

/* --- BOOLEAN, ENUMERATED, NULL, OCTET STRING ------------------------------------------------ */

static void test_bool_enum_null_octets(void **state)
{
	(void)state;
	der_builder b;
	der_builder_init(&b);
	der_add_bool(&b, 0, true);
	der_add_bool(&b, 0x81, false);
	der_add_enumerated(&b, 0, 3);
	der_add_enumerated(&b, 0x82, 127);
	der_add_null(&b, 0);
	der_add_null(&b, 0x80);
	der_add_octet_string(&b, 0, "\xF5\x41", 2);
	der_add_octet_string(&b, 0x80, NULL, 0);
	assert_built(&b, "01 01 FF 81 01 00 0A 01 03 82 01 7F 05 00 80 00 04 02 F5 41 80 00");

	size_t n;
	uint8_t *enc = unhex("01 01 FF 81 01 00 81 01 01 0A 01 03 82 01 7F 05 00 80 00 "
			     "04 02 F5 41 80 00",
			     &n);
	der_cursor c;
	bool v;
	int64_t e;
	der_span os;
	der_cursor_init(&c, enc, n);
	assert_esim(ESIM_OK, der_get_bool_strict(&c, 0, &v));
	assert_true(v);
	assert_esim(ESIM_OK, der_get_bool(&c, 0x81, &v));
	assert_false(v);
	/* 01 is not DER but the digest requires accepting any non-zero */
	der_cursor keep = c;
	assert_esim(ESIM_E_DER_BAD_BOOLEAN, der_get_bool_strict(&c, 0x81, &v));
	assert_ptr_equal(c.p, keep.p);
	assert_esim(ESIM_OK, der_get_bool(&c, 0x81, &v));
	assert_true(v);
	assert_esim(ESIM_OK, der_get_enumerated(&c, 0, &e));
	assert_int_equal(e, 3);
	assert_esim(ESIM_OK, der_get_enumerated(&c, 0x82, &e));
	assert_int_equal(e, 127);
	assert_esim(ESIM_OK, der_get_null(&c, 0));
	assert_esim(ESIM_OK, der_get_null(&c, 0x80));
	assert_esim(ESIM_OK, der_get_octet_string(&c, 0, &os));
	assert_int_equal(os.len, 2);
	assert_int_equal(os.p[0], 0xF5);
	assert_esim(ESIM_OK, der_get_octet_string(&c, 0x80, &os));
	assert_int_equal(os.len, 0);
	assert_true(der_cursor_empty(&c));
	free(enc);
}

/* --- BIT STRING ---------------------------------------------------------------------------- */

static void test_bit_string(void **state)
{
	(void)state;
	/* digest 2.1 and 4.2 examples */
	static const struct {
		uint64_t mask;
		uint32_t tag;
		const char *hex;
	} cases[] = {
	    {1u << 0, 0, "03 02 07 80"},
	    {1u << 1, 0x81, "81 02 06 40"},
	    {(1u << 1) | (1u << 2) | (1u << 3), 0x81, "81 02 04 70"},
	    {7, 0x82, "82 02 05 E0"},
	    {(1u << 0) | (1u << 3), 0x81, "81 02 04 90"},
	    {(1u << 0) | (1u << 3) | (1u << 4), 0x88, "88 02 03 98"},
	    {0, 0, "03 01 00"},
	    {1u << 8, 0, "03 03 07 00 80"},
	    {(uint64_t)1 << 63, 0, "03 09 00 00 00 00 00 00 00 00 01"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		der_builder b;
		der_builder_init(&b);
		assert_esim(ESIM_OK, der_add_bit_string_mask(&b, cases[i].tag, cases[i].mask));
		assert_built(&b, cases[i].hex);

		size_t n;
		uint8_t *enc = unhex(cases[i].hex, &n);
		der_cursor c;
		der_bits bits;
		uint64_t mask;
		der_cursor_init(&c, enc, n);
		assert_esim(ESIM_OK, der_get_bit_string(&c, cases[i].tag, &bits));
		assert_esim(ESIM_OK, der_bits_to_mask(&bits, &mask));
		assert_true(mask == cases[i].mask);
		for (size_t bit = 0; bit < 70; bit++)
			assert_int_equal(der_bits_test(&bits, bit),
					 bit < 64 && ((cases[i].mask >> bit) & 1));

		/* and back through the bytes + unused form */
		der_builder_init(&b);
		assert_esim(ESIM_OK, der_add_bit_string(&b, cases[i].tag, bits.bytes.p,
							bits.bytes.len, bits.unused));
		assert_built(&b, cases[i].hex);
		free(enc);
	}

	/* trailing zero bits not stripped: accepted (peers in the wild) */
	size_t n;
	uint8_t *enc = unhex("03 02 00 80 03 03 00 80 00", &n);
	der_cursor c;
	der_bits bits;
	der_cursor_init(&c, enc, n);
	assert_esim(ESIM_OK, der_get_bit_string(&c, 0, &bits));
	assert_int_equal(der_bits_count(&bits), 8);
	assert_true(der_bits_test(&bits, 0));
	assert_false(der_bits_test(&bits, 1));
	assert_esim(ESIM_OK, der_get_bit_string(&c, 0, &bits));
	assert_int_equal(der_bits_count(&bits), 16);
	free(enc);

	/* a bit past 63 cannot be a mask */
	enc = unhex("03 0A 07 00 00 00 00 00 00 00 00 80", &n);
	der_cursor_init(&c, enc, n);
	assert_esim(ESIM_OK, der_get_bit_string(&c, 0, &bits));
	uint64_t mask;
	assert_esim(ESIM_E_TOO_LARGE, der_bits_to_mask(&bits, &mask));
	assert_true(der_bits_test(&bits, 64));
	free(enc);
}

/* --- UTF8String ----------------------------------------------------------------------------- */

static void test_utf8(void **state)
{
	(void)state;
	static const char *const good[] = {
	    "",
	    "smdp.example.com",
	    ("Gr\xC3\xBC\xC3\x9F"
	     "e \xE2\x82\xAC"),
	    "\xF0\x9F\x93\xB1", /* U+1F4F1 */
	    "\xF4\x8F\xBF\xBF", /* U+10FFFF */
	    "\xED\x9F\xBF",	/* U+D7FF, just below the surrogates */
	    "\xEE\x80\x80",	/* U+E000, just above */
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		der_builder b;
		der_builder_init(&b);
		size_t len = strlen(good[i]);
		assert_esim(ESIM_OK, der_add_utf8(&b, 0x90, good[i], len));
		uint8_t *out;
		size_t out_len;
		assert_esim(ESIM_OK, der_builder_finish(&b, &out, &out_len));
		assert_int_equal(out_len, 2 + len);
		der_cursor c;
		der_span s;
		der_cursor_init(&c, out, out_len);
		assert_esim(ESIM_OK, der_get_utf8(&c, 0x90, &s));
		assert_int_equal(s.len, len);
		assert_memory_equal(s.p, good[i], len);
		free(out);
	}
	der_builder b;
	der_builder_init(&b);
	assert_esim(ESIM_E_DER_BAD_UTF8, der_add_utf8(&b, 0, "\xC0\xAF", 2));
	uint8_t *out;
	size_t out_len;
	assert_esim(ESIM_E_DER_BAD_UTF8, der_builder_finish(&b, &out, &out_len));
	assert_null(der_builder_data(&b));

	/* the SetNickname example of digest 4.2 */
	der_builder_init(&b);
	uint8_t iccid[10] = {0x98, 0x00, 0x10, 0x32, 0x54, 0x76, 0x98, 0x10, 0x32, 0x14};
	der_builder_open(&b, 0xBF29);
	der_add_octet_string(&b, 0x5A, iccid, sizeof iccid);
	der_add_utf8(&b, 0x90, "My line", 7);
	der_builder_close(&b);
	assert_built(&b, "BF29 15 5A 0A 98001032547698103214 90 07 4D79206C696E65");
}

/* --- OBJECT IDENTIFIER ----------------------------------------------------------------------- */

static void test_oid(void **state)
{
	(void)state;
	static const struct {
		const char *text, *hex;
	} cases[] = {
	    {"2.999.10", "06 03 88 37 0A"},
	    {"1.2.840.10045.3.1.7", "06 08 2A 86 48 CE 3D 03 01 07"},
	    {"1.3.36.3.3.2.8.1.1.7", "06 09 2B 24 03 03 02 08 01 01 07"},
	    {"2.23.143.1.2.1", "06 06 67 81 0F 01 02 01"},
	    {"2.23.146.1.2.1.0", "06 07 67 81 12 01 02 01 00"},
	    {"0.0", "06 01 00"},
	    {"0.39", "06 01 27"},
	    {"1.0", "06 01 28"},
	    {"2.40", "06 01 78"},
	    {"2.47", "06 01 7F"},
	    {"2.48", "06 02 81 00"},
	    {"1.2.18446744073709551615", "06 0B 2A 81 FF FF FF FF FF FF FF FF 7F"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		der_builder b;
		der_builder_init(&b);
		assert_esim(ESIM_OK, der_add_oid(&b, 0, cases[i].text));
		assert_built(&b, cases[i].hex);

		size_t n;
		uint8_t *enc = unhex(cases[i].hex, &n);
		der_cursor c;
		der_span content;
		der_cursor_init(&c, enc, n);
		assert_esim(ESIM_OK, der_get_oid(&c, 0, &content));
		char text[128];
		assert_esim(ESIM_OK, der_oid_to_text(content, text, sizeof text));
		assert_string_equal(text, cases[i].text);
		/* the documented worst case always suffices */
		char *tight = malloc(4 * content.len + 3);
		assert_esim(ESIM_OK, der_oid_to_text(content, tight, 4 * content.len + 3));
		free(tight);
		free(enc);
	}

	/* implicit tag: smdpOid in EuiccCancelSessionSigned is 81 */
	der_builder b;
	der_builder_init(&b);
	der_add_oid(&b, 0x81, "2.999.10");
	assert_built(&b, "81 03 88 37 0A");

	static const char *const bad_text[] = {
	    "",
	    "2",
	    "2.",
	    ".2.1",
	    "3.1",
	    "0.40",
	    "1.40",
	    "1..2",
	    "1.2.",
	    "1.02",
	    "1.2.a",
	    "1.2 ",
	    "1.2.18446744073709551616",
	    "-1.2",
	};
	for (size_t i = 0; i < sizeof bad_text / sizeof bad_text[0]; i++) {
		esim_buf out = ESIM_BUF_INIT;
		assert_esim(ESIM_E_ARG, der_oid_from_text(bad_text[i], &out));
		assert_int_equal(out.len, 0);
		esim_buf_free(&out);
	}

	char small[5];
	size_t n;
	uint8_t *enc = unhex("2A 86 48 CE 3D", &n);
	der_span s = {enc, n};
	assert_esim(ESIM_E_BUF_SMALL, der_oid_to_text(s, small, sizeof small));
	free(enc);
	/* an arc above UINT64_MAX is valid DER but cannot be shown */
	enc = unhex("2A 82 80 80 80 80 80 80 80 80 00", &n);
	s.p = enc;
	s.len = n;
	char text[64];
	assert_esim(ESIM_OK, der_value_oid(s));
	assert_esim(ESIM_E_UNSUPPORTED, der_oid_to_text(s, text, sizeof text));
	free(enc);
}

/* --- structures: optional, SEQUENCE OF ---------------------------------------------------- */

static void test_structures(void **state)
{
	(void)state;
	/* ProfilesInfo with two E3 entries, then an optional-field walk */
	size_t n;
	uint8_t *enc = unhex("BF2D 22 A0 20"
			     "  E3 10 5A 0A 98001032547698103214 9F70 01 01"
			     "  E3 0C 4F 03 A00001 9F70 01 00 90 01 41",
			     &n);
	der_element top;
	assert_esim(ESIM_OK, der_parse_single(enc, n, &top));
	assert_int_equal(top.tag, 0xBF2D);
	der_cursor c = der_cursor_of(top.value), list, fields;
	bool present;
	assert_esim(ESIM_OK, der_get_optional(&c, 0x81, &present, NULL));
	assert_false(present);
	assert_esim(ESIM_OK, der_get_optional(&c, 0xA0, &present, &list));
	assert_true(present);
	assert_esim(ESIM_OK, der_expect_end(&c));
	assert_esim(ESIM_OK, der_get_optional(&c, 0xA0, &present, &list));
	assert_false(present); /* at the end: absent, no error */

	c = der_cursor_of(top.value);
	assert_esim(ESIM_OK, der_get_sequence(&c, 0xA0, &list));
	der_element e;
	esim_err err;
	int count = 0, enabled = 0;
	while (der_next_child(&list, &e, &err)) {
		assert_int_equal(e.tag, 0xE3);
		fields = der_cursor_of(e.value);
		assert_esim(ESIM_OK, der_get_optional(&fields, 0x5A, &present, NULL));
		if (!present) {
			der_span aid;
			assert_esim(ESIM_OK, der_get_octet_string(&fields, 0x4F, &aid));
			assert_int_equal(aid.len, 3);
		}
		int64_t st;
		assert_esim(ESIM_OK, der_get_int64(&fields, 0x9F70, &st));
		enabled += (int)st;
		der_span nick;
		if (der_get_utf8(&fields, 0x90, &nick) == ESIM_OK)
			assert_int_equal(nick.p[0], 'A');
		assert_esim(ESIM_OK, der_expect_end(&fields));
		count++;
	}
	assert_esim(ESIM_OK, err);
	assert_int_equal(count, 2);
	assert_int_equal(enabled, 1);
	free(enc);

	/* SEQUENCE OF with a broken second child stops with the error */
	enc = unhex("30 06 02 01 05 02 02 00", &n);
	der_cursor_init(&c, enc, n);
	assert_esim(ESIM_OK, der_get_sequence(&c, 0, &list));
	count = 0;
	while (der_next_child(&list, &e, &err))
		count++;
	assert_int_equal(count, 1);
	assert_esim(ESIM_E_DER_OVERRUN, err);
	free(enc);

	/* der_get_sequence refuses a primitive tag from the caller */
	enc = unhex("04 00", &n);
	der_cursor_init(&c, enc, n);
	assert_esim(ESIM_E_ARG, der_get_sequence(&c, 0x04, &list));
	free(enc);
}

static void test_digest_worked_encodings(void **state)
{
	(void)state;
	uint8_t iccid[10] = {0x98, 0x00, 0x10, 0x32, 0x54, 0x76, 0x98, 0x10, 0x32, 0x14};
	der_builder b;

	der_builder_init(&b);
	der_builder_open(&b, 0xBF31);
	der_builder_open(&b, 0xA0);
	der_add_octet_string(&b, 0x5A, iccid, 10);
	der_builder_close(&b);
	der_add_bool(&b, 0x81, true);
	der_builder_close(&b);
	assert_built(&b, "BF31 11 A0 0C 5A 0A 98001032547698103214 81 01 FF");

	der_builder_init(&b);
	der_builder_open(&b, 0xBF2F);
	der_add_int64(&b, 0x80, 5);
	der_add_bit_string_mask(&b, 0x81, 1u << 1);
	der_add_utf8(&b, DER_TAG_DEFAULT, "smdp.example.com", 16);
	der_add_octet_string(&b, 0x5A, iccid, 10);
	der_builder_close(&b);
	assert_built(&b, "BF2F 25 80 01 05 81 02 06 40 0C 10 736D64702E6578616D706C652E636F6D"
			 " 5A 0A 98001032547698103214");

	der_builder_init(&b);
	der_builder_open(&b, 0xBF2B);
	der_builder_open(&b, 0xA0);
	der_add_int64(&b, 0x80, 5);
	der_builder_close(&b);
	der_builder_close(&b);
	der_builder_open(&b, 0xBF2E);
	der_builder_close(&b);
	der_builder_open(&b, 0xBF34);
	der_add_bit_string_mask(&b, 0x82, 7);
	der_builder_close(&b);
	assert_built(&b, "BF2B 05 A0 03 80 01 05 BF2E 00 BF34 04 82 02 05 E0");

	/* a PIR's signature covers the exact BF27 bytes: spans must point there */
	size_t n;
	uint8_t *enc = unhex("BF37 0B BF27 03 80 01 01 5F37 02 AA BB", &n);
	der_element pir, data, sig;
	assert_esim(ESIM_OK, der_parse_single(enc, n, &pir));
	der_cursor c = der_cursor_of(pir.value);
	assert_esim(ESIM_OK, der_get_tlv(&c, 0xBF27, &data));
	assert_esim(ESIM_OK, der_get_tlv(&c, 0x5F37, &sig));
	assert_ptr_equal(data.tlv.p, enc + 3);
	assert_int_equal(data.tlv.len, 6);
	assert_ptr_equal(sig.value.p, enc + 12);
	free(enc);
}

/* --- the malformed table -------------------------------------------------------------------- */

enum op {
	OP_ANY,
	OP_PEEK,
	OP_SINGLE,
	OP_END,
	OP_ELEMENT,
	OP_OPTIONAL,
	OP_SEQUENCE,
	OP_CHILD_ANY, /* the first child of a SEQUENCE that itself parses */
	OP_INT64,
	OP_UINT64,
	OP_BIG32,
	OP_BOOL,
	OP_BOOL_STRICT,
	OP_ENUM,
	OP_NULL,
	OP_OCTETS,
	OP_BITS,
	OP_UTF8,
	OP_OID,
};

struct bad_case {
	const char *what;
	enum op op;
	uint32_t tag;
	const char *hex;
	esim_err want;
};

static const struct bad_case bad_cases[] = {
    {"empty input", OP_ANY, 0, "", ESIM_E_DER_TRUNCATED_TAG},
    {"peek empty", OP_PEEK, 0, "", ESIM_E_DER_TRUNCATED_TAG},
    {"high tag, no more bytes", OP_ANY, 0, "1F", ESIM_E_DER_TRUNCATED_TAG},
    {"BF alone", OP_ANY, 0, "BF", ESIM_E_DER_TRUNCATED_TAG},
    {"tag ends in continuation", OP_ANY, 0, "BF 81", ESIM_E_DER_TRUNCATED_TAG},
    {"5F alone", OP_ANY, 0, "5F", ESIM_E_DER_TRUNCATED_TAG},
    {"tag number < 31 in long form", OP_ANY, 0, "1F 1E 00", ESIM_E_DER_NONMINIMAL_TAG},
    {"BF with number 2 in long form", OP_ANY, 0, "BF 02 00", ESIM_E_DER_NONMINIMAL_TAG},
    {"tag with leading 0x80", OP_ANY, 0, "BF 80 2D 00", ESIM_E_DER_NONMINIMAL_TAG},
    {"peek non-minimal tag", OP_PEEK, 0, "9F 80 70 01 00", ESIM_E_DER_NONMINIMAL_TAG},
    {"five-byte tag", OP_ANY, 0, "BF 81 81 81 01 00", ESIM_E_DER_TAG_TOO_LONG},
    {"no length", OP_ANY, 0, "30", ESIM_E_DER_TRUNCATED_LENGTH},
    {"81 without its byte", OP_ANY, 0, "30 81", ESIM_E_DER_TRUNCATED_LENGTH},
    {"82 with one byte", OP_ANY, 0, "30 82 01", ESIM_E_DER_TRUNCATED_LENGTH},
    {"84 with three bytes", OP_ANY, 0, "04 84 01 00 00", ESIM_E_DER_TRUNCATED_LENGTH},
    {"indefinite length", OP_ANY, 0, "30 80 04 00 00 00", ESIM_E_DER_INDEFINITE_LENGTH},
    {"5 length bytes", OP_ANY, 0, "04 85 00 00 00 00 01 00", ESIM_E_DER_LENGTH_TOO_LONG},
    {"0xFE length", OP_ANY, 0, "04 FE", ESIM_E_DER_LENGTH_TOO_LONG},
    {"0xFF length", OP_ANY, 0, "04 FF 00", ESIM_E_DER_RESERVED_LENGTH},
    {"81 05", OP_ANY, 0, "04 81 05 00 00 00 00 00", ESIM_E_DER_NONMINIMAL_LENGTH},
    {"81 7F", OP_ANY, 0, "04 81 7F", ESIM_E_DER_NONMINIMAL_LENGTH},
    {"81 00", OP_ANY, 0, "04 81 00", ESIM_E_DER_NONMINIMAL_LENGTH},
    {"82 00 7F", OP_ANY, 0, "04 82 00 7F", ESIM_E_DER_NONMINIMAL_LENGTH},
    {"82 00 80 (leading zero)", OP_ANY, 0, "04 82 00 80", ESIM_E_DER_NONMINIMAL_LENGTH},
    {"83 00 01 00", OP_ANY, 0, "04 83 00 01 00", ESIM_E_DER_NONMINIMAL_LENGTH},
    {"truncated value", OP_ANY, 0, "04 03 01 02", ESIM_E_DER_OVERRUN},
    {"long-form value truncated", OP_ANY, 0, "04 81 80 00", ESIM_E_DER_OVERRUN},
    {"4 GiB value", OP_ANY, 0, "04 84 FF FF FF FF 00", ESIM_E_DER_OVERRUN},
    {"child overruns parent", OP_CHILD_ANY, 0, "30 05 04 04 01 02 03 04", ESIM_E_DER_OVERRUN},
    {"child header overruns parent", OP_CHILD_ANY, 0, "30 02 04 81 80 00",
     ESIM_E_DER_TRUNCATED_LENGTH},
    {"trailing data", OP_SINGLE, 0, "04 01 00 00", ESIM_E_DER_TRAILING_DATA},
    {"not at end", OP_END, 0, "05 00", ESIM_E_DER_TRAILING_DATA},
    {"SET where SEQUENCE", OP_ELEMENT, 0x30, "31 00", ESIM_E_DER_UNEXPECTED_TAG},
    {"BF2E where BF2D", OP_ELEMENT, 0xBF2D, "BF2E 00", ESIM_E_DER_UNEXPECTED_TAG},
    {"primitive 10 where 30", OP_ELEMENT, 0x30, "10 00", ESIM_E_DER_CONSTRUCTED_EXPECTED},
    {"9F2D where BF2D", OP_ELEMENT, 0xBF2D, "9F2D 00", ESIM_E_DER_CONSTRUCTED_EXPECTED},
    {"sequence: OCTET STRING", OP_SEQUENCE, 0x30, "04 00", ESIM_E_DER_UNEXPECTED_TAG},
    {"sequence: primitive A0", OP_SEQUENCE, 0xA0, "80 00", ESIM_E_DER_CONSTRUCTED_EXPECTED},
    {"constructed A0 for INTEGER 80", OP_INT64, 0x80, "A0 01 00", ESIM_E_DER_PRIMITIVE_EXPECTED},
    {"constructed OCTET STRING", OP_OCTETS, 0, "24 00", ESIM_E_DER_PRIMITIVE_EXPECTED},
    {"optional but malformed", OP_OPTIONAL, 0x80, "80 81 05", ESIM_E_DER_NONMINIMAL_LENGTH},
    {"INTEGER wrong tag", OP_INT64, 0, "0A 01 00", ESIM_E_DER_UNEXPECTED_TAG},
    {"empty INTEGER", OP_INT64, 0, "02 00", ESIM_E_DER_EMPTY_INTEGER},
    {"empty INTEGER, unsigned", OP_UINT64, 0x80, "80 00", ESIM_E_DER_EMPTY_INTEGER},
    {"INTEGER 00 7F", OP_INT64, 0, "02 02 00 7F", ESIM_E_DER_NONMINIMAL_INTEGER},
    {"INTEGER FF 80", OP_INT64, 0, "02 02 FF 80", ESIM_E_DER_NONMINIMAL_INTEGER},
    {"INTEGER 00 00 unsigned", OP_UINT64, 0, "02 02 00 00", ESIM_E_DER_NONMINIMAL_INTEGER},
    {"INTEGER 9 bytes for int64", OP_INT64, 0, "02 09 01 00 00 00 00 00 00 00 00",
     ESIM_E_DER_INTEGER_OVERFLOW},
    {"INTEGER 2^64 for uint64", OP_UINT64, 0, "02 09 01 00 00 00 00 00 00 00 00",
     ESIM_E_DER_INTEGER_OVERFLOW},
    {"negative for unsigned", OP_UINT64, 0, "02 01 80", ESIM_E_DER_NEGATIVE_INTEGER},
    {"negative big unsigned", OP_BIG32, 0, "02 01 FF", ESIM_E_DER_NEGATIVE_INTEGER},
    {"33-byte r", OP_BIG32, 0,
     "02 21 01 0000000000000000000000000000000000000000000000000000000000000000",
     ESIM_E_DER_INTEGER_OVERFLOW},
    {"BOOLEAN empty", OP_BOOL, 0, "01 00", ESIM_E_DER_BAD_BOOLEAN},
    {"BOOLEAN two bytes", OP_BOOL, 0x81, "81 02 FF FF", ESIM_E_DER_BAD_BOOLEAN},
    {"BOOLEAN 01 strict", OP_BOOL_STRICT, 0, "01 01 01", ESIM_E_DER_BAD_BOOLEAN},
    {"ENUMERATED empty", OP_ENUM, 0, "0A 00", ESIM_E_DER_BAD_ENUMERATED},
    {"ENUMERATED 00 01", OP_ENUM, 0, "0A 02 00 01", ESIM_E_DER_BAD_ENUMERATED},
    {"NULL with content", OP_NULL, 0, "05 01 00", ESIM_E_DER_BAD_NULL},
    {"implicit NULL with content", OP_NULL, 0x80, "80 01 00", ESIM_E_DER_BAD_NULL},
    {"BIT STRING empty", OP_BITS, 0, "03 00", ESIM_E_DER_EMPTY_BITSTRING},
    {"unused 1 without data", OP_BITS, 0, "03 01 01", ESIM_E_DER_BAD_UNUSED_BITS},
    {"unused 8", OP_BITS, 0, "03 02 08 00", ESIM_E_DER_BAD_UNUSED_BITS},
    {"nonzero padding", OP_BITS, 0x81, "81 02 07 C0", ESIM_E_DER_NONZERO_PADDING},
    {"nonzero padding bit 0", OP_BITS, 0, "03 02 01 01", ESIM_E_DER_NONZERO_PADDING},
    {"UTF-8 overlong 2-byte", OP_UTF8, 0, "0C 02 C0 80", ESIM_E_DER_BAD_UTF8},
    {"UTF-8 overlong C1", OP_UTF8, 0, "0C 02 C1 BF", ESIM_E_DER_BAD_UTF8},
    {"UTF-8 overlong 3-byte", OP_UTF8, 0, "0C 03 E0 80 80", ESIM_E_DER_BAD_UTF8},
    {"UTF-8 overlong 4-byte", OP_UTF8, 0, "0C 04 F0 8F BF BF", ESIM_E_DER_BAD_UTF8},
    {"UTF-8 surrogate", OP_UTF8, 0x90, "90 03 ED A0 80", ESIM_E_DER_BAD_UTF8},
    {"UTF-8 truncated sequence", OP_UTF8, 0, "0C 02 E2 82", ESIM_E_DER_BAD_UTF8},
    {"UTF-8 above U+10FFFF", OP_UTF8, 0, "0C 04 F4 90 80 80", ESIM_E_DER_BAD_UTF8},
    {"UTF-8 F5 lead", OP_UTF8, 0, "0C 04 F5 80 80 80", ESIM_E_DER_BAD_UTF8},
    {"UTF-8 lone continuation", OP_UTF8, 0, "0C 01 80", ESIM_E_DER_BAD_UTF8},
    {"UTF-8 bad continuation", OP_UTF8, 0, "0C 03 E2 28 A1", ESIM_E_DER_BAD_UTF8},
    {"OID empty", OP_OID, 0, "06 00", ESIM_E_DER_BAD_OID},
    {"OID truncated subid", OP_OID, 0, "06 02 2A 86", ESIM_E_DER_BAD_OID},
    {"OID subid with 0x80", OP_OID, 0, "06 03 2A 80 01", ESIM_E_DER_BAD_OID},
    {"OID first subid with 0x80", OP_OID, 0, "06 02 80 01", ESIM_E_DER_BAD_OID},
    {"OID under 81, truncated", OP_OID, 0x81, "81 03 88 37 8A", ESIM_E_DER_BAD_OID},
};

static esim_err run_op(const struct bad_case *t, der_cursor *c)
{
	der_element e;
	der_cursor child;
	der_span span;
	der_bits bits;
	int64_t i64;
	uint64_t u64;
	uint8_t big[32];
	bool b;
	uint32_t tag;
	switch (t->op) {
	case OP_ANY:
		return der_get_any(c, &e);
	case OP_PEEK:
		return der_peek_tag(c, &tag);
	case OP_SINGLE:
		return der_parse_single(c->p, c->len, &e);
	case OP_END:
		return der_expect_end(c);
	case OP_ELEMENT:
		return der_get_element(c, t->tag, &child);
	case OP_OPTIONAL:
		return der_get_optional(c, t->tag, &b, &child);
	case OP_SEQUENCE:
		return der_get_sequence(c, t->tag, &child);
	case OP_CHILD_ANY: {
		der_cursor outer = *c;
		assert_esim(ESIM_OK, der_get_sequence(&outer, 0, &child));
		der_cursor before = child;
		esim_err err = der_get_any(&child, &e);
		if (err != ESIM_OK) {
			assert_ptr_equal(child.p, before.p);
			assert_int_equal(child.len, before.len);
		}
		return err;
	}
	case OP_INT64:
		return der_get_int64(c, t->tag, &i64);
	case OP_UINT64:
		return der_get_uint64(c, t->tag, &u64);
	case OP_BIG32:
		return der_get_big_unsigned_fixed(c, t->tag, big, sizeof big);
	case OP_BOOL:
		return der_get_bool(c, t->tag, &b);
	case OP_BOOL_STRICT:
		return der_get_bool_strict(c, t->tag, &b);
	case OP_ENUM:
		return der_get_enumerated(c, t->tag, &i64);
	case OP_NULL:
		return der_get_null(c, t->tag);
	case OP_OCTETS:
		return der_get_octet_string(c, t->tag, &span);
	case OP_BITS:
		return der_get_bit_string(c, t->tag, &bits);
	case OP_UTF8:
		return der_get_utf8(c, t->tag, &span);
	case OP_OID:
		return der_get_oid(c, t->tag, &span);
	}
	return ESIM_E_INTERNAL;
}

static void test_malformed_table(void **state)
{
	(void)state;
	size_t count = sizeof bad_cases / sizeof bad_cases[0];
	assert_true(count >= 40);
	for (size_t i = 0; i < count; i++) {
		const struct bad_case *t = &bad_cases[i];
		size_t n;
		uint8_t *enc = unhex(t->hex, &n);
		der_cursor c;
		der_cursor_init(&c, enc, n);
		der_cursor before = c;
		esim_err err = run_op(t, &c);
		if (err != t->want)
			fail_msg("case %zu (%s): got %s, expected %s", i, t->what,
				 esim_errname(err), esim_errname(t->want));
		assert_ptr_equal(c.p, before.p);
		assert_int_equal(c.len, before.len);
		free(enc);
	}
}

/* Fixing the one defect of each table case makes it parse: the table tests
 * what it claims to, not some other accidental error. */
static void test_malformed_neighbours_parse(void **state)
{
	(void)state;
	static const struct bad_case fixed[] = {
	    {"long tag, number 31", OP_ANY, 0, "1F 1F 00", ESIM_OK},
	    {"four-byte tag", OP_ANY, 0, "BF 81 81 01 00", ESIM_OK},
	    {"81 80", OP_ANY, 0,
	     "04 81 80"
	     "00000000000000000000000000000000"
	     "00000000000000000000000000000000"
	     "00000000000000000000000000000000"
	     "00000000000000000000000000000000"
	     "00000000000000000000000000000000"
	     "00000000000000000000000000000000"
	     "00000000000000000000000000000000"
	     "00000000000000000000000000000000",
	     ESIM_OK},
	    {"child fits", OP_CHILD_ANY, 0, "30 05 04 03 01 02 03", ESIM_OK},
	    {"INTEGER 00 80", OP_INT64, 0, "02 02 00 80", ESIM_OK},
	    {"INTEGER FF 7F", OP_INT64, 0, "02 02 FF 7F", ESIM_OK},
	    {"BOOLEAN FF strict", OP_BOOL_STRICT, 0, "01 01 FF", ESIM_OK},
	    {"unused 7, padding zero", OP_BITS, 0x81, "81 02 07 80", ESIM_OK},
	    {"unused 0 without data", OP_BITS, 0, "03 01 00", ESIM_OK},
	    {"OID 2A 86 48", OP_OID, 0, "06 03 2A 86 48", ESIM_OK},
	    {"UTF-8 E2 82 AC", OP_UTF8, 0, "0C 03 E2 82 AC", ESIM_OK},
	};
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
		size_t n;
		uint8_t *enc = unhex(fixed[i].hex, &n);
		der_cursor c;
		der_cursor_init(&c, enc, n);
		esim_err err = run_op(&fixed[i], &c);
		if (err != ESIM_OK)
			fail_msg("%s: %s", fixed[i].what, esim_errname(err));
		if (fixed[i].op != OP_CHILD_ANY)
			assert_true(der_cursor_empty(&c));
		free(enc);
	}
}

/* --- builder -------------------------------------------------------------------------------- */

static void test_builder_misuse(void **state)
{
	(void)state;
	der_builder b;
	uint8_t *out = NULL;
	size_t len;

	der_builder_init(&b);
	assert_esim(ESIM_E_DER_BUILDER_STATE, der_builder_close(&b));
	assert_esim(ESIM_E_DER_BUILDER_STATE, der_add_null(&b, 0)); /* sticky */
	assert_esim(ESIM_E_DER_BUILDER_STATE, der_builder_finish(&b, &out, &len));
	assert_null(out);

	der_builder_init(&b);
	der_builder_open(&b, 0x30);
	der_builder_open(&b, 0xA0);
	der_builder_close(&b);
	assert_esim(ESIM_E_DER_BUILDER_STATE, der_builder_finish(&b, &out, &len));
	assert_null(out);

	der_builder_init(&b);
	der_builder_open(&b, 0x30);
	der_builder_close(&b);
	assert_esim(ESIM_E_DER_BUILDER_STATE, der_builder_close(&b));
	der_builder_free(&b);

	der_builder_init(&b);
	assert_esim(ESIM_E_ARG, der_builder_open(&b, 0x1F1E));
	der_builder_free(&b);
	der_builder_init(&b);
	assert_esim(ESIM_E_ARG, der_add_tlv(&b, 0xBF81, NULL, 0));
	der_builder_free(&b);
	der_builder_init(&b);
	assert_esim(ESIM_E_DER_BAD_UNUSED_BITS, der_add_bit_string(&b, 0, NULL, 0, 1));
	der_builder_free(&b);
	der_builder_init(&b);
	assert_esim(ESIM_E_DER_BAD_UNUSED_BITS,
		    der_add_bit_string(&b, 0, (const uint8_t *)"\x80", 1, 8));
	der_builder_free(&b);
	der_builder_init(&b);
	assert_esim(ESIM_E_DER_NONZERO_PADDING,
		    der_add_bit_string(&b, 0, (const uint8_t *)"\x81", 1, 1));
	der_builder_free(&b);
	der_builder_init(&b);
	assert_esim(ESIM_E_ARG, der_add_oid(&b, 0, "1.40"));
	assert_esim(ESIM_E_ARG, der_builder_finish(&b, &out, &len));

	/* too deep */
	der_builder_init(&b);
	for (int i = 0; i < DER_BUILDER_MAX_DEPTH; i++)
		assert_esim(ESIM_OK, der_builder_open(&b, 0x30));
	assert_esim(ESIM_E_DER_TOO_DEEP, der_builder_open(&b, 0x30));
	der_builder_free(&b);

	/* finish of nothing: an allocated, empty result */
	der_builder_init(&b);
	assert_esim(ESIM_OK, der_builder_finish(&b, &out, &len));
	assert_non_null(out);
	assert_int_equal(len, 0);
	free(out);

	/* a finished builder is reusable */
	der_add_null(&b, 0);
	assert_built(&b, "05 00");
}

static void test_builder_deep_long_form(void **state)
{
	(void)state;
	/* every level needs a long-form length, alternating 1- and 2-byte tags */
	enum { LEVELS = DER_BUILDER_MAX_DEPTH, PAYLOAD = 300 };
	uint8_t payload[PAYLOAD];
	for (size_t i = 0; i < PAYLOAD; i++)
		payload[i] = (uint8_t)i;
	der_builder b;
	der_builder_init(&b);
	for (int i = 0; i < LEVELS; i++)
		assert_esim(ESIM_OK, der_builder_open(&b, (i % 2) ? 0xBF2D : 0x30));
	assert_esim(ESIM_OK, der_add_octet_string(&b, 0, payload, PAYLOAD));
	for (int i = 0; i < LEVELS; i++)
		assert_esim(ESIM_OK, der_builder_close(&b));
	uint8_t *out;
	size_t len;
	assert_esim(ESIM_OK, der_builder_finish(&b, &out, &len));

	/* expected size computed independently: 82 xx xx at every level */
	size_t want = PAYLOAD + 4;
	for (int i = LEVELS - 1; i >= 0; i--)
		want += ((i % 2) ? 2 : 1) + (want < 256 ? 2 : 3);
	assert_int_equal(len, want);

	der_cursor c;
	der_cursor_init(&c, out, len);
	for (int i = 0; i < LEVELS; i++) {
		der_cursor inner;
		assert_esim(ESIM_OK, der_get_element(&c, (i % 2) ? 0xBF2D : 0x30, &inner));
		assert_esim(ESIM_OK, der_expect_end(&c));
		c = inner;
	}
	der_span os;
	assert_esim(ESIM_OK, der_get_octet_string(&c, 0, &os));
	assert_int_equal(os.len, PAYLOAD);
	assert_memory_equal(os.p, payload, PAYLOAD);
	assert_esim(ESIM_OK, der_expect_end(&c));
	free(out);

	/* the boundary 127 / 128 inside nesting */
	for (size_t content = 125; content <= 130; content++) {
		der_builder_init(&b);
		der_builder_open(&b, 0xA0);
		der_builder_open(&b, 0x30);
		uint8_t *fill = calloc(1, content);
		der_add_raw(&b, fill, content);
		free(fill);
		der_builder_close(&b);
		der_builder_close(&b);
		assert_esim(ESIM_OK, der_builder_finish(&b, &out, &len));
		size_t inner = 1 + (content < 128 ? 1 : 2) + content;
		assert_int_equal(len, 1 + (inner < 128 ? 1 : 2) + inner);
		der_element e;
		assert_esim(ESIM_OK, der_parse_single(out, len, &e));
		assert_int_equal(e.value.len, inner);
		free(out);
	}
}

/* --- walking ------------------------------------------------------------------------------- */

struct counts {
	size_t elements, primitives, max_depth;
};

static esim_err count_cb(void *ctx, const der_element *e, unsigned depth, size_t offset)
{
	struct counts *k = ctx;
	(void)offset;
	k->elements++;
	if (!der_tag_is_constructed(e->tag))
		k->primitives++;
	if (depth > k->max_depth)
		k->max_depth = depth;
	return ESIM_OK;
}

static void test_walk(void **state)
{
	(void)state;
	size_t n, off = 0;
	uint8_t *enc = unhex("A0 05 80 01 02 A1 00  AA 07 A0 05 80 00 81 01 1F", &n);
	struct counts k = {0};
	assert_esim(ESIM_OK, der_walk(enc, n, 0, count_cb, &k, &off));
	assert_int_equal(k.elements, 7);
	assert_int_equal(k.primitives, 3);
	assert_int_equal(k.max_depth, 2);
	free(enc);

	/* an error deep inside reports the offset of the bad element */
	enc = unhex("30 08 30 06 04 01 00 04 81 01", &n);
	assert_esim(ESIM_E_DER_NONMINIMAL_LENGTH, der_walk(enc, n, 0, NULL, NULL, &off));
	assert_int_equal(off, 7);
	free(enc);

	/* depth: 70 nested SEQUENCEs, built from the inside out */
	uint8_t buf[400];
	size_t pos = sizeof buf, starts[70];
	for (size_t i = 0; i < 70; i++) {
		size_t clen = sizeof buf - pos;
		assert_true(clen < 256);
		buf[--pos] = (uint8_t)clen;
		if (clen >= 0x80)
			buf[--pos] = 0x81;
		buf[--pos] = 0x30;
		starts[69 - i] = pos;
	}
	const uint8_t *deep = buf + pos;
	size_t deep_len = sizeof buf - pos;
	k = (struct counts){0};
	assert_esim(ESIM_E_DER_TOO_DEEP, der_walk(deep, deep_len, 0, count_cb, &k, &off));
	assert_int_equal(off, starts[DER_DEFAULT_MAX_DEPTH - 1] - pos);
	assert_int_equal(k.elements, DER_DEFAULT_MAX_DEPTH);
	k = (struct counts){0};
	assert_esim(ESIM_OK, der_walk(deep, deep_len, 70, count_cb, &k, &off));
	assert_int_equal(k.elements, 70);
	assert_int_equal(k.max_depth, 69);
	assert_esim(ESIM_E_DER_TOO_DEEP, der_walk(deep, deep_len, 69, NULL, NULL, &off));
	assert_int_equal(off, starts[68] - pos);
	assert_esim(ESIM_E_ARG,
		    der_walk(deep, deep_len, DER_MAX_DEPTH_LIMIT + 1, NULL, NULL, &off));
	assert_esim(ESIM_OK, der_walk(NULL, 0, 0, NULL, NULL, &off));
}

/* --- names and dump ------------------------------------------------------------------------- */

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(der_tag_name(0x30, DER_NAMES_NONE, 3), "SEQUENCE");
	assert_string_equal(der_tag_name(0xBF3E, DER_NAMES_SGP22, 0), "GetEID");
	assert_string_equal(der_tag_name(0xBF36, DER_NAMES_SGP22, 0), "BoundProfilePackage");
	assert_string_equal(der_tag_name(0xBF2A, DER_NAMES_SGP22, 0), "UpdateMetadata");
	assert_string_equal(der_tag_name(0x7F21, DER_NAMES_SGP22, 2), "certificate");
	assert_null(der_tag_name(0xBF3E, DER_NAMES_NONE, 0));
	assert_null(der_tag_name(0x80, DER_NAMES_SGP22, 0));
	assert_string_equal(der_tag_name(0xA0, DER_NAMES_SAIP, 0), "ProfileHeader");
	assert_string_equal(der_tag_name(0xB3, DER_NAMES_SAIP, 0), "usim");
	assert_null(der_tag_name(0xB3, DER_NAMES_SAIP, 1));
}

static char *dump_to_string(const char *hex, const der_dump_opts *o, esim_err want, size_t *off)
{
	size_t n;
	uint8_t *enc = unhex(hex, &n);
	char *text = NULL;
	size_t text_len = 0;
	FILE *f = open_memstream(&text, &text_len);
	assert_non_null(f);
	assert_esim(want, der_dump(f, enc, n, o, off));
	fclose(f);
	free(enc);
	return text;
}

static void test_dump(void **state)
{
	(void)state;
	size_t off = 99;
	char *text = dump_to_string("BF2D 18 A0 16 E3 14 5A 0A 98001032547698103214 9F70 01 01"
				    " 90 02 4869",
				    NULL, ESIM_OK, &off);
	assert_int_equal(off, 99); /* untouched on success */
	assert_non_null(strstr(text, "BF2D [ctx cons] len=24"));
	assert_non_null(strstr(text, "9F70 [ctx prim] len=1"));
	assert_non_null(strstr(text, "98 00 10 32 54 76 98 10 32 14"));
	assert_non_null(strstr(text, "~\"Hi\""));
	assert_null(strstr(text, "ProfilesInfo")); /* names are off without opts */
	free(text);

	der_dump_opts o = {.names = DER_NAMES_SGP22};
	text = dump_to_string("30 1A 02 02 00 80 01 01 FF 06 03 88 37 0A 0C 02 C3 A9 03 02 06 40"
			      " 13 02 41 42 05 00",
			      &o, ESIM_OK, &off);
	assert_non_null(strstr(text, "INTEGER = 128"));
	assert_non_null(strstr(text, "BOOLEAN = TRUE"));
	assert_non_null(strstr(text, "OBJECT IDENTIFIER = 2.999.10"));
	assert_non_null(strstr(text, "UTF8String = \"\xC3\xA9\""));
	assert_non_null(strstr(text, "BIT STRING = 2 bits {1}"));
	assert_non_null(strstr(text, "PrintableString = \"AB\""));
	free(text);

	text = dump_to_string("BF3E 03 5C 01 5A", &o, ESIM_OK, &off);
	assert_non_null(strstr(text, "(GetEID?)"));
	assert_non_null(strstr(text, "(tagList?)"));
	free(text);

	/* malformed: the tree so far, then the error and its offset */
	text = dump_to_string("30 0A 04 02 AB CD 30 04 04 82 00 7F", &o,
			      ESIM_E_DER_NONMINIMAL_LENGTH, &off);
	assert_int_equal(off, 8);
	assert_non_null(strstr(text, "AB CD"));
	assert_non_null(strstr(text, "ESIM_E_DER_NONMINIMAL_LENGTH"));
	assert_non_null(strstr(text, "at byte offset 8"));
	free(text);

	/* long values are cut unless full */
	char hex[2 * 200 + 16];
	strcpy(hex, "04 81 C8 ");
	for (int i = 0; i < 200; i++)
		strcat(hex, "EE");
	text = dump_to_string(hex, &o, ESIM_OK, &off);
	assert_non_null(strstr(text, "(136 more bytes)"));
	free(text);
	o.full = true;
	text = dump_to_string(hex, &o, ESIM_OK, &off);
	assert_null(strstr(text, "more bytes"));
	free(text);

	/* malformed values inside a valid tree are shown, not fatal */
	text = dump_to_string("30 0A 02 02 00 01 0C 01 FF 06 01 80", &o, ESIM_OK, &off);
	assert_non_null(strstr(text, "malformed: ESIM_E_DER_NONMINIMAL_INTEGER"));
	assert_non_null(strstr(text, "malformed: ESIM_E_DER_BAD_UTF8"));
	assert_non_null(strstr(text, "malformed: ESIM_E_DER_BAD_OID"));
	free(text);
}

/* --- the command line ------------------------------------------------------------------------ */

static int run_esim(const char *args)
{
	char cmd[8192];
	snprintf(cmd, sizeof cmd, "'%s/esim' der %s >/dev/null 2>&1", test_bin_dir(), args);
	int rc = system(cmd);
	assert_true(rc != -1 && WIFEXITED(rc));
	return WEXITSTATUS(rc);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_cli(void **state)
{
	(void)state;
	char exe[4096];
	struct stat st;
	test_path(exe, sizeof exe, "%s/esim", test_bin_dir());
	if (stat(exe, &st) != 0)
		fail_msg("%s not built", exe);
	char *dir = test_mkdtemp();
	char good[4200], bad[4200], binary[4200], args[9000];
	test_path(good, sizeof good, "%s/good.hex", dir);
	test_path(bad, sizeof bad, "%s/bad.hex", dir);
	test_path(binary, sizeof binary, "%s/eid.der", dir);
	write_file(good, "BF3E 03\n5C 01 5A\n");
	write_file(bad, "30 03 04 05 00");
	FILE *f = fopen(binary, "wb");
	assert_non_null(f);
	fwrite("\xBF\x3E\x03\x5C\x01\x5A", 1, 6, f);
	fclose(f);

	snprintf(args, sizeof args, "dump --hex '%s'", good);
	assert_int_equal(run_esim(args), 0);
	snprintf(args, sizeof args, "dump --full '%s'", binary);
	assert_int_equal(run_esim(args), 0);
	snprintf(args, sizeof args, "dump --hex '%s'", bad);
	assert_int_equal(run_esim(args), 6);
	snprintf(args, sizeof args, "dump '%s'", good); /* hex text read as DER */
	assert_int_equal(run_esim(args), 6);
	snprintf(args, sizeof args, "dump --hex - < '%s'", good);
	assert_int_equal(run_esim(args), 0);
	assert_int_equal(run_esim(""), 2);
	assert_int_equal(run_esim("dump"), 2);
	assert_int_equal(run_esim("dump --bogus x"), 2);
	assert_int_equal(run_esim("frobnicate"), 2);
	snprintf(args, sizeof args, "dump --max-depth=0 '%s'", binary);
	assert_int_equal(run_esim(args), 2);
	test_rm_rf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tag_helpers),
	    cmocka_unit_test(test_multibyte_tags_parse),
	    cmocka_unit_test(test_lengths),
	    cmocka_unit_test(test_integer_known),
	    cmocka_unit_test(test_integer_unsigned_and_big),
	    cmocka_unit_test(test_bool_enum_null_octets),
	    cmocka_unit_test(test_bit_string),
	    cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_oid),
	    cmocka_unit_test(test_structures),
	    cmocka_unit_test(test_digest_worked_encodings),
	    cmocka_unit_test(test_malformed_table),
	    cmocka_unit_test(test_malformed_neighbours_parse),
	    cmocka_unit_test(test_builder_misuse),
	    cmocka_unit_test(test_builder_deep_long_form),
	    cmocka_unit_test(test_walk),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_dump),
	    cmocka_unit_test(test_cli),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
