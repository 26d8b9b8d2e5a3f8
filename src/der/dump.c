/*
 * der_dump: print any TLV tree for a person (the `esim der dump` command,
 * test failures, debugging a peer's ES10 / ES9+ bytes).
 *
 * The dump is driven by der_walk, so it inherits the reader's strictness
 * and bounds: whatever the input, it prints the elements that parsed, then
 * names the error and the offset of the element that did not. Values are
 * rendered only when the tag is universal (an implicit context tag says
 * nothing certain about the type); printable context-tagged values get a
 * text hint because so many SGP.22 fields are implicit UTF8Strings.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "esim/der.h"

struct dump {
	FILE *out;
	der_dump_opts o;
};

static const char *class_name(enum der_class c)
{
	static const char *const names[] = {"univ", "appl", "ctx", "priv"};
	return names[c & 3];
}

/* Quote bytes as text; valid UTF-8 sequences pass through when utf8. */
static void print_text(FILE *out, const uint8_t *p, size_t n, bool utf8)
{
	fputc('"', out);
	for (size_t i = 0; i < n; i++) {
		uint8_t ch = p[i];
		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch >= 0x20 && ch < 0x7F)
			fputc(ch, out);
		else if (utf8 && ch >= 0x80)
			fputc(ch, out);
		else
			fprintf(out, "\\x%02X", ch);
	}
	fputc('"', out);
}

static bool printable_ascii(der_span v)
{
	if (v.len < 2)
		return false;
	for (size_t i = 0; i < v.len; i++)
		if (v.p[i] < 0x20 || v.p[i] >= 0x7F)
			return false;
	return true;
}

static void print_malformed(FILE *out, esim_err err)
{
	fprintf(out, " = (malformed: %s)", esim_errname(err));
}

/* The decoded rendering of a primitive value on the header line. */
static void print_decoded(FILE *out, const der_element *e)
{
	esim_err err;
	switch (e->tag) {
	case DER_TAG_BOOLEAN: {
		bool v;
		if ((err = der_value_bool(e->value, false, &v)) != ESIM_OK)
			print_malformed(out, err);
		else
			fprintf(out, " = %s", v ? "TRUE" : "FALSE");
		break;
	}
	case DER_TAG_INTEGER:
	case DER_TAG_ENUMERATED: {
		int64_t v;
		der_span mag;
		if ((err = der_value_int64(e->value, &v)) == ESIM_OK)
			fprintf(out, " = %" PRId64, v);
		else if (err == ESIM_E_DER_INTEGER_OVERFLOW &&
			 der_value_big_unsigned(e->value, &mag) == ESIM_OK)
			fprintf(out, " = (%zu-byte unsigned)", mag.len);
		else if (err == ESIM_E_DER_INTEGER_OVERFLOW)
			fprintf(out, " = (%zu-byte negative)", e->value.len);
		else
			print_malformed(out, err);
		break;
	}
	case DER_TAG_NULL:
		if (e->value.len != 0)
			print_malformed(out, ESIM_E_DER_BAD_NULL);
		break;
	case DER_TAG_BIT_STRING: {
		der_bits bits;
		if ((err = der_value_bit_string(e->value, &bits)) != ESIM_OK) {
			print_malformed(out, err);
			break;
		}
		fprintf(out, " = %zu bits", der_bits_count(&bits));
		size_t count = der_bits_count(&bits);
		if (count > 0 && count <= 64) {
			const char *sep = " {";
			for (size_t n = 0; n < count; n++) {
				if (der_bits_test(&bits, n)) {
					fprintf(out, "%s%zu", sep, n);
					sep = ",";
				}
			}
			fputs(*sep == ',' ? "}" : " {}", out);
		}
		break;
	}
	case DER_TAG_OID: {
		char text[256];
		if ((err = der_oid_to_text(e->value, text, sizeof text)) == ESIM_OK)
			fprintf(out, " = %s", text);
		else if (err == ESIM_E_BUF_SMALL || err == ESIM_E_UNSUPPORTED)
			fprintf(out, " = (OID too long to show)");
		else
			print_malformed(out, err);
		break;
	}
	case DER_TAG_UTF8_STRING:
		if (!der_utf8_valid(e->value.p, e->value.len)) {
			print_malformed(out, ESIM_E_DER_BAD_UTF8);
			break;
		}
		fputs(" = ", out);
		print_text(out, e->value.p, e->value.len, true);
		break;
	case DER_TAG_NUMERIC_STRING:
	case DER_TAG_PRINTABLE_STRING:
	case DER_TAG_IA5_STRING:
	case DER_TAG_UTC_TIME:
	case DER_TAG_GENERALIZED_TIME:
	case DER_TAG_VISIBLE_STRING:
		fputs(" = ", out);
		print_text(out, e->value.p, e->value.len, false);
		break;
	default:
		if (der_tag_class(e->tag) != DER_CLASS_UNIVERSAL && printable_ascii(e->value)) {
			fputs(" ~", out);
			print_text(out, e->value.p, e->value.len, false);
		}
		break;
	}
}

static void print_hex(const struct dump *d, const der_element *e, unsigned depth)
{
	size_t per_line = d->o.bytes_per_line ? d->o.bytes_per_line : 16;
	size_t limit =
	    d->o.full ? e->value.len : (d->o.max_value_bytes ? d->o.max_value_bytes : 64);
	size_t shown = e->value.len < limit ? e->value.len : limit;
	for (size_t i = 0; i < shown; i += per_line) {
		fprintf(d->out, "%8s  %*s", "", (int)(2 * depth + 2), "");
		for (size_t k = i; k < shown && k < i + per_line; k++)
			fprintf(d->out, "%s%02X", k == i ? "" : " ", e->value.p[k]);
		fputc('\n', d->out);
	}
	if (shown < e->value.len)
		fprintf(d->out, "%8s  %*s... (%zu more bytes)\n", "", (int)(2 * depth + 2), "",
			e->value.len - shown);
}

static esim_err dump_element(void *ctx, const der_element *e, unsigned depth, size_t offset)
{
	const struct dump *d = ctx;
	bool cons = der_tag_is_constructed(e->tag);
	enum der_class cls = der_tag_class(e->tag);
	fprintf(d->out, "%8zu  %*s%0*" PRIX32 " [%s %s] len=%zu", offset, (int)(2 * depth), "",
		(int)(2 * der_tag_len(e->tag)), e->tag, class_name(cls), cons ? "cons" : "prim",
		e->value.len);
	const char *name = der_tag_name(e->tag, d->o.names, depth);
	if (name != NULL && cls == DER_CLASS_UNIVERSAL)
		fprintf(d->out, " %s", name);
	else if (name != NULL)
		fprintf(d->out, " (%s?)", name);
	if (!cons)
		print_decoded(d->out, e);
	fputc('\n', d->out);
	if (!cons && e->value.len > 0)
		print_hex(d, e, depth);
	return ESIM_OK;
}

esim_err der_dump(FILE *out, const uint8_t *p, size_t len, const der_dump_opts *opts,
		  size_t *err_offset)
{
	struct dump d = {out, {0}};
	if (opts != NULL)
		d.o = *opts;
	size_t off = 0;
	esim_err err = der_walk(p, len, d.o.max_depth, dump_element, &d, &off);
	if (err != ESIM_OK) {
		fprintf(out, "!! %s (%s) at byte offset %zu\n", esim_errname(err),
			esim_strerror(err), off);
		if (err_offset)
			*err_offset = off;
	}
	return err;
}
