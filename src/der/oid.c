/*
 * OBJECT IDENTIFIER: validation, dotted text and back (digest 2.1, 10.2).
 *
 * SGP.22 carries OIDs as the SM-DP+ identity (smdpOid, e.g. 2.999.10 in
 * the SGP.26 test certificates), as certificate policy / role OIDs and as
 * SAIP file-system template IDs. Comparisons are made on the encoded
 * content; text is for people and configuration. The first subidentifier
 * packs two arcs (40 * arc0 + arc1), and arc0 = 2 allows arc1 >= 40, which
 * is exactly the 2.999.10 -> 88 37 0A case some libraries got wrong.
 */
#include <stdio.h>
#include <string.h>

#include "esim/der.h"

esim_err der_value_oid(der_span v)
{
	if (v.len == 0)
		return ESIM_E_DER_BAD_OID;
	bool start = true;
	for (size_t i = 0; i < v.len; i++) {
		/* A subidentifier starting with 0x80 has a zero leading digit. */
		if (start && v.p[i] == 0x80)
			return ESIM_E_DER_BAD_OID;
		start = (v.p[i] & 0x80) == 0;
	}
	/* The last byte must end a subidentifier. */
	return start ? ESIM_OK : ESIM_E_DER_BAD_OID;
}

esim_err der_get_oid(der_cursor *c, uint32_t tag, der_span *content)
{
	der_cursor tmp = *c;
	der_element e;
	if (tag == DER_TAG_DEFAULT)
		tag = DER_TAG_OID;
	if (der_tag_is_constructed(tag))
		return ESIM_E_ARG;
	esim_err err = der_get_tlv(&tmp, tag, &e);
	if (err == ESIM_OK)
		err = der_value_oid(e.value);
	if (err != ESIM_OK)
		return err;
	*c = tmp;
	*content = e.value;
	return ESIM_OK;
}

/* Append s to buf at *pos, keeping room for the final NUL. */
static esim_err put(char *buf, size_t cap, size_t *pos, const char *s)
{
	size_t n = strlen(s);
	if (cap == 0 || n > cap - 1 - *pos)
		return ESIM_E_BUF_SMALL;
	memcpy(buf + *pos, s, n + 1);
	*pos += n;
	return ESIM_OK;
}

esim_err der_oid_to_text(der_span content, char *buf, size_t cap)
{
	esim_err err = der_value_oid(content);
	if (err != ESIM_OK)
		return err;
	if (cap == 0)
		return ESIM_E_BUF_SMALL;
	buf[0] = '\0';
	size_t pos = 0;
	uint64_t v = 0;
	bool first = true;
	for (size_t i = 0; i < content.len; i++) {
		if (v > (UINT64_MAX >> 7))
			return ESIM_E_UNSUPPORTED;
		v = v << 7 | (content.p[i] & 0x7F);
		if (content.p[i] & 0x80)
			continue;
		char num[48];
		if (first) {
			unsigned arc0 = v < 40 ? 0 : v < 80 ? 1 : 2;
			snprintf(num, sizeof num, "%u.%llu", arc0,
				 (unsigned long long)(v - 40u * arc0));
			first = false;
		} else {
			snprintf(num, sizeof num, ".%llu", (unsigned long long)v);
		}
		if ((err = put(buf, cap, &pos, num)) != ESIM_OK)
			return err;
		v = 0;
	}
	return ESIM_OK;
}

/* Parse one decimal arc: digits only, no leading zero, fits uint64_t. */
static bool parse_arc(const char **s, uint64_t *out)
{
	const char *p = *s;
	uint64_t v = 0;
	if (*p < '0' || *p > '9')
		return false;
	if (p[0] == '0' && p[1] >= '0' && p[1] <= '9')
		return false;
	while (*p >= '0' && *p <= '9') {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
		p++;
	}
	*s = p;
	*out = v;
	return true;
}

static esim_err put_subid(esim_buf *out, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;
	do {
		tmp[n++] = (uint8_t)(v & 0x7F);
		v >>= 7;
	} while (v > 0);
	/* tmp is little-endian; emit big-endian with continuation bits. */
	for (size_t i = n; i-- > 0;) {
		esim_err err = esim_buf_append_byte(out, (uint8_t)(tmp[i] | (i > 0 ? 0x80 : 0)));
		if (err != ESIM_OK)
			return err;
	}
	return ESIM_OK;
}

esim_err der_oid_from_text(const char *dotted, esim_buf *out)
{
	if (dotted == NULL)
		return ESIM_E_ARG;
	const char *p = dotted;
	uint64_t arc0, arc1;
	if (!parse_arc(&p, &arc0) || *p++ != '.' || !parse_arc(&p, &arc1))
		return ESIM_E_ARG;
	if (arc0 > 2 || (arc0 < 2 && arc1 >= 40) || arc1 > UINT64_MAX - 80)
		return ESIM_E_ARG;
	/* Validate the remaining text before writing anything to out. */
	const char *rest = p;
	while (*p == '.') {
		uint64_t arc;
		p++;
		if (!parse_arc(&p, &arc))
			return ESIM_E_ARG;
	}
	if (*p != '\0')
		return ESIM_E_ARG;
	size_t start = out->len;
	esim_err err = put_subid(out, arc0 * 40 + arc1);
	for (p = rest; err == ESIM_OK && *p == '.';) {
		uint64_t arc = 0;
		p++;
		if (!parse_arc(&p, &arc)) /* validated above; cannot fail */
			err = ESIM_E_ARG;
		else
			err = put_subid(out, arc);
	}
	if (err != ESIM_OK)
		out->len = start;
	return err;
}
