/*
 * notification: the two signed notifications of SGP.22 (digest 8.2, 8.4).
 *
 * ProfileInstallationResult (BF37) is signed over the whole BF27 TLV and
 * verified by the SM-DP+ with the eUICC key of the download session; an
 * OtherSignedNotification (30) is signed over the BF2F TLV and carries the
 * eUICC and EUM certificates, so that any SM-DP+ can check it against its
 * trusted CIs without a session. Signatures are checked over the bytes as
 * received (der_element.tlv), never over a re-encoding.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "rsp_int.h"

void rsp_pir_free(struct rsp_pir *pir)
{
	if (!pir)
		return;
	rsp_notif_metadata_free(&pir->meta);
	free(pir->euicc_response);
	memset(pir, 0, sizeof(*pir));
}

static esim_err pir_data_add(der_builder *b, const struct rsp_pir *pir)
{
	der_builder_open(b, 0xBF27);
	der_add_octet_string(b, 0x80, pir->txid.b, pir->txid.len);
	esim_err err = rsp_notif_metadata_add(b, &pir->meta);
	if (err != ESIM_OK)
		return err;
	if (pir->smdp_oid[0])
		der_add_oid(b, 0x06, pir->smdp_oid);
	der_builder_open(b, 0xA2);
	if (pir->success) {
		der_builder_open(b, 0xA0);
		der_add_octet_string(b, 0x4F, pir->aid, pir->aid_len);
		der_add_octet_string(b, 0x04, pir->euicc_response, pir->euicc_response_len);
		der_builder_close(b);
	} else {
		der_builder_open(b, 0xA1);
		der_add_int64(b, 0x80, pir->bpp_command_id);
		der_add_int64(b, 0x81, pir->error_reason);
		if (pir->euicc_response)
			der_add_octet_string(b, 0x82, pir->euicc_response, pir->euicc_response_len);
		der_builder_close(b);
	}
	der_builder_close(b);
	return der_builder_close(b);
}

esim_err rsp_pir_build(const struct rsp_pir *pir, EVP_PKEY *euicc_key, uint8_t **out,
		       size_t *out_len)
{
	if (!pir || !euicc_key || !out || !out_len)
		return ESIM_E_ARG;
	if (pir->txid.len < 1 || pir->txid.len > RSP_TXID_MAX)
		return ESIM_E_RSP_BAD_TXID;
	if (pir->meta.event != RSP_EVENT_INSTALL)
		return ESIM_E_RSP_BAD_PMO;
	if (pir->success && (pir->aid_len < RSP_AID_MIN || pir->aid_len > RSP_AID_MAX))
		return ESIM_E_RSP_BAD_AID;
	if (pir->euicc_response_len && !pir->euicc_response)
		return ESIM_E_ARG;

	/* Encode BF27 alone first: the signature covers exactly these bytes. */
	der_builder b;
	der_builder_init(&b);
	uint8_t *data = NULL;
	size_t data_len = 0;
	esim_err err = pir_data_add(&b, pir);
	if (err == ESIM_OK)
		err = der_builder_finish(&b, &data, &data_len);
	else
		der_builder_free(&b);
	if (err != ESIM_OK)
		return err;

	uint8_t sig[RSP_SIG_LEN];
	err = crypto_ecdsa_sign(euicc_key, data, data_len, sig);
	if (err == ESIM_OK) {
		der_builder_init(&b);
		der_builder_open(&b, 0xBF37);
		der_add_raw(&b, data, data_len);
		der_add_octet_string(&b, 0x5F37, sig, RSP_SIG_LEN);
		der_builder_close(&b);
		err = der_builder_finish(&b, out, out_len);
	}
	free(data);
	return err;
}

static esim_err pir_result(der_cursor *c, struct rsp_pir *out)
{
	der_cursor result, alt;
	esim_err err = der_get_sequence(c, 0xA2, &result);
	if (err != ESIM_OK)
		return err;
	uint32_t tag;
	err = der_peek_tag(&result, &tag);
	if (err != ESIM_OK)
		return err;
	der_span resp = {NULL, 0};
	bool has_resp = false;
	if (tag == 0xA0) {
		der_span aid;
		out->success = true;
		err = der_get_sequence(&result, 0xA0, &alt);
		if (err == ESIM_OK)
			err = der_get_octet_string(&alt, 0x4F, &aid);
		if (err == ESIM_OK && (aid.len < RSP_AID_MIN || aid.len > RSP_AID_MAX))
			err = ESIM_E_RSP_BAD_AID;
		if (err == ESIM_OK) {
			memcpy(out->aid, aid.p, aid.len);
			out->aid_len = aid.len;
			err = der_get_octet_string(&alt, 0x04, &resp);
			has_resp = true;
		}
	} else if (tag == 0xA1) {
		out->success = false;
		err = der_get_sequence(&result, 0xA1, &alt);
		if (err == ESIM_OK)
			err = der_get_int64(&alt, 0x80, &out->bpp_command_id);
		if (err == ESIM_OK)
			err = der_get_int64(&alt, 0x81, &out->error_reason);
		if (err == ESIM_OK) {
			der_cursor save = alt;
			err = der_get_optional(&alt, 0x82, &has_resp, NULL);
			if (err == ESIM_OK && has_resp) {
				alt = save;
				err = der_get_octet_string(&alt, 0x82, &resp);
			}
		}
	} else {
		return ESIM_E_RSP_BAD_STRUCTURE;
	}
	if (err == ESIM_OK)
		err = der_expect_end(&alt);
	if (err == ESIM_OK)
		err = der_expect_end(&result);
	if (err == ESIM_OK && has_resp) {
		out->euicc_response = malloc(resp.len ? resp.len : 1);
		if (!out->euicc_response)
			return ESIM_E_NOMEM;
		if (resp.len)
			memcpy(out->euicc_response, resp.p, resp.len);
		out->euicc_response_len = resp.len;
	}
	return err;
}

/* Parse BF37; *signed_tlv is the BF27 TLV inside the input. */
static esim_err pir_parse(const uint8_t *p, size_t len, struct rsp_pir *out, der_span *signed_tlv)
{
	der_cursor in, data;
	der_element bf27, meta;
	esim_err err = rsp__open(p, len, 0xBF37, &in, NULL);
	if (err == ESIM_OK)
		err = der_get_tlv(&in, 0xBF27, &bf27);
	if (err == ESIM_OK)
		err = rsp__get_sig(&in, out->sig);
	if (err == ESIM_OK)
		err = der_expect_end(&in);
	if (err != ESIM_OK)
		return rsp__structure(err);
	if (!der_tag_is_constructed(bf27.tag))
		return ESIM_E_RSP_BAD_STRUCTURE;
	*signed_tlv = bf27.tlv;

	data = der_cursor_of(bf27.value);
	err = rsp__get_txid(&data, 0x80, &out->txid);
	if (err == ESIM_OK)
		err = der_get_tlv(&data, 0xBF2F, &meta);
	if (err == ESIM_OK)
		err = rsp__notif_metadata_value(meta.value, &out->meta);
	if (err != ESIM_OK)
		return rsp__structure(err);
	if (out->meta.event != RSP_EVENT_INSTALL)
		return ESIM_E_RSP_BAD_PMO;
	bool has_oid = false;
	der_cursor save = data;
	err = der_get_optional(&data, 0x06, &has_oid, NULL);
	if (err == ESIM_OK && has_oid) {
		der_span oid;
		data = save;
		err = der_get_oid(&data, 0x06, &oid);
		if (err == ESIM_OK)
			err = der_oid_to_text(oid, out->smdp_oid, sizeof(out->smdp_oid));
		if (err == ESIM_E_BUF_SMALL)
			err = ESIM_E_RSP_FIELD_SIZE;
	}
	if (err == ESIM_OK)
		err = pir_result(&data, out);
	if (err == ESIM_OK)
		err = der_expect_end(&data);
	return rsp__structure(err);
}

esim_err rsp_pir_parse(const uint8_t *p, size_t len, struct rsp_pir *out)
{
	if (!p || !out)
		return ESIM_E_ARG;
	memset(out, 0, sizeof(*out));
	der_span signed_tlv;
	esim_err err = pir_parse(p, len, out, &signed_tlv);
	if (err != ESIM_OK)
		rsp_pir_free(out);
	return err;
}

esim_err rsp_pir_verify(const uint8_t *p, size_t len, EVP_PKEY *euicc_pub,
			const char *expected_smdp_oid, struct rsp_pir *out)
{
	if (!p || !out || !euicc_pub)
		return ESIM_E_ARG;
	memset(out, 0, sizeof(*out));
	der_span signed_tlv;
	esim_err err = pir_parse(p, len, out, &signed_tlv);
	if (err == ESIM_OK) {
		struct crypto_span s = {signed_tlv.p, signed_tlv.len};
		err = rsp__verify(euicc_pub, &s, 1, out->sig);
	}
	if (err == ESIM_OK && expected_smdp_oid && strcmp(expected_smdp_oid, out->smdp_oid) != 0)
		err = ESIM_E_RSP_OID_MISMATCH;
	if (err != ESIM_OK)
		rsp_pir_free(out);
	return err;
}

/* --- OtherSignedNotification ---------------------------------------------- */

esim_err rsp_other_notif_build(const struct rsp_notif_metadata *meta, EVP_PKEY *euicc_key,
			       const uint8_t *euicc_cert, size_t euicc_cert_len,
			       const uint8_t *eum_cert, size_t eum_cert_len, uint8_t **out,
			       size_t *out_len)
{
	if (!meta || !euicc_key || !euicc_cert || !eum_cert || !out || !out_len)
		return ESIM_E_ARG;
	if (meta->event == RSP_EVENT_INSTALL)
		return ESIM_E_RSP_BAD_PMO;
	der_element e1, e2;
	if (der_parse_single(euicc_cert, euicc_cert_len, &e1) != ESIM_OK || e1.tag != 0x30 ||
	    der_parse_single(eum_cert, eum_cert_len, &e2) != ESIM_OK || e2.tag != 0x30)
		return ESIM_E_ARG;

	uint8_t *tbs = NULL;
	size_t tbs_len = 0;
	esim_err err = rsp_notif_metadata_encode(meta, &tbs, &tbs_len);
	if (err != ESIM_OK)
		return err;
	uint8_t sig[RSP_SIG_LEN];
	err = crypto_ecdsa_sign(euicc_key, tbs, tbs_len, sig);
	if (err == ESIM_OK) {
		der_builder b;
		der_builder_init(&b);
		der_builder_open(&b, 0x30);
		der_add_raw(&b, tbs, tbs_len);
		der_add_octet_string(&b, 0x5F37, sig, RSP_SIG_LEN);
		der_add_raw(&b, euicc_cert, euicc_cert_len);
		der_add_raw(&b, eum_cert, eum_cert_len);
		der_builder_close(&b);
		err = der_builder_finish(&b, out, out_len);
	}
	free(tbs);
	return err;
}

esim_err rsp_other_notif_verify(const uint8_t *p, size_t len, const crypto_trust *trust,
				const struct crypto_chain_opts *opts,
				struct rsp_notif_metadata *meta_out,
				char eid_out[RSP_EID_DIGITS + 1])
{
	if (!p || !trust || !meta_out || !eid_out)
		return ESIM_E_ARG;
	memset(meta_out, 0, sizeof(*meta_out));
	der_cursor in;
	der_element tbs, euicc_cert, eum_cert;
	uint8_t sig[RSP_SIG_LEN];
	esim_err err = rsp__open(p, len, 0x30, &in, NULL);
	if (err == ESIM_OK)
		err = der_get_tlv(&in, 0xBF2F, &tbs);
	if (err == ESIM_OK)
		err = rsp__get_sig(&in, sig);
	if (err == ESIM_OK)
		err = der_get_tlv(&in, 0x30, &euicc_cert);
	if (err == ESIM_OK)
		err = der_get_tlv(&in, 0x30, &eum_cert);
	/* v3 may append otherCertsInChain (A1): tolerated, not used. */
	if (err != ESIM_OK)
		return rsp__structure(err);

	err = rsp__notif_metadata_value(tbs.value, meta_out);
	if (err == ESIM_OK && meta_out->event == RSP_EVENT_INSTALL)
		err = ESIM_E_RSP_BAD_PMO;
	EVP_PKEY *pub = NULL;
	if (err == ESIM_OK)
		err = rsp__euicc_chain(euicc_cert.tlv, eum_cert.tlv, trust, opts, &pub, eid_out,
				       NULL);
	if (err == ESIM_OK) {
		struct crypto_span s = {tbs.tlv.p, tbs.tlv.len};
		err = rsp__verify(pub, &s, 1, sig);
	}
	EVP_PKEY_free(pub);
	if (err != ESIM_OK) {
		rsp_notif_metadata_free(meta_out);
		memset(eid_out, 0, RSP_EID_DIGITS + 1);
	}
	return err;
}

esim_err rsp_pending_kind(const uint8_t *p, size_t len, enum rsp_pending_kind *out)
{
	if (!p || !out)
		return ESIM_E_ARG;
	der_element e;
	esim_err err = der_parse_single(p, len, &e);
	if (err != ESIM_OK)
		return rsp__structure(err);
	if (e.tag == 0xBF37)
		*out = RSP_PENDING_PIR;
	else if (e.tag == 0x30)
		*out = RSP_PENDING_OTHER;
	else
		return ESIM_E_RSP_UNKNOWN_NOTIFICATION;
	return ESIM_OK;
}
