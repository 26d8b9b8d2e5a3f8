/*
 * metadata: StoreMetadataRequest (BF25, digest 7.5) and NotificationMetadata
 * (BF2F, digest 8.2).
 *
 * BF25 travels twice: as profileMetadata in ES9+ authenticateClient (what
 * the LPA shows the user) and inside the 88 segments of the bound profile
 * package (what the eUICC stores as ProfileInfo). Both must be read by the
 * same code. The v2 module ends StoreMetadataRequest with an extension
 * marker, so elements this code does not know (v2.4+/v3 additions) are kept
 * as raw TLVs rather than rejected, and written back when re-encoding.
 *
 * The decoder accepts elements in any order (peers in the wild are not all
 * strict) but rejects duplicates, since two ICCIDs in one request can only
 * be an attack or a bug.
 */
#include <stdlib.h>
#include <string.h>

#include "rsp_int.h"

static esim_err add_str(der_builder *b, uint32_t tag, const char *s)
{
	return der_add_utf8(b, tag, s, strlen(s));
}

static bool pmo_valid(uint32_t pmo)
{
	return pmo != 0 && pmo < (UINT32_C(1) << (RSP_EVENT_MAX + 1));
}

static esim_err check_str(const char *s, size_t max_chars)
{
	if (!s)
		return ESIM_E_ARG;
	size_t n = strlen(s);
	if (!der_utf8_valid((const uint8_t *)s, n))
		return ESIM_E_DER_BAD_UTF8;
	if (rsp__utf8_chars((const uint8_t *)s, n) > max_chars)
		return ESIM_E_RSP_FIELD_SIZE;
	return ESIM_OK;
}

static esim_err check_address(const char *s)
{
	if (!s)
		return ESIM_E_ARG;
	size_t n = strlen(s);
	if (n == 0 || n > RSP_ADDRESS_MAX)
		return ESIM_E_RSP_FIELD_SIZE;
	return ESIM_OK;
}

void rsp_metadata_free(struct rsp_metadata *m)
{
	if (!m)
		return;
	free(m->spn);
	free(m->name);
	free(m->icon);
	for (size_t i = 0; i < m->n_notif; i++)
		free(m->notif[i].address);
	free(m->notif);
	free(m->extra);
	memset(m, 0, sizeof(*m));
}

static esim_err metadata_check(const struct rsp_metadata *m)
{
	esim_err err = check_str(m->spn, RSP_SPN_MAX);
	if (err == ESIM_OK)
		err = check_str(m->name, RSP_NAME_MAX);
	if (err != ESIM_OK)
		return err;
	if (m->icon_len > RSP_ICON_MAX)
		return ESIM_E_RSP_FIELD_SIZE;
	if (m->icon_len && (!m->icon || !m->has_icon_type))
		return ESIM_E_ARG;
	if (m->has_icon_type && m->icon_type != RSP_ICON_JPG && m->icon_type != RSP_ICON_PNG)
		return ESIM_E_ARG;
	if (m->has_class &&
	    (m->profile_class < RSP_CLASS_TEST || m->profile_class > RSP_CLASS_OPERATIONAL))
		return ESIM_E_ARG;
	if (m->n_notif && !m->notif)
		return ESIM_E_ARG;
	for (size_t i = 0; i < m->n_notif; i++) {
		if (!pmo_valid(m->notif[i].pmo))
			return ESIM_E_ARG;
		err = check_address(m->notif[i].address);
		if (err != ESIM_OK)
			return err;
	}
	if (m->has_owner && ((m->owner.has_gid1 && m->owner.gid1_len > RSP_GID_MAX) ||
			     (m->owner.has_gid2 && m->owner.gid2_len > RSP_GID_MAX)))
		return ESIM_E_RSP_FIELD_SIZE;
	if (m->extra_len && !m->extra)
		return ESIM_E_ARG;
	return ESIM_OK;
}

esim_err rsp_metadata_encode(const struct rsp_metadata *m, uint8_t **out, size_t *out_len)
{
	if (!m || !out || !out_len)
		return ESIM_E_ARG;
	esim_err err = metadata_check(m);
	if (err != ESIM_OK)
		return err;
	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, 0xBF25);
	der_add_octet_string(&b, 0x5A, m->iccid, RSP_ICCID_LEN);
	add_str(&b, 0x91, m->spn);
	add_str(&b, 0x92, m->name);
	if (m->has_icon_type)
		der_add_int64(&b, 0x93, m->icon_type);
	if (m->icon_len)
		der_add_octet_string(&b, 0x94, m->icon, m->icon_len);
	if (m->has_class)
		der_add_int64(&b, 0x95, m->profile_class);
	if (m->n_notif) {
		der_builder_open(&b, 0xB6);
		for (size_t i = 0; i < m->n_notif; i++) {
			der_builder_open(&b, 0x30);
			der_add_bit_string_mask(&b, 0x80, m->notif[i].pmo);
			add_str(&b, 0x81, m->notif[i].address);
			der_builder_close(&b);
		}
		der_builder_close(&b);
	}
	if (m->has_owner) {
		der_builder_open(&b, 0xB7);
		der_add_octet_string(&b, 0x80, m->owner.mcc_mnc, 3);
		if (m->owner.has_gid1)
			der_add_octet_string(&b, 0x81, m->owner.gid1, m->owner.gid1_len);
		if (m->owner.has_gid2)
			der_add_octet_string(&b, 0x82, m->owner.gid2, m->owner.gid2_len);
		der_builder_close(&b);
	}
	if (m->has_ppr)
		der_add_bit_string_mask(&b, 0x99, m->ppr);
	if (m->extra_len)
		der_add_raw(&b, m->extra, m->extra_len);
	der_builder_close(&b);
	return der_builder_finish(&b, out, out_len);
}

static esim_err get_str(const der_element *e, size_t max_chars, char **out)
{
	der_cursor c = der_cursor_of(e->tlv);
	der_span s;
	esim_err err = der_get_utf8(&c, e->tag, &s);
	if (err != ESIM_OK)
		return rsp__structure(err);
	if (rsp__utf8_chars(s.p, s.len) > max_chars)
		return ESIM_E_RSP_FIELD_SIZE;
	return rsp__strdup(s, out);
}

static esim_err get_small_int(const der_element *e, int64_t lo, int64_t hi, int64_t *out)
{
	der_cursor c = der_cursor_of(e->tlv);
	esim_err err = der_get_int64(&c, e->tag, out);
	if (err != ESIM_OK)
		return rsp__structure(err);
	return (*out < lo || *out > hi) ? ESIM_E_RSP_BAD_STRUCTURE : ESIM_OK;
}

static esim_err get_mask(const der_element *e, uint64_t *mask)
{
	der_cursor c = der_cursor_of(e->tlv);
	der_bits bits;
	esim_err err = der_get_bit_string(&c, e->tag, &bits);
	if (err != ESIM_OK)
		return rsp__structure(err);
	err = der_bits_to_mask(&bits, mask);
	return err == ESIM_E_TOO_LARGE ? ESIM_E_RSP_BAD_STRUCTURE : err;
}

static esim_err decode_notif_config(const der_element *e, struct rsp_metadata *m)
{
	der_cursor list;
	der_cursor c = der_cursor_of(e->tlv);
	esim_err err = der_get_sequence(&c, 0xB6, &list);
	if (err != ESIM_OK)
		return rsp__structure(err);
	while (!der_cursor_empty(&list)) {
		der_cursor item;
		err = der_get_sequence(&list, 0x30, &item);
		if (err != ESIM_OK)
			return rsp__structure(err);
		der_bits bits;
		uint64_t mask;
		der_span addr;
		err = der_get_bit_string(&item, 0x80, &bits);
		if (err == ESIM_OK)
			err = der_bits_to_mask(&bits, &mask);
		if (err == ESIM_OK)
			err = der_get_utf8(&item, 0x81, &addr);
		if (err == ESIM_OK)
			err = der_expect_end(&item);
		if (err != ESIM_OK)
			return err == ESIM_E_TOO_LARGE ? ESIM_E_RSP_BAD_STRUCTURE
						       : rsp__structure(err);
		if (!pmo_valid((uint32_t)(mask & 0xFFFFFFFFu)) || mask >> 32)
			return ESIM_E_RSP_BAD_PMO;
		if (addr.len == 0 || addr.len > RSP_ADDRESS_MAX)
			return ESIM_E_RSP_FIELD_SIZE;
		struct rsp_notif_config *grown =
		    realloc(m->notif, (m->n_notif + 1) * sizeof(*m->notif));
		if (!grown)
			return ESIM_E_NOMEM;
		m->notif = grown;
		m->notif[m->n_notif].pmo = (uint32_t)mask;
		m->notif[m->n_notif].address = NULL;
		err = rsp__strdup(addr, &m->notif[m->n_notif].address);
		if (err != ESIM_OK)
			return err;
		m->n_notif++;
	}
	return ESIM_OK;
}

static esim_err get_gid(der_cursor *c, uint32_t tag, bool *has, uint8_t *out, size_t *len)
{
	der_cursor save = *c;
	bool present;
	der_cursor v;
	esim_err err = der_get_optional(c, tag, &present, &v);
	if (err != ESIM_OK)
		return rsp__structure(err);
	if (!present)
		return ESIM_OK;
	*c = save;
	der_span s;
	err = der_get_octet_string(c, tag, &s);
	if (err != ESIM_OK)
		return rsp__structure(err);
	if (s.len > RSP_GID_MAX)
		return ESIM_E_RSP_FIELD_SIZE;
	memcpy(out, s.p, s.len);
	*len = s.len;
	*has = true;
	return ESIM_OK;
}

static esim_err decode_owner(const der_element *e, struct rsp_operator_id *o)
{
	der_cursor c = der_cursor_of(e->tlv), in;
	esim_err err = der_get_sequence(&c, 0xB7, &in);
	if (err == ESIM_OK)
		err = rsp__get_fixed(&in, 0x80, o->mcc_mnc, 3);
	if (err == ESIM_OK)
		err = get_gid(&in, 0x81, &o->has_gid1, o->gid1, &o->gid1_len);
	if (err == ESIM_OK)
		err = get_gid(&in, 0x82, &o->has_gid2, o->gid2, &o->gid2_len);
	if (err == ESIM_OK)
		err = der_expect_end(&in);
	return rsp__structure(err);
}

/* Bit flags of fields seen, for duplicate detection. */
enum {
	SEEN_ICCID = 1 << 0,
	SEEN_SPN = 1 << 1,
	SEEN_NAME = 1 << 2,
	SEEN_ICON_TYPE = 1 << 3,
	SEEN_ICON = 1 << 4,
	SEEN_CLASS = 1 << 5,
	SEEN_NOTIF = 1 << 6,
	SEEN_OWNER = 1 << 7,
	SEEN_PPR = 1 << 8,
};

static esim_err decode_field(const der_element *e, struct rsp_metadata *m, esim_buf *extra)
{
	der_cursor c = der_cursor_of(e->tlv);
	int64_t v;
	uint64_t mask;
	esim_err err;
	switch (e->tag) {
	case 0x5A:
		return rsp__get_fixed(&c, 0x5A, m->iccid, RSP_ICCID_LEN);
	case 0x91:
		return get_str(e, RSP_SPN_MAX, &m->spn);
	case 0x92:
		return get_str(e, RSP_NAME_MAX, &m->name);
	case 0x93:
		err = get_small_int(e, RSP_ICON_JPG, RSP_ICON_PNG, &v);
		m->icon_type = (enum rsp_icon_type)v;
		m->has_icon_type = err == ESIM_OK;
		return err;
	case 0x94: {
		der_span s;
		err = der_get_octet_string(&c, 0x94, &s);
		if (err != ESIM_OK)
			return rsp__structure(err);
		if (s.len > RSP_ICON_MAX)
			return ESIM_E_RSP_FIELD_SIZE;
		m->icon = malloc(s.len ? s.len : 1);
		if (!m->icon)
			return ESIM_E_NOMEM;
		if (s.len)
			memcpy(m->icon, s.p, s.len);
		m->icon_len = s.len;
		return ESIM_OK;
	}
	case 0x95:
		err = get_small_int(e, RSP_CLASS_TEST, RSP_CLASS_OPERATIONAL, &v);
		m->profile_class = (enum rsp_profile_class)v;
		m->has_class = err == ESIM_OK;
		return err;
	case 0xB6:
		return decode_notif_config(e, m);
	case 0xB7:
		err = decode_owner(e, &m->owner);
		m->has_owner = err == ESIM_OK;
		return err;
	case 0x99:
		err = get_mask(e, &mask);
		if (err == ESIM_OK && mask >> 32)
			err = ESIM_E_RSP_BAD_STRUCTURE;
		m->ppr = (uint32_t)mask;
		m->has_ppr = err == ESIM_OK;
		return err;
	default:
		return esim_buf_append(extra, e->tlv.p, e->tlv.len);
	}
}

static unsigned seen_bit(uint32_t tag)
{
	switch (tag) {
	case 0x5A:
		return SEEN_ICCID;
	case 0x91:
		return SEEN_SPN;
	case 0x92:
		return SEEN_NAME;
	case 0x93:
		return SEEN_ICON_TYPE;
	case 0x94:
		return SEEN_ICON;
	case 0x95:
		return SEEN_CLASS;
	case 0xB6:
		return SEEN_NOTIF;
	case 0xB7:
		return SEEN_OWNER;
	case 0x99:
		return SEEN_PPR;
	default:
		return 0;
	}
}

esim_err rsp_metadata_decode(const uint8_t *p, size_t len, struct rsp_metadata *out)
{
	if (!p || !out)
		return ESIM_E_ARG;
	memset(out, 0, sizeof(*out));
	der_cursor children;
	esim_err err = rsp__open(p, len, 0xBF25, &children, NULL);
	if (err != ESIM_OK)
		return err;

	esim_buf extra = ESIM_BUF_INIT;
	unsigned seen = 0;
	der_element e;
	while (err == ESIM_OK && der_next_child(&children, &e, &err)) {
		unsigned bit = seen_bit(e.tag);
		if (seen & bit) {
			err = ESIM_E_RSP_DUPLICATE_FIELD;
			break;
		}
		seen |= bit;
		err = decode_field(&e, out, &extra);
	}
	if (err == ESIM_OK &&
	    (seen & (SEEN_ICCID | SEEN_SPN | SEEN_NAME)) != (SEEN_ICCID | SEEN_SPN | SEEN_NAME))
		err = ESIM_E_RSP_BAD_STRUCTURE;
	if (err == ESIM_OK && (seen & SEEN_ICON) && !(seen & SEEN_ICON_TYPE))
		err = ESIM_E_RSP_BAD_STRUCTURE;
	if (err != ESIM_OK) {
		esim_buf_free(&extra);
		rsp_metadata_free(out);
		return err;
	}
	out->extra = extra.data;
	out->extra_len = extra.len;
	if (!out->has_class)
		out->profile_class = RSP_CLASS_OPERATIONAL;
	return ESIM_OK;
}

const char *rsp_metadata_notif_address(const struct rsp_metadata *m, enum rsp_event ev)
{
	if (!m || (unsigned)ev > RSP_EVENT_MAX)
		return NULL;
	for (size_t i = 0; i < m->n_notif; i++)
		if (m->notif[i].pmo & RSP_PMO(ev))
			return m->notif[i].address;
	return NULL;
}

size_t rsp_metadata_segments(size_t bf25_len)
{
	if (bf25_len == 0)
		return 1;
	return (bf25_len + RSP_META_SEGMENT_MAX - 1) / RSP_META_SEGMENT_MAX;
}

esim_err rsp_icon_type_of(const uint8_t *icon, size_t len, enum rsp_icon_type *type)
{
	static const uint8_t png[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
	if (!icon || !type)
		return ESIM_E_ARG;
	if (len == 0 || len > RSP_ICON_MAX)
		return ESIM_E_RSP_FIELD_SIZE;
	if (len >= sizeof png && memcmp(icon, png, sizeof png) == 0) {
		*type = RSP_ICON_PNG;
		return ESIM_OK;
	}
	if (len >= 4 && icon[0] == 0xFF && icon[1] == 0xD8 && icon[2] == 0xFF) {
		*type = RSP_ICON_JPG;
		return ESIM_OK;
	}
	return ESIM_E_ARG;
}

/* --- NotificationMetadata ------------------------------------------------- */

void rsp_notif_metadata_free(struct rsp_notif_metadata *n)
{
	if (!n)
		return;
	free(n->address);
	memset(n, 0, sizeof(*n));
}

esim_err rsp_notif_metadata_add(der_builder *b, const struct rsp_notif_metadata *n)
{
	if (!b || !n || (unsigned)n->event > RSP_EVENT_MAX)
		return ESIM_E_ARG;
	esim_err err = check_address(n->address);
	if (err != ESIM_OK)
		return err;
	der_builder_open(b, 0xBF2F);
	der_add_uint64(b, 0x80, n->seq);
	der_add_bit_string_mask(b, 0x81, RSP_PMO(n->event));
	add_str(b, 0x0C, n->address);
	if (n->has_iccid)
		der_add_octet_string(b, 0x5A, n->iccid, RSP_ICCID_LEN);
	return der_builder_close(b);
}

esim_err rsp_notif_metadata_encode(const struct rsp_notif_metadata *n, uint8_t **out,
				   size_t *out_len)
{
	if (!out || !out_len)
		return ESIM_E_ARG;
	der_builder b;
	der_builder_init(&b);
	esim_err err = rsp_notif_metadata_add(&b, n);
	if (err != ESIM_OK) {
		der_builder_free(&b);
		return err;
	}
	return der_builder_finish(&b, out, out_len);
}

esim_err rsp__notif_metadata_value(der_span value, struct rsp_notif_metadata *out)
{
	memset(out, 0, sizeof(*out));
	der_cursor c = der_cursor_of(value);
	der_bits bits;
	uint64_t mask = 0;
	der_span addr;
	bool present = false;
	esim_err err = der_get_uint64(&c, 0x80, &out->seq);
	if (err == ESIM_OK)
		err = der_get_bit_string(&c, 0x81, &bits);
	if (err == ESIM_OK)
		err = der_bits_to_mask(&bits, &mask);
	if (err == ESIM_E_TOO_LARGE)
		return ESIM_E_RSP_BAD_PMO;
	if (err == ESIM_OK)
		err = der_get_utf8(&c, 0x0C, &addr);
	if (err == ESIM_OK) {
		der_cursor save = c;
		err = der_get_optional(&c, 0x5A, &present, NULL);
		if (err == ESIM_OK && present) {
			c = save;
			err = rsp__get_fixed(&c, 0x5A, out->iccid, RSP_ICCID_LEN);
			out->has_iccid = true;
		}
	}
	/* v2 ends NotificationMetadata with an extension marker: later
	 * elements are skipped, not rejected. */
	if (err != ESIM_OK)
		return rsp__structure(err);
	if (mask == 0 || (mask & (mask - 1)) != 0 || mask > RSP_PMO(RSP_EVENT_MAX))
		return ESIM_E_RSP_BAD_PMO;
	if (addr.len > RSP_ADDRESS_MAX)
		return ESIM_E_RSP_FIELD_SIZE;
	for (unsigned i = 0; i <= RSP_EVENT_MAX; i++)
		if (mask == RSP_PMO(i))
			out->event = (enum rsp_event)i;
	return rsp__strdup(addr, &out->address);
}

esim_err rsp_notif_metadata_decode(const uint8_t *p, size_t len, struct rsp_notif_metadata *out)
{
	if (!p || !out)
		return ESIM_E_ARG;
	memset(out, 0, sizeof(*out));
	der_element e;
	esim_err err = der_parse_single(p, len, &e);
	if (err != ESIM_OK)
		return rsp__structure(err);
	if (e.tag != 0xBF2F)
		return ESIM_E_RSP_BAD_STRUCTURE;
	err = rsp__notif_metadata_value(e.value, out);
	if (err != ESIM_OK)
		rsp_notif_metadata_free(out);
	return err;
}
