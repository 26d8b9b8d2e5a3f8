/*
 * der: the BER-TLV / DER reader and builder every SGP.22 message goes
 * through (digest section 2).
 *
 * Reading: a der_cursor is a pointer and a length into a buffer the caller
 * owns. Every getter either succeeds, advances the cursor and fills its
 * outputs, or fails with an esim_err and leaves the cursor exactly as it was.
 * Elements are handed out as spans into the original buffer (the whole TLV
 * and its value), never copied, because SGP.22 signatures are computed over
 * the exact bytes received: verify over der_element.tlv, never over a
 * re-encoding. Spans stay valid as long as the caller's buffer does.
 *
 * Tags are uint32_t holding the raw tag bytes, big-endian: 0x30, 0x5A,
 * 0xBF2D, 0x7F21, 0x5F37, 0x9F70. At most 4 tag bytes; multi-byte tags must
 * be minimal. Lengths are DER: short form, or 81..84 with minimal content.
 *
 * Typed getters take the tag to expect, so implicit context tags work
 * (der_get_int64(&c, 0x80, &v)); DER_TAG_DEFAULT (0) selects the type's
 * universal tag. When the element found differs from the tag asked for only
 * in its constructed bit, the error is ESIM_E_DER_CONSTRUCTED_EXPECTED /
 * ESIM_E_DER_PRIMITIVE_EXPECTED rather than ESIM_E_DER_UNEXPECTED_TAG.
 *
 * Building: der_builder appends into a growable buffer; der_builder_open()
 * starts a constructed element whose length is filled in, minimally, by
 * der_builder_close(). Errors are sticky: after the first failure every
 * call returns that error and der_builder_finish() reports it. The finished
 * bytes are malloc'd and owned by the caller (free()).
 */
#ifndef ESIM_DER_H
#define ESIM_DER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "esim/err.h"
#include "esim/util.h"

/* --- tags ------------------------------------------------------------------ */

#define DER_TAG_DEFAULT 0u /* typed helpers: "the universal tag of the type" */

#define DER_TAG_BOOLEAN		 0x01u
#define DER_TAG_INTEGER		 0x02u
#define DER_TAG_BIT_STRING	 0x03u
#define DER_TAG_OCTET_STRING	 0x04u
#define DER_TAG_NULL		 0x05u
#define DER_TAG_OID		 0x06u
#define DER_TAG_ENUMERATED	 0x0Au
#define DER_TAG_UTF8_STRING	 0x0Cu
#define DER_TAG_NUMERIC_STRING	 0x12u
#define DER_TAG_PRINTABLE_STRING 0x13u
#define DER_TAG_IA5_STRING	 0x16u
#define DER_TAG_UTC_TIME	 0x17u
#define DER_TAG_GENERALIZED_TIME 0x18u
#define DER_TAG_VISIBLE_STRING	 0x1Au
#define DER_TAG_SEQUENCE	 0x30u
#define DER_TAG_SET		 0x31u

#define DER_MAX_TAG_BYTES    4
#define DER_MAX_LENGTH_BYTES 4 /* 84 xx xx xx xx: values up to 4 GiB - 1 */

/* Tag classes as found in the top two bits of the first tag byte. */
enum der_class {
	DER_CLASS_UNIVERSAL = 0,
	DER_CLASS_APPLICATION = 1,
	DER_CLASS_CONTEXT = 2,
	DER_CLASS_PRIVATE = 3,
};

/* Number of bytes of tag (1..4; 1 for 0). */
size_t der_tag_len(uint32_t tag);
/* The first (class / constructed / number) byte of tag. */
uint8_t der_tag_first_byte(uint32_t tag);
enum der_class der_tag_class(uint32_t tag);
bool der_tag_is_constructed(uint32_t tag);
/* The tag number (e.g. 45 for 0xBF2D, 16 for 0x30). */
uint32_t der_tag_number(uint32_t tag);
/* true when tag is a well-formed, minimal tag of at most 4 bytes. */
bool der_tag_valid(uint32_t tag);

/* --- reader ---------------------------------------------------------------- */

/* A read position: the bytes not yet consumed. Does not own them. */
typedef struct der_cursor {
	const uint8_t *p;
	size_t len;
} der_cursor;

/* A span of bytes inside the caller's buffer. */
typedef struct der_span {
	const uint8_t *p;
	size_t len;
} der_span;

/* One element as found in the input. */
typedef struct der_element {
	uint32_t tag;
	der_span tlv;	   /* tag, length and value: the bytes a signature covers */
	der_span value;	   /* the content only */
	size_t header_len; /* tlv.len - value.len */
} der_element;

void der_cursor_init(der_cursor *c, const void *p, size_t len);
/* A cursor over the bytes of a span (e.g. an element's value). */
der_cursor der_cursor_of(der_span s);
bool der_cursor_empty(const der_cursor *c);
/* ESIM_OK when no bytes are left, else ESIM_E_DER_TRAILING_DATA. */
esim_err der_expect_end(const der_cursor *c);

/* The tag of the next element, without consuming it. Validates the tag
 * bytes only. */
esim_err der_peek_tag(const der_cursor *c, uint32_t *tag);
/* The next element, whatever its tag. */
esim_err der_get_any(der_cursor *c, der_element *out);
/* The next element, which must have tag; *value (may be NULL) becomes a
 * cursor over its content. */
esim_err der_get_element(der_cursor *c, uint32_t tag, der_cursor *value);
/* As der_get_element, giving the whole element (out may be NULL). */
esim_err der_get_tlv(der_cursor *c, uint32_t tag, der_element *out);
/* When the next element has tag, consume it as der_get_element does and set
 * *present; otherwise (including at the end of input) set *present = false
 * and leave the cursor alone. A malformed next element is still an error. */
esim_err der_get_optional(der_cursor *c, uint32_t tag, bool *present, der_cursor *value);
/* A constructed element (tag DER_TAG_DEFAULT = SEQUENCE 0x30; a primitive
 * tag from the caller is ESIM_E_ARG); *children iterates its elements:
 *     while (!der_cursor_empty(&children)) der_get_...(&children, ...);
 * or der_next_child() below. */
esim_err der_get_sequence(der_cursor *c, uint32_t tag, der_cursor *children);
/* Loop helper for SEQUENCE OF: false when children is empty; otherwise
 * reads the next element into *out and stores the result in *err, so that
 *     while (der_next_child(&children, &e, &err)) { ... }
 *     if (err != ESIM_OK) ...
 * stops at the first malformed child. */
bool der_next_child(der_cursor *children, der_element *out, esim_err *err);
/* The whole of p..p+len must be exactly one element. */
esim_err der_parse_single(const void *p, size_t len, der_element *out);

/* --- typed getters --------------------------------------------------------
 * Each reads the next element, which must have tag (DER_TAG_DEFAULT: the
 * type's universal tag) and be primitive, and decodes its value. The
 * der_value_* forms decode a value span already in hand (no tag).
 */

/* INTEGER, minimal two's complement, fitting int64_t. */
esim_err der_value_int64(der_span v, int64_t *out);
esim_err der_get_int64(der_cursor *c, uint32_t tag, int64_t *out);
/* INTEGER that must be >= 0 and fit uint64_t. */
esim_err der_value_uint64(der_span v, uint64_t *out);
esim_err der_get_uint64(der_cursor *c, uint32_t tag, uint64_t *out);
/* Non-negative INTEGER of any size: *magnitude is its value big-endian
 * without the sign byte (empty for 0). */
esim_err der_value_big_unsigned(der_span v, der_span *magnitude);
esim_err der_get_big_unsigned(der_cursor *c, uint32_t tag, der_span *magnitude);
/* The same, left-padded with zeros into exactly out_len bytes (ECDSA r/s as
 * 32 bytes). ESIM_E_DER_INTEGER_OVERFLOW when it does not fit. */
esim_err der_get_big_unsigned_fixed(der_cursor *c, uint32_t tag, uint8_t *out, size_t out_len);

/* BOOLEAN: exactly one byte. Lenient form: any non-zero byte is true, as
 * SGP.22 peers must accept (digest 2.1); strict form: only 00 / FF. */
esim_err der_value_bool(der_span v, bool strict, bool *out);
esim_err der_get_bool(der_cursor *c, uint32_t tag, bool *out);
esim_err der_get_bool_strict(der_cursor *c, uint32_t tag, bool *out);

/* ENUMERATED: as INTEGER; every malformation is ESIM_E_DER_BAD_ENUMERATED. */
esim_err der_value_enumerated(der_span v, int64_t *out);
esim_err der_get_enumerated(der_cursor *c, uint32_t tag, int64_t *out);

/* NULL: empty content. */
esim_err der_get_null(der_cursor *c, uint32_t tag);

/* OCTET STRING: the content as is. */
esim_err der_get_octet_string(der_cursor *c, uint32_t tag, der_span *out);

/* BIT STRING. bytes excludes the unused-bits byte; unused (0..7) is the
 * number of padding bits at the end of the last byte, which must be zero.
 * Named bit 0 is the most significant bit of the first byte. Trailing zero
 * bits are accepted (peers in the wild do not always strip them). */
typedef struct der_bits {
	der_span bytes;
	unsigned unused;
} der_bits;
esim_err der_value_bit_string(der_span v, der_bits *out);
esim_err der_get_bit_string(der_cursor *c, uint32_t tag, der_bits *out);
/* Number of bits in the string. */
size_t der_bits_count(const der_bits *b);
/* Whether named bit n is set (false past the end). */
bool der_bits_test(const der_bits *b, size_t n);
/* Named bits as a mask (bit n of *mask = named bit n). ESIM_E_TOO_LARGE
 * when a bit >= 64 is set. */
esim_err der_bits_to_mask(const der_bits *b, uint64_t *mask);

/* UTF8String: valid UTF-8 (no overlong forms, no surrogates, <= U+10FFFF).
 * The span is not NUL-terminated. */
bool der_utf8_valid(const uint8_t *p, size_t n);
esim_err der_get_utf8(der_cursor *c, uint32_t tag, der_span *out);

/* OBJECT IDENTIFIER: non-empty, minimal base-128 subidentifiers, the last
 * one complete. *content is the encoded content (compare it with memcmp). */
esim_err der_value_oid(der_span v);
esim_err der_get_oid(der_cursor *c, uint32_t tag, der_span *content);
/* Dotted text of OID content, NUL-terminated into buf; the content is
 * validated first (ESIM_E_DER_BAD_OID). ESIM_E_BUF_SMALL when cap is too
 * small (4 * content.len + 3 always suffices), ESIM_E_UNSUPPORTED for an
 * arc above UINT64_MAX. */
esim_err der_oid_to_text(der_span content, char *buf, size_t cap);
/* Append the DER content (no tag, no length) of a dotted OID to out.
 * ESIM_E_ARG for text that is not a valid OID ("2.999.10" -> 88 37 0A). */
esim_err der_oid_from_text(const char *dotted, esim_buf *out);

/* --- walking ---------------------------------------------------------------- */

#define DER_DEFAULT_MAX_DEPTH 64 /* nesting levels the walker descends */
#define DER_MAX_DEPTH_LIMIT   256

/* Called for each element in document order (parents before children);
 * depth 0 is the top level, offset is tlv.p's distance from the start of
 * the walked buffer. A non-OK return stops the walk with that error. */
typedef esim_err (*der_walk_fn)(void *ctx, const der_element *e, unsigned depth, size_t offset);

/* Walk a concatenation of top-level elements (a DER message is one, a SAIP
 * profile package many), descending into every constructed element, whose
 * content must consist of whole elements. max_depth 0 means
 * DER_DEFAULT_MAX_DEPTH; nesting deeper than that is ESIM_E_DER_TOO_DEEP.
 * On failure *err_offset (may be NULL) is the offset of the element that
 * failed to parse. */
esim_err der_walk(const uint8_t *p, size_t len, unsigned max_depth, der_walk_fn fn, void *ctx,
		  size_t *err_offset);

/* --- names and dump ----------------------------------------------------------- */

/* Which table of names to use for non-universal tags. */
enum der_names {
	DER_NAMES_NONE = 0,
	DER_NAMES_SGP22, /* ES10 / ES8+ / ES9+ structures (digest 4.1, 7, 8) */
	DER_NAMES_SAIP,	 /* profile elements of a SAIP package (digest 13.2) */
};

/* A name for tag, or NULL. Universal tags are always named. Non-universal
 * names are hints only: tags are context-dependent (BF23 is
 * InitialiseSecureChannel at the top of a BPP but a plain field inside
 * BF25); SAIP names are given at depth 0 only. Static strings. */
const char *der_tag_name(uint32_t tag, enum der_names names, unsigned depth);

typedef struct der_dump_opts {
	bool full;		/* print every value byte */
	size_t max_value_bytes; /* without full: bytes of a value shown (0: 64) */
	size_t bytes_per_line;	/* hex bytes per line (0: 16) */
	enum der_names names;
	unsigned max_depth; /* 0: DER_DEFAULT_MAX_DEPTH */
} der_dump_opts;

/* Print the TLV tree(s) in p..p+len to out: offset, indentation by depth,
 * tag, class and form, length, name hint, and for primitives the value in
 * hex plus a rendering of BOOLEAN, INTEGER, ENUMERATED, OID and string
 * types. opts may be NULL. Never reads outside the input: on malformed
 * input it prints the tree so far, then the error, and returns the error
 * with *err_offset (may be NULL) set to the offset of the failing element. */
esim_err der_dump(FILE *out, const uint8_t *p, size_t len, const der_dump_opts *opts,
		  size_t *err_offset);

/* --- builder ------------------------------------------------------------------ */

#define DER_BUILDER_MAX_DEPTH 32

typedef struct der_builder {
	esim_buf buf;
	size_t open[DER_BUILDER_MAX_DEPTH]; /* content start of each open element */
	unsigned depth;
	esim_err err; /* first error, sticky */
} der_builder;

void der_builder_init(der_builder *b);
/* Release everything (also after an error, or without finishing). */
void der_builder_free(der_builder *b);
/* Same, wiping the bytes first: for builders that held keys. */
void der_builder_wipe_free(der_builder *b);
/* The bytes so far (valid until the next call on b). */
const uint8_t *der_builder_data(const der_builder *b);
size_t der_builder_len(const der_builder *b);

/* Open a constructed (or any) element of tag; its length is written when
 * it is closed. ESIM_E_DER_TOO_DEEP past DER_BUILDER_MAX_DEPTH. */
esim_err der_builder_open(der_builder *b, uint32_t tag);
/* Close the innermost open element. ESIM_E_DER_BUILDER_STATE when none is
 * open. */
esim_err der_builder_close(der_builder *b);
/* Hand the finished encoding to the caller: *out is malloc'd (caller
 * frees with free(); never NULL on success, even for 0 bytes). b is left
 * empty and reusable. ESIM_E_DER_BUILDER_STATE when elements are still
 * open; on any error b is freed and *out untouched. */
esim_err der_builder_finish(der_builder *b, uint8_t **out, size_t *out_len);

/* Adders. tag is written as given for der_add_tlv; for the typed adders
 * DER_TAG_DEFAULT selects the universal tag of the type. */
esim_err der_add_tlv(der_builder *b, uint32_t tag, const void *value, size_t len);
esim_err der_add_raw(der_builder *b, const void *bytes, size_t len); /* pre-encoded */
esim_err der_add_int64(der_builder *b, uint32_t tag, int64_t v);
esim_err der_add_uint64(der_builder *b, uint32_t tag, uint64_t v);
/* A non-negative INTEGER from big-endian magnitude bytes (leading zeros
 * dropped, a 00 added when the top bit is set). */
esim_err der_add_big_unsigned(der_builder *b, uint32_t tag, const uint8_t *mag, size_t len);
esim_err der_add_bool(der_builder *b, uint32_t tag, bool v); /* FF / 00 */
esim_err der_add_enumerated(der_builder *b, uint32_t tag, int64_t v);
esim_err der_add_null(der_builder *b, uint32_t tag);
esim_err der_add_octet_string(der_builder *b, uint32_t tag, const void *p, size_t len);
/* BIT STRING from bytes and unused count (padding bits must be zero). */
esim_err der_add_bit_string(der_builder *b, uint32_t tag, const uint8_t *bytes, size_t len,
			    unsigned unused);
/* BIT STRING of named bits (bit n of mask = named bit n) with trailing zero
 * bits stripped as DER requires: mask 1 (bit 0) -> 02 07 80. */
esim_err der_add_bit_string_mask(der_builder *b, uint32_t tag, uint64_t mask);
/* UTF8String; ESIM_E_DER_BAD_UTF8 when s is not valid UTF-8. */
esim_err der_add_utf8(der_builder *b, uint32_t tag, const char *s, size_t len);
esim_err der_add_oid(der_builder *b, uint32_t tag, const char *dotted);

#endif
