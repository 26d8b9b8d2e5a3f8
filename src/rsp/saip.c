/*
 * saip: structure check of a SAIP profile package (TCA "eUICC Profile
 * Package: Interoperable Format"; digest section 13), the package the
 * eUICC reassembles from the 86 segments of a BPP.
 *
 * The check is what the virtual eUICC needs before it accepts a profile:
 * the ProfileHeader first (version, ICCID, mandatory services), an mf, an
 * end element last, and a PEHeader with a unique identification number in
 * every other element (pySim validates the same). The file system itself
 * is not interpreted.
 */
#include <stdlib.h>
#include <string.h>

#include "esim/rsp_saip.h"
#include "rsp_int.h"

#define PE_HEADER 0xA0
#define PE_MF	  0xB0
#define PE_END	  0xAA
#define PE_USIM	  0xB3

static esim_err parse_header(const der_element *e, struct rsp_saip_info *out, der_span *iccid_value)
{
	der_cursor c = der_cursor_of(e->value);
	uint64_t major = 0, minor = 0;
	der_span iccid;
	esim_err err = der_get_uint64(&c, 0x80, &major);
	if (err == ESIM_OK)
		err = der_get_uint64(&c, 0x81, &minor);
	if (err == ESIM_OK) {
		der_cursor save = c;
		bool present = false;
		err = der_get_optional(&c, 0x82, &present, NULL);
		if (err == ESIM_OK && present) {
			c = save;
			err = der_get_utf8(&c, 0x82, &out->profile_type);
		}
	}
	if (err == ESIM_OK)
		err = der_get_octet_string(&c, 0x83, &iccid);
	if (err != ESIM_OK || major > 255 || minor > 255)
		return ESIM_E_RSP_SAIP_BAD_HEADER;
	out->major = (unsigned)major;
	out->minor = (unsigned)minor;
	if (rsp_iccid_from_plain_bcd(iccid.p, iccid.len, out->iccid) != ESIM_OK)
		return ESIM_E_RSP_SAIP_BAD_HEADER;
	if (iccid_value)
		*iccid_value = iccid;
	/* The rest: optional pol (84), then the mandatory services (A5). */
	der_element x;
	while (der_next_child(&c, &x, &err)) {
		if (x.tag != 0xA5)
			continue;
		der_cursor s = der_cursor_of(x.value);
		der_element svc;
		while (der_next_child(&s, &svc, &err)) {
			uint32_t n = svc.tag - 0x80;
			if (svc.tag < 0x80 || svc.tag > 0xBF || n >= 64)
				return ESIM_E_RSP_SAIP_BAD_HEADER;
			out->mandatory_services |= UINT64_C(1) << n;
		}
		if (err != ESIM_OK)
			break;
	}
	return err == ESIM_OK ? ESIM_OK : ESIM_E_RSP_SAIP_BAD_HEADER;
}

/* PEHeader A0 { [80 00 mandated], 81 identification } */
static esim_err pe_identification(const der_element *e, uint64_t *id)
{
	if (!der_tag_is_constructed(e->tag))
		return ESIM_E_RSP_SAIP_BAD_PE_HEADER;
	der_cursor c = der_cursor_of(e->value), h;
	esim_err err = der_get_sequence(&c, 0xA0, &h);
	if (err == ESIM_OK) {
		der_cursor save = h;
		bool mandated = false;
		err = der_get_optional(&h, 0x80, &mandated, NULL);
		if (err == ESIM_OK && mandated) {
			h = save;
			err = der_get_null(&h, 0x80);
		}
	}
	if (err == ESIM_OK)
		err = der_get_uint64(&h, 0x81, id);
	if (err == ESIM_OK)
		err = der_expect_end(&h);
	return err == ESIM_OK ? ESIM_OK : ESIM_E_RSP_SAIP_BAD_PE_HEADER;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The check, also reporting where the header's ICCID and the mf element are. */
static esim_err check(const uint8_t *upp, size_t len, struct rsp_saip_info *out,
		      der_span *hdr_iccid, der_span *mf)
{
	memset(out, 0, sizeof(*out));
	if (!upp)
		return ESIM_E_ARG;
	der_cursor c;
	der_cursor_init(&c, upp, len);
	uint64_t *ids = NULL;
	size_t n_ids = 0;
	bool seen_end = false, seen_mf = false;
	esim_err err = ESIM_OK;
	while (!der_cursor_empty(&c)) {
		size_t off = len - c.len;
		der_element e;
		out->err_offset = off;
		err = der_get_any(&c, &e);
		if (err != ESIM_OK) {
			err = ESIM_E_RSP_SAIP_MALFORMED;
			break;
		}
		if (out->n_pe >= RSP_SAIP_MAX_PES) {
			err = ESIM_E_TOO_LARGE;
			break;
		}
		out->n_pe++;
		if (seen_end) {
			err = ESIM_E_RSP_SAIP_MISPLACED;
			break;
		}
		if (out->n_pe == 1) {
			err = e.tag == PE_HEADER ? parse_header(&e, out, hdr_iccid)
						 : ESIM_E_RSP_SAIP_NO_HEADER;
			if (err != ESIM_OK)
				break;
			continue;
		}
		if (e.tag == PE_HEADER) {
			err = ESIM_E_RSP_SAIP_MISPLACED;
			break;
		}
		uint64_t id;
		err = pe_identification(&e, &id);
		if (err != ESIM_OK)
			break;
		if (n_ids % 64 == 0) {
			uint64_t *g = realloc(ids, (n_ids + 64) * sizeof(*ids));
			if (!g) {
				err = ESIM_E_NOMEM;
				break;
			}
			ids = g;
		}
		ids[n_ids++] = id;
		if (e.tag == PE_END)
			seen_end = true;
		if (e.tag == PE_USIM)
			out->has_usim = true;
		if (e.tag == PE_MF && !seen_mf) {
			seen_mf = true;
			if (mf)
				*mf = e.tlv;
		}
	}
	if (err == ESIM_OK && out->n_pe == 0)
		err = ESIM_E_RSP_SAIP_NO_HEADER;
	if (err == ESIM_OK) {
		out->err_offset = len;
		if (!seen_end)
			err = ESIM_E_RSP_SAIP_NO_END;
		else if (!seen_mf)
			err = ESIM_E_RSP_SAIP_NO_MF;
	}
	if (err == ESIM_OK && n_ids > 1) {
		qsort(ids, n_ids, sizeof(*ids), cmp_u64);
		for (size_t i = 1; i < n_ids; i++)
			if (ids[i] == ids[i - 1])
				err = ESIM_E_RSP_SAIP_DUPLICATE_ID;
	}
	free(ids);
	if (err == ESIM_OK)
		out->err_offset = 0;
	return err;
}

esim_err rsp_saip_check(const uint8_t *upp, size_t len, struct rsp_saip_info *out)
{
	if (!out)
		return ESIM_E_ARG;
	return check(upp, len, out, NULL, NULL);
}

esim_err rsp_saip_make_test_upp(const char *iccid, uint8_t **out, size_t *out_len)
{
	if (!out || !out_len)
		return ESIM_E_ARG;
	uint8_t plain[RSP_ICCID_LEN], swapped[RSP_ICCID_LEN];
	esim_err err = rsp_iccid_to_plain_bcd(iccid, plain);
	if (err != ESIM_OK)
		return err;
	rsp_iccid_swap(plain, swapped);
	static const char type[] = "esimkit test profile";
	der_builder b;
	der_builder_init(&b);
	der_builder_open(&b, PE_HEADER);
	der_add_uint64(&b, 0x80, 2);
	der_add_uint64(&b, 0x81, 3);
	der_add_utf8(&b, 0x82, type, sizeof(type) - 1);
	der_add_octet_string(&b, 0x83, plain, RSP_ICCID_LEN);
	der_builder_open(&b, 0xA5); /* no mandatory services */
	der_builder_close(&b);
	der_builder_open(&b, 0xA6);
	der_add_oid(&b, DER_TAG_OID, "2.23.143.1.2.1"); /* MF template */
	der_builder_close(&b);
	der_builder_close(&b);

	der_builder_open(&b, PE_MF);
	der_builder_open(&b, 0xA0);
	der_add_null(&b, 0x80);
	der_add_uint64(&b, 0x81, 1);
	der_builder_close(&b);
	der_add_oid(&b, 0x81, "2.23.143.1.2.1");
	der_builder_open(&b, 0xA2); /* mf: template defaults */
	der_builder_close(&b);
	der_builder_open(&b, 0xA3); /* ef-pl */
	der_builder_close(&b);
	der_builder_open(&b, 0xA4); /* ef-iccid: its content */
	der_add_octet_string(&b, 0x83, swapped, RSP_ICCID_LEN);
	der_builder_close(&b);
	der_builder_open(&b, 0xA5); /* ef-dir */
	der_builder_close(&b);
	der_builder_open(&b, 0xA6); /* ef-arr */
	der_builder_close(&b);
	der_builder_close(&b);

	der_builder_open(&b, PE_END);
	der_builder_open(&b, 0xA0);
	der_add_null(&b, 0x80);
	der_add_uint64(&b, 0x81, 2);
	der_builder_close(&b);
	der_builder_close(&b);
	return der_builder_finish(&b, out, out_len);
}

esim_err rsp_saip_personalise_iccid(const uint8_t *upp, size_t len, const char *iccid,
				    uint8_t **out, size_t *out_len)
{
	if (!upp || !out || !out_len)
		return ESIM_E_ARG;
	uint8_t plain[RSP_ICCID_LEN], swapped[RSP_ICCID_LEN];
	esim_err err = rsp_iccid_to_plain_bcd(iccid, plain);
	if (err != ESIM_OK)
		return err;
	rsp_iccid_swap(plain, swapped);

	struct rsp_saip_info info;
	der_span hdr_iccid = {NULL, 0}, mf = {NULL, 0};
	err = check(upp, len, &info, &hdr_iccid, &mf);
	if (err != ESIM_OK)
		return err;

	/* EF.ICCID: 83 0A directly under ef-iccid (A4) of the mf element. */
	der_element mf_el, child, f;
	err = der_parse_single(mf.p, mf.len, &mf_el);
	if (err != ESIM_OK)
		return ESIM_E_RSP_SAIP_MALFORMED;
	der_cursor c = der_cursor_of(mf_el.value);
	const uint8_t *ef_iccid = NULL;
	while (der_next_child(&c, &child, &err)) {
		if (child.tag != 0xA4)
			continue;
		der_cursor fc = der_cursor_of(child.value);
		while (der_next_child(&fc, &f, &err))
			if (f.tag == 0x83 && f.value.len == RSP_ICCID_LEN)
				ef_iccid = f.value.p;
		break;
	}
	if (err != ESIM_OK)
		return ESIM_E_RSP_SAIP_MALFORMED;
	if (!ef_iccid)
		return ESIM_E_RSP_SAIP_NO_EF_ICCID;

	uint8_t *copy = malloc(len);
	if (!copy)
		return ESIM_E_NOMEM;
	memcpy(copy, upp, len);
	memcpy(copy + (hdr_iccid.p - upp), plain, RSP_ICCID_LEN);
	memcpy(copy + (ef_iccid - upp), swapped, RSP_ICCID_LEN);
	*out = copy;
	*out_len = len;
	return ESIM_OK;
}
